//! One run of the aggregator: reports every final bucket that is stored and not reported
//! yet, oldest first.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::aggregator::job::{ReportError, ReportJob, ReportOutcome};
use crate::aggregator::schedule::{bucket_before, due_epochs};

/// Schedule of the aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Time between two runs. An interval that divides 300 s or is a multiple of it puts
    /// the runs right after bucket boundaries.
    pub interval: Duration,
    /// Delay of each run after a multiple of `interval` since the Unix epoch.
    pub offset: Duration,
    /// Buckets between the current one and the newest reported: 2 reports the bucket that
    /// ended at least 300 s ago, after its flows' idle timeouts have added their deltas.
    pub lag: u64,
}

impl Default for AggregatorConfig {
    /// Runs every 300 s, 5 s after each bucket boundary, reporting 2 buckets back.
    fn default() -> Self {
        AggregatorConfig { interval: Duration::from_secs(300), offset: Duration::from_secs(5), lag: 2 }
    }
}

/// Counters of an aggregator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregatorStats {
    /// Runs started.
    pub ticks: u64,
    /// Reports written.
    pub reports_written: u64,
    /// Buckets skipped because another owner holds their claim, counted at every run.
    pub claimed_elsewhere: u64,
    /// Runs that stopped or skipped a bucket because of an error.
    pub failed_ticks: u64,
}

/// Result of a run for one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketResult {
    /// This run wrote the report.
    Written {
        /// The report file.
        path: PathBuf,
        /// Rows written.
        lines: usize,
    },
    /// This owner's claim and report file exist from an earlier run; only the retention
    /// was applied again.
    AlreadyWritten,
    /// Another owner holds the claim.
    ClaimedElsewhere {
        /// That owner, `None` when its claim expired in between.
        owner: Option<String>,
    },
    /// The bucket has no rows.
    Empty,
}

/// The aggregator's state between runs: the report job and the buckets already settled.
#[derive(Debug)]
pub struct Aggregation {
    job: ReportJob,
    config: AggregatorConfig,
    /// Stored buckets this aggregator wrote (or found written by its owner), so later runs
    /// skip them while the epoch index still lists them.
    settled: BTreeSet<u64>,
    /// Runs in a row that met an error; failures are logged when this is 1, 10, 100, ...
    failing_ticks: u64,
    stats: AggregatorStats,
}

impl Aggregation {
    /// Creates the state of an aggregator that has reported nothing yet.
    pub fn new(job: ReportJob, config: AggregatorConfig) -> Aggregation {
        Aggregation { job, config, settled: BTreeSet::new(), failing_ticks: 0, stats: AggregatorStats::default() }
    }

    /// Returns the schedule.
    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// Returns the report job.
    pub fn job(&self) -> &ReportJob {
        &self.job
    }

    /// Returns the counters.
    pub fn stats(&self) -> AggregatorStats {
        self.stats
    }

    /// Reports, oldest first, every stored bucket that starts at or before the bucket
    /// `lag` buckets before the one containing `now_s` (seconds since the Unix epoch) and
    /// that no run has settled. Returns the epochs whose report this run wrote.
    ///
    /// Errors are logged, not returned. An unavailable server ends the run; any other error
    /// skips its bucket. Either way the next run tries the bucket again.
    pub async fn tick(&mut self, now_s: u64) -> Vec<u64> {
        self.stats.ticks += 1;
        let Some(target) = bucket_before(now_s, self.config.lag) else {
            tracing::error!(now_s, lag = self.config.lag, "no bucket is final yet: the lag reaches before 1970");
            return Vec::new();
        };
        let stored = match self.job.stored_epochs().await {
            Ok(stored) => stored,
            Err(error) => {
                self.record_failures(&[(None, error)]);
                return Vec::new();
            }
        };
        self.settled.retain(|epoch| stored.contains(epoch));
        let mut written = Vec::new();
        let mut failures = Vec::new();
        for epoch in due_epochs(&stored, target, &self.settled) {
            match self.report_once(epoch).await {
                Ok(result) => self.record(epoch, result, &mut written),
                Err(error) => {
                    let unavailable = error.is_unavailable();
                    failures.push((Some(epoch), error));
                    if unavailable {
                        break;
                    }
                }
            }
        }
        self.record_failures(&failures);
        written
    }

    /// Reports the bucket starting at `epoch` unless another owner claimed it or this
    /// owner's report of it exists already.
    ///
    /// The claim is read before it is taken because a claim by the same owner succeeds
    /// again, which would rewrite a report after every restart while the bucket is kept.
    pub async fn report_once(&mut self, epoch: u64) -> Result<BucketResult, ReportError> {
        match self.job.claim_owner(epoch).await? {
            Some(owner) if owner != self.job.settings().owner => {
                return Ok(BucketResult::ClaimedElsewhere { owner: Some(owner) });
            }
            Some(_) if self.job.report_path(epoch).exists() => {
                self.job.apply_retention(epoch).await?;
                return Ok(BucketResult::AlreadyWritten);
            }
            _ => {}
        }
        Ok(match self.job.report(epoch).await? {
            ReportOutcome::Written { path, lines } => BucketResult::Written { path, lines },
            ReportOutcome::Claimed { owner } => BucketResult::ClaimedElsewhere { owner },
            ReportOutcome::Empty => BucketResult::Empty,
        })
    }

    fn record(&mut self, epoch: u64, result: BucketResult, written: &mut Vec<u64>) {
        match result {
            BucketResult::Written { path, lines } => {
                tracing::info!(epoch, path = %path.display(), lines, "wrote report");
                self.stats.reports_written += 1;
                self.settled.insert(epoch);
                written.push(epoch);
            }
            BucketResult::AlreadyWritten => {
                tracing::debug!(epoch, "report written by this owner before");
                self.settled.insert(epoch);
            }
            BucketResult::ClaimedElsewhere { owner } => {
                tracing::debug!(epoch, owner = owner.as_deref().unwrap_or("-"), "report claimed by another owner");
                self.stats.claimed_elsewhere += 1;
            }
            BucketResult::Empty => tracing::debug!(epoch, "bucket has no rows, nothing to report"),
        }
    }

    /// Counts a run that met errors and logs them when the run is the 1st, 10th, 100th, ...
    /// in a row to fail, so an outage does not flood the log. Logs the recovery.
    fn record_failures(&mut self, failures: &[(Option<u64>, ReportError)]) {
        if failures.is_empty() {
            if self.failing_ticks > 0 {
                tracing::info!(failed_ticks = self.failing_ticks, "reporting works again");
            }
            self.failing_ticks = 0;
            return;
        }
        self.stats.failed_ticks += 1;
        self.failing_ticks += 1;
        if !is_power_of_ten(self.failing_ticks) {
            return;
        }
        for (epoch, error) in failures {
            log_failure(*epoch, error, self.failing_ticks);
        }
    }
}

fn log_failure(epoch: Option<u64>, error: &ReportError, failing_ticks: u64) {
    let epoch = epoch.map_or_else(|| "-".to_owned(), |epoch| epoch.to_string());
    if error.is_unavailable() {
        tracing::warn!(%epoch, %error, failing_ticks, "cannot report, retrying at the next tick");
    } else {
        tracing::error!(%epoch, %error, failing_ticks, "cannot report the bucket, retrying at the next tick");
    }
}

fn is_power_of_ten(mut value: u64) -> bool {
    while value >= 10 && value % 10 == 0 {
        value /= 10;
    }
    value == 1
}

#[cfg(test)]
mod tests {
    use super::is_power_of_ten;

    #[test]
    fn powers_of_ten_detected() {
        for value in [1, 10, 100, 1000, 10_000_000_000_000_000_000] {
            assert!(is_power_of_ten(value), "{value}");
        }
        for value in [0, 2, 11, 20, 101, 110, 999] {
            assert!(!is_power_of_ten(value), "{value}");
        }
    }
}
