//! The UDP tracker (BEP 15) on the same port as the HTTP one.
//!
//! A fixed set of blocking threads, each with its own socket bound to the tracker's address
//! with `SO_REUSEPORT`, so the kernel spreads clients over them and no thread waits on another's
//! socket. Each thread takes the packets waiting on its socket in one batch (`batch.rs`),
//! answers each (`answer.rs`, pure) and sends the replies in one batch; a 200 ms read time-out
//! lets it see the shutdown flag. Connection ids (`connection_id.rs`) need no table, so a flood
//! of connects costs no memory.

mod answer;
mod batch;
mod connection_id;

use super::routes::Service;
use answer::{Scratch, answer};
use batch::Batch;
use connection_id::ConnectionIds;
use log::debug;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a thread waits for a packet before looking at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);

/// Binds `threads` sockets to `addr` (none for 0: UDP off).
pub(super) fn bind(addr: SocketAddr, threads: usize) -> io::Result<Vec<UdpSocket>> {
    (0..threads).map(|_| bind_one(addr)).collect()
}

/// Starts one thread on each socket; they run until `stopping` is set.
pub(super) fn start(
    sockets: Vec<UdpSocket>,
    service: Arc<Service>,
    stopping: Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let ids = Arc::new(ConnectionIds::new(Instant::now()));
    let mut started = Vec::with_capacity(sockets.len());
    for (n, socket) in sockets.into_iter().enumerate() {
        let (service, ids, flag) = (service.clone(), ids.clone(), stopping.clone());
        let thread = std::thread::Builder::new()
            .name(format!("tracker-udp-{n}"))
            .spawn(move || serve(&socket, &service, &ids, &flag));
        match thread {
            Ok(thread) => started.push(thread),
            Err(e) => {
                stopping.store(true, Ordering::SeqCst);
                started.into_iter().for_each(|t| drop(t.join()));
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// One socket of the group sharing `addr`.
fn bind_one(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket.into())
}

fn serve(socket: &UdpSocket, service: &Service, ids: &ConnectionIds, stopping: &AtomicBool) {
    let mut batch = Batch::new();
    let mut scratch = Scratch::default();
    while !stopping.load(Ordering::Relaxed) {
        match batch.receive(socket) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors of earlier replies surface here on some systems; not fatal.
                debug!("udp tracker receive: {e}");
                continue;
            }
        }
        // One clock reading per batch: connection ids and expiry are coarse.
        let now = Instant::now();
        batch.answer_each(|packet, from, out| {
            answer(packet, from, service, ids, now, &mut scratch, out)
        });
        batch.send(socket);
    }
}
