//! The maintenance thread of a node: it bootstraps (a lookup of our own id, again while the
//! table is small), pings questionable nodes, refreshes one idle bucket at a time, rotates the
//! token secret and expires announces.

use crate::dht::krpc::Query;
use crate::dht::node::{LOOKUP_TIME, Shared, TICK};
use crate::dht::routing_table::K;
use crate::lock::lock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the maintenance thread looks at the table.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);
/// How soon a table with fewer than K nodes bootstraps again.
const REBOOTSTRAP: Duration = Duration::from_secs(15);

impl Shared {
    pub(super) fn maintain_loop(&self) {
        let mut next_bootstrap = Instant::now();
        let mut next_upkeep = Instant::now() + MAINTAIN_EVERY;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next_bootstrap {
                // A lookup of our own id fills the buckets near us (BEP 5's bootstrap).
                self.lookup(self.own, false, now + LOOKUP_TIME);
                let small = lock(&self.state).table.len() < K;
                next_bootstrap = Instant::now()
                    + if small {
                        REBOOTSTRAP
                    } else {
                        MAINTAIN_EVERY * 15
                    };
            }
            if now >= next_upkeep {
                next_upkeep = now + MAINTAIN_EVERY;
                self.upkeep(now);
            }
            std::thread::sleep(TICK);
        }
    }

    /// Pings questionable nodes, refreshes one idle bucket, rotates tokens, expires announces.
    fn upkeep(&self, now: Instant) {
        let (questionable, stale) = {
            let mut state = lock(&self.state);
            state.tokens.rotate_if_due(now);
            state.store.expire(now);
            let stale = state.table.stale_depths(now).first().copied();
            if let Some(depth) = stale {
                state.table.touch(depth, now);
            }
            (state.table.questionable(now), stale)
        };
        for node in questionable.into_iter().take(2 * K) {
            self.query(node.addr, Query::Ping, None);
        }
        if let Some(depth) = stale {
            self.lookup(self.own.random_at_depth(depth), false, now + LOOKUP_TIME);
        }
    }
}
