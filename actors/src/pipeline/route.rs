//! Sorts decoded frames into batches: GTP-C to the control actor, GTP-U to the shards.
//!
//! Ordering contract: every data batch records the number of the last control batch holding
//! a control frame routed before it (`control_needed`); the shard waits for that batch, and
//! applies control events by capture sequence number, so a shard never sees a G-PDU before
//! the signalling that precedes it in the capture. An open control batch is sent when it is
//! full, when the capture waits for a free batch, and on every full flush, so a shard never
//! waits for a batch that is not sent.

use ractor::ActorRef;

use crate::batch::{BatchPool, FrameBatch, FrameMeta, RawFrame};
use crate::pipeline::control::ControlMsg;
use crate::pipeline::shard::ShardMsg;
use crate::pipeline::reader::ReadFrame;
use crate::wire::{FragmentFrame, GtpFrame, InnerPacket};

/// GTP-U message type of a G-PDU (TS 29.281 §6.1).
pub const GTPU_G_PDU: u8 = 255;
/// GTP-U message type of an End Marker (TS 29.281 §7.3.2).
pub const GTPU_END_MARKER: u8 = 254;

/// Destinations of the capture actor's batches.
#[derive(Clone)]
pub struct Targets {
    /// The control-plane actor.
    pub control: ActorRef<ControlMsg>,
    /// Shard actors, indexed by shard number.
    pub shards: Vec<ActorRef<ShardMsg>>,
}

/// Open batches for every destination and the ordering counters.
pub struct Router {
    targets: Targets,
    pool: BatchPool,
    batch_size: usize,
    control: Option<FrameBatch>,
    shards: Vec<Option<FrameBatch>>,
    control_sent: u64,
    /// Capture sequence number of the last frame routed.
    pub seq: u64,
    /// Times the capture waited for a free batch (consumers behind).
    pub pool_waits: u64,
    /// Drop a GTP-U frame that finds no free batch instead of waiting for one (live
    /// capture). GTP-C frames always wait.
    pub drop_user_when_busy: bool,
    /// GTP-U frames dropped because no batch was free.
    pub user_dropped: u64,
    /// True from a GTP-U frame dropped for want of a batch until a batch is free again.
    overloaded: bool,
}

impl Router {
    /// Creates a router with no open batch.
    pub fn new(targets: Targets, pool: BatchPool, batch_size: usize) -> Router {
        let shard_count = targets.shards.len();
        Router {
            targets,
            pool,
            batch_size,
            control: None,
            shards: (0..shard_count).map(|_| None).collect(),
            control_sent: 0,
            seq: 0,
            pool_waits: 0,
            drop_user_when_busy: false,
            user_dropped: 0,
            overloaded: false,
        }
    }

    /// Adds a GTP-C frame to the control batch.
    pub fn route_control(&mut self, frame: &ReadFrame<'_>, gtp: &GtpFrame<'_>, payload: &[u8]) {
        let mut batch = self.control.take().unwrap_or_else(|| self.take_batch());
        push_frame(&mut batch, self.seq, frame, gtp, payload, 0, None);
        let full = batch.len() >= self.batch_size;
        self.control = Some(batch);
        if full {
            self.flush_control();
        }
    }

    /// Adds a GTP-U frame to the batch of shard `shard`, or drops and counts it when
    /// `drop_user_when_busy` is set and no batch is free.
    pub fn route_user(&mut self, shard: usize, frame: &ReadFrame<'_>, gtp: &GtpFrame<'_>, user: UserFields) {
        let batch = match self.shards[shard].take() {
            Some(batch) => Some(batch),
            None => self.take_user_batch(),
        };
        let Some(mut batch) = batch else {
            self.user_dropped += 1;
            return;
        };
        push_frame(&mut batch, self.seq, frame, gtp, user.payload, user.tpdu_offset, Some(&user));
        let full = batch.len() >= self.batch_size;
        self.shards[shard] = Some(batch);
        if full {
            self.flush_shard(shard);
        }
    }

    /// Sends the open control batch, if any.
    pub fn flush_control(&mut self) {
        let Some(batch) = self.control.take() else { return };
        self.control_sent += 1;
        let message = ControlMsg::Frames { batch, number: self.control_sent, through_seq: self.seq };
        let _ = self.targets.control.send_message(message);
    }

    /// Sends the open batch of one shard. It depends on every control frame routed so far,
    /// including those of the control batch still open, which the shard waits for.
    pub fn flush_shard(&mut self, shard: usize) {
        let control_open = self.control.as_ref().is_some_and(|b| !b.is_empty());
        let control_needed = self.control_sent + u64::from(control_open);
        let batch = self.shards[shard].take().unwrap_or_default();
        let message = ShardMsg::Data { batch, control_needed, through_seq: self.seq };
        let _ = self.targets.shards[shard].send_message(message);
    }

    /// Sends every open batch (and an empty one to idle shards) so every consumer's progress
    /// reaches the current sequence number.
    pub fn flush_all(&mut self) {
        if self.control.is_none() {
            self.control = Some(FrameBatch::default());
        }
        self.flush_control();
        for shard in 0..self.shards.len() {
            self.flush_shard(shard);
        }
    }

    /// Takes a batch for GTP-U frames: waits for one unless `drop_user_when_busy` is set.
    /// On the first drop of an overload it sends the open control batch, which the shards
    /// may need before they return batches. Later drops do not, so GTP-C frames still fill
    /// their batch instead of taking one batch each from the empty pool.
    fn take_user_batch(&mut self) -> Option<FrameBatch> {
        if !self.drop_user_when_busy {
            return Some(self.take_batch());
        }
        if let Some(batch) = self.pool.try_take() {
            self.overloaded = false;
            return Some(batch);
        }
        if !self.overloaded {
            self.overloaded = true;
            self.flush_control();
        }
        None
    }

    fn take_batch(&mut self) -> FrameBatch {
        if let Some(batch) = self.pool.try_take() {
            return batch;
        }
        self.pool_waits += 1;
        // Consumers may be waiting for the open control batch before they return batches.
        self.flush_control();
        self.pool.take_blocking().unwrap_or_default()
    }
}

/// GTP-U fields the router stores with a frame.
pub struct UserFields<'a> {
    /// The GTP-U message (UDP payload).
    pub payload: &'a [u8],
    /// Offset of the T-PDU in the payload.
    pub tpdu_offset: u16,
    /// Message type.
    pub message_type: u8,
    /// Header TEID.
    pub teid: u32,
    /// Inner packet of a G-PDU.
    pub inner: Option<InnerPacket>,
}

fn push_frame(
    batch: &mut FrameBatch,
    seq: u64,
    frame: &ReadFrame<'_>,
    gtp: &GtpFrame<'_>,
    payload: &[u8],
    tpdu_offset: u16,
    user: Option<&UserFields<'_>>,
) {
    let raw_first = batch.raw.len() as u32;
    let frame_start = batch.push_bytes(frame.data);
    let raw_count = match gtp.fragments {
        Some(fragments) => push_fragments(batch, fragments),
        None => {
            batch.raw.push(RawFrame { ts_us: frame.ts_us, orig_len: frame.orig_len, start: frame_start, len: frame.data.len() as u32 });
            1
        }
    };
    let payload_start = match offset_within(frame.data, payload) {
        Some(offset) if gtp.fragments.is_none() => frame_start + offset as u32,
        _ => batch.push_bytes(payload),
    };
    batch.frames.push(FrameMeta {
        seq,
        ts_us: frame.ts_us,
        src: gtp.outer.src,
        dst: gtp.outer.dst,
        payload_start,
        payload_len: payload.len() as u32,
        tpdu_offset,
        message_type: user.map_or(0, |u| u.message_type),
        teid: user.map_or(0, |u| u.teid),
        inner: user.and_then(|u| u.inner),
        raw_first,
        raw_count,
        link: frame.link,
    });
}

fn push_fragments(batch: &mut FrameBatch, fragments: &[FragmentFrame]) -> u16 {
    for fragment in fragments {
        let start = batch.push_bytes(&fragment.frame);
        let len = fragment.frame.len() as u32;
        batch.raw.push(RawFrame { ts_us: fragment.ts_us, orig_len: len, start, len });
    }
    fragments.len() as u16
}

/// Offset of `part` inside `whole` when `part` is a subslice of it.
fn offset_within(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// Returns the shard of a G-PDU (both directions of an inner flow meet in one shard) or of
/// another GTP-U message (by its tunnel).
pub fn shard_of(gtp: &GtpFrame<'_>, teid: u32, inner: Option<&InnerPacket>, shard_count: usize) -> usize {
    let hash = match inner {
        Some(inner) => inner.key.symmetric_hash(),
        None => tunnel_hash(gtp.outer.dst, teid),
    };
    (hash % shard_count.max(1) as u64) as usize
}

fn tunnel_hash(addr: std::net::IpAddr, teid: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    addr.hash(&mut hasher);
    teid.hash(&mut hasher);
    hasher.finish()
}
