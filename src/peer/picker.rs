//! Which piece a download thread fetches next, and which pieces the torrent has.
//!
//! Missing pieces wait in a crossbeam channel used as a work queue, shuffled so that peers
//! spread over the torrent. Each download thread takes an index its peer has; indices its
//! peer lacks go straight back for other threads.
//!
//! # Piece states
//!
//! ```text
//!              take                                        finish (first verified copy)
//!   missing ──────────────▶ in flight ───────────────────────────────────────────▶ verified
//!   (queued) ◀──────────────  (held by 1 connection,                                (in `have`
//!              put_back by     2 at most in the endgame)                             for good)
//!              the last holder
//! ```
//!
//! - missing → in flight: [`Picker::take`] hands a queued piece to one connection. Only once
//!   the queue is empty (the endgame) may a piece already in flight be handed out again, up to
//!   two holders, so one slow peer cannot hold back the end of a download. (The
//!   second holder can be the connection that holds the first copy: the picker does not know
//!   who holds what.)
//! - in flight → missing: [`Picker::put_back`], by each holder that lets go: the piece failed its
//!   hash or could not be written ([`TorrentState::store_piece`]), or the connection ended for
//!   any reason (its [`Pipeline`](crate::peer::pipeline::Pipeline) pieces go back in
//!   [`connection::run`]), or was choked (a choking peer must not hold pieces until it
//!   unchokes). It is queued again only when its last holder let go.
//! - in flight → verified: [`Picker::finish`], after the piece verified and was written. Only
//!   the first copy counts (`finish` returns `true` once); [`TorrentState::store_piece`] then
//!   adds it to the have log. Other holders drop their copy when they see it there (a
//!   `put_back` that does not queue a verified piece) or find it a duplicate when it arrives.
//!
//! Invariants (checked by the tests below):
//! - a piece is in `have` only once a thread verified its hash and wrote it ([`Picker::finish`]);
//! - a piece is queued exactly when it is missing and no thread holds it (`in_flight` is 0),
//!   so a thread that drops its piece ([`Picker::put_back`]) re-queues it when nobody else
//!   still works on it, and no piece is ever lost or queued twice;
//! - once the queue runs dry, a thread may take a piece already in flight elsewhere (endgame),
//!   so one slow peer cannot hold back the end of a download; the first verified copy wins.
//!
//! The state sits behind one mutex, taken for single steps only (see the lock rules in
//! [`torrent_state`](crate::peer::torrent_state)).
//!
//! [`TorrentState::store_piece`]: crate::peer::torrent_state::TorrentState::store_piece
//! [`connection::run`]: crate::peer::connection::run

use crate::bitfield::Bitfield;
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::sync::Mutex;

/// At most this many threads fetch the same piece at once in the endgame.
const ENDGAME_COPIES: u16 = 2;

struct State {
    have: Bitfield,
    in_flight: Vec<u16>,
}

/// The work queue and piece states of one torrent.
pub struct Picker {
    tx: Sender<u32>,
    rx: Receiver<u32>,
    state: Mutex<State>,
}

impl Picker {
    /// Queues every piece not in `have`, in random order.
    pub fn new(have: Bitfield) -> Picker {
        let (tx, rx) = unbounded();
        let mut missing: Vec<u32> = (0..have.len())
            .filter(|&i| !have.get(i))
            .map(|i| i as u32)
            .collect();
        fastrand::shuffle(&mut missing);
        for i in missing {
            let _ = tx.send(i);
        }
        let in_flight = vec![0; have.len()];
        Picker {
            tx,
            rx,
            state: Mutex::new(State { have, in_flight }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave `State` half-updated: every change is a single step.
        crate::lock::lock(&self.state)
    }

    /// Takes a missing piece that `peer_has`, or `None` when the peer has nothing we still need.
    pub fn take(&self, peer_has: &Bitfield) -> Option<u32> {
        let mut passed_over = Vec::new();
        let mut found = None;
        for _ in 0..self.rx.len() {
            let Ok(index) = self.rx.try_recv() else { break };
            let mut state = self.state();
            if state.have.get(index as usize) {
                continue;
            }
            if peer_has.get(index as usize) {
                state.in_flight[index as usize] += 1;
                found = Some(index);
                break;
            }
            passed_over.push(index);
        }
        for index in passed_over {
            let _ = self.tx.send(index);
        }
        found.or_else(|| self.take_endgame(peer_has))
    }

    /// With the queue empty, shares the least-shared piece in flight that the peer has.
    fn take_endgame(&self, peer_has: &Bitfield) -> Option<u32> {
        if !self.rx.is_empty() {
            return None;
        }
        let mut state = self.state();
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
            let _ = self.tx.send(index);
        }
    }

    /// Records a verified, written piece. Returns `false` if another thread got there first.
    pub fn finish(&self, index: u32) -> bool {
        let mut state = self.state();
        let count = &mut state.in_flight[index as usize];
        *count = count.saturating_sub(1);
        state.have.set(index as usize)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(len: usize, pieces: &[usize]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &p in pieces {
            b.set(p);
        }
        b
    }

    #[test]
    fn hands_out_only_missing_pieces_the_peer_has() {
        let picker = Picker::new(only(6, &[0, 1]));
        let peer = only(6, &[1, 2, 4]);
        let mut got = vec![picker.take(&peer).unwrap(), picker.take(&peer).unwrap()];
        got.sort();
        assert_eq!(got, vec![2, 4]);
        // 3 and 5 were passed over for that peer and wait on the queue for others.
        let shared = picker.take(&only(6, &[3])).unwrap();
        assert_eq!(shared, 3);
    }

    #[test]
    fn put_back_requeues_and_finish_is_first_wins() {
        let picker = Picker::new(only(2, &[]));
        let full = Bitfield::full(2);
        let a = picker.take(&full).unwrap();
        let b = picker.take(&full).unwrap();
        assert_ne!(a, b);
        picker.put_back(a);
        assert_eq!(picker.take(&full), Some(a));
        assert!(picker.finish(a));
        assert!(picker.finish(b));
        assert!(picker.is_complete());
        assert_eq!(picker.take(&full), None);
    }

    #[test]
    fn endgame_shares_a_piece_and_the_second_copy_is_discarded() {
        let picker = Picker::new(only(1, &[]));
        let full = Bitfield::full(1);
        assert_eq!(picker.take(&full), Some(0));
        assert_eq!(picker.take(&full), Some(0), "endgame copy");
        assert_eq!(picker.take(&full), None, "at most two copies");
        assert!(picker.finish(0));
        assert!(!picker.finish(0));
        assert_eq!(picker.have_count(), 1);
    }

    #[test]
    fn no_piece_is_lost_when_every_taker_drops_it() {
        let picker = Picker::new(only(1, &[]));
        let full = Bitfield::full(1);
        picker.take(&full);
        picker.take(&full);
        picker.put_back(0);
        assert_eq!(picker.rx.len(), 0, "still in flight with the other thread");
        picker.put_back(0);
        assert_eq!(picker.rx.len(), 1);
        assert_eq!(picker.take(&full), Some(0));
    }

    #[test]
    fn a_taken_piece_is_not_handed_out_again_outside_the_endgame() {
        let picker = Picker::new(only(3, &[]));
        let taken = picker.take(&Bitfield::full(3)).unwrap();
        // Another peer with only that piece gets nothing while other pieces wait.
        assert_eq!(picker.take(&only(3, &[taken as usize])), None);
        assert_eq!(picker.rx.len(), 2);
        picker.put_back(taken);
        assert_eq!(picker.take(&only(3, &[taken as usize])), Some(taken));
    }

    #[test]
    fn finish_counts_once_and_a_verified_piece_is_never_queued_again() {
        let picker = Picker::new(only(2, &[]));
        let full = Bitfield::full(2);
        let a = picker.take(&full).unwrap();
        assert!(picker.finish(a));
        assert!(!picker.finish(a));
        assert_eq!(picker.have_count(), 1);
        picker.put_back(a);
        let b = picker.take(&full).unwrap();
        assert_ne!(a, b);
        assert_eq!(picker.take(&only(2, &[a as usize])), None);
        assert_eq!(picker.have_count(), 1);
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
    fn random_takes_put_backs_and_finishes_keep_every_piece_accounted_for() {
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
            let len = rng.usize(1..10);
            let picker = Picker::new(random_set(&mut rng, len));
            // The pieces each of three connections holds.
            let mut held: Vec<Vec<u32>> = vec![Vec::new(); 3];
            for _ in 0..200 {
                let c = rng.usize(..held.len());
                match rng.u8(..3) {
                    0 => {
                        let peer = random_set(&mut rng, len);
                        if let Some(i) = picker.take(&peer) {
                            assert!(peer.get(i as usize) && !picker.has(i));
                            let holders = held.iter().filter(|h| h.contains(&i)).count();
                            assert!(holders < 2, "at most two copies");
                            assert!(holders == 0 || picker.rx.is_empty(), "endgame only");
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
                    _ => {}
                }
                let queue = queued(&picker);
                let state = picker.state();
                for (i, &on_queue) in queue.iter().enumerate() {
                    let holders = held.iter().flatten().filter(|&&h| h as usize == i).count();
                    assert_eq!(state.in_flight[i] as usize, holders, "piece {i}");
                    let waiting = !state.have.get(i) && holders == 0;
                    assert_eq!(on_queue, waiting as usize, "piece {i} queued iff waiting");
                }
            }
        }
    }
}
