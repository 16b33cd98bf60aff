//! Outgoing connections: one thread per dialled peer, which connects, exchanges handshakes and
//! then runs the connection loop (the download side of a torrent).

use crate::peer::connection;
use crate::peer::error::{ConnError, outcome};
use crate::peer::handshake::{self, HANDSHAKE_TIMEOUT};
use crate::peer::open_connections::{Direction, Link};
use crate::peer::torrent_state::TorrentState;
use crate::wire::Handshake;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Outgoing connections (dials in progress or open) per torrent.
const MAX_OUTGOING: usize = 40;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens an outgoing connection on its own thread, unless one to `addr` is already open or too
/// many outgoing ones are. Incoming connections do not stop a dial: a full table makes room by
/// dropping an idle connection (or refuses this one) once the handshake is done. Seeders dial too, as other clients do: some peers (Transmission, for one)
/// never dial loopback addresses themselves, and a connection between two seeders closes as
/// soon as each has seen the other's bitfield.
pub fn dial(torrent: &Arc<TorrentState>, addr: SocketAddr) {
    if torrent.is_shutting_down() || torrent.dialled_count() >= MAX_OUTGOING {
        return;
    }
    if !torrent.claim_dial(addr) {
        return;
    }
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
        torrent.release_dial(addr);
    }
}

/// Connects to `addr`, exchanges handshakes and runs the connection until it ends.
fn connect(torrent: &TorrentState, addr: SocketAddr) -> Result<(), ConnError> {
    let (stream, theirs) = shake_hands(torrent, addr)?;
    // Admitted before it starts, so an incoming twin of this connection (a simultaneous open)
    // is refused before it does work it would lose.
    let link = Link {
        addr,
        peer_id: theirs.peer_id,
        direction: Direction::Outgoing,
    };
    let _admitted = torrent.admit(link, stream.try_clone().ok())?;
    log::info!("{}: connected to {addr}", torrent.meta.info.name);
    connection::run(stream, torrent, addr, &theirs)
}

/// Connects to `addr` and exchanges handshakes; returns the stream and the remote's handshake.
fn shake_hands(
    torrent: &TorrentState,
    addr: SocketAddr,
) -> Result<(TcpStream, Handshake), ConnError> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(connection::WRITE_TIMEOUT))?;
    let theirs = handshake::initiate(&mut stream, torrent, addr)?;
    Ok((stream, theirs))
}
