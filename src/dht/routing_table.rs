//! The routing table of BEP 5: k-buckets of nodes by their distance to our id.
//!
//! Bucket `i` (for `i` below the last) holds nodes sharing exactly `i` leading bits with our id;
//! the last bucket holds every node closer than that. Only the last bucket, the one containing
//! our own id, splits when full, so the table knows many nodes near us and a few far away, and
//! never holds more than 160 × [`K`] nodes (plus as many waiting replacements).
//!
//! A node is *good* if it answered us within [`GOOD_FOR`], *bad* once [`BAD_AFTER`] queries to it
//! in a row went unanswered, and *questionable* otherwise (the maintenance thread pings those).
//! A full bucket takes a newcomer in place of a bad node; otherwise the newcomer waits in the
//! bucket's replacement list and takes the place of the next node to go bad.

use crate::dht::krpc::NodeInfo;
use crate::dht::node_id::NodeId;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Nodes per bucket.
pub const K: usize = 8;
/// Replacements kept per bucket.
const MAX_REPLACEMENTS: usize = K;
/// Most buckets (one per bit of the id).
const MAX_BUCKETS: usize = 160;
/// How long an answer keeps a node good.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row that make a node bad.
pub const BAD_AFTER: u32 = 2;

/// How a node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Good,
    Questionable,
    Bad,
}

#[derive(Clone, Debug)]
struct Entry {
    info: NodeInfo,
    last_answer: Instant,
    failures: u32,
}

impl Entry {
    fn state(&self, now: Instant) -> NodeState {
        if self.failures >= BAD_AFTER {
            NodeState::Bad
        } else if self.failures == 0 && now.duration_since(self.last_answer) < GOOD_FOR {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    /// When a node of the bucket last answered or joined; a bucket idle for [`GOOD_FOR`] is
    /// refreshed with a lookup.
    changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            nodes: Vec::new(),
            replacements: Vec::new(),
            changed: now,
        }
    }
}

/// What [`RoutingTable::heard_from`] did with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// The node is new to the table.
    Added,
    /// The node was known; it is good again.
    Refreshed,
    /// Its bucket is full of nodes that are not bad: it waits as a replacement.
    Waiting,
    /// Our own id, a known id claimed from another address, or a known address under another
    /// id: ignored.
    Refused,
}

/// The k-buckets around our id.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table around `own`.
    pub fn new(own: NodeId, now: Instant) -> RoutingTable {
        RoutingTable {
            own,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Our id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    fn index(&self, id: &NodeId) -> usize {
        self.own.common_prefix(id).min(self.buckets.len() - 1)
    }

    /// Records that `node` answered a query of ours.
    pub fn heard_from(&mut self, node: NodeInfo, now: Instant) -> Insert {
        // One entry per address: a single host must not fill the table under many ids.
        let elsewhere = |e: &Entry| e.info.addr == node.addr && e.info.id != node.id;
        if node.id == self.own || self.entries().any(elsewhere) {
            return Insert::Refused;
        }
        loop {
            let count = self.buckets.len();
            let i = self.index(&node.id);
            let bucket = &mut self.buckets[i];
            if let Some(e) = bucket.nodes.iter_mut().find(|e| e.info.id == node.id) {
                // An id that moves address could be someone claiming another's id: keep the first.
                if e.info.addr != node.addr {
                    return Insert::Refused;
                }
                e.last_answer = now;
                e.failures = 0;
                bucket.changed = now;
                return Insert::Refreshed;
            }
            let fresh = Entry {
                info: node,
                last_answer: now,
                failures: 0,
            };
            if bucket.nodes.len() < K {
                bucket.replacements.retain(|e| e.info.id != node.id);
                bucket.nodes.push(fresh);
                bucket.changed = now;
                return Insert::Added;
            }
            if i == count - 1 && count < MAX_BUCKETS {
                self.split(now);
                continue;
            }
            if let Some(bad) = bucket
                .nodes
                .iter_mut()
                .find(|e| e.state(now) == NodeState::Bad)
            {
                *bad = fresh;
                bucket.changed = now;
                return Insert::Added;
            }
            bucket.replacements.retain(|e| e.info.id != node.id);
            if bucket.replacements.len() == MAX_REPLACEMENTS {
                bucket.replacements.remove(0);
            }
            bucket.replacements.push(fresh);
            return Insert::Waiting;
        }
    }

    /// Splits the last bucket: nodes sharing exactly its depth stay, closer ones move on.
    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len() - 1;
        let own = self.own;
        let old = &mut self.buckets[depth];
        let mut next = Bucket::new(now);
        let closer = |e: &Entry| own.common_prefix(&e.info.id) > depth;
        next.nodes = old.nodes.iter().filter(|e| closer(e)).cloned().collect();
        next.replacements = old
            .replacements
            .iter()
            .filter(|e| closer(e))
            .cloned()
            .collect();
        old.nodes.retain(|e| !closer(e));
        old.replacements.retain(|e| !closer(e));
        self.buckets.push(next);
    }

    /// Records that a query to `addr` went unanswered; a node that turns bad gives its place to
    /// the newest replacement of its bucket.
    pub fn failed(&mut self, addr: SocketAddrV4, now: Instant) {
        for bucket in &mut self.buckets {
            let Some(pos) = bucket.nodes.iter().position(|e| e.info.addr == addr) else {
                continue;
            };
            bucket.nodes[pos].failures += 1;
            if bucket.nodes[pos].state(now) == NodeState::Bad {
                if let Some(r) = bucket.replacements.pop() {
                    bucket.nodes[pos] = r;
                }
            }
            return;
        }
    }

    /// Up to `n` nodes that are not bad, closest to `target` first.
    pub fn closest(&self, target: &NodeId, n: usize, now: Instant) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .filter(|e| e.state(now) != NodeState::Bad)
            .map(|e| e.info)
            .collect();
        all.sort_by_key(|n| n.id.distance(target));
        all.truncate(n);
        all
    }

    /// Nodes that are neither good nor bad: worth a ping.
    pub fn questionable(&self, now: Instant) -> Vec<NodeInfo> {
        self.entries()
            .filter(|e| e.state(now) == NodeState::Questionable)
            .map(|e| e.info)
            .collect()
    }

    /// The state of the node with `id`, if the table holds it.
    pub fn state_of(&self, id: &NodeId, now: Instant) -> Option<NodeState> {
        let e = self.buckets[self.index(id)]
            .nodes
            .iter()
            .find(|e| e.info.id == *id)?;
        Some(e.state(now))
    }

    /// Whether `node` would enter the table now (not merely wait as a replacement).
    pub fn has_room_for(&self, node: &NodeInfo, now: Instant) -> bool {
        let i = self.index(&node.id);
        let b = &self.buckets[i];
        node.id != self.own
            && !self
                .entries()
                .any(|e| e.info.addr == node.addr || e.info.id == node.id)
            && (b.nodes.len() < K
                || (i == self.buckets.len() - 1 && self.buckets.len() < MAX_BUCKETS)
                || b.nodes.iter().any(|e| e.state(now) == NodeState::Bad))
    }

    /// Depths of buckets nothing happened in for [`GOOD_FOR`]: each wants a lookup of a random
    /// id at that depth.
    pub fn stale_depths(&self, now: Instant) -> Vec<usize> {
        (0..self.buckets.len())
            .filter(|i| now.duration_since(self.buckets[*i].changed) >= GOOD_FOR)
            .collect()
    }

    /// Marks the bucket at `depth` as refreshed now.
    pub fn touch(&mut self, depth: usize, now: Instant) {
        if let Some(b) = self.buckets.get_mut(depth) {
            b.changed = now;
        }
    }

    /// Every node in the table (not the replacements).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.entries().map(|e| e.info).collect()
    }

    /// How many nodes the table holds.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// Whether the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many buckets the table has.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| &b.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, n: u32) -> NodeInfo {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n);
        NodeInfo {
            id,
            addr: SocketAddrV4::new(ip, 6881),
        }
    }

    #[test]
    fn only_the_bucket_holding_our_id_splits() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, now);
        // Far nodes (first bit differs) fill bucket 0 after the first split.
        for i in 0..40u32 {
            let mut id = NodeId::random();
            id.0[0] |= 0x80;
            t.heard_from(node(id, i), now);
        }
        assert_eq!(t.len(), K, "far half holds one bucket's worth");
        assert!(t.bucket_count() <= 2);
        // Nodes ever closer to us make the table split again and again.
        for depth in 1..30usize {
            let id = own.random_at_depth(depth);
            assert_eq!(
                t.heard_from(node(id, 100 + depth as u32), now),
                Insert::Added
            );
        }
        assert!(t.bucket_count() >= 2);
        assert_eq!(t.len(), K + 29);
        // Every close node is still there: their buckets were never full.
        for depth in 1..30usize {
            let b = &t.buckets[depth.min(t.bucket_count() - 1)];
            assert!(!b.nodes.is_empty(), "bucket {depth} empty");
        }
    }

    #[test]
    fn a_full_far_bucket_keeps_newcomers_waiting_until_a_node_goes_bad() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, now);
        // Force a split by adding a close node first, so bucket 0 is a far bucket.
        let far = |i: u32| {
            let mut id = NodeId::random();
            id.0[0] |= 0x80;
            node(id, i)
        };
        let first: Vec<NodeInfo> = (0..K as u32).map(far).collect();
        for n in &first {
            t.heard_from(*n, now);
        }
        t.heard_from(node(own.random_at_depth(5), 500), now);
        let newcomer = far(99);
        assert_eq!(t.heard_from(newcomer, now), Insert::Waiting);
        assert!(!t.nodes().contains(&newcomer));
        // The first node stops answering: after BAD_AFTER failures the newcomer replaces it.
        for _ in 0..BAD_AFTER {
            t.failed(first[0].addr, now);
        }
        assert!(t.nodes().contains(&newcomer));
        assert!(!t.nodes().contains(&first[0]));
    }

    #[test]
    fn a_bad_node_is_replaced_by_a_newcomer_directly() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, now);
        t.heard_from(node(own.random_at_depth(5), 500), now);
        let far: Vec<NodeInfo> = (0..K as u32)
            .map(|i| node(NodeId([0x80 + i as u8; 20]), i))
            .collect();
        for n in &far {
            t.heard_from(*n, now);
        }
        for _ in 0..BAD_AFTER {
            t.failed(far[3].addr, now);
        }
        assert_eq!(t.state_of(&far[3].id, now), Some(NodeState::Bad));
        let newcomer = node(NodeId([0xf0; 20]), 77);
        assert_eq!(t.heard_from(newcomer, now), Insert::Added);
        assert_eq!(t.state_of(&far[3].id, now), None);
    }

    #[test]
    fn states_follow_answers_and_time() {
        let now = Instant::now();
        let mut t = RoutingTable::new(NodeId([0; 20]), now);
        let n = node(NodeId([1; 20]), 1);
        t.heard_from(n, now);
        assert_eq!(t.state_of(&n.id, now), Some(NodeState::Good));
        let later = now + GOOD_FOR;
        assert_eq!(t.state_of(&n.id, later), Some(NodeState::Questionable));
        assert_eq!(t.questionable(later), vec![n]);
        t.failed(n.addr, later);
        t.failed(n.addr, later);
        assert_eq!(t.state_of(&n.id, later), Some(NodeState::Bad));
        assert!(t.closest(&n.id, 8, later).is_empty());
        assert_eq!(t.heard_from(n, later), Insert::Refreshed);
        assert_eq!(t.state_of(&n.id, later), Some(NodeState::Good));
    }

    #[test]
    fn refuses_our_id_and_a_known_id_or_address_under_another_name() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, now);
        assert_eq!(t.heard_from(node(own, 1), now), Insert::Refused);
        let n = node(NodeId([3; 20]), 2);
        t.heard_from(n, now);
        assert_eq!(t.heard_from(node(n.id, 3), now), Insert::Refused);
        assert_eq!(t.heard_from(node(NodeId([4; 20]), 2), now), Insert::Refused);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_table_stays_bounded_whatever_arrives() {
        let now = Instant::now();
        let mut t = RoutingTable::new(NodeId::random(), now);
        for i in 0..20_000u32 {
            t.heard_from(node(NodeId::random(), i), now);
        }
        assert!(t.len() <= MAX_BUCKETS * K);
        assert!(
            t.buckets
                .iter()
                .all(|b| b.replacements.len() <= MAX_REPLACEMENTS)
        );
        let close = t.closest(&t.own_id(), K, now);
        assert_eq!(close.len(), K);
        assert!(
            close
                .windows(2)
                .all(|w| { w[0].id.distance(&t.own) <= w[1].id.distance(&t.own) })
        );
    }
}
