//! The tracker registry actor of a collector, member of [`REGISTRY_GROUP`].
//!
//! Every registration lives in the microcloud ([`TrackerStore`]), and the actor reloads
//! them before each broadcast, so collectors that share a Redis server agree and a
//! restarted collector loses nothing. Every [`RegistrySettings::broadcast_interval`] it
//! ends the trackers whose expiry time passed, deletes ended ones past the retention, and
//! sends the full [`TrackerSet`] to every agent of [`AGENTS_GROUP`]; it also does so after
//! each attach and detach. The per-probe counts of [`AgentReport`]s are kept in memory
//! only, so a restarted collector lists them again after the agents' next reports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::protocol::{
    AgentMsg, AgentReport, AttachRequest, DetachRequest, ListRequest, ProbeCounts, RegistryMsg, RegistryReply, SetRequest, Tracker, TrackerList, TrackerSet, TrackerStatus,
    AGENTS_GROUP, REGISTRY_GROUP,
};
use super::registry_audit::AuditLog;
use super::registry_rules::{ended, is_past_retention, new_tracker, now_ms, validate_attach};
use super::registry_store::{Loaded, TrackerStore};
use crate::cluster::codec::Remote;

/// Settings of the registry actor.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Full cluster name of the collector node, sent in every [`TrackerSet`].
    pub node: String,
    /// File of the audit log (JSON lines).
    pub audit_log: PathBuf,
    /// Time an ended tracker stays listed with `--list --all` before it is deleted.
    pub retention: Duration,
    /// Time between two broadcasts of the set, and between two expiry checks.
    pub broadcast_interval: Duration,
}

/// Start arguments of the registry actor.
pub struct RegistryArgs {
    /// Connection to the tracker keys.
    pub store: TrackerStore,
    /// The settings.
    pub settings: RegistrySettings,
}

/// State of the registry actor.
pub struct RegistryState {
    store: TrackerStore,
    audit: AuditLog,
    settings: RegistrySettings,
    /// Latest counts by tracker id, then by probe node name.
    counts: BTreeMap<String, BTreeMap<String, ProbeCounts>>,
    /// Messages from other nodes that could not be decoded.
    invalid_messages: u64,
}

/// The registry actor.
pub struct RegistryActor;

/// A running registry actor.
pub struct RegistryHandle {
    actor: ActorRef<RegistryMsg>,
    handle: JoinHandle<()>,
}

impl RegistryHandle {
    /// Starts the registry actor and joins it to [`REGISTRY_GROUP`]. Fails when the audit
    /// log cannot be opened.
    pub async fn spawn(args: RegistryArgs) -> Result<RegistryHandle, String> {
        let (actor, handle) = Actor::spawn(None, RegistryActor, args).await.map_err(|error| format!("cannot start the tracker registry: {error}"))?;
        Ok(RegistryHandle { actor, handle })
    }

    /// Stops the actor after the message it is handling.
    pub async fn stop(self) {
        self.actor.stop(Some("node stopping".to_owned()));
        let _ = self.handle.await;
    }
}

impl Actor for RegistryActor {
    type Msg = RegistryMsg;
    type State = RegistryState;
    type Arguments = RegistryArgs;

    async fn pre_start(&self, myself: ActorRef<RegistryMsg>, args: RegistryArgs) -> Result<RegistryState, ActorProcessingErr> {
        let state = RegistryState::new(args)?;
        let settings = &state.settings;
        crate::cluster::join_group(REGISTRY_GROUP, myself.get_cell());
        let node = settings.node.clone();
        // The periodic broadcast is a set request from this node to itself.
        myself.send_interval(settings.broadcast_interval, move || RegistryMsg::SendSet(Remote::Valid(SetRequest { node: node.clone() })));
        tracing::info!(node = %settings.node, audit_log = %state.audit.path().display(), retention_s = settings.retention.as_secs(), "tracker registry started");
        Ok(state)
    }

    async fn handle(&self, _myself: ActorRef<RegistryMsg>, message: RegistryMsg, state: &mut RegistryState) -> Result<(), ActorProcessingErr> {
        match message {
            RegistryMsg::Attach(request, reply) => {
                let answer = match request.into_result() {
                    Ok(request) => state.attach(request).await,
                    Err(reason) => RegistryReply::Rejected(state.invalid("attach request", &reason)),
                };
                let _ = reply.send(Remote::Valid(answer));
            }
            RegistryMsg::Detach(request, reply) => {
                let answer = match request.into_result() {
                    Ok(request) => state.detach(request).await,
                    Err(reason) => RegistryReply::Rejected(state.invalid("detach request", &reason)),
                };
                let _ = reply.send(Remote::Valid(answer));
            }
            RegistryMsg::List(request, reply) => {
                let include_ended = match request.into_result() {
                    Ok(ListRequest { include_ended }) => include_ended,
                    Err(reason) => {
                        state.invalid("list request", &reason);
                        false
                    }
                };
                let list = state.list(include_ended).await;
                let _ = reply.send(Remote::Valid(list));
            }
            RegistryMsg::Report(report) => match report.into_result() {
                Ok(report) => state.record_report(report),
                Err(reason) => {
                    state.invalid("agent report", &reason);
                }
            },
            RegistryMsg::SendSet(request) => {
                if let Err(reason) = request.into_result() {
                    state.invalid("set request", &reason);
                }
                state.refresh().await;
            }
        }
        Ok(())
    }
}

impl RegistryState {
    /// Opens the audit log. Fails when it cannot be opened for appending.
    fn new(args: RegistryArgs) -> Result<RegistryState, String> {
        let RegistryArgs { store, settings } = args;
        let audit = AuditLog::open(&settings.audit_log, &settings.node)?;
        Ok(RegistryState { store, audit, settings, counts: BTreeMap::new(), invalid_messages: 0 })
    }

    /// Checks, stores, records and broadcasts a new tracker.
    async fn attach(&mut self, request: AttachRequest) -> RegistryReply {
        if let Err(message) = validate_attach(&request) {
            tracing::info!(imsi = %request.imsi, requested_by = %request.requested_by, %message, "tracker attach rejected");
            return RegistryReply::Rejected(message);
        }
        let id = match self.store.next_id().await {
            Ok(id) => id,
            Err(error) => return self.failed("attach", error),
        };
        let now = now_ms();
        let stored = new_tracker(id, &request, now);
        if let Err(error) = self.store.insert(&stored).await {
            return self.failed("attach", error);
        }
        let tracker = stored.tracker;
        self.audit.record(&mut self.store, "attach", &tracker, &tracker.requested_by, now).await;
        tracing::info!(tracker = %tracker.id, imsi = %tracker.imsi, requested_by = %tracker.requested_by, expires_at_ms = ?tracker.expires_at_ms, "tracker attached");
        self.refresh().await;
        RegistryReply::Done(tracker)
    }

    /// Ends a tracker, records it and broadcasts the new set.
    async fn detach(&mut self, request: DetachRequest) -> RegistryReply {
        let id = request.id.trim();
        let loaded = match self.store.get(id).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return RegistryReply::Rejected(format!("unknown tracker id {id:?}: list the trackers with `imsitrace track --list --all`")),
            Err(error) => return self.failed("detach", error),
        };
        if let (Some(ended_at), Some(action)) = (loaded.stored.ended_at_ms, &loaded.stored.end_action) {
            return RegistryReply::Rejected(format!("tracker {id} already ended ({action}) at {ended_at} ms since the Unix epoch; nothing to detach"));
        }
        let now = now_ms();
        let next = ended(&loaded.stored, "detach", now);
        match self.store.replace(&loaded, &next).await {
            Ok(true) => {}
            Ok(false) => return RegistryReply::Rejected(format!("tracker {id} was changed by another collector at the same time; run the detach again")),
            Err(error) => return self.failed("detach", error),
        }
        self.audit.record(&mut self.store, "detach", &next.tracker, &request.requested_by, now).await;
        tracing::info!(tracker = %id, imsi = %next.tracker.imsi, requested_by = %request.requested_by, "tracker detached");
        self.refresh().await;
        RegistryReply::Done(next.tracker)
    }

    /// Returns the stored trackers with the counts of every probe.
    async fn list(&mut self, include_ended: bool) -> TrackerList {
        let loaded = match self.store.load().await {
            Ok(loaded) => loaded,
            Err(error) => {
                // NOTE: the list reply has no error field, so a Redis failure returns an
                // empty list; the error is in the collector's log.
                tracing::error!(%error, "cannot read the trackers for a list request");
                return TrackerList { trackers: Vec::new() };
            }
        };
        let now = now_ms();
        let trackers = loaded
            .into_iter()
            .filter(|entry| include_ended || entry.stored.is_active(now))
            .map(|entry| {
                let stored = entry.stored;
                let expired_at = if stored.is_due_for_expiry(now) { stored.tracker.expires_at_ms } else { None };
                let probes = self.counts.get(&stored.tracker.id).map(|by_node| by_node.values().cloned().collect()).unwrap_or_default();
                TrackerStatus { ended_at_ms: stored.ended_at_ms.or(expired_at), tracker: stored.tracker, probes }
            })
            .collect();
        TrackerList { trackers }
    }

    fn record_report(&mut self, report: AgentReport) {
        for (id, counts) in report.trackers {
            self.counts.entry(id).or_default().insert(report.node.clone(), counts);
        }
    }

    /// Reloads the trackers, ends the expired ones, deletes those past the retention and
    /// broadcasts the active set. A Redis failure is logged and the set is not sent, so
    /// agents keep the last set they received.
    async fn refresh(&mut self) {
        let loaded = match self.store.load().await {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%error, "cannot reload the trackers; the set is not broadcast");
                return;
            }
        };
        let now = now_ms();
        self.expire_due(&loaded, now).await;
        self.delete_past_retention(&loaded, now).await;
        let trackers: Vec<Tracker> = loaded.iter().filter(|entry| entry.stored.is_active(now)).map(|entry| entry.stored.tracker.clone()).collect();
        self.counts.retain(|id, _| loaded.iter().any(|entry| &entry.stored.tracker.id == id));
        let set = TrackerSet { registry: self.settings.node.clone(), read_at_ms: now, trackers };
        send_set(&set);
    }

    async fn expire_due(&mut self, loaded: &[Loaded], now: u64) {
        for entry in loaded.iter().filter(|entry| entry.stored.is_due_for_expiry(now)) {
            let next = ended(&entry.stored, "expire", now);
            match self.store.replace(entry, &next).await {
                // Only the collector whose update won writes the audit line.
                Ok(true) => {
                    let by = self.settings.node.clone();
                    self.audit.record(&mut self.store, "expire", &next.tracker, &by, now).await;
                    tracing::info!(tracker = %next.tracker.id, imsi = %next.tracker.imsi, "tracker expired");
                }
                Ok(false) => tracing::debug!(tracker = %next.tracker.id, "another collector ended the tracker first"),
                Err(error) => tracing::error!(tracker = %next.tracker.id, %error, "cannot store the expiry of a tracker; retrying at the next broadcast"),
            }
        }
    }

    async fn delete_past_retention(&mut self, loaded: &[Loaded], now: u64) {
        let retention_ms = u64::try_from(self.settings.retention.as_millis()).unwrap_or(u64::MAX);
        let old: Vec<String> = loaded.iter().filter(|entry| is_past_retention(&entry.stored, retention_ms, now)).map(|entry| entry.stored.tracker.id.clone()).collect();
        if old.is_empty() {
            return;
        }
        match self.store.remove(&old).await {
            Ok(()) => tracing::debug!(trackers = %old.join(", "), "deleted trackers ended before the retention"),
            Err(error) => tracing::warn!(%error, "cannot delete trackers ended before the retention; retrying at the next broadcast"),
        }
    }

    fn failed(&self, action: &str, error: String) -> RegistryReply {
        tracing::error!(%error, action, "tracker request failed");
        RegistryReply::Rejected(format!("the collector {} cannot {action} the tracker: {error}", self.settings.node))
    }

    /// Counts a message that could not be decoded, logs the first and every 100th, and
    /// returns the rejection text.
    fn invalid(&mut self, what: &str, reason: &crate::cluster::codec::InvalidPayload) -> String {
        self.invalid_messages += 1;
        if self.invalid_messages % 100 == 1 {
            tracing::warn!(what, %reason, invalid_messages = self.invalid_messages, "dropped a tracker message that could not be decoded");
        }
        format!("the collector {} cannot decode the {what}: {reason}; run the same imsitrace release on every node", self.settings.node)
    }
}

/// Sends the set to every agent, local or remote. Delivery is not confirmed; an agent
/// that misses a set converges on the next one.
fn send_set(set: &TrackerSet) {
    for member in ractor::pg::get_members(&AGENTS_GROUP.to_owned()) {
        let agent: ActorRef<AgentMsg> = member.into();
        if let Err(error) = agent.cast(AgentMsg::Trackers(Remote::Valid(set.clone()))) {
            tracing::debug!(actor = %agent.get_id(), %error, "cannot send the tracker set to an agent");
        }
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
