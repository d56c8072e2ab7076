//! Tracker registrations in the Redis microcloud, shared by every collector.
//!
//! Keys, under `<prefix>v<SCHEMA_VERSION>:` (see `docs/microcloud.md`):
//! - `trackers`: hash, tracker id -> JSON [`StoredTracker`], active and recently ended;
//! - `tracker:next`: counter incremented for each new id, so ids are unique across
//!   collectors;
//! - `tracker:audit`: list of audit lines (JSON), newest last, trimmed to
//!   [`AUDIT_LIST_MAX`] entries.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, Script};
use serde::{Deserialize, Serialize};

use super::protocol::Tracker;
use crate::microcloud::redis::SCHEMA_VERSION;

/// Maximum number of lines kept in the Redis audit list; older lines are trimmed.
pub const AUDIT_LIST_MAX: isize = 100_000;

/// Replaces a hash field only when it still holds the expected value. Returns 1 when it
/// replaced the field, 0 when another writer changed it first.
const COMPARE_AND_SET: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
";

/// A registration as stored in the `trackers` hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTracker {
    /// The registration.
    pub tracker: Tracker,
    /// Detach or expiry time, milliseconds since the Unix epoch, once it ended.
    pub ended_at_ms: Option<u64>,
    /// `detach` or `expire`, once it ended.
    pub end_action: Option<String>,
}

impl StoredTracker {
    /// Returns whether the tracker has neither ended nor passed its expiry time at `now_ms`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.ended_at_ms.is_none() && !self.is_due_for_expiry(now_ms)
    }

    /// Returns whether the tracker has not ended but its expiry time passed at `now_ms`.
    pub fn is_due_for_expiry(&self, now_ms: u64) -> bool {
        self.ended_at_ms.is_none() && self.tracker.expires_at_ms.is_some_and(|expires| expires <= now_ms)
    }
}

/// A stored registration with the exact JSON text it was read from, for compare-and-set.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The decoded registration.
    pub stored: StoredTracker,
    /// The JSON value of the hash field.
    pub json: String,
}

/// Connection to the tracker keys of one microcloud.
#[derive(Clone)]
pub struct TrackerStore {
    connection: ConnectionManager,
    root: String,
}

impl TrackerStore {
    /// Connects to the Redis server at `url` and uses the keys under `prefix`. Fails when
    /// the URL is invalid or the server does not reply within `timeout`.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<TrackerStore, String> {
        let client = Client::open(url).map_err(|error| format!("invalid Redis URL for the tracker registry: {error}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|error| format!("the tracker registry cannot connect to the Redis server of microcloud.redis: {error}"))?;
        Ok(TrackerStore { connection, root: format!("{prefix}v{SCHEMA_VERSION}:") })
    }

    fn trackers_key(&self) -> String {
        format!("{}trackers", self.root)
    }

    /// Allocates the next tracker id, `T<n>`, unique across every collector of the server.
    pub async fn next_id(&mut self) -> Result<String, String> {
        let key = format!("{}tracker:next", self.root);
        let number: u64 = self.connection.incr(&key, 1).await.map_err(|error| redis_failed("allocate a tracker id", &error))?;
        Ok(format!("T{number}"))
    }

    /// Reads every stored registration. A field that is not valid JSON is logged and skipped.
    pub async fn load(&mut self) -> Result<Vec<Loaded>, String> {
        let fields: Vec<(String, String)> = self.connection.hgetall(self.trackers_key()).await.map_err(|error| redis_failed("read the trackers", &error))?;
        let mut loaded = Vec::with_capacity(fields.len());
        for (id, json) in fields {
            match serde_json::from_str::<StoredTracker>(&json) {
                Ok(stored) => loaded.push(Loaded { stored, json }),
                Err(error) => tracing::warn!(tracker = %id, %error, "skipped a stored tracker that is not valid JSON"),
            }
        }
        loaded.sort_by(|a, b| compare_ids(&a.stored.tracker.id, &b.stored.tracker.id));
        Ok(loaded)
    }

    /// Reads one registration, or `None` when the id is not stored.
    pub async fn get(&mut self, id: &str) -> Result<Option<Loaded>, String> {
        let json: Option<String> = self.connection.hget(self.trackers_key(), id).await.map_err(|error| redis_failed("read a tracker", &error))?;
        let Some(json) = json else { return Ok(None) };
        let stored = serde_json::from_str(&json).map_err(|error| format!("the stored tracker {id} is not valid JSON: {error}"))?;
        Ok(Some(Loaded { stored, json }))
    }

    /// Stores a new registration.
    pub async fn insert(&mut self, stored: &StoredTracker) -> Result<(), String> {
        let json = to_json(stored);
        let () = self.connection.hset(self.trackers_key(), &stored.tracker.id, json).await.map_err(|error| redis_failed("store a tracker", &error))?;
        Ok(())
    }

    /// Replaces `previous` by `next` unless another collector changed it first. Returns
    /// whether this call replaced it.
    pub async fn replace(&mut self, previous: &Loaded, next: &StoredTracker) -> Result<bool, String> {
        let replaced: i64 = Script::new(COMPARE_AND_SET)
            .key(self.trackers_key())
            .arg(&next.tracker.id)
            .arg(&previous.json)
            .arg(to_json(next))
            .invoke_async(&mut self.connection)
            .await
            .map_err(|error| redis_failed("update a tracker", &error))?;
        Ok(replaced == 1)
    }

    /// Deletes registrations by id.
    pub async fn remove(&mut self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let () = self.connection.hdel(self.trackers_key(), ids).await.map_err(|error| redis_failed("delete ended trackers", &error))?;
        Ok(())
    }

    /// Appends one audit line to the audit list and trims the list.
    pub async fn append_audit(&mut self, line: &str) -> Result<(), String> {
        let key = format!("{}tracker:audit", self.root);
        let mut pipe = redis::pipe();
        pipe.rpush(&key, line).ignore().ltrim(&key, -AUDIT_LIST_MAX, -1).ignore();
        let () = pipe.query_async(&mut self.connection).await.map_err(|error| redis_failed("append to the tracker audit list", &error))?;
        Ok(())
    }

    /// Reads the whole audit list, oldest first.
    pub async fn audit_lines(&mut self) -> Result<Vec<String>, String> {
        let key = format!("{}tracker:audit", self.root);
        self.connection.lrange(&key, 0, -1).await.map_err(|error| redis_failed("read the tracker audit list", &error))
    }
}

/// Orders ids `T<n>` by number, and any other text after them by text.
pub fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let number = |id: &str| id.strip_prefix('T').and_then(|digits| digits.parse::<u64>().ok());
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn to_json(stored: &StoredTracker) -> String {
    // A struct of strings, integers and options always serializes.
    serde_json::to_string(stored).unwrap_or_default()
}

fn redis_failed(what: &str, error: &redis::RedisError) -> String {
    format!("cannot {what} on the Redis server of microcloud.redis: {error}")
}
