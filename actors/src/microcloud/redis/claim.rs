//! Report claims and bucket retention, for `imsitrace report` run by several collectors.
//!
//! A claim is the string `P report:<epoch>`, set with SET NX to the name of the owner that
//! writes `<epoch>.imsi`. Of several collectors that report one bucket, only the first to
//! set the key writes the file. The others find the key held and write nothing.

use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::{ttl_seconds, unavailable, RedisMicrocloud};
use crate::microcloud::MicrocloudError;

/// Sets the claim unless another owner holds it, and renews its TTL when the same owner
/// holds it already, so a rerun by the owner whose earlier run failed can report again.
///
/// KEYS: claim key. ARGV: owner, TTL in seconds. Returns 1 when the owner holds the claim
/// after the call and 0 when another owner holds it.
const CLAIM_REPORT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
";

/// Deletes the claim only while it names the given owner.
///
/// KEYS: claim key. ARGV: owner. Returns the number of keys deleted.
const RELEASE_REPORT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// Deletes a bucket (retention 0) or lets its rows and index expire within the retention.
/// EXPIRE with the LT flag (Redis 7.0 or later) only shortens a TTL, so a bucket already
/// closer to expiry keeps its TTL.
///
/// KEYS: bucket index, epochs sorted set. ARGV: epoch, retention in seconds, row key prefix
/// (`P bucket:<epoch>:`). Returns the number of rows in the index.
///
/// NOTE: the row keys are built inside the script from the index members instead of being
/// passed in KEYS, which Redis Cluster does not allow. The schema targets one server.
const EXPIRE_BUCKET: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
local retention = tonumber(ARGV[2])
for _, member in ipairs(members) do
    local row = ARGV[3] .. member
    if retention == 0 then
        redis.call('DEL', row)
    else
        redis.call('EXPIRE', row, retention, 'LT')
    end
end
if retention == 0 then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
else
    redis.call('EXPIRE', KEYS[1], retention, 'LT')
end
return #members
";

impl RedisMicrocloud {
    /// Claims the report of the bucket starting at `epoch` for `owner`, for `ttl` (whole
    /// seconds, at least 1).
    ///
    /// Returns true when `owner` holds the claim: it set the claim now, or held it already
    /// and the TTL was renewed. Returns false when another owner holds it. Once the claim
    /// expires, any owner can claim the bucket again, so the TTL should outlast the bucket.
    pub async fn claim_report(&mut self, epoch: u64, owner: &str, ttl: Duration) -> Result<bool, MicrocloudError> {
        let holds_claim: i64 = Script::new(CLAIM_REPORT)
            .key(self.keys.report_claim(epoch))
            .arg(owner)
            .arg(ttl_seconds(ttl))
            .invoke_async(&mut self.connection)
            .await
            .map_err(unavailable)?;
        Ok(holds_claim == 1)
    }

    /// Returns the owner that holds the claim of the bucket starting at `epoch`, if any.
    pub async fn report_owner(&mut self, epoch: u64) -> Result<Option<String>, MicrocloudError> {
        let key = self.keys.report_claim(epoch);
        self.connection.get(key).await.map_err(unavailable)
    }

    /// Deletes the claim of the bucket starting at `epoch` while `owner` holds it, so that
    /// another run can report the bucket after this one failed to. Returns whether the
    /// claim was deleted.
    pub async fn release_report(&mut self, epoch: u64, owner: &str) -> Result<bool, MicrocloudError> {
        let deleted: i64 = Script::new(RELEASE_REPORT)
            .key(self.keys.report_claim(epoch))
            .arg(owner)
            .invoke_async(&mut self.connection)
            .await
            .map_err(unavailable)?;
        Ok(deleted == 1)
    }

    /// Limits how long the bucket starting at `epoch` is kept. A zero `retention` deletes
    /// its rows and index at once and removes the epoch from `P epochs`. Otherwise the rows
    /// and the index expire within `retention` (whole seconds), unless their TTL is
    /// shorter already. Returns the number of rows the bucket had.
    ///
    /// A delta added to the bucket afterwards sets the bucket TTL of `RedisConfig` again on
    /// the rows it writes and on the index.
    pub async fn expire_bucket(&mut self, epoch: u64, retention: Duration) -> Result<usize, MicrocloudError> {
        let retention_seconds = if retention.is_zero() { 0 } else { ttl_seconds(retention) };
        let rows: i64 = Script::new(EXPIRE_BUCKET)
            .key(self.keys.bucket_index(epoch))
            .key(self.keys.epochs())
            .arg(epoch)
            .arg(retention_seconds)
            .arg(self.keys.bucket_row(epoch, ""))
            .invoke_async(&mut self.connection)
            .await
            .map_err(unavailable)?;
        Ok(usize::try_from(rows).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_server::RedisServer;
    use super::super::{RedisConfig, RedisMicrocloud};
    use crate::microcloud::tests::{delta, DNS, HTTP, IMSI_A, IMSI_B};
    use crate::microcloud::Microcloud;

    const DAY: Duration = Duration::from_secs(86_400);

    async fn connect(server: &RedisServer) -> RedisMicrocloud {
        RedisMicrocloud::connect(&server.url(), RedisConfig::default())
            .await
            .expect("connect to the test server")
    }

    /// Returns the remaining TTL of `key` in seconds (-2: no key, -1: no TTL).
    fn ttl(server: &RedisServer, key: &str) -> i64 {
        let reply = server.command(&format!("TTL {key}"));
        reply.trim().trim_start_matches(':').parse().expect("TTL reply is an integer")
    }

    #[tokio::test]
    async fn claim_held_by_first_owner() {
        let server = RedisServer::start();
        let mut cloud = connect(&server).await;

        assert!(cloud.claim_report(600, "collector-a", DAY).await.expect("first claim"));
        assert!(!cloud.claim_report(600, "collector-b", DAY).await.expect("second claim"));
        assert_eq!(cloud.report_owner(600).await.expect("owner").as_deref(), Some("collector-a"));
        assert!(cloud.claim_report(900, "collector-b", DAY).await.expect("other epoch"));
        assert_eq!(cloud.report_owner(1200).await.expect("owner"), None);
    }

    #[tokio::test]
    async fn claim_renewed_by_same_owner() {
        let server = RedisServer::start();
        let mut cloud = connect(&server).await;

        assert!(cloud.claim_report(600, "collector-a", Duration::from_secs(60)).await.expect("claim"));
        let first_ttl = ttl(&server, "imsitrace:v1:report:600");
        assert!((1..=60).contains(&first_ttl), "TTL {first_ttl}");
        assert!(cloud.claim_report(600, "collector-a", DAY).await.expect("rerun"));
        let renewed_ttl = ttl(&server, "imsitrace:v1:report:600");
        assert!(renewed_ttl > 60, "TTL {renewed_ttl}");
    }

    #[tokio::test]
    async fn concurrent_claims_one_winner() {
        let server = RedisServer::start();
        let cloud = connect(&server).await;
        let mut tasks = Vec::new();
        for index in 0..16 {
            let mut clone = cloud.clone();
            tasks.push(tokio::spawn(async move {
                clone.claim_report(600, &format!("collector-{index}"), DAY).await.expect("claim")
            }));
        }
        let mut winners = 0;
        for task in tasks {
            if task.await.expect("task") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn release_only_by_owner() {
        let server = RedisServer::start();
        let mut cloud = connect(&server).await;
        assert!(cloud.claim_report(600, "collector-a", DAY).await.expect("claim"));

        assert!(!cloud.release_report(600, "collector-b").await.expect("release by other"));
        assert_eq!(cloud.report_owner(600).await.expect("owner").as_deref(), Some("collector-a"));
        assert!(cloud.release_report(600, "collector-a").await.expect("release by owner"));
        assert!(cloud.claim_report(600, "collector-b", DAY).await.expect("claim after release"));
    }

    #[tokio::test]
    async fn zero_retention_deletes_bucket() {
        let server = RedisServer::start();
        let mut cloud = connect(&server).await;
        let deltas = [delta(600, IMSI_A, HTTP, 1), delta(600, IMSI_B, DNS, 2), delta(900, IMSI_A, HTTP, 3)];
        cloud.add_buckets(&deltas).await.expect("add");

        assert_eq!(cloud.expire_bucket(600, Duration::ZERO).await.expect("expire"), 2);
        assert!(cloud.bucket_rows(600).await.expect("rows").is_empty());
        assert_eq!(ttl(&server, "imsitrace:v1:bucket:600"), -2);
        assert_eq!(ttl(&server, &format!("imsitrace:v1:bucket:600:{IMSI_A}:7.7")), -2);
        assert_eq!(server.command("ZSCORE imsitrace:v1:epochs 600").trim(), "$-1");
        assert_eq!(cloud.bucket_epochs().await.expect("epochs"), vec![900]);
        assert_eq!(cloud.bucket_rows(900).await.expect("rows").len(), 1);
    }

    #[tokio::test]
    async fn retention_only_shortens_ttl() {
        let server = RedisServer::start();
        let mut cloud = connect(&server).await;
        cloud.add_buckets(&[delta(600, IMSI_A, HTTP, 1)]).await.expect("add");
        let row = format!("imsitrace:v1:bucket:600:{IMSI_A}:7.7");
        assert!(ttl(&server, &row) > 3600, "bucket TTL before the retention");

        assert_eq!(cloud.expire_bucket(600, Duration::from_secs(60)).await.expect("expire"), 1);
        let index_ttl = ttl(&server, "imsitrace:v1:bucket:600");
        let row_ttl = ttl(&server, &row);
        assert!((1..=60).contains(&index_ttl), "index TTL {index_ttl}");
        assert!((1..=60).contains(&row_ttl), "row TTL {row_ttl}");

        cloud.expire_bucket(600, DAY).await.expect("longer retention");
        let kept_ttl = ttl(&server, &row);
        assert!((1..=60).contains(&kept_ttl), "row TTL {kept_ttl} after a longer retention");
        assert_eq!(cloud.bucket_rows(600).await.expect("rows").len(), 1);
    }
}
