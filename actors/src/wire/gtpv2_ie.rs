//! GTPv2-C information elements (TS 29.274 §8): the IE walk, and the structured and grouped
//! IEs (F-TEID, PAA, ULI, Bearer Context).

use super::bytes::{ipv4_at, ipv6_at, set_once, u16_at, u32_at};
use super::control::{BearerContext, ControlAnomalies, Fteid, FteidInterface, Plmn, UeAddress, Uli};
use super::plmn::{decode_plmn, PLMN_LEN};

/// GTPv2-C IE types (TS 29.274 Table 8.1-1) that the decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V2IeType {
    /// 1: IMSI, TBCD.
    Imsi,
    /// 2: Cause; the first octet is the cause value.
    Cause,
    /// 3: Recovery (restart counter).
    Recovery,
    /// 71: Access Point Name.
    Apn,
    /// 73: EPS Bearer ID.
    Ebi,
    /// 75: Mobile Equipment Identity (IMEI or IMEISV), TBCD.
    Mei,
    /// 76: MSISDN, TBCD.
    Msisdn,
    /// 79: PDN Address Allocation.
    Paa,
    /// 82: RAT Type.
    RatType,
    /// 83: Serving Network (PLMN).
    ServingNetwork,
    /// 86: User Location Information.
    Uli,
    /// 87: Fully Qualified TEID.
    Fteid,
    /// 93: Bearer Context (grouped).
    BearerContext,
    /// 94: Charging ID.
    ChargingId,
    /// Any other value.
    Unknown(u8),
}

impl V2IeType {
    /// Maps the type octet to the enum.
    pub fn from_u8(value: u8) -> V2IeType {
        use V2IeType::*;
        match value {
            1 => Imsi,
            2 => Cause,
            3 => Recovery,
            71 => Apn,
            73 => Ebi,
            75 => Mei,
            76 => Msisdn,
            79 => Paa,
            82 => RatType,
            83 => ServingNetwork,
            86 => Uli,
            87 => Fteid,
            93 => BearerContext,
            94 => ChargingId,
            other => Unknown(other),
        }
    }
}

/// One IE: type, instance and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtpv2Ie<'a> {
    /// IE type.
    pub ie_type: V2IeType,
    /// Instance, the low 4 bits of the fourth octet.
    pub instance: u8,
    /// Content, `length` bytes after the 4-byte IE header.
    pub content: &'a [u8],
}

/// IE header: type (1), length (2), spare and instance (1).
const IE_HEADER_LEN: usize = 4;

/// Iterator over the IEs of a message or grouped IE (TS 29.274 §8.2.1). It stops at the end
/// of the bytes or at an IE that runs past them, and [`Gtpv2Ies::truncated`] reports which.
#[derive(Debug, Clone)]
pub struct Gtpv2Ies<'a> {
    rest: &'a [u8],
    truncated: bool,
}

impl<'a> Gtpv2Ies<'a> {
    /// Starts the walk at the first IE of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Gtpv2Ies<'a> {
        Gtpv2Ies { rest: bytes, truncated: false }
    }

    /// True when the walk stopped at an IE that runs past the end.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<'a> Iterator for Gtpv2Ies<'a> {
    type Item = Gtpv2Ie<'a>;

    fn next(&mut self) -> Option<Gtpv2Ie<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let length = u16_at(self.rest, 1).map(usize::from);
        let end = length.map(|length| IE_HEADER_LEN + length);
        let Some(ie) = end.and_then(|end| self.rest.get(..end)) else {
            self.truncated = true;
            self.rest = &[];
            return None;
        };
        self.rest = &self.rest[ie.len()..];
        Some(Gtpv2Ie { ie_type: V2IeType::from_u8(ie[0]), instance: ie[3] & 0x0f, content: &ie[IE_HEADER_LEN..] })
    }
}

/// F-TEID flag: an IPv4 address follows the TEID.
const FTEID_V4: u8 = 0x80;
/// F-TEID flag: an IPv6 address follows the TEID (and the IPv4 address, when present).
const FTEID_V6: u8 = 0x40;

/// Decodes an F-TEID (TS 29.274 §8.22): flags and 6-bit interface type, TEID or GRE key,
/// then IPv4 and/or IPv6 (9, 21 or 25 bytes).
pub fn decode_fteid(instance: u8, content: &[u8], anomalies: &mut ControlAnomalies) -> Option<Fteid> {
    let fteid = content.first().and_then(|&flags| read_fteid(instance, flags, content));
    if fteid.is_none() {
        anomalies.insert(ControlAnomalies::SHORT_IE);
    }
    fteid
}

fn read_fteid(instance: u8, flags: u8, content: &[u8]) -> Option<Fteid> {
    let teid = u32_at(content, 1)?;
    let mut offset = 5;
    let mut ipv4 = None;
    if flags & FTEID_V4 != 0 {
        ipv4 = Some(ipv4_at(content, offset)?);
        offset += 4;
    }
    let ipv6 = if flags & FTEID_V6 != 0 { Some(ipv6_at(content, offset)?) } else { None };
    Some(Fteid { instance, interface: FteidInterface::from_u8(flags & 0x3f), teid, ipv4, ipv6 })
}

/// Decodes a PAA (TS 29.274 §8.14): PDN type (low 3 bits), then the address(es). IPv6
/// carries a prefix length before the 16-byte prefix; IPv4v6 has the IPv4 address last.
pub fn decode_paa(content: &[u8], anomalies: &mut ControlAnomalies) -> Option<UeAddress> {
    let Some(pdn_type) = content.first().map(|octet| octet & 0x07) else {
        anomalies.insert(ControlAnomalies::SHORT_IE);
        return None;
    };
    let ipv4 = |offset| ipv4_at(content, offset).map(|ipv4| Some(ipv4).filter(|ipv4| !ipv4.is_unspecified()));
    let ipv6 = || Some(Some((ipv6_at(content, 2)?, *content.get(1)?)));
    let addresses = match pdn_type {
        1 => ipv4(1).map(|ipv4| (ipv4, None)),
        2 => ipv6().map(|ipv6| (None, ipv6)),
        3 => ipv6().zip(ipv4(18)).map(|(ipv6, ipv4)| (ipv4, ipv6)),
        // Non-IP (4) and Ethernet (5) PDNs carry no address.
        4 | 5 => Some((None, None)),
        _ => {
            anomalies.insert(ControlAnomalies::INVALID_VALUE);
            return None;
        }
    };
    let Some((ipv4, ipv6)) = addresses else {
        anomalies.insert(ControlAnomalies::SHORT_IE);
        return None;
    };
    Some(UeAddress { ipv4, ipv6, present: true })
}

/// Decodes a ULI (TS 29.274 §8.21). The first octet flags which fields follow, in this
/// order: CGI (bit 0, 7 bytes), SAI (bit 1, 7), RAI (bit 2, 7), TAI (bit 3, 5), ECGI (bit 4,
/// 7), LAI (bit 5, 5). Later fields (macro eNodeB IDs) are not decoded.
pub fn decode_uli(content: &[u8], anomalies: &mut ControlAnomalies) -> Option<Uli> {
    let Some((&presence, mut rest)) = content.split_first() else {
        anomalies.insert(ControlAnomalies::SHORT_IE);
        return None;
    };
    let mut uli = Uli::default();
    const SIZES: [usize; 6] = [7, 7, 7, 5, 7, 5];
    for (bit, size) in SIZES.into_iter().enumerate() {
        if presence & (1 << bit) == 0 {
            continue;
        }
        let Some(field) = rest.get(..size) else {
            anomalies.insert(ControlAnomalies::SHORT_IE);
            break;
        };
        match decode_plmn(field) {
            Some(plmn) => store_uli_field(&mut uli, bit, plmn, &field[PLMN_LEN..]),
            None => anomalies.insert(ControlAnomalies::INVALID_VALUE),
        }
        rest = &rest[size..];
    }
    Some(uli)
}

/// Stores the ULI field flagged by presence `bit`; `codes` is what follows its PLMN.
fn store_uli_field(uli: &mut Uli, bit: usize, plmn: Plmn, codes: &[u8]) {
    let first = u16_at(codes, 0).unwrap_or(0);
    let second = u16_at(codes, 2).unwrap_or(0);
    match bit {
        0 => uli.cgi = Some((plmn, first, second)),
        1 => uli.sai = Some((plmn, first, second)),
        // RAI: the RAC is the first of its two octets, and the second is coded 0xFF.
        2 => uli.rai = Some((plmn, first, second >> 8)),
        3 => uli.tai = Some((plmn, first)),
        // ECGI: 4 spare bits, then the 28-bit E-UTRAN Cell Identifier.
        4 => uli.ecgi = Some((plmn, u32_at(codes, 0).unwrap_or(0) & 0x0fff_ffff)),
        _ => uli.lai = Some((plmn, first)),
    }
}

/// Decodes a Bearer Context (TS 29.274 §8.28): EBI, Cause, F-TEIDs and Charging ID inside.
/// A Bearer Context nested in one is not followed.
pub fn decode_bearer_context(instance: u8, content: &[u8], anomalies: &mut ControlAnomalies) -> BearerContext {
    let mut bearer = BearerContext { instance, ..BearerContext::default() };
    let mut ies = Gtpv2Ies::new(content);
    for ie in ies.by_ref() {
        let first = ie.content.first().copied();
        match ie.ie_type {
            V2IeType::Ebi => set_once(&mut bearer.ebi, first.map(|octet| octet & 0x0f)),
            V2IeType::Cause => set_once(&mut bearer.cause, first),
            V2IeType::ChargingId => set_once(&mut bearer.charging_id, u32_at(ie.content, 0)),
            V2IeType::Fteid => push_fteid(&mut bearer, ie.instance, ie.content, anomalies),
            V2IeType::BearerContext => anomalies.insert(ControlAnomalies::NESTING_TOO_DEEP),
            _ => {}
        }
    }
    if ies.truncated() {
        anomalies.insert(ControlAnomalies::TRUNCATED_IE);
    }
    bearer
}

fn push_fteid(bearer: &mut BearerContext, instance: u8, content: &[u8], anomalies: &mut ControlAnomalies) {
    if let Some(fteid) = decode_fteid(instance, content, anomalies) {
        if bearer.fteids.try_push(fteid).is_err() {
            anomalies.insert(ControlAnomalies::CAPACITY_EXCEEDED);
        }
    }
}
