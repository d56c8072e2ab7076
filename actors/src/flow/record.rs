//! Flow timeouts, expired-flow records and flow-table counters.

use crate::flow::classify::AppProtocol;
use crate::wire::control::Digits;
use crate::wire::FlowKey;

/// Flow timeouts in microseconds of packet time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// A flow ends when no packet arrived for longer than this. A packet exactly
    /// `idle_us` after the previous one still joins the flow.
    pub idle_us: u64,
    /// A flow ends when its first packet is older than this, even if traffic goes on;
    /// the next packet starts a new flow. `None` disables the active timeout.
    pub active_us: Option<u64>,
    /// Time a flow stays open after a TCP RST, or after FIN was seen in both directions,
    /// so that the final ACK still counts in it.
    pub close_linger_us: u64,
}

impl Default for FlowTimeouts {
    /// 30 s idle, 1 s linger after close, and 300 s active, the bucket granularity, so a
    /// long flow is reported at least every 300 s instead of only when it ends.
    fn default() -> Self {
        FlowTimeouts {
            idle_us: 30_000_000,
            active_us: Some(300_000_000),
            close_linger_us: 1_000_000,
        }
    }
}

/// Reason a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryReason {
    /// No packet for longer than the idle timeout.
    Idle,
    /// The first packet is older than the active timeout.
    Active,
    /// FIN was seen from both directions and the linger time passed.
    Fin,
    /// A TCP RST was seen and the linger time passed.
    Rst,
    /// The table was flushed (end of input, shutdown).
    Flush,
}

impl ExpiryReason {
    /// Every reason, in declaration order.
    pub const ALL: [ExpiryReason; 5] = [
        ExpiryReason::Idle,
        ExpiryReason::Active,
        ExpiryReason::Fin,
        ExpiryReason::Rst,
        ExpiryReason::Flush,
    ];

    /// Lower-case name, usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::Idle => "idle",
            ExpiryReason::Active => "active",
            ExpiryReason::Fin => "fin",
            ExpiryReason::Rst => "rst",
            ExpiryReason::Flush => "flush",
        }
    }
}

/// A flow that ended, with its totals over both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredFlow {
    /// Subscriber IMSI.
    pub imsi: Digits,
    /// Canonical inner 5-tuple.
    pub key: FlowKey,
    /// Application protocol reported by the classifier when the flow ended.
    pub protocol: AppProtocol,
    /// Timestamp of the first packet, microseconds since the epoch.
    pub first_us: u64,
    /// Timestamp of the last packet, microseconds since the epoch.
    pub last_us: u64,
    /// Packets in both directions.
    pub packets: u64,
    /// Inner IP bytes (IP header included, GTP and outer headers excluded) in both directions.
    pub bytes: u64,
    /// Reason the flow ended.
    pub reason: ExpiryReason,
}

impl ExpiredFlow {
    /// Time between the first and the last packet, in microseconds.
    pub fn duration_us(&self) -> u64 {
        self.last_us.saturating_sub(self.first_us)
    }
}

/// Flow-table counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created since the table was built.
    pub created: u64,
    /// Flows currently in the table.
    pub active: u64,
    /// Flows ended by the idle timeout.
    pub expired_idle: u64,
    /// Flows ended by the active timeout.
    pub expired_active: u64,
    /// Flows ended after FIN from both directions.
    pub expired_fin: u64,
    /// Flows ended after a TCP RST.
    pub expired_rst: u64,
    /// Flows ended by a flush.
    pub expired_flush: u64,
}

impl FlowStats {
    /// Number of flows that ended for `reason`.
    pub fn expired(&self, reason: ExpiryReason) -> u64 {
        match reason {
            ExpiryReason::Idle => self.expired_idle,
            ExpiryReason::Active => self.expired_active,
            ExpiryReason::Fin => self.expired_fin,
            ExpiryReason::Rst => self.expired_rst,
            ExpiryReason::Flush => self.expired_flush,
        }
    }

    /// Number of flows that ended, all reasons together.
    pub fn expired_total(&self) -> u64 {
        ExpiryReason::ALL
            .iter()
            .map(|&reason| self.expired(reason))
            .sum()
    }

    pub(crate) fn count_expired(&mut self, reason: ExpiryReason) {
        let counter = match reason {
            ExpiryReason::Idle => &mut self.expired_idle,
            ExpiryReason::Active => &mut self.expired_active,
            ExpiryReason::Fin => &mut self.expired_fin,
            ExpiryReason::Rst => &mut self.expired_rst,
            ExpiryReason::Flush => &mut self.expired_flush,
        };
        *counter += 1;
    }
}
