//! The table of fuzzed parsers and the function feeding each one input. Beyond "no panic", each
//! function asserts what must hold of an accepted input (re-encoding gives the same value), so a
//! parser that silently misreads is a finding too.

use super::Target;
use super::mse;
use super::mse_initiator;
use super::seeds;
use crate::bencode;
use crate::dht::krpc;
use crate::metainfo::Metainfo;
use crate::metainfo::magnet::Magnet;
use crate::net::http;
use crate::tracker::protocol::compact::Family;
use crate::tracker::protocol::udp;
use crate::wire::extended::{ExtHandshake, MetadataMessage};
use crate::wire::pex::PexMessage;
use crate::wire::{HANDSHAKE_LEN, Handshake, Message, MessageReader, max_message_len};
use std::net::{IpAddr, Ipv4Addr};

/// Every parser that reads bytes from the network (or from a file a stranger sent).
pub const TARGETS: &[Target] = &[
    Target {
        name: "bencode",
        seeds: seeds::bencode,
        run: bencode,
    },
    Target {
        name: "metainfo",
        seeds: seeds::metainfo,
        run: |data| Metainfo::from_bytes(data).is_ok(),
    },
    Target {
        name: "wire",
        seeds: seeds::wire,
        run: wire,
    },
    Target {
        name: "http_tracker",
        seeds: seeds::http_tracker,
        run: http_tracker,
    },
    Target {
        name: "udp_tracker",
        seeds: seeds::udp_tracker,
        run: udp_tracker,
    },
    Target {
        name: "tracker_reply",
        seeds: seeds::tracker_reply,
        run: crate::tracker::client::parse_reply_body,
    },
    Target {
        name: "extension",
        seeds: seeds::extension,
        run: extension,
    },
    Target {
        name: "magnet",
        seeds: seeds::magnet,
        run: magnet,
    },
    Target {
        name: "krpc",
        seeds: seeds::krpc,
        run: krpc,
    },
    Target {
        name: "mse",
        seeds: mse::seeds,
        run: mse::run,
    },
    Target {
        name: "mse-initiator",
        seeds: mse_initiator::seeds,
        run: mse_initiator::run,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn bencode(data: &[u8]) -> bool {
    let valid = bencode::validate(data).is_ok();
    if let Ok(Some(span)) = bencode::dict_value_span(data, b"info") {
        assert!(
            bencode::validate(&data[span]).is_ok(),
            "info span is not a value"
        );
    }
    match bencode::decode(data) {
        Ok(value) => {
            assert!(valid, "decode accepted what validate refused");
            let again = bencode::decode(&bencode::encode(&value));
            assert_eq!(again.as_ref(), Ok(&value), "re-encoding changed the value");
            true
        }
        Err(e) => {
            assert!(!valid, "validate accepted what decode refused: {e}");
            false
        }
    }
}

/// A stream as a connection reads it: a handshake when the first bytes are one, then messages
/// until the stream ends.
fn wire(data: &[u8]) -> bool {
    let mut stream = data;
    let mut read = false;
    if let Some(head) = data.first_chunk::<HANDSHAKE_LEN>() {
        if let Ok(h) = Handshake::from_bytes(head) {
            assert_eq!(Handshake::from_bytes(&h.to_bytes()).ok(), Some(h));
            stream = &data[HANDSHAKE_LEN..];
            read = true;
        }
    }
    let mut reader = MessageReader::new(max_message_len(4096));
    while let Ok(message) = reader.read(&mut stream) {
        if !matches!(message, Message::Unknown(_)) {
            let bytes = message.to_bytes();
            assert_eq!(Message::parse(&bytes[4..]).ok(), Some(message));
        }
        read = true;
    }
    read
}

/// A request parsed from memory with the server's limits, then answered by a fresh tracker.
fn http_tracker(data: &[u8]) -> bool {
    let Ok(http::Parsed::Complete { request, .. }) =
        http::parse_request(data, &http::Limits::default())
    else {
        return false;
    };
    let remote = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (status, body) = crate::tracker::server::answer_fresh(&request, remote);
    if request.method == "GET" && status == 200 {
        let reply = bencode::decode(&body).expect("a GET reply is bencoded");
        return reply.get("failure reason").is_none();
    }
    status == 200
}

fn udp_tracker(data: &[u8]) -> bool {
    let _ = udp::request_ids(data);
    let request = udp::Request::decode(data);
    if let Ok(r) = &request {
        assert_eq!(udp::Request::decode(&r.encode()).as_ref(), Ok(r));
    }
    let mut accepted = request.is_ok();
    for family in [Family::V4, Family::V6] {
        if let Ok(r) = udp::Response::decode(data, family) {
            assert_eq!(udp::Response::decode(&r.encode(), family).as_ref(), Ok(&r));
            accepted = true;
        }
    }
    accepted
}

/// An extended message body (BEP 10) read as each extension we speak would read it: the
/// extended handshake, `ut_metadata` and `ut_pex`.
fn extension(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(h) = ExtHandshake::parse(data) {
        assert_eq!(ExtHandshake::parse(&h.encode()).as_ref(), Ok(&h));
        accepted = true;
    }
    if let Ok(m) = MetadataMessage::parse(data) {
        assert_eq!(MetadataMessage::parse(&m.encode()).as_ref(), Ok(&m));
        accepted = true;
    }
    if let Ok(p) = PexMessage::parse(data) {
        assert_eq!(PexMessage::parse(&p.encode()).as_ref(), Ok(&p));
        accepted = true;
    }
    accepted
}

/// A magnet link (the bytes as text, invalid UTF-8 replaced).
fn magnet(data: &[u8]) -> bool {
    Magnet::parse(&String::from_utf8_lossy(data)).is_ok()
}

/// A DHT packet (KRPC), as the node's receive thread reads it from anyone on the internet.
fn krpc(data: &[u8]) -> bool {
    let Ok(message) = krpc::decode(data) else {
        return false;
    };
    assert_eq!(krpc::decode(&message.encode()).as_ref(), Ok(&message));
    true
}
