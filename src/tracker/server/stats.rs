//! Request counters for the status page: announces and scrapes per protocol, as totals and
//! per second over the last minute. Lock-free: one ring of 60 per-second slots per counter.
//!
//! Both front ends call [`Stats::record`] once per request they answer, e.g.
//! `service.stats.record(Proto::Udp, Kind::Announce)`.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which front end answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Http,
    Udp,
}

/// What was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Announce,
    Scrape,
}

/// Seconds the per-second rates are averaged over.
const WINDOW: u64 = 60;

/// One counter: a total, and per-second counts of the last [`WINDOW`] seconds.
struct Counter {
    total: AtomicU64,
    /// Slot `s % WINDOW` holds second `s` (since start) as `(s << 32) | count`, so a stale slot
    /// is recognised and restarted without a lock.
    slots: [AtomicU64; WINDOW as usize],
}

impl Counter {
    fn new() -> Counter {
        Counter {
            total: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn add(&self, second: u64) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(second % WINDOW) as usize];
        let mut seen = slot.load(Ordering::Relaxed);
        loop {
            let next = if seen >> 32 == second {
                seen + 1
            } else {
                (second << 32) | 1
            };
            match slot.compare_exchange_weak(seen, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => seen = actual,
            }
        }
    }

    /// Requests per second over the last minute (or since start, if shorter), the current
    /// unfinished second excluded.
    fn rate(&self, second: u64) -> f64 {
        let span = second.min(WINDOW);
        if span == 0 {
            return 0.0;
        }
        let sum: u64 = self
            .slots
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|v| {
                let s = v >> 32;
                s < second && s + span >= second
            })
            .map(|v| v & 0xffff_ffff)
            .sum();
        sum as f64 / span as f64
    }
}

/// Counters of one protocol.
struct PerProto {
    announces: Counter,
    scrapes: Counter,
}

/// Every counter of the tracker, and when it started.
pub struct Stats {
    started: Instant,
    http: PerProto,
    udp: PerProto,
}

/// What the status page shows of one protocol.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProtoRates {
    pub announces: u64,
    pub scrapes: u64,
    pub announces_per_second: f64,
    pub scrapes_per_second: f64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new(Instant::now())
    }
}

impl Stats {
    /// Counters starting at `started`.
    pub fn new(started: Instant) -> Stats {
        let proto = || PerProto {
            announces: Counter::new(),
            scrapes: Counter::new(),
        };
        Stats {
            started,
            http: proto(),
            udp: proto(),
        }
    }

    /// Counts one answered request.
    pub fn record(&self, proto: Proto, kind: Kind) {
        self.record_at(proto, kind, Instant::now());
    }

    fn record_at(&self, proto: Proto, kind: Kind, now: Instant) {
        self.counter(proto, kind).add(self.second(now));
    }

    /// Time since start.
    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Totals and last-minute rates of `proto` at `now`.
    pub fn rates(&self, proto: Proto, now: Instant) -> ProtoRates {
        let second = self.second(now);
        let (a, s) = (
            self.counter(proto, Kind::Announce),
            self.counter(proto, Kind::Scrape),
        );
        ProtoRates {
            announces: a.total.load(Ordering::Relaxed),
            scrapes: s.total.load(Ordering::Relaxed),
            announces_per_second: a.rate(second),
            scrapes_per_second: s.rate(second),
        }
    }

    fn second(&self, now: Instant) -> u64 {
        self.uptime(now).as_secs()
    }

    fn counter(&self, proto: Proto, kind: Kind) -> &Counter {
        let p = match proto {
            Proto::Http => &self.http,
            Proto::Udp => &self.udp,
        };
        match kind {
            Kind::Announce => &p.announces,
            Kind::Scrape => &p.scrapes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_average_the_last_minute_per_protocol() {
        let start = Instant::now();
        let stats = Stats::new(start);
        let at = |s: u64| start + Duration::from_secs(s) + Duration::from_millis(500);
        for s in 0..120 {
            for _ in 0..10 {
                stats.record_at(Proto::Http, Kind::Announce, at(s));
            }
            stats.record_at(Proto::Udp, Kind::Scrape, at(s));
        }
        let http = stats.rates(Proto::Http, at(120));
        assert_eq!(http.announces, 1200);
        assert_eq!(http.announces_per_second, 10.0);
        assert_eq!(http.scrapes_per_second, 0.0);
        let udp = stats.rates(Proto::Udp, at(120));
        assert_eq!((udp.scrapes, udp.scrapes_per_second), (120, 1.0));
        // A quiet half minute halves the rate; a quiet minute zeroes it.
        assert_eq!(stats.rates(Proto::Http, at(150)).announces_per_second, 5.0);
        assert_eq!(stats.rates(Proto::Http, at(200)).announces_per_second, 0.0);
        // Early on, the rate is over the seconds so far.
        let young = Stats::new(start);
        for _ in 0..20 {
            young.record_at(Proto::Http, Kind::Announce, at(1));
        }
        assert_eq!(young.rates(Proto::Http, at(2)).announces_per_second, 10.0);
    }
}
