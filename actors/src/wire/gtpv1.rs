//! The GTPv1 header shared by GTP-U (TS 29.281 §5) and GTPv1-C (TS 29.060 §6).
//!
//! [`Gtpv1Packet`] is a borrowed view whose getters read fields in place; after
//! [`Gtpv1Packet::new_checked`] no getter panics. [`Gtpv1Header::parse`] builds the checked
//! representation: optional fields, the extension header chain and the message body.

use arrayvec::ArrayVec;

use super::DecodeError;

/// Byte ranges of the GTPv1 header, TS 29.281 §5.1.
mod field {
    use std::ops::Range;

    /// Version (3 bits), PT, spare, E, S, PN.
    pub const FLAGS: usize = 0;
    pub const MESSAGE_TYPE: usize = 1;
    /// Length of everything after the first 8 bytes.
    pub const LENGTH: Range<usize> = 2..4;
    pub const TEID: Range<usize> = 4..8;
    /// Optional fields, present when any of E, S, PN is set.
    pub const SEQUENCE: Range<usize> = 8..10;
    pub const NPDU: usize = 10;
    pub const NEXT_EXTENSION: usize = 11;
}

/// Length of the mandatory part of the header.
pub const MANDATORY_LEN: usize = 8;
/// Length of the header with its optional fields.
pub const OPTIONAL_LEN: usize = 12;
/// Extension headers followed per message; a longer chain is rejected.
pub const MAX_EXTENSIONS: usize = 8;

/// Flag bits of the first octet.
pub mod flags {
    /// Protocol Type: 1 for GTP, 0 for GTP'.
    pub const PT: u8 = 0x10;
    /// Extension header flag.
    pub const E: u8 = 0x04;
    /// Sequence number flag.
    pub const S: u8 = 0x02;
    /// N-PDU number flag.
    pub const PN: u8 = 0x01;
}

/// GTPv1 message types used by the decoder (TS 29.060 Table 1, TS 29.281 Table 6.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V1MessageType {
    /// 1.
    EchoRequest,
    /// 2.
    EchoResponse,
    /// 3.
    VersionNotSupported,
    /// 16.
    CreatePdpContextRequest,
    /// 17.
    CreatePdpContextResponse,
    /// 18.
    UpdatePdpContextRequest,
    /// 19.
    UpdatePdpContextResponse,
    /// 20.
    DeletePdpContextRequest,
    /// 21.
    DeletePdpContextResponse,
    /// 26.
    ErrorIndication,
    /// 31.
    SupportedExtensionHeadersNotification,
    /// 253.
    TunnelStatus,
    /// 254.
    EndMarker,
    /// 255: G-PDU, carrying a T-PDU.
    GPdu,
    /// Any other value.
    Unknown(u8),
}

impl V1MessageType {
    /// Maps the message type octet to the enum.
    pub fn from_u8(value: u8) -> V1MessageType {
        use V1MessageType::*;
        match value {
            1 => EchoRequest,
            2 => EchoResponse,
            3 => VersionNotSupported,
            16 => CreatePdpContextRequest,
            17 => CreatePdpContextResponse,
            18 => UpdatePdpContextRequest,
            19 => UpdatePdpContextResponse,
            20 => DeletePdpContextRequest,
            21 => DeletePdpContextResponse,
            26 => ErrorIndication,
            31 => SupportedExtensionHeadersNotification,
            253 => TunnelStatus,
            254 => EndMarker,
            255 => GPdu,
            other => Unknown(other),
        }
    }

    /// True for the messages TS 29.281 §6.1 allows on GTP-U.
    pub fn is_user_plane(self) -> bool {
        use V1MessageType::*;
        matches!(
            self,
            EchoRequest
                | EchoResponse
                | ErrorIndication
                | SupportedExtensionHeadersNotification
                | TunnelStatus
                | EndMarker
                | GPdu
        )
    }
}

/// Next Extension Header Type values, TS 29.281 §5.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionType {
    /// 0x20.
    ServiceClassIndicator,
    /// 0x40: UDP port of the sender, in Error Indication.
    UdpPort,
    /// 0x81.
    RanContainer,
    /// 0x82.
    LongPdcpPduNumber,
    /// 0x83.
    XwRanContainer,
    /// 0x84.
    NrRanContainer,
    /// 0x85: carries the QFI (TS 38.415 §5.5.2).
    PduSessionContainer,
    /// 0xc0.
    PdcpPduNumber,
    /// Any other non-zero value.
    Unknown(u8),
}

impl ExtensionType {
    /// Maps the type octet to the enum (0, "no more extension headers", is never stored).
    pub fn from_u8(value: u8) -> ExtensionType {
        match value {
            0x20 => ExtensionType::ServiceClassIndicator,
            0x40 => ExtensionType::UdpPort,
            0x81 => ExtensionType::RanContainer,
            0x82 => ExtensionType::LongPdcpPduNumber,
            0x83 => ExtensionType::XwRanContainer,
            0x84 => ExtensionType::NrRanContainer,
            0x85 => ExtensionType::PduSessionContainer,
            0xc0 => ExtensionType::PdcpPduNumber,
            other => ExtensionType::Unknown(other),
        }
    }
}

/// A borrowed view of a GTPv1 header.
#[derive(Debug, Clone, Copy)]
pub struct Gtpv1Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Gtpv1Packet<'a> {
    /// Wraps `bytes` after checking that the mandatory and, when flagged, optional fields are there.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Gtpv1Packet<'a>, DecodeError> {
        let packet = Gtpv1Packet { bytes };
        packet.check_len()?;
        Ok(packet)
    }

    fn check_len(&self) -> Result<(), DecodeError> {
        let needed = match self.bytes.first() {
            Some(first) if first & (flags::E | flags::S | flags::PN) != 0 => OPTIONAL_LEN,
            _ => MANDATORY_LEN,
        };
        if self.bytes.len() < needed {
            return Err(DecodeError::GtpTruncated);
        }
        Ok(())
    }

    /// Returns the version, the top 3 bits of the first octet.
    pub fn version(&self) -> u8 {
        self.bytes[field::FLAGS] >> 5
    }

    /// Returns the whole first octet.
    pub fn flags(&self) -> u8 {
        self.bytes[field::FLAGS]
    }

    /// True when any of E, S, PN is set, so the 4 optional bytes are present.
    pub fn has_optional(&self) -> bool {
        self.flags() & (flags::E | flags::S | flags::PN) != 0
    }

    /// Returns the message type octet.
    pub fn message_type(&self) -> u8 {
        self.bytes[field::MESSAGE_TYPE]
    }

    /// Returns the Length field: the number of bytes after the first 8.
    pub fn length(&self) -> u16 {
        u16::from_be_bytes([self.bytes[field::LENGTH.start], self.bytes[field::LENGTH.start + 1]])
    }

    /// Returns the Tunnel Endpoint Identifier.
    pub fn teid(&self) -> u32 {
        let teid = &self.bytes[field::TEID];
        u32::from_be_bytes([teid[0], teid[1], teid[2], teid[3]])
    }

    /// Returns the sequence number when the S flag is set.
    pub fn sequence(&self) -> Option<u16> {
        let sequence =
            |bytes: &[u8]| u16::from_be_bytes([bytes[field::SEQUENCE.start], bytes[field::SEQUENCE.start + 1]]);
        (self.flags() & flags::S != 0).then(|| sequence(self.bytes))
    }

    /// Returns the N-PDU number when the PN flag is set.
    pub fn npdu(&self) -> Option<u8> {
        (self.flags() & flags::PN != 0).then(|| self.bytes[field::NPDU])
    }

    /// Returns the type of the first extension header when the E flag is set, else 0 (none).
    pub fn next_extension(&self) -> u8 {
        if self.flags() & flags::E != 0 {
            self.bytes[field::NEXT_EXTENSION]
        } else {
            0
        }
    }

    /// Returns the header length (8, or 12 with optional fields), the message end (the
    /// Length field's end, cut at the buffer end) and whether those two ends disagree.
    fn bounds(&self) -> Result<(usize, usize, bool), DecodeError> {
        let header_len = if self.has_optional() { OPTIONAL_LEN } else { MANDATORY_LEN };
        let end = MANDATORY_LEN + usize::from(self.length());
        if end < header_len {
            return Err(DecodeError::GtpBadLength);
        }
        Ok((header_len, end.min(self.bytes.len()), end != self.bytes.len()))
    }

    /// True when the Length field reaches past the buffer (a truncated capture).
    fn length_exceeds_buffer(&self) -> bool {
        MANDATORY_LEN + usize::from(self.length()) > self.bytes.len()
    }
}

/// Decoded extension header chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Types in chain order.
    pub types: ArrayVec<ExtensionType, MAX_EXTENSIONS>,
    /// QoS Flow Identifier from a PDU Session Container (TS 38.415 §5.5.2).
    pub qfi: Option<u8>,
}

/// A checked GTPv1 header with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gtpv1Header<'a> {
    /// The first octet: version, PT, spare, E, S, PN.
    pub flags: u8,
    /// Message type.
    pub message_type: u8,
    /// Tunnel Endpoint Identifier.
    pub teid: u32,
    /// Sequence number, when S is set.
    pub sequence: Option<u16>,
    /// N-PDU number, when PN is set.
    pub npdu: Option<u8>,
    /// Extension header chain.
    pub extensions: Extensions,
    /// Bytes after the header and its extensions, up to the end set by the Length field.
    pub body: &'a [u8],
    /// The whole message, from the first header octet to the end of `body`.
    pub message: &'a [u8],
    /// True when the Length field disagrees with the bytes available.
    pub length_mismatch: bool,
}

impl<'a> Gtpv1Header<'a> {
    /// Parses a GTPv1 header of version 1 from the start of a UDP payload.
    pub fn parse(bytes: &'a [u8]) -> Result<Gtpv1Header<'a>, DecodeError> {
        let packet = Gtpv1Packet::new_checked(bytes)?;
        if packet.version() != 1 {
            return Err(DecodeError::GtpUnsupportedVersion);
        }
        let (header_len, end, length_mismatch) = packet.bounds()?;
        let message = &bytes[..end];
        let (extensions, body) = walk_extensions(packet.next_extension(), &message[header_len..]).map_err(|error| {
            // A chain that runs out of bytes is a bad Length unless the capture was cut short.
            match error {
                DecodeError::GtpTruncated if !packet.length_exceeds_buffer() => DecodeError::GtpBadLength,
                other => other,
            }
        })?;
        Ok(Gtpv1Header {
            flags: packet.flags(),
            message_type: packet.message_type(),
            teid: packet.teid(),
            sequence: packet.sequence(),
            npdu: packet.npdu(),
            extensions,
            body,
            message,
            length_mismatch,
        })
    }
}

/// Walks the extension header chain at the start of `bytes` (TS 29.281 §5.2).
///
/// Each header is: length in 4-byte units (including this octet and the next-type octet),
/// content, next extension header type. A length of 0 cannot advance and is rejected, and the
/// chain is cut off after [`MAX_EXTENSIONS`] headers.
fn walk_extensions(mut next_type: u8, bytes: &[u8]) -> Result<(Extensions, &[u8]), DecodeError> {
    let mut extensions = Extensions::default();
    let mut rest = bytes;
    while next_type != 0 {
        let units = *rest.first().ok_or(DecodeError::GtpTruncated)?;
        if units == 0 {
            return Err(DecodeError::GtpZeroExtensionLength);
        }
        let header = rest.get(..usize::from(units) * 4).ok_or(DecodeError::GtpTruncated)?;
        let kind = ExtensionType::from_u8(next_type);
        extensions.types.try_push(kind).map_err(|_| DecodeError::GtpExtensionChainTooLong)?;
        if kind == ExtensionType::PduSessionContainer {
            // Content octet 2 carries the QFI in its low 6 bits for both PDU types.
            extensions.qfi = Some(header[2] & 0x3f);
        }
        next_type = header[header.len() - 1];
        rest = &rest[header.len()..];
    }
    Ok((extensions, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandatory_header_only() {
        let bytes = [
            0x30, // version 1, PT 1, no E/S/PN
            0xff, // G-PDU
            0x00, 0x02, // Length 2
            0x00, 0x00, 0x00, 0x2a, // TEID 42
            0x45, 0x00, // body
        ];
        let header = Gtpv1Header::parse(&bytes).unwrap();
        assert_eq!(header.message_type, 255);
        assert_eq!(header.teid, 42);
        assert_eq!(header.sequence, None);
        assert_eq!(header.npdu, None);
        assert_eq!(header.body, &[0x45, 0x00]);
        assert!(!header.length_mismatch);
    }

    #[test]
    fn optional_fields_all_present_with_only_pn() {
        let bytes = [
            0x31, // version 1, PT 1, PN
            0xff, // G-PDU
            0x00, 0x05, // Length 5: 4 optional + 1
            0x00, 0x00, 0x00, 0x01, // TEID 1
            0xaa, 0xbb, // sequence (present, but S is clear)
            0x64, // N-PDU number 100
            0x00, // next extension type (E is clear)
            0x60, // body
        ];
        let header = Gtpv1Header::parse(&bytes).unwrap();
        assert_eq!(header.sequence, None);
        assert_eq!(header.npdu, Some(100));
        assert_eq!(header.body, &[0x60]);
    }

    #[test]
    fn zero_extension_length_rejected() {
        let bytes = [
            0x36, // version 1, PT 1, E, S
            0xff, // G-PDU
            0x00, 0x34, // Length 52, more than the 5 bytes that follow
            0x00, 0x00, 0x00, 0x01, // TEID 1
            0x00, 0x00, // sequence 0
            0x00, // N-PDU number
            0xff, // next extension type 0xff
            0x00, // extension length 0: invalid
        ];
        assert_eq!(Gtpv1Header::parse(&bytes), Err(DecodeError::GtpZeroExtensionLength));
    }

    #[test]
    fn pdu_session_container_offsets_payload() {
        let bytes = [
            0x34, // version 1, PT 1, E
            0xff, // G-PDU
            0x00, 0x09, // Length 9: 4 optional + 4 extension + 1
            0x00, 0x00, 0x00, 0x07, // TEID 7
            0x00, 0x00, // sequence (S clear)
            0x00, // N-PDU number (PN clear)
            0x85, // next extension: PDU Session Container
            0x01, // extension length 1 (4 bytes)
            0x10, // PDU type 1 (UL PDU session information)
            0x09, // QFI 9
            0x00, // no more extension headers
            0x45, // inner IPv4, 16 bytes after the start of the GTP header
        ];
        let header = Gtpv1Header::parse(&bytes).unwrap();
        assert_eq!(header.extensions.types.as_slice(), &[ExtensionType::PduSessionContainer]);
        assert_eq!(header.extensions.qfi, Some(9));
        assert_eq!(header.body, &bytes[16..]);
    }

    #[test]
    fn two_extensions_walked() {
        let bytes = [
            0x34, 0xff, 0x00, 0x0c, // flags E, G-PDU, Length 12
            0x00, 0x00, 0x00, 0x01, // TEID 1
            0x00, 0x00, 0x00, 0xc0, // sequence, N-PDU, next: PDCP PDU number
            0x01, 0x12, 0x34, 0x40, // length 1, PDCP number 0x1234, next: UDP port
            0x01, 0x08, 0x68, 0x00, // length 1, port 2152, no more
        ];
        let header = Gtpv1Header::parse(&bytes).unwrap();
        assert_eq!(header.extensions.types.as_slice(), &[ExtensionType::PdcpPduNumber, ExtensionType::UdpPort]);
        assert!(header.body.is_empty());
    }

    #[test]
    fn extension_past_length_is_bad_length() {
        let bytes = [
            0x34, 0xff, 0x00, 0x06, // flags E, G-PDU, Length 6: ends inside the extension
            0x00, 0x00, 0x00, 0x01, // TEID 1
            0x00, 0x00, 0x00, 0xc0, // sequence, N-PDU, next: PDCP PDU number
            0x01, 0x12, 0x34, 0x00, // length 1, PDCP number, no more
        ];
        assert_eq!(Gtpv1Header::parse(&bytes), Err(DecodeError::GtpBadLength));
    }

    #[test]
    fn endless_chain_stops() {
        let mut bytes = vec![0x34, 0xff, 0x00, 0x00, 0, 0, 0, 1, 0, 0, 0, 0xc0]; // E set, next 0xc0
        for _ in 0..MAX_EXTENSIONS + 1 {
            bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0xc0]); // every extension points to another
        }
        let length = (bytes.len() - MANDATORY_LEN) as u16;
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
        assert_eq!(Gtpv1Header::parse(&bytes), Err(DecodeError::GtpExtensionChainTooLong));
    }

    #[test]
    fn short_inputs_rejected() {
        assert_eq!(Gtpv1Header::parse(&[0x30, 0xff, 0x00]), Err(DecodeError::GtpTruncated));
        // S is set but only the 8 mandatory bytes are there.
        assert_eq!(Gtpv1Header::parse(&[0x32, 0xff, 0, 4, 0, 0, 0, 1]), Err(DecodeError::GtpTruncated));
        // S is set and the bytes are there, but Length 2 cannot cover the 4 optional bytes.
        let short_length = [0x32, 0x01, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(Gtpv1Header::parse(&short_length), Err(DecodeError::GtpBadLength));
        // Version 2 is not a GTPv1 header.
        assert_eq!(Gtpv1Header::parse(&[0x48, 1, 0, 0, 0, 0, 0, 0]), Err(DecodeError::GtpUnsupportedVersion));
    }

    #[test]
    fn length_mismatch_flagged() {
        let bytes = [
            0x30, 0x01, 0x00, 0x00, // Echo Request, Length 0
            0x00, 0x00, 0x00, 0x00, // TEID 0
            0xde, 0xad, // two bytes beyond Length
        ];
        let header = Gtpv1Header::parse(&bytes).unwrap();
        assert!(header.length_mismatch);
        assert!(header.body.is_empty());
    }
}
