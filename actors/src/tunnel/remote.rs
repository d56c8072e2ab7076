//! Microcloud lookups of one shard: which held tunnel keys were requested, what the
//! lookups returned, and what becomes of a held frame whose grace period ended.
//!
//! Tunnels that other nodes' session events install through the cluster are kept here
//! too, in [`RemoteTunnels`].
//!
//! A lookup result is used only at a point fixed by the capture: when the grace period of
//! the oldest frame held for the key ends. Until then this node's own signalling may still
//! bind the frames. A frame whose grace ended while its lookup is outstanding makes the
//! shard wait for the result, so a file gives the same output however fast the lookup
//! actor replies.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::session::{SessionEvent, TunnelKey};
use crate::wire::control::Digits;

/// Tunnel keys remembered per shard as named by this node's own session events.
///
/// NOTE: a key forgotten after this many newer ones is looked up again. If the sink has not
/// yet removed this node's own index entry for it by then, that entry is used.
pub const SIGNALLED_CAPACITY: usize = 262_144;

/// Outcome for a held frame whose grace period ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Count it as unattributed.
    GiveUp,
    /// Stop until the lookup result for its key arrives.
    Wait,
    /// Install the tunnel for this subscriber and release every frame held for the key.
    Bind(Digits),
}

/// Position of a frame in the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMark {
    /// Capture sequence number.
    pub seq: u64,
    /// Packet time, microseconds.
    pub ts_us: u64,
}

/// Lookup state of one key that has frames held or a request outstanding. A request
/// covers the newest frame held for the key when it was made, and the older ones.
#[derive(Debug, Clone, Copy, Default)]
struct KeyLookup {
    /// The latest result, `None` meaning "no owner", and the newest frame its request covered.
    result: Option<(Option<Digits>, FrameMark)>,
    /// The newest frame covered by the request still outstanding.
    outstanding: Option<FrameMark>,
}

impl KeyLookup {
    /// True when the latest result settles `frame`: an owner settles every frame of the
    /// key, and "no owner" settles the frames up to its request's newest frame plus the
    /// frames that arrived less than `window_us` after it.
    fn settles(&self, frame: FrameMark, window_us: u64) -> bool {
        match self.result {
            Some((Some(_), _)) => true,
            Some((None, mark)) => frame.seq <= mark.seq || frame.ts_us < mark.ts_us.saturating_add(window_us),
            None => false,
        }
    }
}

/// Counters of one shard's lookups.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteStats {
    /// Tunnel keys the shard asked the lookup actor about.
    pub requests: u64,
    /// Owners found in the microcloud but not used, because this node's own session
    /// events name the tunnel.
    pub owners_ignored: u64,
}

/// Lookup bookkeeping of one shard.
#[derive(Debug, Default)]
pub struct RemoteLookups {
    keys: FxHashMap<TunnelKey, KeyLookup>,
    requests: Vec<TunnelKey>,
    spare: Vec<Vec<TunnelKey>>,
    signalled: SignalledKeys,
    /// Packet time, microseconds, after a "no owner" result during which the key is not
    /// requested again.
    window_us: u64,
    stats: RemoteStats,
}

impl RemoteLookups {
    /// Creates an empty state that remembers up to `signalled_capacity` keys named by
    /// this node's events. A key without owner is requested again at most once per
    /// `window_us` of packet time.
    pub fn new(signalled_capacity: usize, window_us: u64) -> RemoteLookups {
        RemoteLookups { signalled: SignalledKeys::new(signalled_capacity), window_us, ..RemoteLookups::default() }
    }

    /// Notes the tunnel keys of events received from the control actor, applied or not.
    ///
    /// The control actor sends each event batch to the shards before the sink, and the
    /// sink writes it to the microcloud after that. So when a lookup reads an index entry
    /// that this node wrote, its key was noted here before the lookup result arrives.
    pub fn note_events(&mut self, events: &[SessionEvent]) {
        for event in events {
            for tunnel in event.added.iter().chain(&event.removed).chain(&event.tunnels) {
                self.signalled.insert(tunnel.key);
            }
        }
    }

    /// Records that `frame` was held for `key`, and queues a request unless one is
    /// outstanding, the latest result settles the frame, or this node's own signalling
    /// names the key.
    pub fn on_hold(&mut self, key: TunnelKey, frame: FrameMark) {
        if self.signalled.contains(&key) {
            return;
        }
        let entry = self.keys.entry(key).or_default();
        if entry.outstanding.is_none() && !entry.settles(frame, self.window_us) {
            self.request(key, frame);
        }
    }

    fn request(&mut self, key: TunnelKey, newest: FrameMark) {
        self.keys.entry(key).or_default().outstanding = Some(newest);
        self.requests.push(key);
        self.stats.requests += 1;
    }

    /// Stores the lookup result for `key`. It is dropped when `held` is false, because no
    /// frame is held for the key any more.
    pub fn on_result(&mut self, key: TunnelKey, owner: Option<Digits>, held: bool) {
        let Some(entry) = self.keys.get_mut(&key) else { return };
        let Some(mark) = entry.outstanding.take() else { return };
        if held {
            entry.result = Some((owner, mark));
        } else {
            self.keys.remove(&key);
        }
    }

    /// Decides the fate of the oldest held frame, `frame` of `key`, whose grace period
    /// ended. `newest` is the newest frame still held for the key. An owner is not used
    /// for a key that this node's own events name: their index entries may be this
    /// node's own, written ahead of the shard by the sink.
    pub fn at_deadline(&mut self, key: TunnelKey, frame: FrameMark, newest: FrameMark) -> Decision {
        let signalled = self.signalled.contains(&key);
        let Some(entry) = self.keys.get_mut(&key) else { return Decision::GiveUp };
        if let Some((Some(imsi), mark)) = entry.result {
            if !signalled {
                entry.result = None;
                if entry.outstanding.is_none() {
                    self.keys.remove(&key);
                }
                return Decision::Bind(imsi);
            }
            self.stats.owners_ignored += 1;
            entry.result = Some((None, mark));
        }
        if signalled || entry.settles(frame, self.window_us) {
            return Decision::GiveUp;
        }
        if entry.outstanding.is_none() {
            // The frame was held while an earlier request was outstanding, and that
            // request's "no owner" does not settle it.
            self.request(key, newest);
        }
        Decision::Wait
    }

    /// Forgets `key` once no frame is held for it, unless its request is outstanding.
    pub fn forget_if_idle(&mut self, key: TunnelKey, held: bool) {
        if !held && self.keys.get(&key).is_some_and(|entry| entry.outstanding.is_none()) {
            self.keys.remove(&key);
        }
    }

    /// Takes the queued requests, or `None` when there are none. The returned vector
    /// should come back through [`RemoteLookups::recycle`] with the results.
    pub fn take_requests(&mut self) -> Option<Vec<TunnelKey>> {
        if self.requests.is_empty() {
            return None;
        }
        let empty = self.spare.pop().unwrap_or_default();
        Some(std::mem::replace(&mut self.requests, empty))
    }

    /// Keeps a request vector that came back with its results, for reuse.
    pub fn recycle(&mut self, mut keys: Vec<TunnelKey>) {
        keys.clear();
        if self.spare.len() < 4 {
            self.spare.push(keys);
        }
    }

    /// True when a request for `key` was made and its result has not arrived.
    pub fn is_outstanding(&self, key: &TunnelKey) -> bool {
        self.keys.get(key).is_some_and(|entry| entry.outstanding.is_some())
    }

    /// Counters.
    pub fn stats(&self) -> &RemoteStats {
        &self.stats
    }
}

/// Owner of a tunnel installed by another node's session event.
#[derive(Debug, Clone)]
pub struct RemoteOwner {
    /// Subscriber.
    pub imsi: Digits,
    /// Full name of the node whose event installed the tunnel.
    pub node: Arc<str>,
    /// Session of that node the tunnel belongs to.
    pub session_id: u64,
}

/// Tunnels installed by other nodes' session events, kept apart from the shard's own
/// tunnel table so that they never override this node's signalling: the shard looks here
/// only for a key its own table does not have. Like the own table, it keeps a downlink
/// endpoint replaced by a remote Move for End Markers (TS 29.281 §7.3.2).
#[derive(Debug, Default)]
pub struct RemoteTunnels {
    live: FxHashMap<TunnelKey, RemoteOwner>,
    replaced: FxHashMap<TunnelKey, (RemoteOwner, u64)>,
    replaced_order: VecDeque<(u64, TunnelKey)>,
    replaced_grace_us: u64,
}

impl RemoteTunnels {
    /// Creates an empty table that keeps replaced downlink endpoints for `replaced_grace_us`
    /// of packet time.
    pub fn new(replaced_grace_us: u64) -> RemoteTunnels {
        RemoteTunnels { replaced_grace_us, ..RemoteTunnels::default() }
    }

    /// Installs `owner` for `key`, replacing an owner from another remote event.
    pub fn install(&mut self, key: TunnelKey, owner: RemoteOwner) {
        self.replaced.remove(&key);
        self.live.insert(key, owner);
    }

    /// Removes `key` when the same node's same session installed it, so a TEID already
    /// reused by another session stays with the new owner. A removed key is kept for End
    /// Markers until `replaced_grace_us` after `keep_from_us`, when that is given.
    pub fn remove(&mut self, key: &TunnelKey, node: &str, session_id: u64, keep_from_us: Option<u64>) {
        let owned = self.live.get(key).is_some_and(|owner| &*owner.node == node && owner.session_id == session_id);
        if !owned {
            return;
        }
        let Some(owner) = self.live.remove(key) else { return };
        if let Some(from_us) = keep_from_us {
            let until = from_us.saturating_add(self.replaced_grace_us);
            self.replaced.insert(*key, (owner, until));
            self.replaced_order.push_back((until, *key));
        }
    }

    /// Forgets `key` because this node's own signalling names it.
    pub fn forget(&mut self, key: &TunnelKey) {
        self.live.remove(key);
        self.replaced.remove(key);
    }

    /// Returns the remote owner of a live tunnel.
    pub fn lookup(&self, key: &TunnelKey) -> Option<&RemoteOwner> {
        self.live.get(key)
    }

    /// Returns the remote owner of a live tunnel or of a just-replaced downlink endpoint.
    pub fn lookup_end_marker(&self, key: &TunnelKey) -> Option<&RemoteOwner> {
        self.live.get(key).or_else(|| self.replaced.get(key).map(|(owner, _)| owner))
    }

    /// Forgets replaced endpoints whose grace period ended before `now_us`.
    pub fn expire(&mut self, now_us: u64) {
        while let Some(&(until, key)) = self.replaced_order.front() {
            if until >= now_us {
                break;
            }
            self.replaced_order.pop_front();
            if self.replaced.get(&key).is_some_and(|(_, u)| *u == until) {
                self.replaced.remove(&key);
            }
        }
    }

    /// Number of live remote tunnels.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no remote tunnel is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// A set of tunnel keys that drops the oldest insertion beyond its capacity.
#[derive(Debug, Default)]
struct SignalledKeys {
    /// Key to the number of its latest insertion.
    keys: FxHashMap<TunnelKey, u64>,
    order: VecDeque<(u64, TunnelKey)>,
    next: u64,
    capacity: usize,
}

impl SignalledKeys {
    fn new(capacity: usize) -> SignalledKeys {
        SignalledKeys { capacity, ..SignalledKeys::default() }
    }

    fn insert(&mut self, key: TunnelKey) {
        self.next += 1;
        self.keys.insert(key, self.next);
        self.order.push_back((self.next, key));
        while self.order.len() > self.capacity {
            let Some((number, old)) = self.order.pop_front() else { break };
            if self.keys.get(&old) == Some(&number) {
                self.keys.remove(&old);
            }
        }
    }

    fn contains(&self, key: &TunnelKey) -> bool {
        self.keys.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const SECOND: u64 = 1_000_000;

    fn key(teid: u32) -> TunnelKey {
        TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(10, 40, 0, 1)), teid }
    }

    fn imsi() -> Digits {
        Digits::from_ascii(b"001010000000001").expect("digits")
    }

    /// Frame `seq`, one per second.
    fn frame(seq: u64) -> FrameMark {
        FrameMark { seq, ts_us: seq * SECOND }
    }

    fn lookups() -> RemoteLookups {
        RemoteLookups::new(16, 2 * SECOND)
    }

    #[test]
    fn one_request_per_key() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.on_hold(key(1), frame(11));
        lookups.on_hold(key(2), frame(12));
        assert_eq!(lookups.take_requests(), Some(vec![key(1), key(2)]));
        assert_eq!(lookups.take_requests(), None);
        assert_eq!(lookups.stats().requests, 2);
    }

    #[test]
    fn deadline_waits_for_result() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(10)), Decision::Wait);
        lookups.on_result(key(1), Some(imsi()), true);
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(10)), Decision::Bind(imsi()));
        assert!(!lookups.is_outstanding(&key(1)));
    }

    #[test]
    fn owner_binds_frames_held_after_request() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.on_hold(key(1), frame(20));
        lookups.on_result(key(1), Some(imsi()), true);
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(20)), Decision::Bind(imsi()));
        assert_eq!(lookups.stats().requests, 1);
    }

    #[test]
    fn miss_settles_frames_within_window() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.on_hold(key(1), frame(11));
        lookups.on_result(key(1), None, true);
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(11)), Decision::GiveUp);
        assert_eq!(lookups.at_deadline(key(1), frame(11), frame(11)), Decision::GiveUp, "1 s after the request");
        assert_eq!(lookups.stats().requests, 1);
    }

    #[test]
    fn miss_asked_again_after_window() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.take_requests();
        lookups.on_result(key(1), None, true);
        // Frame 12 arrives 2 s after the request: the key is asked about again at once.
        lookups.on_hold(key(1), frame(12));
        assert_eq!(lookups.take_requests(), Some(vec![key(1)]));
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(12)), Decision::GiveUp, "the older result settles frame 10");
        assert_eq!(lookups.at_deadline(key(1), frame(12), frame(12)), Decision::Wait);
        lookups.on_result(key(1), None, true);
        assert_eq!(lookups.at_deadline(key(1), frame(12), frame(12)), Decision::GiveUp);
    }

    #[test]
    fn frame_held_during_request_asked_at_deadline() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.on_hold(key(1), frame(13));
        assert_eq!(lookups.take_requests(), Some(vec![key(1)]), "frame 13 came while the request was outstanding");
        lookups.on_result(key(1), None, true);
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(13)), Decision::GiveUp);
        assert_eq!(lookups.at_deadline(key(1), frame(13), frame(13)), Decision::Wait, "3 s after the request");
        assert_eq!(lookups.take_requests(), Some(vec![key(1)]));
    }

    #[test]
    fn owner_of_signalled_key_ignored() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.on_result(key(1), Some(imsi()), true);
        lookups.signalled.insert(key(1));
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(10)), Decision::GiveUp);
        assert_eq!(lookups.stats().owners_ignored, 1);
        let late = frame(30);
        assert_eq!(lookups.at_deadline(key(1), late, late), Decision::GiveUp, "a signalled key is not asked about again");
        assert_eq!(lookups.take_requests(), Some(vec![key(1)]), "only the first request");
    }

    #[test]
    fn locally_signalled_key_not_requested() {
        let mut lookups = lookups();
        lookups.signalled.insert(key(1));
        lookups.on_hold(key(1), frame(10));
        assert_eq!(lookups.take_requests(), None);
        assert_eq!(lookups.at_deadline(key(1), frame(10), frame(10)), Decision::GiveUp);
    }

    #[test]
    fn result_without_held_frames_dropped() {
        let mut lookups = lookups();
        lookups.on_hold(key(1), frame(10));
        lookups.on_result(key(1), Some(imsi()), false);
        assert!(!lookups.is_outstanding(&key(1)));
        assert_eq!(lookups.at_deadline(key(1), frame(30), frame(30)), Decision::GiveUp);
    }

    #[test]
    fn signalled_keys_forget_oldest() {
        let mut signalled = SignalledKeys::new(2);
        signalled.insert(key(1));
        signalled.insert(key(2));
        signalled.insert(key(1));
        signalled.insert(key(3));
        assert!(signalled.contains(&key(1)), "reinserted, so newer than key 2");
        assert!(!signalled.contains(&key(2)));
        assert!(signalled.contains(&key(3)));
    }
}
