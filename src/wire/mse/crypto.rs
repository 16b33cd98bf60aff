//! The cryptography of MSE: the Diffie-Hellman exchange over the protocol's 768-bit prime, the
//! SHA-1 hashes both sides derive from the shared secret, and RC4 with its first 1024 bytes
//! of keystream thrown away.

use super::{KEY_LEN, MseError};
use num_bigint::BigUint;
use rc4::consts::U20;
use rc4::{KeyInit, Rc4, StreamCipher};

/// The MSE prime (the 768-bit MODP group of RFC 2409, "Oakley group 1"); the generator is 2.
const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";
const GENERATOR: u32 = 2;
/// Bytes of private exponent: the specification asks for at least 128 bits, 160 recommended.
const PRIVATE_LEN: usize = 20;
/// Keystream bytes thrown away before use (the start of RC4's keystream leaks its key).
const DISCARD: usize = 1024;

fn prime() -> BigUint {
    BigUint::parse_bytes(PRIME_HEX, 16).expect("the MSE prime is valid hex")
}

/// A big number as exactly [`KEY_LEN`] big-endian bytes (leading zeros kept, as the wire wants).
fn to_wire(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    out[KEY_LEN - bytes.len()..].copy_from_slice(&bytes);
    out
}

/// One side's Diffie-Hellman key pair.
#[derive(Clone)]
pub struct KeyPair {
    private: BigUint,
    /// `2^private mod P`, as sent on the wire.
    pub public: [u8; KEY_LEN],
}

impl KeyPair {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Result<KeyPair, MseError> {
        let mut private = [0u8; PRIVATE_LEN];
        getrandom::fill(&mut private).map_err(|e| MseError::Random(e.to_string()))?;
        Ok(KeyPair::from_private(&private))
    }

    /// The key pair of a given private exponent (big-endian): known-answer tests and fuzzing.
    pub fn from_private(private: &[u8]) -> KeyPair {
        let private = BigUint::from_bytes_be(private);
        let public = to_wire(&BigUint::from(GENERATOR).modpow(&private, &prime()));
        KeyPair { private, public }
    }

    /// The shared secret S from the other side's public key. A key of 0, 1 or P-1 (or past
    /// P) would make S guessable, so it is refused.
    pub fn shared_secret(&self, theirs: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], MseError> {
        let p = prime();
        let y = BigUint::from_bytes_be(theirs);
        if y <= BigUint::from(1u32) || y >= &p - 1u32 {
            return Err(MseError::BadPublicKey);
        }
        Ok(to_wire(&y.modpow(&self.private, &p)))
    }
}

/// SHA-1 of the parts, one after another: the specification's `HASH(a, b, …)`.
pub fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut sha = sha1_smol::Sha1::new();
    for part in parts {
        sha.update(part);
    }
    sha.digest().bytes()
}

/// What the initiator sends to find the torrent without naming it:
/// `HASH('req2', SKEY) xor HASH('req3', S)`.
pub fn obfuscated_info_hash(secret: &[u8], skey: &[u8; 20]) -> [u8; 20] {
    xor(&req2(skey), &hash(&[b"req3", secret]))
}

/// `HASH('req2', SKEY)`: what a responder compares each of its torrents against.
pub fn req2(skey: &[u8; 20]) -> [u8; 20] {
    hash(&[b"req2", skey])
}

/// The bytewise xor of two hashes.
pub fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// One direction's RC4 stream, its first 1024 keystream bytes already spent.
pub struct Cipher(Rc4<U20>);

impl Cipher {
    /// The cipher for what `side` (`b"keyA"` for the initiator, `b"keyB"` for the responder)
    /// sends: keyed with `HASH(side, S, SKEY)`.
    pub fn new(side: &[u8; 4], secret: &[u8], skey: &[u8; 20]) -> Cipher {
        let key = hash(&[side, secret, skey]);
        let mut rc4 = Rc4::new(&key.into());
        rc4.apply_keystream(&mut [0u8; DISCARD]);
        Cipher(rc4)
    }

    /// Encrypts or decrypts (the same thing for a stream cipher) `data` in place.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

/// The two ciphers of one side of a connection.
pub struct Ciphers {
    /// For what this side sends.
    pub send: Cipher,
    /// For what it receives.
    pub receive: Cipher,
}

impl Ciphers {
    /// The ciphers of the initiator (`initiator`) or the responder, from S and the info hash.
    pub fn new(initiator: bool, secret: &[u8], skey: &[u8; 20]) -> Ciphers {
        let a = Cipher::new(b"keyA", secret, skey);
        let b = Cipher::new(b"keyB", secret, skey);
        if initiator {
            Ciphers {
                send: a,
                receive: b,
            }
        } else {
            Ciphers {
                send: b,
                receive: a,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_prime_is_the_768_bit_one() {
        assert_eq!(prime().bits(), 768);
        assert_eq!(to_wire(&prime()).len(), KEY_LEN);
    }

    #[test]
    fn both_sides_derive_the_same_secret() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        assert_ne!(a.public, b.public);
        let s = a.shared_secret(&b.public).unwrap();
        assert_eq!(s, b.shared_secret(&a.public).unwrap());
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let a = KeyPair::generate().unwrap();
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        let p_minus_1 = to_wire(&(prime() - 1u32));
        for key in [[0u8; KEY_LEN], one, p_minus_1, [0xff; KEY_LEN]] {
            assert!(matches!(a.shared_secret(&key), Err(MseError::BadPublicKey)));
        }
    }

    /// Values from an independent implementation (Python's `pow`, `hashlib` and a textbook
    /// RC4), for private keys 01..14 and 65..78 (hex) and an info hash of twenty 0xab bytes.
    #[test]
    fn key_derivation_and_rc4_discard_match_known_answers() {
        let a = KeyPair::from_private(&(1..=20).collect::<Vec<u8>>());
        let b = KeyPair::from_private(&(101..=120).collect::<Vec<u8>>());
        assert_eq!(
            a.public.to_vec(),
            hex(concat!(
                "96e112dab29e8c5272accb9b17b26887ce54a144a4e3b697c7d159b7a817e556",
                "b0918db2b4c658e02a87f7e5fb14b18a553e084cbf3dad2d30f16596ccb982d4",
                "06258c61b30c5c1dae2ddc60bdbd48d79896312aad63238c39e1a633821eb693"
            ))
        );
        let s = a.shared_secret(&b.public).unwrap();
        let skey = [0xab; 20];
        assert_eq!(
            hash(&[&s]).to_vec(),
            hex("8a347c13acc42e0841bfae5ef1b2eb4d0a484769")
        );
        assert_eq!(
            hash(&[b"req1", &s]).to_vec(),
            hex("78fffb0f23055a793ff7609f359e04e383ec3505")
        );
        assert_eq!(
            obfuscated_info_hash(&s, &skey).to_vec(),
            hex("e5fbae2f45ff1faeeb3b4df70d17236225f91856")
        );
        let mut initiator = Ciphers::new(true, &s, &skey);
        let mut sent = [0u8; 16];
        initiator.send.apply(&mut sent);
        assert_eq!(sent.to_vec(), hex("797d6a1321ba40078573efd44dd10e2c"));
        let mut received = [0u8; 16];
        initiator.receive.apply(&mut received);
        assert_eq!(received.to_vec(), hex("7e728a8530bb77a2a6ca8d34f524b133"));
        // The responder's ciphers are the initiator's, crossed.
        let mut responder = Ciphers::new(false, &s, &skey);
        responder.receive.apply(&mut sent);
        assert_eq!(sent, [0u8; 16]);
    }
}
