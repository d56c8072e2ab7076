//! The tracker router of a probe: receives the records of tracked subscribers from the
//! pipeline's pcap writer in capture order, hands each frame to the file writer of every
//! tracker that follows its IMSI, and keeps the per-tracker counts.
//!
//! A tracker's file starts at the first frame of its subscriber. It ends when the
//! subscriber's session is deleted (a Detach event of this probe or of another one), when
//! the tracker is detached or the link type changes, and after [`IDLE_ROTATE_US`] of packet
//! time without a frame. The next frame starts a new file, so a re-attach or a handover
//! back gets its own file.
//!
//! NOTE: the end of any one session ends the file, also while another session of the
//! subscriber (a second PDN connection) is still live; its next frame starts a new file.
//!
//! After a restart, frames at or before the last packet time already written for a tracker
//! are skipped and counted, so replaying the same capture again writes no frame twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rustc_hash::FxHashMap;

use crate::output::time::format_utc_us;
use crate::pipeline::records::{RecordKind, WriteRecord, WriterBatch};
use crate::pipeline::writer::link_type_number;
use crate::tracker::file_writer::{FileArgs, FileMsg, FileWriter};
use crate::tracker::files::{new_file_path, FileScan};
use crate::tracker::protocol::ProbeCounts;
use crate::wire::control::Digits;
use crate::wire::LinkType;

/// Packet time without a frame after which a tracker's file ends even though no session
/// end was seen, microseconds (10 minutes).
pub const IDLE_ROTATE_US: u64 = 600_000_000;

/// Tracker identifiers by followed IMSI.
pub type Routes = Arc<FxHashMap<Digits, Vec<Arc<str>>>>;

/// Messages of the tracker router.
#[derive(ractor_cluster::RactorMessage)]
pub enum RouterMsg {
    /// Replaces the trackers followed; the files of trackers no longer in it end.
    Routes(Routes),
    /// Records of tracked subscribers, in capture order.
    Records(WriterBatch),
    /// Returns the counts of every tracker this probe has written for or resumed.
    Counts(RpcReplyPort<Vec<(String, ProbeCounts)>>),
    /// Writes out every open file's buffer, then replies.
    Flush(RpcReplyPort<()>),
}

/// Start arguments of the router.
pub struct RouterArgs {
    /// `probe.tracker_dir`: one directory per tracker.
    pub dir: PathBuf,
    /// `node.name`, the prefix of the file names.
    pub node_name: String,
    /// Full name of the node, for the counts.
    pub node: String,
    /// `node.site`, for the counts.
    pub site: Option<String>,
    /// Maximum wall time a written frame stays in a writer's buffer.
    pub flush_interval: Duration,
    /// Files left by an earlier run, summed per tracker identifier.
    pub resumed: BTreeMap<String, FileScan>,
}

/// The open file of one tracker.
struct OpenFile {
    writer: ActorRef<FileMsg>,
    first_ts_us: u64,
    last_ts_us: u64,
    link: LinkType,
    /// Frames for the writer, sent after each batch of records.
    pending: WriterBatch,
}

/// State of one tracker on this probe.
pub struct TrackerState {
    counts: ProbeCounts,
    /// Last packet time written before a restart; frames at or before it are skipped.
    resume_after_us: Option<u64>,
    open: Option<OpenFile>,
}

/// State of the router.
pub struct RouterState {
    args: RouterArgs,
    routes: Routes,
    trackers: BTreeMap<String, TrackerState>,
}

/// The tracker router actor.
pub struct Router;

impl Actor for Router {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(&self, _myself: ActorRef<RouterMsg>, args: RouterArgs) -> Result<RouterState, ActorProcessingErr> {
        let mut trackers = BTreeMap::new();
        let now_us = wall_clock_us();
        for (id, scan) in &args.resumed {
            let state = TrackerState::resumed(&args, scan, now_us);
            tracing::warn!(tracker = %id, gap = %state.counts.gaps[0], "tracker resumed after a restart");
            trackers.insert(id.clone(), state);
        }
        Ok(RouterState { args, routes: Routes::default(), trackers })
    }

    async fn handle(&self, _myself: ActorRef<RouterMsg>, message: RouterMsg, state: &mut RouterState) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Routes(routes) => state.set_routes(routes),
            RouterMsg::Records(batch) => {
                state.route(&batch).await;
                state.send_pending();
            }
            RouterMsg::Counts(reply) => {
                let counts = state.trackers.iter().map(|(id, t)| (id.clone(), t.counts.clone())).collect();
                let _ = reply.send(counts);
            }
            RouterMsg::Flush(reply) => {
                state.send_pending();
                state.sync_all().await;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<RouterMsg>, state: &mut RouterState) -> Result<(), ActorProcessingErr> {
        for tracker in state.trackers.values_mut() {
            tracker.close();
        }
        Ok(())
    }
}

impl TrackerState {
    fn new(args: &RouterArgs) -> TrackerState {
        let counts = ProbeCounts { node: args.node.clone(), site: args.site.clone(), ..ProbeCounts::default() };
        TrackerState { counts, resume_after_us: None, open: None }
    }

    /// Starts from the files of an earlier run, with a gap line for the restart.
    fn resumed(args: &RouterArgs, scan: &FileScan, now_us: u64) -> TrackerState {
        let mut state = TrackerState::new(args);
        state.counts.packets = scan.packets;
        state.counts.bytes = scan.bytes;
        state.counts.last_packet_us = scan.last_ts_us;
        state.resume_after_us = scan.last_ts_us;
        let last = scan.last_ts_us.map_or_else(|| "no frame".to_owned(), format_utc_us);
        state.counts.gaps.push(format!(
            "probe restarted at {} (wall time); last frame written before it: {last}; frames after it until the restart may be missing",
            format_utc_us(now_us)
        ));
        state
    }

    /// Returns true when a frame at `ts_us` was written before a restart.
    fn is_written_already(&self, ts_us: u64) -> bool {
        self.resume_after_us.is_some_and(|last| ts_us <= last)
    }

    /// Ends the open file when it started at or before a session end at `ts_us`. A later
    /// file belongs to a newer session, whose end this is not.
    fn end_session(&mut self, ts_us: u64) {
        if self.open.as_ref().is_some_and(|open| open.first_ts_us <= ts_us) {
            self.close();
        }
    }

    /// Returns true when `record` cannot go to the open file: the link type changed or the
    /// subscriber was idle for [`IDLE_ROTATE_US`].
    fn needs_new_file(&self, record: &WriteRecord) -> bool {
        self.open.as_ref().is_some_and(|open| open.link != record.link || record.ts_us.saturating_sub(open.last_ts_us) > IDLE_ROTATE_US)
    }

    fn close(&mut self) {
        let Some(open) = self.open.take() else { return };
        if !open.pending.is_empty() {
            let _ = open.writer.send_message(FileMsg::Records(open.pending));
        }
        let _ = open.writer.send_message(FileMsg::Close);
    }

    fn send_pending(&mut self) {
        let Some(open) = self.open.as_mut() else { return };
        if !open.pending.is_empty() {
            let _ = open.writer.send_message(FileMsg::Records(std::mem::take(&mut open.pending)));
        }
    }
}

impl RouterState {
    fn set_routes(&mut self, routes: Routes) {
        let active: std::collections::BTreeSet<&str> = routes.values().flatten().map(|id| &**id).collect();
        for (id, tracker) in &mut self.trackers {
            if !active.contains(id.as_str()) {
                tracker.close();
            }
        }
        self.routes = routes;
    }

    /// Hands each record to the trackers that follow its IMSI.
    async fn route(&mut self, batch: &WriterBatch) {
        let routes = self.routes.clone();
        for record in &batch.records {
            let Some(ids) = routes.get(&record.imsi) else { continue };
            for id in ids {
                match record.kind {
                    RecordKind::SessionEnd => {
                        if let Some(tracker) = self.trackers.get_mut(&**id) {
                            tracker.end_session(record.ts_us);
                        }
                    }
                    RecordKind::Frame => self.route_frame(id, record, batch.bytes(record)).await,
                }
            }
        }
    }

    async fn route_frame(&mut self, id: &str, record: &WriteRecord, bytes: &[u8]) {
        if !self.trackers.contains_key(id) {
            self.trackers.insert(id.to_owned(), TrackerState::new(&self.args));
        }
        let Some(tracker) = self.trackers.get_mut(id) else { return };
        if tracker.is_written_already(record.ts_us) {
            tracker.counts.skipped += 1;
            return;
        }
        if tracker.needs_new_file(record) {
            tracker.close();
        }
        if tracker.open.is_none() {
            tracker.open = open_file(&self.args, id, record).await;
        }
        let Some(open) = tracker.open.as_mut() else {
            tracker.counts.skipped += 1;
            return;
        };
        open.pending.push_copy(record, bytes);
        open.last_ts_us = record.ts_us;
        tracker.counts.packets += 1;
        tracker.counts.bytes += bytes.len() as u64;
        tracker.counts.last_packet_us = Some(record.ts_us);
    }

    fn send_pending(&mut self) {
        for tracker in self.trackers.values_mut() {
            tracker.send_pending();
        }
    }

    /// Waits until every open file has written out its buffer.
    async fn sync_all(&mut self) {
        for (id, tracker) in &self.trackers {
            let Some(open) = &tracker.open else { continue };
            if let Err(error) = open.writer.call(FileMsg::Sync, Some(Duration::from_secs(10))).await {
                tracing::error!(tracker = %id, %error, "cannot flush a tracker file");
            }
        }
    }
}

/// Starts the writer of a new file for tracker `id`, named after `record`'s packet time.
/// Returns `None`, having logged why, when the file cannot be created.
async fn open_file(args: &RouterArgs, id: &str, record: &WriteRecord) -> Option<OpenFile> {
    let dir = args.dir.join(id);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        tracing::error!(tracker = %id, dir = %dir.display(), %error, "cannot create a tracker directory; its frames are not written");
        return None;
    }
    let path = new_file_path(&dir, &args.node_name, record.ts_us);
    let file_args = FileArgs { path: path.clone(), link_type: link_type_number(record.link), flush_interval: args.flush_interval };
    match Actor::spawn(None, FileWriter, file_args).await {
        Ok((writer, _)) => {
            tracing::info!(tracker = %id, path = %path.display(), "tracker file started");
            Some(OpenFile { writer, first_ts_us: record.ts_us, last_ts_us: record.ts_us, link: record.link, pending: WriterBatch::default() })
        }
        Err(error) => {
            tracing::error!(tracker = %id, path = %path.display(), %error, "cannot start a tracker file; its frames are not written");
            None
        }
    }
}

/// Returns the wall-clock time, microseconds since the Unix epoch.
fn wall_clock_us() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
