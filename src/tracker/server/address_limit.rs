//! How many announces one address may make per interval: a fixed window per address, so a
//! single host cannot fill the registry with made-up torrents or peers faster than the caps
//! and expiry clear them. IPv6 addresses count per /64, the block one host usually holds.
//!
//! Pure and thread-safe; time is passed in. The table is sharded like the swarm registry and
//! bounded: windows older than one interval are swept, and at [`MAX_TRACKED`] addresses new
//! ones are not tracked (they are let through; the swarm caps still bound the registry).

use crate::lock::lock;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked at once (about 48 bytes each: 12 MiB at most).
pub const MAX_TRACKED: usize = 256 * 1024;
const SHARDS: usize = 16;

/// An address's window: when it began and how many announces it has seen.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    count: u32,
}

/// Per-address announce budgets.
pub struct AddressLimit {
    /// Announces allowed per address per window; 0 means no limit.
    per_window: u32,
    window: Duration,
    shards: Vec<Mutex<HashMap<u128, Window>>>,
    hasher: RandomState,
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => (u128::from(v6) >> 64) | (1 << 127),
    }
}

impl AddressLimit {
    /// A limit of `per_window` announces per address each `window` (0: unlimited).
    pub fn new(per_window: u32, window: Duration) -> AddressLimit {
        AddressLimit {
            per_window,
            window,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Counts an announce from `ip`; `false` when its budget for this window is spent.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_window == 0 {
            return true;
        }
        let key = key(ip);
        let mut shard = lock(&self.shards[self.hasher.hash_one(key) as usize % SHARDS]);
        let full = shard.len() >= MAX_TRACKED / SHARDS;
        let window = match shard.get_mut(&key) {
            Some(window) => window,
            None if full => return true,
            None => shard.entry(key).or_insert(Window {
                start: now,
                count: 0,
            }),
        };
        if now.saturating_duration_since(window.start) >= self.window {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        if window.count >= self.per_window {
            return false;
        }
        window.count += 1;
        true
    }

    /// Forgets windows that have ended. Returns how many addresses are still tracked.
    pub fn sweep(&self, now: Instant) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = lock(shard);
                shard.retain(|_, w| now.saturating_duration_since(w.start) < self.window);
                if shard.capacity() > 4 * shard.len() + 16 {
                    shard.shrink_to_fit();
                }
                shard.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_per_address_resets_each_window() {
        let limit = AddressLimit::new(3, Duration::from_secs(10));
        let now = Instant::now();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        assert!((0..3).all(|_| limit.allow(a, now)));
        assert!(!limit.allow(a, now));
        assert!(limit.allow(b, now), "another address has its own budget");
        assert!(limit.allow(a, now + Duration::from_secs(10)));
        assert_eq!(limit.sweep(now + Duration::from_secs(11)), 1);
        assert_eq!(limit.sweep(now + Duration::from_secs(30)), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_zero_means_unlimited() {
        let limit = AddressLimit::new(1, Duration::from_secs(10));
        let now = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(limit.allow(one, now));
        assert!(!limit.allow(same_64, now));
        assert!(limit.allow(mapped, now));
        assert!(
            !limit.allow(IpAddr::from([10, 0, 0, 1]), now),
            "mapped is the v4 address"
        );
        let open = AddressLimit::new(0, Duration::from_secs(10));
        assert!((0..1000).all(|_| open.allow(one, now)));
    }
}
