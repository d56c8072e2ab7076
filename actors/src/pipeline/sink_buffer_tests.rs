//! Tests of the outage buffer with a backend that is unavailable on request.

use std::time::Duration;

use super::*;
use crate::flow::classify::AppProtocol;
use crate::microcloud::SubscriberState;
use crate::session::event::{EventKind, TunnelKey};
use crate::wire::control::Digits;

/// A backend that records what it was sent and fails every write while `down` is set.
/// A batch id seen before adds nothing, as in the Redis backend.
#[derive(Default)]
struct FlakyMicrocloud {
    down: bool,
    /// Batch ids after which the reply is lost: the write is applied, then reported failed.
    lose_reply_once: Vec<String>,
    published: Vec<u64>,
    applied_batches: Vec<String>,
    packets: u64,
    next_id: std::sync::atomic::AtomicU64,
}

fn outage() -> MicrocloudError {
    MicrocloudError::Unavailable { backend: "test", reason: "server down".to_owned() }
}

impl Microcloud for FlakyMicrocloud {
    async fn publish(&mut self, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
        if self.down {
            return Err(outage());
        }
        self.published.extend(events.iter().map(|event| event.seq));
        Ok(())
    }

    async fn add_buckets(&mut self, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        let id = self.new_batch_id();
        self.add_buckets_as(id.as_deref(), deltas).await
    }

    fn new_batch_id(&self) -> Option<String> {
        let number = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(format!("batch-{number}"))
    }

    async fn add_buckets_as(&mut self, batch_id: Option<&str>, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        let id = batch_id.expect("the sink passes the id it was given").to_owned();
        if self.down {
            return Err(outage());
        }
        if !self.applied_batches.contains(&id) {
            self.applied_batches.push(id.clone());
            self.packets += deltas.iter().map(|delta| delta.packets).sum::<u64>();
        }
        if let Some(at) = self.lose_reply_once.iter().position(|lost| *lost == id) {
            self.lose_reply_once.remove(at);
            return Err(outage());
        }
        Ok(())
    }

    async fn lookup_tunnel(&mut self, _key: TunnelKey) -> Result<Option<String>, MicrocloudError> {
        Ok(None)
    }

    async fn subscriber(&mut self, _imsi: &str) -> Result<Option<SubscriberState>, MicrocloudError> {
        Ok(None)
    }

    async fn bucket_epochs(&mut self) -> Result<Vec<u64>, MicrocloudError> {
        Ok(vec![])
    }

    async fn bucket_rows(&mut self, _epoch: u64) -> Result<Vec<BucketDelta>, MicrocloudError> {
        Ok(vec![])
    }
}

/// Builds `count` events numbered from `first` (the number is the event's `seq`).
pub(crate) fn events(first: u64, count: u64) -> Arc<[SessionEvent]> {
    (first..first + count)
        .map(|seq| SessionEvent {
            kind: EventKind::Modify,
            ts_us: seq,
            request_ts_us: seq,
            seq,
            site: "site-a".to_owned(),
            session_id: 1,
            imsi: "001010000000001".to_owned(),
            msisdn: None,
            imei: None,
            apn: None,
            rat: None,
            uli: None,
            serving_network: None,
            ue_ipv4: None,
            ue_ipv6: None,
            gtp_version: 1,
            message_type: 18,
            cause: Some(128),
            tunnels: vec![],
            added: vec![],
            removed: vec![],
        })
        .collect()
}

/// Builds `count` deltas of one bucket row, each with `packets` packets.
pub(crate) fn deltas(count: u64, packets: u64) -> Vec<BucketDelta> {
    (0..count)
        .map(|_| BucketDelta {
            epoch: 300,
            imsi: Digits::from_ascii(b"001010000000001").expect("digits"),
            protocol: AppProtocol { master: 7, app: 7 },
            packets,
            bytes: packets * 100,
            flows: 1,
            duration_us: 1,
        })
        .collect()
}

/// Zero backoff, so every write replays the buffer first.
fn config(capacity: usize) -> OutageConfig {
    OutageConfig {
        capacity,
        finish_timeout: Duration::from_millis(200),
        min_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    }
}

#[tokio::test]
async fn outage_replays_events_in_order() {
    let mut writer = BufferedWriter::new(FlakyMicrocloud::default(), config(100));
    let mut stats = SinkStats::default();
    writer.publish(events(0, 3), &mut stats).await;
    writer.microcloud().down = true;
    writer.publish(events(3, 2), &mut stats).await;
    writer.publish(events(5, 2), &mut stats).await;
    assert_eq!(stats.outage.buffered, 4);
    writer.microcloud().down = false;
    writer.publish(events(7, 1), &mut stats).await;

    assert_eq!(writer.microcloud().published, (0..8).collect::<Vec<_>>());
    assert_eq!(stats.events_published, 8);
    assert_eq!(stats.outage.replayed, 4);
    assert_eq!(stats.outage.buffered, 0);
    assert_eq!(stats.outage.max_buffered, 4);
    assert_eq!(stats.outage.write_failures, 2);
    assert_eq!(stats.microcloud_errors, 0);
}

#[tokio::test]
async fn full_buffer_drops_oldest() {
    let mut writer = BufferedWriter::new(FlakyMicrocloud::default(), config(5));
    let mut stats = SinkStats::default();
    writer.microcloud().down = true;
    writer.publish(events(0, 2), &mut stats).await;
    writer.publish(events(2, 2), &mut stats).await;
    writer.publish(events(4, 2), &mut stats).await;
    assert_eq!(stats.outage.dropped_full, 2);
    assert_eq!(stats.outage.buffered, 4);
    // A write larger than the whole buffer is dropped with everything before it.
    writer.publish(events(6, 6), &mut stats).await;
    assert_eq!(stats.outage.dropped_full, 12);
    assert_eq!(stats.outage.buffered, 0);
    writer.publish(events(12, 1), &mut stats).await;
    writer.microcloud().down = false;
    writer.drain(&mut stats).await;

    assert_eq!(writer.microcloud().published, vec![12]);
    assert_eq!(stats.outage.lost, 0);
}

#[tokio::test]
async fn lost_reply_counts_deltas_once() {
    let mut writer = BufferedWriter::new(FlakyMicrocloud::default(), config(100));
    let mut stats = SinkStats::default();
    writer.microcloud().lose_reply_once.push("batch-0".to_owned());
    writer.add_buckets(deltas(2, 10), &mut stats).await;
    assert_eq!(stats.outage.buffered, 2, "the write whose reply was lost is buffered");
    writer.add_buckets(deltas(1, 1), &mut stats).await;

    assert_eq!(writer.microcloud().packets, 21, "the replay of batch-0 added nothing");
    assert_eq!(writer.microcloud().applied_batches, vec!["batch-0", "batch-1"]);
    assert_eq!(stats.deltas, 3);
    assert_eq!(stats.outage.replayed, 2);
}

#[tokio::test]
async fn drain_counts_lost_items() {
    let mut writer = BufferedWriter::new(FlakyMicrocloud::default(), config(100));
    let mut stats = SinkStats::default();
    writer.microcloud().down = true;
    writer.publish(events(0, 3), &mut stats).await;
    writer.add_buckets(deltas(4, 1), &mut stats).await;
    let started = std::time::Instant::now();
    writer.drain(&mut stats).await;

    assert!(started.elapsed() >= Duration::from_millis(200), "drain gave up before its timeout");
    assert_eq!(stats.outage.lost, 7);
    assert_eq!(stats.outage.buffered, 7);
    assert!(stats.outage.write_failures >= 2);
}

#[tokio::test]
async fn backoff_skips_attempts_while_waiting() {
    let config = OutageConfig { min_backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(60), ..config(100) };
    let mut writer = BufferedWriter::new(FlakyMicrocloud::default(), config);
    let mut stats = SinkStats::default();
    writer.microcloud().down = true;
    for first in 0..10 {
        writer.publish(events(first, 1), &mut stats).await;
    }

    assert_eq!(stats.outage.write_failures, 1, "only the first write reached the backend");
    assert_eq!(stats.outage.buffered, 10);
}

/// A backend whose clones share one record, so that a writer can use two handles of it like
/// two clones of a Redis connection. Every write fails while `down` is set.
#[derive(Clone, Default)]
struct SharedMicrocloud {
    state: Arc<std::sync::Mutex<SharedState>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct SharedState {
    down: bool,
    published: Vec<u64>,
    applied_batches: Vec<String>,
}

impl SharedMicrocloud {
    fn set_down(&self, down: bool) {
        self.state.lock().expect("state lock").down = down;
    }

    fn published(&self) -> Vec<u64> {
        self.state.lock().expect("state lock").published.clone()
    }

    fn applied_batches(&self) -> Vec<String> {
        self.state.lock().expect("state lock").applied_batches.clone()
    }
}

impl Microcloud for SharedMicrocloud {
    async fn publish(&mut self, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
        let mut state = self.state.lock().expect("state lock");
        if state.down {
            return Err(outage());
        }
        state.published.extend(events.iter().map(|event| event.seq));
        Ok(())
    }

    async fn add_buckets(&mut self, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        let id = self.new_batch_id();
        self.add_buckets_as(id.as_deref(), deltas).await
    }

    fn new_batch_id(&self) -> Option<String> {
        let number = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(format!("batch-{number}"))
    }

    async fn add_buckets_as(&mut self, batch_id: Option<&str>, _deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        let mut state = self.state.lock().expect("state lock");
        if state.down {
            return Err(outage());
        }
        let id = batch_id.expect("the writer passes the id it drew").to_owned();
        if !state.applied_batches.contains(&id) {
            state.applied_batches.push(id);
        }
        Ok(())
    }

    async fn lookup_tunnel(&mut self, _key: TunnelKey) -> Result<Option<String>, MicrocloudError> {
        Ok(None)
    }

    async fn subscriber(&mut self, _imsi: &str) -> Result<Option<SubscriberState>, MicrocloudError> {
        Ok(None)
    }

    async fn bucket_epochs(&mut self) -> Result<Vec<u64>, MicrocloudError> {
        Ok(vec![])
    }

    async fn bucket_rows(&mut self, _epoch: u64) -> Result<Vec<BucketDelta>, MicrocloudError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn write_both_uses_both_handles() {
    let backend = SharedMicrocloud::default();
    let mut writer = BufferedWriter::new(backend.clone(), config(100)).with_second_handle(backend.clone());
    let mut stats = SinkStats::default();
    writer.write_both(events(0, 2), deltas(3, 1), &mut stats).await;

    assert_eq!(backend.published(), vec![0, 1]);
    assert_eq!(backend.applied_batches(), vec!["batch-0"]);
    assert_eq!(stats.events_published, 2);
    assert_eq!(stats.deltas, 3);
    assert_eq!(stats.outage.write_failures, 0);
}

#[tokio::test]
async fn write_both_buffers_failures_in_order() {
    let backend = SharedMicrocloud::default();
    let mut writer = BufferedWriter::new(backend.clone(), config(100)).with_second_handle(backend.clone());
    let mut stats = SinkStats::default();
    backend.set_down(true);
    writer.write_both(events(0, 2), deltas(3, 1), &mut stats).await;
    assert_eq!(stats.outage.write_failures, 2, "both attempts failed");
    assert_eq!(stats.outage.buffered, 5);

    backend.set_down(false);
    writer.publish(events(2, 1), &mut stats).await;
    assert_eq!(backend.published(), vec![0, 1, 2], "buffered events first, then the new one");
    assert_eq!(backend.applied_batches(), vec!["batch-0"], "the deltas replayed with their first id");
    assert_eq!(stats.outage.replayed, 5);
    assert_eq!(stats.outage.buffered, 0);
    assert_eq!(stats.events_published, 3);
    assert_eq!(stats.deltas, 3);
}
