//! KRPC (BEP 5): the bencoded UDP messages of the DHT — queries (`ping`, `find_node`,
//! `get_peers`, `announce_peer`), responses and errors — and compact node and peer info.
//!
//! Decoding is bounded: a packet over [`MAX_PACKET`] bytes is refused before it is parsed,
//! transaction ids and tokens longer than a few bytes are refused, and lists of nodes or peers
//! are cut at what one packet can legitimately hold. Anything malformed is an `Err` the node
//! drops without answering; only a well-formed query for a method we do not know is answered
//! (with error 204), as BEP 5 asks.

use crate::bencode::{self, Value};
use crate::dht::node_id::NodeId;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Largest packet read; real KRPC packets stay well under an Ethernet frame.
pub const MAX_PACKET: usize = 1500;
/// Longest transaction id accepted (clients use 2–4 bytes).
const MAX_TID: usize = 16;
/// Longest token accepted (ours are 8 bytes, libtorrent's 4).
const MAX_TOKEN: usize = 32;
/// Most peers read from one `values` list.
const MAX_VALUES: usize = 200;
/// Bytes of one compact node: id, IPv4 address, port.
pub const COMPACT_NODE: usize = 26;

/// A node: its id and UDP address (IPv4; BEP 32's IPv6 is not spoken).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: SocketAddrV4,
}

/// A query's method and arguments (besides the sender's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    Ping,
    FindNode {
        target: NodeId,
    },
    GetPeers {
        info_hash: NodeId,
    },
    AnnouncePeer {
        info_hash: NodeId,
        /// The TCP port to record (ignored when `implied_port`: the packet's source port is).
        port: u16,
        implied_port: bool,
        token: Vec<u8>,
    },
    /// A method this node does not know; answered with error 204.
    Unknown,
}

/// What a response carries; which fields depends on the query it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub nodes: Vec<NodeInfo>,
    pub values: Vec<SocketAddrV4>,
    pub token: Option<Vec<u8>>,
}

/// A KRPC message's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Query { id: NodeId, query: Query },
    Response { id: NodeId, response: Response },
    Error { code: i64, message: String },
}

/// One KRPC message: the transaction id that pairs a response with its query, and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub tid: Vec<u8>,
    pub body: Body,
}

/// Why a packet was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KrpcError {
    /// Longer than [`MAX_PACKET`].
    TooLarge(usize),
    /// Not valid bencode.
    Bencode(bencode::BencodeError),
    /// Valid bencode, but not a KRPC message: what is wrong.
    Malformed(&'static str),
}

impl fmt::Display for KrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KrpcError::TooLarge(n) => write!(f, "KRPC packet of {n} bytes is too large"),
            KrpcError::Bencode(e) => write!(f, "KRPC packet is not bencode: {e}"),
            KrpcError::Malformed(what) => write!(f, "malformed KRPC packet: {what}"),
        }
    }
}

impl std::error::Error for KrpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KrpcError::Bencode(e) => Some(e),
            _ => None,
        }
    }
}

/// The BEP 5 error codes this node sends.
pub const ERROR_PROTOCOL: i64 = 203;
pub const ERROR_METHOD_UNKNOWN: i64 = 204;

type Result<T> = std::result::Result<T, KrpcError>;

fn bytes<'v>(dict: &'v Value, key: &str, what: &'static str) -> Result<&'v [u8]> {
    dict.get(key)
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::Malformed(what))
}

fn id_at(dict: &Value, key: &str, what: &'static str) -> Result<NodeId> {
    NodeId::from_slice(bytes(dict, key, what)?).ok_or(KrpcError::Malformed(what))
}

/// Decodes one packet.
pub fn decode(packet: &[u8]) -> Result<Message> {
    if packet.len() > MAX_PACKET {
        return Err(KrpcError::TooLarge(packet.len()));
    }
    let v = bencode::decode(packet).map_err(KrpcError::Bencode)?;
    let tid = bytes(&v, "t", "no transaction id")?;
    if tid.len() > MAX_TID {
        return Err(KrpcError::Malformed("transaction id too long"));
    }
    let body = match bytes(&v, "y", "no message type")? {
        b"q" => {
            let args = v
                .get("a")
                .ok_or(KrpcError::Malformed("query without arguments"))?;
            let id = id_at(args, "id", "query without a 20-byte id")?;
            let query = decode_query(bytes(&v, "q", "query without a method")?, args)?;
            Body::Query { id, query }
        }
        b"r" => {
            let r = v
                .get("r")
                .ok_or(KrpcError::Malformed("response without body"))?;
            let id = id_at(r, "id", "response without a 20-byte id")?;
            Body::Response {
                id,
                response: decode_response(r)?,
            }
        }
        b"e" => {
            let e = v.get("e").and_then(Value::as_list).unwrap_or(&[]);
            Body::Error {
                code: e.first().and_then(Value::as_int).unwrap_or(0),
                message: e
                    .get(1)
                    .and_then(Value::as_bytes)
                    .map(|m| String::from_utf8_lossy(&m[..m.len().min(200)]).into_owned())
                    .unwrap_or_default(),
            }
        }
        _ => return Err(KrpcError::Malformed("unknown message type")),
    };
    Ok(Message {
        tid: tid.to_vec(),
        body,
    })
}

fn decode_query(method: &[u8], args: &Value) -> Result<Query> {
    Ok(match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: id_at(args, "target", "find_node without a 20-byte target")?,
        },
        b"get_peers" => Query::GetPeers {
            info_hash: id_at(args, "info_hash", "get_peers without a 20-byte info_hash")?,
        },
        b"announce_peer" => {
            let info_hash = id_at(args, "info_hash", "announce_peer without info_hash")?;
            let token = bytes(args, "token", "announce_peer without token")?;
            if token.len() > MAX_TOKEN {
                return Err(KrpcError::Malformed("token too long"));
            }
            let implied_port = args.get("implied_port").and_then(Value::as_int) == Some(1);
            let port = match args.get("port").and_then(Value::as_int) {
                Some(p @ 1..=65535) => p as u16,
                _ if implied_port => 0,
                _ => return Err(KrpcError::Malformed("announce_peer without a valid port")),
            };
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token: token.to_vec(),
            }
        }
        _ => Query::Unknown,
    })
}

fn decode_response(r: &Value) -> Result<Response> {
    let nodes = match r.get("nodes").and_then(Value::as_bytes) {
        Some(b) => decode_nodes(b)?,
        None => Vec::new(),
    };
    let values = r
        .get("values")
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .take(MAX_VALUES)
        .filter_map(|v| v.as_bytes().and_then(decode_peer))
        .collect();
    let token = match r.get("token").and_then(Value::as_bytes) {
        Some(t) if t.len() > MAX_TOKEN => return Err(KrpcError::Malformed("token too long")),
        t => t.map(<[u8]>::to_vec),
    };
    Ok(Response {
        nodes,
        values,
        token,
    })
}

/// Compact node info: 26 bytes a node, the list's length a multiple of 26.
pub fn decode_nodes(b: &[u8]) -> Result<Vec<NodeInfo>> {
    if b.len() % COMPACT_NODE != 0 {
        return Err(KrpcError::Malformed("nodes not a multiple of 26 bytes"));
    }
    Ok(b.chunks_exact(COMPACT_NODE)
        .filter_map(|c| {
            let addr = decode_peer(&c[20..])?;
            Some(NodeInfo {
                id: NodeId::from_slice(&c[..20])?,
                addr,
            })
        })
        .collect())
}

/// Compact peer info: 4 bytes of IPv4 address, 2 of port; port 0 is no peer.
pub fn decode_peer(b: &[u8]) -> Option<SocketAddrV4> {
    let b: &[u8; 6] = b.try_into().ok()?;
    let port = u16::from_be_bytes([b[4], b[5]]);
    (port != 0).then(|| SocketAddrV4::new(Ipv4Addr::new(b[0], b[1], b[2], b[3]), port))
}

/// The 6 compact bytes of an IPv4 address.
pub fn encode_peer(addr: &SocketAddrV4) -> Vec<u8> {
    let mut out = addr.ip().octets().to_vec();
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// The compact form of `nodes`.
pub fn encode_nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * COMPACT_NODE);
    for n in nodes {
        out.extend_from_slice(&n.id.0);
        out.extend_from_slice(&encode_peer(&n.addr));
    }
    out
}

fn id_value(id: &NodeId) -> Value {
    Value::Bytes(id.0.to_vec())
}

impl Message {
    /// The packet as sent.
    pub fn encode(&self) -> Vec<u8> {
        let tid = Value::Bytes(self.tid.clone());
        let v = match &self.body {
            Body::Query { id, query } => {
                let mut args = vec![("id", id_value(id))];
                let method = match query {
                    Query::Ping => "ping",
                    Query::FindNode { target } => {
                        args.push(("target", id_value(target)));
                        "find_node"
                    }
                    Query::GetPeers { info_hash } => {
                        args.push(("info_hash", id_value(info_hash)));
                        "get_peers"
                    }
                    Query::AnnouncePeer {
                        info_hash,
                        port,
                        implied_port,
                        token,
                    } => {
                        args.push(("info_hash", id_value(info_hash)));
                        args.push(("port", Value::Int(*port as i64)));
                        args.push(("implied_port", Value::Int(*implied_port as i64)));
                        args.push(("token", Value::Bytes(token.clone())));
                        "announce_peer"
                    }
                    Query::Unknown => "unknown",
                };
                Value::dict([
                    ("t", tid),
                    ("y", "q".into()),
                    ("q", method.into()),
                    ("a", Value::dict(args)),
                ])
            }
            Body::Response { id, response } => {
                let mut r = vec![("id", id_value(id))];
                if !response.nodes.is_empty() {
                    r.push(("nodes", Value::Bytes(encode_nodes(&response.nodes))));
                }
                if !response.values.is_empty() {
                    let values = response.values.iter().map(encode_peer);
                    r.push(("values", Value::List(values.map(Value::Bytes).collect())));
                }
                if let Some(token) = &response.token {
                    r.push(("token", Value::Bytes(token.clone())));
                }
                Value::dict([("t", tid), ("y", "r".into()), ("r", Value::dict(r))])
            }
            Body::Error { code, message } => Value::dict([
                ("t", tid),
                ("y", "e".into()),
                (
                    "e",
                    Value::List(vec![Value::Int(*code), message.as_str().into()]),
                ),
            ]),
        };
        bencode::encode(&v)
    }
}

/// The IPv4 address of `addr`, also when it is IPv4-mapped IPv6.
pub fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 20])
    }

    fn round_trip(body: Body) {
        let m = Message {
            tid: b"aa".to_vec(),
            body,
        };
        assert_eq!(decode(&m.encode()), Ok(m));
    }

    #[test]
    fn every_query_round_trips() {
        for query in [
            Query::Ping,
            Query::FindNode { target: id(2) },
            Query::GetPeers { info_hash: id(3) },
            Query::AnnouncePeer {
                info_hash: id(3),
                port: 6881,
                implied_port: false,
                token: b"tok".to_vec(),
            },
        ] {
            round_trip(Body::Query { id: id(1), query });
        }
    }

    #[test]
    fn responses_and_errors_round_trip() {
        let node = NodeInfo {
            id: id(9),
            addr: "10.0.0.1:6881".parse().unwrap(),
        };
        round_trip(Body::Response {
            id: id(1),
            response: Response {
                nodes: vec![node, node],
                values: vec!["1.2.3.4:80".parse().unwrap()],
                token: Some(b"t1".to_vec()),
            },
        });
        round_trip(Body::Error {
            code: 201,
            message: "Generic Error".into(),
        });
    }

    #[test]
    fn bep5_example_ping_decodes() {
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        let m = decode(ping).unwrap();
        assert_eq!(m.tid, b"aa");
        assert_eq!(
            m.body,
            Body::Query {
                id: NodeId(*b"abcdefghij0123456789"),
                query: Query::Ping
            }
        );
        let reply = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
        assert!(matches!(decode(reply).unwrap().body, Body::Response { .. }));
    }

    #[test]
    fn implied_port_needs_no_port() {
        let q = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234565:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe";
        let Body::Query { query, .. } = decode(q).unwrap().body else {
            panic!("not a query")
        };
        assert!(matches!(
            query,
            Query::AnnouncePeer {
                implied_port: true,
                ..
            }
        ));
    }

    #[test]
    fn unknown_methods_decode_so_they_can_be_answered() {
        let q = b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe";
        assert!(matches!(
            decode(q).unwrap().body,
            Body::Query {
                query: Query::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn malformed_and_oversized_packets_are_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"garbage",
            b"de",
            b"d1:t2:aa1:y1:qe",
            b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe",
            b"d1:rd2:id20:abcdefghij01234567895:nodes5:xxxxxe1:t2:aa1:y1:re",
            b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:re",
            b"d1:t2:aa1:y1:ze",
        ];
        for packet in bad {
            assert!(
                decode(packet).is_err(),
                "{:?}",
                String::from_utf8_lossy(packet)
            );
        }
        let mut big = b"d1:t2:aa1:y1:q1:x2000:".to_vec();
        big.extend(std::iter::repeat_n(b'x', 2000));
        big.push(b'e');
        assert_eq!(decode(&big), Err(KrpcError::TooLarge(big.len())));
    }

    #[test]
    fn compact_peers_skip_port_zero() {
        assert_eq!(decode_peer(&[1, 2, 3, 4, 0, 0]), None);
        let a: SocketAddrV4 = "1.2.3.4:6881".parse().unwrap();
        assert_eq!(decode_peer(&encode_peer(&a)), Some(a));
    }
}
