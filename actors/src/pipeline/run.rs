//! One `analyze` run: spawns the actors of a node, reads the inputs to their end (or
//! captures on interfaces until a stop), shuts the actors down in dependency order and
//! collects the summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef, RpcReplyPort};

use crate::microcloud::Microcloud;
use crate::output::events::EventsWriter;
use crate::batch::BatchPool;
use crate::cluster::session_bridge::{remote_bridges, BridgeActor, BridgeArgs, BridgeCounters, BridgeMsg};
use crate::pipeline::capture::{CaptureActor, CaptureArgs, CaptureConfig, CaptureMsg};
use crate::pipeline::control::{ControlActor, ControlArgs, ControlMsg};
use crate::pipeline::live::{LiveError, LiveOptions};
use crate::pipeline::lookup::{LookupActor, LookupArgs, LookupConfig, LookupMsg};
use crate::pipeline::reader::{expand_inputs, InputError};
use crate::pipeline::records::{TrackedImsis, Tracking};
use crate::pipeline::route::Targets;
use crate::pipeline::shard::{ShardActor, ShardArgs, ShardMsg};
use crate::pipeline::shard_work::ShardSettings;
use crate::pipeline::sink::{SinkActor, SinkArgs, SinkMsg, SinkReport};
use crate::pipeline::sink_buffer::OutageConfig;
use crate::pipeline::summary::{add_shard, Summary};
use crate::pipeline::writer::{WriterActor, WriterArgs, WriterMsg};
use crate::session::SessionConfig;
use crate::tracker::router::RouterMsg;

/// Settings of an `analyze` run.
#[derive(Debug, Clone)]
pub struct AnalyzeConfig {
    /// Capture files and directories; empty for a live capture.
    pub inputs: Vec<PathBuf>,
    /// Interfaces and settings of a live capture, which replaces `inputs`.
    pub live: Option<LiveOptions>,
    /// Number of shard actors.
    pub shards: usize,
    /// Frames per batch.
    pub batch_size: usize,
    /// Batches in flight between the capture and its consumers.
    pub pool_size: usize,
    /// Session table settings.
    pub session: SessionConfig,
    /// Shard settings.
    pub shard: ShardSettings,
    /// Tracked subscribers.
    pub tracking: Tracking,
    /// Directory of the per-subscriber pcap files.
    pub pcap_dir: Option<PathBuf>,
    /// Directory of the `<epoch>.imsi` reports.
    pub report_dir: Option<PathBuf>,
    /// File of the session-event log (JSON lines).
    pub events: Option<PathBuf>,
    /// Maximum pcap files open at once.
    pub max_open_files: usize,
    /// Print a progress line on a terminal.
    pub progress: bool,
    /// Outage buffer of the microcloud writes.
    pub outage: OutageConfig,
    /// Lookups of unknown tunnels in the microcloud's tunnel index; `None` turns them off.
    pub lookup: Option<LookupConfig>,
    /// Set to end the input early (e.g. on SIGINT); outputs are still flushed and closed.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Replay speed as a factor of the capture's own pace, or 0 to read as fast as possible.
    /// Callers check it with `capture::pace::is_valid_speed`, because an invalid value reads
    /// as 0.
    pub replay_speed: f64,
}

/// Session events shared with the other probes of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterEvents {
    /// Full name of this node, `<node.name>@<host>`.
    pub node: String,
    /// Bridge actors of other probes to wait for before reading the inputs.
    pub wait_for_probes: usize,
    /// Maximum time to wait for them; the run then starts with those present.
    pub wait_timeout: Duration,
    /// Tracker agent of this probe, when trackers are followed.
    pub trackers: Option<TrackerLink>,
}

/// Connection of a run to the tracker agent: the IMSIs it follows and the router of the
/// per-tracker pcap writers.
#[derive(Debug, Clone)]
pub struct TrackerLink {
    /// Current IMSIs followed by trackers; every change is passed to the control actor and
    /// the shards.
    pub imsis: tokio::sync::watch::Receiver<TrackedImsis>,
    /// Router that receives the records of those IMSIs in capture order.
    pub router: ActorRef<RouterMsg>,
}

/// Failure of a run.
#[derive(Debug)]
pub enum AnalyzeError {
    /// An input could not be read.
    Input(InputError),
    /// An interface could not be opened for a live capture.
    Live(LiveError),
    /// An output could not be created or written.
    Output(String),
    /// An actor failed to start or stopped unexpectedly.
    Actor(String),
}

impl std::fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyzeError::Input(error) => write!(f, "{error}"),
            AnalyzeError::Live(error) => write!(f, "{error}"),
            AnalyzeError::Output(message) => write!(f, "{message}"),
            AnalyzeError::Actor(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for AnalyzeError {}

impl From<InputError> for AnalyzeError {
    fn from(error: InputError) -> Self {
        AnalyzeError::Input(error)
    }
}

impl From<LiveError> for AnalyzeError {
    fn from(error: LiveError) -> Self {
        AnalyzeError::Live(error)
    }
}

fn actor_error(what: &str) -> impl Fn(ractor::SpawnErr) -> AnalyzeError + '_ {
    move |error| AnalyzeError::Actor(format!("cannot start the {what} actor: {error}"))
}

/// The actors of a run.
struct Actors {
    control: ActorRef<ControlMsg>,
    shards: Vec<ActorRef<ShardMsg>>,
    writer: Option<ActorRef<WriterMsg>>,
    /// True when the writer writes per-subscriber files to `pcap_dir`.
    writes_pcap: bool,
    sink: ActorRef<SinkMsg>,
    lookup: Option<ActorRef<LookupMsg>>,
    bridge: Option<(ActorRef<BridgeMsg>, Arc<BridgeCounters>)>,
}

/// Reads every input, follows every subscriber, writes the requested outputs and returns
/// the summary.
pub async fn analyze<M: Microcloud + Clone>(config: AnalyzeConfig, microcloud: M) -> Result<Summary, AnalyzeError> {
    analyze_in_cluster(config, microcloud, None).await
}

/// Runs [`analyze`] on a probe of a cluster when `cluster` is given: the session events
/// of each control batch are broadcast to the other probes, and theirs install remote
/// tunnels in this node's shards.
pub async fn analyze_in_cluster<M: Microcloud + Clone>(config: AnalyzeConfig, microcloud: M, cluster: Option<ClusterEvents>) -> Result<Summary, AnalyzeError> {
    let started = Instant::now();
    let files = expand_inputs(&config.inputs)?;
    let pool = BatchPool::new(config.pool_size.max(2 * config.shards + 2));
    let actors = spawn_actors(&config, microcloud, &pool, cluster.as_ref()).await?;
    if let Some(cluster) = &cluster {
        wait_for_probes(cluster, &config.stop).await;
    }
    let capture_config = CaptureConfig {
        files: files.clone(),
        live: config.live.clone(),
        batch_size: config.batch_size,
        flush_every: 16_384,
        pool_size: config.pool_size,
        progress: config.progress,
        stop: config.stop.clone(),
        replay_speed: config.replay_speed,
        metrics: crate::metrics::CaptureMetrics::global(),
    };
    let targets = Targets { control: actors.control.clone(), shards: actors.shards.clone() };
    let capture_args = CaptureArgs { config: capture_config, targets, pool };
    let (capture_actor, _) = Actor::spawn(None, CaptureActor, capture_args).await.map_err(actor_error("capture"))?;
    let capture = call(&capture_actor, "capture", CaptureMsg::Run).await;
    capture_actor.stop(None);
    tracing::info!(elapsed_s = started.elapsed().as_secs_f64(), "capture reached the end of input");
    let finished = finish_actors(&actors).await;
    tracing::info!(elapsed_s = started.elapsed().as_secs_f64(), "actors finished");
    stop_actors(&actors);
    let capture = capture??;
    let (mut summary, report) = finished?;
    summary.capture = capture;
    summary.inputs = files.iter().map(|p| p.display().to_string()).collect();
    summary.shards = config.shards;
    if let Some(dir) = &config.report_dir {
        summary.reports_written = crate::pipeline::run::reports::write_all(dir, &report)?;
    }
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.frames_per_s = summary.capture.frames as f64 / summary.elapsed_s.max(1e-9);
    summary.derive();
    Ok(summary)
}

async fn spawn_actors<M: Microcloud + Clone>(config: &AnalyzeConfig, microcloud: M, pool: &BatchPool, cluster: Option<&ClusterEvents>) -> Result<Actors, AnalyzeError> {
    let tracking = Arc::new(config.tracking.clone());
    let link = cluster.and_then(|c| c.trackers.clone());
    let trackers: TrackedImsis = link.as_ref().map(|l| l.imsis.borrow().clone()).unwrap_or_default();
    let lookup = spawn_lookup(config, &microcloud).await?;
    let events = match &config.events {
        Some(path) => Some(create_event_log(path)?),
        None => None,
    };
    let (sink, _) = Actor::spawn(None, SinkActor::<M>::default(), SinkArgs { microcloud, events, outage: config.outage.clone(), read_buckets: config.report_dir.is_some() }).await.map_err(actor_error("sink"))?;
    let writer = spawn_writer(config, &tracking, link.as_ref()).await?;
    let mut shards = Vec::with_capacity(config.shards);
    for index in 0..config.shards {
        let args = ShardArgs {
            index,
            settings: config.shard.clone(),
            tracking: tracking.clone(),
            trackers: trackers.clone(),
            writer: writer.clone(),
            sink: sink.clone(),
            pool: pool.clone(),
            lookup: lookup.clone(),
            remote_events: cluster.is_some(),
        };
        shards.push(Actor::spawn(None, ShardActor, args).await.map_err(actor_error("shard"))?.0);
    }
    let args = ControlArgs {
        config: config.session.clone(),
        shards: shards.clone(),
        writer: writer.clone(),
        sink: sink.clone(),
        tracking,
        trackers,
        pool: pool.clone(),
        broadcast_as: cluster.map(|c| c.node.clone()),
    };
    let (control, _) = Actor::spawn(None, ControlActor, args).await.map_err(actor_error("control"))?;
    if let Some(link) = link {
        forward_trackers(link.imsis, control.clone(), shards.clone());
    }
    let bridge = match cluster {
        Some(cluster) => Some(spawn_bridge(cluster, &shards).await?),
        None => None,
    };
    let writes_pcap = config.pcap_dir.is_some() && !config.tracking.is_nobody();
    Ok(Actors { control, shards, writer, writes_pcap, sink, lookup, bridge })
}

/// Starts the pcap writer when static tracking writes per-subscriber files or trackers
/// are followed.
async fn spawn_writer(config: &AnalyzeConfig, tracking: &Arc<Tracking>, link: Option<&TrackerLink>) -> Result<Option<ActorRef<WriterMsg>>, AnalyzeError> {
    let dir = config.pcap_dir.clone().filter(|_| !tracking.is_nobody());
    if dir.is_none() && link.is_none() {
        return Ok(None);
    }
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).map_err(|e| AnalyzeError::Output(format!("cannot create the pcap directory {}: {e}", dir.display())))?;
    }
    let args = WriterArgs {
        dir,
        tracking: tracking.clone(),
        trackers: link.map(|l| l.router.clone()),
        sources: 1 + config.shards,
        max_open_files: config.max_open_files,
    };
    Ok(Some(Actor::spawn(None, WriterActor, args).await.map_err(actor_error("pcap writer"))?.0))
}

/// Passes every change of the tracked IMSIs to the control actor and the shards, until
/// the agent drops its sender or the actors stop.
fn forward_trackers(mut imsis: tokio::sync::watch::Receiver<TrackedImsis>, control: ActorRef<ControlMsg>, shards: Vec<ActorRef<ShardMsg>>) {
    tokio::spawn(async move {
        while imsis.changed().await.is_ok() {
            let current = imsis.borrow_and_update().clone();
            let mut delivered = control.send_message(ControlMsg::Trackers(current.clone())).is_ok();
            for shard in &shards {
                delivered &= shard.send_message(ShardMsg::Trackers(current.clone())).is_ok();
            }
            if !delivered {
                break;
            }
        }
    });
}

/// Starts the bridge actor, which joins the session-events group.
async fn spawn_bridge(cluster: &ClusterEvents, shards: &[ActorRef<ShardMsg>]) -> Result<(ActorRef<BridgeMsg>, Arc<BridgeCounters>), AnalyzeError> {
    let counters = Arc::new(BridgeCounters::default());
    let args = BridgeArgs { node: cluster.node.clone(), shards: shards.to_vec(), counters: counters.clone() };
    let (bridge, _) = Actor::spawn(None, BridgeActor, args).await.map_err(actor_error("cluster bridge"))?;
    Ok((bridge, counters))
}

/// Waits until the bridges of `cluster.wait_for_probes` other probes are in the
/// session-events group, the timeout passes or a stop is requested.
async fn wait_for_probes(cluster: &ClusterEvents, stop: &std::sync::atomic::AtomicBool) {
    if cluster.wait_for_probes == 0 {
        return;
    }
    let deadline = Instant::now() + cluster.wait_timeout;
    tracing::info!(probes = cluster.wait_for_probes, "waiting for other probes to join the session-events group");
    while remote_bridges() < cluster.wait_for_probes {
        if Instant::now() >= deadline {
            tracing::warn!(expected = cluster.wait_for_probes, present = remote_bridges(), timeout_s = cluster.wait_timeout.as_secs_f64(), "other probes did not join the session-events group in time; reading the inputs anyway");
            return;
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(probes = remote_bridges(), "other probes joined the session-events group");
}

/// Starts the lookup actor with a clone of the microcloud handle, when lookups are on.
async fn spawn_lookup<M: Microcloud + Clone>(config: &AnalyzeConfig, microcloud: &M) -> Result<Option<ActorRef<LookupMsg>>, AnalyzeError> {
    let Some(lookup_config) = &config.lookup else { return Ok(None) };
    let args = LookupArgs { microcloud: microcloud.clone(), config: lookup_config.clone() };
    let (lookup, _) = Actor::spawn(None, LookupActor::<M>::default(), args).await.map_err(actor_error("lookup"))?;
    Ok(Some(lookup))
}

/// Creates the event log file and its parent directories.
fn create_event_log(path: &std::path::Path) -> Result<EventsWriter, AnalyzeError> {
    let failed = |e: &dyn std::fmt::Display| AnalyzeError::Output(format!("cannot create the event log {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| failed(&e))?;
    }
    EventsWriter::create(path).map_err(|e| failed(&e))
}

async fn call<M, R>(actor: &ActorRef<M>, what: &str, make: impl FnOnce(RpcReplyPort<R>) -> M) -> Result<R, AnalyzeError>
where
    M: ractor::Message,
    R: Send + 'static,
{
    match actor.call(make, None).await {
        Ok(ractor::rpc::CallResult::Success(value)) => Ok(value),
        Ok(_) => Err(AnalyzeError::Actor(format!("the {what} actor stopped before it replied"))),
        Err(error) => Err(AnalyzeError::Actor(format!("the {what} actor failed: {error}"))),
    }
}

/// Finishes the actors in dependency order: control, then shards (which get the last events
/// and the last lookup results), then the lookup actor, the pcap writer (which gets the last
/// records) and the sink.
async fn finish_actors(actors: &Actors) -> Result<(Summary, SinkReport), AnalyzeError> {
    let mut summary = Summary { control: call(&actors.control, "control", ControlMsg::Finish).await?, ..Summary::default() };
    if let Some((bridge, counters)) = &actors.bridge {
        // Events that arrive after this are not applied; the shards are about to finish.
        bridge.stop_and_wait(None, None).await.map_err(|e| AnalyzeError::Actor(format!("the cluster bridge did not stop: {e}")))?;
        summary.cluster_events = Some(counters.stats());
    }
    for shard in &actors.shards {
        let stats = call(shard, "shard", ShardMsg::Finish).await?;
        add_shard(&mut summary.user_plane, &stats);
    }
    if let Some(lookup) = &actors.lookup {
        summary.lookups = Some(call(lookup, "lookup", LookupMsg::Finish).await?);
    }
    if let Some(writer) = &actors.writer {
        let stats = call(writer, "pcap writer", WriterMsg::Finish).await?;
        // A writer that only feeds the tracker router writes no per-subscriber file.
        summary.pcap = actors.writes_pcap.then_some(stats);
    }
    let report = call(&actors.sink, "sink", SinkMsg::Finish).await?;
    summary.sink = report.stats.clone();
    Ok((summary, report))
}

fn stop_actors(actors: &Actors) {
    actors.control.stop(None);
    for shard in &actors.shards {
        shard.stop(None);
    }
    if let Some(lookup) = &actors.lookup {
        lookup.stop(None);
    }
    if let Some(writer) = &actors.writer {
        writer.stop(None);
    }
    actors.sink.stop(None);
}

mod reports {
    //! Writes the bucket rows collected by the sink as `<epoch>.imsi` report files.
    use std::path::Path;

    use super::AnalyzeError;
    use crate::pipeline::sink::SinkReport;

    /// Writes one report per epoch, naming protocols as nDPI prints them; returns the number
    /// of files written.
    pub fn write_all(dir: &Path, report: &SinkReport) -> Result<usize, AnalyzeError> {
        std::fs::create_dir_all(dir).map_err(|e| AnalyzeError::Output(format!("cannot create the report directory {}: {e}", dir.display())))?;
        let classifier = crate::ndpi::Classifier::new().map_err(|e| AnalyzeError::Output(e.to_string()))?;
        let mut name = |protocol| crate::flow::classify::Classify::name(&classifier, protocol).to_string();
        crate::output::report::write_reports(dir, &report.buckets, &mut name)
            .map_err(|e| AnalyzeError::Output(format!("cannot write reports into {}: {e}", dir.display())))
    }
}
