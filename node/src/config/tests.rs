//! Tests of reading configuration files with environment variables given as a map.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::schema::{MicrocloudSection, ProbeSection, ReportSection, Roles};
use super::*;

/// Writes `text` to a temporary file and loads it with the variables of `env` only.
fn load_text(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).expect("write the configuration");
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    load_with_env(&path, Some(env))
}

/// Returns the problems of an invalid configuration, as printed.
fn problems(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    match load_text(text, env) {
        Err(ConfigError::Invalid { problems, .. }) => problems.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("expected invalid values, got {other}"),
        Ok(config) => panic!("expected problems, got {config:?}"),
    }
}

const COLLECTOR: &str = r#"
[node]
name = "collector-a"
roles = ["collector"]

[microcloud]
redis = "redis://127.0.0.1:7000/0"

[report]
outdir = "/tmp/reports"
"#;

#[test]
fn collector_defaults_applied() {
    let config = load_text(COLLECTOR, &[]).expect("valid");
    assert_eq!(config.node.name, "collector-a");
    assert_eq!(config.node.roles, Roles { probe: false, collector: true });
    assert_eq!(config.node.site, "local");
    assert_eq!(config.node.region, None);
    let microcloud = MicrocloudSection {
        redis: Some("redis://127.0.0.1:7000/0".into()),
        prefix: "imsitrace:".into(),
        ntop_compat: false,
        buffer: 200_000,
        retry_timeout: Duration::from_secs(30),
    };
    assert_eq!(config.microcloud, microcloud);
    let report = ReportSection {
        outdir: Some(PathBuf::from("/tmp/reports")),
        interval: Duration::from_secs(300),
        offset: Duration::from_secs(5),
        lag: 2,
        claim_ttl: Duration::from_secs(86_400),
        retention: Duration::from_secs(3_600),
    };
    assert_eq!(config.report, report);
}

#[test]
fn probe_keys_read() {
    let text = r#"
[node]
roles = ["probe"]
site = "site-a"
region = "north"

[probe]
inputs = ["a.pcap", "captures/"]
pcap_dir = "pcap"
track = ["001010000000001"]
report_dir = "reports"
events = "events.jsonl"
shards = 2
batch_size = 256
max_open_files = 16
idle_timeout = "60s"
active_timeout = "0s"
late_grace = "1500ms"
replay_speed = 2.5
"#;
    let config = load_text(text, &[]).expect("valid");
    let probe = ProbeSection {
        inputs: vec![PathBuf::from("a.pcap"), PathBuf::from("captures/")],
        live: None,
        pcap_dir: Some(PathBuf::from("pcap")),
        track: vec!["001010000000001".into()],
        track_all: false,
        tracker_dir: PathBuf::from("trackers"),
        tracker_flush: Duration::from_secs(1),
        trackers: Vec::new(),
        report_dir: Some(PathBuf::from("reports")),
        events: Some(PathBuf::from("events.jsonl")),
        shards: Some(2),
        batch_size: 256,
        max_open_files: 16,
        idle_timeout: Duration::from_secs(60),
        active_timeout: Duration::ZERO,
        late_grace: Duration::from_millis(1_500),
        replay_speed: 2.5,
        lookups: true,
        wait_for_probes: 0,
    };
    assert_eq!(config.probe, probe);
    assert_eq!(config.node.region.as_deref(), Some("north"));
    assert_eq!(config.microcloud.redis, None, "embedded microcloud");
}

#[test]
fn env_overrides_file() {
    let env = [
        ("IMSITRACE_REPORT__LAG", "3"),
        ("IMSITRACE_REPORT__CLAIM_TTL", "2h"),
        ("IMSITRACE_NODE__ROLES", "probe, collector"),
        ("IMSITRACE_PROBE__INPUTS", "a.pcap,b.pcap"),
        ("IMSITRACE_MICROCLOUD__NTOP_COMPAT", "true"),
        ("OTHER_VARIABLE", "ignored"),
    ];
    let config = load_text(COLLECTOR, &env).expect("valid");
    assert_eq!(config.report.lag, 3);
    assert_eq!(config.report.claim_ttl, Duration::from_secs(7_200));
    assert_eq!(config.node.roles, Roles { probe: true, collector: true });
    assert_eq!(config.probe.inputs, vec![PathBuf::from("a.pcap"), PathBuf::from("b.pcap")]);
    assert!(config.microcloud.ntop_compat);
}

#[test]
fn env_problem_names_variable() {
    let env = [("IMSITRACE_REPORT__INTERVAL", "soon"), ("IMSITRACE_REPORT__INTERVL", "5m")];
    let expected = [
        "report.interval (environment variable IMSITRACE_REPORT__INTERVAL): invalid duration \"soon\": give a whole number with a unit ms, s, m, h or d, e.g. \"300s\" or \"5m\"",
        "report.intervl (environment variable IMSITRACE_REPORT__INTERVL): unknown key; [report] takes outdir, interval, offset, lag, claim_ttl, retention",
    ];
    assert_eq!(problems(COLLECTOR, &env), expected);
}

#[test]
fn every_problem_listed() {
    let text = r#"
[node]
nmae = "x"
roles = ["probe", "colector"]

[microcloud]
redis = "http://127.0.0.1:7000"
buffer = -1

[report]
interval = 300
offset = "10m"
lag = 0

[probe]
track = ["12"]

[cluster]
seeds = ["a"]
"#;
    let expected = [
        "node.roles: invalid role \"colector\": give probe, collector or both",
        "node.nmae: unknown key; [node] takes name, roles, site, region",
        "microcloud.redis: invalid Redis URL \"http://127.0.0.1:7000\": unsupported scheme \"http\"; give redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0, or unix:///PATH/TO/SOCKET",
        "microcloud.buffer: invalid value -1: give a whole number from 0 to 100000000",
        "report.interval: expected a duration string with a unit, e.g. \"300s\" or \"5m\", found 300",
        "report.offset: invalid offset 10m: give less than report.interval (5m)",
        "report.lag: invalid value 0: give a whole number from 1 to 288",
        "probe.track: invalid IMSI \"12\": give 5 to 15 decimal digits",
        "probe.pcap_dir: missing: probe.track and probe.track_all need a directory for the pcap files",
        "cluster.seeds: invalid seed \"a\": no port; give HOST:PORT, e.g. 10.0.0.1:7470",
        "cluster.cookie: missing: give the cluster's shared secret in the environment variable IMSITRACE_CLUSTER__COOKIE or in a file named by cluster.cookie_file",
    ];
    assert_eq!(problems(text, &[]), expected);
}

#[test]
fn role_needs_listed() {
    let text = "[node]\nroles = [\"probe\", \"collector\"]\n[microcloud]\nntop_compat = true\n";
    let expected = [
        "microcloud.redis: missing: the collector role reads the buckets from a Redis server; give its URL, e.g. redis://127.0.0.1:6379/0",
        "report.outdir: missing: the collector role writes its reports there; give a directory",
        "probe.inputs: missing: the probe role reads capture files or directories (probe.inputs) or captures live on network interfaces (probe.interfaces); give one of them",
        "microcloud.ntop_compat: needs microcloud.redis: ntop's key layout is written to a Redis server",
    ];
    assert_eq!(problems(text, &[]), expected);
}

#[test]
fn missing_roles_reported() {
    assert_eq!(
        problems("[node]\nname = \"a b\"\n", &[]),
        [
            "node.name: invalid node name \"a b\": give 1 to 64 letters, digits or . _ : -",
            "node.roles: missing: give the roles of the node, e.g. roles = [\"collector\"] or [\"probe\", \"collector\"]",
        ]
    );
}

#[test]
fn interval_must_fit_buckets() {
    let text = format!("{COLLECTOR}interval = \"7s\"\noffset = \"0s\"\n");
    assert_eq!(
        problems(&text, &[]),
        ["report.interval: invalid interval 7s: give whole seconds that divide 300s or are a multiple of it, e.g. 1s, 60s, 5m or 10m"]
    );
    for interval in ["1s", "60s", "150s", "5m", "10m", "1h"] {
        let text = format!("{COLLECTOR}interval = \"{interval}\"\noffset = \"0s\"\n");
        assert!(load_text(&text, &[]).is_ok(), "interval {interval}");
    }
}

#[test]
fn ttl_needs_whole_seconds() {
    let text = format!("{COLLECTOR}claim_ttl = \"0s\"\nretention = \"1500ms\"\n");
    assert_eq!(
        problems(&text, &[]),
        [
            "report.claim_ttl: invalid value 0s: give whole seconds, at least 1s",
            "report.retention: invalid value 1500ms: give whole seconds, at least 0s",
        ]
    );
}

#[test]
fn invalid_toml_is_unreadable() {
    match load_text("[node\nroles = 1", &[]) {
        Err(ConfigError::Unreadable { reason, .. }) => assert!(reason.contains("TOML parse error"), "{reason}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn missing_file_is_unreadable() {
    let error = load(std::path::Path::new("/nonexistent/node.toml")).expect_err("no file");
    assert_eq!(
        error.to_string(),
        "cannot read the configuration file /nonexistent/node.toml: No such file or directory (os error 2)"
    );
}

#[test]
fn replay_speed_checked() {
    let probe = "[node]\nroles = [\"probe\"]\n[probe]\ninputs = [\"a.pcap\"]\n";
    assert_eq!(load_text(probe, &[]).expect("valid").probe.replay_speed, 0.0, "default");
    let from_env = load_text(probe, &[("IMSITRACE_PROBE__REPLAY_SPEED", "0.01")]).expect("valid");
    assert_eq!(from_env.probe.replay_speed, 0.01);

    let hint = "give 0 to read as fast as possible, 1 for the capture's own pace, or another factor up to 1000000 (10 is ten times faster)";
    let cases = [
        ("-1", format!("probe.replay_speed: invalid value -1: {hint}")),
        ("nan", format!("probe.replay_speed: invalid value NaN: {hint}")),
        ("inf", format!("probe.replay_speed: invalid value inf: {hint}")),
        ("2e6", format!("probe.replay_speed: invalid value 2000000: {hint}")),
        ("\"fast\"", "probe.replay_speed: expected a number such as 1 or 2.5, found \"fast\"".to_owned()),
    ];
    for (value, expected) in cases {
        let text = format!("{probe}replay_speed = {value}\n");
        assert_eq!(problems(&text, &[]), [expected], "replay_speed = {value}");
    }
}

#[test]
fn metrics_listen_read() {
    assert_eq!(load_text(COLLECTOR, &[]).expect("valid").metrics.listen, None, "default");
    let text = format!("{COLLECTOR}\n[metrics]\nlisten = \"127.0.0.1:9464\"\n");
    let address: std::net::SocketAddr = "127.0.0.1:9464".parse().expect("valid address");
    assert_eq!(load_text(&text, &[]).expect("valid").metrics.listen, Some(address));
    let from_env = load_text(COLLECTOR, &[("IMSITRACE_METRICS__LISTEN", "[::1]:9500")]).expect("valid");
    assert_eq!(from_env.metrics.listen, Some("[::1]:9500".parse().expect("valid address")));
}

#[test]
fn metrics_listen_checked() {
    let cases = [
        ("\"localhost:9464\"", "metrics.listen: invalid address \"localhost:9464\": give IP:PORT, e.g. 127.0.0.1:9464, or [::1]:9464 for IPv6"),
        ("\"127.0.0.1\"", "metrics.listen: invalid address \"127.0.0.1\": give IP:PORT, e.g. 127.0.0.1:9464, or [::1]:9464 for IPv6"),
        ("\"127.0.0.1:0\"", "metrics.listen: invalid port 0 in \"127.0.0.1:0\": give the fixed port that Prometheus scrapes, e.g. 127.0.0.1:9464"),
        ("9464", "metrics.listen: expected a string, found 9464"),
    ];
    for (value, expected) in cases {
        let text = format!("{COLLECTOR}\n[metrics]\nlisten = {value}\n");
        assert_eq!(problems(&text, &[]), [expected], "listen = {value}");
    }
    let unknown = format!("{COLLECTOR}\n[metrics]\nport = 9464\n");
    assert_eq!(problems(&unknown, &[]), ["metrics.port: unknown key; [metrics] takes listen"]);
}

#[test]
fn metrics_line_in_summary() {
    let text = format!("{COLLECTOR}\n[metrics]\nlisten = \"127.0.0.1:9464\"\n");
    let config = load_text(&text, &[]).expect("valid");
    let printed = summary::summary(std::path::Path::new("node.toml"), &config);
    assert!(printed.contains("\nmetrics     listen 127.0.0.1:9464, page http://127.0.0.1:9464/metrics\n"), "{printed}");
}
