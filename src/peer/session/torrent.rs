//! One torrent's part of a running peer: its files checked against the resume record, its
//! state registered with the listener, the connection limits and the hash pool, and its
//! threads (choke, feed, announce, resume saver, DHT lookup). Each start has a stop flag of
//! its own, so a torrent can be paused or removed while the process runs: its threads end, its
//! connections close and the listener refuses it.

use crate::disk::resume::{self, CheckPlan};
use crate::disk::storage::Storage;
use crate::metainfo::Metainfo;
use crate::metainfo::selection;
use crate::peer::announcing::AnnounceTask;
use crate::peer::dht_search;
use crate::peer::dial::dial;
use crate::peer::peer_feed;
use crate::peer::peer_manager;
use crate::peer::picker::Picker;
use crate::peer::rate_limit::Rate;
use crate::peer::session::PeerError;
use crate::peer::session::engine::Engine;
use crate::peer::torrent_state::{TorrentEvent, TorrentState};
use crate::rpc::control::Limits;
use crate::tracker::client::status::TrackerStatus;
use crossbeam_channel::Receiver;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a torrent is started with.
pub(crate) struct Launch {
    pub meta: Metainfo,
    /// Which files to fetch, by index.
    pub wanted: Vec<bool>,
    /// Peers to dial at once (`--connect`, a magnet link's `x.pe`).
    pub connect: Vec<SocketAddr>,
    /// Peers that sent bad metadata, with their ids.
    pub banned: Vec<(SocketAddr, [u8; 20])>,
    pub limits: Limits,
    /// Hash every piece, whatever the resume record says (`verify`).
    pub full_check: bool,
}

/// A torrent whose files are checked and which the listener serves, before its threads run.
pub(crate) struct Prepared {
    pub torrent: Arc<TorrentState>,
    events: Receiver<TorrentEvent>,
    connect: Vec<SocketAddr>,
}

/// A torrent whose threads run.
pub(crate) struct Running {
    pub torrent: Arc<TorrentState>,
    /// Each tracker's last outcome (none announced to until the threads start).
    pub trackers: Arc<TrackerStatus>,
    announcer: Option<JoinHandle<()>>,
    lookup: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

/// Opens `launch`'s files, checks them (the pieces a valid resume record vouches for, and
/// those whose hash matches), and registers the torrent with the listener, the connection
/// limits and the hash pool. `stop` becomes the torrent's own stop flag.
pub(crate) fn prepare(
    engine: &Engine,
    launch: Launch,
    stop: Arc<AtomicBool>,
) -> Result<Prepared, PeerError> {
    let Launch {
        meta,
        wanted: files,
        connect,
        banned,
        limits,
        full_check,
    } = launch;
    let config = &engine.config;
    let private = meta.info.private;
    let storage = Storage::open_selected(&meta.info, &config.dir, &files, &engine.files)
        .map_err(PeerError::Storage)?;
    let record = resume::path_for(&config.dir, &meta.info_hash);
    let checking = Instant::now();
    let plan = if full_check {
        CheckPlan::everything(meta.info.piece_count())
    } else {
        start_plan(&record, &meta, &storage)
    };
    let have = storage.check(&meta.info, &plan);
    let wanted = selection::wanted_pieces(&meta.info, &files);
    log::info!(
        "{}: {}/{} pieces on disk ({} from the resume record, {} hashed in {:.3} s)",
        meta.info.name,
        have.count(),
        have.len(),
        plan.trusted.count(),
        plan.to_hash.count(),
        checking.elapsed().as_secs_f64()
    );
    let (tx, events) = crossbeam_channel::unbounded();
    let torrent = Arc::new(
        TorrentState::new(
            meta,
            storage,
            Picker::wanting(have, wanted),
            engine.peer_id,
            stop,
            tx,
        )
        .with_global_limits(engine.limits.clone())
        .with_connection_limits(engine.connection_limits.clone())
        .with_encryption(config.encryption)
        // BEP 27: a private torrent finds peers through its tracker only.
        .with_dht(engine.dht.clone().filter(|_| !private)),
    );
    set_limits(&torrent, limits);
    engine.connection_limits.register(&torrent);
    engine.hashers.attach(&torrent);
    for (addr, id) in banned {
        torrent.ban(addr, id);
    }
    torrent.feed.set_port(engine.local.port());
    torrent.peers.set_upload_slots(config.upload_slots);
    engine.served.insert(torrent.clone());
    Ok(Prepared {
        torrent,
        events,
        connect: [config.connect.clone(), connect].concat(),
    })
}

/// Sets a torrent's own limits.
pub(crate) fn set_limits(torrent: &TorrentState, limits: Limits) {
    let own = &torrent.rate_limits.own;
    own.upload.set_rate(Rate(limits.upload));
    own.download.set_rate(Rate(limits.download));
}

/// What the check of `meta` hashes: everything, unless the resume record at `path` is valid
/// (then only the pieces of files changed since).
fn start_plan(path: &Path, meta: &Metainfo, storage: &Storage) -> CheckPlan {
    match resume::load(path, &meta.info_hash, &meta.info) {
        Ok(record) => resume::plan(&record, &storage.stamps(), &meta.info),
        Err(e) => {
            log::info!("{}: {e}: checking every piece", meta.info.name);
            CheckPlan::everything(meta.info.piece_count())
        }
    }
}

/// Starts a prepared torrent's threads: choke and feed, the given peers dialled, the first
/// announce (a failure is an error only when no peer was given and the DHT is off for it),
/// the announce thread, the resume saver and the DHT lookups. On an error the torrent is
/// stopped again.
pub(crate) fn launch(engine: &Engine, prepared: Prepared) -> Result<Running, PeerError> {
    let Prepared {
        torrent,
        events,
        connect,
    } = prepared;
    let mut running = Running {
        torrent: torrent.clone(),
        trackers: Arc::default(),
        announcer: None,
        lookup: None,
        others: Vec::new(),
    };
    match start_threads(engine, &mut running, events, connect) {
        Ok(()) => Ok(running),
        Err(e) => {
            running.signal(engine);
            running.join(Instant::now() + EXIT_GRACE);
            Err(e)
        }
    }
}

/// How long a stop waits for the announce threads (their `stopped` announces) in all.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(4);

fn start_threads(
    engine: &Engine,
    running: &mut Running,
    events: Receiver<TorrentEvent>,
    connect: Vec<SocketAddr>,
) -> Result<(), PeerError> {
    let torrent = &running.torrent.clone();
    let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(work)
            .map_err(PeerError::Io)
    };
    let (choked, fed) = (torrent.clone(), torrent.clone());
    (running.others).push(spawn("choke", Box::new(move || peer_manager::run(choked)))?);
    (running.others).push(spawn("feed", Box::new(move || peer_feed::run(fed)))?);
    let tiers = match &engine.config.tracker {
        Some(url) => vec![vec![url.clone()]],
        None => torrent.meta.tracker_tiers(),
    };
    // Given peers first, so a slow or dead tracker does not hold them up.
    for addr in &connect {
        dial(torrent, *addr);
    }
    let has_peers = !connect.is_empty();
    let port = engine.local.port();
    let mut task = AnnounceTask::new(torrent.clone(), tiers, port, connect);
    running.trackers = task.tracker_status();
    let first = match task.announce_started() {
        None => None,
        Some(Ok(reply)) => Some(reply),
        // Without a tracker, a torrent can still run on peers given with --connect or
        // found through the DHT.
        Some(Err(e)) if has_peers || torrent.dht().is_some() => {
            log::warn!("{}: {e}", torrent.meta.info.name);
            None
        }
        Some(Err(source)) => {
            return Err(PeerError::Tracker {
                torrent: torrent.meta.info.name.clone(),
                source,
            });
        }
    };
    running.announcer = Some(spawn(
        "announce",
        Box::new(move || task.run(first, events)),
    )?);
    let (saved, record) = (
        torrent.clone(),
        resume::path_for(&engine.config.dir, &torrent.meta.info_hash),
    );
    (running.others).push(spawn(
        "resume",
        Box::new(move || crate::peer::resume_saving::run(saved, record)),
    )?);
    if let Some(node) = torrent.dht().cloned() {
        let searched = torrent.clone();
        running.lookup = Some(spawn(
            "dht-lookup",
            Box::new(move || dht_search::run(searched, node, port)),
        )?);
    }
    Ok(())
}

impl Prepared {
    /// Takes a torrent that will not run out of the listener and the limits again.
    pub(crate) fn discard(self, engine: &Engine) {
        self.torrent.shutdown.store(true, Ordering::SeqCst);
        unregister(engine, &self.torrent);
    }
}

fn unregister(engine: &Engine, torrent: &Arc<TorrentState>) {
    engine.served.remove(torrent);
    engine.connection_limits.unregister(torrent);
}

impl Running {
    /// Tells the torrent's threads and connections to stop (the announce thread then sends
    /// `stopped`), and takes it out of the listener and the connection limits.
    pub(crate) fn signal(&self, engine: &Engine) {
        self.torrent.shutdown.store(true, Ordering::SeqCst);
        unregister(engine, &self.torrent);
    }

    /// Waits for the threads of a signalled torrent: the announce thread until `deadline` at
    /// most (it may be inside a regular announce to a tracker that stopped answering, up to
    /// the client's 10 s timeout, before its `stopped` one), the others until they end (the
    /// choke and feed threads see the flag within a second; the resume thread saves once
    /// more).
    pub(crate) fn join(self, deadline: Instant) {
        if let Some(handle) = self.lookup {
            let _ = handle.join();
        }
        if let Some(handle) = self.announcer {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
        for handle in self.others {
            let _ = handle.join();
        }
    }
}
