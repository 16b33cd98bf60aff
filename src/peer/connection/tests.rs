//! The BEP 3 state machine of a connection, driven without sockets: the remote peer is a
//! script of messages read by the loop, and every message the loop writes is recorded, so each
//! test asserts the exact conversation. The torrent is a real [`TorrentState`] over a temporary
//! folder. Nothing sleeps: a scripted read time-out is a tick of the loop, and the end of the
//! script closes the connection.

use super::*;
use crate::peer::peer_manager::Rechoker;
use crate::peer::test_support::{Fixture, PIECE};
use crate::peer::torrent_state::TorrentEvent;
use crate::wire::WireError;
use Traffic::{In, Out};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;

const THEIR_ID: [u8; 20] = [7; 20];

fn remote() -> SocketAddr {
    "10.0.0.7:6881".parse().unwrap()
}

/// What the remote peer does next.
enum Step<'a> {
    /// It sends this message.
    Send(Message),
    /// Nothing arrives: the read times out with this kind, and the loop goes round once.
    Quiet(io::ErrorKind),
    /// Something happens elsewhere in the process (another connection, a shutdown) before the
    /// next read, which then times out.
    Elsewhere(Box<dyn FnOnce() + 'a>),
}

/// One message on the wire, as seen from the connection under test.
#[derive(Debug, PartialEq, Eq)]
enum Traffic {
    In(Message),
    Out(Message),
}

/// The remote end of a connection: reads follow the script and end in a close; writes are
/// decoded into [`Traffic::Out`] messages.
struct Remote<'a> {
    script: VecDeque<Step<'a>>,
    /// The rest of the message being read.
    incoming: Vec<u8>,
    /// Written bytes not yet a whole message.
    outgoing: Vec<u8>,
    traffic: Vec<Traffic>,
}

impl Read for Remote<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.incoming.is_empty() {
            match self.script.pop_front() {
                None => return Ok(0),
                Some(Step::Send(message)) => {
                    self.incoming = message.to_bytes();
                    self.traffic.push(In(message));
                }
                Some(Step::Quiet(kind)) => return Err(kind.into()),
                Some(Step::Elsewhere(event)) => {
                    event();
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
        }
        let n = buf.len().min(self.incoming.len());
        buf[..n].copy_from_slice(&self.incoming[..n]);
        self.incoming.drain(..n);
        Ok(n)
    }
}

impl Write for Remote<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        while self.outgoing.len() >= 4 {
            let len = u32::from_be_bytes(self.outgoing[..4].try_into().unwrap()) as usize;
            if self.outgoing.len() < 4 + len {
                break;
            }
            let message =
                Message::parse(&self.outgoing[4..4 + len]).expect("we write valid messages");
            self.traffic.push(Out(message));
            self.outgoing.drain(..4 + len);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs a connection to `addr` (peer id `id`, a BEP 3 peer) through `script` and returns how
/// it ended and everything that crossed the wire.
fn converse_with<'a>(
    torrent: &TorrentState,
    addr: SocketAddr,
    id: [u8; 20],
    script: Vec<Step<'a>>,
) -> (Result<(), ConnError>, Vec<Traffic>) {
    talk(torrent, addr, &plain_handshake(torrent, id), script)
}

/// A remote's handshake with no extension bits: a plain BEP 3 peer, so the conversations
/// below hold no extension protocol (BEP 10) traffic.
fn plain_handshake(torrent: &TorrentState, id: [u8; 20]) -> Handshake {
    Handshake {
        reserved: [0; 8],
        ..Handshake::new(torrent.meta.info_hash.0, id)
    }
}

/// Runs a connection to `addr`, whose handshake was `theirs`, through `script`.
fn talk<'a>(
    torrent: &TorrentState,
    addr: SocketAddr,
    theirs: &Handshake,
    script: Vec<Step<'a>>,
) -> (Result<(), ConnError>, Vec<Traffic>) {
    let mut stream = Remote {
        script: script.into(),
        incoming: Vec::new(),
        outgoing: Vec::new(),
        traffic: Vec::new(),
    };
    let result = run_loop(
        &mut stream,
        torrent,
        addr,
        theirs,
        &Outbox::new(),
        Sending::Inline,
    );
    assert!(stream.outgoing.is_empty(), "a message was written in part");
    (result, stream.traffic)
}

/// [`converse_with`] the usual remote peer.
fn converse<'a>(
    torrent: &TorrentState,
    script: Vec<Step<'a>>,
) -> (Result<(), ConnError>, Vec<Traffic>) {
    converse_with(torrent, remote(), THEIR_ID, script)
}

fn send(message: Message) -> Step<'static> {
    Step::Send(message)
}

/// The peer manager's thread takes a choke decision (no thread runs in these tests).
fn rechoke(torrent: &TorrentState) -> Step<'_> {
    Step::Elsewhere(Box::new(move || {
        Rechoker::with_seed(1).rechoke(torrent, Instant::now())
    }))
}

fn quiet() -> Step<'static> {
    Step::Quiet(io::ErrorKind::WouldBlock)
}

/// A bitfield message for a torrent of `pieces` pieces holding `have`.
fn bitfield(pieces: usize, have: &[u32]) -> Message {
    let mut b = Bitfield::new(pieces);
    for &i in have {
        b.set(i as usize);
    }
    Message::Bitfield(b.as_bytes().to_vec())
}

fn request(index: u32, begin: u32, length: u32) -> Message {
    Message::Request {
        index,
        begin,
        length,
    }
}

fn cancel(index: u32, begin: u32, length: u32) -> Message {
    Message::Cancel {
        index,
        begin,
        length,
    }
}

fn block(index: u32, begin: u32, data: &[u8]) -> Message {
    Message::Piece {
        index,
        begin,
        data: data.to_vec(),
    }
}

fn closed(result: &Result<(), ConnError>) -> bool {
    matches!(result, Err(ConnError::Wire(WireError::Closed)))
}

/// The opening most downloads below share, as a script and the traffic it makes: the remote
/// has piece 1 of 3, the only one it offers, and unchokes us; we say we are interested and
/// ask for it.
fn offer_piece_1<'a>() -> (Vec<Step<'a>>, Vec<Traffic>) {
    (
        vec![send(bitfield(3, &[1])), send(Message::Unchoke)],
        vec![
            In(bitfield(3, &[1])),
            Out(Message::Interested),
            In(Message::Unchoke),
            Out(request(1, 0, PIECE)),
        ],
    )
}

/// Bitfield of piece 1 alone, of 3.
fn only_1() -> Bitfield {
    let mut b = Bitfield::new(3);
    b.set(1);
    b
}

#[test]
fn opens_with_a_bitfield_of_verified_pieces_only_when_there_are_some() {
    let f = Fixture::new(3, &[0, 2]);
    let (result, traffic) = converse(&f.state, vec![]);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, [Out(bitfield(3, &[0, 2]))]);

    let empty = Fixture::new(3, &[]);
    let (result, traffic) = converse(&empty.state, vec![quiet()]);
    assert!(closed(&result), "{result:?}");
    assert!(
        traffic.is_empty(),
        "no bitfield, no keep-alive yet: {traffic:?}"
    );
}

#[test]
fn interest_follows_what_the_remote_has_that_we_lack() {
    let f = Fixture::new(3, &[0]);
    let (result, traffic) = converse(
        &f.state,
        vec![
            send(bitfield(3, &[0])),
            send(Message::Have(1)),
            send(Message::Unchoke),
            send(block(1, 0, f.piece(1))),
        ],
    );
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        traffic,
        [
            Out(bitfield(3, &[0])),
            In(bitfield(3, &[0])),
            // Nothing we lack yet; its `have` changes that.
            In(Message::Have(1)),
            Out(Message::Interested),
            In(Message::Unchoke),
            Out(request(1, 0, PIECE)),
            In(block(1, 0, f.piece(1))),
            // It has nothing more that we lack.
            Out(Message::NotInterested),
        ]
    );
}

#[test]
fn requests_wait_for_an_unchoke() {
    let f = Fixture::new(3, &[]);
    let (result, traffic) = converse(
        &f.state,
        vec![
            send(bitfield(3, &[2])),
            quiet(),
            send(Message::KeepAlive),
            send(Message::Unchoke),
        ],
    );
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        traffic,
        [
            In(bitfield(3, &[2])),
            Out(Message::Interested),
            In(Message::KeepAlive),
            In(Message::Unchoke),
            Out(request(2, 0, PIECE / 2)),
        ]
    );
}

#[test]
fn read_timeouts_of_either_kind_are_quiet_ticks() {
    let f = Fixture::new(3, &[]);
    let (result, traffic) = converse(
        &f.state,
        vec![
            Step::Quiet(io::ErrorKind::TimedOut),
            send(Message::Have(0)),
            Step::Quiet(io::ErrorKind::WouldBlock),
            Step::Quiet(io::ErrorKind::TimedOut),
            send(Message::Unchoke),
        ],
    );
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        traffic,
        [
            In(Message::Have(0)),
            Out(Message::Interested),
            In(Message::Unchoke),
            Out(request(0, 0, PIECE)),
        ]
    );
}

#[test]
fn a_choke_gives_our_pieces_back_and_the_unchoke_takes_them_again() {
    let f = Fixture::new(3, &[]);
    let (mut script, mut expected) = offer_piece_1();
    script.extend([
        send(Message::Choke),
        // The piece went back to the picker with the choke: another connection may take it.
        Step::Elsewhere(Box::new(|| {
            assert_eq!(f.state.picker.take(&only_1(), &[]), Some(1));
            f.state.picker.put_back(1);
        })),
        // The block that was on its way when the choke came is ignored.
        send(block(1, 0, f.piece(1))),
        send(Message::Unchoke),
    ]);
    expected.extend([
        In(Message::Choke),
        In(block(1, 0, f.piece(1))),
        In(Message::Unchoke),
        Out(request(1, 0, PIECE)),
    ]);
    let (result, traffic) = converse(&f.state, script);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, expected);
    assert!(!f.state.picker.has(1), "the late block was not stored");
    // The connection ended: its piece is back with the picker.
    assert_eq!(f.state.picker.take(&only_1(), &[]), Some(1));
}

#[test]
fn a_have_past_the_end_is_an_error() {
    let f = Fixture::new(3, &[]);
    let (result, traffic) = converse(&f.state, vec![send(Message::Have(3))]);
    assert!(matches!(result, Err(ConnError::BadHave(3))), "{result:?}");
    assert_eq!(traffic, [In(Message::Have(3))]);
}

#[test]
fn a_bad_bitfield_is_an_error() {
    let f = Fixture::new(3, &[]);
    for bytes in [vec![0b1110_0000, 0], vec![0b0001_0000], vec![]] {
        let message = Message::Bitfield(bytes);
        let (result, traffic) = converse(&f.state, vec![send(message.clone())]);
        assert!(
            matches!(result, Err(ConnError::BadBitfield(_))),
            "{message:?}: {result:?}"
        );
        assert_eq!(traffic, [In(message)]);
    }
}

#[test]
fn requests_while_we_choke_are_dropped_and_after_the_unchoke_answered() {
    let f = Fixture::new(3, &[0, 1]);
    let (result, traffic) = converse(
        &f.state,
        vec![
            send(request(0, 0, PIECE)),
            send(Message::Interested),
            // The peer manager unchokes the interested peer.
            rechoke(&f.state),
            send(request(1, 100, 1000)),
            // We lack piece 2: the request is dropped (the peer raced our `have`).
            send(request(2, 0, 10)),
            send(request(0, PIECE - 16, 16)),
            // Uninterested, it is choked again, and its requests dropped.
            send(Message::NotInterested),
            rechoke(&f.state),
            send(request(1, 0, 10)),
        ],
    );
    assert!(closed(&result), "{result:?}");
    let piece_1 = &f.piece(1)[100..1100];
    assert_eq!(
        traffic,
        [
            Out(bitfield(3, &[0, 1])),
            In(request(0, 0, PIECE)),
            In(Message::Interested),
            Out(Message::Unchoke),
            In(request(1, 100, 1000)),
            Out(block(1, 100, piece_1)),
            In(request(2, 0, 10)),
            In(request(0, PIECE - 16, 16)),
            Out(block(0, PIECE - 16, &f.piece(0)[PIECE as usize - 16..])),
            In(Message::NotInterested),
            Out(Message::Choke),
            In(request(1, 0, 10)),
        ]
    );
    assert_eq!(f.state.uploaded.load(Ordering::SeqCst), 1000 + 16);
}

#[test]
fn an_invalid_request_ends_the_connection_even_while_choked() {
    let f = Fixture::new(3, &[0, 1, 2]);
    let invalid = [
        (0, 0, MAX_BLOCK + 1),
        (0, 0, 0),
        (0, PIECE - 10, 20),
        (2, 0, PIECE),
        (2, PIECE / 2, 1),
        (3, 0, 16),
        (u32::MAX, 0, 16),
    ];
    for (index, begin, length) in invalid {
        for interested in [false, true] {
            let mut script = Vec::new();
            if interested {
                script.push(send(Message::Interested));
            }
            script.push(send(request(index, begin, length)));
            let (result, traffic) = converse(&f.state, script);
            assert!(
                matches!(result, Err(ConnError::BadRequest { index: i, begin: b, length: l })
                    if (i, b, l) == (index, begin, length)),
                "{index} {begin} {length}: {result:?}"
            );
            let served = traffic
                .iter()
                .any(|t| matches!(t, Out(Message::Piece { .. })));
            assert!(!served, "{traffic:?}");
        }
    }
    assert_eq!(f.state.uploaded.load(Ordering::SeqCst), 0);
}

#[test]
fn a_verified_piece_is_stored_and_announced_to_the_other_connections() {
    let f = Fixture::new(3, &[]);
    let seeder: SocketAddr = "10.0.0.8:6881".parse().unwrap();
    let download = || {
        let (mut script, mut expected) = offer_piece_1();
        script.push(send(block(1, 0, f.piece(1))));
        expected.extend([
            In(block(1, 0, f.piece(1))),
            // The seeder has the piece: no `have` to it.
            Out(Message::NotInterested),
        ]);
        let (result, traffic) = converse_with(&f.state, seeder, [8; 20], script);
        assert!(closed(&result), "{result:?}");
        assert_eq!(traffic, expected);
    };
    let (result, traffic) = converse(&f.state, vec![Step::Elsewhere(Box::new(download))]);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, [Out(Message::Have(1))]);

    assert_eq!(f.state.storage.read(1, 0, PIECE).unwrap(), f.piece(1));
    assert!(f.state.picker.has(1));
    assert_eq!(f.state.haves_since(0), (vec![1], 1));
    assert_eq!(f.state.downloaded.load(Ordering::SeqCst), PIECE as u64);
    let stats = f.state.peer_stats();
    assert_eq!(
        (stats[&seeder].bytes, stats[&seeder].pieces),
        (PIECE as u64, 1)
    );
}

#[test]
fn a_piece_verified_elsewhere_is_cancelled_here() {
    let f = Fixture::new(3, &[]);
    let other: SocketAddr = "10.0.0.8:6881".parse().unwrap();
    let (mut script, mut expected) = offer_piece_1();
    script.extend([
        Step::Elsewhere(Box::new(|| {
            let stored = f.state.store_piece(1, f.piece(1), other).unwrap();
            assert_eq!(stored, Stored::Verified);
        })),
        send(block(1, 0, f.piece(1))),
    ]);
    expected.extend([
        Out(cancel(1, 0, PIECE)),
        Out(Message::NotInterested),
        // Too late: ignored, not counted.
        In(block(1, 0, f.piece(1))),
    ]);
    let (result, traffic) = converse(&f.state, script);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, expected);
    assert_eq!(f.state.downloaded.load(Ordering::SeqCst), PIECE as u64);
    assert!(!f.state.peer_stats().contains_key(&remote()));
}

#[test]
fn the_last_piece_completes_the_torrent_and_a_seeder_pair_closes() {
    let f = Fixture::new(2, &[0]);
    // Another connection holds piece 1: with the queue empty this is the endgame, and this
    // connection fetches a second copy.
    assert_eq!(f.state.picker.take(&Bitfield::full(2), &[]), Some(1));
    let (result, traffic) = converse(
        &f.state,
        vec![
            send(bitfield(2, &[0, 1])),
            send(Message::Unchoke),
            send(block(1, 0, f.piece(1))),
        ],
    );
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        traffic,
        [
            Out(bitfield(2, &[0])),
            In(bitfield(2, &[0, 1])),
            Out(Message::Interested),
            In(Message::Unchoke),
            Out(request(1, 0, PIECE / 2)),
            In(block(1, 0, f.piece(1))),
            Out(Message::NotInterested),
        ]
    );
    assert!(f.state.is_complete());
    assert_eq!(f.events.try_recv(), Ok(TorrentEvent::Completed));
    assert!(f.events.try_recv().is_err(), "completed once");
}

#[test]
fn three_pieces_failing_their_hash_ban_the_peer() {
    let f = Fixture::new(3, &[]);
    let junk = vec![0u8; PIECE as usize];
    let (mut script, mut expected) = offer_piece_1();
    for strike in 1..=3 {
        script.push(send(block(1, 0, &junk)));
        expected.push(In(block(1, 0, &junk)));
        if strike < 3 {
            // The failed piece went back to the picker and is asked for again.
            expected.push(Out(request(1, 0, PIECE)));
        }
    }
    let (result, traffic) = converse(&f.state, script);
    assert!(matches!(result, Err(ConnError::BadPieces(3))), "{result:?}");
    assert_eq!(traffic, expected);
    assert!(f.state.is_banned(&THEIR_ID));
    assert!(!f.state.claim_dial(remote()));
    assert_eq!(f.state.picker.have_count(), 0);
    assert_eq!(f.state.downloaded.load(Ordering::SeqCst), 0);
    assert_eq!(
        f.state.picker.take(&only_1(), &[]),
        Some(1),
        "the piece is not lost"
    );
}

#[test]
fn shutdown_ends_the_connection_and_its_pieces_go_back() {
    let f = Fixture::new(3, &[]);
    let (mut script, expected) = offer_piece_1();
    script.extend([
        Step::Elsewhere(Box::new(|| {
            assert_eq!(f.state.connections.load(Ordering::SeqCst), 1);
            f.state.shutdown.store(true, Ordering::SeqCst);
        })),
        send(Message::KeepAlive),
    ]);
    let (result, traffic) = converse(&f.state, script);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(traffic, expected);
    assert_eq!(f.state.connections.load(Ordering::SeqCst), 0);
    assert_eq!(f.state.picker.take(&only_1(), &[]), Some(1));
}

#[test]
fn what_a_peer_announces_counts_towards_availability_until_the_connection_ends() {
    let f = Fixture::new(3, &[]);
    let counts = || -> Vec<u32> { (0..3).map(|i| f.state.picker.availability(i)).collect() };
    let (result, _) = converse(
        &f.state,
        vec![
            send(bitfield(3, &[0, 1])),
            send(Message::Have(2)),
            send(Message::Have(2)),
            Step::Elsewhere(Box::new(move || assert_eq!(counts(), [1, 1, 1]))),
            // A second bitfield replaces the first, have included.
            send(bitfield(3, &[1])),
            Step::Elsewhere(Box::new(move || assert_eq!(counts(), [0, 1, 0]))),
        ],
    );
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        counts(),
        [0, 0, 0],
        "the ended connection's counts are gone"
    );
}

#[test]
fn with_one_block_pieces_a_whole_window_of_requests_goes_out_at_once() {
    let pieces = 100;
    let f = Fixture::new(pieces, &[]);
    let all: Vec<u32> = (0..pieces as u32).collect();
    let (result, traffic) = converse(
        &f.state,
        vec![send(bitfield(pieces, &all)), send(Message::Unchoke)],
    );
    assert!(closed(&result), "{result:?}");
    let mut asked: Vec<u32> = traffic
        .iter()
        .filter_map(|t| match t {
            Out(Message::Request { index, begin, .. }) => {
                assert_eq!(*begin, 0);
                Some(*index)
            }
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), crate::peer::window::START, "{traffic:?}");
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), crate::peer::window::START, "one piece each");
    // The connection ended: every piece it held is back with the picker.
    let everything = Bitfield::full(pieces);
    let mut back: Vec<u32> = (0..pieces)
        .filter_map(|_| f.state.picker.take(&everything, &[]))
        .collect();
    back.sort();
    assert_eq!(back, all, "each piece queued once");
}

mod fast;
