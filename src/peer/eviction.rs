//! Which open connection to drop when the connection limit is reached and a new one wants in.
//!
//! Only a connection that exchanged no block data in either direction for [`IDLE_EVICT`]
//! (counted from its start if it never did) may be dropped: one that is downloading or
//! uploading is never touched, whatever else it is. Keep-alives, `interested` and the like
//! are not data, so a peer that only says it is there cannot hold a slot against a newcomer.
//! Of the droppable ones goes first a peer that snubs us (our requests unanswered), then one
//! that is not interested in us, then the one idle longest. When none is droppable, the
//! newcomer is refused.

use std::time::Duration;

/// How long a connection must have exchanged no block data to be dropped for a newcomer.
pub const IDLE_EVICT: Duration = Duration::from_secs(30);

/// What the choice knows of one open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The caller's key for the connection.
    pub key: usize,
    /// Time since the last block went either way (since the connection started if none did).
    pub idle_for: Duration,
    /// The peer told us it is interested.
    pub interested: bool,
    /// The peer leaves our requests unanswered.
    pub snubbed: bool,
}

/// The connection to drop to make room for a new one, or `None`: refuse the newcomer.
pub fn choose(open: &[Candidate]) -> Option<usize> {
    open.iter()
        .filter(|c| c.idle_for >= IDLE_EVICT)
        .min_by_key(|c| (!c.snubbed, c.interested, std::cmp::Reverse(c.idle_for)))
        .map(|c| c.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(key: usize, idle_secs: u64, interested: bool, snubbed: bool) -> Candidate {
        Candidate {
            key,
            idle_for: Duration::from_secs(idle_secs),
            interested,
            snubbed,
        }
    }

    #[test]
    fn active_connections_are_never_dropped() {
        assert_eq!(choose(&[]), None);
        // Recently exchanging data, whatever their interest or snubbing: the newcomer waits.
        let busy = [
            candidate(0, 0, true, false),
            candidate(1, 29, false, false),
            candidate(2, 5, false, true),
        ];
        assert_eq!(choose(&busy), None);
    }

    #[test]
    fn an_idle_connection_goes_even_if_it_claims_interest() {
        // Keep-alives and `interested` alone leave a connection idle.
        let open = [
            candidate(0, 2, true, false),
            candidate(1, 31, true, false),
            candidate(2, 10, false, false),
        ];
        assert_eq!(choose(&open), Some(1));
    }

    #[test]
    fn snubbing_then_uninterested_then_the_longest_idle_goes_first() {
        let open = [
            candidate(0, 300, true, false),
            candidate(1, 40, false, false),
            candidate(2, 35, true, true),
            candidate(3, 1, true, true),
        ];
        assert_eq!(choose(&open), Some(2), "snubbing and idle");
        assert_eq!(choose(&open[..2]), Some(1), "not interested");
        let open = [
            candidate(0, 40, true, false),
            candidate(1, 300, true, false),
            candidate(2, 60, true, false),
        ];
        assert_eq!(choose(&open), Some(1), "idle longest");
    }
}
