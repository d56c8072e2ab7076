//! Observability end to end: a collector and a probe run as real `imsitrace node`
//! processes over 127.0.0.1 with a real redis-server. The probe reads `small.pcap` and
//! serves `/metrics`. The test scrapes it with a plain TcpStream until the capture counters
//! equal those of `imsitrace analyze --json` on the same file, then checks that
//! `imsitrace status --cluster` lists both nodes with the same numbers. A second test
//! scrapes `imsitrace analyze --metrics-listen` during a paced replay.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::nodes::{cluster_section, poll_until, Node, COOKIE};
use common::{data, imsitrace};
use redis_server::{free_port, RedisServer};

/// Generous bound on every wait.
const DEADLINE: Duration = Duration::from_secs(180);

/// Capture counters compared between `/metrics` and the `analyze --json` summary: the
/// `kind` label and the field of `capture` in the summary.
const KINDS: [(&str, &str); 7] = [
    ("gtpv1c", "gtpv1c"),
    ("gtpv2c", "gtpv2c"),
    ("gtpu_gpdu", "gtpu_gpdu"),
    ("echo", "gtpu_echo"),
    ("end_marker", "gtpu_end_marker"),
    ("gtpu_other", "gtpu_other"),
    ("not_gtp", "not_gtp"),
];

/// Returns the body of `GET /metrics` on `port`, or `None` while nothing listens there.
fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "unexpected response head: {head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    Some(body.to_owned())
}

/// Returns the value of the sample of `name` whose labels contain every one of `labels`.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let prefix = format!("{name}{{");
    let line = body.lines().find(|line| line.starts_with(&prefix) && labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// Returns the capture counters of a summary, in the order of [`KINDS`], after the frame
/// count.
fn summary_counts(summary: &serde_json::Value) -> Vec<f64> {
    let capture = &summary["capture"];
    let mut counts = vec![capture["frames"].as_f64().unwrap()];
    counts.extend(KINDS.iter().map(|(_, field)| capture[field].as_f64().unwrap_or_else(|| panic!("no capture.{field} in the summary"))));
    counts
}

/// Returns the same counters from a `/metrics` body; `None` for a missing sample.
fn scraped_counts(body: &str) -> Vec<Option<f64>> {
    let mut counts = vec![sample(body, "imsitrace_frames_total", &[])];
    counts.extend(KINDS.iter().map(|(kind, _)| sample(body, "imsitrace_packets_total", &[("kind", kind)])));
    counts
}

fn analyze_json(input: &Path) -> serde_json::Value {
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--json", "--shards", "2"]);
    assert!(output.status.success(), "analyze failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the --json summary is not JSON")
}

fn collector_config(cluster: &str, url: &str, outdir: &Path) -> String {
    format!(
        "[node]\nname = \"collector\"\nroles = [\"collector\"]\nsite = \"dc-1\"\n\n[microcloud]\nredis = \"{url}\"\n\n[report]\noutdir = \"{}\"\n\n{cluster}",
        outdir.display(),
    )
}

fn probe_config(input: &Path, url: &str, cluster: &str, metrics_port: u16) -> String {
    format!(
        "[node]\nname = \"probe\"\nroles = [\"probe\"]\nsite = \"site-a\"\n\n[microcloud]\nredis = \"{url}\"\n\n[probe]\ninputs = [\"{}\"]\nshards = 2\n\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n{cluster}",
        input.display(),
    )
}

/// Returns a `[cluster]` section like [`cluster_section`] but with a peer timeout of 10
/// minutes, so that a frozen node stays a peer of the others for the whole test.
fn patient_cluster_section(port: u16, seeds: &[u16]) -> String {
    cluster_section(port, seeds, "").replace("peer_timeout = \"5s\"", "peer_timeout = \"10m\"")
}

/// Runs `imsitrace status` against the collector and returns its exit status and output.
fn status(collector_port: u16, json: bool) -> (bool, String, String) {
    let seed = format!("127.0.0.1:{collector_port}");
    let mut args = vec!["status", "--cluster", &seed, "--timeout", "10"];
    if json {
        args.push("--json");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_imsitrace")).args(&args).env("IMSITRACE_CLUSTER__COOKIE", COOKIE).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn node_metrics_match_analyze_and_status() {
    let input = data("gtpgen/small.pcap");
    let summary = analyze_json(&input);
    let expected = summary_counts(&summary);
    assert!(expected[0] > 0.0, "small.pcap has frames");

    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (collector_port, probe_port, metrics_port) = (free_port(), free_port(), free_port());
    let collector = Node::start(dir.path(), "collector", &collector_config(&cluster_section(collector_port, &[], ""), &server.url(), &dir.path().join("reports")), COOKIE);
    let probe_cluster = cluster_section(probe_port, &[collector_port], "");
    let mut probe = Node::start(dir.path(), "probe", &probe_config(&input, &server.url(), &probe_cluster, metrics_port), COOKIE);
    let nodes = [&collector, &probe];

    let mut body = String::new();
    poll_until("the probe's /metrics to show every frame of small.pcap", DEADLINE, &nodes, || {
        body = scrape(metrics_port).unwrap_or_default();
        scraped_counts(&body) == expected.iter().map(|&count| Some(count)).collect::<Vec<_>>()
    });
    assert!(body.contains("# TYPE imsitrace_packets_total counter\n"), "{body}");
    assert!(body.contains("# TYPE imsitrace_sessions gauge\n"), "{body}");
    let labels = [("node", "probe@127.0.0.1"), ("role", "probe"), ("site", "site-a")];
    assert_eq!(sample(&body, "imsitrace_frames_total", &labels), Some(expected[0]), "node labels on every sample:\n{body}");
    let live_sessions = summary["control"]["live_sessions"].as_f64().unwrap();
    poll_until("the probe's /metrics to show the sessions of the summary", DEADLINE, &nodes, || {
        body = scrape(metrics_port).unwrap_or_default();
        sample(&body, "imsitrace_sessions", &[]) == Some(live_sessions)
    });
    assert!(sample(&body, "imsitrace_redis_round_trips_total", &[]).is_some_and(|trips| trips > 0.0), "Redis writes measured:\n{body}");
    assert_eq!(sample(&body, "imsitrace_microcloud_buffer_items", &[]), Some(0.0), "{body}");

    let (ok, stdout, stderr) = status(collector_port, true);
    assert!(ok, "status failed: {stderr}\n{stdout}");
    let statuses: serde_json::Value = serde_json::from_str(&stdout).expect("status --json prints JSON");
    let statuses = statuses.as_array().unwrap();
    let names: Vec<&str> = statuses.iter().map(|node| node["node"].as_str().unwrap()).collect();
    assert_eq!(names, ["collector@127.0.0.1", "probe@127.0.0.1"], "{stdout}");
    let (collector_status, probe_status) = (&statuses[0], &statuses[1]);
    assert_eq!(collector_status["answered"], true, "{stdout}");
    assert_eq!(collector_status["roles"], serde_json::json!(["collector"]), "{stdout}");
    assert_eq!(collector_status["site"], "dc-1", "{stdout}");
    assert!(collector_status["metrics"].get("imsitrace_frames_total").is_none(), "a collector reads no capture: {stdout}");
    assert_eq!(probe_status["roles"], serde_json::json!(["probe"]), "{stdout}");
    assert!(probe_status["uptime_s"].as_f64().unwrap() > 0.0, "{stdout}");
    let metrics = &probe_status["metrics"];
    assert_eq!(metrics["imsitrace_frames_total"].as_f64(), Some(expected[0]), "{stdout}");
    for (index, (kind, _)) in KINDS.iter().enumerate() {
        let key = format!("imsitrace_packets_total{{kind=\"{kind}\"}}");
        assert_eq!(metrics[&key].as_f64(), Some(expected[index + 1]), "{key} in {stdout}");
    }
    assert_eq!(metrics["imsitrace_sessions"].as_f64(), Some(live_sessions), "{stdout}");

    let (ok, text, stderr) = status(collector_port, false);
    assert!(ok, "status failed: {stderr}");
    assert!(text.contains("node collector@127.0.0.1  roles collector  site dc-1  uptime "), "{text}");
    assert!(text.contains("node probe@127.0.0.1  roles probe  site site-a  uptime "), "{text}");

    probe.terminate(DEADLINE);
    let (ok, stdout, stderr) = status(collector_port, true);
    assert!(ok, "status after the probe left: {stderr}\n{stdout}");
    let statuses: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(statuses.as_array().unwrap().len(), 1, "only the collector is left: {stdout}");
}

#[test]
fn frozen_node_listed_as_not_answering() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (collector_port, probe_port, metrics_port) = (free_port(), free_port(), free_port());
    let collector_cluster = patient_cluster_section(collector_port, &[]);
    let collector = Node::start(dir.path(), "collector", &collector_config(&collector_cluster, &server.url(), &dir.path().join("reports")), COOKIE);
    let probe_cluster = patient_cluster_section(probe_port, &[collector_port]);
    let probe = Node::start(dir.path(), "probe", &probe_config(&data("gtpgen/small.pcap"), &server.url(), &probe_cluster, metrics_port), COOKIE);
    let nodes = [&collector, &probe];
    poll_until("the probe to join the collector", DEADLINE, &nodes, || collector.joins_of("probe") > 0);
    poll_until("both nodes to answer imsitrace status", DEADLINE, &nodes, || status(collector_port, true).0);

    probe.signal("-STOP");
    let (ok, stdout, stderr) = status(collector_port, true);
    probe.signal("-CONT");
    assert!(!ok, "status succeeds although the probe is frozen: {stdout}");
    assert!(stderr.contains("1 of 2 nodes did not answer"), "{stderr}");
    let statuses: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let probe_status = statuses.as_array().unwrap().iter().find(|node| node["node"] == "probe@127.0.0.1").unwrap_or_else(|| panic!("probe not listed: {stdout}"));
    assert_eq!(probe_status["answered"], false, "{stdout}");
    assert!(probe_status["error"].as_str().is_some_and(|error| !error.is_empty()), "{stdout}");
    let collector_status = statuses.as_array().unwrap().iter().find(|node| node["node"] == "collector@127.0.0.1").unwrap_or_else(|| panic!("collector not listed: {stdout}"));
    assert_eq!(collector_status["answered"], true, "{stdout}");
}

#[test]
fn analyze_scraped_during_paced_replay() {
    let input = data("gtpgen/small.pcap");
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let stdout_path = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
        .args(["analyze", input.to_str().unwrap(), "--json", "--replay-speed", "40", "--site", "lab"])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // small.pcap spans about 591 s of packet time, so the replay at speed 40 takes about
    // 15 s; the scrapes below happen while it runs.
    let started = Instant::now();
    let mut during_run = Vec::new();
    while child.try_wait().unwrap().is_none() && started.elapsed() < DEADLINE {
        if let Some(body) = scrape(metrics_port) {
            if let Some(frames) = sample(&body, "imsitrace_frames_total", &[("role", "analyze"), ("site", "lab")]) {
                during_run.push(frames);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "analyze failed");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&stdout_path).unwrap()).unwrap();
    let total = summary["capture"]["frames"].as_f64().unwrap();
    assert!(during_run.iter().any(|&frames| frames > 0.0), "no scrape during the replay counted a frame: {during_run:?}");
    assert!(during_run.windows(2).all(|pair| pair[0] <= pair[1]), "the frame counter went down: {during_run:?}");
    assert!(during_run.iter().all(|&frames| frames <= total), "a scrape counted more than the {total} frames: {during_run:?}");
    assert!(during_run.iter().any(|&frames| frames < total), "every scrape came after the end of the replay: {during_run:?}");
}

#[test]
fn invalid_metrics_listen_rejected() {
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--metrics-listen", "localhost:9464"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid address \"localhost:9464\": give IP:PORT"), "{stderr}");
}

#[test]
fn metrics_port_in_use_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--metrics-listen", &address]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen for metrics on {address}")), "{stderr}");
    assert!(output.stdout.is_empty(), "no run without its listener: {}", String::from_utf8_lossy(&output.stdout));
}
