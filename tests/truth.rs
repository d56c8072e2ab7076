//! End-to-end checks against synthetic captures with an exact ground truth
//! (`tests/data/gtpgen/*.truth.json`, written by the gtpgen generator with the capture).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{analyze_all, data, frame_index, read_pcap, read_reports, truth};
use serde_json::Value;

/// Runs `analyze` on one set with an idle timeout of 90 s and no active timeout, the
/// flow definition of the truth, and checks every output against it.
fn check_set(name: &str, shards: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = data(&format!("gtpgen/{name}.pcap"));
    let args = ["--idle-timeout", "90", "--active-timeout", "0", "--shards", shards];
    let summary = analyze_all(&input, dir.path(), &args);
    let truth = truth(name);
    check_pcaps(&input, &dir.path().join("pcap"), &truth);
    check_reports(&dir.path().join("reports"), &truth);
    check_counts(&summary, &truth);
    check_events(&dir.path().join("events.jsonl"), &truth);
}

/// Checks that every subscriber's pcap contains exactly the truth's frames for that IMSI, in order.
fn check_pcaps(input: &Path, pcap_dir: &Path, truth: &Value) {
    let original = read_pcap(input);
    let index = frame_index(&original);
    let mut expected_files = BTreeSet::new();
    for subscriber in truth["subscribers"].as_array().unwrap() {
        let imsi = subscriber["imsi"].as_str().unwrap();
        let expected: Vec<usize> = subscriber["frames"].as_array().unwrap().iter().map(|f| f.as_u64().unwrap() as usize).collect();
        if expected.is_empty() {
            continue;
        }
        expected_files.insert(format!("{imsi}.pcap"));
        let written = read_pcap(&pcap_dir.join(format!("{imsi}.pcap")));
        assert_eq!(written.link_type, original.link_type, "IMSI {imsi}: link type");
        let got: Vec<usize> = written
            .frames
            .iter()
            .map(|f| *index.get(&(f.ts_us, f.data.clone())).unwrap_or_else(|| panic!("IMSI {imsi}: a written frame is not in the input")))
            .collect();
        assert_eq!(got, expected, "IMSI {imsi}: frames in its pcap");
    }
    check_tshark_reads(pcap_dir, &expected_files);
    let files: BTreeSet<String> = std::fs::read_dir(pcap_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, expected_files, "pcap files written");
}

/// Checks that tshark reads every written pcap to its end; skipped when tshark is not installed.
fn check_tshark_reads(pcap_dir: &Path, files: &BTreeSet<String>) {
    if std::process::Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark not found: skipping the tshark read check (scripts/setup.sh installs it)");
        return;
    }
    for name in files {
        let path = pcap_dir.join(name);
        let args = ["-r", path.to_str().unwrap(), "-T", "fields", "-e", "frame.number"];
        let output = std::process::Command::new("tshark").args(args).output().unwrap();
        assert!(output.status.success(), "tshark failed on {name}: {}", String::from_utf8_lossy(&output.stderr));
        let frames = String::from_utf8_lossy(&output.stdout).lines().count();
        assert_eq!(frames, read_pcap(&path).frames.len(), "{name}: frames read by tshark");
    }
}

/// (bucket start, IMSI, master protocol).
type BucketRow = (u64, String, String);
/// Packets, bytes, flows, duration in seconds, and the number of report rows summed.
type RowSums = (u64, u64, u64, u64, u64);

/// Checks that report rows summed by master protocol equal the truth's aggregates.
fn check_reports(report_dir: &Path, truth: &Value) {
    let mut ours: BTreeMap<BucketRow, RowSums> = BTreeMap::new();
    for row in read_reports(report_dir) {
        assert_eq!(row.granularity, 300, "granularity");
        let master = row.protocol.split('.').next().unwrap().to_string();
        let entry = ours.entry((row.epoch, row.imsi.clone(), master)).or_default();
        entry.0 += row.packets;
        entry.1 += row.bytes;
        entry.2 += row.flows;
        entry.3 += row.duration_s;
        entry.4 += 1;
    }
    let mut expected_keys = BTreeSet::new();
    for aggregate in truth["aggregates"].as_array().unwrap() {
        let key = (
            aggregate["bucket_start"].as_u64().unwrap(),
            aggregate["imsi"].as_str().unwrap().to_string(),
            aggregate["protocol"].as_str().unwrap().to_string(),
        );
        let Some(&(packets, bytes, flows, duration_s, rows)) = ours.get(&key) else { panic!("no report row for {key:?}") };
        assert_eq!(packets, aggregate["packets"].as_u64().unwrap(), "{key:?}: packets");
        assert_eq!(bytes, aggregate["bytes_inner_ip"].as_u64().unwrap(), "{key:?}: bytes");
        assert_eq!(flows, aggregate["flows"].as_u64().unwrap(), "{key:?}: flows");
        // Each report row rounds its summed duration down to whole seconds.
        let truth_duration = aggregate["flow_duration_s"].as_f64().unwrap();
        assert!(duration_s as f64 <= truth_duration + 1e-6, "{key:?}: duration {duration_s} > {truth_duration}");
        assert!(duration_s as f64 > truth_duration - rows as f64, "{key:?}: duration {duration_s} vs {truth_duration}");
        expected_keys.insert(key);
    }
    let extra: Vec<_> = ours.keys().filter(|k| !expected_keys.contains(*k)).collect();
    assert!(extra.is_empty(), "report rows the truth does not have: {extra:?}");
}

/// Checks that frame counts by kind and the unattributed total equal the truth's.
fn check_counts(summary: &Value, truth: &Value) {
    let counts = &truth["counts"];
    let capture = &summary["capture"];
    for (ours, theirs) in [("gtpv1c", "gtpv1c"), ("gtpv2c", "gtpv2c"), ("gtpu_gpdu", "gtpu_gpdu"), ("gtpu_end_marker", "gtpu_end_marker")] {
        assert_eq!(capture[ours], counts[theirs], "frame count {ours}");
    }
    let unattributed: u64 = summary["unattributed"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(unattributed, counts["frames_unattributed"].as_u64().unwrap(), "unattributed frames: {}", summary["unattributed"]);
    assert_eq!(summary["malformed"].as_object().unwrap().len(), 0, "malformed: {}", summary["malformed"]);
    assert_eq!(summary["control"]["subscribers_seen"], counts["subscribers"], "subscribers seen");
}

/// Checks that the event log has one attach per established session, one detach per session
/// deleted in the capture and one reject per failed attempt.
fn check_events(path: &Path, truth: &Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count() as u64;
    let subscribers = truth["subscribers"].as_array().unwrap();
    let sessions: usize = subscribers.iter().map(|s| s["sessions"].as_array().unwrap().len()).sum();
    let failed: usize = subscribers.iter().map(|s| s["failed_attempts"].as_array().unwrap().len()).sum();
    assert_eq!(count("attach"), sessions as u64, "attach events");
    assert_eq!(count("reject"), failed as u64, "reject events");
    let ended = subscribers.iter().flat_map(|s| s["sessions"].as_array().unwrap()).filter(|s| !s["end_ts"].is_null()).count();
    assert_eq!(count("detach"), ended as u64, "detach events");
    let imsis: BTreeSet<&str> = events.iter().map(|e| e["imsi"].as_str().unwrap()).collect();
    let expected: BTreeSet<&str> = truth["subscribers"].as_array().unwrap().iter().map(|s| s["imsi"].as_str().unwrap()).collect();
    assert_eq!(imsis, expected, "subscribers in the event log");
}

#[test]
fn small_set_matches_truth() {
    check_set("small", "2");
}

#[test]
fn ipv6_outer_set_matches_truth() {
    check_set("ipv6", "2");
}

#[test]
fn vlan_set_matches_truth() {
    check_set("vlan", "3");
}

/// Reads every output of a run: report rows, the event log, and each pcap file's bytes.
fn outputs_of(dir: &Path) -> (Vec<common::ReportRow>, Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let mut pcaps = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("pcap")).unwrap() {
        let path = entry.unwrap().path();
        pcaps.insert(path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap());
    }
    (read_reports(&dir.join("reports")), std::fs::read(dir.join("events.jsonl")).unwrap(), pcaps)
}

#[test]
fn outputs_identical_across_shard_counts() {
    for set in ["small", "ipv6", "vlan"] {
        let input = data(&format!("gtpgen/{set}.pcap"));
        let mut outputs = Vec::new();
        for shards in ["1", "2", "4"] {
            let dir = tempfile::tempdir().unwrap();
            analyze_all(&input, dir.path(), &["--shards", shards, "--batch-size", "64"]);
            outputs.push(outputs_of(dir.path()));
        }
        assert!(outputs[0] == outputs[1], "{set}: 1 shard and 2 shards differ");
        assert!(outputs[0] == outputs[2], "{set}: 1 shard and 4 shards differ");
    }
}
