//! Tests of the index writes and the queries against a `redis-server` that each test starts
//! on its own port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::test_server::RedisServer;
use super::*;
use crate::microcloud::tests::{attach, delta, downlink, event, uplink, DNS, HTTP, IMSI_A, IMSI_B};
use crate::microcloud::AttachState;
use crate::session::event::EventKind;

async fn connect(server: &RedisServer) -> RedisMicrocloud {
    RedisMicrocloud::connect(&server.url(), RedisConfig::default())
        .await
        .expect("connect to the test server")
}

/// Builds a detach of session `session_id` at `ts_us`.
fn detach(imsi: &str, session_id: u64, ts_us: u64) -> SessionEvent {
    event(EventKind::Detach, imsi, session_id, ts_us)
}

/// Builds an attach of `imsi` with UE address `ue_ipv4` at `ts_us`, on its own tunnels.
fn attach_with_address(imsi: &str, session_id: u64, ue_ipv4: Ipv4Addr, teid: u32, ts_us: u64) -> SessionEvent {
    SessionEvent {
        ue_ipv4: Some(ue_ipv4),
        ts_us,
        ..attach(imsi, session_id, &[uplink(teid)])
    }
}

async fn active_imsis(cloud: &mut RedisMicrocloud) -> Vec<String> {
    let active = cloud.active_subscribers().await.expect("active subscribers");
    active.into_iter().map(|subscriber| subscriber.imsi).collect()
}

#[tokio::test]
async fn msisdn_finds_subscriber() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10)])]).await.expect("publish");

    let found = cloud.subscriber_by_msisdn("393331234567").await.expect("lookup");
    assert_eq!(found.map(|state| state.imsi).as_deref(), Some(IMSI_A));
    assert_eq!(cloud.subscriber_by_msisdn("393330000000").await.expect("lookup"), None);
}

#[tokio::test]
async fn moved_msisdn_not_followed() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10)])]).await.expect("publish");
    let renumbered = SessionEvent { msisdn: Some("393339999999".to_owned()), ..event(EventKind::Modify, IMSI_A, 1, 2_000_000) };
    cloud.publish(&[renumbered]).await.expect("publish");
    // The old entry still names IMSI_A, whose state now has another MSISDN.
    assert_eq!(server.command("GET imsitrace:v1:msisdn:393331234567"), format!("${}\r\n{IMSI_A}\r\n", IMSI_A.len()));

    assert_eq!(cloud.subscriber_by_msisdn("393331234567").await.expect("lookup"), None);
    let found = cloud.subscriber_by_msisdn("393339999999").await.expect("lookup");
    assert_eq!(found.map(|state| state.imsi).as_deref(), Some(IMSI_A));
}

#[tokio::test]
async fn reused_ue_address_names_new_holder() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let address = Ipv4Addr::new(100, 64, 0, 28);
    cloud.publish(&[attach_with_address(IMSI_A, 1, address, 0x10, 1_000_000)]).await.expect("publish");
    cloud.publish(&[detach(IMSI_A, 1, 2_000_000)]).await.expect("publish");
    let found = cloud.subscriber_by_ue_address(IpAddr::V4(address)).await.expect("lookup");
    let found = found.expect("the detached holder is still found");
    assert_eq!((found.imsi.as_str(), found.state), (IMSI_A, AttachState::Detached));

    cloud.publish(&[attach_with_address(IMSI_B, 2, address, 0x20, 3_000_000)]).await.expect("publish");
    // A later write of the previous holder's detached state leaves the entry to IMSI_B.
    let reject = event(EventKind::Reject, IMSI_A, 0, 4_000_000);
    cloud.publish(&[reject]).await.expect("publish");

    let found = cloud.subscriber_by_ue_address(IpAddr::V4(address)).await.expect("lookup");
    assert_eq!(found.map(|state| state.imsi).as_deref(), Some(IMSI_B));
    let unknown = IpAddr::V4(Ipv4Addr::new(100, 64, 0, 29));
    assert_eq!(cloud.subscriber_by_ue_address(unknown).await.expect("lookup"), None);
}

#[tokio::test]
async fn address_of_short_session_indexed() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let address = Ipv4Addr::new(100, 64, 0, 30);
    // Attach and detach in one call: only the detached state is written.
    let events = [attach_with_address(IMSI_A, 1, address, 0x10, 1_000_000), detach(IMSI_A, 1, 2_000_000)];
    cloud.publish(&events).await.expect("publish");

    let found = cloud.subscriber_by_ue_address(IpAddr::V4(address)).await.expect("lookup");
    assert_eq!(found.map(|state| state.imsi).as_deref(), Some(IMSI_A));
    assert!(active_imsis(&mut cloud).await.is_empty());
}

#[tokio::test]
async fn ipv6_address_found_by_prefix() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let prefix = Ipv6Addr::new(0x2001, 0xdb8, 0xa020, 2, 0, 0, 0, 0);
    let dual_stack = SessionEvent { ue_ipv6: Some(prefix), ..attach(IMSI_A, 1, &[uplink(0x10)]) };
    cloud.publish(&[dual_stack]).await.expect("publish");

    let address = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa020, 2, 0xe2d2, 0x8da8, 0x3cbb, 0x5615));
    let found = cloud.subscriber_by_ue_address(address).await.expect("lookup");
    assert_eq!(found.map(|state| state.imsi).as_deref(), Some(IMSI_A));
    let other_prefix = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa020, 3, 0, 0, 0, 1));
    assert_eq!(cloud.subscriber_by_ue_address(other_prefix).await.expect("lookup"), None);
}

#[tokio::test]
async fn active_follows_attach_state() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)]), attach(IMSI_B, 2, &[uplink(0x30)])])
        .await
        .expect("publish");
    assert_eq!(active_imsis(&mut cloud).await, vec![IMSI_A, IMSI_B]);

    let idle = SessionEvent { removed: vec![downlink(2, 0x20)], ..event(EventKind::Idle, IMSI_A, 1, 2_000_000) };
    cloud.publish(&[idle, detach(IMSI_B, 2, 3_000_000)]).await.expect("publish");
    let active = cloud.active_subscribers().await.expect("active subscribers");
    let expected = ActiveSubscriber { imsi: IMSI_A.to_owned(), state: AttachState::Idle, last_change_us: 2_000_000 };
    assert_eq!(active, vec![expected]);
    assert_eq!(server.command(&format!("ZSCORE imsitrace:v1:active {IMSI_B}")).trim(), "$-1");
}

#[tokio::test]
async fn expired_state_pruned_from_active() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10)]), attach(IMSI_B, 2, &[uplink(0x20)])])
        .await
        .expect("publish");
    server.command(&format!("DEL imsitrace:v1:subscriber:{IMSI_B}"));

    assert_eq!(active_imsis(&mut cloud).await, vec![IMSI_A]);
    assert_eq!(server.command("ZCARD imsitrace:v1:active").trim(), ":1");
}

#[tokio::test]
async fn index_keys_have_state_ttl() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud.publish(&[attach(IMSI_A, 1, &[uplink(0x10)])]).await.expect("publish");

    for name in ["imsitrace:v1:msisdn:393331234567", "imsitrace:v1:ueip:10.0.0.1", "imsitrace:v1:active"] {
        let ttl = server.command(&format!("TTL {name}"));
        assert_eq!(ttl.trim(), ":86400", "TTL of {name}");
    }
}

#[tokio::test]
async fn rows_filtered_by_protocol() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    cloud
        .add_buckets(&[delta(300, IMSI_A, HTTP, 1), delta(300, IMSI_B, DNS, 2), delta(600, IMSI_A, DNS, 3)])
        .await
        .expect("add");

    let rows = cloud.bucket_rows_matching(300, |protocol| protocol == DNS).await.expect("rows");
    assert_eq!(rows, vec![delta(300, IMSI_B, DNS, 2)]);
    let rows = cloud.bucket_rows_matching(300, |_| true).await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert!(cloud.bucket_rows_matching(900, |_| true).await.expect("rows").is_empty());
}

#[tokio::test]
async fn epochs_between_bounds() {
    let server = RedisServer::start();
    let mut cloud = connect(&server).await;
    let deltas: Vec<_> = [300, 600, 900, 1200].iter().map(|&epoch| delta(epoch, IMSI_A, HTTP, 1)).collect();
    cloud.add_buckets(&deltas).await.expect("add");

    assert_eq!(cloud.bucket_epochs_between(600, Some(900)).await.expect("epochs"), vec![600, 900]);
    assert_eq!(cloud.bucket_epochs_between(601, None).await.expect("epochs"), vec![900, 1200]);
    assert_eq!(cloud.bucket_epochs_between(0, None).await.expect("epochs"), vec![300, 600, 900, 1200]);
    assert!(cloud.bucket_epochs_between(1500, None).await.expect("epochs").is_empty());
}
