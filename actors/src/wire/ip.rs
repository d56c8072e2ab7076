//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers, read with etherparse's header slices.
//!
//! The same parsers serve the outer packet (the GTP transport) and the inner packet (the
//! subscriber's T-PDU). They check lengths and versions but not the IPv4 header checksum:
//! probes see packets with offloaded checksums, and a bad checksum does not hide the fields.

use std::net::{IpAddr, Ipv6Addr};

use etherparse::err::{ipv4, ipv6, ipv6_exts};
use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

use super::DecodeError;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") the decoder acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// 58.
    Icmpv6,
    /// 132.
    Sctp,
    /// Any other value.
    Unknown(u8),
}

impl IpProtocol {
    /// Maps the 8-bit field to the enum.
    pub fn from_u8(value: u8) -> IpProtocol {
        match value {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            58 => IpProtocol::Icmpv6,
            132 => IpProtocol::Sctp,
            other => IpProtocol::Unknown(other),
        }
    }

    /// Returns the protocol number as on the wire.
    pub fn number(self) -> u8 {
        match self {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Sctp => 132,
            IpProtocol::Unknown(other) => other,
        }
    }

    /// True for protocols whose header starts with a source and a destination port.
    pub fn has_ports(self) -> bool {
        matches!(self, IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp)
    }
}

/// Fragmentation fields of an IPv4 header or an IPv6 Fragment extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Identification: 16 bits in IPv4, 32 bits in IPv6.
    pub id: u32,
    /// Fragment offset in bytes (the header field times 8).
    pub offset: u32,
    /// MF: more fragments follow.
    pub more: bool,
}

/// An IPv4 or IPv6 packet: addresses, upper-layer protocol and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol, after any IPv6 extension headers.
    pub protocol: IpProtocol,
    /// Upper-layer bytes: cut at the length the header states (Ethernet padding dropped) and at
    /// the captured bytes.
    pub payload: &'a [u8],
    /// Packet length the header states: IPv4 Total Length, or 40 + IPv6 Payload Length.
    pub ip_len: u32,
    /// True when the header states more bytes than were captured.
    pub truncated: bool,
    /// Set when the packet is a fragment (offset not 0, or MF set).
    pub fragment: Option<Fragment>,
}

/// Parses an IPv4 header and its payload.
pub fn parse_ipv4(packet: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let header = Ipv4HeaderSlice::from_slice(packet).map_err(|error| match error {
        ipv4::HeaderSliceError::Len(_) => DecodeError::Ipv4Truncated,
        ipv4::HeaderSliceError::Content(_) => DecodeError::Ipv4BadHeader,
    })?;
    let header_len = header.slice().len();
    let total_len = usize::from(header.total_len());
    if total_len < header_len {
        return Err(DecodeError::Ipv4BadTotalLength);
    }
    let end = total_len.min(packet.len());
    Ok(IpPacket {
        src: IpAddr::V4(header.source_addr()),
        dst: IpAddr::V4(header.destination_addr()),
        protocol: IpProtocol::from_u8(header.protocol().0),
        payload: &packet[header_len..end],
        ip_len: total_len as u32,
        truncated: total_len > packet.len(),
        fragment: ipv4_fragment(&header),
    })
}

fn ipv4_fragment(header: &Ipv4HeaderSlice<'_>) -> Option<Fragment> {
    let offset = u32::from(header.fragments_offset().value()) * 8;
    let more = header.more_fragments();
    (offset != 0 || more).then_some(Fragment { id: u32::from(header.identification()), offset, more })
}

/// IPv6 fixed header length.
const IPV6_HEADER_LEN: usize = 40;

/// Parses an IPv6 header, walks its extension headers and returns the upper-layer payload.
pub fn parse_ipv6(packet: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let header = Ipv6HeaderSlice::from_slice(packet).map_err(|error| match error {
        ipv6::HeaderSliceError::Len(_) => DecodeError::Ipv6Truncated,
        ipv6::HeaderSliceError::Content(_) => DecodeError::Ipv6BadHeader,
    })?;
    let payload_len = usize::from(header.payload_length());
    let end = (IPV6_HEADER_LEN + payload_len).min(packet.len());
    let body = &packet[IPV6_HEADER_LEN..end];
    let (extensions, protocol, payload) =
        Ipv6ExtensionsSlice::from_slice(header.next_header(), body).map_err(|error| match error {
            ipv6_exts::HeaderSliceError::Len(_) => DecodeError::Ipv6ExtensionTruncated,
            ipv6_exts::HeaderSliceError::Content(_) => DecodeError::Ipv6BadExtension,
        })?;
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(header.source())),
        dst: IpAddr::V6(Ipv6Addr::from(header.destination())),
        protocol: IpProtocol::from_u8(protocol.0),
        payload,
        ip_len: (IPV6_HEADER_LEN + payload_len) as u32,
        truncated: IPV6_HEADER_LEN + payload_len > packet.len(),
        fragment: ipv6_fragment(extensions),
    })
}

fn ipv6_fragment(extensions: Ipv6ExtensionsSlice<'_>) -> Option<Fragment> {
    if !extensions.is_fragmenting_payload() {
        return None;
    }
    extensions.into_iter().find_map(|extension| match extension {
        Ipv6ExtensionSlice::Fragment(header) if header.is_fragmenting_payload() => Some(Fragment {
            id: header.identification(),
            offset: u32::from(header.fragment_offset().value()) * 8,
            more: header.more_fragments(),
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const UDP_NUMBER: u8 = 17;

    #[test]
    fn ipv4_with_options_and_padding() {
        let packet = [
            0x46, 0x00, // version 4, IHL 6 (24 bytes), DSCP/ECN
            0x00, 0x1c, // Total Length 28: 24 header + 4 payload
            0x12, 0x34, 0x00, 0x00, // Identification, flags/offset 0
            0x40, 0x11, 0xff, 0xff, // TTL 64, protocol UDP, checksum (not checked)
            10, 0, 0, 1, // source
            10, 0, 0, 2, // destination
            0x01, 0x01, 0x01, 0x00, // options: NOP, NOP, NOP, EOL
            0xaa, 0xbb, 0xcc, 0xdd, // payload
            0x00, 0x00, // Ethernet padding beyond Total Length
        ];
        let ip = parse_ipv4(&packet).unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(ip.protocol, IpProtocol::Udp);
        assert_eq!(ip.payload, &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(ip.ip_len, 28);
        assert!(!ip.truncated);
        assert_eq!(ip.fragment, None);
    }

    #[test]
    fn ipv4_fragment_fields() {
        let packet = [
            0x45, 0x00, 0x00, 0x18, // version 4, IHL 5, Total Length 24
            0xab, 0xcd, // Identification
            0x20, 0x03, // MF set, offset 3 (24 bytes)
            0x40, 0x11, 0x00, 0x00, // TTL, protocol UDP, checksum
            10, 0, 0, 1, 10, 0, 0, 2, // source, destination
            1, 2, 3, 4, // payload
        ];
        let ip = parse_ipv4(&packet).unwrap();
        assert_eq!(ip.fragment, Some(Fragment { id: 0xabcd, offset: 24, more: true }));
    }

    #[test]
    fn ipv4_length_errors() {
        assert_eq!(parse_ipv4(&[0x45, 0x00]), Err(DecodeError::Ipv4Truncated));
        let mut header = [0u8; 20];
        header[0] = 0x44; // IHL 4 is below the minimum of 5
        assert_eq!(parse_ipv4(&header), Err(DecodeError::Ipv4BadHeader));
        header[0] = 0x45;
        header[3] = 19; // Total Length 19 < 20-byte header
        assert_eq!(parse_ipv4(&header), Err(DecodeError::Ipv4BadTotalLength));
        header[3] = 40; // Total Length 40 > 20 captured bytes
        let ip = parse_ipv4(&header).unwrap();
        assert!(ip.truncated);
        assert_eq!(ip.ip_len, 40);
    }

    /// Builds an IPv6 header from ::1 to ::2 with the given next header and payload length.
    fn ipv6_header(next_header: u8, payload_len: u16) -> Vec<u8> {
        let mut header = vec![0x60, 0, 0, 0]; // version 6, traffic class, flow label
        header.extend_from_slice(&payload_len.to_be_bytes()); // Payload Length
        header.extend_from_slice(&[next_header, 64]); // Next Header, Hop Limit
        header.extend_from_slice(&Ipv6Addr::LOCALHOST.octets()); // source ::1
        header.extend_from_slice(&Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2).octets()); // destination ::2
        header
    }

    #[test]
    fn ipv6_extension_chain() {
        let mut packet = ipv6_header(0, 24); // Next Header: hop-by-hop
        packet.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop: next dest opts, len 0, PadN
        packet.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // destination options: next routing
        packet.extend_from_slice(&[UDP_NUMBER, 0, 0, 0, 0, 0, 0, 0]); // routing: next UDP, type 0, left 0
        let ip = parse_ipv6(&packet).unwrap();
        assert_eq!(ip.protocol, IpProtocol::Udp);
        assert!(ip.payload.is_empty());
        assert_eq!(ip.ip_len, 64);
        assert_eq!(ip.fragment, None);
    }

    #[test]
    fn ipv6_fragment_found() {
        let mut packet = ipv6_header(44, 12); // Next Header: fragment
        packet.extend_from_slice(&[UDP_NUMBER, 0, 0x00, 0x09]); // next UDP, offset 1 (8 bytes), MF
        packet.extend_from_slice(&[0, 0, 0, 7]); // Identification 7
        packet.extend_from_slice(&[1, 2, 3, 4]); // payload
        let ip = parse_ipv6(&packet).unwrap();
        assert_eq!(ip.fragment, Some(Fragment { id: 7, offset: 8, more: true }));
        assert_eq!(ip.payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn ipv6_errors() {
        assert_eq!(parse_ipv6(&[0x60; 39]), Err(DecodeError::Ipv6Truncated));
        let mut packet = ipv6_header(0, 4);
        packet.extend_from_slice(&[UDP_NUMBER, 0, 1, 4]); // half a hop-by-hop header
        assert_eq!(parse_ipv6(&packet), Err(DecodeError::Ipv6ExtensionTruncated));
        let mut not_six = ipv6_header(UDP_NUMBER, 0);
        not_six[0] = 0x40;
        assert_eq!(parse_ipv6(&not_six), Err(DecodeError::Ipv6BadHeader));
    }
}
