//! Late binding through the microcloud's tunnel index: the signalling of `small.pcap` is
//! analyzed at site A and its user plane at site B, both on one `redis-server`. Site B has
//! no signalling at all, so each of its G-PDUs and End Markers can only be attributed by
//! asking the index who owns its tunnel.
//!
//! The expected attribution comes from the index itself, read after the site-A run: a
//! user-plane frame belongs to IMSI X exactly when `P tunnel:<destination>:<TEID>` names
//! X. The index keeps the last owner of every tunnel that was live at the end of the
//! capture, so frames of deleted sessions stay unattributed and frames of a reused TEID go
//! to its last owner.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use common::split::{write_pcap, GTPC_PORT, GTPU_PORT};
use common::{data, imsitrace, read_pcap, Frame, Pcap};
use redis_server::{free_port, RedisServer};
use serde_json::Value;

/// GTP-U message types (TS 29.281 §6.1).
const G_PDU: u8 = 255;
const END_MARKER: u8 = 254;

/// The fields of a GTP-U frame that decide its attribution.
struct UserFrame {
    frame: Frame,
    message_type: u8,
    /// Outer destination address and TEID: the tunnel key.
    dst: Ipv4Addr,
    teid: u32,
}

/// Returns the UDP destination port and payload of an Ethernet/IPv4/UDP frame. small.pcap
/// has only such frames, untagged and unfragmented; anything else fails the test.
fn udp_payload(frame: &Frame) -> (u16, Ipv4Addr, &[u8]) {
    let bytes = &frame.data;
    assert_eq!(&bytes[12..14], &[0x08, 0x00], "frame at {} µs is not untagged IPv4", frame.ts_us);
    let ip = &bytes[14..];
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    assert_eq!(ip[9], 17, "frame at {} µs is not UDP", frame.ts_us);
    assert_eq!(u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff, 0, "frame at {} µs is a fragment", frame.ts_us);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &ip[header_len..];
    (u16::from_be_bytes([udp[2], udp[3]]), dst, &udp[8..])
}

/// Splits a capture into its GTP-C frames and its GTP-U frames, by UDP port.
fn split(pcap: &Pcap) -> (Vec<Frame>, Vec<UserFrame>) {
    let mut control = Vec::new();
    let mut user = Vec::new();
    for frame in &pcap.frames {
        let (port, dst, gtp) = udp_payload(frame);
        match port {
            GTPC_PORT => control.push(frame.clone()),
            GTPU_PORT => {
                let teid = u32::from_be_bytes([gtp[4], gtp[5], gtp[6], gtp[7]]);
                user.push(UserFrame { frame: frame.clone(), message_type: gtp[1], dst, teid });
            }
            other => panic!("frame at {} µs goes to UDP port {other}", frame.ts_us),
        }
    }
    (control, user)
}

/// Returns the IMSI that the tunnel index names for (`dst`, `teid`), read with GET.
fn index_owner(server: &RedisServer, dst: Ipv4Addr, teid: u32) -> Option<String> {
    let reply = server.command(&format!("GET imsitrace:v1:tunnel:{dst}:{teid}"));
    if reply == "$-1\r\n" {
        return None;
    }
    let (length, rest) = reply.strip_prefix('$').and_then(|r| r.split_once("\r\n")).unwrap_or_else(|| panic!("unexpected GET reply {reply:?}"));
    let length: usize = length.parse().unwrap_or_else(|_| panic!("unexpected GET reply {reply:?}"));
    Some(rest[..length].to_owned())
}

/// Runs `imsitrace analyze` with `args` and returns the JSON summary.
fn analyze_json(args: &[&str]) -> Value {
    let output = imsitrace(args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the --json summary is not JSON")
}

/// What site B should attribute, derived from the index.
#[derive(Default)]
struct Expected {
    /// Frames of each IMSI, in capture order.
    frames: BTreeMap<String, Vec<Frame>>,
    gpdu_attributed: u64,
    gpdu_unknown: u64,
    end_marker_attributed: u64,
    end_marker_unknown: u64,
    /// Distinct tunnel keys of held frames that the index names, and that it does not.
    keys_found: BTreeSet<(Ipv4Addr, u32)>,
    keys_missing: BTreeSet<(Ipv4Addr, u32)>,
}

fn expected_attribution(server: &RedisServer, user: &[UserFrame]) -> Expected {
    let mut owners: BTreeMap<(Ipv4Addr, u32), Option<String>> = BTreeMap::new();
    let mut expected = Expected::default();
    for frame in user.iter().filter(|f| f.message_type == G_PDU || f.message_type == END_MARKER) {
        assert_ne!(frame.teid, 0, "small.pcap has no G-PDU or End Marker on TEID 0");
        let key = (frame.dst, frame.teid);
        let owner = owners.entry(key).or_insert_with(|| index_owner(server, frame.dst, frame.teid)).clone();
        let is_gpdu = frame.message_type == G_PDU;
        match owner {
            Some(imsi) => {
                expected.keys_found.insert(key);
                expected.frames.entry(imsi).or_default().push(frame.frame.clone());
                if is_gpdu { expected.gpdu_attributed += 1 } else { expected.end_marker_attributed += 1 }
            }
            None => {
                expected.keys_missing.insert(key);
                if is_gpdu { expected.gpdu_unknown += 1 } else { expected.end_marker_unknown += 1 }
            }
        }
    }
    expected
}

/// Writes the control-only and user-only captures into `dir`; returns the user frames.
fn write_split(dir: &Path) -> Vec<UserFrame> {
    let pcap = read_pcap(&data("gtpgen/small.pcap"));
    let (control, user) = split(&pcap);
    let user_frames: Vec<Frame> = user.iter().map(|f| f.frame.clone()).collect();
    write_pcap(&dir.join("cp.pcap"), pcap.link_type, &control.iter().collect::<Vec<_>>());
    write_pcap(&dir.join("up.pcap"), pcap.link_type, &user_frames.iter().collect::<Vec<_>>());
    user
}

/// Analyzes the control-only capture at site A with `server` as its microcloud.
fn analyze_site_a(server: &RedisServer, dir: &Path) {
    let cp = dir.join("cp.pcap");
    let summary = analyze_json(&["analyze", cp.to_str().unwrap(), "--redis", &server.url(), "--site", "a", "--json"]);
    assert_eq!(summary["user_plane"]["gpdu_attributed"], 0, "the control-only capture has no G-PDU");
    assert!(summary["control"]["events"].as_u64().unwrap() > 0, "site A saw no session event");
}

/// Returns the frames of every pcap file in `dir`, by IMSI.
fn pcap_frames(dir: &Path) -> BTreeMap<String, Vec<Frame>> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries {
        let path = entry.unwrap().path();
        let imsi = path.file_stem().unwrap().to_string_lossy().into_owned();
        files.insert(imsi, read_pcap(&path).frames);
    }
    files
}

#[test]
fn user_plane_bound_through_index() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let user = write_split(dir.path());
    analyze_site_a(&server, dir.path());
    let expected = expected_attribution(&server, &user);
    assert!(expected.gpdu_attributed > 0, "the index names no tunnel of the user plane");
    assert!(expected.gpdu_unknown > 0, "every G-PDU has an owner: the unattributed path is not exercised");

    let up = dir.path().join("up.pcap");
    // Shard counts and batch sizes vary how the frames interleave with lookup results.
    for (shards, batch_size) in [("1", "1024"), ("2", "16"), ("4", "3")] {
        let pcap_dir = dir.path().join(format!("pcap-{shards}"));
        let args = ["analyze", up.to_str().unwrap(), "--redis", &server.url(), "--site", "b", "--track-all", "--pcap-dir", pcap_dir.to_str().unwrap(), "--json", "--shards", shards, "--batch-size", batch_size];
        let summary = analyze_json(&args);
        let context = format!("{shards} shard(s), batches of {batch_size}");

        let written = pcap_frames(&pcap_dir);
        assert_eq!(written.keys().collect::<Vec<_>>(), expected.frames.keys().collect::<Vec<_>>(), "pcap files, {context}");
        for (imsi, frames) in &expected.frames {
            assert!(written.get(imsi) == Some(frames), "frames of {imsi}, {context}");
        }

        let user_plane = &summary["user_plane"];
        assert_eq!(user_plane["gpdu_attributed"], expected.gpdu_attributed, "{context}");
        assert_eq!(user_plane["end_marker_attributed"], expected.end_marker_attributed, "{context}");
        assert_eq!(user_plane["microcloud_bound"], expected.gpdu_attributed + expected.end_marker_attributed, "{context}");
        assert_eq!(user_plane["gpdu_unknown_tunnel"], expected.gpdu_unknown, "{context}");
        assert_eq!(user_plane["end_marker_unknown_tunnel"], expected.end_marker_unknown, "{context}");
        assert_eq!(user_plane["lookup_owners_ignored"], 0, "site B has no signalling, {context}");

        // The caches start empty, so every distinct key is read at least once; how often
        // a key is read again depends on wall-clock TTLs.
        let lookups = &summary["lookups"];
        let count = |name: &str| lookups[name].as_u64().unwrap_or_else(|| panic!("lookups.{name} missing, {context}"));
        assert_eq!(count("errors"), 0, "{context}");
        assert_eq!(count("keys_queried"), count("found") + count("not_found"), "{context}");
        assert!(count("found") >= expected.keys_found.len() as u64, "found {}, {context}", count("found"));
        assert!(count("not_found") >= expected.keys_missing.len() as u64, "not found {}, {context}", count("not_found"));
        assert!(count("requests") >= (expected.keys_found.len() + expected.keys_missing.len()) as u64, "{context}");
    }
}

#[test]
fn no_redis_lookup_attributes_nothing() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let user = write_split(dir.path());
    analyze_site_a(&server, dir.path());
    let gpdus = user.iter().filter(|f| f.message_type == G_PDU).count() as u64;

    let up = dir.path().join("up.pcap");
    let pcap_dir = dir.path().join("pcap");
    let summary = analyze_json(&["analyze", up.to_str().unwrap(), "--redis", &server.url(), "--site", "b", "--no-redis-lookup", "--track-all", "--pcap-dir", pcap_dir.to_str().unwrap(), "--json"]);
    assert_eq!(summary["user_plane"]["gpdu_attributed"], 0);
    assert_eq!(summary["user_plane"]["gpdu_unknown_tunnel"], gpdus);
    assert_eq!(summary["user_plane"]["microcloud_bound"], 0);
    assert_eq!(summary["user_plane"]["lookup_requests"], 0);
    assert!(summary["lookups"].is_null(), "no lookup actor ran");
    assert!(pcap_frames(&pcap_dir).is_empty(), "no pcap file is written");
}

#[test]
fn no_redis_lookup_needs_redis() {
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--no-redis-lookup"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects the option");
}

#[test]
fn negative_ttl_out_of_range_rejected() {
    let input = data("gtpgen/small.pcap");
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--redis", &url, "--redis-lookup-negative-ttl", "-1"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value -1 for --redis-lookup-negative-ttl"), "{stderr}");
}
