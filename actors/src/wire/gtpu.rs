//! GTP-U messages (TS 29.281): G-PDUs carrying subscriber packets, and the path and tunnel
//! management messages (Echo, Error Indication, End Marker, ...) that share the header.

use arrayvec::ArrayVec;

use super::gtpv1::{flags, ExtensionType, Gtpv1Header, V1MessageType, MAX_EXTENSIONS};
use super::DecodeError;

/// Recoverable oddities of a GTP-U message; the message is still used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserAnomalies(pub u8);

impl UserAnomalies {
    /// The GTP Length field disagrees with the UDP payload; the shorter was used.
    pub const LENGTH_MISMATCH: u8 = 1 << 0;

    /// Sets the given flag bits.
    pub fn insert(&mut self, flags: u8) {
        self.0 |= flags;
    }

    /// True when every given flag bit is set.
    pub fn contains(self, flags: u8) -> bool {
        self.0 & flags == flags
    }
}

/// A decoded GTP-U message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPdu<'a> {
    /// Message type: 255 for a G-PDU, see [`V1MessageType`].
    pub message_type: u8,
    /// Tunnel Endpoint Identifier of the receiving end.
    pub teid: u32,
    /// Sequence number, when the S flag is set.
    pub sequence: Option<u16>,
    /// N-PDU number, when the PN flag is set.
    pub npdu: Option<u8>,
    /// The first header octet: version, PT, spare, E, S, PN.
    pub flags: u8,
    /// Extension header types in chain order.
    pub extension_types: ArrayVec<ExtensionType, MAX_EXTENSIONS>,
    /// QoS Flow Identifier, from a PDU Session Container extension header.
    pub qfi: Option<u8>,
    /// The T-PDU (the subscriber's IP packet) of a G-PDU, or the information elements of
    /// other messages.
    pub payload: &'a [u8],
    /// The whole GTP-U message: header, optional fields, extension headers and `payload`.
    pub message: &'a [u8],
    /// Oddities that did not stop decoding.
    pub anomalies: UserAnomalies,
}

impl UserPdu<'_> {
    /// Returns the message type as an enum.
    pub fn kind(&self) -> V1MessageType {
        V1MessageType::from_u8(self.message_type)
    }
}

/// True when `bytes` starts like a GTP-U header: version 1, PT 1 and a message type that
/// TS 29.281 allows. Datagrams on port 2152 that fail this are other traffic, not GTP.
pub fn looks_like_gtp_u(bytes: &[u8]) -> bool {
    match bytes {
        [first, message_type, ..] => {
            first >> 5 == 1 && first & flags::PT != 0 && V1MessageType::from_u8(*message_type).is_user_plane()
        }
        _ => false,
    }
}

/// Parses a GTP-U message from a UDP payload.
///
/// A G-PDU whose T-PDU is empty or does not start with IP version 4 or 6 is rejected with
/// [`DecodeError::GpduNotIp`].
pub fn parse_user(udp_payload: &[u8]) -> Result<UserPdu<'_>, DecodeError> {
    let header = Gtpv1Header::parse(udp_payload)?;
    if header.flags & flags::PT == 0 {
        return Err(DecodeError::GtpUnsupportedVersion);
    }
    let is_gpdu = header.message_type == 255;
    if is_gpdu && !matches!(header.body.first().map(|byte| byte >> 4), Some(4 | 6)) {
        return Err(DecodeError::GpduNotIp);
    }
    let mut anomalies = UserAnomalies::default();
    if header.length_mismatch {
        anomalies.insert(UserAnomalies::LENGTH_MISMATCH);
    }
    Ok(UserPdu {
        message_type: header.message_type,
        teid: header.teid,
        sequence: header.sequence,
        npdu: header.npdu,
        flags: header.flags,
        extension_types: header.extensions.types,
        qfi: header.extensions.qfi,
        payload: header.body,
        message: header.message,
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpdu_with_sequence() {
        let bytes = [
            0x32, // version 1, PT 1, S
            0xff, // G-PDU
            0x00, 0x06, // Length 6: 4 optional + 2
            0x12, 0x34, 0x56, 0x78, // TEID
            0x00, 0x07, // sequence 7
            0x00, 0x00, // N-PDU, next extension (unused)
            0x45, 0x00, // T-PDU: IPv4
        ];
        let pdu = parse_user(&bytes).unwrap();
        assert_eq!(pdu.kind(), V1MessageType::GPdu);
        assert_eq!(pdu.teid, 0x1234_5678);
        assert_eq!(pdu.sequence, Some(7));
        assert_eq!(pdu.flags, 0x32);
        assert_eq!(pdu.payload, &[0x45, 0x00]);
        assert_eq!(pdu.message, &bytes);
        assert_eq!(pdu.anomalies, UserAnomalies::default());
    }

    #[test]
    fn gpdu_not_ip_rejected() {
        let bytes = [
            0x30, 0xff, 0x00, 0x02, // G-PDU, Length 2
            0x00, 0x00, 0x00, 0x01, // TEID 1
            0x21, 0x00, // T-PDU starting with version nibble 2
        ];
        assert_eq!(parse_user(&bytes), Err(DecodeError::GpduNotIp));
        let empty = [0x30, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]; // G-PDU, Length 0
        assert_eq!(parse_user(&empty), Err(DecodeError::GpduNotIp));
    }

    #[test]
    fn length_shorter_than_udp_flagged() {
        let bytes = [
            0x30, 0xff, 0x00, 0x01, // G-PDU, Length 1
            0x00, 0x00, 0x00, 0x01, // TEID 1
            0x60, 0x00, 0x00, // T-PDU: IPv6, but Length covers one byte
        ];
        let pdu = parse_user(&bytes).unwrap();
        assert_eq!(pdu.payload, &[0x60]);
        assert_eq!(pdu.message, &bytes[..9], "the message ends where Length ends");
        assert!(pdu.anomalies.contains(UserAnomalies::LENGTH_MISMATCH));
    }

    #[test]
    fn echo_request_keeps_ies() {
        let bytes = [
            0x32, 0x01, 0x00, 0x04, // S flag, Echo Request, Length 4
            0x00, 0x00, 0x00, 0x00, // TEID 0
            0x00, 0x2a, 0x00, 0x00, // sequence 42, N-PDU, next extension
        ];
        let pdu = parse_user(&bytes).unwrap();
        assert_eq!(pdu.kind(), V1MessageType::EchoRequest);
        assert_eq!(pdu.sequence, Some(42));
        assert!(pdu.payload.is_empty());
    }

    #[test]
    fn gtp_prime_is_not_gtp_u() {
        let gtp_prime = [0x2e, 0xf0, 0x00, 0x00]; // version 1, PT 0: GTP'
        assert!(!looks_like_gtp_u(&gtp_prime));
        assert!(!looks_like_gtp_u(&[0x30, 0x10])); // Create PDP Context Request is GTP-C only
        assert!(looks_like_gtp_u(&[0x30, 0xff]));
        assert!(looks_like_gtp_u(&[0x36, 0xff]));
        assert!(!looks_like_gtp_u(&[0x30]));
    }
}
