//! The outage buffer of the sink: microcloud writes that failed because the backend was
//! unavailable, kept in order and replayed, oldest first, when the backend is back.
//!
//! Replays wait for a backoff that doubles after each failed attempt, so a server that is
//! down is tried at most once per backoff period and not once per batch. Bucket deltas are
//! replayed with the batch id of their first attempt, so a backend that recognises repeated
//! batch ids (Redis) never adds them twice. Events are at least once: an event is published
//! twice only when an attempt reached the server and its reply was lost.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bucket::BucketDelta;
use crate::microcloud::{Microcloud, MicrocloudError};
use crate::pipeline::sink::SinkStats;
use crate::session::SessionEvent;

/// Settings of the outage buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageConfig {
    /// Maximum number of items (session events plus bucket deltas) kept while the
    /// microcloud is unavailable. When a new write does not fit, the oldest writes are
    /// dropped and counted.
    pub capacity: usize,
    /// Maximum wall time spent retrying the buffer at the end of a run. What is still
    /// buffered then is counted as lost.
    pub finish_timeout: Duration,
    /// Delay before the first replay after a failure. It doubles after each failed replay.
    pub min_backoff: Duration,
    /// Maximum delay between two replays.
    pub max_backoff: Duration,
}

impl Default for OutageConfig {
    /// Returns a capacity of 200,000 items, 30 s of retries at the end of a run and a
    /// backoff from 100 ms up to 5 s.
    fn default() -> Self {
        OutageConfig {
            capacity: 200_000,
            finish_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Counters of the outage buffer. An item is one session event or one bucket delta.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutageStats {
    /// Buffer capacity, in items.
    pub capacity: u64,
    /// `publish` and `add_buckets` calls, first attempts and replays, that failed because
    /// the microcloud was unavailable.
    pub write_failures: u64,
    /// Items in the buffer now. At the end of a run, these are the items never written.
    pub buffered: u64,
    /// Maximum number of items buffered at once.
    pub max_buffered: u64,
    /// Items written by a replay after their first attempt failed.
    pub replayed: u64,
    /// Items dropped, oldest first, because the buffer was full.
    pub dropped_full: u64,
    /// Items still buffered when the retry time at the end of the run ran out.
    pub lost: u64,
}

/// One failed microcloud write, kept for a replay.
enum PendingWrite {
    Events(Arc<[SessionEvent]>),
    /// Bucket deltas with the batch id of their first attempt.
    Deltas { batch_id: Option<String>, deltas: Vec<BucketDelta> },
}

impl PendingWrite {
    fn items(&self) -> usize {
        match self {
            PendingWrite::Events(events) => events.len(),
            PendingWrite::Deltas { deltas, .. } => deltas.len(),
        }
    }

    async fn send<M: Microcloud>(&self, microcloud: &mut M) -> Result<(), MicrocloudError> {
        match self {
            PendingWrite::Events(events) => microcloud.publish(events).await,
            PendingWrite::Deltas { batch_id, deltas } => microcloud.add_buckets_as(batch_id.as_deref(), deltas).await,
        }
    }

    /// Adds the items of a successful write to the sink counters.
    fn count_written(&self, stats: &mut SinkStats) {
        match self {
            PendingWrite::Events(events) => stats.events_published += events.len() as u64,
            PendingWrite::Deltas { deltas, .. } => stats.deltas += deltas.len() as u64,
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            PendingWrite::Events(_) => "publish",
            PendingWrite::Deltas { .. } => "add_buckets",
        }
    }
}

/// Writes events and bucket deltas to the microcloud, buffering them while it is
/// unavailable.
pub(crate) struct BufferedWriter<M> {
    microcloud: M,
    /// A second handle of the same backend, so that an events write and a deltas write can
    /// run at the same time (see [`BufferedWriter::write_both`]).
    second: Option<M>,
    config: OutageConfig,
    pending: VecDeque<PendingWrite>,
    /// Items in `pending`.
    items: usize,
    /// Delay after the next failed attempt.
    backoff: Duration,
    /// Earliest time of the next replay, or `None` when no attempt failed since the last success.
    retry_at: Option<Instant>,
}

impl<M: Microcloud> BufferedWriter<M> {
    pub(crate) fn new(microcloud: M, config: OutageConfig) -> Self {
        let backoff = config.min_backoff;
        BufferedWriter { microcloud, second: None, config, pending: VecDeque::new(), items: 0, backoff, retry_at: None }
    }

    /// Sets the handle that [`BufferedWriter::write_both`] uses for the deltas.
    pub(crate) fn with_second_handle(mut self, second: M) -> Self {
        self.second = Some(second);
        self
    }

    pub(crate) fn microcloud(&mut self) -> &mut M {
        &mut self.microcloud
    }

    /// Publishes `events`, after the buffered writes, or buffers them.
    pub(crate) async fn publish(&mut self, events: Arc<[SessionEvent]>, stats: &mut SinkStats) {
        self.write(PendingWrite::Events(events), stats).await;
    }

    /// Adds `deltas` under a new batch id, after the buffered writes, or buffers them with
    /// that id.
    pub(crate) async fn add_buckets(&mut self, deltas: Vec<BucketDelta>, stats: &mut SinkStats) {
        let batch_id = self.microcloud.new_batch_id();
        self.write(PendingWrite::Deltas { batch_id, deltas }, stats).await;
    }

    /// Publishes `events` and adds `deltas` under a new batch id, after the buffered writes.
    ///
    /// With a second handle and nothing buffered, the two writes run at the same time, so
    /// the backend executes one while the sink prepares the other. On Redis, the bucket
    /// scripts run while the events' states are decoded and their pipeline is built. The
    /// writes change different keys, so their order does not matter. Each write that fails
    /// is buffered, events first.
    pub(crate) async fn write_both(&mut self, events: Arc<[SessionEvent]>, deltas: Vec<BucketDelta>, stats: &mut SinkStats) {
        let batch_id = self.microcloud.new_batch_id();
        let events = PendingWrite::Events(events);
        let deltas = PendingWrite::Deltas { batch_id, deltas };
        if !self.pending.is_empty() && self.retry_due() {
            self.replay(stats).await;
        }
        let second = match self.second.as_mut() {
            Some(second) if self.pending.is_empty() => second,
            _ => {
                self.write(events, stats).await;
                self.write(deltas, stats).await;
                return;
            }
        };
        let (events_result, deltas_result) = tokio::join!(events.send(&mut self.microcloud), deltas.send(second));
        let events_failed = matches!(events_result, Err(MicrocloudError::Unavailable { .. }));
        self.settle(events, events_result, true, stats);
        // Both attempts failing at once is one failure for the backoff.
        self.settle(deltas, deltas_result, !events_failed, stats);
    }

    /// Replays the buffer until it is empty or `config.finish_timeout` has passed, waiting
    /// for the backoff between attempts. Counts what is left as lost.
    pub(crate) async fn drain(&mut self, stats: &mut SinkStats) {
        let deadline = Instant::now() + self.config.finish_timeout;
        while !self.pending.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(retry_at) = self.retry_at.filter(|&at| at > now) {
                tokio::time::sleep(retry_at.min(deadline) - now).await;
                continue;
            }
            // An attempt cut off by the deadline may have reached the server, but its items
            // still count as lost.
            if tokio::time::timeout(deadline - now, self.replay(stats)).await.is_err() {
                break;
            }
        }
        stats.outage.lost = self.items as u64;
        if self.items > 0 {
            tracing::error!(items = self.items, timeout_s = self.config.finish_timeout.as_secs_f64(), "microcloud still unavailable when the retries at the end of the run timed out, so the buffered events and bucket deltas are lost");
        }
    }

    async fn write(&mut self, write: PendingWrite, stats: &mut SinkStats) {
        if !self.pending.is_empty() && self.retry_due() {
            self.replay(stats).await;
        }
        if !self.pending.is_empty() {
            self.push(write, stats);
            return;
        }
        let result = write.send(&mut self.microcloud).await;
        self.settle(write, result, true, stats);
    }

    /// Counts a first attempt, or buffers it when the backend was unavailable. Only an
    /// attempt with `advance_backoff` moves the backoff on.
    fn settle(&mut self, write: PendingWrite, result: Result<(), MicrocloudError>, advance_backoff: bool, stats: &mut SinkStats) {
        match result {
            Ok(()) => write.count_written(stats),
            Err(error @ MicrocloudError::Unavailable { .. }) => {
                if advance_backoff {
                    self.attempt_failed(write.operation(), &error, stats);
                } else {
                    stats.outage.write_failures += 1;
                }
                self.push(write, stats);
            }
            Err(error) => rejected(write.operation(), &error, write.items(), stats),
        }
    }

    /// Writes buffered entries, oldest first, until one fails.
    async fn replay(&mut self, stats: &mut SinkStats) {
        let before = stats.outage.replayed;
        while let Some(front) = self.pending.front() {
            match front.send(&mut self.microcloud).await {
                Ok(()) => {
                    front.count_written(stats);
                    stats.outage.replayed += front.items() as u64;
                }
                Err(error @ MicrocloudError::Unavailable { .. }) => {
                    let operation = front.operation();
                    self.attempt_failed(operation, &error, stats);
                    return;
                }
                Err(error) => rejected(front.operation(), &error, front.items(), stats),
            }
            self.pop_front(stats);
        }
        self.backoff = self.config.min_backoff;
        self.retry_at = None;
        tracing::info!(items = stats.outage.replayed - before, "microcloud available again, buffered writes replayed");
    }

    /// Appends a failed write, dropping the oldest entries while it does not fit.
    fn push(&mut self, write: PendingWrite, stats: &mut SinkStats) {
        let items = write.items();
        while self.items + items > self.config.capacity && !self.pending.is_empty() {
            let dropped = self.pop_front(stats);
            dropped_full(dropped, self.config.capacity, stats);
        }
        if items > self.config.capacity {
            dropped_full(items, self.config.capacity, stats);
            return;
        }
        self.items += items;
        self.pending.push_back(write);
        stats.outage.buffered = self.items as u64;
        stats.outage.max_buffered = stats.outage.max_buffered.max(self.items as u64);
    }

    /// Removes the oldest entry and returns its number of items.
    fn pop_front(&mut self, stats: &mut SinkStats) -> usize {
        let items = self.pending.pop_front().map_or(0, |write| write.items());
        self.items -= items;
        stats.outage.buffered = self.items as u64;
        items
    }

    fn retry_due(&self) -> bool {
        self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    fn attempt_failed(&mut self, operation: &str, error: &MicrocloudError, stats: &mut SinkStats) {
        stats.outage.write_failures += 1;
        if stats.outage.write_failures % 1000 == 1 {
            tracing::warn!(operation, error = %error, failures = stats.outage.write_failures, retry_in_ms = self.backoff.as_millis() as u64, "microcloud write failed, buffering writes until the backend is available");
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.config.max_backoff);
    }
}

/// Counts a write that the backend rejected for a reason other than being unavailable
/// (e.g. stored data it cannot decode). A replay would fail the same way, so the write is
/// not buffered.
fn rejected(operation: &str, error: &MicrocloudError, items: usize, stats: &mut SinkStats) {
    stats.microcloud_errors += 1;
    if stats.microcloud_errors % 1000 == 1 {
        tracing::error!(operation, error = %error, items, failures = stats.microcloud_errors, "microcloud write failed and is not retried");
    }
}

fn dropped_full(items: usize, capacity: usize, stats: &mut SinkStats) {
    let first = stats.outage.dropped_full == 0;
    stats.outage.dropped_full += items as u64;
    if first {
        tracing::error!(items, capacity, "microcloud outage buffer full, dropping the oldest buffered writes (raise --redis-buffer to keep more)");
    }
}

#[cfg(test)]
#[path = "sink_buffer_tests.rs"]
pub(crate) mod tests;
