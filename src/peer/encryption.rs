//! The `--encryption` policy, and the first step of every connection it shapes: an encrypted
//! handshake ([`crate::wire::mse`]) or none, before the BitTorrent handshake.
//!
//! Incoming connections tell which it is by their first 20 bytes: a plaintext handshake starts
//! with 19 and "BitTorrent protocol", anything else is taken for an MSE public key. Outgoing
//! ones try MSE first unless the policy is `off`; with `prefer`, a failed encrypted handshake
//! (a peer that speaks plaintext only drops the connection on our key) is retried once in
//! plaintext on a new connection.

use crate::metainfo::InfoHash;
use crate::peer::error::ConnError;
use crate::peer::listener::Registry;
use crate::peer::peer_stream::PeerStream;
use crate::wire::mse::{self, KeyPair, MseError, PLAINTEXT, RC4};
use crate::wire::{WireError, names_protocol};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a whole encrypted handshake may take, however the peer trickles its bytes (each
/// read is also bounded by the socket's read time-out).
pub const MSE_DEADLINE: Duration = Duration::from_secs(10);

/// Which connections may be encrypted (message stream encryption), and which must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Encryption {
    /// Dial encrypted, falling back to plaintext; accept both; after an encrypted handshake the
    /// data is RC4 only if the peer offers nothing else.
    #[default]
    Prefer,
    /// Only RC4-encrypted connections, both directions.
    Require,
    /// Plaintext only, both directions.
    Off,
}

impl Encryption {
    /// The `crypto_provide` we send, and the methods we accept.
    fn methods(self) -> u32 {
        match self {
            Encryption::Require => RC4,
            Encryption::Prefer | Encryption::Off => RC4 | PLAINTEXT,
        }
    }
}

/// Starts an outgoing connection on `socket` for the torrent `info_hash`: an encrypted
/// handshake unless `policy` is off. The BitTorrent handshake goes next, through the stream.
pub fn initiate(
    socket: TcpStream,
    info_hash: &InfoHash,
    policy: Encryption,
) -> Result<PeerStream, ConnError> {
    let mut stream = PeerStream::new(socket)?;
    if policy == Encryption::Off {
        return Ok(stream);
    }
    let done = mse::initiate(
        &mut stream,
        &KeyPair::generate()?,
        &info_hash.0,
        policy.methods(),
        Instant::now() + MSE_DEADLINE,
    )?;
    stream.begin_payload(done.ciphers, done.received);
    Ok(stream)
}

/// Starts an incoming connection on `socket`: reads its first bytes and answers an encrypted
/// handshake if that is what they are and `policy` allows. Returns the stream for the
/// BitTorrent handshake, and the torrents it may name: all of them after plaintext, the one
/// the obfuscated info hash named after MSE.
pub fn accept(
    mut socket: TcpStream,
    torrents: &Registry,
    policy: Encryption,
) -> Result<(PeerStream, Registry), ConnError> {
    let mut first = [0u8; 20];
    socket.read_exact(&mut first).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ConnError::Wire(WireError::Closed),
        _ => e.into(),
    })?;
    if names_protocol(&first) {
        if policy == Encryption::Require {
            return Err(MseError::PlaintextRefused.into());
        }
        return Ok((
            PeerStream::with_pending(socket, first.to_vec())?,
            torrents.clone(),
        ));
    }
    if policy == Encryption::Off {
        return Err(WireError::BadProtocol.into());
    }
    let mut stream = PeerStream::new(socket)?;
    let done = mse::respond(
        &mut stream,
        &KeyPair::generate()?,
        &first,
        |req2| {
            torrents
                .keys()
                .find(|h| mse::crypto::req2(&h.0) == *req2)
                .map(|h| h.0)
        },
        policy.methods(),
        Instant::now() + MSE_DEADLINE,
    )?;
    let torrent = torrents
        .get(&InfoHash(done.info_hash))
        .ok_or(MseError::UnknownTorrent)?;
    stream.begin_payload(done.ciphers, done.received);
    let only = HashMap::from([(torrent.meta.info_hash, torrent.clone())]);
    Ok((stream, Arc::new(only)))
}
