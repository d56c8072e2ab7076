//! When the aggregator runs and which buckets a run reports: pure functions of the wall
//! time, so they are tested without a clock.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::bucket::BUCKET_SECONDS;

/// Returns the start of the bucket `buckets_ago` buckets before the one containing `now_s`
/// (seconds since the Unix epoch), or `None` when that bucket would start before 1970.
pub fn bucket_before(now_s: u64, buckets_ago: u64) -> Option<u64> {
    let current = now_s - now_s % BUCKET_SECONDS;
    buckets_ago
        .checked_mul(BUCKET_SECONDS)
        .and_then(|offset| current.checked_sub(offset))
}

/// Returns the time from `now` to the next tick, `now` and the ticks being durations since
/// the Unix epoch. Ticks fall at `offset` past every multiple of `interval`, so with an
/// interval that divides 300 s or is a multiple of it, every bucket boundary is followed by
/// a tick `offset` later. The returned delay is never zero: a tick due exactly at `now` is
/// the one that just ran, and the next is one interval later.
///
/// A zero `interval` is treated as 1 s. An `offset` of `interval` or more is reduced
/// modulo `interval`.
pub fn delay_to_next_tick(now: Duration, interval: Duration, offset: Duration) -> Duration {
    let interval_ns = interval.as_nanos().max(1_000_000_000);
    let offset_ns = offset.as_nanos() % interval_ns;
    let now_ns = now.as_nanos();
    // Ticks are at offset_ns + k * interval_ns; shifting by one interval keeps the
    // subtraction non-negative for a `now` before the first tick.
    let shifted = now_ns + interval_ns - offset_ns;
    let since_tick = shifted % interval_ns;
    let delay_ns = interval_ns - since_tick;
    duration_from_nanos(delay_ns)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let seconds = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits in u32.
    let subsec = (nanos % 1_000_000_000) as u32;
    Duration::new(seconds, subsec)
}

/// Returns the stored buckets a run reports, oldest first: those starting at or before
/// `target` (the newest final bucket) that are not in `settled` (reported before by this
/// aggregator). `stored` is the epoch index, in any order.
pub fn due_epochs(stored: &[u64], target: u64, settled: &BTreeSet<u64>) -> Vec<u64> {
    let due: BTreeSet<u64> = stored
        .iter()
        .copied()
        .filter(|epoch| *epoch <= target && !settled.contains(epoch))
        .collect();
    due.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: u64 = 1_374_938_100;

    fn seconds(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    #[test]
    fn bucket_before_resolves() {
        let now = BUCKET + 299;
        assert_eq!(bucket_before(now, 0), Some(BUCKET));
        assert_eq!(bucket_before(now, 1), Some(BUCKET - 300));
        assert_eq!(bucket_before(now, 2), Some(BUCKET - 600));
        assert_eq!(bucket_before(BUCKET, 1), Some(BUCKET - 300), "at a boundary");
    }

    #[test]
    fn bucket_before_1970_is_none() {
        assert_eq!(bucket_before(600, 2), Some(0));
        assert_eq!(bucket_before(600, 3), None);
        assert_eq!(bucket_before(600, u64::MAX), None);
    }

    #[test]
    fn tick_after_boundary_plus_offset() {
        // 300-s interval, 5-s offset: ticks at BUCKET + 5, BUCKET + 305, ...
        let (interval, offset) = (seconds(300), seconds(5));
        assert_eq!(delay_to_next_tick(seconds(BUCKET), interval, offset), seconds(5));
        assert_eq!(delay_to_next_tick(seconds(BUCKET + 4), interval, offset), seconds(1));
        assert_eq!(delay_to_next_tick(seconds(BUCKET + 6), interval, offset), seconds(299));
        assert_eq!(delay_to_next_tick(seconds(BUCKET - 1), interval, offset), seconds(6));
    }

    #[test]
    fn tick_due_now_is_next_interval() {
        let delay = delay_to_next_tick(seconds(BUCKET + 5), seconds(300), seconds(5));
        assert_eq!(delay, seconds(300));
    }

    #[test]
    fn tick_keeps_subsecond_part() {
        let now = seconds(BUCKET) + Duration::from_millis(250);
        let delay = delay_to_next_tick(now, seconds(300), seconds(5));
        assert_eq!(delay, Duration::from_millis(4_750));
    }

    #[test]
    fn tick_without_offset_on_multiples() {
        assert_eq!(delay_to_next_tick(seconds(BUCKET + 1), seconds(60), Duration::ZERO), seconds(59));
        assert_eq!(delay_to_next_tick(seconds(BUCKET), seconds(1), Duration::ZERO), seconds(1));
        let now = seconds(BUCKET) + Duration::from_millis(100);
        assert_eq!(delay_to_next_tick(now, seconds(1), Duration::ZERO), Duration::from_millis(900));
    }

    #[test]
    fn tick_before_first_offset() {
        // Ticks at 5, 305, ...: from time 0 the first is 5 s away.
        assert_eq!(delay_to_next_tick(Duration::ZERO, seconds(300), seconds(5)), seconds(5));
        assert_eq!(delay_to_next_tick(seconds(2), seconds(300), seconds(5)), seconds(3));
    }

    #[test]
    fn tick_long_interval() {
        // A 600-s interval ticks at even multiples of 300 s only.
        assert_eq!(delay_to_next_tick(seconds(900), seconds(600), Duration::ZERO), seconds(300));
        assert_eq!(delay_to_next_tick(seconds(1200), seconds(600), Duration::ZERO), seconds(600));
    }

    #[test]
    fn tick_degenerate_settings() {
        assert_eq!(delay_to_next_tick(seconds(10), Duration::ZERO, Duration::ZERO), seconds(1));
        let reduced = delay_to_next_tick(seconds(BUCKET), seconds(300), seconds(305));
        assert_eq!(reduced, seconds(5), "offset 305 s acts as 5 s");
    }

    #[test]
    fn due_epochs_oldest_first() {
        let stored = [BUCKET, BUCKET - 900, BUCKET - 300, BUCKET + 300];
        let due = due_epochs(&stored, BUCKET, &BTreeSet::new());
        assert_eq!(due, vec![BUCKET - 900, BUCKET - 300, BUCKET]);
    }

    #[test]
    fn due_epochs_skip_settled() {
        let stored = [BUCKET - 600, BUCKET - 300, BUCKET];
        let settled = BTreeSet::from([BUCKET - 300]);
        assert_eq!(due_epochs(&stored, BUCKET, &settled), vec![BUCKET - 600, BUCKET]);
    }

    #[test]
    fn due_epochs_none_final() {
        let stored = [BUCKET + 300, BUCKET + 600];
        assert!(due_epochs(&stored, BUCKET, &BTreeSet::new()).is_empty());
        assert!(due_epochs(&[], BUCKET, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn due_epochs_drop_duplicates() {
        let stored = [BUCKET, BUCKET, BUCKET - 300];
        assert_eq!(due_epochs(&stored, BUCKET, &BTreeSet::new()), vec![BUCKET - 300, BUCKET]);
    }
}
