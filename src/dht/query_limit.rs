//! The rate limit on incoming queries: a token bucket per source IP, in a table of bounded
//! size. A node answering everyone as fast as they ask could be made to flood a third party
//! (answers are larger than queries) or to spend its CPU on one sender.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Queries per second one IP may sustain. Generous, because on loopback (and behind a NAT)
/// many honest nodes share one address; libtorrent allows 5.
pub const PER_SECOND: f64 = 200.0;
/// Queries one IP may send in a burst.
const BURST: f64 = 400.0;
/// Most IPs tracked; beyond it, idle buckets are forgotten and, failing that, new IPs refused.
const MAX_IPS: usize = 4096;

/// Token buckets by IP.
#[derive(Debug, Default)]
pub struct QueryLimit {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl QueryLimit {
    /// Whether a query from `ip` may be answered now (and counts it if so).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_IPS {
            // A full bucket has been idle long enough to forget.
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * PER_SECOND < BURST
            });
            if self.buckets.len() >= MAX_IPS {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * PER_SECOND).min(BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_ip_gets_its_burst_then_its_rate() {
        let now = Instant::now();
        let mut l = QueryLimit::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let allowed = (0..1000).filter(|_| l.allow(ip, now)).count();
        assert_eq!(allowed, BURST as usize);
        assert!(
            l.allow("10.0.0.2".parse().unwrap(), now),
            "others unaffected"
        );
        let later = now + Duration::from_millis(100);
        let allowed = (0..1000).filter(|_| l.allow(ip, later)).count();
        assert_eq!(allowed, (PER_SECOND / 10.0) as usize);
    }

    #[test]
    fn the_table_is_bounded() {
        let now = Instant::now();
        let mut l = QueryLimit::default();
        for i in 0..(MAX_IPS as u32 + 10) {
            l.allow(IpAddr::from(std::net::Ipv4Addr::from(i)), now);
        }
        assert_eq!(l.buckets.len(), MAX_IPS);
        // Once the old buckets refilled, they make room for newcomers.
        let later = now + Duration::from_secs(10);
        assert!(l.allow("1.2.3.4".parse().unwrap(), later));
    }
}
