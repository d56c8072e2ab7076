//! The flow table: per-subscriber flows, their counters, classification and timeouts.

use rustc_hash::FxHashMap;

use crate::flow::classify::Classify;
use crate::flow::deadline::{Deadline, DeadlineQueue};
use crate::flow::record::{ExpiredFlow, ExpiryReason, FlowStats, FlowTimeouts};
use crate::wire::control::Digits;
use crate::wire::{FlowKey, InnerPacket};

/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;
/// TCP FIN flag bit.
const TCP_FIN: u8 = 0x01;
/// TCP RST flag bit.
const TCP_RST: u8 = 0x04;

/// Identity of a flow: the subscriber and the canonical inner 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowId {
    imsi: Digits,
    key: FlowKey,
}

/// TCP teardown seen so far.
#[derive(Debug, Clone, Copy, Default)]
struct TcpClose {
    fin_forward: bool,
    fin_reverse: bool,
    /// Packet time of the RST or of the FIN that completed the pair, and which one it was.
    closed: Option<(u64, ExpiryReason)>,
}

impl TcpClose {
    /// Records the flags of one packet. Returns true when this packet closed the flow.
    fn update(&mut self, flags: u8, forward: bool, ts_us: u64) -> bool {
        if self.closed.is_some() {
            return false;
        }
        if flags & TCP_FIN != 0 {
            if forward {
                self.fin_forward = true;
            } else {
                self.fin_reverse = true;
            }
        }
        if flags & TCP_RST != 0 {
            self.closed = Some((ts_us, ExpiryReason::Rst));
        } else if self.fin_forward && self.fin_reverse {
            self.closed = Some((ts_us, ExpiryReason::Fin));
        }
        self.closed.is_some()
    }
}

/// One live flow. `S` is the classifier's per-flow state.
struct Flow<S> {
    id: FlowId,
    state: S,
    /// True once the classifier reported a final result; later packets are not fed.
    classified: bool,
    first_us: u64,
    last_us: u64,
    packets: u64,
    bytes: u64,
    tcp: TcpClose,
    /// Time of this flow's current entry in the deadline queue.
    queued_us: u64,
}

impl<S> Flow<S> {
    fn new(id: FlowId, state: S, ts_us: u64) -> Self {
        Flow {
            id,
            state,
            classified: false,
            first_us: ts_us,
            last_us: ts_us,
            packets: 0,
            bytes: 0,
            tcp: TcpClose::default(),
            queued_us: 0,
        }
    }

    fn count(&mut self, ip_len: u32, ts_us: u64) {
        self.packets += 1;
        self.bytes += u64::from(ip_len);
        self.first_us = self.first_us.min(ts_us);
        self.last_us = self.last_us.max(ts_us);
    }

    /// Returns the last packet time at which the flow is still alive, and the reason it
    /// ends if no packet comes before then. A closed flow ends at the earliest of its
    /// linger, idle and active deadlines, with the close reason on a tie.
    fn deadline(&self, timeouts: &FlowTimeouts) -> (u64, ExpiryReason) {
        let mut deadline = (
            self.last_us.saturating_add(timeouts.idle_us),
            ExpiryReason::Idle,
        );
        if let Some(active_us) = timeouts.active_us {
            let at_us = self.first_us.saturating_add(active_us);
            if at_us < deadline.0 {
                deadline = (at_us, ExpiryReason::Active);
            }
        }
        if let Some((closed_us, reason)) = self.tcp.closed {
            let at_us = closed_us.saturating_add(timeouts.close_linger_us);
            if at_us <= deadline.0 {
                deadline = (at_us, reason);
            }
        }
        deadline
    }
}

/// A storage slot. The generation changes each time the slot's flow ends, so deadline
/// entries pushed for an earlier flow in the same slot are recognised as stale.
struct Slot<S> {
    generation: u32,
    flow: Option<Flow<S>>,
}

/// Flows keyed by (IMSI, canonical inner 5-tuple), with idle, active and TCP-close
/// timeouts on the packet clock.
///
/// Flows live in a slab of reusable slots. A hash map finds the slot of a flow, and a
/// deadline queue finds the flows to expire without scanning the table.
pub struct FlowTable<C: Classify> {
    timeouts: FlowTimeouts,
    index: FxHashMap<FlowId, u32>,
    slots: Vec<Slot<C::State>>,
    free: Vec<u32>,
    deadlines: DeadlineQueue,
    /// Latest packet time seen, microseconds. Packets that arrive out of order never move
    /// it back.
    clock_us: u64,
    stats: FlowStats,
}

impl<C: Classify> FlowTable<C> {
    /// Creates an empty table.
    pub fn new(timeouts: FlowTimeouts) -> Self {
        Self::with_capacity(timeouts, 0)
    }

    /// Creates an empty table with room for `flows` flows before it allocates.
    pub fn with_capacity(timeouts: FlowTimeouts, flows: usize) -> Self {
        let mut index = FxHashMap::default();
        index.reserve(flows);
        FlowTable {
            timeouts,
            index,
            slots: Vec::with_capacity(flows),
            free: Vec::with_capacity(flows),
            deadlines: DeadlineQueue::with_capacity(flows),
            clock_us: 0,
            stats: FlowStats::default(),
        }
    }

    /// Counts one inner packet of subscriber `imsi` seen at `ts_us` microseconds.
    ///
    /// First expires every flow whose deadline passed before `ts_us`, so a packet for a
    /// flow that timed out starts a new flow. Then updates or creates the flow, feeds
    /// `ip_bytes` (the inner IP packet) to the classifier until it reports a final result,
    /// and records TCP FIN and RST. Ended flows are passed to `expired`.
    pub fn packet(
        &mut self,
        classifier: &mut C,
        imsi: Digits,
        inner: &InnerPacket,
        ip_bytes: &[u8],
        ts_us: u64,
        expired: &mut impl FnMut(ExpiredFlow),
    ) {
        self.expire(ts_us, classifier, expired);
        let canonical = inner.key.canonical();
        let id = FlowId {
            imsi,
            key: canonical,
        };
        let slot = match self.index.get(&id) {
            Some(&slot) => slot,
            None => self.create(classifier, id, ts_us),
        };
        let Some(flow) = self.slots[slot as usize].flow.as_mut() else {
            debug_assert!(false, "flow index points to an empty slot");
            return;
        };
        flow.count(inner.ip_len, ts_us);
        if !flow.classified {
            flow.classified = classifier.feed(&mut flow.state, ip_bytes, ts_us);
        }
        let forward = inner.key == canonical;
        if inner.key.protocol == IPPROTO_TCP && flow.tcp.update(inner.tcp_flags, forward, ts_us) {
            self.requeue_if_earlier(slot);
        }
    }

    /// Expires every flow whose deadline is before `now_us` (packet time, microseconds).
    pub fn expire(
        &mut self,
        now_us: u64,
        classifier: &mut C,
        expired: &mut impl FnMut(ExpiredFlow),
    ) {
        self.clock_us = self.clock_us.max(now_us);
        while let Some(entry) = self.deadlines.pop_due(self.clock_us) {
            self.revalidate(entry, classifier, expired);
        }
    }

    /// Ends every flow with [`ExpiryReason::Flush`] (end of input, shutdown).
    pub fn flush(&mut self, classifier: &mut C, expired: &mut impl FnMut(ExpiredFlow)) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].flow.is_some() {
                self.end(slot as u32, ExpiryReason::Flush, classifier, expired);
            }
        }
        self.deadlines.clear();
    }

    /// Number of live flows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no flow is live.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Counters, with `active` set to the current number of flows.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            active: self.index.len() as u64,
            ..self.stats
        }
    }

    /// Number of entries in the deadline queue, stale ones included.
    pub fn queued_deadlines(&self) -> usize {
        self.deadlines.len()
    }

    /// Latest packet time seen, microseconds.
    pub fn clock_us(&self) -> u64 {
        self.clock_us
    }

    fn create(&mut self, classifier: &mut C, id: FlowId, ts_us: u64) -> u32 {
        let mut flow = Flow::new(id, classifier.start(), ts_us);
        let (at_us, _) = flow.deadline(&self.timeouts);
        flow.queued_us = at_us;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].flow = Some(flow);
                slot
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    flow: Some(flow),
                });
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[slot as usize].generation;
        self.deadlines.push(Deadline {
            at_us,
            slot,
            generation,
        });
        self.index.insert(id, slot);
        self.stats.created += 1;
        slot
    }

    /// Pushes a new deadline entry when the flow's deadline moved before its queued one
    /// (a TCP close shortens it).
    fn requeue_if_earlier(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        let Some(flow) = entry.flow.as_mut() else {
            return;
        };
        let (at_us, _) = flow.deadline(&self.timeouts);
        if at_us < flow.queued_us {
            flow.queued_us = at_us;
            self.deadlines.push(Deadline {
                at_us,
                slot,
                generation: entry.generation,
            });
        }
    }

    /// Handles a due queue entry: drops it if stale, expires its flow if the real
    /// deadline passed, or queues the flow again at its real deadline.
    fn revalidate(
        &mut self,
        entry: Deadline,
        classifier: &mut C,
        expired: &mut impl FnMut(ExpiredFlow),
    ) {
        let slot = &mut self.slots[entry.slot as usize];
        if slot.generation != entry.generation {
            return;
        }
        let Some(flow) = slot.flow.as_mut() else {
            return;
        };
        if flow.queued_us != entry.at_us {
            // An earlier entry replaced this one (see `requeue_if_earlier`).
            return;
        }
        let (at_us, reason) = flow.deadline(&self.timeouts);
        if at_us < self.clock_us {
            self.end(entry.slot, reason, classifier, expired);
        } else {
            flow.queued_us = at_us;
            self.deadlines.push(Deadline { at_us, ..entry });
        }
    }

    fn end(
        &mut self,
        slot: u32,
        reason: ExpiryReason,
        classifier: &mut C,
        expired: &mut impl FnMut(ExpiredFlow),
    ) {
        let entry = &mut self.slots[slot as usize];
        let Some(flow) = entry.flow.take() else {
            return;
        };
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.index.remove(&flow.id);
        self.stats.count_expired(reason);
        let protocol = classifier.finish(flow.state);
        expired(ExpiredFlow {
            imsi: flow.id.imsi,
            key: flow.id.key,
            protocol,
            first_us: flow.first_us,
            last_us: flow.last_us,
            packets: flow.packets,
            bytes: flow.bytes,
            reason,
        });
    }
}
