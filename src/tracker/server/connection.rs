//! A worker's part of a connection: answer the one complete request the waiting room handed
//! over, then give a keep-alive connection back to the room or close it. A worker never waits
//! for a client to send anything; it only writes (with a deadline).

use super::routes::{Reply, Service, route};
use super::waiting_room::Doorbell;
use crate::net::http::{self, Request};
use log::debug;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Time allowed for writing a reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One open connection to the tracker, in the room or with a worker.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) remote: SocketAddr,
    /// Input received and not yet used: the start of the next request.
    pub(super) buf: Vec<u8>,
    _ticket: Ticket,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, remote: SocketAddr, ticket: Ticket) -> Conn {
        Conn {
            stream,
            remote,
            buf: Vec::new(),
            _ticket: ticket,
        }
    }
}

/// Counts a connection as open for as long as it lives (the waiting room's cap).
pub(super) struct Ticket(Arc<AtomicUsize>);

impl Ticket {
    pub(super) fn new(open: Arc<AtomicUsize>) -> Ticket {
        open.fetch_add(1, Ordering::SeqCst);
        Ticket(open)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers `request`, then hands the connection back to the room if the client keeps it open.
pub(super) fn serve(
    mut conn: Conn,
    request: Request,
    keep_alive: bool,
    service: &Service,
    doorbell: &Doorbell,
) {
    let reply = route(
        &request,
        conn.remote.ip().to_canonical(),
        service,
        Instant::now(),
    );
    debug!(
        "{} {} {} -> {}{}",
        conn.remote,
        request.method,
        request.path(),
        reply.status,
        reply
            .failure
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default()
    );
    if !write(&mut conn, &reply, keep_alive) {
        return;
    }
    if keep_alive && conn.stream.set_nonblocking(true).is_ok() {
        doorbell.give_back(conn);
    }
}

/// Sends an error reply to a request that could not be read, then closes.
pub(super) fn refuse(mut conn: Conn, reply: Reply) {
    if write(&mut conn, &reply, false) {
        linger(&mut conn.stream);
    }
}

/// Writes `reply` (blocking, bounded by [`WRITE_TIMEOUT`]); `false` if the client is gone.
fn write(conn: &mut Conn, reply: &Reply, keep_alive: bool) -> bool {
    let stream = &mut conn.stream;
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return false;
    }
    match http::write_reply(
        stream,
        reply.status,
        reply.content_type,
        &reply.body,
        keep_alive,
    ) {
        Ok(()) => true,
        Err(e) => {
            debug!("{}: cannot send reply: {e}", conn.remote);
            false
        }
    }
}

/// After an error reply, reads (for at most 200 ms and 256 KiB) what the client is still
/// sending: closing a socket with unread input resets the connection, which can destroy the reply
/// in flight.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(200);
    let mut budget: usize = 256 * 1024;
    let mut scratch = [0u8; 4096];
    while budget > 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}
