//! Batches of captured frames handed from the capture actor to the control and shard actors.
//!
//! A batch owns one byte arena and fixed-size metadata per frame, so filling and reading it
//! allocates nothing once its vectors have grown. Empty batches come from a bounded
//! [`BatchPool`]: the capture side can only run ahead of the consumers by the pool's size,
//! which is the backpressure that ractor's unbounded mailboxes do not give.

use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::wire::{InnerPacket, LinkType};

/// One original frame as captured: kept so a pcap writer can copy it byte for byte.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    /// Packet time, microseconds since the epoch.
    pub ts_us: u64,
    /// Length on the wire (pcap `orig_len`).
    pub orig_len: u32,
    /// Offset of the captured bytes in the arena.
    pub start: u32,
    /// Number of captured bytes.
    pub len: u32,
}

/// Decoded fields of a frame, kept so the receiver does not decode L2-L4 again.
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta {
    /// Capture sequence number: position of the frame in the merged input, from 1.
    pub seq: u64,
    /// Packet time of the frame, microseconds since the epoch.
    pub ts_us: u64,
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// Offset of the UDP payload (the GTP message) in the arena.
    pub payload_start: u32,
    /// Length of the UDP payload.
    pub payload_len: u32,
    /// GTP-U only: offset of the T-PDU (inner packet) inside the payload.
    pub tpdu_offset: u16,
    /// GTP-U only: message type (255 G-PDU, 254 End Marker).
    pub message_type: u8,
    /// GTP-U only: header TEID.
    pub teid: u32,
    /// GTP-U G-PDU only: the inner packet's flow key and length.
    pub inner: Option<InnerPacket>,
    /// Index of the first original frame in [`FrameBatch::raw`].
    pub raw_first: u32,
    /// Number of original frames (more than 1 for a reassembled datagram).
    pub raw_count: u16,
    /// Link type of the original frames.
    pub link: LinkType,
}

/// A batch of frames and the arena holding their bytes.
#[derive(Debug, Default)]
pub struct FrameBatch {
    /// Frame bytes: original frames, and reassembled payloads when they differ.
    pub arena: Vec<u8>,
    /// Decoded frames in capture order.
    pub frames: Vec<FrameMeta>,
    /// Original frames referenced by [`FrameMeta::raw_first`].
    pub raw: Vec<RawFrame>,
}

impl FrameBatch {
    /// Empties the batch, keeping its capacity.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.frames.clear();
        self.raw.clear();
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the batch contains no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Copies bytes into the arena and returns their offset.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> u32 {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        start
    }

    /// Returns the UDP payload of a frame.
    pub fn payload(&self, meta: &FrameMeta) -> &[u8] {
        let start = meta.payload_start as usize;
        self.arena.get(start..start + meta.payload_len as usize).unwrap_or(&[])
    }

    /// Returns the inner packet (T-PDU) of a GTP-U frame.
    pub fn tpdu(&self, meta: &FrameMeta) -> &[u8] {
        self.payload(meta).get(usize::from(meta.tpdu_offset)..).unwrap_or(&[])
    }

    /// Returns the original frames of a decoded frame.
    pub fn raw_frames(&self, meta: &FrameMeta) -> &[RawFrame] {
        let first = meta.raw_first as usize;
        self.raw.get(first..first + usize::from(meta.raw_count)).unwrap_or(&[])
    }

    /// Returns the captured bytes of an original frame.
    pub fn raw_bytes(&self, raw: &RawFrame) -> &[u8] {
        let start = raw.start as usize;
        self.arena.get(start..start + raw.len as usize).unwrap_or(&[])
    }
}

/// A bounded pool of reusable batches shared by the capture side and the consumers.
#[derive(Clone)]
pub struct BatchPool {
    give_back: SyncSender<FrameBatch>,
    take: Arc<Mutex<Receiver<FrameBatch>>>,
}

impl BatchPool {
    /// Creates a pool of `size` empty batches.
    pub fn new(size: usize) -> BatchPool {
        let (give_back, take) = sync_channel(size);
        for _ in 0..size {
            // The channel has room for exactly `size` batches.
            let _ = give_back.try_send(FrameBatch::default());
        }
        BatchPool { give_back, take: Arc::new(Mutex::new(take)) }
    }

    /// Takes an empty batch, waiting until a consumer returns one. Only the capture side
    /// takes, so the mutex is never contended on the packet path.
    pub fn take_blocking(&self) -> Option<FrameBatch> {
        let take = self.take.lock().ok()?;
        take.recv().ok()
    }

    /// Takes an empty batch if one is free now.
    pub fn try_take(&self) -> Option<FrameBatch> {
        let take = self.take.lock().ok()?;
        take.try_recv().ok()
    }

    /// Returns a batch to the pool after emptying it.
    pub fn give_back(&self, mut batch: FrameBatch) {
        batch.clear();
        let _ = self.give_back.try_send(batch);
    }
}
