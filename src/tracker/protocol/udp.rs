//! The UDP tracker protocol (BEP 15) as bytes: the connect, announce, scrape and error packets
//! both sides exchange. Pure: the server (`tracker/server/udp/`) and the client
//! (`tracker/client/udp.rs`) each read what the other writes, so every packet is spelled out
//! once, here. All integers are big-endian.
//!
//! Packets shorter than their fixed part are refused; bytes past the fixed part of an announce
//! (BEP 41 options) are ignored. Peer lists are 6-byte IPv4 or 18-byte IPv6 entries, chosen by
//! the address family the request travelled over (BEP 15's IPv6 extension).

use super::compact::{self, Family};
use crate::metainfo::InfoHash;
use crate::tracker::protocol::Event;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The magic number opening every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Length of a connect request, and of its reply.
pub const CONNECT_LEN: usize = 16;
/// Length of an announce request without BEP 41 options.
pub const ANNOUNCE_LEN: usize = 98;
/// Length of a scrape request's header, before its info hashes.
pub const SCRAPE_HEADER_LEN: usize = 16;
/// Most info hashes one scrape may carry (BEP 15: about 74 fit a packet).
pub const MAX_SCRAPE_HASHES: usize = 74;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// An announce request (BEP 15 announce packet). Its `ip` field is not kept: the address a
/// packet came from is the only one a tracker may believe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    pub key: u32,
    /// Peers wanted; negative means the tracker's default.
    pub num_want: i32,
    pub port: u16,
}

/// A packet a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction_id: u32,
    },
    Announce(Announce),
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        info_hashes: Vec<InfoHash>,
    },
}

/// Seeders, times completed and leechers of one scraped torrent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeEntry {
    pub seeders: u32,
    pub completed: u32,
    pub leechers: u32,
}

/// A packet a tracker sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    Announce {
        transaction_id: u32,
        /// Seconds until the next announce.
        interval: u32,
        leechers: u32,
        seeders: u32,
        /// All of one family: the family of the request's address.
        peers: Vec<SocketAddr>,
    },
    Scrape {
        transaction_id: u32,
        entries: Vec<ScrapeEntry>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

/// Why a packet could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than its action needs.
    Short { len: usize, need: usize },
    /// A connect request without BEP 15's magic number.
    NotBep15,
    /// An action this side does not read.
    UnknownAction(u32),
    /// An announce event other than 0–3.
    UnknownEvent(u32),
    /// A scrape of no torrent, of more than [`MAX_SCRAPE_HASHES`], or of a partial hash.
    BadScrape(usize),
    /// A peer list that is not a whole number of entries.
    Peers(compact::UnevenList),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Short { len, need } => {
                write!(f, "packet of {len} bytes is too short (needs {need})")
            }
            PacketError::NotBep15 => write!(f, "connect request without the BEP 15 protocol id"),
            PacketError::UnknownAction(action) => write!(f, "unknown action {action}"),
            PacketError::UnknownEvent(event) => write!(f, "unknown event {event}"),
            PacketError::BadScrape(len) => write!(
                f,
                "scrape of {len} bytes is not 1 to {MAX_SCRAPE_HASHES} whole info hashes"
            ),
            PacketError::Peers(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PacketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PacketError::Peers(e) => Some(e),
            _ => None,
        }
    }
}

/// A cursor over a packet; every read is bounds-checked against the packet's length first.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().unwrap_or([0; N])
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.bytes())
    }
}

fn need(packet: &[u8], need: usize) -> Result<Reader<'_>, PacketError> {
    if packet.len() < need {
        Err(PacketError::Short {
            len: packet.len(),
            need,
        })
    } else {
        Ok(Reader(packet))
    }
}

/// BEP 15's event numbers.
fn event_number(event: Event) -> u32 {
    match event {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    }
}

/// The connection id and transaction id of a request that is at least 16 bytes long, whatever
/// its action: enough to answer it with an error.
pub fn request_ids(packet: &[u8]) -> Option<(u64, u32)> {
    let mut r = need(packet, 16).ok()?;
    let connection_id = r.u64();
    let _action = r.u32();
    Some((connection_id, r.u32()))
}

impl Request {
    /// Reads a client's packet.
    pub fn decode(packet: &[u8]) -> Result<Request, PacketError> {
        let mut r = need(packet, 16)?;
        let connection_id = r.u64();
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            CONNECT if connection_id != PROTOCOL_ID => Err(PacketError::NotBep15),
            CONNECT => Ok(Request::Connect { transaction_id }),
            ANNOUNCE => {
                need(packet, ANNOUNCE_LEN)?;
                let info_hash = InfoHash(r.bytes());
                let peer_id = r.bytes();
                let downloaded = r.u64();
                let left = r.u64();
                let uploaded = r.u64();
                let event = match r.u32() {
                    0 => Event::None,
                    1 => Event::Completed,
                    2 => Event::Started,
                    3 => Event::Stopped,
                    other => return Err(PacketError::UnknownEvent(other)),
                };
                let _ip = r.u32();
                let key = r.u32();
                let num_want = r.u32() as i32;
                let port = r.u16();
                Ok(Request::Announce(Announce {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    key,
                    num_want,
                    port,
                }))
            }
            SCRAPE => {
                let hashes = &packet[SCRAPE_HEADER_LEN..];
                let count = hashes.len() / 20;
                if !hashes.len().is_multiple_of(20) || !(1..=MAX_SCRAPE_HASHES).contains(&count) {
                    return Err(PacketError::BadScrape(packet.len()));
                }
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes: hashes
                        .chunks_exact(20)
                        .map(|h| InfoHash(h.try_into().unwrap_or([0; 20])))
                        .collect(),
                })
            }
            other => Err(PacketError::UnknownAction(other)),
        }
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_LEN);
        match self {
            Request::Connect { transaction_id } => {
                head(&mut out, PROTOCOL_ID, CONNECT, *transaction_id);
            }
            Request::Announce(a) => {
                head(&mut out, a.connection_id, ANNOUNCE, a.transaction_id);
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id);
                for n in [a.downloaded, a.left, a.uploaded] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                for n in [event_number(a.event), 0, a.key, a.num_want as u32] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                head(&mut out, *connection_id, SCRAPE, *transaction_id);
                for hash in info_hashes {
                    out.extend_from_slice(&hash.0);
                }
            }
        }
        out
    }
}

/// A request's first 16 bytes.
fn head(out: &mut Vec<u8>, connection_id: u64, action: u32, transaction_id: u32) {
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&action.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

impl Response {
    /// The transaction id the response answers.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Reads a tracker's packet; `family` is that of the address the request went to, which
    /// decides the width of announce peers.
    pub fn decode(packet: &[u8], family: Family) -> Result<Response, PacketError> {
        let mut r = need(packet, 8)?;
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            CONNECT => {
                let mut r = need(packet, CONNECT_LEN)?;
                r.u64();
                Ok(Response::Connect {
                    transaction_id,
                    connection_id: r.u64(),
                })
            }
            ANNOUNCE => {
                need(packet, 20)?;
                let interval = r.u32();
                let leechers = r.u32();
                let seeders = r.u32();
                let peers = compact::decode(&packet[20..], family).map_err(PacketError::Peers)?;
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            SCRAPE => Ok(Response::Scrape {
                transaction_id,
                entries: packet[8..]
                    .chunks_exact(12)
                    .map(|chunk| {
                        let mut r = Reader(chunk);
                        ScrapeEntry {
                            seeders: r.u32(),
                            completed: r.u32(),
                            leechers: r.u32(),
                        }
                    })
                    .collect(),
            }),
            ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(&packet[8..]).into_owned(),
            }),
            other => Err(PacketError::UnknownAction(other)),
        }
    }

    /// The packet's bytes. Announce peers are written in the width of their own family; the
    /// server only puts peers of the requester's family in a reply.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// Appends the packet's bytes to `out` (a buffer a server reuses for every reply).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut put = |n: u32| out.extend_from_slice(&n.to_be_bytes());
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                put(CONNECT);
                put(*transaction_id);
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                for n in [ANNOUNCE, *transaction_id, *interval, *leechers, *seeders] {
                    put(n);
                }
                // IPv4 peers first, then IPv6 ones, as `compact::encode` would split them.
                for v6 in [false, true] {
                    for peer in peers.iter().filter(|p| p.is_ipv6() == v6) {
                        match peer.ip() {
                            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
                            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
                        }
                        out.extend_from_slice(&peer.port().to_be_bytes());
                    }
                }
            }
            Response::Scrape {
                transaction_id,
                entries,
            } => {
                put(SCRAPE);
                put(*transaction_id);
                for e in entries {
                    for n in [e.seeders, e.completed, e.leechers] {
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                put(ERROR);
                put(*transaction_id);
                out.extend_from_slice(message.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce() -> Announce {
        Announce {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 0xdead_beef,
            info_hash: InfoHash([0xab; 20]),
            peer_id: *b"-PM0001-abcdefghijkl",
            downloaded: 1,
            left: 2,
            uploaded: 3,
            event: Event::Started,
            key: 9,
            num_want: -1,
            port: 6881,
        }
    }

    #[test]
    fn connect_request_is_the_documented_16_bytes() {
        let bytes = Request::Connect {
            transaction_id: 0x0102_0304,
        }
        .encode();
        assert_eq!(
            bytes,
            [
                0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4
            ]
        );
        assert_eq!(
            Request::decode(&bytes),
            Ok(Request::Connect {
                transaction_id: 0x0102_0304
            })
        );
        let mut wrong = bytes.clone();
        wrong[0] = 1;
        assert_eq!(Request::decode(&wrong), Err(PacketError::NotBep15));
    }

    #[test]
    fn announce_round_trips_and_ignores_ip_and_options() {
        let request = Request::Announce(announce());
        let mut bytes = request.encode();
        assert_eq!(bytes.len(), ANNOUNCE_LEN);
        assert_eq!(&bytes[80..84], &2u32.to_be_bytes(), "started is event 2");
        assert_eq!(&bytes[92..96], &[0xff; 4], "num_want -1");
        // An `ip` of the sender's choosing and BEP 41 options change nothing.
        bytes[84..88].copy_from_slice(&[192, 0, 2, 7]);
        bytes.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
        assert_eq!(Request::decode(&bytes), Ok(request));
        bytes[83] = 4;
        assert_eq!(Request::decode(&bytes), Err(PacketError::UnknownEvent(4)));
    }

    #[test]
    fn short_and_unknown_packets_are_refused() {
        let announce = Request::Announce(announce()).encode();
        for len in [0, 15, 16, 97] {
            let err = Request::decode(&announce[..len]).unwrap_err();
            assert!(matches!(err, PacketError::Short { .. }), "{len}: {err}");
        }
        let mut odd = announce.clone();
        odd[11] = 7;
        assert_eq!(Request::decode(&odd), Err(PacketError::UnknownAction(7)));
        assert_eq!(request_ids(&announce[..15]), None);
        assert_eq!(
            request_ids(&announce),
            Some((0x1122_3344_5566_7788, 0xdead_beef))
        );
    }

    #[test]
    fn scrape_needs_one_to_74_whole_hashes() {
        let scrape = |n: usize| Request::Scrape {
            connection_id: 5,
            transaction_id: 6,
            info_hashes: (0..n).map(|i| InfoHash([i as u8; 20])).collect(),
        };
        for n in [1, 2, MAX_SCRAPE_HASHES] {
            assert_eq!(Request::decode(&scrape(n).encode()), Ok(scrape(n)));
        }
        for n in [0, MAX_SCRAPE_HASHES + 1] {
            let bytes = scrape(n).encode();
            assert!(matches!(
                Request::decode(&bytes),
                Err(PacketError::BadScrape(_))
            ));
        }
        let mut partial = scrape(1).encode();
        partial.pop();
        assert!(Request::decode(&partial).is_err());
    }

    #[test]
    fn responses_round_trip_with_peers_of_either_width() {
        let v4: Vec<SocketAddr> = vec!["10.0.0.1:6881".parse().unwrap()];
        let v6: Vec<SocketAddr> = vec!["[2001:db8::1]:51413".parse().unwrap()];
        for (peers, family, len) in [(v4, Family::V4, 26), (v6, Family::V6, 38)] {
            let response = Response::Announce {
                transaction_id: 1,
                interval: 1800,
                leechers: 2,
                seeders: 3,
                peers,
            };
            let bytes = response.encode();
            assert_eq!(bytes.len(), len);
            assert_eq!(Response::decode(&bytes, family), Ok(response));
        }
        let cases = [
            Response::Connect {
                transaction_id: 7,
                connection_id: u64::MAX,
            },
            Response::Scrape {
                transaction_id: 8,
                entries: vec![ScrapeEntry {
                    seeders: 1,
                    completed: 2,
                    leechers: 3,
                }],
            },
            Response::Error {
                transaction_id: 9,
                message: "no".into(),
            },
        ];
        for response in cases {
            assert_eq!(
                Response::decode(&response.encode(), Family::V4),
                Ok(response)
            );
        }
        // Seven bytes of IPv4 peers are not whole entries.
        let mut uneven = Response::Announce {
            transaction_id: 1,
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: Vec::new(),
        }
        .encode();
        uneven.extend_from_slice(&[0; 7]);
        assert!(matches!(
            Response::decode(&uneven, Family::V4),
            Err(PacketError::Peers(_))
        ));
        assert!(Response::decode(&[0; 7], Family::V4).is_err());
    }
}
