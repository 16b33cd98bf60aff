//! The threads that hash written pieces, one per core, shared by every torrent of the process.
//!
//! A connection that wrote a piece's last block hands the piece over (`HashQueue::submit`)
//! and goes back to reading its socket, so one fast connection keeps every core busy: the
//! connection thread receives and writes, the pool hashes. A job is a few bytes (the piece is
//! read back from the files, see [`piece_sink`](crate::peer::piece_sink)), so the queue is
//! unbounded; what waits in it counts as in flight to the picker, and a piece still queued at
//! exit is simply not verified (the next start-up check finds its bytes on disk).

use crate::peer::torrent_state::TorrentState;
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

struct Job {
    torrent: Weak<TorrentState>,
    index: u32,
    /// The connection that wrote the last block (credited with the piece).
    from: SocketAddr,
}

/// The hashing threads; they end once the pool and every torrent attached to it are gone.
pub struct HashPool {
    tx: Sender<Job>,
}

/// Where one torrent sends its written pieces.
pub(crate) struct HashQueue {
    tx: Sender<Job>,
    torrent: Weak<TorrentState>,
}

impl HashPool {
    /// Starts one hashing thread per core.
    pub fn start() -> std::io::Result<HashPool> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (tx, rx) = unbounded();
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || work(rx))?;
        }
        Ok(HashPool { tx })
    }

    /// Sends `torrent`'s written pieces to this pool (without, they are hashed by the
    /// connection thread that wrote them).
    pub fn attach(&self, torrent: &Arc<TorrentState>) {
        torrent.use_hash_queue(HashQueue {
            tx: self.tx.clone(),
            torrent: Arc::downgrade(torrent),
        });
    }
}

impl HashQueue {
    /// Queues piece `index`, closed for hashing, whose last block came from `from`.
    pub(crate) fn submit(&self, index: u32, from: SocketAddr) {
        let _ = self.tx.send(Job {
            torrent: self.torrent.clone(),
            index,
            from,
        });
    }
}

fn work(rx: Receiver<Job>) {
    let mut buf = Vec::new();
    for job in rx {
        if let Some(torrent) = job.torrent.upgrade() {
            torrent.verify_written(job.index, job.from, &mut buf);
        }
    }
}
