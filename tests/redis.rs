//! `imsitrace analyze --redis`: the same capture gives the same reports with the Redis
//! microcloud as with the embedded one, and an unreachable server stops the run.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::path::Path;

use common::{data, files_of, imsitrace};
use redis_server::{free_port, RedisServer};

/// Runs `analyze` on `input` with reports into `report_dir` and the extra arguments.
fn analyze_reports(input: &Path, report_dir: &Path, extra: &[&str]) {
    let mut args = vec!["analyze", input.to_str().unwrap(), "--json", "--report-dir", report_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = imsitrace(&args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn redis_reports_match_embedded() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let input = data("gtpgen/small.pcap");
    let embedded = dir.path().join("embedded");
    let redis = dir.path().join("redis");
    analyze_reports(&input, &embedded, &[]);
    analyze_reports(&input, &redis, &["--redis", &server.url()]);

    let expected = files_of(&embedded);
    assert!(!expected.is_empty(), "the embedded run wrote no report");
    assert_eq!(files_of(&redis), expected);
    // The Redis run read its buckets from the server: one epoch per report file.
    let epochs = server.command("ZCARD imsitrace:v1:epochs");
    assert_eq!(epochs.trim(), format!(":{}", expected.len()), "epochs stored in Redis");
}

#[test]
fn unreachable_redis_stops_run() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--redis", &url]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn redis_prefix_needs_redis() {
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--redis-prefix", "x:"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects the option");
}
