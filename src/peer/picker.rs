//! Which piece a download thread fetches next, and which pieces the torrent has.
//!
//! Missing pieces wait in a crossbeam channel used as a work queue, shuffled so that peers
//! spread over the torrent. Each download thread takes an index its peer has; indices its
//! peer lacks go straight back for other threads.
//!
//! Invariants (checked by the tests below):
//! - a piece is in `have` only once a thread verified its hash and wrote it ([`Picker::finish`]);
//! - a missing piece is either on the queue or counted in `in_flight` by at least one thread,
//!   so a thread that drops its piece ([`Picker::put_back`]) re-queues it when nobody else
//!   still works on it, and no piece is ever lost;
//! - once the queue runs dry, a thread may take a piece already in flight elsewhere (endgame),
//!   so one slow peer cannot hold back the end of a download; the first verified copy wins.

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
}
