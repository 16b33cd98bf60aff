//! BEP 15 connection ids without state: an id is a keyed hash of the client's address and a
//! one-minute time slot, so checking one needs no table of issued ids, and a client can only
//! obtain one by receiving the connect reply at the address it claims (which keeps forged source
//! addresses from announcing or being used to reflect traffic).

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Length of a time slot. An id is accepted in the slot it was issued in and the next one, so
/// it lives between one and two minutes (BEP 15 asks trackers to accept it for two).
pub const SLOT: Duration = Duration::from_secs(60);

/// Issues and checks connection ids. The key is random per tracker process (SipHash through
/// std's [`RandomState`]), so ids cannot be predicted from outside and die with the process.
pub struct ConnectionIds {
    key: RandomState,
    start: Instant,
}

impl ConnectionIds {
    /// A fresh random key; slots are counted from `start`.
    pub fn new(start: Instant) -> ConnectionIds {
        ConnectionIds {
            key: RandomState::new(),
            start,
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / SLOT.as_secs()
    }

    fn id(&self, from: SocketAddr, slot: u64) -> u64 {
        // Only address and port: flow labels and scope ids may differ between packets.
        self.key
            .hash_one((from.ip().to_canonical(), from.port(), slot))
    }

    /// The id for a client at `from` connecting at `now`.
    pub fn issue(&self, from: SocketAddr, now: Instant) -> u64 {
        self.id(from, self.slot(now))
    }

    /// Whether `id` was issued to `from` in this slot or the previous one.
    pub fn check(&self, id: u64, from: SocketAddr, now: Instant) -> bool {
        let slot = self.slot(now);
        id == self.id(from, slot) || (slot > 0 && id == self.id(from, slot - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ids_live_one_to_two_minutes() {
        let start = Instant::now();
        let ids = ConnectionIds::new(start);
        let me = addr("192.0.2.1:6881");
        let issued_at = start + SLOT * 3 + Duration::from_secs(59);
        let id = ids.issue(me, issued_at);
        assert!(ids.check(id, me, issued_at));
        // Still good through the end of the next slot, however late in its slot it was issued.
        assert!(ids.check(id, me, start + SLOT * 4));
        assert!(ids.check(id, me, start + SLOT * 5 - Duration::from_millis(1)));
        assert!(!ids.check(id, me, start + SLOT * 5));
        // An id from the future is no better.
        assert!(!ids.check(ids.issue(me, start + SLOT * 9), me, issued_at));
    }

    #[test]
    fn ids_belong_to_one_address_and_one_key() {
        let now = Instant::now();
        let ids = ConnectionIds::new(now);
        let me = addr("192.0.2.1:6881");
        let id = ids.issue(me, now);
        for other in ["192.0.2.2:6881", "192.0.2.1:6882", "[2001:db8::1]:6881"] {
            assert!(!ids.check(id, addr(other), now), "{other}");
        }
        // The same address seen through a dual-stack socket is the same client.
        assert!(ids.check(id, addr("[::ffff:192.0.2.1]:6881"), now));
        // Another tracker (another key) does not accept it, nor guessed ids.
        assert!(!ConnectionIds::new(now).check(id, me, now));
        assert!(!ids.check(id ^ 1, me, now));
        assert!(!ids.check(0, me, now));
    }
}
