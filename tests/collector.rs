//! `imsitrace node` with the collector role against a real redis-server: two collectors
//! report every stored bucket exactly once between them, with the same contents as the
//! reports of `analyze --report-dir`, and apply the retention. A node with both roles
//! reads a capture into Redis and then reports it.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{data, files_of, imsitrace};
use redis_server::RedisServer;

/// Generous bound on every wait; the runs below need a few seconds.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `analyze` on the small synthetic capture with the extra arguments.
fn analyze(extra: &[&str]) {
    let input = data("gtpgen/small.pcap");
    let mut args = vec!["analyze", input.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let output = imsitrace(&args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Writes the embedded reports of the small capture into `dir` and returns them.
fn embedded_reports(dir: &Path) -> Vec<(String, String)> {
    analyze(&["--report-dir", dir.to_str().unwrap()]);
    let files = files_of(dir);
    assert!(files.len() >= 2, "the embedded run wrote {} reports", files.len());
    files
}

/// Returns the members of a RESP array reply, e.g. of ZRANGE or KEYS.
fn array_members(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let header = lines.next().unwrap_or_default();
    let count: usize = header.strip_prefix('*').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not an array reply: {reply:?}"));
    // Each member is a `$<length>` line followed by the member.
    lines.skip(1).step_by(2).take(count).map(str::to_owned).collect()
}

/// Returns the epochs listed in the epoch index.
fn stored_epochs(server: &RedisServer) -> Vec<String> {
    array_members(&server.command("ZRANGE imsitrace:v1:epochs 0 -1"))
}

/// Returns the integer of a `:<n>` reply.
fn integer(reply: &str) -> i64 {
    reply.trim().trim_start_matches(':').parse().unwrap_or_else(|_| panic!("not an integer reply: {reply:?}"))
}

/// A running `imsitrace node`, with stdout and stderr in files.
struct Node {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Node {
    /// Writes `config` to `<dir>/<name>.toml` and starts a node with it.
    fn start(dir: &Path, name: &str, config: &str) -> Node {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let (stdout, stderr) = (dir.join(format!("{name}.stdout")), dir.join(format!("{name}.stderr")));
        let child = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
            .args(["node", "--config", path.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot run the imsitrace binary");
        Node { child, stdout, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("cannot poll the node").is_none()
    }

    /// Sends SIGTERM and waits for the exit, killing the node after the deadline.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        self.wait()
    }

    /// Waits for the node to exit by itself, killing it after the deadline.
    fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().expect("cannot poll the node") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the node did not exit within {DEADLINE:?}; stderr:\n{}", self.stderr());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 100 ms until it returns true, or fails after the deadline with `what`
/// and the nodes' stderr.
fn poll_until(what: &str, nodes: &mut [&mut Node], mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if done() {
            return;
        }
        for node in nodes.iter_mut() {
            assert!(node.is_running(), "a node exited while waiting for {what}; stderr:\n{}", node.stderr());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = nodes.iter().map(|node| node.stderr()).collect();
    panic!("timed out after {DEADLINE:?} waiting for {what}; stderr of the nodes:\n{}", logs.join("\n---\n"));
}

/// Returns a collector configuration that ticks every second, reports 2 buckets back and
/// lets reported buckets expire after `retention`.
fn collector_config(name: &str, roles: &str, url: &str, outdir: &Path, retention: &str) -> String {
    format!(
        "[node]\nname = \"{name}\"\nroles = [{roles}]\n\n[microcloud]\nredis = \"{url}\"\n\n\
         [report]\noutdir = \"{}\"\ninterval = \"1s\"\noffset = \"0s\"\nretention = \"{retention}\"\n",
        outdir.display()
    )
}

#[test]
fn two_collectors_report_each_once() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let expected = embedded_reports(&dir.path().join("embedded"));
    analyze(&["--redis", &url]);
    // The capture is from 2013, so every stored bucket is final and older than the target
    // bucket: only the catch-up of the first tick reports them.
    let epochs = stored_epochs(&server);
    let expected_names: Vec<String> = expected.iter().map(|(name, _)| name.clone()).collect();
    let stored_names: Vec<String> = epochs.iter().map(|epoch| format!("{epoch}.imsi")).collect();
    assert_eq!(stored_names, expected_names, "buckets on the server");

    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = Node::start(dir.path(), "a", &collector_config("collector-a", "\"collector\"", &url, &dir_a, "0s"));
    let mut b = Node::start(dir.path(), "b", &collector_config("collector-b", "\"collector\"", &url, &dir_b, "0s"));
    // Retention 0 deletes a bucket right after its report is written, so an empty epoch
    // index means every report has been written.
    poll_until("every bucket to be reported", &mut [&mut a, &mut b], || stored_epochs(&server).is_empty());

    let (status_a, status_b) = (a.terminate(), b.terminate());
    assert!(status_a.success(), "collector-a exited with {status_a}: {}", a.stderr());
    assert!(status_b.success(), "collector-b exited with {status_b}: {}", b.stderr());
    let (written_a, written_b) = (files_of(&dir_a), files_of(&dir_b));
    let mut union: Vec<_> = written_a.iter().chain(&written_b).cloned().collect();
    union.sort();
    assert_eq!(union, expected, "the reports of both collectors together");
    for (name, _) in &written_a {
        assert!(!written_b.iter().any(|(other, _)| other == name), "{name} written by both collectors");
    }
    assert_eq!(a.stderr().matches("wrote report").count(), written_a.len(), "info lines of collector-a");
    assert_eq!(b.stderr().matches("wrote report").count(), written_b.len(), "info lines of collector-b");

    // The claim of each bucket names the collector that wrote its report.
    for epoch in &epochs {
        let claim = server.command(&format!("GET imsitrace:v1:report:{epoch}"));
        let writer = if dir_a.join(format!("{epoch}.imsi")).exists() { "collector-a" } else { "collector-b" };
        assert!(claim.contains(writer), "claim of {epoch}: {claim:?}, report written by {writer}");
    }
    // Retention 0 deleted every bucket index and row.
    assert_eq!(array_members(&server.command("KEYS imsitrace:v1:bucket:*")), Vec::<String>::new());
}

#[test]
fn probe_and_collector_node() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let expected = embedded_reports(&dir.path().join("embedded"));
    let outdir = dir.path().join("reports");
    let input = data("gtpgen/small.pcap");
    let config = format!(
        "{}\n[probe]\ninputs = [\"{}\"]\nshards = 2\n",
        collector_config("node-a", "\"probe\", \"collector\"", &url, &outdir, "10m"),
        input.display()
    );
    let mut node = Node::start(dir.path(), "node", &config);
    let expected_names: Vec<String> = expected.iter().map(|(name, _)| name.clone()).collect();
    let names = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&outdir)
            .map(|entries| entries.map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    poll_until("the node to report the capture", &mut [&mut node], || names() == expected_names);

    // The probe's input has ended and the collector keeps the node running.
    assert!(node.is_running(), "the node exited after its input: {}", node.stderr());
    assert!(node.stdout().contains("frames"), "probe summary on stdout: {}", node.stdout());
    let status = node.terminate();
    assert!(status.success(), "the node exited with {status}: {}", node.stderr());
    assert_eq!(files_of(&outdir), expected);

    // Each reported bucket expires within the 10-minute retention, from its 24-h bucket TTL.
    for (name, _) in &expected {
        let epoch = name.trim_end_matches(".imsi");
        let ttl = integer(&server.command(&format!("TTL imsitrace:v1:bucket:{epoch}")));
        assert!((1..=600).contains(&ttl), "TTL of bucket {epoch}: {ttl}");
        let claim = server.command(&format!("GET imsitrace:v1:report:{epoch}"));
        assert!(claim.contains("node-a"), "claim of {epoch}: {claim:?}");
    }
}

#[test]
fn probe_node_ends_with_input() {
    let dir = tempfile::tempdir().unwrap();
    let expected = embedded_reports(&dir.path().join("embedded"));
    let report_dir = dir.path().join("reports");
    let config = format!(
        "[node]\nroles = [\"probe\"]\n\n[probe]\ninputs = [\"{}\"]\nreport_dir = \"{}\"\n",
        data("gtpgen/small.pcap").display(),
        report_dir.display()
    );
    let mut node = Node::start(dir.path(), "probe", &config);

    let status = node.wait();
    assert!(status.success(), "the probe exited with {status}: {}", node.stderr());
    assert_eq!(files_of(&report_dir), expected, "reports of the embedded microcloud");
}

#[test]
fn collector_fails_on_unreachable_server() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago, so no server listens there.
    let url = format!("redis://127.0.0.1:{}/", redis_server::free_port());
    let config = collector_config("collector-a", "\"collector\"", &url, &dir.path().join("reports"), "0s");
    let mut node = Node::start(dir.path(), "collector", &config);

    let status = node.wait();
    assert_eq!(status.code(), Some(1), "exit status; stderr: {}", node.stderr());
    let stderr = node.stderr();
    assert!(stderr.contains(&format!("cannot connect to {url}")), "{stderr}");
}
