//! Bounds-checked big-endian readers for IE contents; each returns `None` past the end.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Reads the `N` bytes at `offset`.
pub fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// Reads a big-endian `u16` at `offset`.
pub fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    array_at(bytes, offset).map(u16::from_be_bytes)
}

/// Reads a big-endian `u32` at `offset`.
pub fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    array_at(bytes, offset).map(u32::from_be_bytes)
}

/// Reads an IPv4 address at `offset`.
pub fn ipv4_at(bytes: &[u8], offset: usize) -> Option<Ipv4Addr> {
    array_at::<4>(bytes, offset).map(Ipv4Addr::from)
}

/// Reads an IPv6 address at `offset`.
pub fn ipv6_at(bytes: &[u8], offset: usize) -> Option<Ipv6Addr> {
    array_at::<16>(bytes, offset).map(Ipv6Addr::from)
}

/// Stores `value` unless `slot` already contains one, so the first occurrence of an IE wins.
pub fn set_once<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_stop_at_end() {
        let bytes = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(u16_at(&bytes, 3), Some(0x789a));
        assert_eq!(u16_at(&bytes, 4), None);
        assert_eq!(u32_at(&bytes, 1), Some(0x3456_789a));
        assert_eq!(u32_at(&bytes, usize::MAX), None);
        assert_eq!(ipv4_at(&bytes, 0), Some(Ipv4Addr::new(0x12, 0x34, 0x56, 0x78)));
        assert_eq!(ipv6_at(&bytes, 0), None);
    }

    #[test]
    fn first_value_wins() {
        let mut slot = None;
        set_once(&mut slot, Some(1));
        set_once(&mut slot, Some(2));
        assert_eq!(slot, Some(1));
    }
}
