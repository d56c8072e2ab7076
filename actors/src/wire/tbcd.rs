//! TBCD digit strings (TS 29.002 `TBCD-STRING`): IMSI, MSISDN, IMEI and IMEISV.
//!
//! Each octet carries two digits, the first in the low nibble. A 0xF nibble is filler and ends
//! the string (it pads an odd digit count); every digit before it is kept.

use super::control::{ControlAnomalies, Digits};

/// Decodes TBCD `bytes`. Returns `None`, with [`ControlAnomalies::INVALID_VALUE`] set, when a
/// nibble before the filler is 0xA..=0xE. Digits beyond [`Digits::CAPACITY`] are dropped with
/// [`ControlAnomalies::CAPACITY_EXCEEDED`] set.
pub fn decode_tbcd(bytes: &[u8], anomalies: &mut ControlAnomalies) -> Option<Digits> {
    let mut digits = Digits::default();
    let nibbles = bytes.iter().flat_map(|byte| [byte & 0x0f, byte >> 4]);
    for nibble in nibbles {
        match nibble {
            0xf => break,
            0..=9 => {
                if !digits.push(nibble) {
                    anomalies.insert(ControlAnomalies::CAPACITY_EXCEEDED);
                    break;
                }
            }
            _ => {
                anomalies.insert(ControlAnomalies::INVALID_VALUE);
                return None;
            }
        }
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (Option<String>, ControlAnomalies) {
        let mut anomalies = ControlAnomalies::default();
        let digits = decode_tbcd(bytes, &mut anomalies).map(|digits| digits.as_str().to_owned());
        (digits, anomalies)
    }

    #[test]
    fn imsi_with_filler() {
        // IMSI 001020000000064 (15 digits): low nibble first, the last octet padded with 0xF.
        let bytes = [0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x60, 0xf4];
        assert_eq!(decode(&bytes), (Some("001020000000064".to_owned()), ControlAnomalies::default()));
    }

    #[test]
    fn imeisv_keeps_sixteen_digits() {
        // IMEISV 3534900698733201: 8 full octets, no filler.
        let bytes = [0x53, 0x43, 0x09, 0x60, 0x89, 0x37, 0x23, 0x10];
        assert_eq!(decode(&bytes).0.as_deref(), Some("3534900698733201"));
    }

    #[test]
    fn invalid_nibble_rejected() {
        let (digits, anomalies) = decode(&[0x21, 0x3a]); // 1, 2, then 0xA
        assert_eq!(digits, None);
        assert!(anomalies.contains(ControlAnomalies::INVALID_VALUE));
    }

    #[test]
    fn over_capacity_truncated() {
        let (digits, anomalies) = decode(&[0x11; 11]); // 22 digits
        assert_eq!(digits.map(|digits| digits.len()), Some(Digits::CAPACITY));
        assert!(anomalies.contains(ControlAnomalies::CAPACITY_EXCEEDED));
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode(&[]).0.as_deref(), Some(""));
        assert_eq!(decode(&[0xff]).0.as_deref(), Some(""));
    }
}
