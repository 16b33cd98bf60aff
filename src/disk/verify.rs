//! Piece verification: whether bytes are the piece a torrent describes, by its SHA-1, whether
//! given in memory, read back from the files ([`stored_piece_matches`]), or checked for a whole
//! folder at start with every core ([`check`]).
//!
//! Bytes are read from disk in chunks of [`CHUNK`] into one buffer per thread, so hashing a
//! 16 MiB piece costs no more memory than a 16 KiB one.

use crate::bitfield::Bitfield;
use crate::disk::storage::Storage;
use crate::metainfo::Info;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes read from disk at a time while hashing.
pub const CHUNK: usize = 256 * 1024;

/// Whether `data` is the piece `info` describes at `index`.
pub fn piece_matches(info: &Info, index: usize, data: &[u8]) -> bool {
    info.pieces.get(index) == Some(&sha1_smol::Sha1::from(data).digest().bytes())
}

/// Whether the bytes of piece `index` in `storage` are the piece `info` describes; `buf` is
/// the caller's scratch buffer (kept across calls). Bytes missing from disk are a mismatch.
pub fn stored_piece_matches(
    storage: &Storage,
    info: &Info,
    index: usize,
    buf: &mut Vec<u8>,
) -> bool {
    let size = info.piece_size(index);
    buf.resize(CHUNK.min(size as usize), 0);
    let mut sha = sha1_smol::Sha1::new();
    let mut at = 0u64;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        if storage
            .read_into(index as u32, at as u32, &mut buf[..n])
            .is_err()
        {
            return false;
        }
        sha.update(&buf[..n]);
        at += n as u64;
    }
    info.pieces.get(index) == Some(&sha.digest().bytes())
}

/// The start-up check: of the pieces in `which`, those whose bytes on disk match `info`.
/// Pieces whose bytes are missing (short or absent files) are simply not in the result.
/// Every core hashes: each thread takes the next unchecked piece in turn, so the reads stay
/// nearly sequential.
pub fn check(storage: &Storage, info: &Info, which: &Bitfield) -> Bitfield {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let found: Vec<Vec<usize>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = Vec::new();
                    let mut good = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= info.piece_count() {
                            return good;
                        }
                        if which.get(index) && stored_piece_matches(storage, info, index, &mut buf)
                        {
                            good.push(index);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut have = Bitfield::new(info.piece_count());
    for index in found.into_iter().flatten() {
        have.set(index);
    }
    have
}
