//! Tests of reading `[cluster]` and `[cluster.tls]`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::schema::Cookie;
use super::*;

const COOKIE: &str = "0123456789abcdef0123";

/// Writes `text` to a temporary file and loads it with the variables of `env` only.
fn load_text(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).expect("write the configuration");
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    load_with_env(&path, Some(env))
}

fn problems(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    match load_text(text, env) {
        Err(ConfigError::Invalid { problems, .. }) => problems.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("expected invalid values, got {other}"),
        Ok(config) => panic!("expected problems, got {config:?}"),
    }
}

const PROBE: &str = "[node]\nname = \"probe-1\"\nroles = [\"probe\"]\n[probe]\ninputs = [\"a.pcap\"]\n";

#[test]
fn no_section_no_cluster() {
    let config = load_text(PROBE, &[]).expect("valid");
    assert_eq!(config.cluster, None);
}

#[test]
fn cookie_from_env_enables_defaults() {
    let config = load_text(PROBE, &[("IMSITRACE_CLUSTER__COOKIE", COOKIE)]).expect("valid");
    let cluster = config.cluster.expect("a [cluster] section from the environment");
    assert_eq!(cluster.listen_address, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(cluster.port, 7470);
    assert_eq!(cluster.advertise, std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim(), "the host name");
    assert_eq!(cluster.seeds, Vec::<String>::new());
    assert_eq!(cluster.cookie, Cookie { value: COOKIE.into(), source: "environment variable IMSITRACE_CLUSTER__COOKIE".into() });
    assert_eq!(cluster.heartbeat_interval, Duration::from_secs(1));
    assert_eq!(cluster.peer_timeout, Duration::from_secs(5));
    assert_eq!(cluster.handshake_timeout, Duration::from_secs(10));
    assert_eq!(cluster.reconnect_min, Duration::from_millis(500));
    assert_eq!(cluster.reconnect_max, Duration::from_secs(30));
    assert_eq!(cluster.tls, None);
}

#[test]
fn keys_read() {
    let dir = tempfile::tempdir().unwrap();
    let cookie_file = dir.path().join("cookie");
    std::fs::write(&cookie_file, format!("{COOKIE}\n")).unwrap();
    let text = format!(
        "{PROBE}[cluster]\nlisten_address = \"127.0.0.1\"\nport = 7001\nseeds = [\"127.0.0.1:7000\", \"[::1]:7002\"]\ncookie_file = \"{}\"\n\
         heartbeat_interval = \"250ms\"\npeer_timeout = \"2s\"\nhandshake_timeout = \"3s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"5s\"\n",
        cookie_file.display()
    );
    let cluster = load_text(&text, &[]).expect("valid").cluster.expect("cluster");
    assert_eq!(cluster.listen_address, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(cluster.port, 7001);
    assert_eq!(cluster.advertise, "127.0.0.1", "the listen address");
    assert_eq!(cluster.seeds, ["127.0.0.1:7000", "[::1]:7002"]);
    assert_eq!(cluster.cookie, Cookie { value: COOKIE.into(), source: format!("file {}", cookie_file.display()) }, "line end trimmed");
    assert_eq!(cluster.heartbeat_interval, Duration::from_millis(250));
    assert_eq!(cluster.peer_timeout, Duration::from_secs(2));
    assert_eq!(cluster.handshake_timeout, Duration::from_secs(3));
    assert_eq!(cluster.reconnect_min, Duration::from_millis(100));
    assert_eq!(cluster.reconnect_max, Duration::from_secs(5));
}

#[test]
fn seeds_from_env_list() {
    let env = [("IMSITRACE_CLUSTER__COOKIE", COOKIE), ("IMSITRACE_CLUSTER__SEEDS", "10.0.0.1:7470, node-2:7470")];
    let cluster = load_text(PROBE, &env).expect("valid").cluster.expect("cluster");
    assert_eq!(cluster.seeds, ["10.0.0.1:7470", "node-2:7470"]);
}

#[test]
fn invalid_values_named() {
    let text = format!(
        "{PROBE}[cluster]\nlisten_address = \"localhost\"\nport = 0\nseeds = [\"a:1\", \"a:1\", \"::1:7000\", \"b:x\"]\n\
         heartbeat_interval = \"2s\"\npeer_timeout = \"3s\"\nreconnect_min = \"0s\"\nreconnect_max = \"100ms\"\nlisten = 1\n"
    );
    let expected = [
        "cluster.listen_address: invalid IP address \"localhost\": give an address of this host, e.g. 10.0.0.1, or 0.0.0.0 for every IPv4 address",
        "cluster.port: invalid value 0: give a whole number from 1 to 65535",
        "cluster.seeds: duplicate seed \"a:1\": give each node once",
        "cluster.seeds: invalid seed \"::1:7000\": an IPv6 address needs brackets, e.g. [::1]:7470; give HOST:PORT, e.g. 10.0.0.1:7470",
        "cluster.seeds: invalid seed \"b:x\": invalid port \"x\"; give HOST:PORT, e.g. 10.0.0.1:7470",
        "cluster.cookie (environment variable IMSITRACE_CLUSTER__COOKIE): invalid cookie from environment variable IMSITRACE_CLUSTER__COOKIE: it has 5 characters; give at least 16, e.g. the output of `openssl rand -hex 32`",
        "cluster.peer_timeout: invalid peer_timeout 3s: give at least twice cluster.heartbeat_interval (2s)",
        "cluster.reconnect_min: invalid value 0s: give a duration above zero, e.g. \"1s\"",
        "cluster.listen: unknown key; [cluster] takes listen_address, port, advertise, seeds, cookie, cookie_file, heartbeat_interval, peer_timeout, handshake_timeout, reconnect_min, reconnect_max, tls",
    ];
    assert_eq!(problems(&text, &[("IMSITRACE_CLUSTER__COOKIE", "short")]), expected);
}

#[test]
fn cookie_sources_conflict_or_missing() {
    let both = format!("{PROBE}[cluster]\ncookie = \"{COOKIE}\"\ncookie_file = \"/nonexistent/cookie\"\n");
    assert_eq!(problems(&both, &[]), ["cluster.cookie_file: conflicts with cluster.cookie: give one of them"]);
    let unreadable = format!("{PROBE}[cluster]\ncookie_file = \"/nonexistent/cookie\"\n");
    assert_eq!(problems(&unreadable, &[]), ["cluster.cookie_file: cannot read /nonexistent/cookie: No such file or directory (os error 2)"]);
    let reconnect = format!("{PROBE}[cluster]\nreconnect_max = \"1s\"\nreconnect_min = \"2s\"\n");
    assert_eq!(
        problems(&reconnect, &[("IMSITRACE_CLUSTER__COOKIE", COOKIE)]),
        ["cluster.reconnect_max: invalid reconnect_max 1s: give at least cluster.reconnect_min (2s)"]
    );
}

#[test]
fn short_cookie_file_named_without_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cookie");
    std::fs::write(&path, "tiny-secret\n").unwrap();
    let text = format!("{PROBE}[cluster]\ncookie_file = \"{}\"\n", path.display());
    let found = problems(&text, &[]);
    let expected = format!(
        "cluster.cookie_file: invalid cookie from file {}: it has 11 characters; give at least 16, e.g. the output of `openssl rand -hex 32`",
        path.display()
    );
    assert_eq!(found, [expected]);
    assert!(!found[0].contains("tiny-secret"), "the message must not show the cookie");
}

#[test]
fn tls_files_checked() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "text\n").unwrap();
    let text = format!("{PROBE}[cluster]\ncookie = \"{COOKIE}\"\n[cluster.tls]\ncert = \"{}\"\nca = \"{}\"\nkeyfile = \"x\"\n", not_pem.display(), Path::new("/nonexistent/ca.pem").display());
    let found = problems(&text, &[]);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found[0], format!("cluster.tls.cert: no PEM certificate (BEGIN CERTIFICATE) in {}", not_pem.display()));
    assert_eq!(found[1], "cluster.tls.key: missing: [cluster.tls] needs cert, key and ca, each a PEM file");
    assert!(found[2].starts_with("cluster.tls.ca: cannot read certificates from /nonexistent/ca.pem: "), "{}", found[2]);
    assert_eq!(found[3], "cluster.tls.keyfile: unknown key; [cluster.tls] takes cert, key, ca");
}

#[test]
fn tls_env_variable_named() {
    let env = [("IMSITRACE_CLUSTER__COOKIE", COOKIE), ("IMSITRACE_CLUSTER__TLS__CERT", "/nonexistent/node.pem")];
    let found = problems(PROBE, &env);
    assert!(
        found[0].starts_with("cluster.tls.cert (environment variable IMSITRACE_CLUSTER__TLS__CERT): cannot read certificates from /nonexistent/node.pem: "),
        "{found:?}"
    );
}

#[test]
fn summary_line_hides_cookie() {
    let text = format!("{PROBE}[cluster]\nlisten_address = \"127.0.0.1\"\nseeds = [\"127.0.0.1:7000\", \"127.0.0.1:7001\"]\n");
    let config = load_text(&text, &[("IMSITRACE_CLUSTER__COOKIE", COOKIE)]).expect("valid");
    let printed = summary::summary(Path::new("node.toml"), &config);
    let line = printed.lines().last().unwrap();
    assert_eq!(
        line,
        "cluster     node probe-1@127.0.0.1, listen 127.0.0.1:7470, seeds 127.0.0.1:7000 127.0.0.1:7001, cookie from environment variable IMSITRACE_CLUSTER__COOKIE, \
         heartbeat_interval 1s, peer_timeout 5s, handshake_timeout 10s, reconnect 500ms to 30s, tls off"
    );
    assert!(!printed.contains(COOKIE));
}
