use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::wire::control::{FteidInterface, Plmn, UeAddress};

/// Wraps `ies` in a GTPv2-C header with the T flag, setting Message Length from the content.
fn message(message_type: u8, teid: u32, sequence: u32, ies: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x48, message_type]; // version 2, T set
    bytes.extend_from_slice(&((ies.len() + 8) as u16).to_be_bytes()); // Message Length
    bytes.extend_from_slice(&teid.to_be_bytes()); // TEID
    bytes.extend_from_slice(&sequence.to_be_bytes()[1..]); // 3-byte sequence number
    bytes.push(0); // spare
    bytes.extend_from_slice(ies);
    bytes
}

#[test]
fn create_session_request_two_bearers() {
    let ies = [
        0x01, 0x00, 0x08, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x60, 0xf4, // IMSI 001020000000064
        0x4c, 0x00, 0x06, 0x00, 0x64, 0x07, 0x12, 0x32, 0x54, 0xf6, // MSISDN 46702123456
        0x4b, 0x00, 0x08, 0x00, 0x53, 0x43, 0x09, 0x60, 0x89, 0x37, 0x23, 0x10, // MEI 3534900698733201
        0x56, 0x00, 0x0d, 0x00, // ULI, 13 bytes
        0x18, // presence: TAI (bit 3) and ECGI (bit 4)
        0x22, 0xf2, 0x10, 0x00, 0x65, // TAI: MCC 222, MNC 01, TAC 101
        0x22, 0xf2, 0x10, 0x01, 0x23, 0x45, 0x67, // ECGI: ECI 0x1234567
        0x53, 0x00, 0x03, 0x00, 0x22, 0xf2, 0x10, // Serving Network 222/01
        0x52, 0x00, 0x01, 0x00, 0x06, // RAT Type 6 (EUTRAN)
        0x57, 0x00, 0x09, 0x00, 0x8a, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // F-TEID: V4, S11 MME, TEID 1
        0x57, 0x00, 0x05, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, // F-TEID instance 1: S5/S8 PGW GTP-C, no address
        0x47, 0x00, 0x04, 0x00, 0x03, b'i', b'm', b's', // APN "ims"
        0x4f, 0x00, 0x05, 0x00, 0x01, 0, 0, 0, 0, // PAA: IPv4, 0.0.0.0 (dynamic)
        0x5d, 0x00, 0x05, 0x00, // Bearer Context, instance 0
        0x49, 0x00, 0x01, 0x00, 0x05, //   EBI 5
        0x5d, 0x00, 0x05, 0x00, // Bearer Context, instance 0 again
        0x49, 0x00, 0x01, 0x00, 0x06, //   EBI 6
        0x03, 0x00, 0x01, 0x00, 0x09, // Recovery 9
    ];
    let bytes = message(32, 0, 0x00_0102, &ies);
    let (message, next) = parse_v2_control(&bytes).unwrap();
    assert!(next.is_none());
    assert_eq!(message.version, Some(GtpVersion::V2));
    assert_eq!(message.message_type, 32);
    assert_eq!(message.teid, Some(0));
    assert_eq!(message.sequence, 0x102);

    assert_eq!(message.imsi.unwrap().as_str(), "001020000000064");
    assert_eq!(message.msisdn.unwrap().as_str(), "46702123456");
    assert_eq!(message.imei.unwrap().as_str(), "3534900698733201");

    let plmn = Plmn { mcc: 222, mnc: 1, mnc_three_digits: false };
    let uli = message.uli.unwrap();
    assert_eq!(uli.tai, Some((plmn, 101)));
    assert_eq!(uli.ecgi, Some((plmn, 0x123_4567)));
    assert_eq!(uli.cgi, None);
    assert_eq!(message.serving_network, Some(plmn));
    assert_eq!(message.rat, Some(6));

    assert_eq!(message.fteids.len(), 2);
    assert_eq!(message.fteids[0].interface, FteidInterface::S11Mme);
    assert_eq!(message.fteids[0].ipv4, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!((message.fteids[1].instance, message.fteids[1].interface), (1, FteidInterface::S5S8PgwC));
    assert_eq!(message.apn, Some(b"\x03ims".as_slice()));
    assert_eq!(message.ue_address, Some(UeAddress { present: true, ..UeAddress::default() }));

    assert_eq!(message.bearers.len(), 2, "both Bearer Contexts of type 93 instance 0 are kept");
    assert_eq!((message.bearers[0].instance, message.bearers[0].ebi), (0, Some(5)));
    assert_eq!((message.bearers[1].instance, message.bearers[1].ebi), (0, Some(6)));
    assert_eq!(message.recovery, Some(9));
    assert_eq!(message.anomalies, ControlAnomalies::default());
}

#[test]
fn create_session_response_bearer_fteids() {
    let ies = [
        0x02, 0x00, 0x02, 0x00, 0x10, 0x00, // Cause 16 (request accepted), flags
        0x57, 0x00, 0x09, 0x00, 0x8b, 0x00, 0x00, 0x00, 0x13, 172, 16, 1, 2, // F-TEID: V4, S11/S4 SGW, TEID 0x13
        0x57, 0x00, 0x09, 0x01, 0x87, 0x00, 0x00, 0x00, 0x21, 172, 16, 1, 3, // F-TEID inst 1: V4, S5/S8 PGW GTP-C
        0x4f, 0x00, 0x05, 0x00, 0x01, 192, 168, 126, 1, // PAA: IPv4 192.168.126.1
        0x5d, 0x00, 0x25, 0x00, // Bearer Context, instance 0, 37 bytes
        0x49, 0x00, 0x01, 0x00, 0x05, //   EBI 5
        0x02, 0x00, 0x02, 0x00, 0x10, 0x00, //   Cause 16
        0x57, 0x00, 0x09, 0x00, 0x81, 0x00, 0x00, 0x00, 0x01, 172, 16, 20, 4, //   F-TEID: V4, S1-U SGW, TEID 1
        0x57, 0x00, 0x09, 0x02, 0x85, 0x16, 0x00, 0x00, 0x00, 172, 16, 20,
        150, //   F-TEID inst 2: V4, S5/S8-U PGW
    ];
    let bytes = message(33, 0x0000_0001, 7, &ies);
    let (message, _) = parse_v2_control(&bytes).unwrap();
    assert_eq!(message.cause, Some(16));
    assert_eq!(message.teid, Some(1));

    let control: Vec<_> = message.fteids.iter().map(|fteid| (fteid.interface, fteid.teid, fteid.ipv4)).collect();
    assert_eq!(
        control,
        [
            (FteidInterface::S11S4Sgw, 0x13, Some(Ipv4Addr::new(172, 16, 1, 2))),
            (FteidInterface::S5S8PgwC, 0x21, Some(Ipv4Addr::new(172, 16, 1, 3))),
        ]
    );
    assert_eq!(message.ue_address.unwrap().ipv4, Some(Ipv4Addr::new(192, 168, 126, 1)));

    assert_eq!(message.bearers.len(), 1);
    let bearer = &message.bearers[0];
    assert_eq!((bearer.ebi, bearer.cause), (Some(5), Some(16)));
    let user: Vec<_> =
        bearer.fteids.iter().map(|fteid| (fteid.instance, fteid.interface, fteid.teid, fteid.ipv4)).collect();
    assert_eq!(
        user,
        [
            (0, FteidInterface::S1uSgw, 0x0000_0001, Some(Ipv4Addr::new(172, 16, 20, 4))),
            (2, FteidInterface::S5S8PgwU, 0x1600_0000, Some(Ipv4Addr::new(172, 16, 20, 150))),
        ]
    );
    assert_eq!(message.anomalies, ControlAnomalies::default());
}

#[test]
fn fteid_with_both_addresses() {
    let content = [
        0xc1, // V4, V6, interface 1 (S1-U SGW)
        0xde, 0xad, 0xbe, 0xef, // TEID
        10, 0, 0, 9, // IPv4
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, // IPv6 2001:db8::9
    ];
    let mut anomalies = ControlAnomalies::default();
    let fteid = decode_fteid(3, &content, &mut anomalies).unwrap();
    assert_eq!(fteid.instance, 3);
    assert_eq!(fteid.interface, FteidInterface::S1uSgw);
    assert_eq!(fteid.teid, 0xdead_beef);
    assert_eq!(fteid.ipv4, Some(Ipv4Addr::new(10, 0, 0, 9)));
    assert_eq!(fteid.ipv6, Some("2001:db8::9".parse::<Ipv6Addr>().unwrap()));
    assert_eq!(decode_fteid(0, &content[..24], &mut anomalies), None, "one IPv6 byte missing");
    assert!(anomalies.contains(ControlAnomalies::SHORT_IE));
}

#[test]
fn fteid_ipv6_only() {
    let content = [
        0x40, // V6, interface 0 (S1-U eNodeB)
        0x00, 0x00, 0x00, 0x05, // TEID 5
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // IPv6 2001:db8::1
    ];
    let fteid = decode_fteid(0, &content, &mut ControlAnomalies::default()).unwrap();
    assert_eq!((fteid.interface, fteid.teid, fteid.ipv4), (FteidInterface::S1uEnodeb, 5, None));
    assert_eq!(fteid.ipv6, Some("2001:db8::1".parse::<Ipv6Addr>().unwrap()));
}

#[test]
fn paa_ipv6_and_dual_stack() {
    let mut anomalies = ControlAnomalies::default();
    let prefix: Ipv6Addr = "2001:db8:a000:3::".parse().unwrap();
    let mut ipv6 = vec![0x02, 64]; // PDN type IPv6, prefix length 64
    ipv6.extend_from_slice(&prefix.octets()); // prefix
    let address = decode_paa(&ipv6, &mut anomalies).unwrap();
    assert_eq!((address.ipv4, address.ipv6), (None, Some((prefix, 64))));
    let mut dual = vec![0x03, 56]; // PDN type IPv4v6, prefix length 56
    dual.extend_from_slice(&prefix.octets()); // prefix
    dual.extend_from_slice(&[100, 64, 0, 7]); // IPv4 address, last
    let address = decode_paa(&dual, &mut anomalies).unwrap();
    assert_eq!(address.ipv4, Some(Ipv4Addr::new(100, 64, 0, 7)));
    assert_eq!(address.ipv6, Some((prefix, 56)));
    assert_eq!(anomalies, ControlAnomalies::default());
    assert_eq!(decode_paa(&[0x01, 10, 0], &mut anomalies), None, "IPv4 cut short");
    assert!(anomalies.contains(ControlAnomalies::SHORT_IE));
    assert_eq!(decode_paa(&[0x07], &mut anomalies), None, "PDN type 7 is not defined");
    assert!(anomalies.contains(ControlAnomalies::INVALID_VALUE));
}

#[test]
fn uli_all_six_fields_in_flag_order() {
    let content = [
        0x3f, // presence: CGI, SAI, RAI, TAI, ECGI, LAI
        0x22, 0xf2, 0x10, 0x00, 0x01, 0x00, 0x02, // CGI: LAC 1, CI 2
        0x22, 0xf2, 0x10, 0x00, 0x03, 0x00, 0x04, // SAI: LAC 3, SAC 4
        0x22, 0xf2, 0x10, 0x00, 0x05, 0x06, 0xff, // RAI: LAC 5, RAC 6 (second octet 0xFF)
        0x22, 0xf2, 0x10, 0x00, 0x07, // TAI: TAC 7
        0x22, 0xf2, 0x10, 0xf0, 0x00, 0x00, 0x08, // ECGI: spare bits set, ECI 8
        0x22, 0xf2, 0x10, 0x00, 0x09, // LAI: LAC 9
    ];
    let plmn = Plmn { mcc: 222, mnc: 1, mnc_three_digits: false };
    let uli = decode_uli(&content, &mut ControlAnomalies::default()).unwrap();
    assert_eq!(uli.cgi, Some((plmn, 1, 2)));
    assert_eq!(uli.sai, Some((plmn, 3, 4)));
    assert_eq!(uli.rai, Some((plmn, 5, 6)));
    assert_eq!(uli.tai, Some((plmn, 7)));
    assert_eq!(uli.ecgi, Some((plmn, 8)));
    assert_eq!(uli.lai, Some((plmn, 9)));
}

#[test]
fn uli_field_cut_short() {
    let content = [
        0x18, // presence: TAI, ECGI
        0x22, 0xf2, 0x10, 0x00, 0x07, // TAI: TAC 7
        0x22, 0xf2, 0x10, 0x00, // ECGI missing 3 bytes
    ];
    let mut anomalies = ControlAnomalies::default();
    let uli = decode_uli(&content, &mut anomalies).unwrap();
    assert!(uli.tai.is_some());
    assert_eq!(uli.ecgi, None);
    assert!(anomalies.contains(ControlAnomalies::SHORT_IE));
}

#[test]
fn length_equal_to_payload_minus_four() {
    let bytes = [
        0x40, 0x01, 0x00, 0x09, // version 2, no T; Echo Request; Length 9 = 13 - 4
        0x00, 0x00, 0x2a, 0x00, // sequence 42, spare
        0x03, 0x00, 0x01, 0x00, 0x01, // Recovery 1
    ];
    let (message, next) = parse_v2_control(&bytes).unwrap();
    assert_eq!(message.teid, None);
    assert_eq!(message.sequence, 42);
    assert_eq!(message.recovery, Some(1));
    assert!(next.is_none());
    assert_eq!(message.anomalies, ControlAnomalies::default());
}

#[test]
fn length_mismatch_and_truncated_ie() {
    let bytes = [
        0x40, 0x01, 0x00, 0x0e, // version 2, no T; Echo Request; Length 14 > 9 present
        0x00, 0x00, 0x01, 0x00, // sequence 1, spare
        0x03, 0x00, 0x06, 0x00, 0x01, // Recovery claiming 6 bytes, 1 present
    ];
    let (message, _) = parse_v2_control(&bytes).unwrap();
    assert!(message.anomalies.contains(ControlAnomalies::LENGTH_MISMATCH));
    assert!(message.anomalies.contains(ControlAnomalies::TRUNCATED_IE));
    assert_eq!(message.recovery, None);
}

#[test]
fn header_errors() {
    assert_eq!(parse_v2_control(&[0x48, 0x20, 0x00]).unwrap_err(), DecodeError::GtpTruncated);
    // T set: 12 header bytes needed, 8 present.
    assert_eq!(parse_v2_control(&[0x48, 0x20, 0x00, 0x04, 0, 0, 0, 0]).unwrap_err(), DecodeError::GtpTruncated);
    // T set, Length 4 does not cover the TEID and sequence (8).
    let short = [0x48, 0x20, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 1, 0];
    assert_eq!(parse_v2_control(&short).unwrap_err(), DecodeError::GtpV2BadLength);
    let version_one = [0x20, 0x20, 0x00, 0x04, 0, 0, 1, 0]; // version 1, no T
    assert_eq!(parse_v2_control(&version_one).unwrap_err(), DecodeError::GtpUnsupportedVersion);
}

#[test]
fn nested_bearer_context_flagged() {
    let ies = [
        0x5d, 0x00, 0x0a, 0x00, // Bearer Context, 10 bytes
        0x5d, 0x00, 0x05, 0x00, //   a Bearer Context inside it
        0x49, 0x00, 0x01, 0x00, 0x05, //     EBI 5
        0x00, // padding byte: an IE header cut short
    ];
    let bytes = message(95, 1, 1, &ies);
    let (message, _) = parse_v2_control(&bytes).unwrap();
    assert_eq!(message.bearers.len(), 1);
    assert_eq!(message.bearers[0].ebi, None);
    assert!(message.anomalies.contains(ControlAnomalies::NESTING_TOO_DEEP));
    assert!(message.anomalies.contains(ControlAnomalies::TRUNCATED_IE));
}

#[test]
fn message_types_map() {
    assert_eq!(V2MessageType::from_u8(170), V2MessageType::ReleaseAccessBearersRequest);
    assert_eq!(V2MessageType::from_u8(33), V2MessageType::CreateSessionResponse);
    assert_eq!(V2MessageType::from_u8(250), V2MessageType::Unknown(250));
}
