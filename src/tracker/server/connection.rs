//! A worker's part of a connection: answer the one complete request the waiting room handed
//! over, then give a keep-alive connection back to the room or close it. A worker never waits
//! for a client to send anything; it only writes (with a deadline).

use super::routes::{Reply, Service, route};
use super::waiting_room::Doorbell;
use crate::net::http::{self, Request, linger};
use log::debug;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
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
    if write(&mut conn, &reply, keep_alive) && keep_alive {
        doorbell.give_back(conn);
    }
}

/// Sends an error reply to a request that could not be read, then closes.
pub(super) fn refuse(mut conn: Conn, reply: Reply) {
    if write(&mut conn, &reply, false) && conn.stream.set_nonblocking(false).is_ok() {
        linger(&mut conn.stream);
    }
}

/// Writes `reply` within [`WRITE_TIMEOUT`]; `false` if the client is gone or does not read.
fn write(conn: &mut Conn, reply: &Reply, keep_alive: bool) -> bool {
    let mut out = Patient {
        stream: &conn.stream,
        deadline: Instant::now() + WRITE_TIMEOUT,
    };
    match http::write_reply(
        &mut out,
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

/// Writes to a non-blocking socket, waiting (until `deadline`) only when its buffer is full.
/// A reply nearly always fits the socket buffer at once, so the common case is one `write`,
/// with no switching the socket between blocking and non-blocking.
struct Patient<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Write for Patient<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match (&mut &*self.stream).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut fd = libc::pollfd {
                fd: self.stream.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            let millis = i32::try_from(left.as_millis() + 1).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd, exclusively borrowed for the call.
            if unsafe { libc::poll(&mut fd, 1, millis) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
