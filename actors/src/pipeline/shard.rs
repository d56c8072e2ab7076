//! The shard actor: user-plane work for the G-PDUs routed to it, in capture order with the
//! control events they depend on. With microcloud lookups on, it sends the unknown tunnel
//! keys of each data batch to the lookup actor, and stops where a held frame needs a
//! lookup result that has not arrived.

use std::collections::VecDeque;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::cluster::session_bridge::RemoteEvents;
use crate::ndpi::Classifier;
use crate::batch::{BatchPool, FrameBatch};
use crate::pipeline::lookup::{LookupMsg, LookupReply};
use crate::pipeline::records::{TrackedImsis, Tracking, WriterBatch};
use crate::pipeline::shard_work::{ShardSettings, ShardStats, ShardWork};
use crate::pipeline::sink::SinkMsg;
use crate::pipeline::writer::WriterMsg;
use crate::session::SessionEvent;

/// Messages of a shard actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum ShardMsg {
    /// G-PDUs and End Markers routed to this shard.
    Data {
        /// The frames, in capture order.
        batch: FrameBatch,
        /// Number of control batches that must be applied before these frames.
        control_needed: u64,
        /// Every frame for this shard up to this capture sequence number is in this or an earlier batch.
        through_seq: u64,
    },
    /// Events of one control batch (possibly none).
    Control {
        /// Number of the control batch.
        number: u64,
        /// Its events, in capture order.
        events: Arc<[SessionEvent]>,
    },
    /// Owners of the tunnel keys this shard asked the lookup actor about.
    Lookup(LookupReply),
    /// Session events of one control batch of another node, from the cluster bridge.
    Remote(Arc<RemoteEvents>),
    /// Replaces the IMSIs followed by trackers.
    Trackers(TrackedImsis),
    /// Ends the input and returns the counters once every earlier message is handled and
    /// every held frame is settled, which may wait for lookup results.
    Finish(RpcReplyPort<ShardStats>),
}

/// Start arguments of a shard actor.
pub struct ShardArgs {
    /// Shard number.
    pub index: usize,
    /// Settings.
    pub settings: ShardSettings,
    /// Tracked subscribers.
    pub tracking: Arc<Tracking>,
    /// IMSIs followed by trackers at start.
    pub trackers: TrackedImsis,
    /// Pcap writer, when subscribers are tracked.
    pub writer: Option<ActorRef<WriterMsg>>,
    /// Microcloud sink for bucket deltas.
    pub sink: ActorRef<SinkMsg>,
    /// Pool that receives emptied batches.
    pub pool: BatchPool,
    /// Lookup actor of the microcloud's tunnel index; `None` turns lookups off.
    pub lookup: Option<ActorRef<LookupMsg>>,
    /// True when the cluster bridge sends other nodes' session events.
    pub remote_events: bool,
}

/// State of a shard actor.
pub struct ShardState {
    work: ShardWork<Classifier>,
    args: ShardArgs,
    myself: ActorRef<ShardMsg>,
    control_done: u64,
    /// Data batches with their control dependency and progress, in arrival order.
    stash: VecDeque<(FrameBatch, u64, u64)>,
    /// Index of the next frame to process in the first stashed batch.
    cursor: usize,
    /// True while a held frame waits for a lookup result.
    waiting: bool,
    /// The reply port of `Finish`, kept while the end waits for lookup results.
    finishing: Option<RpcReplyPort<ShardStats>>,
    batches_since_deltas: u32,
    /// This shard's slot of the metrics registry.
    metrics: crate::metrics::registry::ShardSlot,
}

/// Data batches processed between two sends of bucket deltas to the sink (and at the end).
const DELTA_BATCHES: u32 = 64;

/// A shard actor.
pub struct ShardActor;

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(&self, myself: ActorRef<ShardMsg>, args: ShardArgs) -> Result<ShardState, ActorProcessingErr> {
        let classifier = Classifier::new()?;
        let mut work = ShardWork::new(args.settings.clone(), classifier, args.tracking.clone(), 1 + args.index);
        if args.lookup.is_some() {
            work.enable_lookups();
        }
        if args.remote_events {
            work.enable_remote_events();
        }
        work.set_trackers(args.trackers.clone());
        let metrics = crate::metrics::registry().shard_slot(args.index);
        Ok(ShardState {
            work,
            args,
            myself,
            control_done: 0,
            stash: VecDeque::new(),
            cursor: 0,
            waiting: false,
            finishing: None,
            batches_since_deltas: 0,
            metrics,
        })
    }

    async fn handle(&self, _myself: ActorRef<ShardMsg>, message: ShardMsg, state: &mut ShardState) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMsg::Data { batch, control_needed, through_seq } => {
                state.stash.push_back((batch, control_needed, through_seq));
                state.run_ready();
            }
            ShardMsg::Control { number, events } => {
                state.work.push_events(events);
                state.control_done = state.control_done.max(number);
                state.run_ready();
            }
            ShardMsg::Lookup(reply) => {
                state.work.apply_lookup_results(reply.keys, &reply.owners);
                state.waiting = false;
                state.run_ready();
                state.try_finish();
            }
            ShardMsg::Remote(batch) => {
                state.work.push_remote(batch);
            }
            ShardMsg::Trackers(imsis) => state.work.set_trackers(imsis),
            ShardMsg::Finish(reply) => {
                state.finishing = Some(reply);
                state.run_ready();
                state.try_finish();
            }
        }
        Ok(())
    }
}

impl ShardState {
    /// Processes stashed batches whose control dependency is met, in arrival order, until
    /// a held frame waits for a lookup result.
    fn run_ready(&mut self) {
        while !self.waiting {
            let Some((batch, needed, through_seq)) = self.stash.front() else { break };
            if *needed > self.control_done {
                break;
            }
            let through_seq = *through_seq;
            if let Some(index) = self.work.process(batch, self.cursor) {
                self.cursor = index;
                self.waiting = true;
                break;
            }
            self.cursor = 0;
            if let Some((batch, _, _)) = self.stash.pop_front() {
                self.args.pool.give_back(batch);
            }
            let progress = self.work.progress(through_seq);
            self.send_outputs(progress);
            self.send_lookup_requests();
        }
        self.send_lookup_requests();
        self.metrics.publish(self.work.stats());
    }

    /// Sends the queued lookup requests as one message, if there are any.
    fn send_lookup_requests(&mut self) {
        let Some(lookup) = &self.args.lookup else { return };
        if let Some(keys) = self.work.take_lookup_requests() {
            // Fails only when the lookup actor has stopped, which happens after every shard finished.
            let _ = lookup.send_message(LookupMsg::Resolve { keys, reply_to: self.myself.clone() });
        }
    }

    /// Replies to `Finish` once nothing waits for a lookup result.
    fn try_finish(&mut self) {
        if self.finishing.is_none() || self.waiting {
            return;
        }
        let Some(stats) = self.work.finish() else {
            self.waiting = true;
            self.send_lookup_requests();
            return;
        };
        self.send_outputs(u64::MAX);
        self.metrics.publish(stats.clone());
        if let Some(reply) = self.finishing.take() {
            let _ = reply.send(stats);
        }
    }

    fn send_outputs(&mut self, progress: u64) {
        if let Some(writer) = &self.args.writer {
            let mut records = std::mem::replace(&mut self.work.records, WriterBatch::new(1 + self.args.index));
            records.through_seq = progress;
            let _ = writer.send_message(WriterMsg::Records(records));
        }
        // Deltas of many batches are merged before they leave the shard: every flow that ends
        // adds to its (epoch, IMSI, protocol) row, so fewer, larger deltas reach the microcloud.
        self.batches_since_deltas += 1;
        if self.batches_since_deltas < DELTA_BATCHES && progress != u64::MAX {
            return;
        }
        self.batches_since_deltas = 0;
        let deltas = self.work.drain_deltas();
        if !deltas.is_empty() {
            let _ = self.args.sink.send_message(SinkMsg::Deltas(deltas));
        }
    }
}
