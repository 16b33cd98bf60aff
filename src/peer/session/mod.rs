//! A running peer process: it seeds what its folder holds and downloads what it lacks, for
//! several torrents at once, until told to stop. Torrents can be added, paused, resumed and
//! removed while it runs (through [`Control`], see [`control`]);
//! those added at run time are stored in the folder ([`store`]) and run again at the next
//! start.
//!
//! Threads: the caller's thread (progress display, completion lines, shutdown, see [`Session::watch`]),
//! one acceptor plus a fixed upload pool (see [`crate::peer::listener`]), per torrent one
//! announce thread (see [`crate::peer::announcing`]), one choke thread (see
//! [`crate::peer::peer_manager`]), one feed and one resume thread (see `torrent.rs`), the DHT
//! node's two threads (see [`crate::dht::node`]) with one lookup thread per public torrent (see
//! [`crate::peer::dht_search`]), one thread per outgoing connection (the download side, see
//! [`crate::peer::dial`]), and a short-lived thread per torrent started at run time (its
//! metadata fetched, its files checked, see `starting.rs`).
//!
//! # Locks
//!
//! The session's table of torrents has one mutex, held for bookkeeping only: never across a
//! check, an announce, a metadata fetch or a join (those take what they need out of the table,
//! let go, and put the result back).

mod config;
pub mod control;
mod engine;
mod entry;
mod error;
pub mod ids;
mod starting;
pub mod store;
mod torrent;
mod watch;

pub use config::PeerConfig;
pub use error::PeerError;

use crate::disk::file_pool::FilePool;
use crate::lock::lock;
use crate::metainfo::selection;
use crate::metainfo::{InfoHash, Metainfo};
use crate::peer::connection_limits::ConnectionLimits;
use crate::peer::dht_search;
use crate::peer::hash_pool::HashPool;
use crate::peer::listener::{self, Torrents};
use crate::peer::magnet_fetch::{self, Resolved};
use crate::peer::metadata_peer::Us;
use crate::peer::rate_limit::{Rate, RateLimits};
use crate::rpc::control::{Control, Limits};
use crate::rpc::{self, RpcError};
use engine::Engine;
use entry::{Entry, Phase};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Instant;
use torrent::{EXIT_GRACE, Launch};

/// A running peer: its torrents, and what they share.
pub struct Session {
    engine: Engine,
    /// Every torrent, in the order added.
    table: Mutex<Vec<Entry>>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    /// The process's start.
    begun: Instant,
    /// The process-wide limits set at run time (or restored), stored with the torrents; held
    /// while the store is written, so writes land in the order of the changes.
    store_lock: Mutex<Option<Limits>>,
    /// The session itself, for the threads its calls start.
    me: Weak<Session>,
    /// Each info hash's start gate (see [`Entry::starting`]), shared by the entries of one
    /// torrent removed and added again, so a new entry's start waits for an old entry's
    /// start and file deletion still under way. Dead gates are pruned as new ones are made.
    gates: Mutex<HashMap<InfoHash, Weak<Mutex<()>>>>,
}

/// Runs a peer until `shutdown` is set (or, with `exit_when_done`, until every torrent is
/// complete). On the way out every torrent announces `stopped`.
pub fn run(config: PeerConfig, shutdown: Arc<AtomicBool>) -> Result<(), PeerError> {
    let stored = store::has_torrents(&config.dir);
    if config.torrents.is_empty() && config.magnets.is_empty() && !stored && config.rpc.is_none() {
        return Err(PeerError::NoTorrents);
    }
    // The token first: a public --rpc without one is refused before anything listens.
    let rpc = match config.rpc {
        Some(bind) => {
            let token = rpc::auth::load_or_create(config.rpc_token.as_deref(), &config.dir, bind)
                .map_err(|e| PeerError::Rpc(RpcError::Auth(e)))?;
            Some((bind, token))
        }
        None => None,
    };
    let session = Session::start(config, shutdown.clone())?;
    let api = match rpc {
        Some((bind, token)) => {
            let control: Arc<dyn Control> = session.clone();
            match rpc::serve(bind, token, control, shutdown.clone()) {
                Ok(api) => Some(api),
                Err(e) => {
                    session.stop();
                    return Err(PeerError::Rpc(e));
                }
            }
        }
        None => None,
    };
    let outcome = session.watch();
    session.stop();
    if let Some(api) = api {
        api.join();
    }
    outcome
}

impl Session {
    /// Starts a peer: the `--torrent` files and `--magnet` links (whose metadata is fetched
    /// first), then the torrents stored in the folder by an earlier run. Prints
    /// `listening on ADDR` once its torrents are checked and it accepts connections. A
    /// session may start with no torrent at all (to be given some through [`control`]).
    pub fn start(config: PeerConfig, shutdown: Arc<AtomicBool>) -> Result<Arc<Session>, PeerError> {
        let begun = Instant::now();
        let stored = store::load(&config.dir);
        let mut starts = config
            .torrents
            .iter()
            .map(|p| {
                Metainfo::load(p)
                    .map_err(PeerError::Torrent)
                    .map(|m| Resolved::file(m, p))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let listeners = listener::bind(config.bind, config.port)
            .map_err(|(addr, source)| PeerError::Bind { addr, source })?;
        let local = listeners[0].local_addr().map_err(PeerError::Io)?;
        let peer_id = crate::tracker::protocol::generate_peer_id();
        // Before the magnet links, whose peers it finds too; a link that turns out private
        // keeps off it (`with_dht`). It runs unless every torrent is private: an empty session
        // or a stored one may be given public torrents.
        let all_private = !starts.is_empty()
            && config.magnets.is_empty()
            && stored.torrents.is_empty()
            && starts.iter().all(|r| r.meta.info.private);
        let dht = dht_search::start(&config, all_private, local.port()).map(Arc::new);
        let cx = magnet_fetch::Context {
            dir: &config.dir,
            us: Us {
                peer_id,
                port: local.port(),
            },
            tracker: config.tracker.as_deref(),
            connect: &config.connect,
            shutdown: &shutdown,
            dht: dht.clone(),
        };
        match magnet_fetch::resolve_all(&config.magnets, &cx) {
            Ok(Some(resolved)) => starts.extend(resolved),
            // Stopped during the metadata phase: the watch loop ends at once, and the stop
            // ends the DHT node.
            Ok(None) => {}
            Err((info_hash, source)) => {
                dht.iter().for_each(|d| d.shutdown());
                return Err(PeerError::Magnet { info_hash, source });
            }
        }
        let mut seen = HashSet::new();
        for start in &starts {
            if !seen.insert(start.meta.info_hash) {
                return Err(PeerError::DuplicateTorrent(start.path.clone()));
            }
        }
        let restored = store::restore(&config.dir, stored.torrents, &seen, begun);
        // A flag given on the command line wins over the limit stored at run time.
        let kept = stored.limits.unwrap_or_default();
        let engine = Engine {
            limits: Arc::new(RateLimits::new(
                config.max_upload_rate.unwrap_or(Rate(kept.upload)),
                config.max_download_rate.unwrap_or(Rate(kept.download)),
            )),
            connection_limits: Arc::new(ConnectionLimits::new(
                config.max_connections_per_torrent,
                config.max_connections,
            )),
            hashers: HashPool::start().map_err(PeerError::Io)?,
            files: FilePool::new(config.max_open_files),
            served: Arc::new(Torrents::default()),
            dht,
            local,
            peer_id,
            shutdown,
            config,
        };
        let session = Arc::new_cyclic(|me| Session {
            engine,
            table: Mutex::new(Vec::new()),
            acceptor: Mutex::new(None),
            begun,
            store_lock: Mutex::new(stored.limits),
            me: me.clone(),
            gates: Mutex::default(),
        });
        let launched = session.start_given(starts, listeners);
        if let Err(e) = launched {
            session.stop();
            return Err(e);
        }
        for entry in restored {
            let (hash, paused) = (entry.info_hash, entry.paused);
            session.enter(&mut lock(&session.table), entry);
            if !paused {
                starting::spawn(&session, hash, false);
            }
        }
        Ok(session)
    }

    /// Checks the torrents the peer was started with, starts listening, and starts them.
    fn start_given(
        &self,
        starts: Vec<Resolved>,
        listeners: Vec<std::net::TcpListener>,
    ) -> Result<(), PeerError> {
        let engine = &self.engine;
        let config = &engine.config;
        let mut prepared = Vec::new();
        for start in starts {
            let info = &start.meta.info;
            let wanted = selection::wanted_files(info, &config.only).map_err(|source| {
                PeerError::Selection {
                    torrent: info.name.clone(),
                    source,
                }
            })?;
            let mut entry = Entry::new(start.meta.info_hash, Some(start.meta.clone()), self.begun);
            entry.from_cli = true;
            entry.wanted = Some(wanted.clone());
            entry.phase = Phase::Checking;
            let launch = Launch {
                meta: start.meta,
                wanted,
                connect: start.peers,
                banned: start.banned,
                limits: entry.limits,
                full_check: false,
            };
            entry.stop = Arc::new(AtomicBool::new(false));
            prepared.push(torrent::prepare(engine, launch, entry.stop.clone())?);
            self.enter(&mut lock(&self.table), entry);
        }
        println!("listening on {}", engine.local);
        *lock(&self.acceptor) = Some(
            listener::start(
                listeners,
                engine.served.clone(),
                // Admitted incoming connections are at most --max-connections: the rest of the
                // workers are always there for handshakes, so admitted idle peers pin none.
                config.max_connections + config.upload_workers,
                config.encryption,
                engine.shutdown.clone(),
            )
            .map_err(PeerError::Io)?,
        );
        for prepared in prepared {
            let hash = prepared.torrent.meta.info_hash;
            let running = torrent::launch(engine, prepared)?;
            self.with_entry(&hash, |e| e.phase = Phase::Running(running));
        }
        Ok(())
    }

    /// The flags the peer was started with (for what runs beside the session, e.g. the
    /// JSON API's address).
    pub fn config(&self) -> &PeerConfig {
        &self.engine.config
    }

    /// Runs `f` on the entry of `hash`, if it is still in the session.
    /// The start gate of torrent `hash`: the one its earlier entries used while any of their
    /// threads still hold it, else a new one.
    fn gate(&self, hash: &InfoHash) -> Arc<Mutex<()>> {
        let mut gates = lock(&self.gates);
        if let Some(gate) = gates.get(hash).and_then(Weak::upgrade) {
            return gate;
        }
        gates.retain(|_, g| g.strong_count() > 0);
        let gate = Arc::new(Mutex::new(()));
        gates.insert(*hash, Arc::downgrade(&gate));
        gate
    }

    /// Puts `entry` in `table` (the locked table) with its torrent's start gate.
    fn enter(&self, table: &mut Vec<Entry>, mut entry: Entry) {
        entry.starting = self.gate(&entry.info_hash);
        table.push(entry);
    }

    fn with_entry<T>(&self, hash: &InfoHash, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        lock(&self.table)
            .iter_mut()
            .find(|e| e.info_hash == *hash)
            .map(f)
    }

    /// Stops every torrent (each announces `stopped`) and the listener, and waits for their
    /// threads. The process's shutdown flag is set.
    pub fn stop(&self) {
        let engine = &self.engine;
        engine.shutdown.store(true, Ordering::SeqCst);
        let mut stopping = Vec::new();
        for entry in lock(&self.table).iter_mut() {
            entry.stop.store(true, Ordering::SeqCst);
            if let Phase::Running(running) = std::mem::replace(&mut entry.phase, Phase::Stopped) {
                running.signal(engine);
                stopping.push(running);
            }
            stopping.extend(entry.parked.take());
        }
        // Stopping the node ends the lookups within a step; then the table is saved.
        if let Some(dht) = &engine.dht {
            dht.shutdown();
        }
        let deadline = Instant::now() + EXIT_GRACE;
        for running in stopping {
            running.join(deadline);
        }
        if let Some(acceptor) = lock(&self.acceptor).take() {
            let _ = acceptor.join();
        }
    }
}
