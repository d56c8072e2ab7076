//! `imsitrace report`: writes the 5-minute reports of buckets stored on the Redis
//! microcloud, once per cluster. Each bucket is claimed before its report is written, so
//! when several collectors run the command for one bucket, only one of them writes it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use imsitrace::aggregator::schedule;
use imsitrace::aggregator::{ReportJob, ReportOutcome, ReportSettings};
use imsitrace::bucket::BUCKET_SECONDS;

use crate::redis_target::{runtime, RedisTarget};

/// Options of `imsitrace report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    target: RedisTarget,
    /// Bucket to report. Give `now` (the bucket that contains the current time), `prev`
    /// (the one before), `-N` (N buckets before the current one), a bucket start in seconds
    /// since the Unix epoch (a multiple of 300), or `all` (every bucket on the server).
    #[arg(long, value_name = "EPOCH", allow_hyphen_values = true, value_parser = parse_epoch)]
    epoch: EpochSpec,
    /// Directory for the reports `<epoch>.imsi`; created when missing.
    #[arg(long, value_name = "DIR")]
    outdir: PathBuf,
    /// Name stored in the claim of each reported bucket (default: `<host name>:<process id>`).
    /// A rerun with the same name reports a bucket that this name claimed before.
    #[arg(long, value_name = "NAME")]
    owner: Option<String>,
    /// Seconds the claim of a bucket is kept. Until it expires, no other owner reports the
    /// bucket, so keep it longer than the bucket stays on the server.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    claim_ttl: u64,
    /// After writing a report, let the bucket expire on the server within this many
    /// seconds; 0 deletes it at once. Without this option the bucket keeps its TTL.
    #[arg(long, value_name = "SECONDS")]
    retention: Option<u64>,
}

/// The buckets named by `--epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochSpec {
    /// Every bucket listed by `bucket_epochs`.
    All,
    /// The bucket that many buckets before the one containing the current time.
    BucketsAgo(u64),
    /// The bucket starting at this epoch, a multiple of [`BUCKET_SECONDS`].
    Absolute(u64),
}

/// Parses the value of `--epoch`.
pub fn parse_epoch(text: &str) -> Result<EpochSpec, String> {
    match text {
        "all" => return Ok(EpochSpec::All),
        "now" => return Ok(EpochSpec::BucketsAgo(0)),
        "prev" => return Ok(EpochSpec::BucketsAgo(1)),
        _ => {}
    }
    if let Some(count) = text.strip_prefix('-') {
        return parse_digits(count)
            .map(EpochSpec::BucketsAgo)
            .ok_or_else(|| format!("invalid relative epoch {text:?}: give -N, with N a number of {BUCKET_SECONDS}-s buckets"));
    }
    let Some(epoch) = parse_digits(text) else {
        return Err(format!(
            "invalid epoch {text:?}: give now, prev, -N, all, or a bucket start in seconds since the Unix epoch"
        ));
    };
    if epoch % BUCKET_SECONDS != 0 {
        let start = epoch - epoch % BUCKET_SECONDS;
        return Err(format!(
            "invalid epoch {text}: a bucket starts at a multiple of {BUCKET_SECONDS} seconds, e.g. {start}"
        ));
    }
    Ok(EpochSpec::Absolute(epoch))
}

/// Parses a non-empty string of ASCII digits; unlike `u64::from_str`, rejects a sign.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Returns the start of the bucket `buckets_ago` buckets before the one containing
/// `now_s` (seconds since the Unix epoch).
pub fn bucket_before(now_s: u64, buckets_ago: u64) -> Result<u64, String> {
    schedule::bucket_before(now_s, buckets_ago).ok_or_else(|| format!("invalid epoch -{buckets_ago}: that bucket would start before 1970"))
}

/// Runs `imsitrace report`.
pub fn run(args: ReportArgs) -> Result<(), String> {
    let owner = args.owner.clone().unwrap_or_else(default_owner);
    if owner.is_empty() || owner.chars().any(char::is_whitespace) {
        return Err(format!("invalid value {owner:?} for --owner: give a name without spaces"));
    }
    if args.claim_ttl == 0 {
        return Err("invalid value 0 for --claim-ttl: give at least 1 second".into());
    }
    let settings = ReportSettings {
        outdir: args.outdir,
        owner,
        claim_ttl: Duration::from_secs(args.claim_ttl),
        retention: args.retention.map(Duration::from_secs),
    };
    // The directory is created before connecting, so a bad directory fails without a server.
    std::fs::create_dir_all(&settings.outdir)
        .map_err(|e| format!("cannot create the report directory {}: {e}", settings.outdir.display()))?;
    runtime()?.block_on(async {
        let cloud = args.target.connect().await?;
        let mut job = ReportJob::new(cloud, settings).map_err(|e| e.to_string())?;
        report_buckets(&mut job, args.epoch, &args.target.redis_prefix).await
    })
}

/// Reports every bucket named by `spec` and prints one line per bucket on stdout. Stops at
/// the first error.
async fn report_buckets(job: &mut ReportJob, spec: EpochSpec, prefix: &str) -> Result<(), String> {
    let epochs = match spec {
        EpochSpec::All => job.stored_epochs().await.map_err(|e| e.to_string())?,
        EpochSpec::BucketsAgo(count) => vec![bucket_before(unix_now_s(), count)?],
        EpochSpec::Absolute(epoch) => vec![epoch],
    };
    if epochs.is_empty() {
        println!("no bucket is stored under the prefix {prefix}; no report written");
    }
    for epoch in epochs {
        match job.report(epoch).await.map_err(|e| e.to_string())? {
            ReportOutcome::Written { path, lines } => println!("wrote {} ({lines} lines)", path.display()),
            ReportOutcome::Claimed { owner: Some(owner) } => {
                println!("bucket {epoch} not written: its report is claimed by {owner}");
            }
            ReportOutcome::Claimed { owner: None } => {
                println!("bucket {epoch} not written: its report is claimed by another owner");
            }
            ReportOutcome::Empty => println!("bucket {epoch} not written: no rows are stored for it"),
        }
    }
    Ok(())
}

/// Returns `<host name>:<process id>`, the owner name when `--owner` is not given.
fn default_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

fn unix_now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_epochs_parse() {
        assert_eq!(parse_epoch("all"), Ok(EpochSpec::All));
        assert_eq!(parse_epoch("now"), Ok(EpochSpec::BucketsAgo(0)));
        assert_eq!(parse_epoch("prev"), Ok(EpochSpec::BucketsAgo(1)));
    }

    #[test]
    fn relative_epochs_parse() {
        assert_eq!(parse_epoch("-0"), Ok(EpochSpec::BucketsAgo(0)));
        assert_eq!(parse_epoch("-1"), Ok(EpochSpec::BucketsAgo(1)));
        assert_eq!(parse_epoch("-12"), Ok(EpochSpec::BucketsAgo(12)));
    }

    #[test]
    fn absolute_epoch_parses() {
        assert_eq!(parse_epoch("1374938100"), Ok(EpochSpec::Absolute(1_374_938_100)));
        assert_eq!(parse_epoch("0"), Ok(EpochSpec::Absolute(0)));
    }

    #[test]
    fn invalid_epochs_name_value() {
        for text in ["1374938101", "-", "--1", "-x", "+300", "", "soon", "-1.5", "300s", "99999999999999999999999"] {
            let error = parse_epoch(text).expect_err(text);
            assert!(error.contains(&format!("{text:?}")) || error.contains(text), "message {error:?} for {text:?}");
        }
        let error = parse_epoch("1374938101").expect_err("not a bucket start");
        assert!(error.contains("e.g. 1374938100"), "{error}");
    }

    #[test]
    fn relative_epochs_resolve() {
        let now = 1_374_938_100 + 299;
        assert_eq!(bucket_before(now, 0), Ok(1_374_938_100));
        assert_eq!(bucket_before(now, 1), Ok(1_374_937_800));
        assert_eq!(bucket_before(now, 12), Ok(1_374_938_100 - 12 * 300));
        assert_eq!(bucket_before(1_374_938_100, 1), Ok(1_374_937_800), "at a boundary");
    }

    #[test]
    fn epoch_before_1970_rejected() {
        assert_eq!(bucket_before(600, 2), Ok(0));
        assert!(bucket_before(600, 3).is_err());
        assert!(bucket_before(600, u64::MAX).is_err());
    }
}
