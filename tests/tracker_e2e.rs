//! IMSI trackers end to end: a collector, two probes and the CLI, each a separate process on
//! 127.0.0.1, with a real redis-server. `small.pcap` is split by site: probe A reads every
//! GTP-C frame and the user plane of site A's RAN nodes, probe B only the user plane of
//! site B's. Two subscribers are tracked before the replay starts:
//! - 001015875979116 attaches at eNodeB 4 (site A), re-attaches with new TEIDs and is
//!   handed over to eNodeB 6 (site B);
//! - 001018596741032 moves from SGSN 3 (site A) to SGSN 4 (site B), detaches and attaches
//!   again at SGSN 3 with new TEIDs.
//!
//! The pcap that `imsitrace fetch` merges from both probes must hold exactly the frames the
//! truth gives each subscriber, in capture order. The second test kills probe B with SIGKILL
//! while it writes the first subscriber's frames. It then restarts B on the rest of its
//! capture, from a little before the kill. The merged pcap must still equal the truth with no
//! frame twice, and the tracker list reports B's restart and the frames it skipped.
//!
//! Timing: the probes replay at speed 20 (591 s of packets in about 30 s). Both subscribers'
//! first frames come 31 s of packet time (1.5 s of wall time) after the start, which leaves
//! the probes' tracker agents time to receive the trackers attached before the probes
//! started. Probe B holds frames of unknown tunnels for 20 s of packet time.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::nodes::{cluster_section, poll_until, Node, COOKIE};
use common::split::{write_pcap, GTPC_PORT};
use common::{data, read_pcap, truth, Frame, Pcap};
use redis_server::{free_port, RedisServer};

/// Generous bound on every wait; each replay takes about 30 s.
const DEADLINE: Duration = Duration::from_secs(240);

/// Subscribers tracked, with the way each crosses between the sites.
const TRACKED: [&str; 2] = ["001015875979116", "001018596741032"];

/// RAN nodes (eNodeBs and SGSNs) whose user plane probe A captures; probe B captures the
/// others'.
const SITE_A: [&str; 5] = ["enb1", "enb2", "enb4", "sgsn1", "sgsn3"];

/// Returns the IPv4 source, destination and UDP destination port of an untagged
/// Ethernet/IPv4/UDP frame, the only kind small.pcap has.
fn addresses(frame: &Frame) -> (Ipv4Addr, Ipv4Addr, u16) {
    let ip = &frame.data[14..];
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let source = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let destination = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    (source, destination, u16::from_be_bytes([ip[header_len + 2], ip[header_len + 3]]))
}

/// Splits small.pcap by site: probe A's frames (GTP-C, site A's user plane and user plane
/// of no RAN node) and probe B's (site B's user plane).
fn split(pcap: &Pcap) -> (Vec<&Frame>, Vec<&Frame>) {
    let truth = truth("small");
    let address = |name: &str| -> Ipv4Addr { truth["nodes"][name]["ipv4"].as_str().unwrap().parse().unwrap() };
    let site_a: BTreeSet<Ipv4Addr> = SITE_A.iter().map(|name| address(name)).collect();
    let ran_nodes: BTreeSet<Ipv4Addr> = truth["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, node)| matches!(node["kind"].as_str(), Some("enb" | "sgsn")))
        .map(|(name, _)| address(name))
        .collect();
    pcap.frames.iter().partition(|frame| {
        let (source, destination, port) = addresses(frame);
        port == GTPC_PORT || ![source, destination].iter().any(|ip| ran_nodes.contains(ip) && !site_a.contains(ip))
    })
}

/// Writes `a.pcap` and `b.pcap` in `dir`, split by [`split`]. A replay is paced from its
/// file's first frame, so `b.pcap` starts with a copy of the capture's first frame, a
/// G-PDU of an unknown tunnel that no subscriber owns, and both replays start at the same
/// packet time.
fn write_split(pcap: &Pcap, dir: &Path) {
    let owned_by_nobody: BTreeSet<usize> = truth("small")["unattributed"]["frames"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect();
    assert!(owned_by_nobody.contains(&0), "the capture's first frame belongs to no subscriber");
    let (a, mut b) = split(pcap);
    b.insert(0, &pcap.frames[0]);
    write_pcap(&dir.join("a.pcap"), pcap.link_type, &a);
    write_pcap(&dir.join("b.pcap"), pcap.link_type, &b);
}

/// Returns the frames the truth gives `imsi`, in capture order.
fn expected_frames(pcap: &Pcap, imsi: &str) -> Vec<Frame> {
    let truth = truth("small");
    let subscriber = truth["subscribers"].as_array().unwrap().iter().find(|s| s["imsi"] == imsi).unwrap_or_else(|| panic!("{imsi} is not in the truth"));
    subscriber["frames"].as_array().unwrap().iter().map(|i| pcap.frames[i.as_u64().unwrap() as usize].clone()).collect()
}

/// The test cluster: a collector with its Redis microcloud, and the probes' settings.
struct Cluster {
    dir: PathBuf,
    redis: RedisServer,
    collector_port: u16,
    collector: Node,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let redis = RedisServer::start();
        let collector_port = free_port();
        let config = format!(
            "[node]\nname = \"collector\"\nroles = [\"collector\"]\n\n[microcloud]\nredis = \"{}\"\n\n[report]\noutdir = \"{}\"\n\n[tracker]\naudit_log = \"{}\"\n\n{}",
            redis.url(),
            dir.join("reports").display(),
            dir.join("audit.log").display(),
            cluster_section(collector_port, &[], "")
        );
        let collector = Node::start(dir, "collector", &config, COOKIE);
        poll_until("the tracker registry to start", DEADLINE, &[&collector], || collector.log().contains("tracker registry started"));
        Cluster { dir: dir.to_owned(), redis, collector_port, collector }
    }

    /// Returns the configuration of probe `name` that replays `input` at speed 20.
    fn probe_config(&self, name: &str, input: &str, port: u16, seeds: &[u16]) -> String {
        format!(
            "[node]\nname = \"{name}\"\nroles = [\"probe\"]\nsite = \"site-{name}\"\n\n[microcloud]\nredis = \"{}\"\n\n[probe]\ninputs = [\"{}\"]\nshards = 2\n\
             tracker_dir = \"{}\"\nreplay_speed = 20\nlate_grace = \"20s\"\nwait_for_probes = 1\n\n{}",
            self.redis.url(),
            self.dir.join(input).display(),
            self.dir.join(format!("trackers-{name}")).display(),
            cluster_section(port, seeds, "")
        )
    }

    /// Runs the CLI with the cluster address and cookie; fails when it exits non-zero.
    fn cli(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
            .args(args)
            .args(["--cluster", &format!("127.0.0.1:{}", self.collector_port)])
            .env("IMSITRACE_CLUSTER__COOKIE", COOKIE)
            .env("NO_COLOR", "1")
            .output()
            .expect("cannot run the imsitrace binary");
        assert!(output.status.success(), "imsitrace {args:?} failed: {}\n{}", String::from_utf8_lossy(&output.stderr), self.collector.log());
        output
    }

    /// Attaches a tracker to `imsi` and returns its id.
    fn track(&self, imsi: &str) -> String {
        let output = self.cli(&["track", imsi, "--reason", "end-to-end test", "--background"]);
        let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(!id.is_empty(), "track --background printed no tracker id");
    assert!(!id.contains(char::is_whitespace), "unexpected tracker id {id:?}");
        id
    }

    /// Fetches the merged pcap of tracker `id`.
    fn fetch(&self, id: &str) -> Pcap {
        let path = self.dir.join(format!("{id}.pcap"));
        self.cli(&["fetch", id, "--out", path.to_str().unwrap()]);
        read_pcap(&path)
    }

    /// Returns `imsitrace track --list --json`.
    fn list(&self) -> serde_json::Value {
        let output = self.cli(&["track", "--list", "--json"]);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("invalid JSON from track --list: {e}: {}", String::from_utf8_lossy(&output.stdout)))
    }
}

/// A run of the cluster with both probes replaying and a tracker on each subscriber of
/// [`TRACKED`].
struct TrackedRun {
    cluster: Cluster,
    ids: Vec<String>,
    probe_a: Node,
    probe_b: Node,
    port_a: u16,
    port_b: u16,
}

/// Starts the cluster, attaches the trackers and starts both probes.
fn start_tracked_run(dir: &Path) -> TrackedRun {
    let pcap = read_pcap(&data("gtpgen/small.pcap"));
    write_split(&pcap, dir);
    let cluster = Cluster::start(dir);
    let ids: Vec<String> = TRACKED.iter().map(|imsi| cluster.track(imsi)).collect();

    let (port_a, port_b) = (free_port(), free_port());
    let probe_a = Node::start(dir, "a", &cluster.probe_config("a", "a.pcap", port_a, &[cluster.collector_port]), COOKIE);
    let probe_b = Node::start(dir, "b", &cluster.probe_config("b", "b.pcap", port_b, &[cluster.collector_port, port_a]), COOKIE);
    TrackedRun { cluster, ids, probe_a, probe_b, port_a, port_b }
}

/// Returns true when every tracker of `ids` has a pcap with at least one record under
/// `dir/<id>/`.
fn has_records(dir: &Path, ids: &[String]) -> bool {
    ids.iter().all(|id| {
        let Ok(entries) = std::fs::read_dir(dir.join(id)) else { return false };
        entries.flatten().any(|entry| entry.metadata().is_ok_and(|meta| meta.len() > 24))
    })
}

/// Waits until `probe` printed `count` summaries (one per run of its input).
fn wait_for_summaries(probe: &Node, count: usize, nodes: &[&Node]) {
    poll_until(&format!("{count} summaries of probe {}", probe.name), DEADLINE, nodes, || probe.output().matches("\ncluster ").count() >= count);
}

/// Asserts that each tracker's merged pcap contains exactly its subscriber's truth frames,
/// each once, in capture order.
fn assert_merged_equal_truth(cluster: &Cluster, ids: &[String]) {
    let pcap = read_pcap(&data("gtpgen/small.pcap"));
    for (id, imsi) in ids.iter().zip(TRACKED) {
        let merged = cluster.fetch(id);
        let expected = expected_frames(&pcap, imsi);
        let unique: BTreeSet<&Frame> = merged.frames.iter().collect();
        assert_eq!(unique.len(), merged.frames.len(), "tracker {id} of {imsi}: a frame appears twice");
        let missing = expected.iter().filter(|frame| !unique.contains(frame)).count();
        let extra = merged.frames.iter().filter(|frame| !expected.contains(frame)).count();
        assert_eq!((missing, extra), (0, 0), "tracker {id} of {imsi}: {} frames merged, {} expected", merged.frames.len(), expected.len());
        assert!(merged.frames == expected, "tracker {id} of {imsi}: frames out of capture order");
    }
}

/// Returns the per-probe counts of tracker `id` from `track --list --json`.
fn probe_counts(list: &serde_json::Value, id: &str) -> Vec<serde_json::Value> {
    let trackers = list.as_array().unwrap_or_else(|| panic!("track --list --json printed no array: {list}"));
    let status = trackers.iter().find(|status| status["id"] == id).unwrap_or_else(|| panic!("tracker {id} not listed in {list}"));
    status["probes"].as_array().cloned().unwrap_or_default()
}

#[test]
fn tracker_follows_subscribers_across_sites() {
    let dir = tempfile::tempdir().unwrap();
    let TrackedRun { cluster, ids, probe_a, probe_b, .. } = start_tracked_run(dir.path());
    let nodes = [&cluster.collector, &probe_a, &probe_b];
    wait_for_summaries(&probe_a, 1, &nodes);
    wait_for_summaries(&probe_b, 1, &nodes);

    assert_merged_equal_truth(&cluster, &ids);
    let list = cluster.list();
    for id in &ids {
        let sites: BTreeSet<String> = probe_counts(&list, id).iter().filter(|p| p["packets"].as_u64() > Some(0)).map(|p| p["site"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(sites, BTreeSet::from(["site-a".to_owned(), "site-b".to_owned()]), "tracker {id} has packets at both sites: {list}");
    }

    for id in &ids {
        cluster.cli(&["track", "--detach", id]);
    }
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).expect("the collector writes the audit log");
    for id in &ids {
        assert_eq!(audit.lines().filter(|line| line.contains(&format!("\"{id}\""))).count(), 2, "attach and detach of {id} in the audit log:\n{audit}");
    }
}

/// Packet time, from the capture's first frame, at which the restarted probe B resumes: a
/// little before the first subscriber reaches site B (383 s), so the restarted probe sees
/// again frames it wrote before the kill, as a capture that resumes does.
const RESUME_FROM_S: u64 = 380;

#[test]
fn killed_probe_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let TrackedRun { cluster, ids, probe_a, mut probe_b, port_a, port_b } = start_tracked_run(dir.path());
    // The first subscriber is at site B from 383 s to 553 s of packet time, about 19 s to
    // 28 s after the start.
    let tracker_dir = dir.path().join("trackers-b");
    poll_until("probe B to write frames of the first tracker", DEADLINE, &[&probe_b], || has_records(&tracker_dir, &ids[..1]));
    assert!(probe_b.output().is_empty(), "probe B ended its replay before the kill:\n{}", probe_b.output());
    probe_b.kill();

    // The restarted probe reads site B's frames from RESUME_FROM_S on. It missed the session
    // events probe A sent meanwhile and learns those tunnels from the microcloud.
    let pcap = read_pcap(&data("gtpgen/small.pcap"));
    let resume_us = pcap.frames[0].ts_us + RESUME_FROM_S * 1_000_000;
    let rest: Vec<&Frame> = split(&pcap).1.into_iter().filter(|frame| frame.ts_us >= resume_us).collect();
    write_pcap(&dir.path().join("b-rest.pcap"), pcap.link_type, &rest);
    let config = cluster.probe_config("b", "b-rest.pcap", port_b, &[cluster.collector_port, port_a]);
    let probe_b = Node::start(dir.path(), "b", &config, COOKIE);
    let nodes = [&cluster.collector, &probe_a, &probe_b];
    wait_for_summaries(&probe_a, 1, &nodes);
    wait_for_summaries(&probe_b, 1, &nodes);

    // The first subscriber's tunnels stay live in the microcloud until 553 s, so the
    // restarted probe attributes every frame, and skips those it had written.
    assert_merged_equal_truth(&cluster, &ids[..1]);
    // The second one may have left site B before probe B came back: its frames there until
    // then are lost, and nothing may appear twice.
    let merged = cluster.fetch(&ids[1]);
    let unique: BTreeSet<&Frame> = merged.frames.iter().collect();
    assert_eq!(unique.len(), merged.frames.len(), "tracker {}: a frame appears twice", ids[1]);
    let expected = expected_frames(&pcap, TRACKED[1]);
    assert!(merged.frames.iter().all(|frame| expected.contains(frame)), "tracker {}: a frame of another subscriber", ids[1]);

    let list = cluster.list();
    let at_b: Vec<serde_json::Value> = probe_counts(&list, &ids[0]).into_iter().filter(|p| p["site"] == "site-b").collect();
    assert_eq!(at_b.len(), 1, "one count of probe B for tracker {}: {list}", ids[0]);
    assert!(at_b[0]["skipped"].as_u64() > Some(0), "the restarted probe skipped frames it had written: {list}");
    assert!(!at_b[0]["gaps"].as_array().is_none_or(Vec::is_empty), "probe B's restart is reported as a gap: {list}");
}
