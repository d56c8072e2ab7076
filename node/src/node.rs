//! `imsitrace node --config FILE`: runs the roles of one node. The probe role reads its
//! capture files into the microcloud and ends with its input. The collector role runs the
//! aggregator actor, which writes the periodic reports, until SIGINT or SIGTERM.
//!
//! A node with both roles starts the aggregator when the probe's input ends and keeps it
//! running until a signal. The buckets of a capture file carry its packet times, which are
//! usually long past on the wall clock, so an aggregator running alongside the probe would
//! report them before the file's flows have all been added.
//!
//! A node with a `[cluster]` section joins the cluster before its roles start, stays in it
//! until SIGINT or SIGTERM even when its roles have ended, and leaves it last. A collector
//! also runs the tracker registry from its start to the stop signal.

mod cluster;
mod collector;
mod probe;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use imsitrace::aggregator::AggregatorArgs;
use tokio::sync::watch;

use crate::config::{self, NodeConfig};

/// Options of `imsitrace node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Node configuration file (TOML, see docs/node.md). Every key can also be set by an
    /// environment variable IMSITRACE_<SECTION>__<KEY>, e.g. IMSITRACE_MICROCLOUD__REDIS.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Runs `imsitrace node`.
pub fn run(args: NodeArgs) -> Result<(), String> {
    let config = config::load(&args.config).map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(run_roles(config))
}

/// Joins the cluster, prepares the collector, runs the probe to the end of its input, then
/// runs the collector until a stop signal. Returns the first error; a probe error does not
/// stop the collector.
async fn run_roles(config: NodeConfig) -> Result<(), String> {
    let stop = StopSignal::listen();
    let node = &config.node;
    tracing::info!(name = %node.name, roles = %node.roles.names(), site = %node.site, region = node.region.as_deref().unwrap_or("-"), "node started");
    let full_name = cluster::full_name(&config).unwrap_or_else(|| node.name.clone());
    let mut observability = crate::metrics::start_for_node(&config, full_name).await?;
    let cluster = cluster::start(&config).await?;
    if let Some(cluster) = &cluster {
        observability.start_status(cluster).await?;
    }
    let collector = if node.roles.collector { Some(collector::prepare(&config).await?) } else { None };
    let registry_name = cluster::full_name(&config).unwrap_or_else(|| node.name.clone());
    let registry = if node.roles.collector { Some(collector::start_registry(&config, registry_name).await?) } else { None };
    let probe_result = if node.roles.probe { probe::run(&config, stop.flag.clone()).await } else { Ok(()) };
    if let Err(error) = &probe_result {
        tracing::error!(%error, "the probe stopped with an error");
    }
    let collector_result = match (collector, &cluster) {
        (Some(args), _) => run_collector(args, stop.receiver).await,
        (None, Some(cluster)) => {
            cluster::stay_until_stopped(cluster, stop.receiver).await;
            Ok(())
        }
        (None, None) => Ok(()),
    };
    if let Some(registry) = registry {
        registry.stop().await;
    }
    drop(observability);
    if let Some(cluster) = cluster {
        cluster.stop().await;
    }
    tracing::info!(name = %node.name, "node stopped");
    probe_result.and(collector_result)
}

/// Starts the aggregator and runs it until a stop signal.
async fn run_collector(args: AggregatorArgs, stop: watch::Receiver<bool>) -> Result<(), String> {
    let aggregator = collector::start(args).await?;
    collector::run_until(aggregator, stop).await
}

/// SIGINT or SIGTERM, seen both as a flag (polled by the capture loop) and as a channel
/// (awaited by the collector).
struct StopSignal {
    flag: Arc<AtomicBool>,
    receiver: watch::Receiver<bool>,
}

impl StopSignal {
    /// Spawns the task that waits for the signal.
    fn listen() -> StopSignal {
        let flag = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = watch::channel(false);
        let task_flag = flag.clone();
        tokio::spawn(async move {
            crate::analyze::wait_for_stop_signal().await;
            tracing::info!("stop signal received, stopping the node");
            task_flag.store(true, Ordering::Relaxed);
            let _ = sender.send(true);
        });
        StopSignal { flag, receiver }
    }
}
