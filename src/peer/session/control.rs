//! The session as [`Control`]: what the JSON API, the web page and `piecemeal remote` do to a
//! running peer. Every call changes the table of torrents under its lock and returns; slow
//! work (a check, a metadata fetch, threads ending, files deleted) goes on in a thread of its
//! own. A refused call changes nothing.

use super::Session;
use crate::lock::lock;
use crate::metainfo::Metainfo;
use crate::metainfo::magnet::Magnet;
use crate::peer::rate_limit::Rate;
use crate::peer::session::entry::{Entry, Phase};
use crate::peer::session::torrent::{self, EXIT_GRACE};
use crate::peer::session::{ids, starting, store};
use crate::rpc::control::{
    AddSource, Control, ControlError, Limits, SessionInfo, TorrentDetail, TorrentSummary,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Session {
    /// The session as an `Arc` (for the threads a call starts).
    fn me(&self) -> Result<Arc<Session>, ControlError> {
        self.me
            .upgrade()
            .ok_or_else(|| ControlError::NotNow("the peer is stopping".into()))
    }

    /// Runs `f` on the entry `id` names.
    fn on<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Entry) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut table = lock(&self.table);
        let hexes: Vec<String> = table.iter().map(|e| e.info_hash.hex()).collect();
        let at = ids::find(hexes.iter().map(String::as_str), id)?;
        f(&mut table[at])
    }

    /// Stops the entry's current start (its threads end in the background; the stopped
    /// state stays for show as `parked`).
    fn halt(&self, entry: &mut Entry) {
        entry.stop.store(true, Ordering::SeqCst);
        if let Phase::Running(running) = std::mem::replace(&mut entry.phase, Phase::Stopped) {
            running.signal(&self.engine);
            entry.have = Some(running.torrent.picker.have());
            entry.parked = Some(running);
        }
    }

    /// Starts an entry in the background (again).
    fn restart(&self, id: &str, full_check: bool) -> Result<(), ControlError> {
        let me = self.me()?;
        let hash = self.on(id, |e| Ok(e.info_hash))?;
        starting::spawn(&me, hash, full_check);
        Ok(())
    }

    /// Adds a new entry unless its torrent is there already.
    fn add_entry(&self, entry: Entry) -> Result<TorrentSummary, ControlError> {
        let me = self.me()?;
        let (hash, paused) = (entry.info_hash, entry.paused);
        {
            let mut table = lock(&self.table);
            if table.iter().any(|e| e.info_hash == hash) {
                return Err(ControlError::AlreadyAdded(hash.hex()));
            }
            self.enter(&mut table, entry);
        }
        self.save_store();
        if !paused {
            starting::spawn(&me, hash, false);
        }
        self.on(&hash.hex(), |e| Ok(e.summary()))
    }
}

impl Control for Session {
    fn session(&self) -> SessionInfo {
        let table = lock(&self.table);
        let limits = &self.engine.limits;
        SessionInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: self.engine.local.to_string(),
            download_rate: table.iter().map(|e| e.down.rate()).sum(),
            upload_rate: table.iter().map(|e| e.up.rate()).sum(),
            limits: Limits {
                upload: limits.upload.rate().0,
                download: limits.download.rate().0,
            },
            torrents: table.len(),
        }
    }

    fn list(&self) -> Vec<TorrentSummary> {
        lock(&self.table).iter().map(Entry::summary).collect()
    }

    fn detail(&self, id: &str) -> Result<TorrentDetail, ControlError> {
        self.on(id, |e| Ok(e.detail()))
    }

    fn add(&self, source: AddSource, paused: bool) -> Result<TorrentSummary, ControlError> {
        let dir = &self.engine.config.dir;
        let mut entry = match source {
            AddSource::Torrent(bytes) => {
                let meta = Metainfo::from_bytes(&bytes)
                    .map_err(|e| ControlError::BadTorrent(e.to_string()))?;
                let hash = meta.info_hash;
                if lock(&self.table).iter().any(|e| e.info_hash == hash) {
                    return Err(ControlError::AlreadyAdded(hash.hex()));
                }
                let copy = store::torrent_path(dir, &hash);
                store::keep(&copy, &bytes).map_err(|e| {
                    ControlError::Failed(format!("cannot save {}: {e}", copy.display()))
                })?;
                Entry::new(hash, Some(meta), Instant::now())
            }
            AddSource::Magnet(uri) => {
                let magnet = Magnet::parse(uri.trim())
                    .map_err(|e| ControlError::BadMagnet(e.to_string()))?;
                let mut entry = Entry::new(magnet.info_hash, None, Instant::now());
                entry.magnet = Some(magnet);
                entry
            }
        };
        entry.paused = paused;
        self.add_entry(entry)
    }

    fn pause(&self, id: &str) -> Result<(), ControlError> {
        self.on(id, |e| {
            e.paused = true;
            self.halt(e);
            Ok(())
        })?;
        self.save_store();
        Ok(())
    }

    fn resume(&self, id: &str) -> Result<(), ControlError> {
        let idle = self.on(id, |e| {
            Ok(e.paused || matches!(e.phase, Phase::Stopped | Phase::Failed(_)))
        })?;
        if idle {
            self.restart(id, false)?;
            self.save_store();
        }
        Ok(())
    }

    fn remove(&self, id: &str, delete_data: bool) -> Result<(), ControlError> {
        let mut entry = {
            let mut table = lock(&self.table);
            let hexes: Vec<String> = table.iter().map(|e| e.info_hash.hex()).collect();
            let at = ids::find(hexes.iter().map(String::as_str), id)?;
            table.remove(at)
        };
        self.halt(&mut entry);
        self.save_store();
        let me = self.me()?;
        let forget = move || {
            // A start still checking would write the files again after they are deleted, and
            // a start of the torrent added again must wait until this one's threads are gone
            // and its files deleted: the gate is held throughout.
            let gate = entry.starting.clone();
            let _gate = lock(&gate);
            if let Some(running) = entry.parked.take() {
                running.join(Instant::now() + EXIT_GRACE);
            }
            let (dir, hash) = (&me.engine.config.dir, entry.info_hash);
            let _ = std::fs::remove_file(crate::disk::resume::path_for(dir, &hash));
            // Added again meanwhile: the copy is the new entry's.
            if me.with_entry(&hash, |_| ()).is_none() {
                let _ = std::fs::remove_file(store::torrent_path(dir, &hash));
            }
            if let (true, Some(meta)) = (delete_data, &entry.meta) {
                delete_files(dir, meta);
            }
        };
        std::thread::Builder::new()
            .name("remove".into())
            .spawn(forget)
            .map(|_| ())
            .map_err(|e| ControlError::Failed(format!("cannot start a thread: {e}")))
    }

    fn verify(&self, id: &str) -> Result<(), ControlError> {
        self.on(id, |e| match (&e.meta, e.paused) {
            (None, _) => Err(ControlError::NotNow(format!(
                "torrent {} has no metadata yet",
                e.info_hash
            ))),
            (Some(_), true) => Err(ControlError::NotNow(format!(
                "torrent {} is paused: resume it to verify it",
                e.info_hash
            ))),
            (Some(_), false) => Ok(()),
        })?;
        self.restart(id, true)
    }

    fn choose_files(&self, id: &str, wanted: &[usize]) -> Result<(), ControlError> {
        let running = self.on(id, |e| {
            let Some(meta) = &e.meta else {
                return Err(ControlError::NotNow(format!(
                    "torrent {} has no metadata yet: its files are not known",
                    e.info_hash
                )));
            };
            let files = meta.info.files.len();
            if let Some(&index) = wanted.iter().find(|&&i| i >= files) {
                let id = e.info_hash.hex();
                return Err(ControlError::BadFile { id, index, files });
            }
            e.wanted = Some((0..files).map(|i| wanted.contains(&i)).collect());
            Ok(!e.paused && !matches!(e.phase, Phase::Stopped | Phase::Failed(_)))
        })?;
        self.save_store();
        // A new selection is a new picker: the torrent starts again, from its resume record.
        if running {
            self.restart(id, false)?;
        }
        Ok(())
    }

    fn set_limits(&self, limits: Limits) -> Result<(), ControlError> {
        self.engine.limits.upload.set_rate(Rate(limits.upload));
        self.engine.limits.download.set_rate(Rate(limits.download));
        *lock(&self.store_lock) = Some(limits);
        self.save_store();
        Ok(())
    }

    fn set_torrent_limits(&self, id: &str, limits: Limits) -> Result<(), ControlError> {
        self.on(id, |e| {
            e.limits = limits;
            if let Some(t) = e.running() {
                torrent::set_limits(t, limits);
            }
            Ok(())
        })?;
        self.save_store();
        Ok(())
    }
}

/// Deletes the files `meta` names below `dir`, then the folders on their paths that are left
/// empty (up to the torrent's own folder); nothing else.
fn delete_files(dir: &Path, meta: &Metainfo) {
    for file in &meta.info.files {
        let relative = meta.info.relative_path(file);
        let path = dir.join(&relative);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("cannot delete {}: {e}", path.display()),
        }
        // Folders only below `dir`, and only when empty (remove_dir refuses others).
        for folder in relative.ancestors().skip(1) {
            if folder.as_os_str().is_empty() || std::fs::remove_dir(dir.join(folder)).is_err() {
                break;
            }
        }
    }
}
