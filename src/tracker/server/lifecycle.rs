//! Starting and stopping the tracker: its settings, the acceptor thread that hands connections
//! to the worker pool (or refuses them with 503 when the pool is full), and the thread that
//! sweeps silent peers out of the registry.

use super::connection::serve;
use super::routes::{Service, json_failure};
use super::swarm::Swarms;
use crate::net::http::{self, Limits};
use crate::net::pool::ThreadPool;
use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use log::{debug, info, warn};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of a tracker server.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// Address to listen on; port 0 picks a free port (see [`TrackerHandle::local_addr`]).
    pub bind: SocketAddr,
    /// Worker threads serving requests.
    pub workers: usize,
    /// Accepted connections that may wait for a worker before new ones are refused with 503.
    pub queue: usize,
    /// How often peers should announce.
    pub interval: Duration,
    /// How often peers may announce at most (`min interval`).
    pub min_interval: Duration,
    /// Peers not heard from for this long are dropped. Should exceed `interval` with room for a
    /// missed announce; [`default_peer_timeout`] gives `2 * interval + 30 s`.
    pub peer_timeout: Duration,
    /// How often the registry is swept for silent peers.
    pub expire_every: Duration,
    /// Size and time bounds for each request.
    pub limits: Limits,
    /// Threads serving UDP (BEP 15) on the same port as HTTP, one socket each; 0 turns UDP off.
    pub udp_threads: usize,
}

/// `2 * interval + 30 s`: a peer may miss one announce (or be late) before it is dropped.
pub fn default_peer_timeout(interval: Duration) -> Duration {
    interval * 2 + Duration::from_secs(30)
}

impl Default for TrackerConfig {
    /// Listens on 127.0.0.1:6969 (TCP, and UDP with 2 threads) with 8 workers, a 2-minute interval (30 s minimum), a
    /// 270 s peer timeout swept every 30 s, and [`Limits::default`] per request.
    fn default() -> TrackerConfig {
        let interval = Duration::from_secs(120);
        TrackerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 6969)),
            workers: 8,
            queue: 64,
            interval,
            min_interval: Duration::from_secs(30),
            peer_timeout: default_peer_timeout(interval),
            expire_every: Duration::from_secs(30),
            limits: Limits::default(),
            udp_threads: 2,
        }
    }
}

/// Why the tracker could not start.
#[derive(Debug)]
pub enum TrackerError {
    /// Listening failed, e.g. because the port is in use.
    Bind { addr: SocketAddr, source: io::Error },
    /// A thread could not be started.
    Spawn(io::Error),
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: {source}")
            }
            TrackerError::Spawn(e) => write!(f, "cannot start tracker threads: {e}"),
        }
    }
}

impl std::error::Error for TrackerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrackerError::Bind { source, .. } | TrackerError::Spawn(source) => Some(source),
        }
    }
}

/// A running tracker. Dropping it shuts it down too.
pub struct TrackerHandle {
    local_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    expirer: Option<(Sender<()>, JoinHandle<()>)>,
    udp: Vec<JoinHandle<()>>,
}

impl TrackerHandle {
    /// The address actually listened on (with the real port when `bind` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets the workers finish the requests they have, and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            // The acceptor is blocked in accept(); a connection of our own wakes it up to see
            // the flag.
            let _ = TcpStream::connect_timeout(&wake_addr(self.local_addr), Duration::from_secs(1));
            let _ = acceptor.join();
        }
        if let Some((stop, expirer)) = self.expirer.take() {
            drop(stop);
            let _ = expirer.join();
        }
        // They see the flag within one read time-out.
        for thread in self.udp.drain(..) {
            let _ = thread.join();
        }
        info!("tracker on {} stopped", self.local_addr);
    }
}

impl Drop for TrackerHandle {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.stop();
        }
    }
}

/// Where to connect to reach a listener: its own address, or loopback when it listens on all
/// addresses.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, local.port()))
        }
        _ => local,
    }
}

/// Binds and starts the tracker threads.
pub fn start(config: TrackerConfig) -> Result<TrackerHandle, TrackerError> {
    let (listener, local_addr, udp_sockets) = listen(&config)?;
    let service = Arc::new(Service {
        swarms: Swarms::new(config.peer_timeout),
        interval: config.interval,
        min_interval: config.min_interval,
        limits: config.limits.clone(),
    });
    let pool = ThreadPool::new("tracker-worker", config.workers, config.queue)
        .map_err(TrackerError::Spawn)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let udp = super::udp::start(udp_sockets, service.clone(), stopping.clone())
        .map_err(TrackerError::Spawn)?;
    let stop_udp = |udp: Vec<JoinHandle<()>>| {
        stopping.store(true, Ordering::SeqCst);
        udp.into_iter().for_each(|t| drop(t.join()));
    };

    let (stop_expiry, stopped) = bounded::<()>(0);
    let expiry_service = service.clone();
    let every = config.expire_every.max(Duration::from_millis(10));
    let expirer = std::thread::Builder::new()
        .name("tracker-expiry".into())
        .spawn(move || {
            // The sender is dropped on shutdown, which ends the wait at once.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let dropped = expiry_service.swarms.expire(Instant::now());
                if dropped > 0 {
                    debug!("expired {dropped} silent peers");
                }
            }
        });
    let expirer = match expirer {
        Ok(expirer) => expirer,
        Err(e) => {
            stop_udp(udp);
            return Err(TrackerError::Spawn(e));
        }
    };
    let acceptor_stopping = stopping.clone();
    let acceptor = std::thread::Builder::new()
        .name("tracker-accept".into())
        .spawn(move || accept_loop(listener, pool, service, acceptor_stopping))
        .map_err(TrackerError::Spawn);
    let acceptor = match acceptor {
        Ok(acceptor) => acceptor,
        Err(e) => {
            drop(stop_expiry);
            let _ = expirer.join();
            stop_udp(udp);
            return Err(e);
        }
    };
    info!("tracker listening on {local_addr}");
    Ok(TrackerHandle {
        local_addr,
        stopping,
        acceptor: Some(acceptor),
        expirer: Some((stop_expiry, expirer)),
        udp,
    })
}

/// Binds the TCP listener, then the UDP sockets on the same port number. When the port is left
/// to the system, the UDP port of the number it picked may be taken: a few other numbers are
/// tried.
fn listen(
    config: &TrackerConfig,
) -> Result<(TcpListener, SocketAddr, Vec<UdpSocket>), TrackerError> {
    let bind_error = |addr, source| TrackerError::Bind { addr, source };
    let mut tries = if config.bind.port() == 0 { 5 } else { 1 };
    loop {
        let listener = TcpListener::bind(config.bind).map_err(|e| bind_error(config.bind, e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| bind_error(config.bind, e))?;
        match super::udp::bind(local_addr, config.udp_threads) {
            Ok(sockets) => return Ok((listener, local_addr, sockets)),
            Err(e) if tries > 1 && e.kind() == io::ErrorKind::AddrInUse => tries -= 1,
            Err(e) => return Err(bind_error(local_addr, e)),
        }
    }
}

/// Hands each accepted connection to the pool, or answers 503 itself when the pool is full,
/// until `stopping` is set.
fn accept_loop(
    listener: TcpListener,
    pool: ThreadPool,
    service: Arc<Service>,
    stopping: Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(stream) => stream,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                warn!("tracker accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // A second handle lets the acceptor answer 503 if the pool refuses the connection.
        let spare = stream.try_clone();
        let service = service.clone();
        if !pool.try_execute(move || serve(stream, &service)) {
            warn!("tracker busy: refusing a connection");
            if let Ok(mut spare) = spare {
                // Never block the acceptor on a slow client: one nonblocking attempt.
                let _ = spare.set_nonblocking(true);
                let _ = http::write_response(
                    &mut spare,
                    503,
                    "application/json",
                    &json_failure("tracker busy, retry later"),
                );
            }
        }
    }
    // Dropping the pool waits for requests in flight, each bounded by the request deadline.
    drop(pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_addr_uses_loopback_for_wildcards() {
        assert_eq!(
            wake_addr("0.0.0.0:7".parse().unwrap()),
            "127.0.0.1:7".parse().unwrap()
        );
        assert_eq!(
            wake_addr("[::]:7".parse().unwrap()),
            "[::1]:7".parse().unwrap()
        );
        assert_eq!(
            wake_addr("127.0.0.5:7".parse().unwrap()),
            "127.0.0.5:7".parse().unwrap()
        );
    }
}
