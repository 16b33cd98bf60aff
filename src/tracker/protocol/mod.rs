//! The announce protocol as both sides see it: what a peer tells a tracker, what the tracker
//! answers, and how the JSON API spells them. The server ([`crate::tracker::server`]) and the
//! client ([`crate::tracker::client`]) both build on these types; neither imports the other.
//! The compact peer lists of BEP 3 replies have their own codec in `compact.rs`, and the UDP
//! tracker protocol (BEP 15) its packets in `udp.rs`.

use crate::metainfo::InfoHash;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) mod compact;
pub(crate) mod udp;

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Started,
    Completed,
    Stopped,
    /// A regular re-announce (no event key in BEP 3, `"absent"` in the JSON API).
    None,
}

/// What a peer tells the tracker about itself.
#[derive(Clone, Debug)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
}

/// One peer from a tracker reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    pub addr: SocketAddr,
    /// Known for dictionary-model and JSON replies, absent for compact ones.
    pub peer_id: Option<[u8; 20]>,
}

/// A successful tracker reply.
#[derive(Clone, Debug)]
pub struct AnnounceResponse {
    pub interval: Duration,
    pub min_interval: Option<Duration>,
    pub complete: Option<u64>,
    pub incomplete: Option<u64>,
    pub peers: Vec<PeerAddr>,
}

impl Event {
    /// The name used on the wire: BEP 3's `event` value, and the JSON API's (`"absent"` for
    /// [`Event::None`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
            Event::None => "absent",
        }
    }

    /// Parses an event name; `""`, `"empty"` (BEP 3) and `"absent"` (JSON API) mean a regular
    /// announce.
    pub fn parse(name: &str) -> Option<Event> {
        match name {
            "started" => Some(Event::Started),
            "completed" => Some(Event::Completed),
            "stopped" => Some(Event::Stopped),
            "" | "empty" | "absent" => Some(Event::None),
            _ => None,
        }
    }
}

/// A fresh peer id in Azureus style: `-PM0001-` followed by 12 random ASCII alphanumerics, so it
/// is also a valid JSON string.
pub fn generate_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-PM0001-");
    for byte in &mut id[8..] {
        *byte = fastrand::alphanumeric() as u8;
    }
    id
}

/// How the JSON API writes a peer id: the id itself when it is UTF-8 (20 bytes), else 40 hex
/// characters. The two cannot be confused: a 20-byte string is never 40 characters long.
pub fn peer_id_to_json(id: &[u8; 20]) -> String {
    match std::str::from_utf8(id) {
        Ok(text) => text.to_string(),
        Err(_) => id.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Reads a JSON API peer id: a string of exactly 20 bytes, or 40 hex characters.
pub fn peer_id_from_json(text: &str) -> Option<[u8; 20]> {
    if let Ok(id) = <[u8; 20]>::try_from(text.as_bytes()) {
        return Some(id);
    }
    InfoHash::from_hex(text).map(|hash| hash.0)
}

/// The body of `POST /announce` in the JSON API.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JsonAnnounce {
    /// 40 hex characters.
    pub info_hash: String,
    /// See [`peer_id_to_json`].
    pub peer_id: String,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    /// An [`Event::as_str`] name; missing means `"absent"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numwant: Option<u32>,
    /// An IP address the peer wants to be reached at instead of its connection's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// A successful JSON API announce reply.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JsonReply {
    /// Seconds until the next regular announce.
    pub interval: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<u64>,
    #[serde(default)]
    pub peers: Vec<JsonPeer>,
}

/// One peer in a [`JsonReply`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JsonPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    pub ip: String,
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for event in [
            Event::Started,
            Event::Completed,
            Event::Stopped,
            Event::None,
        ] {
            assert_eq!(Event::parse(event.as_str()), Some(event));
        }
        assert_eq!(Event::parse("empty"), Some(Event::None));
        assert_eq!(Event::parse("paused"), None);
    }

    #[test]
    fn peer_ids_round_trip_through_json_text() {
        let ours = generate_peer_id();
        assert!(ours.starts_with(b"-PM0001-") && ours[8..].iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(ours, generate_peer_id());
        assert_eq!(peer_id_to_json(&ours).len(), 20);
        assert_eq!(peer_id_from_json(&peer_id_to_json(&ours)), Some(ours));
        let binary = [0xffu8; 20];
        assert_eq!(peer_id_to_json(&binary), "ff".repeat(20));
        assert_eq!(peer_id_from_json(&peer_id_to_json(&binary)), Some(binary));
        assert_eq!(peer_id_from_json("too short"), None);
    }
}
