//! The listening side of a peer: one acceptor thread hands each incoming connection to a fixed
//! worker pool, which reads the handshake, finds the torrent by info hash and runs the
//! connection. A silent or slow peer holds one worker at most until its time-outs fire, and a
//! full pool refuses new connections instead of queueing them without bound.
//!
//! By default a peer listens on every interface, IPv6 and IPv4 ([`bind`]); `--bind` narrows it
//! to one address.

use crate::lock::{read, write};
use crate::metainfo::InfoHash;
use crate::net::pool::ThreadPool;
use crate::peer::connection;
use crate::peer::encryption::{self, Encryption};
use crate::peer::error::{ConnError, outcome};
use crate::peer::handshake::{self, HANDSHAKE_TIMEOUT};
use crate::peer::open_connections::{Direction, Link};
use crate::peer::torrent_state::TorrentState;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The torrents a peer serves, by info hash.
pub type Registry = Arc<HashMap<InfoHash, Arc<TorrentState>>>;

/// The torrents a peer serves while torrents are added, paused and removed: each incoming
/// connection looks its torrent up in the set of the moment it arrived (a paused or removed
/// torrent is refused).
#[derive(Default)]
pub struct Torrents {
    current: RwLock<Registry>,
}

impl Torrents {
    /// The torrents served now.
    pub fn snapshot(&self) -> Registry {
        read(&self.current).clone()
    }

    /// Serves `torrent` from now on (in place of one with its info hash).
    pub fn insert(&self, torrent: Arc<TorrentState>) {
        let mut current = write(&self.current);
        let mut next = HashMap::clone(&current);
        next.insert(torrent.meta.info_hash, torrent);
        *current = Arc::new(next);
    }

    /// Stops serving `torrent` (when it is still the one served for its info hash).
    pub fn remove(&self, torrent: &Arc<TorrentState>) {
        let mut current = write(&self.current);
        let hash = torrent.meta.info_hash;
        if current.get(&hash).is_some_and(|t| Arc::ptr_eq(t, torrent)) {
            let mut next = HashMap::clone(&current);
            next.remove(&hash);
            *current = Arc::new(next);
        }
    }
}

/// The listening sockets of a peer on `port` (0: a free one): on `ip` alone when given;
/// otherwise on every interface, `[::]` (which takes IPv4 too where the system makes it
/// dual-stack, as Linux does by default) plus `0.0.0.0` where `[::]` is IPv6 only, or
/// `0.0.0.0` alone on a system without IPv6. The first socket is the one to report.
pub fn bind(ip: Option<IpAddr>, port: u16) -> Result<Vec<TcpListener>, (SocketAddr, io::Error)> {
    let bind_one = |addr: SocketAddr| TcpListener::bind(addr).map_err(|e| (addr, e));
    let v4_any = |port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    if let Some(ip) = ip {
        return Ok(vec![bind_one(SocketAddr::new(ip, port))?]);
    }
    let v6_any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    match bind_one(v6_any) {
        Ok(v6) => {
            let port = v6.local_addr().map_err(|e| (v6_any, e))?.port();
            // On a dual-stack socket this fails (the port is taken for IPv4 as well): nothing
            // more is needed. Where it succeeds, IPv4 needed a socket of its own.
            Ok(match TcpListener::bind(v4_any(port)) {
                Ok(v4) => vec![v6, v4],
                Err(_) => vec![v6],
            })
        }
        Err((addr, e)) if e.kind() == io::ErrorKind::AddrInUse => Err((addr, e)),
        // No IPv6 on this system (or in this container).
        Err(_) => Ok(vec![bind_one(v4_any(port))?]),
    }
}

/// Starts accepting on `listeners` until `shutdown` is set. `workers` bounds the number of
/// incoming connections served at once.
pub fn start(
    listeners: Vec<TcpListener>,
    torrents: Arc<Torrents>,
    workers: usize,
    encryption: Encryption,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    // Non-blocking accept lets the acceptor notice shutdown without a wake-up connection, and
    // serve several sockets from one thread.
    for listener in &listeners {
        listener.set_nonblocking(true)?;
    }
    // No queue: a connection is taken only when a worker is free for it.
    let pool = ThreadPool::new("upload", workers, 0)?;
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            while !shutdown.load(Ordering::SeqCst) {
                let mut idle = true;
                for listener in &listeners {
                    match listener.accept() {
                        Ok((stream, addr)) => {
                            idle = false;
                            // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d;
                            // it is the same peer as a.b.c.d (bans, stats, duplicates).
                            let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                            let torrents = torrents.snapshot();
                            if !pool.try_execute(move || serve(stream, addr, &torrents, encryption))
                            {
                                log::warn!(
                                    "{addr}: all {workers} upload workers busy, refusing connection"
                                );
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            log::warn!("accept failed: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            // Dropping the pool waits for the workers, whose connections see the shutdown flag.
        })
}

fn serve(stream: TcpStream, addr: SocketAddr, torrents: &Registry, encryption: Encryption) {
    // Info, not debug: a refused handshake (a plaintext one under --encryption require, say)
    // is what a user looking into "why does this client not connect" needs to see.
    if let Err(e) = accept_handshake(stream, addr, torrents, encryption) {
        log::info!("{addr}: handshake refused: {e}");
    }
}

/// Sets the socket up for the handshake, answers it, and runs the connection until it ends.
fn accept_handshake(
    stream: TcpStream,
    addr: SocketAddr,
    torrents: &Registry,
    encryption: Encryption,
) -> Result<(), ConnError> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(connection::WRITE_TIMEOUT))?;
    let (mut stream, torrents) = encryption::accept(stream, torrents, encryption)?;
    let (torrent, theirs) = handshake::answer(&mut stream, &torrents)?;
    let link = Link {
        addr,
        peer_id: theirs.peer_id,
        direction: Direction::Incoming,
    };
    let admitted = torrent.admit(link, stream.socket().try_clone().ok())?;
    log::info!(
        "{}: incoming peer {addr}{}",
        torrent.meta.info.name,
        stream.describe()
    );
    let result = connection::run(stream, torrent, addr, &theirs);
    drop(admitted);
    log::info!(
        "{}: peer {addr} left: {}",
        torrent.meta.info.name,
        outcome(&result)
    );
    Ok(())
}
