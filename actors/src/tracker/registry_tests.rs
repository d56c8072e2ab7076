//! Tests of the registry state against a real redis-server.

use std::time::Duration;

use super::*;
use crate::microcloud::redis::test_server::RedisServer;
use crate::tracker::registry_rules::MAX_DURATION_MS;
use crate::tracker::registry_store::StoredTracker;

const RETENTION: Duration = Duration::from_secs(60);

async fn store(server: &RedisServer) -> TrackerStore {
    TrackerStore::connect(&server.url(), "test:", Duration::from_secs(5)).await.unwrap()
}

async fn registry(server: &RedisServer, dir: &tempfile::TempDir, node: &str) -> RegistryState {
    let settings = RegistrySettings {
        node: node.to_owned(),
        audit_log: dir.path().join(format!("{node}-audit.jsonl")),
        retention: RETENTION,
        broadcast_interval: Duration::from_secs(2),
    };
    RegistryState::new(RegistryArgs { store: store(server).await, settings }).unwrap()
}

fn request(imsi: &str) -> AttachRequest {
    AttachRequest { imsi: imsi.into(), reason: "case 17".into(), requested_by: "ops@host".into(), duration_ms: Some(60_000) }
}

fn done(reply: RegistryReply) -> Tracker {
    match reply {
        RegistryReply::Done(tracker) => tracker,
        RegistryReply::Rejected(message) => panic!("rejected: {message}"),
    }
}

fn rejected(reply: RegistryReply) -> String {
    match reply {
        RegistryReply::Rejected(message) => message,
        RegistryReply::Done(tracker) => panic!("accepted: {tracker:?}"),
    }
}

fn audit_actions(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["action"].as_str().unwrap().to_owned()).collect()
}

/// Stores a tracker directly, as another collector would.
async fn insert(store: &mut TrackerStore, id: &str, expires_at_ms: Option<u64>, ended_at_ms: Option<u64>) {
    let tracker = Tracker { id: id.into(), imsi: "001010123456789".into(), reason: "r".into(), requested_by: "ops@host".into(), attached_at_ms: 1, expires_at_ms };
    let stored = StoredTracker { tracker, ended_at_ms, end_action: ended_at_ms.map(|_| "detach".to_owned()) };
    store.insert(&stored).await.unwrap();
}

#[tokio::test]
async fn ids_unique_across_collectors() {
    let server = RedisServer::start();
    let (mut first, mut second) = (store(&server).await, store(&server).await);
    let ids = [first.next_id().await.unwrap(), second.next_id().await.unwrap(), first.next_id().await.unwrap()];
    assert_eq!(ids, ["T1", "T2", "T3"]);
}

#[tokio::test]
async fn attach_rejects_invalid_requests() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut state = registry(&server, &dir, "c1").await;

    let cases = [
        (AttachRequest { imsi: "12a45".into(), ..request("") }, "invalid IMSI \"12a45\""),
        (AttachRequest { imsi: "1234".into(), ..request("") }, "invalid IMSI \"1234\""),
        (AttachRequest { imsi: "1234567890123456".into(), ..request("") }, "invalid IMSI"),
        (AttachRequest { reason: "  ".into(), ..request("001010123456789") }, "missing reason"),
        (AttachRequest { duration_ms: Some(0), ..request("001010123456789") }, "invalid duration"),
        (AttachRequest { duration_ms: Some(MAX_DURATION_MS + 1), ..request("001010123456789") }, "invalid duration"),
        (AttachRequest { requested_by: String::new(), ..request("001010123456789") }, "missing requested_by"),
    ];
    for (bad, expected) in cases {
        let message = rejected(state.attach(bad.clone()).await);
        assert!(message.contains(expected), "{bad:?}: {message}");
    }
    assert!(state.store.load().await.unwrap().is_empty(), "nothing stored");
    assert!(audit_actions(&dir.path().join("c1-audit.jsonl")).is_empty(), "nothing audited");
}

#[tokio::test]
async fn attach_and_detach_are_stored_and_audited() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut state = registry(&server, &dir, "c1").await;

    let tracker = done(state.attach(request("001010123456789")).await);
    assert_eq!(tracker.id, "T1");
    assert_eq!(tracker.expires_at_ms, Some(tracker.attached_at_ms + 60_000));

    // A second collector on the same server lists it.
    let mut other = registry(&server, &dir, "c2").await;
    let listed = other.list(false).await;
    assert_eq!(listed.trackers.len(), 1);
    assert_eq!(listed.trackers[0].tracker, tracker);

    let unknown = rejected(other.detach(DetachRequest { id: "T99".into(), requested_by: "ops@host".into() }).await);
    assert!(unknown.contains("unknown tracker id \"T99\""), "{unknown}");

    let detached = done(other.detach(DetachRequest { id: "T1".into(), requested_by: "lead@host".into() }).await);
    assert_eq!(detached.id, "T1");
    let again = rejected(state.detach(DetachRequest { id: "T1".into(), requested_by: "ops@host".into() }).await);
    assert!(again.contains("already ended (detach)"), "{again}");

    assert!(state.list(false).await.trackers.is_empty(), "no active tracker");
    let all = state.list(true).await;
    assert_eq!(all.trackers.len(), 1);
    assert!(all.trackers[0].ended_at_ms.is_some());

    assert_eq!(audit_actions(&dir.path().join("c1-audit.jsonl")), ["attach"]);
    assert_eq!(audit_actions(&dir.path().join("c2-audit.jsonl")), ["detach"]);
    let shared = state.store.audit_lines().await.unwrap();
    assert_eq!(shared.len(), 2, "{shared:?}");
    assert!(shared[1].contains("\"requested_by\":\"lead@host\""), "{}", shared[1]);
}

#[tokio::test]
async fn expiry_is_recorded_once() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut first = registry(&server, &dir, "c1").await;
    let mut second = registry(&server, &dir, "c2").await;
    let now = now_ms();
    insert(&mut first.store, "T5", Some(now - 1), None).await;
    insert(&mut first.store, "T6", Some(now + 3_600_000), None).await;

    let listed = first.list(false).await;
    assert_eq!(listed.trackers.len(), 1, "a tracker past its expiry is not active even before the refresh");
    assert_eq!(listed.trackers[0].tracker.id, "T6");

    first.refresh().await;
    second.refresh().await;
    let stored = first.store.get("T5").await.unwrap().unwrap().stored;
    assert_eq!(stored.end_action.as_deref(), Some("expire"));
    assert!(stored.ended_at_ms.is_some());
    assert_eq!(first.store.get("T6").await.unwrap().unwrap().stored.ended_at_ms, None);

    let expire_lines = first.store.audit_lines().await.unwrap();
    assert_eq!(expire_lines.len(), 1, "only one collector records the expiry: {expire_lines:?}");
    assert!(expire_lines[0].contains("\"action\":\"expire\""), "{}", expire_lines[0]);
}

#[tokio::test]
async fn ended_trackers_deleted_after_retention() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut state = registry(&server, &dir, "c1").await;
    let now = now_ms();
    let retention_ms = RETENTION.as_millis() as u64;
    insert(&mut state.store, "T1", None, Some(now - 2 * retention_ms)).await;
    insert(&mut state.store, "T2", None, Some(now - retention_ms / 2)).await;

    state.refresh().await;
    assert!(state.store.get("T1").await.unwrap().is_none(), "past the retention");
    assert!(state.store.get("T2").await.unwrap().is_some(), "within the retention");
}

#[tokio::test]
async fn reports_listed_per_probe() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut state = registry(&server, &dir, "c1").await;
    let tracker = done(state.attach(request("001010123456789")).await);
    for (node, packets) in [("probe-b", 3), ("probe-a", 5), ("probe-b", 4)] {
        let counts = ProbeCounts { node: node.into(), packets, ..ProbeCounts::default() };
        state.record_report(AgentReport { node: node.into(), trackers: vec![(tracker.id.clone(), counts)] });
    }
    let listed = state.list(false).await;
    let probes: Vec<(&str, u64)> = listed.trackers[0].probes.iter().map(|counts| (counts.node.as_str(), counts.packets)).collect();
    assert_eq!(probes, [("probe-a", 5), ("probe-b", 4)], "latest report per probe, sorted by node");
}

#[test]
fn ids_sort_by_number() {
    let mut ids = vec!["T10", "T9", "x", "T1"];
    ids.sort_by(|a, b| crate::tracker::registry_store::compare_ids(a, b));
    assert_eq!(ids, ["T1", "T9", "T10", "x"]);
}
