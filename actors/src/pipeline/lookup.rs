//! The lookup actor: reads from the microcloud's tunnel index which subscriber owns the
//! tunnels of frames that shards keep for late binding, when this node saw no signalling
//! for them.
//!
//! Shards send the keys of one data batch in one message. The actor takes what it can from
//! its caches and reads the other keys from the microcloud, one round trip at a time. A key
//! already being read is not read twice. Each shard gets one reply once every key of its
//! request has an owner or "no owner". A failed or timed-out read returns "no owner", so a
//! shard never waits longer than the round-trip timeout for a reply.

pub mod cache;

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::microcloud::Microcloud;
use crate::pipeline::shard::ShardMsg;
use crate::session::TunnelKey;
use crate::wire::control::Digits;
use cache::TtlCache;

/// Settings of the lookup actor. Every duration is wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    /// How long "no owner" is returned for a key that the index does not contain, without
    /// reading it again.
    pub negative_ttl: Duration,
    /// How long a found owner is returned without reading it again.
    pub positive_ttl: Duration,
    /// How long "no owner" is returned for a key whose read failed.
    pub error_ttl: Duration,
    /// Maximum keys in each of the two caches.
    pub cache_capacity: usize,
    /// Maximum keys read in one round trip.
    pub max_keys_per_query: usize,
    /// Maximum time of one round trip; a slower one counts as failed.
    pub timeout: Duration,
}

impl Default for LookupConfig {
    /// Negative TTL 2 s, positive TTL 1 s, 250 ms after a failed read, 65,536 keys per
    /// cache, 1,024 keys per round trip and a 2-s timeout.
    fn default() -> Self {
        LookupConfig {
            negative_ttl: Duration::from_secs(2),
            positive_ttl: Duration::from_secs(1),
            error_ttl: Duration::from_millis(250),
            cache_capacity: 65_536,
            max_keys_per_query: 1_024,
            timeout: Duration::from_secs(2),
        }
    }
}

/// Messages of the lookup actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum LookupMsg {
    /// Tunnel keys of frames a shard keeps, each at most once. The owners go back to
    /// `reply_to` as one [`ShardMsg::Lookup`].
    Resolve {
        /// The keys.
        keys: Vec<TunnelKey>,
        /// The requesting shard.
        reply_to: ActorRef<ShardMsg>,
    },
    /// Result of a round trip the actor started: one owner per key, or why it failed.
    ReadDone {
        /// The keys read.
        keys: Vec<TunnelKey>,
        /// Owners in the order of `keys`, or the error.
        result: Result<Vec<Option<String>>, String>,
    },
    /// Returns the counters once no read is under way.
    Finish(RpcReplyPort<LookupStats>),
}

/// The owners of the keys of one [`LookupMsg::Resolve`].
#[derive(Debug)]
pub struct LookupReply {
    /// The requested keys, in request order; the shard's vector, returned for reuse.
    pub keys: Vec<TunnelKey>,
    /// Owner of each key; `None` when the microcloud names none or the read failed.
    pub owners: Vec<Option<Digits>>,
}

/// Counters of the lookup actor. Every requested key gets its owner from a cache, from a
/// round trip, or from a round trip that another request started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LookupStats {
    /// Tunnel keys requested by the shards.
    pub requests: u64,
    /// Round trips sent to the microcloud.
    pub queries: u64,
    /// Keys read in those round trips.
    pub keys_queried: u64,
    /// Keys read that the microcloud names an owner for.
    pub found: u64,
    /// Keys read that it names no owner for.
    pub not_found: u64,
    /// Keys whose round trip failed or timed out, or whose stored owner is not an IMSI.
    /// They are returned as having no owner.
    pub errors: u64,
    /// Round trips that failed or timed out.
    pub failed_queries: u64,
    /// Requested keys found in the negative cache.
    pub negative_cache_hits: u64,
    /// Requested keys found in the positive cache.
    pub positive_cache_hits: u64,
}

/// Start arguments of the lookup actor.
pub struct LookupArgs<M> {
    /// The microcloud handle; each round trip uses a clone of it.
    pub microcloud: M,
    /// Settings.
    pub config: LookupConfig,
}

/// A shard request with some keys still being read.
struct PendingRequest {
    reply_to: ActorRef<ShardMsg>,
    keys: Vec<TunnelKey>,
    /// Owner of each key once known: `Some(None)` is "no owner".
    owners: Vec<Option<Option<Digits>>>,
    unknown: usize,
}

impl PendingRequest {
    fn reply(self) {
        let owners = self.owners.into_iter().map(Option::flatten).collect();
        // Fails only when the shard has stopped, and then no frame waits for these owners.
        let _ = self.reply_to.send_message(ShardMsg::Lookup(LookupReply { keys: self.keys, owners }));
    }
}

/// State of the lookup actor.
pub struct LookupState<M> {
    microcloud: M,
    config: LookupConfig,
    myself: ActorRef<LookupMsg>,
    found: TtlCache<Digits>,
    missing: TtlCache<()>,
    /// Keys waiting for the next round trip, in request order.
    queued: Vec<TunnelKey>,
    /// Keys queued or being read.
    wanted: FxHashSet<TunnelKey>,
    in_flight: bool,
    pending: Vec<PendingRequest>,
    stats: LookupStats,
    /// The reply port of `Finish`, kept while a read is under way.
    finishing: Option<RpcReplyPort<LookupStats>>,
}

/// The lookup actor, generic over the microcloud backend.
pub struct LookupActor<M>(PhantomData<fn() -> M>);

impl<M> Default for LookupActor<M> {
    fn default() -> Self {
        LookupActor(PhantomData)
    }
}

impl<M: Microcloud + Clone> Actor for LookupActor<M> {
    type Msg = LookupMsg;
    type State = LookupState<M>;
    type Arguments = LookupArgs<M>;

    async fn pre_start(&self, myself: ActorRef<LookupMsg>, args: LookupArgs<M>) -> Result<LookupState<M>, ActorProcessingErr> {
        Ok(LookupState {
            microcloud: args.microcloud,
            found: TtlCache::new(args.config.cache_capacity),
            missing: TtlCache::new(args.config.cache_capacity),
            config: args.config,
            myself,
            queued: Vec::new(),
            wanted: FxHashSet::default(),
            in_flight: false,
            pending: Vec::new(),
            stats: LookupStats::default(),
            finishing: None,
        })
    }

    async fn handle(&self, _myself: ActorRef<LookupMsg>, message: LookupMsg, state: &mut LookupState<M>) -> Result<(), ActorProcessingErr> {
        match message {
            LookupMsg::Resolve { keys, reply_to } => state.resolve(keys, reply_to),
            LookupMsg::ReadDone { keys, result } => state.read_done(&keys, result),
            LookupMsg::Finish(reply) => {
                state.finishing = Some(reply);
                state.try_finish();
            }
        }
        Ok(())
    }
}

impl<M: Microcloud + Clone> LookupState<M> {
    fn resolve(&mut self, keys: Vec<TunnelKey>, reply_to: ActorRef<ShardMsg>) {
        let now = Instant::now();
        self.stats.requests += keys.len() as u64;
        let mut owners = Vec::with_capacity(keys.len());
        let mut unknown = 0;
        for &key in &keys {
            let cached = self.cached(key, now);
            if cached.is_none() {
                unknown += 1;
                if self.wanted.insert(key) {
                    self.queued.push(key);
                }
            }
            owners.push(cached);
        }
        let request = PendingRequest { reply_to, keys, owners, unknown };
        if unknown == 0 {
            request.reply();
        } else {
            self.pending.push(request);
        }
        self.start_query();
    }

    /// Returns the cached owner of `key`: `Some(owner)` when cached, `None` otherwise.
    fn cached(&mut self, key: TunnelKey, now: Instant) -> Option<Option<Digits>> {
        if let Some(imsi) = self.found.get(&key, now) {
            self.stats.positive_cache_hits += 1;
            return Some(Some(imsi));
        }
        if self.missing.get(&key, now).is_some() {
            self.stats.negative_cache_hits += 1;
            return Some(None);
        }
        None
    }

    /// Starts a round trip for the queued keys unless one is under way.
    fn start_query(&mut self) {
        if self.in_flight || self.queued.is_empty() {
            return;
        }
        let count = self.queued.len().min(self.config.max_keys_per_query.max(1));
        let keys: Vec<TunnelKey> = self.queued.drain(..count).collect();
        self.in_flight = true;
        self.stats.queries += 1;
        self.stats.keys_queried += keys.len() as u64;
        let mut microcloud = self.microcloud.clone();
        let myself = self.myself.clone();
        let timeout = self.config.timeout;
        tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, microcloud.lookup_tunnels(&keys)).await {
                Ok(Ok(owners)) => Ok(owners),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no reply within {} ms", timeout.as_millis())),
            };
            // Fails only when the actor has stopped, and then no request waits for the result.
            let _ = myself.send_message(LookupMsg::ReadDone { keys, result });
        });
    }

    fn read_done(&mut self, keys: &[TunnelKey], result: Result<Vec<Option<String>>, String>) {
        self.in_flight = false;
        let owners = self.record(keys, result, Instant::now());
        let owners_by_key: FxHashMap<TunnelKey, Option<Digits>> = keys.iter().copied().zip(owners).collect();
        for key in keys {
            self.wanted.remove(key);
        }
        self.complete_pending(&owners_by_key);
        self.start_query();
        self.try_finish();
    }

    /// Replies to `Finish` once no read is under way, so that every read is counted.
    fn try_finish(&mut self) {
        if self.in_flight {
            return;
        }
        if let Some(reply) = self.finishing.take() {
            let _ = reply.send(self.stats.clone());
        }
    }

    /// Counts and caches the result of a round trip; returns the owner of each key.
    fn record(&mut self, keys: &[TunnelKey], result: Result<Vec<Option<String>>, String>, now: Instant) -> Vec<Option<Digits>> {
        let values = match result {
            Ok(values) if values.len() == keys.len() => values,
            Ok(values) => return self.failed(keys, &format!("the microcloud returned {} owners for {} keys", values.len(), keys.len()), now),
            Err(reason) => return self.failed(keys, &reason, now),
        };
        keys.iter().zip(values).map(|(&key, value)| self.record_value(key, value, now)).collect()
    }

    fn record_value(&mut self, key: TunnelKey, value: Option<String>, now: Instant) -> Option<Digits> {
        let Some(text) = value else {
            self.stats.not_found += 1;
            self.missing.insert(key, (), now, self.config.negative_ttl);
            return None;
        };
        match Digits::from_ascii(text.as_bytes()).filter(|imsi| !imsi.is_empty()) {
            Some(imsi) => {
                self.stats.found += 1;
                self.found.insert(key, imsi, now, self.config.positive_ttl);
                self.missing.remove(&key);
                Some(imsi)
            }
            None => {
                self.stats.errors += 1;
                if self.stats.errors % 1000 == 1 {
                    tracing::warn!(tunnel = %format_args!("{}:{}", key.addr, key.teid), value = %text, errors = self.stats.errors, "the microcloud's tunnel index names an owner that is not an IMSI; counted as no owner");
                }
                self.missing.insert(key, (), now, self.config.error_ttl);
                None
            }
        }
    }

    fn failed(&mut self, keys: &[TunnelKey], reason: &str, now: Instant) -> Vec<Option<Digits>> {
        self.stats.failed_queries += 1;
        self.stats.errors += keys.len() as u64;
        // The first failure and then one in a hundred: an unavailable server fails every read.
        if self.stats.failed_queries % 100 == 1 {
            tracing::warn!(error = %reason, keys = keys.len(), failed_queries = self.stats.failed_queries, "tunnel lookup in the microcloud failed; the tunnels count as having no owner");
        }
        for &key in keys {
            self.missing.insert(key, (), now, self.config.error_ttl);
        }
        vec![None; keys.len()]
    }

    /// Fills in the owners read in a round trip and replies to every request that is complete.
    fn complete_pending(&mut self, owners_by_key: &FxHashMap<TunnelKey, Option<Digits>>) {
        for request in &mut self.pending {
            for (key, owner) in request.keys.iter().zip(request.owners.iter_mut()) {
                if owner.is_none() {
                    if let Some(read) = owners_by_key.get(key) {
                        *owner = Some(*read);
                        request.unknown -= 1;
                    }
                }
            }
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending).into_iter().partition(|r| r.unknown == 0);
        self.pending = waiting;
        for request in done {
            request.reply();
        }
    }
}

#[cfg(test)]
mod tests;
