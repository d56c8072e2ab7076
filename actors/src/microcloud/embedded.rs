//! The in-process microcloud backend: all state in memory, shared by the clones of one
//! handle, so a single machine runs every role with no Redis server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;
use tokio::sync::broadcast;

use crate::bucket::{BucketDelta, BucketKey, BucketValues};
use crate::flow::classify::AppProtocol;
use crate::microcloud::{Microcloud, MicrocloudError, SubscriberState};
use crate::session::event::{SessionEvent, TunnelKey};
use crate::wire::control::Digits;

/// Limits of the embedded backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Events buffered per subscriber of the event channel; a subscriber that falls
    /// further behind skips the oldest events and receives a lag count.
    pub event_capacity: usize,
    /// Maximum buckets kept; adding a newer one drops the oldest.
    pub max_bucket_epochs: usize,
}

impl Default for EmbeddedConfig {
    /// 1024 events per subscriber; 288 buckets, 24 hours of 300-s buckets.
    fn default() -> Self {
        EmbeddedConfig {
            event_capacity: 1024,
            max_bucket_epochs: 288,
        }
    }
}

/// Sizes and counters of the embedded backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Subscribers with a stored state.
    pub subscribers: usize,
    /// Entries in the tunnel index.
    pub tunnels: usize,
    /// Buckets stored.
    pub bucket_epochs: usize,
    /// Session events applied.
    pub events_published: u64,
    /// Buckets dropped because `max_bucket_epochs` was reached.
    pub bucket_epochs_dropped: u64,
}

/// Counters of one bucket, by subscriber and protocol.
type BucketRows = FxHashMap<(Digits, AppProtocol), BucketValues>;

#[derive(Debug)]
struct Store {
    max_bucket_epochs: usize,
    subscribers: FxHashMap<String, SubscriberState>,
    /// Tunnel index: tunnel key to the IMSI that owns it.
    tunnels: FxHashMap<TunnelKey, String>,
    buckets: BTreeMap<u64, BucketRows>,
    events_published: u64,
    bucket_epochs_dropped: u64,
}

impl Store {
    fn apply(&mut self, event: &SessionEvent) {
        let subscriber = self
            .subscribers
            .entry(event.imsi.clone())
            .or_insert_with(|| SubscriberState::new(&event.imsi));
        let changes = subscriber.apply(event);
        for key in changes.removed {
            if self.tunnels.get(&key) == Some(&event.imsi) {
                self.tunnels.remove(&key);
            }
        }
        for key in changes.added {
            let previous = self.tunnels.insert(key, event.imsi.clone());
            if let Some(previous) = previous.filter(|previous| *previous != event.imsi) {
                if let Some(other) = self.subscribers.get_mut(&previous) {
                    other.release_tunnel(key);
                }
            }
        }
        self.events_published += 1;
    }

    fn add_bucket(&mut self, delta: &BucketDelta) {
        let rows = self.buckets.entry(delta.epoch).or_default();
        rows.entry((delta.imsi, delta.protocol))
            .or_default()
            .add(&delta.values());
        while self.buckets.len() > self.max_bucket_epochs.max(1) {
            self.buckets.pop_first();
            self.bucket_epochs_dropped += 1;
        }
    }

    fn bucket_rows(&self, epoch: u64) -> Vec<BucketDelta> {
        let Some(rows) = self.buckets.get(&epoch) else {
            return Vec::new();
        };
        let mut deltas: Vec<BucketDelta> = rows
            .iter()
            .map(|(&(imsi, protocol), values)| {
                BucketDelta::new(
                    BucketKey {
                        epoch,
                        imsi,
                        protocol,
                    },
                    *values,
                )
            })
            .collect();
        deltas.sort_unstable_by(|a, b| {
            (a.imsi.as_str(), a.protocol).cmp(&(b.imsi.as_str(), b.protocol))
        });
        deltas
    }
}

/// A handle on an in-process microcloud. Clones share the same state, like several
/// connections to one server. Every operation returns `Ok`.
#[derive(Debug, Clone)]
pub struct EmbeddedMicrocloud {
    store: Arc<Mutex<Store>>,
    events: broadcast::Sender<SessionEvent>,
}

impl Default for EmbeddedMicrocloud {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedMicrocloud {
    /// Creates an empty microcloud with the default limits.
    pub fn new() -> Self {
        Self::with_config(EmbeddedConfig::default())
    }

    /// Creates an empty microcloud with the limits of `config`.
    pub fn with_config(config: EmbeddedConfig) -> Self {
        let store = Store {
            max_bucket_epochs: config.max_bucket_epochs,
            subscribers: FxHashMap::default(),
            tunnels: FxHashMap::default(),
            buckets: BTreeMap::new(),
            events_published: 0,
            bucket_epochs_dropped: 0,
        };
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        EmbeddedMicrocloud {
            store: Arc::new(Mutex::new(store)),
            events,
        }
    }

    /// Subscribes to the session events published from now on, by any clone.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Sizes and counters.
    pub fn stats(&self) -> EmbeddedStats {
        let store = self.lock();
        EmbeddedStats {
            subscribers: store.subscribers.len(),
            tunnels: store.tunnels.len(),
            bucket_epochs: store.buckets.len(),
            events_published: store.events_published,
            bucket_epochs_dropped: store.bucket_epochs_dropped,
        }
    }

    /// Locks the store. A panic during an update can leave one event half applied, with a
    /// subscriber changed but not all of its index entries. The store stays usable, so a
    /// poisoned lock is taken as it is.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Microcloud for EmbeddedMicrocloud {
    async fn publish(&mut self, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
        let mut store = self.lock();
        for event in events {
            store.apply(event);
            // Sent under the lock so that every subscriber receives events in the order the store applied them.
            // `send` fails only when nobody subscribed, and then nothing is lost.
            if self.events.receiver_count() > 0 {
                let _ = self.events.send(event.clone());
            }
        }
        Ok(())
    }

    async fn add_buckets(&mut self, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        let mut store = self.lock();
        for delta in deltas {
            store.add_bucket(delta);
        }
        Ok(())
    }

    async fn lookup_tunnel(&mut self, key: TunnelKey) -> Result<Option<String>, MicrocloudError> {
        Ok(self.lock().tunnels.get(&key).cloned())
    }

    async fn lookup_tunnels(&mut self, keys: &[TunnelKey]) -> Result<Vec<Option<String>>, MicrocloudError> {
        let store = self.lock();
        Ok(keys.iter().map(|key| store.tunnels.get(key).cloned()).collect())
    }

    async fn subscriber(&mut self, imsi: &str) -> Result<Option<SubscriberState>, MicrocloudError> {
        Ok(self.lock().subscribers.get(imsi).cloned())
    }

    async fn bucket_epochs(&mut self) -> Result<Vec<u64>, MicrocloudError> {
        Ok(self.lock().buckets.keys().copied().collect())
    }

    async fn bucket_rows(&mut self, epoch: u64) -> Result<Vec<BucketDelta>, MicrocloudError> {
        Ok(self.lock().bucket_rows(epoch))
    }
}
