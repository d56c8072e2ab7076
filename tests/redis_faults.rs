//! `imsitrace analyze --redis` while the Redis server dies: writes made during the outage
//! are buffered and replayed without counting a bucket delta twice, and data that cannot be
//! kept is reported and makes the run exit 1.
//!
//! Each test starts its own `redis-server` on a free loopback port and kills it with
//! SIGKILL mid-run. The input is `small.pcap` repeated 100 times with its timestamps shifted
//! (each copy in its own 5-minute buckets), read in batches of 16 frames so that the run
//! lasts a few seconds and writes to Redis all along.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{data, files_of, read_pcap};
use redis_server::{free_port, RedisServer};

/// Copies of `small.pcap` in the long input.
const COPIES: u64 = 100;

/// Writes `COPIES` copies of `small.pcap` into one classic pcap file, each copy shifted by
/// a whole number of 5-minute buckets after the end of the previous one.
fn write_long_capture(path: &Path) {
    let pcap = read_pcap(&data("gtpgen/small.pcap"));
    let first = pcap.frames.first().expect("small.pcap has frames").ts_us;
    let last = pcap.frames.last().expect("small.pcap has frames").ts_us;
    let span_us = ((last - first) / 300_000_000 + 2) * 300_000_000;
    let mut out = Vec::new();
    // Global header: magic (microsecond timestamps), version 2.4 as two u16 values,
    // time zone, accuracy, snapshot length and link type.
    for word in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 262_144, pcap.link_type] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for copy in 0..COPIES {
        for frame in &pcap.frames {
            let ts_us = frame.ts_us + copy * span_us;
            let seconds = u32::try_from(ts_us / 1_000_000).expect("timestamp fits in 32 bits");
            let micros = (ts_us % 1_000_000) as u32;
            let captured = frame.data.len() as u32;
            for word in [seconds, micros, captured, frame.orig_len] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&frame.data);
        }
    }
    std::fs::write(path, out).expect("cannot write the long capture");
}

/// A `redis-server` with an append-only file fsynced on every write, so that a server
/// restarted on the same directory has every write it acknowledged before a SIGKILL.
struct PersistentRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PersistentRedis {
    fn start(dir: &Path) -> PersistentRedis {
        let port = free_port();
        let server = PersistentRedis { child: spawn_persistent(dir, port), port, dir: dir.to_owned() };
        wait_for_ping(port);
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server with SIGKILL.
    fn kill(&mut self) {
        self.child.kill().expect("cannot kill redis-server");
        self.child.wait().expect("cannot reap redis-server");
    }

    /// Starts the server again on the same port and directory.
    fn restart(&mut self) {
        self.child = spawn_persistent(&self.dir, self.port);
        wait_for_ping(self.port);
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_persistent(dir: &Path, port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run redis-server; install it with scripts/setup.sh")
}

/// Polls with PING until the server on `port` replies; panics after 10 s.
fn wait_for_ping(port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut reply = [0; 7];
            if stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n" {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server on port {port} did not reply to PING within 10 s");
}

/// Replay speed of every run. The copies of `small.pcap` span 100 x 900 s of packet time,
/// so a run lasts at least 90,000 s / 15,000 = 6 s of wall time, and a kill scheduled within
/// the first seconds always hits it mid-run.
const REPLAY_SPEED: &str = "15000";

/// Starts `imsitrace analyze --json --batch-size 16 --replay-speed 15000 INPUT` with the
/// extra arguments.
fn spawn_analyze(input: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_imsitrace"))
        .args(["analyze", "--json", "--batch-size", "16", "--replay-speed", REPLAY_SPEED])
        .arg(input)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the imsitrace binary")
}

/// Waits for the run and returns its output and its JSON summary.
fn finish(child: Child) -> (Output, serde_json::Value) {
    let output = child.wait_with_output().expect("cannot wait for imsitrace");
    let summary = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("the --json summary is not JSON ({error}); stderr: {}", String::from_utf8_lossy(&output.stderr)));
    (output, summary)
}

/// Asserts that the run is still going, so that the server dies in the middle of it.
fn assert_running(child: &mut Child) {
    assert!(child.try_wait().expect("cannot poll imsitrace").is_none(), "the run ended before redis-server was killed");
}

fn counter(summary: &serde_json::Value, path: &[&str]) -> u64 {
    let mut value = summary;
    for key in path {
        value = &value[*key];
    }
    value.as_u64().unwrap_or_else(|| panic!("summary field {} is not a number: {value}", path.join(".")))
}

/// The bucket rows read back from Redis after a restart equal those of an embedded run.
/// The check is exact. With `--appendfsync always` Redis sends a reply only after the write
/// is on disk, so a write lost with the kill was never acknowledged and is replayed. A
/// replayed bucket batch that the server had applied is skipped by its batch id.
// NOTE: before the runs were paced, one run in eight failed under heavy machine load: the
// run exited 1 after its 30-s end-of-run retry, as if the connection never came back after
// the restart. Not seen since, and the cause was not found.
#[test]
fn restart_mid_run_keeps_counts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.pcap");
    write_long_capture(&input);
    let embedded_reports = dir.path().join("embedded");
    let (output, embedded) = finish(spawn_analyze(&input, &["--report-dir", embedded_reports.to_str().unwrap()]));
    assert!(output.status.success(), "embedded run failed: {}", String::from_utf8_lossy(&output.stderr));

    let redis_dir = dir.path().join("redis-data");
    std::fs::create_dir(&redis_dir).unwrap();
    let mut server = PersistentRedis::start(&redis_dir);
    let redis_reports = dir.path().join("redis");
    let mut child = spawn_analyze(&input, &["--report-dir", redis_reports.to_str().unwrap(), "--redis", &server.url()]);
    std::thread::sleep(Duration::from_millis(700));
    assert_running(&mut child);
    server.kill();
    std::thread::sleep(Duration::from_millis(1500));
    assert_running(&mut child);
    server.restart();
    let (output, summary) = finish(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "run across the restart failed: {stderr}");

    assert!(counter(&summary, &["sink", "outage", "write_failures"]) > 0, "no write failed during the outage: {stderr}");
    assert!(counter(&summary, &["sink", "outage", "max_buffered"]) > 0, "nothing was buffered");
    assert!(counter(&summary, &["sink", "outage", "replayed"]) > 0, "nothing was replayed");
    assert_eq!(counter(&summary, &["sink", "outage", "dropped_full"]), 0);
    assert_eq!(counter(&summary, &["sink", "outage", "lost"]), 0);
    assert_eq!(counter(&summary, &["sink", "outage", "buffered"]), 0);
    assert_eq!(counter(&summary, &["sink", "microcloud_errors"]), 0);
    assert_eq!(counter(&summary, &["sink", "events_published"]), counter(&embedded, &["sink", "events_published"]));
    // Shards merge bucket deltas over a number of batches, and paced batches end by wall
    // time, so the number of deltas varies between runs. The rows below are compared exactly.
    assert!(counter(&summary, &["sink", "deltas"]) > 0, "no bucket delta was written");

    let expected = files_of(&embedded_reports);
    assert!(expected.len() as u64 >= COPIES, "{} reports for {COPIES} copies of the input", expected.len());
    let actual = files_of(&redis_reports);
    assert_eq!(actual.len(), expected.len(), "report files");
    for ((name, rows), (expected_name, expected_rows)) in actual.iter().zip(&expected) {
        assert_eq!(name, expected_name);
        assert_eq!(rows, expected_rows, "rows of {name} read back from Redis");
    }
}

/// A server that stays down overflows a small buffer: the run drops the oldest writes,
/// counts them, reports them and exits 1.
#[test]
fn long_outage_reports_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.pcap");
    write_long_capture(&input);
    let server = RedisServer::start();
    let url = server.url();
    let mut child = spawn_analyze(&input, &["--redis", &url, "--redis-buffer", "50", "--redis-retry-timeout", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_running(&mut child);
    drop(server);
    let started = Instant::now();
    let (output, summary) = finish(child);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "exit status; stderr: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(25), "the run took {:?} after the kill", started.elapsed());
    let dropped = counter(&summary, &["sink", "outage", "dropped_full"]);
    assert!(dropped > 0, "nothing was dropped: {summary}");
    assert_eq!(counter(&summary, &["sink", "outage", "capacity"]), 50);
    assert!(counter(&summary, &["sink", "outage", "max_buffered"]) <= 50, "the buffer grew past its capacity");
    assert_eq!(counter(&summary, &["sink", "outage", "lost"]), counter(&summary, &["sink", "outage", "buffered"]));
    assert!(stderr.contains(&format!("{dropped} events and bucket deltas were not written")), "{stderr}");
    assert!(stderr.contains("--redis-buffer"), "the message names the option to raise: {stderr}");
}
