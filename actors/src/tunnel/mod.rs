//! The user-plane tunnel table of one shard: (endpoint address, TEID) to subscriber, kept
//! up to date from session events, plus the recently replaced downlink endpoints that an
//! End Marker may still arrive on (TS 29.281 §7.3.2).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::session::{EventKind, SessionEvent, TunnelKey, TunnelRole};
use crate::wire::control::Digits;

pub mod late;

/// Owner of a tunnel key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelOwner {
    /// Session the tunnel belongs to.
    pub session_id: u64,
    /// Subscriber.
    pub imsi: Digits,
    /// Direction of the traffic the endpoint receives.
    pub role: TunnelRole,
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
    /// it, so a TEID already reused by another session stays with the new owner.
    pub fn apply(&mut self, event: &SessionEvent) -> Option<Digits> {
        let imsi = Digits::from_ascii(event.imsi.as_bytes())?;
        for tunnel in &event.removed {
            let owned = self.live.get(&tunnel.key).is_some_and(|o| o.session_id == event.session_id);
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
            let owner = TunnelOwner { session_id: event.session_id, imsi, role: tunnel.role };
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
