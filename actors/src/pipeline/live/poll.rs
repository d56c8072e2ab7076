//! Waits until one of several capture descriptors is readable, with `poll(2)`.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::time::Duration;

/// Reusable `pollfd` array, so waiting allocates nothing once it has grown.
#[derive(Default)]
pub struct Poller {
    fds: Vec<libc::pollfd>,
}

impl Poller {
    /// Waits up to `timeout` until one of `fds` is readable or has an error pending.
    /// Returns true when one is, false on timeout or when a signal interrupted the wait.
    /// With no descriptor, it sleeps for `timeout`.
    pub fn wait(&mut self, fds: impl Iterator<Item = RawFd>, timeout: Duration) -> std::io::Result<bool> {
        self.fds.clear();
        self.fds.extend(fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }));
        let timeout_ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `self.fds` is a live, initialised array of `self.fds.len()` pollfd structs
        // that poll(2) may write `revents` into; it is not touched until the call returns.
        let ready = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout_ms) };
        if ready >= 0 {
            return Ok(ready > 0);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        Err(error)
    }
}
