//! The effective configuration of a node, after defaults are applied and values checked.
//! Each section of the TOML file is one struct; `docs/node.md` lists every key.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use imsitrace::cluster::TlsFiles;
use imsitrace::pipeline::live::LiveOptions;

/// A node's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// `[node]`: identity and roles.
    pub node: NodeSection,
    /// `[microcloud]`: where the shared state is kept.
    pub microcloud: MicrocloudSection,
    /// `[report]`: the periodic reports of the collector role.
    pub report: ReportSection,
    /// `[probe]`: the captures of the probe role.
    pub probe: ProbeSection,
    /// `[cluster]`: membership of a ractor cluster; `None` when the node runs alone.
    pub cluster: Option<ClusterSection>,
    /// `[tracker]`: the tracker registry of the collector role.
    pub tracker: TrackerSection,
    /// `[metrics]`: the Prometheus `/metrics` listener.
    pub metrics: MetricsSection,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSection {
    /// Address of the `/metrics` listener; `None` serves no page.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[tracker]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerSection {
    /// Audit log file (JSON lines); `None` uses `tracker-audit.jsonl` next to `report.outdir`.
    pub audit_log: Option<PathBuf>,
    /// Time an ended tracker stays listed before it is deleted from the microcloud.
    pub retention: Duration,
}

/// The roles a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// Reads captures and writes sessions and buckets to the microcloud.
    pub probe: bool,
    /// Writes the reports of the buckets stored on the microcloud.
    pub collector: bool,
}

impl Roles {
    /// Returns the role names, e.g. `probe, collector`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = [(self.probe, "probe"), (self.collector, "collector")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        names.join(", ")
    }
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSection {
    /// Node name; the collector stores it as the owner of the reports it claims.
    pub name: String,
    /// Roles run by this node.
    pub roles: Roles,
    /// Site name written into session events.
    pub site: String,
    /// Region of the site, shown in the summary.
    pub region: Option<String>,
}

/// `[microcloud]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrocloudSection {
    /// Redis server URL; `None` keeps the microcloud in process memory.
    pub redis: Option<String>,
    /// Prefix of every Redis key and channel name.
    pub prefix: String,
    /// Also write ntop's historic key layout.
    pub ntop_compat: bool,
    /// Session events plus bucket deltas the probe keeps while the server is unavailable.
    pub buffer: usize,
    /// Time the probe spends at the end of its input retrying buffered writes.
    pub retry_timeout: Duration,
}

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSection {
    /// Directory of the reports `<epoch>.imsi`; required by the collector role.
    pub outdir: Option<PathBuf>,
    /// Time between two runs of the aggregator.
    pub interval: Duration,
    /// Delay of each run after a multiple of the interval.
    pub offset: Duration,
    /// Buckets between the current one and the newest reported.
    pub lag: u64,
    /// How long the claim of a reported bucket is kept.
    pub claim_ttl: Duration,
    /// How long a reported bucket stays on the server; zero deletes it.
    pub retention: Duration,
}

/// `[probe]`. Not `Eq`: `replay_speed` is a float.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSection {
    /// Capture files and directories, merged by packet time.
    pub inputs: Vec<PathBuf>,
    /// Interfaces (`probe.interfaces`) and settings (`[probe.capture]`) of a live capture,
    /// which replaces `inputs`; `None` without interfaces.
    pub live: Option<LiveOptions>,
    /// Directory of the per-subscriber pcap files.
    pub pcap_dir: Option<PathBuf>,
    /// IMSIs whose frames are written to `pcap_dir`.
    pub track: Vec<String>,
    /// Write a pcap file for every subscriber.
    pub track_all: bool,
    /// Directory of the tracker pcap files, one subdirectory per tracker. Default:
    /// `trackers` next to `pcap_dir`, or in the working directory without `pcap_dir`.
    pub tracker_dir: PathBuf,
    /// Maximum wall time a frame written for a tracker stays in a buffer before it
    /// reaches its file.
    pub tracker_flush: Duration,
    /// Trackers followed whatever the registries send, e.g. on a probe without collector.
    pub trackers: Vec<ProbeTracker>,
    /// Directory of the reports written at the end of the input from the buckets of this
    /// node's run.
    pub report_dir: Option<PathBuf>,
    /// File of the session-event log (JSON lines).
    pub events: Option<PathBuf>,
    /// Number of shard actors; `None` uses one per CPU core.
    pub shards: Option<usize>,
    /// Frames per batch handed from the capture to the other actors.
    pub batch_size: usize,
    /// Maximum pcap files open at once.
    pub max_open_files: usize,
    /// A flow ends after this long without a packet (packet time).
    pub idle_timeout: Duration,
    /// A flow is cut after this long even while active; zero disables the cut.
    pub active_timeout: Duration,
    /// Packet time a G-PDU of an unknown tunnel waits for its signalling.
    pub late_grace: Duration,
    /// Replay speed as a factor of the capture's own pace, or 0 to read as fast as possible.
    pub replay_speed: f64,
    /// Ask the microcloud's tunnel index about held frames' tunnels (Redis microcloud only).
    pub lookups: bool,
    /// Other probes whose session-event bridge must be in the cluster before the capture
    /// starts, so that none of this probe's events is broadcast before they listen.
    pub wait_for_probes: usize,
}

/// One entry of `probe.trackers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTracker {
    /// Tracker identifier, the name of its directory under `probe.tracker_dir`.
    pub id: String,
    /// IMSI digits (5 to 15).
    pub imsi: String,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSection {
    /// Address the node listens on for cluster connections.
    pub listen_address: IpAddr,
    /// TCP port of the cluster connections.
    pub port: u16,
    /// Host name or address that other nodes connect to.
    pub advertise: String,
    /// `HOST:PORT` of the nodes to connect to.
    pub seeds: Vec<String>,
    /// Shared secret of the cluster's authentication.
    pub cookie: Cookie,
    /// Time between two heartbeats.
    pub heartbeat_interval: Duration,
    /// Silence after which a peer's session is closed.
    pub peer_timeout: Duration,
    /// Maximum time from an open socket to a ready session.
    pub handshake_timeout: Duration,
    /// First delay before retrying a connection.
    pub reconnect_min: Duration,
    /// Maximum delay between two connection attempts.
    pub reconnect_max: Duration,
    /// `[cluster.tls]`: certificate files of mutual TLS; `None` for plain TCP.
    pub tls: Option<TlsFiles>,
}

/// The cluster cookie and where it was read from. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The secret.
    pub value: String,
    /// Source of the cookie, for the summary: `cluster.cookie`, the environment variable or
    /// the file.
    pub source: String,
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cookie {{ value: <hidden>, source: {:?} }}", self.source)
    }
}
