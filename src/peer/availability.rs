//! How many connected peers have each piece: the rarity the [`picker`](crate::peer::picker)
//! orders its work by.
//!
//! Each connection adds what its peer announced (its `bitfield`, then every `have` that sets a
//! new bit) and removes it again when it ends. The connection's own record of the peer's pieces
//! is the receipt: the counts change by exactly the bits that record gains or loses, so a
//! duplicate `have` is not counted twice, a second `bitfield` replaces the first instead of
//! adding to it, and a connection that ends takes away exactly what it put in.
//!
//! Beside the counts it keeps, per count, how many *waiting* pieces (those on the picker's
//! queue) have it, so the picker knows the lowest count on its queue without a pass over it.
//! The picker says when a piece starts and stops waiting, and which pieces wait when counts
//! change.

use crate::bitfield::Bitfield;

/// Per piece, the number of connected peers that have it.
pub struct Availability {
    counts: Vec<u32>,
    /// `waiting[n]`: how many waiting pieces `n` peers have.
    waiting: Vec<u32>,
}

impl Availability {
    /// No peer connected: every count is 0; no piece waits.
    pub fn new(pieces: usize) -> Availability {
        Availability {
            counts: vec![0; pieces],
            waiting: vec![0],
        }
    }

    /// Peers that have piece `index` (0 for an index past the end).
    pub fn get(&self, index: usize) -> u32 {
        self.counts.get(index).copied().unwrap_or(0)
    }

    /// The lowest count of a waiting piece, if any piece waits.
    pub fn lowest_waiting(&self) -> Option<u32> {
        self.waiting.iter().position(|&n| n > 0).map(|n| n as u32)
    }

    /// Piece `index` went on the picker's queue.
    pub fn start_waiting(&mut self, index: usize) {
        let count = self.get(index) as usize;
        if self.waiting.len() <= count {
            self.waiting.resize(count + 1, 0);
        }
        self.waiting[count] += 1;
    }

    /// Piece `index` left the picker's queue (handed out).
    pub fn stop_waiting(&mut self, index: usize) {
        let count = self.get(index) as usize;
        if let Some(n) = self.waiting.get_mut(count) {
            *n = n.saturating_sub(1);
        }
    }

    /// A peer gained piece `index` (a `have` that set a new bit in its record); `waits` says
    /// whether the piece is on the picker's queue.
    pub fn add(&mut self, index: usize, waits: bool) {
        self.change(index, waits, |count| count + 1);
    }

    /// A peer's record changed from `old` to `new` (a `bitfield`, or the empty set when the
    /// connection ends): counts move by the difference only. `waits` says which pieces are on
    /// the picker's queue.
    pub fn replace(&mut self, old: &Bitfield, new: &Bitfield, waits: impl Fn(usize) -> bool) {
        for index in old.ones() {
            // Never below 0, even if a caller removes what it never added.
            self.change(index, waits(index), |count| count.saturating_sub(1));
        }
        for index in new.ones() {
            self.add(index, waits(index));
        }
    }

    fn change(&mut self, index: usize, waits: bool, to: impl Fn(u32) -> u32) {
        if index >= self.counts.len() {
            return;
        }
        if waits {
            self.stop_waiting(index);
        }
        self.counts[index] = to(self.counts[index]);
        if waits {
            self.start_waiting(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(len: usize, pieces: &[usize]) -> Bitfield {
        Bitfield::with_pieces(len, pieces)
    }

    fn counts(a: &Availability) -> Vec<u32> {
        (0..a.counts.len()).map(|i| a.get(i)).collect()
    }

    #[test]
    fn a_replacing_bitfield_counts_once_and_an_ending_peer_removes_what_it_added() {
        let mut a = Availability::new(4);
        let empty = Bitfield::new(4);
        let first = set(4, &[0, 1]);
        a.replace(&empty, &first, |_| false);
        // Another peer with pieces 1 and 2.
        let other = set(4, &[1, 2]);
        a.replace(&empty, &other, |_| false);
        assert_eq!(counts(&a), vec![1, 2, 1, 0]);
        // The first peer sends a second bitfield: it replaces, not adds.
        let second = set(4, &[1, 3]);
        a.replace(&first, &second, |_| false);
        assert_eq!(counts(&a), vec![0, 2, 1, 1]);
        // A `have` for a new piece.
        let mut record = second.clone();
        assert!(record.set(0));
        a.add(0, false);
        assert_eq!(counts(&a), vec![1, 2, 1, 1]);
        // The first peer leaves: only the other peer's pieces are left.
        a.replace(&record, &empty, |_| false);
        assert_eq!(counts(&a), vec![0, 1, 1, 0]);
        a.replace(&other, &empty, |_| false);
        assert_eq!(counts(&a), vec![0; 4]);
    }

    #[test]
    fn the_lowest_count_on_the_queue_follows_counts_and_queue() {
        let mut a = Availability::new(3);
        assert_eq!(a.lowest_waiting(), None);
        // Pieces 0 and 2 wait; 1 is in flight.
        let waits = |i: usize| i != 1;
        a.start_waiting(0);
        a.start_waiting(2);
        assert_eq!(a.lowest_waiting(), Some(0));
        a.replace(&Bitfield::new(3), &Bitfield::full(3), waits);
        assert_eq!(a.lowest_waiting(), Some(1));
        a.add(0, true);
        a.add(1, false);
        assert_eq!(counts(&a), vec![2, 2, 1]);
        assert_eq!(a.lowest_waiting(), Some(1));
        a.stop_waiting(2);
        assert_eq!(a.lowest_waiting(), Some(2));
        a.stop_waiting(0);
        assert_eq!(a.lowest_waiting(), None);
        // Piece 1 comes back to the queue.
        a.start_waiting(1);
        assert_eq!(a.lowest_waiting(), Some(2));
    }

    #[test]
    fn out_of_range_and_over_removal_are_harmless() {
        let mut a = Availability::new(2);
        a.add(5, true);
        assert_eq!(a.get(5), 0);
        a.replace(&Bitfield::full(2), &Bitfield::new(2), |_| false);
        assert_eq!(counts(&a), vec![0, 0]);
        assert_eq!(a.lowest_waiting(), None);
    }
}
