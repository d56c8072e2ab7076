//! The capture loop: reads frames from files or live interfaces, decodes them once up to
//! the GTP header, counts what is not subscriber traffic, and routes the rest to the
//! control and shard actors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::batch::BatchPool;
use crate::pipeline::capture::flush::FlushTimer;
use crate::pipeline::capture::pace::{Pacer, SystemClock};
use crate::pipeline::capture::source::{FrameSource, SourceEvent};
use crate::pipeline::live::{InterfaceStats, LiveOptions, LiveSource};
use crate::pipeline::reader::{MergedReader, ReadFrame};
use crate::pipeline::run::AnalyzeError;
use crate::pipeline::route::{self, Router, Targets, UserFields, GTPU_END_MARKER, GTPU_G_PDU};
use crate::wire::{inner_packet, Decoded, Decoder, GtpFrame, GtpPdu, UserPdu};

mod counters;
pub mod flush;
pub mod pace;
pub mod source;

pub use counters::KindBytes;
use counters::{Counters, UserKind};

/// Settings of the capture loop.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Capture files, already expanded from directories; ignored when `live` is set.
    pub files: Vec<PathBuf>,
    /// Interfaces and settings of a live capture, which replaces the files.
    pub live: Option<LiveOptions>,
    /// Frames per batch.
    pub batch_size: usize,
    /// Every this many frames all open batches are sent, so every consumer's progress moves.
    pub flush_every: u64,
    /// Batches in flight between the capture and its consumers.
    pub pool_size: usize,
    /// Print a progress line on stderr once a second when stderr is a terminal.
    pub progress: bool,
    /// Set by a signal handler to end the input early; what was read is processed normally.
    pub stop: Arc<AtomicBool>,
    /// Replay speed as a factor of the capture's own pace (see [`pace`]), or 0 to read as
    /// fast as possible.
    pub replay_speed: f64,
    /// Destination of the counters, published at each flush point for `/metrics`.
    pub metrics: crate::metrics::CaptureMetrics,
}

/// Frame counters of the capture loop.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureStats {
    /// Frames read.
    pub frames: u64,
    /// Bytes on the wire of the frames read.
    pub bytes: u64,
    /// Bytes on the wire by kind of frame; the kinds add up to `bytes`.
    pub bytes_by_kind: KindBytes,
    /// GTPv1-C messages (frames).
    pub gtpv1c: u64,
    /// GTPv2-C messages (frames).
    pub gtpv2c: u64,
    /// GTP-U G-PDUs.
    pub gtpu_gpdu: u64,
    /// GTP-U Echo Requests and Responses.
    pub gtpu_echo: u64,
    /// GTP-U Error Indications.
    pub gtpu_error_indication: u64,
    /// GTP-U End Markers.
    pub gtpu_end_marker: u64,
    /// Other GTP-U messages (Supported Extension Headers Notification, unknown types).
    pub gtpu_other: u64,
    /// Frames that are valid but not GTP.
    pub not_gtp: u64,
    /// Outer IPv4 fragments held for reassembly.
    pub fragments_held: u64,
    /// Malformed frames by reason.
    pub malformed: std::collections::BTreeMap<&'static str, u64>,
    /// Packet time of the first frame, microseconds.
    pub first_ts_us: u64,
    /// Packet time of the last frame, microseconds.
    pub last_ts_us: u64,
    /// Times the capture waited for consumers to return a batch.
    pub pool_waits: u64,
    /// True when a stop request ended the input before the end of the files.
    pub stopped_early: bool,
    /// Outer IPv4 reassembly counters.
    pub reassembly: crate::wire::ReassemblyStats,
    /// Read errors that ended a file early (e.g. a file cut short in the middle of a frame);
    /// the frames read before each error are processed.
    pub read_errors: Vec<String>,
    /// Replay speed as a factor of the capture's own pace, 0 for a run read as fast as possible.
    pub replay_speed: f64,
    /// Wall-clock seconds from reading the first frame to the end of the input.
    pub read_wall_s: f64,
    /// Pauses of a paced replay, each after sending every open batch.
    pub replay_pauses: u64,
    /// Frames dropped by the capture by reason. `shard_backlog`: a live capture's G-PDU or
    /// other GTP-U frame that found no free batch because the shards are behind. GTP-C
    /// frames are never dropped: they wait for a batch.
    pub dropped: std::collections::BTreeMap<&'static str, u64>,
    /// Counters of each interface of a live capture, empty for files.
    pub interfaces: Vec<InterfaceStats>,
}

/// Reads every file to its end, or the interfaces of a live capture until its duration
/// passes or a stop is requested. Routes the frames and returns the counters.
/// Runs on a blocking thread: libpcap reads are synchronous.
pub fn run_capture(config: &CaptureConfig, targets: Targets, pool: BatchPool) -> Result<CaptureStats, AnalyzeError> {
    match &config.live {
        Some(options) => {
            let mut source = LiveSource::open(options, config.stop.clone())?;
            let flush = FlushTimer::new(options.read_timeout);
            Ok(capture_loop(config, &mut source, Some(flush), targets, pool))
        }
        None => {
            let mut reader = MergedReader::open(&config.files)?;
            Ok(capture_loop(config, &mut reader, None, targets, pool))
        }
    }
}

/// Decodes and routes every frame of `source`, for files and live interfaces alike. The
/// open batches are sent every `flush_every` frames, on every idle wakeup and when `flush`
/// is due.
fn capture_loop<S: FrameSource>(config: &CaptureConfig, source: &mut S, mut flush: Option<FlushTimer>, targets: Targets, pool: BatchPool) -> CaptureStats {
    let mut decoder = Decoder::new();
    let shard_count = targets.shards.len();
    let mut router = Router::new(targets, pool, config.batch_size);
    router.drop_user_when_busy = source.drops_user_frames_when_busy();
    let mut counters = Counters::default();
    let mut progress = Progress::new(config.progress);
    let mut pacer = Pacer::new(config.replay_speed, SystemClock::default());
    let mut first_read: Option<Instant> = None;
    let mut flushed_seq = 0;
    loop {
        let frame = match source.next_event() {
            SourceEvent::Frame(frame) => frame,
            SourceEvent::Idle => {
                if router.seq != flushed_seq {
                    flush_open(&mut router, &mut flush, &mut flushed_seq);
                }
                counters.publish(&config.metrics, &router, source);
                continue;
            }
            SourceEvent::End => break,
        };
        first_read.get_or_insert_with(Instant::now);
        let mut paused = false;
        if let Some(pacer) = &mut pacer {
            let pauses = pacer.pauses;
            if !wait_for_frame(pacer, &mut router, frame.ts_us, &config.stop) {
                counters.stats.stopped_early = true;
                break;
            }
            progress.tick(&counters.stats);
            paused = pacer.pauses != pauses;
        }
        router.seq += 1;
        count_frame(&mut counters.stats, &frame);
        let len = u64::from(frame.orig_len);
        match decoder.decode(frame.link, frame.ts_us, frame.data) {
            Ok(Decoded::Gtp(gtp)) => route_gtp(&mut router, &mut counters, &frame, &gtp, shard_count),
            Ok(Decoded::NotGtp) => counters.count_not_gtp(len),
            Ok(Decoded::FragmentHeld) => counters.count_fragment_held(len),
            Err(error) => counters.malformed(error, len),
        }
        let timer_due = flush.as_ref().is_some_and(FlushTimer::is_due);
        if timer_due {
            flush_open(&mut router, &mut flush, &mut flushed_seq);
        }
        if router.seq % config.flush_every == 0 {
            flush_open(&mut router, &mut flush, &mut flushed_seq);
            progress.tick(&counters.stats);
            counters.publish(&config.metrics, &router, source);
            if config.stop.load(Ordering::Relaxed) {
                counters.stats.stopped_early = true;
                break;
            }
        } else if paused || timer_due {
            // A pause or the flush timer sent every open batch, so it is a flush point too.
            counters.publish(&config.metrics, &router, source);
        }
    }
    router.flush_all();
    progress.done(&counters.stats);
    source.finish(&mut counters.stats);
    counters.stats.reassembly = decoder.reassembly_stats();
    counters.stats.replay_speed = config.replay_speed;
    counters.stats.replay_pauses = pacer.map_or(0, |pacer| pacer.pauses);
    counters.stats.read_wall_s = first_read.map_or(0.0, |instant| instant.elapsed().as_secs_f64());
    let stats = counters.finish(&router);
    config.metrics.publish_final(&stats);
    stats
}

/// Sends every open batch and records the flush.
fn flush_open(router: &mut Router, flush: &mut Option<FlushTimer>, flushed_seq: &mut u64) {
    router.flush_all();
    *flushed_seq = router.seq;
    if let Some(timer) = flush {
        timer.flushed();
    }
}

/// Waits until a frame of packet time `ts_us` is due in a paced replay. Before it sleeps,
/// it sends every open batch (a full flush), so the consumers do not wait on a partly
/// filled batch while the capture sleeps. Returns false when a stop request came first.
fn wait_for_frame(pacer: &mut Pacer<SystemClock>, router: &mut Router, ts_us: u64, stop: &AtomicBool) -> bool {
    let Some(until) = pacer.wait_until(ts_us) else { return true };
    router.flush_all();
    pacer.pause(until, stop)
}

fn count_frame(stats: &mut CaptureStats, frame: &ReadFrame<'_>) {
    stats.frames += 1;
    stats.bytes += u64::from(frame.orig_len);
    if stats.first_ts_us == 0 {
        stats.first_ts_us = frame.ts_us;
    }
    stats.last_ts_us = stats.last_ts_us.max(frame.ts_us);
}

fn route_gtp(router: &mut Router, counters: &mut Counters, frame: &ReadFrame<'_>, gtp: &GtpFrame<'_>, shards: usize) {
    let len = u64::from(frame.orig_len);
    match &gtp.pdu {
        GtpPdu::Control { version, bytes } => {
            counters.count_control(version, len);
            router.route_control(frame, gtp, bytes);
        }
        GtpPdu::User(user) => route_user(router, counters, frame, gtp, user, shards),
    }
}

fn route_user(router: &mut Router, counters: &mut Counters, frame: &ReadFrame<'_>, gtp: &GtpFrame<'_>, user: &UserPdu<'_>, shards: usize) {
    let len = u64::from(frame.orig_len);
    let inner = match user.message_type {
        GTPU_G_PDU => match inner_packet(user.payload) {
            Ok(inner) => {
                counters.count_user(UserKind::GPdu, len);
                Some(inner)
            }
            Err(error) => return counters.malformed(error, len),
        },
        GTPU_END_MARKER => {
            counters.count_user(UserKind::EndMarker, len);
            None
        }
        1 | 2 => return counters.count_user(UserKind::Echo, len),
        26 => return counters.count_user(UserKind::ErrorIndication, len),
        _ => return counters.count_user(UserKind::Other, len),
    };
    let message = gtp_message(gtp);
    let tpdu_offset = (message.len() - user.payload.len()) as u16;
    let shard = route::shard_of(gtp, user.teid, inner.as_ref(), shards);
    let fields = UserFields { payload: message, tpdu_offset, message_type: user.message_type, teid: user.teid, inner };
    router.route_user(shard, frame, gtp, fields);
}

/// Returns the whole GTP-U message: header and T-PDU.
fn gtp_message<'a>(gtp: &GtpFrame<'a>) -> &'a [u8] {
    match gtp.pdu {
        GtpPdu::User(ref user) => user.message,
        GtpPdu::Control { bytes, .. } => bytes,
    }
}

/// A once-a-second progress line on stderr, shown only on a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(requested: bool) -> Progress {
        let now = Instant::now();
        Progress { enabled: requested && std::io::stderr().is_terminal(), started: now, last: now }
    }

    fn tick(&mut self, stats: &CaptureStats) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        eprint!("\r{} frames, {:.0} frames/s, {} GTP-C, {} G-PDUs   ", stats.frames, stats.frames as f64 / seconds, stats.gtpv1c + stats.gtpv2c, stats.gtpu_gpdu);
    }

    fn done(&mut self, stats: &CaptureStats) {
        if self.enabled {
            eprintln!("\r{} frames read{:30}", stats.frames, "");
        }
    }
}

/// Messages of the capture actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum CaptureMsg {
    /// Reads every input to its end (or to a stop request) and returns the counters.
    Run(ractor::RpcReplyPort<Result<CaptureStats, AnalyzeError>>),
}

/// Start arguments of the capture actor.
pub struct CaptureArgs {
    /// Inputs and batching settings.
    pub config: CaptureConfig,
    /// Control and shard actors that receive the batches.
    pub targets: Targets,
    /// Pool of empty batches.
    pub pool: BatchPool,
}

/// The capture actor: owns the inputs (files or interfaces) and runs the capture loop on a
/// blocking thread, since libpcap reads are synchronous.
pub struct CaptureActor;

impl ractor::Actor for CaptureActor {
    type Msg = CaptureMsg;
    type State = Option<CaptureArgs>;
    type Arguments = CaptureArgs;

    async fn pre_start(&self, _myself: ractor::ActorRef<CaptureMsg>, args: CaptureArgs) -> Result<Self::State, ractor::ActorProcessingErr> {
        Ok(Some(args))
    }

    async fn handle(&self, _myself: ractor::ActorRef<CaptureMsg>, message: CaptureMsg, state: &mut Self::State) -> Result<(), ractor::ActorProcessingErr> {
        let CaptureMsg::Run(reply) = message;
        let Some(args) = state.take() else {
            let _ = reply.send(Err(AnalyzeError::Actor("the capture already ran".into())));
            return Ok(());
        };
        let result = tokio::task::spawn_blocking(move || run_capture(&args.config, args.targets, args.pool)).await;
        let result = result.unwrap_or_else(|e| Err(AnalyzeError::Actor(format!("the capture thread failed: {e}"))));
        let _ = reply.send(result);
        Ok(())
    }
}
