//! The sink actor: writes the session-event log and feeds the microcloud with events and
//! bucket deltas. Writes that fail while the microcloud is unavailable wait in an outage
//! buffer ([`crate::pipeline::sink_buffer`]) and are replayed when it is back.
//!
//! Events and deltas are collected and written together. The first message after a write
//! makes the sink send itself [`SinkMsg::Flush`]. The mailbox is FIFO, so the flush comes
//! after every message queued so far, and one `publish` call carries all their events. An
//! idle sink therefore writes each message at once, and a busy one writes fewer, larger
//! batches, which saves round trips and commands per event on a Redis microcloud.

use std::marker::PhantomData;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::bucket::BucketDelta;
use crate::microcloud::Microcloud;
use crate::output::events::EventsWriter;
use crate::pipeline::sink_buffer::{BufferedWriter, OutageConfig, OutageStats};
use crate::session::SessionEvent;

/// Messages of the sink actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum SinkMsg {
    /// Session events of one control batch, in capture order.
    Events(Arc<[SessionEvent]>),
    /// Bucket changes of one shard.
    Deltas(Vec<BucketDelta>),
    /// Writes the events and deltas collected since the last write. The sink sends it to
    /// itself, and other senders have no reason to.
    Flush,
    /// Writes what was collected, flushes the event log, retries the outage buffer for at
    /// most its finish timeout and returns the counters, with every bucket row per epoch
    /// when the sink was started with `read_buckets`.
    Finish(RpcReplyPort<SinkReport>),
}

/// Counters of the sink.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStats {
    /// Events written to the event log.
    pub events_logged: u64,
    /// Events written to the microcloud, at the first attempt or by a replay.
    pub events_published: u64,
    /// Bucket deltas written to the microcloud, at the first attempt or by a replay.
    pub deltas: u64,
    /// Batches of collected events handed to the microcloud (first attempts).
    pub event_writes: u64,
    /// Batches of collected bucket deltas handed to the microcloud (first attempts).
    pub delta_writes: u64,
    /// Microcloud operations that failed and were not retried: writes the backend rejected
    /// for a reason other than being unavailable, and reads of the buckets at the end.
    pub microcloud_errors: u64,
    /// Event log writes that failed.
    pub log_errors: u64,
    /// Writes buffered while the microcloud was unavailable.
    pub outage: OutageStats,
}

/// Result of the sink at the end of a run.
#[derive(Debug, Default)]
pub struct SinkReport {
    /// Counters.
    pub stats: SinkStats,
    /// Bucket rows per epoch, epochs ascending. Empty unless `SinkArgs::read_buckets` is set.
    pub buckets: Vec<(u64, Vec<BucketDelta>)>,
}

/// Start arguments of the sink.
pub struct SinkArgs<M> {
    /// The microcloud backend.
    pub microcloud: M,
    /// Event log, when requested.
    pub events: Option<EventsWriter>,
    /// Outage buffer settings.
    pub outage: OutageConfig,
    /// Read every bucket row back at the end, for the reports. Without reports to write,
    /// reading them would cost one command per row for nothing.
    pub read_buckets: bool,
}

/// Maximum events, and separately bucket deltas, in one microcloud write. On Redis an events
/// write is one MULTI/EXEC block, and the server serves no other client while it runs the
/// block. The limit bounds that pause and the size of the request. The block took about
/// 10 ms per 1000 events on the 2-core machine of `docs/benchmarks.md`.
const MAX_ITEMS_PER_WRITE: usize = 2000;

/// State of the sink actor.
pub struct SinkState<M> {
    microcloud: BufferedWriter<M>,
    events: Option<EventsWriter>,
    pending: Pending,
    /// True from sending [`SinkMsg::Flush`] to the sink until it is handled.
    flush_queued: bool,
    /// Items per write: [`MAX_ITEMS_PER_WRITE`], or the outage buffer's capacity when that
    /// is smaller, so a failed write always fits in the buffer.
    max_items: usize,
    read_buckets: bool,
    stats: SinkStats,
}

/// Events and bucket deltas received since the last write, in arrival order.
#[derive(Default)]
struct Pending {
    /// Event batches as the control actor sent them.
    events: Vec<Arc<[SessionEvent]>>,
    /// Events in `events`.
    event_count: usize,
    deltas: Vec<BucketDelta>,
}

impl Pending {
    /// Returns the collected events as one slice, copying them only when there are several
    /// batches.
    fn take_events(&mut self) -> Arc<[SessionEvent]> {
        self.event_count = 0;
        let mut batches = std::mem::take(&mut self.events);
        if batches.len() == 1 {
            if let Some(batch) = batches.pop() {
                return batch;
            }
        }
        batches.iter().flat_map(|batch| batch.iter().cloned()).collect()
    }
}

/// The sink actor, generic over the microcloud backend.
pub struct SinkActor<M>(PhantomData<fn() -> M>);

impl<M> Default for SinkActor<M> {
    fn default() -> Self {
        SinkActor(PhantomData)
    }
}

impl<M: Microcloud + Clone> Actor for SinkActor<M> {
    type Msg = SinkMsg;
    type State = SinkState<M>;
    type Arguments = SinkArgs<M>;

    async fn pre_start(&self, _myself: ActorRef<SinkMsg>, args: SinkArgs<M>) -> Result<SinkState<M>, ActorProcessingErr> {
        let mut stats = SinkStats::default();
        stats.outage.capacity = args.outage.capacity as u64;
        let max_items = MAX_ITEMS_PER_WRITE.min(args.outage.capacity).max(1);
        Ok(SinkState {
            microcloud: BufferedWriter::new(args.microcloud.clone(), args.outage).with_second_handle(args.microcloud),
            events: args.events,
            pending: Pending::default(),
            flush_queued: false,
            max_items,
            read_buckets: args.read_buckets,
            stats,
        })
    }

    async fn handle(&self, myself: ActorRef<SinkMsg>, message: SinkMsg, state: &mut SinkState<M>) -> Result<(), ActorProcessingErr> {
        match message {
            SinkMsg::Events(events) => {
                state.log_events(&events);
                state.queue_flush(&myself);
                state.collect_events(events).await;
            }
            SinkMsg::Deltas(deltas) => {
                state.queue_flush(&myself);
                state.collect_deltas(deltas).await;
            }
            SinkMsg::Flush => {
                state.flush_queued = false;
                state.write_pending().await;
            }
            SinkMsg::Finish(reply) => {
                state.write_pending().await;
                let report = state.finish().await;
                let _ = reply.send(report);
            }
        }
        crate::metrics::registry().publish_sink(&state.stats);
        Ok(())
    }
}

impl<M: Microcloud + Clone> SinkState<M> {
    /// Sends [`SinkMsg::Flush`] to the sink unless one is already queued.
    fn queue_flush(&mut self, myself: &ActorRef<SinkMsg>) {
        if self.flush_queued {
            return;
        }
        // Sending fails only once the sink has stopped, and `Finish` writes whatever is pending.
        self.flush_queued = myself.send_message(SinkMsg::Flush).is_ok();
    }

    /// Adds `events` to the pending write, and writes the events at once when they reach
    /// the limit per write.
    async fn collect_events(&mut self, events: Arc<[SessionEvent]>) {
        if events.is_empty() {
            return;
        }
        if self.pending.event_count + events.len() > self.max_items {
            self.write_pending().await;
        }
        self.pending.event_count += events.len();
        self.pending.events.push(events);
        if self.pending.event_count >= self.max_items {
            self.write_pending().await;
        }
    }

    /// Adds `deltas` to the pending write, and writes the deltas at once when they reach
    /// the limit per write.
    async fn collect_deltas(&mut self, mut deltas: Vec<BucketDelta>) {
        if self.pending.deltas.len() + deltas.len() > self.max_items {
            self.write_pending().await;
        }
        self.pending.deltas.append(&mut deltas);
        if self.pending.deltas.len() >= self.max_items {
            self.write_pending().await;
        }
    }

    /// Writes the pending events and the pending deltas, at the same time when there are
    /// both. They change different keys, so their order does not matter.
    async fn write_pending(&mut self) {
        let has_events = self.pending.event_count > 0;
        let has_deltas = !self.pending.deltas.is_empty();
        self.stats.event_writes += u64::from(has_events);
        self.stats.delta_writes += u64::from(has_deltas);
        let deltas = std::mem::take(&mut self.pending.deltas);
        match (has_events, has_deltas) {
            (true, true) => {
                let events = self.pending.take_events();
                self.microcloud.write_both(events, deltas, &mut self.stats).await;
            }
            (true, false) => {
                let events = self.pending.take_events();
                self.microcloud.publish(events, &mut self.stats).await;
            }
            (false, true) => self.microcloud.add_buckets(deltas, &mut self.stats).await,
            (false, false) => {}
        }
    }

    fn log_events(&mut self, events: &[SessionEvent]) {
        if let Some(log) = self.events.as_mut() {
            for event in events.iter() {
                match log.write(event) {
                    Ok(()) => self.stats.events_logged += 1,
                    Err(error) => {
                        self.stats.log_errors += 1;
                        // The first failure and then one in a thousand: a full disk fails every write.
                        if self.stats.log_errors % 1000 == 1 {
                            tracing::error!(error = %error, failures = self.stats.log_errors, "cannot write the session-event log");
                        }
                    }
                }
            }
        }
    }

    fn microcloud_failed(&mut self, operation: &str, error: &dyn std::fmt::Display) {
        self.stats.microcloud_errors += 1;
        if self.stats.microcloud_errors % 1000 == 1 {
            tracing::error!(operation, error = %error, failures = self.stats.microcloud_errors, "microcloud operation failed");
        }
    }

    async fn finish(&mut self) -> SinkReport {
        if let Some(log) = self.events.as_mut() {
            if let Err(error) = log.flush() {
                self.stats.log_errors += 1;
                tracing::error!(error = %error, "cannot flush the session-event log");
            }
        }
        self.microcloud.drain(&mut self.stats).await;
        let mut buckets = Vec::new();
        if !self.read_buckets {
            return SinkReport { stats: self.stats.clone(), buckets };
        }
        match self.microcloud.microcloud().bucket_epochs().await {
            Ok(epochs) => {
                for epoch in epochs {
                    match self.microcloud.microcloud().bucket_rows(epoch).await {
                        Ok(rows) => buckets.push((epoch, rows)),
                        Err(error) => self.microcloud_failed("bucket_rows", &error),
                    }
                }
            }
            Err(error) => self.microcloud_failed("bucket_epochs", &error),
        }
        SinkReport { stats: self.stats.clone(), buckets }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::{mpsc, Semaphore};

    use super::*;
    use crate::microcloud::{MicrocloudError, SubscriberState};
    use crate::pipeline::sink_buffer::tests::{deltas, events};
    use crate::session::TunnelKey;

    /// Maximum wait for the sink to reach a step of a test.
    const STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

    /// One call the sink made to the backend.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        /// `publish` with the `seq` of each event.
        Publish(Vec<u64>),
        /// `add_buckets_as` with this many deltas.
        AddBuckets(usize),
    }

    /// A backend that records every call, then waits for a permit of `gate` before it
    /// returns, so a test can hold the sink inside a write while it queues messages. Clones
    /// share the record and the gate.
    #[derive(Clone)]
    struct GatedMicrocloud {
        calls: Arc<Mutex<Vec<Call>>>,
        entered: mpsc::UnboundedSender<()>,
        gate: Arc<Semaphore>,
    }

    impl GatedMicrocloud {
        async fn record(&mut self, call: Call) {
            self.calls.lock().expect("calls lock").push(call);
            let _ = self.entered.send(());
            self.gate.acquire().await.expect("gate open").forget();
        }
    }

    impl Microcloud for GatedMicrocloud {
        async fn publish(&mut self, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
            self.record(Call::Publish(events.iter().map(|event| event.seq).collect())).await;
            Ok(())
        }

        async fn add_buckets(&mut self, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
            self.record(Call::AddBuckets(deltas.len())).await;
            Ok(())
        }

        async fn lookup_tunnel(&mut self, _key: TunnelKey) -> Result<Option<String>, MicrocloudError> {
            Ok(None)
        }

        async fn subscriber(&mut self, _imsi: &str) -> Result<Option<SubscriberState>, MicrocloudError> {
            Ok(None)
        }

        async fn bucket_epochs(&mut self) -> Result<Vec<u64>, MicrocloudError> {
            Ok(vec![300])
        }

        async fn bucket_rows(&mut self, _epoch: u64) -> Result<Vec<BucketDelta>, MicrocloudError> {
            Ok(deltas(1, 7))
        }
    }

    /// A sink over a gated backend, with the channel that reports each call it enters.
    struct GatedSink {
        sink: ActorRef<SinkMsg>,
        calls: Arc<Mutex<Vec<Call>>>,
        entered: mpsc::UnboundedReceiver<()>,
        gate: Arc<Semaphore>,
    }

    impl GatedSink {
        async fn start(capacity: usize, read_buckets: bool) -> GatedSink {
            let (entered_sender, entered) = mpsc::unbounded_channel();
            let calls = Arc::new(Mutex::new(Vec::new()));
            let gate = Arc::new(Semaphore::new(0));
            let microcloud = GatedMicrocloud { calls: calls.clone(), entered: entered_sender, gate: gate.clone() };
            let outage = OutageConfig { capacity, ..OutageConfig::default() };
            let args = SinkArgs { microcloud, events: None, outage, read_buckets };
            let (sink, _) = Actor::spawn(None, SinkActor::default(), args).await.expect("spawn the sink");
            GatedSink { sink, calls, entered, gate }
        }

        /// Waits until the sink is inside its next backend call.
        async fn wait_for_call(&mut self) {
            tokio::time::timeout(STEP_TIMEOUT, self.entered.recv())
                .await
                .expect("the sink made no backend call within 30 s")
                .expect("backend dropped");
        }

        fn send(&self, message: SinkMsg) {
            self.sink.send_message(message).expect("the sink is running");
        }

        /// Lets every later call through and returns the report of `Finish`.
        async fn finish(self) -> (Vec<Call>, SinkReport) {
            self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
            let reply = tokio::time::timeout(STEP_TIMEOUT, self.sink.call(SinkMsg::Finish, None))
                .await
                .expect("the sink did not finish within 30 s")
                .expect("the sink replied");
            let ractor::rpc::CallResult::Success(report) = reply else { panic!("the sink stopped before it replied") };
            self.sink.stop(None);
            let calls = self.calls.lock().expect("calls lock").clone();
            (calls, report)
        }
    }

    #[tokio::test]
    async fn queued_messages_share_one_write() {
        let mut gated = GatedSink::start(1000, false).await;
        gated.send(SinkMsg::Events(events(0, 2)));
        gated.wait_for_call().await;
        // The sink is inside publish([0, 1]): these messages queue behind it.
        for batch in 1..=5 {
            gated.send(SinkMsg::Events(events(batch * 2, 2)));
            gated.send(SinkMsg::Deltas(deltas(3, 1)));
        }
        gated.gate.add_permits(1);
        let (calls, report) = gated.finish().await;

        let expected = vec![Call::Publish(vec![0, 1]), Call::Publish((2..12).collect()), Call::AddBuckets(15)];
        assert_eq!(calls, expected);
        assert_eq!(report.stats.events_published, 12);
        assert_eq!(report.stats.deltas, 15);
        assert_eq!(report.stats.event_writes, 2);
        assert_eq!(report.stats.delta_writes, 1);
        assert!(report.buckets.is_empty(), "buckets read back although read_buckets is false");
    }

    #[tokio::test]
    async fn write_limit_splits_in_order() {
        // A capacity of 5 items limits each write to 5 events.
        let mut gated = GatedSink::start(5, true).await;
        gated.send(SinkMsg::Events(events(0, 1)));
        gated.wait_for_call().await;
        for first in [1, 4, 7] {
            gated.send(SinkMsg::Events(events(first, 3)));
        }
        gated.gate.add_permits(1);
        let (calls, report) = gated.finish().await;

        // [1, 2, 3] waits while [4, 5, 6] would pass the limit, so it is written alone.
        let expected = vec![
            Call::Publish(vec![0]),
            Call::Publish(vec![1, 2, 3]),
            Call::Publish(vec![4, 5, 6]),
            Call::Publish(vec![7, 8, 9]),
        ];
        assert_eq!(calls, expected);
        assert_eq!(report.stats.events_published, 10);
        assert_eq!(report.buckets.len(), 1, "bucket_rows of the one stored epoch");
        assert_eq!(report.buckets[0].1[0].packets, 7);
    }
}
