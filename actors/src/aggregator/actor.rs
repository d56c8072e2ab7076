//! The aggregator actor of a collector node: runs [`Aggregation::tick`] at start and then
//! on every tick of its schedule, until it is stopped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};

use crate::aggregator::job::ReportJob;
use crate::aggregator::schedule::delay_to_next_tick;
use crate::aggregator::tick::{AggregatorConfig, AggregatorStats, Aggregation};

/// Messages of the aggregator actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum AggregatorMsg {
    /// Reports the final buckets not reported yet, then schedules the next tick.
    Tick,
    /// Returns the counters.
    Stats(RpcReplyPort<AggregatorStats>),
}

/// Start arguments of the aggregator actor.
#[derive(Debug)]
pub struct AggregatorArgs {
    /// The job that claims and writes each report.
    pub job: ReportJob,
    /// The schedule.
    pub config: AggregatorConfig,
}

/// State of the aggregator actor.
pub struct AggregatorState {
    aggregation: Aggregation,
    /// The pending send of the next [`AggregatorMsg::Tick`].
    timer: Option<JoinHandle<Result<(), MessagingErr<AggregatorMsg>>>>,
}

/// The aggregator actor.
pub struct AggregatorActor;

impl Actor for AggregatorActor {
    type Msg = AggregatorMsg;
    type State = AggregatorState;
    type Arguments = AggregatorArgs;

    async fn pre_start(&self, _myself: ActorRef<AggregatorMsg>, args: AggregatorArgs) -> Result<AggregatorState, ActorProcessingErr> {
        let settings = args.job.settings();
        tracing::info!(
            outdir = %settings.outdir.display(),
            owner = %settings.owner,
            interval_s = args.config.interval.as_secs_f64(),
            offset_s = args.config.offset.as_secs_f64(),
            lag = args.config.lag,
            "aggregator started"
        );
        Ok(AggregatorState { aggregation: Aggregation::new(args.job, args.config), timer: None })
    }

    /// Runs the first tick at once, to catch up with buckets left by a stopped collector.
    async fn post_start(&self, myself: ActorRef<AggregatorMsg>, _state: &mut AggregatorState) -> Result<(), ActorProcessingErr> {
        myself.send_message(AggregatorMsg::Tick)?;
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<AggregatorMsg>, message: AggregatorMsg, state: &mut AggregatorState) -> Result<(), ActorProcessingErr> {
        match message {
            AggregatorMsg::Tick => {
                state.aggregation.tick(unix_now().as_secs()).await;
                let config = state.aggregation.config();
                let delay = delay_to_next_tick(unix_now(), config.interval, config.offset);
                state.timer = Some(myself.send_after(delay, || AggregatorMsg::Tick));
            }
            AggregatorMsg::Stats(reply) => {
                let _ = reply.send(state.aggregation.stats());
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<AggregatorMsg>, state: &mut AggregatorState) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        let stats = state.aggregation.stats();
        tracing::info!(ticks = stats.ticks, reports_written = stats.reports_written, failed_ticks = stats.failed_ticks, "aggregator stopped");
        Ok(())
    }
}

/// A running aggregator actor.
pub struct AggregatorHandle {
    actor: ActorRef<AggregatorMsg>,
    /// The actor's task, `None` once it has ended.
    join: Option<JoinHandle<()>>,
}

impl AggregatorHandle {
    /// Spawns the aggregator actor, which runs its first tick at once.
    pub async fn spawn(args: AggregatorArgs) -> Result<AggregatorHandle, ractor::SpawnErr> {
        let (actor, join) = Actor::spawn(None, AggregatorActor, args).await?;
        Ok(AggregatorHandle { actor, join: Some(join) })
    }

    /// Waits until the actor has ended, which happens only after [`AggregatorHandle::stop`]
    /// or a failure of the actor.
    pub async fn ended(&mut self) {
        if let Some(join) = self.join.as_mut() {
            let _ = join.await;
            self.join = None;
        }
    }

    /// Stops the actor once its current tick is done, and waits until it has ended.
    pub async fn stop(self) -> Result<(), String> {
        self.actor.stop_and_wait(None, None).await.map_err(|e| format!("cannot stop the aggregator actor: {e}"))
    }
}

/// Returns the wall time since the Unix epoch; zero for a clock set before 1970.
fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}
