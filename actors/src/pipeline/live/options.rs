//! Settings of a live capture and their valid ranges.

use std::time::Duration;

/// Default snapshot length: every byte of a frame up to 65535 bytes, the maximum IPv4
/// datagram, so reassembled outer fragments and pcap files stay complete.
pub const DEFAULT_SNAPLEN: u32 = 65_535;
/// Smallest snapshot length: Ethernet, two VLAN tags, an IPv6 header, UDP and a GTPv2-C
/// header with its first IEs.
pub const MIN_SNAPLEN: u32 = 128;
/// Largest snapshot length libpcap accepts on Linux.
pub const MAX_SNAPLEN: u32 = 262_144;
/// Default kernel buffer (the packet ring on Linux), MiB.
pub const DEFAULT_BUFFER_MIB: u32 = 64;
/// Largest kernel buffer, MiB: libpcap takes the size in bytes as a C `int`.
pub const MAX_BUFFER_MIB: u32 = 2_047;
/// Default read timeout: frames wait at most this long in the kernel buffer, and open
/// batches are sent after this much silence.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Largest read timeout.
pub const MAX_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default interval between two logs of the interface statistics.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);
/// Default first delay before reopening a failed interface.
pub const DEFAULT_RESTART_MIN: Duration = Duration::from_secs(1);
/// Default maximum delay between two attempts to reopen a failed interface.
pub const DEFAULT_RESTART_MAX: Duration = Duration::from_secs(60);
/// Maximum interface name length on Linux: `IFNAMSIZ` (16) minus the terminating NUL.
pub const MAX_INTERFACE_NAME: usize = 15;

/// Settings of a live capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Interfaces to capture on, e.g. `eth0` or `any`.
    pub interfaces: Vec<String>,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// Kernel buffer per interface, MiB.
    pub buffer_mib: u32,
    /// Deliver every frame as soon as it arrives instead of in blocks.
    pub immediate: bool,
    /// Maximum time a frame waits in the kernel buffer; also the silence after which open
    /// batches are sent.
    pub read_timeout: Duration,
    /// Put the interfaces in promiscuous mode.
    pub promiscuous: bool,
    /// BPF filter. `None` uses the default for the interface's link type
    /// ([`super::default_filter_for`]).
    pub filter: Option<String>,
    /// Interval between two logs of the interface statistics.
    pub stats_interval: Duration,
    /// First delay before reopening a failed interface.
    pub restart_min: Duration,
    /// Maximum delay between two attempts to reopen a failed interface.
    pub restart_max: Duration,
    /// Stop the capture after this long; `None` runs until a stop request.
    pub duration: Option<Duration>,
    /// Start even when an interface is missing or down, and open it once it appears, as a
    /// node does. Without it such an interface fails the start.
    pub wait_for_interfaces: bool,
}

impl Default for LiveOptions {
    fn default() -> LiveOptions {
        LiveOptions {
            interfaces: Vec::new(),
            snaplen: DEFAULT_SNAPLEN,
            buffer_mib: DEFAULT_BUFFER_MIB,
            immediate: false,
            read_timeout: DEFAULT_READ_TIMEOUT,
            promiscuous: true,
            filter: None,
            stats_interval: DEFAULT_STATS_INTERVAL,
            restart_min: DEFAULT_RESTART_MIN,
            restart_max: DEFAULT_RESTART_MAX,
            duration: None,
            wait_for_interfaces: false,
        }
    }
}

impl LiveOptions {
    /// Checks every setting and returns one message per invalid value, each naming the
    /// setting (as `name`, the caller's spelling) and the valid range.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.interfaces.is_empty() {
            problems.push(("interfaces", "missing: give at least one interface, e.g. eth0 or any".to_owned()));
        }
        for (index, name) in self.interfaces.iter().enumerate() {
            if let Err(message) = check_interface_name(name) {
                problems.push(("interfaces", message));
            } else if self.interfaces[..index].contains(name) {
                problems.push(("interfaces", format!("interface {name:?} is given twice: give each interface once")));
            }
        }
        if self.interfaces.len() > 1 && self.interfaces.iter().any(|name| name == "any") {
            let names = self.interfaces.join(", ");
            problems.push(("interfaces", format!("interface \"any\" is given with others ({names}), so their frames would be read twice: give `any` alone or only named interfaces")));
        }
        if !(MIN_SNAPLEN..=MAX_SNAPLEN).contains(&self.snaplen) {
            problems.push(("snaplen", format!("invalid value {}: give {MIN_SNAPLEN} to {MAX_SNAPLEN} bytes", self.snaplen)));
        }
        if !(1..=MAX_BUFFER_MIB).contains(&self.buffer_mib) {
            problems.push(("buffer_mib", format!("invalid value {}: give 1 to {MAX_BUFFER_MIB} MiB", self.buffer_mib)));
        }
        if self.read_timeout < Duration::from_millis(1) || self.read_timeout > MAX_READ_TIMEOUT {
            let message = format!("invalid value {} ms: give 1 to {} ms", self.read_timeout.as_millis(), MAX_READ_TIMEOUT.as_millis());
            problems.push(("read_timeout", message));
        }
        if self.stats_interval < Duration::from_secs(1) {
            problems.push(("stats_interval", format!("invalid value {:?}: give at least 1 s", self.stats_interval)));
        }
        if self.restart_min.is_zero() || self.restart_max < self.restart_min {
            let message = format!("invalid restart delays {:?} to {:?}: give a minimum above 0 and a maximum not below it", self.restart_min, self.restart_max);
            problems.push(("restart", message));
        }
        if let Some(filter) = &self.filter {
            if let Err(message) = super::check_filter(filter) {
                problems.push(("filter", message));
            }
        }
        problems
    }

    /// Kernel buffer size in bytes, as libpcap takes it.
    pub fn buffer_bytes(&self) -> i32 {
        i32::try_from(u64::from(self.buffer_mib) << 20).unwrap_or(i32::MAX)
    }

    /// Read timeout in whole milliseconds, at least 1, as libpcap takes it.
    pub fn read_timeout_ms(&self) -> i32 {
        i32::try_from(self.read_timeout.as_millis()).unwrap_or(i32::MAX).max(1)
    }
}

/// Checks an interface name: 1 to 15 bytes without whitespace or `/`, as Linux allows.
pub fn check_interface_name(name: &str) -> Result<(), String> {
    let valid = (1..=MAX_INTERFACE_NAME).contains(&name.len()) && !name.contains(|c: char| c.is_whitespace() || c == '/');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid interface name {name:?}: give 1 to {MAX_INTERFACE_NAME} characters without spaces or '/', e.g. eth0 (`ip link` lists them)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> LiveOptions {
        LiveOptions { interfaces: vec!["eth0".into(), "eth1".into()], ..LiveOptions::default() }
    }

    fn problem_keys(options: &LiveOptions) -> Vec<&'static str> {
        options.problems().into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn defaults_valid_with_interface() {
        assert_eq!(valid().problems(), vec![]);
    }

    #[test]
    fn missing_interface_rejected() {
        assert_eq!(problem_keys(&LiveOptions::default()), ["interfaces"]);
    }

    #[test]
    fn interface_names_checked() {
        for name in ["", "has space", "a/b", "sixteen_chars_xx"] {
            assert!(check_interface_name(name).is_err(), "{name:?} accepted");
        }
        for name in ["lo", "eth0.100", "any", "fifteen_chars_x"] {
            assert!(check_interface_name(name).is_ok(), "{name:?} rejected");
        }
    }

    #[test]
    fn any_with_named_interface_rejected() {
        let options = LiveOptions { interfaces: vec!["eth0".into(), "any".into()], ..LiveOptions::default() };
        let problems = options.problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("read twice"), "{}", problems[0].1);
        let alone = LiveOptions { interfaces: vec!["any".into()], ..LiveOptions::default() };
        assert_eq!(alone.problems(), vec![]);
    }

    #[test]
    fn duplicate_interface_rejected() {
        let options = LiveOptions { interfaces: vec!["lo".into(), "lo".into()], ..LiveOptions::default() };
        let problems = options.problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("given twice"), "{}", problems[0].1);
    }

    #[test]
    fn out_of_range_values_rejected() {
        let cases: [(LiveOptions, &str); 8] = [
            (LiveOptions { snaplen: 127, ..valid() }, "snaplen"),
            (LiveOptions { snaplen: 262_145, ..valid() }, "snaplen"),
            (LiveOptions { buffer_mib: 0, ..valid() }, "buffer_mib"),
            (LiveOptions { buffer_mib: 2_048, ..valid() }, "buffer_mib"),
            (LiveOptions { read_timeout: Duration::ZERO, ..valid() }, "read_timeout"),
            (LiveOptions { read_timeout: Duration::from_secs(11), ..valid() }, "read_timeout"),
            (LiveOptions { stats_interval: Duration::from_millis(999), ..valid() }, "stats_interval"),
            (LiveOptions { restart_min: Duration::from_secs(5), restart_max: Duration::from_secs(1), ..valid() }, "restart"),
        ];
        for (options, key) in cases {
            assert_eq!(problem_keys(&options), [key], "{options:?}");
        }
    }

    #[test]
    fn invalid_filter_rejected() {
        let options = LiveOptions { filter: Some("udp port".into()), ..valid() };
        let problems = options.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "filter");
        assert!(problems[0].1.contains("udp port"), "{}", problems[0].1);
    }

    #[test]
    fn buffer_bytes_fit_c_int() {
        let options = LiveOptions { buffer_mib: MAX_BUFFER_MIB, ..valid() };
        assert_eq!(options.buffer_bytes(), 2_047 << 20);
    }
}
