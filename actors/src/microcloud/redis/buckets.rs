//! Bucket rows: adding deltas under a batch id, and reading epochs and rows back.

use redis::{AsyncCommands, RedisResult};

use super::keys::{parse_row_member, row_member};
use super::{scripts, ttl_seconds, unavailable, RedisMicrocloud};
use crate::bucket::{BucketDelta, BucketKey, BucketValues};
use crate::microcloud::MicrocloudError;

/// Deltas per script call. Redis runs nothing else while a script runs, so a large flush is
/// cut into several calls of this size, each with its own batch key.
const DELTAS_PER_SCRIPT: usize = 512;

/// Adds `deltas` as batch `batch_id` in one pipeline. Returns false when every chunk of the
/// batch was applied before.
pub(super) async fn add_batch(
    cloud: &mut RedisMicrocloud,
    batch_id: &str,
    deltas: &[BucketDelta],
) -> RedisResult<bool> {
    if deltas.is_empty() {
        return Ok(false);
    }
    let mut pipe = redis::pipe();
    for (chunk_index, chunk) in deltas.chunks(DELTAS_PER_SCRIPT).enumerate() {
        pipe.add_command(chunk_command(cloud, &format!("{batch_id}.{chunk_index}"), chunk));
    }
    cloud.add_meta(&mut pipe);
    let applied: Vec<i64> = pipe.query_async(&mut cloud.connection).await?;
    Ok(applied.contains(&1))
}

/// Builds the EVAL of [`scripts::ADD_BUCKETS`] for one chunk. With ntop compatibility,
/// each delta also names ntop's hash, so both layouts are written under the same batch key.
fn chunk_command(cloud: &RedisMicrocloud, chunk_id: &str, deltas: &[BucketDelta]) -> redis::Cmd {
    let keys = &cloud.keys;
    let ntop_keys: Option<Vec<String>> = cloud.ntop_names.as_ref().map(|names| names.hash_keys(deltas));
    let keys_per_delta: usize = if ntop_keys.is_some() { 3 } else { 2 };
    let mut command = redis::cmd("EVAL");
    command
        .arg(scripts::ADD_BUCKETS)
        .arg(2 + keys_per_delta * deltas.len())
        .arg(keys.batch(chunk_id))
        .arg(keys.epochs());
    let members: Vec<String> = deltas.iter().map(|delta| row_member(&delta.imsi, delta.protocol)).collect();
    let mut ntop_keys = ntop_keys.iter().flatten();
    for (delta, member) in deltas.iter().zip(&members) {
        command.arg(keys.bucket_row(delta.epoch, member)).arg(keys.bucket_index(delta.epoch));
        if let Some(ntop_key) = ntop_keys.next() {
            command.arg(ntop_key);
        }
    }
    command
        .arg(ttl_seconds(cloud.config.batch_ttl))
        .arg(ttl_seconds(cloud.config.bucket_ttl))
        .arg(keys_per_delta);
    for (delta, member) in deltas.iter().zip(&members) {
        command
            .arg(delta.epoch)
            .arg(member)
            .arg(delta.packets)
            .arg(delta.bytes)
            .arg(delta.flows)
            .arg(delta.duration_us);
    }
    command
}

/// Returns the epochs whose bucket index still exists, ascending. Epochs whose index has
/// expired are removed from the epoch set on the way.
pub(super) async fn epochs(cloud: &mut RedisMicrocloud) -> Result<Vec<u64>, MicrocloudError> {
    let epochs_key = cloud.keys.epochs();
    let epochs: Vec<u64> = cloud.connection.zrange(&epochs_key, 0, -1).await.map_err(unavailable)?;
    if epochs.is_empty() {
        return Ok(epochs);
    }
    let mut pipe = redis::pipe();
    for &epoch in &epochs {
        pipe.exists(cloud.keys.bucket_index(epoch));
    }
    let present: Vec<bool> = pipe.query_async(&mut cloud.connection).await.map_err(unavailable)?;
    let mut kept = Vec::with_capacity(epochs.len());
    let mut expired = Vec::new();
    for (epoch, present) in epochs.into_iter().zip(present) {
        if present {
            kept.push(epoch);
        } else {
            expired.push(epoch);
        }
    }
    if !expired.is_empty() {
        cloud.connection.zrem::<_, _, ()>(&epochs_key, expired).await.map_err(unavailable)?;
    }
    Ok(kept)
}

/// Returns the rows of the bucket starting at `epoch`, sorted by IMSI then protocol.
pub(super) async fn rows(cloud: &mut RedisMicrocloud, epoch: u64) -> Result<Vec<BucketDelta>, MicrocloudError> {
    let index_key = cloud.keys.bucket_index(epoch);
    let members: Vec<String> = cloud.connection.smembers(&index_key).await.map_err(unavailable)?;
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for member in &members {
        pipe.cmd("HMGET").arg(cloud.keys.bucket_row(epoch, member)).arg(&["packets", "bytes", "flows", "duration_us"]);
    }
    let counters: Vec<Vec<Option<u64>>> = pipe.query_async(&mut cloud.connection).await.map_err(unavailable)?;
    let mut rows = Vec::with_capacity(members.len());
    for (member, counters) in members.iter().zip(counters) {
        let Some((imsi, protocol)) = parse_row_member(member) else {
            return Err(invalid_member(&index_key, member));
        };
        // A row hash can expire a moment before its index; such a row has nothing to report.
        let Some(values) = row_values(&counters) else { continue };
        rows.push(BucketDelta::new(BucketKey { epoch, imsi, protocol }, values));
    }
    rows.sort_unstable_by(|a, b| (a.imsi.as_str(), a.protocol).cmp(&(b.imsi.as_str(), b.protocol)));
    Ok(rows)
}

/// Builds the counters of a row from its four fields, or `None` when the row is gone.
fn row_values(counters: &[Option<u64>]) -> Option<BucketValues> {
    if counters.iter().all(Option::is_none) {
        return None;
    }
    let field = |index: usize| counters.get(index).copied().flatten().unwrap_or(0);
    Some(BucketValues {
        packets: field(0),
        bytes: field(1),
        flows: field(2),
        duration_us: field(3),
    })
}

fn invalid_member(index_key: &str, member: &str) -> MicrocloudError {
    MicrocloudError::InvalidData {
        key: index_key.to_owned(),
        reason: format!("member {member:?} is not <IMSI>:<master id>.<app id>"),
    }
}
