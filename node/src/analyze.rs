//! `imsitrace analyze`: the main job, on capture files or live on network interfaces.

use std::path::PathBuf;

use clap::Args;
use imsitrace::flow::FlowTimeouts;
use imsitrace::microcloud::embedded::EmbeddedMicrocloud;
use imsitrace::microcloud::{RedisConfig, RedisMicrocloud};
use imsitrace::pipeline::capture::pace::{is_valid_speed, REPLAY_SPEED_HINT};
use imsitrace::pipeline::live::options as live_defaults;
use imsitrace::pipeline::live::LiveOptions;
use imsitrace::pipeline::lookup::LookupConfig;
use imsitrace::pipeline::records::Tracking;
use imsitrace::pipeline::shard_work::ShardSettings;
use imsitrace::pipeline::sink_buffer::OutageConfig;
use imsitrace::pipeline::{analyze, AnalyzeConfig};
use imsitrace::session::SessionConfig;
use imsitrace::wire::control::Digits;

/// Options of `imsitrace analyze`.
#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng) or directories of them; several are merged by packet time.
    #[arg(required_unless_present = "interface", conflicts_with = "interface", value_name = "FILE_OR_DIR")]
    inputs: Vec<PathBuf>,
    /// Capture live on this network interface instead of reading files (repeatable; `any`
    /// captures on all). Needs CAP_NET_RAW or root.
    #[arg(long = "interface", short = 'i', value_name = "IFACE")]
    interface: Vec<String>,
    /// Bytes kept of each captured frame.
    #[arg(long, value_name = "BYTES", default_value_t = live_defaults::DEFAULT_SNAPLEN, requires = "interface")]
    snaplen: u32,
    /// Kernel capture buffer per interface, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = live_defaults::DEFAULT_BUFFER_MIB, requires = "interface")]
    buffer_mib: u32,
    /// Hand each frame on as soon as it arrives instead of in blocks (lower latency, more
    /// system calls).
    #[arg(long, requires = "interface")]
    immediate: bool,
    /// Maximum time a frame waits in the kernel buffer, in milliseconds; open batches are
    /// also sent after this much silence.
    #[arg(long, value_name = "MS", default_value_t = live_defaults::DEFAULT_READ_TIMEOUT.as_millis() as u64, requires = "interface")]
    read_timeout_ms: u64,
    /// BPF filter (pcap-filter(7) syntax). Default: GTP-C (UDP 2123), GTP-U (UDP 2152)
    /// and outer IPv4 fragments, untagged or behind one or two VLAN tags.
    #[arg(long, value_name = "EXPRESSION", requires = "interface")]
    filter: Option<String>,
    /// Do not put the interfaces in promiscuous mode.
    #[arg(long, requires = "interface")]
    no_promisc: bool,
    /// Stop the live capture after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "SECONDS", requires = "interface", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Seconds between two logs of the interface statistics (received, dropped).
    #[arg(long, value_name = "SECONDS", default_value_t = live_defaults::DEFAULT_STATS_INTERVAL.as_secs_f64(), requires = "interface", allow_negative_numbers = true)]
    stats_interval: f64,
    /// Directory for the per-subscriber pcap files `<IMSI>.pcap`.
    #[arg(long, value_name = "DIR")]
    pcap_dir: Option<PathBuf>,
    /// IMSI whose frames are written to the pcap directory (repeatable).
    #[arg(long = "track", value_name = "IMSI")]
    track: Vec<String>,
    /// Write a pcap for every subscriber.
    #[arg(long, conflicts_with = "track")]
    track_all: bool,
    /// Directory for the 5-minute reports `<epoch>.imsi`.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// File for the session-event log (JSON lines).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Number of shard actors (default: number of CPU cores).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// A flow ends after this many seconds without a packet.
    #[arg(long, value_name = "SECONDS", default_value_t = 90.0, allow_negative_numbers = true)]
    idle_timeout: f64,
    /// A flow is cut after this many seconds even while active; 0 disables the cut.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, allow_negative_numbers = true)]
    active_timeout: f64,
    /// Seconds of packet time a G-PDU of an unknown tunnel waits for its signalling; 0 disables.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, allow_negative_numbers = true)]
    late_grace: f64,
    /// Site name written into session events.
    #[arg(long, value_name = "NAME", default_value = "local")]
    site: String,
    /// Frames per batch handed from the capture to the other actors.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    batch_size: usize,
    /// Maximum pcap files open at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_open_files: usize,
    /// Replay the input paced by its packet times: 1 at the capture's own pace, 10 ten
    /// times faster, 0 as fast as possible. Several inputs are paced in their merged order.
    #[arg(long, value_name = "FACTOR", default_value_t = 0.0, allow_negative_numbers = true)]
    replay_speed: f64,
    /// Keep the microcloud on this Redis server (`redis://host:port/db`) instead of in
    /// process memory. The run stops at once when the server does not respond.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Prefix of every Redis key and channel name.
    #[arg(long, value_name = "PREFIX", default_value = "imsitrace:", requires = "redis")]
    redis_prefix: String,
    /// Seconds of wall-clock time during which a tunnel that the Redis tunnel index does
    /// not contain counts as unknown without another read; 0 reads it on every request.
    /// A shard requests such a tunnel again at most once per --late-grace of packet time.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, allow_negative_numbers = true, requires = "redis", conflicts_with = "no_redis_lookup")]
    redis_lookup_negative_ttl: f64,
    /// Do not ask the Redis tunnel index who owns a tunnel this node has no signalling
    /// for; its G-PDUs then wait only for local signalling.
    #[arg(long, requires = "redis")]
    no_redis_lookup: bool,
    /// Session events plus bucket deltas kept in memory while the Redis server is
    /// unavailable. When the buffer is full, the oldest are dropped and the run exits with
    /// status 1.
    #[arg(long, value_name = "ITEMS", default_value_t = OutageConfig::default().capacity, requires = "redis")]
    redis_buffer: usize,
    /// Seconds spent at the end of the run retrying writes that are still buffered. What
    /// is left after that is reported as lost.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, requires = "redis")]
    redis_retry_timeout: f64,
    /// Also write ntop's key layout (`imsi.<IMSI>`, channels `imsi.create` and
    /// `imsi.delete`, hashes `<epoch>.<IMSI>.<protocol>`) for PF_RING's pfwrite and
    /// imsiAggregator.py. These names take no prefix.
    #[arg(long, requires = "redis")]
    ntop_compat: bool,
    /// Serve the run's counters in the Prometheus text format on http://ADDR/metrics while
    /// it runs, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen)]
    metrics_listen: Option<std::net::SocketAddr>,
}

/// Runs `imsitrace analyze`.
pub fn run(args: AnalyzeArgs) -> Result<(), String> {
    let json = args.json;
    let tracked = args.track.clone();
    let pcap_dir = args.pcap_dir.clone();
    let redis = args.redis.clone().map(|url| (url, RedisConfig {
        prefix: args.redis_prefix.clone(),
        // The sink buffers failed writes and retries them with its own backoff, so a
        // command fails at once when the server is down instead of blocking the sink.
        reconnect_retries: 0,
        ntop_compat: args.ntop_compat,
        ..RedisConfig::default()
    }));
    let metrics = args.metrics_listen.map(|address| (address, args.site.clone()));
    let config = config_from(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let _metrics = match metrics {
        Some((address, site)) => Some(runtime.block_on(crate::metrics::start_for_analyze(address, &site))?),
        None => None,
    };
    let stop = config.stop.clone();
    runtime.spawn(async move {
        wait_for_stop_signal().await;
        eprintln!("imsitrace: interrupted, finishing the frames read so far and closing the outputs");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let summary = match redis {
        Some((url, redis_config)) => runtime.block_on(async {
            let microcloud = RedisMicrocloud::connect(&url, redis_config).await.map_err(|e| e.to_string())?;
            analyze(config, microcloud).await.map_err(|e| e.to_string())
        })?,
        None => runtime.block_on(analyze(config, EmbeddedMicrocloud::new())).map_err(|e| e.to_string())?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?);
    } else {
        print!("{}", summary.to_text());
    }
    warn_unseen_tracked(&tracked, pcap_dir.as_deref());
    let failures = summary.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\nimsitrace: "))
    }
}

/// Warns about tracked IMSIs that got no pcap file because they never appeared.
fn warn_unseen_tracked(tracked: &[String], pcap_dir: Option<&std::path::Path>) {
    let Some(dir) = pcap_dir else { return };
    for imsi in tracked {
        if !dir.join(format!("{imsi}.pcap")).exists() {
            eprintln!("imsitrace: tracked IMSI {imsi} does not appear in the input; no pcap was written for it");
        }
    }
}

fn config_from(args: AnalyzeArgs) -> Result<AnalyzeConfig, String> {
    let tracking = tracking_from(&args)?;
    if !tracking.is_nobody() && args.pcap_dir.is_none() {
        return Err("--track and --track-all need --pcap-dir DIR to say where the pcap files go".into());
    }
    let shards = args.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Err(format!("invalid value {shards} for --shards: give 1 to {MAX_SHARDS} (each shard holds its own nDPI module and tunnel table)"));
    }
    if !(1..=65_536).contains(&args.batch_size) {
        return Err(format!("invalid value {} for --batch-size: give 1 to 65536 frames", args.batch_size));
    }
    let timeouts = FlowTimeouts {
        idle_us: seconds_to_us("--idle-timeout", args.idle_timeout)?,
        active_us: Some(seconds_to_us("--active-timeout", args.active_timeout)?).filter(|&us| us > 0),
        close_linger_us: 1_000_000,
    };
    let outage = OutageConfig {
        capacity: args.redis_buffer,
        finish_timeout: std::time::Duration::from_micros(seconds_to_us("--redis-retry-timeout", args.redis_retry_timeout)?),
        ..OutageConfig::default()
    };
    let lookup = lookup_from(&args)?;
    if !is_valid_speed(args.replay_speed) {
        return Err(format!("invalid value {} for --replay-speed: {REPLAY_SPEED_HINT}", args.replay_speed));
    }
    let live = live_from(&args)?;
    if live.is_some() && args.replay_speed != 0.0 {
        return Err("--replay-speed applies to capture files, not to --interface".into());
    }
    let shard = ShardSettings {
        timeouts,
        late_grace_us: seconds_to_us("--late-grace", args.late_grace)?,
        late_capacity: 65_536,
        end_marker_grace_us: 10_000_000,
    };
    Ok(AnalyzeConfig {
        inputs: args.inputs,
        live,
        shards,
        batch_size: args.batch_size,
        pool_size: 64 * shards + 64,
        session: SessionConfig { site: args.site, ..SessionConfig::default() },
        shard,
        tracking,
        pcap_dir: args.pcap_dir,
        report_dir: args.report_dir,
        events: args.events,
        max_open_files: args.max_open_files.max(1),
        outage,
        lookup,
        progress: true,
        stop: Default::default(),
        replay_speed: args.replay_speed,
    })
}

/// Returns the live capture settings when `--interface` is given, checked.
fn live_from(args: &AnalyzeArgs) -> Result<Option<LiveOptions>, String> {
    if args.interface.is_empty() {
        return Ok(None);
    }
    let duration = match args.duration {
        Some(seconds) if seconds <= 0.0 => return Err(format!("invalid value {seconds} for --duration: give a number of seconds above 0")),
        Some(seconds) => Some(std::time::Duration::from_micros(seconds_to_us("--duration", seconds)?)),
        None => None,
    };
    let options = LiveOptions {
        interfaces: args.interface.clone(),
        snaplen: args.snaplen,
        buffer_mib: args.buffer_mib,
        immediate: args.immediate,
        read_timeout: std::time::Duration::from_millis(args.read_timeout_ms),
        promiscuous: !args.no_promisc,
        filter: args.filter.clone(),
        stats_interval: std::time::Duration::from_micros(seconds_to_us("--stats-interval", args.stats_interval)?),
        duration,
        ..LiveOptions::default()
    };
    let problems: Vec<String> = options.problems().into_iter().map(|(setting, message)| format!("{} {message}", option_name(setting))).collect();
    if problems.is_empty() {
        Ok(Some(options))
    } else {
        Err(problems.join("\nimsitrace: "))
    }
}

/// Returns the command-line option of a live capture setting, for messages.
fn option_name(setting: &str) -> &'static str {
    match setting {
        "interfaces" => "--interface:",
        "snaplen" => "--snaplen:",
        "buffer_mib" => "--buffer-mib:",
        "read_timeout" => "--read-timeout-ms:",
        "stats_interval" => "--stats-interval:",
        "filter" => "--filter:",
        _ => "live capture:",
    }
}

/// Returns the lookup settings: lookups are on with `--redis` unless `--no-redis-lookup`.
/// The embedded microcloud contains only this process's own events, so it has nothing to
/// look up.
fn lookup_from(args: &AnalyzeArgs) -> Result<Option<LookupConfig>, String> {
    if args.redis.is_none() || args.no_redis_lookup {
        return Ok(None);
    }
    let negative_ttl_us = seconds_to_us("--redis-lookup-negative-ttl", args.redis_lookup_negative_ttl)?;
    Ok(Some(LookupConfig { negative_ttl: std::time::Duration::from_micros(negative_ttl_us), ..LookupConfig::default() }))
}

fn tracking_from(args: &AnalyzeArgs) -> Result<Tracking, String> {
    if args.track_all {
        return Ok(Tracking::All);
    }
    if args.track.is_empty() {
        return Ok(Tracking::Nobody);
    }
    let mut set = rustc_hash::FxHashSet::default();
    for imsi in &args.track {
        let digits = Digits::from_ascii(imsi.as_bytes()).filter(|d| (5..=15).contains(&d.len()));
        let digits = digits.ok_or_else(|| format!("invalid IMSI {imsi:?} for --track: give 5 to 15 decimal digits"))?;
        set.insert(digits);
    }
    Ok(Tracking::Listed(set))
}

/// Upper bound of `--shards`.
const MAX_SHARDS: usize = 256;
/// Upper bound of every duration option: one year, in seconds.
const MAX_SECONDS: f64 = 365.0 * 86_400.0;

fn seconds_to_us(option: &str, seconds: f64) -> Result<u64, String> {
    if !seconds.is_finite() || !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(format!("invalid value {seconds} for {option}: give a number of seconds from 0 to {MAX_SECONDS}"));
    }
    Ok((seconds * 1e6).round() as u64)
}

/// Waits for SIGINT or SIGTERM.
pub(crate) async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
