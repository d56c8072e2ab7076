use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

/// IPv4/UDP DNS query for `www.google.com` (type A) from 10.0.0.1:54321 to 8.8.8.8:53.
const DNS_QUERY: [u8; 60] = [
    // IPv4: version 4, IHL 5 words; DSCP/ECN 0
    0x45, 0x00, //
    // total length 60
    0x00, 0x3c, //
    // identification 0x1234; flags and fragment offset 0
    0x12, 0x34, 0x00, 0x00, //
    // TTL 64; protocol 17 (UDP); header checksum
    0x40, 0x11, 0x4e, 0x6d, //
    // source 10.0.0.1
    0x0a, 0x00, 0x00, 0x01, //
    // destination 8.8.8.8
    0x08, 0x08, 0x08, 0x08, //
    // UDP: source port 54321, destination port 53
    0xd4, 0x31, 0x00, 0x35, //
    // UDP length 40; checksum 0 (not computed, allowed over IPv4)
    0x00, 0x28, 0x00, 0x00, //
    // DNS: ID 0xabcd; flags 0x0100 (standard query, recursion desired)
    0xab, 0xcd, 0x01, 0x00, //
    // QDCOUNT 1, ANCOUNT 0
    0x00, 0x01, 0x00, 0x00, //
    // NSCOUNT 0, ARCOUNT 0
    0x00, 0x00, 0x00, 0x00, //
    // QNAME: 3 "www"
    0x03, b'w', b'w', b'w', //
    // 6 "google"
    0x06, b'g', b'o', b'o', b'g', b'l', b'e', //
    // 3 "com", root label
    0x03, b'c', b'o', b'm', 0x00, //
    // QTYPE 1 (A), QCLASS 1 (IN)
    0x00, 0x01, 0x00, 0x01,
];

/// TCP flags of the hand-built segments.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

/// Builds an IPv4/TCP segment. The IPv4 header checksum is computed, and the TCP checksum is
/// left 0 because nDPI does not verify transport checksums.
fn ipv4_tcp(
    source: ([u8; 4], u16),
    destination: ([u8; 4], u16),
    (seq, ack): (u32, u32),
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut packet = ipv4_header(source.0, destination.0, 6, 20 + payload.len());
    packet.extend_from_slice(&source.1.to_be_bytes());
    packet.extend_from_slice(&destination.1.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ack.to_be_bytes());
    // data offset 5 words, no options; flags
    packet.extend_from_slice(&[0x50, flags]);
    // window 65535, checksum 0, urgent pointer 0
    packet.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    packet.extend_from_slice(payload);
    packet
}

/// Builds an IPv4/UDP datagram with UDP checksum 0 (no checksum, allowed over IPv4).
fn ipv4_udp(source: ([u8; 4], u16), destination: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("test payload fits in UDP");
    let mut packet = ipv4_header(source.0, destination.0, 17, usize::from(udp_len));
    packet.extend_from_slice(&source.1.to_be_bytes());
    packet.extend_from_slice(&destination.1.to_be_bytes());
    packet.extend_from_slice(&udp_len.to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(payload);
    packet
}

/// Builds a 20-byte IPv4 header with a correct header checksum.
fn ipv4_header(source: [u8; 4], destination: [u8; 4], protocol: u8, payload_len: usize) -> Vec<u8> {
    let total_len = u16::try_from(20 + payload_len).expect("test packet fits in IPv4");
    let mut header = vec![0x45, 0x00];
    header.extend_from_slice(&total_len.to_be_bytes());
    // identification 0, flags DF, fragment offset 0, TTL 64, protocol, checksum placeholder
    header.extend_from_slice(&[0, 0, 0x40, 0x00, 64, protocol, 0, 0]);
    header.extend_from_slice(&source);
    header.extend_from_slice(&destination);
    let checksum = internet_checksum(&header);
    header[10..12].copy_from_slice(&checksum.to_be_bytes());
    header
}

/// RFC 1071 checksum of an even-length header.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Deterministic pseudo-random bytes (xorshift64), so the "random payload" tests are stable.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Returns the part of a printed name before the dot (`TLS` for `TLS.Facebook`).
fn master_part(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Feeds `packets` (with timestamps one millisecond apart) to a new flow and finishes it.
fn classify(classifier: &mut Classifier, packets: &[Vec<u8>]) -> AppProtocol {
    let mut state = classifier.start();
    for (i, packet) in packets.iter().enumerate() {
        let ts_us = 1_374_937_800_000_000 + 1_000 * i as u64;
        if classifier.feed(&mut state, packet, ts_us) {
            break;
        }
    }
    classifier.finish(state)
}

/// Handshake and `GET /` with a Host header from 10.0.0.2:40000 to 192.0.2.80:80.
fn http_get_flow() -> Vec<Vec<u8>> {
    let client = ([10, 0, 0, 2], 40000);
    let server = ([192, 0, 2, 80], 80);
    let request = b"GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/7.88.1\r\n\
                    Accept: */*\r\n\r\n";
    vec![
        ipv4_tcp(client, server, (1000, 0), SYN, &[]),
        ipv4_tcp(server, client, (5000, 1001), SYN | ACK, &[]),
        ipv4_tcp(client, server, (1001, 5001), ACK, &[]),
        ipv4_tcp(client, server, (1001, 5001), PSH_ACK, request),
    ]
}

#[test]
fn dns_query_master_is_dns() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let mut state = classifier.start();

    // The query alone names DNS.Google, so classification is final after one packet.
    assert!(classifier.feed(&mut state, &DNS_QUERY, 1_000_000));
    let protocol = classifier.finish(state);

    let name = classifier.name(protocol);
    assert_eq!(master_part(name), "DNS", "printed name {name}");
}

#[test]
fn http_get_is_http() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let protocol = classify(&mut classifier, &http_get_flow());
    assert_eq!(classifier.name(protocol), "HTTP");
    assert_eq!(protocol.app, 0);
}

#[test]
fn random_udp_stops_at_cap_as_unknown() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let mut state = classifier.start();
    let cap = MAX_UDP_DISSECTED_PACKETS as usize;
    for i in 0..=cap {
        let payload = pseudo_random_bytes(0x9e37_79b9_7f4a_7c15 + i as u64, 200);
        let packet = ipv4_udp(([10, 1, 1, 1], 40001), ([10, 2, 2, 2], 50002), &payload);
        let complete = classifier.feed(&mut state, &packet, 1_000_000 + 20_000 * i as u64);
        // ndpiReader gives up on the packet that takes the flow over the cap.
        assert_eq!(complete, i == cap, "packet {}", i + 1);
    }
    let protocol = classifier.finish(state);
    assert_eq!(protocol, AppProtocol::default());
    assert_eq!(classifier.name(protocol), "Unknown");
}

#[test]
fn random_tcp_is_unknown() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let client = ([10, 1, 1, 1], 40003);
    let server = ([10, 2, 2, 2], 50004);
    let mut packets = vec![
        ipv4_tcp(client, server, (1, 0), SYN, &[]),
        ipv4_tcp(server, client, (9, 2), SYN | ACK, &[]),
        ipv4_tcp(client, server, (2, 10), ACK, &[]),
    ];
    for i in 0..10u32 {
        let payload = pseudo_random_bytes(0x2545_f491_4f6c_dd1d + u64::from(i), 300);
        let (from, to) = if i % 2 == 0 {
            (client, server)
        } else {
            (server, client)
        };
        packets.push(ipv4_tcp(from, to, (2 + 300 * i, 10), PSH_ACK, &payload));
    }
    let protocol = classify(&mut classifier, &packets);
    assert_eq!(classifier.name(protocol), "Unknown");
}

#[test]
fn flow_struct_is_reused_after_finish() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let first = classifier.start();
    let address = first.flow.as_ref().expect("a started flow has nDPI state").as_ptr();
    classifier.finish(first);

    let mut second = classifier.start();
    assert_eq!(second.flow.as_ref().expect("a started flow has nDPI state").as_ptr(), address);
    // The reused struct starts clean: a DNS flow on it is classified from scratch.
    classifier.feed(&mut second, &DNS_QUERY, 1_000_000);
    let dns = classifier.finish(second);
    let http = classify(&mut classifier, &http_get_flow());
    assert_eq!(master_part(classifier.name(dns)), "DNS");
    assert_eq!(classifier.name(http), "HTTP");
    assert_eq!(classifier.free_flows.len(), 1);
}

#[test]
fn flow_struct_returns_when_detection_completes() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let mut state = classifier.start();

    // The query alone names DNS.Google, so detection completes on the first packet.
    assert!(classifier.feed(&mut state, &DNS_QUERY, 1_000_000));
    assert!(state.flow.is_none(), "the classified flow kept its nDPI state");
    assert_eq!(classifier.free_flows.len(), 1);

    // Later packets are not fed, and the result stays.
    assert!(classifier.feed(&mut state, &DNS_QUERY, 2_000_000));
    let protocol = classifier.finish(state);
    assert_eq!(master_part(classifier.name(protocol)), "DNS");
    assert_eq!(classifier.free_flows.len(), 1);
}

#[test]
fn unfinished_flow_is_freed_on_drop() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let mut state = classifier.start();
    for (i, packet) in http_get_flow().iter().enumerate() {
        assert!(!classifier.feed(&mut state, packet, 1_000_000 + i as u64));
    }
    // Dropping the state frees the struct and the HTTP buffers nDPI allocated for it (checked
    // with valgrind); the pool gets nothing back.
    drop(state);
    assert!(classifier.free_flows.is_empty());
}

#[test]
fn report_name_is_most_specific_part() {
    let (frames, flows) = gtpgen_flows();
    let mut classifier = Classifier::new().expect("nDPI module");
    let facebook = classify_gtpgen_flow(&mut classifier, &frames, flow_by_id(&flows, 56));
    let http = classify(&mut classifier, &http_get_flow());

    assert_eq!(classifier.report_name(facebook), "Facebook");
    assert_eq!(classifier.report_name(http), "HTTP");
    assert_eq!(classifier.report_name(AppProtocol::default()), "Unknown");
}

#[test]
fn name_is_built_once() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let protocol = classify(&mut classifier, &http_get_flow());
    let first: *const str = classifier.name(protocol);
    let second: *const str = classifier.name(protocol);
    assert!(std::ptr::eq(first, second));
}

#[test]
fn name_accepts_ndpi_layout_and_unknown_ids() {
    let mut classifier = Classifier::new().expect("nDPI module");
    let http = classify(&mut classifier, &http_get_flow());
    assert_eq!(http.app, 0);

    // nDPI's own layout puts a single protocol in `app`; it prints the same.
    let ndpi_layout = AppProtocol {
        master: 0,
        app: http.master,
    };
    assert_eq!(classifier.name(ndpi_layout), "HTTP");
    let doubled = AppProtocol {
        master: http.master,
        app: http.master,
    };
    assert_eq!(classifier.name(doubled), "HTTP");
    let out_of_range = AppProtocol {
        master: u16::MAX,
        app: 0,
    };
    assert_eq!(classifier.name(out_of_range), "Unknown");
    let unknown_app = AppProtocol {
        master: http.master,
        app: u16::MAX,
    };
    assert_eq!(classifier.name(unknown_app), "HTTP.Unknown");
}

#[test]
fn to_app_protocol_splits_printed_name() {
    let cases = [
        ((0, 0), (0, 0)),
        ((0, 5), (5, 0)),
        ((5, 5), (5, 0)),
        ((91, 119), (91, 119)),
        ((7, 0), (7, 0)),
    ];
    for ((master_protocol, app_protocol), (master, app)) in cases {
        let detected = Detected {
            master_protocol,
            app_protocol,
        };
        assert_eq!(
            to_app_protocol(detected),
            AppProtocol { master, app },
            "{detected:?}"
        );
    }
}

#[test]
fn transport_protocol_skips_ipv6_extension_headers() {
    let mut packet = vec![0u8; 40 + 8 + 8];
    packet[0] = 0x60;
    // next header: hop-by-hop options, 8 bytes (length field 0)
    packet[6] = 0;
    // hop-by-hop: next header fragment
    packet[40] = 44;
    // fragment header: next header UDP
    packet[48] = 17;
    assert_eq!(transport_protocol(&packet), Some(17));
    assert_eq!(transport_protocol(&packet[..44]), None);
    assert_eq!(transport_protocol(&DNS_QUERY), Some(17));
    assert_eq!(transport_protocol(&[]), None);
    assert_eq!(max_dissected_packets(&DNS_QUERY), MAX_UDP_DISSECTED_PACKETS);
}

#[test]
fn error_messages_name_the_mismatch() {
    let api = NdpiError::ApiVersionMismatch {
        headers: 8668,
        library: 9000,
    };
    let message = api.to_string();
    assert!(message.contains("9000"), "{message}");
    assert!(message.contains("8668"), "{message}");
    assert!(message.contains("rebuild"), "{message}");

    let size = NdpiError::FlowSizeMismatch {
        headers: 688,
        library: 700,
    };
    let message = size.to_string();
    assert!(message.contains("700 bytes"), "{message}");
    assert!(message.contains("688"), "{message}");

    let message = NdpiError::InitFailed.to_string();
    assert!(message.contains("ndpi_init_detection_module"), "{message}");
}

#[test]
fn classifier_and_flow_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Classifier>();
    assert_send::<NdpiFlow>();
}

#[test]
fn classifiers_start_in_parallel() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut classifier = Classifier::new().expect("nDPI module");
                let protocol = classify(&mut classifier, &http_get_flow());
                classifier.name(protocol).to_owned()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("classifier thread"), "HTTP");
    }
}

#[test]
fn ndpi_revision_is_4_2() {
    assert!(ndpi_revision().starts_with("4.2"), "{}", ndpi_revision());
}

// Flows of tests/data/gtpgen/small.pcap, a generated capture of Ethernet/IPv4/UDP/GTP-U
// frames. `small.truth.json` lists each flow's frame indexes (0-based) and its protocol.

fn gtpgen_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/gtpgen")
        .join(file)
}

/// Reads a little-endian, microsecond pcap file into (timestamp in µs, frame) pairs.
fn read_pcap(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("pcap file");
    assert_eq!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let u32_at = |offset: usize| {
        let field: [u8; 4] = bytes[offset..offset + 4].try_into().expect("4 bytes");
        u32::from_le_bytes(field)
    };
    let mut frames = Vec::new();
    let mut offset = 24;
    while offset + 16 <= bytes.len() {
        let ts_us = u64::from(u32_at(offset)) * 1_000_000 + u64::from(u32_at(offset + 4));
        let captured = u32_at(offset + 8) as usize;
        let data = bytes[offset + 16..offset + 16 + captured].to_vec();
        frames.push((ts_us, data));
        offset += 16 + captured;
    }
    frames
}

/// Returns the inner IP packet of an Ethernet/IPv4/UDP/GTP-U G-PDU frame.
fn gtpu_inner(frame: &[u8]) -> &[u8] {
    let ip = &frame[14..];
    let udp = &ip[usize::from(ip[0] & 0x0f) * 4..];
    let gtp = &udp[8..];
    // E, S or PN set: 4 optional bytes (sequence, N-PDU number, next extension type) follow.
    if gtp[0] & 0x07 == 0 {
        return &gtp[8..];
    }
    let mut next_extension = gtp[11];
    let mut offset = 12;
    while next_extension != 0 {
        // An extension header's length octet counts 4-byte units; its last byte is the next type.
        let length = usize::from(gtp[offset]) * 4;
        next_extension = gtp[offset + length - 1];
        offset += length;
    }
    &gtp[offset..]
}

/// Classifies the flow with `flow_id` from small.pcap, feeding every one of its packets.
fn classify_gtpgen_flow(
    classifier: &mut Classifier,
    frames: &[(u64, Vec<u8>)],
    flow: &Value,
) -> AppProtocol {
    let mut state = classifier.start();
    for index in flow["frames"].as_array().expect("frames") {
        let (ts_us, frame) = &frames[index.as_u64().expect("frame index") as usize];
        if classifier.feed(&mut state, gtpu_inner(frame), *ts_us) {
            break;
        }
    }
    classifier.finish(state)
}

fn gtpgen_flows() -> (Vec<(u64, Vec<u8>)>, Vec<Value>) {
    let frames = read_pcap(&gtpgen_path("small.pcap"));
    let truth_text = std::fs::read_to_string(gtpgen_path("small.truth.json")).expect("truth");
    let truth: Value = serde_json::from_str(&truth_text).expect("truth JSON");
    let flows = truth["flows"].as_array().expect("flows").clone();
    (frames, flows)
}

fn flow_by_id(flows: &[Value], flow_id: u64) -> &Value {
    flows
        .iter()
        .find(|flow| flow["flow_id"].as_u64() == Some(flow_id))
        .expect("flow in truth file")
}

/// Expected names for TLS and QUIC flows of small.pcap, as printed by
/// `ndpiReader -t -v 2 -i tests/data/gtpgen/small.pcap` (nDPI 4.2.0, Debian 12).
const GTPGEN_TLS_QUIC: [(u64, &str, &str); 6] = [
    // (flow_id, inner IP version and server name, printed name)
    (8, "IPv4 TLS scontent.cdninstagram.com", "TLS.Instagram"),
    (79, "IPv6 TLS api.telegram.org", "TLS"),
    (
        4,
        "IPv4 QUIC rr3---sn-4g5e6nsz.googlevideo.com",
        "QUIC.YouTube",
    ),
    (39, "IPv6 QUIC www.google.com", "QUIC.Google"),
    (26, "IPv4 TLS www.netflix.com", "TLS.NetFlix"),
    (62, "IPv4 TLS chat.signal.org", "TLS.Signal"),
];

#[test]
fn gtpgen_tls_quic_flows_match_truth() {
    let (frames, flows) = gtpgen_flows();
    let mut classifier = Classifier::new().expect("nDPI module");
    for (flow_id, description, expected_name) in GTPGEN_TLS_QUIC {
        let flow = flow_by_id(&flows, flow_id);
        let protocol = classify_gtpgen_flow(&mut classifier, &frames, flow);
        let name = classifier.name(protocol);
        let truth = flow["protocol"].as_str().expect("protocol");
        assert_eq!(master_part(name), truth, "flow {flow_id} ({description})");
        assert_eq!(name, expected_name, "flow {flow_id} ({description})");
    }
}

#[test]
fn gtpgen_facebook_sni_is_tls_facebook() {
    let (frames, flows) = gtpgen_flows();
    let flow = flow_by_id(&flows, 56);
    assert_eq!(flow["tls_sni"], "www.facebook.com");

    let mut classifier = Classifier::new().expect("nDPI module");
    let protocol = classify_gtpgen_flow(&mut classifier, &frames, flow);
    assert_eq!(classifier.name(protocol), "TLS.Facebook");
}

/// Checks the master part of all 198 flows. Their full names were also compared, flow by flow,
/// with the output of `ndpiReader -t -v 2` (nDPI 4.2.0) and all agree.
#[test]
fn gtpgen_every_flow_master_matches_truth() {
    let (frames, flows) = gtpgen_flows();
    let mut classifier = Classifier::new().expect("nDPI module");
    for flow in &flows {
        let protocol = classify_gtpgen_flow(&mut classifier, &frames, flow);
        let name = classifier.name(protocol);
        let truth = flow["protocol"].as_str().expect("protocol");
        assert_eq!(master_part(name), truth, "flow {}: {name}", flow["flow_id"]);
    }
}
