//! Thread `resume` (one per torrent): keeps the torrent's fast-resume record
//! ([`crate::disk::resume`]) up to date: at start, at most every [`SAVE_EVERY`] while pieces
//! arrive, at once when the torrent completes, and a last time when the process stops.
//!
//! Each save takes the verified set first, then fsyncs the files written since the last save,
//! then replaces the record, so the record never claims a piece whose bytes are not on disk.
//! A save that fails (a read-only folder, a full disk) is logged and costs only a longer check
//! at the next start.

use crate::disk::resume::{self, ResumeRecord};
use crate::peer::torrent_state::TorrentState;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest time between two saves while a download runs: each save fsyncs what was
/// written since the last, so this bounds that cost and the pieces a crash re-checks.
pub const SAVE_EVERY: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(100);

/// Runs until the process shuts down, then saves the record one last time.
pub fn run(torrent: Arc<TorrentState>, path: PathBuf) {
    let mut saved: Option<usize> = None;
    let mut last = Instant::now();
    let mut warned = false;
    loop {
        let stopping = torrent.is_shutting_down();
        let count = torrent.picker.have_count();
        // Pieces only ever join the verified set, so an equal count is an equal set.
        let due = saved != Some(count)
            && (saved.is_none()
                || stopping
                || torrent.is_complete()
                || last.elapsed() >= SAVE_EVERY);
        if due {
            last = Instant::now();
            match save(&torrent, &path) {
                Ok(pieces) => saved = Some(pieces),
                Err(e) if !warned => {
                    warned = true;
                    log::warn!("{}: {e}", torrent.meta.info.name);
                    saved = Some(count);
                }
                Err(_) => saved = Some(count),
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(TICK);
    }
}

/// One save; returns the number of pieces recorded.
fn save(torrent: &TorrentState, path: &std::path::Path) -> Result<usize, resume::ResumeError> {
    let pieces = torrent.picker.have();
    torrent.storage.sync().map_err(resume::ResumeError::Write)?;
    let record = ResumeRecord {
        info_hash: torrent.meta.info_hash,
        files: torrent.storage.stamps(),
        pieces,
    };
    resume::save(path, &record)?;
    Ok(record.pieces.count())
}
