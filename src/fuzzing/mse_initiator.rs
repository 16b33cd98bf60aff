//! The MSE initiator target: what a peer we dial controls once the key exchange is behind.
//! The initiator searches the responder's PadB for the RC4-encrypted VC (at most [`MAX_PAD`]
//! bytes in), then reads crypto_select, len(PadD) and PadD, and hands over what it read past
//! them.
//!
//! The key pairs are [`mse`](super::mse)'s fixed ones, so the secret and both keystreams are
//! computed once per process. An input is one byte choosing our crypto_provide (odd: RC4 alone,
//! as `--encryption require` offers; even: both), then what the responder sends after Yb with
//! its encrypted part in the clear: the target encrypts everything from the first eight zero
//! bytes (VC) within the search window with the responder's RC4 stream, so mutations land on
//! crypto_select and len(PadD) rather than on keystream bytes. A model reads the bytes as
//! the specification says, on the wire the initiator sees, and predicts which error or, on
//! success, the method, the bytes handed over and where both RC4 streams stand; the target
//! asserts the initiator agrees.

use super::mse::{Refusal, fixed, refusal};
use crate::wire::mse::crypto::Cipher;
use crate::wire::mse::{
    Established, INITIATOR_KEYED_READS, MAX_PAD, PLAINTEXT, RC4, REPLAY_SKEY,
    initiate_keyed_to_bytes,
};
use std::sync::OnceLock;

/// VC as the responder sends it before encryption.
const VC: [u8; 8] = [0; 8];
/// Bytes the initiator searches for the encrypted VC: PadB at its longest, then VC.
const WINDOW: usize = MAX_PAD + VC.len();
/// The encrypted fields before PadD: VC, crypto_select, len(PadD).
const HEAD: usize = 8 + 4 + 2;
/// What the initiator encrypts in step 3: VC, crypto_provide, len(PadC), len(IA).
const SENT: usize = 8 + 4 + 2 + 2;

/// The RC4 streams of the fixed exchange.
struct Streams {
    /// The responder's keystream (keyB) from VC on: more than the initiator ever reads, plus
    /// the bytes the target draws from the returned cipher.
    responder: Vec<u8>,
    /// ENCRYPT(VC): the marker the initiator searches for.
    marker: [u8; 8],
    /// The initiator's keystream (keyA) just past what it sent in step 3.
    initiator_next: [u8; 8],
}

fn streams() -> &'static Streams {
    static STREAMS: OnceLock<Streams> = OnceLock::new();
    STREAMS.get_or_init(|| {
        let secret = fixed().secret;
        let mut responder = vec![0; INITIATOR_KEYED_READS + 8];
        Cipher::new(b"keyB", &secret, &REPLAY_SKEY).apply(&mut responder);
        let mut initiator = [0; SENT + 8];
        Cipher::new(b"keyA", &secret, &REPLAY_SKEY).apply(&mut initiator);
        let mut marker = VC;
        marker.copy_from_slice(&responder[..8]);
        let mut initiator_next = [0; 8];
        initiator_next.copy_from_slice(&initiator[SENT..]);
        Streams {
            responder,
            marker,
            initiator_next,
        }
    })
}

/// Where `marker` first starts within the initiator's search window of `data`.
fn find(data: &[u8], marker: &[u8; 8]) -> Option<usize> {
    let window = &data[..data.len().min(WINDOW)];
    window.windows(marker.len()).position(|w| w == marker)
}

/// Our crypto_provide and the responder's bytes, from an input.
fn split(input: &[u8]) -> (u32, &[u8]) {
    match input.split_first() {
        Some((choice, rest)) if choice % 2 == 1 => (RC4, rest),
        Some((_, rest)) => (PLAINTEXT | RC4, rest),
        None => (PLAINTEXT | RC4, input),
    }
}

/// Valid inputs: every PadB and PadD length class (0, 1, some, 511 or 512), both selects,
/// both provides, with and without payload behind PadD.
pub fn seeds() -> Vec<Vec<u8>> {
    let shapes: [(u8, usize, u32, usize, usize); 7] = [
        (0, 0, PLAINTEXT, 0, 0),
        (0, 1, RC4, 1, 68),
        (1, 100, RC4, 100, 5),
        (0, MAX_PAD - 1, PLAINTEXT, MAX_PAD, 2000),
        (1, MAX_PAD, RC4, MAX_PAD, 0),
        (0, MAX_PAD, RC4, 0, 2000),
        (0, 7, PLAINTEXT, 100, 68),
    ];
    let mut out = Vec::new();
    for (choice, pad_b, select, pad_d, after) in shapes {
        // No run of eight zero bytes in PadB: the target would take it for VC.
        let mut input: Vec<u8> = vec![choice];
        input.extend((0..pad_b).map(|i| (i * 7 + 1) as u8));
        input.extend(VC);
        input.extend(select.to_be_bytes());
        input.extend((pad_d as u16).to_be_bytes());
        input.extend((0..pad_d).map(|i| (i % 251) as u8));
        input.extend((0..after).map(|i| b"\x13BitTorrent protocol"[i % 20]));
        out.push(input);
    }
    out
}

/// What the model expects of an accepted input.
#[derive(Debug)]
struct Accepted {
    /// The method selected.
    select: u32,
    /// Where the encrypted part starts on the wire (ENCRYPT(VC)).
    vc: usize,
    /// Where the bytes past PadD start on the wire.
    end: usize,
}

/// The outcome the MSE specification prescribes for `wire` (what the responder sent after Yb)
/// when we offered `provide`, step by step in the initiator's order.
fn model(wire: &[u8], provide: u32, s: &Streams) -> Result<Accepted, Refusal> {
    let Some(vc) = find(wire, &s.marker) else {
        return Err(if wire.len() >= WINDOW {
            Refusal::NoSync
        } else {
            Refusal::Closed
        });
    };
    let Some(head) = wire.get(vc..vc + HEAD) else {
        return Err(Refusal::Closed);
    };
    let clear: Vec<u8> = head.iter().zip(&s.responder).map(|(b, k)| b ^ k).collect();
    let select = u32::from_be_bytes([clear[8], clear[9], clear[10], clear[11]]);
    let pad = u16::from_be_bytes([clear[12], clear[13]]) as usize;
    if pad > MAX_PAD {
        return Err(Refusal::PadTooLong);
    }
    if !(select == PLAINTEXT || select == RC4) || select & provide == 0 {
        return Err(Refusal::BadSelect);
    }
    let end = vc + HEAD + pad;
    if wire.len() < end {
        return Err(Refusal::Closed);
    }
    Ok(Accepted { select, vc, end })
}

/// Checks an accepted handshake against the model's expectation.
fn check(want: &Accepted, done: Established, wire: &[u8], s: &Streams) {
    assert_eq!(done.info_hash, REPLAY_SKEY, "another torrent");
    assert_eq!(
        done.ciphers.is_some(),
        want.select == RC4,
        "another method than crypto_select {:#x}",
        want.select
    );
    // The initiator reads as much as it may ever need in one go and the replayed stream gives
    // all it asks for, so what it hands over is the input from PadD's end to that bound.
    let handed = &wire[want.end..wire.len().min(INITIATOR_KEYED_READS).max(want.end)];
    assert_eq!(
        done.received.len(),
        handed.len(),
        "handed over another count"
    );
    let Some(mut ciphers) = done.ciphers else {
        assert_eq!(done.received, handed, "plaintext payload altered");
        return;
    };
    let keystream = &s.responder[want.end - want.vc..];
    let payload = handed.iter().zip(keystream).map(|(b, k)| b ^ k);
    assert!(
        payload.eq(done.received.iter().copied()),
        "payload not decrypted with the responder's stream"
    );
    let mut next = [0u8; 8];
    ciphers.receive.apply(&mut next);
    let at = want.end + handed.len() - want.vc;
    assert_eq!(next, s.responder[at..at + 8], "receive stream out of step");
    let mut next = [0u8; 8];
    ciphers.send.apply(&mut next);
    assert_eq!(next, s.initiator_next, "send stream out of step");
}

/// Encrypts the input from its VC on, runs the initiator, and checks it against the model.
pub fn run(input: &[u8]) -> bool {
    let s = streams();
    let (provide, plain) = split(input);
    let mut wire = plain.to_vec();
    if let Some(at) = find(plain, &VC) {
        let tail = wire.iter_mut().skip(at);
        tail.zip(&s.responder).for_each(|(b, k)| *b ^= k);
    }
    let got = initiate_keyed_to_bytes(&fixed().secret, provide, &wire);
    match (model(&wire, provide, s), got) {
        (Ok(want), Ok(done)) => {
            check(&want, done, &wire, s);
            true
        }
        (Err(want), Err(e)) => {
            assert_eq!(
                refusal(&e),
                Some(want),
                "the initiator refused otherwise: {e}"
            );
            false
        }
        (want, got) => panic!(
            "the model expects {want:?}, the initiator gave {:?}",
            got.map(|d| d.received.len())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a seed's clear crypto_select and len(PadD) are (past the provide byte).
    fn head_at(seed: &[u8]) -> usize {
        1 + find(&seed[1..], &VC).unwrap() + 8
    }

    fn refused(input: &[u8]) -> Refusal {
        let (provide, plain) = split(input);
        let mut wire = plain.to_vec();
        if let Some(at) = find(plain, &VC) {
            wire[at..]
                .iter_mut()
                .zip(&streams().responder)
                .for_each(|(b, k)| *b ^= k);
        }
        assert!(!run(input));
        model(&wire, provide, streams()).unwrap_err()
    }

    #[test]
    fn seeds_are_accepted_and_broken_ones_refused_as_the_model_says() {
        for seed in seeds() {
            assert!(run(&seed));
            let at = head_at(&seed);
            let mut select = seed.clone();
            select[at + 3] = 3;
            assert_eq!(refused(&select), Refusal::BadSelect);
            let mut long_pad = seed.clone();
            long_pad[at + 4..at + 6].copy_from_slice(&513u16.to_be_bytes());
            assert_eq!(refused(&long_pad), Refusal::PadTooLong);
            assert_eq!(refused(&seed[..at + 5]), Refusal::Closed);
            let mut no_vc = seed.clone();
            no_vc[at - 1] = 1;
            let expected = if no_vc.len() > WINDOW {
                Refusal::NoSync
            } else {
                Refusal::Closed
            };
            assert_eq!(refused(&no_vc), expected);
        }
    }

    #[test]
    fn plaintext_is_refused_when_we_offered_rc4_alone() {
        let seed = &seeds()[0];
        let at = head_at(seed);
        assert_eq!(seed[at..at + 4], PLAINTEXT.to_be_bytes());
        let mut rc4_only = seed.clone();
        rc4_only[0] = 1;
        assert_eq!(refused(&rc4_only), Refusal::BadSelect);
    }

    #[test]
    fn padding_past_the_search_window_is_no_sync() {
        let mut input = vec![0u8, 1];
        input.extend([0x55; MAX_PAD]);
        input.extend(&seeds()[0][1..]);
        assert_eq!(refused(&input), Refusal::NoSync);
    }
}
