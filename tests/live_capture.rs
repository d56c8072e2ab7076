//! Live capture on the loopback interface: real GTPv2-C and GTP-U datagrams sent between
//! 127.0.0.x addresses are captured, attributed to their subscriber and written to the
//! subscriber's pcap file, with 1, 2 and 4 shards. Also: a node waiting for a missing
//! interface, and an interface set down and up again in a network namespace of the test's own.
//!
//! Addresses (all of 127.0.0.0/8 is on `lo`): MME 127.0.0.2, SGW-C 127.0.0.5, SGW-U
//! 127.0.0.3, eNB 127.0.0.4, so the F-TEID addresses match the outer IP addresses. Other
//! tests may send on `lo` at the same time, so the checks look only at this test's IMSI
//! and TEIDs.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::read_pcap;
use serde_json::Value;

const MME: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const SGW_U: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const ENB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const SGW_C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
/// UE address given in the PDN Address Allocation of the response.
const UE: Ipv4Addr = Ipv4Addr::new(10, 45, 0, 2);
const GTP_C_PORT: u16 = 2123;
const GTP_U_PORT: u16 = 2152;
/// G-PDUs sent uplink, eNB to SGW-U.
const GPDUS: usize = 5;
/// Maximum wait for the capture's start and for its statistics to reach the frames sent.
const DEADLINE: Duration = Duration::from_secs(60);

/// Identifiers of one test subscriber, unique per process so parallel runs do not mix.
struct Subscriber {
    imsi: String,
    mme_teid: u32,
    sgw_c_teid: u32,
    sgw_u_teid: u32,
}

impl Subscriber {
    /// Returns the subscriber of run `run` of this process.
    fn new(run: u32) -> Subscriber {
        let id = (std::process::id() % 100_000_000) * 10 + run;
        let base = 0x4c00_0000 | (id & 0x00ff_ffff);
        Subscriber { imsi: format!("001019{id:09}"), mme_teid: base, sgw_c_teid: base ^ 0x0100_0000, sgw_u_teid: base ^ 0x0200_0000 }
    }
}

#[test]
fn loopback_session_captured() {
    for (run, shards) in [(1, "1"), (2, "2"), (3, "4")] {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = Subscriber::new(run);
        let pcap_dir = dir.path().join("pcap");
        let events = dir.path().join("events.jsonl");
        let (mut child, lines) = start_capture(&subscriber.imsi, &pcap_dir, &events, shards);
        if !wait_for_line(&mut child, &lines, |line| line.contains("capturing")) {
            return;
        }

        let sent = send_session(&subscriber);
        let expected_frames = sent.len() as u64;
        let reached = wait_for_line(&mut child, &lines, |line| {
            line.contains("interface statistics") && field(line, "frames").is_some_and(|frames| frames >= expected_frames)
        });
        assert!(reached, "{shards} shard(s): the capture did not report {expected_frames} frames");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill failed");
        let output = child.wait_with_output().unwrap();
        let stderr: Vec<String> = lines.try_iter().collect();
        assert!(output.status.success(), "{shards} shard(s): imsitrace failed:\n{}", stderr.join("\n"));
        let summary: Value = serde_json::from_slice(&output.stdout).expect("the --json summary is not JSON");

        assert_eq!(summary["shards"], shards.parse::<u64>().unwrap());
        check_counters(&summary);
        check_events(&events, &subscriber);
        check_pcap(&pcap_dir.join(format!("{}.pcap", subscriber.imsi)), &sent);
    }
}

/// Starts `imsitrace analyze --interface lo --shards N` and a thread that passes its stderr
/// lines on.
fn start_capture(imsi: &str, pcap_dir: &std::path::Path, events: &std::path::Path, shards: &str) -> (Child, Receiver<String>) {
    let args = [
        "analyze", "--interface", "lo", "--immediate", "--no-promisc", "--stats-interval", "1", "--json", "--shards", shards,
        "--track", imsi, "--pcap-dir", &pcap_dir.display().to_string(), "--events", &events.display().to_string(),
    ];
    spawn_with_stderr_lines(&args, "warn,imsitrace::pipeline::live=info")
}

/// Starts the binary with `args` and `RUST_LOG=rust_log`; returns the child and a channel
/// of its stderr lines, read by a thread.
fn spawn_with_stderr_lines(args: &[&str], rust_log: &str) -> (Child, Receiver<String>) {
    spawn_with_stderr_lines_of(Command::new(env!("CARGO_BIN_EXE_imsitrace")).args(args), rust_log)
}

/// Starts `command` with `RUST_LOG=rust_log`; returns the child and a channel of its
/// stderr lines, read by a thread.
fn spawn_with_stderr_lines_of(command: &mut Command, rust_log: &str) -> (Child, Receiver<String>) {
    let mut child = command
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the imsitrace binary");
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

/// Waits for a stderr line that `matches`. Returns false, after printing why, when the
/// process cannot capture for lack of privileges; panics when it exits or the deadline
/// passes first.
fn wait_for_line(child: &mut Child, lines: &Receiver<String>, matches: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) else {
            if let Some(status) = child.try_wait().unwrap() {
                seen.extend(lines.try_iter());
                if seen.iter().any(|line| line.contains("CAP_NET_RAW")) {
                    eprintln!("SKIPPED: live capture on lo needs CAP_NET_RAW or root:\n{}", seen.join("\n"));
                    return false;
                }
                panic!("imsitrace exited with {status}:\n{}", seen.join("\n"));
            }
            continue;
        };
        if matches(&line) {
            return true;
        }
        seen.push(line);
    }
    let _ = child.kill();
    panic!("no matching log line within {DEADLINE:?}:\n{}", seen.join("\n"));
}

/// Returns the value of `name=N` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Sends the Create Session exchange and the G-PDUs; returns every datagram's UDP
/// payload in the order sent.
fn send_session(subscriber: &Subscriber) -> Vec<Vec<u8>> {
    let mme = UdpSocket::bind(SocketAddrV4::new(MME, 0)).unwrap();
    let sgw_c = UdpSocket::bind(SocketAddrV4::new(SGW_C, GTP_C_PORT))
        .unwrap_or_else(|e| panic!("cannot bind the SGW-C socket {SGW_C}:{GTP_C_PORT}: {e}"));
    let enb = UdpSocket::bind(SocketAddrV4::new(ENB, 0)).unwrap();
    let mme_address = mme.local_addr().unwrap();
    let mut sent = Vec::new();

    let request = create_session_request(subscriber, 0x00_1234);
    mme.send_to(&request, SocketAddrV4::new(SGW_C, GTP_C_PORT)).unwrap();
    sent.push(request);
    let response = create_session_response(subscriber, 0x00_1234);
    sgw_c.send_to(&response, mme_address).unwrap();
    sent.push(response);
    // The control frames must be captured before the G-PDUs that depend on them; libpcap
    // delivers one interface's frames in arrival order.
    for index in 0..GPDUS {
        let gpdu = g_pdu(subscriber.sgw_u_teid, index as u16);
        enb.send_to(&gpdu, SocketAddrV4::new(SGW_U, GTP_U_PORT)).unwrap();
        sent.push(gpdu);
    }
    sent
}

/// Wraps `ies` in a GTPv2-C header with the T flag (TS 29.274 §5.1).
fn gtpv2(message_type: u8, teid: u32, sequence: u32, ies: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x48, message_type]; // version 2, T set
    bytes.extend_from_slice(&((ies.len() + 8) as u16).to_be_bytes()); // Message Length
    bytes.extend_from_slice(&teid.to_be_bytes()); // TEID
    bytes.extend_from_slice(&sequence.to_be_bytes()[1..]); // 3-byte sequence number
    bytes.push(0); // spare
    bytes.extend_from_slice(ies);
    bytes
}

/// Builds an IE: type, length, instance and content (TS 29.274 §8.2.1).
fn ie(ie_type: u8, instance: u8, content: &[u8]) -> Vec<u8> {
    let mut bytes = vec![ie_type];
    bytes.extend_from_slice(&(content.len() as u16).to_be_bytes());
    bytes.push(instance);
    bytes.extend_from_slice(content);
    bytes
}

/// Builds an F-TEID IE with an IPv4 address (TS 29.274 §8.22).
fn fteid(instance: u8, interface: u8, teid: u32, address: Ipv4Addr) -> Vec<u8> {
    let mut content = vec![0x80 | interface]; // V4 flag, interface type
    content.extend_from_slice(&teid.to_be_bytes());
    content.extend_from_slice(&address.octets());
    ie(87, instance, &content)
}

/// Encodes IMSI digits in TBCD, a filler 0xf for an odd count (TS 29.274 §8.3).
fn tbcd(digits: &str) -> Vec<u8> {
    let nibbles: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    nibbles.chunks(2).map(|pair| pair[0] | (pair.get(1).copied().unwrap_or(0xf) << 4)).collect()
}

/// Builds a Create Session Request (type 32) from the MME: IMSI, RAT type, S11 MME F-TEID, APN,
/// PAA and a Bearer Context with EBI 5.
fn create_session_request(subscriber: &Subscriber, sequence: u32) -> Vec<u8> {
    let mut ies = ie(1, 0, &tbcd(&subscriber.imsi)); // IMSI
    ies.extend(ie(82, 0, &[6])); // RAT Type: EUTRAN
    ies.extend(fteid(0, 10, subscriber.mme_teid, MME)); // Sender F-TEID: S11 MME GTP-C
    ies.extend(ie(71, 0, b"\x08internet")); // APN
    ies.extend(ie(79, 0, &[1, 0, 0, 0, 0])); // PAA: IPv4, dynamic
    ies.extend(ie(93, 0, &ie(73, 0, &[5]))); // Bearer Context: EBI 5
    gtpv2(32, 0, sequence, &ies)
}

/// Builds a Create Session Response (type 33) from the SGW-C: cause accepted, S11 SGW F-TEID, PAA
/// and a Bearer Context with the S1-U SGW F-TEID of the SGW-U.
fn create_session_response(subscriber: &Subscriber, sequence: u32) -> Vec<u8> {
    let mut ies = ie(2, 0, &[16, 0]); // Cause 16: request accepted
    ies.extend(fteid(0, 11, subscriber.sgw_c_teid, SGW_C)); // Sender F-TEID: S11/S4 SGW GTP-C
    ies.extend(ie(79, 0, &[1, UE.octets()[0], UE.octets()[1], UE.octets()[2], UE.octets()[3]])); // PAA
    let mut bearer = ie(73, 0, &[5]); // EBI 5
    bearer.extend(ie(2, 0, &[16, 0])); // Cause 16
    bearer.extend(fteid(0, 1, subscriber.sgw_u_teid, SGW_U)); // S1-U SGW F-TEID
    ies.extend(ie(93, 0, &bearer)); // Bearer Context
    gtpv2(33, subscriber.mme_teid, sequence, &ies)
}

/// Builds a G-PDU (TS 29.281 §5.1) carrying an IPv4/UDP packet from the UE to 192.0.2.10:53.
fn g_pdu(teid: u32, index: u16) -> Vec<u8> {
    let payload = [0xab; 32];
    let udp_len = 8 + payload.len() as u16;
    let mut inner = vec![0x45, 0];
    inner.extend_from_slice(&(20 + udp_len).to_be_bytes()); // Total Length
    inner.extend_from_slice(&index.to_be_bytes()); // Identification
    inner.extend_from_slice(&[0, 0, 64, 17, 0, 0]); // no fragment, TTL 64, UDP, checksum
    inner.extend_from_slice(&UE.octets());
    inner.extend_from_slice(&[192, 0, 2, 10]);
    let checksum = ipv4_checksum(&inner);
    inner[10..12].copy_from_slice(&checksum.to_be_bytes());
    inner.extend_from_slice(&40_000u16.to_be_bytes()); // source port
    inner.extend_from_slice(&53u16.to_be_bytes()); // destination port
    inner.extend_from_slice(&udp_len.to_be_bytes());
    inner.extend_from_slice(&[0, 0]); // no UDP checksum
    inner.extend_from_slice(&payload);
    let mut message = vec![0x30, 0xff]; // version 1, PT 1, no optional fields; G-PDU
    message.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    message.extend_from_slice(&teid.to_be_bytes());
    message.extend_from_slice(&inner);
    message
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let sum: u32 = header.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]]))).sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    !((folded & 0xffff) + (folded >> 16)) as u16
}

fn check_counters(summary: &Value) {
    let capture = &summary["capture"];
    assert!(capture["gtpv2c"].as_u64().unwrap() >= 2, "GTPv2-C frames: {capture}");
    assert!(capture["gtpu_gpdu"].as_u64().unwrap() >= GPDUS as u64, "G-PDUs: {capture}");
    assert_eq!(capture["stopped_early"], true, "the capture ends on SIGTERM: {capture}");
    let interfaces = capture["interfaces"].as_array().expect("interfaces in the summary");
    assert_eq!(interfaces.len(), 1, "{capture}");
    let lo = &interfaces[0];
    assert_eq!(lo["interface"], "lo");
    assert!(lo["received"].as_u64().unwrap() > 0, "pcap received: {lo}");
    assert!(lo["frames"].as_u64().unwrap() >= 2 + GPDUS as u64, "frames read: {lo}");
    assert_eq!(lo["dropped"], 0, "kernel drops: {lo}");
    assert_eq!(lo["up"], true);
    assert!(summary["user_plane"]["gpdu_attributed"].as_u64().unwrap() >= GPDUS as u64, "{}", summary["user_plane"]);
}

fn check_events(path: &std::path::Path, subscriber: &Subscriber) {
    let text = std::fs::read_to_string(path).unwrap();
    let events: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let ours: Vec<&Value> = events.iter().filter(|event| event["imsi"] == subscriber.imsi.as_str()).collect();
    assert_eq!(ours.len(), 1, "events of {}: {ours:?}", subscriber.imsi);
    let attach = ours[0];
    assert_eq!(attach["kind"], "attach");
    assert_eq!(attach["ue_ipv4"], UE.to_string());
    let tunnels = attach["tunnels"].as_array().unwrap();
    let s1u = tunnels.iter().find(|tunnel| tunnel["teid"] == subscriber.sgw_u_teid);
    let s1u = s1u.unwrap_or_else(|| panic!("no S1-U SGW tunnel in {tunnels:?}"));
    assert_eq!(s1u["addr"], SGW_U.to_string());
    assert_eq!(s1u["bearer"], 5);
}

/// Checks that the subscriber's pcap contains exactly the datagrams sent, in order: Ethernet (`lo`),
/// IPv4 without options, UDP.
fn check_pcap(path: &std::path::Path, sent: &[Vec<u8>]) {
    let pcap = read_pcap(path);
    assert_eq!(pcap.link_type, 1, "Ethernet link type of lo");
    let payloads: Vec<&[u8]> = pcap.frames.iter().map(|frame| &frame.data[14 + 20 + 8..]).collect();
    let expected: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    assert_eq!(payloads.len(), expected.len(), "frames in {}", path.display());
    for (index, (payload, sent)) in payloads.iter().zip(&expected).enumerate() {
        assert_eq!(payload, sent, "frame {index} of {}", path.display());
    }
}

/// A node whose capture interface does not exist starts anyway, logs the failure and tries
/// to open the interface again with backoff until it is stopped.
#[test]
fn node_retries_missing_interface() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    let text = "[node]\nname = \"live-probe\"\nroles = [\"probe\"]\n\n[probe]\ninterfaces = [\"nosuch9\"]\n\n\
                [probe.capture]\nrestart_min = \"100ms\"\nrestart_max = \"200ms\"\n";
    std::fs::write(&config, text).unwrap();
    let (mut child, lines) = spawn_with_stderr_lines(&["node", "--config", config.to_str().unwrap()], "info");

    // Without CAP_NET_RAW the node stops at its first open with the capability message,
    // and wait_for_line prints the skip.
    if !wait_for_line(&mut child, &lines, |line| line.contains("cannot open the interface") && line.contains("nosuch9")) {
        return;
    }
    let retried = wait_for_line(&mut child, &lines, |line| line.contains("cannot reopen the interface") && line.contains("failures=3"));
    assert!(retried, "no log of the third failed attempt");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill failed");
    let output = child.wait_with_output().unwrap();
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(output.status.success(), "the node failed:\n{}", rest.join("\n"));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("interface nosuch9: 0 received"), "{summary}");
    assert!(summary.contains("down at the end"), "{summary}");
}

/// An interface set down during the capture is closed, logged and reopened once it is up
/// again. The test runs the capture on a veth pair in a network namespace of its own
/// (`unshare --net`), so no interface of the machine changes. It is skipped where the
/// process may not create namespaces or interfaces.
#[test]
fn interface_set_down_reopened() {
    let binary = env!("CARGO_BIN_EXE_imsitrace");
    let script = format!(
        "set -e\n\
         ip link add cap0 type veth peer name cap1\n\
         ip link set cap0 up\n\
         echo namespace-ready >&2\n\
         exec {binary} analyze --interface cap0 --duration 30 --no-promisc\n"
    );
    let probe = Command::new("unshare").args(["--net", "ip", "link", "add", "cap0", "type", "veth", "peer", "name", "cap1"]).output();
    if !probe.as_ref().is_ok_and(|output| output.status.success()) {
        eprintln!("SKIPPED: cannot create a network namespace with a veth pair (unshare --net, ip link add): {probe:?}");
        return;
    }
    let (mut child, lines) = spawn_with_stderr_lines_of(Command::new("unshare").args(["--net", "sh", "-c", &script]), "warn,imsitrace::pipeline::live=info");
    if !wait_for_line(&mut child, &lines, |line| line.contains("capturing")) {
        return;
    }
    let pid = child.id().to_string();
    let set_link = |state: &str| {
        let status = Command::new("nsenter").args(["--net", "--target", &pid, "ip", "link", "set", "cap0", state]).status().unwrap();
        assert!(status.success(), "ip link set cap0 {state} in the capture's namespace failed");
    };

    set_link("down");
    let closed = wait_for_line(&mut child, &lines, |line| line.contains("interface capture failed") && line.contains("lack IFF_UP"));
    assert!(closed, "no log of the interface going down");
    set_link("up");
    let reopened = wait_for_line(&mut child, &lines, |line| line.contains("interface capture restarted") && line.contains("cap0"));
    assert!(reopened, "no log of the interface reopened");

    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let output = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the capture failed:\n{summary}");
    assert!(summary.contains("interface cap0:"), "{summary}");
}
