//! The listening side of a peer: one acceptor thread hands each incoming connection to a fixed
//! worker pool, which reads the handshake, finds the torrent by info hash and runs the
//! connection. A silent or slow peer holds one worker at most until its time-outs fire, and a
//! full pool refuses new connections instead of queueing them without bound.

use crate::metainfo::InfoHash;
use crate::net::pool::ThreadPool;
use crate::peer::connection;
use crate::peer::error::{ConnError, outcome};
use crate::peer::handshake::{self, HANDSHAKE_TIMEOUT};
use crate::peer::torrent_state::TorrentState;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The torrents a peer serves, by info hash.
pub type Registry = Arc<HashMap<InfoHash, Arc<TorrentState>>>;

/// Starts accepting on `listener` until `shutdown` is set. `workers` bounds the number of
/// incoming connections served at once.
pub fn start(
    listener: TcpListener,
    torrents: Registry,
    workers: usize,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    // Non-blocking accept lets the acceptor notice shutdown without a wake-up connection.
    listener.set_nonblocking(true)?;
    // No queue: a connection is taken only when a worker is free for it.
    let pool = ThreadPool::new("upload", workers, 0)?;
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            while !shutdown.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, addr)) => {
                        let torrents = torrents.clone();
                        if !pool.try_execute(move || serve(stream, addr, &torrents)) {
                            log::warn!(
                                "{addr}: all {workers} upload workers busy, refusing connection"
                            );
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        log::warn!("accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            // Dropping the pool waits for the workers, whose connections see the shutdown flag.
        })
}

fn serve(stream: TcpStream, addr: SocketAddr, torrents: &Registry) {
    // Info, not debug: a refused handshake (an encrypted one, say) is what a user
    // looking into "why does this client not connect" needs to see.
    if let Err(e) = accept_handshake(stream, addr, torrents) {
        log::info!("{addr}: handshake refused: {e}");
    }
}

/// Sets the socket up for the handshake, answers it, and runs the connection until it ends.
fn accept_handshake(
    mut stream: TcpStream,
    addr: SocketAddr,
    torrents: &Registry,
) -> Result<(), ConnError> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(connection::WRITE_TIMEOUT))?;
    let (torrent, remote_id) = handshake::answer(&mut stream, torrents)?;
    log::info!("{}: incoming peer {addr}", torrent.meta.info.name);
    let result = connection::run(stream, torrent, addr, remote_id);
    log::info!(
        "{}: peer {addr} left: {}",
        torrent.meta.info.name,
        outcome(&result)
    );
    Ok(())
}
