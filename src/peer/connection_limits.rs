//! How many connections (past their handshake, both directions) a torrent and the whole process
//! keep open, and making room for a new one by dropping an idle one (the choice is
//! [`eviction::choose`]). Without this, anyone could pin a peer by opening connections and
//! sending keep-alives: a full table would refuse every honest newcomer, and a seeder whose
//! table is full of incoming connections would never dial out.
//!
//! Each torrent's table and the process's list of torrents have their own lock, taken one at a
//! time. Two handshakes finishing at the same instant may both find the last free place, so a
//! limit can be overshot by the handshakes in progress at once; never by more.

use crate::lock::lock;
use crate::peer::error::ConnError;
use crate::peer::eviction::{self, Candidate};
use crate::peer::torrent_state::TorrentState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Connections per torrent when not told otherwise.
pub const DEFAULT_PER_TORRENT: usize = 80;
/// Connections per process when not told otherwise.
pub const DEFAULT_PER_PROCESS: usize = 200;

/// The process's connection limits and its count of open connections.
pub struct ConnectionLimits {
    per_torrent: usize,
    per_process: usize,
    open: AtomicUsize,
    /// Every torrent of the process, to drop an idle connection of another torrent when the
    /// process is full.
    torrents: Mutex<Vec<Weak<TorrentState>>>,
}

impl ConnectionLimits {
    /// Limits of `per_torrent` connections per torrent and `per_process` in all.
    pub fn new(per_torrent: usize, per_process: usize) -> ConnectionLimits {
        ConnectionLimits {
            per_torrent,
            per_process,
            open: AtomicUsize::new(0),
            torrents: Mutex::new(Vec::new()),
        }
    }

    /// Puts `torrent` under these limits' process-wide count.
    pub fn register(&self, torrent: &Arc<TorrentState>) {
        lock(&self.torrents).push(Arc::downgrade(torrent));
    }

    /// Takes `torrent` (paused or removed) out of the process-wide count's list, with any
    /// torrent gone already.
    pub fn unregister(&self, torrent: &Arc<TorrentState>) {
        lock(&self.torrents).retain(|t| t.upgrade().is_some_and(|t| !Arc::ptr_eq(&t, torrent)));
    }

    /// Counts a connection just admitted.
    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a connection that closed (or was dropped).
    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Makes room in `torrent` and in the process for one more connection, dropping an idle
    /// connection where one is full; `Err(TooManyConnections)` when nothing can be dropped.
    pub(crate) fn make_room(&self, torrent: &TorrentState) -> Result<(), ConnError> {
        if torrent.connection_count() >= self.per_torrent && !evict_one(&[torrent]) {
            return Err(ConnError::TooManyConnections(self.per_torrent));
        }
        if self.open.load(Ordering::SeqCst) >= self.per_process {
            let all: Vec<Arc<TorrentState>> = lock(&self.torrents)
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            let all: Vec<&TorrentState> = all.iter().map(Arc::as_ref).collect();
            if !evict_one(&all) {
                return Err(ConnError::TooManyConnections(self.per_process));
            }
        }
        Ok(())
    }
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits::new(DEFAULT_PER_TORRENT, DEFAULT_PER_PROCESS)
    }
}

/// Drops the least useful connection of `torrents` that [`eviction::choose`] allows; whether
/// one was dropped.
fn evict_one(torrents: &[&TorrentState]) -> bool {
    let now = Instant::now();
    let mut open = Vec::new();
    let mut candidates = Vec::new();
    for torrent in torrents {
        for (token, link) in torrent.open_tokens() {
            // A connection that has not joined its peer manager yet has only just started.
            let (idle_for, interested, snubbed) = match torrent.peers.slot_of(link.addr) {
                Some(slot) => (slot.idle_for(now), slot.interested(), slot.snubbed()),
                None => (Duration::ZERO, false, false),
            };
            candidates.push(Candidate {
                key: open.len(),
                idle_for,
                interested,
                snubbed,
            });
            open.push((*torrent, token, link.addr, idle_for));
        }
    }
    let Some(key) = eviction::choose(&candidates) else {
        return false;
    };
    let (torrent, token, addr, idle_for) = open[key];
    log::info!(
        "{}: connection limit reached, dropping {addr} (no data for {}s)",
        torrent.meta.info.name,
        idle_for.as_secs()
    );
    // Gone already (it closed meanwhile) is room made all the same.
    torrent.evict(token);
    true
}
