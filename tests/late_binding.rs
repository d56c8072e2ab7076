//! Late binding on a capture edited from a synthetic set: a G-PDU placed before the response
//! that creates its tunnel is attributed when it waited less than the grace period, and is
//! unattributed otherwise, with any number of shards.

mod common;

use std::path::Path;

use common::{data, imsitrace, read_pcap, truth, Frame, Pcap};
use serde_json::Value;

/// Writes a classic microsecond pcap.
fn write_pcap(path: &Path, pcap: &Pcap) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&65535u32.to_le_bytes());
    bytes.extend_from_slice(&pcap.link_type.to_le_bytes());
    for frame in &pcap.frames {
        bytes.extend_from_slice(&((frame.ts_us / 1_000_000) as u32).to_le_bytes());
        bytes.extend_from_slice(&((frame.ts_us % 1_000_000) as u32).to_le_bytes());
        bytes.extend_from_slice(&(frame.data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&frame.orig_len.to_le_bytes());
        bytes.extend_from_slice(&frame.data);
    }
    std::fs::write(path, bytes).unwrap();
}

/// Returns the first G-PDU frame of a GTPv2 session whose TEIDs were never reused, and the
/// time its Create Session Response was sent.
fn first_gpdu(truth: &Value) -> (usize, u64) {
    let reused: Vec<u64> = truth["teid_reuse"].as_array().unwrap().iter().map(|r| r["teid"].as_u64().unwrap()).collect();
    for subscriber in truth["subscribers"].as_array().unwrap() {
        for session in subscriber["sessions"].as_array().unwrap() {
            let teids: Vec<u64> = session["teids"].as_object().unwrap().values().filter_map(Value::as_u64).collect();
            let frames = session["gtpu_frames"].as_array().unwrap();
            if session["gtp_version"] == 2 && !frames.is_empty() && teids.iter().all(|t| !reused.contains(t)) {
                let established_us = (session["established_ts"].as_f64().unwrap() * 1e6).round() as u64;
                return (frames[0].as_u64().unwrap() as usize, established_us);
            }
        }
    }
    panic!("no suitable session in the truth");
}

/// Runs analyze on small.pcap with a copy of one G-PDU moved to `before_us` ahead of its
/// tunnel's creation; returns the summaries for 1 and 4 shards.
fn run_with_copy(before_us: u64) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut pcap = read_pcap(&data("gtpgen/small.pcap"));
    let (index, established_us) = first_gpdu(&truth("small"));
    let copy = Frame { ts_us: established_us - before_us, ..pcap.frames[index].clone() };
    let at = pcap.frames.partition_point(|f| f.ts_us <= copy.ts_us);
    pcap.frames.insert(at, copy);
    let path = dir.path().join("edited.pcap");
    write_pcap(&path, &pcap);
    ["1", "4"]
        .iter()
        .map(|shards| {
            let output = imsitrace(&["analyze", path.to_str().unwrap(), "--json", "--shards", shards, "--late-grace", "2"]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect()
}

#[test]
fn gpdu_within_grace_late_bound() {
    for summary in run_with_copy(1_000_000) {
        assert_eq!(summary["user_plane"]["gpdu_late_bound"], 1, "shards {}", summary["shards"]);
        assert_eq!(summary["unattributed"]["gpdu_unknown_tunnel"], 440, "shards {}", summary["shards"]);
    }
}

#[test]
fn gpdu_past_grace_unattributed() {
    for summary in run_with_copy(3_000_000) {
        assert_eq!(summary["user_plane"]["gpdu_late_bound"], 0, "shards {}", summary["shards"]);
        assert_eq!(summary["unattributed"]["gpdu_unknown_tunnel"], 441, "shards {}", summary["shards"]);
    }
}
