//! Time-based flushes of a live capture: on a busy link the open batches are still sent
//! at least once per read timeout, so events of a quiet subscriber are not held back.

use std::time::{Duration, Instant};

/// Frames routed between two readings of the clock.
const FRAMES_PER_CHECK: u64 = 64;

/// Tells the capture loop when open batches are due, by wall-clock time.
pub struct FlushTimer {
    interval: Duration,
    last: Instant,
}

impl FlushTimer {
    /// Creates a timer that is due every `interval`.
    pub fn new(interval: Duration) -> FlushTimer {
        FlushTimer { interval, last: Instant::now() }
    }

    /// Returns true when a flush is due after frame `seq`. Reads the clock every
    /// 64 frames only.
    pub fn is_due(&self, seq: u64) -> bool {
        seq % FRAMES_PER_CHECK == 0 && self.last.elapsed() >= self.interval
    }

    /// Records a flush.
    pub fn flushed(&mut self) {
        self.last = Instant::now();
    }
}
