//! One torrent's peers of one address family, stored compactly: 10 bytes per IPv4 peer, 22 per
//! IPv6 peer (all byte arrays, so no padding), in a vector sorted by who the peer is, so finding
//! a peer is a binary search and no index beside the vector costs memory (opentracker keeps its
//! peers the same way).
//!
//! A peer is its address *and* a 24-bit keyed digest of its peer id ([`PeerKey`]): only a
//! request from the same address can name an entry, so a stranger cannot move or stop anyone
//! else's. Only someone behind the *same* address could guess a digest, and the digest is keyed
//! with a secret, so that takes 2^23 requests on average, far past the per-address announce
//! budget. Two peers behind one address whose ids share a digest (one chance in 2^24 per pair)
//! would be taken for one peer; that harms nobody beyond that address. The peer id itself is
//! not kept, so replies carry none.
//!
//! Times are coarse ticks in six bits of the entry's last byte (the registry makes
//! [`TICKS_PER_TIMEOUT`] of them per peer timeout, wrapping every four timeouts): an age is a
//! wrapping difference, exact as long as expiry runs at least once every three timeouts, so no
//! entry lives to see its tick come round again.

/// Ticks in one peer timeout: expiry is exact to 1/16 of the timeout.
pub const TICKS_PER_TIMEOUT: u8 = 16;

/// Ticks wrap at 64 (six bits); a multiple of [`TICKS_PER_TIMEOUT`] and a divisor of 256, so a
/// `u8` tick counter reduced to six bits wraps the same way.
const TICK_MASK: u8 = 0x3f;

/// Bits of the peer id digest kept.
pub const DIGEST_MASK: u32 = 0x00ff_ffff;

/// A stored peer, generic over its IP bytes (`[u8; 4]` or `[u8; 16]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<A> {
    ip: A,
    port: [u8; 2],
    /// Keyed digest of the peer id, 24 bits.
    id: [u8; 3],
    /// Tick of its last announce (upper six bits) and flags (lower two).
    meta: u8,
}

/// Whether the peer has nothing left to download.
const SEEDER: u8 = 1;
/// Whether this entry's `completed` event was counted already.
const COUNTED: u8 = 2;
const FLAGS: u8 = SEEDER | COUNTED;

/// What identifies a stored peer: its address and its id's digest (below [`DIGEST_MASK`]).
pub type PeerKey<A> = (A, u32);

impl<A: Copy + Ord> Entry<A> {
    /// A new entry seen at `seen`; the key's digest must fit [`DIGEST_MASK`].
    pub fn new(key: PeerKey<A>, port: u16, seeder: bool, seen: u8) -> Entry<A> {
        debug_assert_eq!(key.1 & !DIGEST_MASK, 0, "digest wider than 24 bits");
        let [_, a, b, c] = key.1.to_be_bytes();
        let mut entry = Entry {
            ip: key.0,
            id: [a, b, c],
            port: port.to_be_bytes(),
            meta: if seeder { SEEDER } else { 0 },
        };
        entry.set_seen(seen);
        entry
    }

    pub fn key(&self) -> PeerKey<A> {
        let [a, b, c] = self.id;
        (self.ip, u32::from_be_bytes([0, a, b, c]))
    }

    pub fn ip(&self) -> A {
        self.ip
    }

    pub fn port(&self) -> u16 {
        u16::from_be_bytes(self.port)
    }

    pub fn set_port(&mut self, port: u16) {
        self.port = port.to_be_bytes();
    }

    /// Tick of its last announce, six bits.
    pub fn seen(&self) -> u8 {
        self.meta >> 2
    }

    /// Records an announce at tick `seen` (kept modulo 64).
    pub fn set_seen(&mut self, seen: u8) {
        self.meta = (seen & TICK_MASK) << 2 | (self.meta & FLAGS);
    }

    pub fn seeder(&self) -> bool {
        self.meta & SEEDER != 0
    }

    pub fn set_seeder(&mut self, seeder: bool) {
        self.meta = if seeder {
            self.meta | SEEDER
        } else {
            self.meta & !SEEDER
        };
    }

    /// Marks a download as counted; `false` if it was already.
    pub fn count_download(&mut self) -> bool {
        let first = self.meta & COUNTED == 0;
        self.meta |= COUNTED;
        first
    }
}

/// Peers sorted by [`Entry::key`].
#[derive(Debug)]
pub struct PeerList<A> {
    entries: Vec<Entry<A>>,
}

impl<A> Default for PeerList<A> {
    fn default() -> Self {
        PeerList {
            entries: Vec::new(),
        }
    }
}

impl<A: Copy + Ord> PeerList<A> {
    /// `Ok(position)` of the peer with `key`, or `Err(position)` where it would go.
    pub fn find(&self, key: PeerKey<A>) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.key().cmp(&key))
    }

    /// Puts `entry` at `position`, which [`find`](Self::find) gave for its key. A full list
    /// grows by a 128th (at least 4 entries): little room stands empty, and the blocks a list
    /// leaves behind as it grows are barely smaller than what its neighbours ask for next, so
    /// the allocator fills those holes again. Growing by a quarter left holes no other list
    /// could use: with 1,000 lists of ~500 peers, ~5.5 bytes per peer of heap holes and spare
    /// room, against ~2.8 now. Growth stays geometric, so copying costs amortised O(1) per
    /// insert (128 entries' worth, under the insert's own shift of half the list beyond 256).
    pub fn insert(&mut self, position: usize, entry: Entry<A>) {
        let len = self.entries.len();
        if len == self.entries.capacity() {
            self.entries.reserve_exact((len / 128).max(4));
        }
        self.entries.insert(position, entry);
    }

    /// Removes and returns the entry at `position`.
    pub fn remove(&mut self, position: usize) -> Entry<A> {
        self.entries.remove(position)
    }

    pub fn get(&self, position: usize) -> &Entry<A> {
        &self.entries[position]
    }

    pub fn get_mut(&mut self, position: usize) -> &mut Entry<A> {
        &mut self.entries[position]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops entries whose age at tick `now` is a peer timeout or more; returns how many went
    /// and how many of those were seeders. Frees spare room once the list has shrunk.
    pub fn expire(&mut self, now: u8) -> (usize, usize) {
        let before = self.entries.len();
        let mut seeders = 0;
        self.entries.retain(|e| {
            let keep = now.wrapping_sub(e.seen()) & TICK_MASK < TICKS_PER_TIMEOUT;
            if !keep && e.seeder() {
                seeders += 1;
            }
            keep
        });
        if self.entries.capacity() > 2 * self.entries.len() + 8 {
            self.entries.shrink_to_fit();
        }
        (before - self.entries.len(), seeders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(keys: &[(u8, u32)]) -> PeerList<[u8; 4]> {
        let mut list = PeerList::default();
        for &(ip, id) in keys {
            let key = ([10, 0, 0, ip], id);
            let at = list.find(key).expect_err("new");
            list.insert(at, Entry::new(key, 6881, false, 0));
        }
        list
    }

    #[test]
    fn entries_are_compact() {
        assert_eq!(std::mem::size_of::<Entry<[u8; 4]>>(), 10);
        assert_eq!(std::mem::size_of::<Entry<[u8; 16]>>(), 22);
    }

    #[test]
    fn kept_sorted_and_found_by_address_and_id() {
        let list = list(&[(3, 1), (1, 9), (2, 5), (1, 2)]);
        let keys: Vec<_> = (0..list.len()).map(|p| list.get(p).key()).collect();
        assert_eq!(
            keys,
            [
                ([10, 0, 0, 1], 2),
                ([10, 0, 0, 1], 9),
                ([10, 0, 0, 2], 5),
                ([10, 0, 0, 3], 1)
            ]
        );
        assert_eq!(list.find(([10, 0, 0, 2], 5)), Ok(2));
        // The same id from another address is another peer.
        assert_eq!(list.find(([10, 0, 0, 4], 5)), Err(4));
        let mut list = list;
        assert_eq!(list.remove(1).key(), ([10, 0, 0, 1], 9));
        assert_eq!(list.find(([10, 0, 0, 2], 5)), Ok(1));
    }

    #[test]
    fn flags_track_seeding_and_one_counted_download() {
        let mut e = Entry::new(([1, 2, 3, 4], 7), 1, false, 0);
        assert!(!e.seeder());
        e.set_seeder(true);
        assert!(e.seeder());
        assert!(e.count_download());
        assert!(!e.count_download());
        e.set_seeder(false);
        assert!(!e.seeder() && !e.count_download());
    }

    #[test]
    fn ticks_and_ports_are_kept_beside_the_flags() {
        let mut e = Entry::new(([1, 2, 3, 4], DIGEST_MASK), 6881, true, 200);
        assert_eq!(
            (e.key().1, e.port(), e.seen()),
            (DIGEST_MASK, 6881, 200 & 63)
        );
        assert!(e.count_download());
        e.set_seen(255);
        e.set_port(1);
        assert_eq!((e.seen(), e.port()), (63, 1));
        assert!(e.seeder() && !e.count_download());
    }

    #[test]
    fn expiry_uses_wrapping_ages() {
        let mut list = list(&[]);
        for (ip, seen, seeder) in [(1, 250, true), (2, 240, false), (3, 20, true)] {
            let key = ([10, 0, 0, ip], 0);
            let at = list.find(key).unwrap_err();
            list.insert(at, Entry::new(key, 1, seeder, seen));
        }
        // At tick 6, just past a wrap of the registry's byte: ages 12, 22 and 50 (mod 64).
        assert_eq!(list.expire(6), (2, 1));
        assert_eq!(list.len(), 1);
        assert_eq!(list.get(0).key(), ([10, 0, 0, 1], 0));
        assert_eq!(list.expire(6 + 15 - 12), (0, 0));
        assert_eq!(list.expire(6 + 16 - 12), (1, 1));
        assert_eq!(list.len(), 0);
    }
}
