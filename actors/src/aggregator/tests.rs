//! Tests of the report job and of aggregator runs against a real redis-server, with the
//! wall time given to each run.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::bucket::BucketDelta;
use crate::flow::classify::AppProtocol;
use crate::microcloud::redis::test_server::RedisServer;
use crate::microcloud::{Microcloud, RedisConfig, RedisMicrocloud};
use crate::wire::control::Digits;

const IMSI: &str = "001010000000001";
/// nDPI 4.2 protocol id 7, printed `HTTP`.
const HTTP: AppProtocol = AppProtocol { master: 7, app: 7 };
/// A wall time in the bucket starting at 1500: with lag 2 the newest final bucket is 900.
const NOW_S: u64 = 1_500 + 10;
const DAY: Duration = Duration::from_secs(86_400);

fn delta(epoch: u64, packets: u64) -> BucketDelta {
    BucketDelta {
        epoch,
        imsi: Digits::from_ascii(IMSI.as_bytes()).expect("test IMSI is digits"),
        protocol: HTTP,
        packets,
        bytes: packets * 100,
        flows: 1,
        duration_us: 2_500_000,
    }
}

/// Returns the report of one delta made by [`delta`]: bytes are 100 per packet and the 2.5-s
/// duration prints as 2 whole seconds.
fn expected_report(epoch: u64, packets: u64) -> String {
    let header = crate::output::report::REPORT_HEADER;
    format!("{header}\n{epoch} {IMSI} 300 HTTP {packets} {} 1 2\n", packets * 100)
}

/// Connects without reconnect attempts, so a command fails at once while the server is down.
async fn connect(server: &RedisServer) -> RedisMicrocloud {
    let config = RedisConfig { reconnect_retries: 0, ..RedisConfig::default() };
    RedisMicrocloud::connect(&server.url(), config).await.expect("connect to the test server")
}

/// Stores one delta in each of the buckets 600, 900 and 1200, with 2, 3 and 4 packets.
async fn store_three_buckets(server: &RedisServer) {
    let mut cloud = connect(server).await;
    cloud.add_buckets(&[delta(600, 2), delta(900, 3), delta(1200, 4)]).await.expect("add buckets");
}

async fn aggregation(server: &RedisServer, outdir: &Path, owner: &str, retention: Option<Duration>) -> Aggregation {
    let settings = ReportSettings { outdir: outdir.to_path_buf(), owner: owner.to_owned(), claim_ttl: DAY, retention };
    let job = ReportJob::new(connect(server).await, settings).expect("report job");
    Aggregation::new(job, AggregatorConfig::default())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the report directory")
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn tick_reports_final_buckets() {
    let server = RedisServer::start();
    store_three_buckets(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let mut aggregation = aggregation(&server, dir.path(), "collector-a", None).await;

    assert_eq!(aggregation.tick(NOW_S).await, vec![600, 900]);
    assert_eq!(names_in(dir.path()), vec!["600.imsi", "900.imsi"]);
    assert_eq!(read(&dir.path().join("600.imsi")), expected_report(600, 2));
    assert_eq!(read(&dir.path().join("900.imsi")), expected_report(900, 3));
    assert_eq!(aggregation.tick(NOW_S).await, Vec::<u64>::new(), "second run at the same time");

    assert_eq!(aggregation.tick(NOW_S + 300).await, vec![1200], "one bucket later");
    let stats = aggregation.stats();
    assert_eq!(stats.ticks, 3);
    assert_eq!(stats.reports_written, 3);
    assert_eq!(stats.failed_ticks, 0);
}

#[tokio::test]
async fn tick_skips_other_owners_claim() {
    let server = RedisServer::start();
    store_three_buckets(&server).await;
    let mut other = connect(&server).await;
    assert!(other.claim_report(600, "collector-b", DAY).await.expect("claim"));
    let dir = tempfile::tempdir().unwrap();
    let mut aggregation = aggregation(&server, dir.path(), "collector-a", None).await;

    assert_eq!(aggregation.tick(NOW_S).await, vec![900]);
    assert_eq!(names_in(dir.path()), vec!["900.imsi"]);
    assert_eq!(aggregation.stats().claimed_elsewhere, 1);
}

#[tokio::test]
async fn restart_keeps_written_report() {
    let server = RedisServer::start();
    store_three_buckets(&server).await;
    let dir = tempfile::tempdir().unwrap();
    aggregation(&server, dir.path(), "collector-a", None).await.tick(NOW_S).await;
    let marked = dir.path().join("600.imsi");
    std::fs::write(&marked, "left by the first run\n").unwrap();

    let mut restarted = aggregation(&server, dir.path(), "collector-a", None).await;
    assert_eq!(restarted.tick(NOW_S).await, Vec::<u64>::new());
    assert_eq!(read(&marked), "left by the first run\n", "the report was written again");
}

#[tokio::test]
async fn claim_without_report_is_reported() {
    // A run that claimed bucket 600 and stopped before writing it.
    let server = RedisServer::start();
    store_three_buckets(&server).await;
    let mut cloud = connect(&server).await;
    assert!(cloud.claim_report(600, "collector-a", DAY).await.expect("claim"));
    let dir = tempfile::tempdir().unwrap();
    let mut aggregation = aggregation(&server, dir.path(), "collector-a", None).await;

    assert_eq!(aggregation.tick(NOW_S).await, vec![600, 900]);
    assert_eq!(read(&dir.path().join("600.imsi")), expected_report(600, 2));
}

#[tokio::test]
async fn zero_retention_deletes_reported() {
    let server = RedisServer::start();
    store_three_buckets(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let mut aggregation = aggregation(&server, dir.path(), "collector-a", Some(Duration::ZERO)).await;

    assert_eq!(aggregation.tick(NOW_S).await, vec![600, 900]);
    let mut cloud = connect(&server).await;
    assert_eq!(cloud.bucket_epochs().await.expect("epochs"), vec![1200]);
    assert_eq!(server.command("EXISTS imsitrace:v1:bucket:600").trim(), ":0");
    assert_eq!(server.command(&format!("EXISTS imsitrace:v1:bucket:900:{IMSI}:7.7")).trim(), ":0");
}

#[tokio::test]
async fn retention_shortens_ttl() {
    let server = RedisServer::start();
    store_three_buckets(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let mut aggregation = aggregation(&server, dir.path(), "collector-a", Some(Duration::from_secs(60))).await;

    aggregation.tick(NOW_S).await;
    for key in ["imsitrace:v1:bucket:600".to_owned(), format!("imsitrace:v1:bucket:600:{IMSI}:7.7")] {
        let reply = server.command(&format!("TTL {key}"));
        let ttl: i64 = reply.trim().trim_start_matches(':').parse().expect("TTL reply");
        assert!((1..=60).contains(&ttl), "TTL of {key}: {ttl}");
    }
    let reply = server.command("TTL imsitrace:v1:bucket:1200");
    let unreported: i64 = reply.trim().trim_start_matches(':').parse().expect("TTL reply");
    assert!(unreported > 3600, "TTL of the unreported bucket: {unreported}");
}

#[tokio::test]
async fn two_aggregators_write_each_once() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let deltas: Vec<BucketDelta> = (1..=20).map(|index| delta(index * 300, index)).collect();
    cloud.add_buckets(&deltas).await.expect("add buckets");
    let dir = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = aggregation(&server, &dir_a, "collector-a", Some(Duration::ZERO)).await;
    let mut b = aggregation(&server, &dir_b, "collector-b", Some(Duration::ZERO)).await;

    // 20 buckets from 300 to 6000; at 6600 + 10 with lag 2 every one of them is final.
    let now_s = 6_600 + 10;
    let (written_a, written_b) = tokio::join!(a.tick(now_s), b.tick(now_s));
    let mut all: Vec<u64> = written_a.iter().chain(&written_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=20).map(|index| index * 300).collect::<Vec<_>>());
    for epoch in &written_a {
        assert!(!dir_b.join(format!("{epoch}.imsi")).exists(), "{epoch} written by both");
    }
    assert_eq!(names_in(&dir_a).len() + names_in(&dir_b).len(), 20);
}

#[tokio::test]
async fn outage_retried_next_tick() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut aggregation = aggregation(&server, dir.path(), "collector-a", None).await;
    server.command("SHUTDOWN NOSAVE");

    assert_eq!(aggregation.tick(NOW_S).await, Vec::<u64>::new());
    assert_eq!(aggregation.stats().failed_ticks, 1);

    server.restart();
    store_three_buckets(&server).await;
    let mut written = Vec::new();
    // The connection is reopened in the background after the failure, so the first runs
    // after the restart may still fail; each is a new attempt.
    for _ in 0..50 {
        written = aggregation.tick(NOW_S).await;
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(written, vec![600, 900]);
}

#[tokio::test]
async fn report_job_empty_bucket_releases_claim() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = ReportSettings { outdir: dir.path().to_path_buf(), owner: "collector-a".into(), claim_ttl: DAY, retention: None };
    let mut job = ReportJob::new(connect(&server).await, settings).expect("report job");

    assert_eq!(job.report(600).await.expect("report"), ReportOutcome::Empty);
    assert_eq!(job.claim_owner(600).await.expect("owner"), None);
    assert!(names_in(dir.path()).is_empty());
}
