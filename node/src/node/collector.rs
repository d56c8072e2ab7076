//! The collector role: the aggregator actor on the Redis microcloud of `[microcloud]`, with
//! the schedule and retention of `[report]`.

use imsitrace::aggregator::AggregatorHandle;
use imsitrace::aggregator::{AggregatorArgs, AggregatorConfig, ReportJob, ReportSettings};
use std::time::Duration;

use imsitrace::microcloud::{RedisConfig, RedisMicrocloud};
use imsitrace::tracker::registry::{RegistryArgs, RegistryHandle, RegistrySettings};
use imsitrace::tracker::registry_store::TrackerStore;
use tokio::sync::watch;

use crate::config::NodeConfig;

/// Connects to the Redis server and creates the report directory, so that a node fails at
/// start on a wrong URL or directory. [`start`] then starts the aggregator.
pub async fn prepare(config: &NodeConfig) -> Result<AggregatorArgs, String> {
    let (Some(url), Some(outdir)) = (&config.microcloud.redis, &config.report.outdir) else {
        return Err("the collector role needs microcloud.redis and report.outdir".to_owned());
    };
    let redis_config = RedisConfig {
        prefix: config.microcloud.prefix.clone(),
        // A failed tick is retried at the next tick, so a command fails at once while the
        // server is down instead of waiting for reconnect attempts.
        reconnect_retries: 0,
        ..RedisConfig::default()
    };
    let cloud = RedisMicrocloud::connect(url, redis_config).await.map_err(|e| e.to_string())?;
    let report = &config.report;
    let settings = ReportSettings {
        outdir: outdir.clone(),
        owner: config.node.name.clone(),
        claim_ttl: report.claim_ttl,
        retention: Some(report.retention),
    };
    let job = ReportJob::new(cloud, settings).map_err(|e| e.to_string())?;
    let schedule = AggregatorConfig { interval: report.interval, offset: report.offset, lag: report.lag };
    Ok(AggregatorArgs { job, config: schedule })
}

/// Starts the aggregator, which runs its first tick at once.
pub async fn start(args: AggregatorArgs) -> Result<AggregatorHandle, String> {
    AggregatorHandle::spawn(args).await.map_err(|e| format!("cannot start the aggregator actor: {e}"))
}

/// Waits for the stop signal, then stops the aggregator after its current tick. Fails when
/// the aggregator ended by itself before the signal.
pub async fn run_until(mut aggregator: AggregatorHandle, mut stop: watch::Receiver<bool>) -> Result<(), String> {
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => {}
        () = aggregator.ended() => {
            return Err("the aggregator actor stopped unexpectedly; see the log above".to_owned());
        }
    }
    aggregator.stop().await
}

/// Name of the audit log next to `report.outdir` when `tracker.audit_log` is not set. It is
/// kept out of the report directory, whose files are the reports only.
pub const DEFAULT_AUDIT_LOG: &str = "tracker-audit.jsonl";

/// Time between two broadcasts of the tracker set to the probes.
const TRACKER_BROADCAST_INTERVAL: Duration = Duration::from_secs(2);

/// Starts the tracker registry on the microcloud of `[microcloud]`, with the audit log of
/// `[tracker]`. `node` is the name sent to the probes: the full cluster name when the node
/// has a `[cluster]` section.
pub async fn start_registry(config: &NodeConfig, node: String) -> Result<RegistryHandle, String> {
    let (Some(url), Some(outdir)) = (&config.microcloud.redis, &config.report.outdir) else {
        return Err("the collector role needs microcloud.redis and report.outdir".to_owned());
    };
    let store = TrackerStore::connect(url, &config.microcloud.prefix, Duration::from_secs(5)).await?;
    let audit_log = config.tracker.audit_log.clone().unwrap_or_else(|| default_audit_log(outdir));
    let settings = RegistrySettings { node, audit_log, retention: config.tracker.retention, broadcast_interval: TRACKER_BROADCAST_INTERVAL };
    RegistryHandle::spawn(RegistryArgs { store, settings }).await
}

/// Returns `tracker-audit.jsonl` in the parent directory of `outdir`, or in the working
/// directory when `outdir` has no parent.
fn default_audit_log(outdir: &std::path::Path) -> std::path::PathBuf {
    let parent = outdir.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    parent.join(DEFAULT_AUDIT_LOG)
}
