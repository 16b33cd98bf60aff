//! Starting and stopping the tracker: its settings, the waiting-room thread that accepts
//! connections and hands complete requests to the worker pool, and the thread that sweeps
//! silent peers out of the registry.

use super::access_list::{AccessList, AccessListError, Mode};
use super::routes::Service;
use super::waiting_room::{Doorbell, Room};
use crate::net::http::Limits;
use crate::net::pool::ThreadPool;
use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use log::{debug, info, warn};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of a tracker server.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// Address to listen on; port 0 picks a free port (see [`TrackerHandle::local_addr`]).
    pub bind: SocketAddr,
    /// Worker threads answering complete requests.
    pub workers: usize,
    /// Complete requests that may wait for a worker before new ones are refused with 503.
    pub queue: usize,
    /// Most connections open at once (idle, sending, or being answered); when full, the one
    /// that has waited longest without a complete request is closed for a new one.
    pub max_open: usize,
    /// How often peers should announce.
    pub interval: Duration,
    /// How often peers may announce at most (`min interval`).
    pub min_interval: Duration,
    /// Peers not heard from for this long are dropped. Should exceed `interval` with room for a
    /// late announce; [`default_peer_timeout`] gives one and a half intervals.
    pub peer_timeout: Duration,
    /// How often the registry is swept for silent peers.
    pub expire_every: Duration,
    /// Size and time bounds for each request.
    pub limits: Limits,
    /// Addresses whose `ip=` parameter and `X-Forwarded-For` header are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most torrents tracked at once.
    pub max_swarms: usize,
    /// Most peers stored per torrent.
    pub max_peers_per_swarm: usize,
    /// Announces one address (an IPv6 /64) may make per interval; 0 for no limit.
    pub max_announces_per_ip: u32,
    /// A whitelist or blacklist of info hashes, reloaded by [`TrackerHandle::reload_access`].
    pub access: Option<(Mode, PathBuf)>,
    /// Threads serving UDP (BEP 15) on the same port as HTTP, one socket each; 0 turns UDP off.
    pub udp_threads: usize,
}

/// One and a half intervals, as opentracker (30 min interval, 45 min timeout): a peer may be
/// late by half an interval before it is dropped.
pub fn default_peer_timeout(interval: Duration) -> Duration {
    interval * 3 / 2
}

/// Half the interval: clients may announce that much sooner when they need peers.
pub fn default_min_interval(interval: Duration) -> Duration {
    interval / 2
}

impl Default for TrackerConfig {
    /// Listens on 127.0.0.1:6969 (TCP, and UDP with 2 threads) with 4 workers, a 30-minute
    /// interval (15 minimum), a 45-minute peer timeout swept every 30 s, the caps of the README,
    /// and 8 KiB bodies.
    fn default() -> TrackerConfig {
        let interval = Duration::from_secs(1800);
        TrackerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 6969)),
            workers: 4,
            queue: 1024,
            max_open: 4096,
            interval,
            min_interval: default_min_interval(interval),
            peer_timeout: default_peer_timeout(interval),
            expire_every: Duration::from_secs(30),
            limits: Limits {
                max_body: 8 * 1024,
                ..Limits::default()
            },
            trusted_proxies: Vec::new(),
            max_swarms: 200_000,
            max_peers_per_swarm: 50_000,
            max_announces_per_ip: 2_000,
            access: None,
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
    /// The whitelist or blacklist could not be read.
    AccessList(AccessListError),
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: {source}")
            }
            TrackerError::Spawn(e) => write!(f, "cannot start tracker threads: {e}"),
            TrackerError::AccessList(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TrackerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrackerError::Bind { source, .. } | TrackerError::Spawn(source) => Some(source),
            TrackerError::AccessList(e) => Some(e),
        }
    }
}

/// A running tracker. Dropping it shuts it down too.
pub struct TrackerHandle {
    local_addr: SocketAddr,
    service: Arc<Service>,
    stopping: Arc<AtomicBool>,
    doorbell: Doorbell,
    room: Option<JoinHandle<()>>,
    expirer: Option<(Sender<()>, JoinHandle<()>)>,
    udp: Vec<JoinHandle<()>>,
}

impl TrackerHandle {
    /// The address actually listened on (with the real port when `bind` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reads the whitelist or blacklist file again (on `SIGHUP`); on an error the list in use
    /// stays. Returns how many info hashes it now holds.
    pub fn reload_access(&self) -> Result<usize, AccessListError> {
        self.service.access.reload()
    }

    /// Stops accepting, lets the workers finish the requests they have, and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(room) = self.room.take() {
            self.doorbell.ring();
            let _ = room.join();
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
        if self.room.is_some() {
            self.stop();
        }
    }
}

/// Binds and starts the tracker threads.
pub fn start(config: TrackerConfig) -> Result<TrackerHandle, TrackerError> {
    let access = match &config.access {
        None => AccessList::open(),
        Some((mode, path)) => AccessList::load(*mode, path).map_err(TrackerError::AccessList)?,
    };
    let (listener, local_addr, udp_sockets) = listen(&config)?;
    let service = Arc::new(Service::new(&config, access));
    let pool = ThreadPool::new("tracker-worker", config.workers, config.queue)
        .map_err(TrackerError::Spawn)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let (room, doorbell) = Room::new(
        listener,
        config.max_open,
        pool,
        service.clone(),
        stopping.clone(),
    )
    .map_err(TrackerError::Spawn)?;
    let udp = super::udp::start(udp_sockets, service.clone(), stopping.clone())
        .map_err(TrackerError::Spawn)?;
    let stop_udp = |udp: Vec<JoinHandle<()>>| {
        stopping.store(true, Ordering::SeqCst);
        udp.into_iter().for_each(|t| drop(t.join()));
    };

    let (stop_expiry, stopped) = bounded::<()>(0);
    let expiry_service = service.clone();
    // Expiry's six-bit ticks wrap after four peer timeouts: sweep at least once per timeout.
    let every = config
        .expire_every
        .min(config.peer_timeout)
        .max(Duration::from_millis(10));
    let expirer = std::thread::Builder::new()
        .name("tracker-expiry".into())
        .spawn(move || {
            // The sender is dropped on shutdown, which ends the wait at once.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let now = Instant::now();
                let dropped = expiry_service.swarms.expire(now);
                expiry_service.address_limit.sweep(now);
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

    let room = std::thread::Builder::new()
        .name("tracker-room".into())
        .spawn(move || room.run());
    let room = match room {
        Ok(room) => room,
        Err(e) => {
            warn!("cannot start the tracker's waiting room: {e}");
            drop(stop_expiry);
            let _ = expirer.join();
            stop_udp(udp);
            return Err(TrackerError::Spawn(e));
        }
    };
    info!("tracker listening on {local_addr}");
    Ok(TrackerHandle {
        local_addr,
        service,
        stopping,
        doorbell,
        room: Some(room),
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
