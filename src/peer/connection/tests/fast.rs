//! The connection loop with a peer that speaks the fast extension (BEP 6), and a BEP 3 peer
//! that sends its messages anyway.

use super::*;
use crate::peer::fast::{allowed_fast_set, set_size};

/// Runs a connection to the usual remote, which set the fast extension's bit.
fn converse_fast<'a>(
    torrent: &TorrentState,
    script: Vec<Step<'a>>,
) -> (Result<(), ConnError>, Vec<Traffic>) {
    let theirs = plain_handshake(torrent, THEIR_ID).with_fast();
    talk(torrent, remote(), &theirs, script)
}

fn reject(index: u32, begin: u32, length: u32) -> Message {
    Message::Reject {
        index,
        begin,
        length,
    }
}

/// The allowed-fast set we grant the usual remote on a torrent of `pieces`.
fn granted(f: &Fixture, pieces: usize) -> Vec<u32> {
    let info_hash = &f.state.meta.info_hash.0;
    allowed_fast_set(remote().ip(), info_hash, pieces as u32, set_size(pieces))
}

#[test]
fn a_fast_peer_hears_have_all_or_have_none_and_its_allowed_fast_set() {
    let seeder = Fixture::new(3, &[0, 1, 2]);
    let (result, traffic) = converse_fast(&seeder.state, vec![]);
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        traffic,
        [Out(Message::HaveAll)],
        "3 pieces: no allowed fast"
    );

    let empty = Fixture::new(30, &[]);
    let (result, traffic) = converse_fast(&empty.state, vec![]);
    assert!(closed(&result), "{result:?}");
    let mut expected = vec![Out(Message::HaveNone)];
    let set = granted(&empty, 30);
    assert_eq!(set.len(), 3);
    expected.extend(set.iter().map(|&i| Out(Message::AllowedFast(i))));
    assert_eq!(traffic, expected);
}

#[test]
fn a_choked_fast_peer_gets_its_allowed_fast_pieces_and_rejects_for_the_rest() {
    let pieces = 20;
    let probe = Fixture::new(pieces, &[]);
    let set = granted(&probe, pieces);
    assert_eq!(set.len(), 2);
    let (allowed, lacked) = (set[0], set[1]);
    let other = (0..pieces as u32).find(|i| !set.contains(i)).unwrap();
    let have: Vec<u32> = (0..pieces as u32).filter(|&i| i != lacked).collect();
    let f = Fixture::new(pieces, &have);
    let (result, traffic) = converse_fast(
        &f.state,
        vec![
            send(request(allowed, 0, 100)),
            send(request(other, 0, 100)),
            send(request(lacked, 0, 100)),
        ],
    );
    assert!(closed(&result), "{result:?}");
    let opening = [
        Out(bitfield(pieces, &have)),
        Out(Message::AllowedFast(allowed)),
        Out(Message::AllowedFast(lacked)),
    ];
    assert_eq!(traffic[..3], opening);
    assert_eq!(
        traffic[3..],
        [
            // Choked, but the piece is allowed fast: served.
            In(request(allowed, 0, 100)),
            Out(block(allowed, 0, &f.piece(allowed)[..100])),
            // Choked: rejected, not dropped in silence.
            In(request(other, 0, 100)),
            Out(reject(other, 0, 100)),
            // Allowed fast, but we lack it.
            In(request(lacked, 0, 100)),
            Out(reject(lacked, 0, 100)),
        ]
    );
}

#[test]
fn a_fast_peers_choke_keeps_our_requests_until_served_or_rejected() {
    let f = Fixture::new(3, &[]);
    let (mut script, mut expected) = offer_piece_1();
    expected.insert(0, Out(Message::HaveNone));
    script.extend([
        send(Message::Choke),
        // The request is still valid: the piece stays ours.
        Step::Elsewhere(Box::new(|| {
            assert_eq!(f.state.picker.take(&only_1(), &[]), None);
        })),
        // Served after all, though the peer chokes us.
        send(block(1, 0, f.piece(1))),
    ]);
    expected.extend([
        In(Message::Choke),
        In(block(1, 0, f.piece(1))),
        Out(Message::NotInterested),
    ]);
    let (result, traffic) = converse_fast(&f.state, script);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, expected);
    assert!(
        f.state.picker.has(1),
        "the block that came after the choke was stored"
    );
}

#[test]
fn a_reject_while_choked_gives_the_piece_up_once_nothing_of_it_is_requested() {
    let f = Fixture::new(3, &[]);
    let (mut script, mut expected) = offer_piece_1();
    expected.insert(0, Out(Message::HaveNone));
    script.extend([
        send(Message::Choke),
        // Choked: once nothing of it is requested, the piece goes to other peers at once.
        send(reject(1, 0, PIECE)),
        Step::Elsewhere(Box::new(|| {
            assert_eq!(f.state.picker.take(&only_1(), &[]), Some(1));
            f.state.picker.put_back(1);
        })),
        send(Message::Unchoke),
    ]);
    expected.extend([
        In(Message::Choke),
        In(reject(1, 0, PIECE)),
        In(Message::Unchoke),
        Out(request(1, 0, PIECE)),
    ]);
    let (result, traffic) = converse_fast(&f.state, script);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, expected);
}

#[test]
fn a_reject_while_unchoked_sends_the_piece_to_other_peers_and_not_back_for_a_while() {
    let f = Fixture::new(3, &[]);
    let (mut script, mut expected) = offer_piece_1();
    expected.insert(0, Out(Message::HaveNone));
    script.extend([
        // Unchoked, yet refused (an initial seeder's first lap): the piece is free at once.
        send(reject(1, 0, PIECE)),
        Step::Elsewhere(Box::new(|| {
            assert_eq!(f.state.picker.take(&only_1(), &[]), Some(1));
            f.state.picker.put_back(1);
        })),
        // This peer is not asked for it again (for REFUSED_FOR), however often we look.
        quiet(),
        send(Message::KeepAlive),
        quiet(),
    ]);
    expected.extend([In(reject(1, 0, PIECE)), In(Message::KeepAlive)]);
    let (result, traffic) = converse_fast(&f.state, script);
    assert!(closed(&result), "{result:?}");
    assert_eq!(traffic, expected);
}

#[test]
fn an_initial_seeder_refuses_a_piece_another_peer_started_during_its_first_lap() {
    let f = Fixture::new(2, &[0, 1]);
    // Another peer started on piece 0 just now; piece 1 never left.
    assert!(f.state.dealer.claim(0, Instant::now()));
    let (result, traffic) = converse_fast(
        &f.state,
        vec![
            send(Message::Interested),
            rechoke(&f.state),
            send(request(0, 0, 100)),
            send(request(1, 0, 100)),
            // Piece 1 is started with us: the rest of it is served too, though the first
            // lap is over only now.
            send(request(1, 100, 100)),
            // The lap is over: a second copy of piece 0 is served.
            send(request(0, 0, 100)),
        ],
    );
    assert!(closed(&result), "{result:?}");
    // Which pieces the seeder suggests (deals), and in which order, is its own random order.
    let traffic: Vec<Traffic> = traffic
        .into_iter()
        .filter(|t| !matches!(t, Out(Message::Suggest(_))))
        .collect();
    assert_eq!(
        traffic,
        [
            Out(Message::HaveAll),
            In(Message::Interested),
            Out(Message::Unchoke),
            In(request(0, 0, 100)),
            Out(reject(0, 0, 100)),
            In(request(1, 0, 100)),
            Out(block(1, 0, &f.piece(1)[..100])),
            In(request(1, 100, 100)),
            Out(block(1, 100, &f.piece(1)[100..200])),
            In(request(0, 0, 100)),
            Out(block(0, 0, &f.piece(0)[..100])),
        ]
    );
}

#[test]
fn a_peer_that_chokes_us_is_asked_for_the_pieces_it_allows_fast() {
    let f = Fixture::new(3, &[]);
    let (result, traffic) = converse_fast(
        &f.state,
        vec![
            send(Message::HaveAll),
            send(Message::AllowedFast(2)),
            // Past the end: ignored.
            send(Message::AllowedFast(7)),
            quiet(),
        ],
    );
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        traffic,
        [
            Out(Message::HaveNone),
            In(Message::HaveAll),
            Out(Message::Interested),
            In(Message::AllowedFast(2)),
            // Still choked, but piece 2 is allowed fast; pieces 0 and 1 are not asked for.
            Out(request(2, 0, PIECE / 2)),
            In(Message::AllowedFast(7)),
        ]
    );
}

#[test]
fn fast_messages_from_a_bep_3_peer_are_ignored() {
    let f = Fixture::new(3, &[]);
    let (result, traffic) = converse(
        &f.state,
        vec![
            send(Message::HaveAll),
            send(Message::AllowedFast(1)),
            send(Message::Suggest(1)),
            send(bitfield(3, &[1])),
            send(Message::Unchoke),
            send(reject(1, 0, PIECE)),
            quiet(),
        ],
    );
    assert!(closed(&result), "{result:?}");
    assert_eq!(
        traffic,
        [
            In(Message::HaveAll),
            In(Message::AllowedFast(1)),
            In(Message::Suggest(1)),
            In(bitfield(3, &[1])),
            Out(Message::Interested),
            In(Message::Unchoke),
            Out(request(1, 0, PIECE)),
            // Not a fast peer: a reject means nothing, the request stands.
            In(reject(1, 0, PIECE)),
        ]
    );
}
