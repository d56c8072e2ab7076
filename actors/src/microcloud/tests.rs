//! Tests of the embedded backend, through the [`Microcloud`] trait, and the event and delta
//! builders that the Redis backend tests share.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::bucket::BucketDelta;
use crate::flow::classify::AppProtocol;
use crate::session::event::{fixture, EventKind, Tunnel, TunnelRole};
use crate::wire::control::Digits;

pub(super) const IMSI_A: &str = "001010000000001";
pub(super) const IMSI_B: &str = "001010000000002";
pub(super) const SITE: &str = "site-a";

pub(super) fn key(last_octet: u8, teid: u32) -> TunnelKey {
    TunnelKey {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last_octet)),
        teid,
    }
}

pub(super) fn tunnel(key: TunnelKey, role: TunnelRole) -> Tunnel {
    Tunnel {
        key,
        role,
        bearer: 5,
        interface: Tunnel::GTPV1,
    }
}

pub(super) fn uplink(teid: u32) -> Tunnel {
    tunnel(key(1, teid), TunnelRole::Uplink)
}

pub(super) fn downlink(last_octet: u8, teid: u32) -> Tunnel {
    tunnel(key(last_octet, teid), TunnelRole::Downlink)
}

/// Builds an event of session `session_id` at `SITE`, with no tunnel change.
pub(super) fn event(kind: EventKind, imsi: &str, session_id: u64, ts_us: u64) -> SessionEvent {
    SessionEvent { site: SITE.to_owned(), ..fixture::event(kind, imsi, session_id, ts_us) }
}

pub(super) fn attach(imsi: &str, session_id: u64, tunnels: &[Tunnel]) -> SessionEvent {
    SessionEvent {
        msisdn: Some("393331234567".to_owned()),
        imei: Some("3520990017614823".to_owned()),
        apn: Some("internet".to_owned()),
        rat: Some("UTRAN".to_owned()),
        ue_ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        tunnels: tunnels.to_vec(),
        added: tunnels.to_vec(),
        ..event(EventKind::Attach, imsi, session_id, 1_000_000)
    }
}

async fn owner(cloud: &mut EmbeddedMicrocloud, key: TunnelKey) -> Option<String> {
    cloud
        .lookup_tunnel(key)
        .await
        .expect("embedded lookup never fails")
}

async fn state(cloud: &mut EmbeddedMicrocloud, imsi: &str) -> SubscriberState {
    cloud
        .subscriber(imsi)
        .await
        .expect("embedded read never fails")
        .expect("subscriber is stored")
}

fn tunnel_keys(state: &SubscriberState) -> Vec<TunnelKey> {
    state.tunnels.iter().map(|owned| owned.tunnel.key).collect()
}

#[tokio::test]
async fn attach_indexes_tunnels_and_state() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)])])
        .await
        .expect("publish");

    assert_eq!(
        owner(&mut cloud, key(1, 0x10)).await.as_deref(),
        Some(IMSI_A)
    );
    assert_eq!(
        owner(&mut cloud, key(2, 0x20)).await.as_deref(),
        Some(IMSI_A)
    );
    assert_eq!(owner(&mut cloud, key(3, 0x10)).await, None);
    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(subscriber.state, AttachState::Attached);
    assert_eq!(subscriber.msisdn.as_deref(), Some("393331234567"));
    assert_eq!(subscriber.imei.as_deref(), Some("3520990017614823"));
    assert_eq!(subscriber.apn.as_deref(), Some("internet"));
    assert_eq!(subscriber.rat.as_deref(), Some("UTRAN"));
    assert_eq!(subscriber.ue_ipv4, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(subscriber.site, SITE);
    assert_eq!(subscriber.last_change_us, 1_000_000);
    assert_eq!(tunnel_keys(&subscriber), vec![key(1, 0x10), key(2, 0x20)]);
}

#[tokio::test]
async fn unknown_subscriber_is_none() {
    let mut cloud = EmbeddedMicrocloud::default();
    assert_eq!(cloud.subscriber(IMSI_A).await.expect("read"), None);
}

#[tokio::test]
async fn move_replaces_downlink_tunnel() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)])])
        .await
        .expect("publish");
    let handover = SessionEvent {
        removed: vec![downlink(2, 0x20)],
        added: vec![downlink(3, 0x30)],
        tunnels: vec![uplink(0x10), downlink(3, 0x30)],
        uli: Some("CGI 001-01-0x0001-0x0002".to_owned()),
        ..event(EventKind::Move, IMSI_A, 1, 2_000_000)
    };
    cloud.publish(&[handover]).await.expect("publish");

    assert_eq!(owner(&mut cloud, key(2, 0x20)).await, None);
    assert_eq!(
        owner(&mut cloud, key(3, 0x30)).await.as_deref(),
        Some(IMSI_A)
    );
    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(tunnel_keys(&subscriber), vec![key(1, 0x10), key(3, 0x30)]);
    assert_eq!(subscriber.uli.as_deref(), Some("CGI 001-01-0x0001-0x0002"));
    // Fields the event does not carry keep their values.
    assert_eq!(subscriber.apn.as_deref(), Some("internet"));
    assert_eq!(subscriber.last_change_us, 2_000_000);
}

#[tokio::test]
async fn idle_releases_access_tunnels() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)])])
        .await
        .expect("publish");
    let release = SessionEvent {
        removed: vec![downlink(2, 0x20)],
        ..event(EventKind::Idle, IMSI_A, 1, 3_000_000)
    };
    cloud.publish(&[release]).await.expect("publish");

    assert_eq!(owner(&mut cloud, key(2, 0x20)).await, None);
    assert_eq!(
        owner(&mut cloud, key(1, 0x10)).await.as_deref(),
        Some(IMSI_A)
    );
    assert_eq!(state(&mut cloud, IMSI_A).await.state, AttachState::Idle);
}

#[tokio::test]
async fn detach_removes_session_tunnels() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)])])
        .await
        .expect("publish");
    // A Detach whose removed list is empty still removes every tunnel of its session.
    cloud
        .publish(&[event(EventKind::Detach, IMSI_A, 1, 4_000_000)])
        .await
        .expect("publish");

    assert_eq!(owner(&mut cloud, key(1, 0x10)).await, None);
    assert_eq!(owner(&mut cloud, key(2, 0x20)).await, None);
    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(subscriber.state, AttachState::Detached);
    assert!(subscriber.tunnels.is_empty());
    assert_eq!(cloud.stats().tunnels, 0);
}

#[tokio::test]
async fn detach_keeps_other_session() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[
            attach(IMSI_A, 1, &[uplink(0x10)]),
            attach(IMSI_A, 2, &[uplink(0x11)]),
        ])
        .await
        .expect("publish");
    cloud
        .publish(&[event(EventKind::Detach, IMSI_A, 1, 4_000_000)])
        .await
        .expect("publish");

    assert_eq!(owner(&mut cloud, key(1, 0x10)).await, None);
    assert_eq!(
        owner(&mut cloud, key(1, 0x11)).await.as_deref(),
        Some(IMSI_A)
    );
    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(subscriber.state, AttachState::Attached);
    assert_eq!(tunnel_keys(&subscriber), vec![key(1, 0x11)]);
}

#[tokio::test]
async fn teid_reuse_overwrites_owner() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10)])])
        .await
        .expect("publish");
    // The GGSN deleted A's context unseen and gave the TEID to B.
    cloud
        .publish(&[attach(IMSI_B, 2, &[uplink(0x10)])])
        .await
        .expect("publish");

    assert_eq!(
        owner(&mut cloud, key(1, 0x10)).await.as_deref(),
        Some(IMSI_B)
    );
    let previous = state(&mut cloud, IMSI_A).await;
    assert!(previous.tunnels.is_empty());
    assert_eq!(previous.state, AttachState::Detached);
    // A late Delete of A's session must not remove B's entry.
    let late_delete = SessionEvent {
        removed: vec![uplink(0x10)],
        ..event(EventKind::Detach, IMSI_A, 1, 5_000_000)
    };
    cloud.publish(&[late_delete]).await.expect("publish");
    assert_eq!(
        owner(&mut cloud, key(1, 0x10)).await.as_deref(),
        Some(IMSI_B)
    );
}

#[tokio::test]
async fn same_teid_other_address_distinct() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .publish(&[
            attach(IMSI_A, 1, &[downlink(2, 0x10)]),
            attach(IMSI_B, 2, &[downlink(3, 0x10)]),
        ])
        .await
        .expect("publish");
    assert_eq!(
        owner(&mut cloud, key(2, 0x10)).await.as_deref(),
        Some(IMSI_A)
    );
    assert_eq!(
        owner(&mut cloud, key(3, 0x10)).await.as_deref(),
        Some(IMSI_B)
    );
}

#[tokio::test]
async fn reject_records_identity_only() {
    let mut cloud = EmbeddedMicrocloud::default();
    let reject = SessionEvent {
        msisdn: Some("393331234567".to_owned()),
        apn: Some("ims".to_owned()),
        added: vec![uplink(0x10)],
        ..event(EventKind::Reject, IMSI_A, 1, 1_000_000)
    };
    cloud.publish(&[reject]).await.expect("publish");

    let subscriber = state(&mut cloud, IMSI_A).await;
    assert_eq!(subscriber.state, AttachState::Detached);
    assert_eq!(subscriber.msisdn.as_deref(), Some("393331234567"));
    assert_eq!(subscriber.apn, None);
    assert!(subscriber.tunnels.is_empty());
    assert_eq!(owner(&mut cloud, key(1, 0x10)).await, None);
}

#[tokio::test]
async fn publish_broadcasts_in_order() {
    let mut cloud = EmbeddedMicrocloud::default();
    let mut events = cloud.subscribe();
    let published = [
        attach(IMSI_A, 1, &[uplink(0x10)]),
        event(EventKind::Detach, IMSI_A, 1, 2_000_000),
    ];
    cloud.publish(&published).await.expect("publish");

    assert_eq!(events.recv().await.expect("first event"), published[0]);
    assert_eq!(events.recv().await.expect("second event"), published[1]);
    assert_eq!(cloud.stats().events_published, 2);
}

#[tokio::test]
async fn clones_share_state() {
    let mut writer = EmbeddedMicrocloud::default();
    let mut reader = writer.clone();
    writer
        .publish(&[attach(IMSI_A, 1, &[uplink(0x10)])])
        .await
        .expect("publish");
    assert_eq!(
        owner(&mut reader, key(1, 0x10)).await.as_deref(),
        Some(IMSI_A)
    );
}

pub(super) fn delta(epoch: u64, imsi: &str, protocol: AppProtocol, packets: u64) -> BucketDelta {
    BucketDelta {
        epoch,
        imsi: Digits::from_ascii(imsi.as_bytes()).expect("test IMSI is digits"),
        protocol,
        packets,
        bytes: packets * 100,
        flows: 1,
        duration_us: 1_500_000,
    }
}

pub(super) const HTTP: AppProtocol = AppProtocol { master: 7, app: 7 };
pub(super) const DNS: AppProtocol = AppProtocol { master: 5, app: 5 };

#[tokio::test]
async fn buckets_sum_and_list() {
    let mut cloud = EmbeddedMicrocloud::default();
    cloud
        .add_buckets(&[delta(600, IMSI_B, HTTP, 1), delta(300, IMSI_A, HTTP, 2)])
        .await
        .expect("add");
    cloud
        .add_buckets(&[delta(600, IMSI_B, HTTP, 3), delta(600, IMSI_A, DNS, 4)])
        .await
        .expect("add");

    assert_eq!(cloud.bucket_epochs().await.expect("epochs"), vec![300, 600]);
    let rows = cloud.bucket_rows(600).await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], delta(600, IMSI_A, DNS, 4));
    assert_eq!(
        rows[1],
        BucketDelta {
            packets: 4,
            bytes: 400,
            flows: 2,
            duration_us: 3_000_000,
            ..delta(600, IMSI_B, HTTP, 0)
        }
    );
    assert!(cloud.bucket_rows(900).await.expect("rows").is_empty());
}

#[tokio::test]
async fn oldest_bucket_dropped_at_limit() {
    let mut cloud = EmbeddedMicrocloud::with_config(EmbeddedConfig {
        max_bucket_epochs: 2,
        ..EmbeddedConfig::default()
    });
    for epoch in [300, 600, 900] {
        cloud
            .add_buckets(&[delta(epoch, IMSI_A, HTTP, 1)])
            .await
            .expect("add");
    }
    assert_eq!(cloud.bucket_epochs().await.expect("epochs"), vec![600, 900]);
    assert_eq!(cloud.stats().bucket_epochs_dropped, 1);
}

/// Runs `operation` on a task, which needs the trait's futures to be `Send`.
async fn on_task<M: Microcloud>(mut cloud: M) -> Option<String> {
    tokio::spawn(async move {
        cloud
            .publish(&[attach(IMSI_A, 1, &[uplink(0x10)])])
            .await
            .expect("publish");
        cloud.lookup_tunnel(key(1, 0x10)).await.expect("lookup")
    })
    .await
    .expect("task completes")
}

#[tokio::test]
async fn generic_backend_runs_on_task() {
    assert_eq!(
        on_task(EmbeddedMicrocloud::default()).await.as_deref(),
        Some(IMSI_A)
    );
}
