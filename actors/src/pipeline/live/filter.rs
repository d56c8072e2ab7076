//! The BPF filter of a live capture.
//!
//! The default keeps GTP-C (UDP port 2123, TS 29.274 §4.4.2.1 and TS 29.060 §10.2.1),
//! GTP-U (UDP port 2152, TS 29.281 §4.4.2) and every outer IPv4 fragment of a UDP datagram.
//! A non-first fragment carries no UDP header, and the decoder needs all of them to
//! reassemble the GTP message. Each of these matches untagged, behind one VLAN tag and
//! behind two (IEEE 802.1ad QinQ). The `vlan` keyword of libpcap moves the offsets of the
//! rest of the expression by one tag, so the tagged forms are nested inside it.

/// GTP-C port (TS 29.274 §4.4.2.1).
pub const GTP_C_PORT: u16 = 2123;
/// GTP-U port (TS 29.281 §4.4.2).
pub const GTP_U_PORT: u16 = 2152;

/// Returns the default filter: GTP-C, GTP-U and outer IPv4 UDP fragments, untagged or
/// behind one or two VLAN tags.
pub fn default_filter() -> String {
    let gtp = gtp_expression();
    format!("{gtp} or (vlan and ({gtp} or (vlan and ({gtp}))))")
}

/// Returns the default filter for an interface of link type `link`. libpcap has no `vlan`
/// keyword for Linux cooked captures (the `any` interface), whose frames carry no tag
/// (the kernel moves it to packet metadata), so those get the untagged part alone.
pub fn default_filter_for(link: pcap::Linktype) -> String {
    let tagged = default_filter();
    let compiles = pcap::Capture::dead(link).is_ok_and(|capture| capture.compile(&tagged, true).is_ok());
    if compiles { tagged } else { gtp_expression() }
}

/// GTP of one encapsulation level. `ip[6:2] & 0x3fff` is the More Fragments flag and the
/// Fragment Offset of the IPv4 header (RFC 791 §3.1), non-zero for every fragment.
fn gtp_expression() -> String {
    format!("udp port {GTP_C_PORT} or udp port {GTP_U_PORT} or (ip proto 17 and ip[6:2] & 0x3fff != 0)")
}

/// Compiles `filter` for an Ethernet capture, as libpcap would for an interface, and
/// returns libpcap's message when it is not valid.
pub fn check_filter(filter: &str) -> Result<(), String> {
    let capture = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(|e| format!("cannot check the BPF filter: {e}"))?;
    capture.compile(filter, true).map(|_| ()).map_err(|e| filter_error(filter, &e))
}

/// Message of a filter that libpcap does not compile.
pub fn filter_error(filter: &str, error: &pcap::Error) -> String {
    format!("invalid BPF filter {filter:?}: {error} (pcap-filter(7) gives the syntax)")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::wire::{Decoded, Decoder, LinkType};

    /// Compiles the default filter for an Ethernet link.
    fn program() -> pcap::BpfProgram {
        let capture = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        capture.compile(&default_filter(), true).unwrap()
    }

    /// Builds an IPv4 header (20 bytes) with a correct total length and the given flags word.
    fn ipv4(protocol: u8, payload_len: usize, flags_fragment: u16) -> Vec<u8> {
        let total = (20 + payload_len) as u16;
        let mut header = vec![0x45, 0]; // version 4, IHL 5, DSCP 0
        header.extend_from_slice(&total.to_be_bytes()); // Total Length
        header.extend_from_slice(&[0x12, 0x34]); // Identification
        header.extend_from_slice(&flags_fragment.to_be_bytes()); // Flags, Fragment Offset
        header.extend_from_slice(&[64, protocol, 0, 0]); // TTL, Protocol, checksum (unchecked)
        header.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]); // source, destination
        header
    }

    /// Builds an IPv4/UDP datagram from port 40000 to `port` with 16 bytes of payload.
    fn udp(port: u16) -> Vec<u8> {
        let mut datagram = ipv4(17, 24, 0);
        datagram.extend_from_slice(&40_000u16.to_be_bytes()); // source port
        datagram.extend_from_slice(&port.to_be_bytes()); // destination port
        datagram.extend_from_slice(&24u16.to_be_bytes()); // UDP length
        datagram.extend_from_slice(&[0, 0]); // checksum
        datagram.extend_from_slice(&[0x32, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // GTP-U header
        datagram
    }

    /// Builds an Ethernet frame with the given VLAN tags (TPID, VLAN ID) around an IPv4 packet.
    fn ethernet(tags: &[(u16, u16)], packet: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]; // destination, source MAC
        for &(tpid, vid) in tags {
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&vid.to_be_bytes());
        }
        frame.extend_from_slice(&0x0800u16.to_be_bytes()); // EtherType IPv4
        frame.extend_from_slice(packet);
        frame
    }

    const NO_TAG: &[(u16, u16)] = &[];
    const ONE_TAG: &[(u16, u16)] = &[(0x8100, 100)];
    const TWO_TAGS: &[(u16, u16)] = &[(0x88a8, 200), (0x8100, 100)];
    const TWO_8100_TAGS: &[(u16, u16)] = &[(0x8100, 200), (0x8100, 100)];

    #[test]
    fn gtp_ports_match_at_every_depth() {
        let program = program();
        for tags in [NO_TAG, ONE_TAG, TWO_TAGS, TWO_8100_TAGS] {
            for port in [GTP_C_PORT, GTP_U_PORT] {
                assert!(program.filter(&ethernet(tags, &udp(port))), "UDP port {port} behind {tags:?}");
            }
        }
    }

    #[test]
    fn other_udp_rejected_at_every_depth() {
        let program = program();
        for tags in [NO_TAG, ONE_TAG, TWO_TAGS] {
            assert!(!program.filter(&ethernet(tags, &udp(53))), "UDP port 53 behind {tags:?}");
        }
    }

    #[test]
    fn three_tags_rejected() {
        let tags = [(0x88a8, 300), (0x8100, 200), (0x8100, 100)];
        assert!(!program().filter(&ethernet(&tags, &udp(GTP_U_PORT))));
    }

    #[test]
    fn ipv4_fragments_match() {
        let program = program();
        // More Fragments set, offset 0: the first fragment (it carries the UDP header, but
        // of any port, as the reassembled datagram decides).
        let mut first = ipv4(17, 16, 0x2000);
        first.extend_from_slice(&[0x9c, 0x40, 0x00, 0x35, 0, 16, 0, 0]); // UDP 40000 -> 53
        first.extend_from_slice(&[0; 8]);
        // More Fragments clear, offset 185 (1480 bytes): the last fragment, no UDP header.
        let mut last = ipv4(17, 8, 185);
        last.extend_from_slice(&[0; 8]);
        for tags in [NO_TAG, ONE_TAG, TWO_TAGS] {
            assert!(program.filter(&ethernet(tags, &first)), "first fragment behind {tags:?}");
            assert!(program.filter(&ethernet(tags, &last)), "last fragment behind {tags:?}");
        }
    }

    #[test]
    fn unfragmented_tcp_and_tcp_fragments_rejected() {
        let program = program();
        assert!(!program.filter(&ethernet(NO_TAG, &ipv4(6, 20, 0))), "unfragmented TCP");
        assert!(!program.filter(&ethernet(NO_TAG, &ipv4(6, 8, 185))), "TCP fragment");
    }

    #[test]
    fn cooked_default_is_untagged() {
        for link in [pcap::Linktype::LINUX_SLL, pcap::Linktype::LINUX_SLL2] {
            let filter = default_filter_for(link);
            assert_eq!(filter, gtp_expression(), "{link:?}");
            let capture = pcap::Capture::dead(link).unwrap();
            assert!(capture.compile(&filter, true).is_ok(), "{link:?}");
        }
    }

    #[test]
    fn ethernet_default_is_tagged() {
        assert_eq!(default_filter_for(pcap::Linktype::ETHERNET), default_filter());
    }

    #[test]
    fn invalid_filter_names_itself() {
        let message = check_filter("udp prt 2152").unwrap_err();
        assert!(message.contains("\"udp prt 2152\""), "{message}");
        assert!(message.contains("pcap-filter(7)"), "{message}");
    }

    fn data(relative: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(relative)
    }

    /// Checks that every frame the decoder reads as GTP or keeps as a fragment passes the
    /// default filter, compiled for the file's own link type. Returns the number of such frames.
    fn check_capture(relative: &str) -> usize {
        let mut capture = pcap::Capture::from_file(data(relative)).unwrap();
        let program = capture.compile(&default_filter_for(capture.get_datalink()), true).unwrap();
        let link = LinkType::from_dlt(capture.get_datalink().0).unwrap();
        let mut decoder = Decoder::new();
        let mut kept = 0;
        let mut index = 0;
        while let Ok(packet) = capture.next_packet() {
            index += 1;
            let wanted = matches!(decoder.decode(link, 0, packet.data), Ok(Decoded::Gtp(_) | Decoded::FragmentHeld));
            if wanted {
                assert!(program.filter(packet.data), "{relative}: frame {index} is GTP but the filter drops it");
                kept += 1;
            }
        }
        kept
    }

    #[test]
    fn real_gtp_frames_pass() {
        let files = [
            "gtpgen/vlan.pcap",
            "gtpgen/ipv6.pcap",
            "captures/zeek/gtp1_gn_normal_incl_fragmentation.pcap",
            "captures/zeek/gtp7_ipv6.pcap",
            "captures/arkime/gtp-iphone.pcap",
            "captures/ngic-rtc/cp_in.pcap",
        ];
        for file in files {
            assert!(check_capture(file) > 0, "{file}: no GTP frame");
        }
    }
}
