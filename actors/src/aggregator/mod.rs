//! Reports of the buckets stored on a Redis microcloud, written once per cluster.
//!
//! [`job::ReportJob`] claims a bucket, reads its rows, writes `<epoch>.imsi` and applies
//! the retention; `imsitrace report` runs it once. [`actor::AggregatorActor`] runs it
//! periodically on a collector node: every tick it reports, oldest first, each stored
//! bucket that has become final and is not reported yet. [`schedule`] contains the pure
//! functions that decide when a tick runs and which buckets it reports.

pub mod actor;
pub mod job;
pub mod schedule;
pub mod tick;

#[cfg(test)]
mod tests;

pub use actor::{AggregatorActor, AggregatorArgs, AggregatorHandle, AggregatorMsg};
pub use job::{ReportError, ReportJob, ReportOutcome, ReportSettings};
pub use tick::{Aggregation, AggregatorConfig, AggregatorStats, BucketResult};
