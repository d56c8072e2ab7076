//! The process-wide slots that the pipeline publishes into.
//!
//! Each slot has one writer. The capture thread, the control actor, the sink and each shard
//! lock only their own slot, so no lock is shared between shards, and a scrape holds a
//! slot's lock only to copy it. Counters are copied whole at batch boundaries, never
//! incremented here per packet.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::pipeline::capture::CaptureStats;
use crate::pipeline::control::ControlStats;
use crate::pipeline::shard_work::ShardStats;
use crate::pipeline::sink::SinkStats;
use crate::wire::DecodeError;

/// Name, roles and site of a node: the `node`, `role` and `site` labels of every sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Full node name: `<node.name>@<host>` in a cluster, else `node.name`.
    pub node: String,
    /// Roles, e.g. `["probe", "collector"]`, or `["analyze"]` for `imsitrace analyze`.
    pub roles: Vec<String>,
    /// Site name.
    pub site: String,
}

/// The capture counters as last published: the stats with the malformed counts still in
/// the capture loop's fixed array, merged into the map only when read.
#[derive(Debug, Clone)]
pub(crate) struct CaptureSlot {
    pub(crate) stats: CaptureStats,
    pub(crate) malformed: [u64; DecodeError::COUNT],
}

/// Round-trip times of the Redis backend's pipelined writes.
#[derive(Debug, Default)]
pub(crate) struct RoundTrips {
    pub(crate) count: AtomicU64,
    pub(crate) total_ns: AtomicU64,
    pub(crate) last_ns: AtomicU64,
    pub(crate) max_ns: AtomicU64,
}

/// Every slot of the process.
#[derive(Debug)]
pub struct Registry {
    started: Instant,
    identity: Mutex<Identity>,
    pub(crate) capture: Arc<Mutex<Option<CaptureSlot>>>,
    pub(crate) control: Mutex<Option<ControlStats>>,
    /// One slot per shard index; the vector is locked only to add a slot or to list them.
    pub(crate) shards: Mutex<Vec<ShardSlot>>,
    pub(crate) sink: Mutex<Option<SinkStats>>,
    pub(crate) redis: RoundTrips,
    pub(crate) tracker_writers: AtomicI64,
}

/// Returns the registry of this process, created at the first call.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

/// Locks a slot. A writer that panicked left a complete copy (slots are replaced whole),
/// so a poisoned lock is used as it is.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    fn new() -> Registry {
        Registry {
            started: Instant::now(),
            identity: Mutex::default(),
            capture: Arc::default(),
            control: Mutex::default(),
            shards: Mutex::default(),
            sink: Mutex::default(),
            redis: RoundTrips::default(),
            tracker_writers: AtomicI64::new(0),
        }
    }

    /// Sets the node labels. Call once at start, before the listener and the status actor.
    pub fn set_identity(&self, identity: Identity) {
        *lock(&self.identity) = identity;
    }

    /// Returns the node labels.
    pub fn identity(&self) -> Identity {
        lock(&self.identity).clone()
    }

    /// Returns the time since the registry was created, at the node's start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Returns the slot of shard `index`, adding it at the first call for that index.
    pub fn shard_slot(&self, index: usize) -> ShardSlot {
        let mut shards = lock(&self.shards);
        while shards.len() <= index {
            shards.push(ShardSlot::default());
        }
        shards[index].clone()
    }

    /// Replaces the control actor's counters.
    pub fn publish_control(&self, stats: ControlStats) {
        *lock(&self.control) = Some(stats);
    }

    /// Replaces the sink's counters.
    pub fn publish_sink(&self, stats: &SinkStats) {
        let mut slot = lock(&self.sink);
        match slot.as_mut() {
            Some(current) => current.clone_from(stats),
            None => *slot = Some(stats.clone()),
        }
    }

    /// Records the round-trip time of one pipelined Redis write.
    pub fn record_redis_round_trip(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let trips = &self.redis;
        trips.count.fetch_add(1, Ordering::Relaxed);
        trips.total_ns.fetch_add(ns, Ordering::Relaxed);
        trips.last_ns.store(ns, Ordering::Relaxed);
        trips.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Returns a guard that counts one open tracker file writer until it is dropped.
    pub fn tracker_writer_opened(&'static self) -> TrackerWriterGuard {
        self.tracker_writers.fetch_add(1, Ordering::Relaxed);
        TrackerWriterGuard { registry: self }
    }
}

/// The slot of one shard; only that shard writes it.
#[derive(Debug, Clone, Default)]
pub struct ShardSlot(pub(crate) Arc<Mutex<Option<ShardStats>>>);

impl ShardSlot {
    /// Replaces the shard's counters.
    pub fn publish(&self, stats: ShardStats) {
        *lock(&self.0) = Some(stats);
    }
}

/// One open tracker file writer, counted while this guard lives.
#[derive(Debug)]
pub struct TrackerWriterGuard {
    registry: &'static Registry,
}

impl Drop for TrackerWriterGuard {
    fn drop(&mut self) {
        self.registry.tracker_writers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Destination of the capture loop's counters: the process registry, or none.
#[derive(Clone, Default)]
pub struct CaptureMetrics {
    slot: Option<Arc<Mutex<Option<CaptureSlot>>>>,
}

impl std::fmt::Debug for CaptureMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureMetrics").field("published", &self.slot.is_some()).finish()
    }
}

impl CaptureMetrics {
    /// Publishes into the slot of the process registry.
    pub fn global() -> CaptureMetrics {
        CaptureMetrics { slot: Some(registry().capture.clone()) }
    }

    /// Returns true when the counters are published somewhere.
    pub fn is_enabled(&self) -> bool {
        self.slot.is_some()
    }

    /// Copies the counters of the capture loop at a flush point. During the run the
    /// malformed counts are in the loop's fixed array. The copy allocates for the maps
    /// and the interface list of `stats` when they have entries, once per flush point,
    /// never per frame.
    pub fn publish(&self, stats: &CaptureStats, malformed: &[u64; DecodeError::COUNT]) {
        let Some(slot) = &self.slot else { return };
        let mut slot = lock(slot);
        match slot.as_mut() {
            Some(current) => {
                current.stats.clone_from(stats);
                current.malformed = *malformed;
            }
            None => *slot = Some(CaptureSlot { stats: stats.clone(), malformed: *malformed }),
        }
    }

    /// Copies the final counters of a run, whose malformed counts are in `stats.malformed`.
    pub fn publish_final(&self, stats: &CaptureStats) {
        self.publish(stats, &[0; DecodeError::COUNT]);
    }
}
