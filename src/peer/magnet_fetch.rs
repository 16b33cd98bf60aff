//! The metadata phase of a magnet link (BEP 9): find peers (the link's trackers and `x.pe`
//! peers, `--connect` peers, and the DHT's `get_peers` lookups of the info hash, see
//! [`dht_search::find_metadata_peers`]; all send addresses down one channel),
//! fetch the info dictionary from them with `ut_metadata` ([`metadata_peer`]), save it as
//! `<name>.torrent` in the peer's folder, and hand back a [`Metainfo`] with which the torrent
//! starts exactly as one given with `--torrent` does.
//!
//! Up to [`MAX_FETCHERS`] peers are asked at once, each on a thread of its own for at most
//! [`FETCH_LIMIT`](metadata_peer::FETCH_LIMIT); the first whose metadata hashes to the info
//! hash wins. A peer that sends wrong, oversized or malformed metadata is not asked again and
//! is banned from the torrent once it starts. A folder that already holds the torrent (a
//! restart) skips the phase.

use crate::dht::Dht;
use crate::metainfo::magnet::{Magnet, torrent_from_info};
use crate::metainfo::{InfoHash, Metainfo, MetainfoError};
use crate::peer::dht_search;
use crate::peer::metadata_peer::{self, FetchError, Us};
use crate::tracker::client::Announcer;
use crate::tracker::protocol::{AnnounceRequest, Event};
use crossbeam_channel::{Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Peers asked for the metadata at once.
pub const MAX_FETCHERS: usize = 4;
/// A peer that failed without deserving a ban is asked again after this long.
const RETRY: Duration = Duration::from_secs(10);
/// Addresses remembered; more are dropped.
const MAX_KNOWN: usize = 1000;
/// Re-announce bounds while the metadata is missing.
const ANNOUNCE_MIN: Duration = Duration::from_secs(5);
const ANNOUNCE_MAX: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(100);

/// A magnet link turned into a torrent.
pub struct Resolved {
    /// The torrent, from the fetched (or saved) metadata.
    pub meta: Metainfo,
    /// Where it is saved.
    pub path: PathBuf,
    /// The link's `x.pe` peers, to dial like `--connect` peers.
    pub peers: Vec<SocketAddr>,
    /// Peers that sent bad metadata, with their ids: banned from the torrent.
    pub banned: Vec<(SocketAddr, [u8; 20])>,
    /// How long the metadata took (zero when it was in the folder already).
    pub took: Duration,
}

impl Resolved {
    /// A torrent given as a file (`--torrent`), to start the same way.
    pub fn file(meta: Metainfo, path: &Path) -> Resolved {
        Resolved {
            meta,
            path: path.to_path_buf(),
            peers: Vec::new(),
            banned: Vec::new(),
            took: Duration::ZERO,
        }
    }
}

/// Why a magnet link did not become a torrent.
#[derive(Debug)]
pub enum MagnetFetchError {
    /// The process was stopped first.
    Stopped,
    /// The metadata matched the info hash but is no valid torrent.
    Torrent(MetainfoError),
    /// The `.torrent` could not be saved.
    Save { path: PathBuf, source: io::Error },
    /// A thread could not start.
    Io(io::Error),
}

impl fmt::Display for MagnetFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetFetchError::Stopped => write!(f, "stopped before the metadata arrived"),
            MagnetFetchError::Torrent(e) => write!(f, "metadata: {e}"),
            MagnetFetchError::Save { path, source } => {
                write!(f, "cannot save {}: {source}", path.display())
            }
            MagnetFetchError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MagnetFetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MagnetFetchError::Stopped => None,
            MagnetFetchError::Torrent(e) => Some(e),
            MagnetFetchError::Save { source, .. } => Some(source),
            MagnetFetchError::Io(e) => Some(e),
        }
    }
}

/// What the metadata phase needs of the process.
pub struct Context<'a> {
    /// The peer's folder.
    pub dir: &'a Path,
    /// Our peer id and port.
    pub us: Us,
    /// `--tracker`, which replaces the link's trackers.
    pub tracker: Option<&'a str>,
    /// `--connect` peers.
    pub connect: &'a [SocketAddr],
    /// Set when the process stops.
    pub shutdown: &'a AtomicBool,
    /// The process's DHT node, searched for the links' peers; `None` when it is off.
    pub dht: Option<Arc<Dht>>,
}

/// The metadata phase of every magnet link, all at once; `None` when the process was stopped
/// first. Prints `metadata HASH NAME secs=.. saved=PATH` for each; an error names its link.
pub fn resolve_all(
    magnets: &[Magnet],
    cx: &Context,
) -> Result<Option<Vec<Resolved>>, (InfoHash, MagnetFetchError)> {
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (magnets.iter())
            .map(|m| s.spawn(|| resolve(m, cx)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut all = Vec::new();
    for (result, magnet) in results.into_iter().zip(magnets) {
        let panicked = || MagnetFetchError::Io(io::Error::other("metadata thread panicked"));
        let resolved = match result.unwrap_or_else(|_| Err(panicked())) {
            Ok(r) => r,
            Err(MagnetFetchError::Stopped) => return Ok(None),
            Err(e) => return Err((magnet.info_hash, e)),
        };
        println!(
            "metadata {} {} secs={:.2} saved={}",
            resolved.meta.info_hash,
            resolved.meta.info.name,
            resolved.took.as_secs_f64(),
            resolved.path.display()
        );
        all.push(resolved);
    }
    Ok(Some(all))
}

/// Resolves a magnet link into a torrent: from the folder when a restart finds it saved,
/// otherwise from its peers.
pub fn resolve(magnet: &Magnet, cx: &Context) -> Result<Resolved, MagnetFetchError> {
    let peers: Vec<SocketAddr> = magnet
        .peers
        .iter()
        .filter_map(|p| match p.to_socket_addrs() {
            Ok(mut addrs) => addrs.next(),
            Err(e) => {
                log::warn!("magnet peer {p}: {e}");
                None
            }
        })
        .collect();
    let resolved = |meta, path, banned, took| Resolved {
        meta,
        path,
        peers: peers.clone(),
        banned,
        took,
    };
    if let Some((meta, path)) = saved(cx.dir, magnet) {
        log::info!("{}: metadata found in {}", meta.info.name, path.display());
        return Ok(resolved(meta, path, vec![], Duration::ZERO));
    }
    let started = Instant::now();
    let trackers: Vec<String> = match cx.tracker {
        Some(url) => vec![url.to_string()],
        None => magnet.trackers.clone(),
    };
    if trackers.is_empty() && peers.is_empty() && cx.connect.is_empty() && cx.dht.is_none() {
        log::warn!(
            "{}: the magnet link names no tracker (tr=) or peer (x.pe=), no --connect was \
             given and the DHT is off: waiting for peers that may never come",
            magnet.info_hash
        );
    }
    let (tx, rx) = crossbeam_channel::bounded(MAX_KNOWN);
    for addr in peers.iter().chain(cx.connect) {
        let _ = tx.try_send(*addr);
    }
    let done = Arc::new(AtomicBool::new(false));
    let info_hash = magnet.info_hash;
    // Neither finder is joined: an announce or lookup under way when the metadata arrives must
    // not hold the torrent up. Each ends after it, seeing `done`.
    let mut finders: Vec<(&str, Box<dyn FnOnce() + Send>)> = Vec::new();
    if let Some(dht) = cx.dht.clone() {
        let (tx, done) = (tx.clone(), done.clone());
        let search = move || dht_search::find_metadata_peers(&dht, info_hash, &tx, &done);
        finders.push(("magnet-dht", Box::new(search)));
    }
    if !trackers.is_empty() {
        let (trackers, done, us) = (trackers.clone(), done.clone(), cx.us);
        let announce = move || announce(trackers, info_hash, us, &tx, &done);
        finders.push(("magnet-announce", Box::new(announce)));
    }
    for (name, finder) in finders {
        let spawned = std::thread::Builder::new().name(name.into()).spawn(finder);
        if let Err(e) = spawned {
            done.store(true, Ordering::SeqCst);
            return Err(MagnetFetchError::Io(e));
        }
    }
    let outcome = ask_peers(magnet.info_hash, cx, &rx, &done);
    done.store(true, Ordering::SeqCst);
    let (info, banned) = outcome?;
    let (bytes, meta) = torrent_from_info(&info, &trackers).map_err(MagnetFetchError::Torrent)?;
    let path = save(cx.dir, &meta, &bytes)?;
    let took = started.elapsed();
    Ok(resolved(meta, path, banned, took))
}

/// The torrent saved in `dir` for this link by an earlier run, if any.
fn saved(dir: &Path, magnet: &Magnet) -> Option<(Metainfo, PathBuf)> {
    let name = magnet.name.as_deref()?;
    candidates(dir, name, magnet.info_hash)
        .into_iter()
        .filter_map(|path| Some((Metainfo::load(&path).ok()?, path)))
        .find(|(meta, _)| meta.info_hash == magnet.info_hash)
}

/// Where a torrent called `name` is saved: `<name>.torrent`, or `<name>-<hash>.torrent` when a
/// different torrent has that name already. `None` for a name that is no plain file name.
fn candidates(dir: &Path, name: &str, hash: InfoHash) -> Vec<PathBuf> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if !plain {
        return vec![];
    }
    let short = &hash.hex()[..8];
    vec![
        dir.join(format!("{name}.torrent")),
        dir.join(format!("{name}-{short}.torrent")),
    ]
}

/// Saves the torrent file, never over a different one.
fn save(dir: &Path, meta: &Metainfo, bytes: &[u8]) -> Result<PathBuf, MagnetFetchError> {
    let error = |path: &Path, source| MagnetFetchError::Save {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(|e| error(dir, e))?;
    let paths = candidates(dir, &meta.info.name, meta.info_hash);
    for path in &paths {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                file.write_all(bytes).map_err(|e| error(path, e))?;
                return Ok(path.clone());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let same = Metainfo::load(path).is_ok_and(|m| m.info_hash == meta.info_hash);
                if same {
                    return Ok(path.clone());
                }
            }
            Err(e) => return Err(error(path, e)),
        }
    }
    let taken = io::Error::new(io::ErrorKind::AlreadyExists, "a different torrent is there");
    Err(error(&paths[paths.len() - 1], taken))
}

/// What one fetch thread reports: the peer, its id if it got that far, and the outcome.
type Report = (SocketAddr, Option<[u8; 20]>, Result<Vec<u8>, FetchError>);

/// Asks the peers arriving on `found` for the metadata, [`MAX_FETCHERS`] at a time, until one
/// delivers. Returns it with the peers that sent bad metadata.
fn ask_peers(
    info_hash: InfoHash,
    cx: &Context,
    found: &Receiver<SocketAddr>,
    done: &AtomicBool,
) -> Result<(Vec<u8>, Vec<(SocketAddr, [u8; 20])>), MagnetFetchError> {
    let (report, reports) = crossbeam_channel::unbounded::<Report>();
    let mut known: Vec<SocketAddr> = Vec::new();
    let mut tried: HashMap<SocketAddr, Instant> = HashMap::new();
    let mut running: HashSet<SocketAddr> = HashSet::new();
    let mut banned: Vec<(SocketAddr, [u8; 20])> = Vec::new();
    std::thread::scope(|s| {
        loop {
            if cx.shutdown.load(Ordering::SeqCst) {
                done.store(true, Ordering::SeqCst);
                return Err(MagnetFetchError::Stopped);
            }
            while let Ok(addr) = found.try_recv() {
                if !known.contains(&addr) && known.len() < MAX_KNOWN {
                    known.push(addr);
                }
            }
            let now = Instant::now();
            let due = |a: &&SocketAddr| {
                !running.contains(*a)
                    && !banned.iter().any(|(b, _)| b == *a)
                    && tried.get(*a).is_none_or(|t| now - *t > RETRY)
            };
            let next: Vec<SocketAddr> = known
                .iter()
                .filter(due)
                .take(MAX_FETCHERS.saturating_sub(running.len()))
                .copied()
                .collect();
            for addr in next {
                tried.insert(addr, now);
                running.insert(addr);
                let report = report.clone();
                s.spawn(move || {
                    let mut id = None;
                    let result = metadata_peer::fetch(addr, info_hash, cx.us, done, &mut id);
                    let _ = report.send((addr, id, result));
                });
            }
            let Ok((addr, id, result)) = reports.recv_timeout(TICK) else {
                continue;
            };
            running.remove(&addr);
            match result {
                Ok(info) => {
                    log::info!("{info_hash}: metadata ({} bytes) from {addr}", info.len());
                    done.store(true, Ordering::SeqCst);
                    return Ok((info, banned));
                }
                Err(e) if e.deserves_ban() => {
                    log::warn!("{info_hash}: {addr} sent bad metadata, banned: {e}");
                    banned.push((addr, id.unwrap_or_default()));
                }
                Err(e) => log::info!("{info_hash}: no metadata from {addr}: {e}"),
            }
        }
    })
}

/// Announces the torrent to `trackers` until `stop`, sending the peers named down `found`.
fn announce(
    trackers: Vec<String>,
    info_hash: InfoHash,
    us: Us,
    found: &Sender<SocketAddr>,
    stop: &AtomicBool,
) {
    // Each link's tracker is a tier of its own, as other clients take them.
    let mut announcer = Announcer::new(trackers.into_iter().map(|t| vec![t]).collect());
    let mut event = Event::Started;
    let mut next = Instant::now();
    announcer.set_timeout(ANNOUNCE_MIN);
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            std::thread::sleep(TICK);
            continue;
        }
        let request = AnnounceRequest {
            info_hash,
            peer_id: us.peer_id,
            port: us.port,
            uploaded: 0,
            downloaded: 0,
            // Unknown until the metadata is in; not 0, which would make us a seeder.
            left: 1,
            event,
            numwant: Some(50),
        };
        next = Instant::now()
            + match announcer.announce(&request) {
                Ok(reply) => {
                    event = Event::None;
                    for peer in &reply.peers {
                        let _ = found.try_send(peer.addr);
                    }
                    reply.interval.clamp(ANNOUNCE_MIN, ANNOUNCE_MAX)
                }
                Err(e) => {
                    log::warn!("{info_hash}: {e}");
                    ANNOUNCE_MIN
                }
            };
    }
}
