//! Frame sources of the capture loop: capture files or live interfaces.

use crate::pipeline::capture::CaptureStats;
use crate::pipeline::reader::{MergedReader, ReadFrame};

/// Result of one read from a frame source.
pub enum SourceEvent<'a> {
    /// The next frame.
    Frame(ReadFrame<'a>),
    /// No frame arrived within the read timeout; the loop sends its open batches, so
    /// latency stays bounded on a quiet link.
    Idle,
    /// The input ended: the files were read, the capture's duration passed or a stop was
    /// requested.
    End,
}

/// A source of frames for the capture loop.
pub trait FrameSource {
    /// Returns the next frame, an idle wakeup or the end of the input.
    fn next_event(&mut self) -> SourceEvent<'_>;

    /// Returns true when user-plane frames that find no free batch are dropped instead of
    /// waiting, so a live capture does not stall the kernel buffer. Files keep backpressure.
    fn drops_user_frames_when_busy(&self) -> bool;

    /// Brings the source's own counters in `stats` up to date during the run, at a flush
    /// point. Sources without counters of their own keep this default.
    fn refresh(&mut self, _stats: &mut CaptureStats) {}

    /// Stores the source's own counters and errors in `stats` at the end of the input.
    fn finish(&mut self, stats: &mut CaptureStats);
}

impl FrameSource for MergedReader {
    fn next_event(&mut self) -> SourceEvent<'_> {
        match self.next_frame() {
            Some(frame) => SourceEvent::Frame(frame),
            None => SourceEvent::End,
        }
    }

    fn drops_user_frames_when_busy(&self) -> bool {
        false
    }

    fn finish(&mut self, stats: &mut CaptureStats) {
        stats.read_errors = self.errors.iter().map(|e| e.to_string()).collect();
    }
}
