//! Magnet links (BEP 9): parsing `magnet:?xt=urn:btih:…` URIs, writing one for a torrent, and
//! making a `.torrent` file from the info dictionary a magnet link's peers sent.
//!
//! A magnet link names a torrent by its info hash (40 hex or 32 base32 characters), and may add
//! a display name (`dn`), trackers (`tr`, any number) and peer addresses (`x.pe`, any number,
//! `host:port`). Values are percent-encoded; `+` in `dn` stands for a space.

use std::fmt;

use super::{InfoHash, Metainfo, MetainfoError};
use crate::bencode::{self, Value};
use crate::net::http::{percent_decode, percent_encode};

/// A parsed magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// The torrent's info hash.
    pub info_hash: InfoHash,
    /// The display name (`dn`): a hint only, until the metadata arrives.
    pub name: Option<String>,
    /// Tracker URLs (`tr`), in order.
    pub trackers: Vec<String>,
    /// Peer addresses (`x.pe`) as `host:port`, in order.
    pub peers: Vec<String>,
}

/// Why a magnet link could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    NotMagnet,
    /// It has no `xt=urn:btih:` (only a BitTorrent v2 one, or none at all).
    NoInfoHash,
    /// The info hash is neither 40 hex nor 32 base32 characters.
    BadInfoHash(String),
    /// Two `xt` name different torrents.
    TwoInfoHashes,
    /// A value holds a bad `%` escape or is not UTF-8.
    BadEncoding(String),
    /// An `x.pe` that is not `host:port`.
    BadPeer(String),
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetError::NotMagnet => write!(f, "not a magnet link (expected magnet:?xt=...)"),
            MagnetError::NoInfoHash => write!(
                f,
                "magnet link without a BitTorrent info hash (xt=urn:btih:...; v2-only links are not supported)"
            ),
            MagnetError::BadInfoHash(h) => write!(
                f,
                "magnet info hash {h:?} is neither 40 hex nor 32 base32 characters"
            ),
            MagnetError::TwoInfoHashes => write!(f, "magnet link names two different torrents"),
            MagnetError::BadEncoding(v) => {
                write!(
                    f,
                    "magnet link value {v:?} is not valid percent-encoded UTF-8"
                )
            }
            MagnetError::BadPeer(p) => write!(f, "magnet peer x.pe={p:?} is not host:port"),
        }
    }
}

impl std::error::Error for MagnetError {}

/// Decodes RFC 4648 base32 (either case, no padding) of exactly 20 bytes.
fn base32_hash(s: &str) -> Option<[u8; 20]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut at) = (0u64, 0, 0);
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[at] = (acc >> bits) as u8;
            at += 1;
        }
    }
    Some(out)
}

impl Magnet {
    /// Parses a magnet link. Unknown parameters are ignored.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let uri = uri.trim();
        let query = uri
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &uri[8..])
            .ok_or(MagnetError::NotMagnet)?;
        let mut magnet = Magnet {
            info_hash: InfoHash([0; 20]),
            name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
        };
        let mut hash = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            // In `dn` a `+` is a space (form encoding); elsewhere it is itself.
            let spaced = if key == "dn" {
                raw.replace('+', "%20")
            } else {
                raw.to_string()
            };
            let value = percent_decode(&spaced)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| MagnetError::BadEncoding(raw.to_string()))?;
            // `xt`, `tr` and `x.pe` may be numbered (`xt.1`, `tr.2`), as some writers do.
            match key.split('.').next().unwrap_or(key) {
                "xt" => {
                    let Some(h) = value.strip_prefix("urn:btih:") else {
                        continue; // btmh (v2) and other namespaces.
                    };
                    let parsed = InfoHash::from_hex(h)
                        .or_else(|| base32_hash(h).map(InfoHash))
                        .ok_or_else(|| MagnetError::BadInfoHash(h.to_string()))?;
                    if hash.is_some_and(|old| old != parsed) {
                        return Err(MagnetError::TwoInfoHashes);
                    }
                    hash = Some(parsed);
                }
                "dn" => magnet.name = Some(value),
                "tr" if !value.is_empty() => magnet.trackers.push(value),
                "x" if key.starts_with("x.pe") => {
                    let port = value.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
                    if !matches!(port, Some(Ok(1..))) || value.starts_with(':') {
                        return Err(MagnetError::BadPeer(value));
                    }
                    magnet.peers.push(value);
                }
                _ => {}
            }
        }
        magnet.info_hash = hash.ok_or(MagnetError::NoInfoHash)?;
        Ok(magnet)
    }
}

impl Metainfo {
    /// The torrent's magnet link: info hash in hex, its name, and every tracker.
    pub fn magnet_link(&self) -> String {
        let mut link = format!(
            "magnet:?xt=urn:btih:{}&dn={}",
            self.info_hash,
            percent_encode(self.info.name.as_bytes())
        );
        for url in self.tracker_tiers().iter().flatten() {
            link += &format!("&tr={}", percent_encode(url.as_bytes()));
        }
        link
    }
}

/// A `.torrent` file made of an info dictionary's exact bytes and the given trackers (the
/// first as `announce`, each as a tier of `announce-list` when there are several), checked
/// as any torrent file is. The info bytes are kept as they are, so the info hash is theirs.
pub fn torrent_from_info(
    info: &[u8],
    trackers: &[String],
) -> Result<(Vec<u8>, Metainfo), MetainfoError> {
    let mut out = b"d".to_vec();
    if let Some(first) = trackers.first() {
        out.extend_from_slice(b"8:announce");
        out.extend(bencode::encode(&Value::from(first.as_str())));
    }
    if trackers.len() > 1 {
        let tiers = trackers
            .iter()
            .map(|t| Value::List(vec![Value::from(t.as_str())]));
        out.extend_from_slice(b"13:announce-list");
        out.extend(bencode::encode(&Value::List(tiers.collect())));
    }
    out.extend_from_slice(b"4:info");
    out.extend_from_slice(info);
    out.push(b'e');
    let meta = Metainfo::from_bytes(&out)?;
    Ok((out, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    const B32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";

    #[test]
    fn hex_and_base32_name_the_same_torrent() {
        let hex = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
        let b32 = Magnet::parse(&format!("magnet:?xt=urn:btih:{B32}")).unwrap();
        let lower = Magnet::parse(&format!("MAGNET:?xt=urn:btih:{}", B32.to_lowercase()));
        assert_eq!(hex.info_hash.hex(), HEX);
        assert_eq!(b32.info_hash, hex.info_hash);
        assert_eq!(lower.unwrap().info_hash, hex.info_hash);
        assert_eq!(hex.name, None);
        assert!(hex.trackers.is_empty() && hex.peers.is_empty());
    }

    #[test]
    fn every_field_percent_decoded() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=My+Show%20S01%2B&tr=http%3A%2F%2Ft1%3A6969%2Fannounce\
             &tr=udp://t2:80&x.pe=10.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A51413&x.pe=host.example:1\
             &xl=123&ws=http://x&tr.1=http://t3/a&xt=urn:btmh:1220aa"
        ))
        .unwrap();
        assert_eq!(m.name.as_deref(), Some("My Show S01+"));
        assert_eq!(
            m.trackers,
            ["http://t1:6969/announce", "udp://t2:80", "http://t3/a"]
        );
        assert_eq!(m.peers, ["10.0.0.1:6881", "[::1]:51413", "host.example:1"]);
    }

    #[test]
    fn bad_links_are_clear_errors() {
        let cases = [
            ("http://example.com/x.torrent", MagnetError::NotMagnet),
            ("magnet:?dn=x", MagnetError::NoInfoHash),
            ("magnet:?xt=urn:btmh:1220abcd", MagnetError::NoInfoHash),
            (
                "magnet:?xt=urn:btih:abc",
                MagnetError::BadInfoHash("abc".into()),
            ),
            (
                "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1",
                MagnetError::BadInfoHash("YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1".into()),
            ),
            (
                "magnet:?xt=urn:btih:%zz",
                MagnetError::BadEncoding("urn:btih:%zz".into()),
            ),
            (
                "magnet:?dn=%FF&xt=urn:btih:x",
                MagnetError::BadEncoding("%FF".into()),
            ),
            (
                "magnet:?xt=urn:btih:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&xt=urn:btih:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                MagnetError::TwoInfoHashes,
            ),
        ];
        for (uri, want) in cases {
            let got = Magnet::parse(uri).unwrap_err();
            assert_eq!(got, want, "{uri}");
            assert!(!got.to_string().contains('\n'));
        }
        for peer in ["10.0.0.1", "10.0.0.1:0", "h:99999", ":80"] {
            let uri = format!("magnet:?xt=urn:btih:{HEX}&x.pe={peer}");
            assert_eq!(
                Magnet::parse(&uri).unwrap_err(),
                MagnetError::BadPeer(peer.into())
            );
        }
    }

    #[test]
    fn a_torrents_link_parses_back_and_its_info_rebuilds_it() {
        use crate::metainfo::fixtures::{multi_info, set, torrent};
        let mut top = torrent(multi_info());
        let tiers = Value::List(vec![
            Value::List(vec![Value::from("http://t/announce")]),
            Value::List(vec![Value::from("http://backup/a?x=1&y")]),
        ]);
        set(&mut top, "announce-list", tiers);
        let meta = Metainfo::from_bytes(&bencode::encode(&Value::Dict(top))).unwrap();
        let link = meta.magnet_link();
        let back = Magnet::parse(&link).unwrap();
        assert_eq!(back.info_hash, meta.info_hash);
        assert_eq!(back.name.as_deref(), Some(meta.info.name.as_str()));
        let trackers: Vec<String> = meta.tracker_tiers().concat();
        assert_eq!(back.trackers, trackers);
        let (bytes, rebuilt) = torrent_from_info(&meta.info_bytes.0, &back.trackers).unwrap();
        assert_eq!(rebuilt.info_hash, meta.info_hash);
        assert_eq!(rebuilt.info, meta.info);
        assert_eq!(rebuilt.tracker_tiers().concat(), trackers);
        assert_eq!(
            Metainfo::from_bytes(&bytes).unwrap().info_hash,
            meta.info_hash
        );
        assert!(torrent_from_info(b"d4:name1:xe", &[]).is_err());
    }
}
