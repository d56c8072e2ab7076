//! Tests of the Redis backend against a `redis-server` that each test starts on its own port.

use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;

use super::test_server::{free_port, RedisServer};
use super::*;
use crate::microcloud::tests::{attach, delta, downlink, event, key, uplink, DNS, HTTP, IMSI_A, IMSI_B};
use crate::microcloud::AttachState;
use crate::session::event::EventKind;

async fn connect(server: &RedisServer) -> RedisMicrocloud {
    RedisMicrocloud::connect(&server.url(), RedisConfig::default())
        .await
        .expect("connect to the test server")
}

async fn owner(cloud: &mut RedisMicrocloud, key: TunnelKey) -> Option<String> {
    cloud.lookup_tunnel(key).await.expect("lookup")
}

async fn state(cloud: &mut RedisMicrocloud, imsi: &str) -> SubscriberState {
    cloud.subscriber(imsi).await.expect("read").expect("subscriber is stored")
}

/// Returns the remaining TTL of `key` in seconds (-2: no key, -1: no TTL).
fn ttl(server: &RedisServer, key: &str) -> i64 {
    let reply = server.command(&format!("TTL {key}"));
    reply.trim().trim_start_matches(':').parse().expect("TTL reply is an integer")
}

#[tokio::test]
async fn unreachable_url_names_url() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let error = RedisMicrocloud::connect(&url, RedisConfig::default())
        .await
        .expect_err("nothing listens on the port");
    let message = error.to_string();
    assert!(message.contains(&url), "message {message:?} does not name {url}");
    assert!(message.contains("cannot connect"), "message {message:?}");
}

#[tokio::test]
async fn invalid_url_hides_password() {
    let error = RedisMicrocloud::connect("redis://user:secret@127.0.0.1:notaport/", RedisConfig::default())
        .await
        .expect_err("the port is not a number");
    let message = error.to_string();
    assert!(matches!(error, MicrocloudError::InvalidUrl { .. }), "error {error:?}");
    assert!(!message.contains("secret"), "message {message:?} shows the password");
    assert!(message.contains("redis://user:***@127.0.0.1:notaport/"), "message {message:?}");
}

#[tokio::test]
async fn attach_indexes_tunnels_and_state() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)])]).await.expect("publish");

    assert_eq!(owner(&mut cloud, key(1, 0x10)).await.as_deref(), Some(IMSI_A));
    assert_eq!(owner(&mut cloud, key(2, 0x20)).await.as_deref(), Some(IMSI_A));
    assert_eq!(owner(&mut cloud, key(3, 0x10)).await, None);
    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(subscriber.state, AttachState::Attached);
    assert_eq!(subscriber.msisdn.as_deref(), Some("393331234567"));
    assert_eq!(subscriber.apn.as_deref(), Some("internet"));
    assert_eq!(subscriber.tunnels.len(), 2);
    assert_eq!(cloud.subscriber(IMSI_B).await.expect("read"), None);
}

#[tokio::test]
async fn state_matches_embedded_backend() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let mut embedded = crate::microcloud::EmbeddedMicrocloud::new();
    let handover = SessionEvent {
        removed: vec![downlink(2, 0x20)],
        added: vec![downlink(3, 0x30)],
        uli: Some("CGI 001-01-0x0001-0x0002".to_owned()),
        ..event(EventKind::Move, IMSI_A, 1, 2_000_000)
    };
    let batches = [
        vec![attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)]), attach(IMSI_A, 2, &[uplink(0x11)])],
        vec![handover],
        vec![event(EventKind::Detach, IMSI_A, 2, 3_000_000)],
    ];
    for batch in &batches {
        cloud.publish(batch).await.expect("publish to redis");
        embedded.publish(batch).await.expect("publish to embedded");
    }

    assert_eq!(state(&mut cloud, IMSI_A).await, embedded.subscriber(IMSI_A).await.expect("read").expect("stored"));
    for tunnel in [key(1, 0x10), key(1, 0x11), key(2, 0x20), key(3, 0x30)] {
        assert_eq!(
            owner(&mut cloud, tunnel).await,
            embedded.lookup_tunnel(tunnel).await.expect("lookup"),
            "owner of {tunnel:?}"
        );
    }
}

#[tokio::test]
async fn detach_removes_session_tunnels() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)])]).await.expect("publish");
    cloud.publish(&[event(EventKind::Detach, IMSI_A, 1, 4_000_000)]).await.expect("publish");

    assert_eq!(owner(&mut cloud, key(1, 0x10)).await, None);
    assert_eq!(owner(&mut cloud, key(2, 0x20)).await, None);
    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(subscriber.state, AttachState::Detached);
    assert!(subscriber.tunnels.is_empty());
}

#[tokio::test]
async fn teid_reuse_overwrites_owner() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10)])]).await.expect("publish");
    // The GGSN deleted A's context unseen and gave the TEID to B, in a later call.
    cloud.publish(&[attach(IMSI_B, 2, &[uplink(0x10)])]).await.expect("publish");

    assert_eq!(owner(&mut cloud, key(1, 0x10)).await.as_deref(), Some(IMSI_B));
    let previous = state(&mut cloud, IMSI_A).await;
    assert!(previous.tunnels.is_empty());
    assert_eq!(previous.state, AttachState::Detached);

    // A late Delete of A's session must not remove B's entry.
    let late_delete = SessionEvent {
        removed: vec![uplink(0x10)],
        ..event(EventKind::Detach, IMSI_A, 1, 5_000_000)
    };
    cloud.publish(&[late_delete]).await.expect("publish");
    assert_eq!(owner(&mut cloud, key(1, 0x10)).await.as_deref(), Some(IMSI_B));
}

#[tokio::test]
async fn teid_reuse_within_one_call() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10)]), attach(IMSI_B, 2, &[uplink(0x10)])])
        .await
        .expect("publish");

    assert_eq!(owner(&mut cloud, key(1, 0x10)).await.as_deref(), Some(IMSI_B));
    assert!(state(&mut cloud, IMSI_A).await.tunnels.is_empty());
}

#[tokio::test]
async fn publish_sends_json_on_both_channels() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let client = redis::Client::open(server.url()).expect("url");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
    pubsub.subscribe("imsitrace:v1:events").await.expect("subscribe");
    pubsub.subscribe(format!("imsitrace:v1:events:{IMSI_A}")).await.expect("subscribe");
    let published = attach(IMSI_A, 1, &[uplink(0x10)]);
    cloud.publish(std::slice::from_ref(&published)).await.expect("publish");

    let mut messages = pubsub.on_message();
    let mut channels = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("message within 5 s")
            .expect("stream open");
        let payload: String = message.get_payload().expect("text payload");
        let received: SessionEvent = serde_json::from_str(&payload).expect("payload is a JSON session event");
        assert_eq!(received, published);
        channels.push(message.get_channel_name().to_owned());
    }
    channels.sort();
    assert_eq!(channels, vec!["imsitrace:v1:events".to_owned(), format!("imsitrace:v1:events:{IMSI_A}")]);
}

#[tokio::test]
async fn buckets_sum_and_list() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.add_buckets(&[delta(600, IMSI_B, HTTP, 1), delta(300, IMSI_A, HTTP, 2)]).await.expect("add");
    cloud.add_buckets(&[delta(600, IMSI_B, HTTP, 3), delta(600, IMSI_A, DNS, 4)]).await.expect("add");

    assert_eq!(cloud.bucket_epochs().await.expect("epochs"), vec![300, 600]);
    let rows = cloud.bucket_rows(600).await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], delta(600, IMSI_A, DNS, 4));
    assert_eq!(
        rows[1],
        BucketDelta { packets: 4, bytes: 400, flows: 2, duration_us: 3_000_000, ..delta(600, IMSI_B, HTTP, 0) }
    );
    assert!(cloud.bucket_rows(900).await.expect("rows").is_empty());
}

#[tokio::test]
async fn large_batch_spans_script_calls() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let deltas: Vec<BucketDelta> = (0..1200u32)
        .map(|index| delta(300, &format!("00101{index:010}"), HTTP, 1))
        .collect();
    cloud.add_buckets(&deltas).await.expect("add");

    let rows = cloud.bucket_rows(300).await.expect("rows");
    assert_eq!(rows.len(), 1200);
    assert_eq!(rows.iter().map(|row| row.packets).sum::<u64>(), 1200);
}

#[tokio::test]
async fn retried_batch_not_double_counted() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let deltas = [delta(300, IMSI_A, HTTP, 2)];
    assert!(cloud.add_buckets_batch("batch-1", &deltas).await.expect("first attempt"));
    assert!(!cloud.add_buckets_batch("batch-1", &deltas).await.expect("retry"));
    assert!(cloud.add_buckets_batch("batch-2", &deltas).await.expect("next batch"));

    let rows = cloud.bucket_rows(300).await.expect("rows");
    assert_eq!(rows, vec![BucketDelta { packets: 4, bytes: 400, flows: 2, duration_us: 3_000_000, ..deltas[0] }]);
}

#[tokio::test]
async fn clones_use_distinct_batch_ids() {
    let server = RedisServer::start();
    let mut first = connect(&server).await;
    let mut second = first.clone();
    first.add_buckets(&[delta(300, IMSI_A, HTTP, 1)]).await.expect("add");
    second.add_buckets(&[delta(300, IMSI_A, HTTP, 1)]).await.expect("add");

    assert_eq!(first.bucket_rows(300).await.expect("rows")[0].packets, 2);
}

#[tokio::test]
async fn add_buckets_survives_killed_connection() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.add_buckets(&[delta(300, IMSI_A, HTTP, 1)]).await.expect("add");
    let killed = server.command("CLIENT KILL TYPE normal");
    assert!(killed.starts_with(':'), "CLIENT KILL replied {killed:?}");
    cloud.add_buckets(&[delta(300, IMSI_A, HTTP, 1)]).await.expect("add after the connection was killed");

    assert_eq!(cloud.bucket_rows(300).await.expect("rows")[0].packets, 2);
}

#[tokio::test]
async fn every_key_has_ttl() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10)])]).await.expect("publish");
    assert!(cloud.add_buckets_batch("b", &[delta(300, IMSI_A, HTTP, 1)]).await.expect("add"));

    let keys = [
        "imsitrace:v1:meta".to_owned(),
        format!("imsitrace:v1:subscriber:{IMSI_A}"),
        "imsitrace:v1:tunnel:192.0.2.1:16".to_owned(),
        "imsitrace:v1:epochs".to_owned(),
        "imsitrace:v1:bucket:300".to_owned(),
        format!("imsitrace:v1:bucket:300:{IMSI_A}:7.7"),
        "imsitrace:v1:batch:b.0".to_owned(),
        "imsitrace:v1:msisdn:393331234567".to_owned(),
        "imsitrace:v1:ueip:10.0.0.1".to_owned(),
        "imsitrace:v1:active".to_owned(),
    ];
    for name in &keys {
        assert!(ttl(&server, name) > 0, "{name} has no TTL");
    }
    let stored = server.command("DBSIZE");
    assert_eq!(stored.trim(), format!(":{}", keys.len()), "keys other than the listed ones");
}

#[tokio::test]
async fn expired_bucket_left_out() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.add_buckets(&[delta(300, IMSI_A, HTTP, 1), delta(600, IMSI_A, HTTP, 1)]).await.expect("add");
    server.command("DEL imsitrace:v1:bucket:300");

    assert_eq!(cloud.bucket_epochs().await.expect("epochs"), vec![600]);
    let client = redis::Client::open(server.url()).expect("url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("connect");
    let members: Vec<u64> = connection.zrange("imsitrace:v1:epochs", 0, -1).await.expect("zrange");
    assert_eq!(members, vec![600]);
}

#[tokio::test]
async fn prefixes_are_isolated() {
    let server = RedisServer::start();
    let mut first = connect(&server).await;
    let config = RedisConfig { prefix: "other:".to_owned(), ..RedisConfig::default() };
    let mut second = RedisMicrocloud::connect(&server.url(), config).await.expect("connect");
    first.publish(&[attach(IMSI_A, 1, &[uplink(0x10)])]).await.expect("publish");
    first.add_buckets(&[delta(300, IMSI_A, HTTP, 1)]).await.expect("add");

    assert_eq!(owner(&mut second, key(1, 0x10)).await, None);
    assert_eq!(second.subscriber(IMSI_A).await.expect("read"), None);
    assert!(second.bucket_epochs().await.expect("epochs").is_empty());
}
