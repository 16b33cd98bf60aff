//! Bytes per second over the last few seconds, from a growing byte counter sampled now and
//! then: what the session shows as a torrent's download and upload rates.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back a rate looks.
pub const WINDOW: Duration = Duration::from_secs(5);

/// Samples of one counter over the last [`WINDOW`].
#[derive(Debug, Default, Clone)]
pub struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// Records the counter's value `total` at `now` (samples come in time order).
    pub fn record(&mut self, now: Instant, total: u64) {
        self.samples.push_back((now, total));
        // Keep one sample at or before the window's start, so the rate spans all of it.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= WINDOW {
            self.samples.pop_front();
        }
    }

    /// Bytes per second between the oldest and newest sample; 0 before two samples, or
    /// when the counter went back (a restarted torrent).
    pub fn rate(&self) -> u64 {
        let (Some(&(t0, b0)), Some(&(t1, b1))) = (self.samples.front(), self.samples.back()) else {
            return 0;
        };
        let secs = t1.duration_since(t0).as_secs_f64();
        if secs <= 0.0 || b1 < b0 {
            return 0;
        }
        ((b1 - b0) as f64 / secs) as u64
    }

    /// Forgets every sample (the counter starts again).
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_counter_gives_its_rate_and_old_samples_leave_the_window() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        assert_eq!(meter.rate(), 0);
        meter.record(start, 0);
        assert_eq!(meter.rate(), 0);
        for s in 1..=20u64 {
            meter.record(start + Duration::from_secs(s), s * 1000);
        }
        assert_eq!(meter.rate(), 1000);
        assert!(meter.samples.len() <= 7, "{}", meter.samples.len());
        // A stall shows once the window has passed it.
        for s in 21..=30u64 {
            meter.record(start + Duration::from_secs(s), 20_000);
        }
        assert_eq!(meter.rate(), 0);
    }

    #[test]
    fn a_burst_counts_over_the_whole_window_and_a_reset_reads_zero() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        meter.record(start, 0);
        meter.record(start + Duration::from_secs(4), 0);
        meter.record(start + Duration::from_secs(5), 10_000);
        assert_eq!(meter.rate(), 2000);
        meter.record(start + Duration::from_secs(6), 5);
        assert_eq!(meter.rate(), 0);
        meter.clear();
        assert_eq!(meter.rate(), 0);
    }
}
