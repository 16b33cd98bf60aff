//! The handshake exchange of a peer connection, both directions, and the checks that decide
//! whether the connection goes on to the message loop.
//!
//! Dialling out we send ours first and check that the other side answers for the same torrent
//! and is not this process; answering we read theirs first, find the torrent it names, and send
//! ours only once the peer passed every check, so a refused peer learns nothing. Both work on any
//! `Read + Write` stream: the socket set-up (time-outs) stays with the callers.

use crate::metainfo::InfoHash;
use crate::peer::error::ConnError;
use crate::peer::torrent_state::TorrentState;
use crate::wire::{Handshake, read_handshake, write_handshake};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the other side may take to send its handshake, in either direction.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Our handshake for `torrent`: we speak the fast extension (BEP 6).
fn ours(info_hash: [u8; 20], torrent: &TorrentState) -> Handshake {
    Handshake::new(info_hash, torrent.peer_id).with_fast()
}

/// Dials out on `stream` to `addr` for `torrent`: sends our handshake, then reads theirs.
/// Returns theirs. When the remote is this process itself, its address and id are
/// banned so it is not dialled again.
pub fn initiate(
    stream: &mut (impl Read + Write),
    torrent: &TorrentState,
    addr: SocketAddr,
) -> Result<Handshake, ConnError> {
    write_handshake(stream, &ours(torrent.meta.info_hash.0, torrent))?;
    let theirs = read_handshake(stream)?;
    if theirs.info_hash != torrent.meta.info_hash.0 {
        return Err(ConnError::WrongTorrent(InfoHash(theirs.info_hash)));
    }
    if theirs.peer_id == torrent.peer_id {
        torrent.ban(addr, theirs.peer_id);
        return Err(ConnError::OurOwnPeer);
    }
    Ok(theirs)
}

/// Answers an incoming connection on `stream`: reads the handshake, finds its torrent among
/// `torrents`, refuses our own peer id and banned ones, then sends our handshake. Returns the
/// torrent and their handshake.
pub fn answer<'t>(
    stream: &mut (impl Read + Write),
    torrents: &'t HashMap<InfoHash, Arc<TorrentState>>,
) -> Result<(&'t Arc<TorrentState>, Handshake), ConnError> {
    let theirs = read_handshake(stream)?;
    let torrent = torrents
        .get(&InfoHash(theirs.info_hash))
        .ok_or(ConnError::WrongTorrent(InfoHash(theirs.info_hash)))?;
    if theirs.peer_id == torrent.peer_id {
        return Err(ConnError::OurOwnPeer);
    }
    if torrent.is_banned(&theirs.peer_id) {
        return Err(ConnError::Banned);
    }
    write_handshake(stream, &ours(theirs.info_hash, torrent))?;
    Ok((torrent, theirs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::test_support::{Fixture, OUR_ID};
    use crate::wire::WireError;
    use std::io::{self, Cursor};

    const THEIR_ID: [u8; 20] = [7; 20];

    fn addr() -> SocketAddr {
        "127.0.0.1:6999".parse().unwrap()
    }

    /// A stream that reads from a fixed input and records what is written.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Duplex {
        fn reading(input: &[u8]) -> Duplex {
            Duplex {
                input: Cursor::new(input.to_vec()),
                written: Vec::new(),
            }
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn handshake(info_hash: [u8; 20], peer_id: [u8; 20]) -> Vec<u8> {
        Handshake::new(info_hash, peer_id).to_bytes().to_vec()
    }

    /// A handshake with the fast extension's bit, as ours are.
    fn fast_handshake(info_hash: [u8; 20], peer_id: [u8; 20]) -> Vec<u8> {
        Handshake::new(info_hash, peer_id)
            .with_fast()
            .to_bytes()
            .to_vec()
    }

    fn registry(fixture: Fixture) -> (Fixture, HashMap<InfoHash, Arc<TorrentState>>) {
        let state = fixture.state.clone();
        (fixture, HashMap::from([(state.meta.info_hash, state)]))
    }

    #[test]
    fn initiate_sends_ours_first_and_returns_their_id() {
        let f = Fixture::new(3, &[]);
        let ours = fast_handshake(f.state.meta.info_hash.0, OUR_ID);
        let mut stream = Duplex::reading(&handshake(f.state.meta.info_hash.0, THEIR_ID));
        let theirs = initiate(&mut stream, &f.state, addr()).unwrap();
        assert_eq!(theirs.peer_id, THEIR_ID);
        assert!(!theirs.fast());
        assert_eq!(stream.written, ours);
    }

    #[test]
    fn initiate_refuses_another_torrent() {
        let f = Fixture::new(3, &[]);
        let mut stream = Duplex::reading(&handshake([0xee; 20], THEIR_ID));
        let err = initiate(&mut stream, &f.state, addr()).unwrap_err();
        assert!(
            matches!(err, ConnError::WrongTorrent(InfoHash(h)) if h == [0xee; 20]),
            "{err:?}"
        );
        assert!(!f.state.is_banned(&THEIR_ID));
        assert_eq!(stream.written.len(), 68, "ours went out first");
    }

    #[test]
    fn initiate_to_ourselves_bans_the_address_and_id() {
        let f = Fixture::new(3, &[]);
        let mut stream = Duplex::reading(&handshake(f.state.meta.info_hash.0, OUR_ID));
        let err = initiate(&mut stream, &f.state, addr()).unwrap_err();
        assert!(matches!(err, ConnError::OurOwnPeer), "{err:?}");
        assert!(f.state.is_banned(&OUR_ID));
        assert!(!f.state.claim_dial(addr()), "not dialled again");
    }

    #[test]
    fn initiate_refuses_other_protocols_and_early_close() {
        let f = Fixture::new(3, &[]);
        let mut not_bittorrent = handshake(f.state.meta.info_hash.0, THEIR_ID);
        not_bittorrent[3] = b'x';
        let err = initiate(&mut Duplex::reading(&not_bittorrent), &f.state, addr()).unwrap_err();
        assert!(
            matches!(err, ConnError::Wire(WireError::BadProtocol)),
            "{err:?}"
        );
        let short = &handshake(f.state.meta.info_hash.0, THEIR_ID)[..40];
        let err = initiate(&mut Duplex::reading(short), &f.state, addr()).unwrap_err();
        assert!(matches!(err, ConnError::Wire(WireError::Closed)), "{err:?}");
    }

    #[test]
    fn answer_finds_the_torrent_and_replies_with_our_id() {
        let (f, torrents) = registry(Fixture::new(3, &[]));
        let info_hash = f.state.meta.info_hash.0;
        let mut stream = Duplex::reading(&fast_handshake(info_hash, THEIR_ID));
        let (torrent, theirs) = answer(&mut stream, &torrents).unwrap();
        assert!(Arc::ptr_eq(torrent, &f.state));
        assert_eq!(theirs.peer_id, THEIR_ID);
        assert!(theirs.fast());
        assert_eq!(stream.written, fast_handshake(info_hash, OUR_ID));
    }

    /// Every refusal of an incoming handshake, and that no handshake of ours goes out with it.
    fn refused(input: &[u8], torrents: &HashMap<InfoHash, Arc<TorrentState>>) -> ConnError {
        let mut stream = Duplex::reading(input);
        let err = answer(&mut stream, torrents).map(|_| ()).unwrap_err();
        assert!(stream.written.is_empty(), "wrote to a refused peer: {err}");
        err
    }

    #[test]
    fn answer_refuses_a_torrent_not_served_here() {
        let (_f, torrents) = registry(Fixture::new(3, &[]));
        let err = refused(&handshake([0xee; 20], THEIR_ID), &torrents);
        assert!(
            matches!(err, ConnError::WrongTorrent(InfoHash(h)) if h == [0xee; 20]),
            "{err:?}"
        );
    }

    #[test]
    fn answer_refuses_our_own_id_without_a_ban() {
        let (f, torrents) = registry(Fixture::new(3, &[]));
        let err = refused(&handshake(f.state.meta.info_hash.0, OUR_ID), &torrents);
        assert!(matches!(err, ConnError::OurOwnPeer), "{err:?}");
        assert!(!f.state.is_banned(&OUR_ID));
    }

    #[test]
    fn answer_refuses_a_banned_peer() {
        let (f, torrents) = registry(Fixture::new(3, &[]));
        f.state.ban(addr(), THEIR_ID);
        let err = refused(&handshake(f.state.meta.info_hash.0, THEIR_ID), &torrents);
        assert!(matches!(err, ConnError::Banned), "{err:?}");
    }

    #[test]
    fn answer_refuses_other_protocols_and_early_close() {
        let (f, torrents) = registry(Fixture::new(3, &[]));
        let mut not_bittorrent = handshake(f.state.meta.info_hash.0, THEIR_ID);
        not_bittorrent[0] = 18;
        let err = refused(&not_bittorrent, &torrents);
        assert!(
            matches!(err, ConnError::Wire(WireError::BadProtocol)),
            "{err:?}"
        );
        let err = refused(
            &handshake(f.state.meta.info_hash.0, THEIR_ID)[..30],
            &torrents,
        );
        assert!(matches!(err, ConnError::Wire(WireError::Closed)), "{err:?}");
    }
}
