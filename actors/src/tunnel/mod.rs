//! The user-plane tunnel table of one shard: (endpoint address, TEID) to subscriber, kept
//! up to date from session events, plus the recently replaced downlink endpoints that an
//! End Marker may still arrive on (TS 29.281 §7.3.2). A tunnel whose signalling another
//! node saw can be learned from the microcloud's tunnel index; this node's own events
//! replace or remove it.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::session::{EventKind, SessionEvent, TunnelKey, TunnelRole};
use crate::wire::control::Digits;

pub mod late;
pub mod remote;

/// Owner of a tunnel key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelOwner {
    /// Subscriber.
    pub imsi: Digits,
    /// Source of the ownership.
    pub origin: TunnelOrigin,
}

/// Source of a tunnel's ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelOrigin {
    /// A session event of this node.
    Signalling {
        /// Session the tunnel belongs to.
        session_id: u64,
        /// Direction of the traffic the endpoint receives.
        role: TunnelRole,
    },
    /// The microcloud's tunnel index: another node saw the signalling.
    Microcloud,
}

impl TunnelOwner {
    /// True when an event of session `session_id` may remove this owner. A tunnel learned
    /// from the microcloud gives way to any local removal, because this node's signalling
    /// is newer information about the endpoint than the index entry.
    fn removable_by(&self, session_id: u64) -> bool {
        match self.origin {
            TunnelOrigin::Signalling { session_id: owner, .. } => owner == session_id,
            TunnelOrigin::Microcloud => true,
        }
    }
}

/// Live and recently replaced tunnels.
#[derive(Debug, Default)]
pub struct TunnelTable {
    live: FxHashMap<TunnelKey, TunnelOwner>,
    replaced: FxHashMap<TunnelKey, (TunnelOwner, u64)>,
    replaced_order: VecDeque<(u64, TunnelKey)>,
    replaced_grace_us: u64,
}

impl TunnelTable {
    /// Creates an empty table that keeps replaced downlink endpoints for `replaced_grace_us`.
    pub fn new(replaced_grace_us: u64) -> TunnelTable {
        TunnelTable { replaced_grace_us, ..TunnelTable::default() }
    }

    /// Applies a session event. A removal only takes a key away from the session that owns
    /// it (or from the microcloud), so a TEID already reused by another session stays with
    /// the new owner. An added key replaces any owner, a learned one included.
    pub fn apply(&mut self, event: &SessionEvent) -> Option<Digits> {
        let imsi = Digits::from_ascii(event.imsi.as_bytes())?;
        for tunnel in &event.removed {
            let owned = self.live.get(&tunnel.key).is_some_and(|o| o.removable_by(event.session_id));
            if !owned {
                continue;
            }
            if let Some(owner) = self.live.remove(&tunnel.key) {
                if event.kind == EventKind::Move && tunnel.role == TunnelRole::Downlink {
                    self.keep_replaced(tunnel.key, owner, event.ts_us);
                }
            }
        }
        for tunnel in &event.added {
            let origin = TunnelOrigin::Signalling { session_id: event.session_id, role: tunnel.role };
            let owner = TunnelOwner { imsi, origin };
            self.live.insert(tunnel.key, owner);
            self.replaced.remove(&tunnel.key);
        }
        Some(imsi)
    }

    fn keep_replaced(&mut self, key: TunnelKey, owner: TunnelOwner, ts_us: u64) {
        let until = ts_us.saturating_add(self.replaced_grace_us);
        self.replaced.insert(key, (owner, until));
        self.replaced_order.push_back((until, key));
    }

    /// Installs `imsi` as the owner of `key` as the microcloud reported it. A live owner
    /// from this node's signalling is kept; returns false then.
    ///
    /// NOTE: a learned entry does not expire. A delete or TEID reuse signalled only at
    /// another node leaves it in place until this node's own events replace or remove it.
    pub fn learn(&mut self, key: TunnelKey, imsi: Digits) -> bool {
        let local = self.live.get(&key).is_some_and(|o| o.origin != TunnelOrigin::Microcloud);
        if !local {
            self.live.insert(key, TunnelOwner { imsi, origin: TunnelOrigin::Microcloud });
        }
        !local
    }

    /// Returns the owner of a live tunnel.
    pub fn lookup(&self, key: &TunnelKey) -> Option<&TunnelOwner> {
        self.live.get(key)
    }

    /// Returns the owner of a live tunnel or of a just-replaced downlink endpoint.
    pub fn lookup_end_marker(&self, key: &TunnelKey) -> Option<&TunnelOwner> {
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

    /// Number of live tunnel keys.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no tunnel is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::session::event::fixture;
    use crate::session::Tunnel;

    fn tunnel(teid: u32, role: TunnelRole) -> Tunnel {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 40, 0, 1));
        Tunnel { key: TunnelKey { addr, teid }, role, bearer: 5, interface: 1 }
    }

    fn event(kind: EventKind, session_id: u64, imsi: &str, added: Vec<Tunnel>, removed: Vec<Tunnel>) -> SessionEvent {
        SessionEvent { tunnels: added.clone(), added, removed, seq: 1, ..fixture::event(kind, imsi, session_id, 1_000_000) }
    }

    #[test]
    fn detach_removes_attached_tunnel() {
        let mut table = TunnelTable::new(10_000_000);
        let uplink = tunnel(7, TunnelRole::Uplink);
        table.apply(&event(EventKind::Attach, 1, "001010000000001", vec![uplink], vec![]));
        assert!(table.lookup(&uplink.key).is_some());
        table.apply(&event(EventKind::Detach, 1, "001010000000001", vec![], vec![uplink]));
        assert!(table.lookup(&uplink.key).is_none());
        assert!(table.is_empty());
    }

    #[test]
    fn stale_removal_keeps_new_owner() {
        let mut table = TunnelTable::new(10_000_000);
        let uplink = tunnel(7, TunnelRole::Uplink);
        table.apply(&event(EventKind::Attach, 1, "001010000000001", vec![uplink], vec![]));
        table.apply(&event(EventKind::Attach, 2, "001010000000002", vec![uplink], vec![]));
        table.apply(&event(EventKind::Detach, 1, "001010000000001", vec![], vec![uplink]));
        let owner = table.lookup(&uplink.key).expect("new owner kept");
        assert_eq!(owner.imsi.as_str(), "001010000000002");
    }

    #[test]
    fn learned_tunnel_replaced_by_local_attach() {
        let mut table = TunnelTable::new(10_000_000);
        let uplink = tunnel(7, TunnelRole::Uplink);
        let remote = Digits::from_ascii(b"001010000000009").expect("digits");
        assert!(table.learn(uplink.key, remote));
        assert_eq!(table.lookup(&uplink.key).map(|o| o.origin), Some(TunnelOrigin::Microcloud));
        table.apply(&event(EventKind::Attach, 3, "001010000000003", vec![uplink], vec![]));
        let owner = table.lookup(&uplink.key).expect("local owner");
        assert_eq!(owner.imsi.as_str(), "001010000000003");
        assert!(!table.learn(uplink.key, remote), "a local owner is kept");
        assert_eq!(table.lookup(&uplink.key).map(|o| o.imsi.as_str().to_owned()), Some("001010000000003".to_owned()));
    }

    #[test]
    fn learned_tunnel_removed_by_local_removal() {
        let mut table = TunnelTable::new(10_000_000);
        let uplink = tunnel(7, TunnelRole::Uplink);
        table.learn(uplink.key, Digits::from_ascii(b"001010000000009").expect("digits"));
        table.apply(&event(EventKind::Detach, 4, "001010000000004", vec![], vec![uplink]));
        assert!(table.lookup(&uplink.key).is_none());
    }

    #[test]
    fn moved_downlink_kept_for_end_marker() {
        let mut table = TunnelTable::new(10_000_000);
        let old = tunnel(8, TunnelRole::Downlink);
        let new = tunnel(9, TunnelRole::Downlink);
        table.apply(&event(EventKind::Attach, 1, "001010000000001", vec![old], vec![]));
        table.apply(&event(EventKind::Move, 1, "001010000000001", vec![new], vec![old]));
        assert!(table.lookup(&old.key).is_none(), "G-PDUs on the old endpoint are not attributed");
        assert!(table.lookup_end_marker(&old.key).is_some(), "an End Marker on it is");
        table.expire(1_000_000 + 10_000_001);
        assert!(table.lookup_end_marker(&old.key).is_none(), "until the grace period ends");
    }
}
