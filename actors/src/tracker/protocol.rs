//! Messages between the tracker registry, the probe agents and the CLI. Every payload
//! crosses the wire through [`crate::cluster::codec`]; a malformed one arrives as
//! [`Remote::Invalid`].

use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};

use crate::cluster::codec::{Remote, WireMessage};

/// Process group of the tracker registry actor of every collector.
pub const REGISTRY_GROUP: &str = "imsitrace.tracker-registry";

/// Process group of the tracker agent actor of every probe.
pub const AGENTS_GROUP: &str = "imsitrace.tracker-agents";

/// One tracker registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    /// Identifier assigned by the registry, unique in the microcloud.
    pub id: String,
    /// IMSI digits of the tracked subscriber.
    pub imsi: String,
    /// Reason the operator gave, for the audit log.
    pub reason: String,
    /// Operator who attached it, as `user@host` of the CLI.
    pub requested_by: String,
    /// Attach time, milliseconds since the Unix epoch.
    pub attached_at_ms: u64,
    /// Time the tracker ends by itself, milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

/// Every active tracker, sent by a registry to every agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerSet {
    /// Full name of the sending collector node.
    pub registry: String,
    /// Time the set was read from the microcloud, milliseconds since the Unix epoch.
    pub read_at_ms: u64,
    /// Active trackers, sorted by identifier.
    pub trackers: Vec<Tracker>,
}

/// Request to attach a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// IMSI digits (5 to 15).
    pub imsi: String,
    /// Reason given by the operator.
    pub reason: String,
    /// Operator, as `user@host`.
    pub requested_by: String,
    /// Lifetime in milliseconds; `None` keeps the tracker until it is detached.
    pub duration_ms: Option<u64>,
}

/// Request to detach a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachRequest {
    /// Tracker identifier.
    pub id: String,
    /// Operator, as `user@host`.
    pub requested_by: String,
}

/// Request for every active tracker and its per-probe counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    /// Also return trackers that ended within the registry's retention.
    pub include_ended: bool,
}

/// Reply of the registry to an attach or detach request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryReply {
    /// The tracker as stored.
    Done(Tracker),
    /// The request was rejected, with the reason and what to do next.
    Rejected(String),
}

/// Counts of one tracker on one probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCounts {
    /// Full name of the probe node.
    pub node: String,
    /// Site of the probe, from its configuration.
    pub site: Option<String>,
    /// Frames written for the tracker.
    pub packets: u64,
    /// Captured bytes written for the tracker.
    pub bytes: u64,
    /// Packet time of the last frame written, microseconds since the Unix epoch.
    pub last_packet_us: Option<u64>,
    /// Frames of the tracked subscriber that reached the probe but were not written,
    /// such as frames skipped after a restart because the file already held them.
    pub skipped: u64,
    /// Gaps in the probe's coverage, such as a restart, each as one line of text.
    pub gaps: Vec<String>,
}

/// Status of one tracker with the counts of every probe that reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStatus {
    /// The registration.
    pub tracker: Tracker,
    /// Detach or expiry time, milliseconds since the Unix epoch, once it ended.
    pub ended_at_ms: Option<u64>,
    /// Counts per probe, sorted by node name.
    pub probes: Vec<ProbeCounts>,
}

/// Reply to a [`ListRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerList {
    /// Trackers sorted by identifier.
    pub trackers: Vec<TrackerStatus>,
}

/// Counts of one probe for every tracker it has written for, sent by its agent to every
/// registry periodically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// Full name of the probe node.
    pub node: String,
    /// Counts by tracker identifier; `ProbeCounts::node` repeats `node`.
    pub trackers: Vec<(String, ProbeCounts)>,
}

/// Request of an agent for the current [`TrackerSet`], sent at its start so that a probe
/// that starts or restarts does not wait for the next periodic broadcast. A registry
/// answers with `AgentMsg::Trackers` to every agent, as it does after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRequest {
    /// Full name of the requesting probe node.
    pub node: String,
}

/// Request for the list of a tracker's files on one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesRequest {
    /// Tracker identifier.
    pub id: String,
}

/// One pcap file of a tracker on a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerFile {
    /// File name, unique among the tracker's files on that probe.
    pub name: String,
    /// Length in bytes up to the last complete record.
    pub len: u64,
}

/// Reply to a [`FilesRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    /// Full name of the probe node.
    pub node: String,
    /// The tracker's files, flushed, sorted by name.
    pub files: Vec<TrackerFile>,
}

/// Request for a byte range of one tracker file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRequest {
    /// Tracker identifier.
    pub id: String,
    /// File name from a [`FileList`].
    pub name: String,
    /// First byte.
    pub offset: u64,
    /// Maximum number of bytes; a probe returns at most [`MAX_CHUNK`].
    pub max_len: u32,
}

/// Largest chunk of a file sent in one reply, in bytes, well below ractor_cluster's frame
/// limit.
pub const MAX_CHUNK: u32 = 1 << 20;

/// Reply to a [`ChunkRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chunk {
    /// Bytes from the requested offset; empty at the end of the file.
    Bytes(Vec<u8>),
    /// The file cannot be read, with the reason.
    Failed(String),
}

macro_rules! wire_message {
    ($($type:ty => $name:literal),* $(,)?) => {
        $(impl WireMessage for $type {
            const NAME: &'static str = $name;
        })*
    };
}

wire_message! {
    TrackerSet => "tracker set",
    AttachRequest => "tracker attach request",
    DetachRequest => "tracker detach request",
    ListRequest => "tracker list request",
    RegistryReply => "tracker registry reply",
    TrackerList => "tracker list",
    AgentReport => "tracker agent report",
    SetRequest => "tracker set request",
    FilesRequest => "tracker files request",
    FileList => "tracker file list",
    ChunkRequest => "tracker chunk request",
    Chunk => "tracker file chunk",
}

/// Messages of the tracker registry actor on a collector.
#[derive(RactorClusterMessage)]
pub enum RegistryMsg {
    /// Attaches a tracker, stores it and broadcasts the new set.
    #[rpc]
    Attach(Remote<AttachRequest>, RpcReplyPort<Remote<RegistryReply>>),
    /// Detaches a tracker, stores the end and broadcasts the new set.
    #[rpc]
    Detach(Remote<DetachRequest>, RpcReplyPort<Remote<RegistryReply>>),
    /// Returns every tracker with its per-probe counts.
    #[rpc]
    List(Remote<ListRequest>, RpcReplyPort<Remote<TrackerList>>),
    /// Counts from one probe's agent.
    Report(Remote<AgentReport>),
    /// Request of an agent for the current set, e.g. at its start.
    SendSet(Remote<SetRequest>),
}

/// Messages of the tracker agent actor on a probe.
#[derive(RactorClusterMessage)]
pub enum AgentMsg {
    /// The full set of active trackers from a registry.
    Trackers(Remote<TrackerSet>),
    /// Returns the tracker's files on this probe.
    #[rpc]
    Files(Remote<FilesRequest>, RpcReplyPort<Remote<FileList>>),
    /// Returns a byte range of one of the tracker's files.
    #[rpc]
    Chunk(Remote<ChunkRequest>, RpcReplyPort<Remote<Chunk>>),
}
