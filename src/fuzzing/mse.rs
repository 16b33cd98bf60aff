//! The MSE handshake target: the responder's parse after the key exchange, the part a peer
//! controls once the 768-bit exponentiation is behind (searching PadA for the req1 hash, the
//! obfuscated info hash, then VC, crypto_provide, len(PadC), PadC, len(IA), IA under RC4).
//!
//! The key pairs are fixed, so the shared secret (and the initiator's keystream) is computed
//! once per process. An input is what the initiator sends after Ya with the encrypted part in
//! the clear: the target finds the req1 hash as the responder would and encrypts everything 40
//! bytes past it with the initiator's RC4 stream before the responder reads it. Mutations thus land on the fields
//! themselves (a length edit changes len(PadC), not a keystream byte). A model of the parse
//! predicts the outcome of every input, and the target asserts the responder agrees: which
//! error, or on success the torrent, the method and the initial payload.

use crate::wire::mse::crypto::{Cipher, KeyPair, hash, obfuscated_info_hash};
use crate::wire::mse::{
    Established, KEY_LEN, MAX_PAD, MseError, PLAINTEXT, RC4, REPLAY_SKEY, respond_keyed_to_bytes,
};
use std::sync::OnceLock;

/// Keystream bytes kept: more than the responder reads past the hashes (VC to the longest
/// IA is 14 + 512 + 2 + 65535 bytes, plus one 4 KiB read).
const KEYSTREAM: usize = 80 << 10;

/// The secret, req1 hash, obfuscated info hash and initiator keystream of the fixed exchange.
pub(super) struct Fixed {
    /// The shared secret, also the initiator target's.
    pub(super) secret: [u8; KEY_LEN],
    req1: [u8; 20],
    obfuscated: [u8; 20],
    keystream: Vec<u8>,
}

/// The fixed exchange, computed on first use.
pub(super) fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let initiator = KeyPair::from_private(&[3; 20]);
        let responder = KeyPair::from_private(&[7; 20]);
        let secret = (initiator.shared_secret(&responder.public)).expect("fixed keys are valid");
        let mut keystream = vec![0; KEYSTREAM];
        Cipher::new(b"keyA", &secret, &REPLAY_SKEY).apply(&mut keystream);
        Fixed {
            keystream,
            secret,
            req1: hash(&[b"req1", &secret]),
            obfuscated: obfuscated_info_hash(&secret, &REPLAY_SKEY),
        }
    })
}

/// Where the req1 hash starts, if within the bytes the responder searches.
fn req1_at(data: &[u8], req1: &[u8; 20]) -> Option<usize> {
    let window = &data[..data.len().min(MAX_PAD + req1.len())];
    window.windows(req1.len()).position(|w| w == req1)
}

/// Valid inputs: every PadA, PadC and IA length class and each crypto_provide.
pub fn seeds() -> Vec<Vec<u8>> {
    let f = fixed();
    let mut out = Vec::new();
    let shapes: [(usize, u32, usize, usize, usize); 6] = [
        (0, PLAINTEXT | RC4, 0, 0, 0),
        (1, RC4, 3, 68, 10),
        (100, PLAINTEXT, 0, 68, 0),
        (MAX_PAD, RC4, MAX_PAD, 0, 1),
        (7, PLAINTEXT | RC4, 1, 300, 5000),
        (0, RC4 | 0xf0, 0, 5, 0),
    ];
    for (pad_a, provide, pad_c, ia, after) in shapes {
        let mut input: Vec<u8> = (0..pad_a).map(|i| (i * 7) as u8).collect();
        input.extend(f.req1);
        input.extend(f.obfuscated);
        input.extend([0; 8]);
        input.extend(provide.to_be_bytes());
        input.extend((pad_c as u16).to_be_bytes());
        input.extend((0..pad_c).map(|i| i as u8));
        input.extend((ia as u16).to_be_bytes());
        input.extend((0..ia).map(|i| b"\x13BitTorrent protocol"[i % 20]));
        input.extend((0..after).map(|i| (i % 251) as u8));
        out.push(input);
    }
    out
}

/// Why a model (this one or the initiator's) expects an input to be refused.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    /// The input ends before the handshake does.
    Closed,
    NoSync,
    UnknownTorrent,
    BadVerification,
    PadTooLong,
    NoCommonMethod,
    BadSelect,
}

/// The refusal an error is, if it is one the parse can give.
pub(super) fn refusal(e: &MseError) -> Option<Refusal> {
    Some(match e {
        MseError::Closed => Refusal::Closed,
        MseError::NoSync { .. } => Refusal::NoSync,
        MseError::UnknownTorrent => Refusal::UnknownTorrent,
        MseError::BadVerification => Refusal::BadVerification,
        MseError::PadTooLong(_) => Refusal::PadTooLong,
        MseError::NoCommonMethod(_) => Refusal::NoCommonMethod,
        MseError::BadSelect(_) => Refusal::BadSelect,
        _ => return None,
    })
}

/// What the model expects of an accepted input.
#[derive(Debug)]
struct Accepted {
    /// The method selected.
    select: u32,
    /// Where the initial payload is in the input.
    ia: std::ops::Range<usize>,
}

/// The outcome the MSE specification prescribes for `plain` (the input with its encrypted
/// part in the clear), step by step in the responder's order.
fn model(plain: &[u8], f: &Fixed) -> Result<Accepted, Refusal> {
    let Some(at) = req1_at(plain, &f.req1) else {
        let searched_all = plain.len() >= MAX_PAD + f.req1.len();
        return Err(if searched_all {
            Refusal::NoSync
        } else {
            Refusal::Closed
        });
    };
    let field = |from: usize, len: usize| plain.get(from..from + len).ok_or(Refusal::Closed);
    if field(at + 20, 20)? != f.obfuscated {
        return Err(Refusal::UnknownTorrent);
    }
    let head = field(at + 40, 14)?;
    if head[..8] != [0; 8] {
        return Err(Refusal::BadVerification);
    }
    let provide = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let pad = u16::from_be_bytes([head[12], head[13]]) as usize;
    if pad > MAX_PAD {
        return Err(Refusal::PadTooLong);
    }
    let ia_len = field(at + 54 + pad, 2)?;
    let ia_len = u16::from_be_bytes([ia_len[0], ia_len[1]]) as usize;
    let ia_at = at + 56 + pad;
    field(ia_at, ia_len)?;
    let select = (([PLAINTEXT, RC4].into_iter()).find(|m| provide & m != 0))
        .ok_or(Refusal::NoCommonMethod)?;
    Ok(Accepted {
        select,
        ia: ia_at..ia_at + ia_len,
    })
}

/// Checks an accepted handshake against the model's expectation.
fn check(want: &Accepted, done: &Established, plain: &[u8], wire: &[u8]) {
    assert_eq!(done.info_hash, REPLAY_SKEY, "a torrent not served");
    let select = if done.ciphers.is_some() {
        RC4
    } else {
        PLAINTEXT
    };
    assert_eq!(select, want.select, "another method selected");
    let (ia, after) = (done.received).split_at(want.ia.len().min(done.received.len()));
    assert_eq!(ia, &plain[want.ia.clone()], "the initial payload misread");
    // What followed the IA, as far as the responder read it: decrypted under RC4, as sent
    // (still encrypted: this target encrypts it all) after a plaintext selection.
    let stream = if select == RC4 { plain } else { wire };
    assert!(
        stream[want.ia.end..].starts_with(after),
        "the bytes after the initial payload are not the stream's"
    );
}

/// Encrypts the input past the hashes, runs the responder, and checks it against the model.
pub fn run(plain: &[u8]) -> bool {
    let f = fixed();
    let mut wire = plain.to_vec();
    if let Some(at) = req1_at(plain, &f.req1) {
        let tail = wire.iter_mut().skip(at + 40);
        tail.zip(&f.keystream).for_each(|(b, k)| *b ^= k);
    }
    match (model(plain, f), respond_keyed_to_bytes(&f.secret, &wire)) {
        (Ok(want), Ok(done)) => {
            check(&want, &done, plain, &wire);
            true
        }
        (Err(want), Err(e)) => {
            assert_eq!(
                refusal(&e),
                Some(want),
                "the responder refused otherwise: {e}"
            );
            false
        }
        (want, got) => panic!(
            "the model expects {want:?}, the responder gave {:?}",
            got.map(|d| d.received.len())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_accepted_and_broken_ones_refused_as_the_model_says() {
        for seed in seeds() {
            assert!(run(&seed));
            let mut bad_vc = seed.clone();
            let at = req1_at(&seed, &fixed().req1).unwrap() + 40;
            bad_vc[at + 3] ^= 1;
            assert!(!run(&bad_vc));
            assert!(matches!(
                model(&bad_vc, fixed()),
                Err(Refusal::BadVerification)
            ));
            let mut long_pad = seed.clone();
            long_pad[at + 12..at + 14].copy_from_slice(&513u16.to_be_bytes());
            assert!(matches!(
                model(&long_pad, fixed()),
                Err(Refusal::PadTooLong)
            ));
            assert!(!run(&long_pad));
            assert!(!run(&seed[..at - 10]), "cut inside the obfuscated hash");
        }
    }
}
