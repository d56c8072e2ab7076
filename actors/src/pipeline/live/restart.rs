//! When to reopen a failed interface: capped exponential backoff, reset once the reopened
//! interface delivers a frame.

use std::time::{Duration, Instant};

use crate::cluster::backoff::Backoff;

/// The reopening schedule of one interface.
#[derive(Debug, Clone)]
pub struct RestartSchedule {
    backoff: Backoff,
    next_attempt: Option<Instant>,
    /// Failed opens and reads since the interface last delivered a frame.
    pub failures: u64,
}

impl RestartSchedule {
    /// Creates a schedule whose first delay is `min`, doubled after each failure up to `max`.
    pub fn new(min: Duration, max: Duration) -> RestartSchedule {
        RestartSchedule { backoff: Backoff::new(min, max), next_attempt: None, failures: 0 }
    }

    /// Records a failure at `now` and returns the delay before the next attempt.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.backoff.next_delay();
        self.next_attempt = Some(now + delay);
        self.failures += 1;
        delay
    }

    /// Returns whether an attempt is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_attempt.is_some_and(|at| now >= at)
    }

    /// Returns the time of the next attempt, if one is scheduled.
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next_attempt
    }

    /// Records a successful reopening: no attempt is scheduled, but the delays keep growing
    /// until [`Self::delivered`], so an interface that fails at once after each reopening is
    /// not reopened in a tight loop.
    pub fn reopened(&mut self) {
        self.next_attempt = None;
    }

    /// Records that the interface delivered a frame: the next failure waits the minimum
    /// delay again.
    pub fn delivered(&mut self) {
        if self.failures > 0 {
            self.failures = 0;
            self.backoff.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    #[test]
    fn delays_double_up_to_cap() {
        let mut schedule = RestartSchedule::new(seconds(1), seconds(5));
        let start = Instant::now();
        let delays: Vec<u64> = (0..5).map(|_| schedule.failed(start).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(schedule.failures, 5);
    }

    #[test]
    fn attempt_due_after_delay() {
        let mut schedule = RestartSchedule::new(seconds(2), seconds(60));
        let start = Instant::now();
        assert!(!schedule.is_due(start), "no attempt before a failure");
        schedule.failed(start);
        assert!(!schedule.is_due(start + Duration::from_millis(1_999)));
        assert!(schedule.is_due(start + seconds(2)));
        assert_eq!(schedule.next_attempt(), Some(start + seconds(2)));
    }

    #[test]
    fn reopening_keeps_growth_until_delivery() {
        let mut schedule = RestartSchedule::new(seconds(1), seconds(60));
        let start = Instant::now();
        schedule.failed(start);
        schedule.failed(start);
        schedule.reopened();
        assert!(!schedule.is_due(start + seconds(100)), "nothing scheduled after a reopening");
        assert_eq!(schedule.failed(start), seconds(4), "a reopened interface that fails again waits longer");
        schedule.reopened();
        schedule.delivered();
        assert_eq!(schedule.failures, 0);
        assert_eq!(schedule.failed(start), seconds(1), "a frame resets the delay");
    }
}
