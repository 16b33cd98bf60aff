//! When a peer snubs us: it leaves our requests unanswered for [`SNUB_TIMEOUT`] (libtorrent's
//! `request_timeout`), counted from the last requested block it sent while requests were
//! outstanding, or from the first request after a quiet spell.
//!
//! A snubbed peer's pieces go back to the picker for other peers (the connection cancels its
//! requests), it may then hold only [`SNUBBED_IN_FLIGHT`] request, the choker gives it no
//! regular upload slot for what it sent before, and eviction drops it first. A requested block
//! from it ends the snub. One that stays snubbed and still leaves its one request unanswered
//! for another [`SNUB_TIMEOUT`] is dropped: a connection that only looks alive is not worth
//! the slot.
//!
//! The time-out can be shortened for tests with the environment variable
//! `PIECEMEAL_SNUB_TIMEOUT` (seconds, fractions allowed).

use std::time::{Duration, Instant};

/// How long requests may go unanswered before the peer counts as snubbing us.
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests a snubbed peer may hold.
pub const SNUBBED_IN_FLIGHT: usize = 1;
const ENV: &str = "PIECEMEAL_SNUB_TIMEOUT";

/// [`SNUB_TIMEOUT`], or what `PIECEMEAL_SNUB_TIMEOUT` says (read once per process).
pub fn timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        let Ok(value) = std::env::var(ENV) else {
            return SNUB_TIMEOUT;
        };
        match value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
        {
            Some(t) if !t.is_zero() => t,
            _ => {
                log::warn!("{ENV}={value:?} is not a number of seconds; using {SNUB_TIMEOUT:?}");
                SNUB_TIMEOUT
            }
        }
    })
}

/// What a check of a connection's requests found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing new.
    Unchanged,
    /// The peer has just become snubbed: give its pieces back.
    Snubbed,
    /// Snubbed, and its one request unanswered for another time-out: drop the connection.
    Hopeless,
}

/// The snub clock of one connection.
#[derive(Debug)]
pub struct Snub {
    timeout: Duration,
    /// Since when requests are outstanding with no requested block received (None while none
    /// are outstanding).
    waiting_since: Option<Instant>,
    /// Since when the peer is snubbed.
    snubbed_since: Option<Instant>,
}

impl Snub {
    /// A clock that snubs after `timeout` (see [`timeout`]).
    pub fn new(timeout: Duration) -> Snub {
        Snub {
            timeout,
            waiting_since: None,
            snubbed_since: None,
        }
    }

    /// Requests went out at `now`: the clock starts if it was not running.
    pub fn on_requests(&mut self, now: Instant) {
        self.waiting_since.get_or_insert(now);
    }

    /// A requested block arrived at `now`, and `in_flight` requests are still outstanding.
    /// Ends a snub; whether there was one.
    pub fn on_block(&mut self, in_flight: usize, now: Instant) -> bool {
        self.waiting_since = (in_flight > 0).then_some(now);
        self.snubbed_since.take().is_some()
    }

    /// Nothing is outstanding any more (the peer choked us, or rejected the rest).
    pub fn on_nothing_in_flight(&mut self) {
        self.waiting_since = None;
    }

    /// We held off reading for `wait` (a download limit): the peer is not to blame for it.
    pub fn excuse(&mut self, wait: Duration) {
        self.waiting_since = self.waiting_since.map(|t| t + wait);
    }

    /// Whether the peer is snubbed.
    pub fn is_snubbed(&self) -> bool {
        self.snubbed_since.is_some()
    }

    /// Looks at the clock at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let Some(since) = self.waiting_since else {
            return Verdict::Unchanged;
        };
        let waited = now.saturating_duration_since(since);
        match self.snubbed_since {
            None if waited >= self.timeout => {
                self.snubbed_since = Some(now);
                Verdict::Snubbed
            }
            Some(snubbed) if now.saturating_duration_since(snubbed) >= self.timeout => {
                Verdict::Hopeless
            }
            _ => Verdict::Unchanged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(60);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn unanswered_requests_snub_after_the_timeout_and_a_block_ends_it() {
        let t0 = Instant::now();
        let mut snub = Snub::new(T);
        assert_eq!(
            snub.check(t0 + secs(600)),
            Verdict::Unchanged,
            "nothing asked"
        );
        snub.on_requests(t0);
        snub.on_requests(t0 + secs(30)); // more requests do not restart the clock
        assert_eq!(snub.check(t0 + secs(59)), Verdict::Unchanged);
        assert_eq!(snub.check(t0 + secs(60)), Verdict::Snubbed);
        assert!(snub.is_snubbed());
        assert_eq!(snub.check(t0 + secs(61)), Verdict::Unchanged, "said once");
        assert!(snub.on_block(3, t0 + secs(70)), "a block ends the snub");
        assert!(!snub.is_snubbed());
        assert_eq!(snub.check(t0 + secs(129)), Verdict::Unchanged);
        assert_eq!(
            snub.check(t0 + secs(130)),
            Verdict::Snubbed,
            "from the last block"
        );
    }

    #[test]
    fn answered_or_withdrawn_requests_stop_the_clock() {
        let t0 = Instant::now();
        let mut snub = Snub::new(T);
        snub.on_requests(t0);
        assert!(!snub.on_block(0, t0 + secs(50)), "no snub to end");
        assert_eq!(
            snub.check(t0 + secs(500)),
            Verdict::Unchanged,
            "all answered"
        );
        snub.on_requests(t0 + secs(500));
        snub.on_nothing_in_flight();
        assert_eq!(snub.check(t0 + secs(1000)), Verdict::Unchanged, "choked");
    }

    #[test]
    fn a_download_limits_wait_is_excused() {
        let t0 = Instant::now();
        let mut snub = Snub::new(T);
        snub.on_requests(t0);
        snub.excuse(secs(20));
        assert_eq!(snub.check(t0 + secs(79)), Verdict::Unchanged);
        assert_eq!(snub.check(t0 + secs(80)), Verdict::Snubbed);
    }

    #[test]
    fn a_peer_still_snubbing_a_timeout_later_is_hopeless() {
        let t0 = Instant::now();
        let mut snub = Snub::new(T);
        snub.on_requests(t0);
        assert_eq!(snub.check(t0 + secs(60)), Verdict::Snubbed);
        // Its requests were cancelled; one new request goes out and is not answered either.
        snub.on_nothing_in_flight();
        snub.on_requests(t0 + secs(61));
        assert_eq!(snub.check(t0 + secs(119)), Verdict::Unchanged);
        assert_eq!(snub.check(t0 + secs(120)), Verdict::Hopeless);
        // Snubbed but asked nothing (it has nothing we want): kept.
        let mut idle = Snub::new(T);
        idle.on_requests(t0);
        assert_eq!(idle.check(t0 + secs(60)), Verdict::Snubbed);
        idle.on_nothing_in_flight();
        assert_eq!(idle.check(t0 + secs(600)), Verdict::Unchanged);
    }
}
