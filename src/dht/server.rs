//! The serving side of a node: what it answers each query with. Pure: the node's receive
//! thread calls [`State::answer`] under its lock and sends the result.

use crate::dht::krpc::{self, Body, Message, NodeInfo, Query, Response};
use crate::dht::node_id::NodeId;
use crate::dht::peer_store::PeerStore;
use crate::dht::query_limit::QueryLimit;
use crate::dht::routing_table::{K, RoutingTable};
use crate::dht::token::Tokens;
use std::net::{IpAddr, SocketAddrV4};
use std::time::Instant;

/// Everything a node knows, behind its one lock.
#[derive(Debug)]
pub struct State {
    pub table: RoutingTable,
    pub tokens: Tokens,
    pub store: PeerStore,
    pub limit: QueryLimit,
}

impl State {
    /// A node's state around `own`, with nothing known yet.
    pub fn new(own: NodeId, now: Instant) -> State {
        State {
            table: RoutingTable::new(own, now),
            tokens: Tokens::new(now),
            store: PeerStore::default(),
            limit: QueryLimit::default(),
        }
    }

    /// The answer to `query` with transaction id `tid` from `from`.
    pub fn answer(
        &mut self,
        tid: &[u8],
        query: &Query,
        from: SocketAddrV4,
        now: Instant,
    ) -> Message {
        let own = self.table.own_id();
        let ip = IpAddr::V4(*from.ip());
        let mut response = Response::default();
        match query {
            Query::Ping => {}
            Query::FindNode { target } => response.nodes = self.closest(target, from, now),
            Query::GetPeers { info_hash } => {
                response.values = self.store.peers(&info_hash.0, now);
                response.nodes = self.closest(info_hash, from, now);
                response.token = Some(self.tokens.issue(ip));
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.check(token, ip) {
                    return error(tid, krpc::ERROR_PROTOCOL, "bad token");
                }
                let port = if *implied_port { from.port() } else { *port };
                self.store
                    .announce(info_hash.0, SocketAddrV4::new(*from.ip(), port), now);
            }
            Query::Unknown => return error(tid, krpc::ERROR_METHOD_UNKNOWN, "Method Unknown"),
        }
        Message {
            tid: tid.to_vec(),
            body: Body::Response { id: own, response },
        }
    }

    /// The K closest nodes to `target` we know, not counting the asker itself.
    fn closest(&self, target: &NodeId, asker: SocketAddrV4, now: Instant) -> Vec<NodeInfo> {
        let mut nodes = self.table.closest(target, K + 1, now);
        nodes.retain(|n| n.addr != asker);
        nodes.truncate(K);
        nodes
    }
}

/// An error message.
pub fn error(tid: &[u8], code: i64, message: &str) -> Message {
    Message {
        tid: tid.to_vec(),
        body: Body::Error {
            code,
            message: message.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(m: Message) -> Response {
        match m.body {
            Body::Response { response, .. } => response,
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    fn announce_needs_the_token_get_peers_gave_that_ip() {
        let now = Instant::now();
        let mut s = State::new(NodeId::random(), now);
        let asker: SocketAddrV4 = "10.0.0.1:7000".parse().unwrap();
        let other: SocketAddrV4 = "10.0.0.2:7000".parse().unwrap();
        let info_hash = NodeId([5; 20]);
        let token = response(s.answer(b"t", &Query::GetPeers { info_hash }, asker, now))
            .token
            .unwrap();
        let announce = |token: &[u8]| Query::AnnouncePeer {
            info_hash,
            port: 6881,
            implied_port: false,
            token: token.to_vec(),
        };
        let refused = s.answer(b"t", &announce(&token), other, now);
        assert!(matches!(refused.body, Body::Error { code: 203, .. }));
        let refused = s.answer(b"t", &announce(b"made-up"), asker, now);
        assert!(matches!(refused.body, Body::Error { code: 203, .. }));
        response(s.answer(b"t", &announce(&token), asker, now));
        let peers = response(s.answer(b"u", &Query::GetPeers { info_hash }, other, now)).values;
        assert_eq!(peers, vec!["10.0.0.1:6881".parse().unwrap()]);
    }

    #[test]
    fn find_node_answers_the_closest_known_but_not_the_asker() {
        let now = Instant::now();
        let mut s = State::new(NodeId([0; 20]), now);
        let nodes: Vec<NodeInfo> = (1..=20u8)
            .map(|i| NodeInfo {
                id: NodeId([i; 20]),
                addr: SocketAddrV4::new([10, 0, 0, i].into(), 1),
            })
            .collect();
        for n in &nodes {
            s.table.heard_from(*n, now);
        }
        let target = NodeId([1; 20]);
        let got = response(s.answer(b"t", &Query::FindNode { target }, nodes[0].addr, now)).nodes;
        assert_eq!(got.len(), K);
        assert!(!got.contains(&nodes[0]));
        let unknown = s.answer(b"t", &Query::Unknown, nodes[0].addr, now);
        assert!(matches!(unknown.body, Body::Error { code: 204, .. }));
    }
}
