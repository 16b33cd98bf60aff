//! Node ids (160 bits, the same space as info hashes) and the XOR metric of BEP 5.

use crate::metainfo::InfoHash;
use std::fmt;

/// A DHT node id or lookup target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// A random id (ids need only be spread evenly, not secret).
    pub fn random() -> NodeId {
        let mut id = [0u8; 20];
        id.iter_mut().for_each(|b| *b = fastrand::u8(..));
        NodeId(id)
    }

    /// The id from exactly 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<NodeId> {
        Some(NodeId(bytes.try_into().ok()?))
    }

    /// The XOR distance to `other`, comparable as a big-endian number.
    pub fn distance(&self, other: &NodeId) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        d
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub fn common_prefix(&self, other: &NodeId) -> usize {
        let d = self.distance(other);
        match d.iter().position(|b| *b != 0) {
            Some(i) => i * 8 + d[i].leading_zeros() as usize,
            None => 160,
        }
    }

    /// A random id sharing exactly `prefix` leading bits with `self` (the bit after them
    /// flipped), for refreshing the bucket at that depth. `prefix` is at most 159.
    pub fn random_at_depth(&self, prefix: usize) -> NodeId {
        let mut id = NodeId::random().0;
        for bit in 0..=prefix.min(159) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let ours = self.0[byte] & mask;
            let want = if bit == prefix { ours ^ mask } else { ours };
            id[byte] = (id[byte] & !mask) | want;
        }
        NodeId(id)
    }

    /// Lower-case hex, as the saved routing table writes ids (the same form as info hashes).
    pub fn to_hex(&self) -> String {
        InfoHash(self.0).hex()
    }

    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<NodeId> {
        InfoHash::from_hex(s).map(|h| NodeId(h.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_xor_and_prefix_counts_shared_bits() {
        let a = NodeId([0; 20]);
        let mut b = [0; 20];
        b[1] = 0b0010_0000;
        let b = NodeId(b);
        assert_eq!(a.distance(&b), b.0);
        assert_eq!(a.common_prefix(&b), 10);
        assert_eq!(a.common_prefix(&a), 160);
    }

    #[test]
    fn random_at_depth_shares_exactly_that_prefix() {
        let me = NodeId::random();
        for depth in [0, 1, 7, 8, 63, 159] {
            assert_eq!(me.common_prefix(&me.random_at_depth(depth)), depth);
        }
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let id = NodeId::random();
        assert_eq!(NodeId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(NodeId::from_hex("zz"), None);
        assert_eq!(NodeId::from_hex(&"é".repeat(20)), None);
    }
}
