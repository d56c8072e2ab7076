//! Frames on their way to the pcap writer, and which subscribers are tracked.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::batch::{FrameBatch, FrameMeta};
use crate::wire::control::Digits;
use crate::wire::LinkType;

/// Selection of the subscribers that get their own pcap file.
#[derive(Debug, Clone, Default)]
pub enum Tracking {
    /// No subscriber: no pcap is written.
    #[default]
    Nobody,
    /// Every subscriber.
    All,
    /// The listed IMSIs.
    Listed(FxHashSet<Digits>),
}

impl Tracking {
    /// True when frames of `imsi` are written.
    pub fn is_tracked(&self, imsi: &Digits) -> bool {
        match self {
            Tracking::Nobody => false,
            Tracking::All => true,
            Tracking::Listed(set) => set.contains(imsi),
        }
    }

    /// True when no subscriber is tracked.
    pub fn is_nobody(&self) -> bool {
        matches!(self, Tracking::Nobody)
    }
}

/// IMSIs followed by trackers at run time. Every consumer keeps its own copy and the
/// tracker agent replaces it whole, so the per-packet check takes no lock.
pub type TrackedImsis = Arc<FxHashSet<Digits>>;

/// What a [`WriteRecord`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// An original frame.
    Frame,
    /// No bytes: the subscriber's session was deleted (a Detach event of this node or of
    /// another probe) at packet time `ts_us`, so its tracker files end there.
    SessionEnd,
}

/// One original frame to write to a subscriber's pcap, or the end of a tracked session.
#[derive(Debug, Clone, Copy)]
pub struct WriteRecord {
    /// Frame or session end.
    pub kind: RecordKind,
    /// True when trackers follow the subscriber, so the record also goes to the tracker
    /// files; the static [`Tracking`] is checked by the writer.
    pub to_trackers: bool,
    /// Capture sequence number of the decoded frame it belongs to; orders records of all sources.
    pub seq: u64,
    /// Subscriber whose file receives it.
    pub imsi: Digits,
    /// Link type of the frame.
    pub link: LinkType,
    /// Packet time, microseconds.
    pub ts_us: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Offset of the bytes in the batch arena.
    pub start: u32,
    /// Number of captured bytes.
    pub len: u32,
}

/// Records from one source (the control actor or one shard), in sequence order, and how
/// far that source has got: it will send no record with a sequence number at or below
/// `through_seq` later.
#[derive(Debug, Default)]
pub struct WriterBatch {
    /// Source index: 0 for the control actor, 1 + shard number for shards.
    pub source: usize,
    /// Progress of the source.
    pub through_seq: u64,
    /// Frame bytes.
    pub arena: Vec<u8>,
    /// Records in sequence order.
    pub records: Vec<WriteRecord>,
}

impl WriterBatch {
    /// Creates an empty batch for a source.
    pub fn new(source: usize) -> WriterBatch {
        WriterBatch { source, ..WriterBatch::default() }
    }

    /// Copies the original frames of a decoded frame for `imsi`.
    pub fn push(&mut self, imsi: Digits, to_trackers: bool, batch: &FrameBatch, meta: &FrameMeta) {
        for raw in batch.raw_frames(meta) {
            let start = self.arena.len() as u32;
            let bytes = batch.raw_bytes(raw);
            self.arena.extend_from_slice(bytes);
            self.records.push(WriteRecord {
                kind: RecordKind::Frame,
                to_trackers,
                seq: meta.seq,
                imsi,
                link: meta.link,
                ts_us: raw.ts_us,
                orig_len: raw.orig_len,
                start,
                len: bytes.len() as u32,
            });
        }
    }

    /// Adds the end of a tracked subscriber's session at packet time `ts_us`, ordered at
    /// capture sequence number `seq`.
    pub fn push_session_end(&mut self, imsi: Digits, seq: u64, ts_us: u64) {
        let start = self.arena.len() as u32;
        self.records.push(WriteRecord {
            kind: RecordKind::SessionEnd,
            to_trackers: true,
            seq,
            imsi,
            link: LinkType::RawIp,
            ts_us,
            orig_len: 0,
            start,
            len: 0,
        });
    }

    /// Appends a copy of `record` of another batch, with its bytes.
    pub fn push_copy(&mut self, record: &WriteRecord, bytes: &[u8]) {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        self.records.push(WriteRecord { start, len: bytes.len() as u32, ..*record });
    }

    /// Returns true when the batch has no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Returns the bytes of a record.
    pub fn bytes(&self, record: &WriteRecord) -> &[u8] {
        let start = record.start as usize;
        self.arena.get(start..start + record.len as usize).unwrap_or(&[])
    }
}
