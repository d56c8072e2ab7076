use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::wire::UserAnomalies;

const SGSN: [u8; 4] = [10, 10, 0, 11];
const GGSN: [u8; 4] = [10, 20, 0, 11];

/// Builds an Ethernet II header carrying `ethertype`.
fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]; // destination, source MAC
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame
}

/// Builds an IPv4 header (IHL 5) for a payload of `payload_len` bytes.
fn ipv4_header(protocol: u8, id: u16, flags_offset: u16, payload_len: usize) -> Vec<u8> {
    let mut header = vec![0x45, 0x00]; // version 4, IHL 5, DSCP/ECN
    header.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes()); // Total Length
    header.extend_from_slice(&id.to_be_bytes()); // Identification
    header.extend_from_slice(&flags_offset.to_be_bytes()); // flags, fragment offset (8-byte units)
    header.extend_from_slice(&[64, protocol, 0, 0]); // TTL, protocol, checksum (not checked)
    header.extend_from_slice(&SGSN); // source
    header.extend_from_slice(&GGSN); // destination
    header
}

fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = src_port.to_be_bytes().to_vec(); // source port
    datagram.extend_from_slice(&dst_port.to_be_bytes()); // destination port
    datagram.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes()); // Length
    datagram.extend_from_slice(&[0, 0]); // checksum
    datagram.extend_from_slice(payload);
    datagram
}

/// Builds an Ethernet/IPv4/UDP frame around `payload`.
fn udp_frame(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let datagram = udp(src_port, dst_port, payload);
    let mut frame = ethernet(0x0800);
    frame.extend_from_slice(&ipv4_header(17, 1, 0, datagram.len()));
    frame.extend_from_slice(&datagram);
    frame
}

/// Builds a G-PDU with TEID 0x100 and no optional fields around `t_pdu`.
fn gpdu(t_pdu: &[u8]) -> Vec<u8> {
    let mut gtp = vec![0x30, 0xff]; // version 1, PT 1; G-PDU
    gtp.extend_from_slice(&(t_pdu.len() as u16).to_be_bytes()); // Length
    gtp.extend_from_slice(&0x100u32.to_be_bytes()); // TEID
    gtp.extend_from_slice(t_pdu);
    gtp
}

/// Builds a minimal inner IPv4 packet: a header only, protocol ICMP.
fn inner_ipv4() -> Vec<u8> {
    let mut packet = ipv4_header(1, 9, 0, 0);
    packet[12..16].copy_from_slice(&[100, 64, 0, 1]); // source: the subscriber
    packet
}

fn user_pdu<'a>(decoded: &'a Decoded<'a>) -> &'a UserPdu<'a> {
    match decoded {
        Decoded::Gtp(GtpFrame { pdu: GtpPdu::User(pdu), .. }) => pdu,
        other => panic!("expected a GTP-U frame, got {other:?}"),
    }
}

#[test]
fn gpdu_over_ethernet() {
    let inner = inner_ipv4();
    let frame = udp_frame(2152, 2152, &gpdu(&inner));
    let mut decoder = Decoder::new();
    let decoded = decoder.decode(LinkType::Ethernet, 0, &frame).unwrap();
    let Decoded::Gtp(gtp) = &decoded else { panic!("expected GTP, got {decoded:?}") };
    assert_eq!(gtp.outer.src, IpAddr::V4(Ipv4Addr::from(SGSN)));
    assert_eq!(gtp.outer.dst, IpAddr::V4(Ipv4Addr::from(GGSN)));
    assert_eq!((gtp.outer.src_port, gtp.outer.dst_port), (2152, 2152));
    assert_eq!(gtp.fragments, None);
    assert_eq!(gtp.anomalies, FrameAnomalies::default());
    let pdu = user_pdu(&decoded);
    assert_eq!(pdu.teid, 0x100);
    assert_eq!(pdu.payload, inner.as_slice());
}

#[test]
fn dns_from_port_2152_is_not_gtp() {
    let query = [
        0x32, 0x49, // DNS ID
        0x01, 0x00, // flags: standard query, recursion desired
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 question, no other records
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x00, // "example"
        0x00, 0x01, 0x00, 0x01, // type A, class IN
    ];
    let frame = udp_frame(2152, 53, &query);
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &frame), Ok(Decoded::NotGtp));
}

#[test]
fn zero_extension_length_frame_fails_fast() {
    let gtp = [0x36, 0xff, 0x00, 0x34, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0x00];
    let frame = udp_frame(2152, 2152, &gtp);
    let started = Instant::now();
    let mut decoder = Decoder::new();
    let result = decoder.decode(LinkType::Ethernet, 0, &frame);
    assert_eq!(result, Err(DecodeError::GtpZeroExtensionLength));
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn gpdu_without_ip_is_malformed() {
    let frame = udp_frame(2152, 2152, &gpdu(&[0x01, 0x02, 0x03]));
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &frame), Err(DecodeError::GpduNotIp));
}

#[test]
fn gtpv2_on_2123_is_control() {
    let echo = [0x40, 0x01, 0x00, 0x04, 0x00, 0x00, 0x07, 0x00]; // GTPv2 Echo Request, sequence 7
    let frame = udp_frame(40364, 2123, &echo);
    let mut decoder = Decoder::new();
    let decoded = decoder.decode(LinkType::Ethernet, 0, &frame).unwrap();
    let Decoded::Gtp(GtpFrame { pdu: GtpPdu::Control { version, bytes }, outer, .. }) = decoded else {
        panic!("expected GTP-C, got {decoded:?}");
    };
    assert_eq!(version, GtpVersion::V2);
    assert_eq!(bytes, echo.as_slice());
    assert_eq!((outer.src_port, outer.dst_port), (40364, 2123));
}

#[test]
fn control_port_without_gtp_header() {
    let frame = udp_frame(2123, 5000, &[0x00; 12]); // version 0 in the first octet
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &frame), Ok(Decoded::NotGtp));
    let frame = udp_frame(2123, 5000, &[0x48, 0x20, 0x00]); // GTPv2, 3 bytes
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &frame), Err(DecodeError::GtpTruncated));
}

#[test]
fn other_traffic_is_not_gtp() {
    let arp = ethernet(0x0806);
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &arp), Ok(Decoded::NotGtp));
    let mut tcp = ethernet(0x0800);
    tcp.extend_from_slice(&ipv4_header(6, 1, 0, 0));
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &tcp), Ok(Decoded::NotGtp));
    let frame = udp_frame(5353, 53, &gpdu(&inner_ipv4()));
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &frame), Ok(Decoded::NotGtp));
}

#[test]
fn udp_length_mismatch_flagged() {
    let mut frame = udp_frame(2152, 2152, &gpdu(&inner_ipv4()));
    frame.extend_from_slice(&[0, 0]); // two bytes beyond the UDP Length...
    let ip_total = (frame.len() - 14) as u16;
    frame[16..18].copy_from_slice(&ip_total.to_be_bytes()); // ...that IPv4 Total Length covers
    let mut decoder = Decoder::new();
    let Decoded::Gtp(gtp) = decoder.decode(LinkType::Ethernet, 0, &frame).unwrap() else { panic!("expected GTP") };
    assert!(gtp.anomalies.contains(FrameAnomalies::UDP_LENGTH_MISMATCH));
    let GtpPdu::User(pdu) = gtp.pdu else { panic!("expected GTP-U") };
    assert_eq!(pdu.anomalies, UserAnomalies::default());
}

/// Splits one UDP datagram into two IPv4 fragment frames at byte `at` (a multiple of 8).
fn fragments(datagram: &[u8], at: usize) -> (Vec<u8>, Vec<u8>) {
    let mut first = ethernet(0x0800);
    first.extend_from_slice(&ipv4_header(17, 0x77, 0x2000, at)); // MF set, offset 0
    first.extend_from_slice(&datagram[..at]);
    let mut last = ethernet(0x0800);
    last.extend_from_slice(&ipv4_header(17, 0x77, (at / 8) as u16, datagram.len() - at)); // MF clear
    last.extend_from_slice(&datagram[at..]);
    (first, last)
}

#[test]
fn fragments_reassembled_in_any_order() {
    let inner = inner_ipv4();
    let datagram = udp(2152, 2152, &gpdu(&inner));
    let (first, last) = fragments(&datagram, 16);
    for (one, two) in [(&first, &last), (&last, &first)] {
        let mut decoder = Decoder::new();
        assert_eq!(decoder.decode(LinkType::Ethernet, 1_000, one), Ok(Decoded::FragmentHeld));
        let decoded = decoder.decode(LinkType::Ethernet, 2_000, two).unwrap();
        let Decoded::Gtp(gtp) = &decoded else { panic!("expected GTP, got {decoded:?}") };
        let frames = gtp.fragments.expect("a reassembled datagram lists its frames");
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].ts_us, frames[0].frame.as_slice()), (1_000, one.as_slice()));
        assert_eq!((frames[1].ts_us, frames[1].frame.as_slice()), (2_000, two.as_slice()));
        assert_eq!(user_pdu(&decoded).payload, inner.as_slice());
        assert_eq!(decoder.reassembly_stats().datagrams_completed, 1);
    }
}

#[test]
fn truncated_fragment_rejected() {
    let datagram = udp(2152, 2152, &gpdu(&inner_ipv4()));
    let (first, _) = fragments(&datagram, 16);
    let cut = &first[..first.len() - 1];
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, cut), Err(DecodeError::FragmentTruncated));
}

/// Builds an Ethernet/IPv6 frame with `next_header` and `payload`.
fn ipv6_frame(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = ethernet(0x86dd);
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class, flow label
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes()); // Payload Length
    frame.extend_from_slice(&[next_header, 64]); // Next Header, Hop Limit
    frame.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()); // source
    frame.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets()); // destination
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn outer_ipv6_gpdu() {
    let frame = ipv6_frame(17, &udp(62301, 2152, &gpdu(&inner_ipv4())));
    let mut decoder = Decoder::new();
    let Decoded::Gtp(gtp) = decoder.decode(LinkType::Ethernet, 0, &frame).unwrap() else { panic!("expected GTP") };
    assert_eq!(gtp.outer.src, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(gtp.outer.dst_port, 2152);
}

#[test]
fn outer_ipv6_fragment_unsupported() {
    let mut payload = vec![17, 0, 0x00, 0x01, 0, 0, 0, 5]; // fragment header: next UDP, offset 0, MF, id 5
    payload.extend_from_slice(&udp(2152, 2152, &gpdu(&inner_ipv4())));
    let frame = ipv6_frame(44, &payload);
    assert_eq!(Decoder::new().decode(LinkType::Ethernet, 0, &frame), Err(DecodeError::Ipv6FragmentUnsupported));
}
