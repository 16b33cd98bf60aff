//! The write tokens of BEP 5: a `get_peers` answer carries a token that the asker must hand
//! back in `announce_peer`, proving it owns the address it announces from. A token is a hash
//! of the asker's IP and a secret that changes every [`ROTATE_EVERY`]; tokens made with the
//! previous secret are still accepted, so a token lives between one and two periods.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often the secret changes.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Bytes of a token.
const TOKEN_LEN: usize = 8;

/// The current and previous secrets.
#[derive(Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated: Instant,
}

fn secret() -> [u8; 16] {
    let mut s = [0u8; 16];
    s.iter_mut().for_each(|b| *b = fastrand::u8(..));
    s
}

fn make(secret: &[u8; 16], ip: IpAddr) -> Vec<u8> {
    let mut h = sha1_smol::Sha1::new();
    h.update(secret);
    match ip {
        IpAddr::V4(v4) => h.update(&v4.octets()),
        IpAddr::V6(v6) => h.update(&v6.octets()),
    }
    h.digest().bytes()[..TOKEN_LEN].to_vec()
}

impl Tokens {
    /// Fresh secrets.
    pub fn new(now: Instant) -> Tokens {
        Tokens {
            current: secret(),
            previous: secret(),
            rotated: now,
        }
    }

    /// Changes the secret if it is due.
    pub fn rotate_if_due(&mut self, now: Instant) {
        if now.duration_since(self.rotated) >= ROTATE_EVERY {
            self.previous = self.current;
            self.current = secret();
            self.rotated = now;
        }
    }

    /// The token for a node at `ip`.
    pub fn issue(&self, ip: IpAddr) -> Vec<u8> {
        make(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` with the current or the previous secret.
    pub fn check(&self, token: &[u8], ip: IpAddr) -> bool {
        token == make(&self.current, ip) || token == make(&self.previous, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_tied_to_the_ip_and_survives_one_rotation() {
        let start = Instant::now();
        let mut t = Tokens::new(start);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let token = t.issue(ip);
        assert!(t.check(&token, ip));
        assert!(!t.check(&token, other));
        assert!(!t.check(b"forged!!", ip));
        t.rotate_if_due(start + ROTATE_EVERY / 2);
        assert_eq!(t.issue(ip), token, "not due yet");
        t.rotate_if_due(start + ROTATE_EVERY);
        assert!(t.check(&token, ip), "previous secret still accepted");
        t.rotate_if_due(start + ROTATE_EVERY * 2);
        assert!(!t.check(&token, ip), "two rotations later it expired");
    }
}
