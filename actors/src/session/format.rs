//! Text forms of radio and location values for events and reports.

use std::fmt::Write;

use crate::wire::control::{Plmn, Uli};

/// Returns the RAT Type name (TS 29.274 §8.17 for v2, TS 29.060 §7.7.50 for v1).
pub fn rat_name(version: crate::wire::control::GtpVersion, rat: u8) -> String {
    use crate::wire::control::GtpVersion::*;
    let name = match (version, rat) {
        (V1, 1) | (V2, 1) => "UTRAN",
        (V1, 2) | (V2, 2) => "GERAN",
        (V1, 3) | (V2, 3) => "WLAN",
        (V1, 4) | (V2, 4) => "GAN",
        (V1, 5) | (V2, 5) => "HSPA Evolution",
        (V1, 6) | (V2, 6) => "EUTRAN",
        (V2, 7) => "Virtual",
        (V2, 8) => "EUTRAN-NB-IoT",
        (V2, 9) => "LTE-M",
        (V2, 10) => "NR",
        _ => return format!("RAT {rat}"),
    };
    name.to_string()
}

/// Formats a PLMN as `MCC-MNC` with the MNC's own digit count.
pub fn plmn_text(plmn: &Plmn) -> String {
    if plmn.mnc_three_digits {
        format!("{:03}-{:03}", plmn.mcc, plmn.mnc)
    } else {
        format!("{:03}-{:02}", plmn.mcc, plmn.mnc)
    }
}

/// Formats every present part of a ULI, e.g. `TAI 001-01-0x002a ECGI 001-01-0x0001234`.
pub fn uli_text(uli: &Uli) -> String {
    let mut out = String::new();
    let mut part = |text: String| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&text);
    };
    if let Some((plmn, lac, ci)) = uli.cgi {
        part(format!("CGI {}-0x{lac:04x}-0x{ci:04x}", plmn_text(&plmn)));
    }
    if let Some((plmn, lac, sac)) = uli.sai {
        part(format!("SAI {}-0x{lac:04x}-0x{sac:04x}", plmn_text(&plmn)));
    }
    if let Some((plmn, lac, rac)) = uli.rai {
        part(format!("RAI {}-0x{lac:04x}-0x{rac:02x}", plmn_text(&plmn)));
    }
    if let Some((plmn, tac)) = uli.tai {
        part(format!("TAI {}-0x{tac:04x}", plmn_text(&plmn)));
    }
    if let Some((plmn, eci)) = uli.ecgi {
        part(format!("ECGI {}-0x{eci:07x}", plmn_text(&plmn)));
    }
    if let Some((plmn, lac)) = uli.lai {
        part(format!("LAI {}-0x{lac:04x}", plmn_text(&plmn)));
    }
    out
}

/// Formats a GTPv1 Routing Area Identity (IE 3) as a location.
pub fn rai_text(plmn: &Plmn, lac: u16, rac: u8) -> String {
    let mut out = String::new();
    let _ = write!(out, "RAI {}-0x{lac:04x}-0x{rac:02x}", plmn_text(plmn));
    out
}
