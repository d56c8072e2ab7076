//! The shard actor: user-plane work for the G-PDUs routed to it, in capture order with the
//! control events they depend on.

use std::collections::VecDeque;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::ndpi::Classifier;
use crate::batch::{BatchPool, FrameBatch};
use crate::pipeline::records::{Tracking, WriterBatch};
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
    /// Ends the input and returns the counters once every earlier message is handled.
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
    /// Pcap writer, when subscribers are tracked.
    pub writer: Option<ActorRef<WriterMsg>>,
    /// Microcloud sink for bucket deltas.
    pub sink: ActorRef<SinkMsg>,
    /// Pool that receives emptied batches.
    pub pool: BatchPool,
}

/// State of a shard actor.
pub struct ShardState {
    work: ShardWork<Classifier>,
    args: ShardArgs,
    control_done: u64,
    stash: VecDeque<(FrameBatch, u64, u64)>,
    batches_since_deltas: u32,
}

/// Data batches processed between two sends of bucket deltas to the sink (and at the end).
const DELTA_BATCHES: u32 = 64;

/// A shard actor.
pub struct ShardActor;

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(&self, _myself: ActorRef<ShardMsg>, args: ShardArgs) -> Result<ShardState, ActorProcessingErr> {
        let classifier = Classifier::new()?;
        let work = ShardWork::new(args.settings.clone(), classifier, args.tracking.clone(), 1 + args.index);
        Ok(ShardState { work, args, control_done: 0, stash: VecDeque::new(), batches_since_deltas: 0 })
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
            ShardMsg::Finish(reply) => {
                state.run_ready();
                let stats = state.work.finish();
                state.send_outputs(u64::MAX);
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }
}

impl ShardState {
    /// Processes stashed batches whose control dependency is met, in arrival order.
    fn run_ready(&mut self) {
        while self.stash.front().is_some_and(|(_, needed, _)| *needed <= self.control_done) {
            let Some((batch, _, through_seq)) = self.stash.pop_front() else { break };
            self.work.process(&batch);
            self.args.pool.give_back(batch);
            let progress = self.work.progress(through_seq);
            self.send_outputs(progress);
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
