//! The frame source of a live capture: every interface of the run, read by one thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{LiveError, LiveErrorKind};
use super::interface::InterfaceCapture;
use super::link::{down_error, LINK_CHECK_INTERVAL};
use super::options::LiveOptions;
use super::poll::Poller;
use super::restart::RestartSchedule;
use super::stats::{InterfaceStats, PcapCounters};
use crate::pipeline::capture::source::{FrameSource, SourceEvent};
use crate::pipeline::capture::CaptureStats;
use crate::pipeline::reader::ReadFrame;
use crate::wire::LinkType;

/// Maximum time between two checks of the stop flag while no frame arrives.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Frames read between two checks of the clock (deadline, statistics, restarts).
const FRAMES_PER_CLOCK_CHECK: u32 = 64;

/// One interface: its capture while open, its counters and its restart schedule.
struct Slot {
    name: String,
    capture: Option<InterfaceCapture>,
    counters: PcapCounters,
    stats: InterfaceStats,
    restart: RestartSchedule,
}

/// Reads frames from every interface of a live capture in arrival order per interface,
/// taking one frame from each ready interface in turn.
pub struct LiveSource {
    options: LiveOptions,
    slots: Vec<Slot>,
    poller: Poller,
    /// Index of the interface to read first in the next round.
    cursor: usize,
    /// The current frame, copied out of libpcap's buffer.
    buffer: Vec<u8>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    next_stats_log: Instant,
    next_link_check: Instant,
    frames_since_clock_check: u32,
    stopped_by_request: bool,
}

/// Metadata of the frame in [`LiveSource::buffer`].
struct Header {
    link: LinkType,
    ts_us: u64,
    orig_len: u32,
}

impl LiveSource {
    /// Opens every interface of `options`. An interface that is missing or down fails the
    /// open unless `options.wait_for_interfaces` is set. It is then logged and reopened with
    /// backoff, like one that fails later. A permission, filter or link-type error always
    /// fails the open, because reopening cannot fix it.
    pub fn open(options: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveSource, LiveError> {
        let mut slots = Vec::with_capacity(options.interfaces.len());
        for name in &options.interfaces {
            slots.push(open_slot(name, options)?);
        }
        let now = Instant::now();
        tracing::info!(
            interfaces = %options.interfaces.join(","),
            snaplen = options.snaplen,
            buffer_mib = options.buffer_mib,
            immediate = options.immediate,
            promiscuous = options.promiscuous,
            read_timeout_ms = options.read_timeout.as_millis() as u64,
            "capturing"
        );
        Ok(LiveSource {
            options: options.clone(),
            slots,
            poller: Poller::default(),
            cursor: 0,
            buffer: Vec::with_capacity(options.snaplen as usize),
            stop,
            deadline: options.duration.map(|duration| now + duration),
            next_stats_log: now + options.stats_interval,
            next_link_check: now + LINK_CHECK_INTERVAL,
            frames_since_clock_check: 0,
            stopped_by_request: false,
        })
    }

    /// Returns the counters of every interface, read from libpcap now.
    pub fn interface_stats(&mut self) -> Vec<InterfaceStats> {
        self.slots.iter_mut().map(|slot| refresh_stats(slot).clone()).collect()
    }

    /// Runs the timed work: ends the capture at its deadline, logs the statistics when due
    /// and reopens failed interfaces. Returns false when the capture must end.
    fn housekeeping(&mut self, now: Instant) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            self.stopped_by_request = true;
            return false;
        }
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return false;
        }
        if now >= self.next_link_check {
            self.next_link_check = now + LINK_CHECK_INTERVAL;
            self.check_links();
        }
        if now >= self.next_stats_log {
            self.next_stats_log = now + self.options.stats_interval;
            self.log_stats("interface statistics");
        }
        for index in 0..self.slots.len() {
            if self.slots[index].restart.is_due(now) {
                self.reopen(index, now);
            }
        }
        true
    }

    /// Takes one frame from the first ready interface, starting at the cursor.
    fn read_round(&mut self) -> Option<Header> {
        let count = self.slots.len();
        let mut failed = None;
        for step in 0..count {
            let index = (self.cursor + step) % count;
            let slot = &mut self.slots[index];
            let Some(open) = slot.capture.as_mut() else { continue };
            match open.capture.next_packet() {
                Ok(packet) => {
                    let header = Header { link: open.link, ts_us: timeval_us(packet.header), orig_len: packet.header.len };
                    self.buffer.clear();
                    self.buffer.extend_from_slice(packet.data);
                    slot.stats.frames += 1;
                    slot.restart.delivered();
                    self.cursor = (index + 1) % count;
                    return Some(header);
                }
                Err(pcap::Error::TimeoutExpired) => {}
                Err(error) => {
                    failed = Some((index, error));
                    break;
                }
            }
        }
        if let Some((index, error)) = failed {
            let error = LiveError::from_pcap(&self.slots[index].name, &error);
            self.fail(index, &error);
        }
        None
    }

    /// Closes a failed interface and schedules its reopening.
    fn fail(&mut self, index: usize, error: &LiveError) {
        let slot = &mut self.slots[index];
        refresh_stats(slot);
        slot.capture = None;
        slot.stats.errors += 1;
        slot.stats.up = false;
        let retry_in = slot.restart.failed(Instant::now());
        tracing::error!(interface = %slot.name, error = %error, retry_in_s = retry_in.as_secs_f64(), "interface capture failed; reopening it after the delay");
    }

    /// Closes every open interface that is administratively down, so it is reopened with
    /// backoff once it is up again.
    fn check_links(&mut self) {
        for index in 0..self.slots.len() {
            let Some(open) = self.slots[index].capture.as_ref() else { continue };
            if let Some(error) = down_error(&self.slots[index].name, open.fd) {
                self.fail(index, &error);
            }
        }
    }

    /// Tries to reopen a failed interface, or schedules the next attempt.
    fn reopen(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        match InterfaceCapture::open(&slot.name, &self.options) {
            Ok(capture) => {
                slot.capture = Some(capture);
                slot.counters = PcapCounters::default();
                slot.stats.restarts += 1;
                slot.stats.up = true;
                slot.restart.reopened();
                tracing::info!(interface = %slot.name, restarts = slot.stats.restarts, "interface capture restarted");
            }
            Err(error) => {
                slot.stats.errors += 1;
                let retry_in = slot.restart.failed(now);
                tracing::warn!(interface = %slot.name, error = %error, failures = slot.restart.failures, retry_in_s = retry_in.as_secs_f64(), "cannot reopen the interface; trying again after the delay");
            }
        }
    }

    /// Logs the counters of every interface: at warn when the kernel or the interface
    /// dropped frames since the last log, else at info.
    fn log_stats(&mut self, message: &'static str) {
        for slot in &mut self.slots {
            let (dropped_before, if_dropped_before) = (slot.stats.dropped, slot.stats.if_dropped);
            let stats = refresh_stats(slot);
            let new_drops = stats.dropped - dropped_before + stats.if_dropped - if_dropped_before;
            if new_drops > 0 {
                tracing::warn!(interface = %stats.interface, received = stats.received, dropped = stats.dropped, if_dropped = stats.if_dropped, frames = stats.frames, restarts = stats.restarts, up = stats.up, new_drops, "{message}; frames were dropped (a larger --buffer-mib or more shards may help)");
            } else {
                tracing::info!(interface = %stats.interface, received = stats.received, dropped = stats.dropped, if_dropped = stats.if_dropped, frames = stats.frames, restarts = stats.restarts, up = stats.up, "{message}");
            }
        }
    }

    /// Returns the time to wait for a frame: at most the read timeout and the stop poll,
    /// and no later than the next timed work.
    fn wait_timeout(&self, now: Instant) -> Duration {
        let mut until = now + self.options.read_timeout.min(STOP_POLL);
        until = until.min(self.next_stats_log);
        if let Some(deadline) = self.deadline {
            until = until.min(deadline);
        }
        for slot in &self.slots {
            if let Some(at) = slot.restart.next_attempt() {
                until = until.min(at);
            }
        }
        until.saturating_duration_since(now)
    }

    /// Waits until an interface is readable; returns false on timeout.
    fn wait(&mut self, now: Instant) -> bool {
        let timeout = self.wait_timeout(now);
        let fds = self.slots.iter().filter_map(|slot| slot.capture.as_ref().map(|open| open.fd));
        match self.poller.wait(fds, timeout) {
            Ok(ready) => ready,
            Err(error) => {
                // poll(2) fails on an invalid descriptor or lack of memory (poll(2), Linux man
                // pages). Sleeping for the timeout keeps the loop from spinning meanwhile.
                tracing::error!(error = %error, "poll on the capture descriptors failed");
                std::thread::sleep(timeout);
                false
            }
        }
    }
}

/// Opens one interface at the start of the capture, or schedules its reopening when it is
/// missing or down and `options.wait_for_interfaces` is set.
fn open_slot(name: &str, options: &LiveOptions) -> Result<Slot, LiveError> {
    let mut restart = RestartSchedule::new(options.restart_min, options.restart_max);
    let mut stats = InterfaceStats { interface: name.to_owned(), ..InterfaceStats::default() };
    let capture = match InterfaceCapture::open(name, options) {
        Ok(capture) => {
            tracing::info!(interface = %name, link = ?capture.link, filter = %capture.filter, "interface opened");
            stats.up = true;
            Some(capture)
        }
        Err(error) if options.wait_for_interfaces && matches!(error.kind, LiveErrorKind::NotFound | LiveErrorKind::Down) => {
            stats.errors += 1;
            let retry_in = restart.failed(Instant::now());
            tracing::error!(interface = %name, error = %error, retry_in_s = retry_in.as_secs_f64(), "cannot open the interface; trying again after the delay");
            None
        }
        Err(error) => return Err(error),
    };
    Ok(Slot { name: name.to_owned(), capture, counters: PcapCounters::default(), stats, restart })
}

/// Reads libpcap's counters of an open interface into its statistics.
fn refresh_stats(slot: &mut Slot) -> &InterfaceStats {
    if let Some(open) = slot.capture.as_mut() {
        match open.capture.stats() {
            Ok(reading) => slot.counters.update(&mut slot.stats, reading),
            Err(error) => tracing::debug!(interface = %slot.name, error = %error, "cannot read the interface statistics"),
        }
    }
    &slot.stats
}

/// Packet time in microseconds; times before the epoch become 0.
fn timeval_us(header: &pcap::PacketHeader) -> u64 {
    let secs = u64::try_from(header.ts.tv_sec).unwrap_or(0);
    let micros = u64::try_from(header.ts.tv_usec).unwrap_or(0);
    secs * 1_000_000 + micros
}

impl FrameSource for LiveSource {
    fn next_event(&mut self) -> SourceEvent<'_> {
        self.frames_since_clock_check += 1;
        if self.frames_since_clock_check >= FRAMES_PER_CLOCK_CHECK {
            self.frames_since_clock_check = 0;
            if !self.housekeeping(Instant::now()) {
                return SourceEvent::End;
            }
        }
        let header = match self.read_round() {
            Some(header) => header,
            None => {
                let now = Instant::now();
                self.frames_since_clock_check = 0;
                if !self.housekeeping(now) {
                    return SourceEvent::End;
                }
                if !self.wait(now) {
                    return SourceEvent::Idle;
                }
                match self.read_round() {
                    Some(header) => header,
                    None => return SourceEvent::Idle,
                }
            }
        };
        SourceEvent::Frame(ReadFrame { link: header.link, ts_us: header.ts_us, orig_len: header.orig_len, data: &self.buffer })
    }

    fn drops_user_frames_when_busy(&self) -> bool {
        true
    }

    fn refresh(&mut self, stats: &mut CaptureStats) {
        stats.interfaces.resize_with(self.slots.len(), InterfaceStats::default);
        for (slot, published) in self.slots.iter_mut().zip(&mut stats.interfaces) {
            published.clone_from(refresh_stats(slot));
        }
    }

    fn finish(&mut self, stats: &mut CaptureStats) {
        self.log_stats("interface statistics at the end of the capture");
        stats.interfaces = self.slots.iter().map(|slot| slot.stats.clone()).collect();
        stats.stopped_early = self.stopped_by_request;
    }
}
