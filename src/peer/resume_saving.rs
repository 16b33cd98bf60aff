//! Thread `resume` (one per torrent): keeps the torrent's fast-resume record
//! ([`crate::disk::resume`]) up to date: at start, at most every [`SAVE_EVERY`] while pieces
//! arrive, at once when the torrent completes, again once files written just before a save are
//! old enough not to be racy, and a last time when the process stops.
//!
//! Each save stamps the files, takes the verified set, fsyncs the files written since the last
//! save, then replaces the record, so the record never claims a piece whose bytes are not on
//! disk. A save that fails (a read-only folder, a full disk) is logged and costs only a longer
//! check at the next start.

use crate::disk::resume::{self, ResumeRecord};
use crate::peer::torrent_state::TorrentState;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest time between two saves while a download runs: each save fsyncs what was
/// written since the last, so this bounds that cost and the pieces a crash re-checks.
pub const SAVE_EVERY: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(100);
/// When a save whose files were racy is repeated.
const SETTLED: Duration = Duration::from_nanos(resume::RACY_NS + 500_000_000);

/// Runs until the process shuts down, then saves the record one last time.
pub fn run(torrent: Arc<TorrentState>, path: PathBuf) {
    let mut saved: Option<usize> = None;
    let mut racy = false;
    let mut last = Instant::now();
    let mut warned = false;
    loop {
        let stopping = torrent.is_shutting_down();
        let count = torrent.picker.have_count();
        // Pieces only ever join the verified set, so an equal count is an equal set.
        let changed = saved != Some(count);
        let due = (changed
            && (saved.is_none()
                || stopping
                || torrent.is_complete()
                || last.elapsed() >= SAVE_EVERY))
            // Files written just before the last save are hashed at the next start: once
            // their writes are old enough, a new save spares that.
            || (racy && (stopping || last.elapsed() >= SETTLED));
        if due {
            last = Instant::now();
            match save(&torrent, &path) {
                Ok(record) => {
                    saved = Some(record.pieces.count());
                    racy = record.has_racy_files();
                }
                Err(e) => {
                    // Once, and not on top of the disk failure that stopped the torrent (its
                    // one error line says it all).
                    if !warned && torrent.failure().is_none() {
                        log::warn!("{}: {e}", torrent.meta.info.name);
                    } else {
                        log::info!("{}: {e}", torrent.meta.info.name);
                    }
                    warned = true;
                    saved = Some(count);
                    racy = false;
                }
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(TICK);
    }
}

/// One save; returns the record saved.
fn save(torrent: &TorrentState, path: &Path) -> Result<ResumeRecord, resume::ResumeError> {
    // Stamps first: a piece written after them changes its file's stamp (or makes it racy),
    // so the next start hashes that file instead of taking the piece as missing.
    let stamped_at_ns = resume::now_ns();
    let files = torrent.storage.stamps();
    let pieces = torrent.picker.have();
    torrent.storage.sync().map_err(resume::ResumeError::Write)?;
    let record = ResumeRecord {
        info_hash: torrent.meta.info_hash,
        pieces,
        files,
        stamped_at_ns,
    };
    resume::save(path, &record)?;
    Ok(record)
}
