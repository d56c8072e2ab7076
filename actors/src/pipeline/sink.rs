//! The sink actor: writes the session-event log and feeds the microcloud with events and
//! bucket deltas. Writes that fail while the microcloud is unavailable wait in an outage
//! buffer ([`crate::pipeline::sink_buffer`]) and are replayed when it is back.

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
    /// Flushes the event log, retries the outage buffer for at most its finish timeout and
    /// returns every bucket row per epoch, with the counters.
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
    /// Bucket rows per epoch, epochs ascending.
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
}

/// State of the sink actor.
pub struct SinkState<M> {
    microcloud: BufferedWriter<M>,
    events: Option<EventsWriter>,
    stats: SinkStats,
}

/// The sink actor, generic over the microcloud backend.
pub struct SinkActor<M>(PhantomData<fn() -> M>);

impl<M> Default for SinkActor<M> {
    fn default() -> Self {
        SinkActor(PhantomData)
    }
}

impl<M: Microcloud> Actor for SinkActor<M> {
    type Msg = SinkMsg;
    type State = SinkState<M>;
    type Arguments = SinkArgs<M>;

    async fn pre_start(&self, _myself: ActorRef<SinkMsg>, args: SinkArgs<M>) -> Result<SinkState<M>, ActorProcessingErr> {
        let mut stats = SinkStats::default();
        stats.outage.capacity = args.outage.capacity as u64;
        Ok(SinkState { microcloud: BufferedWriter::new(args.microcloud, args.outage), events: args.events, stats })
    }

    async fn handle(&self, _myself: ActorRef<SinkMsg>, message: SinkMsg, state: &mut SinkState<M>) -> Result<(), ActorProcessingErr> {
        match message {
            SinkMsg::Events(events) => state.events(events).await,
            SinkMsg::Deltas(deltas) => state.microcloud.add_buckets(deltas, &mut state.stats).await,
            SinkMsg::Finish(reply) => {
                let report = state.finish().await;
                let _ = reply.send(report);
            }
        }
        Ok(())
    }
}

impl<M: Microcloud> SinkState<M> {
    async fn events(&mut self, events: Arc<[SessionEvent]>) {
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
        self.microcloud.publish(events, &mut self.stats).await;
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
