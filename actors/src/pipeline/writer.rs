//! The pcap writer actor: merges the frames of the control actor and every shard into
//! capture order, appends each to its subscriber's pcap file when the static tracking
//! selects the subscriber, and hands the records of subscribers followed by trackers, in
//! the same order, to the tracker router.
//!
//! Each source promises, with every batch, that it will send no record at or below its
//! `through_seq` later. A record is written once every source's promise covers it, so files
//! are in capture order (timestamp order for time-ordered input) whatever the actors'
//! relative speed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::output::pcap::{PcapOptions, PcapWriterSet};
use crate::wire::LinkType;
use crate::pipeline::records::{RecordKind, Tracking, WriterBatch};
use crate::tracker::router::RouterMsg;

/// Messages of the pcap writer actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum WriterMsg {
    /// Records of one source and its progress.
    Records(WriterBatch),
    /// Writes what is left, closes every file and returns the counters.
    Finish(RpcReplyPort<WriterStats>),
}

/// Counters of the pcap writer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriterStats {
    /// Frames written.
    pub frames_written: u64,
    /// Subscriber files written.
    pub files: usize,
    /// Frames that failed to be written, by error.
    pub write_errors: BTreeMap<String, u64>,
}

/// Start arguments of the pcap writer.
pub struct WriterArgs {
    /// Directory of the `<IMSI>.pcap` files; `None` writes none.
    pub dir: Option<PathBuf>,
    /// Subscribers written to `dir`.
    pub tracking: Arc<Tracking>,
    /// Tracker router that receives the records of subscribers followed by trackers.
    pub trackers: Option<ActorRef<RouterMsg>>,
    /// Number of sources: the control actor plus the shards.
    pub sources: usize,
    /// Maximum files kept open at once.
    pub max_open_files: usize,
}

/// A queued record: where its batch is and which record it is.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    seq: u64,
    source: usize,
    batch: usize,
    record: usize,
}

/// State of the pcap writer actor.
pub struct WriterState {
    files: Option<PcapWriterSet>,
    tracking: Arc<Tracking>,
    trackers: Option<ActorRef<RouterMsg>>,
    /// Records for the tracker router, sent after each merge step.
    tracked: WriterBatch,
    progress: Vec<u64>,
    queue: BinaryHeap<Reverse<Queued>>,
    batches: Vec<Option<(WriterBatch, usize)>>,
    free_slots: Vec<usize>,
    stats: WriterStats,
}

/// The pcap writer actor.
pub struct WriterActor;

impl Actor for WriterActor {
    type Msg = WriterMsg;
    type State = WriterState;
    type Arguments = WriterArgs;

    async fn pre_start(&self, _myself: ActorRef<WriterMsg>, args: WriterArgs) -> Result<WriterState, ActorProcessingErr> {
        let options = PcapOptions { max_open: args.max_open_files, replace_existing: true, ..PcapOptions::default() };
        let files = match &args.dir {
            Some(dir) => Some(PcapWriterSet::new(dir, options)?),
            None => None,
        };
        Ok(WriterState {
            files,
            tracking: args.tracking,
            trackers: args.trackers,
            tracked: WriterBatch::default(),
            progress: vec![0; args.sources],
            queue: BinaryHeap::new(),
            batches: Vec::new(),
            free_slots: Vec::new(),
            stats: WriterStats::default(),
        })
    }

    async fn handle(&self, _myself: ActorRef<WriterMsg>, message: WriterMsg, state: &mut WriterState) -> Result<(), ActorProcessingErr> {
        match message {
            WriterMsg::Records(batch) => {
                state.enqueue(batch);
                state.write_ready();
                state.flush_due();
            }
            WriterMsg::Finish(reply) => {
                state.progress.iter_mut().for_each(|p| *p = u64::MAX);
                state.write_ready();
                let _ = reply.send(state.close());
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<WriterMsg>, state: &mut WriterState) -> Result<(), ActorProcessingErr> {
        if let Some(files) = state.files.as_mut() {
            files.flush_all()?;
        }
        Ok(())
    }
}

impl WriterState {
    fn enqueue(&mut self, batch: WriterBatch) {
        if let Some(progress) = self.progress.get_mut(batch.source) {
            *progress = (*progress).max(batch.through_seq);
        }
        if batch.records.is_empty() {
            return;
        }
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.batches.push(None);
            self.batches.len() - 1
        });
        for (record, r) in batch.records.iter().enumerate() {
            self.queue.push(Reverse(Queued { seq: r.seq, source: batch.source, batch: slot, record }));
        }
        let count = batch.records.len();
        self.batches[slot] = Some((batch, count));
    }

    /// Writes every queued record that no source can still precede.
    fn write_ready(&mut self) {
        let limit = self.progress.iter().copied().min().unwrap_or(u64::MAX);
        while self.queue.peek().is_some_and(|Reverse(q)| q.seq <= limit) {
            let Some(Reverse(queued)) = self.queue.pop() else { break };
            self.write_one(&queued);
        }
        if let Some(router) = &self.trackers {
            if !self.tracked.is_empty() {
                let _ = router.send_message(RouterMsg::Records(std::mem::take(&mut self.tracked)));
            }
        }
    }

    fn write_one(&mut self, queued: &Queued) {
        let Some(Some((batch, remaining))) = self.batches.get_mut(queued.batch) else { return };
        let record = batch.records[queued.record];
        if record.to_trackers && self.trackers.is_some() {
            self.tracked.push_copy(&record, batch.bytes(&record));
        }
        if let (Some(files), RecordKind::Frame, true) = (self.files.as_mut(), record.kind, self.tracking.is_tracked(&record.imsi)) {
            let result = files.write(record.imsi, link_type_number(record.link), record.ts_us, record.orig_len, batch.bytes(&record));
            match result {
                Ok(()) => self.stats.frames_written += 1,
                Err(error) => *self.stats.write_errors.entry(error.to_string()).or_insert(0) += 1,
            }
        }
        *remaining -= 1;
        if *remaining == 0 {
            self.batches[queued.batch] = None;
            self.free_slots.push(queued.batch);
        }
    }

    /// Writes out buffers older than the flush interval, so a killed process leaves files
    /// readable up to the last flush.
    fn flush_due(&mut self) {
        let Some(files) = self.files.as_mut() else { return };
        if let Err(error) = files.flush_due(std::time::Instant::now()) {
            *self.stats.write_errors.entry(error.to_string()).or_insert(0) += 1;
        }
    }

    fn close(&mut self) -> WriterStats {
        let Some(files) = self.files.as_mut() else { return self.stats.clone() };
        if let Err(error) = files.close_all() {
            *self.stats.write_errors.entry(error.to_string()).or_insert(0) += 1;
        }
        WriterStats { files: files.stats().opened as usize, ..self.stats.clone() }
    }
}

/// Returns the pcap link-type number written for frames of a link type (tcpdump.org
/// link-layer header types). Raw IP inputs of any flavour are written as LINKTYPE_RAW, 101.
pub fn link_type_number(link: LinkType) -> u32 {
    match link {
        LinkType::Ethernet => 1,
        LinkType::LinuxSll => 113,
        LinkType::LinuxSll2 => 276,
        LinkType::RawIp => 101,
    }
}
