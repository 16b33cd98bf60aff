//! Valid inputs for each target, built with our own encoders so they follow the formats as the
//! rest of the crate writes them.

use crate::bencode::{self, Value};
use crate::dht::krpc::{self, Body, NodeInfo, Query};
use crate::dht::node_id::NodeId;
use crate::metainfo::InfoHash;
use crate::metainfo::Metainfo;
use crate::tracker::protocol::udp::{Announce, Request, Response, ScrapeEntry};
use crate::tracker::protocol::{Event, JsonAnnounce, JsonPeer, JsonReply, peer_id_to_json};
use crate::wire::extended::{ExtHandshake, MetadataMessage};
use crate::wire::pex::PexMessage;
use crate::wire::{Handshake, Message};
use std::net::SocketAddr;

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

/// Torrents: single-file, multi-file with an announce list, private with extra keys.
fn torrents() -> Vec<Value> {
    let single = Value::dict([
        ("name", bytes(b"a.txt")),
        ("piece length", Value::Int(32)),
        ("pieces", bytes(&[0xab; 4 * 20])),
        ("length", Value::Int(100)),
    ]);
    let file = |length, path: &[&str]| {
        Value::dict([
            ("length", Value::Int(length)),
            (
                "path",
                Value::List(path.iter().map(|c| bytes(c.as_bytes())).collect()),
            ),
        ])
    };
    let multi = Value::dict([
        ("name", bytes(b"dir")),
        ("piece length", Value::Int(16384)),
        ("pieces", bytes(&[7; 20])),
        (
            "files",
            Value::List(vec![file(40, &["x", "one"]), file(60, &["two"])]),
        ),
        ("private", Value::Int(1)),
    ]);
    let tiers = Value::List(vec![
        Value::List(vec![bytes(b"http://t/announce"), bytes(b"udp://t:80")]),
        Value::List(vec![bytes(b"http://[::1]:6969/announce")]),
    ]);
    vec![
        Value::dict([("announce", bytes(b"http://t/announce")), ("info", single)]),
        Value::dict([
            ("announce-list", tiers),
            ("comment", bytes(b"hi \xff")),
            ("created by", bytes(b"piecemeal")),
            ("creation date", Value::Int(1_700_000_000)),
            ("info", multi),
        ]),
    ]
}

pub(super) fn metainfo() -> Vec<Vec<u8>> {
    torrents().iter().map(bencode::encode).collect()
}

pub(super) fn bencode() -> Vec<Vec<u8>> {
    let mut seeds = metainfo();
    seeds.extend(
        [
            Value::Int(0),
            Value::Int(-42),
            Value::Int(i64::MAX),
            bytes(b""),
            bytes(b"spam"),
            Value::List(vec![Value::Int(1), bytes(b"a"), Value::List(vec![])]),
            Value::dict([("a", Value::dict([("b", Value::List(vec![]))]))]),
        ]
        .iter()
        .map(bencode::encode),
    );
    seeds
}

pub(super) fn wire() -> Vec<Vec<u8>> {
    let messages = [
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(7),
        Message::Bitfield(vec![0xff, 0x80]),
        Message::Request {
            index: 1,
            begin: 16384,
            length: 16384,
        },
        Message::Piece {
            index: 1,
            begin: 0,
            data: vec![9; 64],
        },
        Message::Cancel {
            index: 1,
            begin: 16384,
            length: 16384,
        },
        Message::Port(6881),
        Message::Suggest(3),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject {
            index: 1,
            begin: 0,
            length: 16384,
        },
        Message::AllowedFast(2),
        Message::Extended {
            id: 0,
            payload: extension().swap_remove(0),
        },
        Message::Extended {
            id: 1,
            payload: MetadataMessage::Request(3).encode(),
        },
    ];
    let mut seeds: Vec<Vec<u8>> = messages.iter().map(Message::to_bytes).collect();
    let mut stream = Handshake::new([1; 20], [2; 20]).to_bytes().to_vec();
    messages.iter().for_each(|m| m.encode_into(&mut stream));
    seeds.push(stream);
    seeds
}

pub(super) fn http_tracker() -> Vec<Vec<u8>> {
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    let announce = format!(
        "/announce?info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left=5",
        "%01".repeat(20),
        "-PM0001-abcdefghijkl",
    );
    let json = serde_json::to_vec(&JsonAnnounce {
        info_hash: InfoHash([1; 20]).hex(),
        peer_id: peer_id_to_json(&[b'p'; 20]),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 5,
        event: Some(Event::Started.as_str().into()),
        numwant: Some(20),
        ip: Some("::1".into()),
    })
    .unwrap_or_default();
    let mut post = format!(
        "POST /announce HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        json.len()
    )
    .into_bytes();
    post.extend_from_slice(&json);
    vec![
        get(&announce),
        get(&format!(
            "{announce}&compact=0&event=started&numwant=50&ip=10.0.0.1"
        )),
        get(&format!("{announce}&event=stopped&ip=%3A%3A1")),
        get(&format!(
            "/scrape?info_hash={}&info_hash={}",
            "%01".repeat(20),
            "%02".repeat(20)
        )),
        post,
    ]
}

pub(super) fn udp_tracker() -> Vec<Vec<u8>> {
    let announce = Announce {
        connection_id: 0x1234_5678_9abc_def0,
        transaction_id: 7,
        info_hash: InfoHash([1; 20]),
        peer_id: [2; 20],
        downloaded: 1,
        left: 2,
        uploaded: 3,
        event: Event::Started,
        key: 9,
        num_want: -1,
        port: 6881,
    };
    let peers = |addrs: &[&str]| -> Vec<SocketAddr> {
        addrs.iter().filter_map(|a| a.parse().ok()).collect()
    };
    let requests = [
        Request::Connect { transaction_id: 1 },
        Request::Announce(announce),
        Request::Scrape {
            connection_id: 5,
            transaction_id: 6,
            info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        },
    ];
    let responses = [
        Response::Connect {
            transaction_id: 1,
            connection_id: 2,
        },
        Response::Announce {
            transaction_id: 3,
            interval: 1800,
            leechers: 1,
            seeders: 2,
            peers: peers(&["10.0.0.1:6881", "127.0.0.1:1"]),
        },
        Response::Announce {
            transaction_id: 3,
            interval: 1800,
            leechers: 1,
            seeders: 2,
            peers: peers(&["[::1]:6881"]),
        },
        Response::Scrape {
            transaction_id: 4,
            entries: vec![ScrapeEntry {
                seeders: 1,
                completed: 2,
                leechers: 3,
            }],
        },
        Response::Error {
            transaction_id: 5,
            message: "unknown connection id".into(),
        },
    ];
    let mut seeds: Vec<Vec<u8>> = requests.iter().map(Request::encode).collect();
    seeds.extend(responses.iter().map(Response::encode));
    seeds
}

/// Announce replies a tracker sends: BEP 3 compact and dictionary peers, and the JSON API's.
pub(super) fn tracker_reply() -> Vec<Vec<u8>> {
    let compact = Value::dict([
        ("interval", Value::Int(1800)),
        ("min interval", Value::Int(60)),
        ("complete", Value::Int(2)),
        ("incomplete", Value::Int(1)),
        (
            "peers",
            bytes(&[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]),
        ),
        (
            "peers6",
            bytes(&[[0; 15].as_slice(), &[1, 0x1a, 0xe1]].concat()),
        ),
    ]);
    let peer = |ip: &[u8], port| {
        Value::dict([
            ("ip", bytes(ip)),
            ("port", Value::Int(port)),
            ("peer id", bytes(&[b'p'; 20])),
        ])
    };
    let dictionary = Value::dict([
        ("interval", Value::Int(900)),
        (
            "peers",
            Value::List(vec![peer(b"10.0.0.1", 6881), peer(b"::1", 1)]),
        ),
    ]);
    let failure = Value::dict([("failure reason", bytes(b"unregistered torrent"))]);
    let json = serde_json::to_vec(&JsonReply {
        interval: 120,
        min_interval: Some(30),
        complete: Some(1),
        incomplete: Some(0),
        peers: vec![JsonPeer {
            peer_id: Some(peer_id_to_json(&[b'q'; 20])),
            ip: "127.0.0.1".into(),
            port: 6881,
        }],
    })
    .unwrap_or_default();
    let mut seeds: Vec<Vec<u8>> = [compact, dictionary, failure]
        .iter()
        .map(bencode::encode)
        .collect();
    seeds.push(json);
    seeds
}

/// Extended message bodies: a handshake as libtorrent fills it, `ut_metadata` requests, data
/// and rejects, and `ut_pex` with both families.
pub(super) fn extension() -> Vec<Vec<u8>> {
    let handshake = ExtHandshake {
        m: [("ut_metadata".to_string(), 1), ("ut_pex".to_string(), 2)].into(),
        v: Some("piecemeal 0.1".into()),
        p: Some(6881),
        reqq: Some(250),
        metadata_size: Some(1234),
        yourip: "10.0.0.1".parse().ok(),
    };
    let info = metainfo().pop().unwrap_or_default();
    let pex = PexMessage {
        added: ["10.0.0.2:6881", "[::1]:1"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .map(|a| (a, 0x10))
            .collect(),
        dropped: ["10.0.0.3:80"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
    };
    vec![
        handshake.encode(),
        ExtHandshake::default().encode(),
        MetadataMessage::Request(0).encode(),
        MetadataMessage::Data {
            piece: 0,
            total_size: info.len() as u64,
            data: info,
        }
        .encode(),
        MetadataMessage::Reject(1).encode(),
        pex.encode(),
    ]
}

/// Magnet links as `show` prints them for the seed torrents, and one with a base32 hash, `x.pe`
/// peers and parameters we ignore.
pub(super) fn magnet() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = metainfo()
        .iter()
        .filter_map(|t| Metainfo::from_bytes(t).ok())
        .map(|m| m.magnet_link().into_bytes())
        .collect();
    seeds.push(
        b"magnet:?xt=urn:btih:VOVKXK5LVOVKXK5LVOVKXK5LVOVKXK5L&dn=x+y%20z&xl=10\
          &tr=http%3A%2F%2Ft%2F&x.pe=10.0.0.1:6881&x.pe=[::1]:1"
            .to_vec(),
    );
    seeds
}

/// One KRPC message of each kind: the four queries, a response with nodes, peers and a token,
/// and an error.
pub(super) fn krpc() -> Vec<Vec<u8>> {
    let id = |b: u8| NodeId([b; 20]);
    let node = NodeInfo {
        id: id(9),
        addr: "10.0.0.1:6881".parse().expect("an address"),
    };
    let queries = [
        Query::Ping,
        Query::FindNode { target: id(2) },
        Query::GetPeers { info_hash: id(3) },
        Query::AnnouncePeer {
            info_hash: id(3),
            port: 6881,
            implied_port: true,
            token: b"tok".to_vec(),
        },
    ];
    let bodies = queries
        .into_iter()
        .map(|query| Body::Query { id: id(1), query })
        .chain([
            Body::Response {
                id: id(4),
                response: krpc::Response {
                    nodes: vec![node, node],
                    values: vec!["1.2.3.4:80".parse().expect("an address")],
                    token: Some(b"t1".to_vec()),
                },
            },
            Body::Error {
                code: 201,
                message: "Generic Error".into(),
            },
        ]);
    bodies
        .map(|body| {
            krpc::Message {
                tid: b"aa".to_vec(),
                body,
            }
            .encode()
        })
        .collect()
}
