//! The API's sockets: one thread accepts connections and hands each to a small fixed pool of
//! workers; a worker reads one request (bounded in size and in time), answers it through
//! [`routes`](super::routes) and closes the connection.
//!
//! Bounds: a request must arrive whole within [`Settings::limits`]'s deadline (15 s: enough
//! for a 16 MiB `.torrent` over a slow link), so a silent or trickling client holds a worker
//! for at most that long; when every worker is busy and the queue is full, new connections get
//! a `503` at once. Bodies over 16 MiB get a `413` before any of it is read.

use super::auth::{AuthError, Loaded, Token};
use super::control::Control;
use super::routes::{Gate, Reply, answer};
use crate::net::http::{self, HttpError, Limits, linger};
use crate::net::pool::ThreadPool;
use log::debug;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request body: a `.torrent` upload.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Time allowed for writing a reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accepting thread looks at the shutdown flag.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// How many workers, how long a queue, and the request bounds.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) workers: usize,
    pub(super) queue: usize,
    pub(super) limits: Limits,
}

impl Default for Settings {
    /// 4 workers, 16 waiting connections, 16 KiB of headers, 16 MiB of body, 15 s.
    fn default() -> Settings {
        Settings {
            workers: 4,
            queue: 16,
            limits: Limits {
                max_head: 16 * 1024,
                max_body: MAX_BODY,
                deadline: Duration::from_secs(15),
            },
        }
    }
}

/// Why the API could not start.
#[derive(Debug)]
pub enum RpcError {
    /// No usable token (see [`load_or_create`](super::auth::load_or_create)).
    Auth(AuthError),
    /// Listening failed, e.g. because the port is in use.
    Bind { addr: SocketAddr, source: io::Error },
    /// The threads could not be started.
    Spawn(io::Error),
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Auth(e) => write!(f, "{e}"),
            RpcError::Bind { addr, source } => {
                write!(f, "--rpc: cannot listen on {addr}: {source}")
            }
            RpcError::Spawn(e) => write!(f, "cannot start the rpc threads: {e}"),
        }
    }
}

impl std::error::Error for RpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RpcError::Auth(e) => Some(e),
            RpcError::Bind { source, .. } | RpcError::Spawn(source) => Some(source),
        }
    }
}

/// The running API; it stops when the shutdown flag given to [`serve`] is set.
pub struct RpcHandle {
    addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl RpcHandle {
    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it has stopped: the accepting thread within 200 ms of the flag, then
    /// the requests in flight (each bounded by the request deadline).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Starts the API on `bind` with the token found by
/// [`load_or_create`](super::auth::load_or_create) (done first, so a peer refuses to start
/// before it listens anywhere): prints `rpc token ...` when the token
/// was made just now and `rpc listening on http://ADDR/`, and answers until `shutdown` is set.
pub fn serve(
    bind: SocketAddr,
    token: Loaded,
    control: Arc<dyn Control>,
    shutdown: Arc<AtomicBool>,
) -> Result<RpcHandle, RpcError> {
    let handle = serve_with(
        bind,
        token.token.clone(),
        control,
        shutdown,
        Settings::default(),
    )?;
    if let Some(path) = &token.generated {
        println!(
            "rpc token {} (saved in {})",
            token.token.as_str(),
            path.display()
        );
    }
    println!("rpc listening on http://{}/", handle.local_addr());
    Ok(handle)
}

/// [`serve`] with a given token and settings.
pub(super) fn serve_with(
    bind: SocketAddr,
    token: Token,
    control: Arc<dyn Control>,
    shutdown: Arc<AtomicBool>,
    settings: Settings,
) -> Result<RpcHandle, RpcError> {
    let listener =
        TcpListener::bind(bind).map_err(|source| RpcError::Bind { addr: bind, source })?;
    let addr = listener.local_addr().map_err(RpcError::Spawn)?;
    listener.set_nonblocking(true).map_err(RpcError::Spawn)?;
    let gate = Arc::new(Gate {
        token,
        loopback_port: addr.ip().is_loopback().then_some(addr.port()),
    });
    let pool = ThreadPool::new("rpc", settings.workers, settings.queue).map_err(RpcError::Spawn)?;
    let limits = settings.limits;
    let thread = std::thread::Builder::new()
        .name("rpc-accept".into())
        .spawn(move || {
            while !shutdown.load(Ordering::SeqCst) {
                if !readable(&listener, STOP_CHECK) {
                    continue;
                }
                while let Ok((stream, remote)) = listener.accept() {
                    let (gate, control, limits) = (gate.clone(), control.clone(), limits.clone());
                    let refused = pool.try_execute_or_return(stream, move |stream| {
                        handle(stream, remote, &gate, &*control, &limits)
                    });
                    if let Some(stream) = refused {
                        let busy = Reply::error(503, "the peer is busy: try again shortly");
                        send(stream, remote, &busy);
                    }
                }
            }
        })
        .map_err(RpcError::Spawn)?;
    Ok(RpcHandle { addr, thread })
}

/// Waits up to `timeout` for a connection to accept.
fn readable(listener: &TcpListener, timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd, exclusively borrowed for the call.
    unsafe { libc::poll(&mut fd, 1, millis) > 0 }
}

/// A worker's whole part of a connection: read one request, answer it, close.
fn handle(
    stream: TcpStream,
    remote: SocketAddr,
    gate: &Gate,
    control: &dyn Control,
    limits: &Limits,
) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let reply = match http::read_request(&stream, limits) {
        Ok(request) => {
            let reply = answer(&request, gate, control);
            debug!(
                "rpc {remote} {} {} -> {}",
                request.method,
                request.path(),
                reply.status
            );
            return send(stream, remote, &reply);
        }
        Err(HttpError::Closed | HttpError::Io(_)) => return,
        Err(HttpError::Timeout(d)) => {
            Reply::error(408, &format!("the request did not arrive within {d:?}"))
        }
        Err(HttpError::BodyTooLarge(max)) => Reply::error(
            413,
            &format!("the request body is larger than {max} bytes (the most a .torrent may be)"),
        ),
        Err(HttpError::HeadTooLarge(max)) => {
            Reply::error(431, &format!("the request headers exceed {max} bytes"))
        }
        Err(e) => Reply::error(400, &e.to_string()),
    };
    debug!("rpc {remote}: unreadable request -> {}", reply.status);
    let mut stream = stream;
    if write(&mut stream, remote, &reply) {
        // The client may still be sending what we did not read; reading it lets the reply
        // arrive instead of a reset.
        linger(&mut stream);
    }
}

/// Writes `reply` and closes.
fn send(mut stream: TcpStream, remote: SocketAddr, reply: &Reply) {
    let _ = stream.set_nonblocking(false);
    write(&mut stream, remote, reply);
}

/// Writes `reply` within [`WRITE_TIMEOUT`]; `false` when the client is gone or does not read.
fn write(stream: &mut TcpStream, remote: SocketAddr, reply: &Reply) -> bool {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let allow = reply.allow.as_deref().map(|methods| ("Allow", methods));
    let extra: Vec<(&str, &str)> = allow.into_iter().collect();
    match http::write_reply_with(
        stream,
        reply.status,
        reply.content_type,
        &extra,
        &reply.body,
        false,
    ) {
        Ok(()) => true,
        Err(e) => {
            debug!("rpc {remote}: cannot send the reply: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::auth::TOKEN_HEADER;
    use super::super::testing::FakeControl;
    use super::*;
    use std::io::{Read, Write};
    use std::time::Instant;

    fn start(settings: Settings) -> (RpcHandle, Arc<AtomicBool>) {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = serve_with(
            "127.0.0.1:0".parse().unwrap(),
            Token::new("secret").unwrap(),
            Arc::new(FakeControl::sample()),
            stop.clone(),
            settings,
        )
        .unwrap();
        (handle, stop)
    }

    fn get(addr: SocketAddr, path: &str, token: &str) -> http::Response {
        http::request_with_headers(
            &format!("http://{addr}{path}"),
            "GET",
            &[(TOKEN_HEADER, token)],
            None,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    /// Sends raw bytes and reads the reply until the server closes.
    fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn answers_over_http_and_stops_on_the_flag() {
        let (handle, stop) = start(Settings::default());
        let addr = handle.local_addr();
        let reply = get(addr, "/api/session", "secret");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some(&b"application/json"[..]));
        let session: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(session["torrents"], 2);
        assert_eq!(reply.header("connection"), Some(&b"close"[..]));
        assert_eq!(get(addr, "/api/session", "wrong").status, 401);
        stop.store(true, Ordering::SeqCst);
        let asked = Instant::now();
        handle.join();
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "{:?}",
            asked.elapsed()
        );
        assert!(TcpStream::connect(addr).is_err(), "the port is closed");
    }

    #[test]
    fn oversized_and_broken_requests_get_json_errors() {
        let (handle, stop) = start(Settings::default());
        let addr = handle.local_addr();
        let host = format!("Host: {addr}\r\n{TOKEN_HEADER}: secret\r\n");
        let big = format!(
            "POST /api/torrents HTTP/1.1\r\n{host}Content-Type: application/x-bittorrent\r\n\
             Content-Length: {}\r\n\r\nd4:info",
            MAX_BODY + 1
        );
        let reply = raw(addr, big.as_bytes());
        assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
        assert!(
            reply.contains(r#"{"error":"the request body is larger than 16777216"#),
            "{reply}"
        );
        let reply = raw(addr, b"\x01\x02 nonsense\r\n\r\n");
        assert!(
            reply.starts_with("HTTP/1.1 400 ") && reply.contains("error"),
            "{reply}"
        );
        let reply = raw(
            addr,
            format!("GET /api/x HTTP/1.1\r\n{host}\r\n").as_bytes(),
        );
        assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
        stop.store(true, Ordering::SeqCst);
        handle.join();
    }

    #[test]
    fn silent_clients_hold_a_worker_only_until_the_deadline() {
        let settings = Settings {
            workers: 2,
            queue: 0,
            limits: Limits {
                deadline: Duration::from_millis(500),
                ..Settings::default().limits
            },
        };
        let (handle, stop) = start(settings);
        let addr = handle.local_addr();
        // Both workers taken by clients that send half a request and wait.
        let mut silent: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /api/session HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        // Meanwhile a new connection is refused at once rather than left waiting.
        std::thread::sleep(Duration::from_millis(100));
        let busy = raw(addr, b"");
        assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
        let began = Instant::now();
        for s in &mut silent {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        }
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{:?}",
            began.elapsed()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = get(addr, "/api/session", "secret");
            if reply.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "workers never came back: {}",
                reply.status
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        handle.join();
    }
}
