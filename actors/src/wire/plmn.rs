//! PLMN identity (MCC and MNC), coded as in TS 24.008 §10.5.1.13 and used by GTP's Serving
//! Network, ULI and RAI.
//!
//! Three octets: MCC2|MCC1, MNC3|MCC3, MNC2|MNC1 (high nibble first in each pair), with
//! MNC3 = 0xF when the MNC has two digits.

use super::control::Plmn;

/// Length of a coded PLMN identity.
pub const PLMN_LEN: usize = 3;

/// Decodes the 3-octet PLMN at the start of `bytes`; `None` when fewer than 3 bytes are there
/// or a digit nibble is not decimal.
pub fn decode_plmn(bytes: &[u8]) -> Option<Plmn> {
    let [first, second, third] = *bytes.get(..PLMN_LEN)? else {
        return None;
    };
    let digit = |nibble: u8| (nibble <= 9).then_some(u16::from(nibble));
    let mcc = digit(first & 0x0f)? * 100 + digit(first >> 4)? * 10 + digit(second & 0x0f)?;
    let two_digits = digit(third & 0x0f)? * 10 + digit(third >> 4)?;
    let (mnc, mnc_three_digits) = match second >> 4 {
        0xf => (two_digits, false),
        mnc3 => (two_digits * 10 + digit(mnc3)?, true),
    };
    Some(Plmn { mcc, mnc, mnc_three_digits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_digit_mnc() {
        let bytes = [
            0x22, // MCC2 2, MCC1 2
            0xf2, // MNC3 F (two-digit MNC), MCC3 2
            0x10, // MNC2 1, MNC1 0
        ];
        assert_eq!(decode_plmn(&bytes), Some(Plmn { mcc: 222, mnc: 1, mnc_three_digits: false }));
    }

    #[test]
    fn three_digit_mnc() {
        let bytes = [
            0x13, // MCC2 1, MCC1 3
            0x00, // MNC3 0, MCC3 0
            0x62, // MNC2 6, MNC1 2
        ];
        assert_eq!(decode_plmn(&bytes), Some(Plmn { mcc: 310, mnc: 260, mnc_three_digits: true }));
    }

    #[test]
    fn bad_plmn_rejected() {
        assert_eq!(decode_plmn(&[0x22, 0xf2]), None);
        assert_eq!(decode_plmn(&[0x2a, 0xf2, 0x10]), None);
        assert_eq!(decode_plmn(&[0x22, 0xf2, 0x1b]), None);
    }
}
