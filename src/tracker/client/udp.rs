//! The UDP tracker protocol (BEP 15) as the client speaks it: `udp://host:port[/path]` URLs,
//! a connect to obtain a connection id (kept for a minute, with the socket it was issued to),
//! then the announce. Each request is sent again after 15·2^n seconds without an answer, for
//! n up to [`MAX_RETRANSMITS`], and within the announcer's time budget; replies whose
//! transaction id is not the one sent are ignored.

use super::ReplyError;
use crate::net::http;
use crate::tracker::protocol::compact::Family;
use crate::tracker::protocol::udp::{Announce, Request, Response};
use crate::tracker::protocol::{AnnounceRequest, AnnounceResponse, PeerAddr};
use log::debug;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// BEP 15's first retransmission delay; the n-th waits `RETRANSMIT_BASE * 2^n`.
pub const RETRANSMIT_BASE: Duration = Duration::from_secs(15);
/// Retransmissions of one request. BEP 15 goes up to 8 (over an hour); an announce thread has
/// other trackers to try and retries the whole announce soon after, so it stops at 1: a request
/// is sent at 0 s and 15 s and given up at 45 s.
pub const MAX_RETRANSMITS: u32 = 1;
/// The longest a full schedule takes: the waits after each send, 15 s + 30 s.
pub const SCHEDULE: Duration =
    Duration::from_secs(RETRANSMIT_BASE.as_secs() * ((2 << MAX_RETRANSMITS) - 1));
/// How long a connection id is used (BEP 15: one minute).
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// Largest reply read: 200 IPv6 peers and the header fit.
const MAX_REPLY: usize = 4096;

/// Whether `url` names a UDP tracker.
pub(super) fn is_udp(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("udp://"))
}

/// One tracker's socket and the connection id it holds, if any.
#[derive(Debug)]
struct Session {
    socket: UdpSocket,
    family: Family,
    connection: Option<(u64, Instant)>,
}

/// The UDP trackers an announcer has talked to, by URL.
#[derive(Debug)]
pub(super) struct UdpTrackers {
    sessions: HashMap<String, Session>,
    /// [`RETRANSMIT_BASE`], except in the retransmission test.
    retransmit_base: Duration,
}

impl UdpTrackers {
    pub(super) fn new() -> UdpTrackers {
        UdpTrackers {
            sessions: HashMap::new(),
            retransmit_base: RETRANSMIT_BASE,
        }
    }

    /// Announces `req` to the UDP tracker at `url`, giving up after `budget`.
    pub(super) fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        budget: Duration,
    ) -> Result<AnnounceResponse, ReplyError> {
        let deadline = Instant::now() + budget;
        let base = self.retransmit_base;
        let session = match self.sessions.entry(url.to_string()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(open(url)?),
        };
        let result = session.announce(req, deadline, base);
        if let Err(ReplyError::Invalid(_)) = result {
            // A fresh socket (and DNS lookup) next time: the tracker may have moved.
            self.sessions.remove(url);
        }
        result
    }
}

/// Resolves `url`'s host and opens a socket connected to its first address.
fn open(url: &str) -> Result<Session, ReplyError> {
    let invalid = |detail: String| ReplyError::Invalid(detail);
    // The authority of a `udp://` URL reads like an `http://` one's.
    let parsed = http::parse_url(&format!("http://{}", &url[6..]))
        .map_err(|e| invalid(e.to_string().replace("http://", "udp://")))?;
    let addr = (parsed.host.as_str(), parsed.port)
        .to_socket_addrs()
        .map_err(|e| invalid(format!("cannot resolve {}: {e}", parsed.host)))?
        .next()
        .ok_or_else(|| invalid(format!("{} resolved to no address", parsed.host)))?;
    let (local, family) = match addr {
        SocketAddr::V4(_) => (SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), Family::V4),
        SocketAddr::V6(_) => (SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)), Family::V6),
    };
    let socket = UdpSocket::bind(local)
        .and_then(|socket| socket.connect(addr).map(|()| socket))
        .map_err(|e| invalid(format!("cannot open a UDP socket to {addr}: {e}")))?;
    Ok(Session {
        socket,
        family,
        connection: None,
    })
}

impl Session {
    fn announce(
        &mut self,
        req: &AnnounceRequest,
        deadline: Instant,
        base: Duration,
    ) -> Result<AnnounceResponse, ReplyError> {
        let reused = self
            .connection
            .filter(|(_, since)| since.elapsed() < CONNECTION_ID_LIFETIME);
        let (connection_id, reused) = match reused {
            Some((id, _)) => (id, true),
            None => (self.connect(deadline, base)?, false),
        };
        match self.send_announce(connection_id, req, deadline, base) {
            // The tracker may have restarted (new key) or aged the id out early.
            Err(ReplyError::Failure(reason)) if reused => {
                debug!("udp announce refused with a reused connection id ({reason}); reconnecting");
                let connection_id = self.connect(deadline, base)?;
                self.send_announce(connection_id, req, deadline, base)
            }
            other => other,
        }
    }

    fn connect(&mut self, deadline: Instant, base: Duration) -> Result<u64, ReplyError> {
        self.connection = None;
        let transaction_id = fastrand::u32(..);
        let request = Request::Connect { transaction_id }.encode();
        match self.exchange(&request, transaction_id, deadline, base)? {
            Response::Connect { connection_id, .. } => {
                self.connection = Some((connection_id, Instant::now()));
                Ok(connection_id)
            }
            other => Err(unexpected(&other, "connect")),
        }
    }

    fn send_announce(
        &self,
        connection_id: u64,
        req: &AnnounceRequest,
        deadline: Instant,
        base: Duration,
    ) -> Result<AnnounceResponse, ReplyError> {
        let transaction_id = fastrand::u32(..);
        let request = Request::Announce(Announce {
            connection_id,
            transaction_id,
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            downloaded: req.downloaded,
            left: req.left,
            uploaded: req.uploaded,
            event: req.event,
            key: 0,
            num_want: req
                .numwant
                .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
            port: req.port,
        })
        .encode();
        match self.exchange(&request, transaction_id, deadline, base)? {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(AnnounceResponse {
                interval: Duration::from_secs(interval.into()),
                min_interval: None,
                complete: Some(seeders.into()),
                incomplete: Some(leechers.into()),
                peers: peers
                    .into_iter()
                    .map(|addr| PeerAddr {
                        addr,
                        peer_id: None,
                    })
                    .collect(),
            }),
            other => Err(unexpected(&other, "announce")),
        }
    }

    /// Sends `request` on the retransmission schedule until a reply with `transaction_id`
    /// arrives; an error reply becomes [`ReplyError::Failure`].
    fn exchange(
        &self,
        request: &[u8],
        transaction_id: u32,
        deadline: Instant,
        base: Duration,
    ) -> Result<Response, ReplyError> {
        let failed = |e: io::Error| ReplyError::Invalid(format!("UDP exchange failed: {e}"));
        let mut buffer = [0u8; MAX_REPLY];
        for n in 0..=MAX_RETRANSMITS {
            self.socket.send(request).map_err(failed)?;
            let until = deadline.min(Instant::now() + base * 2u32.pow(n));
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.socket.set_read_timeout(Some(left)).map_err(failed)?;
                let len = match self.socket.recv(&mut buffer) {
                    Ok(len) => len,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    // Typically ICMP port unreachable: nothing listens there.
                    Err(e) => return Err(failed(e)),
                };
                match Response::decode(&buffer[..len], self.family) {
                    Ok(Response::Error {
                        transaction_id: t,
                        message,
                    }) if t == transaction_id => return Err(ReplyError::Failure(message)),
                    Ok(reply) if reply.transaction_id() == transaction_id => return Ok(reply),
                    Ok(_) => debug!("udp tracker: ignored a reply to another request"),
                    Err(e) => debug!("udp tracker: ignored a malformed reply: {e}"),
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(ReplyError::Invalid(format!(
            "no UDP reply after {} attempts",
            MAX_RETRANSMITS + 1
        )))
    }
}

fn unexpected(reply: &Response, to: &str) -> ReplyError {
    ReplyError::Invalid(format!("tracker answered a {to} with {reply:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::client::tests::request;
    use std::thread;

    #[test]
    fn schedule_is_15_then_30_seconds() {
        assert_eq!(SCHEDULE, Duration::from_secs(45));
    }

    #[test]
    fn udp_urls_are_recognised_by_scheme() {
        assert!(is_udp("udp://t.example:6969/announce"));
        assert!(is_udp("UDP://t.example:6969"));
        assert!(!is_udp("http://t.example/announce"));
        assert!(!is_udp("udp:/x"));
        let err = open("udp://[::1:80").unwrap_err();
        assert!(
            matches!(err, ReplyError::Invalid(ref e) if e.contains("udp://")),
            "{err:?}"
        );
    }

    /// A tracker on loopback that ignores the first packet of each kind, answers the connect's
    /// retransmission, sends a stale and a foreign reply before the real one, and refuses the
    /// second announce's reused connection id once.
    #[test]
    fn lost_packets_are_sent_again_and_foreign_replies_ignored() {
        let tracker = UdpSocket::bind("127.0.0.1:0").unwrap();
        tracker
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let url = format!("udp://{}/announce", tracker.local_addr().unwrap());
        let server = thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            let mut seen = Vec::new();
            let mut connects = 0u64;
            // Six requests make the two announces; a time-out ends a test that went wrong.
            while seen.len() < 6 {
                let Ok((len, from)) = tracker.recv_from(&mut buffer) else {
                    break;
                };
                let request = Request::decode(&buffer[..len]).unwrap();
                seen.push(request.clone());
                let reply = match request {
                    Request::Connect { transaction_id } => {
                        connects += 1;
                        if connects == 1 {
                            continue; // lost
                        }
                        Response::Connect {
                            transaction_id,
                            connection_id: 1000 + connects,
                        }
                    }
                    Request::Announce(a) if a.connection_id == 1002 && seen.len() == 4 => {
                        Response::Error {
                            transaction_id: a.transaction_id,
                            message: "stale".into(),
                        }
                    }
                    Request::Announce(a) => {
                        for junk in [a.transaction_id ^ 1, a.transaction_id.wrapping_add(7)] {
                            let stale = Response::Connect {
                                transaction_id: junk,
                                connection_id: 1,
                            };
                            tracker.send_to(&stale.encode(), from).unwrap();
                        }
                        Response::Announce {
                            transaction_id: a.transaction_id,
                            interval: 1800,
                            leechers: 4,
                            seeders: 5,
                            peers: vec!["10.1.2.3:4567".parse().unwrap()],
                        }
                    }
                    Request::Scrape { .. } => unreachable!(),
                };
                tracker.send_to(&reply.encode(), from).unwrap();
            }
            seen
        });
        let mut client = UdpTrackers::new();
        client.retransmit_base = Duration::from_millis(100);
        let started = Instant::now();
        let reply = client
            .announce(&url, &request(), Duration::from_secs(5))
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(reply.interval, Duration::from_secs(1800));
        assert_eq!((reply.complete, reply.incomplete), (Some(5), Some(4)));
        assert_eq!(reply.peers[0].addr, "10.1.2.3:4567".parse().unwrap());
        // The reused id is refused once: the client connects again and retries.
        client
            .announce(&url, &request(), Duration::from_secs(5))
            .unwrap();
        drop(client);
        let seen = server.join().unwrap();
        let kinds: Vec<&str> = seen
            .iter()
            .map(|r| match r {
                Request::Connect { .. } => "connect",
                Request::Announce(_) => "announce",
                Request::Scrape { .. } => "scrape",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "connect", "connect", "announce", "announce", "connect", "announce"
            ]
        );
        let Request::Announce(first) = &seen[2] else {
            unreachable!()
        };
        assert_eq!(first.connection_id, 1002);
        assert_eq!(first.num_want, 7);
    }

    #[test]
    fn nothing_listening_fails_fast_and_budget_bounds_silence() {
        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}", silent.local_addr().unwrap());
        let started = Instant::now();
        let err = UdpTrackers::new()
            .announce(&url, &request(), Duration::from_millis(300))
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert!(
            matches!(err, ReplyError::Invalid(ref e) if e.contains("no UDP reply")),
            "{err:?}"
        );
        // Nobody at all: the kernel's port-unreachable ends it at once.
        let port = silent.local_addr().unwrap().port();
        drop(silent);
        let started = Instant::now();
        let err = UdpTrackers::new()
            .announce(
                &format!("udp://127.0.0.1:{port}"),
                &request(),
                Duration::from_secs(5),
            )
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{err:?}");
    }
}
