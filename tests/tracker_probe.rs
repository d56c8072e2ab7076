//! Tracker files on probes, without a collector: both probes follow one IMSI through the
//! static `probe.trackers` of their configuration. Probe A replays the signalling of
//! `small.pcap` and probe B its user plane, at speed 20, in one cluster; B binds the user
//! plane through A's session events. The IMSI has two sessions with different TEIDs (an
//! attach, a delete and a re-attach), so each probe writes at least two files.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::nodes::{cluster_section, poll_until, Node, COOKIE};
use common::split::write_plane_split;
use common::{data, read_pcap, truth, Frame, Pcap};
use redis_server::{free_port, RedisServer};

/// Generous bound on every wait; a replay takes about 30 s.
const DEADLINE: Duration = Duration::from_secs(120);

/// The followed subscriber: two sessions in small.pcap, deleted and created again with
/// new TEIDs.
const IMSI: &str = "001015875979116";

/// Tracker identifier given to both probes.
const TRACKER: &str = "t-reattach";

/// A probe that replays `input` at speed 20 into the Redis microcloud at `url` and follows
/// [`IMSI`] with tracker [`TRACKER`], writing to `tracker_dir`.
fn probe_config(name: &str, input: &Path, tracker_dir: &Path, url: &str, lookups: bool, port: u16, seeds: &[u16]) -> String {
    format!(
        "[node]\nname = \"{name}\"\nroles = [\"probe\"]\n\n[microcloud]\nredis = \"{url}\"\n\n[probe]\ninputs = [\"{}\"]\nshards = 2\n\
         tracker_dir = \"{}\"\ntracker_flush = \"200ms\"\ntrackers = [{{ id = \"{TRACKER}\", imsi = \"{IMSI}\" }}]\n\
         replay_speed = 20\nlate_grace = \"20s\"\nlookups = {lookups}\nwait_for_probes = 1\n\n{}",
        input.display(),
        tracker_dir.display(),
        cluster_section(port, seeds, "")
    )
}

/// Returns the truth frames of [`IMSI`] as (packet time, bytes), sorted.
fn expected_frames(pcap: &Pcap) -> Vec<(u64, Vec<u8>)> {
    let truth = truth("small");
    let subscriber = truth["subscribers"].as_array().unwrap().iter().find(|s| s["imsi"] == IMSI).expect("the IMSI is in the truth");
    let sessions = subscriber["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "the truth shows a re-attach");
    let mut frames: Vec<(u64, Vec<u8>)> = subscriber["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &pcap.frames[i.as_u64().unwrap() as usize])
        .map(|frame| (frame.ts_us, frame.data.clone()))
        .collect();
    frames.sort();
    frames
}

/// Returns the frames of every file of the tracker in `tracker_dir`, by file name.
fn tracker_files(tracker_dir: &Path) -> BTreeMap<String, Vec<Frame>> {
    let dir = tracker_dir.join(TRACKER);
    let Ok(entries) = std::fs::read_dir(&dir) else { return BTreeMap::new() };
    entries
        .map(|entry| entry.unwrap().path())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), read_pcap(&path).frames))
        .collect()
}

/// Returns every frame of the files as (packet time, bytes), sorted, duplicates kept.
fn all_frames<'a>(files: impl Iterator<Item = &'a BTreeMap<String, Vec<Frame>>>) -> Vec<(u64, Vec<u8>)> {
    let mut frames: Vec<(u64, Vec<u8>)> = files.flat_map(|f| f.values().flatten()).map(|frame| (frame.ts_us, frame.data.clone())).collect();
    frames.sort();
    frames
}

/// Returns the frames of `frames` that appear more than once.
fn duplicates(frames: &[(u64, Vec<u8>)]) -> Vec<u64> {
    frames.windows(2).filter(|pair| pair[0] == pair[1]).map(|pair| pair[0].0).collect()
}

/// The test setup: a Redis server, the split capture and the truth.
struct Setup {
    server: RedisServer,
    dir: tempfile::TempDir,
    expected: Vec<(u64, Vec<u8>)>,
}

impl Setup {
    fn new() -> Setup {
        let server = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let pcap = read_pcap(&data("gtpgen/small.pcap"));
        write_plane_split(&pcap, dir.path());
        let expected = expected_frames(&pcap);
        Setup { server, dir, expected }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn union_of_probe_files_matches_truth() {
    let setup = Setup::new();
    let (port_a, port_b) = (free_port(), free_port());
    let url = setup.server.url();
    let config_a = probe_config("probe-a", &setup.path("cp.pcap"), &setup.path("trackers-a"), &url, false, port_a, &[]);
    let probe_a = Node::start(setup.dir.path(), "probe-a", &config_a, COOKIE);
    let config_b = probe_config("probe-b", &setup.path("up.pcap"), &setup.path("trackers-b"), &url, false, port_b, &[port_a]);
    let probe_b = Node::start(setup.dir.path(), "probe-b", &config_b, COOKIE);
    poll_until("both probes to finish their input", DEADLINE, &[&probe_a, &probe_b], || finished(&probe_a) && finished(&probe_b));

    let files_a = tracker_files(&setup.path("trackers-a"));
    let files_b = tracker_files(&setup.path("trackers-b"));
    let context = format!("files of A: {:?}\nfiles of B: {:?}\nlog of B:\n{}", files_a.keys(), files_b.keys(), probe_b.log());
    assert!(files_a.len() >= 2, "A writes one file per session: {context}");
    assert!(files_b.len() >= 2, "B writes one file per session: {context}");
    assert!(files_a.keys().chain(files_b.keys()).all(|name| name.ends_with(".pcap")), "{context}");

    let written = all_frames([&files_a, &files_b].into_iter());
    assert!(duplicates(&written).is_empty(), "no frame is written twice: {context}");
    let missing: BTreeSet<u64> = setup.expected.iter().filter(|f| !written.contains(f)).map(|f| f.0).collect();
    let extra: BTreeSet<u64> = written.iter().filter(|f| !setup.expected.contains(f)).map(|f| f.0).collect();
    assert!(missing.is_empty(), "truth frames missing from the tracker files at {missing:?}: {context}");
    assert!(extra.is_empty(), "frames of other subscribers at {extra:?}: {context}");
    assert_eq!(written.len(), setup.expected.len(), "{context}");

    for files in [&files_a, &files_b] {
        for frames in files.values() {
            assert!(frames.windows(2).all(|pair| pair[0].ts_us <= pair[1].ts_us), "frames of a file are in capture order: {context}");
        }
    }
}

#[test]
fn killed_probe_resumes_without_duplicates() {
    let setup = Setup::new();
    let (port_a, port_b) = (free_port(), free_port());
    let url = setup.server.url();
    let config_a = probe_config("probe-a", &setup.path("cp.pcap"), &setup.path("trackers-a"), &url, false, port_a, &[]);
    let probe_a = Node::start(setup.dir.path(), "probe-a", &config_a, COOKIE);
    // B asks the microcloud's tunnel index after its restart, because A's events of the
    // sessions created before it were broadcast while B was down.
    let config_b = probe_config("probe-b", &setup.path("up.pcap"), &setup.path("trackers-b"), &url, true, port_b, &[port_a]);
    let mut probe_b = Node::start(setup.dir.path(), "probe-b", &config_b, COOKIE);

    // Kill B once its first file holds flushed frames, well before the end of its replay.
    let has_frames = || tracker_files(&setup.path("trackers-b")).values().any(|frames| frames.len() >= 5);
    poll_until("probe B to flush tracker frames", DEADLINE, &[&probe_a, &probe_b], has_frames);
    probe_b.kill();
    assert!(!finished(&probe_b), "probe B was killed before the end of its input");
    let before = tracker_files(&setup.path("trackers-b"));

    let probe_b = Node::start(setup.dir.path(), "probe-b", &config_b, COOKIE);
    poll_until("both probes to finish their input", DEADLINE, &[&probe_a, &probe_b], || finished(&probe_a) && finished(&probe_b));

    let files_a = tracker_files(&setup.path("trackers-a"));
    let files_b = tracker_files(&setup.path("trackers-b"));
    let log_b = probe_b.log();
    let context = format!("files of B before the restart: {:?}\nfiles of B: {:?}\nlog of B:\n{log_b}", before.keys(), files_b.keys());
    assert!(files_b.len() > before.len(), "B starts new files after the restart: {context}");
    let written = all_frames([&files_a, &files_b].into_iter());
    assert!(duplicates(&written).is_empty(), "no frame is written twice across the files: {context}");
    let extra: BTreeSet<u64> = written.iter().filter(|f| !setup.expected.contains(f)).map(|f| f.0).collect();
    assert!(extra.is_empty(), "frames of other subscribers at {extra:?}: {context}");

    assert!(log_b.contains("tracker resumed after a restart"), "B records the restart: {context}");
    assert!(log_b.contains("probe restarted at"), "the gap line names the restart: {context}");
    let counts = log_b.lines().find(|line| line.contains("tracker counts at the end of the input")).unwrap_or_else(|| panic!("no counts line: {context}"));
    assert!(counts.contains("gaps=1"), "one gap in B's counts: {counts}");
    assert!(!counts.contains("skipped=0"), "B skips the frames it wrote before the kill: {counts}");
}

/// True once `probe` printed its summary, after the tracker files were flushed.
fn finished(probe: &Node) -> bool {
    probe.output().contains("\ncluster ")
}

