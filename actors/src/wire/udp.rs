//! UDP (RFC 768) and the GTP port numbers registered with IANA.

use super::DecodeError;

/// Registered UDP port of GTP-U.
pub const GTP_U_PORT: u16 = 2152;
/// Registered UDP port of GTPv1-C and GTPv2-C.
pub const GTP_C_PORT: u16 = 2123;

/// UDP header length: source port, destination port, length, checksum, 2 bytes each.
const HEADER_LEN: usize = 8;

/// A UDP datagram: ports and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload: the shorter of what the UDP Length states and what the IP layer delivered.
    pub payload: &'a [u8],
    /// True when the UDP Length differs from the IP payload length.
    pub length_mismatch: bool,
}

/// Parses a UDP header from the IP payload `bytes`.
pub fn parse_udp(bytes: &[u8]) -> Result<UdpDatagram<'_>, DecodeError> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(DecodeError::UdpTruncated);
    };
    let field = |offset: usize| u16::from_be_bytes([header[offset], header[offset + 1]]);
    let length = usize::from(field(4));
    if length < HEADER_LEN {
        return Err(DecodeError::UdpBadLength);
    }
    Ok(UdpDatagram {
        src_port: field(0),
        dst_port: field(2),
        payload: &bytes[HEADER_LEN..length.min(bytes.len())],
        length_mismatch: length != bytes.len(),
    })
}

/// GTP plane of a UDP datagram, chosen by port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GtpPlane {
    /// GTP-U, port 2152.
    User,
    /// GTP-C, port 2123.
    Control,
}

/// Picks the GTP plane from the ports: the destination port decides first, because a request
/// goes to the registered port from any source port and its response comes back from it.
pub fn gtp_plane(src_port: u16, dst_port: u16) -> Option<GtpPlane> {
    let plane = |port| match port {
        GTP_U_PORT => Some(GtpPlane::User),
        GTP_C_PORT => Some(GtpPlane::Control),
        _ => None,
    };
    plane(dst_port).or_else(|| plane(src_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_fields() {
        let bytes = [
            0x9c, 0x4c, // source port 40012
            0x08, 0x68, // destination port 2152
            0x00, 0x0a, // Length 10: header + 2
            0x00, 0x00, // checksum
            0xab, 0xcd, // payload
        ];
        let udp = parse_udp(&bytes).unwrap();
        assert_eq!((udp.src_port, udp.dst_port), (40012, GTP_U_PORT));
        assert_eq!(udp.payload, &[0xab, 0xcd]);
        assert!(!udp.length_mismatch);
    }

    #[test]
    fn udp_length_uses_shorter() {
        let mut bytes = [0u8; 12];
        bytes[5] = 10; // Length 10 < 12 delivered: 2 trailing bytes
        let udp = parse_udp(&bytes).unwrap();
        assert_eq!(udp.payload.len(), 2);
        assert!(udp.length_mismatch);
        bytes[5] = 200; // Length 200 > 12 delivered: truncated
        let udp = parse_udp(&bytes).unwrap();
        assert_eq!(udp.payload.len(), 4);
        assert!(udp.length_mismatch);
    }

    #[test]
    fn udp_errors() {
        assert_eq!(parse_udp(&[0; 7]), Err(DecodeError::UdpTruncated));
        assert_eq!(parse_udp(&[0, 1, 0, 2, 0, 7, 0, 0]), Err(DecodeError::UdpBadLength));
    }

    #[test]
    fn plane_by_port() {
        assert_eq!(gtp_plane(5906, GTP_U_PORT), Some(GtpPlane::User));
        assert_eq!(gtp_plane(GTP_U_PORT, 5906), Some(GtpPlane::User));
        assert_eq!(gtp_plane(40364, GTP_C_PORT), Some(GtpPlane::Control));
        assert_eq!(gtp_plane(GTP_C_PORT, 40364), Some(GtpPlane::Control));
        assert_eq!(gtp_plane(GTP_U_PORT, 53), Some(GtpPlane::User));
        assert_eq!(gtp_plane(53, 5353), None);
    }
}
