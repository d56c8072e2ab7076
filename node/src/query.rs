//! `imsitrace query`: reads the bucket rows and the subscriber index that `analyze --redis`
//! writes on the Redis microcloud, and prints who uses an application and how many
//! subscribers are active.

mod active;
mod protocols;
mod who_uses;
mod window;

use clap::{Args, Subcommand};
use imsitrace::bucket::{BucketDelta, BUCKET_SECONDS};
use imsitrace::microcloud::RedisMicrocloud;
use imsitrace::output::time::format_utc_us;
use serde_json::json;

use crate::redis_target::runtime;
use protocols::ProtocolNames;
use window::{BucketRange, WindowArgs};

/// Options of `imsitrace query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(subcommand)]
    question: Question,
}

#[derive(Subcommand, Debug)]
enum Question {
    /// List the subscribers with traffic of an application, with their totals.
    ///
    /// APP is an nDPI protocol name as reports print it, compared ignoring case. A 5-minute
    /// bucket row counts when APP is the name of its master protocol, of its application,
    /// or its whole name: `Facebook` and `TLS` both select rows printed `TLS.Facebook`, and
    /// `TLS.Facebook` selects only those. The totals are the sums over the selected rows:
    /// packets, bytes (inner IP bytes) and flows.
    ///
    /// A bucket is read when its 300-s interval overlaps the window. A flow counts in the
    /// bucket of its last packet, so the window selects flows by the time they ended.
    WhoUses(who_uses::WhoUsesArgs),
    /// Count the active subscribers: those whose stored state is attached or idle.
    ///
    /// A subscriber stops being active when a detach is seen, when another subscriber takes
    /// over its last tunnel, or when its state expires on the server (24 h after its last
    /// event by default). With --protocol APP, only those with traffic of APP in the
    /// buckets of the window count (APP and the window as for `who-uses`).
    Active(active::ActiveArgs),
}

/// Runs `imsitrace query`.
pub fn run(args: QueryArgs) -> Result<(), String> {
    match args.question {
        Question::WhoUses(args) => who_uses::run(args),
        Question::Active(args) => active::run(args),
    }
}

/// The selected rows of the buckets in a window.
struct WindowRows {
    range: BucketRange,
    /// Starts of the stored buckets in the window, ascending.
    epochs: Vec<u64>,
    rows: Vec<BucketDelta>,
}

/// Reads the rows of the window's buckets that `application` selects.
async fn read_window_rows(
    cloud: &mut RedisMicrocloud,
    names: &ProtocolNames,
    application: &str,
    window: &WindowArgs,
) -> Result<WindowRows, String> {
    let range = window.range_now()?;
    let epochs = cloud.bucket_epochs_between(range.first, range.last).await.map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &epoch in &epochs {
        let selected = cloud.bucket_rows_matching(epoch, |protocol| names.matches(application, protocol)).await;
        rows.extend(selected.map_err(|e| format!("cannot read bucket {epoch}: {e}"))?);
    }
    Ok(WindowRows { range, epochs, rows })
}

impl WindowRows {
    /// Describes the buckets read, e.g. `2 buckets, 2013-07-27T15:10:00Z to 2013-07-27T15:20:00Z`.
    fn describe(&self) -> String {
        let (Some(&first), Some(&last)) = (self.epochs.first(), self.epochs.last()) else {
            return "no bucket".to_owned();
        };
        let count = self.epochs.len();
        let plural = if count == 1 { "" } else { "s" };
        format!("{count} bucket{plural}, {} to {}", format_utc_s(first), format_utc_s(last + BUCKET_SECONDS))
    }

    /// Returns the window as JSON: the requested bucket range and the buckets read.
    fn to_json(&self) -> serde_json::Value {
        json!({ "first": self.range.first, "last": self.range.last, "buckets": self.epochs })
    }
}

/// Returns the message printed when the window holds no stored bucket.
fn no_bucket_message(window: &WindowArgs, prefix: &str) -> String {
    format!(
        "no bucket is stored for {} under the key prefix {prefix:?}; for older data give --since all or --from EPOCH",
        window.describe()
    )
}

/// Formats whole seconds since the Unix epoch as RFC 3339 UTC, e.g. `2013-07-27T15:10:00Z`.
fn format_utc_s(seconds: u64) -> String {
    format_utc_us(seconds.saturating_mul(1_000_000)).replace(".000000Z", "Z")
}

/// Connects, runs `query` and returns its result, on a single-threaded runtime.
fn with_cloud<T>(
    target: &crate::redis_target::RedisTarget,
    query: impl AsyncFnOnce(&mut RedisMicrocloud) -> Result<T, String>,
) -> Result<T, String> {
    runtime()?.block_on(async {
        let mut cloud = target.connect().await?;
        query(&mut cloud).await
    })
}

/// Prints `value` as one line of JSON.
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
