//! The tracker agent of a probe, a member of [`AGENTS_GROUP`]. It applies the tracker set
//! of the registries, merged with the trackers of the probe's configuration, to the
//! pipeline and the router. It reports per-tracker counts to [`REGISTRY_GROUP`] every
//! second and serves the tracker files to `imsitrace fetch`. It lives until the node stops,
//! after the end of the input too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::watch;

use crate::cluster::codec::Remote;
use crate::cluster::join_group;
use crate::pipeline::records::TrackedImsis;
use crate::pipeline::run::TrackerLink;
use crate::tracker::files::{check_name, is_node_file, list_files, read_chunk, resume_point, FileScan};
use crate::tracker::protocol::{AgentMsg, AgentReport, Chunk, FileList, RegistryMsg, SetRequest, TrackerSet, AGENTS_GROUP, REGISTRY_GROUP};
use crate::tracker::router::{Router, RouterArgs, RouterMsg, Routes};
use crate::wire::control::Digits;

/// Interval of the agent's reports to the registries.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A tracker given in the probe's configuration (`probe.trackers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTracker {
    /// Tracker identifier, the name of its directory.
    pub id: String,
    /// IMSI digits.
    pub imsi: String,
}

/// Settings of the agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Full name of the node, `<node.name>@<host>`.
    pub node: String,
    /// `node.name`, the prefix of the file names.
    pub node_name: String,
    /// `node.site`.
    pub site: Option<String>,
    /// `probe.tracker_dir`.
    pub dir: PathBuf,
    /// `probe.tracker_flush`: maximum wall time a written frame stays in a buffer.
    pub flush_interval: Duration,
    /// `probe.trackers`, followed whatever the registries send.
    pub static_trackers: Vec<StaticTracker>,
}

/// A running agent and what the pipeline needs of it.
pub struct AgentHandle {
    /// The agent actor.
    pub agent: ActorRef<AgentMsg>,
    /// The router of the tracker files.
    pub router: ActorRef<RouterMsg>,
    /// Connection of the pipeline to the agent.
    pub link: TrackerLink,
}

impl AgentHandle {
    /// Writes out every tracker file's buffer, e.g. at the end of the input.
    pub async fn flush(&self) {
        if let Err(error) = self.router.call(RouterMsg::Flush, Some(Duration::from_secs(30))).await {
            tracing::error!(%error, "cannot flush the tracker files");
        }
    }

    /// Returns the counts of every tracker, for the log.
    pub async fn counts(&self) -> Vec<(String, crate::tracker::protocol::ProbeCounts)> {
        match self.router.call(RouterMsg::Counts, Some(Duration::from_secs(10))).await {
            Ok(ractor::rpc::CallResult::Success(counts)) => counts,
            _ => Vec::new(),
        }
    }
}

/// Start arguments of the agent actor.
pub struct AgentArgs {
    config: AgentConfig,
    router: ActorRef<RouterMsg>,
    imsis: watch::Sender<TrackedImsis>,
    has_set: Arc<AtomicBool>,
}

/// State of the agent actor.
pub struct AgentState {
    args: AgentArgs,
    /// Trackers of the last set received, by identifier, with their IMSI.
    registry_trackers: Vec<StaticTracker>,
}

/// The tracker agent actor.
pub struct Agent;

/// Scans the tracker directory, starts the router and the agent, and applies the trackers
/// of the configuration.
pub async fn start_agent(config: AgentConfig) -> Result<AgentHandle, String> {
    std::fs::create_dir_all(&config.dir).map_err(|e| format!("cannot create the tracker directory {}: {e}", config.dir.display()))?;
    let resumed = scan_tracker_dir(&config.dir, &config.node_name)?;
    let router_args = RouterArgs {
        dir: config.dir.clone(),
        node_name: config.node_name.clone(),
        node: config.node.clone(),
        site: config.site.clone(),
        flush_interval: config.flush_interval,
        resumed,
    };
    let (router, _) = Actor::spawn(None, Router, router_args).await.map_err(|e| format!("cannot start the tracker router: {e}"))?;
    let (sender, receiver) = watch::channel(TrackedImsis::default());
    let has_set = Arc::new(AtomicBool::new(false));
    let args = AgentArgs { config: config.clone(), router: router.clone(), imsis: sender, has_set: has_set.clone() };
    let (agent, _) = Actor::spawn(None, Agent, args).await.map_err(|e| format!("cannot start the tracker agent: {e}"))?;
    spawn_reports(config.node.clone(), router.clone(), has_set);
    let link = TrackerLink { imsis: receiver, router: router.clone() };
    Ok(AgentHandle { agent, router, link })
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(&self, myself: ActorRef<AgentMsg>, args: AgentArgs) -> Result<AgentState, ActorProcessingErr> {
        join_group(AGENTS_GROUP, myself.get_cell());
        let state = AgentState { args, registry_trackers: Vec::new() };
        state.apply();
        tracing::info!(dir = %state.args.config.dir.display(), configured = state.args.config.static_trackers.len(), "tracker agent started");
        Ok(state)
    }

    async fn handle(&self, _myself: ActorRef<AgentMsg>, message: AgentMsg, state: &mut AgentState) -> Result<(), ActorProcessingErr> {
        match message {
            AgentMsg::Trackers(set) => match set.into_result() {
                Ok(set) => state.set_registry_trackers(set),
                Err(error) => tracing::warn!(%error, "invalid tracker set received; keeping the trackers followed"),
            },
            AgentMsg::Files(request, reply) => {
                let files = match request.into_result() {
                    Ok(request) => state.list(&request.id),
                    Err(error) => Err(format!("invalid files request: {error}")),
                };
                let files = files.unwrap_or_else(|error| {
                    tracing::warn!(%error, "cannot list tracker files");
                    Vec::new()
                });
                let _ = reply.send(Remote::Valid(FileList { node: state.args.config.node.clone(), files }));
            }
            AgentMsg::Chunk(request, reply) => {
                let chunk = match request.into_result() {
                    Ok(request) => state.chunk(&request.id, &request.name, request.offset, request.max_len),
                    Err(error) => Chunk::Failed(format!("invalid chunk request: {error}")),
                };
                let _ = reply.send(Remote::Valid(chunk));
            }
        }
        Ok(())
    }
}

impl AgentState {
    fn set_registry_trackers(&mut self, set: TrackerSet) {
        self.args.has_set.store(true, Ordering::Relaxed);
        let trackers: Vec<StaticTracker> = set.trackers.into_iter().map(|t| StaticTracker { id: t.id, imsi: t.imsi }).collect();
        if trackers != self.registry_trackers {
            tracing::info!(registry = %set.registry, trackers = trackers.len(), "tracker set changed");
            self.registry_trackers = trackers;
            self.apply();
        }
    }

    /// Sends the trackers of the configuration and of the last set to the router and the
    /// pipeline. A tracker with an invalid identifier or IMSI is skipped with a warning.
    fn apply(&self) {
        let trackers = self.args.config.static_trackers.iter().chain(&self.registry_trackers);
        let (routes, imsis) = build_routes(trackers);
        let _ = self.args.router.send_message(RouterMsg::Routes(routes));
        self.args.imsis.send_replace(imsis);
    }

    fn list(&self, id: &str) -> Result<Vec<crate::tracker::protocol::TrackerFile>, String> {
        check_name("tracker identifier", id)?;
        list_files(&self.args.config.dir.join(id), &self.args.config.node_name)
    }

    fn chunk(&self, id: &str, name: &str, offset: u64, max_len: u32) -> Chunk {
        let checked = check_name("tracker identifier", id).and_then(|()| check_name("file name", name));
        if let Err(error) = checked {
            return Chunk::Failed(error);
        }
        match read_chunk(&self.args.config.dir.join(id), name, offset, max_len) {
            Ok(bytes) => Chunk::Bytes(bytes),
            Err(error) => Chunk::Failed(error),
        }
    }
}

/// Returns the tracker identifiers by IMSI and the set of IMSIs, skipping (with a warning)
/// trackers whose identifier or IMSI is invalid. Two trackers may follow one IMSI.
pub fn build_routes<'a>(trackers: impl Iterator<Item = &'a StaticTracker>) -> (Routes, TrackedImsis) {
    let mut routes: FxHashMap<Digits, Vec<Arc<str>>> = FxHashMap::default();
    for tracker in trackers {
        if let Err(error) = check_name("tracker identifier", &tracker.id) {
            tracing::warn!(%error, "tracker skipped");
            continue;
        }
        let Some(imsi) = Digits::from_ascii(tracker.imsi.as_bytes()) else {
            tracing::warn!(tracker = %tracker.id, imsi = %tracker.imsi, "tracker skipped: invalid IMSI, expected 5 to 15 decimal digits");
            continue;
        };
        let ids = routes.entry(imsi).or_default();
        if !ids.iter().any(|id| **id == *tracker.id) {
            ids.push(Arc::from(tracker.id.as_str()));
        }
    }
    let imsis: FxHashSet<Digits> = routes.keys().copied().collect();
    (Arc::new(routes), Arc::new(imsis))
}

/// Scans every tracker directory for the files of `node`, cutting off torn last records,
/// and sums them per tracker.
fn scan_tracker_dir(dir: &Path, node: &str) -> Result<BTreeMap<String, FileScan>, String> {
    let mut resumed = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list the tracker directory {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        let id = entry.file_name().to_string_lossy().into_owned();
        let mut total = FileScan::default();
        for file in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if !is_node_file(&name, node) {
                continue;
            }
            match resume_point(&file.path()) {
                Ok(scan) => add_scan(&mut total, &scan),
                Err(error) => tracing::warn!(path = %file.path().display(), %error, "tracker file skipped: cannot read it"),
            }
        }
        if total.packets > 0 {
            resumed.insert(id, total);
        }
    }
    Ok(resumed)
}

fn add_scan(total: &mut FileScan, scan: &FileScan) {
    total.packets += scan.packets;
    total.bytes += scan.bytes;
    total.last_ts_us = total.last_ts_us.max(scan.last_ts_us);
}

/// Sends the counts to every registry each [`REPORT_INTERVAL`], and asks for the tracker
/// set until one arrives. Ends when the router stops.
fn spawn_reports(node: String, router: ActorRef<RouterMsg>, has_set: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(REPORT_INTERVAL);
        loop {
            interval.tick().await;
            let counts = match router.call(RouterMsg::Counts, Some(REPORT_INTERVAL)).await {
                Ok(ractor::rpc::CallResult::Success(counts)) => counts,
                Ok(_) => continue,
                Err(_) => break,
            };
            let registries = ractor::pg::get_members(&REGISTRY_GROUP.to_owned());
            for registry in &registries {
                if !has_set.load(Ordering::Relaxed) {
                    let _ = registry.send_message(RegistryMsg::SendSet(Remote::Valid(SetRequest { node: node.clone() })));
                }
                if !counts.is_empty() {
                    let report = AgentReport { node: node.clone(), trackers: counts.clone() };
                    let _ = registry.send_message(RegistryMsg::Report(Remote::Valid(report)));
                }
            }
        }
    });
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
