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
//!
//! Suggestions alone still let a second copy out early: a peer whose dealt pieces are used up
//! (its request window wants more) takes the next piece of rarity 1, and to it a piece the
//! seeder is sending to another peer right now looks as rare as one never sent. In a swarm of
//! 8 leechers whose seeder is the bottleneck, 75 of the seeder's 331 pieces were such second
//! copies, most within 3 s of the first. So an *initial seeder* (complete when it started)
//! also [`claim`](Dealer::claim)s each piece a peer starts on: during the first lap (while
//! some piece never left), a piece another peer started less than [`FIRST_LAP_HOLD`] ago is
//! refused (BEP 6 `reject`), and the peer, told so, asks for another. The hold bounds what a
//! peer that wants only some pieces (a selective download) can be made to wait.

use crate::bitfield::Bitfield;
use crate::lock::lock;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many dealt pieces a peer holds at first; each piece it starts on without a deal (it
/// asks further ahead than that) raises its own number by one, up to [`KEPT`].
pub const AHEAD: usize = 8;
/// The most suggestions kept from one peer; older ones are forgotten first.
pub const KEPT: usize = 32;

/// During an initial seeder's first lap, how long a piece one peer started is refused to the
/// others (see the module doc).
pub const FIRST_LAP_HOLD: Duration = Duration::from_secs(15);

/// The pieces a seeder deals out, each as seldom as it can: pieces sent (or dealt) fewest
/// times first, in an order shuffled once.
pub struct Dealer {
    state: Mutex<Deck>,
    /// Started as a seeder: the first lap's rule applies ([`claim`](Self::claim)).
    initial_seed: bool,
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
    /// Per piece: when a peer first started on it (`None`: no peer has yet).
    started: Vec<Option<Instant>>,
    /// Pieces no peer has started on: the first lap lasts while there are any.
    unstarted: usize,
}

impl Dealer {
    /// A dealer for a torrent of `pieces`, in a random order; an `initial_seed` (complete when
    /// it started) refuses second copies during its first lap ([`claim`](Self::claim)).
    pub fn new(pieces: usize, initial_seed: bool) -> Dealer {
        Dealer::with_rng(pieces, initial_seed, fastrand::Rng::new())
    }

    /// [`new`](Self::new) with the order shuffled by `rng` (tests seed it).
    pub fn with_rng(pieces: usize, initial_seed: bool, mut rng: fastrand::Rng) -> Dealer {
        let mut order: Vec<u32> = (0..pieces as u32).collect();
        rng.shuffle(&mut order);
        Dealer {
            state: Mutex::new(Deck {
                counts: vec![0; pieces],
                order,
                cursor: 0,
                level: 0,
                started: vec![None; pieces],
                unstarted: pieces,
            }),
            initial_seed,
        }
    }

    /// A peer asks, at `now`, for a piece it has not started on with us: whether to serve
    /// it. An initial seeder refuses it during its first lap if another peer started on it
    /// less than [`FIRST_LAP_HOLD`] ago; otherwise it is served (and, if no peer had started
    /// on it, it is now).
    pub fn claim(&self, index: u32, now: Instant) -> bool {
        let mut deck = lock(&self.state);
        let lap_over = deck.unstarted == 0;
        let Some(started) = deck.started.get_mut(index as usize) else {
            return true;
        };
        match *started {
            None => {
                *started = Some(now);
                deck.unstarted -= 1;
                true
            }
            Some(at) => {
                !self.initial_seed
                    || lap_over
                    || now.saturating_duration_since(at) >= FIRST_LAP_HOLD
            }
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

/// One connection's suggestions, both ways, and the pieces the peer started on with us.
pub struct Suggestions {
    /// Dealt to the peer and not started on yet.
    dealt: Vec<u32>,
    /// How many pieces to keep dealt to the peer.
    ahead: usize,
    /// Suggested to us by the peer, oldest first.
    theirs: Vec<u32>,
    /// The pieces the peer started on with us (the dealer let us serve them).
    serving: Bitfield,
}

impl Suggestions {
    /// A connection's, on a torrent of `pieces`.
    pub fn new(pieces: usize) -> Suggestions {
        Suggestions {
            dealt: Vec::new(),
            ahead: AHEAD,
            theirs: Vec::new(),
            serving: Bitfield::new(pieces),
        }
    }

    /// Whether the peer started on `index` with us already.
    pub fn serving(&self, index: u32) -> bool {
        self.serving.get(index as usize)
    }

    /// The peer starts on `index` with us.
    pub fn serve(&mut self, index: u32) {
        self.serving.set(index as usize);
    }

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
        let dealer = Dealer::with_rng(10, true, fastrand::Rng::with_seed(1));
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
        let dealer = Dealer::with_rng(4, true, fastrand::Rng::with_seed(2));
        let dealt: Vec<u32> = (0..4).map(|_| dealer.deal().unwrap()).collect();
        dealer.give_back(dealt[2]);
        assert_eq!(dealer.deal(), Some(dealt[2]));
    }

    #[test]
    fn an_empty_torrent_deals_nothing() {
        assert_eq!(Dealer::new(0, true).deal(), None);
    }

    #[test]
    fn an_initial_seeder_sends_no_second_copy_during_its_first_lap_for_a_while() {
        let t0 = Instant::now();
        let dealer = Dealer::with_rng(3, true, fastrand::Rng::with_seed(3));
        assert!(dealer.claim(0, t0), "nobody started piece 0");
        assert!(!dealer.claim(0, t0), "another peer started it just now");
        let later = t0 + FIRST_LAP_HOLD;
        assert!(dealer.claim(0, later), "the hold is over");
        assert!(dealer.claim(1, t0) && !dealer.claim(1, t0 + Duration::from_secs(1)));
        // Piece 2 starts: every piece left once, the lap is over and anything goes.
        assert!(dealer.claim(2, t0));
        assert!(dealer.claim(1, t0) && dealer.claim(2, t0));
        assert!(
            dealer.claim(7, t0),
            "out of range: not the dealer's to refuse"
        );
    }

    #[test]
    fn a_seeder_that_was_a_leecher_never_refuses() {
        let t0 = Instant::now();
        let dealer = Dealer::with_rng(3, false, fastrand::Rng::with_seed(4));
        assert!(dealer.claim(0, t0) && dealer.claim(0, t0));
    }

    #[test]
    fn suggestions_are_kept_bounded_and_without_repeats() {
        let mut s = Suggestions::new(8);
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
        let mut s = Suggestions::new(8);
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
        let mut s = Suggestions::new(8);
        for i in 0..(KEPT as u32 * 2) {
            assert!(!s.started(i, true));
        }
        assert_eq!(s.wanted(), KEPT);
    }
}
