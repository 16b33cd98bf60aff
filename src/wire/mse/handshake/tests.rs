use super::*;
use crate::wire::mse::crypto::{Cipher, req2};
use std::os::unix::net::UnixStream;
use std::thread;

const SKEY: [u8; 20] = [0xab; 20];

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn lookup(torrents: &[[u8; 20]]) -> impl Fn(&[u8; 20]) -> Option<[u8; 20]> + '_ {
    |h| torrents.iter().find(|t| req2(t) == *h).copied()
}

/// Both sides over a socket pair; returns each side's result and its end of the pair.
fn handshake(
    provide: u32,
    accept: u32,
    torrents: &'static [[u8; 20]],
    skey: [u8; 20],
) -> (
    (Result<Established, MseError>, UnixStream),
    (Result<Established, MseError>, UnixStream),
) {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    for end in [&a, &b] {
        end.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let responder = thread::spawn(move || {
        let keys = KeyPair::generate().unwrap();
        let result = respond(&mut b, &keys, &[], lookup(torrents), accept, soon());
        if result.is_err() {
            let _ = b.shutdown(std::net::Shutdown::Both);
        }
        (result, b)
    });
    let keys = KeyPair::generate().unwrap();
    let result = initiate(&mut a, &keys, &skey, provide, soon());
    if result.is_err() {
        // Let the responder see the end instead of waiting for its deadline.
        let _ = a.shutdown(std::net::Shutdown::Both);
    }
    ((result, a), responder.join().unwrap())
}

/// Sends `text` from one side to the other through their ciphers (or none).
fn carry(
    from: &mut Option<Ciphers>,
    to: &mut Option<Ciphers>,
    out: &mut UnixStream,
    inp: &mut UnixStream,
    text: &[u8],
) {
    let mut wire = text.to_vec();
    if let Some(c) = from {
        c.send.apply(&mut wire);
    }
    out.write_all(&wire).unwrap();
    let mut got = vec![0u8; text.len()];
    inp.read_exact(&mut got).unwrap();
    if let Some(c) = to {
        c.receive.apply(&mut got);
    }
    assert_eq!(got, text);
    if from.is_some() {
        assert_ne!(wire, text, "RC4 leaves no byte as it was in this text");
    }
}

#[test]
fn rc4_handshake_between_two_of_us_carries_payload_both_ways() {
    static TORRENTS: [[u8; 20]; 1] = [SKEY];
    let ((a, mut sa), (b, mut sb)) = handshake(RC4 | PLAINTEXT, RC4, &TORRENTS, SKEY);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(b.info_hash, SKEY);
    assert!(a.received.is_empty() && b.received.is_empty());
    let (mut ca, mut cb) = (a.ciphers, b.ciphers);
    assert!(
        ca.is_some() && cb.is_some(),
        "RC4 when the responder accepts only RC4"
    );
    carry(
        &mut ca,
        &mut cb,
        &mut sa,
        &mut sb,
        b"\x13BitTorrent protocol from A",
    );
    carry(
        &mut cb,
        &mut ca,
        &mut sb,
        &mut sa,
        b"\x13BitTorrent protocol from B",
    );
}

#[test]
fn plaintext_after_the_handshake_when_only_that_is_offered() {
    static TORRENTS: [[u8; 20]; 1] = [SKEY];
    let ((a, mut sa), (b, mut sb)) = handshake(PLAINTEXT, RC4 | PLAINTEXT, &TORRENTS, SKEY);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.ciphers.is_none() && b.ciphers.is_none());
    carry(&mut None, &mut None, &mut sa, &mut sb, b"in the clear");
}

#[test]
fn plaintext_after_the_handshake_when_both_sides_allow_both() {
    static TORRENTS: [[u8; 20]; 1] = [SKEY];
    let ((a, mut sa), (b, mut sb)) = handshake(RC4 | PLAINTEXT, RC4 | PLAINTEXT, &TORRENTS, SKEY);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.ciphers.is_none() && b.ciphers.is_none());
    carry(
        &mut None,
        &mut None,
        &mut sa,
        &mut sb,
        b"hidden handshake, clear data",
    );
}

#[test]
fn no_common_method_fails_both_sides() {
    static TORRENTS: [[u8; 20]; 1] = [SKEY];
    let ((a, _), (b, _)) = handshake(PLAINTEXT, RC4, &TORRENTS, SKEY);
    assert!(
        matches!(b, Err(MseError::NoCommonMethod(PLAINTEXT))),
        "{:?}",
        b.err()
    );
    assert!(a.is_err());
}

#[test]
fn the_obfuscated_hash_finds_the_torrent_among_several() {
    static TORRENTS: [[u8; 20]; 3] = [[1; 20], [2; 20], [3; 20]];
    let ((a, _), (b, _)) = handshake(RC4, RC4, &TORRENTS, [2; 20]);
    assert_eq!(b.unwrap().info_hash, [2; 20]);
    assert_eq!(a.unwrap().info_hash, [2; 20]);
    let ((a, _), (b, _)) = handshake(RC4, RC4, &TORRENTS, [9; 20]);
    assert!(matches!(b, Err(MseError::UnknownTorrent)), "{:?}", b.err());
    assert!(a.is_err());
}

/// What an initiator with private key 01..14 sends for `SKEY` to [`respond_to_bytes`]'s
/// responder: PadA, then step 3 with `pad_c`, the initial payload `ia` and `after` (payload
/// behind the handshake, RC4 when `provide` is).
fn step_one_and_three(pad_a: usize, provide: u32, pad_c: u16, ia: &[u8], after: &[u8]) -> Vec<u8> {
    let keys = KeyPair::from_private(&(1..=20).collect::<Vec<u8>>());
    let theirs = KeyPair::from_private(&[7; 20]).public;
    let s = keys.shared_secret(&theirs).unwrap();
    let mut out = keys.public.to_vec();
    out.extend(vec![0x5a; pad_a]);
    out.extend(hash(&[b"req1", &s]));
    out.extend(obfuscated_info_hash(&s, &SKEY));
    let mut send = Cipher::new(b"keyA", &s, &SKEY);
    let mut encrypted = VC.to_vec();
    encrypted.extend(provide.to_be_bytes());
    encrypted.extend(pad_c.to_be_bytes());
    encrypted.extend(vec![0; pad_c.min(600) as usize]);
    encrypted.extend((ia.len() as u16).to_be_bytes());
    encrypted.extend(ia);
    send.apply(&mut encrypted);
    out.extend(encrypted);
    let mut after = after.to_vec();
    if provide == RC4 {
        send.apply(&mut after);
    }
    out.extend(after);
    out
}

#[test]
fn responder_hands_over_the_initial_payload_and_what_followed() {
    let done = respond_to_bytes(&step_one_and_three(512, RC4, 512, b"hello ", b"world")).unwrap();
    assert_eq!(done.received, b"hello world");
    assert!(done.ciphers.is_some());
    let done = respond_to_bytes(&step_one_and_three(0, PLAINTEXT, 0, b"hello ", b"world")).unwrap();
    assert_eq!(
        done.received, b"hello world",
        "IA is RC4, what follows plaintext"
    );
    assert!(done.ciphers.is_none());
}

#[test]
fn responder_refuses_long_padding_and_a_late_marker() {
    let err = respond_to_bytes(&step_one_and_three(0, RC4, 513, b"", b""))
        .err()
        .unwrap();
    assert!(matches!(err, MseError::PadTooLong(513)), "{err}");
    let err = respond_to_bytes(&step_one_and_three(513, RC4, 0, b"", b""))
        .err()
        .unwrap();
    assert!(
        matches!(err, MseError::NoSync { searched: 532, .. }),
        "{err}"
    );
}

/// A stream that answers every read with garbage, counting what it gave.
struct Garbage {
    given: usize,
    per_read: usize,
    delay: Duration,
}

impl Read for Garbage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        thread::sleep(self.delay);
        let n = buf.len().min(self.per_read);
        buf[..n].fill(0x42);
        self.given += n;
        Ok(n)
    }
}

impl Write for Garbage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn endless_garbage_is_dropped_after_a_bounded_read() {
    let keys = KeyPair::generate().unwrap();
    let mut garbage = Garbage {
        given: 0,
        per_read: usize::MAX,
        delay: Duration::ZERO,
    };
    // A public key of 0x42 bytes is a valid one; the req1 hash never comes.
    let err = respond(&mut garbage, &keys, &[], |_| None, RC4, soon())
        .err()
        .unwrap();
    assert!(matches!(err, MseError::NoSync { .. }), "{err}");
    assert!(
        garbage.given <= KEY_LEN + MAX_PAD + 20 + CHUNK,
        "read {}",
        garbage.given
    );
    let mut garbage = Garbage {
        given: 0,
        per_read: usize::MAX,
        delay: Duration::ZERO,
    };
    let err = initiate(&mut garbage, &keys, &SKEY, RC4, soon())
        .err()
        .unwrap();
    assert!(matches!(err, MseError::NoSync { .. }), "{err}");
    assert!(
        garbage.given <= KEY_LEN + MAX_PAD + 8 + CHUNK,
        "read {}",
        garbage.given
    );
}

#[test]
fn a_trickling_peer_meets_the_deadline() {
    let keys = KeyPair::generate().unwrap();
    // One byte a millisecond: the search alone would take 600 ms.
    let mut trickle = Garbage {
        given: 0,
        per_read: 1,
        delay: Duration::from_millis(1),
    };
    let started = Instant::now();
    let deadline = started + Duration::from_millis(50);
    let err = respond(&mut trickle, &keys, &[], |_| None, RC4, deadline)
        .err()
        .unwrap();
    assert!(matches!(err, MseError::Timeout), "{err}");
    assert!(trickle.given < KEY_LEN + MAX_PAD, "read {}", trickle.given);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn random_and_truncated_input_never_panics() {
    let valid = step_one_and_three(100, RC4, 10, b"payload", b"more");
    // Short of its last four bytes (payload behind the handshake) it is whole.
    for len in 0..valid.len() - 4 {
        assert!(
            respond_to_bytes(&valid[..len]).is_err(),
            "accepted {len} bytes"
        );
    }
    let whole = respond_to_bytes(&valid[..valid.len() - 4]).unwrap();
    assert_eq!(whole.received, b"payload");
    let mut rng = fastrand::Rng::with_seed(8);
    for _ in 0..200 {
        let mut input = valid.clone();
        for _ in 0..rng.usize(1..8) {
            let at = rng.usize(..input.len());
            input[at] = rng.u8(..);
        }
        let _ = respond_to_bytes(&input);
        let junk: Vec<u8> = (0..rng.usize(..2000)).map(|_| rng.u8(..)).collect();
        assert!(respond_to_bytes(&junk).is_err());
    }
}
