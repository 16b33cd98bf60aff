//! Which pieces a peer has: one bit per piece, high bit first, as on the wire (BEP 3).

use std::fmt;

/// A fixed-length set of piece indices.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: usize,
    ones: usize,
}

/// A bitfield message whose size or spare bits do not fit the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitfieldError {
    pub expected_bytes: usize,
    pub got_bytes: usize,
    pub spare_bits_set: bool,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.spare_bits_set {
            write!(f, "bitfield has bits set past the last piece")
        } else {
            write!(
                f,
                "bitfield is {} bytes, the torrent needs {}",
                self.got_bytes, self.expected_bytes
            )
        }
    }
}

impl std::error::Error for BitfieldError {}

impl Bitfield {
    /// A bitfield of `len` pieces with `pieces` set (for tests).
    #[cfg(test)]
    pub fn with_pieces(len: usize, pieces: &[usize]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &p in pieces {
            b.set(p);
        }
        b
    }

    /// An empty set for `len` pieces.
    pub fn new(len: usize) -> Bitfield {
        Bitfield {
            bits: vec![0; len.div_ceil(8)],
            len,
            ones: 0,
        }
    }

    /// A full set for `len` pieces.
    pub fn full(len: usize) -> Bitfield {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Reads a bitfield message body; its size must match exactly and spare bits must be clear.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Result<Bitfield, BitfieldError> {
        let expected = len.div_ceil(8);
        let spare_bits_set = bytes.len() == expected
            && !len.is_multiple_of(8)
            && bytes[expected - 1] & (0xff >> (len % 8)) != 0;
        if bytes.len() != expected || spare_bits_set {
            return Err(BitfieldError {
                expected_bytes: expected,
                got_bytes: bytes.len(),
                spare_bits_set,
            });
        }
        let ones = bytes.iter().map(|b| b.count_ones() as usize).sum();
        Ok(Bitfield {
            bits: bytes.to_vec(),
            len,
            ones,
        })
    }

    /// Number of pieces the set covers.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `i` is in the set; out-of-range indices are not.
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bits[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Adds piece `i`; returns whether it was newly added. Out-of-range indices are ignored.
    pub fn set(&mut self, i: usize) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bits[i / 8] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    /// How many pieces are in the set.
    pub fn count(&self) -> usize {
        self.ones
    }

    pub fn is_complete(&self) -> bool {
        self.ones == self.len
    }

    /// The wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// The pieces in the set, in increasing order (whole empty bytes are skipped).
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte != 0)
            .flat_map(|(at, &byte)| {
                (0..8)
                    .filter(move |bit| byte & (0x80 >> bit) != 0)
                    .map(move |bit| at * 8 + bit)
            })
    }

    /// Whether `other` has any piece this set lacks.
    pub fn lacks_any_of(&self, other: &Bitfield) -> bool {
        self.bits
            .iter()
            .zip(&other.bits)
            .any(|(mine, theirs)| theirs & !mine != 0)
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{})", self.ones, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(b.set(9));
        assert!(!b.set(9));
        assert!(!b.set(10));
        assert!(b.get(0) && b.get(9) && !b.get(1) && !b.get(10));
        assert_eq!(b.count(), 2);
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
    }

    #[test]
    fn from_bytes_checks_size_and_spare_bits() {
        assert!(
            Bitfield::from_bytes(&[0xff, 0xc0], 10)
                .unwrap()
                .is_complete()
        );
        assert!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10)
                .unwrap_err()
                .spare_bits_set
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10)
                .unwrap_err()
                .expected_bytes,
            2
        );
        assert!(Bitfield::from_bytes(&[0xff], 8).unwrap().is_complete());
    }

    #[test]
    fn lacks_any_of() {
        let mut mine = Bitfield::new(12);
        let mut theirs = Bitfield::new(12);
        assert!(!mine.lacks_any_of(&theirs));
        theirs.set(11);
        assert!(mine.lacks_any_of(&theirs));
        mine.set(11);
        assert!(!mine.lacks_any_of(&theirs));
        assert!(Bitfield::full(12).is_complete());
    }

    #[test]
    fn ones_lists_the_set_pieces_in_order() {
        let mut b = Bitfield::new(20);
        for i in [0, 7, 8, 19] {
            b.set(i);
        }
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 7, 8, 19]);
        assert_eq!(Bitfield::new(9).ones().count(), 0);
        assert_eq!(Bitfield::full(9).ones().count(), 9);
    }
}
