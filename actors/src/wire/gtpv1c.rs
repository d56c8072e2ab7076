//! GTPv1-C messages (TS 29.060 §7): the header is shared with GTP-U, then information
//! elements follow. Types below 128 are TV with a fixed length per type (Table 37); types
//! from 128 are TLV with a 2-byte length.
//!
//! An unknown TV type cannot be skipped, because its length is unknown: the walk stops there
//! with [`ControlAnomalies::UNKNOWN_TV_IE`] and what was decoded so far is kept.

use std::net::IpAddr;

use super::bytes::{ipv4_at, ipv6_at, set_once, u16_at, u32_at};
use super::control::{BearerContext, ControlAnomalies, ControlMessage, GtpVersion, UeAddress, Uli};
use super::gtpv1::{flags, Gtpv1Header};
use super::plmn::{decode_plmn, PLMN_LEN};
use super::tbcd::decode_tbcd;
use super::DecodeError;

/// GTPv1-C information element types (TS 29.060 §7.7, Table 37) that the decoder reads or
/// must skip by their fixed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V1IeType {
    /// 1, TV 1.
    Cause,
    /// 2, TV 8.
    Imsi,
    /// 3, TV 6.
    Rai,
    /// 4, TV 4.
    Tlli,
    /// 5, TV 4.
    PTmsi,
    /// 8, TV 1.
    ReorderingRequired,
    /// 9, TV 28.
    AuthenticationTriplet,
    /// 11, TV 1.
    MapCause,
    /// 12, TV 3.
    PTmsiSignature,
    /// 13, TV 1.
    MsValidated,
    /// 14, TV 1.
    Recovery,
    /// 15, TV 1.
    SelectionMode,
    /// 16, TV 4.
    TeidDataI,
    /// 17, TV 4.
    TeidControlPlane,
    /// 18, TV 5: NSAPI and TEID.
    TeidDataII,
    /// 19, TV 1.
    TeardownInd,
    /// 20, TV 1.
    Nsapi,
    /// 21, TV 1.
    RanapCause,
    /// 22, TV 9.
    RabContext,
    /// 23, TV 1.
    RadioPrioritySms,
    /// 24, TV 1.
    RadioPriority,
    /// 25, TV 2.
    PacketFlowId,
    /// 26, TV 2.
    ChargingCharacteristics,
    /// 27, TV 2.
    TraceReference,
    /// 28, TV 2.
    TraceType,
    /// 29, TV 1.
    MsNotReachableReason,
    /// 127, TV 4.
    ChargingId,
    /// 128, TLV.
    EndUserAddress,
    /// 131, TLV.
    AccessPointName,
    /// 133, TLV: 4 or 16 bytes.
    GsnAddress,
    /// 134, TLV: nature-of-address octet, then TBCD digits.
    Msisdn,
    /// 151, TLV.
    RatType,
    /// 152, TLV.
    UserLocationInformation,
    /// 154, TLV.
    ImeiSv,
    /// Any other value; below 128 its length is unknown.
    Unknown(u8),
}

impl V1IeType {
    /// Maps the type octet to the enum.
    pub fn from_u8(value: u8) -> V1IeType {
        use V1IeType::*;
        match value {
            1 => Cause,
            2 => Imsi,
            3 => Rai,
            4 => Tlli,
            5 => PTmsi,
            8 => ReorderingRequired,
            9 => AuthenticationTriplet,
            11 => MapCause,
            12 => PTmsiSignature,
            13 => MsValidated,
            14 => Recovery,
            15 => SelectionMode,
            16 => TeidDataI,
            17 => TeidControlPlane,
            18 => TeidDataII,
            19 => TeardownInd,
            20 => Nsapi,
            21 => RanapCause,
            22 => RabContext,
            23 => RadioPrioritySms,
            24 => RadioPriority,
            25 => PacketFlowId,
            26 => ChargingCharacteristics,
            27 => TraceReference,
            28 => TraceType,
            29 => MsNotReachableReason,
            127 => ChargingId,
            128 => EndUserAddress,
            131 => AccessPointName,
            133 => GsnAddress,
            134 => Msisdn,
            151 => RatType,
            152 => UserLocationInformation,
            154 => ImeiSv,
            other => Unknown(other),
        }
    }

    /// Content length of a TV type (the type octet excluded); `None` for TLV and unknown types.
    pub fn tv_length(self) -> Option<usize> {
        use V1IeType::*;
        match self {
            Cause | ReorderingRequired | MapCause | MsValidated | Recovery | SelectionMode | TeardownInd | Nsapi
            | RanapCause | RadioPrioritySms | RadioPriority | MsNotReachableReason => Some(1),
            PacketFlowId | ChargingCharacteristics | TraceReference | TraceType => Some(2),
            PTmsiSignature => Some(3),
            Tlli | PTmsi | TeidDataI | TeidControlPlane | ChargingId => Some(4),
            TeidDataII => Some(5),
            Rai => Some(6),
            Imsi => Some(8),
            RabContext => Some(9),
            AuthenticationTriplet => Some(28),
            _ => None,
        }
    }
}

/// Parses one GTPv1-C message. A GTPv1 header with PT 0 (GTP') is rejected.
pub fn parse_v1_control(bytes: &[u8]) -> Result<ControlMessage<'_>, DecodeError> {
    let header = Gtpv1Header::parse(bytes)?;
    if header.flags & flags::PT == 0 {
        return Err(DecodeError::GtpUnsupportedVersion);
    }
    let mut message = ControlMessage {
        version: Some(GtpVersion::V1),
        message_type: header.message_type,
        teid: Some(header.teid),
        sequence: u32::from(header.sequence.unwrap_or(0)),
        ..ControlMessage::default()
    };
    if header.length_mismatch {
        message.anomalies.insert(ControlAnomalies::LENGTH_MISMATCH);
    }
    walk_ies(header.body, &mut message);
    add_nsapi_bearer(&mut message);
    Ok(message)
}

/// Decodes IEs in wire order until the body ends, an IE is cut short or a TV type is unknown.
fn walk_ies<'a>(body: &'a [u8], message: &mut ControlMessage<'a>) {
    let mut rest = body;
    while let Some(&type_octet) = rest.first() {
        let ie_type = V1IeType::from_u8(type_octet);
        let (start, len): (usize, usize) = match (type_octet < 128, ie_type.tv_length()) {
            (true, Some(len)) => (1, len),
            (true, None) => {
                message.anomalies.insert(ControlAnomalies::UNKNOWN_TV_IE);
                return;
            }
            (false, _) => (3, u16_at(rest, 1).map_or(usize::MAX, usize::from)),
        };
        let Some(content) = rest.get(start..start.saturating_add(len)) else {
            message.anomalies.insert(ControlAnomalies::TRUNCATED_IE);
            return;
        };
        apply_ie(ie_type, content, message);
        rest = &rest[start + len..];
    }
}

/// Stores one IE's content in `message`.
fn apply_ie<'a>(ie_type: V1IeType, content: &'a [u8], message: &mut ControlMessage<'a>) {
    let anomalies = &mut message.anomalies;
    let first = content.first().copied();
    match ie_type {
        V1IeType::Cause => set_once(&mut message.cause, first),
        V1IeType::Imsi => set_once(&mut message.imsi, decode_tbcd(content, anomalies)),
        V1IeType::Rai => set_once(&mut message.rai, decode_rai(content)),
        V1IeType::Recovery => set_once(&mut message.recovery, first),
        V1IeType::TeidDataI => set_once(&mut message.teid_data_i, u32_at(content, 0)),
        V1IeType::TeidControlPlane => set_once(&mut message.teid_control, u32_at(content, 0)),
        V1IeType::TeardownInd => message.teardown |= first.is_some_and(|octet| octet & 1 == 1),
        V1IeType::Nsapi => set_once(&mut message.nsapi, first.map(|octet| octet & 0x0f)),
        V1IeType::ChargingId => set_once(&mut message.charging_id, u32_at(content, 0)),
        V1IeType::EndUserAddress => set_once(&mut message.ue_address, decode_end_user_address(content, anomalies)),
        V1IeType::AccessPointName => set_once(&mut message.apn, Some(content)),
        V1IeType::GsnAddress => push_gsn_address(content, message),
        V1IeType::Msisdn => set_once(&mut message.msisdn, decode_msisdn(content, anomalies)),
        V1IeType::RatType => set_once(&mut message.rat, first),
        V1IeType::UserLocationInformation => set_once(&mut message.uli, decode_uli(content, anomalies)),
        V1IeType::ImeiSv => set_once(&mut message.imei, decode_tbcd(content, anomalies)),
        _ => {}
    }
}

/// RAI IE 3 (TS 29.060 §7.7.3): PLMN, LAC (2), RAC (1).
fn decode_rai(content: &[u8]) -> Option<(super::control::Plmn, u16, u8)> {
    Some((decode_plmn(content)?, u16_at(content, PLMN_LEN)?, *content.get(PLMN_LEN + 2)?))
}

/// MSISDN IE 134 (TS 29.060 §7.7.33): the first octet is the nature of address and
/// numbering plan, then TBCD digits.
fn decode_msisdn(content: &[u8], anomalies: &mut ControlAnomalies) -> Option<super::control::Digits> {
    let Some((_nature_of_address, digits)) = content.split_first() else {
        anomalies.insert(ControlAnomalies::SHORT_IE);
        return None;
    };
    decode_tbcd(digits, anomalies)
}

/// GSN Address IE 133 (TS 29.060 §7.7.32): an IPv4 (4 bytes) or IPv6 (16 bytes) address.
fn push_gsn_address(content: &[u8], message: &mut ControlMessage<'_>) {
    let address = match content.len() {
        4 => ipv4_at(content, 0).map(IpAddr::V4),
        16 => ipv6_at(content, 0).map(IpAddr::V6),
        _ => None,
    };
    match address {
        Some(address) if message.gsn_addresses.try_push(address).is_err() => {
            message.anomalies.insert(ControlAnomalies::CAPACITY_EXCEEDED)
        }
        Some(_) => {}
        None => message.anomalies.insert(ControlAnomalies::INVALID_VALUE),
    }
}

/// End User Address IE 128 (TS 29.060 §7.7.27): spare and PDP type organisation, PDP type
/// number, then the address(es). No address means dynamic allocation is requested.
fn decode_end_user_address(content: &[u8], anomalies: &mut ControlAnomalies) -> Option<UeAddress> {
    const ETSI: u8 = 0;
    const IETF: u8 = 1;
    let (Some(organisation), Some(&number)) = (content.first().map(|octet| octet & 0x0f), content.get(1)) else {
        anomalies.insert(ControlAnomalies::SHORT_IE);
        return None;
    };
    let addresses = &content[2..];
    let mut address = UeAddress { present: true, ..UeAddress::default() };
    let valid = match (organisation, number, addresses.len()) {
        // PPP (0x01) and non-IP (0x02) carry no IP address.
        (ETSI, _, _) | (IETF, 0x21 | 0x57 | 0x8d, 0) => true,
        (IETF, 0x21 | 0x8d, 4) => set_ipv4(&mut address, addresses, 0),
        (IETF, 0x57 | 0x8d, 16) => set_ipv6(&mut address, addresses, 0),
        // IPv4v6 with both: the IPv4 address comes first.
        (IETF, 0x8d, 20) => set_ipv4(&mut address, addresses, 0) && set_ipv6(&mut address, addresses, 4),
        _ => false,
    };
    if !valid {
        anomalies.insert(ControlAnomalies::INVALID_VALUE);
        return None;
    }
    Some(address)
}

fn set_ipv4(address: &mut UeAddress, bytes: &[u8], offset: usize) -> bool {
    address.ipv4 = ipv4_at(bytes, offset).filter(|ipv4| !ipv4.is_unspecified());
    true
}

/// GTPv1 carries a full IPv6 address with no prefix length; 64 is stored because 3GPP
/// assigns a /64 prefix per PDP context.
fn set_ipv6(address: &mut UeAddress, bytes: &[u8], offset: usize) -> bool {
    address.ipv6 = ipv6_at(bytes, offset).filter(|ipv6| !ipv6.is_unspecified()).map(|ipv6| (ipv6, 64));
    true
}

/// ULI IE 152 (TS 29.060 §7.7.51): geographic location type, then PLMN, LAC and CI, SAC or
/// RAC (the RAC in the first of the two octets, the second is 0xFF).
fn decode_uli(content: &[u8], anomalies: &mut ControlAnomalies) -> Option<Uli> {
    let (Some(&location_type), Some(lac), Some(code)) = (content.first(), u16_at(content, 4), u16_at(content, 6))
    else {
        anomalies.insert(ControlAnomalies::SHORT_IE);
        return None;
    };
    let Some(plmn) = decode_plmn(&content[1..]) else {
        anomalies.insert(ControlAnomalies::INVALID_VALUE);
        return None;
    };
    let mut uli = Uli::default();
    match location_type {
        0 => uli.cgi = Some((plmn, lac, code)),
        1 => uli.sai = Some((plmn, lac, code)),
        2 => uli.rai = Some((plmn, lac, code >> 8)),
        _ => return None,
    }
    Some(uli)
}

/// Records the message's per-NSAPI data as one bearer context, so GTPv1 and GTPv2 messages
/// can be read the same way.
fn add_nsapi_bearer(message: &mut ControlMessage<'_>) {
    let Some(nsapi) = message.nsapi else { return };
    let bearer = BearerContext {
        ebi: Some(nsapi),
        cause: message.cause,
        charging_id: message.charging_id,
        ..BearerContext::default()
    };
    // GTPv1 IEs never fill `bearers`, so this first push cannot fail.
    let _ = message.bearers.try_push(bearer);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::control::Plmn;

    /// Builds a GTPv1-C message with the S flag set around `ies`.
    fn message(message_type: u8, teid: u32, sequence: u16, ies: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x32, message_type]; // version 1, PT 1, S
        bytes.extend_from_slice(&((ies.len() + 4) as u16).to_be_bytes()); // Length
        bytes.extend_from_slice(&teid.to_be_bytes()); // TEID
        bytes.extend_from_slice(&sequence.to_be_bytes()); // sequence number
        bytes.extend_from_slice(&[0, 0]); // N-PDU number, next extension type
        bytes.extend_from_slice(ies);
        bytes
    }

    #[test]
    fn create_pdp_context_request() {
        let ies = [
            0x02, 0x64, 0x00, 0x40, 0x01, 0x00, 0x00, 0x01, 0xf1, // IMSI 460004100000101
            0x03, 0x64, 0xf0, 0x00, 0x12, 0x34, 0x56, // RAI: MCC 460, MNC 00, LAC 0x1234, RAC 0x56
            0x0e, 0x07, // Recovery 7
            0x0f, 0x01, // Selection Mode
            0x10, 0x32, 0xf0, 0x2b, 0xf9, // TEID Data I
            0x11, 0x32, 0xf0, 0x2b, 0xfa, // TEID Control Plane
            0x14, 0x05, // NSAPI 5
            0x1a, 0x08, 0x00, // Charging Characteristics
            0x80, 0x00, 0x02, 0xf1, 0x21, // End User Address: IETF IPv4, dynamic
            0x83, 0x00, 0x09, 0x08, b'i', b'n', b't', b'e', b'r', b'n', b'e', b't', // APN
            0x85, 0x00, 0x04, 10, 0, 0, 1, // GSN Address for signalling
            0x85, 0x00, 0x04, 10, 0, 0, 2, // GSN Address for user traffic
            0x86, 0x00, 0x07, 0x91, 0x64, 0x07, 0x12, 0x32, 0x54, 0xf6, // MSISDN, NoA 0x91, 46702123456
            0x97, 0x00, 0x01, 0x01, // RAT Type 1 (UTRAN)
            0x98, 0x00, 0x08, 0x01, 0x64, 0xf0, 0x00, 0x12, 0x34, 0x00, 0x99, // ULI: SAI, SAC 0x99
            0x9a, 0x00, 0x08, 0x53, 0x43, 0x09, 0x60, 0x89, 0x37, 0x23, 0x10, // IMEISV
        ];
        let bytes = message(16, 0, 0x1234, &ies);
        let message = parse_v1_control(&bytes).unwrap();
        assert_eq!(message.version, Some(GtpVersion::V1));
        assert_eq!(message.message_type, 16);
        assert_eq!(message.teid, Some(0));
        assert_eq!(message.sequence, 0x1234);

        assert_eq!(message.imsi.unwrap().as_str(), "460004100000101");
        let plmn = Plmn { mcc: 460, mnc: 0, mnc_three_digits: false };
        assert_eq!(message.rai, Some((plmn, 0x1234, 0x56)));
        assert_eq!(message.recovery, Some(7));
        assert_eq!(message.teid_data_i, Some(0x32f0_2bf9));
        assert_eq!(message.teid_control, Some(0x32f0_2bfa));
        assert_eq!(message.nsapi, Some(5));

        assert_eq!(message.ue_address, Some(UeAddress { present: true, ..UeAddress::default() }));
        assert_eq!(message.apn, Some(&ies[43..52]));
        let gsn: Vec<IpAddr> = vec![Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into()];
        assert_eq!(message.gsn_addresses.as_slice(), gsn.as_slice());
        assert_eq!(message.msisdn.unwrap().as_str(), "46702123456");
        assert_eq!(message.rat, Some(1));
        assert_eq!(message.uli.unwrap().sai, Some((plmn, 0x1234, 0x99)));
        assert_eq!(message.imei.unwrap().as_str(), "3534900698733201");

        assert_eq!(message.bearers.len(), 1);
        assert_eq!(message.bearers[0].ebi, Some(5));
        assert_eq!(message.anomalies, ControlAnomalies::default());
    }

    #[test]
    fn create_pdp_context_response() {
        let ies = [
            0x01, 0x80, // Cause 128: request accepted
            0x10, 0x10, 0x00, 0x00, 0x85, // TEID Data I
            0x11, 0x10, 0x00, 0x00, 0x80, // TEID Control Plane
            0x14, 0x05, // NSAPI 5
            0x7f, 0x00, 0x00, 0x00, 0x2a, // Charging ID 42
            0x80, 0x00, 0x06, 0xf1, 0x21, 192, 168, 252, 130, // End User Address: IPv4 192.168.252.130
        ];
        let bytes = message(17, 0x32f0_2bfa, 0x1234, &ies);
        let message = parse_v1_control(&bytes).unwrap();
        assert_eq!(message.cause, Some(128));
        assert_eq!(message.teid, Some(0x32f0_2bfa));
        assert_eq!(message.charging_id, Some(42));
        assert_eq!(message.ue_address.unwrap().ipv4, Some(Ipv4Addr::new(192, 168, 252, 130)));
        assert_eq!(message.bearers[0].cause, Some(128));
        assert_eq!(message.bearers[0].charging_id, Some(42));
    }

    #[test]
    fn end_user_address_ipv4v6() {
        let mut content = vec![0xf1, 0x8d]; // IETF, IPv4v6
        content.extend_from_slice(&[10, 1, 2, 3]); // IPv4
        content.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // IPv6
        let mut anomalies = ControlAnomalies::default();
        let address = decode_end_user_address(&content, &mut anomalies).unwrap();
        assert_eq!(address.ipv4, Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(address.ipv6, Some(("2001:db8::1".parse().unwrap(), 64)));
        let bad = [0xf1, 0x21, 1, 2]; // IPv4 type with a 2-byte address
        assert_eq!(decode_end_user_address(&bad, &mut anomalies), None);
        assert!(anomalies.contains(ControlAnomalies::INVALID_VALUE));
    }

    #[test]
    fn unknown_tv_stops_walk() {
        let ies = [
            0x0e, 0x07, // Recovery 7
            0x06, 0x00, // type 6 is not in Table 37: length unknown
            0x14, 0x05, // NSAPI, never reached
        ];
        let bytes = message(16, 0, 1, &ies);
        let message = parse_v1_control(&bytes).unwrap();
        assert_eq!(message.recovery, Some(7));
        assert_eq!(message.nsapi, None);
        assert!(message.anomalies.contains(ControlAnomalies::UNKNOWN_TV_IE));
    }

    #[test]
    fn truncated_tlv_flagged() {
        let ies = [
            0x14, 0x05, // NSAPI 5
            0x83, 0x00, 0x20, 0x08, // APN claiming 32 bytes, 1 present
        ];
        let bytes = message(16, 0, 1, &ies);
        let message = parse_v1_control(&bytes).unwrap();
        assert_eq!(message.nsapi, Some(5));
        assert_eq!(message.apn, None);
        assert!(message.anomalies.contains(ControlAnomalies::TRUNCATED_IE));
    }

    #[test]
    fn teardown_and_rai_uli() {
        let ies = [
            0x13, 0xff, // Teardown Ind: low bit 1
            0x98, 0x00, 0x08, 0x02, 0x22, 0xf2, 0x10, 0x00, 0x07, 0x0c, 0xff, // ULI: RAI, LAC 7, RAC 12
        ];
        let bytes = message(20, 9, 1, &ies);
        let message = parse_v1_control(&bytes).unwrap();
        assert!(message.teardown);
        let plmn = Plmn { mcc: 222, mnc: 1, mnc_three_digits: false };
        assert_eq!(message.uli.unwrap().rai, Some((plmn, 7, 12)));
    }

    #[test]
    fn gtp_prime_rejected() {
        let mut bytes = message(240, 0, 1, &[]);
        bytes[0] = 0x22; // version 1, PT 0
        assert_eq!(parse_v1_control(&bytes).unwrap_err(), DecodeError::GtpUnsupportedVersion);
    }
}
