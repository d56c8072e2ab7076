//! The time window of a query: `--since DURATION|all`, or `--from EPOCH [--to EPOCH]`, and
//! the 300-s buckets it selects.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use imsitrace::bucket::BUCKET_SECONDS;

/// Window used when no window option is given: the last hour.
const DEFAULT_SINCE: Since = Since::Last(3600);

/// Options that select the buckets a query reads.
///
/// A bucket is read when its 300-s interval overlaps the window. A flow counts in the bucket
/// of its last packet, so the window selects flows by the time they ended.
#[derive(Args, Debug, Clone, Default)]
pub struct WindowArgs {
    /// Read the buckets of the last DURATION before now: a whole number with the unit s, m,
    /// h or d (e.g. 30m, 2h, 7d). `all` reads every stored bucket. [default: 1h]
    #[arg(long, value_name = "DURATION", value_parser = parse_since, conflicts_with = "from")]
    pub since: Option<Since>,
    /// Read the buckets from this time on, in seconds since the Unix epoch. Use it for data
    /// with old packet times, such as a capture from 2013 analyzed today.
    #[arg(long, value_name = "EPOCH", value_parser = parse_epoch_seconds)]
    pub from: Option<u64>,
    /// With --from: read the buckets that start before this time, in seconds since the Unix
    /// epoch. [default: no end]
    #[arg(long, value_name = "EPOCH", value_parser = parse_epoch_seconds, requires = "from")]
    pub to: Option<u64>,
}

/// Value of `--since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Every stored bucket.
    All,
    /// The buckets that overlap this many seconds before now.
    Last(u64),
}

/// Bucket starts a query reads, in seconds since the Unix epoch: from `first` to `last`
/// inclusive, with no upper bound when `last` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRange {
    /// Start of the first bucket, a multiple of [`BUCKET_SECONDS`].
    pub first: u64,
    /// Start of the last bucket, a multiple of [`BUCKET_SECONDS`].
    pub last: Option<u64>,
}

impl WindowArgs {
    /// Returns whether any window option was given.
    pub fn is_given(&self) -> bool {
        self.since.is_some() || self.from.is_some()
    }

    /// Returns the buckets of the window at the wall-clock time `now_s` (seconds since the
    /// Unix epoch).
    pub fn range(&self, now_s: u64) -> Result<BucketRange, String> {
        if let Some(from) = self.from {
            return between(from, self.to);
        }
        match self.since.unwrap_or(DEFAULT_SINCE) {
            Since::All => Ok(BucketRange { first: 0, last: None }),
            Since::Last(seconds) => Ok(BucketRange { first: bucket_start(now_s.saturating_sub(seconds)), last: None }),
        }
    }

    /// Returns the buckets of the window at the current wall-clock time.
    pub fn range_now(&self) -> Result<BucketRange, String> {
        self.range(unix_now_s())
    }

    /// Describes the window as the options give it, e.g. `the last 2h` or `every stored bucket`.
    pub fn describe(&self) -> String {
        if let Some(from) = self.from {
            return match self.to {
                Some(to) => format!("from {from} to {to}"),
                None => format!("from {from} on"),
            };
        }
        match self.since.unwrap_or(DEFAULT_SINCE) {
            Since::All => "every stored bucket".to_owned(),
            Since::Last(seconds) => format!("the last {}", format_duration(seconds)),
        }
    }
}

/// Returns the buckets that overlap `[from, to)`.
fn between(from: u64, to: Option<u64>) -> Result<BucketRange, String> {
    let first = bucket_start(from);
    let Some(to) = to else { return Ok(BucketRange { first, last: None }) };
    if to <= from {
        return Err(format!("invalid window: --to {to} is not later than --from {from}; give a later --to"));
    }
    Ok(BucketRange { first, last: Some(bucket_start(to - 1)) })
}

/// Returns the start of the bucket that contains `time_s`.
fn bucket_start(time_s: u64) -> u64 {
    time_s - time_s % BUCKET_SECONDS
}

/// Parses the value of `--since`: `all`, or a whole number followed by `s`, `m`, `h` or `d`.
pub fn parse_since(text: &str) -> Result<Since, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(Since::All);
    }
    let invalid = || format!("invalid duration {text:?} for --since: give a whole number with the unit s, m, h or d (e.g. 30m, 2h, 7d), or all");
    let split = text.len().checked_sub(1).filter(|&at| text.is_char_boundary(at)).ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let count = parse_digits(number).ok_or_else(invalid)?;
    if count == 0 {
        return Err(format!("invalid duration {text:?} for --since: give at least 1{unit}"));
    }
    count.checked_mul(unit_seconds).map(Since::Last).ok_or_else(invalid)
}

/// Parses a time in whole seconds since the Unix epoch, for `--from` and `--to`.
pub fn parse_epoch_seconds(text: &str) -> Result<u64, String> {
    parse_digits(text).ok_or_else(|| format!("invalid time {text:?}: give whole seconds since the Unix epoch, e.g. 1374937800"))
}

/// Parses a non-empty string of ASCII digits; unlike `u64::from_str`, rejects a sign.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Formats seconds in the largest unit of `--since` that divides them, e.g. `2h` or `90m`.
fn format_duration(seconds: u64) -> String {
    for (unit, unit_seconds) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds % unit_seconds == 0 {
            return format!("{}{unit}", seconds / unit_seconds);
        }
    }
    format!("{seconds}s")
}

fn unix_now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2013-07-27T15:12:34Z, inside the bucket that starts at 1374937800.
    const NOW: u64 = 1_374_937_954;

    fn since(text: &str) -> WindowArgs {
        WindowArgs { since: Some(parse_since(text).expect(text)), ..WindowArgs::default() }
    }

    fn from_to(from: u64, to: Option<u64>) -> WindowArgs {
        WindowArgs { since: None, from: Some(from), to }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_since("90s"), Ok(Since::Last(90)));
        assert_eq!(parse_since("30m"), Ok(Since::Last(1800)));
        assert_eq!(parse_since("2h"), Ok(Since::Last(7200)));
        assert_eq!(parse_since("7d"), Ok(Since::Last(604_800)));
        assert_eq!(parse_since("all"), Ok(Since::All));
        assert_eq!(parse_since("ALL"), Ok(Since::All));
    }

    #[test]
    fn invalid_durations_name_value() {
        for text in ["", "h", "30", "30x", "-5m", "+5m", "1.5h", "2 h", "1h30m", "5é", "99999999999999999999d", "213503982334602d"] {
            let error = parse_since(text).expect_err(text);
            assert!(error.contains(&format!("{text:?}")), "message {error:?} for {text:?}");
            assert!(error.contains("e.g. 30m"), "message {error:?} for {text:?}");
        }
        let error = parse_since("0m").expect_err("zero");
        assert!(error.contains("at least 1m"), "{error}");
    }

    #[test]
    fn epoch_seconds_parse() {
        assert_eq!(parse_epoch_seconds("1374937800"), Ok(1_374_937_800));
        for text in ["", "-1", "+1", "13749378O0", "1374937800.5"] {
            let error = parse_epoch_seconds(text).expect_err(text);
            assert!(error.contains(&format!("{text:?}")), "message {error:?} for {text:?}");
        }
    }

    #[test]
    fn default_window_is_last_hour() {
        let window = WindowArgs::default();
        assert!(!window.is_given());
        // NOW - 3600 is 14:12:34Z, in the bucket that starts at 14:10:00Z.
        assert_eq!(window.range(NOW), Ok(BucketRange { first: 1_374_934_200, last: None }));
        assert_eq!(window.describe(), "the last 1h");
    }

    #[test]
    fn since_starts_at_overlapping_bucket() {
        assert_eq!(since("30m").range(NOW), Ok(BucketRange { first: 1_374_936_000, last: None }));
        assert_eq!(since("1s").range(NOW), Ok(BucketRange { first: 1_374_937_800, last: None }));
        assert_eq!(since("1s").range(1_374_937_800), Ok(BucketRange { first: 1_374_937_500, last: None }));
        assert_eq!(since("all").range(NOW), Ok(BucketRange { first: 0, last: None }));
        assert_eq!(since("20000d").range(NOW), Ok(BucketRange { first: 0, last: None }), "before 1970");
        assert_eq!(since("90m").describe(), "the last 90m");
        assert_eq!(since("48h").describe(), "the last 2d");
    }

    #[test]
    fn from_to_selects_overlapping_buckets() {
        let one_bucket = from_to(1_374_937_800, Some(1_374_938_100));
        assert_eq!(one_bucket.range(NOW), Ok(BucketRange { first: 1_374_937_800, last: Some(1_374_937_800) }));
        let inside = from_to(1_374_937_900, Some(1_374_938_101));
        assert_eq!(inside.range(NOW), Ok(BucketRange { first: 1_374_937_800, last: Some(1_374_938_100) }));
        let open = from_to(1_374_937_800, None);
        assert_eq!(open.range(NOW), Ok(BucketRange { first: 1_374_937_800, last: None }));
        assert_eq!(open.describe(), "from 1374937800 on");
        assert_eq!(one_bucket.describe(), "from 1374937800 to 1374938100");
    }

    #[test]
    fn empty_from_to_rejected() {
        for to in [1_374_937_800, 1_374_937_000] {
            let error = from_to(1_374_937_800, Some(to)).range(NOW).expect_err("empty window");
            assert!(error.contains(&format!("--to {to}")), "{error}");
        }
    }
}
