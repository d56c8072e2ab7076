//! Cluster membership of `imsitrace node`. Every node is a separate process on 127.0.0.1,
//! because ractor's process groups and registry are global to a process. The tests check
//! that nodes which seed one collector end up connected to each other, that a killed and
//! restarted probe leaves and rejoins, and that the heartbeat closes the session of a
//! frozen probe. A node with another cookie is rejected on both sides, and with TLS only
//! nodes whose certificate chains to the cluster's CA join.
//!
//! Every wait polls the nodes' logs (stderr, info level) with a generous deadline, because
//! the machine may be loaded. Heartbeats and retries use short settings, so the waits are
//! short when it is not.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::data;
use common::nodes::{cluster_section, poll_until, Node, COOKIE};
use redis_server::{free_port, RedisServer};

/// Generous bound on every wait.
const DEADLINE: Duration = Duration::from_secs(60);

/// Returns the configuration of a probe node that reads the small synthetic capture into
/// the embedded microcloud and then stays in the cluster.
fn probe_config(name: &str, port: u16, seeds: &[u16], extra: &str) -> String {
    let input = data("gtpgen/small.pcap");
    format!(
        "[node]\nname = \"{name}\"\nroles = [\"probe\"]\n\n[probe]\ninputs = [\"{}\"]\nshards = 1\n\n{}",
        input.display(),
        cluster_section(port, seeds, extra)
    )
}

fn collector_config(name: &str, port: u16, url: &str, outdir: &Path) -> String {
    format!(
        "[node]\nname = \"{name}\"\nroles = [\"collector\"]\n\n[microcloud]\nredis = \"{url}\"\n\n[report]\noutdir = \"{}\"\ninterval = \"1s\"\noffset = \"0s\"\n\n{}",
        outdir.display(),
        cluster_section(port, &[], "")
    )
}

#[test]
fn nodes_connect_leave_and_rejoin() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (collector_port, port_1, port_2) = (free_port(), free_port(), free_port());
    let collector = Node::start(dir.path(), "collector", &collector_config("collector", collector_port, &server.url(), &dir.path().join("reports")), COOKIE);
    let probe_1_config = probe_config("probe-1", port_1, &[collector_port], "");
    let mut probe_1 = Node::start(dir.path(), "probe-1", &probe_1_config, COOKIE);
    let mut probe_2 = Node::start(dir.path(), "probe-2", &probe_config("probe-2", port_2, &[collector_port], ""), COOKIE);

    // The probes seed only the collector; its heartbeats advertise each probe to the other,
    // and probe-1, whose name sorts first, connects to probe-2.
    let nodes = [&collector, &probe_1, &probe_2];
    poll_until("all three nodes to join each other", DEADLINE, &nodes, || {
        collector.joins_of("probe-1") >= 1
            && collector.joins_of("probe-2") >= 1
            && probe_1.joins_of("collector") >= 1
            && probe_1.joins_of("probe-2") >= 1
            && probe_2.joins_of("collector") >= 1
            && probe_2.joins_of("probe-1") >= 1
    });
    poll_until("the peers line of the collector", DEADLINE, &nodes, || collector.log().contains("cluster peers count=2 peers=probe-1@127.0.0.1, probe-2@127.0.0.1"));

    // A killed probe closes its sockets, so both others see it leave at once. Restarted on
    // the same port, it seeds the collector again and connects to probe-2 again.
    probe_1.kill();
    poll_until("probe-1 to leave", DEADLINE, &[&collector, &probe_2], || collector.leaves_of("probe-1") >= 1 && probe_2.leaves_of("probe-1") >= 1);
    probe_1 = Node::start(dir.path(), "probe-1", &probe_1_config, COOKIE);
    let nodes = [&collector, &probe_1, &probe_2];
    poll_until("probe-1 to rejoin", DEADLINE, &nodes, || collector.joins_of("probe-1") >= 2 && probe_2.joins_of("probe-1") >= 2);
    assert!(probe_2.log().contains("cluster peers count=1 peers=collector@127.0.0.1"), "probe-2 logged its peers after the leave:\n{}", probe_2.log());

    probe_2.terminate(DEADLINE);
    probe_1.terminate(DEADLINE);
    poll_until("the collector to see both probes leave", DEADLINE, &[&collector], || collector.leaves_of("probe-1") >= 2 && collector.leaves_of("probe-2") >= 1);
}

#[test]
fn frozen_probe_closed_by_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let first = Node::start(dir.path(), "probe-a", &probe_config("probe-a", port_a, &[], ""), COOKIE);
    let second = Node::start(dir.path(), "probe-b", &probe_config("probe-b", port_b, &[port_a], ""), COOKIE);
    poll_until("the probes to join", DEADLINE, &[&first, &second], || first.joins_of("probe-b") >= 1 && second.joins_of("probe-a") >= 1);

    // SIGSTOP keeps probe-b's sockets open, so only the missing heartbeats show that it is
    // gone: probe-a closes the session after the 5-s peer timeout.
    second.signal("-STOP");
    poll_until("probe-a to close the silent session", DEADLINE, &[&first], || {
        let log = first.log();
        log.contains("cluster node sent no heartbeat within the peer timeout; closing its session peer=probe-b@127.0.0.1") && first.leaves_of("probe-b") >= 1
    });
    // Resumed, probe-b finds its session closed and reconnects to its seed. Its own stall
    // does not make it blame probe-a, whose pings wait unread in the socket.
    second.signal("-CONT");
    poll_until("probe-b to rejoin", DEADLINE, &[&first, &second], || first.joins_of("probe-b") >= 2);
    poll_until("probe-b to log the stall", DEADLINE, &[&second], || second.log().contains("this node ran no heartbeat tick for longer than the peer timeout"));
    assert!(!second.log().contains("sent no heartbeat"), "probe-b blamed probe-a for its own stall:\n{}", second.log());
}

#[test]
fn wrong_cookie_rejected_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (port, intruder_port) = (free_port(), free_port());
    let node = Node::start(dir.path(), "probe-a", &probe_config("probe-a", port, &[], ""), COOKIE);
    let intruder = Node::start(dir.path(), "intruder", &probe_config("intruder", intruder_port, &[port], ""), "another-cookie-0123456789");

    poll_until("the refusal on both sides", DEADLINE, &[&node, &intruder], || {
        let rejected_here = node.log().contains("rejected a cluster connection: authentication failed, so the node's cookie differs from this node's cluster cookie address=127.0.0.1:");
        let rejected_there = intruder.log().contains(&format!("cluster node closed the connection during the handshake: it rejected this node's cookie or TLS certificate, or it is not an imsitrace node address=127.0.0.1:{port}"));
        rejected_here && rejected_there
    });
    assert!(node.log().contains("claimed_name=intruder@127.0.0.1"), "the rejection names the node:\n{}", node.log());
    assert_eq!(node.joins_of("intruder"), 0, "{}", node.log());
    assert_eq!(intruder.joins_of("probe-a"), 0, "{}", intruder.log());
}

/// A CA and the files of the nodes it signs, all PEM in one directory.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_path: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let certificate = params.self_signed(&key).unwrap();
        let ca_path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_path, certificate.pem()).unwrap();
        TestCa { issuer: rcgen::Issuer::new(params, key), ca_path }
    }

    /// Writes a certificate for 127.0.0.1 and its key, and returns the `[cluster.tls]`
    /// section of a node that trusts this CA.
    fn node_tls(&self, dir: &Path, node: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, node);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (dir.join(format!("{node}.pem")), dir.join(format!("{node}.key")));
        std::fs::write(&cert_path, certificate.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        format!("\n[cluster.tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n", cert_path.display(), key_path.display(), self.ca_path.display())
    }
}

#[test]
fn tls_admits_only_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_ca = TestCa::new(dir.path(), "cluster");
    let foreign_ca = TestCa::new(dir.path(), "foreign");
    let (port_a, port_b, port_foreign, port_plain) = (free_port(), free_port(), free_port(), free_port());
    let tls_a = cluster_ca.node_tls(dir.path(), "probe-a");
    let tls_b = cluster_ca.node_tls(dir.path(), "probe-b");
    let node_a = Node::start(dir.path(), "probe-a", &probe_config("probe-a", port_a, &[], &tls_a), COOKIE);
    let node_b = Node::start(dir.path(), "probe-b", &probe_config("probe-b", port_b, &[port_a], &tls_b), COOKIE);
    poll_until("the TLS nodes to join", DEADLINE, &[&node_a, &node_b], || node_a.joins_of("probe-b") >= 1 && node_b.joins_of("probe-a") >= 1);

    // Same cookie, but a certificate from another CA: each side rejects the other's chain,
    // and the connecting node logs the TLS failure as an error.
    let tls_foreign = foreign_ca.node_tls(dir.path(), "foreign");
    let foreign = Node::start(dir.path(), "foreign", &probe_config("foreign", port_foreign, &[port_a], &tls_foreign), COOKIE);
    // Same cookie without TLS: probe-a's TLS listener cannot read its handshake.
    let plain = Node::start(dir.path(), "plain", &probe_config("plain", port_plain, &[port_a], ""), COOKIE);
    let nodes = [&node_a, &foreign, &plain];
    poll_until("the nodes without the cluster CA to be rejected", DEADLINE, &nodes, || {
        let foreign_log = foreign.log();
        let tls_rejected = foreign_log.contains("ERROR") && foreign_log.contains(&format!("TLS handshake with cluster node failed; check cluster.tls on both nodes address=127.0.0.1:{port_a}"));
        let plain_rejected = plain.log().contains(&format!("cluster node closed the connection during the handshake: it rejected this node's cookie or TLS certificate, or it is not an imsitrace node address=127.0.0.1:{port_a}"));
        tls_rejected && plain_rejected
    });
    assert!(foreign.log().contains("UnknownIssuer"), "the error names the certificate problem:\n{}", foreign.log());
    assert_eq!(node_a.joins_of("foreign") + node_a.joins_of("plain"), 0, "{}", node_a.log());
}

