//! The Redis microcloud backend: state shared by every node that connects to one server.
//!
//! The key layout, TTLs, channels and payloads are described in `docs/microcloud.md`. All
//! names contain the schema version ([`SCHEMA_VERSION`]). Every `publish` and `add_buckets`
//! call sends its writes in one pipeline. Bucket counters are added by a Lua script guarded
//! by a batch id, so `add_buckets` retries a failed attempt without counting twice.

mod buckets;
mod claim;
mod index;
mod keys;
mod ntop;
mod publish;
mod queries;
mod scripts;
mod subscribe;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod query_tests;
#[cfg(test)]
mod tests;

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, AsyncConnectionConfig, Client, RedisError};

pub use keys::SCHEMA_VERSION;
pub use queries::ActiveSubscriber;
pub use subscribe::{events_channel, subscriber_channel, Delivery, Subscription, SubscriptionConfig};

use crate::bucket::BucketDelta;
use crate::microcloud::{Microcloud, MicrocloudError, SubscriberState};
use crate::session::event::{SessionEvent, TunnelKey};
use keys::Keys;

const BACKEND: &str = "redis";

/// Settings of the Redis backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Prefix of every key and channel name.
    pub prefix: String,
    /// Lifetime of a subscriber state and of its tunnel index entries, renewed by every
    /// event of the subscriber.
    pub state_ttl: Duration,
    /// Lifetime of a bucket row, of its bucket's index and of the epoch set, renewed by
    /// every delta added to them.
    pub bucket_ttl: Duration,
    /// How long an applied batch id is remembered; a retry later than this counts again.
    pub batch_ttl: Duration,
    /// Maximum time to open a connection, on the first connect and on each reconnect.
    pub connect_timeout: Duration,
    /// Maximum time to wait for the reply to a command or pipeline.
    pub response_timeout: Duration,
    /// Attempts after the first that `add_buckets` makes when the connection fails.
    pub retries: u32,
    /// Connection attempts after the first that a reconnect makes, with a backoff from
    /// 100 ms up to 5 s. A command issued while the connection is down waits for them, so
    /// a caller that buffers and retries by itself (the `analyze` sink) sets 0.
    pub reconnect_retries: usize,
    /// Also write ntop's historic key layout (`imsi.<IMSI>`, channels `imsi.create` and
    /// `imsi.delete`, hashes `<epoch>.<IMSI>.<protocol>`), without the prefix, for
    /// PF_RING's `pfwrite` and ntop's `imsiAggregator.py`. See `docs/microcloud.md`.
    pub ntop_compat: bool,
}

impl Default for RedisConfig {
    /// Returns prefix `imsitrace:`, with subscriber state and buckets kept 24 hours after
    /// their last change and batch ids for 1 hour. Timeouts are 2 s to connect and 10 s
    /// for a reply, with 2 retries of a bucket batch and 6 of a reconnect. ntop
    /// compatibility is off.
    fn default() -> Self {
        RedisConfig {
            prefix: "imsitrace:".to_owned(),
            state_ttl: Duration::from_secs(24 * 3600),
            bucket_ttl: Duration::from_secs(24 * 3600),
            batch_ttl: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(10),
            retries: 2,
            reconnect_retries: 6,
            ntop_compat: false,
        }
    }
}

/// A connection to a Redis microcloud. Clones share one multiplexed connection, which
/// reconnects by itself after a failure; the command that saw the failure returns an error.
#[derive(Clone)]
pub struct RedisMicrocloud {
    connection: ConnectionManager,
    keys: Keys,
    config: Arc<RedisConfig>,
    /// Random id of this handle and its clones, the first part of every batch id.
    instance: u64,
    /// Number of the next bucket batch, shared by the clones so their batch ids differ.
    next_batch: Arc<AtomicU64>,
    /// Protocol names of ntop's hashes, `Some` when `config.ntop_compat` is set.
    ntop_names: Option<ntop::NtopNames>,
}

impl std::fmt::Debug for RedisMicrocloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMicrocloud")
            .field("config", &self.config)
            .field("instance", &format_args!("{:016x}", self.instance))
            .finish_non_exhaustive()
    }
}

impl RedisMicrocloud {
    /// Connects to the server at `url` (`redis://host:port/db`) and writes the schema
    /// metadata.
    ///
    /// Fails at once, naming the URL (without its password), when the URL is invalid or
    /// the server does not reply to PING within `connect_timeout` plus `response_timeout`.
    /// Later failures are reported per operation while the connection is reopened in the
    /// background, with a backoff from 100 ms up to 5 s.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, MicrocloudError> {
        let redacted_url = redact_url(url);
        let client = Client::open(url).map_err(|error| MicrocloudError::InvalidUrl {
            url: redacted_url.clone(),
            reason: error.to_string(),
        })?;
        check_reachable(&client, &redacted_url, &config).await?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(5))
            .set_number_of_retries(config.reconnect_retries);
        let connection = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|error| cannot_connect(&redacted_url, &error))?;
        let ntop_names = config.ntop_compat.then(ntop::NtopNames::new).transpose()?;
        let mut cloud = RedisMicrocloud {
            connection,
            keys: Keys::new(&config.prefix),
            config: Arc::new(config),
            instance: random_u64(),
            next_batch: Arc::new(AtomicU64::new(0)),
            ntop_names,
        };
        let mut pipe = redis::pipe();
        cloud.add_meta(&mut pipe);
        pipe.query_async::<()>(&mut cloud.connection)
            .await
            .map_err(|error| cannot_connect(&redacted_url, &error))?;
        tracing::info!(url = %redacted_url, prefix = %cloud.config.prefix, schema = SCHEMA_VERSION, "connected to the Redis microcloud");
        Ok(cloud)
    }

    /// Adds `deltas` as the batch `batch_id`, unless a batch with that id was applied in
    /// the last `batch_ttl`. Returns false when the batch was applied before.
    ///
    /// `add_buckets` calls this with a fresh id, and again with the same id when an
    /// attempt fails, so a reply lost with the connection does not count the deltas twice.
    pub async fn add_buckets_batch(
        &mut self,
        batch_id: &str,
        deltas: &[BucketDelta],
    ) -> Result<bool, MicrocloudError> {
        buckets::add_batch(self, batch_id, deltas)
            .await
            .map_err(unavailable)
    }

    /// Appends the commands that write the schema metadata and renew its TTL.
    fn add_meta(&self, pipe: &mut redis::Pipeline) {
        let meta = self.keys.meta();
        let ttl = self.config.state_ttl.max(self.config.bucket_ttl);
        pipe.hset_multiple(
            &meta,
            &[
                ("schema", SCHEMA_VERSION.to_string()),
                ("ndpi", crate::ndpi::ndpi_revision().to_owned()),
            ],
        )
        .ignore()
        .expire(&meta, ttl_seconds(ttl))
        .ignore();
    }

    fn next_batch_id(&self) -> String {
        let number = self.next_batch.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{number}", self.instance)
    }
}

impl Microcloud for RedisMicrocloud {
    async fn publish(&mut self, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
        if events.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        publish::publish(self, events).await?;
        crate::metrics::registry().record_redis_round_trip(started.elapsed());
        Ok(())
    }

    async fn add_buckets(&mut self, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        let batch_id = self.next_batch_id();
        self.add_buckets_as(Some(&batch_id), deltas).await
    }

    fn new_batch_id(&self) -> Option<String> {
        Some(self.next_batch_id())
    }

    /// Adds `deltas` as batch `batch_id` (a fresh id when `None`), retrying with the same
    /// id when the connection fails.
    async fn add_buckets_as(&mut self, batch_id: Option<&str>, deltas: &[BucketDelta]) -> Result<(), MicrocloudError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let batch_id = batch_id.map_or_else(|| self.next_batch_id(), str::to_owned);
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            match buckets::add_batch(self, &batch_id, deltas).await {
                Ok(_) => {
                    crate::metrics::registry().record_redis_round_trip(started.elapsed());
                    return Ok(());
                }
                Err(error) if attempt < self.config.retries && is_connection_error(&error) => {
                    attempt += 1;
                    tracing::warn!(batch = %batch_id, attempt, error = %error, "bucket batch failed, retrying with the same batch id");
                }
                Err(error) => return Err(unavailable(error)),
            }
        }
    }

    async fn lookup_tunnel(&mut self, key: TunnelKey) -> Result<Option<String>, MicrocloudError> {
        let name = self.keys.tunnel(key);
        self.connection.get(name).await.map_err(unavailable)
    }

    /// Reads every key with one MGET.
    async fn lookup_tunnels(&mut self, keys: &[TunnelKey]) -> Result<Vec<Option<String>>, MicrocloudError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = keys.iter().map(|&key| self.keys.tunnel(key)).collect();
        redis::cmd("MGET").arg(&names).query_async(&mut self.connection).await.map_err(unavailable)
    }

    async fn subscriber(&mut self, imsi: &str) -> Result<Option<SubscriberState>, MicrocloudError> {
        let key = self.keys.subscriber(imsi);
        let json: Option<String> = self.connection.get(&key).await.map_err(unavailable)?;
        json.map(|json| decode_state(&key, &json)).transpose()
    }

    async fn bucket_epochs(&mut self) -> Result<Vec<u64>, MicrocloudError> {
        buckets::epochs(self).await
    }

    async fn bucket_rows(&mut self, epoch: u64) -> Result<Vec<BucketDelta>, MicrocloudError> {
        buckets::rows(self, epoch).await
    }
}

/// Opens one plain connection and sends a PING, so that a wrong address fails within the
/// timeouts instead of after the connection manager's reconnect attempts.
async fn check_reachable(client: &Client, redacted_url: &str, config: &RedisConfig) -> Result<(), MicrocloudError> {
    let probe_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout));
    let mut probe = client
        .get_multiplexed_async_connection_with_config(&probe_config)
        .await
        .map_err(|error| cannot_connect(redacted_url, &error))?;
    redis::cmd("PING")
        .query_async::<()>(&mut probe)
        .await
        .map_err(|error| cannot_connect(redacted_url, &error))
}

fn decode_state(key: &str, json: &str) -> Result<SubscriberState, MicrocloudError> {
    serde_json::from_str(json).map_err(|error| MicrocloudError::InvalidData {
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

fn cannot_connect(redacted_url: &str, error: &RedisError) -> MicrocloudError {
    MicrocloudError::Unavailable {
        backend: BACKEND,
        reason: format!("cannot connect to {redacted_url}: {error}"),
    }
}

fn unavailable(error: RedisError) -> MicrocloudError {
    MicrocloudError::Unavailable {
        backend: BACKEND,
        reason: error.to_string(),
    }
}

/// Returns whether the connection dropped or timed out. The command may or may not have run
/// on the server then.
fn is_connection_error(error: &RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_timeout()
}

/// Returns `url` with the password of its user part replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((user_part, host_part)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match user_part.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host_part}"),
        None => url.to_owned(),
    }
}

/// Returns a TTL in whole seconds, at least 1, as EXPIRE and SET EX take it.
fn ttl_seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX)
}

/// Returns a random number from the standard library's randomly seeded hasher.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}
