//! The extension protocol on one connection (BEP 10): our extended handshake, the peer's, and
//! the extended messages routed by the ids each side chose: `ut_metadata` (BEP 9), which we
//! serve from the torrent's info dictionary, and `ut_pex` (BEP 11), which we send at most once
//! a minute and whose peers go to the torrent's [`PeerFeed`](crate::peer::peer_feed::PeerFeed).
//! Peer exchange is off for private torrents (BEP 27).
//!
//! The connection loop owns an [`Extensions`] and calls it at three points: once at the start
//! ([`Extensions::handshake`]), for each extended message ([`Extensions::on_message`]) and on
//! each turn ([`Extensions::due`]). It only computes messages; the loop queues them.

use crate::peer::error::ConnError;
use crate::peer::metadata::piece_of;
use crate::peer::torrent_state::TorrentState;
use crate::peer::writer::MAX_QUEUED_BLOCKS;
use crate::wire::Message;
use crate::wire::extended::{
    ExtHandshake, HANDSHAKE, MAX_METADATA_SIZE, MetadataMessage, UT_METADATA, UT_PEX,
};
use crate::wire::pex::{FLAG_CONNECTABLE, MAX_PEX_SEND, PexMessage};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The id we receive `ut_metadata` under.
pub const OUR_METADATA_ID: u8 = 1;
/// The id we receive `ut_pex` under.
pub const OUR_PEX_ID: u8 = 2;
/// The client name in our extended handshake.
pub const CLIENT: &str = concat!("piecemeal ", env!("CARGO_PKG_VERSION"));
/// When our first `ut_pex` goes out after the handshake.
const PEX_FIRST: Duration = Duration::from_secs(3);
/// How often `ut_pex` goes out after that (BEP 11: at most once a minute).
pub const PEX_EVERY: Duration = Duration::from_secs(60);
/// A peer's `ut_pex` messages closer together than this are ignored, so no peer can flood
/// the dialler with addresses.
const PEX_MIN_GAP: Duration = Duration::from_secs(20);
/// Metadata pieces served per connection, beyond one pass over the info dictionary, before
/// further requests are refused.
const METADATA_SLACK: u32 = 8;

/// The extension protocol's state on one connection.
pub struct Extensions {
    /// Whether the peer set the extension bit in its handshake.
    enabled: bool,
    /// The peer's extended handshake, once it came.
    theirs: Option<ExtHandshake>,
    /// Whether peer exchange may run on this torrent (not private).
    pex_allowed: bool,
    pex_next: Instant,
    /// The peers our `ut_pex` messages have listed as connected.
    pex_sent: HashSet<SocketAddr>,
    pex_received: Option<Instant>,
    metadata_served: u32,
}

impl Extensions {
    /// The state of a connection whose peer did (`enabled`) or did not set the extension bit.
    pub fn new(enabled: bool, torrent: &TorrentState) -> Extensions {
        Extensions {
            enabled,
            theirs: None,
            pex_allowed: !torrent.meta.info.private,
            pex_next: Instant::now() + PEX_FIRST,
            pex_sent: HashSet::new(),
            pex_received: None,
            metadata_served: 0,
        }
    }

    /// Our extended handshake, when the peer speaks the protocol.
    pub fn handshake(&self, torrent: &TorrentState, remote: SocketAddr) -> Option<Message> {
        if !self.enabled {
            return None;
        }
        let mut m = BTreeMap::from([(UT_METADATA.to_string(), OUR_METADATA_ID)]);
        if self.pex_allowed {
            m.insert(UT_PEX.to_string(), OUR_PEX_ID);
        }
        let size = torrent.meta.info_bytes.0.len() as u64;
        let ours = ExtHandshake {
            m,
            v: Some(CLIENT.to_string()),
            p: Some(torrent.feed.port()).filter(|&p| p != 0),
            reqq: Some(MAX_QUEUED_BLOCKS as u32),
            metadata_size: Some(size).filter(|&s| s <= MAX_METADATA_SIZE),
            yourip: Some(remote.ip()),
        };
        Some(Message::Extended {
            id: HANDSHAKE,
            payload: ours.encode(),
        })
    }

    /// Handles one extended message; what to send back is appended to `out`. A malformed
    /// extended handshake ends the connection; other malformed extension messages are ignored.
    pub fn on_message(
        &mut self,
        id: u8,
        payload: &[u8],
        torrent: &TorrentState,
        remote: SocketAddr,
        out: &mut Vec<Message>,
    ) -> Result<(), ConnError> {
        match id {
            HANDSHAKE => {
                let theirs = ExtHandshake::parse(payload).map_err(ConnError::Extension)?;
                log::debug!("{remote}: extended handshake {theirs:?}");
                if let Some(port) = theirs.p {
                    torrent
                        .feed
                        .note_listening(remote, SocketAddr::new(remote.ip(), port));
                }
                self.theirs = Some(theirs);
            }
            OUR_METADATA_ID => match MetadataMessage::parse(payload) {
                Ok(MetadataMessage::Request(piece)) => {
                    out.extend(self.serve_metadata(piece, torrent));
                }
                // We have the metadata: pieces and refusals are of no use.
                Ok(_) => {}
                Err(e) => log::debug!("{remote}: {e}"),
            },
            OUR_PEX_ID if self.pex_allowed => self.on_pex(payload, torrent, remote),
            _ => log::debug!("{remote}: extended message {id} ignored"),
        }
        Ok(())
    }

    /// The answer to a request for metadata piece `piece`: the piece, or a refusal past the
    /// end or once this peer has asked for more than it needs.
    fn serve_metadata(&mut self, piece: u32, torrent: &TorrentState) -> Option<Message> {
        let id = self.theirs.as_ref()?.id_of(UT_METADATA)?;
        let info = &torrent.meta.info_bytes.0;
        let budget = info.len().div_ceil(crate::wire::extended::METADATA_PIECE) as u32;
        let data = piece_of(info, piece)
            .filter(|_| info.len() as u64 <= MAX_METADATA_SIZE)
            .filter(|_| self.metadata_served < budget + METADATA_SLACK);
        let reply = match data {
            Some(data) => {
                self.metadata_served += 1;
                MetadataMessage::Data {
                    piece,
                    total_size: info.len() as u64,
                    data: data.to_vec(),
                }
            }
            None => MetadataMessage::Reject(piece),
        };
        Some(Message::Extended {
            id,
            payload: reply.encode(),
        })
    }

    /// Offers the peers a `ut_pex` message lists to the torrent's dialler.
    fn on_pex(&mut self, payload: &[u8], torrent: &TorrentState, remote: SocketAddr) {
        let now = Instant::now();
        if self.pex_received.is_some_and(|t| now - t < PEX_MIN_GAP) {
            log::debug!("{remote}: ut_pex too soon after the last, ignored");
            return;
        }
        self.pex_received = Some(now);
        match PexMessage::parse(payload) {
            Ok(pex) => {
                let added = pex.added.iter().take(MAX_PEX_SEND);
                let offered = added.filter(|(a, _)| torrent.feed.offer(*a)).count();
                log::info!(
                    "{}: {remote} told of {} peers by PEX ({offered} queued to dial)",
                    torrent.meta.info.name,
                    pex.added.len()
                );
            }
            Err(e) => log::debug!("{remote}: {e}"),
        }
    }

    /// Our `ut_pex` message when one is due: the peers connected and dropped since the last,
    /// each list at most [`MAX_PEX_SEND`] long.
    pub fn due(&mut self, torrent: &TorrentState, remote: SocketAddr) -> Option<Message> {
        let now = Instant::now();
        if !self.pex_allowed || now < self.pex_next {
            return None;
        }
        let id = self.theirs.as_ref()?.id_of(UT_PEX)?;
        self.pex_next = now + PEX_EVERY;
        let their_listen = self
            .theirs
            .as_ref()
            .and_then(|t| t.p)
            .map(|p| SocketAddr::new(remote.ip(), p));
        let now_connected: HashSet<SocketAddr> = torrent
            .feed
            .connected_peers(torrent)
            .into_iter()
            .filter(|a| *a != remote && Some(*a) != their_listen)
            .collect();
        let added: Vec<_> = now_connected
            .difference(&self.pex_sent)
            .take(MAX_PEX_SEND)
            .map(|a| (*a, FLAG_CONNECTABLE))
            .collect();
        let dropped: Vec<_> = self
            .pex_sent
            .difference(&now_connected)
            .take(MAX_PEX_SEND)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return None;
        }
        self.pex_sent.extend(added.iter().map(|(a, _)| *a));
        for a in &dropped {
            self.pex_sent.remove(a);
        }
        let message = PexMessage { added, dropped };
        Some(Message::Extended {
            id,
            payload: message.encode(),
        })
    }

    /// Forgets what the torrent learnt from this connection (it ended).
    pub fn close(&self, torrent: &TorrentState, remote: SocketAddr) {
        torrent.feed.forget(remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::test_support::Fixture;

    fn remote() -> SocketAddr {
        "10.0.0.9:40000".parse().unwrap()
    }

    fn their_handshake(p: Option<u16>) -> Vec<u8> {
        ExtHandshake {
            m: BTreeMap::from([(UT_METADATA.into(), 3), (UT_PEX.into(), 4)]),
            p,
            ..ExtHandshake::default()
        }
        .encode()
    }

    fn payload(m: &Message) -> (u8, Vec<u8>) {
        match m {
            Message::Extended { id, payload } => (*id, payload.clone()),
            other => panic!("not extended: {other:?}"),
        }
    }

    #[test]
    fn handshake_only_to_peers_with_the_bit_and_says_what_we_serve() {
        let f = Fixture::new(3, &[]);
        f.state.feed.set_port(6999);
        assert!(
            Extensions::new(false, &f.state)
                .handshake(&f.state, remote())
                .is_none()
        );
        let ext = Extensions::new(true, &f.state);
        let (id, body) = payload(&ext.handshake(&f.state, remote()).unwrap());
        assert_eq!(id, HANDSHAKE);
        let ours = ExtHandshake::parse(&body).unwrap();
        assert_eq!(ours.id_of(UT_METADATA), Some(OUR_METADATA_ID));
        assert_eq!(ours.id_of(UT_PEX), Some(OUR_PEX_ID));
        assert_eq!(ours.p, Some(6999));
        assert_eq!(ours.yourip, Some(remote().ip()));
        assert_eq!(
            ours.metadata_size,
            Some(f.state.meta.info_bytes.0.len() as u64)
        );
    }

    #[test]
    fn metadata_is_served_under_their_id_and_refused_past_the_end() {
        let f = Fixture::new(3, &[]);
        let mut ext = Extensions::new(true, &f.state);
        let mut out = Vec::new();
        let request = |p| MetadataMessage::Request(p).encode();
        // Before their handshake we do not know their id: nothing goes out.
        ext.on_message(OUR_METADATA_ID, &request(0), &f.state, remote(), &mut out)
            .unwrap();
        assert!(out.is_empty());
        ext.on_message(
            HANDSHAKE,
            &their_handshake(None),
            &f.state,
            remote(),
            &mut out,
        )
        .unwrap();
        ext.on_message(OUR_METADATA_ID, &request(0), &f.state, remote(), &mut out)
            .unwrap();
        ext.on_message(OUR_METADATA_ID, &request(9), &f.state, remote(), &mut out)
            .unwrap();
        let info = &f.state.meta.info_bytes.0;
        let (id, body) = payload(&out[0]);
        assert_eq!(id, 3);
        assert_eq!(
            MetadataMessage::parse(&body).unwrap(),
            MetadataMessage::Data {
                piece: 0,
                total_size: info.len() as u64,
                data: info.to_vec()
            }
        );
        assert_eq!(
            MetadataMessage::parse(&payload(&out[1]).1).unwrap(),
            MetadataMessage::Reject(9)
        );
        // Junk to our ids is ignored; a bad extended handshake ends the connection.
        out.clear();
        for (id, body) in [
            (OUR_METADATA_ID, &b"de"[..]),
            (OUR_PEX_ID, b"xx"),
            (77, b""),
        ] {
            ext.on_message(id, body, &f.state, remote(), &mut out)
                .unwrap();
        }
        assert!(out.is_empty());
        let bad = ext.on_message(HANDSHAKE, b"d1:m", &f.state, remote(), &mut out);
        assert!(matches!(bad, Err(ConnError::Extension(_))));
    }

    #[test]
    fn pex_received_goes_to_the_feed_at_most_so_often() {
        let f = Fixture::new(3, &[]);
        let mut ext = Extensions::new(true, &f.state);
        let mut out = Vec::new();
        let peers = |first: u16| PexMessage {
            added: (first..first + 60)
                .map(|p| (SocketAddr::from(([10, 0, 0, 1], p)), 0))
                .collect(),
            dropped: vec![],
        };
        ext.on_message(
            OUR_PEX_ID,
            &peers(1000).encode(),
            &f.state,
            remote(),
            &mut out,
        )
        .unwrap();
        ext.on_message(
            OUR_PEX_ID,
            &peers(2000).encode(),
            &f.state,
            remote(),
            &mut out,
        )
        .unwrap();
        let queued: Vec<_> = f.state.feed.receiver_for_tests().try_iter().collect();
        assert_eq!(queued.len(), MAX_PEX_SEND, "one message's worth, bounded");
        assert!(queued.iter().all(|a| (1000..1060).contains(&a.port())));
    }

    #[test]
    fn pex_is_sent_once_due_with_changes_only() {
        let f = Fixture::new(3, &[]);
        let mut ext = Extensions::new(true, &f.state);
        let mut out = Vec::new();
        ext.on_message(
            HANDSHAKE,
            &their_handshake(Some(7000)),
            &f.state,
            remote(),
            &mut out,
        )
        .unwrap();
        ext.pex_next = Instant::now();
        let other = "10.0.0.7:51000".parse().unwrap();
        f.state
            .feed
            .note_listening(remote(), "10.0.0.9:7000".parse().unwrap());
        let _them = f.admit_incoming(remote());
        let _other = f.admit_outgoing(other);
        let (id, body) = payload(&ext.due(&f.state, remote()).unwrap());
        assert_eq!(id, 4);
        let pex = PexMessage::parse(&body).unwrap();
        assert_eq!(
            pex.added,
            vec![(other, FLAG_CONNECTABLE)],
            "not the peer itself"
        );
        assert!(
            ext.due(&f.state, remote()).is_none(),
            "not again within a minute"
        );
        ext.pex_next = Instant::now();
        assert!(ext.due(&f.state, remote()).is_none(), "nothing changed");
        drop(_other);
        ext.pex_next = Instant::now();
        let pex = PexMessage::parse(&payload(&ext.due(&f.state, remote()).unwrap()).1).unwrap();
        assert_eq!(pex.dropped, vec![other]);
    }

    #[test]
    fn no_pex_on_private_torrents() {
        let f = Fixture::private(3);
        let mut ext = Extensions::new(true, &f.state);
        let (_, body) = payload(&ext.handshake(&f.state, remote()).unwrap());
        assert_eq!(ExtHandshake::parse(&body).unwrap().id_of(UT_PEX), None);
        let mut out = Vec::new();
        let pex = PexMessage {
            added: vec![("10.0.0.1:1".parse().unwrap(), 0)],
            dropped: vec![],
        };
        ext.on_message(OUR_PEX_ID, &pex.encode(), &f.state, remote(), &mut out)
            .unwrap();
        assert!(f.state.feed.receiver_for_tests().is_empty());
    }
}
