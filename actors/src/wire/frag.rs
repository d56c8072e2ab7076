//! Outer IPv4 fragment reassembly (RFC 791 §3.2), bounded in datagrams, bytes and time.
//!
//! Fragments are keyed by (source, destination, identification, protocol) and may arrive in
//! any order: the GTP header can be in the first fragment or, when the final fragment
//! arrives first, be completed last. Time is the packet clock (`ts_us` of each frame), so a
//! replayed file behaves like live capture.
//!
//! Buffers are pooled: a slot keeps the capacity of its payload and frame buffers after it is
//! released, so once the pool has grown to the traffic's shape, reassembly allocates nothing.

use std::net::IpAddr;

use super::ip::Fragment;
use super::DecodeError;

/// Largest reassembled payload: fragment offset plus length must stay within the 16-bit
/// Total Length.
const MAX_PAYLOAD: usize = 65_535;
/// Coverage is tracked in 8-byte blocks, the unit of the fragment offset field.
const BLOCK: usize = 8;
const BITMAP_WORDS: usize = MAX_PAYLOAD.div_ceil(BLOCK).div_ceil(64);

/// Limits of the reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Datagrams in flight at once; a new one evicts the oldest when all are taken.
    pub max_datagrams: usize,
    /// Bytes held over all datagrams (reassembled payload plus the original frames).
    pub max_bytes: usize,
    /// Fragments kept per datagram; one more drops the datagram.
    pub max_fragments: usize,
    /// Microseconds of packet time after a datagram's first fragment before it is dropped.
    pub timeout_us: u64,
}

impl Default for ReassemblyLimits {
    /// 64 datagrams, 4 MiB, 64 fragments each and a 30-second timeout (the Linux
    /// `ipfrag_time` default).
    fn default() -> ReassemblyLimits {
        ReassemblyLimits { max_datagrams: 64, max_bytes: 4 << 20, max_fragments: 64, timeout_us: 30_000_000 }
    }
}

/// Counters of the reassembler since it was created, and its current occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ReassemblyStats {
    /// Fragments accepted into a datagram.
    pub fragments_held: u64,
    /// Fragments rejected with a [`DecodeError`] (too large, misaligned, inconsistent, too many).
    pub fragments_rejected: u64,
    /// Fragments that overlapped bytes already received; the later bytes were kept.
    pub fragments_overlapping: u64,
    /// Datagrams completed and handed to the decoder.
    pub datagrams_completed: u64,
    /// Datagrams dropped because their timeout passed before they completed.
    pub datagrams_expired: u64,
    /// Datagrams dropped to make room (datagram or byte limit).
    pub datagrams_evicted: u64,
    /// Datagrams dropped because a fragment contradicted them or they had too many fragments.
    pub datagrams_dropped: u64,
    /// Datagrams waiting for fragments now.
    pub datagrams_in_flight: usize,
    /// Bytes held now.
    pub bytes_in_flight: usize,
}

/// One original frame of a reassembled datagram, as captured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FragmentFrame {
    /// Capture timestamp, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The captured bytes, from the link header on. Fragments cut short by the snap length
    /// are rejected, so this is also the frame's original length.
    pub frame: Vec<u8>,
}

/// Identity of a fragmented datagram (RFC 791 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Identification field.
    pub id: u32,
    /// Protocol field.
    pub protocol: u8,
}

/// Outcome of adding a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembly<'a> {
    /// The datagram still misses bytes; the fragment is kept.
    Held,
    /// The datagram is complete.
    Complete {
        /// The reassembled IP payload.
        payload: &'a [u8],
        /// Every frame that carried a fragment of it, in arrival order.
        frames: &'a [FragmentFrame],
    },
}

/// A datagram being reassembled, or a free slot when `key` is `None`.
#[derive(Debug, Default)]
struct Datagram {
    key: Option<FragmentKey>,
    first_ts_us: u64,
    payload: Vec<u8>,
    covered: Vec<u64>,
    blocks_covered: usize,
    /// Payload length, known once the final fragment (MF clear) has arrived.
    total_len: Option<usize>,
    frames: Vec<FragmentFrame>,
    frame_count: usize,
    bytes: usize,
}

impl Datagram {
    fn start(&mut self, key: FragmentKey, ts_us: u64) {
        self.key = Some(key);
        self.first_ts_us = ts_us;
        self.payload.clear();
        self.covered.clear();
        self.covered.resize(BITMAP_WORDS, 0);
        self.blocks_covered = 0;
        self.total_len = None;
        self.frame_count = 0;
        self.bytes = 0;
    }

    /// Checks a fragment against what is known of the datagram, before anything is changed.
    fn check(&self, fragment: Fragment, len: usize) -> Result<(), DecodeError> {
        let start = fragment.offset as usize;
        let end = start + len;
        if end > MAX_PAYLOAD {
            return Err(DecodeError::FragmentTooLarge);
        }
        if fragment.more && len % BLOCK != 0 {
            return Err(DecodeError::FragmentMisaligned);
        }
        let beyond_known_end = self.total_len.is_some_and(|total| end > total);
        let final_contradicts =
            !fragment.more && (self.total_len.is_some_and(|total| total != end) || self.payload.len() > end);
        if beyond_known_end || final_contradicts {
            return Err(DecodeError::FragmentInconsistent);
        }
        Ok(())
    }

    /// Copies the fragment's bytes in; returns true when some of them overlapped earlier ones.
    fn insert(&mut self, fragment: Fragment, data: &[u8]) -> bool {
        let start = fragment.offset as usize;
        let end = start + data.len();
        if self.payload.len() < end {
            self.payload.resize(end, 0);
        }
        self.payload[start..end].copy_from_slice(data);
        if !fragment.more {
            self.total_len = Some(end);
        }
        self.cover(start / BLOCK, end.div_ceil(BLOCK))
    }

    fn cover(&mut self, first_block: usize, end_block: usize) -> bool {
        let mut overlapped = false;
        for block in first_block..end_block {
            let (word, bit) = (block / 64, 1u64 << (block % 64));
            if self.covered[word] & bit != 0 {
                overlapped = true;
            } else {
                self.covered[word] |= bit;
                self.blocks_covered += 1;
            }
        }
        overlapped
    }

    fn is_complete(&self) -> bool {
        self.total_len.is_some_and(|total| self.blocks_covered == total.div_ceil(BLOCK))
    }

    fn push_frame(&mut self, ts_us: u64, frame: &[u8]) {
        if self.frame_count == self.frames.len() {
            self.frames.push(FragmentFrame::default());
        }
        let stored = &mut self.frames[self.frame_count];
        stored.ts_us = ts_us;
        stored.frame.clear();
        stored.frame.extend_from_slice(frame);
        self.frame_count += 1;
    }
}

/// Reassembles outer IPv4 fragments within [`ReassemblyLimits`].
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    slots: Vec<Datagram>,
    /// Slot completed by the last call; released at the start of the next one.
    completed: Option<usize>,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// Creates an empty reassembler; slot buffers are allocated on first use.
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        let slots = (0..limits.max_datagrams.max(1)).map(|_| Datagram::default()).collect();
        Reassembler { limits, slots, completed: None, stats: ReassemblyStats::default() }
    }

    /// Returns the counters and current occupancy.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Frees the slot of the datagram returned by the previous [`Reassembler::push`].
    pub fn release_completed(&mut self) {
        if let Some(index) = self.completed.take() {
            self.release(index);
        }
    }

    /// Adds one fragment (`data` is its IP payload, `frame` the whole captured frame).
    pub fn push(
        &mut self,
        key: FragmentKey,
        fragment: Fragment,
        data: &[u8],
        ts_us: u64,
        frame: &[u8],
    ) -> Result<Reassembly<'_>, DecodeError> {
        self.release_completed();
        self.expire(ts_us);
        let index = self.slot_for(key, ts_us);
        if let Err(error) = self.slots[index].check(fragment, data.len()) {
            self.reject(index, error);
            return Err(error);
        }
        if self.slots[index].frame_count == self.limits.max_fragments {
            self.reject(index, DecodeError::FragmentTooMany);
            return Err(DecodeError::FragmentTooMany);
        }
        self.make_room(index, data.len() + frame.len());
        if self.slots[index].key.is_none() {
            // The datagram alone is larger than the byte limit and was evicted.
            return Ok(Reassembly::Held);
        }
        Ok(self.store(index, fragment, data, ts_us, frame))
    }

    fn store(&mut self, index: usize, fragment: Fragment, data: &[u8], ts_us: u64, frame: &[u8]) -> Reassembly<'_> {
        let before = self.slots[index].payload.len();
        let datagram = &mut self.slots[index];
        if datagram.insert(fragment, data) {
            self.stats.fragments_overlapping += 1;
        }
        datagram.push_frame(ts_us, frame);
        let grown = datagram.payload.len().saturating_sub(before) + frame.len();
        datagram.bytes += grown;
        self.stats.bytes_in_flight += grown;
        self.stats.fragments_held += 1;
        if !datagram.is_complete() {
            return Reassembly::Held;
        }
        self.stats.datagrams_completed += 1;
        self.completed = Some(index);
        let datagram = &self.slots[index];
        Reassembly::Complete { payload: &datagram.payload, frames: &datagram.frames[..datagram.frame_count] }
    }

    /// Finds the slot of `key`, or starts one (evicting the oldest datagram when all are taken).
    fn slot_for(&mut self, key: FragmentKey, ts_us: u64) -> usize {
        if let Some(index) = self.slots.iter().position(|slot| slot.key == Some(key)) {
            return index;
        }
        let index = match self.slots.iter().position(|slot| slot.key.is_none()) {
            Some(free) => free,
            None => {
                let oldest = self.oldest(usize::MAX).unwrap_or(0);
                self.evict(oldest);
                oldest
            }
        };
        self.slots[index].start(key, ts_us);
        self.stats.datagrams_in_flight += 1;
        index
    }

    /// Evicts the oldest other datagrams until `extra` more bytes fit, then `index` itself.
    fn make_room(&mut self, index: usize, extra: usize) {
        while self.stats.bytes_in_flight + extra > self.limits.max_bytes {
            match self.oldest(index) {
                Some(other) => self.evict(other),
                None => {
                    self.evict(index);
                    return;
                }
            }
        }
    }

    /// Returns the in-use slot with the earliest first fragment, other than `except`.
    fn oldest(&self, except: usize) -> Option<usize> {
        let in_use = self.slots.iter().enumerate().filter(|(index, slot)| *index != except && slot.key.is_some());
        in_use.min_by_key(|(_, slot)| slot.first_ts_us).map(|(index, _)| index)
    }

    fn expire(&mut self, now_us: u64) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.key.is_some() && now_us.saturating_sub(slot.first_ts_us) > self.limits.timeout_us {
                self.release(index);
                self.stats.datagrams_expired += 1;
            }
        }
    }

    fn reject(&mut self, index: usize, error: DecodeError) {
        self.stats.fragments_rejected += 1;
        // A fragment that is wrong in itself leaves the datagram as it was; one that
        // contradicts the datagram (or overflows it) makes the datagram unusable.
        if matches!(error, DecodeError::FragmentInconsistent | DecodeError::FragmentTooMany) {
            self.release(index);
            self.stats.datagrams_dropped += 1;
        } else if self.slots[index].frame_count == 0 {
            self.release(index);
        }
    }

    fn evict(&mut self, index: usize) {
        self.release(index);
        self.stats.datagrams_evicted += 1;
    }

    fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.key.take().is_some() {
            self.stats.datagrams_in_flight -= 1;
            self.stats.bytes_in_flight -= slot.bytes;
            slot.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn key(id: u32) -> FragmentKey {
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        FragmentKey { src, dst, id, protocol: 17 }
    }

    fn fragment(offset: u32, more: bool) -> Fragment {
        Fragment { id: 1, offset, more }
    }

    fn payload(reassembly: Reassembly<'_>) -> Option<(Vec<u8>, usize)> {
        match reassembly {
            Reassembly::Held => None,
            Reassembly::Complete { payload, frames } => Some((payload.to_vec(), frames.len())),
        }
    }

    #[test]
    fn in_order_completes() {
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        let first = reassembler.push(key(1), fragment(0, true), &[1; 16], 10, b"frame one").unwrap();
        assert_eq!(first, Reassembly::Held);
        let last = reassembler.push(key(1), fragment(16, false), &[2; 3], 20, b"frame two").unwrap();
        let (bytes, frames) = payload(last).unwrap();
        assert_eq!(bytes, [[1u8; 16].as_slice(), &[2; 3]].concat());
        assert_eq!(frames, 2);
        reassembler.release_completed();
        let stats = reassembler.stats();
        assert_eq!(stats.datagrams_completed, 1);
        assert_eq!(stats.datagrams_in_flight, 0);
        assert_eq!(stats.bytes_in_flight, 0);
    }

    #[test]
    fn final_fragment_first_completes() {
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(reassembler.push(key(1), fragment(8, false), &[2; 5], 10, b"b").unwrap(), Reassembly::Held);
        let (bytes, frames) = payload(reassembler.push(key(1), fragment(0, true), &[1; 8], 11, b"a").unwrap()).unwrap();
        assert_eq!(bytes, [[1u8; 8].as_slice(), &[2; 5]].concat());
        assert_eq!(frames, 2);
    }

    #[test]
    fn frames_kept_in_arrival_order() {
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        reassembler.push(key(1), fragment(8, false), &[2; 5], 10, b"second part").unwrap();
        match reassembler.push(key(1), fragment(0, true), &[1; 8], 11, b"first part").unwrap() {
            Reassembly::Complete { frames, .. } => {
                assert_eq!(frames[0], FragmentFrame { ts_us: 10, frame: b"second part".to_vec() });
                assert_eq!(frames[1], FragmentFrame { ts_us: 11, frame: b"first part".to_vec() });
            }
            Reassembly::Held => panic!("datagram should be complete"),
        }
    }

    #[test]
    fn misaligned_and_oversized_rejected() {
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(reassembler.push(key(1), fragment(0, true), &[0; 7], 0, b""), Err(DecodeError::FragmentMisaligned));
        let at_limit = fragment(65_528, false);
        assert_eq!(reassembler.push(key(1), at_limit, &[0; 8], 0, b""), Err(DecodeError::FragmentTooLarge));
        assert_eq!(reassembler.stats().fragments_rejected, 2);
        assert_eq!(reassembler.stats().datagrams_in_flight, 0);
    }

    #[test]
    fn contradicting_final_fragment_drops_datagram() {
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        reassembler.push(key(1), fragment(0, true), &[0; 16], 0, b"").unwrap();
        assert_eq!(
            reassembler.push(key(1), fragment(0, false), &[0; 8], 1, b""),
            Err(DecodeError::FragmentInconsistent)
        );
        assert_eq!(reassembler.stats().datagrams_dropped, 1);
        assert_eq!(reassembler.stats().datagrams_in_flight, 0);
    }

    #[test]
    fn timeout_expires_on_packet_time() {
        let limits = ReassemblyLimits { timeout_us: 1_000, ..ReassemblyLimits::default() };
        let mut reassembler = Reassembler::new(limits);
        reassembler.push(key(1), fragment(0, true), &[0; 8], 0, b"").unwrap();
        reassembler.push(key(2), fragment(0, true), &[0; 8], 1_001, b"").unwrap();
        let held = reassembler.push(key(1), fragment(8, false), &[0; 8], 1_002, b"").unwrap();
        assert_eq!(held, Reassembly::Held, "the first fragment of datagram 1 expired");
        assert_eq!(reassembler.stats().datagrams_expired, 1);
    }

    #[test]
    fn full_table_evicts_oldest() {
        let limits = ReassemblyLimits { max_datagrams: 2, ..ReassemblyLimits::default() };
        let mut reassembler = Reassembler::new(limits);
        for (id, ts) in [(1, 0), (2, 1), (3, 2)] {
            reassembler.push(key(id), fragment(0, true), &[0; 8], ts, b"").unwrap();
        }
        assert_eq!(reassembler.stats().datagrams_evicted, 1);
        assert_eq!(reassembler.stats().datagrams_in_flight, 2);
        let completed = reassembler.push(key(2), fragment(8, false), &[0; 1], 3, b"").unwrap();
        assert!(payload(completed).is_some(), "datagram 2 survived the eviction of datagram 1");
    }

    #[test]
    fn byte_limit_evicts() {
        let limits = ReassemblyLimits { max_bytes: 100, ..ReassemblyLimits::default() };
        let mut reassembler = Reassembler::new(limits);
        reassembler.push(key(1), fragment(0, true), &[0; 64], 0, b"").unwrap();
        reassembler.push(key(2), fragment(0, true), &[0; 64], 1, b"").unwrap();
        assert_eq!(reassembler.stats().datagrams_evicted, 1);
        assert!(reassembler.stats().bytes_in_flight <= 100);
        reassembler.push(key(3), fragment(0, true), &[0; 128], 2, b"").unwrap();
        assert_eq!(reassembler.stats().datagrams_evicted, 3, "a datagram over the limit evicts itself too");
        assert_eq!(reassembler.stats().bytes_in_flight, 0);
    }

    #[test]
    fn too_many_fragments_drops() {
        let limits = ReassemblyLimits { max_fragments: 2, ..ReassemblyLimits::default() };
        let mut reassembler = Reassembler::new(limits);
        reassembler.push(key(1), fragment(0, true), &[0; 8], 0, b"").unwrap();
        reassembler.push(key(1), fragment(8, true), &[0; 8], 0, b"").unwrap();
        assert_eq!(reassembler.push(key(1), fragment(16, true), &[0; 8], 0, b""), Err(DecodeError::FragmentTooMany));
        assert_eq!(reassembler.stats().datagrams_dropped, 1);
    }

    #[test]
    fn overlap_counted_later_bytes_win() {
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        reassembler.push(key(1), fragment(0, true), &[1; 16], 0, b"").unwrap();
        reassembler.push(key(1), fragment(8, true), &[2; 8], 0, b"").unwrap();
        let (bytes, _) = payload(reassembler.push(key(1), fragment(16, false), &[3; 2], 0, b"").unwrap()).unwrap();
        assert_eq!(bytes, [[1u8; 8].as_slice(), &[2; 8], &[3; 2]].concat());
        assert_eq!(reassembler.stats().fragments_overlapping, 1);
    }
}
