//! The tracker server: piecemeal's JSON announce API and the standard BEP 3 HTTP tracker
//! protocol on one port, sharing one registry of swarms.
//!
//! Endpoints:
//! - `POST /announce` with a JSON body (see [`crate::tracker::client`]'s wire structs), answered in JSON;
//!   errors are HTTP 400/404/405 with `{"failure reason": "..."}`.
//! - `GET /announce?info_hash=...` (BEP 3), answered bencoded with compact peers (BEP 23, and
//!   `peers6` per BEP 7) unless `compact=0`; errors are HTTP 200 with a bencoded
//!   `failure reason`, which is where BitTorrent clients look for them.
//! - `GET /scrape?info_hash=...` (BEP 48, `info_hash` repeatable).
//!
//! One acceptor thread hands each connection to a fixed pool of workers. Each request must
//! arrive completely within [`Limits::deadline`], so a client that sends nothing (or one byte a
//! second) holds a worker for at most that long; when every worker is busy and the queue is full,
//! new connections get an immediate 503.

use crate::bencode::{self, Value};
use crate::metainfo::InfoHash;
use crate::net::http::{self, HttpError, Limits, Request};
use crate::net::pool::ThreadPool;
use crate::tracker::protocol::{
    Event, JsonAnnounce, JsonPeer, JsonReply, peer_id_from_json, peer_id_to_json,
};
use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use log::{debug, info, warn};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use swarm::{AnnounceReply, PeerAnnounce, Swarms};

pub mod swarm;

/// Most torrents one scrape may ask about.
const MAX_SCRAPE_HASHES: usize = 64;
/// Time allowed for writing a reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

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
}

/// `2 * interval + 30 s`: a peer may miss one announce (or be late) before it is dropped.
pub fn default_peer_timeout(interval: Duration) -> Duration {
    interval * 2 + Duration::from_secs(30)
}

impl Default for TrackerConfig {
    /// Listens on 127.0.0.1:6969 with 8 workers, a 2-minute interval (30 s minimum), a
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

/// What every worker needs to answer requests.
struct Service {
    swarms: Swarms,
    interval: Duration,
    min_interval: Duration,
    limits: Limits,
}

/// Binds and starts the tracker threads.
pub fn start(config: TrackerConfig) -> Result<TrackerHandle, TrackerError> {
    let listener = TcpListener::bind(config.bind).map_err(|source| TrackerError::Bind {
        addr: config.bind,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| TrackerError::Bind {
        addr: config.bind,
        source,
    })?;
    let service = Arc::new(Service {
        swarms: Swarms::new(config.peer_timeout),
        interval: config.interval,
        min_interval: config.min_interval,
        limits: config.limits.clone(),
    });
    let pool = ThreadPool::new("tracker-worker", config.workers, config.queue)
        .map_err(TrackerError::Spawn)?;

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
        })
        .map_err(TrackerError::Spawn)?;

    let stopping = Arc::new(AtomicBool::new(false));
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
            return Err(e);
        }
    };
    info!("tracker listening on {local_addr}");
    Ok(TrackerHandle {
        local_addr,
        stopping,
        acceptor: Some(acceptor),
        expirer: Some((stop_expiry, expirer)),
    })
}

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

/// An HTTP reply before it is written.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// Why the request was refused, for the log.
    failure: Option<String>,
}

impl Reply {
    fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body,
            failure: None,
        }
    }

    fn json_failure(status: u16, reason: &str) -> Reply {
        Reply {
            failure: Some(reason.to_string()),
            ..Reply::json(status, json_failure(reason))
        }
    }

    fn bencoded(value: &Value) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body: bencode::encode(value),
            failure: None,
        }
    }

    fn bencoded_failure(reason: &str) -> Reply {
        Reply {
            failure: Some(reason.to_string()),
            ..Reply::bencoded(&dict([("failure reason", bytes(reason.as_bytes()))]))
        }
    }
}

fn json_failure(reason: &str) -> Vec<u8> {
    serde_json::json!({ "failure reason": reason })
        .to_string()
        .into_bytes()
}

/// Serves one connection: one request, one reply, close.
fn serve(mut stream: TcpStream, service: &Service) {
    let remote = match stream.peer_addr() {
        Ok(addr) => addr,
        Err(e) => {
            debug!("connection gone before it was served: {e}");
            return;
        }
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let (reply, clean) = match http::read_request(&stream, &service.limits) {
        Ok(request) => {
            let reply = route(
                &request,
                remote.ip().to_canonical(),
                service,
                Instant::now(),
            );
            debug!(
                "{remote} {} {} -> {}{}",
                request.method,
                request.path(),
                reply.status,
                reply
                    .failure
                    .as_deref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default()
            );
            (reply, true)
        }
        Err(e) => {
            debug!("{remote}: bad request: {e}");
            let reply = match e {
                HttpError::HeadTooLarge(_) => Reply::json_failure(431, &e.to_string()),
                HttpError::BodyTooLarge(_) => Reply::json_failure(413, &e.to_string()),
                HttpError::Malformed(_) => Reply::json_failure(400, &e.to_string()),
                HttpError::Timeout(_) => Reply::json_failure(408, &e.to_string()),
                _ => return,
            };
            (reply, false)
        }
    };
    if let Err(e) = http::write_response(&mut stream, reply.status, reply.content_type, &reply.body)
    {
        debug!("{remote}: cannot send reply: {e}");
        return;
    }
    if !clean {
        linger(&mut stream);
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

fn route(request: &Request, remote: IpAddr, service: &Service, now: Instant) -> Reply {
    match (request.method.as_str(), request.path()) {
        ("POST", "/announce") => json_announce(&request.body, remote, service, now),
        ("GET", "/announce") => match bep3_announce(request.query(), remote, service, now) {
            Ok(reply) => reply,
            Err(reason) => Reply::bencoded_failure(&reason),
        },
        ("GET", "/scrape") => match scrape(request.query(), service) {
            Ok(reply) => reply,
            Err(reason) => Reply::bencoded_failure(&reason),
        },
        (method, path @ ("/announce" | "/scrape")) => {
            Reply::json_failure(405, &format!("{method} is not allowed on {path}"))
        }
        (_, path) => Reply::json_failure(
            404,
            &format!("no endpoint {path}; use POST /announce, GET /announce or GET /scrape"),
        ),
    }
}

/// The address other peers should use: the `ip` the peer asked for when it is an IP address,
/// else the address it connected from.
fn peer_ip(requested: Option<&[u8]>, remote: IpAddr) -> IpAddr {
    requested
        .and_then(|ip| std::str::from_utf8(ip).ok())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .map_or(remote, |ip| ip.to_canonical())
}

fn json_announce(body: &[u8], remote: IpAddr, service: &Service, now: Instant) -> Reply {
    let parsed = serde_json::from_slice::<JsonAnnounce>(body)
        .map_err(|e| format!("invalid announce JSON: {e}"))
        .and_then(|req| {
            let info_hash =
                InfoHash::from_hex(&req.info_hash).ok_or("info_hash must be 40 hex characters")?;
            let peer_id = peer_id_from_json(&req.peer_id)
                .ok_or("peer_id must be a 20-byte string or 40 hex characters")?;
            let event = match req.event.as_deref() {
                None => Event::None,
                Some(name) => Event::parse(name)
                    .ok_or("event must be started, completed, stopped or absent")?,
            };
            let announce = PeerAnnounce {
                peer_id,
                addr: SocketAddr::new(
                    peer_ip(req.ip.as_deref().map(str::as_bytes), remote),
                    valid_port(req.port)?,
                ),
                left: req.left,
                event,
                numwant: req.numwant,
            };
            Ok((info_hash, announce))
        });
    let (info_hash, announce) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return Reply::json_failure(400, &reason),
    };
    let reply = service.swarms.announce(info_hash, &announce, now);
    let body = JsonReply {
        interval: service.interval.as_secs(),
        min_interval: Some(service.min_interval.as_secs()),
        complete: Some(reply.complete),
        incomplete: Some(reply.incomplete),
        peers: reply
            .peers
            .iter()
            .map(|p| JsonPeer {
                peer_id: Some(peer_id_to_json(&p.peer_id)),
                ip: p.addr.ip().to_string(),
                port: p.addr.port(),
            })
            .collect(),
    };
    Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
}

fn valid_port(port: u16) -> Result<u16, String> {
    if port == 0 {
        Err("port must be between 1 and 65535".into())
    } else {
        Ok(port)
    }
}

/// Query parameters with the first value of each name.
struct Query(Vec<(String, Vec<u8>)>);

impl Query {
    fn parse(query: &str) -> Result<Query, String> {
        http::parse_query(query)
            .map(Query)
            .map_err(|e| e.to_string())
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn required(&self, name: &str) -> Result<&[u8], String> {
        self.get(name).ok_or_else(|| format!("missing {name}"))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|v| {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{name} must be a non-negative integer in range"))
            })
            .transpose()
    }
}

fn twenty_bytes(value: &[u8], name: &str) -> Result<[u8; 20], String> {
    value
        .try_into()
        .map_err(|_| format!("{name} must be 20 bytes (URL-encoded), got {}", value.len()))
}

fn bep3_announce(
    query: &str,
    remote: IpAddr,
    service: &Service,
    now: Instant,
) -> Result<Reply, String> {
    let query = Query::parse(query)?;
    let info_hash = InfoHash(twenty_bytes(query.required("info_hash")?, "info_hash")?);
    let peer_id = twenty_bytes(query.required("peer_id")?, "peer_id")?;
    let port = valid_port(query.number("port")?.ok_or("missing port")?)?;
    let left: u64 = query.number("left")?.ok_or("missing left")?;
    let event = match query.get("event") {
        None => Event::None,
        Some(name) => std::str::from_utf8(name)
            .ok()
            .and_then(Event::parse)
            .ok_or("event must be started, completed, stopped or empty")?,
    };
    let compact = query.get("compact") != Some(b"0");
    let announce = PeerAnnounce {
        peer_id,
        addr: SocketAddr::new(peer_ip(query.get("ip"), remote), port),
        left,
        event,
        numwant: query.number("numwant")?,
    };
    let reply = service.swarms.announce(info_hash, &announce, now);
    Ok(Reply::bencoded(&bep3_reply(&reply, compact, service)))
}

/// The bencoded announce reply; compact peers go to `peers` (IPv4) and `peers6` (IPv6).
fn bep3_reply(reply: &AnnounceReply, compact: bool, service: &Service) -> Value {
    let mut out = BTreeMap::new();
    let mut put = |key: &str, value: Value| out.insert(key.as_bytes().to_vec(), value);
    put("interval", int(service.interval.as_secs()));
    put("min interval", int(service.min_interval.as_secs()));
    put("complete", int(reply.complete));
    put("incomplete", int(reply.incomplete));
    if compact {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for peer in &reply.peers {
            match peer.addr {
                SocketAddr::V4(addr) => {
                    v4.extend_from_slice(&addr.ip().octets());
                    v4.extend_from_slice(&addr.port().to_be_bytes());
                }
                SocketAddr::V6(addr) => {
                    v6.extend_from_slice(&addr.ip().octets());
                    v6.extend_from_slice(&addr.port().to_be_bytes());
                }
            }
        }
        put("peers", Value::Bytes(v4));
        if !v6.is_empty() {
            put("peers6", Value::Bytes(v6));
        }
    } else {
        let peers = reply
            .peers
            .iter()
            .map(|p| {
                dict([
                    ("ip", bytes(p.addr.ip().to_string().as_bytes())),
                    ("peer id", bytes(&p.peer_id)),
                    ("port", int(p.addr.port().into())),
                ])
            })
            .collect();
        put("peers", Value::List(peers));
    }
    Value::Dict(out)
}

fn scrape(query: &str, service: &Service) -> Result<Reply, String> {
    let query = Query::parse(query)?;
    let hashes = query
        .all("info_hash")
        .map(|h| twenty_bytes(h, "info_hash").map(InfoHash))
        .collect::<Result<Vec<_>, _>>()?;
    if hashes.is_empty() {
        return Err("scrape needs at least one info_hash (full scrapes are not offered)".into());
    }
    if hashes.len() > MAX_SCRAPE_HASHES {
        return Err(format!(
            "at most {MAX_SCRAPE_HASHES} info_hash values per scrape"
        ));
    }
    let files = service
        .swarms
        .scrape(&hashes)
        .into_iter()
        .map(|(hash, stats)| {
            let entry = dict([
                ("complete", int(stats.complete)),
                ("downloaded", int(stats.downloaded)),
                ("incomplete", int(stats.incomplete)),
            ]);
            (hash.0.to_vec(), entry)
        })
        .collect();
    Ok(Reply::bencoded(&dict([("files", Value::Dict(files))])))
}

fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

fn bytes(data: &[u8]) -> Value {
    Value::Bytes(data.to_vec())
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        Service {
            swarms: Swarms::new(Duration::from_secs(60)),
            interval: Duration::from_secs(120),
            min_interval: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }

    fn get(service: &Service, target: &str, remote: IpAddr) -> Value {
        let request = Request {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let reply = route(&request, remote, service, Instant::now());
        assert_eq!(reply.status, 200);
        bencode::decode(&reply.body).expect("bencoded reply")
    }

    fn announce_target(peer: u8, port: u16, extra: &str) -> String {
        format!(
            "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=5{extra}",
            "%01".repeat(20),
            format!("{peer:02}").repeat(10),
        )
    }

    fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
        value.as_dict().and_then(|d| d.get(key.as_bytes()))
    }

    #[test]
    fn compact_reply_splits_ipv4_and_ipv6() {
        let service = service();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        get(
            &service,
            &announce_target(1, 1000, ""),
            IpAddr::from([10, 0, 0, 1]),
        );
        get(&service, &announce_target(2, 2000, ""), v6);
        let reply = get(
            &service,
            &announce_target(3, 3000, "&compact=1"),
            IpAddr::from([10, 0, 0, 3]),
        );
        assert_eq!(
            field(&reply, "peers").and_then(Value::as_bytes),
            Some(&[10, 0, 0, 1, 0x03, 0xe8][..])
        );
        let peers6 = field(&reply, "peers6").and_then(Value::as_bytes).unwrap();
        assert_eq!(
            &peers6[..16],
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&peers6[16..], &2000u16.to_be_bytes());
        assert_eq!(field(&reply, "incomplete").and_then(Value::as_int), Some(3));
        assert_eq!(field(&reply, "interval").and_then(Value::as_int), Some(120));
        assert_eq!(
            field(&reply, "min interval").and_then(Value::as_int),
            Some(30)
        );
    }

    #[test]
    fn dictionary_reply_and_ip_override() {
        let service = service();
        get(
            &service,
            &announce_target(1, 1000, "&ip=192.0.2.7"),
            IpAddr::from([127, 0, 0, 1]),
        );
        get(
            &service,
            &announce_target(2, 2000, "&ip=not-an-ip"),
            IpAddr::from([127, 0, 0, 2]),
        );
        let reply = get(
            &service,
            &announce_target(3, 3000, "&compact=0"),
            IpAddr::from([127, 0, 0, 3]),
        );
        let peers = field(&reply, "peers").and_then(Value::as_list).unwrap();
        let mut seen: Vec<(String, i64, Vec<u8>)> = peers
            .iter()
            .map(|p| {
                (
                    field(p, "ip").and_then(Value::as_str).unwrap().to_string(),
                    field(p, "port").and_then(Value::as_int).unwrap(),
                    field(p, "peer id")
                        .and_then(Value::as_bytes)
                        .unwrap()
                        .to_vec(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("127.0.0.2".to_string(), 2000, b"02".repeat(10)),
                ("192.0.2.7".to_string(), 1000, b"01".repeat(10)),
            ]
        );
    }

    #[test]
    fn bep3_errors_are_bencoded_failure_reasons() {
        let service = service();
        let remote = IpAddr::from([127, 0, 0, 1]);
        let cases = [
            ("/announce?peer_id=x", "missing info_hash"),
            (
                "/announce?info_hash=abc&peer_id=x",
                "info_hash must be 20 bytes",
            ),
            (&announce_target(1, 0, "")[..], "port must be"),
            (&announce_target(1, 1, "&event=paused")[..], "event must be"),
            (&announce_target(1, 1, "&numwant=-3")[..], "numwant"),
            ("/announce?info_hash=%zz", "percent"),
            ("/scrape", "at least one info_hash"),
            ("/scrape?info_hash=short", "20 bytes"),
        ];
        for (target, needle) in cases {
            let reply = get(&service, target, remote);
            let reason = field(&reply, "failure reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(
                reason.contains(needle),
                "{target}: {reason:?} lacks {needle:?}"
            );
        }
        assert_eq!(service.swarms.torrent_count(), 0);
    }

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
