//! How many connected peers have each piece: the rarity the [`picker`](crate::peer::picker)
//! orders its work by.
//!
//! Each connection adds what its peer announced (its `bitfield`, then every `have` that sets a
//! new bit) and removes it again when it ends. The connection's own record of the peer's pieces
//! is the receipt: the counts change by exactly the bits that record gains or loses, so a
//! duplicate `have` is not counted twice, a second `bitfield` replaces the first instead of
//! adding to it, and a connection that ends takes away exactly what it put in.

use crate::bitfield::Bitfield;

/// Per piece, the number of connected peers that have it.
pub struct Availability {
    counts: Vec<u32>,
}

impl Availability {
    /// No peer connected: every count is 0.
    pub fn new(pieces: usize) -> Availability {
        Availability {
            counts: vec![0; pieces],
        }
    }

    /// Peers that have piece `index` (0 for an index past the end).
    pub fn get(&self, index: usize) -> u32 {
        self.counts.get(index).copied().unwrap_or(0)
    }

    /// A peer gained piece `index` (a `have` that set a new bit in its record).
    pub fn add(&mut self, index: usize) {
        if let Some(count) = self.counts.get_mut(index) {
            *count += 1;
        }
    }

    /// A peer's record changed from `old` to `new` (a `bitfield`, or the empty set when the
    /// connection ends): counts move by the difference only.
    pub fn replace(&mut self, old: &Bitfield, new: &Bitfield) {
        for index in old.ones() {
            if let Some(count) = self.counts.get_mut(index) {
                // Never below 0, even if a caller removes what it never added.
                *count = count.saturating_sub(1);
            }
        }
        for index in new.ones() {
            self.add(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(len: usize, pieces: &[usize]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &p in pieces {
            b.set(p);
        }
        b
    }

    fn counts(a: &Availability) -> Vec<u32> {
        (0..a.counts.len()).map(|i| a.get(i)).collect()
    }

    #[test]
    fn a_replacing_bitfield_counts_once_and_an_ending_peer_removes_what_it_added() {
        let mut a = Availability::new(4);
        let empty = Bitfield::new(4);
        let first = set(4, &[0, 1]);
        a.replace(&empty, &first);
        // Another peer with pieces 1 and 2.
        let other = set(4, &[1, 2]);
        a.replace(&empty, &other);
        assert_eq!(counts(&a), vec![1, 2, 1, 0]);
        // The first peer sends a second bitfield: it replaces, not adds.
        let second = set(4, &[1, 3]);
        a.replace(&first, &second);
        assert_eq!(counts(&a), vec![0, 2, 1, 1]);
        // A `have` for a new piece.
        let mut record = second.clone();
        assert!(record.set(0));
        a.add(0);
        assert_eq!(counts(&a), vec![1, 2, 1, 1]);
        // The first peer leaves: only the other peer's pieces are left.
        a.replace(&record, &empty);
        assert_eq!(counts(&a), vec![0, 1, 1, 0]);
        a.replace(&other, &empty);
        assert_eq!(counts(&a), vec![0; 4]);
    }

    #[test]
    fn out_of_range_and_over_removal_are_harmless() {
        let mut a = Availability::new(2);
        a.add(5);
        assert_eq!(a.get(5), 0);
        a.replace(&Bitfield::full(2), &Bitfield::new(2));
        assert_eq!(counts(&a), vec![0, 0]);
    }
}
