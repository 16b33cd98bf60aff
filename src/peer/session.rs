//! A running peer process: it seeds what its folder holds and downloads what it lacks, for
//! several torrents at once, until told to stop.
//!
//! Threads: the caller's thread (progress display, completion lines, shutdown), one acceptor
//! plus a fixed upload pool (see [`crate::peer::listener`]), per torrent one announce thread, and one
//! thread per outgoing connection (the download side, see [`crate::peer::connection`]).

use crate::disk::storage::{Storage, StorageError};
use crate::metainfo::{InfoHash, Metainfo, MetainfoError};
use crate::peer::connection::{self, ConnError};
use crate::peer::listener;
use crate::peer::picker::Picker;
use crate::peer::progress::Progress;
use crate::peer::torrent_state::{TorrentEvent, TorrentState};
use crate::tracker::client::{AnnounceError, Announcer};
use crate::tracker::protocol::{AnnounceRequest, AnnounceResponse, Event};
use crate::wire::{Handshake, read_handshake, write_handshake};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Outgoing connections per torrent.
const MAX_OUTGOING: usize = 40;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `--connect` peers without an open connection are dialled again.
const REDIAL: Duration = Duration::from_secs(10);
/// Retry delay after a failed announce.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(15);
/// Bounds on the re-announce interval a tracker may ask for.
const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// The `stopped` announce is a courtesy: a dead tracker must not hold up the exit for long.
const STOPPED_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the exit waits for the announce threads (their `stopped` announces) in all.
const EXIT_GRACE: Duration = Duration::from_secs(4);

/// How a peer is started: these are the `piecemeal peer` flags (the doc comments are their
/// help text).
#[derive(Clone, Debug, clap::Args)]
pub struct PeerConfig {
    /// The peer's folder (content is read from and written below it).
    #[arg(long)]
    pub dir: PathBuf,
    /// A .torrent file to serve; repeat for several.
    #[arg(long = "torrent", required = true)]
    pub torrents: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 6881)]
    pub port: u16,
    /// Announce to this tracker URL instead of the torrents' own.
    #[arg(long)]
    pub tracker: Option<String>,
    /// A peer address to connect to directly; repeat for several.
    #[arg(long = "connect")]
    pub connect: Vec<SocketAddr>,
    /// Exit once every torrent is complete instead of seeding.
    #[arg(long)]
    pub exit_when_done: bool,
    /// Incoming connections served at once.
    #[arg(long, default_value_t = 64)]
    pub upload_workers: usize,
    /// Draw progress bars (stdout is a terminal) instead of plain lines.
    #[arg(skip)]
    pub bars: bool,
}

/// Why a peer could not start or had to stop.
#[derive(Debug)]
pub enum PeerError {
    Torrent(MetainfoError),
    Storage(StorageError),
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
    Tracker {
        torrent: String,
        source: AnnounceError,
    },
    DuplicateTorrent(PathBuf),
    NoTorrents,
    Io(io::Error),
    /// A torrent stopped downloading because of a disk error; the pieces already written stay.
    DownloadFailed {
        torrent: String,
        reason: String,
    },
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Torrent(e) => write!(f, "{e}"),
            PeerError::Storage(e) => write!(f, "{e}"),
            PeerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            PeerError::Tracker { torrent, source } => write!(f, "{torrent}: {source}"),
            PeerError::DuplicateTorrent(p) => write!(f, "{}: torrent given twice", p.display()),
            PeerError::NoTorrents => write!(f, "no torrent given (use --torrent FILE)"),
            PeerError::Io(e) => write!(f, "{e}"),
            PeerError::DownloadFailed { torrent, reason } => {
                write!(
                    f,
                    "{torrent}: download stopped: {reason} (verified pieces are kept)"
                )
            }
        }
    }
}

impl std::error::Error for PeerError {}

/// Runs a peer until `shutdown` is set (or, with `exit_when_done`, until every torrent is
/// complete). On the way out every torrent announces `stopped`.
pub fn run(config: PeerConfig, shutdown: Arc<AtomicBool>) -> Result<(), PeerError> {
    if config.torrents.is_empty() {
        return Err(PeerError::NoTorrents);
    }
    let metas = config
        .torrents
        .iter()
        .map(|p| Metainfo::load(p).map_err(PeerError::Torrent))
        .collect::<Result<Vec<_>, _>>()?;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr).map_err(|source| PeerError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(PeerError::Io)?;
    let peer_id = crate::tracker::protocol::generate_peer_id();

    let mut torrents = Vec::new();
    let mut receivers = Vec::new();
    let mut registry = HashMap::new();
    for (meta, path) in metas.into_iter().zip(&config.torrents) {
        let info_hash = meta.info_hash;
        let storage = Storage::open(&meta.info, &config.dir).map_err(PeerError::Storage)?;
        // Resume: only pieces whose hash matches what is on disk count as ours.
        let have = storage.verify(&meta.info);
        log::info!(
            "{}: {}/{} pieces on disk",
            meta.info.name,
            have.count(),
            have.len()
        );
        let (tx, rx) = crossbeam_channel::unbounded();
        let torrent = Arc::new(TorrentState::new(
            meta,
            storage,
            Picker::new(have),
            peer_id,
            shutdown.clone(),
            tx,
        ));
        if registry.insert(info_hash, torrent.clone()).is_some() {
            return Err(PeerError::DuplicateTorrent(path.clone()));
        }
        torrents.push(torrent);
        receivers.push(rx);
    }
    println!("listening on {local}");
    let acceptor = listener::start(
        listener,
        Arc::new(registry),
        config.upload_workers,
        shutdown.clone(),
    )
    .map_err(PeerError::Io)?;

    let mut announcers = Vec::new();
    for (torrent, events) in torrents.iter().zip(receivers) {
        let tiers = match &config.tracker {
            Some(url) => vec![vec![url.clone()]],
            None => torrent.meta.tracker_tiers(),
        };
        // Given peers first, so a slow or dead tracker does not hold them up.
        for addr in &config.connect {
            dial(torrent, *addr);
        }
        let mut announcer = Announcer::new(tiers.clone());
        let first = if tiers.is_empty() {
            None
        } else {
            match announcer.announce(&request(torrent, local.port(), Event::Started)) {
                Ok(reply) => Some(reply),
                // Without a tracker, a torrent can still run on peers given with --connect.
                Err(e) if !config.connect.is_empty() => {
                    log::warn!("{}: {e}", torrent.meta.info.name);
                    None
                }
                Err(source) => {
                    shutdown.store(true, Ordering::SeqCst);
                    let _ = acceptor.join();
                    return Err(PeerError::Tracker {
                        torrent: torrent.meta.info.name.clone(),
                        source,
                    });
                }
            }
        };
        let task = AnnounceTask {
            torrent: torrent.clone(),
            announcer,
            has_tracker: !tiers.is_empty(),
            port: local.port(),
            connect: config.connect.clone(),
        };
        announcers.push(
            std::thread::Builder::new()
                .name("announce".into())
                .spawn(move || task.run(first, events))
                .map_err(PeerError::Io)?,
        );
    }

    let outcome = watch(&torrents, &config, &shutdown);
    shutdown.store(true, Ordering::SeqCst);
    // An announce thread may be inside a regular announce to a tracker that stopped answering
    // (up to the client's 10 s timeout) before its `stopped` one: wait for it only so long.
    let deadline = Instant::now() + EXIT_GRACE;
    for handle in announcers {
        while !handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }
    let _ = acceptor.join();
    outcome
}

/// The main thread's loop: progress, completion lines, and the decision to stop.
fn watch(
    torrents: &[Arc<TorrentState>],
    config: &PeerConfig,
    shutdown: &AtomicBool,
) -> Result<(), PeerError> {
    let mut progress = Progress::new(torrents, config.bars);
    // Judged by what was on disk at start: a torrent that completed during the first
    // announces still gets its `complete` line.
    let mut reported: Vec<bool> = torrents.iter().map(|t| t.left_at_start == 0).collect();
    for t in torrents.iter().filter(|t| t.left_at_start == 0) {
        progress.println(&format!(
            "seeding {} {}",
            t.meta.info_hash, t.meta.info.name
        ));
    }
    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        progress.update(torrents);
        for (t, reported) in torrents.iter().zip(&mut reported) {
            if !*reported && t.is_complete() {
                *reported = true;
                progress.println(&completion_line(t));
            }
            if let Some(reason) = t.failure() {
                return Err(PeerError::DownloadFailed {
                    torrent: t.meta.info.name.clone(),
                    reason,
                });
            }
        }
        if config.exit_when_done && reported.iter().all(|r| *r) {
            break;
        }
    }
    progress.finish();
    Ok(())
}

/// `complete <hash> <name> bytes=.. secs=.. mbps=.. peers=addr=bytes,.. pieces=addr=n,..`
fn completion_line(t: &TorrentState) -> String {
    let secs = t.started.elapsed().as_secs_f64();
    let bytes = t.downloaded.load(Ordering::SeqCst);
    let stats = t.peer_stats();
    let join = |f: &dyn Fn(&crate::peer::torrent_state::PeerStats) -> u64| {
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

fn request(torrent: &TorrentState, port: u16, event: Event) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: torrent.meta.info_hash,
        peer_id: torrent.peer_id,
        port,
        uploaded: torrent.uploaded.load(Ordering::Relaxed),
        downloaded: torrent.downloaded.load(Ordering::Relaxed),
        left: torrent.left(),
        event,
        numwant: Some(50),
    }
}

/// The announce thread of one torrent.
struct AnnounceTask {
    torrent: Arc<TorrentState>,
    announcer: Announcer,
    has_tracker: bool,
    port: u16,
    /// Peers given with `--connect`: dialled at start (before the first announce) and again
    /// every [`REDIAL`] while no
    /// connection to them is open, since they may come up later or hang up.
    connect: Vec<SocketAddr>,
}

impl AnnounceTask {
    /// Re-announces at the tracker's interval, announces `completed` once the torrent is whole
    /// and `stopped` on shutdown, and dials the peers the tracker names.
    fn run(mut self, first: Option<AnnounceResponse>, events: Receiver<TorrentEvent>) {
        let torrent = self.torrent.clone();
        let mut next = handle_reply(&torrent, first.as_ref());
        let mut next_redial = Instant::now() + REDIAL;
        while !torrent.is_shutting_down() {
            if Instant::now() >= next_redial {
                for addr in &self.connect {
                    dial(&torrent, *addr);
                }
                next_redial = Instant::now() + REDIAL;
            }
            match events.recv_timeout(Duration::from_millis(200)) {
                Ok(TorrentEvent::Completed) if self.has_tracker => {
                    next = self.announce(Event::Completed)
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {
                    if self.has_tracker && Instant::now() >= next {
                        next = self.announce(Event::None);
                    }
                }
                // The torrent owns the sender, so this only happens once it is gone.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.has_tracker {
            self.announcer.set_timeout(STOPPED_TIMEOUT);
            self.announce(Event::Stopped);
        }
    }

    /// Announces once; returns when to announce next.
    fn announce(&mut self, event: Event) -> Instant {
        match self
            .announcer
            .announce(&request(&self.torrent, self.port, event))
        {
            Ok(reply) => handle_reply(&self.torrent, Some(&reply)),
            Err(e) => {
                log::warn!("{}: {e}", self.torrent.meta.info.name);
                Instant::now() + ANNOUNCE_RETRY
            }
        }
    }
}

/// Dials the peers of a tracker reply and returns when to announce next.
fn handle_reply(torrent: &Arc<TorrentState>, reply: Option<&AnnounceResponse>) -> Instant {
    let Some(reply) = reply else {
        return Instant::now() + ANNOUNCE_RETRY;
    };
    log::info!(
        "{}: tracker lists {} peers (complete {:?}, incomplete {:?})",
        torrent.meta.info.name,
        reply.peers.len(),
        reply.complete,
        reply.incomplete
    );
    for peer in &reply.peers {
        dial(torrent, peer.addr);
    }
    let interval = reply.interval.max(reply.min_interval.unwrap_or_default());
    Instant::now() + interval.clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// Opens an outgoing connection on its own thread, unless one to `addr` is already open or too
/// many are open. Seeders dial too, as other clients do: some peers (Transmission, for one)
/// never dial loopback addresses themselves, and a connection between two seeders closes as
/// soon as each has seen the other's bitfield.
pub fn dial(torrent: &Arc<TorrentState>, addr: SocketAddr) {
    if torrent.is_shutting_down() || torrent.connections.load(Ordering::SeqCst) >= MAX_OUTGOING {
        return;
    }
    if !torrent.claim_dial(addr) {
        return;
    }
    let torrent = torrent.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("peer-{addr}"))
        .spawn(move || {
            let result = connect(&torrent, addr);
            log::info!(
                "{}: peer {addr} left: {}",
                torrent.meta.info.name,
                connection::outcome(&result)
            );
            torrent.release_dial(addr);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread for {addr}: {e}");
    }
}

fn connect(torrent: &TorrentState, addr: SocketAddr) -> Result<(), ConnError> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(connection::WRITE_TIMEOUT))?;
    write_handshake(
        &mut stream,
        &Handshake::new(torrent.meta.info_hash.0, torrent.peer_id),
    )?;
    let theirs = read_handshake(&mut stream)?;
    if theirs.info_hash != torrent.meta.info_hash.0 {
        return Err(ConnError::WrongTorrent(InfoHash(theirs.info_hash)));
    }
    if theirs.peer_id == torrent.peer_id {
        torrent.ban(addr, theirs.peer_id);
        return Err(ConnError::OurOwnPeer);
    }
    log::info!("{}: connected to {addr}", torrent.meta.info.name);
    connection::run(stream, torrent, addr, theirs.peer_id)
}
