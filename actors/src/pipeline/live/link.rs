//! The administrative state of an interface. libpcap 1.10 reports no error when a
//! capturing interface is set down: the packet socket just stops receiving. The capture
//! therefore reads the interface flags itself, about once a second, with `SIOCGIFFLAGS` on
//! the capture's own socket. The kernel reports the interfaces of that socket's network
//! namespace.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::time::Duration;

use super::error::{LiveError, LiveErrorKind};

/// Interval between two checks of every interface's state.
pub const LINK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Returns an error when interface `name` is administratively down, read through the
/// socket `fd`. Returns `None` when it is up, for `any`, and when the ioctl fails (a
/// removed interface, whose read errors libpcap reports).
pub fn down_error(name: &str, fd: RawFd) -> Option<LiveError> {
    if name == "any" {
        return None;
    }
    let flags = interface_flags(name, fd)?;
    if flags & libc::IFF_UP != 0 {
        return None;
    }
    let message = format!("its flags {flags:#x} lack IFF_UP");
    Some(LiveError { interface: name.to_owned(), kind: LiveErrorKind::Down, message })
}

/// Returns the `IFF_*` flags of interface `name`, or `None` when the name does not fit
/// `IFNAMSIZ` or the ioctl fails.
fn interface_flags(name: &str, fd: RawFd) -> Option<i32> {
    // SAFETY: ifreq is a plain C struct for which all zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return None;
    }
    for (slot, &byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated ifr_name and writes ifru_flags of the
    // request, which lives for the call; a bad descriptor only makes the call fail.
    let result = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) };
    if result != 0 {
        return None;
    }
    // SAFETY: after a successful SIOCGIFFLAGS the union contains ifru_flags.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    Some(i32::from(flags) & 0xffff)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn loopback_is_up() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(down_error("lo", socket.as_raw_fd()).is_none());
        assert!(interface_flags("lo", socket.as_raw_fd()).is_some_and(|flags| flags & libc::IFF_UP != 0));
    }

    #[test]
    fn any_and_unknown_names_not_checked() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(down_error("any", socket.as_raw_fd()).is_none());
        assert!(down_error("nosuch9", socket.as_raw_fd()).is_none());
        assert!(down_error("name_longer_than_ifnamsiz", socket.as_raw_fd()).is_none());
    }
}
