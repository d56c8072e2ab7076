//! The work of a shard, apart from messaging: it applies session events in capture order,
//! attributes G-PDUs to subscribers through the tunnel table, keeps frames of unknown
//! tunnels for late binding (asking the microcloud about them when lookups are on), and
//! feeds flows and buckets.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;

use crate::bucket::{BucketDelta, Buckets};
use crate::flow::classify::Classify;
use crate::flow::{FlowTable, FlowTimeouts};
use crate::batch::{FrameBatch, FrameMeta};
use crate::pipeline::records::{TrackedImsis, Tracking, WriterBatch};
use crate::pipeline::route::{GTPU_END_MARKER, GTPU_G_PDU};
use crate::session::{EventKind, SessionEvent, TunnelKey, TunnelRole};
use crate::tunnel::late::{HeldFrame, LateBuffer};
use crate::cluster::session_bridge::{RemoteEvents, WireEvent};
use crate::tunnel::remote::{Decision, FrameMark, RemoteLookups, RemoteOwner, RemoteTunnels, SIGNALLED_CAPACITY};
use crate::tunnel::{TunnelOrigin, TunnelOwner, TunnelTable};
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
    /// G-PDUs and End Markers attributed through a tunnel learned from the microcloud.
    pub microcloud_bound: u64,
    /// Tunnel keys this shard asked the microcloud about.
    pub lookup_requests: u64,
    /// Owners found in the microcloud but not used, because this node's own session
    /// events name the tunnel.
    pub lookup_owners_ignored: u64,
    /// Session events applied.
    pub events_applied: u64,
    /// Session events of other nodes applied, received through the cluster.
    pub remote_events_applied: u64,
    /// Remote events whose IMSI is not 5 to 15 digits, ignored.
    pub remote_events_invalid: u64,
    /// G-PDUs and End Markers attributed through a tunnel of another node's session event.
    pub remote_event_bound: u64,
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
    /// IMSIs followed by trackers; replaced whole by [`ShardWork::set_trackers`].
    trackers: TrackedImsis,
    tunnels: TunnelTable,
    late: LateBuffer,
    flows: FlowTable<C>,
    classifier: C,
    buckets: Buckets,
    events: VecDeque<(Arc<[SessionEvent]>, usize)>,
    released: Vec<HeldFrame>,
    /// Microcloud lookups, when they are on.
    remote: Option<RemoteLookups>,
    /// Tunnels installed by other nodes' session events.
    remote_tunnels: RemoteTunnels,
    /// True when other nodes' session events arrive, so End Markers of unknown tunnels
    /// are held like G-PDUs.
    remote_events: bool,
    /// Remote events waiting for this shard's packet time to reach theirs, with the name
    /// of the sending node.
    remote_pending: VecDeque<(Arc<RemoteEvents>, Arc<str>, usize)>,
    /// Packet time of the newest frame processed, microseconds.
    clock_us: u64,
    /// Capture sequence number of the newest frame processed.
    last_seq: u64,
    /// Frames for the pcap writer, sent after each batch.
    pub records: WriterBatch,
    stats: ShardStats,
}

impl<C: Classify> ShardWork<C> {
    /// Creates an empty shard; `source` is its index for the pcap writer.
    pub fn new(settings: ShardSettings, classifier: C, tracking: Arc<Tracking>, source: usize) -> ShardWork<C> {
        let end_marker_grace_us = settings.end_marker_grace_us;
        ShardWork {
            tunnels: TunnelTable::new(settings.end_marker_grace_us),
            late: LateBuffer::new(settings.late_capacity),
            flows: FlowTable::new(settings.timeouts),
            settings,
            tracking,
            trackers: TrackedImsis::default(),
            classifier,
            buckets: Buckets::new(),
            events: VecDeque::new(),
            released: Vec::new(),
            remote: None,
            remote_tunnels: RemoteTunnels::new(end_marker_grace_us),
            remote_events: false,
            remote_pending: VecDeque::new(),
            clock_us: 0,
            last_seq: 0,
            records: WriterBatch::new(source),
            stats: ShardStats::default(),
        }
    }

    /// Turns on microcloud lookups for the tunnels of held frames. Without them, a held
    /// frame only waits for this node's own signalling.
    pub fn enable_lookups(&mut self) {
        self.remote = Some(RemoteLookups::new(SIGNALLED_CAPACITY, self.settings.late_grace_us));
    }

    /// Holds End Markers of unknown tunnels for other nodes' session events, as for
    /// microcloud lookups.
    pub fn enable_remote_events(&mut self) {
        self.remote_events = true;
    }

    /// Replaces the IMSIs followed by trackers; frames processed from now on follow it.
    pub fn set_trackers(&mut self, imsis: TrackedImsis) {
        self.trackers = imsis;
    }

    /// Queues the events of one control batch; they are applied in capture order.
    pub fn push_events(&mut self, events: Arc<[SessionEvent]>) {
        if let Some(remote) = self.remote.as_mut() {
            remote.note_events(&events);
        }
        for index in 0..events.len() {
            self.events.push_back((events.clone(), index));
        }
    }

    /// Queues the events of one control batch of another node. Each is applied once this
    /// shard's packet time reaches the event's time, so a remote delete does not take a
    /// tunnel away from frames this shard has not read yet. The packet clocks of the two
    /// sites are assumed to agree to within the late-binding grace period.
    pub fn push_remote(&mut self, batch: Arc<RemoteEvents>) {
        let node: Arc<str> = Arc::from(batch.node.as_str());
        for index in 0..batch.events.len() {
            self.remote_pending.push_back((batch.clone(), node.clone(), index));
        }
        self.apply_remote_until(self.clock_us);
    }

    /// Applies the queued remote events of packet time up to `now_us`. An added tunnel
    /// releases the frames held for it.
    fn apply_remote_until(&mut self, now_us: u64) {
        while let Some((batch, node, index)) = self.remote_pending.front() {
            if batch.events[*index].ts_us > now_us {
                break;
            }
            let (batch, node, index) = (batch.clone(), node.clone(), *index);
            self.remote_pending.pop_front();
            self.apply_remote_event(&batch.events[index], &node);
        }
    }

    /// Applies one remote event: removals first, which take a tunnel away only from the
    /// remote session that installed it, then additions.
    fn apply_remote_event(&mut self, event: &WireEvent, node: &Arc<str>) {
        let Some(imsi) = Digits::from_ascii(event.imsi.as_bytes()) else {
            self.stats.remote_events_invalid += 1;
            return;
        };
        for tunnel in &event.removed {
            let keep = (event.kind == EventKind::Move && tunnel.role == TunnelRole::Downlink).then_some(event.ts_us);
            self.remote_tunnels.remove(&tunnel.key(), node, event.session_id, keep);
        }
        for tunnel in &event.added {
            let key = tunnel.key();
            self.remote_tunnels.install(key, RemoteOwner { imsi, node: node.clone(), session_id: event.session_id });
            self.late.take_for(&key, &mut self.released);
        }
        if event.kind == EventKind::Detach && self.trackers.contains(&imsi) {
            // Ordered after the newest frame processed: the event's packet time has been reached.
            self.records.push_session_end(imsi, self.last_seq, event.ts_us);
        }
        self.stats.remote_events_applied += 1;
        self.process_released();
    }

    /// Processes the frames of one data batch from index `start`. Returns the index of the
    /// frame it stopped before when a held frame whose grace period ended waits for its
    /// lookup result, or `None` once the batch is done. Call again from that index after
    /// [`ShardWork::apply_lookup_results`].
    pub fn process(&mut self, batch: &FrameBatch, start: usize) -> Option<usize> {
        for (index, meta) in batch.frames.iter().enumerate().skip(start) {
            if !(self.apply_events_before(meta.seq) && self.release_expired(meta.ts_us)) {
                return Some(index);
            }
            self.clock_us = self.clock_us.max(meta.ts_us);
            self.apply_remote_until(self.clock_us);
            self.last_seq = self.last_seq.max(meta.seq);
            self.process_frame(batch, meta, false);
        }
        None
    }

    /// Takes the tunnel keys to ask the microcloud about, or `None` when there are none.
    pub fn take_lookup_requests(&mut self) -> Option<Vec<TunnelKey>> {
        self.remote.as_mut()?.take_requests()
    }

    /// Stores the lookup results for `keys`, one owner per key. The frames held for them
    /// are bound or given up when their grace period ends.
    pub fn apply_lookup_results(&mut self, keys: Vec<TunnelKey>, owners: &[Option<Digits>]) {
        let Some(remote) = self.remote.as_mut() else { return };
        for (key, owner) in keys.iter().zip(owners) {
            remote.on_result(*key, *owner, self.late.newest(key).is_some());
        }
        remote.recycle(keys);
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

    /// Ends the input: applies every queued event, binds or gives up every held frame and
    /// ends every flow. Returns `None`, having done nothing it cannot resume, while a held
    /// frame waits for its lookup result. Call again once the result has arrived.
    pub fn finish(&mut self) -> Option<ShardStats> {
        self.apply_remote_until(u64::MAX);
        if !(self.apply_events_before(u64::MAX) && self.expire_held(u64::MAX)) {
            return None;
        }
        let (flows, classifier, buckets) = (&mut self.flows, &mut self.classifier, &mut self.buckets);
        flows.flush(classifier, &mut |flow| buckets.add(&flow));
        Some(self.stats())
    }

    /// Current counters.
    pub fn stats(&self) -> ShardStats {
        let flows = self.flows.stats();
        let remote = self.remote.as_ref().map(|r| r.stats().clone()).unwrap_or_default();
        ShardStats {
            flows_created: flows.created,
            flows_expired: flows.expired_total(),
            tunnels: self.tunnels.len(),
            lookup_requests: remote.requests,
            lookup_owners_ignored: remote.owners_ignored,
            ..self.stats.clone()
        }
    }

    /// Applies the queued events that precede capture sequence number `seq`. Before each
    /// event, held frames whose grace period ended by the event's time are bound or given
    /// up, so an event binds only frames that were still waiting when it happened. Returns
    /// false, before the event, when a held frame waits for its lookup result.
    fn apply_events_before(&mut self, seq: u64) -> bool {
        while let Some((event_seq, ts_us)) = self.events.front().map(|(events, index)| (events[*index].seq, events[*index].ts_us)) {
            if event_seq >= seq {
                break;
            }
            if !self.release_expired(ts_us) {
                return false;
            }
            let Some((events, index)) = self.events.pop_front() else { break };
            self.apply_event(&events[index]);
        }
        true
    }

    fn apply_event(&mut self, event: &SessionEvent) {
        self.tunnels.apply(event);
        self.stats.events_applied += 1;
        for tunnel in event.added.iter().chain(&event.removed) {
            self.remote_tunnels.forget(&tunnel.key);
        }
        for tunnel in &event.added {
            self.late.take_for(&tunnel.key, &mut self.released);
            if let Some(remote) = self.remote.as_mut() {
                remote.forget_if_idle(tunnel.key, false);
            }
        }
        self.process_released();
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

    /// Forgets replaced endpoints and settles the held frames whose grace period ended by
    /// `now_us`. Returns false when one of them waits for its lookup result.
    fn release_expired(&mut self, now_us: u64) -> bool {
        self.tunnels.expire(now_us);
        self.remote_tunnels.expire(now_us);
        self.expire_held(now_us.saturating_sub(self.settings.late_grace_us))
    }

    /// Binds or gives up, oldest first, the held frames that arrived before `deadline_us`.
    /// Stops and returns false at the first one whose lookup result has not arrived.
    fn expire_held(&mut self, deadline_us: u64) -> bool {
        while let Some(oldest) = self.late.oldest_expired(deadline_us) {
            let key = oldest.key;
            let frame = oldest.meta().map_or(FrameMark { seq: 0, ts_us: 0 }, |m| FrameMark { seq: m.seq, ts_us: m.ts_us });
            let newest = self.late.newest(&key).map_or(frame, |(seq, ts_us)| FrameMark { seq, ts_us });
            let decision = match self.remote.as_mut() {
                Some(remote) => remote.at_deadline(key, frame, newest),
                None => Decision::GiveUp,
            };
            match decision {
                Decision::Wait => return false,
                Decision::GiveUp => self.give_up_oldest(),
                Decision::Bind(imsi) => self.bind_learned(key, imsi),
            }
        }
        true
    }

    fn give_up_oldest(&mut self) {
        let Some(frame) = self.late.pop_oldest() else { return };
        let key = frame.key;
        if let Some(meta) = frame.meta() {
            self.count_unknown(meta);
        }
        self.late.recycle(frame);
        self.forget_if_idle(key);
    }

    /// Installs a tunnel learned from the microcloud and attributes its held frames.
    fn bind_learned(&mut self, key: TunnelKey, imsi: Digits) {
        self.tunnels.learn(key, imsi);
        self.late.take_for(&key, &mut self.released);
        self.process_released();
    }

    fn forget_if_idle(&mut self, key: TunnelKey) {
        if let Some(remote) = self.remote.as_mut() {
            remote.forget_if_idle(key, self.late.newest(&key).is_some());
        }
    }

    fn count_unknown(&mut self, meta: &FrameMeta) {
        if meta.message_type == GTPU_END_MARKER {
            self.stats.end_marker_unknown_tunnel += 1;
        } else {
            self.stats.gpdu_unknown_tunnel += 1;
        }
    }

    fn process_frame(&mut self, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        let key = TunnelKey { addr: meta.dst, teid: meta.teid };
        match meta.message_type {
            GTPU_G_PDU => self.process_gpdu(key, batch, meta, late),
            GTPU_END_MARKER => self.process_end_marker(key, batch, meta, late),
            _ => {}
        }
    }

    fn process_gpdu(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        let owner = (meta.teid != 0).then(|| self.owner(&key)).flatten();
        let Some(imsi) = owner else { return self.hold(key, batch, meta, late) };
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

    /// Holds a frame of an unknown tunnel for late binding and queues a lookup of its key.
    /// A released frame that is still unknown, and a frame on TEID 0, count as unknown.
    fn hold(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        if late || self.settings.late_grace_us == 0 || meta.teid == 0 {
            return self.count_unknown(meta);
        }
        if let Some(evicted) = self.late.hold(key, batch, meta) {
            match evicted.meta() {
                Some(old) if old.message_type == GTPU_END_MARKER => self.stats.end_marker_unknown_tunnel += 1,
                _ => self.stats.gpdu_late_buffer_full += 1,
            }
            let evicted_key = evicted.key;
            self.late.recycle(evicted);
            self.forget_if_idle(evicted_key);
        }
        if let Some(remote) = self.remote.as_mut() {
            remote.on_hold(key, FrameMark { seq: meta.seq, ts_us: meta.ts_us });
        }
    }

    /// Attributes an End Marker on a live or just-replaced endpoint. With lookups on, an
    /// End Marker of an unknown tunnel is held like a G-PDU, so it is attributed whenever
    /// the microcloud names the tunnel's owner, whichever shard it reached.
    fn process_end_marker(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta, late: bool) {
        let Some(imsi) = self.end_marker_owner(&key) else {
            if self.remote.is_some() || self.remote_events {
                return self.hold(key, batch, meta, late);
            }
            return self.count_unknown(meta);
        };
        self.stats.end_marker_attributed += 1;
        self.write(imsi, batch, meta);
    }

    /// Returns the owner of the live tunnel `key`, from this node's tunnel table or else
    /// from the tunnels of remote events, and counts the binding by its source.
    fn owner(&mut self, key: &TunnelKey) -> Option<Digits> {
        let local = self.tunnels.lookup(key).copied();
        let remote = self.remote_tunnels.lookup(key).map(|owner| owner.imsi);
        self.count_source(local, remote)
    }

    /// Returns the owner that an End Marker on `key` is attributed to, as [`Self::owner`]
    /// does, just-replaced downlink endpoints included.
    fn end_marker_owner(&mut self, key: &TunnelKey) -> Option<Digits> {
        let local = self.tunnels.lookup_end_marker(key).copied();
        let remote = self.remote_tunnels.lookup_end_marker(key).map(|owner| owner.imsi);
        self.count_source(local, remote)
    }

    fn count_source(&mut self, local: Option<TunnelOwner>, remote: Option<Digits>) -> Option<Digits> {
        if let Some(owner) = local {
            if owner.origin == TunnelOrigin::Microcloud {
                self.stats.microcloud_bound += 1;
            }
            return Some(owner.imsi);
        }
        let imsi = remote?;
        self.stats.remote_event_bound += 1;
        Some(imsi)
    }

    fn write(&mut self, imsi: Digits, batch: &FrameBatch, meta: &FrameMeta) {
        let to_trackers = self.trackers.contains(&imsi);
        if to_trackers || self.tracking.is_tracked(&imsi) {
            self.records.push(imsi, to_trackers, batch, meta);
        }
    }
}

#[cfg(test)]
#[path = "shard_work_tests.rs"]
mod tests;
