//! The fast extension (BEP 6) on one connection: what changes when both handshakes set its
//! bit, as pure decisions the connection loop follows.
//!
//! - **Opening.** `have all` / `have none` replace an all-ones or empty `bitfield`
//!   ([`opening`]).
//! - **Nothing is dropped silently.** A request we will not serve (the peer is choked, or we
//!   lack the piece) is answered with `reject` ([`answer`]); when we choke the peer, its queued
//!   requests are rejected, except those for its allowed-fast pieces; a `cancel` of a queued
//!   request is answered with `reject` too, so the peer always knows where each request stands.
//! - **A choke cancels nothing.** When a fast peer chokes us, our outstanding requests stay
//!   valid until it serves or rejects them; a piece of ours then goes back to the picker once
//!   none of its blocks is still requested (the connection's `release_stalled`), unless the
//!   peer allows it fast.
//! - **Allowed fast.** Each side tells the other a few pieces it serves even while choking
//!   ([`Fast::grant`], the canonical set of [`allowed_fast_set`]). We serve a choked peer's
//!   requests for ours, and ask a peer that chokes us for the ones it offered.
//! - **A reject from a peer that unchokes us** (an initial seeder refusing a second copy
//!   during its first lap, see [`crate::peer::suggest`]): the piece goes to other peers, and
//!   is not asked of this peer again for [`REFUSED_FOR`] ([`Fast::askable`]).
//!
//!   `suggest` breaks ties between equally rare pieces, and a seeder sends it to deal out
//!   pieces it has not sent yet ([`crate::peer::suggest`]).
//!
//! Without the extension on both sides, a connection behaves as in BEP 3, and fast messages
//! a peer sends anyway are ignored.

use crate::bitfield::Bitfield;
use crate::wire::Message;
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most pieces we let a peer fetch while we choke it (BEP 6 shows 10; libtorrent sends 5).
pub const ALLOWED_FAST: usize = 10;

/// How long a piece a peer refused while unchoking us is not asked of it again.
pub const REFUSED_FOR: Duration = Duration::from_secs(5);

/// How many allowed-fast pieces to grant on a torrent of `pieces`: [`ALLOWED_FAST`], but no
/// more than a tenth of the torrent, so that choking still means something on a small one.
pub fn set_size(pieces: usize) -> usize {
    ALLOWED_FAST.min(pieces / 10)
}

/// The canonical allowed-fast set of BEP 6: the first `k` distinct piece indices drawn from
/// SHA-1 chains over the peer's /24 (for IPv6, its /64) and the info hash, so any client
/// computes the same set for the same peer and a peer gains nothing by reconnecting.
/// Empty when `k` is 0 or not below `pieces` (the draw could not end).
pub fn allowed_fast_set(ip: IpAddr, info_hash: &[u8; 20], pieces: u32, k: usize) -> Vec<u32> {
    let mut set = Vec::with_capacity(k);
    if k == 0 || k as u64 >= pieces as u64 {
        return set;
    }
    let mut x = match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            vec![o[0], o[1], o[2], 0]
        }
        IpAddr::V6(v6) => v6.octets()[..8].to_vec(),
    };
    x.extend_from_slice(info_hash);
    while set.len() < k {
        x = sha1_smol::Sha1::from(&x).digest().bytes().to_vec();
        for word in x.chunks_exact(4) {
            if set.len() == k {
                break;
            }
            let index = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) % pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
    }
    set
}

/// The message that tells a peer what we have when the connection opens, if any.
pub fn opening(fast: bool, have: &Bitfield) -> Option<Message> {
    if fast && have.is_complete() {
        Some(Message::HaveAll)
    } else if fast && have.count() == 0 {
        Some(Message::HaveNone)
    } else if have.count() > 0 {
        Some(Message::Bitfield(have.as_bytes().to_vec()))
    } else {
        None
    }
}

/// What to do with a valid request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Queue the block.
    Serve,
    /// Tell the peer we will not serve it.
    Reject,
    /// Drop it without a word (BEP 3 peers expect no answer).
    Ignore,
}

/// Whether to serve a request for a piece we `have` (or not) from a peer we are `choking` (or
/// not), when the piece is one we `granted` it as allowed fast.
pub fn answer(fast: bool, choking: bool, have: bool, granted: bool) -> Answer {
    match (have && (!choking || (fast && granted)), fast) {
        (true, _) => Answer::Serve,
        (false, true) => Answer::Reject,
        (false, false) => Answer::Ignore,
    }
}

/// The fast extension's state on one connection.
#[derive(Debug)]
pub struct Fast {
    /// Both handshakes set the bit.
    enabled: bool,
    /// The pieces we serve this peer while choking it.
    granted: Vec<u32>,
    /// The pieces the peer serves us while it chokes us.
    offered: Bitfield,
    /// Pieces the peer rejected while unchoking us, since `refused_since`.
    refused: Bitfield,
    refused_since: Option<Instant>,
}

impl Fast {
    /// The state of a connection on a torrent of `pieces`, with the extension `enabled` or not.
    pub fn new(enabled: bool, pieces: usize) -> Fast {
        Fast {
            enabled,
            granted: Vec::new(),
            offered: Bitfield::new(pieces),
            refused: Bitfield::new(pieces),
            refused_since: None,
        }
    }

    /// Whether both sides speak the extension.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Computes the pieces the peer at `ip` may fetch while choked and returns the
    /// `allowed fast` messages that tell it (none without the extension). A `seeding` peer
    /// grants none: its upload is what the whole swarm waits on, and a set fixed by the peer's
    /// address would send, outside the choker's slots, pieces it has sent to others already
    /// rather than the ones it deals (in a swarm of 8 leechers, half the seeder's duplicate
    /// pieces before every piece had left it once were allowed-fast ones).
    pub fn grant(&mut self, ip: IpAddr, info_hash: &[u8; 20], seeding: bool) -> Vec<Message> {
        if !self.enabled || seeding {
            return Vec::new();
        }
        let pieces = self.offered.len();
        self.granted = allowed_fast_set(ip, info_hash, pieces as u32, set_size(pieces));
        self.granted
            .iter()
            .map(|&i| Message::AllowedFast(i))
            .collect()
    }

    /// Whether we serve requests for piece `index` while choking the peer.
    pub fn granted(&self, index: u32) -> bool {
        self.enabled && self.granted.contains(&index)
    }

    /// The peer offered piece `index` as allowed fast; ignored past the torrent's end or
    /// without the extension.
    pub fn on_allowed_fast(&mut self, index: u32) {
        if self.enabled && (index as usize) < self.offered.len() {
            self.offered.set(index as usize);
        }
    }

    /// Whether the peer serves us piece `index` while it chokes us.
    pub fn offered(&self, index: u32) -> bool {
        self.offered.get(index as usize)
    }

    /// The peer, unchoking us, rejected a request for piece `index` at `now`.
    pub fn on_refused(&mut self, index: u32, now: Instant) {
        self.refused_since.get_or_insert(now);
        self.refused.set(index as usize);
    }

    /// Of the pieces in `peer_has`, what we may ask the peer for at `now`: while it is
    /// `choking` us, those it offered as allowed fast (`None` when none); otherwise all but
    /// those it refused less than [`REFUSED_FOR`] ago (counted from the first of them).
    pub fn askable<'a>(
        &mut self,
        peer_has: &'a Bitfield,
        choking: bool,
        now: Instant,
    ) -> Option<Cow<'a, Bitfield>> {
        if choking {
            return self.offered_of(peer_has).map(Cow::Owned);
        }
        let Some(since) = self.refused_since else {
            return Some(Cow::Borrowed(peer_has));
        };
        if now.saturating_duration_since(since) >= REFUSED_FOR {
            self.refused = Bitfield::new(self.refused.len());
            self.refused_since = None;
            return Some(Cow::Borrowed(peer_has));
        }
        let bytes: Vec<u8> = (peer_has.as_bytes().iter().zip(self.refused.as_bytes()))
            .map(|(has, refused)| has & !refused)
            .collect();
        Bitfield::from_bytes(&bytes, peer_has.len())
            .ok()
            .map(Cow::Owned)
    }

    /// Of the pieces in `peer_has`, those it offered as allowed fast: what we may ask a peer
    /// that chokes us for. `None` when it offered none of them.
    fn offered_of(&self, peer_has: &Bitfield) -> Option<Bitfield> {
        let mut out = Bitfield::new(self.offered.len());
        for i in self.offered.ones().filter(|&i| peer_has.get(i)) {
            out.set(i);
        }
        (out.count() > 0).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BEP 6's own example: 80.4.4.200, an info hash of twenty 0xAA bytes, 1313 pieces.
    #[test]
    fn the_allowed_fast_set_matches_the_beps_example() {
        let ip: IpAddr = "80.4.4.200".parse().unwrap();
        let seven = allowed_fast_set(ip, &[0xAA; 20], 1313, 7);
        assert_eq!(seven, [1059, 431, 808, 1217, 287, 376, 1188]);
        let nine = allowed_fast_set(ip, &[0xAA; 20], 1313, 9);
        assert_eq!(nine, [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
    }

    #[test]
    fn the_set_depends_on_the_24_bit_prefix_only() {
        let h = [0x11; 20];
        let a = allowed_fast_set("10.1.2.3".parse().unwrap(), &h, 500, 10);
        let same_net = allowed_fast_set("10.1.2.250".parse().unwrap(), &h, 500, 10);
        let mapped = allowed_fast_set("::ffff:10.1.2.9".parse().unwrap(), &h, 500, 10);
        let other_net = allowed_fast_set("10.1.3.3".parse().unwrap(), &h, 500, 10);
        assert_eq!(a, same_net);
        assert_eq!(
            a, mapped,
            "an IPv4 peer on a dual-stack socket is the same peer"
        );
        assert_ne!(a, other_net);
        assert_eq!(a.len(), 10);
        let mut distinct = a.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
        assert!(a.iter().all(|&i| i < 500));
        let v6 = allowed_fast_set("2001:db8::1".parse().unwrap(), &h, 500, 10);
        assert_eq!(v6.len(), 10);
    }

    #[test]
    fn no_set_when_it_would_cover_the_torrent() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(allowed_fast_set(ip, &[1; 20], 5, 5).is_empty());
        assert!(allowed_fast_set(ip, &[1; 20], 0, 3).is_empty());
        assert!(allowed_fast_set(ip, &[1; 20], 100, 0).is_empty());
        assert_eq!(set_size(9), 0);
        assert_eq!(set_size(40), 4);
        assert_eq!(set_size(5000), ALLOWED_FAST);
    }

    #[test]
    fn the_opening_says_have_all_or_have_none_only_to_fast_peers() {
        let all = Bitfield::full(12);
        let none = Bitfield::new(12);
        let some = Bitfield::with_pieces(12, &[3]);
        assert_eq!(opening(true, &all), Some(Message::HaveAll));
        assert_eq!(opening(true, &none), Some(Message::HaveNone));
        assert_eq!(
            opening(true, &some),
            Some(Message::Bitfield(some.as_bytes().to_vec()))
        );
        assert_eq!(
            opening(false, &all),
            Some(Message::Bitfield(all.as_bytes().to_vec()))
        );
        assert_eq!(opening(false, &none), None);
    }

    #[test]
    fn requests_are_served_rejected_or_ignored() {
        use Answer::*;
        // (fast, choking, have, granted)
        assert_eq!(answer(true, false, true, false), Serve);
        assert_eq!(answer(false, false, true, false), Serve);
        assert_eq!(answer(true, true, true, true), Serve, "allowed fast");
        assert_eq!(answer(true, true, true, false), Reject, "choked");
        assert_eq!(answer(true, false, false, false), Reject, "we lack it");
        assert_eq!(answer(true, true, false, true), Reject, "granted, lacked");
        assert_eq!(answer(false, true, true, true), Ignore, "BEP 3 choked");
        assert_eq!(answer(false, false, false, false), Ignore, "BEP 3 lacked");
    }

    #[test]
    fn grants_and_offers_need_the_extension_and_stay_in_bounds() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut plain = Fast::new(false, 100);
        assert!(plain.grant(ip, &[2; 20], false).is_empty());
        plain.on_allowed_fast(4);
        assert!(!plain.offered(4));
        assert_eq!(plain.offered_of(&Bitfield::full(100)), None);

        let mut seeder = Fast::new(true, 100);
        assert!(
            seeder.grant(ip, &[2; 20], true).is_empty(),
            "a seeder grants none"
        );
        assert!(!seeder.granted(0) && seeder.enabled());

        let mut fast = Fast::new(true, 100);
        let granted = fast.grant(ip, &[2; 20], false);
        assert_eq!(granted.len(), 10);
        for m in &granted {
            let Message::AllowedFast(i) = *m else {
                panic!("{m:?}")
            };
            assert!(fast.granted(i));
        }
        fast.on_allowed_fast(4);
        fast.on_allowed_fast(90);
        fast.on_allowed_fast(100);
        fast.on_allowed_fast(u32::MAX);
        assert!(fast.offered(4) && fast.offered(90) && !fast.offered(100));
        let has = Bitfield::with_pieces(100, &[4, 5]);
        assert_eq!(
            fast.offered_of(&has),
            Some(Bitfield::with_pieces(100, &[4]))
        );
        assert_eq!(fast.offered_of(&Bitfield::with_pieces(100, &[5])), None);
    }

    #[test]
    fn a_peer_is_asked_for_what_it_offers_while_choking_and_not_for_what_it_refused_lately() {
        let t0 = Instant::now();
        let all = Bitfield::full(20);
        let mut fast = Fast::new(true, 20);
        assert_eq!(fast.askable(&all, true, t0), None, "choking, offers none");
        fast.on_allowed_fast(3);
        let offered = fast.askable(&all, true, t0).unwrap();
        assert_eq!(offered.ones().collect::<Vec<_>>(), [3]);
        assert!(matches!(
            fast.askable(&all, false, t0),
            Some(Cow::Borrowed(_))
        ));
        fast.on_refused(5, t0);
        fast.on_refused(19, t0 + Duration::from_secs(1));
        let left = fast
            .askable(&all, false, t0 + Duration::from_secs(2))
            .unwrap();
        assert_eq!(left.count(), 18);
        assert!(!left.get(5) && !left.get(19) && left.get(4));
        // Counted from the first refusal: after REFUSED_FOR, everything may be asked again.
        let later = fast.askable(&all, false, t0 + REFUSED_FOR).unwrap();
        assert_eq!(later.count(), 20);
    }
}
