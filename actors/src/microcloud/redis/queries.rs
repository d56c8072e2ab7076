//! Reads for the operators' questions: a subscriber by MSISDN or UE address, the active
//! subscribers, and the bucket rows of a time window that match a protocol.
//!
//! Every lookup goes through an index written with the subscriber state (`index.rs`) or the
//! bucket index, never through KEYS or SCAN. An index entry can name a state that expired
//! or that no longer has the MSISDN or address, so each read checks the state it leads to.

use std::net::IpAddr;

use redis::{AsyncCommands, FromRedisValue, Pipeline};
use serde::Serialize;

use super::index::ue_addresses;
use super::keys::{parse_row_member, ue_prefix};
use super::{decode_state, unavailable, RedisMicrocloud};
use crate::bucket::{BucketDelta, BucketKey, BucketValues};
use crate::flow::classify::AppProtocol;
use crate::microcloud::{AttachState, Microcloud, MicrocloudError, SubscriberState};

/// Commands per pipeline when a read covers many keys, so that one reply stays small.
const KEYS_PER_PIPELINE: usize = 1000;

/// Removes members of the active set whose state key no longer exists.
///
/// KEYS: active set, then the state key of each member. ARGV: the IMSI of each member, in
/// the order of their state keys. Returns the number of members removed. The check and the
/// removal run in one script, so a subscriber whose state is written again in between
/// stays in the set.
const PRUNE_ACTIVE: &str = r"
local removed = 0
for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then
        removed = removed + redis.call('ZREM', KEYS[1], ARGV[i - 1])
    end
end
return removed
";

/// A subscriber whose stored state is attached or idle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveSubscriber {
    /// IMSI digits.
    pub imsi: String,
    /// Attach state, `Attached` or `Idle`.
    pub state: AttachState,
    /// Packet time of the latest event of the subscriber, microseconds since the epoch.
    pub last_change_us: u64,
}

impl RedisMicrocloud {
    /// Returns the state of the subscriber that `P msisdn:<msisdn>` names, or `None` when
    /// the entry is missing, its state expired, or that state now has another MSISDN.
    pub async fn subscriber_by_msisdn(&mut self, msisdn: &str) -> Result<Option<SubscriberState>, MicrocloudError> {
        let imsi: Option<String> = self.connection.get(self.keys.msisdn(msisdn)).await.map_err(unavailable)?;
        let Some(imsi) = imsi else { return Ok(None) };
        let state = self.subscriber(&imsi).await?;
        Ok(state.filter(|state| state.msisdn.as_deref() == Some(msisdn)))
    }

    /// Returns the state of the subscriber that `P ueip:<address>` names, or `None` when the
    /// entry is missing, its state expired, or that state now has another address.
    ///
    /// An IPv6 `addr` matches a state whose UE IPv6 address has the same /64 prefix. When a
    /// reused address was written for two subscribers, the entry names the one whose state
    /// was written last while attached or idle.
    pub async fn subscriber_by_ue_address(&mut self, addr: IpAddr) -> Result<Option<SubscriberState>, MicrocloudError> {
        let imsi: Option<String> = self.connection.get(self.keys.ue_address(addr)).await.map_err(unavailable)?;
        let Some(imsi) = imsi else { return Ok(None) };
        let state = self.subscriber(&imsi).await?;
        let prefix = ue_prefix(addr);
        Ok(state.filter(|state| ue_addresses(state).any(|held| ue_prefix(held) == prefix)))
    }

    /// Returns the subscribers of `P active` whose stored state is attached or idle, sorted
    /// by IMSI.
    ///
    /// Members whose state expired are removed from the set. A member whose state is
    /// detached is left out of the result but stays in the set, because only a state write
    /// removes it: that state may have been written by a node that does not keep the index.
    pub async fn active_subscribers(&mut self) -> Result<Vec<ActiveSubscriber>, MicrocloudError> {
        let members: Vec<String> = self.connection.zrange(self.keys.active(), 0, -1).await.map_err(unavailable)?;
        let mut active = Vec::with_capacity(members.len());
        for chunk in members.chunks(KEYS_PER_PIPELINE) {
            self.read_active_chunk(chunk, &mut active).await?;
        }
        active.sort_unstable_by(|a, b| a.imsi.cmp(&b.imsi));
        Ok(active)
    }

    /// Returns the start times of the stored buckets from `first` to `last` inclusive
    /// (seconds since the epoch, no upper bound when `last` is `None`), ascending, from the
    /// scores of `P epochs`. An epoch whose bucket expired reads as a bucket with no row.
    pub async fn bucket_epochs_between(&mut self, first: u64, last: Option<u64>) -> Result<Vec<u64>, MicrocloudError> {
        let upper = last.map_or_else(|| "+inf".to_owned(), |last| last.to_string());
        redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.epochs())
            .arg(first)
            .arg(upper)
            .query_async(&mut self.connection)
            .await
            .map_err(unavailable)
    }

    /// Returns the rows of the bucket starting at `epoch` whose protocol `matches` accepts,
    /// sorted by IMSI then protocol. Rows of other protocols are not read: the filter runs
    /// on the members of `P bucket:<epoch>`, which name the protocol ids.
    pub async fn bucket_rows_matching(
        &mut self,
        epoch: u64,
        matches: impl Fn(AppProtocol) -> bool,
    ) -> Result<Vec<BucketDelta>, MicrocloudError> {
        let index_key = self.keys.bucket_index(epoch);
        let members: Vec<String> = self.connection.smembers(&index_key).await.map_err(unavailable)?;
        let mut selected = Vec::new();
        for member in &members {
            let Some((imsi, protocol)) = parse_row_member(member) else {
                return Err(MicrocloudError::InvalidData {
                    key: index_key,
                    reason: format!("member {member:?} is not <IMSI>:<master id>.<app id>"),
                });
            };
            if matches(protocol) {
                selected.push((member.as_str(), BucketKey { epoch, imsi, protocol }));
            }
        }
        let mut rows = Vec::with_capacity(selected.len());
        for chunk in selected.chunks(KEYS_PER_PIPELINE) {
            self.read_rows_chunk(chunk, &mut rows).await?;
        }
        rows.sort_unstable_by(|a, b| (a.imsi.as_str(), a.protocol).cmp(&(b.imsi.as_str(), b.protocol)));
        Ok(rows)
    }

    /// Reads the states of one chunk of active-set members, appends those attached or idle
    /// to `active`, and prunes the members whose state is gone.
    async fn read_active_chunk(&mut self, imsis: &[String], active: &mut Vec<ActiveSubscriber>) -> Result<(), MicrocloudError> {
        let mut pipe = redis::pipe();
        for imsi in imsis {
            pipe.get(self.keys.subscriber(imsi));
        }
        let states: Vec<Option<String>> = query(&mut pipe, self).await?;
        let mut expired = Vec::new();
        for (imsi, json) in imsis.iter().zip(states) {
            let Some(json) = json else {
                expired.push(imsi.as_str());
                continue;
            };
            let state = decode_state(&self.keys.subscriber(imsi), &json)?;
            if state.state != AttachState::Detached {
                active.push(ActiveSubscriber { imsi: state.imsi, state: state.state, last_change_us: state.last_change_us });
            }
        }
        if !expired.is_empty() {
            self.prune_active(&expired).await?;
        }
        Ok(())
    }

    async fn prune_active(&mut self, imsis: &[&str]) -> Result<(), MicrocloudError> {
        let script = redis::Script::new(PRUNE_ACTIVE);
        let mut invocation = script.prepare_invoke();
        invocation.key(self.keys.active());
        for imsi in imsis {
            invocation.key(self.keys.subscriber(imsi)).arg(*imsi);
        }
        let removed: i64 = invocation.invoke_async(&mut self.connection).await.map_err(unavailable)?;
        tracing::debug!(removed, "pruned active subscribers whose state expired");
        Ok(())
    }

    /// Reads the counters of one chunk of selected rows and appends the rows still stored.
    async fn read_rows_chunk(&mut self, selected: &[(&str, BucketKey)], rows: &mut Vec<BucketDelta>) -> Result<(), MicrocloudError> {
        let mut pipe = redis::pipe();
        for (member, key) in selected {
            pipe.cmd("HMGET")
                .arg(self.keys.bucket_row(key.epoch, member))
                .arg(&["packets", "bytes", "flows", "duration_us"]);
        }
        let counters: Vec<[Option<u64>; 4]> = query(&mut pipe, self).await?;
        for ((_, key), counters) in selected.iter().zip(counters) {
            // A row hash can expire a moment before its index; such a row has no traffic left.
            if counters.iter().all(Option::is_none) {
                continue;
            }
            let [packets, bytes, flows, duration_us] = counters.map(|value| value.unwrap_or(0));
            rows.push(BucketDelta::new(*key, BucketValues { packets, bytes, flows, duration_us }));
        }
        Ok(())
    }
}

async fn query<T: FromRedisValue>(pipe: &mut Pipeline, cloud: &mut RedisMicrocloud) -> Result<T, MicrocloudError> {
    pipe.query_async(&mut cloud.connection).await.map_err(unavailable)
}
