//! Fetching a torrent's metadata from one peer (BEP 9): handshake, extended handshake, then
//! `ut_metadata` requests until every piece is in and the whole hashes to the info hash.
//!
//! Runs on a thread of its own for a bounded time ([`FETCH_LIMIT`]); every length is bounded
//! before a byte is buffered (the framing reader's bound, [`MAX_METADATA_SIZE`](crate::wire::extended::MAX_METADATA_SIZE), one piece per
//! message), and nothing the peer sends is kept unless the whole checks out.

use crate::metainfo::InfoHash;
use crate::peer::extension::{CLIENT, OUR_METADATA_ID};
use crate::peer::metadata::{Assembly, MetadataError};
use crate::wire::extended::{ExtError, ExtHandshake, HANDSHAKE, MetadataMessage, UT_METADATA};
use crate::wire::{Handshake, Message, MessageReader, WireError, max_message_len, read_handshake};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest one peer may take to deliver the whole metadata.
pub const FETCH_LIMIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(250);
/// Metadata requests outstanding at once.
const IN_FLIGHT: u32 = 8;
/// The pieces a torrent may have for the bound on messages while fetching (its bitfield is
/// then 1 MiB; no piece count is known before the metadata).
const MAX_PIECES: usize = 8 << 20;

/// Why one peer did not deliver the metadata.
#[derive(Debug)]
pub enum FetchError {
    /// The connection or the handshake failed, or the peer went quiet.
    Wire(WireError),
    /// The peer is for another torrent.
    WrongTorrent,
    /// The peer does not speak the extension protocol or `ut_metadata`, or has no metadata.
    NoMetadata,
    /// A bad extended message.
    Extension(ExtError),
    /// Bad metadata (see [`FetchError::deserves_ban`]).
    Metadata(MetadataError),
    /// [`FETCH_LIMIT`] passed.
    TooSlow,
    /// Another peer delivered first, or the process is stopping.
    Stopped,
}

impl FetchError {
    /// Whether the peer sent what no honest peer sends: wrong, oversized or malformed
    /// metadata. Such a peer is banned for this torrent.
    pub fn deserves_ban(&self) -> bool {
        matches!(self, FetchError::Extension(_))
            || matches!(self, FetchError::Metadata(e) if !matches!(e, MetadataError::Rejected(_)))
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Wire(e) => write!(f, "{e}"),
            FetchError::WrongTorrent => write!(f, "peer answered for another torrent"),
            FetchError::NoMetadata => write!(f, "peer offers no metadata (no ut_metadata)"),
            FetchError::Extension(e) => write!(f, "{e}"),
            FetchError::Metadata(e) => write!(f, "{e}"),
            FetchError::TooSlow => write!(f, "no metadata within {}s", FETCH_LIMIT.as_secs()),
            FetchError::Stopped => write!(f, "stopped"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<WireError> for FetchError {
    fn from(e: WireError) -> Self {
        FetchError::Wire(e)
    }
}

impl From<std::io::Error> for FetchError {
    fn from(e: std::io::Error) -> Self {
        FetchError::Wire(WireError::Io(e))
    }
}

/// Who we are to the peer.
#[derive(Clone, Copy)]
pub struct Us {
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// Our listening port, told in the extended handshake.
    pub port: u16,
}

/// Fetches the info dictionary of `info_hash` from `addr`; gives up when `stop` is set.
/// Returns the verified bytes; `their_id` is set to the peer's id once its handshake came.
pub fn fetch(
    addr: SocketAddr,
    info_hash: InfoHash,
    us: Us,
    stop: &AtomicBool,
    their_id: &mut Option<[u8; 20]>,
) -> Result<Vec<u8>, FetchError> {
    let deadline = Instant::now() + FETCH_LIMIT;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    stream.write_all(&Handshake::new(info_hash.0, us.peer_id).to_bytes())?;
    let theirs = read_handshake(&mut stream)?;
    *their_id = Some(theirs.peer_id);
    if theirs.info_hash != info_hash.0 {
        return Err(FetchError::WrongTorrent);
    }
    if !theirs.supports_extensions() {
        return Err(FetchError::NoMetadata);
    }
    let ours = ExtHandshake {
        m: BTreeMap::from([(UT_METADATA.to_string(), OUR_METADATA_ID)]),
        v: Some(CLIENT.to_string()),
        p: Some(us.port).filter(|&p| p != 0),
        yourip: Some(addr.ip()),
        ..ExtHandshake::default()
    };
    let send = |stream: &mut TcpStream, id, payload| {
        stream.write_all(&Message::Extended { id, payload }.to_bytes())
    };
    send(&mut stream, HANDSHAKE, ours.encode())?;
    stream.set_read_timeout(Some(TICK))?;
    let mut reader = MessageReader::new(max_message_len(MAX_PIECES));
    // Their id for ut_metadata and the pieces being fetched, once their handshake came.
    let mut fetching: Option<(u8, Assembly)> = None;
    let (mut requested, mut received) = (0, 0);
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(FetchError::Stopped);
        }
        if Instant::now() > deadline {
            return Err(FetchError::TooSlow);
        }
        let message = match reader.read(&mut stream) {
            Ok(m) => m,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e.into()),
        };
        let Message::Extended { id, payload } = message else {
            continue; // bitfield, have, unchoke...: of no use yet.
        };
        match (id, &mut fetching) {
            (HANDSHAKE, None) => {
                let theirs = ExtHandshake::parse(&payload).map_err(FetchError::Extension)?;
                let (Some(their_id), Some(size)) =
                    (theirs.id_of(UT_METADATA), theirs.metadata_size)
                else {
                    return Err(FetchError::NoMetadata);
                };
                let assembly = Assembly::new(info_hash, size).map_err(FetchError::Metadata)?;
                fetching = Some((their_id, assembly));
            }
            (OUR_METADATA_ID, Some((_, assembly))) => {
                match MetadataMessage::parse(&payload).map_err(FetchError::Extension)? {
                    MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    } => {
                        assembly
                            .on_data(piece, total_size, &data)
                            .map_err(FetchError::Metadata)?;
                        received += 1;
                    }
                    MetadataMessage::Reject(piece) => {
                        return Err(FetchError::Metadata(MetadataError::Rejected(piece)));
                    }
                    MetadataMessage::Request(_) => {} // we have none to give
                }
                if assembly.is_complete() {
                    let (_, assembly) = fetching.take().expect("fetching");
                    return assembly.finish().map_err(FetchError::Metadata);
                }
            }
            _ => continue,
        }
        // Keep IN_FLIGHT requests out.
        if let Some((their_id, assembly)) = &fetching {
            while requested < assembly.piece_count() && requested < received + IN_FLIGHT {
                let request = MetadataMessage::Request(requested).encode();
                send(&mut stream, *their_id, request)?;
                requested += 1;
            }
        }
    }
}
