//! How many block requests one connection keeps in flight: enough to cover the peer's measured
//! download rate for four round trips of the path (its shortest request-to-block wait), at least
//! 0.25 s and at most 3 s of it (libtorrent always keeps 3 s), plus the latency itself, so a
//! fast peer never waits for our next request, whatever the piece size.
//!
//! Not more than that: what we request waits in the peer's queue behind the rest, so each
//! second of queue is a second before a piece reaches us and, from us, the rest of the swarm.
//! In a swarm of 8 leechers behind 4 MB/s links, 3 s queues on each hop left the last pieces
//! two hops (about 6 s) from the leechers that lacked them, with their links half idle; with a
//! floor of 1 s, the leechers still fell 1-2 s behind their seeder (distribution 1.20-1.30x the
//! Kurose-Ross bound; 1.17-1.27x with 0.5 s, 1.14-1.16x with 0.25 s): a piece waits in one peer's queue while others
//! that have it sit idle, since a piece is fetched from one peer at a time.
//!
//! The count is what matters, not the number of pieces: a torrent of 16 KiB pieces (one block
//! each) needs as many requests in flight as one of 4 MiB pieces. A peer that is answered one
//! request at a time crawls (a libtorrent seeder answers a lone request 20–45 ms late on
//! loopback), so a connection starts at [`START`] and grows from there.

use crate::wire::BLOCK_SIZE;
use std::time::{Duration, Instant};

/// Requests in flight before the first rate sample.
pub const START: usize = 32;
/// Never fewer than this in flight (when the peer's limit allows it).
pub const MIN: usize = 16;
/// Never more than this in flight, whatever the peer allows: 8 MiB of blocks.
pub const MAX: usize = 500;
/// The request queue a peer is assumed to accept when it has not told us its own. BEP 10's
/// `reqq` (not implemented yet) is where a peer says it: pass its value to [`Window::new`]
/// instead. 250 is what older clients accept; libtorrent and Transmission take about 500 and
/// drop the excess silently, so guessing high would lose requests.
pub const DEFAULT_PEER_REQQ: usize = 250;
/// The most data kept requested ahead, in seconds of the rate (libtorrent's `request_queue_time`).
const QUEUE_TIME: Duration = Duration::from_secs(3);
/// The least data kept requested ahead, in seconds of the rate.
const QUEUE_FLOOR: Duration = Duration::from_millis(250);
/// Round trips of the path kept requested ahead, between the floor and [`QUEUE_TIME`].
const QUEUE_ROUND_TRIPS: u32 = 4;
/// A rate sample spans at least this long.
const SAMPLE: Duration = Duration::from_millis(500);

/// The in-flight target of one connection, from the blocks it received.
#[derive(Debug)]
pub struct Window {
    limit: usize,
    target: usize,
    /// Smoothed download rate in bytes per second (0 until the first sample).
    rate: f64,
    /// When the current sample started: `None` while nothing is in flight, so time spent
    /// choked or idle does not count as a slow peer.
    sample_start: Option<Instant>,
    sample_bytes: u64,
    /// The shortest wait seen between a request and its block: the path's latency, with the
    /// least queueing in it.
    latency: Option<Duration>,
}

impl Window {
    /// A window for a peer that accepts `peer_reqq` outstanding requests (see
    /// [`DEFAULT_PEER_REQQ`]); the target never exceeds it nor [`MAX`].
    pub fn new(peer_reqq: usize) -> Window {
        let limit = peer_reqq.clamp(1, MAX);
        Window {
            limit,
            target: START.min(limit),
            rate: 0.0,
            sample_start: None,
            sample_bytes: 0,
            latency: None,
        }
    }

    /// How many requests to keep in flight now.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The measured download rate, bytes per second (0 before the first sample).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Requests went out: starts a rate sample if none is running.
    pub fn on_requests(&mut self, now: Instant) {
        self.sample_start.get_or_insert(now);
    }

    /// A requested block of `bytes` arrived `waited` after it was asked for.
    pub fn on_block(&mut self, bytes: usize, waited: Duration, now: Instant) {
        self.latency = Some(self.latency.map_or(waited, |l| l.min(waited)));
        self.sample_bytes += bytes as u64;
        let start = *self.sample_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed < SAMPLE {
            return;
        }
        let sample = self.sample_bytes as f64 / elapsed.as_secs_f64();
        self.rate = if self.rate == 0.0 {
            sample
        } else {
            (self.rate + sample) / 2.0
        };
        self.sample_start = Some(now);
        self.sample_bytes = 0;
        let latency = self.latency.unwrap_or_default();
        let ahead = (latency * QUEUE_ROUND_TRIPS).clamp(QUEUE_FLOOR, QUEUE_TIME) + latency;
        let wanted = (self.rate * ahead.as_secs_f64() / BLOCK_SIZE as f64).ceil() as usize;
        self.target = wanted.max(MIN).min(self.limit);
    }

    /// Nothing is in flight (we were choked, or have nothing to ask for): the current sample
    /// ends without counting the idle time.
    pub fn on_idle(&mut self) {
        self.sample_start = None;
        self.sample_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = BLOCK_SIZE as usize;

    /// Feeds `blocks` blocks evenly over `secs` seconds from `start`; returns the end time.
    fn feed(w: &mut Window, start: Instant, blocks: usize, secs: f64) -> Instant {
        w.on_requests(start);
        let step = Duration::from_secs_f64(secs / blocks as f64);
        let mut now = start;
        for _ in 0..blocks {
            now += step;
            w.on_block(BLOCK, Duration::from_millis(5), now);
        }
        now
    }

    #[test]
    fn starts_at_the_default_and_grows_with_the_measured_rate_up_to_the_bound() {
        let mut w = Window::new(MAX);
        assert_eq!(w.target(), START);
        let t = Instant::now();
        // 4 MiB/s on a 5 ms path: 0.25 s of it is 64 blocks, plus the latency.
        let t = feed(&mut w, t, 256, 1.0);
        assert!(
            (4_000_000.0..4_400_000.0).contains(&w.rate()),
            "{}",
            w.rate()
        );
        assert!((64..=68).contains(&w.target()), "{}", w.target());
        // 100 MiB/s: far more than the bound.
        let mut now = t;
        for _ in 0..10 {
            now = feed(&mut w, now, 3200, 0.5);
        }
        assert_eq!(w.target(), MAX);
    }

    #[test]
    fn a_slow_peer_shrinks_to_the_floor_and_the_peer_limit_caps_everything() {
        let mut w = Window::new(MAX);
        let mut now = Instant::now();
        for _ in 0..10 {
            now = feed(&mut w, now, 2, 1.0);
        }
        assert_eq!(
            w.target(),
            MIN,
            "32 KiB/s needs fewer, but never below the floor"
        );
        let mut small = Window::new(3);
        assert_eq!(small.target(), 3);
        feed(&mut small, Instant::now(), 6400, 1.0);
        assert_eq!(small.target(), 3);
        assert_eq!(Window::new(10_000).limit, MAX);
    }

    #[test]
    fn idle_time_between_samples_does_not_count_against_the_rate() {
        let mut w = Window::new(MAX);
        let t = Instant::now();
        let t = feed(&mut w, t, 64, 1.0);
        let before = w.rate();
        w.on_idle();
        // Ten seconds choked, then the same rate again.
        feed(&mut w, t + Duration::from_secs(10), 64, 1.0);
        assert!(
            (w.rate() - before).abs() < before * 0.1,
            "{before} {}",
            w.rate()
        );
    }

    #[test]
    fn a_longer_path_keeps_four_round_trips_up_to_3_s_requested() {
        let at = |latency_ms: u64| {
            let mut w = Window::new(MAX);
            let mut now = Instant::now();
            w.on_requests(now);
            // 1 MiB/s: 64 blocks a second.
            for _ in 0..64 {
                now += Duration::from_secs_f64(1.0 / 64.0);
                w.on_block(BLOCK, Duration::from_millis(latency_ms), now);
            }
            w.target()
        };
        assert!((96..=100).contains(&at(300)), "1.2 s + 0.3 s: {}", at(300));
        assert!((255..=260).contains(&at(1000)), "3 s + 1 s: {}", at(1000));
    }
}
