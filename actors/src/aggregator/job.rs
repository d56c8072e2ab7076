//! The report job: writes `<outdir>/<epoch>.imsi` for a bucket stored on the Redis
//! microcloud, once per cluster.
//!
//! The job claims the bucket (`P report:<epoch>`, set with SET NX) before it reads the rows,
//! so of several collectors reporting one bucket only the first writes the file. When
//! there is nothing to write or the write fails, it releases the claim so that a later run
//! can report the bucket. After a successful write it can shorten how long the bucket stays
//! on the server.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::flow::classify::Classify;
use crate::microcloud::{Microcloud, MicrocloudError, RedisMicrocloud};
use crate::ndpi::{Classifier, NdpiError};
use crate::output::report::{report_path, report_rows, write_report};
use crate::output::FileError;

/// Settings of a report job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// Directory of the reports `<epoch>.imsi`.
    pub outdir: PathBuf,
    /// Name stored in the claim of each reported bucket. A job with the same name can
    /// report again a bucket that this name claimed before.
    pub owner: String,
    /// How long a claim is kept (whole seconds, at least 1). Until it expires no other
    /// owner reports the bucket, so it should outlast the bucket on the server.
    pub claim_ttl: Duration,
    /// After a report is written, the bucket expires on the server within this time;
    /// zero deletes it at once. `None` leaves the bucket's TTL as it is.
    pub retention: Option<Duration>,
}

/// Result of reporting one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The report was written, with this many lines after the header.
    Written {
        /// The report file.
        path: PathBuf,
        /// Rows written.
        lines: usize,
    },
    /// Another owner holds the claim; `None` when that claim expired since.
    Claimed {
        /// The owner named by the claim.
        owner: Option<String>,
    },
    /// The server stores no row of the bucket, so nothing was written.
    Empty,
}

/// Failure of a report job.
#[derive(Debug)]
pub enum ReportError {
    /// The report directory could not be created.
    CreateDir {
        /// The directory.
        outdir: PathBuf,
        /// Error from the operating system.
        source: std::io::Error,
    },
    /// The nDPI module that names protocols could not be created.
    Classifier(NdpiError),
    /// A microcloud operation failed.
    Microcloud {
        /// The action that failed, as the message starts, e.g. `cannot claim bucket 1374938100`.
        action: String,
        /// The error of the backend.
        source: MicrocloudError,
    },
    /// The report file could not be written.
    Write {
        /// Bucket start.
        epoch: u64,
        /// The report directory.
        outdir: PathBuf,
        /// The failed file operation.
        source: FileError,
    },
}

impl ReportError {
    /// Returns whether the microcloud server could not be reached, so that every other
    /// bucket would fail the same way until it is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ReportError::Microcloud { source: MicrocloudError::Unavailable { .. }, .. })
    }

    fn microcloud(action: String) -> impl FnOnce(MicrocloudError) -> ReportError {
        move |source| ReportError::Microcloud { action, source }
    }
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::CreateDir { outdir, source } => {
                write!(f, "cannot create the report directory {}: {source}", outdir.display())
            }
            ReportError::Classifier(error) => write!(f, "{error}"),
            ReportError::Microcloud { action, source } => write!(f, "{action}: {source}"),
            ReportError::Write { epoch, outdir, source } => {
                write!(f, "cannot write the report of bucket {epoch} into {}: {source}", outdir.display())
            }
        }
    }
}

impl std::error::Error for ReportError {}

/// Writes the reports of buckets stored on a Redis microcloud.
pub struct ReportJob {
    cloud: RedisMicrocloud,
    classifier: Classifier,
    settings: ReportSettings,
}

impl fmt::Debug for ReportJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportJob").field("cloud", &self.cloud).field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl ReportJob {
    /// Creates the report directory when missing and the nDPI module that names protocols.
    pub fn new(cloud: RedisMicrocloud, settings: ReportSettings) -> Result<ReportJob, ReportError> {
        std::fs::create_dir_all(&settings.outdir)
            .map_err(|source| ReportError::CreateDir { outdir: settings.outdir.clone(), source })?;
        let classifier = Classifier::new().map_err(ReportError::Classifier)?;
        Ok(ReportJob { cloud, classifier, settings })
    }

    /// Returns the settings.
    pub fn settings(&self) -> &ReportSettings {
        &self.settings
    }

    /// Returns the path of the report of the bucket starting at `epoch`.
    pub fn report_path(&self, epoch: u64) -> PathBuf {
        report_path(&self.settings.outdir, epoch)
    }

    /// Returns the start times of the buckets stored on the server, ascending, from the
    /// epoch index (no KEYS or SCAN).
    pub async fn stored_epochs(&mut self) -> Result<Vec<u64>, ReportError> {
        let action = "cannot list the stored buckets".to_owned();
        self.cloud.bucket_epochs().await.map_err(ReportError::microcloud(action))
    }

    /// Returns the owner that holds the claim of the bucket starting at `epoch`, if any.
    pub async fn claim_owner(&mut self, epoch: u64) -> Result<Option<String>, ReportError> {
        let action = format!("cannot read the claim of bucket {epoch}");
        self.cloud.report_owner(epoch).await.map_err(ReportError::microcloud(action))
    }

    /// Claims the bucket starting at `epoch`, then reads its rows, writes its report and
    /// applies the retention.
    ///
    /// Releases the claim when there is nothing to write or the write fails, so a later run
    /// can report the bucket. When the retention cannot be set, the report stays written
    /// and claimed and the error is returned; [`ReportJob::apply_retention`] can retry it.
    pub async fn report(&mut self, epoch: u64) -> Result<ReportOutcome, ReportError> {
        let (owner, ttl) = (&self.settings.owner, self.settings.claim_ttl);
        let claimed = self.cloud.claim_report(epoch, owner, ttl).await;
        if !claimed.map_err(ReportError::microcloud(format!("cannot claim bucket {epoch}")))? {
            let owner = self.claim_owner(epoch).await?;
            return Ok(ReportOutcome::Claimed { owner });
        }
        let written = self.write(epoch).await;
        if !matches!(written, Ok(ReportOutcome::Written { .. })) {
            self.release(epoch).await;
        }
        let written = written?;
        if matches!(written, ReportOutcome::Written { .. }) {
            self.apply_retention(epoch).await?;
        }
        Ok(written)
    }

    /// Lets the bucket starting at `epoch` expire within the retention of the settings, or
    /// deletes it when the retention is zero. Does nothing without a retention.
    pub async fn apply_retention(&mut self, epoch: u64) -> Result<(), ReportError> {
        let Some(retention) = self.settings.retention else { return Ok(()) };
        let action = format!("wrote the report of bucket {epoch} but cannot set its retention");
        self.cloud.expire_bucket(epoch, retention).await.map_err(ReportError::microcloud(action))?;
        Ok(())
    }

    /// Reads the rows of the bucket starting at `epoch` and writes `<outdir>/<epoch>.imsi`,
    /// naming protocols as nDPI prints them.
    async fn write(&mut self, epoch: u64) -> Result<ReportOutcome, ReportError> {
        let action = format!("cannot read bucket {epoch}");
        let deltas = self.cloud.bucket_rows(epoch).await.map_err(ReportError::microcloud(action))?;
        if deltas.is_empty() {
            return Ok(ReportOutcome::Empty);
        }
        let classifier = &self.classifier;
        let rows = report_rows(&deltas, |protocol| classifier.name(protocol).to_owned());
        let outdir: &Path = &self.settings.outdir;
        let path = write_report(outdir, epoch, &rows)
            .map_err(|source| ReportError::Write { epoch, outdir: outdir.to_path_buf(), source })?;
        Ok(ReportOutcome::Written { path, lines: rows.len() })
    }

    /// Deletes the claim of `epoch` while it names this job's owner. A failure is logged:
    /// the claim then stays until its TTL ends.
    async fn release(&mut self, epoch: u64) {
        let owner = &self.settings.owner;
        if let Err(error) = self.cloud.release_report(epoch, owner).await {
            tracing::warn!(epoch, %owner, %error, "cannot release the report claim, so it stays until its TTL ends");
        }
    }
}
