//! The Ansible deployment in deploy/. ansible-lint (production profile) and
//! `ansible-playbook --syntax-check` must pass on the playbooks. Then site.yml runs for real
//! on localhost with one collector and two probes in two sites. Each host has its own
//! throwaway install root and systemd is off. A redis-server of the test is the microcloud,
//! and a test CA signs the nodes' TLS certificates. Every rendered configuration must pass
//! `imsitrace config check`; the installed binaries, started on the rendered
//! configurations, must form a cluster and process the capture. A
//! second run of site.yml must change nothing, and upgrade.yml must run the probes one site
//! per batch.
//!
//! ansible-core and ansible-lint come from .venv-deploy/, where scripts/setup.sh installs
//! the versions pinned in deploy/requirements.txt. Every wait polls with a generous deadline.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{data, read_pcap};
use redis_server::{free_port, RedisServer};
use serde_json::json;

/// Generous bound on every wait for the nodes.
const DEADLINE: Duration = Duration::from_secs(90);

/// Cluster cookie given to the playbook as the vault variable (at least 16 characters).
const COOKIE: &str = "deploy-test-cookie-0123456789";

/// Inventory names of the test nodes. Each of the `PROBES` reads a capture file and is
/// started. `LIVE_PROBE` shares the site of the first: its configuration captures live on
/// the loopback interface, and the test checks it without starting the node.
const COLLECTOR: &str = "collector-1";
const PROBES: [(&str, &str); 2] = [("probe-a-1", "site_a"), ("probe-b-1", "site_b")];
const LIVE_PROBE: &str = "probe-a-live";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository root exists")
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

fn venv_dir() -> PathBuf {
    repo_root().join(".venv-deploy")
}

/// Returns the path of an Ansible tool in .venv-deploy/bin, failing with what to run when
/// it is not installed.
fn tool(name: &str) -> PathBuf {
    let path = venv_dir().join("bin").join(name);
    assert!(
        path.is_file(),
        "{name} not found at {}: run scripts/setup.sh, which installs the pinned ansible-core and ansible-lint into .venv-deploy/",
        path.display()
    );
    path
}

/// Returns a command that runs an Ansible tool in deploy/, with the venv first on PATH and
/// Ansible's temporary files and caches in `scratch`.
fn ansible(name: &str, scratch: &Path) -> Command {
    let program = tool(name);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut search_path = vec![venv_dir().join("bin")];
    search_path.extend(std::env::split_paths(&path));
    let mut command = Command::new(program);
    command
        .current_dir(deploy_dir())
        .env("PATH", std::env::join_paths(search_path).expect("PATH entries contain no separator"))
        // ansible-lint keeps its cache under $VIRTUAL_ENV/.ansible instead of the repository.
        .env("VIRTUAL_ENV", venv_dir())
        .env("ANSIBLE_LOCAL_TEMP", scratch.join("ansible-local"))
        .env("ANSIBLE_REMOTE_TMP", scratch.join("ansible-remote"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs `command` and fails with its output unless it exits with status 0.
fn run_ok(description: &str, command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {description}: {error}"));
    assert!(
        output.status.success(),
        "{description} failed with {}:\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn lint_and_syntax_check_pass() {
    let scratch = tempfile::tempdir().unwrap();
    // The path is given as in the README: from the repository root.
    let mut lint = ansible("ansible-lint", scratch.path());
    lint.current_dir(repo_root()).args(["--profile", "production", "--offline", "deploy/"]);
    run_ok("ansible-lint --profile production deploy/", &mut lint);

    for playbook in ["site.yml", "upgrade.yml"] {
        let mut check = ansible("ansible-playbook", scratch.path());
        check.args(["--syntax-check", "-i", "inventory/example", playbook]);
        run_ok(&format!("ansible-playbook --syntax-check {playbook}"), &mut check);
    }
}

/// One host of the test inventory: its name, install root and cluster port.
struct TestHost {
    name: &'static str,
    root: PathBuf,
    port: u16,
}

impl TestHost {
    fn new(dir: &Path, name: &'static str) -> TestHost {
        TestHost { name, root: dir.join("root").join(name), port: free_port() }
    }

    fn config(&self) -> PathBuf {
        self.root.join("etc/imsitrace/node.toml")
    }

    fn binary(&self) -> PathBuf {
        self.root.join("usr/local/bin/imsitrace")
    }

    fn data(&self, relative: &str) -> PathBuf {
        self.root.join("var/lib/imsitrace").join(relative)
    }
}

/// A CA that signs the test nodes' certificates for 127.0.0.1.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "deploy test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { issuer: rcgen::Issuer::new(params, key), pem }
    }

    /// Returns the PEM certificate and key of `node`, valid for 127.0.0.1 as server and client.
    fn node_pem(&self, node: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, node);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        (certificate.pem(), key.serialize_pem())
    }
}

/// Returns the host variables of a node: its install root, cluster port and TLS files.
fn node_vars(host: &TestHost, ca: &TestCa) -> serde_json::Value {
    let (cert, key) = ca.node_pem(host.name);
    json!({ "imsitrace_root": host.root, "imsitrace_cluster_port": host.port, "imsitrace_cluster_tls_cert": cert, "imsitrace_cluster_tls_key": key })
}

/// Returns the output of `id FLAG` (the current user or group name).
fn id(flag: &str) -> String {
    let output = run_ok("id", Command::new("id").arg(flag));
    String::from_utf8(output.stdout).expect("id prints UTF-8").trim().to_owned()
}

/// Writes the test inventory (JSON, which is YAML) and returns its path. Every host runs
/// locally with its own install root; the service user is the current user, so nothing is
/// created outside the roots.
fn write_inventory(dir: &Path, redis_port: u16, ca: &TestCa, collector: &TestHost, probes: &[TestHost], inputs: &[PathBuf], live: &TestHost) -> PathBuf {
    let mut sites = serde_json::Map::new();
    for ((probe, (_, site)), input) in probes.iter().zip(PROBES).zip(inputs) {
        let mut vars = node_vars(probe, ca);
        vars["imsitrace_probe_inputs"] = json!([input]);
        sites.insert(site.to_owned(), json!({ "hosts": { probe.name: vars }, "vars": { "imsitrace_site": site.replace('_', "-") } }));
    }
    let mut live_vars = node_vars(live, ca);
    live_vars["imsitrace_probe_interfaces"] = json!(["lo"]);
    live_vars["imsitrace_probe_capture_settings"] = json!({ "snaplen": 2048, "read_timeout": "50ms", "promiscuous": false });
    sites[PROBES[0].1]["hosts"][live.name] = live_vars;
    let inventory = json!({
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": venv_dir().join("bin/python3"),
                "ansible_host": "127.0.0.1",
                "imsitrace_systemd": false,
                "imsitrace_manage_user": false,
                "imsitrace_user": id("-un"),
                "imsitrace_group": id("-gn"),
                "imsitrace_binary_src": env!("CARGO_BIN_EXE_imsitrace"),
                "imsitrace_redis_manage": false,
                "imsitrace_redis_host": "127.0.0.1",
                "imsitrace_redis_port": redis_port,
                "imsitrace_region": "test",
                "imsitrace_cluster_tls": true,
                "imsitrace_cluster_settings": { "heartbeat_interval": "200ms", "reconnect_min": "200ms", "reconnect_max": "1s" },
                "imsitrace_report_settings": { "interval": "1s", "offset": "0s" },
                "imsitrace_probe_settings": { "shards": 1 },
            },
            "children": {
                "redis": { "hosts": { "microcloud": { "imsitrace_root": dir.join("root/microcloud") } } },
                "collectors": { "hosts": { collector.name: node_vars(collector, ca) } },
                "probes": { "children": sites },
            },
        },
    });
    let path = dir.join("inventory.yml");
    std::fs::write(&path, serde_json::to_vec_pretty(&inventory).unwrap()).unwrap();
    path
}

/// Writes the vault variables (the cookie and the CA certificate) to a vars file in `dir`,
/// as a vault file would give them, and returns its path.
fn write_secrets(dir: &Path, ca: &TestCa) -> PathBuf {
    let path = dir.join("secrets.json");
    std::fs::write(&path, json!({ "vault_imsitrace_cluster_cookie": COOKIE, "vault_imsitrace_tls_ca": ca.pem }).to_string()).unwrap();
    path
}

/// Runs a playbook on the test inventory with the vars file `secrets`, and returns its
/// stdout.
fn run_playbook(dir: &Path, inventory: &Path, secrets: &Path, playbook: &str) -> String {
    let mut command = ansible("ansible-playbook", dir);
    command.arg("-i").arg(inventory).arg("-e").arg(format!("@{}", secrets.display())).arg(playbook);
    let output = run_ok(&format!("ansible-playbook {playbook}"), &mut command);
    String::from_utf8(output.stdout).expect("ansible-playbook prints UTF-8")
}

/// Returns the `changed=N` count of every host in the PLAY RECAP of a playbook's output.
fn changed_counts(stdout: &str) -> Vec<(String, u64)> {
    let recap = stdout.split("PLAY RECAP").nth(1).unwrap_or_else(|| panic!("no PLAY RECAP in:\n{stdout}"));
    recap
        .lines()
        .filter(|line| line.contains("changed="))
        .map(|line| {
            let host = line.split_whitespace().next().unwrap().to_owned();
            let count = line.split_whitespace().find_map(|field| field.strip_prefix("changed=")).unwrap();
            (host, count.parse().unwrap_or_else(|_| panic!("changed count in {line:?}")))
        })
        .collect()
}

/// A node process started on a rendered configuration, with stdout and stderr in files.
struct Node {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Node {
    /// Starts the binary installed under the host's root on its rendered configuration.
    /// The cookie comes from the rendered cookie file, not from the environment.
    fn start(dir: &Path, host: &TestHost) -> Node {
        let stdout = dir.join(format!("{}.stdout", host.name));
        let stderr = dir.join(format!("{}.stderr", host.name));
        let child = Command::new(host.binary())
            .arg("node")
            .arg("--config")
            .arg(host.config())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", host.binary().display()));
        Node { name: host.name.to_owned(), child, stdout, stderr }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn joined(&self, peer: &str) -> bool {
        self.log().contains(&format!("cluster node joined peer={peer}@127.0.0.1 "))
    }

    /// Sends SIGTERM and fails unless the node exits with status 0 before the deadline.
    fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {} failed", self.name);
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}; log:\n{}", self.name, self.log());
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not exit within {DEADLINE:?} after SIGTERM; log:\n{}", self.name, self.log());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 100 ms until it returns true, or fails after the deadline with
/// `condition` and every node's output and log.
fn poll_until(condition: &str, nodes: &[Node], mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = nodes.iter().map(|node| format!("--- {}\n{}{}", node.name, node.output(), node.log())).collect();
    panic!("timed out after {DEADLINE:?} waiting for {condition}; logs:\n{}", logs.join("\n"));
}

/// Checks the files that site.yml installed on one host: the configuration passes
/// `imsitrace config check` (which reads the TLS files), the cookie is only in the cookie
/// file, and the secrets and the configuration are closed to other users.
fn check_installed_files(host: &TestHost) {
    let config = host.config();
    let mut check = Command::new(env!("CARGO_BIN_EXE_imsitrace"));
    check.arg("config").arg("check").arg(&config);
    let output = run_ok(&format!("imsitrace config check {}", config.display()), &mut check);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains(&format!("name {}", host.name)), "{}: config check summary:\n{summary}", host.name);

    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(COOKIE), "{} contains the cookie:\n{text}", config.display());
    assert!(text.contains("[cluster.tls]"), "{} has no [cluster.tls]:\n{text}", config.display());
    let cookie_file = host.root.join("etc/imsitrace/cluster.cookie");
    assert_eq!(std::fs::read_to_string(&cookie_file).unwrap().trim(), COOKIE, "{}", cookie_file.display());
    let tls = ["node.pem", "node.key", "ca.pem"].map(|name| host.root.join("etc/imsitrace/tls").join(name));
    for path in [&config, &cookie_file].into_iter().chain(&tls) {
        assert_eq!(mode(path), 0o640, "mode of {}", path.display());
    }
    assert_eq!(mode(&host.binary()), 0o755, "mode of {}", host.binary().display());
}

/// Checks that the live probe's configuration captures on its interfaces with the
/// inventory's capture settings, and names no capture files.
fn check_live_probe_config(host: &TestHost) {
    let text = std::fs::read_to_string(host.config()).unwrap();
    let config = host.config();
    assert!(text.contains("interfaces = [\"lo\"]"), "{} has no interfaces:\n{text}", config.display());
    assert!(!text.contains("inputs ="), "{} lists inputs beside its interfaces:\n{text}", config.display());
    let capture = text.split("[probe.capture]").nth(1).unwrap_or_else(|| panic!("{} has no [probe.capture]:\n{text}", config.display()));
    for line in ["snaplen = 2048", "read_timeout = \"50ms\"", "promiscuous = false"] {
        assert!(capture.contains(line), "[probe.capture] of {} lacks `{line}`:\n{text}", config.display());
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o7777
}

/// Runs the installed cleanup script of `host` and checks that it deletes a pcap file older
/// than the pcap retention (7 days by default) and keeps a new one and the event log.
fn check_cleanup(host: &TestHost) {
    let old = host.data("pcap/001010000000099.pcap");
    let new = host.data("pcap/001010000000098.pcap");
    for path in [&old, &new] {
        std::fs::write(path, b"not a real capture").unwrap();
    }
    let eight_days_ago = SystemTime::now() - Duration::from_secs(8 * 86_400);
    File::options().write(true).open(&old).unwrap().set_modified(eight_days_ago).unwrap();

    let script = host.root.join("usr/local/sbin/imsitrace-cleanup");
    run_ok(&format!("{}", script.display()), &mut Command::new(&script));
    assert!(!old.exists(), "the cleanup kept {}, older than the retention", old.display());
    assert!(new.exists(), "the cleanup deleted {}", new.display());
    assert!(host.data("events/events.jsonl").exists(), "the cleanup deleted the event log");
}

#[test]
fn site_playbook_deploys_working_cluster() {
    let server = RedisServer::start();
    let redis_port: u16 = server.url().trim_start_matches("redis://127.0.0.1:").trim_end_matches('/').parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let collector = TestHost::new(dir.path(), COLLECTOR);
    let probes: Vec<TestHost> = PROBES.iter().map(|(name, _)| TestHost::new(dir.path(), name)).collect();
    let capture = data("gtpgen/small.pcap");
    let inputs: Vec<PathBuf> = probes.iter().map(|probe| dir.path().join(format!("{}.pcap", probe.name))).collect();
    for input in &inputs {
        std::fs::copy(&capture, input).unwrap();
    }
    let ca = TestCa::new();
    let live = TestHost::new(dir.path(), LIVE_PROBE);
    let inventory = write_inventory(dir.path(), redis_port, &ca, &collector, &probes, &inputs, &live);
    let secrets = write_secrets(dir.path(), &ca);

    run_playbook(dir.path(), &inventory, &secrets, "site.yml");
    for host in std::iter::once(&collector).chain(&probes).chain([&live]) {
        check_installed_files(host);
    }
    check_live_probe_config(&live);

    // The collector reports the buckets of the capture, whose packet times are long past.
    // Each probe prints its summary once its input ends, and stays in the cluster.
    let mut nodes: Vec<Node> = std::iter::once(&collector).chain(&probes).map(|host| Node::start(dir.path(), host)).collect();
    let frames = read_pcap(&capture).frames.len();
    poll_until("every node to join the two others", &nodes, || {
        nodes.iter().all(|node| nodes.iter().filter(|peer| peer.name != node.name).all(|peer| node.joined(&peer.name)))
    });
    poll_until("both probes to print their summary", &nodes, || nodes[1..].iter().all(|probe| probe.output().contains(&format!("frames        {frames} ("))));
    for probe in &nodes[1..] {
        assert!(probe.output().contains(" 0 microcloud errors"), "{} summary:\n{}", probe.name, probe.output());
    }
    let reports = collector.data("reports");
    poll_until("the collector to write a report", &nodes, || std::fs::read_dir(&reports).map(|mut entries| entries.next().is_some()).unwrap_or(false));
    for probe in &probes {
        let events = std::fs::read_to_string(probe.data("events/events.jsonl")).unwrap();
        assert!(!events.is_empty(), "{} logged no session event", probe.name);
    }
    for node in &mut nodes {
        node.terminate();
    }
    check_cleanup(&probes[0]);

    let second = run_playbook(dir.path(), &inventory, &secrets, "site.yml");
    let counts = changed_counts(&second);
    assert_eq!(counts.len(), 5, "recap of the second run:\n{second}");
    for (host, changed) in &counts {
        assert_eq!(*changed, 0, "the second run of site.yml changed {host}:\n{second}");
    }

    // upgrade.yml runs the probes one site per batch: each batch starts with the play's
    // header and names only the probe of its site.
    let upgrade = run_playbook(dir.path(), &inventory, &secrets, "upgrade.yml");
    let batches: Vec<&str> = upgrade.split("PLAY [Probes, one site at a time]").skip(1).collect();
    assert_eq!(batches.len(), PROBES.len(), "batches of upgrade.yml:\n{upgrade}");
    for (batch, (probe, _)) in batches.iter().zip(PROBES) {
        let others: Vec<&str> = PROBES.iter().map(|(name, _)| *name).filter(|name| *name != probe).collect();
        assert!(batch.contains(&format!("[{probe}]")), "batch of {probe}:\n{batch}");
        for other in others {
            assert!(!batch.contains(&format!("[{other}]")), "the batch of {probe} also ran {other}:\n{batch}");
        }
    }
}
