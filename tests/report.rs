//! `imsitrace report` against a real redis-server: the reports it writes from the buckets of
//! `analyze --redis` match those of `analyze --report-dir` with the embedded microcloud, and
//! of two runs that report one bucket at the same time, exactly one writes the file.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{data, files_of, imsitrace};
use redis_server::{free_port, RedisServer};

/// Runs `analyze` on the small synthetic capture with the extra arguments.
fn analyze(extra: &[&str]) {
    let input = data("gtpgen/small.pcap");
    let mut args = vec!["analyze", input.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let output = imsitrace(&args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Returns the arguments of `report` for the server, epoch, output directory and owner.
fn report_args<'a>(url: &'a str, epoch: &'a str, outdir: &'a Path, owner: &'a str) -> Vec<&'a str> {
    vec!["report", "--redis", url, "--epoch", epoch, "--outdir", outdir.to_str().unwrap(), "--owner", owner]
}

/// Runs `report` and checks that it exits with status 0. Returns its stdout.
fn report(url: &str, epoch: &str, outdir: &Path, owner: &str) -> String {
    let output = imsitrace(&report_args(url, epoch, outdir, owner));
    succeeded(output)
}

fn succeeded(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "imsitrace report failed: {stderr}");
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Starts one `report` run per owner at once, each into its own directory under `dir`, and
/// returns their stdout in the order of `owners`.
fn report_concurrently(url: &str, epoch: &str, dir: &Path, owners: &[&str]) -> Vec<String> {
    let children: Vec<_> = owners
        .iter()
        .map(|owner| {
            Command::new(env!("CARGO_BIN_EXE_imsitrace"))
                .args(report_args(url, epoch, &dir.join(owner), owner))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cannot run the imsitrace binary")
        })
        .collect();
    children.into_iter().map(|child| succeeded(child.wait_with_output().expect("wait for report"))).collect()
}

/// Writes the embedded reports of the small capture into `dir` and returns them.
fn embedded_reports(dir: &Path) -> Vec<(String, String)> {
    analyze(&["--report-dir", dir.to_str().unwrap()]);
    let files = files_of(dir);
    assert!(files.len() >= 2, "the embedded run wrote {} reports", files.len());
    files
}

#[test]
fn report_all_matches_embedded() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let expected = embedded_reports(&dir.path().join("embedded"));
    analyze(&["--redis", &url]);

    let outdir = dir.path().join("report");
    let stdout = report(&url, "all", &outdir, "collector-a");
    assert_eq!(files_of(&outdir), expected);
    assert_eq!(stdout.lines().filter(|line| line.starts_with("wrote ")).count(), expected.len(), "{stdout}");
    let epoch = expected[0].0.trim_end_matches(".imsi");
    let claim = server.command(&format!("GET imsitrace:v1:report:{epoch}"));
    assert!(claim.contains("collector-a"), "claim {claim:?}");
}

#[test]
fn concurrent_reports_write_once() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let expected = embedded_reports(&dir.path().join("embedded"));
    analyze(&["--redis", &url]);

    let outputs = report_concurrently(&url, "all", dir.path(), &["collector-a", "collector-b"]);
    let written_a = files_of(&dir.path().join("collector-a"));
    let written_b = files_of(&dir.path().join("collector-b"));
    for (name, _) in &written_a {
        assert!(!written_b.iter().any(|(other, _)| other == name), "{name} written by both runs");
    }
    let mut union: Vec<_> = written_a.iter().chain(&written_b).cloned().collect();
    union.sort();
    assert_eq!(union, expected);
    let taken_by_b = outputs[0].matches("claimed by collector-b").count();
    let taken_by_a = outputs[1].matches("claimed by collector-a").count();
    assert_eq!(taken_by_b, written_b.len(), "run a: {}", outputs[0]);
    assert_eq!(taken_by_a, written_a.len(), "run b: {}", outputs[1]);
}

#[test]
fn one_epoch_claimed_once_per_race() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let expected = embedded_reports(&dir.path().join("embedded"));
    analyze(&["--redis", &url]);
    let (name, contents) = &expected[0];
    let epoch = name.trim_end_matches(".imsi");

    for round in 0..5 {
        let round_dir = dir.path().join(format!("round-{round}"));
        server.command(&format!("DEL imsitrace:v1:report:{epoch}"));
        let outputs = report_concurrently(&url, epoch, &round_dir, &["collector-a", "collector-b"]);
        let written: Vec<_> = ["collector-a", "collector-b"]
            .iter()
            .flat_map(|owner| files_of(&round_dir.join(owner)))
            .collect();
        assert_eq!(written, vec![(name.clone(), contents.clone())], "round {round}");
        let taken = outputs.iter().filter(|stdout| stdout.contains("not written: its report is claimed by collector-")).count();
        assert_eq!(taken, 1, "round {round}: {outputs:?}");
    }

    // A third owner after the race finds the claim and writes nothing.
    let late = dir.path().join("late");
    let stdout = report(&url, epoch, &late, "collector-c");
    assert!(stdout.contains(&format!("bucket {epoch} not written: its report is claimed by collector-")), "{stdout}");
    assert!(files_of(&late).is_empty());
}

#[test]
fn rerun_by_owner_rewrites() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    analyze(&["--redis", &url]);
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    report(&url, "all", &first, "collector-a");

    let stdout = report(&url, "all", &second, "collector-a");
    assert!(!stdout.contains("claimed by"), "{stdout}");
    assert_eq!(files_of(&second), files_of(&first));
}

#[test]
fn empty_bucket_not_written() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let stdout = report(&server.url(), "300", dir.path(), "collector-a");
    assert!(stdout.contains("bucket 300 not written: no rows are stored for it"), "{stdout}");
    assert!(files_of(dir.path()).is_empty());
    // The claim of an empty bucket is released, so a later run can report it.
    assert_eq!(server.command("EXISTS imsitrace:v1:report:300").trim(), ":0");

    let stdout = report(&server.url(), "all", dir.path(), "collector-a");
    assert!(stdout.contains("no bucket is stored under the prefix imsitrace:"), "{stdout}");
}

#[test]
fn relative_epoch_on_command_line() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let stdout = report(&server.url(), "-2", dir.path(), "collector-a");
    let epoch: u64 = stdout
        .strip_prefix("bucket ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no bucket number in {stdout:?}"));
    assert_eq!(epoch % 300, 0, "{epoch}");
    let current = now - now % 300;
    // The run may start in the bucket after the one current when `now` was read.
    assert!(epoch == current - 600 || epoch == current - 300, "epoch {epoch}, current bucket {current}");
}

#[test]
fn retention_zero_deletes_bucket() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    analyze(&["--redis", &url]);
    let epochs = server.command("ZRANGE imsitrace:v1:epochs 0 0");
    let epoch = epochs.lines().nth(2).expect("one epoch in the ZRANGE reply").to_owned();

    let mut args = report_args(&url, &epoch, dir.path(), "collector-a");
    args.extend_from_slice(&["--retention", "0"]);
    succeeded(imsitrace(&args));
    assert_eq!(files_of(dir.path()).len(), 1);
    assert_eq!(server.command(&format!("EXISTS imsitrace:v1:bucket:{epoch}")).trim(), ":0");
    assert_eq!(server.command(&format!("ZSCORE imsitrace:v1:epochs {epoch}")).trim(), "$-1");
}

#[test]
fn invalid_epoch_named() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let dir = tempfile::tempdir().unwrap();
    for epoch in ["1374938101", "yesterday", "-x"] {
        let output = imsitrace(&report_args(&url, epoch, dir.path(), "collector-a"));
        assert_eq!(output.status.code(), Some(2), "clap rejects --epoch {epoch}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(epoch), "{stderr}");
    }
}

#[test]
fn unreachable_redis_fails() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let dir = tempfile::tempdir().unwrap();
    let output = imsitrace(&report_args(&url, "prev", dir.path(), "collector-a"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
