//! Peer sources other than the tracker: peer exchange now, the DHT later. Each hands the
//! addresses it learns to the torrent's [`PeerFeed`], a bounded channel that one `feed` thread
//! per torrent ([`run`]) drains into [`dial`], so they are dialled like tracker peers and under
//! the same limits. The feed also knows which address each connected peer listens on, which
//! is what peer exchange tells other peers.

use crate::lock::lock;
use crate::peer::dial::dial;
use crate::peer::open_connections::Direction;
use crate::peer::torrent_state::TorrentState;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Addresses waiting to be dialled; more are dropped (a source learns them again later).
const QUEUE: usize = 256;
/// Listening addresses remembered for incoming connections (one per open connection).
const MAX_LISTENING: usize = 4096;

/// Addresses learnt from peer sources, and what peer exchange needs to know of open connections.
pub struct PeerFeed {
    tx: Sender<SocketAddr>,
    rx: Receiver<SocketAddr>,
    /// Our listening port (0 until the session sets it), told to peers in the extended
    /// handshake.
    port: AtomicU16,
    /// Incoming connection's address → the address its peer listens on (from its extended
    /// handshake). Held alone, for one map step.
    listening: Mutex<HashMap<SocketAddr, SocketAddr>>,
}

impl Default for PeerFeed {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        PeerFeed {
            tx,
            rx,
            port: AtomicU16::new(0),
            listening: Mutex::new(HashMap::new()),
        }
    }
}

impl PeerFeed {
    /// Offers an address to dial; `false` when the queue is full and it was dropped.
    pub fn offer(&self, addr: SocketAddr) -> bool {
        self.tx.try_send(addr).is_ok()
    }

    /// The sending end, for a source running on a thread of its own.
    pub fn sender(&self) -> Sender<SocketAddr> {
        self.tx.clone()
    }

    /// The receiving end, to see what was offered.
    #[cfg(test)]
    pub fn receiver_for_tests(&self) -> &Receiver<SocketAddr> {
        &self.rx
    }

    /// Sets our listening port.
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// Our listening port (0: unknown).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// Records the listening address of the peer on the incoming connection from `conn`.
    pub fn note_listening(&self, conn: SocketAddr, listen: SocketAddr) {
        let mut map = lock(&self.listening);
        if map.len() < MAX_LISTENING || map.contains_key(&conn) {
            map.insert(conn, listen);
        }
    }

    /// Forgets the connection from `conn` (it ended).
    pub fn forget(&self, conn: SocketAddr) {
        lock(&self.listening).remove(&conn);
    }

    /// The listening addresses of the peers `torrent` is connected to: the address dialled
    /// for outgoing connections, the one a peer told us for incoming ones.
    pub fn connected_peers(&self, torrent: &TorrentState) -> Vec<SocketAddr> {
        let links = torrent.links();
        let listening = lock(&self.listening).clone();
        links
            .into_iter()
            .filter_map(|l| match l.direction {
                Direction::Outgoing => Some(l.addr),
                Direction::Incoming => listening.get(&l.addr).copied(),
            })
            .collect()
    }
}

/// The body of a torrent's `feed` thread: dials what the sources offer until shutdown.
pub fn run(torrent: Arc<TorrentState>) {
    let rx = torrent.feed.rx.clone();
    while !torrent.is_shutting_down() {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(addr) => dial(&torrent, addr),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}
