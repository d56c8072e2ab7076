//! `imsitrace watch` prints the session events that `analyze --redis` publishes, and
//! subscribes again by itself after the Redis server restarts.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{data, imsitrace};
use redis_server::{free_port, RedisServer};

/// Upper bound for each wait; the test fails with a message when it passes.
const DEADLINE: Duration = Duration::from_secs(30);

/// A running `imsitrace watch` with its stdout and stderr read line by line.
struct Watch {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run imsitrace watch");
        let stdout = lines_of(child.stdout.take().expect("piped stdout"));
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        Watch { child, stdout, stderr }
    }

    /// Returns the next `count` lines of stdout.
    fn take(&self, count: usize) -> Vec<String> {
        (0..count).map(|index| next_line(&self.stdout, &format!("stdout line {} of {count}", index + 1))).collect()
    }

    /// Reads stderr until a line contains `text`; returns the lines read before it.
    fn wait_stderr(&self, text: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = next_line(&self.stderr, &format!("a stderr line with {text:?} after {before:?}"));
            if line.contains(text) {
                return before;
            }
            before.push(line);
        }
    }

    fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("cannot run kill");
        assert!(status.success(), "kill failed");
        let status = self.child.wait().expect("cannot wait for imsitrace watch");
        assert!(status.success(), "imsitrace watch exited with {status} after SIGTERM");
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn next_line(lines: &Receiver<String>, expected: &str) -> String {
    match lines.recv_timeout(DEADLINE) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => panic!("no {expected} within {DEADLINE:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("imsitrace watch closed its output before {expected}"),
    }
}

/// Runs `analyze --redis` on small.pcap and returns the event log lines it wrote.
fn analyze_events(server: &RedisServer, dir: &std::path::Path) -> Vec<String> {
    let events = dir.join("events.jsonl");
    let input = data("gtpgen/small.pcap");
    let args = ["analyze", input.to_str().unwrap(), "--redis", &server.url(), "--events", events.to_str().unwrap()];
    let output = imsitrace(&args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&events).expect("cannot read the event log");
    text.lines().map(str::to_owned).collect()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
}

#[test]
fn watch_prints_events_and_resubscribes_after_restart() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let watch = Watch::start(&["--redis", &server.url(), "--json"]);
    watch.wait_stderr("subscribed to imsitrace:v1:events");

    let logged = analyze_events(&server, dir.path());
    assert!(!logged.is_empty(), "small.pcap yields session events");
    let printed = watch.take(logged.len());
    for (index, (printed, logged)) in printed.iter().zip(&logged).enumerate() {
        assert_eq!(json(printed), json(logged), "event {index}: the channel payload differs from the event log");
    }

    server.restart();
    let before = watch.wait_stderr("resubscribed to imsitrace:v1:events");
    assert!(before.iter().any(|line| line.contains("connection to Redis lost")), "no gap reported before resubscribing: {before:?}");
    let reply = server.command("PUBLISH imsitrace:v1:events after-restart");
    assert_eq!(reply.trim(), ":1", "one subscriber receives the message");
    assert_eq!(watch.take(1), ["after-restart"]);
    watch.stop();
}

#[test]
fn watch_one_subscriber_as_text() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // 001018596741032 has two sessions in small.pcap (small.truth.json); the event log gives its events.
    let imsi = "001018596741032";
    let watch = Watch::start(&["--redis", &server.url(), "--imsi", imsi]);
    watch.wait_stderr(&format!("subscribed to imsitrace:v1:events:{imsi}"));

    let logged: Vec<serde_json::Value> = analyze_events(&server, dir.path()).iter().map(|line| json(line)).collect();
    let own: Vec<&serde_json::Value> = logged.iter().filter(|event| event["imsi"] == imsi).collect();
    assert!(own.len() >= 3, "{imsi} has two attaches and a detach");
    for (line, event) in watch.take(own.len()).iter().zip(own) {
        let kind = event["kind"].as_str().unwrap();
        assert!(line.contains(&format!(" {kind} {imsi} site=local")), "{line}");
        assert!(line.starts_with("2013-07-27T"), "UTC time first: {line}");
    }
    watch.stop();
}

#[test]
fn watch_count_exits_by_itself() {
    let server = RedisServer::start();
    let mut watch = Watch::start(&["--redis", &server.url(), "--ntop", "--count", "2"]);
    watch.wait_stderr("subscribed to imsi.delete");
    server.command("PUBLISH imsi.create 001010000000001;10.0.0.1;1;2");
    server.command("PUBLISH imsi.delete 001010000000001");
    assert_eq!(watch.take(2), ["imsi.create 001010000000001;10.0.0.1;1;2", "imsi.delete 001010000000001"]);
    let started = Instant::now();
    while watch.child.try_wait().expect("try_wait").is_none() {
        assert!(started.elapsed() < DEADLINE, "imsitrace watch --count 2 did not exit after 2 messages");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(watch.child.wait().unwrap().success());
}

#[test]
fn watch_unreachable_server_fails() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let output = imsitrace(&["watch", "--redis", &url]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("cannot subscribe"), "{stderr}");
}

#[test]
fn watch_rejects_invalid_imsi() {
    let output = imsitrace(&["watch", "--redis", "redis://127.0.0.1:1/", "--imsi", "12ab"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid IMSI \"12ab\" for --imsi: give 5 to 15 digits"), "{stderr}");
}
