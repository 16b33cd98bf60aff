//! One torrent's peers of one address family, stored compactly: 12 bytes per IPv4 peer, 24 per
//! IPv6 peer, in a vector sorted by who the peer is, so finding a peer is a binary search and
//! no index beside the vector costs memory (opentracker keeps its peers the same way).
//!
//! A peer is its address *and* a 32-bit keyed digest of its peer id ([`PeerKey`]): only a
//! request from the same address can name an entry, so a stranger cannot move or stop anyone
//! else's. Two peers behind one address whose ids share a digest (one chance in 2^32 per pair)
//! would be taken for one peer; that harms nobody beyond that address. The peer id itself is
//! not kept, so replies carry none.
//!
//! Times are coarse ticks in one byte (the registry makes [`TICKS_PER_TIMEOUT`] of them per
//! peer timeout, wrapping): an age is a wrapping difference, exact as long as expiry runs at
//! least once every three timeouts, so no entry lives to see its tick come round again.

/// Ticks in one peer timeout: expiry is exact to 1/64 of the timeout.
pub const TICKS_PER_TIMEOUT: u8 = 64;

/// A stored peer, generic over its IP bytes (`[u8; 4]` or `[u8; 16]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<A> {
    pub ip: A,
    /// Keyed digest of the peer id.
    pub id: u32,
    pub port: u16,
    /// Tick of its last announce.
    pub seen: u8,
    flags: u8,
}

/// Whether the peer has nothing left to download.
const SEEDER: u8 = 1;
/// Whether this entry's `completed` event was counted already.
const COUNTED: u8 = 2;

/// What identifies a stored peer: its address and its id's digest.
pub type PeerKey<A> = (A, u32);

impl<A: Copy + Ord> Entry<A> {
    /// A new entry seen at `seen`.
    pub fn new(key: PeerKey<A>, port: u16, seeder: bool, seen: u8) -> Entry<A> {
        Entry {
            ip: key.0,
            id: key.1,
            seen,
            port,
            flags: if seeder { SEEDER } else { 0 },
        }
    }

    pub fn key(&self) -> PeerKey<A> {
        (self.ip, self.id)
    }

    pub fn seeder(&self) -> bool {
        self.flags & SEEDER != 0
    }

    pub fn set_seeder(&mut self, seeder: bool) {
        self.flags = if seeder {
            self.flags | SEEDER
        } else {
            self.flags & !SEEDER
        };
    }

    /// Marks a download as counted; `false` if it was already.
    pub fn count_download(&mut self) -> bool {
        let first = self.flags & COUNTED == 0;
        self.flags |= COUNTED;
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
    /// grows by a quarter rather than doubling, so little room stands empty (growth stays
    /// amortised O(1) per insert).
    pub fn insert(&mut self, position: usize, entry: Entry<A>) {
        let len = self.entries.len();
        if len == self.entries.capacity() {
            self.entries.reserve_exact((len / 4).max(4));
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
            let keep = now.wrapping_sub(e.seen) < TICKS_PER_TIMEOUT;
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
        assert_eq!(std::mem::size_of::<Entry<[u8; 4]>>(), 12);
        assert_eq!(std::mem::size_of::<Entry<[u8; 16]>>(), 24);
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
    fn expiry_uses_wrapping_ages() {
        let mut list = list(&[]);
        for (ip, seen, seeder) in [(1, 250, true), (2, 200, false), (3, 20, true)] {
            let key = ([10, 0, 0, ip], 0);
            let at = list.find(key).unwrap_err();
            list.insert(at, Entry::new(key, 1, seeder, seen));
        }
        // At tick 10, just past a wrap: ages 16, 66 and 246.
        assert_eq!(list.expire(10), (2, 1));
        assert_eq!(list.len(), 1);
        assert_eq!(list.get(0).key(), ([10, 0, 0, 1], 0));
        assert_eq!(list.expire(10 + 63 - 16), (0, 0));
        assert_eq!(list.expire(10 + 64 - 16), (1, 1));
        assert_eq!(list.len(), 0);
    }
}
