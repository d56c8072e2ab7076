//! Aggregation of expired flows into 300-second buckets per subscriber and protocol.
//!
//! A flow counts in the bucket that contains its last packet. A shard accumulates the flows
//! it expires and hands the accumulated values over as deltas (what changed since the
//! previous drain). Deltas from several shards, or several drains, merge by plain
//! addition, so the store that keeps the totals (the microcloud) only ever adds.

use rustc_hash::FxHashMap;

use crate::flow::classify::AppProtocol;
use crate::flow::ExpiredFlow;
use crate::wire::control::Digits;

/// Bucket length in seconds. Bucket start times are multiples of it since the Unix epoch.
pub const BUCKET_SECONDS: u64 = 300;

/// Returns the start, in seconds since the epoch, of the bucket holding the time `ts_us`
/// (microseconds since the epoch).
pub fn bucket_epoch(ts_us: u64) -> u64 {
    ts_us / 1_000_000 / BUCKET_SECONDS * BUCKET_SECONDS
}

/// Counters of one bucket row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketValues {
    /// Packets in both directions.
    pub packets: u64,
    /// Inner IP bytes in both directions.
    pub bytes: u64,
    /// Flows whose last packet falls in the bucket.
    pub flows: u64,
    /// Sum over those flows of (last packet time - first packet time), microseconds.
    pub duration_us: u64,
}

impl BucketValues {
    /// Adds `other` field by field.
    pub fn add(&mut self, other: &BucketValues) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.flows += other.flows;
        self.duration_us += other.duration_us;
    }

    fn of_flow(flow: &ExpiredFlow) -> Self {
        BucketValues {
            packets: flow.packets,
            bytes: flow.bytes,
            flows: 1,
            duration_us: flow.duration_us(),
        }
    }
}

/// The row a bucket delta adds to: bucket start, subscriber and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketKey {
    /// Bucket start, seconds since the epoch, a multiple of [`BUCKET_SECONDS`].
    pub epoch: u64,
    /// Subscriber IMSI.
    pub imsi: Digits,
    /// Application protocol.
    pub protocol: AppProtocol,
}

/// Increase of one bucket row since the previous drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketDelta {
    /// Bucket start, seconds since the epoch, a multiple of [`BUCKET_SECONDS`].
    pub epoch: u64,
    /// Subscriber IMSI.
    pub imsi: Digits,
    /// Application protocol.
    pub protocol: AppProtocol,
    /// Packets in both directions.
    pub packets: u64,
    /// Inner IP bytes in both directions.
    pub bytes: u64,
    /// Flows whose last packet falls in the bucket.
    pub flows: u64,
    /// Sum of flow durations, microseconds.
    pub duration_us: u64,
}

impl BucketDelta {
    /// Builds a delta from its row and counters.
    pub fn new(key: BucketKey, values: BucketValues) -> Self {
        BucketDelta {
            epoch: key.epoch,
            imsi: key.imsi,
            protocol: key.protocol,
            packets: values.packets,
            bytes: values.bytes,
            flows: values.flows,
            duration_us: values.duration_us,
        }
    }

    /// Returns the row this delta adds to.
    pub fn key(&self) -> BucketKey {
        BucketKey {
            epoch: self.epoch,
            imsi: self.imsi,
            protocol: self.protocol,
        }
    }

    /// Returns the counters this delta adds.
    pub fn values(&self) -> BucketValues {
        BucketValues {
            packets: self.packets,
            bytes: self.bytes,
            flows: self.flows,
            duration_us: self.duration_us,
        }
    }
}

/// Bucket rows accumulated since the last drain.
#[derive(Debug, Default)]
pub struct Buckets {
    pending: FxHashMap<BucketKey, BucketValues>,
}

impl Buckets {
    /// Creates an empty set of buckets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts an expired flow in the bucket holding its last packet.
    pub fn add(&mut self, flow: &ExpiredFlow) {
        let key = BucketKey {
            epoch: bucket_epoch(flow.last_us),
            imsi: flow.imsi,
            protocol: flow.protocol,
        };
        self.pending
            .entry(key)
            .or_default()
            .add(&BucketValues::of_flow(flow));
    }

    /// Adds a delta drained elsewhere (another shard) to its row.
    pub fn add_delta(&mut self, delta: &BucketDelta) {
        self.pending
            .entry(delta.key())
            .or_default()
            .add(&delta.values());
    }

    /// Takes every row changed since the previous drain, sorted by bucket start, IMSI and
    /// protocol, and leaves the buckets empty. The map keeps its capacity.
    pub fn drain_deltas(&mut self) -> Vec<BucketDelta> {
        let mut deltas: Vec<BucketDelta> = self
            .pending
            .drain()
            .map(|(key, values)| BucketDelta::new(key, values))
            .collect();
        deltas.sort_unstable_by(|a, b| {
            (a.epoch, a.imsi.as_str(), a.protocol).cmp(&(b.epoch, b.imsi.as_str(), b.protocol))
        });
        deltas
    }

    /// Number of rows changed since the previous drain.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing changed since the previous drain.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::flow::ExpiryReason;
    use crate::wire::FlowKey;

    const HTTP: AppProtocol = AppProtocol { master: 7, app: 7 };
    const DNS: AppProtocol = AppProtocol { master: 5, app: 5 };

    fn imsi(text: &str) -> Digits {
        Digits::from_ascii(text.as_bytes()).expect("test IMSI is digits")
    }

    fn flow(
        imsi_text: &str,
        protocol: AppProtocol,
        first_s: f64,
        last_s: f64,
        packets: u64,
    ) -> ExpiredFlow {
        let address = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        ExpiredFlow {
            imsi: imsi(imsi_text),
            key: FlowKey {
                protocol: 6,
                src: address,
                src_port: 1,
                dst: address,
                dst_port: 2,
            },
            protocol,
            first_us: (first_s * 1e6) as u64,
            last_us: (last_s * 1e6) as u64,
            packets,
            bytes: packets * 100,
            reason: ExpiryReason::Idle,
        }
    }

    #[test]
    fn epoch_floors_to_granularity() {
        assert_eq!(bucket_epoch(1_374_938_100_000_000), 1_374_938_100);
        assert_eq!(bucket_epoch(1_374_938_399_999_999), 1_374_938_100);
        assert_eq!(bucket_epoch(1_374_938_400_000_000), 1_374_938_400);
        assert_eq!(bucket_epoch(0), 0);
    }

    #[test]
    fn flow_counts_in_bucket_of_last_packet() {
        let mut buckets = Buckets::new();
        // Starts in the 1374938100 bucket and ends in the next one.
        buckets.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_390.0,
            1_374_938_410.5,
            4,
        ));
        let deltas = buckets.drain_deltas();
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].epoch, 1_374_938_400);
        assert_eq!(deltas[0].flows, 1);
        assert_eq!(deltas[0].packets, 4);
        assert_eq!(deltas[0].bytes, 400);
        assert_eq!(deltas[0].duration_us, 20_500_000);
    }

    #[test]
    fn rows_split_by_imsi_and_protocol() {
        let mut buckets = Buckets::new();
        buckets.add(&flow(
            "001010000000002",
            HTTP,
            1_374_938_100.0,
            1_374_938_101.0,
            1,
        ));
        buckets.add(&flow(
            "001010000000001",
            DNS,
            1_374_938_100.0,
            1_374_938_101.0,
            2,
        ));
        buckets.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_100.0,
            1_374_938_102.0,
            3,
        ));
        buckets.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_110.0,
            1_374_938_111.0,
            5,
        ));
        assert_eq!(buckets.len(), 3);
        let deltas = buckets.drain_deltas();
        let rows: Vec<(&str, AppProtocol, u64, u64)> = deltas
            .iter()
            .map(|d| (d.imsi.as_str(), d.protocol, d.packets, d.flows))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("001010000000001", DNS, 2, 1),
                ("001010000000001", HTTP, 8, 2),
                ("001010000000002", HTTP, 1, 1),
            ]
        );
        assert_eq!(deltas[1].duration_us, 3_000_000);
    }

    #[test]
    fn drain_returns_only_changes() {
        let mut buckets = Buckets::new();
        buckets.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_100.0,
            1_374_938_101.0,
            1,
        ));
        assert_eq!(buckets.drain_deltas().len(), 1);
        assert!(buckets.is_empty());
        assert!(buckets.drain_deltas().is_empty());
        buckets.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_100.0,
            1_374_938_101.0,
            2,
        ));
        let deltas = buckets.drain_deltas();
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].packets, 2);
    }

    #[test]
    fn shard_deltas_merge_by_sum() {
        let mut shard_a = Buckets::new();
        shard_a.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_100.0,
            1_374_938_101.0,
            1,
        ));
        let mut shard_b = Buckets::new();
        shard_b.add(&flow(
            "001010000000001",
            HTTP,
            1_374_938_200.0,
            1_374_938_203.0,
            2,
        ));

        let mut merged = Buckets::new();
        for delta in shard_a
            .drain_deltas()
            .iter()
            .chain(shard_b.drain_deltas().iter())
        {
            merged.add_delta(delta);
        }

        let deltas = merged.drain_deltas();
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].packets, 3);
        assert_eq!(deltas[0].bytes, 300);
        assert_eq!(deltas[0].flows, 2);
        assert_eq!(deltas[0].duration_us, 4_000_000);
    }
}
