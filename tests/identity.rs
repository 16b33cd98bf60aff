//! Which connections a running `piecemeal peer` keeps when peer ids collide: a stranger who
//! claims another peer's id does not lock that peer out, and a simultaneous open (we dial a
//! peer while it dials us) ends in the one connection the peer with the higher id opened.

mod support;

use piecemeal::metainfo::Metainfo;
use piecemeal::net::http;
use piecemeal::wire::{
    Handshake, Message, MessageReader, WireError, max_message_len, read_handshake, write_handshake,
};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Proc, closed_port, field, noise_torrent, peer, tracker};

const DOWNLOAD: Duration = Duration::from_secs(60);
const ANSWER: Duration = Duration::from_secs(10);

/// A hand-driven peer connection, past its handshake.
struct Raw {
    stream: TcpStream,
    reader: MessageReader,
    /// The peer id the other side sent.
    their_id: [u8; 20],
}

impl Raw {
    /// Dials `addr` claiming `peer_id`.
    fn dial(addr: SocketAddr, meta: &Metainfo, peer_id: [u8; 20]) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, ANSWER).unwrap();
        Raw::handshake(stream, meta, peer_id)
    }

    /// Accepts one connection on `listener` (bounded) and answers its handshake.
    fn accept(listener: &TcpListener, meta: &Metainfo, peer_id: [u8; 20]) -> Raw {
        Raw::handshake(support::accept_plaintext(listener, ANSWER), meta, peer_id)
    }

    fn handshake(mut stream: TcpStream, meta: &Metainfo, peer_id: [u8; 20]) -> Raw {
        stream.set_read_timeout(Some(ANSWER)).unwrap();
        write_handshake(&mut stream, &Handshake::new(meta.info_hash.0, peer_id)).unwrap();
        let theirs = read_handshake(&mut stream).unwrap();
        assert_eq!(theirs.info_hash, meta.info_hash.0);
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Raw {
            stream,
            reader: MessageReader::new(max_message_len(meta.info.piece_count())),
            their_id: theirs.peer_id,
        }
    }

    /// The next message; `Err` when the connection closed. Panics after [`ANSWER`].
    fn next(&mut self) -> Result<Message, WireError> {
        let deadline = Instant::now() + ANSWER;
        loop {
            match self.reader.read(&mut self.stream) {
                Err(e) if e.is_timeout() => {
                    assert!(Instant::now() < deadline, "nothing within {ANSWER:?}");
                }
                other => return other,
            }
        }
    }

    /// Asks for block 0 of piece 0 and waits for it: the connection is alive and serving.
    fn fetches_a_block(&mut self) {
        let request = Message::Request {
            index: 0,
            begin: 0,
            length: 1 << 14,
        };
        // Asked for now in case we are unchoked already (a choked peer's request is dropped),
        // and again when the unchoke comes.
        let mut ask = Message::Interested.to_bytes().to_vec();
        ask.extend_from_slice(&request.to_bytes());
        self.stream.write_all(&ask).unwrap();
        loop {
            match self.next().expect("the connection stays open") {
                Message::Unchoke => self.stream.write_all(&request.to_bytes()).unwrap(),
                Message::Piece { index: 0, .. } => return,
                _ => {}
            }
        }
    }

    /// Asserts the other side closes this connection (within [`ANSWER`]).
    fn is_closed(mut self) {
        while self.next().is_ok() {}
    }
}

/// A seeder of `torrent` (from `seed`) that dials `dial` at start and has no tracker.
fn seeder_dialling(seed: &Path, torrent: &Path, dial: SocketAddr) -> (Proc, SocketAddr) {
    let mut s = peer(seed, &[torrent], &["--connect", &dial.to_string()]);
    let addr = s.wait_listening("listening on");
    (s, addr)
}

/// Lower and higher than any piecemeal peer id (`-PM…`).
const LOW_ID: [u8; 20] = [b'!'; 20];
const HIGH_ID: [u8; 20] = [b'~'; 20];

#[test]
fn simultaneous_open_with_a_lower_id_keeps_our_dial_in_either_order() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "both", 1 << 20, 1 << 15);
    let meta = Metainfo::load(&torrent).unwrap();
    let seed = work.path().join("seed");
    for their_handshake_first in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (_seeder, addr) = seeder_dialling(&seed, &torrent, listener.local_addr().unwrap());
        // The seeder's dial waits in our backlog until we answer it.
        let (ours_to_it, mut its_to_us) = if their_handshake_first {
            let ours = Raw::dial(addr, &meta, LOW_ID);
            (ours, Raw::accept(&listener, &meta, LOW_ID))
        } else {
            let its = Raw::accept(&listener, &meta, LOW_ID);
            (Raw::dial(addr, &meta, LOW_ID), its)
        };
        assert_eq!(ours_to_it.their_id, its_to_us.their_id);
        // The seeder's id is the higher: the connection it opened stays, ours is closed, in
        // both orders (closed once it came second, replaced when it came first).
        ours_to_it.is_closed();
        its_to_us.fetches_a_block();
    }
}

#[test]
fn simultaneous_open_with_a_higher_id_closes_nothing_on_the_lower_side() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "both", 1 << 20, 1 << 15);
    let meta = Metainfo::load(&torrent).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (_seeder, addr) = seeder_dialling(
        &work.path().join("seed"),
        &torrent,
        listener.local_addr().unwrap(),
    );
    let mut ours_to_it = Raw::dial(addr, &meta, HIGH_ID);
    let mut its_to_us = Raw::accept(&listener, &meta, HIGH_ID);
    // The seeder is the lower side: it leaves the choice to us and serves on both meanwhile.
    its_to_us.fetches_a_block();
    ours_to_it.fetches_a_block();
    // We keep ours, as the rule says; the seeder goes on serving on it.
    drop(its_to_us);
    ours_to_it.fetches_a_block();
}

#[test]
fn a_stranger_claiming_the_seeders_id_does_not_lock_it_out() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "claimed", 2 << 20, 1 << 15);
    let meta = Metainfo::load(&torrent).unwrap();
    // The seeder has no tracker (its torrent's is unreachable): the leecher hears of it only
    // when we tell the leecher's tracker, after the stranger has connected.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let (_seeder, seeder_addr) = seeder_dialling(&work.path().join("seed"), &torrent, nowhere);
    let seeder_id = Raw::dial(seeder_addr, &meta, LOW_ID).their_id;

    let (_tracker, url) = tracker();
    let mut leecher = peer(
        &work.path().join("client"),
        &[&torrent],
        &["--tracker", &url],
    );
    let leecher_addr = leecher.wait_listening("listening on");
    // The stranger connects under the seeder's id first and stays (answering nothing).
    let stranger = Raw::dial(leecher_addr, &meta, seeder_id);
    let announce = format!(
        "{url}?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left=0&event=started",
        http::percent_encode(&meta.info_hash.0),
        http::percent_encode(&seeder_id),
        seeder_addr.port()
    );
    let reply = http::request(&announce, "GET", None, ANSWER).unwrap();
    assert_eq!(reply.status, 200);

    // At its next announce the leecher dials the real seeder and downloads from it.
    let line = leecher.wait_for("complete", DOWNLOAD);
    assert_eq!(
        field(&line, "peers"),
        format!("{seeder_addr}={}", meta.info.total_length()),
        "{line}"
    );
    drop(stranger);
}
