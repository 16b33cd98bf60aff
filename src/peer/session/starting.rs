//! Starting a torrent while the peer runs, on a thread of its own so the caller never waits:
//! the last start's threads are waited for, a magnet link's metadata is fetched (and stored),
//! the files are checked, and the torrent is launched, unless it was paused or removed
//! meanwhile (its stop flag says so).

use super::Session;
use crate::lock::lock;
use crate::metainfo::InfoHash;
use crate::metainfo::magnet::Magnet;
use crate::peer::magnet_fetch::{self, MagnetFetchError};
use crate::peer::metadata_peer::Us;
use crate::peer::session::entry::{Entry, Phase};
use crate::peer::session::store;
use crate::peer::session::torrent::{self, EXIT_GRACE, Launch};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Starts torrent `hash` of `session` in the background (again, if it ran: its last start
/// is stopped first); `full_check` hashes every piece whatever the resume record says.
pub(crate) fn spawn(session: &Arc<Session>, hash: InfoHash, full_check: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let previous = session.with_entry(&hash, |e| {
        e.stop.store(true, Ordering::SeqCst);
        e.stop = stop.clone();
        e.paused = false;
        e.phase = match std::mem::replace(&mut e.phase, Phase::Stopped) {
            Phase::Running(running) => {
                running.signal(&session.engine);
                e.parked = Some(running);
                Phase::Checking
            }
            _ if e.meta.is_none() => Phase::Fetching,
            _ => Phase::Checking,
        };
        let parked = e.parked.take();
        if let Some(old) = &parked {
            e.carried.0 += old.torrent.downloaded.load(Ordering::SeqCst);
            e.carried.1 += old.torrent.uploaded.load(Ordering::SeqCst);
        }
        (parked, e.starting.clone())
    });
    let Some((previous, gate)) = previous else {
        return;
    };
    let me = session.clone();
    let flag = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("start".into())
        .spawn(move || {
            // Taken before the table is read again: a removal either waits for this start
            // or has taken the torrent out of the table before it looks.
            let _gate = lock(&gate);
            if let Some(old) = previous {
                old.join(Instant::now() + EXIT_GRACE);
            }
            if let Err(why) = start(&me, hash, &flag, full_check) {
                me.fail(&hash, &flag, why);
            }
        });
    if let Err(e) = spawned {
        session.fail(&hash, &stop, format!("cannot start a thread: {e}"));
    }
}

/// Fetches the metadata if needed, checks and launches; `Err` with a reason a user can read.
fn start(
    session: &Arc<Session>,
    hash: InfoHash,
    stop: &Arc<AtomicBool>,
    full_check: bool,
) -> Result<(), String> {
    let engine = &session.engine;
    let known = session.with_own_entry(&hash, stop, |e| (e.meta.clone(), e.magnet.clone()));
    let meta = match known {
        None => return Ok(()),
        Some((Some(meta), _)) => meta,
        Some((None, Some(magnet))) => match fetch(session, &magnet, stop) {
            Ok(meta) => meta,
            Err(MagnetFetchError::Stopped) => return Ok(()),
            Err(e) => return Err(format!("magnet {hash}: {e}")),
        },
        Some((None, None)) => return Err("neither a torrent nor a magnet link".into()),
    };
    let launch = session.with_own_entry(&hash, stop, |e| {
        e.phase = Phase::Checking;
        Launch {
            wanted: e.wanted_files(&meta),
            meta,
            connect: std::mem::take(&mut e.connect),
            banned: std::mem::take(&mut e.banned),
            limits: e.limits,
            full_check,
        }
    });
    let Some(launch) = launch else {
        return Ok(());
    };
    let prepared = torrent::prepare(engine, launch, stop.clone()).map_err(|e| e.to_string())?;
    if stop.load(Ordering::SeqCst) {
        prepared.discard(engine);
        return Ok(());
    }
    let running = torrent::launch(engine, prepared).map_err(|e| e.to_string())?;
    // Installed only if this start is still the torrent's current one: the table's lock
    // orders this against pause, remove and the process's stop, which set the flag.
    let mut slot = Some(running);
    session.with_own_entry(&hash, stop, |e| {
        if !stop.load(Ordering::SeqCst) {
            if let Some(running) = slot.take() {
                e.have = None;
                e.phase = Phase::Running(running);
            }
        }
    });
    if let Some(running) = slot {
        running.signal(engine);
        running.join(Instant::now() + EXIT_GRACE);
    }
    Ok(())
}

/// Fetches a magnet link's metadata (or finds it saved in the folder), prints the `metadata`
/// line, keeps a copy of the `.torrent` in the store, and records it in the entry.
fn fetch(
    session: &Session,
    magnet: &Magnet,
    stop: &Arc<AtomicBool>,
) -> Result<crate::metainfo::Metainfo, MagnetFetchError> {
    let engine = &session.engine;
    let config = &engine.config;
    let cx = magnet_fetch::Context {
        dir: &config.dir,
        us: Us {
            peer_id: engine.peer_id,
            port: engine.local.port(),
        },
        tracker: config.tracker.as_deref(),
        connect: &config.connect,
        shutdown: stop,
        dht: engine.dht.clone(),
    };
    let resolved = magnet_fetch::resolve(magnet, &cx)?;
    let (hash, meta) = (resolved.meta.info_hash, resolved.meta.clone());
    println!(
        "metadata {hash} {} secs={:.2} saved={}",
        meta.info.name,
        resolved.took.as_secs_f64(),
        resolved.path.display()
    );
    let copy = store::torrent_path(&config.dir, &hash);
    store::keep_copy(&resolved.path, &copy)
        .map_err(|source| MagnetFetchError::Save { path: copy, source })?;
    session.with_own_entry(&hash, stop, |e| {
        e.meta = Some(meta.clone());
        e.connect = resolved.peers;
        e.banned = resolved.banned;
    });
    session.save_store();
    Ok(meta)
}

impl Session {
    /// Runs `f` on the entry of torrent `hash` if the start whose flag is `stop` is still its
    /// current one: a start that was replaced, or whose entry was removed (and perhaps added
    /// again, with a new start of its own), must not touch it.
    fn with_own_entry<T>(
        &self,
        hash: &InfoHash,
        stop: &Arc<AtomicBool>,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        self.with_entry(hash, |e| Arc::ptr_eq(&e.stop, stop).then(|| f(e)))
            .flatten()
    }

    /// Marks a start that failed, unless it was stopped or replaced meanwhile.
    fn fail(&self, hash: &InfoHash, stop: &Arc<AtomicBool>, why: String) {
        log::warn!("{hash}: {why}");
        self.with_own_entry(hash, stop, |e| {
            if !stop.load(Ordering::SeqCst) {
                e.phase = Phase::Failed(why);
            }
        });
    }

    /// Writes the stored torrents (those added at run time) and the limits set at run time
    /// to the folder; a failure is
    /// logged (the session runs on, and forgets the change at the next start).
    pub(crate) fn save_store(&self) {
        let limits = lock(&self.store_lock);
        let saved = store::Saved {
            torrents: store::stored(&lock(&self.table)),
            limits: *limits,
        };
        if let Err(e) = store::save(&self.engine.config.dir, &saved) {
            log::warn!("{e}");
        }
    }
}
