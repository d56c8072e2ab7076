//! Publishing session events: read the states involved, apply the events in memory, then
//! write states, tunnel index changes and channel messages in one MULTI/EXEC pipeline.

use std::collections::{BTreeSet, HashMap};

use redis::Pipeline;

use super::keys::Keys;
use super::{decode_state, ttl_seconds, unavailable, RedisMicrocloud};
use crate::microcloud::{MicrocloudError, SubscriberState};
use crate::session::event::{EventKind, SessionEvent, TunnelKey};

/// Deletes each tunnel index entry `KEYS[i]` only while it names the IMSI `ARGV[i]`, in
/// order, so a late removal by the previous owner of a reused TEID keeps the new owner's
/// entry. Returns the number of keys deleted. One call covers every conditional release of
/// a `publish` call, where an EVAL per key would pay the script call overhead per key.
const RELEASE_TUNNELS: &str = r"
local deleted = 0
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[i] then
        deleted = deleted + redis.call('DEL', key)
    end
end
return deleted
";

/// The write of one `publish` call to one tunnel index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IndexWrite {
    /// The entry names this IMSI: the call set it last.
    Set(String),
    /// The call set the entry and its owner then released it: delete it.
    Delete,
    /// The call only released the entry: delete it while it names one of these IMSIs.
    Release(Vec<String>),
}

/// The tunnel index writes of one call, one per key, with the same effect as the events'
/// sets and releases applied in order. A release after a set in the same call is decided
/// in memory, so only a release of an entry the call did not set needs the server's value.
#[derive(Debug, Default)]
struct IndexWrites {
    writes: Vec<(TunnelKey, IndexWrite)>,
    /// Position of each key in `writes`.
    positions: HashMap<TunnelKey, usize>,
}

impl IndexWrites {
    /// Records that `imsi` now owns `key`.
    fn set(&mut self, key: TunnelKey, imsi: &str) {
        self.put(key, IndexWrite::Set(imsi.to_owned()));
    }

    /// Records that `imsi` gave `key` up.
    fn release(&mut self, key: TunnelKey, imsi: &str) {
        let current = self.positions.get(&key).map(|&at| &self.writes[at].1);
        let next = match current {
            None => IndexWrite::Release(vec![imsi.to_owned()]),
            Some(IndexWrite::Set(owner)) if owner == imsi => IndexWrite::Delete,
            Some(IndexWrite::Release(imsis)) if !imsis.iter().any(|released| released == imsi) => {
                let mut imsis = imsis.clone();
                imsis.push(imsi.to_owned());
                IndexWrite::Release(imsis)
            }
            // Another IMSI's entry, an entry already deleted, or a repeated release.
            Some(_) => return,
        };
        self.put(key, next);
    }

    fn put(&mut self, key: TunnelKey, write: IndexWrite) {
        match self.positions.get(&key) {
            Some(&at) => self.writes[at].1 = write,
            None => {
                self.positions.insert(key, self.writes.len());
                self.writes.push((key, write));
            }
        }
    }
}

/// Subscriber states and tunnel owners read before applying one call's events.
#[derive(Default)]
struct Snapshot {
    states: HashMap<String, SubscriberState>,
    /// Owner of each tunnel key an event adds, as stored before the call.
    owners: HashMap<TunnelKey, Option<String>>,
    /// IMSIs whose state the events changed.
    changed: BTreeSet<String>,
}

/// Applies `events` in order and publishes them.
///
/// NOTE: the read and the write are two round trips, three when an added tunnel belonged
/// to a subscriber the events do not name. When two nodes publish events of the same
/// subscriber at the same moment, the later write of its state wins. The tunnel index
/// itself stays consistent, because each entry is set or released on its own.
pub(super) async fn publish(cloud: &mut RedisMicrocloud, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut snapshot = read_snapshot(cloud, events).await?;
    let mut index = IndexWrites::default();
    for event in events {
        apply_event(&mut snapshot, event, &mut index);
    }
    let pipe = write_pipeline(cloud, &snapshot, &index, events)?;
    pipe.query_async::<()>(&mut cloud.connection).await.map_err(unavailable)
}

/// Reads the state of every IMSI named by `events`, the owner of every tunnel they add, and
/// the state of each of those owners that the events do not name.
async fn read_snapshot(cloud: &mut RedisMicrocloud, events: &[SessionEvent]) -> Result<Snapshot, MicrocloudError> {
    let mut imsis: Vec<String> = events.iter().map(|event| event.imsi.clone()).collect();
    imsis.sort_unstable();
    imsis.dedup();
    let mut added: Vec<TunnelKey> = events
        .iter()
        .filter(|event| event.kind != EventKind::Reject)
        .flat_map(|event| event.added.iter().map(|tunnel| tunnel.key))
        .collect();
    added.sort_unstable();
    added.dedup();

    let mut pipe = redis::pipe();
    for imsi in &imsis {
        pipe.get(cloud.keys.subscriber(imsi));
    }
    for &key in &added {
        pipe.get(cloud.keys.tunnel(key));
    }
    let mut replies: Vec<Option<String>> = pipe.query_async(&mut cloud.connection).await.map_err(unavailable)?;
    let owners = replies.split_off(imsis.len());

    let mut snapshot = Snapshot::default();
    insert_states(cloud, &mut snapshot, &imsis, replies)?;
    let mut others: Vec<String> = owners.iter().flatten().filter(|owner| !snapshot.states.contains_key(*owner)).cloned().collect();
    snapshot.owners = added.into_iter().zip(owners).collect();
    others.sort_unstable();
    others.dedup();
    if !others.is_empty() {
        let mut pipe = redis::pipe();
        for imsi in &others {
            pipe.get(cloud.keys.subscriber(imsi));
        }
        let replies: Vec<Option<String>> = pipe.query_async(&mut cloud.connection).await.map_err(unavailable)?;
        insert_states(cloud, &mut snapshot, &others, replies)?;
    }
    Ok(snapshot)
}

/// Decodes the stored states of `imsis`. An IMSI with no stored state gets a new one only
/// when an event names it (see [`apply_event`]).
fn insert_states(
    cloud: &RedisMicrocloud,
    snapshot: &mut Snapshot,
    imsis: &[String],
    replies: Vec<Option<String>>,
) -> Result<(), MicrocloudError> {
    for (imsi, reply) in imsis.iter().zip(replies) {
        if let Some(json) = reply {
            let state = decode_state(&cloud.keys.subscriber(imsi), &json)?;
            snapshot.states.insert(imsi.clone(), state);
        }
    }
    Ok(())
}

/// Applies one event to the snapshot the way the embedded backend applies it to its store,
/// and records the index changes and the subscribers whose state changed.
fn apply_event(snapshot: &mut Snapshot, event: &SessionEvent, index: &mut IndexWrites) {
    let state = snapshot
        .states
        .entry(event.imsi.clone())
        .or_insert_with(|| SubscriberState::new(&event.imsi));
    let tunnel_changes = state.apply(event);
    mark_changed(&mut snapshot.changed, &event.imsi);
    for key in tunnel_changes.removed {
        if let Some(owner) = snapshot.owners.get_mut(&key) {
            if owner.as_deref() == Some(event.imsi.as_str()) {
                *owner = None;
            }
        }
        index.release(key, &event.imsi);
    }
    for key in tunnel_changes.added {
        let previous = snapshot.owners.insert(key, Some(event.imsi.clone())).flatten();
        index.set(key, &event.imsi);
        let Some(previous) = previous.filter(|previous| *previous != event.imsi) else { continue };
        // The stored state of the previous owner may have expired; then there is nothing to update.
        if let Some(other) = snapshot.states.get_mut(&previous) {
            other.release_tunnel(key);
            mark_changed(&mut snapshot.changed, &previous);
        }
    }
}

fn mark_changed(changed: &mut BTreeSet<String>, imsi: &str) {
    if !changed.contains(imsi) {
        changed.insert(imsi.to_owned());
    }
}

/// Builds the MULTI/EXEC pipeline of one `publish` call.
fn write_pipeline(
    cloud: &RedisMicrocloud,
    snapshot: &Snapshot,
    index: &IndexWrites,
    events: &[SessionEvent],
) -> Result<Pipeline, MicrocloudError> {
    let keys = &cloud.keys;
    let state_ttl = ttl_seconds(cloud.config.state_ttl);
    let mut pipe = redis::pipe();
    pipe.atomic();
    append_index_writes(&mut pipe, keys, state_ttl, index);
    for imsi in &snapshot.changed {
        let Some(state) = snapshot.states.get(imsi) else { continue };
        let key = keys.subscriber(imsi);
        let json = to_json(&key, state)?;
        pipe.cmd("SET").arg(&key).arg(json).arg("EX").arg(state_ttl).ignore();
        super::index::append_state_indexes(&mut pipe, keys, state_ttl, state);
    }
    let all_events = keys.events_channel();
    // One buffer for every event: each payload is copied into the pipeline twice.
    let mut json = Vec::with_capacity(1024);
    for event in events {
        json.clear();
        serde_json::to_writer(&mut json, event).map_err(|error| cannot_encode(&all_events, &error))?;
        pipe.publish(&all_events, json.as_slice()).ignore();
        pipe.publish(keys.subscriber_channel(&event.imsi), json.as_slice()).ignore();
    }
    super::ntop::append_event_writes(&mut pipe, cloud, events);
    cloud.add_meta(&mut pipe);
    Ok(pipe)
}

/// Appends the tunnel index writes: SET or DEL for entries the call decided, and one
/// script call for the conditional releases.
fn append_index_writes(pipe: &mut Pipeline, keys: &Keys, state_ttl: i64, index: &IndexWrites) {
    let mut released_keys = Vec::new();
    let mut released_imsis = Vec::new();
    for (key, write) in &index.writes {
        match write {
            IndexWrite::Set(imsi) => {
                pipe.cmd("SET").arg(keys.tunnel(*key)).arg(imsi).arg("EX").arg(state_ttl).ignore();
            }
            IndexWrite::Delete => {
                pipe.del(keys.tunnel(*key)).ignore();
            }
            IndexWrite::Release(imsis) => {
                for imsi in imsis {
                    released_keys.push(keys.tunnel(*key));
                    released_imsis.push(imsi.as_str());
                }
            }
        }
    }
    if !released_keys.is_empty() {
        pipe.cmd("EVAL")
            .arg(RELEASE_TUNNELS)
            .arg(released_keys.len())
            .arg(&released_keys)
            .arg(&released_imsis)
            .ignore();
    }
}

fn to_json<T: serde::Serialize>(key: &str, value: &T) -> Result<String, MicrocloudError> {
    serde_json::to_string(value).map_err(|error| cannot_encode(key, &error))
}

fn cannot_encode(key: &str, error: &serde_json::Error) -> MicrocloudError {
    MicrocloudError::InvalidData {
        key: key.to_owned(),
        reason: format!("cannot encode as JSON: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microcloud::redis::test_server::RedisServer;
    use crate::microcloud::redis::RedisConfig;
    use crate::microcloud::tests::{attach, event, key, uplink, IMSI_A, IMSI_B};
    use crate::microcloud::{EmbeddedMicrocloud, Microcloud};

    const IMSI_C: &str = "001010000000003";

    fn writes(index: &IndexWrites) -> Vec<IndexWrite> {
        index.writes.iter().map(|(_, write)| write.clone()).collect()
    }

    #[test]
    fn release_after_own_set_deletes() {
        let mut index = IndexWrites::default();
        index.set(key(1, 0x10), IMSI_A);
        index.release(key(1, 0x10), IMSI_A);
        index.release(key(1, 0x10), IMSI_B);
        assert_eq!(writes(&index), vec![IndexWrite::Delete]);
    }

    #[test]
    fn release_by_previous_owner_keeps_set() {
        let mut index = IndexWrites::default();
        index.set(key(1, 0x10), IMSI_B);
        index.release(key(1, 0x10), IMSI_A);
        assert_eq!(writes(&index), vec![IndexWrite::Set(IMSI_B.to_owned())]);
    }

    #[test]
    fn releases_without_set_stay_conditional() {
        let mut index = IndexWrites::default();
        index.release(key(1, 0x10), IMSI_A);
        index.release(key(1, 0x10), IMSI_B);
        index.release(key(1, 0x10), IMSI_A);
        index.release(key(1, 0x11), IMSI_C);
        let expected = vec![
            IndexWrite::Release(vec![IMSI_A.to_owned(), IMSI_B.to_owned()]),
            IndexWrite::Release(vec![IMSI_C.to_owned()]),
        ];
        assert_eq!(writes(&index), expected);
    }

    #[test]
    fn set_after_release_wins() {
        let mut index = IndexWrites::default();
        index.release(key(1, 0x10), IMSI_A);
        index.set(key(1, 0x10), IMSI_B);
        index.set(key(1, 0x11), IMSI_A);
        index.release(key(1, 0x11), IMSI_A);
        index.set(key(1, 0x11), IMSI_C);
        let expected = vec![IndexWrite::Set(IMSI_B.to_owned()), IndexWrite::Set(IMSI_C.to_owned())];
        assert_eq!(writes(&index), expected);
    }

    /// Publishes `calls` to a Redis server and to the embedded backend, then compares every
    /// subscriber state and the owner of every tunnel key in `tunnels`.
    async fn assert_same_as_embedded(calls: &[Vec<SessionEvent>], imsis: &[&str], tunnels: &[TunnelKey]) {
        let server = RedisServer::start();
        let mut cloud = RedisMicrocloud::connect(&server.url(), RedisConfig::default()).await.expect("connect to the test server");
        let mut embedded = EmbeddedMicrocloud::new();
        for call in calls {
            cloud.publish(call).await.expect("publish to redis");
            embedded.publish(call).await.expect("publish to embedded");
        }
        for imsi in imsis {
            let expected = embedded.subscriber(imsi).await.expect("read embedded");
            assert_eq!(cloud.subscriber(imsi).await.expect("read redis"), expected, "state of {imsi}");
        }
        for &tunnel in tunnels {
            let expected = embedded.lookup_tunnel(tunnel).await.expect("lookup embedded");
            assert_eq!(cloud.lookup_tunnel(tunnel).await.expect("lookup redis"), expected, "owner of {tunnel:?}");
        }
    }

    #[tokio::test]
    async fn set_and_release_in_one_call() {
        // B owns 0x11 when a call attaches A on 0x10 and 0x11 (a reused TEID) and deletes A's
        // session again: both entries end deleted and B's state loses 0x11.
        let calls = [
            vec![attach(IMSI_B, 2, &[uplink(0x11)])],
            vec![attach(IMSI_A, 1, &[uplink(0x10), uplink(0x11)]), event(EventKind::Detach, IMSI_A, 1, 2_000_000)],
        ];
        assert_same_as_embedded(&calls, &[IMSI_A, IMSI_B], &[key(1, 0x10), key(1, 0x11)]).await;
    }

    #[tokio::test]
    async fn conditional_releases_in_one_call() {
        // B took 0x10 over from A. One call then carries A's late Delete, which must keep B's
        // entry, and C's Delete, which removes C's entry 0x12.
        let late_delete = SessionEvent { removed: vec![uplink(0x10)], ..event(EventKind::Detach, IMSI_A, 1, 5_000_000) };
        let calls = [
            vec![attach(IMSI_A, 1, &[uplink(0x10)]), attach(IMSI_C, 3, &[uplink(0x12)])],
            vec![attach(IMSI_B, 2, &[uplink(0x10)])],
            vec![late_delete, event(EventKind::Detach, IMSI_C, 3, 6_000_000)],
        ];
        assert_same_as_embedded(&calls, &[IMSI_A, IMSI_B, IMSI_C], &[key(1, 0x10), key(1, 0x12)]).await;
    }
}
