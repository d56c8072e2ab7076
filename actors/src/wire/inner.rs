//! The subscriber's packet inside a G-PDU: its flow key, IP length and TCP flags.

use std::net::IpAddr;

use super::bytes::u16_at;
use super::ip::{parse_ipv4, parse_ipv6, IpPacket, IpProtocol};
use super::DecodeError;

/// A flow's 5-tuple, as seen in one direction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    /// IP protocol number (after IPv6 extension headers).
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port; 0 for protocols without ports and for non-first fragments.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port; 0 for protocols without ports and for non-first fragments.
    pub dst_port: u16,
}

impl FlowKey {
    /// Returns the key with the lower (address, port) endpoint as source, so both directions
    /// of a flow give the same value.
    pub fn canonical(&self) -> FlowKey {
        if (self.src, self.src_port) <= (self.dst, self.dst_port) {
            *self
        } else {
            FlowKey {
                protocol: self.protocol,
                src: self.dst,
                src_port: self.dst_port,
                dst: self.src,
                dst_port: self.src_port,
            }
        }
    }

    /// Returns a hash that is equal for both directions of a flow: each endpoint is mixed on
    /// its own, the two are added (order does not matter), and the sum is mixed with the
    /// protocol.
    pub fn symmetric_hash(&self) -> u64 {
        let endpoints = endpoint_hash(self.src, self.src_port).wrapping_add(endpoint_hash(self.dst, self.dst_port));
        mix(endpoints ^ u64::from(self.protocol))
    }
}

fn endpoint_hash(addr: IpAddr, port: u16) -> u64 {
    let port = u64::from(port);
    match addr {
        IpAddr::V4(v4) => mix((u64::from(u32::from(v4)) << 16) | port),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            mix(mix((bits >> 64) as u64 ^ port) ^ bits as u64)
        }
    }
}

/// Mixes `value` with the splitmix64 finalizer, so inputs that differ in one bit give unrelated outputs.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Flow key, stated length and TCP flags of one inner packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InnerPacket {
    /// Flow key in the packet's direction.
    pub key: FlowKey,
    /// IPv4 Total Length, or 40 + IPv6 Payload Length: the length the header states, even
    /// when fewer bytes were captured.
    pub ip_len: u32,
    /// TCP flags octet (CWR..FIN); 0 unless TCP with the flags present.
    pub tcp_flags: u8,
}

/// Offset of the flags octet in the TCP header (RFC 9293 §3.1).
const TCP_FLAGS_OFFSET: usize = 13;

/// Reads the flow key of the IPv4 or IPv6 packet `ip` (a G-PDU's T-PDU).
///
/// Ports and TCP flags are read when the captured bytes hold them, and stay 0 otherwise,
/// so a packet cut short by the snap length still counts for its flow.
pub fn inner_packet(ip: &[u8]) -> Result<InnerPacket, DecodeError> {
    let packet = match ip.first().map(|first| first >> 4) {
        Some(4) => parse_ipv4(ip),
        Some(6) => parse_ipv6(ip),
        Some(_) => return Err(DecodeError::InnerBadHeader),
        None => return Err(DecodeError::InnerTruncated),
    }
    .map_err(inner_error)?;
    let transport = transport_header(&packet);
    let port = |offset| transport.and_then(|header| u16_at(header, offset)).unwrap_or(0);
    let key = FlowKey {
        protocol: packet.protocol.number(),
        src: packet.src,
        src_port: port(0),
        dst: packet.dst,
        dst_port: port(2),
    };
    let tcp_flags = match packet.protocol {
        IpProtocol::Tcp => transport.and_then(|header| header.get(TCP_FLAGS_OFFSET)).copied().unwrap_or(0),
        _ => 0,
    };
    Ok(InnerPacket { key, ip_len: packet.ip_len, tcp_flags })
}

/// Returns the transport header for protocols with ports, unless the packet is a non-first fragment.
fn transport_header<'a>(packet: &IpPacket<'a>) -> Option<&'a [u8]> {
    let first_fragment = packet.fragment.is_none_or(|fragment| fragment.offset == 0);
    (packet.protocol.has_ports() && first_fragment).then_some(packet.payload)
}

fn inner_error(outer: DecodeError) -> DecodeError {
    match outer {
        DecodeError::Ipv4Truncated | DecodeError::Ipv6Truncated | DecodeError::Ipv6ExtensionTruncated => {
            DecodeError::InnerTruncated
        }
        _ => DecodeError::InnerBadHeader,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const TCP_SYN: [u8; 40] = [
        0x45, 0x00, 0x00, 0x3c, // IPv4, IHL 5, Total Length 60 (20 bytes of options not captured)
        0x00, 0x01, 0x40, 0x00, // Identification, DF
        0x40, 0x06, 0x00, 0x00, // TTL 64, protocol TCP, checksum
        100, 64, 0, 26, // source 100.64.0.26
        93, 184, 216, 34, // destination 93.184.216.34
        0xc3, 0x50, 0x00, 0x50, // source port 50000, destination port 80
        0x00, 0x00, 0x00, 0x01, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0x50, 0x02, 0xff, 0xff, // data offset 5, flags SYN, window
        0x00, 0x00, 0x00, 0x00, // checksum, urgent pointer
    ];

    #[test]
    fn tcp_syn_key_and_flags() {
        let inner = inner_packet(&TCP_SYN).unwrap();
        assert_eq!(inner.key.protocol, 6);
        assert_eq!(inner.key.src, IpAddr::V4(Ipv4Addr::new(100, 64, 0, 26)));
        assert_eq!((inner.key.src_port, inner.key.dst_port), (50000, 80));
        assert_eq!(inner.ip_len, 60);
        assert_eq!(inner.tcp_flags, 0x02);
    }

    #[test]
    fn ipv6_udp_key() {
        let mut packet = vec![0x60, 0, 0, 0, 0x00, 0x08, 17, 64]; // IPv6, Payload Length 8, UDP
        packet.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets()); // source
        packet.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets()); // destination
        packet.extend_from_slice(&[0x00, 0x35, 0xd4, 0x31, 0x00, 0x08, 0x00, 0x00]); // UDP 53 -> 54321
        let inner = inner_packet(&packet).unwrap();
        assert_eq!(inner.key.protocol, 17);
        assert_eq!((inner.key.src_port, inner.key.dst_port), (53, 54321));
        assert_eq!(inner.ip_len, 48);
        assert_eq!(inner.tcp_flags, 0);
    }

    #[test]
    fn non_first_fragment_has_no_ports() {
        let mut packet = TCP_SYN;
        packet[6..8].copy_from_slice(&[0x00, 0x10]); // offset 16 (128 bytes)
        let inner = inner_packet(&packet).unwrap();
        assert_eq!((inner.key.src_port, inner.key.dst_port, inner.tcp_flags), (0, 0, 0));
    }

    #[test]
    fn short_transport_header_keeps_key() {
        let inner = inner_packet(&TCP_SYN[..22]).unwrap(); // one port byte pair only
        assert_eq!((inner.key.src_port, inner.key.dst_port), (50000, 0));
    }

    #[test]
    fn bad_inner_rejected() {
        assert_eq!(inner_packet(&[]), Err(DecodeError::InnerTruncated));
        assert_eq!(inner_packet(&[0x21, 0x00]), Err(DecodeError::InnerBadHeader));
        assert_eq!(inner_packet(&TCP_SYN[..10]), Err(DecodeError::InnerTruncated));
    }

    #[test]
    fn both_directions_match() {
        let key = inner_packet(&TCP_SYN).unwrap().key;
        let reverse =
            FlowKey { protocol: 6, src: key.dst, src_port: key.dst_port, dst: key.src, dst_port: key.src_port };
        assert_eq!(key.canonical(), reverse.canonical());
        assert_eq!(key.symmetric_hash(), reverse.symmetric_hash());
        let other_port = FlowKey { src_port: 50001, ..key };
        assert_ne!(key.symmetric_hash(), other_port.symmetric_hash());
        let other_protocol = FlowKey { protocol: 17, ..key };
        assert_ne!(key.symmetric_hash(), other_protocol.symmetric_hash());
    }

    #[test]
    fn hash_spreads_over_buckets() {
        // 4096 flows from one subscriber to one server, differing only in source port, should
        // fill 64 buckets roughly evenly (expected 64 each).
        let mut buckets = [0u32; 64];
        for port in 0..4096u16 {
            let src = IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1));
            let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
            let key = FlowKey { protocol: 6, src, src_port: 1024 + port, dst, dst_port: 443 };
            buckets[(key.symmetric_hash() % 64) as usize] += 1;
        }
        assert!(buckets.iter().all(|&count| (32..=96).contains(&count)), "{buckets:?}");
    }
}
