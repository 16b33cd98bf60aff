//! The main thread's loop: progress, the `seeding`, `first-piece` and `complete` lines of
//! every torrent (those started at run time too), the rates' samples, and the decision to
//! stop.

use super::{PeerError, Session};
use crate::lock::lock;
use crate::metainfo::InfoHash;
use crate::peer::progress::Progress;
use crate::peer::session::entry::Phase;
use crate::peer::torrent_state::{PeerStats, TorrentState};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);
/// How often the rates are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// One start of a torrent, as the loop follows it.
struct Watched {
    torrent: Arc<TorrentState>,
    from_cli: bool,
    /// When the torrent was added: `first-piece` counts from there.
    added: Instant,
    reported: bool,
    first_piece: bool,
    failed: bool,
}

impl Session {
    /// Shows progress until the process's shutdown flag is set (or, with `exit_when_done`,
    /// every torrent is complete). `first-piece <hash> <name> secs=..` goes out when a
    /// torrent's first piece is verified, counted from when it was added (the process's start
    /// for those it started with: a magnet link's metadata phase included). A disk failure of
    /// a torrent given on the command line ends the process, as it always did; one added at
    /// run time shows `error` in the list.
    pub fn watch(&self) -> Result<(), PeerError> {
        let config = &self.engine.config;
        let mut progress = Progress::new(config.bars);
        let mut watched: HashMap<InfoHash, Watched> = HashMap::new();
        let mut sampled = Instant::now();
        loop {
            let settled = self.follow(&mut watched, &progress);
            if self.engine.shutdown.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(TICK);
            if sampled.elapsed() >= SAMPLE_EVERY {
                sampled = Instant::now();
                for entry in lock(&self.table).iter_mut() {
                    entry.sample(sampled);
                }
            }
            let torrents: Vec<_> = watched.values().map(|w| w.torrent.clone()).collect();
            progress.update(&torrents);
            for w in watched.values_mut() {
                let t = &w.torrent;
                if !w.first_piece && t.downloaded.load(Ordering::SeqCst) > 0 {
                    w.first_piece = true;
                    let secs = w.added.elapsed().as_secs_f64();
                    let (hash, name) = (t.meta.info_hash, &t.meta.info.name);
                    progress.println(&format!("first-piece {hash} {name} secs={secs:.2}"));
                }
                if !w.reported && t.is_complete() {
                    w.reported = true;
                    progress.println(&completion_line(t));
                }
                if let Some(reason) = t.failure().filter(|_| !w.failed) {
                    w.failed = true;
                    let torrent = t.meta.info.name.clone();
                    if w.from_cli {
                        progress.finish();
                        return Err(PeerError::DownloadFailed { torrent, reason });
                    }
                    log::warn!("{}", PeerError::DownloadFailed { torrent, reason });
                }
            }
            if config.exit_when_done && settled && watched.values().all(|w| w.reported) {
                break;
            }
        }
        progress.finish();
        Ok(())
    }

    /// Follows the torrents running now (a new start prints `seeding` when it was complete on
    /// disk); whether no torrent is still being started.
    fn follow(&self, watched: &mut HashMap<InfoHash, Watched>, progress: &Progress) -> bool {
        let mut settled = true;
        let mut now_running = HashMap::new();
        for entry in lock(&self.table).iter() {
            match &entry.phase {
                Phase::Running(r) => {
                    now_running.insert(entry.info_hash, r.torrent.clone());
                }
                Phase::Fetching | Phase::Checking if !entry.paused => settled = false,
                _ => {}
            }
            if let Some(torrent) = now_running.get(&entry.info_hash) {
                let known = watched
                    .get(&entry.info_hash)
                    .is_some_and(|w| Arc::ptr_eq(&w.torrent, torrent));
                if known {
                    continue;
                }
                // Judged by what was on disk at start (complete with nothing downloaded): a
                // torrent that completed during its first announce still gets its `complete`
                // line.
                let done_at_start =
                    torrent.is_complete() && torrent.downloaded.load(Ordering::SeqCst) == 0;
                if done_at_start {
                    let (hash, name) = (torrent.meta.info_hash, &torrent.meta.info.name);
                    progress.println(&format!("seeding {hash} {name}"));
                }
                let w = Watched {
                    torrent: torrent.clone(),
                    from_cli: entry.from_cli,
                    added: entry.added,
                    reported: done_at_start,
                    first_piece: false,
                    failed: false,
                };
                watched.insert(entry.info_hash, w);
            }
        }
        watched.retain(|hash, _| now_running.contains_key(hash));
        settled
    }
}

/// `complete <hash> <name> bytes=.. secs=.. mbps=.. peers=addr=bytes,.. pieces=addr=n,..`
fn completion_line(t: &TorrentState) -> String {
    let secs = t.started.elapsed().as_secs_f64();
    let bytes = t.downloaded.load(Ordering::SeqCst);
    let stats = t.peer_stats();
    let join = |f: &dyn Fn(&PeerStats) -> u64| {
        stats
            .iter()
            .map(|(a, s)| format!("{a}={}", f(s)))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "complete {} {} bytes={bytes} secs={secs:.2} mbps={:.1} peers={} pieces={}",
        t.meta.info_hash,
        t.meta.info.name,
        bytes as f64 / 1e6 / secs.max(1e-6),
        join(&|s| s.bytes),
        join(&|s| s.pieces),
    )
}
