//! `imsitrace config check`: the shipped examples pass, and each kind of bad value is
//! reported with its key and what to give, with exit status 1.

use std::path::Path;
use std::process::{Command, Output};

/// Path of a file under `docs/examples`.
fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples").join(name).display().to_string()
}

/// Runs `imsitrace config check FILE` with the extra environment variables.
fn check(file: &str, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imsitrace"))
        .args(["config", "check", file])
        .envs(env.iter().copied())
        .output()
        .expect("cannot run the imsitrace binary")
}

/// Writes `text` to `<dir>/node.toml` and returns its path.
fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("node.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Checks that `config check` rejects `text` with exactly the `problems` lines.
fn assert_rejected(text: &str, env: &[(&str, &str)], problems: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), text);
    let output = check(&path, env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "exit status; stderr: {stderr}");
    let noun = if problems.len() == 1 { "problem" } else { "problems" };
    let mut expected = format!("imsitrace: invalid configuration {path} ({} {noun}):\n", problems.len());
    for problem in problems {
        expected.push_str(&format!("  {problem}\n"));
    }
    assert_eq!(stderr, expected);
    assert!(output.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&output.stdout));
}

const COLLECTOR: &str = "[node]\nname = \"collector-a\"\nroles = [\"collector\"]\n\n\
                         [microcloud]\nredis = \"redis://127.0.0.1:7000/0\"\n\n[report]\noutdir = \"/tmp/reports\"\n";

#[test]
fn collector_example_valid() {
    let file = example("collector.toml");
    let output = check(&file, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let expected = format!(
        "configuration {file} is valid\n\
         node        name collector-1, roles collector, site dc-1, region north\n\
         microcloud  redis://127.0.0.1:6379/0, prefix imsitrace:, ntop_compat false, buffer 200000 items, retry_timeout 30s\n\
         report      outdir /var/lib/imsitrace/reports, interval 5m, offset 5s, lag 2, claim_ttl 1d, retention 1h, owner collector-1\n\
         probe       not used: node.roles has no probe\n\
         metrics     off: no [metrics] listen address\n"
    );
    assert_eq!(stdout, expected);
}

#[test]
fn probe_example_valid() {
    let output = check(&example("probe.toml"), &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("report      not used: node.roles has no collector\n"), "{stdout}");
    assert!(stdout.contains("probe       inputs /var/lib/imsitrace/captures, tracked 1,"), "{stdout}");
}

#[test]
fn unknown_key_named() {
    let text = format!("{COLLECTOR}intervall = \"5m\"\n");
    assert_rejected(&text, &[], &["report.intervall: unknown key; [report] takes outdir, interval, offset, lag, claim_ttl, retention"]);
}

#[test]
fn unknown_section_named() {
    let text = format!("{COLLECTOR}\n[clustre]\nlisten = \"127.0.0.1:4000\"\n");
    assert_rejected(&text, &[], &["clustre: unknown section; a node configuration has the sections node, microcloud, report, probe, cluster, tracker, metrics"]);
}

#[test]
fn bad_url_named() {
    let text = COLLECTOR.replace("redis://127.0.0.1:7000/0", "redis//127.0.0.1:7000");
    assert_rejected(
        &text,
        &[],
        &[
            "microcloud.redis: invalid Redis URL \"redis//127.0.0.1:7000\": no scheme; give redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0, or unix:///PATH/TO/SOCKET",
            // The collector then has no server to read from.
            "microcloud.redis: missing: the collector role reads the buckets from a Redis server; give its URL, e.g. redis://127.0.0.1:6379/0",
        ],
    );
}

#[test]
fn bad_role_named() {
    let text = COLLECTOR.replace("[\"collector\"]", "[\"collector\", \"aggregator\"]");
    assert_rejected(&text, &[], &["node.roles: invalid role \"aggregator\": give probe, collector or both"]);
}

#[test]
fn bad_duration_named() {
    let text = format!("{COLLECTOR}retention = \"1 hour\"\n");
    assert_rejected(
        &text,
        &[],
        &["report.retention: invalid duration \"1 hour\": give a whole number with a unit ms, s, m, h or d, e.g. \"300s\" or \"5m\""],
    );
}

#[test]
fn collector_without_outdir() {
    let text = COLLECTOR.replace("outdir = \"/tmp/reports\"\n", "");
    assert_rejected(&text, &[], &["report.outdir: missing: the collector role writes its reports there; give a directory"]);
}

#[test]
fn every_problem_at_once() {
    let text = "[node]\nroles = [\"collector\"]\nname = \"a b\"\n\n[report]\ninterval = \"7s\"\nlag = 0\n";
    assert_rejected(
        text,
        &[],
        &[
            "node.name: invalid node name \"a b\": give 1 to 64 letters, digits or . _ : -",
            "report.interval: invalid interval 7s: give whole seconds that divide 300s or are a multiple of it, e.g. 1s, 60s, 5m or 10m",
            "report.lag: invalid value 0: give a whole number from 1 to 288",
            "microcloud.redis: missing: the collector role reads the buckets from a Redis server; give its URL, e.g. redis://127.0.0.1:6379/0",
            "report.outdir: missing: the collector role writes its reports there; give a directory",
        ],
    );
}

#[test]
fn env_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), COLLECTOR);
    let env = [
        ("IMSITRACE_REPORT__LAG", "3"),
        ("IMSITRACE_MICROCLOUD__REDIS", "redis://user:secret@127.0.0.1:7001/1"),
        ("IMSITRACE_NODE__NAME", "collector-b"),
    ];
    let output = check(&path, &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("node        name collector-b, roles collector,"), "{stdout}");
    assert!(stdout.contains("microcloud  redis://user:***@127.0.0.1:7001/1, prefix imsitrace:,"), "{stdout}");
    assert!(stdout.contains(", lag 3, "), "{stdout}");
    assert!(!stdout.contains("secret"), "the password is printed: {stdout}");
}

#[test]
fn env_problem_names_variable() {
    assert_rejected(
        COLLECTOR,
        &[("IMSITRACE_REPORT__INTERVAL", "5"), ("IMSITRACE_REPORT__OWNER", "x")],
        &[
            "report.interval (environment variable IMSITRACE_REPORT__INTERVAL): invalid duration \"5\": give a whole number with a unit ms, s, m, h or d, e.g. \"300s\" or \"5m\"",
            "report.owner (environment variable IMSITRACE_REPORT__OWNER): unknown key; [report] takes outdir, interval, offset, lag, claim_ttl, retention",
        ],
    );
}

#[test]
fn missing_file_named() {
    let output = check("/nonexistent/node.toml", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "imsitrace: cannot read the configuration file /nonexistent/node.toml: No such file or directory (os error 2)\n"
    );
}
