//! Late binding: G-PDUs whose tunnel is not known yet wait here for a grace period of
//! packet time, because the signalling that creates the tunnel may still be in flight or
//! be seen by another site. With microcloud lookups, End Markers of unknown tunnels wait
//! here too.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::batch::{FrameBatch, FrameMeta};
use crate::session::TunnelKey;

/// A held frame, alone in its own small batch so it can be processed like any other.
#[derive(Debug)]
pub struct HeldFrame {
    /// The tunnel it arrived on.
    pub key: TunnelKey,
    /// The frame (exactly one) and its bytes.
    pub batch: FrameBatch,
}

impl HeldFrame {
    /// Returns the held frame's metadata.
    pub fn meta(&self) -> Option<&FrameMeta> {
        self.batch.frames.first()
    }
}

/// Frames held for one tunnel key.
#[derive(Debug, Clone, Copy)]
struct KeyHeld {
    count: u32,
    /// Capture sequence number and packet time of the newest frame held for the key.
    newest: (u64, u64),
}

/// Frames waiting for their tunnel, oldest first, with a bounded count.
#[derive(Debug, Default)]
pub struct LateBuffer {
    held: VecDeque<HeldFrame>,
    waiting: FxHashMap<TunnelKey, KeyHeld>,
    spare: Vec<FrameBatch>,
    capacity: usize,
}

impl LateBuffer {
    /// Creates a buffer for at most `capacity` frames.
    pub fn new(capacity: usize) -> LateBuffer {
        LateBuffer { capacity, ..LateBuffer::default() }
    }

    /// Holds a copy of one frame of `batch`. When the buffer is full, the oldest frame is
    /// returned so the caller can count it as unattributed.
    pub fn hold(&mut self, key: TunnelKey, batch: &FrameBatch, meta: &FrameMeta) -> Option<HeldFrame> {
        let evicted = if self.held.len() >= self.capacity { self.pop_oldest() } else { None };
        let mut copy = self.spare.pop().unwrap_or_default();
        copy_frame(&mut copy, batch, meta);
        let entry = self.waiting.entry(key).or_insert(KeyHeld { count: 0, newest: (0, 0) });
        entry.count += 1;
        entry.newest = (meta.seq, meta.ts_us);
        self.held.push_back(HeldFrame { key, batch: copy });
        evicted
    }

    /// Returns the oldest held frame if it arrived before `deadline_us`, without removing it.
    pub fn oldest_expired(&self, deadline_us: u64) -> Option<&HeldFrame> {
        self.held.front().filter(|frame| frame.meta().is_none_or(|meta| meta.ts_us < deadline_us))
    }

    /// Removes and returns the oldest held frame.
    pub fn pop_oldest(&mut self) -> Option<HeldFrame> {
        let frame = self.held.pop_front()?;
        self.forget(frame.key);
        Some(frame)
    }

    /// Removes and returns, oldest first, every frame held for `key`.
    pub fn take_for(&mut self, key: &TunnelKey, out: &mut Vec<HeldFrame>) {
        if !self.waiting.contains_key(key) {
            return;
        }
        let mut index = 0;
        while index < self.held.len() {
            if self.held[index].key == *key {
                if let Some(frame) = self.held.remove(index) {
                    self.forget(frame.key);
                    out.push(frame);
                }
            } else {
                index += 1;
            }
        }
    }

    fn forget(&mut self, key: TunnelKey) {
        if let Some(entry) = self.waiting.get_mut(&key) {
            entry.count -= 1;
            if entry.count == 0 {
                self.waiting.remove(&key);
            }
        }
    }

    /// Returns the capture sequence number and packet time of the newest frame held for
    /// `key`, if any is held.
    pub fn newest(&self, key: &TunnelKey) -> Option<(u64, u64)> {
        self.waiting.get(key).map(|entry| entry.newest)
    }

    /// Gives a processed frame's batch back for reuse.
    pub fn recycle(&mut self, frame: HeldFrame) {
        let mut batch = frame.batch;
        batch.clear();
        self.spare.push(batch);
    }

    /// Sequence number of the oldest held frame.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.held.front().and_then(|f| f.meta()).map(|m| m.seq)
    }

    /// Number of held frames.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// Copies one frame (payload and original frames) into an empty batch.
fn copy_frame(copy: &mut FrameBatch, batch: &FrameBatch, meta: &FrameMeta) {
    let mut held = *meta;
    held.payload_start = copy.push_bytes(batch.payload(meta));
    held.raw_first = 0;
    for raw in batch.raw_frames(meta) {
        let start = copy.push_bytes(batch.raw_bytes(raw));
        copy.raw.push(crate::batch::RawFrame { start, ..*raw });
    }
    copy.frames.push(held);
}
