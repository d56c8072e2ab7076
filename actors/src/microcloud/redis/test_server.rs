//! A throwaway `redis-server` for tests: a free loopback port, an empty temporary data
//! directory and no persistence. Dropping the handle kills the server.
//!
//! Only the standard library and `tempfile` are used, so the end-to-end tests of the
//! `node` package include this file too.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Maximum time for a started server to reply to PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server` bound to 127.0.0.1.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it replies to PING.
    ///
    /// Panics when `redis-server` is not installed (`scripts/setup.sh` installs it) or
    /// does not reply within 10 s. A port taken between the check and the start is
    /// retried with another port.
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("cannot create a data directory for redis-server");
            let port = free_port();
            let child = spawn(port, dir.path());
            let mut server = RedisServer { child, port, _dir: dir };
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("redis-server did not start on a free loopback port in 5 attempts");
    }

    /// Kills the server and starts an empty one on the same port, as after a crash of a
    /// server without persistence. Panics when the new server does not reply to PING.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("cannot create a data directory for redis-server");
        self.child = spawn(self.port, dir.path());
        self._dir = dir;
        assert!(self.wait_until_ready(), "redis-server did not restart on port {}", self.port);
    }

    /// Returns the URL of the server, `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Sends one inline command (e.g. `CLIENT KILL TYPE normal`) and returns the raw reply.
    pub fn command(&self, line: &str) -> String {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).expect("cannot connect to the test redis-server");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("set read timeout");
        stream.write_all(format!("{line}\r\n").as_bytes()).expect("cannot send to the test redis-server");
        let mut reply = vec![0; 4096];
        let length = stream.read(&mut reply).expect("no reply from the test redis-server");
        String::from_utf8_lossy(&reply[..length]).into_owned()
    }

    /// Polls with PING until the server replies. Returns false when the process exited first
    /// (its port was taken) or the timeout passed.
    fn wait_until_ready(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.answers_ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0; 7];
        stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on 127.0.0.1:`port` with its data in `dir` and no persistence.
fn spawn(port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run redis-server; install it with scripts/setup.sh")
}

/// Returns a loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a loopback port");
    listener.local_addr().expect("bound address").port()
}
