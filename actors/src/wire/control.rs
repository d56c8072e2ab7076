//! Decoded GTP-C messages: the representation shared by the GTPv1-C (TS 29.060 §7) and
//! GTPv2-C (TS 29.274 §7) parsers and read by the session table.
//!
//! Every field borrows from the packet or is a small `Copy` value, so decoding a control
//! message allocates nothing. Fixed capacities are chosen above what the specs allow in
//! one message; an IE beyond a capacity sets [`ControlAnomalies::CAPACITY_EXCEEDED`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arrayvec::ArrayVec;

/// Maximum Bearer Contexts kept per message (EBI is 4 bits and 5..15 are usable, TS 24.301 §9.3.2).
pub const MAX_BEARERS: usize = 11;
/// Maximum F-TEIDs kept per message level or per Bearer Context.
pub const MAX_FTEIDS: usize = 8;

/// GTP version of a control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GtpVersion {
    /// GTPv1-C, TS 29.060.
    V1,
    /// GTPv2-C, TS 29.274.
    V2,
}

/// A string of decimal digits decoded from TBCD (IMSI, MSISDN, IMEI, IMEISV), stored as ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digits {
    len: u8,
    ascii: [u8; Digits::CAPACITY],
}

impl Digits {
    /// Maximum number of digits kept; longer inputs are truncated by the decoder.
    pub const CAPACITY: usize = 20;

    /// Builds digits from ASCII bytes; returns `None` when a byte is not `0`..`9` or the input is too long.
    pub fn from_ascii(ascii: &[u8]) -> Option<Digits> {
        if ascii.len() > Self::CAPACITY || !ascii.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = Digits { len: ascii.len() as u8, ascii: [0; Self::CAPACITY] };
        digits.ascii[..ascii.len()].copy_from_slice(ascii);
        Some(digits)
    }

    /// Appends one digit value (0..=9); returns false when the capacity is reached.
    pub fn push(&mut self, digit: u8) -> bool {
        if usize::from(self.len) == Self::CAPACITY || digit > 9 {
            return false;
        }
        self.ascii[usize::from(self.len)] = b'0' + digit;
        self.len += 1;
        true
    }

    /// Returns the digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.ascii[..usize::from(self.len)]).unwrap_or("")
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when no digit is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Digits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.as_str())
    }
}

impl std::fmt::Display for Digits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PLMN identity (MCC and MNC), TS 24.008 §10.5.1.13 encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Plmn {
    /// Mobile Country Code, 3 digits.
    pub mcc: u16,
    /// Mobile Network Code, 2 or 3 digits.
    pub mnc: u16,
    /// True when the MNC has 3 digits (MNC3 nibble is not 0xF).
    pub mnc_three_digits: bool,
}

/// User Location Information: GTPv2 ULI (TS 29.274 §8.21) or GTPv1 ULI (TS 29.060 §7.7.51).
/// Only the parts whose presence flag (v2) or geographic location type (v1) is set are `Some`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uli {
    /// Cell Global Identity: PLMN, LAC, CI.
    pub cgi: Option<(Plmn, u16, u16)>,
    /// Service Area Identity: PLMN, LAC, SAC.
    pub sai: Option<(Plmn, u16, u16)>,
    /// Routing Area Identity: PLMN, LAC, RAC.
    pub rai: Option<(Plmn, u16, u16)>,
    /// Tracking Area Identity: PLMN, TAC.
    pub tai: Option<(Plmn, u16)>,
    /// E-UTRAN Cell Global Identity: PLMN, 28-bit ECI.
    pub ecgi: Option<(Plmn, u32)>,
    /// Location Area Identity: PLMN, LAC.
    pub lai: Option<(Plmn, u16)>,
}

/// A Fully Qualified TEID (GTPv2 F-TEID IE 87, TS 29.274 §8.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fteid {
    /// IE instance: distinguishes e.g. the sender F-TEID (0) from the PGW S5/S8 F-TEID (1).
    pub instance: u8,
    /// Interface type (6 bits), see [`FteidInterface`].
    pub interface: FteidInterface,
    /// TEID or GRE key.
    pub teid: u32,
    /// IPv4 address when the V4 flag is set.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address when the V6 flag is set.
    pub ipv6: Option<Ipv6Addr>,
}

/// F-TEID interface types, TS 29.274 Table 8.22-1. Unlisted values are kept in `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FteidInterface {
    /// 0: S1-U eNodeB GTP-U.
    S1uEnodeb,
    /// 1: S1-U SGW GTP-U.
    S1uSgw,
    /// 2: S12 RNC GTP-U.
    S12Rnc,
    /// 3: S12 SGW GTP-U.
    S12Sgw,
    /// 4: S5/S8 SGW GTP-U.
    S5S8SgwU,
    /// 5: S5/S8 PGW GTP-U.
    S5S8PgwU,
    /// 6: S5/S8 SGW GTP-C.
    S5S8SgwC,
    /// 7: S5/S8 PGW GTP-C.
    S5S8PgwC,
    /// 10: S11 MME GTP-C.
    S11Mme,
    /// 11: S11/S4 SGW GTP-C.
    S11S4Sgw,
    /// 12: S10/N26 MME GTP-C.
    S10Mme,
    /// 13: S3 MME GTP-C.
    S3Mme,
    /// 14: S3 SGSN GTP-C.
    S3Sgsn,
    /// 15: S4 SGSN GTP-U.
    S4SgsnU,
    /// 16: S4 SGW GTP-U.
    S4SgwU,
    /// 17: S4 SGSN GTP-C.
    S4SgsnC,
    /// 18: S16 SGSN GTP-C.
    S16Sgsn,
    /// 19: eNodeB GTP-U for DL data forwarding.
    EnodebDlForwarding,
    /// 20: eNodeB GTP-U for UL data forwarding.
    EnodebUlForwarding,
    /// 21: RNC GTP-U for data forwarding.
    RncForwarding,
    /// 22: SGSN GTP-U for data forwarding.
    SgsnForwarding,
    /// 23: SGW/UPF GTP-U for DL data forwarding.
    SgwDlForwarding,
    /// 24: Sm MBMS GW GTP-C.
    SmMbmsGw,
    /// 25: Sn MBMS GW GTP-C.
    SnMbmsGw,
    /// 26: Sm MME GTP-C.
    SmMme,
    /// 27: Sn SGSN GTP-C.
    SnSgsn,
    /// 28: SGW GTP-U for UL data forwarding.
    SgwUlForwarding,
    /// 29: Sn SGSN GTP-U.
    SnSgsnU,
    /// 30: S2b ePDG GTP-C.
    S2bEpdgC,
    /// 31: S2b-U ePDG GTP-U.
    S2bEpdgU,
    /// 32: S2b PGW GTP-C.
    S2bPgwC,
    /// 33: S2b-U PGW GTP-U.
    S2bPgwU,
    /// Any other value of the 6-bit field.
    Unknown(u8),
}

impl FteidInterface {
    /// Maps the 6-bit interface type field to the enum.
    pub fn from_u8(value: u8) -> FteidInterface {
        use FteidInterface::*;
        match value {
            0 => S1uEnodeb,
            1 => S1uSgw,
            2 => S12Rnc,
            3 => S12Sgw,
            4 => S5S8SgwU,
            5 => S5S8PgwU,
            6 => S5S8SgwC,
            7 => S5S8PgwC,
            10 => S11Mme,
            11 => S11S4Sgw,
            12 => S10Mme,
            13 => S3Mme,
            14 => S3Sgsn,
            15 => S4SgsnU,
            16 => S4SgwU,
            17 => S4SgsnC,
            18 => S16Sgsn,
            19 => EnodebDlForwarding,
            20 => EnodebUlForwarding,
            21 => RncForwarding,
            22 => SgsnForwarding,
            23 => SgwDlForwarding,
            24 => SmMbmsGw,
            25 => SnMbmsGw,
            26 => SmMme,
            27 => SnSgsn,
            28 => SgwUlForwarding,
            29 => SnSgsnU,
            30 => S2bEpdgC,
            31 => S2bEpdgU,
            32 => S2bPgwC,
            33 => S2bPgwU,
            other => Unknown(other),
        }
    }

    /// True for interfaces that carry GTP-U (user plane), including data forwarding tunnels.
    pub fn is_user_plane(self) -> bool {
        use FteidInterface::*;
        matches!(
            self,
            S1uEnodeb
                | S1uSgw
                | S12Rnc
                | S12Sgw
                | S5S8SgwU
                | S5S8PgwU
                | S4SgsnU
                | S4SgwU
                | EnodebDlForwarding
                | EnodebUlForwarding
                | RncForwarding
                | SgsnForwarding
                | SgwDlForwarding
                | SgwUlForwarding
                | SnSgsnU
                | S2bEpdgU
                | S2bPgwU
        )
    }

    /// True for the data forwarding interfaces used during handover (TS 23.401 §5.5.1.2).
    pub fn is_forwarding(self) -> bool {
        use FteidInterface::*;
        matches!(
            self,
            EnodebDlForwarding | EnodebUlForwarding | RncForwarding | SgsnForwarding | SgwDlForwarding | SgwUlForwarding
        )
    }

    /// True for the radio-side endpoints (eNodeB, RNC): the tunnels that Release Access Bearers removes.
    pub fn is_access_side(self) -> bool {
        matches!(self, FteidInterface::S1uEnodeb | FteidInterface::S12Rnc)
    }
}

/// The UE address from a GTPv2 PAA (TS 29.274 §8.14) or a GTPv1 End User Address (TS 29.060 §7.7.27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UeAddress {
    /// IPv4 address, when the PDN type carries one and it is not 0.0.0.0.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 prefix (or full address for GTPv1) and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// True when the PDN/PDP type field was present (even with no address: dynamic allocation request).
    pub present: bool,
}

/// One grouped Bearer Context IE (93) or, for GTPv1, the per-NSAPI data of the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerContext {
    /// IE instance of the Bearer Context (0: to be created/modified, 1: to be removed, by message).
    pub instance: u8,
    /// EPS Bearer ID (v2) or NSAPI (v1).
    pub ebi: Option<u8>,
    /// Cause inside the bearer context (v2).
    pub cause: Option<u8>,
    /// F-TEIDs inside the bearer context.
    pub fteids: ArrayVec<Fteid, MAX_FTEIDS>,
    /// Charging ID (v2 IE 94, v1 IE 127).
    pub charging_id: Option<u32>,
}

/// Recoverable oddities found while decoding a control message; the message is still used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlAnomalies(pub u16);

impl ControlAnomalies {
    /// The header length field disagrees with the bytes available; the shorter was used.
    pub const LENGTH_MISMATCH: u16 = 1 << 0;
    /// More IEs of one kind than the fixed capacity; the extra ones were dropped.
    pub const CAPACITY_EXCEEDED: u16 = 1 << 1;
    /// An IE's content was shorter than its type requires; the IE was skipped.
    pub const SHORT_IE: u16 = 1 << 2;
    /// A GTPv1 TV IE of unknown type stopped the IE walk (its length cannot be known).
    pub const UNKNOWN_TV_IE: u16 = 1 << 3;
    /// An IE ran past the end of the message; the walk stopped there.
    pub const TRUNCATED_IE: u16 = 1 << 4;
    /// Grouped IEs nested deeper than the decoder follows.
    pub const NESTING_TOO_DEEP: u16 = 1 << 5;
    /// An IE's content broke its coding rules, e.g. a non-decimal digit, an unknown PDN or
    /// PDP type, or an address of the wrong size. The IE was skipped.
    pub const INVALID_VALUE: u16 = 1 << 6;

    /// Sets the given flag bits.
    pub fn insert(&mut self, flags: u16) {
        self.0 |= flags;
    }

    /// True when every given flag bit is set.
    pub fn contains(self, flags: u16) -> bool {
        self.0 & flags == flags
    }
}

/// A decoded GTP-C message (one message: a piggybacked GTPv2 message is decoded separately).
#[derive(Debug, Clone, Default)]
pub struct ControlMessage<'a> {
    /// GTPv1-C or GTPv2-C; `None` only in `Default`.
    pub version: Option<GtpVersion>,
    /// Message type (TS 29.060 Table 1, TS 29.274 Table 6.1-1).
    pub message_type: u8,
    /// Header TEID: always present in GTPv1; present in GTPv2 when the T flag is set.
    pub teid: Option<u32>,
    /// Sequence number: 16 bits (v1, 0 when the S flag is clear) or 24 bits (v2).
    pub sequence: u32,
    /// Cause value (v1 IE 1, v2 IE 2 first octet).
    pub cause: Option<u8>,
    /// IMSI (v1 IE 2, v2 IE 1).
    pub imsi: Option<Digits>,
    /// MSISDN without the nature-of-address octet (v1 IE 134, v2 IE 76).
    pub msisdn: Option<Digits>,
    /// IMEI or IMEISV (v1 IE 154, v2 MEI IE 75), every digit kept.
    pub imei: Option<Digits>,
    /// APN in its wire form: length-prefixed labels (TS 23.003 §9.1).
    pub apn: Option<&'a [u8]>,
    /// RAT type (v1 IE 151, v2 IE 82).
    pub rat: Option<u8>,
    /// User Location Information (v1 IE 152, v2 IE 86).
    pub uli: Option<Uli>,
    /// Routing Area Identity (v1 IE 3).
    pub rai: Option<(Plmn, u16, u8)>,
    /// Serving Network (v2 IE 83).
    pub serving_network: Option<Plmn>,
    /// UE address: v2 PAA (IE 79) or v1 End User Address (IE 128).
    pub ue_address: Option<UeAddress>,
    /// Message-level F-TEIDs (v2 IE 87 outside Bearer Contexts).
    pub fteids: ArrayVec<Fteid, MAX_FTEIDS>,
    /// Bearer Contexts in wire order; repeated IEs of the same type and instance are all kept.
    pub bearers: ArrayVec<BearerContext, MAX_BEARERS>,
    /// EPS Bearer ID at message level (v2 IE 73), e.g. the Linked EBI of Delete Session.
    pub ebi: Option<u8>,
    /// Every message-level EPS Bearer ID in wire order, e.g. the EPS Bearer IDs (instance 1)
    /// of a Delete Bearer Request.
    pub ebis: ArrayVec<u8, MAX_BEARERS>,
    /// GTPv1 TEID Data I (IE 16).
    pub teid_data_i: Option<u32>,
    /// GTPv1 TEID Control Plane (IE 17).
    pub teid_control: Option<u32>,
    /// GTPv1 NSAPI (IE 20), low 4 bits.
    pub nsapi: Option<u8>,
    /// GTPv1 Teardown Ind (IE 19): true when its low bit is 1.
    pub teardown: bool,
    /// GTPv1 GSN Addresses (IE 133) in wire order: control plane first, then user plane.
    pub gsn_addresses: ArrayVec<IpAddr, 4>,
    /// Charging ID at message level (v1 IE 127).
    pub charging_id: Option<u32>,
    /// Recovery restart counter (v1 IE 14, v2 IE 3).
    pub recovery: Option<u8>,
    /// Oddities that did not stop decoding.
    pub anomalies: ControlAnomalies,
}

impl ControlMessage<'_> {
    /// Writes the APN in dotted form ("internet.mnc001.mcc001.gprs") into `out`.
    pub fn apn_dotted(&self, out: &mut String) {
        out.clear();
        if let Some(wire) = self.apn {
            apn_to_dotted(wire, out);
        }
    }
}

/// Appends an APN in wire form (length-prefixed labels, TS 23.003 §9.1) to `out` in dotted
/// form; non-printable bytes become `?`.
pub fn apn_to_dotted(mut wire: &[u8], out: &mut String) {
    while let Some((&label_len, rest)) = wire.split_first() {
        let label_len = usize::from(label_len).min(rest.len());
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(rest[..label_len].iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }));
        wire = &rest[label_len..];
    }
}
