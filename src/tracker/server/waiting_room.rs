//! The waiting room: one thread (`tracker-room`) that accepts connections and holds every open
//! one while it is idle or still sending its request, watching them all with one `poll(2)`.
//! A connection goes to a worker only once a whole request has arrived, so a client that sends
//! nothing, trickles a byte at a time or keeps its connection open between requests costs a
//! file descriptor and a small buffer, never a worker. Workers hand keep-alive connections back
//! here after their reply (through a channel, ringing the doorbell to wake the `poll`).
//!
//! Bounds: each connection must deliver a complete request within the request deadline of
//! entering the room (accepted, or handed back after a reply), else it is closed (with a `408`
//! when it had sent part of one). At most `max_open` connections are open at once; when full,
//! the oldest one in the room is closed to make space, so a flood of silent connections
//! pushes out silent connections, not the requests of real clients. A `503` is sent only when
//! every worker is busy and their queue is full.

use super::connection::{Conn, Ticket, refuse, serve};
use super::routes::{Reply, Service};
use crate::net::http::{self, HttpError, Parsed};
use crate::net::pool::ThreadPool;
use crossbeam_channel::{Receiver, Sender, unbounded};
use log::{debug, warn};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How workers give connections back, and how anyone wakes the room.
#[derive(Clone)]
pub(super) struct Doorbell {
    back: Sender<Conn>,
    bell: Arc<UnixStream>,
}

impl Doorbell {
    /// Returns a kept-alive connection to the room.
    pub(super) fn give_back(&self, conn: Conn) {
        if self.back.send(conn).is_ok() {
            self.ring();
        }
    }

    /// Wakes the room's `poll`. A full pipe already means "wake up", so that error is ignored.
    pub(super) fn ring(&self) {
        let _ = (&*self.bell).write(&[1]);
    }
}

/// A connection in the room and the moment it entered it.
struct Guest {
    conn: Conn,
    since: Instant,
}

/// The room's state, owned by its thread.
pub(super) struct Room {
    listener: TcpListener,
    guests: Vec<Guest>,
    returned: Receiver<Conn>,
    bell: UnixStream,
    open: Arc<AtomicUsize>,
    max_open: usize,
    pool: ThreadPool,
    service: Arc<Service>,
    doorbell: Doorbell,
    stopping: Arc<AtomicBool>,
}

impl Room {
    /// A room for `listener`'s connections; the doorbell returned stops it (after `stopping` is
    /// set) and is what workers give connections back through.
    pub(super) fn new(
        listener: TcpListener,
        max_open: usize,
        pool: ThreadPool,
        service: Arc<Service>,
        stopping: Arc<AtomicBool>,
    ) -> io::Result<(Room, Doorbell)> {
        listener.set_nonblocking(true)?;
        let (bell, ringer) = UnixStream::pair()?;
        bell.set_nonblocking(true)?;
        ringer.set_nonblocking(true)?;
        let (back, returned) = unbounded();
        let doorbell = Doorbell {
            back,
            bell: Arc::new(ringer),
        };
        let room = Room {
            listener,
            guests: Vec::new(),
            returned,
            bell,
            open: Arc::new(AtomicUsize::new(0)),
            max_open: within_fd_limit(max_open).max(1),
            pool,
            service,
            doorbell: doorbell.clone(),
            stopping,
        };
        Ok((room, doorbell))
    }

    /// Runs until `stopping` is set and the doorbell rings; then lets the workers finish.
    pub(super) fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        while !self.stopping.load(Ordering::SeqCst) {
            fds.clear();
            for fd in [self.bell.as_raw_fd(), self.listener.as_raw_fd()] {
                fds.push(pollfd(fd));
            }
            fds.extend(
                self.guests
                    .iter()
                    .map(|g| pollfd(g.conn.stream.as_raw_fd())),
            );
            let timeout = self.next_deadline().map_or(-1, |at| {
                // Round up so a wake-up never comes just before the deadline it is for.
                let left = at.saturating_duration_since(Instant::now());
                i32::try_from(left.as_millis() + 1).unwrap_or(i32::MAX)
            });
            // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("tracker poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            // Guests first, by index, before new ones shift the positions `fds` refers to.
            self.serve_readable(&fds[2..]);
            if fds[0].revents != 0 {
                self.take_returned();
            }
            if fds[1].revents != 0 {
                self.accept_all();
            }
            self.expire(Instant::now());
        }
        // Dropping the pool waits for requests in flight, each bounded by the write deadline.
    }

    fn next_deadline(&self) -> Option<Instant> {
        let deadline = self.service.limits.deadline;
        self.guests.iter().map(|g| g.since + deadline).min()
    }

    /// Reads what each readable guest sent; complete requests go to a worker.
    fn serve_readable(&mut self, fds: &[libc::pollfd]) {
        // Backwards, so `swap_remove` only moves guests already looked at.
        for i in (0..fds.len()).rev() {
            if fds[i].revents == 0 {
                continue;
            }
            let conn = &mut self.guests[i].conn;
            match read_available(
                conn,
                self.service.limits.max_head + self.service.limits.max_body,
            ) {
                Ok(()) => self.examine(i),
                Err(()) => {
                    self.guests.swap_remove(i);
                }
            }
        }
    }

    /// Looks at guest `i`'s input: sends a complete request to a worker, answers a bad one.
    fn examine(&mut self, i: usize) {
        match http::parse_request(&self.guests[i].conn.buf, &self.service.limits) {
            Ok(Parsed::Partial { continue_now }) => {
                if continue_now {
                    // curl holds back a body until told to go on; one non-blocking write.
                    let _ = self.guests[i]
                        .conn
                        .stream
                        .write(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
            }
            Ok(Parsed::Complete {
                request,
                used,
                keep_alive,
            }) => {
                let mut conn = self.guests.swap_remove(i).conn;
                conn.buf.drain(..used);
                let service = self.service.clone();
                let doorbell = self.doorbell.clone();
                let refused = self.pool.try_execute_or_return(conn, move |conn| {
                    serve(conn, request, keep_alive, &service, &doorbell)
                });
                if let Some(conn) = refused {
                    warn!("tracker busy: every worker and queue place taken");
                    send_and_close(conn, &Reply::json_failure(503, "tracker busy, retry later"));
                }
            }
            Err(e) => {
                let conn = self.guests.swap_remove(i).conn;
                debug!("{}: bad request: {e}", conn.remote);
                let reply = match e {
                    HttpError::HeadTooLarge(_) => Reply::json_failure(431, &e.to_string()),
                    HttpError::BodyTooLarge(_) => Reply::json_failure(413, &e.to_string()),
                    _ => Reply::json_failure(400, &e.to_string()),
                };
                // The client may still be sending: a worker answers and drains it briefly, so
                // the close does not reset the connection under the reply.
                if let Some(conn) = self
                    .pool
                    .try_execute_or_return(conn, move |c| refuse(c, reply))
                {
                    drop(conn);
                }
            }
        }
    }

    /// Welcomes the connections workers gave back; a pipelined request may already be here.
    fn take_returned(&mut self) {
        let mut drain = [0u8; 64];
        while matches!((&self.bell).read(&mut drain), Ok(n) if n > 0) {}
        let now = Instant::now();
        while let Ok(conn) = self.returned.try_recv() {
            self.guests.push(Guest { conn, since: now });
            if !self.guests.last().is_some_and(|g| g.conn.buf.is_empty()) {
                self.examine(self.guests.len() - 1);
            }
        }
    }

    /// Accepts every waiting connection, making space by closing the oldest guest when full.
    fn accept_all(&mut self) {
        loop {
            let (stream, remote) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Typically out of file descriptors: the next poll round retries.
                    warn!("tracker accept failed: {e}");
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            if self.open.load(Ordering::SeqCst) >= self.max_open {
                let oldest = (0..self.guests.len()).min_by_key(|&i| self.guests[i].since);
                match oldest {
                    Some(i) => {
                        debug!("connection cap reached: closing the oldest waiting connection");
                        self.guests.swap_remove(i);
                    }
                    None => {
                        // Every open connection is with a worker: really overloaded.
                        let conn = Conn::new(stream, remote, Ticket::new(self.open.clone()));
                        send_and_close(conn, &Reply::json_failure(503, "tracker busy"));
                        continue;
                    }
                }
            }
            let conn = Conn::new(stream, remote, Ticket::new(self.open.clone()));
            self.guests.push(Guest {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Closes the guests whose request did not arrive in time: silently when they had sent
    /// nothing (an idle keep-alive connection), with a `408` when they had sent part of one.
    fn expire(&mut self, now: Instant) {
        let deadline = self.service.limits.deadline;
        let mut i = 0;
        while i < self.guests.len() {
            if now.saturating_duration_since(self.guests[i].since) < deadline {
                i += 1;
                continue;
            }
            let conn = self.guests.swap_remove(i).conn;
            if !conn.buf.is_empty() {
                let reason = HttpError::Timeout(deadline).to_string();
                send_and_close(conn, &Reply::json_failure(408, &reason));
            }
        }
    }
}

/// `max_open`, lowered to leave 64 descriptors of the process's limit for everything else: at
/// the limit `accept` fails while the listener stays readable, and the room would spin.
fn within_fd_limit(max_open: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return max_open;
    }
    let allowed = usize::try_from(limit.rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(64);
    if allowed < max_open {
        warn!("only {allowed} connections fit the open-file limit (ulimit -n); capping at that");
    }
    max_open.min(allowed)
}

/// A pollfd waiting for input on `fd`.
fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads what `conn` has without blocking, up to `max` buffered bytes. `Err` means the
/// connection is finished (closed by the client, failed, or over the limit without a complete
/// request: the parser reports that one when the buffer is full, so it is not an error here).
fn read_available(conn: &mut Conn, max: usize) -> Result<(), ()> {
    let mut chunk = [0u8; 4096];
    loop {
        let room = max.saturating_sub(conn.buf.len()).min(chunk.len());
        if room == 0 {
            return Ok(());
        }
        match conn.stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(()),
            Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

/// One non-blocking attempt to send `reply`, then close: the room never waits on a client.
fn send_and_close(mut conn: Conn, reply: &Reply) {
    let _ = http::write_response(
        &mut conn.stream,
        reply.status,
        reply.content_type,
        &reply.body,
    );
}
