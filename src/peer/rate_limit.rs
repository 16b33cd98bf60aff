//! Rate limits: token buckets that connection threads charge for the piece bytes they send and
//! receive, per torrent and for the whole process (both are charged).
//!
//! A bucket fills at its rate up to a small burst ([`BURST`] of rate) and a charge always
//! succeeds at once, taking the bucket below zero if need be (a debt); the charger is told how
//! long to wait until the debt is paid, and waits that long *after* letting go of the lock.
//! Every connection charges before (upload) or after (download) each block and then waits, so
//! several connections sharing a bucket are served in the order they charged: none starves,
//! and the debt is at most one block per connection.
//!
//! The core ([`Bucket`]) is pure arithmetic on an instant it is given, so its tests drive it
//! with a made-up clock. [`Limiter`] wraps it in a mutex, and [`TorrentLimits`] charges a
//! torrent's own limiter and the process's together. Loopback and LAN peers are limited like
//! any other: a user's cap is a cap.

use crate::lock::lock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much unused rate a bucket saves up, as time at that rate: small, so a limit holds over
/// a few seconds as well as over minutes.
pub const BURST: Duration = Duration::from_millis(250);

/// A rate in bytes per second; 0 is unlimited. Parsed from `500k`, `2M`, `1.5M` (binary
/// units: k = 1024, M = 1024², G = 1024³).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate(pub u64);

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate(0);

    /// Parses a rate as the command line takes it: a number of bytes per second with an
    /// optional `k`, `M` or `G` (binary, any case); `0` means unlimited. The error says what
    /// is wrong, not with which text (the caller names it).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        let (number, unit) = match text.char_indices().last() {
            Some((at, c)) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_lowercase()),
            _ => (text, 'b'),
        };
        let scale: f64 = match unit {
            'b' => 1.0,
            'k' => 1024.0,
            'm' => 1024.0 * 1024.0,
            'g' => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(format!("unknown unit {unit:?} (use k, M or G)")),
        };
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| "not a rate (bytes per second, like 500k, 2M or 1.5M)".to_string())?;
        let bytes = value * scale;
        if bytes > u64::MAX as f64 / 2.0 || (bytes > 0.0 && bytes < 1.0) {
            return Err("out of range".to_string());
        }
        Ok(Rate(bytes.round() as u64))
    }

    /// Whether this is a limit at all.
    pub fn is_limited(self) -> bool {
        self.0 > 0
    }
}

/// One token bucket: pure state, no clock of its own.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    /// Bytes that may go now; negative while charges wait for the rate to catch up.
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket at `rate`.
    pub fn new(rate: Rate, now: Instant) -> Bucket {
        let mut bucket = Bucket {
            rate,
            tokens: 0.0,
            updated: now,
        };
        bucket.tokens = bucket.burst();
        bucket
    }

    fn burst(&self) -> f64 {
        self.rate.0 as f64 * BURST.as_secs_f64()
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = self.updated.max(now);
        self.tokens = (self.tokens + elapsed * self.rate.0 as f64).min(self.burst());
    }

    /// Takes `bytes` at `now`; how long the taker must wait before using them (zero when the
    /// bucket held them, or when unlimited).
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        if !self.rate.is_limited() {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.0 as f64)
        }
    }

    /// Changes the rate from `now` on; a debt is kept, saved-up bytes are cut to the new
    /// burst, and going unlimited forgives the debt.
    pub fn set_rate(&mut self, rate: Rate, now: Instant) {
        self.refill(now);
        self.rate = rate;
        self.tokens = if rate.is_limited() {
            self.tokens.min(self.burst())
        } else {
            0.0
        };
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }
}

/// A bucket shared by threads. Its mutex is held for the arithmetic only.
#[derive(Debug)]
pub struct Limiter {
    bucket: Mutex<Bucket>,
}

impl Limiter {
    /// A limiter at `rate` (0: unlimited).
    pub fn new(rate: Rate) -> Limiter {
        Limiter {
            bucket: Mutex::new(Bucket::new(rate, Instant::now())),
        }
    }

    /// Charges `bytes`; how long to wait before sending (or reading more).
    pub fn charge(&self, bytes: u64) -> Duration {
        lock(&self.bucket).take(bytes, Instant::now())
    }

    /// Changes the rate (0: unlimited) from now on.
    pub fn set_rate(&self, rate: Rate) {
        lock(&self.bucket).set_rate(rate, Instant::now());
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        lock(&self.bucket).rate()
    }
}

/// The upload and download limiters of one scope (a torrent, or the whole process).
#[derive(Debug)]
pub struct RateLimits {
    /// Piece bytes sent.
    pub upload: Limiter,
    /// Piece bytes received.
    pub download: Limiter,
}

impl RateLimits {
    /// Limits at these rates (0: unlimited).
    pub fn new(upload: Rate, download: Rate) -> RateLimits {
        RateLimits {
            upload: Limiter::new(upload),
            download: Limiter::new(download),
        }
    }

    /// No limits.
    pub fn unlimited() -> RateLimits {
        RateLimits::new(Rate::UNLIMITED, Rate::UNLIMITED)
    }
}

/// What a torrent's connections charge: the torrent's own limits and the process's.
#[derive(Debug)]
pub struct TorrentLimits {
    /// This torrent's limits (unlimited unless set, e.g. by the JSON API).
    pub own: RateLimits,
    /// The whole process's limits (`--max-upload-rate`, `--max-download-rate`).
    pub global: Arc<RateLimits>,
}

impl TorrentLimits {
    /// A torrent without limits of its own under `global`.
    pub fn new(global: Arc<RateLimits>) -> TorrentLimits {
        TorrentLimits {
            own: RateLimits::unlimited(),
            global,
        }
    }

    /// Charges `bytes` sent to both upload limiters; the longer wait.
    pub fn charge_upload(&self, bytes: u64) -> Duration {
        self.own
            .upload
            .charge(bytes)
            .max(self.global.upload.charge(bytes))
    }

    /// Charges `bytes` received to both download limiters; the longer wait.
    pub fn charge_download(&self, bytes: u64) -> Duration {
        self.own
            .download
            .charge(bytes)
            .max(self.global.download.charge(bytes))
    }

    /// The tighter of the two upload limits (0 when neither limits).
    pub fn upload_rate(&self) -> Rate {
        let rates = [self.own.upload.rate(), self.global.upload.rate()];
        rates
            .into_iter()
            .filter(|r| r.is_limited())
            .min_by_key(|r| r.0)
            .unwrap_or(Rate::UNLIMITED)
    }
}

impl Default for TorrentLimits {
    fn default() -> TorrentLimits {
        TorrentLimits::new(Arc::new(RateLimits::unlimited()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const BLOCK: u64 = 16 * KIB;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Equal but for floating-point rounding.
    fn about(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(1)
    }

    #[test]
    fn rates_parse_with_binary_units_and_bad_ones_say_why() {
        assert_eq!(Rate::parse("0"), Ok(Rate::UNLIMITED));
        assert_eq!(Rate::parse("1000"), Ok(Rate(1000)));
        assert_eq!(Rate::parse("500k"), Ok(Rate(500 * KIB)));
        assert_eq!(Rate::parse("500K"), Ok(Rate(500 * KIB)));
        assert_eq!(Rate::parse("2M"), Ok(Rate(2 * KIB * KIB)));
        assert_eq!(Rate::parse("1.5m"), Ok(Rate(3 * KIB * KIB / 2)));
        assert_eq!(Rate::parse("1G"), Ok(Rate(KIB * KIB * KIB)));
        for bad in ["", "fast", "2x", "-1k", "k", "1.2.3M", "nan", "inf", "0.1"] {
            let e = Rate::parse(bad).unwrap_err();
            assert!(
                ["unknown unit", "not a rate", "out of range"]
                    .iter()
                    .any(|why| e.contains(why)),
                "{bad:?}: {e}"
            );
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn a_full_bucket_lets_its_burst_through_then_holds_the_rate() {
        let t0 = Instant::now();
        let rate = 100 * BLOCK; // 1600 KiB/s; the burst is 25 blocks
        let mut bucket = Bucket::new(Rate(rate), t0);
        for _ in 0..25 {
            assert_eq!(bucket.take(BLOCK, t0), Duration::ZERO);
        }
        // Past the burst each block waits its own 10 ms more than the one before.
        assert!(about(bucket.take(BLOCK, t0), ms(10)));
        assert!(about(bucket.take(BLOCK, t0), ms(20)));
        // A taker that waited as told finds its bytes paid for.
        let mut bucket = Bucket::new(Rate(rate), t0);
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_secs(10) {
            now += bucket.take(BLOCK, now);
            sent += BLOCK;
        }
        let achieved = sent as f64 / (now - t0).as_secs_f64();
        let burst = rate as f64 * BURST.as_secs_f64();
        assert!((achieved - rate as f64).abs() <= (burst + BLOCK as f64) / 10.0);
    }

    #[test]
    fn an_idle_bucket_refills_up_to_its_burst_only() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(Rate(4 * BLOCK), t0); // one block of burst
        assert_eq!(bucket.take(BLOCK, t0), Duration::ZERO);
        assert!(about(bucket.take(BLOCK, t0), ms(250)));
        // The debt is paid after 250 ms, a block saved up after 500 ms.
        assert_eq!(bucket.take(BLOCK, t0 + ms(500)), Duration::ZERO);
        // An hour idle saves up one block, not an hour's worth.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.take(BLOCK, later), Duration::ZERO);
        assert!(about(bucket.take(BLOCK, later), ms(250)));
        // A clock that steps back changes nothing.
        assert!(about(bucket.take(0, t0), ms(250)));
    }

    #[test]
    fn takers_sharing_a_bucket_get_equal_shares_and_the_sum_holds_the_rate() {
        // Three connections, each sending a block whenever its last wait is over.
        let t0 = Instant::now();
        let rate = 30 * BLOCK;
        let mut bucket = Bucket::new(Rate(rate), t0);
        let mut next = [t0; 3];
        let mut sent = [0u64; 3];
        let end = t0 + Duration::from_secs(20);
        loop {
            let who = (0..3).min_by_key(|&i| next[i]).unwrap();
            let now = next[who];
            if now >= end {
                break;
            }
            next[who] = now + bucket.take(BLOCK, now);
            sent[who] += BLOCK;
        }
        let total: u64 = sent.iter().sum();
        let expected = rate as f64 * 20.0;
        assert!(
            (total as f64 - expected).abs() < expected * 0.02,
            "{sent:?}"
        );
        let (min, max) = (sent.iter().min().unwrap(), sent.iter().max().unwrap());
        // The first taker may have had the whole initial burst; apart from it, equal shares.
        let burst = (rate as f64 * BURST.as_secs_f64()) as u64;
        assert!(max - min <= burst + 2 * BLOCK, "fair shares: {sent:?}");
    }

    #[test]
    fn unlimited_never_waits_and_rate_changes_apply_from_then_on() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(Rate::UNLIMITED, t0);
        for _ in 0..1000 {
            assert_eq!(bucket.take(1 << 30, t0), Duration::ZERO);
        }
        bucket.set_rate(Rate(4 * BLOCK), t0);
        // A new limit starts empty: no burst saved up while unlimited.
        assert!(about(bucket.take(BLOCK, t0), ms(250)));
        bucket.set_rate(Rate(8 * BLOCK), t0);
        assert!(about(bucket.take(BLOCK, t0), ms(250)), "the debt is kept");
        bucket.set_rate(Rate::UNLIMITED, t0);
        assert_eq!(bucket.take(BLOCK, t0), Duration::ZERO);
        bucket.set_rate(Rate(4 * BLOCK), t0);
        assert!(
            about(bucket.take(BLOCK, t0), ms(250)),
            "going unlimited forgave the debt"
        );
    }

    #[test]
    fn a_torrent_charges_its_own_limit_and_the_global_one() {
        let global = Arc::new(RateLimits::new(Rate(8 * BLOCK), Rate::UNLIMITED));
        let a = TorrentLimits {
            own: RateLimits::new(Rate(16 * BLOCK), Rate(4 * BLOCK)),
            global: global.clone(),
        };
        let b = TorrentLimits::new(global.clone());
        assert_eq!(a.upload_rate(), Rate(8 * BLOCK), "the tighter one");
        a.own.upload.set_rate(Rate(4 * BLOCK));
        assert_eq!(a.upload_rate(), Rate(4 * BLOCK));
        assert_eq!(b.upload_rate(), Rate(8 * BLOCK));
        // The global bucket starts with its burst (2 blocks); a's own bucket was cut to its
        // new burst (1 block).
        assert!(a.charge_upload(BLOCK).is_zero());
        assert!(a.charge_upload(BLOCK) >= ms(240));
        // b has no limit of its own but shares the global bucket that a emptied.
        assert!(b.charge_upload(BLOCK) >= ms(115));
        // Download: only a is limited (a burst of one block).
        assert!(a.charge_download(BLOCK).is_zero());
        assert!(a.charge_download(BLOCK) >= ms(240));
        assert!(b.charge_download(1 << 30).is_zero());
    }
}
