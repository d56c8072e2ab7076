//! Publishing session events: read the states involved, apply the events in memory, then
//! write states, tunnel index changes and channel messages in one MULTI/EXEC pipeline.

use std::collections::HashMap;

use redis::Pipeline;

use super::{decode_state, scripts, ttl_seconds, unavailable, RedisMicrocloud};
use crate::microcloud::{MicrocloudError, SubscriberState};
use crate::session::event::{EventKind, SessionEvent, TunnelKey};

/// A tunnel index change, in the order the events made it.
enum IndexChange {
    /// The key now belongs to the IMSI.
    Set(TunnelKey, String),
    /// The IMSI gave the key up; delete it only while it still names that IMSI.
    Release(TunnelKey, String),
}

/// Subscriber states and tunnel owners read before applying one call's events.
#[derive(Default)]
struct Snapshot {
    states: HashMap<String, SubscriberState>,
    /// Owner of each tunnel key an event adds, as stored before the call.
    owners: HashMap<TunnelKey, Option<String>>,
}

/// Applies `events` in order and publishes them.
///
/// NOTE: the read and the write are two round trips. When two nodes publish events of the
/// same subscriber at the same moment, the later write of its state wins. The tunnel index
/// itself stays consistent, because each entry is set or released on its own.
pub(super) async fn publish(cloud: &mut RedisMicrocloud, events: &[SessionEvent]) -> Result<(), MicrocloudError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut snapshot = read_snapshot(cloud, events).await?;
    let mut changes = Vec::new();
    let mut touched: Vec<String> = Vec::new();
    for event in events {
        apply_event(&mut snapshot, event, &mut changes, &mut touched);
    }
    let pipe = write_pipeline(cloud, &snapshot, &changes, &touched, events)?;
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
fn apply_event(snapshot: &mut Snapshot, event: &SessionEvent, changes: &mut Vec<IndexChange>, touched: &mut Vec<String>) {
    let state = snapshot
        .states
        .entry(event.imsi.clone())
        .or_insert_with(|| SubscriberState::new(&event.imsi));
    let tunnel_changes = state.apply(event);
    touched.push(event.imsi.clone());
    for key in tunnel_changes.removed {
        if let Some(owner) = snapshot.owners.get_mut(&key) {
            if owner.as_deref() == Some(event.imsi.as_str()) {
                *owner = None;
            }
        }
        changes.push(IndexChange::Release(key, event.imsi.clone()));
    }
    for key in tunnel_changes.added {
        let previous = snapshot.owners.insert(key, Some(event.imsi.clone())).flatten();
        changes.push(IndexChange::Set(key, event.imsi.clone()));
        let Some(previous) = previous.filter(|previous| *previous != event.imsi) else { continue };
        // The stored state of the previous owner may have expired; then there is nothing to update.
        if let Some(other) = snapshot.states.get_mut(&previous) {
            other.release_tunnel(key);
            touched.push(previous);
        }
    }
}

/// Builds the MULTI/EXEC pipeline of one `publish` call.
fn write_pipeline(
    cloud: &RedisMicrocloud,
    snapshot: &Snapshot,
    changes: &[IndexChange],
    touched: &[String],
    events: &[SessionEvent],
) -> Result<Pipeline, MicrocloudError> {
    let keys = &cloud.keys;
    let state_ttl = ttl_seconds(cloud.config.state_ttl);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for change in changes {
        match change {
            IndexChange::Set(key, imsi) => {
                pipe.cmd("SET").arg(keys.tunnel(*key)).arg(imsi).arg("EX").arg(state_ttl).ignore();
            }
            IndexChange::Release(key, imsi) => {
                pipe.cmd("EVAL").arg(scripts::RELEASE_TUNNEL).arg(1).arg(keys.tunnel(*key)).arg(imsi).ignore();
            }
        }
    }
    let mut written: Vec<&String> = touched.iter().collect();
    written.sort_unstable();
    written.dedup();
    for imsi in written {
        let Some(state) = snapshot.states.get(imsi) else { continue };
        let json = to_json(&keys.subscriber(imsi), state)?;
        pipe.cmd("SET").arg(keys.subscriber(imsi)).arg(json).arg("EX").arg(state_ttl).ignore();
    }
    let all_events = keys.events_channel();
    for event in events {
        let json = to_json(&all_events, event)?;
        pipe.publish(&all_events, &json).ignore();
        pipe.publish(keys.subscriber_channel(&event.imsi), &json).ignore();
    }
    cloud.add_meta(&mut pipe);
    Ok(pipe)
}

fn to_json<T: serde::Serialize>(key: &str, value: &T) -> Result<String, MicrocloudError> {
    serde_json::to_string(value).map_err(|error| MicrocloudError::InvalidData {
        key: key.to_owned(),
        reason: format!("cannot encode as JSON: {error}"),
    })
}
