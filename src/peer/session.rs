//! A running peer process: it seeds what its folder holds and downloads what it lacks, for
//! several torrents at once, until told to stop.
//!
//! Threads: the caller's thread (progress display, completion lines, shutdown), one acceptor
//! plus a fixed upload pool (see [`crate::peer::listener`]), per torrent one announce thread
//! (see [`crate::peer::announcing`]) and one choke thread (see [`crate::peer::peer_manager`]),
//! the DHT node's two threads (see [`crate::dht::node`]) with one lookup thread per public
//! torrent (see [`crate::peer::dht_search`]), and one thread per outgoing connection (the download
//! side, see [`crate::peer::dial`]).

use crate::disk::file_pool::{DEFAULT_MAX_OPEN_FILES, FilePool};
use crate::disk::resume::{self, CheckPlan};
use crate::disk::storage::{Storage, StorageError};
use crate::metainfo::magnet::Magnet;
use crate::metainfo::selection::{self, FileSpec, SelectionError};
use crate::metainfo::{InfoHash, Metainfo, MetainfoError};
use crate::peer::announcing::AnnounceTask;
use crate::peer::choker::DEFAULT_UPLOAD_SLOTS;
use crate::peer::connection_limits::{ConnectionLimits, DEFAULT_PER_PROCESS, DEFAULT_PER_TORRENT};
use crate::peer::dht_search;
use crate::peer::dial::dial;
use crate::peer::encryption::Encryption;
use crate::peer::hash_pool::HashPool;
use crate::peer::listener;
use crate::peer::magnet_fetch::{self, MagnetFetchError, Resolved};
use crate::peer::metadata_peer::Us;
use crate::peer::peer_feed;
use crate::peer::peer_manager;
use crate::peer::picker::Picker;
use crate::peer::progress::Progress;
use crate::peer::rate_limit::{Rate, RateLimits};
use crate::peer::torrent_state::{PeerStats, TorrentState};
use crate::tracker::client::AnnounceError;
use clap::builder::TypedValueParser;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the exit waits for the announce threads (their `stopped` announces) in all.
const EXIT_GRACE: Duration = Duration::from_secs(4);

/// How a peer is started: these are the `piecemeal peer` flags (the doc comments are their
/// help text).
#[derive(Clone, Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["torrents", "magnets"])))]
pub struct PeerConfig {
    /// The peer's folder (content is read from and written below it).
    #[arg(long)]
    pub dir: PathBuf,
    /// A .torrent file to serve; repeat for several.
    #[arg(long = "torrent")]
    pub torrents: Vec<PathBuf>,
    /// A magnet link to download (magnet:?xt=urn:btih:...); repeat for several. Its metadata
    /// is fetched from peers of the link's trackers (tr), its x.pe, --connect and the DHT, saved as
    /// NAME.torrent in --dir, and the download goes on as with --torrent.
    #[arg(long = "magnet", value_name = "URI", value_parser = Magnet::parse)]
    pub magnets: Vec<Magnet>,
    /// Address to listen on (default: every interface, IPv6 and IPv4).
    #[arg(long)]
    pub bind: Option<IpAddr>,
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
    /// Fetch only these files (of every torrent given); repeat for several. SPEC is a file
    /// index as `piecemeal show` numbers them (3), a range of them (2-5), or a glob on the
    /// path `show` prints (`*.mkv`; `*` also matches `/`, `?` one character). Pieces shared
    /// with other files are fetched whole. Done (the `complete` line, --exit-when-done) once
    /// the selected files are; the tracker still hears the whole torrent's bytes as `left`.
    #[arg(long = "only", value_name = "SPEC", value_parser = FileSpec::parse)]
    pub only: Vec<FileSpec>,
    /// Incoming handshakes served at once, on top of --max-connections (a worker serves an
    /// incoming connection for its whole life).
    #[arg(long, default_value_t = 64)]
    pub upload_workers: usize,
    /// Connections open at once for all torrents together, both directions. When full, a new
    /// one takes the place of one that exchanged no data for 30 s, or is refused.
    #[arg(long, default_value_t = DEFAULT_PER_PROCESS, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_connections: usize,
    /// Connections open at once per torrent, both directions (like --max-connections).
    #[arg(long, default_value_t = DEFAULT_PER_TORRENT, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_connections_per_torrent: usize,
    /// Upload limit for all torrents together, in bytes per second: 500k, 2M, 1.5M
    /// (k = 1024, M = 1024²); 0 is unlimited. Applies to every peer, local ones too.
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = Rate::parse)]
    pub max_upload_rate: Rate,
    /// Download limit for all torrents together, in bytes per second, like --max-upload-rate.
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = Rate::parse)]
    pub max_download_rate: Rate,
    /// Peers uploaded to at once per torrent (the fastest to us while downloading, in turns
    /// while seeding), plus one optimistic unchoke.
    #[arg(long, default_value_t = DEFAULT_UPLOAD_SLOTS, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub upload_slots: usize,
    /// Files kept open at once for all torrents together (the least recently used is closed
    /// first), so a torrent of many files needs no descriptor per file.
    #[arg(long, default_value_t = DEFAULT_MAX_OPEN_FILES, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_open_files: usize,
    /// Message stream encryption: `prefer` dials encrypted and falls back to plaintext,
    /// `require` speaks RC4-encrypted connections only, `off` plaintext only. Incoming
    /// connections may be either unless `require` or `off` says otherwise.
    #[arg(long, value_enum, default_value_t = Encryption::Prefer)]
    pub encryption: Encryption,
    /// Do not run the DHT node (it is never used for private torrents anyway).
    #[arg(long)]
    pub no_dht: bool,
    /// A DHT node to bootstrap from, HOST:PORT; repeat for several. Default: the public
    /// routers router.bittorrent.com, dht.transmissionbt.com and router.utorrent.com (6881),
    /// none when --bind is a loopback address. The table saved in the folder is asked first.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Draw progress bars (stdout is a terminal) instead of plain lines.
    #[arg(skip)]
    pub bars: bool,
}

/// Why a peer could not start or had to stop.
#[derive(Debug)]
pub enum PeerError {
    /// A `.torrent` file could not be read.
    Torrent(MetainfoError),
    /// A torrent's files could not be opened in the folder.
    Storage(StorageError),
    /// `--only` does not fit a torrent.
    Selection {
        torrent: String,
        source: SelectionError,
    },
    /// The listening socket could not be bound.
    Bind { addr: SocketAddr, source: io::Error },
    /// The first announce failed and no `--connect` peer was given.
    Tracker {
        torrent: String,
        source: AnnounceError,
    },
    /// Two `--torrent` files are the same torrent.
    DuplicateTorrent(PathBuf),
    /// No `--torrent` was given.
    NoTorrents,
    /// Another I/O failure while starting (the listening socket, a thread that cannot start).
    Io(io::Error),
    /// A torrent stopped downloading because of a disk error; the pieces already written stay.
    DownloadFailed { torrent: String, reason: String },
    /// A magnet link's metadata could not be saved or is no valid torrent.
    Magnet {
        info_hash: InfoHash,
        source: MagnetFetchError,
    },
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Torrent(e) => write!(f, "{e}"),
            PeerError::Storage(e) => write!(f, "{e}"),
            PeerError::Selection { torrent, source } => write!(f, "{torrent}: {source}"),
            PeerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            PeerError::Tracker { torrent, source } => write!(f, "{torrent}: {source}"),
            PeerError::DuplicateTorrent(p) => write!(f, "{}: torrent given twice", p.display()),
            PeerError::NoTorrents => {
                write!(f, "no torrent given (use --torrent FILE or --magnet URI)")
            }
            PeerError::Magnet { info_hash, source } => write!(f, "magnet {info_hash}: {source}"),
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

impl std::error::Error for PeerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PeerError::Torrent(e) => Some(e),
            PeerError::Storage(e) => Some(e),
            PeerError::Selection { source, .. } => Some(source),
            PeerError::Bind { source, .. } => Some(source),
            PeerError::Tracker { source, .. } => Some(source),
            PeerError::Io(e) => Some(e),
            PeerError::Magnet { source, .. } => Some(source),
            PeerError::DuplicateTorrent(_)
            | PeerError::NoTorrents
            | PeerError::DownloadFailed { .. } => None,
        }
    }
}

/// Runs a peer until `shutdown` is set (or, with `exit_when_done`, until every torrent is
/// complete). On the way out every torrent announces `stopped`.
pub fn run(config: PeerConfig, shutdown: Arc<AtomicBool>) -> Result<(), PeerError> {
    let begun = Instant::now();
    if config.torrents.is_empty() && config.magnets.is_empty() {
        return Err(PeerError::NoTorrents);
    }
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
    // Before the magnet links, whose peers it finds too; a link that turns out private keeps
    // off it (`with_dht` below).
    let all_private = config.magnets.is_empty() && starts.iter().all(|r| r.meta.info.private);
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
    let magnets = magnet_fetch::resolve_all(&config.magnets, &cx);
    if !matches!(magnets, Ok(Some(_))) {
        dht.iter().for_each(|d| d.shutdown());
    }
    match magnets {
        Ok(Some(resolved)) => starts.extend(resolved),
        Ok(None) => return Ok(()),
        Err((info_hash, source)) => return Err(PeerError::Magnet { info_hash, source }),
    }
    let limits = Arc::new(RateLimits::new(
        config.max_upload_rate,
        config.max_download_rate,
    ));

    let connection_limits = Arc::new(ConnectionLimits::new(
        config.max_connections_per_torrent,
        config.max_connections,
    ));
    let hashers = HashPool::start().map_err(PeerError::Io)?;
    let mut torrents = Vec::new();
    let mut receivers = Vec::new();
    let mut registry = HashMap::new();
    let mut records = Vec::new();
    let pool = FilePool::new(config.max_open_files);
    let mut connects = Vec::new();
    for Resolved {
        meta,
        path,
        peers,
        banned,
        ..
    } in starts
    {
        let info_hash = meta.info_hash;
        let private = meta.info.private;
        let files = selection::wanted_files(&meta.info, &config.only).map_err(|source| {
            PeerError::Selection {
                torrent: meta.info.name.clone(),
                source,
            }
        })?;
        let storage = Storage::open_selected(&meta.info, &config.dir, &files, &pool)
            .map_err(PeerError::Storage)?;
        // Resume: the pieces a valid record vouches for, and those whose hash matches (every core
        // hashes).
        let record = resume::path_for(&config.dir, &info_hash);
        let checking = Instant::now();
        let plan = start_plan(&record, &meta, &storage);
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
        let (tx, rx) = crossbeam_channel::unbounded();
        let torrent = Arc::new(
            TorrentState::new(
                meta,
                storage,
                Picker::wanting(have, wanted),
                peer_id,
                shutdown.clone(),
                tx,
            )
            .with_global_limits(limits.clone())
            .with_connection_limits(connection_limits.clone())
            .with_encryption(config.encryption)
            // BEP 27: a private torrent finds peers through its tracker only.
            .with_dht(dht.clone().filter(|_| !private)),
        );
        connection_limits.register(&torrent);
        hashers.attach(&torrent);
        for (addr, id) in banned {
            torrent.ban(addr, id);
        }
        torrent.feed.set_port(local.port());
        connects.push([config.connect.clone(), peers].concat());
        torrent.peers.set_upload_slots(config.upload_slots);
        if registry.insert(info_hash, torrent.clone()).is_some() {
            return Err(PeerError::DuplicateTorrent(path));
        }
        torrents.push(torrent);
        receivers.push(rx);
        records.push(record);
    }
    println!("listening on {local}");
    let acceptor = listener::start(
        listeners,
        Arc::new(registry),
        // Admitted incoming connections are at most --max-connections: the rest of the
        // workers are always there for handshakes, so admitted idle peers pin none.
        config.max_connections + config.upload_workers,
        config.encryption,
        shutdown.clone(),
    )
    .map_err(PeerError::Io)?;

    let mut chokers = Vec::new();
    for torrent in &torrents {
        let (torrent, fed) = (torrent.clone(), torrent.clone());
        chokers.push(
            std::thread::Builder::new()
                .name("choke".into())
                .spawn(move || peer_manager::run(torrent))
                .map_err(PeerError::Io)?,
        );
        chokers.push(
            std::thread::Builder::new()
                .name("feed".into())
                .spawn(move || peer_feed::run(fed))
                .map_err(PeerError::Io)?,
        );
    }
    let mut announcers = Vec::new();
    for ((torrent, events), connect) in torrents.iter().zip(receivers).zip(connects) {
        let tiers = match &config.tracker {
            Some(url) => vec![vec![url.clone()]],
            None => torrent.meta.tracker_tiers(),
        };
        // Given peers first, so a slow or dead tracker does not hold them up.
        for addr in &connect {
            dial(torrent, *addr);
        }
        let has_peers = !connect.is_empty();
        let mut task = AnnounceTask::new(torrent.clone(), tiers, local.port(), connect);
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
                shutdown.store(true, Ordering::SeqCst);
                let _ = acceptor.join();
                if let Some(dht) = &dht {
                    dht.shutdown();
                }
                return Err(PeerError::Tracker {
                    torrent: torrent.meta.info.name.clone(),
                    source,
                });
            }
        };
        announcers.push(
            std::thread::Builder::new()
                .name("announce".into())
                .spawn(move || task.run(first, events))
                .map_err(PeerError::Io)?,
        );
    }

    let mut savers = Vec::new();
    for (torrent, record) in torrents.iter().zip(records) {
        let torrent = torrent.clone();
        savers.push(
            std::thread::Builder::new()
                .name("resume".into())
                .spawn(move || crate::peer::resume_saving::run(torrent, record))
                .map_err(PeerError::Io)?,
        );
    }
    let mut searchers = Vec::new();
    for torrent in &torrents {
        let Some(node) = torrent.dht().cloned() else {
            continue;
        };
        let (torrent, port) = (torrent.clone(), local.port());
        searchers.push(
            std::thread::Builder::new()
                .name("dht-lookup".into())
                .spawn(move || dht_search::run(torrent, node, port))
                .map_err(PeerError::Io)?,
        );
    }

    let outcome = watch(&torrents, &config, &shutdown, begun);
    shutdown.store(true, Ordering::SeqCst);
    // Stopping the node ends the lookups within a step; then the table is saved.
    if let Some(dht) = &dht {
        dht.shutdown();
    }
    for handle in searchers {
        let _ = handle.join();
    }
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
    // The choke and feed threads see the shutdown flag within a second; the resume threads
    // save once more.
    for handle in chokers.into_iter().chain(savers) {
        let _ = handle.join();
    }
    let _ = acceptor.join();
    outcome
}

/// What the start-up check of `meta` hashes: everything, unless the resume record at `path`
/// is valid (then only the pieces of files changed since).
fn start_plan(path: &std::path::Path, meta: &Metainfo, storage: &Storage) -> CheckPlan {
    match resume::load(path, &meta.info_hash, &meta.info) {
        Ok(record) => resume::plan(&record, &storage.stamps(), &meta.info),
        Err(e) => {
            log::info!("{}: {e}: checking every piece", meta.info.name);
            CheckPlan::everything(meta.info.piece_count())
        }
    }
}

/// The main thread's loop: progress, completion lines, and the decision to stop.
/// `first-piece <hash> <name> secs=..` goes out when a torrent's first piece is verified,
/// counted from `begun` (the process's start: a magnet link's metadata phase included).
fn watch(
    torrents: &[Arc<TorrentState>],
    config: &PeerConfig,
    shutdown: &AtomicBool,
    begun: Instant,
) -> Result<(), PeerError> {
    let mut progress = Progress::new(torrents, config.bars);
    // Judged by what was on disk at start (complete with nothing downloaded): a torrent that
    // completed during the first announces still gets its `complete` line.
    let done_at_start =
        |t: &TorrentState| t.is_complete() && t.downloaded.load(Ordering::SeqCst) == 0;
    let mut reported: Vec<bool> = torrents.iter().map(|t| done_at_start(t)).collect();
    let mut first_piece = vec![false; torrents.len()];
    for t in torrents.iter().filter(|t| done_at_start(t)) {
        progress.println(&format!(
            "seeding {} {}",
            t.meta.info_hash, t.meta.info.name
        ));
    }
    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        progress.update(torrents);
        for (t, first) in torrents.iter().zip(&mut first_piece) {
            if !*first && t.downloaded.load(Ordering::SeqCst) > 0 {
                *first = true;
                let secs = begun.elapsed().as_secs_f64();
                let (hash, name) = (t.meta.info_hash, &t.meta.info.name);
                progress.println(&format!("first-piece {hash} {name} secs={secs:.2}"));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn wrapped_errors_are_the_source_and_keep_their_message() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let bind = PeerError::Bind {
            addr,
            source: io::Error::new(io::ErrorKind::AddrInUse, "in use"),
        };
        assert_eq!(bind.to_string(), "cannot listen on 127.0.0.1:1: in use");
        assert_eq!(bind.source().unwrap().to_string(), "in use");
        let io = PeerError::Io(io::Error::other("broken"));
        assert_eq!(io.to_string(), "broken");
        assert_eq!(io.source().unwrap().to_string(), "broken");
        let torrent = Metainfo::from_bytes(b"not bencode").unwrap_err();
        let message = torrent.to_string();
        let wrapped = PeerError::Torrent(torrent);
        assert_eq!(wrapped.to_string(), message);
        assert_eq!(wrapped.source().unwrap().to_string(), message);
        assert!(PeerError::NoTorrents.source().is_none());
        let failed = PeerError::DownloadFailed {
            torrent: "t".into(),
            reason: "disk full".into(),
        };
        assert!(failed.source().is_none());
    }
}
