//! Link layers: Ethernet II with VLAN tag stacks, Linux cooked capture (SLL, SLL2) and raw IP.

use super::DecodeError;

/// Link type of a capture, from its pcap DLT / LINKTYPE value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT 1: Ethernet II, possibly with 802.1Q / 802.1ad tags.
    Ethernet,
    /// DLT 113: Linux cooked capture v1, a 16-byte header.
    LinuxSll,
    /// DLT 276: Linux cooked capture v2, a 20-byte header.
    LinuxSll2,
    /// DLT 12, 14, 101 (raw IP), 228 (IPv4) and 229 (IPv6): the frame starts with the IP header.
    RawIp,
}

impl LinkType {
    /// Maps a pcap DLT / LINKTYPE number to a link type.
    ///
    /// DLT 12 and 14 are both raw IP (which one depends on the operating system that wrote the
    /// file), and LINKTYPE 101 is raw IP in files. IPv4-only (228) and IPv6-only (229) captures
    /// are read as raw IP, because the version nibble already distinguishes the two.
    pub fn from_dlt(dlt: i32) -> Result<LinkType, DecodeError> {
        match dlt {
            1 => Ok(LinkType::Ethernet),
            113 => Ok(LinkType::LinuxSll),
            276 => Ok(LinkType::LinuxSll2),
            12 | 14 | 101 | 228 | 229 => Ok(LinkType::RawIp),
            _ => Err(DecodeError::UnsupportedLinkType),
        }
    }
}

/// EtherType (IEEE registry) of the payload that follows a link header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x86dd.
    Ipv6,
    /// 0x8100: 802.1Q customer VLAN tag.
    Vlan,
    /// 0x88a8: 802.1ad service VLAN tag (QinQ outer tag).
    ServiceVlan,
    /// 0x9100: pre-standard QinQ tag, still sent by some switches.
    LegacyQinQ,
    /// Any other value, including 802.3 length fields (below 0x0600).
    Unknown(u16),
}

impl EtherType {
    /// Maps the 16-bit field to the enum.
    pub fn from_u16(value: u16) -> EtherType {
        match value {
            0x0800 => EtherType::Ipv4,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::ServiceVlan,
            0x9100 => EtherType::LegacyQinQ,
            other => EtherType::Unknown(other),
        }
    }

    fn is_vlan_tag(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::ServiceVlan | EtherType::LegacyQinQ)
    }
}

/// The network layer found behind the link header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    /// An IPv4 packet (header and everything after it, as captured).
    Ipv4(&'a [u8]),
    /// An IPv6 packet.
    Ipv6(&'a [u8]),
    /// Any other protocol, e.g. ARP or LLDP: valid, but not GTP.
    Other(EtherType),
}

/// Ethernet II header length: destination (6), source (6), EtherType (2).
const ETHERNET_HEADER_LEN: usize = 14;
/// One VLAN tag: TCI (2), then the EtherType of what follows (2).
const VLAN_TAG_LEN: usize = 4;
/// Linux cooked v1: packet type (2), ARPHRD (2), address length (2), address (8), protocol (2).
const SLL_HEADER_LEN: usize = 16;
/// Linux cooked v2: protocol (2), reserved (2), interface index (4), ARPHRD (2),
/// packet type (1), address length (1), address (8).
const SLL2_HEADER_LEN: usize = 20;

/// Strips the link header of `frame` and returns the network layer behind it.
pub fn network_layer(link: LinkType, frame: &[u8]) -> Result<Network<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => after_ethertype(read_u16(frame, 12)?, frame, ETHERNET_HEADER_LEN),
        LinkType::LinuxSll => after_ethertype(read_u16(frame, 14)?, frame, SLL_HEADER_LEN),
        LinkType::LinuxSll2 => after_ethertype(read_u16(frame, 0)?, frame, SLL2_HEADER_LEN),
        LinkType::RawIp => raw_ip(frame),
    }
}

/// Follows VLAN tags from `offset`, where the payload of `ethertype` starts.
fn after_ethertype(ethertype: u16, frame: &[u8], mut offset: usize) -> Result<Network<'_>, DecodeError> {
    let mut ethertype = EtherType::from_u16(ethertype);
    // Every tag consumes 4 bytes, so the loop ends with the frame.
    while ethertype.is_vlan_tag() {
        ethertype = EtherType::from_u16(read_u16(frame, offset + 2)?);
        offset += VLAN_TAG_LEN;
    }
    let payload = frame.get(offset..).ok_or(DecodeError::LinkTruncated)?;
    Ok(match ethertype {
        EtherType::Ipv4 => Network::Ipv4(payload),
        EtherType::Ipv6 => Network::Ipv6(payload),
        other => Network::Other(other),
    })
}

fn raw_ip(frame: &[u8]) -> Result<Network<'_>, DecodeError> {
    match frame.first().map(|byte| byte >> 4) {
        Some(4) => Ok(Network::Ipv4(frame)),
        Some(6) => Ok(Network::Ipv6(frame)),
        _ => Err(DecodeError::UnknownIpVersion),
    }
}

fn read_u16(frame: &[u8], offset: usize) -> Result<u16, DecodeError> {
    match frame.get(offset..offset + 2) {
        Some(&[high, low]) => Ok(u16::from_be_bytes([high, low])),
        _ => Err(DecodeError::LinkTruncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPV4_START: [u8; 2] = [0x45, 0x00];

    #[test]
    fn dlt_values_map() {
        assert_eq!(LinkType::from_dlt(1), Ok(LinkType::Ethernet));
        assert_eq!(LinkType::from_dlt(113), Ok(LinkType::LinuxSll));
        assert_eq!(LinkType::from_dlt(276), Ok(LinkType::LinuxSll2));
        for raw in [12, 14, 101, 228, 229] {
            assert_eq!(LinkType::from_dlt(raw), Ok(LinkType::RawIp), "DLT {raw}");
        }
        assert_eq!(LinkType::from_dlt(105), Err(DecodeError::UnsupportedLinkType));
    }

    #[test]
    fn ethernet_with_qinq_stack() {
        let frame = [
            0, 1, 2, 3, 4, 5, // destination MAC
            6, 7, 8, 9, 10, 11, // source MAC
            0x88, 0xa8, // EtherType: 802.1ad service tag
            0x00, 0x64, 0x81, 0x00, // TCI VLAN 100, next: 802.1Q
            0x00, 0x67, 0x91, 0x00, // TCI VLAN 103, next: 0x9100 tag
            0x00, 0x01, 0x08, 0x00, // TCI VLAN 1, next: IPv4
            0x45, 0x00, // start of the IPv4 header
        ];
        assert_eq!(network_layer(LinkType::Ethernet, &frame), Ok(Network::Ipv4(&IPV4_START)));
    }

    #[test]
    fn ethernet_tag_cut_short() {
        let frame = [
            0, 1, 2, 3, 4, 5, // destination MAC
            6, 7, 8, 9, 10, 11, // source MAC
            0x81, 0x00, // EtherType: 802.1Q
            0x00, // half of the TCI
        ];
        assert_eq!(network_layer(LinkType::Ethernet, &frame), Err(DecodeError::LinkTruncated));
    }

    #[test]
    fn ethernet_arp_is_other() {
        let frame = [
            0, 1, 2, 3, 4, 5, // destination MAC
            6, 7, 8, 9, 10, 11, // source MAC
            0x08, 0x06, // EtherType: ARP
        ];
        assert_eq!(network_layer(LinkType::Ethernet, &frame), Ok(Network::Other(EtherType::Unknown(0x0806))));
    }

    #[test]
    fn linux_sll_ipv6() {
        let frame = [
            0x00, 0x00, // packet type: to us
            0x00, 0x01, // ARPHRD_ETHER
            0x00, 0x06, // address length
            1, 2, 3, 4, 5, 6, 0, 0, // address, padded to 8
            0x86, 0xdd, // protocol: IPv6
            0x60, 0x00, // start of the IPv6 header
        ];
        assert_eq!(network_layer(LinkType::LinuxSll, &frame), Ok(Network::Ipv6(&[0x60, 0x00])));
    }

    #[test]
    fn linux_sll2_ipv4() {
        let frame = [
            0x08, 0x00, // protocol: IPv4
            0x00, 0x00, // reserved
            0x00, 0x00, 0x00, 0x02, // interface index
            0x00, 0x01, // ARPHRD_ETHER
            0x04, // packet type: outgoing
            0x06, // address length
            1, 2, 3, 4, 5, 6, 0, 0, // address, padded to 8
            0x45, 0x00, // start of the IPv4 header
        ];
        assert_eq!(network_layer(LinkType::LinuxSll2, &frame), Ok(Network::Ipv4(&IPV4_START)));
    }

    #[test]
    fn raw_ip_version_nibble() {
        assert_eq!(network_layer(LinkType::RawIp, &IPV4_START), Ok(Network::Ipv4(&IPV4_START)));
        assert_eq!(network_layer(LinkType::RawIp, &[0x60]), Ok(Network::Ipv6(&[0x60])));
        assert_eq!(network_layer(LinkType::RawIp, &[0x50]), Err(DecodeError::UnknownIpVersion));
        assert_eq!(network_layer(LinkType::RawIp, &[]), Err(DecodeError::UnknownIpVersion));
    }
}
