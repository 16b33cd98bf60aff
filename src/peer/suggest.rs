//! BEP 6 `suggest`, used so that a seeder's upload goes to pieces it has not sent yet.
//!
//! When the seeder is the bottleneck, every piece should leave it once before any leaves it
//! twice. Rarest first alone does not do that: to each leecher every piece only the seeder
//! has is equally rare, including the ones the seeder is sending to another leecher right now
//! (nobody has announced them yet), so leechers picking at random among them often ask for
//! the same piece. So a seeder *deals* pieces: the [`Dealer`] (one per torrent) hands each
//! unchoked peer [`AHEAD`] pieces it has sent to nobody, as `suggest` messages, and another one
//! each time the peer starts on a piece; a piece counts as sent once dealt or requested. On
//! the other side, [`Suggestions`] keeps what a peer suggested to us, and the
//! [`picker`](crate::peer::picker) prefers a suggested piece among pieces of equal rarity, so
//! a suggestion never overrides rarest first.

use crate::lock::lock;
use std::sync::Mutex;

/// How many dealt pieces a peer holds at first; each piece it starts on without a deal (it
/// asks further ahead than that) raises its own number by one, up to [`KEPT`].
pub const AHEAD: usize = 8;
/// The most suggestions kept from one peer; older ones are forgotten first.
pub const KEPT: usize = 32;

/// The pieces a seeder deals out, each as seldom as it can: pieces sent (or dealt) fewest
/// times first, in an order shuffled once.
pub struct Dealer {
    state: Mutex<Deck>,
}

struct Deck {
    /// Per piece: times dealt or requested without a deal.
    counts: Vec<u32>,
    /// The pieces, shuffled; dealing walks it round and round.
    order: Vec<u32>,
    cursor: usize,
    /// Pieces counted at most this many times are dealt: the lowest count, as of the last
    /// time the cursor came round.
    level: u32,
}

impl Dealer {
    /// A dealer for a torrent of `pieces`, in a random order.
    pub fn new(pieces: usize) -> Dealer {
        Dealer::with_rng(pieces, fastrand::Rng::new())
    }

    /// [`new`](Self::new) with the order shuffled by `rng` (tests seed it).
    pub fn with_rng(pieces: usize, mut rng: fastrand::Rng) -> Dealer {
        let mut order: Vec<u32> = (0..pieces as u32).collect();
        rng.shuffle(&mut order);
        Dealer {
            state: Mutex::new(Deck {
                counts: vec![0; pieces],
                order,
                cursor: 0,
                level: 0,
            }),
        }
    }

    /// The next piece to suggest: one sent fewest times (counted as sent from now on).
    /// One lap of the order at worst, and each lap deals at least one piece.
    pub fn deal(&self) -> Option<u32> {
        let mut deck = lock(&self.state);
        let len = deck.order.len();
        for _ in 0..=len {
            let index = *deck.order.get(deck.cursor)?;
            deck.cursor += 1;
            if deck.cursor == len {
                deck.cursor = 0;
                deck.level = deck.counts.iter().copied().min().unwrap_or(0);
            }
            let level = deck.level;
            let count = &mut deck.counts[index as usize];
            if *count <= level {
                *count += 1;
                return Some(index);
            }
        }
        None
    }

    /// A peer started on `index` without it being dealt to it.
    pub fn note_sent(&self, index: u32) {
        if let Some(count) = lock(&self.state).counts.get_mut(index as usize) {
            *count += 1;
        }
    }

    /// A dealt piece the peer never started on (we choked it): it may be dealt again.
    pub fn give_back(&self, index: u32) {
        if let Some(count) = lock(&self.state).counts.get_mut(index as usize) {
            *count = count.saturating_sub(1);
        }
    }
}

/// One connection's suggestions, both ways.
pub struct Suggestions {
    /// Dealt to the peer and not started on yet.
    dealt: Vec<u32>,
    /// How many pieces to keep dealt to the peer.
    ahead: usize,
    /// Suggested to us by the peer, oldest first.
    theirs: Vec<u32>,
}

impl Default for Suggestions {
    fn default() -> Suggestions {
        Suggestions {
            dealt: Vec::new(),
            ahead: AHEAD,
            theirs: Vec::new(),
        }
    }
}

impl Suggestions {
    /// The peer started on `index` (its first block was requested): `true` if it was dealt to
    /// the peer, `false` if the dealer should count it as sent. With `dealing`, a piece not
    /// dealt means the peer ran out of suggestions: it is dealt one more from now on.
    pub fn started(&mut self, index: u32, dealing: bool) -> bool {
        let at = self.dealt.iter().position(|&i| i == index);
        let dealt = at.map(|at| self.dealt.swap_remove(at)).is_some();
        if dealing && !dealt {
            self.ahead = (self.ahead + 1).min(KEPT);
        }
        dealt
    }

    /// How many more pieces to deal to keep the peer's number dealt.
    pub fn wanted(&self) -> usize {
        self.ahead.saturating_sub(self.dealt.len())
    }

    /// Records a piece dealt to the peer.
    pub fn dealt(&mut self, index: u32) {
        self.dealt.push(index);
    }

    /// Forgets the pieces dealt to the peer (it is choked), to give back to the dealer.
    pub fn take_dealt(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.dealt)
    }

    /// The peer suggests `index`: kept, at most [`KEPT`] of them.
    pub fn on_suggest(&mut self, index: u32) {
        if self.theirs.contains(&index) {
            return;
        }
        if self.theirs.len() == KEPT {
            self.theirs.remove(0);
        }
        self.theirs.push(index);
    }

    /// The pieces the peer suggested that we have not taken yet.
    pub fn theirs(&self) -> &[u32] {
        &self.theirs
    }

    /// We took `index` (or it needs no more fetching): no longer a suggestion.
    pub fn taken(&mut self, index: u32) {
        self.theirs.retain(|&i| i != index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_is_dealt_once_before_any_twice() {
        let dealer = Dealer::with_rng(10, fastrand::Rng::with_seed(1));
        dealer.note_sent(3);
        let first: Vec<u32> = (0..9).map(|_| dealer.deal().unwrap()).collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
        // Now every piece counts once; the next lap deals each again.
        let second: Vec<u32> = (0..10).map(|_| dealer.deal().unwrap()).collect();
        let mut sorted = second.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn a_piece_given_back_is_dealt_before_the_next_lap() {
        let dealer = Dealer::with_rng(4, fastrand::Rng::with_seed(2));
        let dealt: Vec<u32> = (0..4).map(|_| dealer.deal().unwrap()).collect();
        dealer.give_back(dealt[2]);
        assert_eq!(dealer.deal(), Some(dealt[2]));
    }

    #[test]
    fn an_empty_torrent_deals_nothing() {
        assert_eq!(Dealer::new(0).deal(), None);
    }

    #[test]
    fn suggestions_are_kept_bounded_and_without_repeats() {
        let mut s = Suggestions::default();
        for i in 0..(KEPT as u32 + 5) {
            s.on_suggest(i);
            s.on_suggest(i);
        }
        assert_eq!(s.theirs().len(), KEPT);
        assert_eq!(s.theirs()[0], 5);
        s.taken(5);
        assert!(!s.theirs().contains(&5));
    }

    #[test]
    fn dealt_pieces_are_counted_until_started() {
        let mut s = Suggestions::default();
        assert_eq!(s.wanted(), AHEAD);
        s.dealt(4);
        s.dealt(7);
        assert_eq!(s.wanted(), AHEAD - 2);
        assert!(s.started(7, true));
        assert!(!s.started(9, false));
        assert_eq!(s.take_dealt(), vec![4]);
        assert_eq!(s.wanted(), AHEAD);
    }

    #[test]
    fn a_peer_that_runs_out_is_dealt_further_ahead() {
        let mut s = Suggestions::default();
        for i in 0..(KEPT as u32 * 2) {
            assert!(!s.started(i, true));
        }
        assert_eq!(s.wanted(), KEPT);
    }
}
