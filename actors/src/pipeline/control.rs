//! The control-plane actor: runs the session table over GTP-C frames and sends what changed
//! to the shards, the pcap writer and the microcloud.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::cluster::session_bridge;
use crate::batch::{BatchPool, FrameBatch, FrameMeta};
use crate::pipeline::records::{TrackedImsis, Tracking, WriterBatch};
use crate::pipeline::shard::ShardMsg;
use crate::pipeline::sink::SinkMsg;
use crate::pipeline::writer::WriterMsg;
use crate::session::{Attribution, EventKind, MessageContext, SessionConfig, SessionEvent, SessionStats, SessionTable};
use crate::wire::control::Digits;
use crate::wire::{parse_control, DecodeError};

/// Messages of the control-plane actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum ControlMsg {
    /// GTP-C frames in capture order.
    Frames {
        /// The frames.
        batch: FrameBatch,
        /// Number of this control batch, from 1; shards wait for it before dependent data.
        number: u64,
        /// Every frame up to this capture sequence number has been routed.
        through_seq: u64,
    },
    /// Replaces the IMSIs followed by trackers.
    Trackers(TrackedImsis),
    /// Returns the counters once every earlier message is handled.
    Finish(RpcReplyPort<ControlStats>),
}

/// Counters of the control-plane actor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ControlStats {
    /// GTP-C frames handled.
    pub frames: u64,
    /// GTP-C messages decoded (a piggybacked message counts separately).
    pub messages: u64,
    /// Frames attributed to a subscriber.
    pub attributed: u64,
    /// Echo and other path management frames.
    pub path_management: u64,
    /// Frames of sessions not known (created before the capture started, or never seen).
    pub unknown_session: u64,
    /// Messages that failed to decode, by reason.
    pub malformed: BTreeMap<&'static str, u64>,
    /// Messages decoded with a recoverable anomaly.
    pub anomalies: u64,
    /// Session events emitted.
    pub events: u64,
    /// Session events broadcast to the cluster's session-events group.
    pub events_broadcast: u64,
    /// Session table counters.
    #[serde(flatten)]
    pub sessions: SessionStatsView,
    /// Live sessions at the end.
    pub live_sessions: usize,
    /// Subscribers with a live session at the end.
    pub live_subscribers: usize,
    /// Distinct subscribers seen in GTP-C messages, rejected ones included.
    pub subscribers_seen: usize,
    /// Requests still waiting for their response at the end.
    pub requests_pending: usize,
    /// Requests dropped after waiting longer than the request timeout with no response.
    pub requests_unanswered: u64,
}

/// Serializable copy of [`SessionStats`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionStatsView {
    /// Requests stored for pairing.
    pub requests: u64,
    /// Responses paired with their request.
    pub responses_paired: u64,
    /// Responses with no outstanding request.
    pub responses_unpaired: u64,
    /// Paired responses whose cause rejected the request.
    pub responses_rejected: u64,
    /// Sessions created.
    pub sessions_created: u64,
    /// Sessions deleted.
    pub sessions_deleted: u64,
    /// Sessions picked up without their create.
    pub sessions_picked_up: u64,
    /// Rejected creates.
    pub creates_rejected: u64,
}

impl From<SessionStats> for SessionStatsView {
    fn from(s: SessionStats) -> Self {
        SessionStatsView {
            requests: s.requests,
            responses_paired: s.responses_paired,
            responses_unpaired: s.responses_unpaired,
            responses_rejected: s.responses_rejected,
            sessions_created: s.sessions_created,
            sessions_deleted: s.sessions_deleted,
            sessions_picked_up: s.sessions_picked_up,
            creates_rejected: s.creates_rejected,
        }
    }
}

/// Start arguments of the control-plane actor.
pub struct ControlArgs {
    /// Session table settings.
    pub config: SessionConfig,
    /// Shards that receive every event.
    pub shards: Vec<ActorRef<ShardMsg>>,
    /// Pcap writer, when subscribers are tracked.
    pub writer: Option<ActorRef<WriterMsg>>,
    /// Event log and microcloud.
    pub sink: ActorRef<SinkMsg>,
    /// Tracked subscribers.
    pub tracking: Arc<Tracking>,
    /// IMSIs followed by trackers at start.
    pub trackers: TrackedImsis,
    /// Pool that receives emptied batches.
    pub pool: BatchPool,
    /// Full name of this cluster node, when the events of each batch are broadcast to the
    /// other probes.
    pub broadcast_as: Option<String>,
}

/// State of the control-plane actor.
pub struct ControlState {
    args: ControlArgs,
    table: SessionTable,
    stats: ControlStats,
    malformed: [u64; DecodeError::COUNT],
    seen: rustc_hash::FxHashSet<Digits>,
    trackers: TrackedImsis,
}

/// The control-plane actor.
pub struct ControlActor;

impl Actor for ControlActor {
    type Msg = ControlMsg;
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(&self, _myself: ActorRef<ControlMsg>, args: ControlArgs) -> Result<ControlState, ActorProcessingErr> {
        let table = SessionTable::new(args.config.clone());
        let trackers = args.trackers.clone();
        Ok(ControlState { args, table, stats: ControlStats::default(), malformed: [0; DecodeError::COUNT], seen: Default::default(), trackers })
    }

    async fn handle(&self, _myself: ActorRef<ControlMsg>, message: ControlMsg, state: &mut ControlState) -> Result<(), ActorProcessingErr> {
        match message {
            ControlMsg::Frames { batch, number, through_seq } => state.handle_batch(batch, number, through_seq),
            ControlMsg::Trackers(imsis) => state.trackers = imsis,
            ControlMsg::Finish(reply) => {
                let _ = reply.send(state.finish());
            }
        }
        Ok(())
    }
}

impl ControlState {
    fn handle_batch(&mut self, batch: FrameBatch, number: u64, through_seq: u64) {
        let mut events = Vec::new();
        let mut records = WriterBatch::new(0);
        for meta in &batch.frames {
            let first_event = events.len();
            if let Some(imsi) = self.handle_frame(&batch, meta, &mut events) {
                self.seen.insert(imsi);
                let to_trackers = self.trackers.contains(&imsi);
                if to_trackers || self.args.tracking.is_tracked(&imsi) {
                    records.push(imsi, to_trackers, &batch, meta);
                }
            }
            self.push_session_ends(&events[first_event..], meta.seq, &mut records);
        }
        self.stats.events += events.len() as u64;
        let events: Arc<[SessionEvent]> = events.into();
        for shard in &self.args.shards {
            let _ = shard.send_message(ShardMsg::Control { number, events: events.clone() });
        }
        if let Some(node) = &self.args.broadcast_as {
            session_bridge::publish(node, &events);
            self.stats.events_broadcast += events.len() as u64;
        }
        if !events.is_empty() {
            let _ = self.args.sink.send_message(SinkMsg::Events(events));
        }
        if let Some(writer) = &self.args.writer {
            records.through_seq = through_seq;
            let _ = writer.send_message(WriterMsg::Records(records));
        }
        self.args.pool.give_back(batch);
        crate::metrics::registry().publish_control(self.finish());
    }

    /// Marks the end of every tracked session that `events` delete, after the frame that
    /// deleted it.
    fn push_session_ends(&self, events: &[SessionEvent], seq: u64, records: &mut WriterBatch) {
        if self.trackers.is_empty() {
            return;
        }
        for event in events.iter().filter(|event| event.kind == EventKind::Detach) {
            let Some(imsi) = Digits::from_ascii(event.imsi.as_bytes()) else { continue };
            if self.trackers.contains(&imsi) {
                records.push_session_end(imsi, seq, event.ts_us);
            }
        }
    }

    /// Runs every message of one frame through the session table; returns its subscriber.
    fn handle_frame(&mut self, batch: &FrameBatch, meta: &FrameMeta, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        self.stats.frames += 1;
        let payload = batch.payload(meta);
        let ctx = MessageContext { seq: meta.seq, ts_us: meta.ts_us, src: meta.src, dst: meta.dst };
        let mut subscriber = None;
        let mut attribution = Attribution::UnknownSession;
        for decoded in parse_control(payload) {
            let msg = match decoded {
                Ok(msg) => msg,
                Err(error) => {
                    self.malformed[error.index()] += 1;
                    break;
                }
            };
            self.stats.messages += 1;
            if msg.anomalies.0 != 0 {
                self.stats.anomalies += 1;
            }
            let outcome = self.table.handle(&msg, ctx, events);
            if let Attribution::Subscriber(imsi) = outcome {
                subscriber = subscriber.or(Some(imsi));
            }
            if attribution == Attribution::UnknownSession {
                attribution = outcome;
            }
        }
        match attribution {
            Attribution::Subscriber(_) => self.stats.attributed += 1,
            Attribution::PathManagement => self.stats.path_management += 1,
            Attribution::UnknownSession => self.stats.unknown_session += 1,
        }
        subscriber
    }

    fn finish(&mut self) -> ControlStats {
        let mut stats = self.stats.clone();
        for (index, &count) in self.malformed.iter().enumerate() {
            if let (Some(error), true) = (DecodeError::from_index(index), count > 0) {
                stats.malformed.insert(error.reason(), count);
            }
        }
        stats.sessions = self.table.stats().into();
        stats.live_sessions = self.table.session_count();
        stats.live_subscribers = self.table.subscriber_count();
        stats.subscribers_seen = self.seen.len();
        (stats.requests_pending, stats.requests_unanswered) = self.table.pending_counts();
        stats
    }
}
