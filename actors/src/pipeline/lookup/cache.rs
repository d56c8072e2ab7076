//! A bounded cache of lookup results whose entries expire after a wall-clock TTL. The
//! caller passes the current time to every call, so tests control the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::session::TunnelKey;

/// Lookup results by tunnel key, each valid until its own expiry, at most `capacity` of them.
#[derive(Debug)]
pub struct TtlCache<V> {
    /// Value, expiry and insertion number of each key.
    entries: FxHashMap<TunnelKey, (V, Instant, u64)>,
    /// Insertions, oldest first, with their number and expiry. A key inserted again also
    /// has its older insertions here; those are skipped when they reach the front.
    order: VecDeque<(u64, Instant, TunnelKey)>,
    next: u64,
    capacity: usize,
}

impl<V: Copy> TtlCache<V> {
    /// Creates an empty cache for at most `capacity` keys.
    pub fn new(capacity: usize) -> TtlCache<V> {
        TtlCache { entries: FxHashMap::default(), order: VecDeque::new(), next: 0, capacity }
    }

    /// Returns the value of `key` if its TTL has not run out at `now`.
    pub fn get(&self, key: &TunnelKey, now: Instant) -> Option<V> {
        self.entries.get(key).filter(|(_, expiry, _)| *expiry > now).map(|(value, _, _)| *value)
    }

    /// Stores `value` for `key` until `now + ttl`. Expired entries are dropped first;
    /// when the cache is still full, the oldest insertion is evicted. A zero TTL or
    /// capacity stores nothing.
    pub fn insert(&mut self, key: TunnelKey, value: V, now: Instant, ttl: Duration) {
        if ttl.is_zero() || self.capacity == 0 {
            self.entries.remove(&key);
            return;
        }
        self.drop_expired(now);
        while self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.pop_front();
        }
        let expiry = now + ttl;
        self.next += 1;
        self.entries.insert(key, (value, expiry, self.next));
        self.order.push_back((self.next, expiry, key));
        // Keys inserted again and again leave stale insertions behind; they never outnumber
        // the live entries by more than the capacity.
        while self.order.len() > 2 * self.capacity {
            self.pop_front();
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &TunnelKey) {
        self.entries.remove(key);
    }

    /// Number of stored keys, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn drop_expired(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(_, expiry, _)| *expiry <= now) {
            self.pop_front();
        }
    }

    /// Removes the oldest insertion, and its key when that insertion is the key's latest.
    fn pop_front(&mut self) {
        let Some((number, _, key)) = self.order.pop_front() else { return };
        if self.entries.get(&key).is_some_and(|(_, _, latest)| *latest == number) {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn key(teid: u32) -> TunnelKey {
        TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), teid }
    }

    #[test]
    fn entry_expires_after_ttl() {
        let start = Instant::now();
        let mut cache = TtlCache::new(8);
        cache.insert(key(1), (), start, 2 * SECOND);
        assert_eq!(cache.get(&key(1), start), Some(()));
        assert_eq!(cache.get(&key(1), start + SECOND), Some(()));
        assert_eq!(cache.get(&key(1), start + 2 * SECOND), None, "the TTL is exclusive");
    }

    #[test]
    fn full_cache_evicts_oldest() {
        let start = Instant::now();
        let mut cache = TtlCache::new(2);
        cache.insert(key(1), 1, start, 10 * SECOND);
        cache.insert(key(2), 2, start + SECOND, 10 * SECOND);
        cache.insert(key(3), 3, start + 2 * SECOND, 10 * SECOND);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&key(1), start + 2 * SECOND), None);
        assert_eq!(cache.get(&key(2), start + 2 * SECOND), Some(2));
        assert_eq!(cache.get(&key(3), start + 2 * SECOND), Some(3));
    }

    #[test]
    fn expired_entries_make_room() {
        let start = Instant::now();
        let mut cache = TtlCache::new(2);
        cache.insert(key(1), (), start, SECOND);
        cache.insert(key(2), (), start, 5 * SECOND);
        cache.insert(key(3), (), start + 2 * SECOND, SECOND);
        assert_eq!(cache.get(&key(2), start + 2 * SECOND), Some(()), "key 1 expired, so key 2 stays");
        assert_eq!(cache.get(&key(3), start + 2 * SECOND), Some(()));
    }

    #[test]
    fn reinsert_extends_ttl() {
        let start = Instant::now();
        let mut cache = TtlCache::new(2);
        cache.insert(key(1), (), start, SECOND);
        cache.insert(key(1), (), start + SECOND / 2, SECOND);
        cache.insert(key(2), (), start + SECOND, SECOND);
        assert_eq!(cache.get(&key(1), start + SECOND), Some(()), "the first insertion's expiry no longer applies");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn zero_ttl_stores_nothing() {
        let start = Instant::now();
        let mut cache = TtlCache::new(2);
        cache.insert(key(1), (), start, SECOND);
        cache.insert(key(1), (), start, Duration::ZERO);
        assert_eq!(cache.get(&key(1), start), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn stale_insertions_stay_bounded() {
        let start = Instant::now();
        let mut cache = TtlCache::new(2);
        for step in 0..100u32 {
            cache.insert(key(1), step, start, 60 * SECOND);
        }
        assert!(cache.order.len() <= 4, "{} insertions kept", cache.order.len());
        assert_eq!(cache.get(&key(1), start), Some(99));
    }
}
