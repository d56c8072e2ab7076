//! The work of a shard, apart from messaging: it applies session events in capture order,
//! attributes G-PDUs to subscribers through the tunnel table, keeps frames of unknown
//! tunnels for late binding, and feeds flows and buckets.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;

use crate::bucket::{BucketDelta, Buckets};
use crate::flow::classify::Classify;
use crate::flow::{FlowTable, FlowTimeouts};
use crate::batch::{FrameBatch, FrameMeta};
use crate::pipeline::records::{Tracking, WriterBatch};
use crate::pipeline::route::{GTPU_END_MARKER, GTPU_G_PDU};
use crate::session::{SessionEvent, TunnelKey};
use crate::tunnel::late::{HeldFrame, LateBuffer};
use crate::tunnel::TunnelTable;
use crate::wire::control::Digits;

/// Settings of a shard.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// Flow timeouts.
    pub timeouts: FlowTimeouts,
    /// How long a G-PDU of an unknown tunnel waits for its signalling, microseconds of packet time.
    pub late_grace_us: u64,
    /// Maximum frames waiting for late binding.
    pub late_capacity: usize,
    /// How long a replaced downlink endpoint still attributes End Markers, microseconds.
    pub end_marker_grace_us: u64,
}

/// Counters of one shard.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardStats {
    /// G-PDUs attributed to a subscriber.
    pub gpdu_attributed: u64,
    /// Inner IP bytes of attributed G-PDUs.
    pub gpdu_attributed_bytes: u64,
    /// G-PDUs attributed after waiting for their signalling.
    pub gpdu_late_bound: u64,
    /// G-PDUs whose tunnel stayed unknown past the grace period.
    pub gpdu_unknown_tunnel: u64,
    /// G-PDUs dropped from a full late-binding buffer, unattributed.
    pub gpdu_late_buffer_full: u64,
    /// End Markers attributed (live or just-replaced downlink endpoint).
    pub end_marker_attributed: u64,
    /// End Markers on an unknown tunnel.
    pub end_marker_unknown_tunnel: u64,
    /// Session events applied.
    pub events_applied: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows ended (all reasons).
    pub flows_expired: u64,
    /// Live tunnel keys at the end.
    pub tunnels: usize,
}

/// The state of one shard.
pub struct ShardWork<C: Classify> {
    settings: ShardSettings,
    tracking: Arc<Tracking>,
    tunnels: TunnelTable,
    late: LateBuffer,
    flows: FlowTable<C>,
    classifier: C,
    buckets: Buckets,
    events: VecDeque<(Arc<[SessionEvent]>, usize)>,
    released: Vec<HeldFrame>,
    /// Frames for the pcap writer, sent after each batch.
    pub records: WriterBatch,
    stats: ShardStats,
}

impl<C: Classify> ShardWork<C> {
    /// Creates an empty shard; `source` is its index for the pcap writer.
    pub fn new(settings: ShardSettings, classifier: C, tracking: Arc<Tracking>, source: usize) -> ShardWork<C> {
        ShardWork {
            tunnels: TunnelTable::new(settings.end_marker_grace_us),
            late: LateBuffer::new(settings.late_capacity),
            flows: FlowTable::new(settings.timeouts),
            settings,
            tracking,
            classifier,
            buckets: Buckets::new(),
            events: VecDeque::new(),
            released: Vec::new(),
            records: WriterBatch::new(source),
            stats: ShardStats::default(),
        }
    }

    /// Queues the events of one control batch; they are applied in capture order.
    pub fn push_events(&mut self, events: Arc<[SessionEvent]>) {
        for index in 0..events.len() {
            self.events.push_back((events.clone(), index));
        }
    }

    /// Processes the frames of one data batch.
    pub fn process(&mut self, batch: &FrameBatch) {
        for meta in &batch.frames {
            self.apply_events_before(meta.seq);
            self.release_expired(meta.ts_us);
            self.process_frame(batch, meta, false);
        }
    }

    /// Returns the highest sequence number up to which this shard's output is final. A held
    /// frame may still be attributed, so progress stops just before the oldest one.
    pub fn progress(&self, through_seq: u64) -> u64 {
        self.late.oldest_seq().map_or(through_seq, |oldest| through_seq.min(oldest.saturating_sub(1)))
    }

    /// Returns the bucket changes since the last call.
    pub fn drain_deltas(&mut self) -> Vec<BucketDelta> {
        self.buckets.drain_deltas()
    }

    /// Ends the input: applies every queued event, gives up on held frames, ends every flow.
    pub fn finish(&mut self) -> ShardStats {
        self.apply_events_before(u64::MAX);
        while let Some(frame) = self.late.pop_expired(u64::MAX) {
            self.stats.gpdu_unknown_tunnel += 1;
            self.late.recycle(frame);
        }
        let (flows, classifier, buckets) = (&mut self.flows, &mut self.classifier, &mut self.buckets);
        flows.flush(classifier, &mut |flow| buckets.add(&flow));
        self.stats()
    }

    /// Current counters.
    pub fn stats(&self) -> ShardStats {
        let flows = self.flows.stats();
        ShardStats { flows_created: flows.created, flows_expired: flows.expired_total(), tunnels: self.tunnels.len(), ..self.stats.clone() }
    }

    /// Applies the queued events that precede capture sequence number `seq`. Before each
    /// event, held frames whose grace period ended by the event's time are given up, so an
    /// event binds only frames that were still waiting when it happened.
    fn apply_events_before(&mut self, seq: u64) {
        while self.events.front().is_some_and(|(events, index)| events[*index].seq < seq) {
            let Some((events, index)) = self.events.pop_front() else { break };
            let event = &events[index];
            self.release_expired(event.ts_us);
            self.tunnels.apply(event);
            self.stats.events_applied += 1;
            for tunnel in &event.added {
                self.late.take_for(&tunnel.key, &mut self.released);
            }
            self.process_released();
        }
    }

    fn process_released(&mut self) {
        let mut released = std::mem::take(&mut self.released);
        for frame in released.drain(..) {
            if let Some(meta) = frame.meta() {
                self.process_frame(&frame.batch, meta, true);
            }
            self.late.recycle(frame);
        }
        self.released = released;
    }

    fn release_expired(&mut self, now_us: u64) {
        self.tunnels.expire(now_us);
        let deadline = now_us.saturating_sub(self.settings.late_grace_us);
        while let Some(frame) = self.late.pop_expired(deadline) {
            self.stats.gpdu_unknown_tunnel += 1;
            self.late.recycle(frame);
        }
    }

    fn process_frame(&mut self, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        let key = TunnelKey { addr: meta.dst, teid: meta.teid };
        match meta.message_type {
            GTPU_G_PDU => self.process_gpdu(key, batch, meta, late),
            GTPU_END_MARKER => self.process_end_marker(key, batch, meta),
            _ => {}
        }
    }

    fn process_gpdu(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        let owner = (meta.teid != 0).then(|| self.tunnels.lookup(&key)).flatten();
        let Some(imsi) = owner.map(|o| o.imsi) else { return self.hold(key, batch, meta, late) };
        if late {
            self.stats.gpdu_late_bound += 1;
        }
        self.stats.gpdu_attributed += 1;
        if let Some(inner) = meta.inner.as_ref() {
            self.stats.gpdu_attributed_bytes += u64::from(inner.ip_len);
            let (flows, classifier, buckets) = (&mut self.flows, &mut self.classifier, &mut self.buckets);
            flows.packet(classifier, imsi, inner, batch.tpdu(meta), meta.ts_us, &mut |flow| buckets.add(&flow));
        }
        self.write(imsi, batch, meta);
    }

    fn hold(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        if late || self.settings.late_grace_us == 0 || meta.teid == 0 {
            self.stats.gpdu_unknown_tunnel += 1;
            return;
        }
        if let Some(evicted) = self.late.hold(key, batch, meta) {
            self.stats.gpdu_late_buffer_full += 1;
            self.late.recycle(evicted);
        }
    }

    fn process_end_marker(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta) {
        let Some(imsi) = self.tunnels.lookup_end_marker(&key).map(|o| o.imsi) else {
            self.stats.end_marker_unknown_tunnel += 1;
            return;
        };
        self.stats.end_marker_attributed += 1;
        self.write(imsi, batch, meta);
    }

    fn write(&mut self, imsi: Digits, batch: &FrameBatch, meta: &FrameMeta) {
        if self.tracking.is_tracked(&imsi) {
            self.records.push(imsi, batch, meta);
        }
    }
}
