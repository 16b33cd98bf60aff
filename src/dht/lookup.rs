//! An iterative lookup (BEP 5, Kademlia): ask the closest nodes known for the target, learn
//! closer ones from their answers, and ask those, [`ALPHA`] queries in flight at a time, until
//! the [`K`] closest nodes not known to be dead have all answered, or time is up.
//!
//! This is the pure core: the node sends what [`Lookup::next`] returns and feeds back answers
//! and silences. For `get_peers` the answers also carry peers and write tokens; the tokens of
//! the closest nodes are what `announce_peer` needs.

use crate::dht::krpc::NodeInfo;
use crate::dht::node_id::NodeId;
use crate::dht::routing_table::K;
use std::collections::HashSet;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Queries in flight at once.
pub const ALPHA: usize = 3;
/// How long a queried node has to answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Most candidates remembered (the closest are kept).
const MAX_CANDIDATES: usize = 128;
/// Most peers collected.
const MAX_PEERS: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Fresh,
    InFlight(Instant),
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    addr: SocketAddrV4,
    /// Unknown for a bootstrap address until it answers; such candidates sort last.
    id: Option<NodeId>,
    status: Status,
    token: Option<Vec<u8>>,
}

/// One lookup's state.
#[derive(Debug)]
pub struct Lookup {
    target: NodeId,
    candidates: Vec<Candidate>,
    peers: HashSet<SocketAddrV4>,
    deadline: Instant,
}

impl Lookup {
    /// A lookup of `target` starting from `seeds` (known nodes) and `bootstrap` addresses (ids
    /// unknown), giving up at `deadline`.
    pub fn new(
        target: NodeId,
        seeds: &[NodeInfo],
        bootstrap: &[SocketAddrV4],
        deadline: Instant,
    ) -> Lookup {
        let mut l = Lookup {
            target,
            candidates: Vec::new(),
            peers: HashSet::new(),
            deadline,
        };
        for n in seeds {
            l.add(n.addr, Some(n.id));
        }
        for a in bootstrap {
            l.add(*a, None);
        }
        l
    }

    fn key(&self, c: &Candidate) -> (bool, [u8; 20]) {
        match c.id {
            Some(id) => (false, id.distance(&self.target)),
            None => (true, [0xff; 20]),
        }
    }

    fn add(&mut self, addr: SocketAddrV4, id: Option<NodeId>) {
        if self.candidates.iter().any(|c| c.addr == addr) {
            return;
        }
        self.candidates.push(Candidate {
            addr,
            id,
            status: Status::Fresh,
            token: None,
        });
        self.sort();
    }

    fn sort(&mut self) {
        let mut c = std::mem::take(&mut self.candidates);
        c.sort_by_key(|c| self.key(c));
        // Drop the farthest, but never one we wait on (its answer must find its entry).
        while c.len() > MAX_CANDIDATES {
            match c
                .iter()
                .rposition(|c| !matches!(c.status, Status::InFlight(_)))
            {
                Some(i) => c.remove(i),
                None => break,
            };
        }
        self.candidates = c;
    }

    /// Nodes to query now (they count as in flight from `now`). Queries unanswered for
    /// [`QUERY_TIMEOUT`] count as failed first; their addresses are returned as the second
    /// list, for the routing table.
    pub fn next(&mut self, now: Instant) -> (Vec<SocketAddrV4>, Vec<SocketAddrV4>) {
        let mut silent = Vec::new();
        for c in &mut self.candidates {
            if matches!(c.status, Status::InFlight(t) if now.duration_since(t) >= QUERY_TIMEOUT) {
                c.status = Status::Failed;
                silent.push(c.addr);
            }
        }
        let mut send = Vec::new();
        if self.is_done(now) {
            return (send, silent);
        }
        let mut in_flight = self
            .candidates
            .iter()
            .filter(|c| matches!(c.status, Status::InFlight(_)))
            .count();
        // Only the K closest live candidates are worth asking; farther ones are asked only
        // while too few nodes are known.
        let mut live = 0;
        for c in &mut self.candidates {
            if in_flight >= ALPHA || live >= K {
                break;
            }
            if c.status == Status::Failed {
                continue;
            }
            live += 1;
            if c.status == Status::Fresh {
                c.status = Status::InFlight(now);
                in_flight += 1;
                send.push(c.addr);
            }
        }
        (send, silent)
    }

    /// An answer from `from` (its id, the closer nodes and peers it names, its token).
    pub fn on_answer(
        &mut self,
        from: SocketAddrV4,
        id: NodeId,
        nodes: &[NodeInfo],
        peers: &[SocketAddrV4],
        token: Option<Vec<u8>>,
    ) {
        let Some(c) = self.candidates.iter_mut().find(|c| c.addr == from) else {
            return;
        };
        c.status = Status::Answered;
        c.id = Some(id);
        c.token = token;
        for p in peers {
            if self.peers.len() < MAX_PEERS {
                self.peers.insert(*p);
            }
        }
        for n in nodes {
            self.add(n.addr, Some(n.id));
        }
        self.sort();
    }

    /// A query to `from` failed (an error answer).
    pub fn on_failure(&mut self, from: SocketAddrV4) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.addr == from) {
            c.status = Status::Failed;
        }
    }

    /// Whether the lookup is over: time is up, nothing is left to ask, or the K closest live
    /// candidates have all answered.
    pub fn is_done(&self, now: Instant) -> bool {
        if now >= self.deadline {
            return true;
        }
        let mut live = self
            .candidates
            .iter()
            .filter(|c| c.status != Status::Failed)
            .take(K)
            .peekable();
        live.peek().is_none() || live.all(|c| c.status == Status::Answered)
    }

    /// Peers collected so far.
    pub fn peers(&self) -> Vec<SocketAddrV4> {
        self.peers.iter().copied().collect()
    }

    /// The K closest nodes that answered, closest first, with their tokens.
    pub fn closest(&self) -> Vec<(NodeInfo, Option<Vec<u8>>)> {
        self.candidates
            .iter()
            .filter(|c| c.status == Status::Answered)
            .filter_map(|c| {
                let info = NodeInfo {
                    id: c.id?,
                    addr: c.addr,
                };
                Some((info, c.token.clone()))
            })
            .take(K)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::routing_table::RoutingTable;
    use std::collections::HashMap;

    /// A simulated network: every node's routing table built by hearing from every other, each
    /// in its own order (a full bucket keeps whom it heard of first).
    struct Sim {
        nodes: Vec<NodeInfo>,
        tables: HashMap<SocketAddrV4, RoutingTable>,
        dead: HashSet<SocketAddrV4>,
    }

    fn sim(n: u32, now: Instant) -> Sim {
        let nodes: Vec<NodeInfo> = (0..n)
            .map(|i| NodeInfo {
                id: NodeId::random(),
                addr: SocketAddrV4::new(std::net::Ipv4Addr::from(0x0a00_0000 + i), 6881),
            })
            .collect();
        let mut tables = HashMap::new();
        for me in &nodes {
            let mut t = RoutingTable::new(me.id, now);
            let mut order = nodes.clone();
            fastrand::shuffle(&mut order);
            for other in &order {
                t.heard_from(*other, now);
            }
            tables.insert(me.addr, t);
        }
        Sim {
            nodes,
            tables,
            dead: HashSet::new(),
        }
    }

    /// Runs a lookup to the end, answering from the tables; returns it and the queries sent.
    fn run(sim: &Sim, target: NodeId, start: &[NodeInfo], now: Instant) -> (Lookup, usize) {
        let mut l = Lookup::new(target, start, &[], now + Duration::from_secs(300));
        let mut sent = 0;
        let mut clock = now;
        while !l.is_done(clock) {
            let (send, _) = l.next(clock);
            if send.is_empty() {
                clock += QUERY_TIMEOUT; // only dead nodes left in flight
                continue;
            }
            for addr in send {
                sent += 1;
                if sim.dead.contains(&addr) {
                    continue;
                }
                let t = &sim.tables[&addr];
                let nodes = t.closest(&target, K, now);
                l.on_answer(addr, t.own_id(), &nodes, &[], Some(vec![1]));
            }
        }
        (l, sent)
    }

    fn true_closest(sim: &Sim, target: &NodeId) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = sim
            .nodes
            .iter()
            .filter(|n| !sim.dead.contains(&n.addr))
            .map(|n| n.id)
            .collect();
        ids.sort_by_key(|id| id.distance(target));
        ids.truncate(K);
        ids
    }

    #[test]
    fn converges_on_the_true_closest_nodes() {
        let now = Instant::now();
        let s = sim(400, now);
        for _ in 0..5 {
            let target = NodeId::random();
            let start = &s.nodes[fastrand::usize(..s.nodes.len())..][..1];
            let (l, sent) = run(&s, target, start, now);
            let found: Vec<NodeId> = l.closest().iter().map(|(n, _)| n.id).collect();
            assert_eq!(found, true_closest(&s, &target));
            assert!(sent < 100, "{sent} queries for 400 nodes");
            assert!(l.closest().iter().all(|(_, t)| t.is_some()));
        }
    }

    #[test]
    fn converges_around_dead_nodes_and_reports_them() {
        let now = Instant::now();
        let mut s = sim(300, now);
        for n in s.nodes.iter().step_by(4) {
            s.dead.insert(n.addr);
        }
        let target = NodeId::random();
        let start = s.nodes[1];
        let (l, _) = run(&s, target, &[start], now);
        let found: Vec<NodeId> = l.closest().iter().map(|(n, _)| n.id).collect();
        // The answers name dead nodes in place of some live ones, so some of the K may be
        // missed; the closest is found.
        let truth = true_closest(&s, &target);
        assert!(found.len() >= K / 2, "{} answered", found.len());
        assert_eq!(found[0], truth[0]);
        let overlap = found.iter().filter(|id| truth.contains(id)).count();
        assert!(overlap >= K / 2, "{overlap} of the {K} closest found");
    }

    #[test]
    fn keeps_alpha_in_flight_and_stops_at_the_deadline() {
        let now = Instant::now();
        let seeds: Vec<NodeInfo> = (0..10u32)
            .map(|i| NodeInfo {
                id: NodeId::random(),
                addr: SocketAddrV4::new(std::net::Ipv4Addr::from(i + 1), 1),
            })
            .collect();
        let deadline = now + Duration::from_secs(5);
        let mut l = Lookup::new(NodeId::random(), &seeds, &[], deadline);
        assert_eq!(l.next(now).0.len(), ALPHA);
        assert!(l.next(now).0.is_empty(), "ALPHA already in flight");
        let (send, silent) = l.next(now + QUERY_TIMEOUT);
        assert_eq!((send.len(), silent.len()), (ALPHA, ALPHA));
        assert!(l.is_done(deadline));
        assert!(l.next(deadline).0.is_empty());
    }

    #[test]
    fn bootstrap_addresses_are_asked_and_learn_their_id() {
        let now = Instant::now();
        let boot: SocketAddrV4 = "10.9.9.9:6881".parse().unwrap();
        let mut l = Lookup::new(NodeId::random(), &[], &[boot], now + QUERY_TIMEOUT * 10);
        assert_eq!(l.next(now).0, vec![boot]);
        let id = NodeId::random();
        l.on_answer(boot, id, &[], &["1.1.1.1:1".parse().unwrap()], None);
        assert!(l.is_done(now));
        assert_eq!(l.closest()[0].0.id, id);
        assert_eq!(l.peers().len(), 1);
    }
}
