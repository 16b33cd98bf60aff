//! Answering one BEP 15 packet: pure, given the registry, the connection ids, the address the
//! packet came from and the time; the socket loop in `mod.rs` only moves bytes. The reply is
//! written into buffers the loop reuses, so an announce allocates nothing.
//!
//! Nothing is answered with more bytes than the request before the client has shown a valid
//! connection id (a connect reply is exactly as long as its request, an error is cut to the
//! request's length), so a forged source address cannot turn the tracker into an amplifier.

use super::connection_id::ConnectionIds;
use crate::tracker::protocol::udp::{Announce, Request, Response, ScrapeEntry, request_ids};
use crate::tracker::server::params::valid_port;
use crate::tracker::server::routes::Service;
use crate::tracker::server::stats::Proto;
use crate::tracker::server::swarm::{DEFAULT_NUMWANT, PeerAnnounce};
use std::net::SocketAddr;
use std::time::Instant;

/// Most peers in a reply to an IPv4 client: 200 entries (1,220 bytes) fit one 1,500-byte frame.
const MAX_PEERS_V4: usize = 200;
/// Most peers in a reply to an IPv6 client: 79 entries of 18 bytes fill the 1,452 bytes of
/// payload a 1,500-byte IPv6 frame holds, so replies are never fragmented.
const MAX_PEERS_V6: usize = 79;

/// Buffers a socket thread keeps from one packet to the next.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Peers drawn for an announce reply.
    peers: Vec<SocketAddr>,
}

/// Writes the reply to `packet` from `from` into `out` (emptied first); `false` when it
/// deserves none (too short to carry a transaction id, or malformed before a valid
/// connection id).
pub fn answer(
    packet: &[u8],
    from: SocketAddr,
    service: &Service,
    ids: &ConnectionIds,
    now: Instant,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let from = SocketAddr::new(from.ip().to_canonical(), from.port());
    let request = match Request::decode(packet) {
        Ok(request) => request,
        Err(e) => {
            let Some((connection_id, transaction_id)) = request_ids(packet) else {
                return false;
            };
            // A connect request never carries a connection id of ours, so this also drops
            // connects without the protocol id.
            if !ids.check(connection_id, from, now) {
                return false;
            }
            error(transaction_id, &e.to_string(), packet.len(), out);
            return true;
        }
    };
    let reply = match request {
        Request::Connect { transaction_id } => Response::Connect {
            transaction_id,
            connection_id: ids.issue(from, now),
        },
        Request::Announce(a) if ids.check(a.connection_id, from, now) => {
            let reply = announce(&a, from, service, now, std::mem::take(&mut scratch.peers));
            reply.encode_into(out);
            if let Response::Announce { mut peers, .. } = reply {
                peers.clear();
                scratch.peers = peers;
            }
            return true;
        }
        Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } if ids.check(connection_id, from, now) => Response::Scrape {
            transaction_id,
            entries: service
                .scrape(Proto::Udp, &info_hashes)
                .into_iter()
                .map(|(_, stats)| ScrapeEntry {
                    seeders: clamp(stats.complete),
                    completed: clamp(stats.downloaded),
                    leechers: clamp(stats.incomplete),
                })
                .collect(),
        },
        Request::Announce(Announce { transaction_id, .. })
        | Request::Scrape { transaction_id, .. } => {
            error(
                transaction_id,
                "connection id expired or invalid; connect again",
                packet.len(),
                out,
            );
            return true;
        }
    };
    reply.encode_into(out);
    true
}

/// Records an announce in the registry shared with HTTP announces. The peer's address is the
/// packet's source: BEP 15's `ip` field is ignored as HTTP's `ip=` is. Peers are drawn into
/// `peers` (an empty buffer to reuse).
fn announce(
    a: &Announce,
    from: SocketAddr,
    service: &Service,
    now: Instant,
    peers: Vec<SocketAddr>,
) -> Response {
    let port = match valid_port(a.port) {
        Ok(port) => port,
        Err(reason) => {
            return Response::Error {
                transaction_id: a.transaction_id,
                message: reason,
            };
        }
    };
    let cap = if from.is_ipv4() {
        MAX_PEERS_V4
    } else {
        MAX_PEERS_V6
    };
    let want = usize::try_from(a.num_want)
        .unwrap_or(DEFAULT_NUMWANT)
        .min(cap);
    let peer = PeerAnnounce {
        peer_id: a.peer_id,
        addr: SocketAddr::new(from.ip(), port),
        left: a.left,
        event: a.event,
        // The registry bounds this too.
        numwant: Some(want as u32),
        // A reply carries one width of address: the requester's family.
        own_family_only: true,
    };
    // The same checks as HTTP announces: access list, per-address budget, caps.
    let reply = match service.announce(Proto::Udp, a.info_hash, &peer, now, peers) {
        Ok(reply) => reply,
        Err(message) => {
            return Response::Error {
                transaction_id: a.transaction_id,
                message,
            };
        }
    };
    Response::Announce {
        transaction_id: a.transaction_id,
        interval: clamp(service.interval.as_secs()),
        leechers: clamp(reply.incomplete),
        seeders: clamp(reply.complete),
        peers: reply.peers,
    }
}

/// An error reply into `out`, cut so that it is never longer than the request it answers.
fn error(transaction_id: u32, message: &str, request_len: usize, out: &mut Vec<u8>) {
    Response::Error {
        transaction_id,
        message: message.to_string(),
    }
    .encode_into(out);
    out.truncate(request_len);
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::InfoHash;
    use crate::tracker::protocol::Event;
    use crate::tracker::protocol::compact::Family;
    use crate::tracker::server::testing::service;

    struct Tracker {
        service: Service,
        ids: ConnectionIds,
        now: Instant,
    }

    impl Tracker {
        fn new() -> Tracker {
            let now = Instant::now();
            Tracker {
                service: service(),
                ids: ConnectionIds::new(now),
                now,
            }
        }

        /// The bytes answering `packet` from `from`.
        fn raw(&self, packet: &[u8], from: &str) -> Option<Vec<u8>> {
            let from = from.parse().unwrap();
            let mut out = Vec::new();
            let mut scratch = Scratch::default();
            answer(
                packet,
                from,
                &self.service,
                &self.ids,
                self.now,
                &mut scratch,
                &mut out,
            )
            .then_some(out)
        }

        fn send(&self, request: &Request, from: &str) -> Option<Response> {
            let reply = self.raw(&request.encode(), from)?;
            let from: SocketAddr = from.parse().unwrap();
            let family = if from.ip().to_canonical().is_ipv4() {
                Family::V4
            } else {
                Family::V6
            };
            Some(Response::decode(&reply, family).unwrap())
        }

        fn connect(&self, from: &str) -> u64 {
            match self.send(&Request::Connect { transaction_id: 1 }, from) {
                Some(Response::Connect { connection_id, .. }) => connection_id,
                other => panic!("connect answered {other:?}"),
            }
        }
    }

    fn announce_by(connection_id: u64, peer: u8, port: u16) -> Request {
        Request::Announce(Announce {
            connection_id,
            transaction_id: 42,
            info_hash: InfoHash([7; 20]),
            peer_id: [peer; 20],
            downloaded: 0,
            left: 10,
            uploaded: 0,
            event: Event::Started,
            key: 0,
            num_want: -1,
            port,
        })
    }

    fn peers(response: Option<Response>) -> Vec<SocketAddr> {
        match response {
            Some(Response::Announce { peers, .. }) => peers,
            other => panic!("not an announce reply: {other:?}"),
        }
    }

    #[test]
    fn announces_share_the_swarm_and_use_the_source_address() {
        let t = Tracker::new();
        let a = t.connect("192.0.2.1:5000");
        let first = t.send(&announce_by(a, 1, 6881), "192.0.2.1:5000");
        assert!(matches!(
            first,
            Some(Response::Announce { transaction_id: 42, interval: 120, leechers: 1, seeders: 0, ref peers }) if peers.is_empty()
        ));
        let b = t.connect("192.0.2.2:5000");
        let seen = peers(t.send(&announce_by(b, 2, 6882), "192.0.2.2:5000"));
        assert_eq!(seen, ["192.0.2.1:6881".parse().unwrap()]);
        let scrape = Request::Scrape {
            connection_id: b,
            transaction_id: 3,
            info_hashes: vec![InfoHash([7; 20]), InfoHash([8; 20])],
        };
        let expected = vec![
            ScrapeEntry {
                seeders: 0,
                completed: 0,
                leechers: 2,
            },
            ScrapeEntry::default(),
        ];
        assert_eq!(
            t.send(&scrape, "192.0.2.2:5000"),
            Some(Response::Scrape {
                transaction_id: 3,
                entries: expected
            })
        );
        // Counted for the status page as UDP, apart from HTTP.
        let udp = t.service.stats.rates(Proto::Udp, Instant::now());
        assert_eq!((udp.announces, udp.scrapes), (2, 1));
        assert_eq!(
            t.service.stats.rates(Proto::Http, Instant::now()).announces,
            0
        );
    }

    #[test]
    fn refusals_from_the_shared_checks_are_udp_errors() {
        let mut t = Tracker::new();
        t.service.address_limit = crate::tracker::server::address_limit::AddressLimit::new(
            1,
            std::time::Duration::from_secs(60),
        );
        let a = t.connect("192.0.2.1:5000");
        assert!(matches!(
            t.send(&announce_by(a, 1, 6881), "192.0.2.1:5000"),
            Some(Response::Announce { .. })
        ));
        assert!(matches!(
            t.send(&announce_by(a, 1, 6881), "192.0.2.1:5000"),
            Some(Response::Error { ref message, .. }) if message.contains("too many announces")
        ));
    }

    #[test]
    fn ip_field_is_ignored() {
        let t = Tracker::new();
        let a = t.connect("192.0.2.1:5000");
        let mut packet = announce_by(a, 1, 6881).encode();
        packet[84..88].copy_from_slice(&[198, 51, 100, 9]);
        t.raw(&packet, "192.0.2.1:5000").unwrap();
        let b = t.connect("192.0.2.2:5000");
        let seen = peers(t.send(&announce_by(b, 2, 6882), "192.0.2.2:5000"));
        assert_eq!(seen, ["192.0.2.1:6881".parse().unwrap()]);
    }

    #[test]
    fn forged_or_old_connection_ids_get_an_error_and_record_nothing() {
        let t = Tracker::new();
        let mine = t.connect("192.0.2.1:5000");
        let expired = Tracker {
            now: t.now + 2 * super::super::connection_id::SLOT,
            ..Tracker::new()
        };
        let cases = [
            (&t, mine ^ 0x10, "192.0.2.1:5000"),
            (&t, mine, "192.0.2.66:5000"),
            (&t, mine, "192.0.2.1:5001"),
            (&t, 0, "192.0.2.1:5000"),
        ];
        for (tracker, id, from) in cases {
            let reply = tracker.send(&announce_by(id, 9, 6881), from);
            assert!(
                matches!(reply, Some(Response::Error { transaction_id: 42, ref message }) if message.contains("connection id")),
                "{from}: {reply:?}"
            );
        }
        // The same id two slots later, on the same tracker.
        let later = Tracker {
            service: service(),
            ids: t.ids,
            now: expired.now,
        };
        let reply = later.send(&announce_by(mine, 9, 6881), "192.0.2.1:5000");
        assert!(matches!(reply, Some(Response::Error { .. })), "{reply:?}");
        assert_eq!(t.service.swarms.torrent_count(), 0);
        assert_eq!(later.service.swarms.torrent_count(), 0);
    }

    #[test]
    fn nothing_before_a_connection_id_is_bigger_than_its_request() {
        let t = Tracker::new();
        let from = "192.0.2.1:5000";
        let mut packets: Vec<Vec<u8>> = vec![
            Request::Connect { transaction_id: 5 }.encode(),
            announce_by(12345, 1, 6881).encode(),
            Request::Scrape {
                connection_id: 1,
                transaction_id: 2,
                info_hashes: vec![InfoHash([1; 20])],
            }
            .encode(),
        ];
        // Every prefix of those, and random junk of every length up to a frame.
        let prefixes: Vec<Vec<u8>> = packets
            .iter()
            .flat_map(|p| (0..p.len()).map(|n| p[..n].to_vec()).collect::<Vec<_>>())
            .collect();
        packets.extend(prefixes);
        packets.extend((0..1500).map(|n| (0..n).map(|_| fastrand::u8(..)).collect()));
        for packet in &packets {
            if let Some(reply) = t.raw(packet, from) {
                assert!(
                    reply.len() <= packet.len(),
                    "{} answered with {}",
                    packet.len(),
                    reply.len()
                );
            }
        }
        assert_eq!(t.service.swarms.torrent_count(), 0);
    }

    #[test]
    fn malformed_packets_with_a_valid_id_get_a_reason() {
        let t = Tracker::new();
        let id = t.connect("192.0.2.1:5000");
        let mut packet = announce_by(id, 1, 6881).encode();
        packet[83] = 9;
        let reply = t.raw(&packet, "192.0.2.1:5000").unwrap();
        assert!(
            matches!(Response::decode(&reply, Family::V4), Ok(Response::Error { ref message, .. }) if message == "unknown event 9")
        );
        let zero_port = t.send(&announce_by(id, 1, 0), "192.0.2.1:5000");
        assert!(
            matches!(zero_port, Some(Response::Error { ref message, .. }) if message.contains("port"))
        );
        assert_eq!(t.service.swarms.torrent_count(), 0);
    }

    #[test]
    fn ipv6_clients_get_ipv6_peers_and_num_want_is_bounded() {
        let t = Tracker::new();
        for n in 0..100u16 {
            let from = format!("[2001:db8::{n:x}]:5000");
            let id = t.connect(&from);
            t.send(&announce_by(id, n as u8, 7000 + n), &from).unwrap();
        }
        let v4 = t.connect("192.0.2.1:5000");
        t.send(&announce_by(v4, 200, 6881), "192.0.2.1:5000");
        let from = "[2001:db8::ffff]:5000";
        let id = t.connect(from);
        let Request::Announce(mut many) = announce_by(id, 201, 6881) else {
            unreachable!()
        };
        many.num_want = 1000;
        let got = peers(t.send(&Request::Announce(many.clone()), from));
        assert_eq!(got.len(), MAX_PEERS_V6);
        assert!(got.iter().all(SocketAddr::is_ipv6));
        many.num_want = 3;
        assert_eq!(peers(t.send(&Request::Announce(many), from)).len(), 3);
        // The IPv4 client sees only the one other IPv4 peer... which is none but itself.
        let reply = peers(t.send(&announce_by(v4, 200, 6881), "192.0.2.1:5000"));
        assert!(reply.is_empty(), "{reply:?}");
    }
}
