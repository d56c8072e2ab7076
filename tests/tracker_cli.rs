//! `imsitrace track` against one real collector node and a real redis-server: attach in
//! the background, list, restart the collector and list again, detach, and the audit log.
//! Also the errors of a bad IMSI, an unknown id, a wrong cookie and an unreachable address.
//!
//! Every wait polls with a generous deadline, because the machine may be loaded.

#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use redis_server::{free_port, RedisServer};

/// Generous bound on every wait.
const DEADLINE: Duration = Duration::from_secs(60);

/// Cookie shared by the test cluster (at least 16 characters).
const COOKIE: &str = "tracker-cli-cookie-0123456789";

const IMSI: &str = "001010123456789";

/// A running collector node with stderr in a file.
struct Collector {
    child: Child,
    stderr: PathBuf,
}

impl Collector {
    /// Starts `imsitrace node` with `config`; a restarted node appends to the same log.
    fn start(config: &Path, stderr: &Path) -> Collector {
        let log = File::options().create(true).append(true).open(stderr).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
            .args(["node", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info,imsitrace::cluster=debug")
            .env("NO_COLOR", "1")
            .env("IMSITRACE_CLUSTER__COOKIE", COOKIE)
            .stdout(Stdio::null())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot run the imsitrace binary");
        Collector { child, stderr: stderr.to_path_buf() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the log has `count` lines containing `text`.
    fn wait_for(&self, text: &str, count: usize) {
        let started = Instant::now();
        while self.log().matches(text).count() < count {
            assert!(started.elapsed() < DEADLINE, "no {count} x {text:?} in the collector log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    fn stop(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collector_config(port: u16, url: &str, dir: &Path) -> String {
    format!(
        "[node]\nname = \"collector-1\"\nroles = [\"collector\"]\n\n[microcloud]\nredis = \"{url}\"\n\n[report]\noutdir = \"{}\"\n\n\
         [tracker]\naudit_log = \"{}\"\n\n\
         [cluster]\nlisten_address = \"127.0.0.1\"\nport = {port}\nheartbeat_interval = \"200ms\"\npeer_timeout = \"5s\"\n",
        dir.join("reports").display(),
        dir.join("audit.jsonl").display(),
    )
}

/// Runs `imsitrace track ARGS --cluster ADDR` with `cookie` in the environment.
fn track(address: &str, cookie: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imsitrace"))
        .arg("track")
        .args(args)
        .args(["--cluster", address, "--join-timeout", "20"])
        .env("IMSITRACE_CLUSTER__COOKIE", cookie)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the imsitrace binary")
}

fn text(output: &Output) -> String {
    format!("status {}\nstdout:\n{}\nstderr:\n{}", output.status, String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Returns the ids of `track --list --json`.
fn listed_ids(address: &str) -> Vec<String> {
    let output = track(address, COOKIE, &["--list", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {}", text(&output)));
    rows.as_array().unwrap().iter().map(|row| row["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn track_attach_list_restart_detach() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, collector_config(port, &redis.url(), dir.path())).unwrap();
    let stderr_path = dir.path().join("collector.stderr");
    let mut collector = Collector::start(&config, &stderr_path);
    collector.wait_for("tracker registry started", 1);

    let attached = track(&address, COOKIE, &[IMSI, "--background", "--duration", "1h", "--reason", "case 17"]);
    assert!(attached.status.success(), "{}", text(&attached));
    let id = String::from_utf8_lossy(&attached.stdout).lines().next().unwrap_or_default().to_owned();
    assert_eq!(id, "T1", "{}", text(&attached));
    assert_eq!(listed_ids(&address), ["T1"]);

    collector.stop();
    let collector = Collector::start(&config, &stderr_path);
    collector.wait_for("tracker registry started", 2);
    assert_eq!(listed_ids(&address), ["T1"], "the registration survives the collector restart");

    let bad_imsi = track(&address, COOKIE, &["12ab5", "--background", "--reason", "case 17"]);
    assert!(!bad_imsi.status.success(), "{}", text(&bad_imsi));
    assert!(stderr(&bad_imsi).contains("invalid IMSI \"12ab5\": give 5 to 15 decimal digits"), "{}", text(&bad_imsi));

    let unknown = track(&address, COOKIE, &["--detach", "T99"]);
    assert!(!unknown.status.success(), "{}", text(&unknown));
    assert!(stderr(&unknown).contains("unknown tracker id \"T99\""), "{}", text(&unknown));

    let detached = track(&address, COOKIE, &["--detach", "T1"]);
    assert!(detached.status.success(), "{}", text(&detached));
    assert!(listed_ids(&address).is_empty(), "no active tracker after the detach");

    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let actions: Vec<serde_json::Value> = audit.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(actions.len(), 2, "{audit}");
    assert_eq!(actions[0]["action"], "attach");
    assert_eq!(actions[0]["id"], "T1");
    assert_eq!(actions[0]["imsi"], IMSI);
    assert_eq!(actions[0]["reason"], "case 17");
    assert_eq!(actions[1]["action"], "detach");
    assert_eq!(actions[1]["id"], "T1");

    let wrong_cookie = Command::new(env!("CARGO_BIN_EXE_imsitrace"))
        .args(["track", "--list", "--cluster", &address, "--join-timeout", "5"])
        .env("IMSITRACE_CLUSTER__COOKIE", "another-cookie-0123456789")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!wrong_cookie.status.success(), "{}", text(&wrong_cookie));
    assert!(stderr(&wrong_cookie).contains("cookie or TLS settings differ"), "{}", text(&wrong_cookie));

    let log = collector.log();
    assert!(log.contains("transient cluster node left peer=cli-"), "a CLI leave is logged at debug:\n{log}");
    assert!(!log.contains(": cluster node left peer=cli-"), "a CLI leave is not a lost node:\n{log}");
    assert!(!log.contains("reconnecting to lost cluster node"), "no node reconnects to a CLI:\n{log}");
}

#[test]
fn track_unreachable_address() {
    let address = format!("127.0.0.1:{}", free_port());
    let output = track(&address, COOKIE, &["--list"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(stderr(&output).contains(&format!("cannot connect to cluster node {address}")), "{}", text(&output));
}

#[test]
fn track_without_reason_rejected() {
    let output = track("127.0.0.1:1", COOKIE, &[IMSI, "--background"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(stderr(&output).contains("--reason"), "{}", text(&output));
}
