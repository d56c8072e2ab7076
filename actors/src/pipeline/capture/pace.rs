//! Paced replay: maps packet time to wall-clock time, so a capture file is handed on at its
//! own pace or at a multiple of it.
//!
//! At speed `X`, the first frame is handed on at once and every later frame no earlier than
//! `(its packet time - the first frame's packet time) / X` after it. A frame whose packet time
//! is before the first frame's is due at once. Deadlines are absolute, so time lost to one
//! slow frame is not added to the next ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Maximum replay speed, as a factor of the capture's own pace.
pub const MAX_REPLAY_SPEED: f64 = 1e6;

/// Valid replay speeds, worded as the second half of an error message.
pub const REPLAY_SPEED_HINT: &str =
    "give 0 to read as fast as possible, 1 for the capture's own pace, or another factor up to 1000000 (10 is ten times faster)";

/// Minimum pause. A frame due in less than this waits this long anyway, and the frames that
/// fall due during the pause go on without another one, so the capture does not sleep (and
/// flush its batches) once per frame.
pub const MIN_PAUSE: Duration = Duration::from_millis(1);

/// Maximum length of one sleep, so a stop request ends a pause within about this time.
pub const STOP_POLL: Duration = Duration::from_millis(50);

/// Returns whether `speed` is a valid replay speed: 0 (unpaced) or a finite factor above 0
/// up to [`MAX_REPLAY_SPEED`].
pub fn is_valid_speed(speed: f64) -> bool {
    speed == 0.0 || (speed > 0.0 && speed <= MAX_REPLAY_SPEED)
}

/// A monotonic clock that can sleep. Tests inject one that advances only when it sleeps.
pub trait Clock {
    /// Returns the time since a fixed origin of this clock.
    fn now(&self) -> Duration;
    /// Blocks the calling thread for at least `duration`.
    fn sleep(&self, duration: Duration);
}

/// The operating system's monotonic clock ([`Instant`]) and [`std::thread::sleep`].
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Packet time and clock reading of the first frame of a paced replay.
#[derive(Debug, Clone, Copy)]
struct Start {
    ts_us: u64,
    at: Duration,
}

/// Paces frames by their packet time.
pub struct Pacer<C: Clock> {
    speed: f64,
    clock: C,
    start: Option<Start>,
    /// Pauses taken so far.
    pub pauses: u64,
}

impl<C: Clock> Pacer<C> {
    /// Creates a pacer, or returns `None` when `speed` is 0 (read as fast as possible) or
    /// not a valid speed.
    pub fn new(speed: f64, clock: C) -> Option<Pacer<C>> {
        let paced = speed > 0.0 && is_valid_speed(speed);
        paced.then_some(Pacer { speed, clock, start: None, pauses: 0 })
    }

    /// Returns the clock reading before which a frame of packet time `ts_us` must not be
    /// handed on. The first call fixes the start: that frame is due now.
    pub fn deadline(&mut self, ts_us: u64) -> Duration {
        let now = self.clock.now();
        let start = *self.start.get_or_insert(Start { ts_us, at: now });
        let offset_us = ts_us.saturating_sub(start.ts_us);
        // Rounded up, so a frame is never due before its exact time. A delay beyond u64
        // nanoseconds (584 years, from a tiny speed) saturates.
        let delay_ns = (offset_us as f64 * 1_000.0 / self.speed).ceil();
        let delay = if delay_ns < u64::MAX as f64 { Duration::from_nanos(delay_ns as u64) } else { Duration::MAX };
        start.at.saturating_add(delay)
    }

    /// Returns the clock reading to wait for before handing on a frame of packet time
    /// `ts_us`, or `None` when the frame is due. A wait is at least [`MIN_PAUSE`] long.
    pub fn wait_until(&mut self, ts_us: u64) -> Option<Duration> {
        let deadline = self.deadline(ts_us);
        let now = self.clock.now();
        (deadline > now).then(|| deadline.max(now.saturating_add(MIN_PAUSE)))
    }

    /// Sleeps until the clock reads `until`, in steps of at most [`STOP_POLL`]. Returns
    /// false as soon as `stop` is set, true when `until` was reached.
    pub fn pause(&mut self, until: Duration, stop: &AtomicBool) -> bool {
        self.pauses += 1;
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = self.clock.now();
            if now >= until {
                return true;
            }
            self.clock.sleep((until - now).min(STOP_POLL));
        }
    }

    /// Returns the clock time since the first frame, zero before it.
    pub fn elapsed(&self) -> Duration {
        self.start.map_or(Duration::ZERO, |start| self.clock.now().saturating_sub(start.at))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    /// A clock that advances only by `sleep` and `advance`, and records every sleep.
    #[derive(Default)]
    struct FakeClock {
        now: Cell<Duration>,
        sleeps: RefCell<Vec<Duration>>,
    }

    impl FakeClock {
        fn advance(&self, duration: Duration) {
            self.now.set(self.now.get() + duration);
        }
    }

    impl Clock for &FakeClock {
        fn now(&self) -> Duration {
            self.now.get()
        }

        fn sleep(&self, duration: Duration) {
            self.sleeps.borrow_mut().push(duration);
            self.advance(duration);
        }
    }

    fn ms(milliseconds: u64) -> Duration {
        Duration::from_millis(milliseconds)
    }

    const T0: u64 = 1_374_937_807_633_104;

    #[test]
    fn speed_zero_is_unpaced() {
        let clock = FakeClock::default();
        assert!(Pacer::new(0.0, &clock).is_none());
    }

    #[test]
    fn invalid_speeds_rejected() {
        for speed in [-1.0, -0.0001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e6 + 1.0, 1e9] {
            assert!(!is_valid_speed(speed), "{speed} accepted");
        }
        for speed in [0.0, 0.01, 1.0, 10.0, 1e6] {
            assert!(is_valid_speed(speed), "{speed} rejected");
        }
    }

    #[test]
    fn first_frame_due_at_once() {
        let clock = FakeClock::default();
        clock.advance(ms(500));
        let mut pacer = Pacer::new(1.0, &clock).unwrap();
        assert_eq!(pacer.wait_until(T0), None);
        assert_eq!(pacer.deadline(T0), ms(500));
    }

    #[test]
    fn deadlines_scale_with_speed() {
        // (packet-time offset in µs, speed, expected delay after the first frame in ns)
        let cases = [
            (1_000_000, 1.0, 1_000_000_000),
            (1_000_000, 10.0, 100_000_000),
            (54_847, 200.0, 274_235),
            (590_936_128, 200.0, 2_954_680_640),
            (10_000, 0.01, 1_000_000_000),
            // 1 µs at speed 3 is 333.33 ns, rounded up.
            (1, 3.0, 334),
        ];
        for (offset_us, speed, delay_ns) in cases {
            let clock = FakeClock::default();
            let mut pacer = Pacer::new(speed, &clock).unwrap();
            pacer.deadline(T0);
            let deadline = pacer.deadline(T0 + offset_us);
            assert_eq!(deadline, Duration::from_nanos(delay_ns), "offset {offset_us} µs at speed {speed}");
        }
    }

    #[test]
    fn earlier_packet_time_due_at_once() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(1.0, &clock).unwrap();
        pacer.deadline(T0);
        clock.advance(ms(10));
        assert_eq!(pacer.wait_until(T0 - 5_000_000), None);
    }

    #[test]
    fn short_wait_rounded_to_min_pause() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(1.0, &clock).unwrap();
        pacer.wait_until(T0);
        // Due 200 µs after the start: the wait is raised to 1 ms.
        assert_eq!(pacer.wait_until(T0 + 200), Some(MIN_PAUSE));
        // Due 3 ms after the start: the wait ends at the deadline.
        assert_eq!(pacer.wait_until(T0 + 3_000), Some(ms(3)));
    }

    #[test]
    fn frames_within_pause_need_no_wait() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(1.0, &clock).unwrap();
        pacer.wait_until(T0);
        let until = pacer.wait_until(T0 + 200).unwrap();
        assert!(pacer.pause(until, &AtomicBool::new(false)));
        assert_eq!(pacer.wait_until(T0 + 900), None, "due 900 µs after the start, the clock reads 1 ms");
        assert_eq!(pacer.wait_until(T0 + 1_000), None, "due exactly now");
        assert_eq!(pacer.pauses, 1);
    }

    #[test]
    fn late_frames_do_not_shift_deadlines() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(1.0, &clock).unwrap();
        pacer.wait_until(T0);
        // The capture fell 5 s behind, e.g. waiting for a free batch.
        clock.advance(ms(5_000));
        assert_eq!(pacer.wait_until(T0 + 2_000_000), None);
        assert_eq!(pacer.wait_until(T0 + 6_000_000), Some(ms(6_000)));
    }

    #[test]
    fn pause_sleeps_in_stop_poll_steps() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(1.0, &clock).unwrap();
        pacer.wait_until(T0);
        let until = pacer.wait_until(T0 + 120_000).unwrap();
        assert!(pacer.pause(until, &AtomicBool::new(false)));
        assert_eq!(*clock.sleeps.borrow(), vec![ms(50), ms(50), ms(20)]);
        assert_eq!(clock.now.get(), ms(120));
        assert_eq!(pacer.elapsed(), ms(120));
    }

    #[test]
    fn pause_ends_on_stop() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(0.01, &clock).unwrap();
        pacer.wait_until(T0);
        let until = pacer.wait_until(T0 + 60_000_000).unwrap();
        assert_eq!(until, ms(6_000_000), "60 s of packet time at speed 0.01");
        assert!(!pacer.pause(until, &AtomicBool::new(true)));
        assert!(clock.sleeps.borrow().is_empty(), "no sleep after a stop request");
    }

    #[test]
    fn tiny_speed_saturates() {
        let clock = FakeClock::default();
        let mut pacer = Pacer::new(1e-300, &clock).unwrap();
        pacer.deadline(T0);
        assert_eq!(pacer.deadline(T0 + 1), Duration::MAX);
    }

    #[test]
    fn elapsed_zero_before_first_frame() {
        let clock = FakeClock::default();
        clock.advance(ms(7));
        let pacer = Pacer::new(1.0, &clock).unwrap();
        assert_eq!(pacer.elapsed(), Duration::ZERO);
    }
}
