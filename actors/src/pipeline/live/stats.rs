//! Per-interface counters of a live capture.

use serde::Serialize;

/// Counters of one interface. `received`, `dropped` and `if_dropped` come from libpcap's
/// `pcap_stats` and add up over every reopening of the interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceStats {
    /// Interface name.
    pub interface: String,
    /// Frames that passed the filter in the kernel (`ps_recv`). On the loopback interface
    /// Linux passes every frame twice (outgoing and incoming) and libpcap discards the
    /// outgoing copy after this count, so there it is twice `frames`.
    pub received: u64,
    /// Frames the kernel dropped because the buffer was full (`ps_drop`).
    pub dropped: u64,
    /// Frames the interface or its driver dropped (`ps_ifdrop`).
    pub if_dropped: u64,
    /// Frames read from the interface by the capture.
    pub frames: u64,
    /// Times the interface was reopened after an error.
    pub restarts: u64,
    /// Open and read errors.
    pub errors: u64,
    /// True when the interface was open at the end of the capture.
    pub up: bool,
}

/// libpcap's counters of one open capture. On Linux they are 32-bit and wrap, so each is
/// added to its total as the difference to the last reading, modulo 2^32.
#[derive(Debug, Clone, Copy, Default)]
pub struct PcapCounters {
    received: u32,
    dropped: u32,
    if_dropped: u32,
}

impl PcapCounters {
    /// Adds the growth since the last reading to `stats` and keeps `reading`.
    pub fn update(&mut self, stats: &mut InterfaceStats, reading: pcap::Stat) {
        stats.received += u64::from(reading.received.wrapping_sub(self.received));
        stats.dropped += u64::from(reading.dropped.wrapping_sub(self.dropped));
        stats.if_dropped += u64::from(reading.if_dropped.wrapping_sub(self.if_dropped));
        *self = PcapCounters { received: reading.received, dropped: reading.dropped, if_dropped: reading.if_dropped };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(received: u32, dropped: u32, if_dropped: u32) -> pcap::Stat {
        pcap::Stat { received, dropped, if_dropped }
    }

    #[test]
    fn counters_add_growth() {
        let mut counters = PcapCounters::default();
        let mut stats = InterfaceStats::default();
        counters.update(&mut stats, stat(10, 1, 0));
        counters.update(&mut stats, stat(25, 3, 2));
        assert_eq!((stats.received, stats.dropped, stats.if_dropped), (25, 3, 2));
    }

    #[test]
    fn counters_survive_wrap() {
        let mut counters = PcapCounters::default();
        let mut stats = InterfaceStats::default();
        counters.update(&mut stats, stat(u32::MAX - 4, 0, 0));
        counters.update(&mut stats, stat(5, 0, 0));
        assert_eq!(stats.received, u64::from(u32::MAX) + 6);
    }

    #[test]
    fn reopened_capture_counts_from_zero() {
        let mut stats = InterfaceStats::default();
        PcapCounters::default().update(&mut stats, stat(100, 2, 0));
        // A reopened capture starts new counters at 0.
        PcapCounters::default().update(&mut stats, stat(30, 1, 0));
        assert_eq!((stats.received, stats.dropped), (130, 3));
    }
}
