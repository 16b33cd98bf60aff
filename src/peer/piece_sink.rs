//! Where fetched blocks go: each is written at once to its place in the torrent's files, and a
//! piece is hashed from there, by a thread of the [`hash_pool`](crate::peer::hash_pool), once
//! its last block is written. No piece is ever whole in memory, so the memory pieces in flight
//! hold does not grow with the piece size or the number of connections.
//!
//! Bytes that are not verified yet then sit in the files, so what may be written where is kept
//! here, per piece, in its **write epoch**:
//!
//! - even: the piece is being fetched, and a connection that took it at this epoch may write
//!   its blocks;
//! - odd: closed. The piece is being hashed, or it is verified (for good). A write is refused,
//!   so no block lands in a piece while it is hashed, and none ever on a verified piece.
//!
//! A connection reads the epoch when it takes a piece ([`PieceSink::epoch`]) and writes with it
//! ([`PieceSink::write`]). Whoever writes a piece's last block closes it ([`PieceSink::close`]:
//! epoch + 1, then waits out writes already under way) and sends it to be hashed; a failed hash
//! reopens it at a new epoch ([`PieceSink::reopen`]), so a connection still holding the old one
//! (an endgame copy) finds its writes refused and lets the piece go. Of two endgame holders
//! finishing at once only one closes: the other's close fails and it lets go.
//!
//! A write and a close meet through two atomics per piece, both `SeqCst`: the writer counts
//! itself in `writers` and then reads the epoch; the closer moves the epoch and then waits for
//! `writers` to drain. Either the writer sees the new epoch (and writes nothing), or the closer
//! sees the writer (and waits for its write). No lock is taken per block, and none at all
//! except the first block a connection writes into a piece, which records it as a sender
//! (`senders`, a mutex held for a push): a piece that fails its hash counts against every peer
//! that wrote into it.

use crate::bitfield::Bitfield;
use crate::disk::storage::{Storage, StorageError};
use crate::lock::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

/// The write epochs of one torrent's pieces, and who wrote into each piece being fetched.
pub struct PieceSink {
    epochs: Vec<AtomicU32>,
    /// Block writes under way, per piece.
    writers: Vec<AtomicU32>,
    /// The peers that wrote blocks of a piece in its current epoch.
    senders: Mutex<HashMap<u32, Vec<SocketAddr>>>,
}

impl PieceSink {
    /// Epochs for a torrent whose `have` pieces are verified (closed for good).
    pub fn new(have: &Bitfield) -> PieceSink {
        PieceSink {
            epochs: (0..have.len())
                .map(|i| AtomicU32::new(u32::from(have.get(i))))
                .collect(),
            writers: (0..have.len()).map(|_| AtomicU32::new(0)).collect(),
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// The epoch of piece `index`, to fetch it at; `None` while it is closed (being hashed).
    pub fn epoch(&self, index: u32) -> Option<u32> {
        let epoch = self.epochs[index as usize].load(SeqCst);
        epoch.is_multiple_of(2).then_some(epoch)
    }

    /// Writes `data` at `begin` in piece `index` if the piece is still open at `epoch`:
    /// `Ok(false)` (and nothing written) if it was closed or reopened since. `first_from` names
    /// the sender on its first block of this piece.
    pub fn write(
        &self,
        storage: &Storage,
        index: u32,
        epoch: u32,
        begin: u32,
        data: &[u8],
        first_from: Option<SocketAddr>,
    ) -> Result<bool, StorageError> {
        let i = index as usize;
        self.writers[i].fetch_add(1, SeqCst);
        let result = if self.epochs[i].load(SeqCst) == epoch {
            if let Some(from) = first_from {
                lock(&self.senders).entry(index).or_default().push(from);
            }
            storage.write(index, begin, data).map(|()| true)
        } else {
            Ok(false)
        };
        self.writers[i].fetch_sub(1, SeqCst);
        result
    }

    /// Closes piece `index` for hashing if it is still open at `epoch`, once the writes under
    /// way have landed; `false` if another holder closed it first or it was reopened since.
    pub fn close(&self, index: u32, epoch: u32) -> bool {
        let i = index as usize;
        if self.epochs[i]
            .compare_exchange(epoch, epoch + 1, SeqCst, SeqCst)
            .is_err()
        {
            return false;
        }
        // Only writes that read the old epoch can be under way: one block each.
        while self.writers[i].load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        true
    }

    /// The closed piece `index` failed its hash: it opens again at a new epoch, and the peers
    /// that wrote into it are returned.
    pub fn reopen(&self, index: u32) -> Vec<SocketAddr> {
        self.epochs[index as usize].fetch_add(1, SeqCst);
        self.take_senders(index)
    }

    /// The closed piece `index` is verified: it stays closed, and its senders are forgotten.
    pub fn verified(&self, index: u32) {
        self.take_senders(index);
    }

    fn take_senders(&self, index: u32) -> Vec<SocketAddr> {
        lock(&self.senders).remove(&index).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::test_support::{Fixture, PIECE};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn a_closed_piece_takes_no_writes_and_a_reopened_one_refuses_the_old_epoch() {
        let f = Fixture::new(3, &[2]);
        let sink = PieceSink::new(&f.state.picker.have());
        let storage = &f.state.storage;
        assert_eq!(sink.epoch(2), None, "verified pieces are closed");
        let e = sink.epoch(0).unwrap();
        let data = f.piece(0);
        assert!(sink.write(storage, 0, e, 0, data, Some(addr(1))).unwrap());
        assert!(sink.write(storage, 0, e, 0, data, Some(addr(2))).unwrap());
        assert!(sink.close(0, e));
        assert!(!sink.close(0, e), "closed once");
        assert_eq!(sink.epoch(0), None);
        let junk = vec![0xAA; PIECE as usize];
        assert!(!sink.write(storage, 0, e, 0, &junk, None).unwrap());
        assert_eq!(storage.read(0, 0, PIECE).unwrap(), data, "nothing landed");

        assert_eq!(sink.reopen(0), vec![addr(1), addr(2)]);
        let e2 = sink.epoch(0).unwrap();
        assert_ne!(e, e2);
        assert!(!sink.write(storage, 0, e, 0, &junk, None).unwrap());
        assert!(!sink.close(0, e), "a stale holder cannot close it");
        assert!(sink.write(storage, 0, e2, 0, data, Some(addr(3))).unwrap());
        assert!(sink.close(0, e2));
        sink.verified(0);
        assert_eq!(sink.epoch(0), None, "verified stays closed");
        assert!(sink.reopen(1).is_empty(), "no senders recorded for piece 1");
    }

    #[test]
    fn a_close_waits_for_writes_racing_it_and_later_ones_are_refused() {
        let f = Fixture::new(2, &[]);
        let sink = PieceSink::new(&f.state.picker.have());
        let storage = &f.state.storage;
        let e = sink.epoch(0).unwrap();
        let junk = vec![0x55; PIECE as usize];
        std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut landed = 0;
                while sink.write(storage, 0, e, 0, &junk, None).unwrap() {
                    landed += 1;
                }
                landed
            });
            while storage.read(0, 0, 1).map_or(true, |b| b[0] != 0x55) {
                std::thread::yield_now();
            }
            assert!(sink.close(0, e));
            // Whatever the writer does now is refused: the bytes on disk stay put.
            let after = storage.read(0, 0, PIECE).unwrap();
            assert!(writer.join().unwrap() > 0);
            assert_eq!(storage.read(0, 0, PIECE).unwrap(), after);
        });
    }
}
