//! The probe role: the `analyze` pipeline on the capture files of `[probe]` or live on its
//! interfaces, writing to the microcloud of `[microcloud]`. It ends with its input files,
//! or on a stop signal; a live capture runs until the stop signal.
//!
//! In a cluster the probe also starts the tracker agent, which stays after the input ends
//! to report counts and serve the tracker files until the node stops.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use imsitrace::flow::FlowTimeouts;
use imsitrace::microcloud::embedded::EmbeddedMicrocloud;
use imsitrace::microcloud::{RedisConfig, RedisMicrocloud};
use imsitrace::pipeline::lookup::LookupConfig;
use imsitrace::pipeline::records::Tracking;
use imsitrace::pipeline::shard_work::ShardSettings;
use imsitrace::pipeline::sink_buffer::OutageConfig;
use imsitrace::pipeline::{analyze_in_cluster, AnalyzeConfig, ClusterEvents, Summary};
use imsitrace::session::SessionConfig;
use imsitrace::tracker::agent::{start_agent, AgentConfig, AgentHandle, StaticTracker};
use imsitrace::wire::control::Digits;

use crate::config::{redact, NodeConfig};

/// Runs the pipeline to the end of the inputs, prints the summary on stdout and returns an
/// error naming every input or output that failed.
pub async fn run(config: &NodeConfig, stop: Arc<AtomicBool>) -> Result<(), String> {
    let analyze_config = analyze_config(config, stop)?;
    let inputs = analyze_config.inputs.len();
    let interfaces = analyze_config.live.as_ref().map_or_else(String::new, |live| live.interfaces.join(","));
    tracing::info!(inputs, interfaces = %interfaces, microcloud = %microcloud_name(config), "probe started");
    let agent = match super::cluster::full_name(config) {
        Some(node) => Some(start_agent(agent_config(config, node)).await?),
        None => None,
    };
    let cluster = cluster_events(config, agent.as_ref());
    let summary = match &config.microcloud.redis {
        Some(url) => {
            let microcloud = RedisMicrocloud::connect(url, redis_config(config)).await.map_err(|e| e.to_string())?;
            analyze_in_cluster(analyze_config, microcloud, cluster).await
        }
        None => analyze_in_cluster(analyze_config, EmbeddedMicrocloud::new(), cluster).await,
    };
    if let Some(agent) = &agent {
        agent.flush().await;
        log_tracker_counts(agent).await;
    }
    let summary: Summary = summary.map_err(|e| e.to_string())?;
    print!("{}", summary.to_text());
    tracing::info!(frames = summary.capture.frames, "probe reached the end of its input");
    let failures = summary.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\nimsitrace: "))
    }
}

/// Shares session events with the other probes when the node is in a cluster.
fn cluster_events(config: &NodeConfig, agent: Option<&AgentHandle>) -> Option<ClusterEvents> {
    let node = super::cluster::full_name(config)?;
    let trackers = agent.map(|agent| agent.link.clone());
    Some(ClusterEvents { node, wait_for_probes: config.probe.wait_for_probes, wait_timeout: PROBES_WAIT_TIMEOUT, trackers })
}

/// Settings of the tracker agent from `[node]` and `[probe]`.
fn agent_config(config: &NodeConfig, node: String) -> AgentConfig {
    let probe = &config.probe;
    AgentConfig {
        node,
        node_name: config.node.name.clone(),
        site: Some(config.node.site.clone()).filter(|site| !site.is_empty()),
        dir: probe.tracker_dir.clone(),
        flush_interval: probe.tracker_flush,
        static_trackers: probe.trackers.iter().map(|t| StaticTracker { id: t.id.clone(), imsi: t.imsi.clone() }).collect(),
    }
}

/// Logs the counts of every tracker once the input ended: the files are complete then.
async fn log_tracker_counts(agent: &AgentHandle) {
    for (id, counts) in agent.counts().await {
        tracing::info!(
            tracker = %id,
            packets = counts.packets,
            bytes = counts.bytes,
            skipped = counts.skipped,
            gaps = counts.gaps.len(),
            "tracker counts at the end of the input"
        );
    }
}

/// Maximum time a probe waits for `probe.wait_for_probes` other probes before it reads
/// its inputs anyway.
const PROBES_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

fn microcloud_name(config: &NodeConfig) -> String {
    config.microcloud.redis.as_deref().map_or_else(|| "embedded".to_owned(), redact)
}

/// Settings of the probe's connection: the sink buffers failed writes and retries them with
/// its own backoff, so a command fails at once while the server is down.
fn redis_config(config: &NodeConfig) -> RedisConfig {
    RedisConfig {
        prefix: config.microcloud.prefix.clone(),
        reconnect_retries: 0,
        ntop_compat: config.microcloud.ntop_compat,
        ..RedisConfig::default()
    }
}

/// Builds the settings of the pipeline from `[node]`, `[microcloud]` and `[probe]`.
fn analyze_config(config: &NodeConfig, stop: Arc<AtomicBool>) -> Result<AnalyzeConfig, String> {
    let probe = &config.probe;
    let shards = probe.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let timeouts = FlowTimeouts {
        idle_us: micros(probe.idle_timeout),
        active_us: Some(micros(probe.active_timeout)).filter(|&us| us > 0),
        close_linger_us: 1_000_000,
    };
    let shard = ShardSettings {
        timeouts,
        late_grace_us: micros(probe.late_grace),
        late_capacity: 65_536,
        end_marker_grace_us: 10_000_000,
    };
    let outage = OutageConfig {
        capacity: config.microcloud.buffer,
        finish_timeout: config.microcloud.retry_timeout,
        ..OutageConfig::default()
    };
    Ok(AnalyzeConfig {
        inputs: probe.inputs.clone(),
        live: probe.live.clone(),
        shards,
        batch_size: probe.batch_size,
        pool_size: 64 * shards + 64,
        session: SessionConfig { site: config.node.site.clone(), ..SessionConfig::default() },
        shard,
        tracking: tracking(probe.track_all, &probe.track)?,
        pcap_dir: probe.pcap_dir.clone(),
        report_dir: probe.report_dir.clone(),
        events: probe.events.clone(),
        max_open_files: probe.max_open_files,
        progress: false,
        outage,
        lookup: (probe.lookups && config.microcloud.redis.is_some()).then(LookupConfig::default),
        stop,
        replay_speed: probe.replay_speed,
    })
}

fn tracking(track_all: bool, track: &[String]) -> Result<Tracking, String> {
    if track_all {
        return Ok(Tracking::All);
    }
    if track.is_empty() {
        return Ok(Tracking::Nobody);
    }
    let mut set = rustc_hash::FxHashSet::default();
    for imsi in track {
        let digits = Digits::from_ascii(imsi.as_bytes())
            .ok_or_else(|| format!("invalid IMSI {imsi:?} in probe.track: give 5 to 15 decimal digits"))?;
        set.insert(digits);
    }
    Ok(Tracking::Listed(set))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
