//! GTPv2-C messages (TS 29.274 §5 and §7): header, information element walk and the
//! message-level IEs. Grouped and structured IEs are decoded in [`super::gtpv2_ie`].
//!
//! [`Gtpv2Packet`] is a borrowed view whose getters read fields in place; after
//! [`Gtpv2Packet::new_checked`] no getter panics.

use super::bytes::{set_once, u32_at};
use super::control::{ControlAnomalies, ControlMessage, GtpVersion};
use super::gtpv2_ie::{decode_bearer_context, decode_fteid, decode_paa, decode_uli, Gtpv2Ies, V2IeType};
use super::plmn::decode_plmn;
use super::tbcd::decode_tbcd;
use super::DecodeError;

/// Byte ranges of the GTPv2-C header, TS 29.274 §5.1.
mod field {
    use std::ops::Range;

    /// Version (3 bits), P, T, MP, spare.
    pub const FLAGS: usize = 0;
    pub const MESSAGE_TYPE: usize = 1;
    /// Length of everything after the first 4 bytes.
    pub const LENGTH: Range<usize> = 2..4;
    /// TEID, present when T is set.
    pub const TEID: Range<usize> = 4..8;
    /// Sequence number (3 bytes) with T set; without T it starts at 4.
    pub const SEQUENCE_WITH_TEID: Range<usize> = 8..11;
    pub const SEQUENCE_WITHOUT_TEID: Range<usize> = 4..7;
}

/// Piggybacking flag: another message follows this one in the same datagram.
const FLAG_P: u8 = 0x10;
/// TEID flag: the header carries a TEID and is 12 bytes long, else 8.
const FLAG_T: u8 = 0x08;
/// Bytes before the part that the Message Length counts.
const LENGTH_OFFSET: usize = 4;

/// GTPv2-C message types (TS 29.274 Table 6.1-1) that drive sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V2MessageType {
    /// 1.
    EchoRequest,
    /// 2.
    EchoResponse,
    /// 32.
    CreateSessionRequest,
    /// 33.
    CreateSessionResponse,
    /// 34.
    ModifyBearerRequest,
    /// 35.
    ModifyBearerResponse,
    /// 36.
    DeleteSessionRequest,
    /// 37.
    DeleteSessionResponse,
    /// 95.
    CreateBearerRequest,
    /// 96.
    CreateBearerResponse,
    /// 97.
    UpdateBearerRequest,
    /// 98.
    UpdateBearerResponse,
    /// 99.
    DeleteBearerRequest,
    /// 100.
    DeleteBearerResponse,
    /// 166.
    CreateIndirectDataForwardingTunnelRequest,
    /// 167.
    CreateIndirectDataForwardingTunnelResponse,
    /// 168.
    DeleteIndirectDataForwardingTunnelRequest,
    /// 169.
    DeleteIndirectDataForwardingTunnelResponse,
    /// 170.
    ReleaseAccessBearersRequest,
    /// 171.
    ReleaseAccessBearersResponse,
    /// 176.
    DownlinkDataNotification,
    /// 177.
    DownlinkDataNotificationAcknowledge,
    /// 211.
    ModifyAccessBearersRequest,
    /// 212.
    ModifyAccessBearersResponse,
    /// Any other value.
    Unknown(u8),
}

impl V2MessageType {
    /// Maps the message type octet to the enum.
    pub fn from_u8(value: u8) -> V2MessageType {
        use V2MessageType::*;
        match value {
            1 => EchoRequest,
            2 => EchoResponse,
            32 => CreateSessionRequest,
            33 => CreateSessionResponse,
            34 => ModifyBearerRequest,
            35 => ModifyBearerResponse,
            36 => DeleteSessionRequest,
            37 => DeleteSessionResponse,
            95 => CreateBearerRequest,
            96 => CreateBearerResponse,
            97 => UpdateBearerRequest,
            98 => UpdateBearerResponse,
            99 => DeleteBearerRequest,
            100 => DeleteBearerResponse,
            166 => CreateIndirectDataForwardingTunnelRequest,
            167 => CreateIndirectDataForwardingTunnelResponse,
            168 => DeleteIndirectDataForwardingTunnelRequest,
            169 => DeleteIndirectDataForwardingTunnelResponse,
            170 => ReleaseAccessBearersRequest,
            171 => ReleaseAccessBearersResponse,
            176 => DownlinkDataNotification,
            177 => DownlinkDataNotificationAcknowledge,
            211 => ModifyAccessBearersRequest,
            212 => ModifyAccessBearersResponse,
            other => Unknown(other),
        }
    }
}

/// A borrowed view of a GTPv2-C header.
#[derive(Debug, Clone, Copy)]
pub struct Gtpv2Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Gtpv2Packet<'a> {
    /// Wraps `bytes` after checking that the 8- or 12-byte header is there.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Gtpv2Packet<'a>, DecodeError> {
        let packet = Gtpv2Packet { bytes };
        match bytes.first() {
            Some(_) if bytes.len() >= packet.header_len() => Ok(packet),
            _ => Err(DecodeError::GtpTruncated),
        }
    }

    /// Returns the header length: 12 with a TEID, 8 without (and 8 for an empty buffer).
    fn header_len(&self) -> usize {
        match self.bytes.first() {
            Some(first) if first & FLAG_T != 0 => 12,
            _ => 8,
        }
    }

    /// Returns the version, the top 3 bits of the first octet.
    pub fn version(&self) -> u8 {
        self.bytes[field::FLAGS] >> 5
    }

    /// Returns the P flag: a piggybacked message follows.
    pub fn piggybacked(&self) -> bool {
        self.bytes[field::FLAGS] & FLAG_P != 0
    }

    /// Returns the message type octet.
    pub fn message_type(&self) -> u8 {
        self.bytes[field::MESSAGE_TYPE]
    }

    /// Returns the Message Length: the number of bytes after the first 4.
    pub fn length(&self) -> u16 {
        u16::from_be_bytes([self.bytes[field::LENGTH.start], self.bytes[field::LENGTH.start + 1]])
    }

    /// Returns the TEID when the T flag is set.
    pub fn teid(&self) -> Option<u32> {
        let has_teid = self.bytes[field::FLAGS] & FLAG_T != 0;
        has_teid.then(|| u32_at(&self.bytes[field::TEID], 0).unwrap_or(0))
    }

    /// Returns the 24-bit sequence number.
    pub fn sequence(&self) -> u32 {
        let range = if self.teid().is_some() { field::SEQUENCE_WITH_TEID } else { field::SEQUENCE_WITHOUT_TEID };
        let sequence = &self.bytes[range];
        u32::from_be_bytes([0, sequence[0], sequence[1], sequence[2]])
    }
}

/// Parses one GTPv2-C message at the start of `bytes`. Also returns the bytes after the end
/// that its Message Length sets, when the P flag announces a piggybacked message there.
pub fn parse_v2_control(bytes: &[u8]) -> Result<(ControlMessage<'_>, Option<&[u8]>), DecodeError> {
    let packet = Gtpv2Packet::new_checked(bytes)?;
    if packet.version() != 2 {
        return Err(DecodeError::GtpUnsupportedVersion);
    }
    let end = LENGTH_OFFSET + usize::from(packet.length());
    if end < packet.header_len() {
        return Err(DecodeError::GtpV2BadLength);
    }
    let mut message = ControlMessage {
        version: Some(GtpVersion::V2),
        message_type: packet.message_type(),
        teid: packet.teid(),
        sequence: packet.sequence(),
        ..ControlMessage::default()
    };
    let next = (packet.piggybacked() && end < bytes.len()).then(|| &bytes[end..]);
    // Bytes past the end are expected only when a piggybacked message follows.
    if end > bytes.len() || (end < bytes.len() && next.is_none()) {
        message.anomalies.insert(ControlAnomalies::LENGTH_MISMATCH);
    }
    walk_ies(&bytes[packet.header_len()..end.min(bytes.len())], &mut message);
    Ok((message, next))
}

/// Decodes the message-level IEs in wire order.
fn walk_ies<'a>(body: &'a [u8], message: &mut ControlMessage<'a>) {
    let mut ies = Gtpv2Ies::new(body);
    for ie in ies.by_ref() {
        apply_ie(ie.ie_type, ie.instance, ie.content, message);
    }
    if ies.truncated() {
        message.anomalies.insert(ControlAnomalies::TRUNCATED_IE);
    }
}

/// Stores one message-level IE's content in `message`.
fn apply_ie<'a>(ie_type: V2IeType, instance: u8, content: &'a [u8], message: &mut ControlMessage<'a>) {
    let anomalies = &mut message.anomalies;
    let first = content.first().copied();
    match ie_type {
        V2IeType::Imsi => set_once(&mut message.imsi, decode_tbcd(content, anomalies)),
        V2IeType::Cause => set_once(&mut message.cause, first),
        V2IeType::Recovery => set_once(&mut message.recovery, first),
        V2IeType::Apn => set_once(&mut message.apn, Some(content)),
        V2IeType::Ebi => {
            let ebi = first.map(|octet| octet & 0x0f);
            set_once(&mut message.ebi, ebi);
            if let Some(ebi) = ebi {
                if message.ebis.try_push(ebi).is_err() {
                    message.anomalies.insert(ControlAnomalies::CAPACITY_EXCEEDED);
                }
            }
        }
        V2IeType::Mei => set_once(&mut message.imei, decode_tbcd(content, anomalies)),
        V2IeType::Msisdn => set_once(&mut message.msisdn, decode_tbcd(content, anomalies)),
        V2IeType::Paa => set_once(&mut message.ue_address, decode_paa(content, anomalies)),
        V2IeType::RatType => set_once(&mut message.rat, first),
        V2IeType::ServingNetwork => set_once(&mut message.serving_network, decode_plmn(content)),
        V2IeType::Uli => set_once(&mut message.uli, decode_uli(content, anomalies)),
        V2IeType::ChargingId => set_once(&mut message.charging_id, u32_at(content, 0)),
        V2IeType::Fteid => {
            if let Some(fteid) = decode_fteid(instance, content, anomalies) {
                if message.fteids.try_push(fteid).is_err() {
                    anomalies.insert(ControlAnomalies::CAPACITY_EXCEEDED);
                }
            }
        }
        V2IeType::BearerContext => {
            let bearer = decode_bearer_context(instance, content, anomalies);
            if message.bearers.try_push(bearer).is_err() {
                anomalies.insert(ControlAnomalies::CAPACITY_EXCEEDED);
            }
        }
        V2IeType::Unknown(_) => {}
    }
}

#[cfg(test)]
mod tests;
