//! Session events across the cluster: probe A replays only the signalling of `small.pcap`
//! and probe B only its user plane, both at the capture's pace, in one cluster with a
//! collector. Probe B has no signalling and no microcloud lookups, so it can attribute a
//! G-PDU or End Marker only through the session events that probe A broadcasts.
//!
//! Timing: both probes wait for each other's bridge actor before reading, then replay at
//! speed 20 (591 s of packets in about 30 s). At that speed 1 ms of wall-clock delay is
//! 20 ms of packet time. Probe B holds a frame of an unknown tunnel for 60 s of packet
//! time (3 s of wall-clock time), which covers an event that reaches it late on a loaded
//! 2-core machine. The risk left is the opposite one: a remote delete or TEID reuse that
//! reaches B before B has read the last frames of the old tunnel.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::nodes::{cluster_section, poll_until, Node, COOKIE};
use common::split::write_plane_split;
use common::{data, read_pcap, truth, Frame, Pcap};
use redis_server::{free_port, RedisServer};

/// Generous bound on every wait; the replays take about 30 s.
const DEADLINE: Duration = Duration::from_secs(180);

/// A probe that replays `input` at speed 20 into the Redis microcloud at `url`, with
/// lookups off, after the other probe joined.
fn probe_config(name: &str, input: &Path, pcap_dir: &Path, url: &str, port: u16, seeds: &[u16]) -> String {
    format!(
        "[node]\nname = \"{name}\"\nroles = [\"probe\"]\n\n[microcloud]\nredis = \"{url}\"\n\n[probe]\ninputs = [\"{}\"]\nshards = 2\n\
         track_all = true\npcap_dir = \"{}\"\nreplay_speed = 20\nlate_grace = \"20s\"\nlookups = false\nwait_for_probes = 1\n\n{}",
        input.display(),
        pcap_dir.display(),
        cluster_section(port, seeds, "")
    )
}

fn collector_config(port: u16, url: &str, outdir: &Path) -> String {
    format!(
        "[node]\nname = \"collector\"\nroles = [\"collector\"]\n\n[microcloud]\nredis = \"{url}\"\n\n[report]\noutdir = \"{}\"\ninterval = \"1s\"\noffset = \"0s\"\n\n{}",
        outdir.display(),
        cluster_section(port, &[], "")
    )
}

/// Returns the user-plane frames the truth gives each IMSI: its frames minus its GTP-C
/// frames, as indices into small.pcap, mapped to the frames themselves.
fn expected_user_plane(pcap: &Pcap) -> BTreeMap<String, Vec<Frame>> {
    let truth = truth("small");
    let mut expected = BTreeMap::new();
    for subscriber in truth["subscribers"].as_array().unwrap() {
        let indices = |name: &str| -> BTreeSet<usize> { subscriber[name].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect() };
        let user: Vec<Frame> = indices("frames").difference(&indices("gtpc_frames")).map(|&i| pcap.frames[i].clone()).collect();
        if !user.is_empty() {
            expected.insert(subscriber["imsi"].as_str().unwrap().to_owned(), user);
        }
    }
    expected
}

/// Returns the frames of every pcap file in `dir`, by IMSI.
fn pcap_frames(dir: &Path) -> BTreeMap<String, Vec<Frame>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let imsi = path.file_stem().unwrap().to_string_lossy().into_owned();
        files.insert(imsi, read_pcap(&path).frames);
    }
    files
}

/// Returns the number before `label` on the summary's `cluster` line.
fn cluster_count(output: &str, label: &str) -> u64 {
    let line = output.lines().find(|line| line.starts_with("cluster ")).unwrap_or_else(|| panic!("no cluster line in the summary:\n{output}"));
    let before = line.split(label).next().unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    before.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count before {label:?} in {line:?}"))
}

#[test]
fn user_plane_bound_through_remote_events() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pcap = read_pcap(&data("gtpgen/small.pcap"));
    write_plane_split(&pcap, dir.path());
    let expected = expected_user_plane(&pcap);
    assert!(!expected.is_empty(), "the truth gives no IMSI a user-plane frame");

    let (collector_port, port_a, port_b) = (free_port(), free_port(), free_port());
    let collector = Node::start(dir.path(), "collector", &collector_config(collector_port, &server.url(), &dir.path().join("reports")), COOKIE);
    let probe_a = Node::start(dir.path(), "probe-a", &probe_config("probe-a", &dir.path().join("cp.pcap"), &dir.path().join("pcap-a"), &server.url(), port_a, &[collector_port]), COOKIE);
    let probe_b = Node::start(dir.path(), "probe-b", &probe_config("probe-b", &dir.path().join("up.pcap"), &dir.path().join("pcap-b"), &server.url(), port_b, &[collector_port, port_a]), COOKIE);
    let nodes = [&collector, &probe_a, &probe_b];
    poll_until("both probes to print their summary", DEADLINE, &nodes, || probe_a.output().contains("\ncluster ") && probe_b.output().contains("\ncluster "));

    let (summary_a, summary_b) = (probe_a.output(), probe_b.output());
    let context = format!("probe A:\n{summary_a}\nprobe B:\n{summary_b}");
    assert_eq!(cluster_count(&summary_b, "invalid payloads"), 0, "{context}");
    assert!(cluster_count(&summary_b, "events in") > 0, "probe B received no remote event: {context}");
    assert_eq!(cluster_count(&summary_b, "events in"), cluster_count(&summary_a, "events sent;"), "probe B received every event probe A sent: {context}");
    assert_eq!(cluster_count(&summary_b, "events sent;"), 0, "probe B has no signalling: {context}");
    assert_eq!(cluster_count(&summary_a, "events in"), 0, "probe A ignores its own events and B sends none: {context}");

    let written = pcap_frames(&dir.path().join("pcap-b"));
    let bound: usize = expected.values().map(Vec::len).sum();
    assert_eq!(cluster_count(&summary_b, "frames bound through remote events"), bound as u64, "{context}");
    assert_eq!(written.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "pcap files of probe B: {context}");
    for (imsi, frames) in &expected {
        let got = written.get(imsi).map_or(0, Vec::len);
        assert!(written.get(imsi) == Some(frames), "user-plane frames of {imsi}: {got} written, {} expected; {context}", frames.len());
    }
}
