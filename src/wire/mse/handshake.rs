//! The MSE handshake of either side over any `Read + Write` stream, as a straight sequence of
//! bounded reads (see the module above for the messages).
//!
//! Reads go through `Input`, which keeps what was read ahead (a peer may send its payload
//! right behind the handshake), never buffers more than the handshake can legally take plus one
//! read, and checks the deadline before every read. The marker searches give up once the
//! padding before the marker would exceed [`MAX_PAD`].

use super::crypto::{Ciphers, KeyPair, hash, obfuscated_info_hash, xor};
use super::{KEY_LEN, MAX_PAD, MseError, PLAINTEXT, RC4};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The verification constant.
const VC: [u8; 8] = [0; 8];
/// Bytes asked of the stream per read.
const CHUNK: usize = 4096;
/// The most the initiator ever needs to read: Yb, PadB, then VC, crypto_select, len(PadD),
/// PadD.
const INITIATOR_READS: usize = KEY_LEN + MAX_PAD + 8 + 4 + 2 + MAX_PAD;
/// The most the responder ever needs to read: Ya, PadA, the two hashes, VC, crypto_provide,
/// len(PadC), PadC, len(IA) and the longest IA.
const RESPONDER_READS: usize = KEY_LEN + MAX_PAD + 20 + 20 + 8 + 4 + 2 + MAX_PAD + 2 + 0xffff;

/// A finished handshake.
pub struct Established {
    /// The RC4 ciphers when RC4 was selected; `None` for plaintext after the handshake.
    pub ciphers: Option<Ciphers>,
    /// Payload already read past the handshake, decrypted: the initial payload (IA) and
    /// whatever followed it in the same reads.
    pub received: Vec<u8>,
    /// The torrent the connection is for.
    pub info_hash: [u8; 20],
}

/// The bytes read so far, and how far the handshake has consumed them.
struct Input {
    buf: Vec<u8>,
    pos: usize,
    limit: usize,
    deadline: Instant,
}

impl Input {
    fn new(prefix: &[u8], limit: usize, deadline: Instant) -> Input {
        Input {
            buf: prefix.to_vec(),
            pos: 0,
            limit,
            deadline,
        }
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads once more: at most one chunk, never past `limit`.
    fn read_more(&mut self, stream: &mut impl Read) -> Result<(), MseError> {
        if Instant::now() >= self.deadline {
            return Err(MseError::Timeout);
        }
        let want = CHUNK.min(self.limit.saturating_sub(self.buf.len())).max(1);
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let read = loop {
            match stream.read(&mut self.buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(start + *read.as_ref().unwrap_or(&0));
        match read? {
            0 => Err(MseError::Closed),
            _ => Ok(()),
        }
    }

    /// The next `n` bytes, reading until they are there.
    fn take(&mut self, stream: &mut impl Read, n: usize) -> Result<&mut [u8], MseError> {
        while self.available() < n {
            self.read_more(stream)?;
        }
        self.pos += n;
        Ok(&mut self.buf[self.pos - n..self.pos])
    }

    /// Skips past `marker`, which must start within the next `max_skip` bytes.
    fn sync(
        &mut self,
        stream: &mut impl Read,
        marker: &[u8],
        max_skip: usize,
        name: &'static str,
    ) -> Result<(), MseError> {
        let window = max_skip + marker.len();
        loop {
            let end = self.buf.len().min(self.pos + window);
            if let Some(at) = self.buf[self.pos..end]
                .windows(marker.len())
                .position(|w| w == marker)
            {
                self.pos += at + marker.len();
                return Ok(());
            }
            if end - self.pos >= window {
                return Err(MseError::NoSync {
                    marker: name,
                    searched: window,
                });
            }
            self.read_more(stream)?;
        }
    }

    /// What was read past the handshake.
    fn rest(self) -> Vec<u8> {
        self.buf[self.pos..].to_vec()
    }
}

/// Our public key and a random padding of 0 to [`MAX_PAD`] bytes (PadA or PadB).
fn key_and_pad(keys: &KeyPair) -> Vec<u8> {
    let mut out = keys.public.to_vec();
    out.extend(std::iter::repeat_with(|| fastrand::u8(..)).take(fastrand::usize(..=MAX_PAD)));
    out
}

/// A two-byte padding length, refused past [`MAX_PAD`].
fn pad_len(bytes: &[u8]) -> Result<usize, MseError> {
    let len = u16::from_be_bytes([bytes[0], bytes[1]]);
    if len as usize > MAX_PAD {
        return Err(MseError::PadTooLong(len));
    }
    Ok(len as usize)
}

/// The peer's public key, the first [`KEY_LEN`] bytes it sends.
fn their_key(input: &mut Input, stream: &mut impl Read) -> Result<[u8; KEY_LEN], MseError> {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(input.take(stream, KEY_LEN)?);
    Ok(key)
}

/// Opens an encrypted connection for the torrent `skey`, offering the methods in `provide`
/// ([`PLAINTEXT`], [`RC4`]). Sends no initial payload: the BitTorrent handshake follows once
/// the method is known.
pub fn initiate<S: Read + Write>(
    stream: &mut S,
    keys: &KeyPair,
    skey: &[u8; 20],
    provide: u32,
    deadline: Instant,
) -> Result<Established, MseError> {
    stream.write_all(&key_and_pad(keys))?;
    let mut input = Input::new(&[], INITIATOR_READS, deadline);
    let secret = keys.shared_secret(&their_key(&mut input, stream)?)?;
    initiate_keyed(stream, input, &secret, skey, provide)
}

/// The initiator's part after the key exchange (shared secret `secret`): sends the hashes
/// and the encrypted VC and crypto_provide, then searches PadB for the encrypted VC and reads
/// crypto_select, len(PadD) and PadD.
fn initiate_keyed<S: Read + Write>(
    stream: &mut S,
    mut input: Input,
    secret: &[u8; KEY_LEN],
    skey: &[u8; 20],
    provide: u32,
) -> Result<Established, MseError> {
    let mut ciphers = Ciphers::new(true, secret, skey);

    let mut message = hash(&[b"req1", secret]).to_vec();
    message.extend(obfuscated_info_hash(secret, skey));
    let mut encrypted = VC.to_vec();
    encrypted.extend(provide.to_be_bytes());
    // No PadC and no initial payload: their lengths.
    encrypted.extend([0, 0, 0, 0]);
    ciphers.send.apply(&mut encrypted);
    message.extend(encrypted);
    stream.write_all(&message)?;

    let mut marker = VC;
    ciphers.receive.apply(&mut marker);
    input.sync(stream, &marker, MAX_PAD, "encrypted verification constant")?;
    let head = input.take(stream, 6)?;
    ciphers.receive.apply(head);
    let select = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let pad = pad_len(&head[4..])?;
    if (select != PLAINTEXT && select != RC4) || select & provide == 0 {
        return Err(MseError::BadSelect(select));
    }
    ciphers.receive.apply(input.take(stream, pad)?);
    let mut received = input.rest();
    let ciphers = (select == RC4).then(|| {
        ciphers.receive.apply(&mut received);
        ciphers
    });
    Ok(Established {
        ciphers,
        received,
        info_hash: *skey,
    })
}

/// Answers an encrypted connection whose first bytes (`prefix`) were read already. `torrent`
/// maps `HASH('req2', SKEY)` to the info hash of a torrent served here; `accept` is the
/// methods allowed ([`PLAINTEXT`], [`RC4`]); RC4 is chosen when the peer offers it.
pub fn respond<S: Read + Write>(
    stream: &mut S,
    keys: &KeyPair,
    prefix: &[u8],
    torrent: impl Fn(&[u8; 20]) -> Option<[u8; 20]>,
    accept: u32,
    deadline: Instant,
) -> Result<Established, MseError> {
    let mut input = Input::new(prefix, RESPONDER_READS.max(prefix.len()), deadline);
    let secret = keys.shared_secret(&their_key(&mut input, stream)?)?;
    stream.write_all(&key_and_pad(keys))?;
    respond_keyed(stream, input, &secret, torrent, accept)
}

/// The responder's part after the key exchange (shared secret `secret`): PadA up to the req1
/// hash, the obfuscated info hash, then the encrypted VC, crypto_provide, PadC and IA.
fn respond_keyed<S: Read + Write>(
    stream: &mut S,
    mut input: Input,
    secret: &[u8; KEY_LEN],
    torrent: impl Fn(&[u8; 20]) -> Option<[u8; 20]>,
    accept: u32,
) -> Result<Established, MseError> {
    input.sync(stream, &hash(&[b"req1", secret]), MAX_PAD, "req1 hash")?;
    let mut obfuscated = [0u8; 20];
    obfuscated.copy_from_slice(input.take(stream, 20)?);
    let req2 = xor(&obfuscated, &hash(&[b"req3", secret]));
    let info_hash = torrent(&req2).ok_or(MseError::UnknownTorrent)?;
    let mut ciphers = Ciphers::new(false, secret, &info_hash);

    let head = input.take(stream, 14)?;
    ciphers.receive.apply(head);
    if head[..8] != VC {
        return Err(MseError::BadVerification);
    }
    let provide = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let pad = pad_len(&head[12..])?;
    ciphers.receive.apply(input.take(stream, pad)?);
    let ia_len = input.take(stream, 2)?;
    ciphers.receive.apply(ia_len);
    let ia_len = u16::from_be_bytes([ia_len[0], ia_len[1]]) as usize;
    // The initial payload is RC4 whatever is selected after it.
    let mut received = input.take(stream, ia_len)?.to_vec();
    ciphers.receive.apply(&mut received);
    // Plaintext after the handshake when both sides allow it, as libtorrent does by default
    // (`prefer_rc4` off): the handshake is still hidden, and RC4 over the data would cost more
    // than half the throughput (1 GiB on loopback: 163 MB/s with RC4, 367 MB/s without).
    // `require` accepts RC4 alone, so it always gets RC4.
    let select = [PLAINTEXT, RC4]
        .into_iter()
        .find(|m| provide & accept & m != 0)
        .ok_or(MseError::NoCommonMethod(provide))?;

    let mut reply = VC.to_vec();
    reply.extend(select.to_be_bytes());
    reply.extend([0, 0]);
    ciphers.send.apply(&mut reply);
    stream.write_all(&reply)?;
    let mut rest = input.rest();
    if select == RC4 {
        ciphers.receive.apply(&mut rest);
    }
    received.extend(rest);
    Ok(Established {
        ciphers: (select == RC4).then_some(ciphers),
        received,
        info_hash,
    })
}

/// The one torrent [`respond_to_bytes`] and [`respond_keyed_to_bytes`] serve, and the one
/// [`initiate_keyed_to_bytes`] asks for.
pub const REPLAY_SKEY: [u8; 20] = [0xab; 20];

/// A stream that reads its bytes and drops what is written.
struct Replay<'a>(&'a [u8]);

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`REPLAY_SKEY`]'s torrent, looked up by `HASH('req2', SKEY)` as a responder does.
fn replay_torrent() -> impl Fn(&[u8; 20]) -> Option<[u8; 20]> {
    let req2 = super::crypto::req2(&REPLAY_SKEY);
    move |h| (*h == req2).then_some(REPLAY_SKEY)
}

/// A deadline no replay reaches.
fn replay_deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// The responder fed `input` as everything the initiator sends (what it writes is dropped),
/// with a fixed key pair, one torrent ([`REPLAY_SKEY`]) and both methods allowed: the
/// handshake parser as a function of bytes, for fuzzing and garbage tests.
pub fn respond_to_bytes(input: &[u8]) -> Result<Established, MseError> {
    let keys = KeyPair::from_private(&[7; 20]);
    let (torrent, deadline) = (replay_torrent(), replay_deadline());
    respond(
        &mut Replay(input),
        &keys,
        &[],
        torrent,
        PLAINTEXT | RC4,
        deadline,
    )
}

/// [`respond_to_bytes`] past the key exchange: the responder holding the shared secret
/// `secret` is fed `input` as what the initiator sends after Ya (PadA, the two hashes, the
/// encrypted part). Every input costs hashes and RC4 set-ups, no 768-bit exponentiation, so
/// millions can be fuzzed.
pub fn respond_keyed_to_bytes(
    secret: &[u8; KEY_LEN],
    input: &[u8],
) -> Result<Established, MseError> {
    let reads = Input::new(&[], RESPONDER_READS - KEY_LEN, replay_deadline());
    let torrent = replay_torrent();
    respond_keyed(&mut Replay(input), reads, secret, torrent, PLAINTEXT | RC4)
}

/// Most bytes [`initiate_keyed_to_bytes`] reads: PadB, VC, crypto_select, len(PadD) and PadD
/// at their longest. What it hands over past PadD is what it read of this many.
pub const INITIATOR_KEYED_READS: usize = INITIATOR_READS - KEY_LEN;

/// The initiator past the key exchange, for fuzzing: holding the shared secret `secret` and
/// asking for [`REPLAY_SKEY`] with the methods `provide`, it is fed `input` as what the
/// responder sends after Yb (PadB, the encrypted VC, crypto_select, len(PadD), PadD, then
/// payload); what it writes is dropped. Hashes and RC4 set-ups only, no exponentiation.
pub fn initiate_keyed_to_bytes(
    secret: &[u8; KEY_LEN],
    provide: u32,
    input: &[u8],
) -> Result<Established, MseError> {
    let reads = Input::new(&[], INITIATOR_KEYED_READS, replay_deadline());
    initiate_keyed(&mut Replay(input), reads, secret, &REPLAY_SKEY, provide)
}

#[cfg(test)]
mod tests;
