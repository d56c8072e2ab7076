//! Time-based flushes of a live capture: on a busy link the open batches are still sent
//! at least once per read timeout, so events of a quiet subscriber are not held back.

use std::time::{Duration, Instant};

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

    /// Returns true when a flush is due. Reads the clock on every call, once per frame of
    /// a live capture: at a few frames per second, a check every N frames would hold
    /// batches for N frames' time. The monotonic clock is read through the vDSO on Linux,
    /// without a system call.
    pub fn is_due(&self) -> bool {
        self.last.elapsed() >= self.interval
    }

    /// Records a flush.
    pub fn flushed(&mut self) {
        self.last = Instant::now();
    }
}
