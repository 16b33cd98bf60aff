//! Which piece a download thread fetches next, and which pieces the torrent has.
//!
//! # The work queue and the order of work
//!
//! Missing pieces that no connection holds wait in a crossbeam channel, the work queue, and a
//! download thread gets its work there ([`Picker::take`]). What a thread takes off it is the
//! policy:
//!
//! - **Rarest first.** Of the queued pieces the thread's peer has, the one the fewest connected
//!   peers have ([`Availability`], kept by the connections: see below). A piece that only a
//!   seeder has counts 1, so a leecher asks a seeder for pieces no other peer it knows has, and
//!   when the seeder is the bottleneck each piece tends to leave it once before any leaves it
//!   twice.
//! - **Random among equals.** The queue starts in random order (a different one in every
//!   process) and a tie goes to a piece the peer suggested (BEP 6, [`Picker::take_preferring`];
//!   a seeder suggests pieces it has sent to nobody, see [`suggest`](crate::peer::suggest)),
//!   then to the piece nearest its head, so peers of one swarm pick different pieces of the same
//!   rarity.
//! - **Random first.** Until [`RANDOM_FIRST`] pieces are verified, a thread takes the first queued
//!   piece its peer has, whatever its rarity: a new peer gets something to trade quickly instead
//!   of waiting on a rare piece from its only (maybe slow) source.
//! - **Endgame.** Once the queue is empty, a piece in flight elsewhere may be fetched a second
//!   time (see below), by a connection that holds no piece: an idle one, one piece at a time.
//!
//! How: the queue is bounded at the piece count (each piece is queued at most once, so a send
//! never blocks nor allocates) and is only read and written under the picker lock, so one `take`
//! sees all of it. `take` pops until it has a piece no other can beat, or has gone once round
//! the queue, and queues again the pieces it passed over, in the order it found them. No piece
//! can beat one whose rarity is the lowest on the queue (which [`Availability`] keeps track of)
//! or 1 (the peer's own copy), nor, in the random phase, any piece. That is one pass over the
//! queue at worst (O(pieces)), and a few pops when the peer has many of the rarest pieces (a
//! seeder, or a peer well ahead); no allocation either way: the passed-over indices wait in a
//! buffer kept in the state.
//!
//! # Availability
//!
//! A connection counts what its peer has: [`Picker::replace_bitfield`] when a `bitfield`
//! arrives (the old record out, the new one in), [`Picker::add_have`] for a `have` that set a
//! new bit in its record, and [`Picker::remove_peer`] with its record when it ends. The
//! connection's record is the receipt, so it takes away exactly what it added.
//!
//! # Piece states
//!
//! ```text
//!              take                 last block written         finish (hash matched)
//!   missing ──────────────▶ in flight ──────────────▶ hashing ──────────────────▶ verified
//!   (queued) ◀──────────────  (held by 1 connection,   (closed to writes,          (in `have`
//!              put_back by     2 at most in the        queued for a hash           for good)
//!              the last holder endgame)                thread)
//!                ◀──────────────────────────────────────────┘ put_back (hash failed)
//! ```
//!
//! Hashing is still "in flight" to the picker: the connection that wrote the last block keeps
//! its hold, and the hash thread lets go for it ([`Picker::finish`] or [`Picker::put_back`]).
//! So a piece being hashed is neither queued (missing) nor in `have` (verified), and is not
//! lost if its hash fails. Which pieces take block writes (and which are closed while hashed
//! or for good) is kept beside this, in [`piece_sink`](crate::peer::piece_sink).
//!
//! - missing → in flight: [`Picker::take`] hands a queued piece to one connection. Only once
//!   the queue is empty (the endgame) may a piece already in flight be handed out again, up to
//!   two holders, so one slow peer cannot hold back the end of a download. The caller says
//!   which pieces it holds, and is handed one only if it holds none: a busy connection would
//!   fill its request window with second copies that mostly arrive after the first (8
//!   leechers of a 64 MiB torrent threw away 1.6-3.8 MB each that way; 0.7-2.4 MB now).
//! - in flight → missing: [`Picker::put_back`], by each holder that lets go: the piece failed its
//!   hash ([`TorrentState::verify_written`], on a hash thread) or a block could not be written,
//!   or another holder closed it for hashing first, or the connection ended for
//!   any reason (its [`Pipeline`](crate::peer::pipeline::Pipeline) pieces go back in
//!   [`connection::run`]), or was choked (a choking peer must not hold pieces until it
//!   unchokes). It is queued again only when its last holder let go.
//! - in flight → verified: [`Picker::finish`], after the piece was written and its hash
//!   matched. Only the first copy counts (`finish` returns `true` once); [`TorrentState::verify_written`] then
//!   adds it to the have log. Other holders drop their copy when they see it there (a
//!   `put_back` that does not queue a verified piece) or find it a duplicate when it arrives.
//!
//! Invariants (checked by the tests below):
//! - a piece is in `have` only once a thread verified its hash and wrote it ([`Picker::finish`]);
//! - a piece is queued exactly when it is missing and no thread holds it (`in_flight` is 0),
//!   so a thread that drops its piece ([`Picker::put_back`]) re-queues it when nobody else
//!   still works on it, and no piece is ever lost or queued twice;
//! - once the queue runs dry, a thread that holds no piece may take one already in flight
//!   elsewhere (endgame); the first verified copy wins;
//! - outside the random phase, `take` hands out a queued piece of the lowest availability among
//!   those the peer has;
//! - a piece's availability is the number of connected peers whose record has it, and the
//!   lowest availability [`Availability`] reports for the queue is that of a queued piece.
//!
//! The state sits behind one mutex, taken for single steps only (see the lock rules in
//! [`torrent_state`](crate::peer::torrent_state)).
//!
//! [`TorrentState::verify_written`]: crate::peer::torrent_state::TorrentState::verify_written
//! [`connection::run`]: crate::peer::connection::run

use crate::bitfield::Bitfield;
use crate::peer::availability::Availability;
use crossbeam_channel::{Receiver, Sender, bounded};
use std::sync::Mutex;

/// At most this many threads fetch the same piece at once in the endgame.
const ENDGAME_COPIES: u16 = 2;

/// Pieces fetched in random order before rarest first takes over.
pub const RANDOM_FIRST: usize = 4;

struct State {
    have: Bitfield,
    in_flight: Vec<u16>,
    availability: Availability,
    /// The pieces one `take` popped, to queue again (kept for its capacity).
    popped: Vec<u32>,
}

/// The work queue and piece states of one torrent.
pub struct Picker {
    /// The pieces to fetch (all of them, unless the download is selective); no other piece is
    /// ever queued.
    wanted: Bitfield,
    tx: Sender<u32>,
    rx: Receiver<u32>,
    state: Mutex<State>,
}

impl Picker {
    /// Queues every piece not in `have`, in random order.
    pub fn new(have: Bitfield) -> Picker {
        Picker::with_rng(have, fastrand::Rng::new())
    }

    /// A selective download: queues the pieces of `wanted` not in `have`, in random order.
    pub fn wanting(have: Bitfield, wanted: Bitfield) -> Picker {
        Picker::build(have, wanted, fastrand::Rng::new())
    }

    /// [`new`](Self::new) with the queue shuffled by `rng` (tests seed it).
    pub fn with_rng(have: Bitfield, rng: fastrand::Rng) -> Picker {
        let wanted = Bitfield::full(have.len());
        Picker::build(have, wanted, rng)
    }

    fn build(have: Bitfield, wanted: Bitfield, mut rng: fastrand::Rng) -> Picker {
        let pieces = have.len();
        // Each piece is queued at most once: a send never finds the channel full.
        let (tx, rx) = bounded(pieces.max(1));
        let mut missing: Vec<u32> = (0..pieces)
            .filter(|&i| wanted.get(i) && !have.get(i))
            .map(|i| i as u32)
            .collect();
        rng.shuffle(&mut missing);
        let popped = Vec::with_capacity(missing.len());
        let mut availability = Availability::new(pieces);
        for &i in &missing {
            availability.start_waiting(i as usize);
        }
        let picker = Picker {
            wanted,
            tx,
            rx,
            state: Mutex::new(State {
                have,
                in_flight: vec![0; pieces],
                availability,
                popped,
            }),
        };
        for i in missing {
            picker.queue(i);
        }
        picker
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave `State` half-updated: every change is a single step.
        crate::lock::lock(&self.state)
    }

    /// Puts a piece on the queue; callers hold the picker lock (or own the picker).
    fn queue(&self, index: u32) {
        let sent = self.tx.try_send(index);
        debug_assert!(sent.is_ok(), "piece {index} queued twice");
    }

    /// Takes a missing piece that `peer_has` and that is not among the pieces the caller is
    /// `holding`: the rarest queued one (see the module doc), or in the endgame a piece another
    /// connection is fetching. `None` when the peer has nothing we can fetch from it now.
    pub fn take(&self, peer_has: &Bitfield, holding: &[u32]) -> Option<u32> {
        self.take_preferring(peer_has, holding, &[])
    }

    /// [`take`](Self::take), but of the queued pieces of lowest rarity, one the peer
    /// `suggested` (BEP 6) goes first: a suggestion breaks ties, it never beats a rarer piece.
    pub fn take_preferring(
        &self,
        peer_has: &Bitfield,
        holding: &[u32],
        suggested: &[u32],
    ) -> Option<u32> {
        let mut state = self.state();
        let found = self.take_queued(&mut state, peer_has, suggested);
        found.or_else(|| self.take_endgame(&mut state, peer_has, holding))
    }

    /// The queued piece of lowest rarity the peer has, a `suggested` one first, then the one
    /// nearest the queue's head.
    fn take_queued(
        &self,
        state: &mut State,
        peer_has: &Bitfield,
        suggested: &[u32],
    ) -> Option<u32> {
        let random = state.have.count() < RANDOM_FIRST;
        let State {
            availability,
            popped,
            in_flight,
            have,
        } = state;
        popped.clear();
        // Suggestions still queued (missing, wanted, held by nobody) that the peer has; only
        // while there is one must the scan look past a piece of the lowest rarity.
        let queued = |&i: &u32| {
            let at = i as usize;
            at < have.len()
                && peer_has.get(at)
                && self.wanted.get(at)
                && !have.get(at)
                && in_flight[at] == 0
        };
        let prefer = suggested.iter().any(queued);
        // No piece the peer has is rarer than this: the peer's own copy counts.
        let floor = availability.lowest_waiting().unwrap_or(0).max(1);
        // ((rarity, not suggested), position in `popped`) of the best piece so far.
        let mut best: Option<((u32, bool), usize)> = None;
        // Nobody else reads or writes the queue while we hold the lock: its length is exact.
        for _ in 0..self.rx.len() {
            let Ok(index) = self.rx.try_recv() else { break };
            popped.push(index);
            if !peer_has.get(index as usize) {
                continue;
            }
            let rarity = if random {
                0
            } else {
                availability.get(index as usize)
            };
            // (rarity, not suggested): lower is better.
            let rank = (rarity, !(prefer && suggested.contains(&index)));
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, popped.len() - 1));
            }
            if rarity <= floor && (!prefer || !rank.1) {
                break;
            }
        }
        let chosen = best.map(|(_, at)| popped[at]);
        for (at, &index) in popped.iter().enumerate() {
            if best.is_none_or(|(_, b)| b != at) {
                self.queue(index);
            }
        }
        let index = chosen?;
        availability.stop_waiting(index as usize);
        in_flight[index as usize] += 1;
        Some(index)
    }

    /// With the queue empty, shares the least-shared piece in flight that the peer has, with a
    /// caller that holds no piece: an idle connection, one piece at a time. A busy one would
    /// fill its whole request window (1-3 s of its rate, up to a fifth of a 64 MiB torrent)
    /// with second copies, most of which arrive after the first copy and are thrown away.
    fn take_endgame(&self, state: &mut State, peer_has: &Bitfield, holding: &[u32]) -> Option<u32> {
        if !self.rx.is_empty() || !holding.is_empty() {
            return None;
        }
        let index = (0..state.have.len())
            .filter(|&i| !state.have.get(i) && peer_has.get(i))
            .filter(|&i| state.in_flight[i] > 0 && state.in_flight[i] < ENDGAME_COPIES)
            .min_by_key(|&i| state.in_flight[i])?;
        state.in_flight[index] += 1;
        Some(index as u32)
    }

    /// Gives up a piece taken with [`take`](Self::take) without finishing it.
    pub fn put_back(&self, index: u32) {
        let mut state = self.state();
        let count = &mut state.in_flight[index as usize];
        *count = count.saturating_sub(1);
        if *count == 0 && !state.have.get(index as usize) {
            state.availability.start_waiting(index as usize);
            self.queue(index);
        }
    }

    /// Records a verified, written piece. Returns `false` if another thread got there first.
    pub fn finish(&self, index: u32) -> bool {
        let mut state = self.state();
        let count = &mut state.in_flight[index as usize];
        *count = count.saturating_sub(1);
        state.have.set(index as usize)
    }

    /// A connection's peer sent a `bitfield`: its record goes from `old` to `new`.
    pub fn replace_bitfield(&self, old: &Bitfield, new: &Bitfield) {
        let mut state = self.state();
        let State {
            have,
            in_flight,
            availability,
            ..
        } = &mut *state;
        availability.replace(old, new, |i| waits(have, in_flight, i));
    }

    /// A connection's peer sent a `have` that added `index` to its record.
    pub fn add_have(&self, index: u32) {
        let mut state = self.state();
        let waits = waits(&state.have, &state.in_flight, index as usize);
        state.availability.add(index as usize, waits);
    }

    /// A connection ended: what its peer's record added goes.
    pub fn remove_peer(&self, peer_has: &Bitfield) {
        let empty = Bitfield::new(peer_has.len());
        self.replace_bitfield(peer_has, &empty);
    }

    /// How many connected peers have piece `index`.
    #[cfg(test)]
    pub(crate) fn availability(&self, index: u32) -> u32 {
        self.state().availability.get(index as usize)
    }

    /// Whether the piece is already verified.
    pub fn has(&self, index: u32) -> bool {
        self.state().have.get(index as usize)
    }

    /// A copy of the verified set.
    pub fn have(&self) -> Bitfield {
        self.state().have.clone()
    }

    /// How many pieces are verified.
    pub fn have_count(&self) -> usize {
        self.state().have.count()
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.state().have.is_complete()
    }

    /// The pieces to fetch (all of them, unless the download is selective).
    pub fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// Whether every wanted piece is verified (the download is done, even if partial).
    pub fn is_done(&self) -> bool {
        !self.state().have.lacks_any_of(&self.wanted)
    }

    /// Whether `peer_has` holds a wanted piece we lack: the peer is worth our interest.
    pub fn wants_any_of(&self, peer_has: &Bitfield) -> bool {
        let state = self.state();
        // Byte by byte: this runs on every `have` a peer sends.
        let mine = state.have.as_bytes();
        let wanted = self.wanted.as_bytes();
        peer_has
            .as_bytes()
            .iter()
            .zip(wanted.iter().zip(mine))
            .any(|(theirs, (wanted, mine))| theirs & wanted & !mine != 0)
    }
}

/// Whether piece `index` is on the queue: missing, and nobody fetches it.
fn waits(have: &Bitfield, in_flight: &[u16], index: usize) -> bool {
    !have.get(index) && in_flight.get(index) == Some(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(len: usize, pieces: &[usize]) -> Bitfield {
        Bitfield::with_pieces(len, pieces)
    }

    #[test]
    fn hands_out_only_missing_pieces_the_peer_has() {
        let picker = Picker::new(only(6, &[0, 1]));
        let peer = only(6, &[1, 2, 4]);
        let mut got = vec![
            picker.take(&peer, &[]).unwrap(),
            picker.take(&peer, &[]).unwrap(),
        ];
        got.sort();
        assert_eq!(got, vec![2, 4]);
        // 3 and 5 were passed over for that peer and wait on the queue for others.
        let shared = picker.take(&only(6, &[3]), &[]).unwrap();
        assert_eq!(shared, 3);
    }

    #[test]
    fn a_selective_picker_hands_out_and_wants_only_wanted_pieces() {
        let picker = Picker::wanting(only(6, &[1]), only(6, &[1, 2, 4]));
        assert!(!picker.is_done());
        let everything = Bitfield::full(6);
        assert!(picker.wants_any_of(&everything));
        assert!(
            !picker.wants_any_of(&only(6, &[0, 1, 3, 5])),
            "has only unwanted or ours"
        );
        let mut got = vec![
            picker.take(&everything, &[]).unwrap(),
            picker.take(&everything, &[]).unwrap(),
        ];
        got.sort();
        assert_eq!(got, vec![2, 4]);
        // The queue is empty: only the endgame's second copies are left.
        assert_eq!(picker.take(&everything, &got), None);
        assert!(picker.finish(2) && picker.finish(4));
        assert!(picker.is_done() && !picker.is_complete());
        assert!(!picker.wants_any_of(&everything));
    }

    #[test]
    fn put_back_requeues_and_finish_is_first_wins() {
        let picker = Picker::new(only(2, &[]));
        let full = Bitfield::full(2);
        let a = picker.take(&full, &[]).unwrap();
        let b = picker.take(&full, &[]).unwrap();
        assert_ne!(a, b);
        picker.put_back(a);
        assert_eq!(picker.take(&full, &[]), Some(a));
        assert!(picker.finish(a));
        assert!(picker.finish(b));
        assert!(picker.is_complete());
        assert_eq!(picker.take(&full, &[]), None);
    }

    #[test]
    fn endgame_shares_a_piece_and_the_second_copy_is_discarded() {
        let picker = Picker::new(only(1, &[]));
        let full = Bitfield::full(1);
        assert_eq!(picker.take(&full, &[]), Some(0));
        assert_eq!(picker.take(&full, &[]), Some(0), "endgame copy");
        assert_eq!(picker.take(&full, &[]), None, "at most two copies");
        assert!(picker.finish(0));
        assert!(!picker.finish(0));
        assert_eq!(picker.have_count(), 1);
    }

    #[test]
    fn no_piece_is_lost_when_every_taker_drops_it() {
        let picker = Picker::new(only(1, &[]));
        let full = Bitfield::full(1);
        picker.take(&full, &[]);
        picker.take(&full, &[]);
        picker.put_back(0);
        assert_eq!(picker.rx.len(), 0, "still in flight with the other thread");
        picker.put_back(0);
        assert_eq!(picker.rx.len(), 1);
        assert_eq!(picker.take(&full, &[]), Some(0));
    }

    #[test]
    fn a_taken_piece_is_not_handed_out_again_outside_the_endgame() {
        let picker = Picker::new(only(3, &[]));
        let taken = picker.take(&Bitfield::full(3), &[]).unwrap();
        // Another peer with only that piece gets nothing while other pieces wait.
        assert_eq!(picker.take(&only(3, &[taken as usize]), &[]), None);
        assert_eq!(picker.rx.len(), 2);
        picker.put_back(taken);
        assert_eq!(picker.take(&only(3, &[taken as usize]), &[]), Some(taken));
    }

    #[test]
    fn finish_counts_once_and_a_verified_piece_is_never_queued_again() {
        let picker = Picker::new(only(2, &[]));
        let full = Bitfield::full(2);
        let a = picker.take(&full, &[]).unwrap();
        assert!(picker.finish(a));
        assert!(!picker.finish(a));
        assert_eq!(picker.have_count(), 1);
        picker.put_back(a);
        let b = picker.take(&full, &[]).unwrap();
        assert_ne!(a, b);
        assert_eq!(picker.take(&only(2, &[a as usize]), &[]), None);
        assert_eq!(picker.have_count(), 1);
    }

    /// A picker with pieces 0 to 3 verified (past the random phase), its queue shuffled by
    /// `seed`.
    fn past_random_phase(len: usize, seed: u64) -> Picker {
        Picker::with_rng(only(len, &[0, 1, 2, 3]), fastrand::Rng::with_seed(seed))
    }

    /// Counts a new connection's `bitfield`, as the connection does; returns its record.
    fn connect(picker: &Picker, len: usize, pieces: &[usize]) -> Bitfield {
        let record = only(len, pieces);
        picker.replace_bitfield(&Bitfield::new(len), &record);
        record
    }

    /// Counts a `have`, as the connection does: only when it adds to the record.
    fn have(picker: &Picker, record: &mut Bitfield, index: u32) {
        if record.set(index as usize) {
            picker.add_have(index);
        }
    }

    fn availability(picker: &Picker) -> Vec<u32> {
        let pieces = picker.state().have.len() as u32;
        (0..pieces).map(|i| picker.availability(i)).collect()
    }

    #[test]
    fn the_rarest_piece_the_peer_has_comes_first() {
        for seed in 0..20 {
            let picker = past_random_phase(10, seed);
            let a = connect(&picker, 10, &[5, 6, 7, 8]);
            let b = connect(&picker, 10, &[5, 7, 8, 9]);
            let c = connect(&picker, 10, &[4, 5, 7]);
            assert_eq!(availability(&picker), [0, 0, 0, 0, 1, 3, 1, 3, 2, 1]);
            // a lacks 4 and 9 (rarity 1): its rarest are 6, then 8.
            assert_eq!(picker.take(&a, &[]), Some(6));
            assert_eq!(picker.take(&a, &[]), Some(8));
            assert_eq!(picker.take(&c, &[]), Some(4));
            assert_eq!(picker.take(&b, &[]), Some(9));
            // 5 and 7 are tied at 3.
            let mut rest = [picker.take(&b, &[]).unwrap(), picker.take(&c, &[]).unwrap()];
            rest.sort();
            assert_eq!(rest, [5, 7]);
            assert!(picker.rx.is_empty(), "every missing piece handed out once");
        }
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut firsts = Vec::new();
        for seed in 0..40 {
            let picker = past_random_phase(12, seed);
            let all = connect(&picker, 12, &(4..12).collect::<Vec<_>>());
            connect(&picker, 12, &[4, 5, 6, 7]);
            // 8 to 11 are tied at rarity 1.
            let first = picker.take(&all, &[]).unwrap();
            assert!((8..12).contains(&first), "{first}");
            firsts.push(first);
        }
        firsts.sort();
        firsts.dedup();
        assert_eq!(
            firsts,
            [8, 9, 10, 11],
            "each tied piece comes first for some seed"
        );
    }

    #[test]
    fn a_suggestion_breaks_ties_but_never_beats_a_rarer_piece() {
        for seed in 0..20 {
            let picker = past_random_phase(12, seed);
            let all = connect(&picker, 12, &(4..12).collect::<Vec<_>>());
            connect(&picker, 12, &[4, 5, 6, 7]);
            // 8 to 11 are tied at rarity 1; 5 is rarity 2; 3 is verified; 99 is no piece.
            assert_eq!(picker.take_preferring(&all, &[], &[3, 99, 5, 10]), Some(10));
            assert_eq!(
                picker.take_preferring(&all, &[], &[10, 5]).map(|i| i >= 8),
                Some(true)
            );
            // Once the rarest are gone, the suggested piece comes first among the rest.
            for _ in 0..2 {
                assert!(picker.take(&all, &[]).unwrap() >= 8);
            }
            assert_eq!(picker.take_preferring(&all, &[], &[6]), Some(6));
        }
    }

    #[test]
    fn the_first_pieces_are_random_then_rarest_first() {
        let mut firsts = Vec::new();
        for seed in 0..40 {
            let picker = Picker::with_rng(Bitfield::new(10), fastrand::Rng::with_seed(seed));
            let all = connect(&picker, 10, &(0..10).collect::<Vec<_>>());
            connect(&picker, 10, &(0..9).collect::<Vec<_>>());
            // Piece 9 is the rarest, but the first RANDOM_FIRST pieces are taken at random.
            let mut taken = Vec::new();
            for _ in 0..RANDOM_FIRST {
                let index = picker.take(&all, &[]).unwrap();
                assert!(picker.finish(index));
                taken.push(index);
            }
            firsts.push(taken[0]);
            let next = picker.take(&all, &[]).unwrap();
            if !taken.contains(&9) {
                assert_eq!(next, 9, "rarest first once {RANDOM_FIRST} are verified");
            }
        }
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() >= 5, "random first pieces: {firsts:?}");
    }

    #[test]
    fn a_seeder_is_asked_first_for_the_pieces_no_other_peer_has() {
        let len = 40;
        let picker = past_random_phase(len, 7);
        let seeder = connect(&picker, len, &(0..len).collect::<Vec<_>>());
        let mut leecher = connect(&picker, len, &(4..16).collect::<Vec<_>>());
        connect(&picker, len, &(10..22).collect::<Vec<_>>());
        // One leecher gets a piece that only the seeder had until now.
        have(&picker, &mut leecher, 30);
        let only_at_seeder: Vec<u32> = (22..40).filter(|&i| i != 30).collect();
        let mut from_seeder: Vec<u32> = (0..only_at_seeder.len())
            .map(|_| picker.take(&seeder, &[]).unwrap())
            .collect();
        from_seeder.sort();
        assert_eq!(from_seeder, only_at_seeder);
        let next = picker.take(&seeder, &[]).unwrap();
        assert!((4..22).contains(&next) || next == 30, "{next}");
    }

    #[test]
    fn a_connection_takes_away_exactly_what_it_added() {
        let picker = past_random_phase(8, 1);
        let empty = Bitfield::new(8);
        let first = connect(&picker, 8, &[4, 5]);
        // A second bitfield replaces the first.
        let mut record = only(8, &[5, 6]);
        picker.replace_bitfield(&first, &record);
        have(&picker, &mut record, 7);
        have(&picker, &mut record, 7);
        have(&picker, &mut record, 6);
        let other = connect(&picker, 8, &[6]);
        assert_eq!(availability(&picker), [0, 0, 0, 0, 0, 1, 2, 1]);
        picker.remove_peer(&record);
        assert_eq!(availability(&picker), [0, 0, 0, 0, 0, 0, 1, 0]);
        picker.remove_peer(&other);
        assert_eq!(availability(&picker), [0; 8]);
        picker.remove_peer(&empty);
        assert_eq!(availability(&picker), [0; 8]);
    }

    #[test]
    fn the_endgame_never_hands_a_connection_a_piece_it_holds() {
        let picker = Picker::new(only(2, &[]));
        let full = Bitfield::full(2);
        let x = picker.take(&full, &[]).unwrap();
        let y = picker.take(&full, &[x]).unwrap();
        assert_ne!(x, y);
        // The queue is empty: the endgame, but this connection holds both pieces.
        assert_eq!(picker.take(&full, &[x, y]), None);
        // An idle connection gets a second copy of one; while it holds it, no other.
        let first = picker.take(&full, &[]).unwrap();
        assert_eq!(picker.take(&full, &[first]), None, "one at a time");
        let second = picker.take(&full, &[]).unwrap();
        assert_ne!(first, second);
        assert_eq!(picker.take(&full, &[]), None, "two copies of each already");
    }

    /// Pieces on the queue, by index (the queue is drained and refilled in the same order).
    fn queued(picker: &Picker) -> Vec<usize> {
        let indices: Vec<u32> = picker.rx.try_iter().collect();
        let mut counts = vec![0; picker.state().have.len()];
        for &i in &indices {
            counts[i as usize] += 1;
            picker.tx.send(i).unwrap();
        }
        counts
    }

    #[test]
    fn random_takes_put_backs_finishes_and_peers_keep_every_piece_accounted_for() {
        let mut rng = fastrand::Rng::with_seed(3);
        let random_set = |rng: &mut fastrand::Rng, len: usize| {
            let mut b = Bitfield::new(len);
            for i in 0..len {
                if rng.bool() {
                    b.set(i);
                }
            }
            b
        };
        for _ in 0..100 {
            let len = rng.usize(1..16);
            let seed = rng.u64(..);
            let picker =
                Picker::with_rng(random_set(&mut rng, len), fastrand::Rng::with_seed(seed));
            // The pieces each of three connections holds, and what each peer announced.
            let mut held: Vec<Vec<u32>> = vec![Vec::new(); 3];
            let mut records = vec![Bitfield::new(len); 3];
            for _ in 0..300 {
                let c = rng.usize(..held.len());
                match rng.u8(..6) {
                    0 => {
                        let peer = &records[c];
                        let random_phase = picker.have_count() < RANDOM_FIRST;
                        let before = queued(&picker);
                        if let Some(i) = picker.take(peer, &held[c]) {
                            assert!(peer.get(i as usize) && !picker.has(i));
                            assert!(!held[c].contains(&i), "never twice to one connection");
                            let holders = held.iter().filter(|h| h.contains(&i)).count();
                            assert!(holders < 2, "at most two copies");
                            assert!(holders == 0 || picker.rx.is_empty(), "endgame only");
                            assert!(holders == 0 || held[c].is_empty(), "by an idle connection");
                            if holders == 0 && !random_phase {
                                let rarity = availability(&picker);
                                let rarest = (0..len)
                                    .filter(|&j| before[j] == 1 && peer.get(j))
                                    .map(|j| rarity[j])
                                    .min();
                                assert_eq!(Some(rarity[i as usize]), rarest, "rarest first");
                            }
                            held[c].push(i);
                        }
                    }
                    1 if !held[c].is_empty() => {
                        let at = rng.usize(..held[c].len());
                        picker.put_back(held[c].swap_remove(at));
                    }
                    2 if !held[c].is_empty() => {
                        let at = rng.usize(..held[c].len());
                        let i = held[c].swap_remove(at);
                        let first = !picker.has(i);
                        assert_eq!(picker.finish(i), first);
                    }
                    3 => {
                        let index = rng.u32(..len as u32);
                        have(&picker, &mut records[c], index);
                    }
                    4 => {
                        let new = random_set(&mut rng, len);
                        picker.replace_bitfield(&records[c], &new);
                        records[c] = new;
                    }
                    5 => {
                        // The connection ends; a new one to a peer with nothing follows.
                        for i in held[c].drain(..) {
                            picker.put_back(i);
                        }
                        picker.remove_peer(&records[c]);
                        records[c] = Bitfield::new(len);
                    }
                    _ => {}
                }
                let queue = queued(&picker);
                let rarity = availability(&picker);
                let state = picker.state();
                let lowest = (0..len).filter(|&i| queue[i] == 1).map(|i| rarity[i]).min();
                assert_eq!(
                    state.availability.lowest_waiting(),
                    lowest,
                    "lowest on the queue"
                );
                for (i, &on_queue) in queue.iter().enumerate() {
                    let holders = held.iter().flatten().filter(|&&h| h as usize == i).count();
                    assert_eq!(state.in_flight[i] as usize, holders, "piece {i}");
                    let waiting = !state.have.get(i) && holders == 0;
                    assert_eq!(on_queue, waiting as usize, "piece {i} queued iff waiting");
                    let peers = records.iter().filter(|r| r.get(i)).count();
                    assert_eq!(rarity[i] as usize, peers, "availability of piece {i}");
                }
            }
        }
    }
}
