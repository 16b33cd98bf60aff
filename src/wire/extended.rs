//! The extension protocol (BEP 10) and the metadata exchange over it (BEP 9): the extended
//! handshake, which names the extensions each side speaks and the message id it chose for each,
//! and the `ut_metadata` messages that carry a torrent's info dictionary in 16 KiB pieces.
//!
//! An extended message is peer message 20 ([`Message::Extended`](super::Message::Extended)):
//! one byte naming the extension (0 is the handshake, any other is an id the *receiver* chose in
//! its handshake) and a body. Bodies are bencoded dictionaries; a `ut_metadata` data message has
//! the piece's raw bytes after its dictionary. Every parser here works on a body whose length
//! the framing reader has already bounded, and bounds what it keeps of it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::bencode::{self, BencodeError, Value};

/// The peer message id of every extended message.
pub const EXTENDED: u8 = 20;
/// The extended message id of the extended handshake.
pub const HANDSHAKE: u8 = 0;
/// The name of the metadata exchange (BEP 9) in `m`.
pub const UT_METADATA: &str = "ut_metadata";
/// The name of peer exchange (BEP 11) in `m`.
pub const UT_PEX: &str = "ut_pex";
/// Bytes of every metadata piece but the last (BEP 9).
pub const METADATA_PIECE: usize = 16 * 1024;
/// The largest info dictionary fetched or served (a 1 PiB torrent of 16 MiB pieces has
/// 1.25 MiB of hashes; this leaves room for huge file lists).
pub const MAX_METADATA_SIZE: u64 = 16 << 20;
/// Extensions named in one handshake that we keep (the rest are ignored).
const MAX_EXTENSIONS: usize = 64;

/// Why an extended message could not be understood.
#[derive(Debug, PartialEq, Eq)]
pub enum ExtError {
    /// The body is not bencode (or not followed by what its type needs).
    Bencode(BencodeError),
    /// A field is missing or has a value the protocol does not allow.
    Invalid(String),
}

impl fmt::Display for ExtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtError::Bencode(e) => write!(f, "extended message: {e}"),
            ExtError::Invalid(what) => write!(f, "extended message: {what}"),
        }
    }
}

impl std::error::Error for ExtError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExtError::Bencode(e) => Some(e),
            ExtError::Invalid(_) => None,
        }
    }
}

impl From<BencodeError> for ExtError {
    fn from(e: BencodeError) -> Self {
        ExtError::Bencode(e)
    }
}

fn invalid(what: impl Into<String>) -> ExtError {
    ExtError::Invalid(what.into())
}

/// The extended handshake (BEP 10): what the sender speaks and a little about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// Extension name → the id the sender wants to receive it under (disabled ones left out).
    pub m: BTreeMap<String, u8>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's listening port.
    pub p: Option<u16>,
    /// How many requests the sender queues.
    pub reqq: Option<u32>,
    /// Size of the info dictionary, when the sender has it (BEP 9).
    pub metadata_size: Option<u64>,
    /// The receiver's address as the sender sees it.
    pub yourip: Option<IpAddr>,
}

impl ExtHandshake {
    /// The id the sender chose for extension `name`, if it speaks it.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied()
    }

    /// The bencoded body.
    pub fn encode(&self) -> Vec<u8> {
        let m = self
            .m
            .iter()
            .map(|(k, &id)| (k.as_str(), Value::Int(id.into())));
        let mut d = vec![("m", Value::dict(m))];
        if let Some(v) = &self.v {
            d.push(("v", Value::from(v.as_str())));
        }
        if let Some(p) = self.p {
            d.push(("p", Value::Int(p.into())));
        }
        if let Some(reqq) = self.reqq {
            d.push(("reqq", Value::Int(reqq.into())));
        }
        if let Some(size) = self.metadata_size {
            d.push(("metadata_size", Value::Int(size as i64)));
        }
        if let Some(ip) = self.yourip {
            let bytes = match ip {
                IpAddr::V4(ip) => ip.octets().to_vec(),
                IpAddr::V6(ip) => ip.octets().to_vec(),
            };
            d.push(("yourip", Value::Bytes(bytes)));
        }
        bencode::encode(&Value::dict(d))
    }

    /// Parses a body. Unknown keys are ignored, as are entries of `m` whose id is not 1–255
    /// (0 disables an extension); fields of the wrong type are errors.
    pub fn parse(body: &[u8]) -> Result<ExtHandshake, ExtError> {
        let top = bencode::decode(body)?;
        if top.as_dict().is_none() {
            return Err(invalid("handshake is not a dictionary"));
        }
        let int = |key: &str| -> Result<Option<i64>, ExtError> {
            top.get(key)
                .map(|v| {
                    v.as_int()
                        .ok_or_else(|| invalid(format!("{key} is not an integer")))
                })
                .transpose()
        };
        let mut m = BTreeMap::new();
        if let Some(entries) = top.get("m") {
            let entries = entries
                .as_dict()
                .ok_or_else(|| invalid("m is not a dictionary"))?;
            for (name, id) in entries.iter().take(MAX_EXTENSIONS) {
                let (Ok(name), Some(id)) = (std::str::from_utf8(name), id.as_int()) else {
                    continue;
                };
                if let Ok(id @ 1..=255) = u8::try_from(id) {
                    m.insert(name.to_string(), id);
                }
            }
        }
        let p = int("p")?
            .map(|p| u16::try_from(p).ok().filter(|&p| p != 0))
            .unwrap_or(None);
        let reqq = int("reqq")?.and_then(|r| u32::try_from(r).ok());
        let metadata_size = match int("metadata_size")? {
            Some(size) => Some(u64::try_from(size).map_err(|_| invalid("negative metadata_size"))?),
            None => None,
        };
        let yourip = match top.get("yourip").and_then(Value::as_bytes) {
            Some(b) if b.len() == 4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).unwrap())),
            Some(b) if b.len() == 16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).unwrap())),
            _ => None,
        };
        let v = top
            .get("v")
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned());
        Ok(ExtHandshake {
            m,
            v,
            p,
            reqq,
            metadata_size,
            yourip,
        })
    }
}

/// A `ut_metadata` message (BEP 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// Asks for metadata piece `piece`.
    Request(u32),
    /// Piece `piece` of an info dictionary of `total_size` bytes.
    Data {
        /// The piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes.
        data: Vec<u8>,
    },
    /// The sender will not send piece `piece`.
    Reject(u32),
}

impl MetadataMessage {
    /// The body: a bencoded dictionary, followed by the piece for `Data`.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, piece) = match self {
            MetadataMessage::Request(p) => (0, *p),
            MetadataMessage::Data { piece, .. } => (1, *piece),
            MetadataMessage::Reject(p) => (2, *p),
        };
        let mut d = vec![
            ("msg_type", Value::Int(kind)),
            ("piece", Value::Int(piece.into())),
        ];
        if let MetadataMessage::Data { total_size, .. } = self {
            d.push(("total_size", Value::Int(*total_size as i64)));
        }
        let mut out = bencode::encode(&Value::dict(d));
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }

    /// Parses a body; a data piece larger than [`METADATA_PIECE`] is an error.
    pub fn parse(body: &[u8]) -> Result<MetadataMessage, ExtError> {
        let (dict, end) = bencode::decode_prefix(body)?;
        let field = |key: &str| {
            dict.get(key)
                .and_then(Value::as_int)
                .ok_or_else(|| invalid(format!("ut_metadata without an integer {key}")))
        };
        let piece = u32::try_from(field("piece")?).map_err(|_| invalid("bad metadata piece"))?;
        let rest = &body[end..];
        match field("msg_type")? {
            0 => Ok(MetadataMessage::Request(piece)),
            1 => {
                let total_size = u64::try_from(field("total_size")?)
                    .map_err(|_| invalid("negative metadata total_size"))?;
                if rest.len() > METADATA_PIECE {
                    return Err(invalid(format!(
                        "metadata piece of {} bytes (at most {METADATA_PIECE})",
                        rest.len()
                    )));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: rest.to_vec(),
                })
            }
            2 => Ok(MetadataMessage::Reject(piece)),
            other => Err(invalid(format!("unknown ut_metadata msg_type {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> ExtHandshake {
        ExtHandshake {
            m: BTreeMap::from([(UT_METADATA.to_string(), 1), (UT_PEX.to_string(), 2)]),
            v: Some("piecemeal 0.1".into()),
            p: Some(6881),
            reqq: Some(250),
            metadata_size: Some(31337),
            yourip: Some("10.1.2.3".parse().unwrap()),
        }
    }

    #[test]
    fn handshake_round_trips_and_is_canonical_bencode() {
        let h = ours();
        let body = h.encode();
        assert_eq!(ExtHandshake::parse(&body).unwrap(), h);
        assert!(body.starts_with(b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31337e"));
        assert_eq!(h.id_of(UT_PEX), Some(2));
        assert_eq!(h.id_of("lt_donthave"), None);
        let v6 = ExtHandshake {
            yourip: Some("::1".parse().unwrap()),
            ..ExtHandshake::default()
        };
        assert_eq!(ExtHandshake::parse(&v6.encode()).unwrap(), v6);
    }

    #[test]
    fn handshake_as_libtorrent_sends_it() {
        let body = b"d12:complete_agoi-1e1:md11:lt_donthavei7e11:ut_metadatai2e6:ut_pexi1e\
            11:upload_onlyi0ee13:metadata_sizei1234e1:pi51413e4:reqqi500e11:upload_onlyi0e\
            1:v17:libtorrent/2.0.116:yourip4:\x7f\0\0\x01e";
        let h = ExtHandshake::parse(body).unwrap();
        assert_eq!(h.id_of(UT_METADATA), Some(2));
        assert_eq!(h.id_of(UT_PEX), Some(1));
        assert_eq!(h.id_of("upload_only"), None, "0 disables");
        assert_eq!(h.p, Some(51413));
        assert_eq!(h.reqq, Some(500));
        assert_eq!(h.metadata_size, Some(1234));
        assert_eq!(h.v.as_deref(), Some("libtorrent/2.0.11"));
        assert_eq!(h.yourip, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_handshakes_are_errors_or_ignored_fields() {
        for body in [&b"de"[..], b"d1:mi3ee", b"d1:pi5ee", b"le", b"d1:pd"] {
            let parsed = ExtHandshake::parse(body);
            if body == b"de" || body == b"d1:pi5ee" {
                assert!(parsed.is_ok(), "{body:?}");
            } else {
                assert!(parsed.is_err(), "{body:?}");
            }
        }
        assert!(ExtHandshake::parse(b"d13:metadata_sizei-1ee").is_err());
        let odd = ExtHandshake::parse(b"d1:md1:ai300e1:bi-1e1:c1:xe1:pi70000e6:yourip3:abce");
        let odd = odd.unwrap();
        assert!(odd.m.is_empty());
        assert_eq!((odd.p, odd.yourip), (None, None));
    }

    #[test]
    fn metadata_messages_round_trip() {
        for m in [
            MetadataMessage::Request(3),
            MetadataMessage::Reject(0),
            MetadataMessage::Data {
                piece: 1,
                total_size: 16384 + 5,
                data: vec![7; 5],
            },
        ] {
            assert_eq!(MetadataMessage::parse(&m.encode()).unwrap(), m);
        }
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 3,
            data: b"abc".to_vec(),
        };
        assert_eq!(
            data.encode(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"
        );
    }

    #[test]
    fn bad_metadata_messages_are_errors() {
        let oversized = MetadataMessage::Data {
            piece: 0,
            total_size: 1 << 20,
            data: vec![0; METADATA_PIECE + 1],
        };
        for body in [
            oversized.encode(),
            b"de".to_vec(),
            b"d8:msg_typei7e5:piecei0ee".to_vec(),
            b"d8:msg_typei0e5:piecei-1ee".to_vec(),
            b"d8:msg_typei1e5:piecei0ee".to_vec(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei-4ee".to_vec(),
            b"d8:msg_type".to_vec(),
        ] {
            assert!(MetadataMessage::parse(&body).is_err(), "{body:?}");
        }
    }
}
