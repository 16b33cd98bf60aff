//! The DHT node: one UDP socket (at the peer's port), a receive thread that answers queries and
//! routes answers to whoever asked, and a maintenance thread that bootstraps, pings
//! questionable nodes, refreshes idle buckets, rotates the token secret and expires announces.
//! Lookups run on the caller's thread ([`Dht::get_peers`]), sending through the shared socket
//! and waiting on a channel the receive thread feeds.
//!
//! Bounds: packets over [`krpc::MAX_PACKET`] and malformed ones are dropped unanswered; queries
//! are rate-limited per IP; transactions in flight are at most [`MAX_PENDING`]; the routing
//! table, peer store and rate-limit table are bounded by their own modules.

use crate::dht::krpc::{self, Body, Message, NodeInfo, Query, Response};
use crate::dht::lookup::{Lookup, QUERY_TIMEOUT};
use crate::dht::node_id::NodeId;
use crate::dht::routing_table::K;
use crate::dht::saved::{self, Saved};
use crate::dht::server::State;
use crate::lock::lock;
use crossbeam_channel::{Sender, bounded};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Queries of ours awaiting an answer, at most.
pub const MAX_PENDING: usize = 2048;
/// How long a lookup may take.
pub const LOOKUP_TIME: Duration = Duration::from_secs(10);
/// The receive thread's wake-up, for shutdown and the sweep of unanswered queries.
pub(super) const TICK: Duration = Duration::from_millis(250);

/// How a node is started.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// The UDP address to bind (the peer's address and port).
    pub bind: SocketAddrV4,
    /// Where to ask first when the table is empty.
    pub bootstrap: Vec<SocketAddrV4>,
    /// Where the routing table is read at start and written at exit.
    pub state_file: Option<PathBuf>,
}

/// Why a node could not start.
#[derive(Debug)]
pub enum DhtError {
    /// The UDP socket could not be bound.
    Bind {
        addr: SocketAddrV4,
        source: io::Error,
    },
    /// A thread could not start, or the socket could not be set up.
    Io(io::Error),
}

impl std::fmt::Display for DhtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DhtError::Bind { addr, source } => {
                write!(f, "DHT cannot listen on UDP {addr}: {source}")
            }
            DhtError::Io(e) => write!(f, "DHT: {e}"),
        }
    }
}

impl std::error::Error for DhtError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DhtError::Bind { source, .. } | DhtError::Io(source) => Some(source),
        }
    }
}

/// What a node has done and holds, for figures and logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DhtStats {
    pub nodes: usize,
    pub buckets: usize,
    pub queries_answered: u64,
    pub packets_dropped: u64,
    pub torrents: usize,
    pub peers: usize,
}

/// What a `get_peers` lookup found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub peers: Vec<SocketAddr>,
    /// Nodes that answered among the closest.
    pub nodes: usize,
    /// `announce_peer` queries sent.
    pub announced: usize,
}

/// An answer routed to a lookup: the node's id and response, or `None` for an error.
pub(super) struct Reply {
    from: SocketAddrV4,
    answer: Option<(NodeId, Response)>,
}

struct Pending {
    addr: SocketAddrV4,
    sent: Instant,
    reply: Option<Sender<Reply>>,
}

pub(super) struct Shared {
    socket: UdpSocket,
    pub(super) own: NodeId,
    pub(super) state: Mutex<State>,
    pending: Mutex<HashMap<[u8; 4], Pending>>,
    next_tid: AtomicU32,
    bootstrap: Vec<SocketAddrV4>,
    saved: Vec<NodeInfo>,
    pub(super) stop: AtomicBool,
    answered: AtomicU64,
    dropped: AtomicU64,
}

/// A running DHT node; stopped (and its table saved) by [`Dht::shutdown`].
pub struct Dht {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    state_file: Option<PathBuf>,
}

impl Dht {
    /// Binds the socket, reads the saved table and starts the threads.
    pub fn start(config: DhtConfig) -> Result<Dht, DhtError> {
        let socket = UdpSocket::bind(config.bind).map_err(|source| DhtError::Bind {
            addr: config.bind,
            source,
        })?;
        socket.set_read_timeout(Some(TICK)).map_err(DhtError::Io)?;
        let saved = config.state_file.as_deref().and_then(saved::load);
        let own = saved.as_ref().map_or_else(NodeId::random, |s| s.id);
        let shared = Arc::new(Shared {
            socket,
            own,
            state: Mutex::new(State::new(own, Instant::now())),
            pending: Mutex::new(HashMap::new()),
            next_tid: AtomicU32::new(fastrand::u32(..)),
            bootstrap: config.bootstrap,
            saved: saved.map(|s| s.nodes).unwrap_or_default(),
            stop: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let dht = Dht {
            shared: shared.clone(),
            threads: Mutex::new(Vec::new()),
            state_file: config.state_file,
        };
        let receiver = shared.clone();
        let maintainer = shared;
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(DhtError::Io)
        };
        let r = spawn("dht-recv", Box::new(move || receiver.receive_loop()))?;
        lock(&dht.threads).push(r);
        let m = spawn("dht-maint", Box::new(move || maintainer.maintain_loop()))?;
        lock(&dht.threads).push(m);
        Ok(dht)
    }

    /// The UDP address the node listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.socket.local_addr()
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.shared.own
    }

    /// Looks up peers of `info_hash` and, with `announce_port`, announces that we have it on
    /// that TCP port to the closest nodes that gave us a token.
    pub fn get_peers(&self, info_hash: [u8; 20], announce_port: Option<u16>) -> Found {
        let target = NodeId(info_hash);
        let lookup = self
            .shared
            .lookup(target, true, Instant::now() + LOOKUP_TIME);
        let closest = lookup.closest();
        let mut announced = 0;
        if let Some(port) = announce_port {
            for (node, token) in &closest {
                let Some(token) = token.clone() else { continue };
                let query = Query::AnnouncePeer {
                    info_hash: target,
                    port,
                    implied_port: false,
                    token,
                };
                announced += usize::from(self.shared.query(node.addr, query, None));
            }
        }
        // Peers announced to this node count too: in a small DHT we may be the closest node.
        let mut peers = lookup.peers();
        peers.extend(
            lock(&self.shared.state)
                .store
                .peers(&info_hash, Instant::now()),
        );
        peers.sort();
        peers.dedup();
        Found {
            peers: peers.into_iter().map(SocketAddr::V4).collect(),
            nodes: closest.len(),
            announced,
        }
    }

    /// Pings a node we heard of (a peer's `port` message); it joins the table if it answers.
    pub fn ping(&self, addr: SocketAddr) {
        if let Some(addr) = krpc::v4(addr) {
            self.shared.query(addr, Query::Ping, None);
        }
    }

    /// Counts and sizes.
    pub fn stats(&self) -> DhtStats {
        let state = lock(&self.shared.state);
        let (torrents, peers) = state.store.counts();
        DhtStats {
            nodes: state.table.len(),
            buckets: state.table.bucket_count(),
            queries_answered: self.shared.answered.load(Ordering::Relaxed),
            packets_dropped: self.shared.dropped.load(Ordering::Relaxed),
            torrents,
            peers,
        }
    }

    /// Stops the threads (within a tick or a lookup's step) and saves the routing table.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        if let Some(path) = &self.state_file {
            let saved = Saved {
                id: self.shared.own,
                nodes: lock(&self.shared.state).table.nodes(),
            };
            match saved::store(path, &saved) {
                Ok(()) => log::info!("DHT: {} nodes saved", saved.nodes.len()),
                // Not worth a warning: the next start bootstraps again (and a full disk has
                // already been reported).
                Err(e) => log::info!("{}: cannot save the DHT table: {e}", path.display()),
            }
        }
    }
}

impl Shared {
    fn receive_loop(&self) {
        // One byte more than the largest packet, so an oversized one shows as such.
        let mut buf = vec![0u8; krpc::MAX_PACKET + 1];
        let mut swept = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.handle(&buf[..n], from),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                // ICMP port-unreachable from an earlier send shows up here on Linux.
                Err(e) => log::debug!("DHT receive: {e}"),
            }
            if swept.elapsed() >= TICK {
                swept = Instant::now();
                self.sweep(swept);
            }
        }
    }

    /// Handles one packet: answers a query, or routes an answer to its transaction.
    fn handle(&self, packet: &[u8], from: SocketAddr) {
        let (Some(from), Ok(message)) = (krpc::v4(from), krpc::decode(packet)) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = Instant::now();
        match message.body {
            Body::Query { id, query } => {
                let (answer, unknown) = {
                    let mut state = lock(&self.state);
                    if !state.limit.allow(from.ip().to_owned().into(), now) {
                        drop(state);
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    let asker = NodeInfo { id, addr: from };
                    let room = state.table.has_room_for(&asker, now);
                    (state.answer(&message.tid, &query, from, now), room)
                };
                self.send(from, &answer);
                self.answered.fetch_add(1, Ordering::Relaxed);
                // A node that asks us may be worth knowing: it joins the table if it answers
                // a ping (an address in a query alone could be forged).
                if unknown {
                    self.query(from, Query::Ping, None);
                }
            }
            Body::Response { id, response } => {
                let Some(pending) = self.take_pending(&message.tid, from) else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                lock(&self.state)
                    .table
                    .heard_from(NodeInfo { id, addr: from }, now);
                if let Some(reply) = pending.reply {
                    let _ = reply.try_send(Reply {
                        from,
                        answer: Some((id, response)),
                    });
                }
            }
            Body::Error {
                code,
                message: text,
            } => {
                log::debug!("DHT: {from} answered error {code} {text}");
                if let Some(reply) = self.take_pending(&message.tid, from).and_then(|p| p.reply) {
                    let _ = reply.try_send(Reply { from, answer: None });
                }
            }
        }
    }

    /// The transaction `tid` if it is ours and was sent to `from`.
    fn take_pending(&self, tid: &[u8], from: SocketAddrV4) -> Option<Pending> {
        let tid: [u8; 4] = tid.try_into().ok()?;
        let mut pending = lock(&self.pending);
        if pending.get(&tid)?.addr != from {
            return None;
        }
        pending.remove(&tid)
    }

    /// Forgets transactions unanswered for [`QUERY_TIMEOUT`]; their nodes failed once.
    fn sweep(&self, now: Instant) {
        let mut silent = Vec::new();
        lock(&self.pending).retain(|_, p| {
            let live = now.duration_since(p.sent) < QUERY_TIMEOUT;
            if !live {
                silent.push(p.addr);
            }
            live
        });
        if !silent.is_empty() {
            let mut state = lock(&self.state);
            for addr in silent {
                state.table.failed(addr, now);
            }
        }
    }

    /// Sends a query as a new transaction; its answer goes to `reply`. False if too many
    /// transactions are open or the send failed.
    pub(super) fn query(
        &self,
        addr: SocketAddrV4,
        query: Query,
        reply: Option<Sender<Reply>>,
    ) -> bool {
        let tid = self.next_tid.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return false;
            }
            let sent = Instant::now();
            pending.insert(tid, Pending { addr, sent, reply });
        }
        let message = Message {
            tid: tid.to_vec(),
            body: Body::Query {
                id: self.own,
                query,
            },
        };
        if self.send(addr, &message) {
            return true;
        }
        lock(&self.pending).remove(&tid);
        false
    }

    fn send(&self, to: SocketAddrV4, message: &Message) -> bool {
        match self.socket.send_to(&message.encode(), to) {
            Ok(_) => true,
            Err(e) => {
                log::debug!("DHT send to {to}: {e}");
                false
            }
        }
    }

    /// Runs an iterative lookup of `target` (`get_peers` or `find_node`) to its end.
    pub(super) fn lookup(&self, target: NodeId, get_peers: bool, deadline: Instant) -> Lookup {
        let seeds = lock(&self.state)
            .table
            .closest(&target, K * 2, Instant::now());
        // Bootstrap routers and saved nodes only while the table is too small to start from.
        let (saved, boot) = if seeds.len() < K {
            (self.saved.as_slice(), self.bootstrap.as_slice())
        } else {
            (&[][..], &[][..])
        };
        let mut lookup = Lookup::new(target, &[&seeds[..], saved].concat(), boot, deadline);
        let (tx, rx) = bounded(256);
        loop {
            let now = Instant::now();
            let (send, _silent) = lookup.next(now);
            for addr in send {
                let query = if get_peers {
                    Query::GetPeers { info_hash: target }
                } else {
                    Query::FindNode { target }
                };
                if !self.query(addr, query, Some(tx.clone())) {
                    lookup.on_failure(addr);
                }
            }
            if lookup.is_done(now) || self.stop.load(Ordering::SeqCst) {
                return lookup;
            }
            if let Ok(reply) = rx.recv_timeout(Duration::from_millis(100)) {
                match reply.answer {
                    Some((id, r)) => lookup.on_answer(reply.from, id, &r.nodes, &r.values, r.token),
                    None => lookup.on_failure(reply.from),
                }
            }
        }
    }
}
