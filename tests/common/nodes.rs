//! `imsitrace node` processes for the cluster tests, with their output in files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Cookie shared by the test clusters (at least 16 characters).
pub const COOKIE: &str = "test-cluster-cookie-0123456789";

/// A running `imsitrace node`, with stdout and stderr in files.
pub struct Node {
    pub name: String,
    pub child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Node {
    /// Writes `config` to `<dir>/<name>.toml` and starts a node with it and `cookie` in
    /// IMSITRACE_CLUSTER__COOKIE. A restarted node appends to the same output files.
    pub fn start(dir: &Path, name: &str, config: &str, cookie: &str) -> Node {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let append = |path: &Path| File::options().create(true).append(true).open(path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
            .args(["node", "--config", path.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("IMSITRACE_CLUSTER__COOKIE", cookie)
            .stdout(append(&stdout))
            .stderr(append(&stderr))
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot run the imsitrace binary");
        Node { name: name.to_owned(), child, stdout, stderr }
    }

    /// Returns everything the node printed on stdout, such as the probe summary.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Returns the node's log (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Number of `cluster node joined` lines for `peer` in the log.
    pub fn joins_of(&self, peer: &str) -> usize {
        self.log().matches(&format!("cluster node joined peer={peer}@127.0.0.1 ")).count()
    }

    /// Number of `cluster node left` lines for `peer` in the log.
    pub fn leaves_of(&self, peer: &str) -> usize {
        self.log().matches(&format!("cluster node left peer={peer}@127.0.0.1 ")).count()
    }

    /// Sends a signal with kill(1), e.g. `-STOP`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} {} failed", self.name);
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `deadline` for a successful exit.
    pub fn terminate(&mut self, deadline: Duration) {
        self.signal("-TERM");
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}; log:\n{}", self.name, self.log());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit within {deadline:?} after SIGTERM; log:\n{}", self.name, self.log());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A frozen node must run again to die; the process may be gone already.
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 100 ms until it returns true, or fails after `deadline` with `what`
/// and every node's output and log.
pub fn poll_until(what: &str, deadline: Duration, nodes: &[&Node], mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = nodes.iter().map(|node| format!("--- {}\n{}{}", node.name, node.output(), node.log())).collect();
    panic!("timed out after {deadline:?} waiting for {what}; logs:\n{}", logs.join("\n"));
}

/// Returns the `[cluster]` section of a node on `port` with short heartbeat and retry
/// settings, `seeds` and `extra` lines.
pub fn cluster_section(port: u16, seeds: &[u16], extra: &str) -> String {
    let seeds: Vec<String> = seeds.iter().map(|port| format!("\"127.0.0.1:{port}\"")).collect();
    format!(
        "[cluster]\nlisten_address = \"127.0.0.1\"\nport = {port}\nseeds = [{}]\nheartbeat_interval = \"200ms\"\npeer_timeout = \"5s\"\n\
         handshake_timeout = \"10s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n{extra}",
        seeds.join(", ")
    )
}
