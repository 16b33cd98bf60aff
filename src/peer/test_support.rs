//! Test fixtures for the peer engine: a real [`TorrentState`] (metainfo, storage, picker) over a
//! temporary folder, so the unit tests of the handshake, the connection loop and the piece
//! states run against the same code as a peer process, without sockets.

use crate::bitfield::Bitfield;
use crate::disk::storage::Storage;
use crate::metainfo::{self, CreateOptions, Metainfo};
use crate::peer::open_connections::{Direction, Link};
use crate::peer::picker::Picker;
use crate::peer::torrent_state::{Admitted, TorrentEvent, TorrentState};
use crossbeam_channel::Receiver;
use std::fs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tempfile::TempDir;

/// The peer id of the process under test.
pub const OUR_ID: [u8; 20] = *b"-PM0000-ourselves-01";

/// The fixture's piece length: one block ([`crate::wire::BLOCK_SIZE`]) per piece.
pub const PIECE: u32 = 16 * 1024;

/// One torrent inside a peer under test, with its content and the announce thread's end of
/// the event channel.
pub struct Fixture {
    pub state: Arc<TorrentState>,
    /// The whole torrent, as its creator had it.
    pub content: Vec<u8>,
    pub events: Receiver<TorrentEvent>,
    /// Holds the torrent's source and the peer's folder until the test ends.
    _dir: TempDir,
}

impl Fixture {
    /// A single-file torrent of `pieces` pieces of [`PIECE`] bytes (the last one half as long)
    /// of which the peer's folder holds the pieces in `have`; the others are zeros on disk.
    pub fn new(pieces: usize, have: &[u32]) -> Fixture {
        Fixture::build(pieces, have, None, false)
    }

    /// [`Fixture::new`] for a selective download of the pieces in `wanted` (all if `None`).
    pub fn wanting(pieces: usize, have: &[u32], wanted: Option<&[u32]>) -> Fixture {
        Fixture::build(pieces, have, wanted, false)
    }

    /// A [`Fixture::new`] torrent of `pieces` pieces, none on disk, marked private (BEP 27).
    pub fn private(pieces: usize) -> Fixture {
        Fixture::build(pieces, &[], None, true)
    }

    fn build(pieces: usize, have: &[u32], wanted: Option<&[u32]>, private: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let piece = PIECE as usize;
        let len = (pieces - 1) * piece + piece / 2;
        let mut rng = fastrand::Rng::with_seed(pieces as u64);
        let content: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();

        let source = dir.path().join("source");
        fs::create_dir(&source).unwrap();
        fs::write(source.join("data.bin"), &content).unwrap();
        let options = CreateOptions {
            announce: vec!["http://127.0.0.1:1/announce".into()],
            piece_length: Some(PIECE as u64),
            private,
            ..CreateOptions::default()
        };
        let torrent = metainfo::create(&source.join("data.bin"), &options).unwrap();
        let meta = Metainfo::from_bytes(&torrent).unwrap();

        let folder = dir.path().join("peer");
        fs::create_dir(&folder).unwrap();
        let mut on_disk = vec![0u8; len];
        for &i in have {
            let range = i as usize * piece..(i as usize * piece + piece).min(len);
            on_disk[range.clone()].copy_from_slice(&content[range]);
        }
        fs::write(folder.join("data.bin"), &on_disk).unwrap();
        let storage = Storage::open(&meta.info, &folder).unwrap();
        let verified = storage.verify(&meta.info);
        assert_eq!(
            verified.count(),
            have.len(),
            "the fixture's folder holds `have`"
        );

        let (tx, events) = crossbeam_channel::unbounded();
        let state = TorrentState::new(
            meta,
            storage,
            match wanted {
                Some(w) => Picker::wanting(verified, Bitfield::with_pieces(pieces, &to_usize(w))),
                None => Picker::new(verified),
            },
            OUR_ID,
            Arc::new(AtomicBool::new(false)),
            tx,
        );
        Fixture {
            state: Arc::new(state),
            content,
            events,
            _dir: dir,
        }
    }

    /// Records a connection from `addr` as admitted, for as long as the guard lives.
    pub fn admit_incoming(&self, addr: SocketAddr) -> Admitted<'_> {
        self.admit(addr, Direction::Incoming)
    }

    /// Records a connection to `addr` as admitted, for as long as the guard lives.
    pub fn admit_outgoing(&self, addr: SocketAddr) -> Admitted<'_> {
        self.admit(addr, Direction::Outgoing)
    }

    fn admit(&self, addr: SocketAddr, direction: Direction) -> Admitted<'_> {
        let peer_id = [addr.port() as u8; 20];
        let link = Link {
            addr,
            peer_id,
            direction,
        };
        self.state.admit(link, None).unwrap()
    }

    /// The bytes of piece `index`.
    pub fn piece(&self, index: u32) -> &[u8] {
        let piece = PIECE as usize;
        let start = index as usize * piece;
        &self.content[start..(start + piece).min(self.content.len())]
    }
}

fn to_usize(pieces: &[u32]) -> Vec<usize> {
    pieces.iter().map(|&i| i as usize).collect()
}
