//! Outgoing connections: one thread per dialled peer, which connects, exchanges handshakes and
//! then runs the connection loop (the download side of a torrent).

use crate::peer::connection;
use crate::peer::error::{ConnError, outcome};
use crate::peer::handshake::{self, HANDSHAKE_TIMEOUT};
use crate::peer::open_connections::{Direction, Link};
use crate::peer::torrent_state::TorrentState;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Outgoing connections per torrent.
const MAX_OUTGOING: usize = 40;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the first connections of a download wait for the other dials (see [`connect`]).
const START_TOGETHER: Duration = Duration::from_secs(1);

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
    torrent.dials_in_handshake.fetch_add(1, Ordering::SeqCst);
    let shared = torrent.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("peer-{addr}"))
        .spawn(move || {
            let result = connect(&shared, addr);
            log::info!(
                "{}: peer {addr} left: {}",
                shared.meta.info.name,
                outcome(&result)
            );
            shared.release_dial(addr);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread for {addr}: {e}");
        torrent.dials_in_handshake.fetch_sub(1, Ordering::SeqCst);
        torrent.release_dial(addr);
    }
}

/// Connects to `addr`, exchanges handshakes and runs the connection until it ends.
///
/// Before the first piece of a download arrives, a connection past its handshake waits (at
/// most [`START_TOGETHER`]) until the other dials in progress are past theirs or failed, so the
/// download starts from every peer the tracker named at once: on a fast link the first
/// connection up would otherwise fetch a small torrent alone before the others are open.
fn connect(torrent: &TorrentState, addr: SocketAddr) -> Result<(), ConnError> {
    let handshake = shake_hands(torrent, addr);
    torrent.dials_in_handshake.fetch_sub(1, Ordering::SeqCst);
    let (stream, remote_id) = handshake?;
    // Admitted before the wait, so an incoming twin of this connection (a simultaneous open)
    // is refused before it starts work it would lose.
    let link = Link {
        addr,
        peer_id: remote_id,
        direction: Direction::Outgoing,
    };
    let _admitted = torrent.admit(link, stream.try_clone().ok())?;
    let deadline = Instant::now() + START_TOGETHER;
    while torrent.dials_in_handshake.load(Ordering::SeqCst) > 0
        && torrent.downloaded.load(Ordering::SeqCst) == 0
        && torrent.is_downloading()
        && !torrent.is_shutting_down()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    log::info!("{}: connected to {addr}", torrent.meta.info.name);
    connection::run(stream, torrent, addr, remote_id)
}

/// Connects to `addr` and exchanges handshakes; returns the stream and the remote peer id.
fn shake_hands(
    torrent: &TorrentState,
    addr: SocketAddr,
) -> Result<(TcpStream, [u8; 20]), ConnError> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(connection::WRITE_TIMEOUT))?;
    let remote_id = handshake::initiate(&mut stream, torrent, addr)?;
    Ok((stream, remote_id))
}
