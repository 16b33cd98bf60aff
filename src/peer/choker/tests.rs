//! The choker's decisions, checked on hand-made peers and on a simulated clock.

use super::*;

/// `n` interested peers connected long ago, choked, never unchoked, with no traffic.
fn peers(n: u64, base: Instant) -> Vec<Candidate> {
    (0..n)
        .map(|id| Candidate {
            id,
            interested: true,
            download_rate: 0,
            upload_rate: 0,
            snubbed: false,
            connected_at: base,
            unchoked_since: None,
            last_unchoked: None,
            quota_used: false,
        })
        .collect()
}

/// A clock that starts well past every peer's arrival (none counts as new).
fn clock() -> (Instant, Instant) {
    let base = Instant::now();
    (base, base + NEW_PEER * 2)
}

/// Records a decision on the peers as the peer manager does.
fn apply(peers: &mut [Candidate], decision: &Decision, now: Instant) {
    for p in peers {
        if decision.unchoke.contains(&p.id) {
            p.unchoked_since.get_or_insert(now);
            p.last_unchoked = Some(now);
        } else {
            p.unchoked_since = None;
        }
    }
}

fn regular(d: &Decision) -> BTreeSet<u64> {
    let mut r = d.unchoke.clone();
    if let Some(o) = d.optimistic {
        r.remove(&o);
    }
    r
}

#[test]
fn leeching_unchokes_the_best_uploaders_in_the_slots_plus_one_optimistic() {
    let (base, now) = clock();
    let mut ps = peers(8, base);
    for (p, rate) in ps.iter_mut().zip([5, 900, 30, 700, 0, 800, 10, 0]) {
        p.download_rate = rate * 1000;
    }
    ps[2].interested = false;
    let d = Choker::with_seed(1).decide(&ps, false, 3, now);
    assert_eq!(regular(&d), BTreeSet::from([1, 3, 5]));
    let o = d.optimistic.expect("an optimistic unchoke");
    assert!(
        ![1, 2, 3, 5].contains(&o),
        "optimistic {o} is outside the regular set and interested"
    );
    assert_eq!(d.unchoke.len(), 4);
}

#[test]
fn nobody_uninterested_is_unchoked_and_few_peers_all_fit() {
    let (base, now) = clock();
    let mut ps = peers(3, base);
    ps[0].interested = false;
    for seeding in [false, true] {
        let d = Choker::with_seed(2).decide(&ps, seeding, 4, now);
        assert_eq!(d.unchoke, BTreeSet::from([1, 2]));
        assert_eq!(d.optimistic, None, "everyone interested fits the slots");
    }
}

#[test]
fn a_snubbed_peer_gets_no_regular_slot_however_fast_it_was() {
    let (base, now) = clock();
    let mut ps = peers(4, base);
    for (p, rate) in ps.iter_mut().zip([100, 50, 40, 30]) {
        p.download_rate = rate * 1000;
    }
    ps[0].snubbed = true;
    for seed in 0..20 {
        let d = Choker::with_seed(seed).decide(&ps, false, 2, now);
        assert_eq!(regular(&d), BTreeSet::from([1, 2]), "seed {seed}");
    }
}

#[test]
fn the_optimistic_unchoke_stays_30_s_then_moves_to_someone_else() {
    let (base, now) = clock();
    let mut ps = peers(6, base);
    let mut choker = Choker::with_seed(3);
    let d = choker.decide(&ps, false, 2, now);
    apply(&mut ps, &d, now);
    let first = d.optimistic.unwrap();
    for later in [Duration::from_secs(10), Duration::from_secs(29)] {
        let d = choker.decide(&ps, false, 2, now + later);
        apply(&mut ps, &d, now + later);
        assert_eq!(d.optimistic, Some(first));
    }
    let d = choker.decide(&ps, false, 2, now + OPTIMISTIC_EVERY);
    apply(&mut ps, &d, now + OPTIMISTIC_EVERY);
    let next = d.optimistic.unwrap();
    assert_ne!(next, first);
    // A peer that loses interest loses the optimistic slot at once.
    ps[next as usize].interested = false;
    let d = choker.decide(
        &ps,
        false,
        2,
        now + OPTIMISTIC_EVERY + Duration::from_secs(1),
    );
    assert!(d.optimistic.is_some_and(|o| o != next));
}

#[test]
fn the_optimistic_unchoke_favours_new_peers_three_to_one() {
    let (base, now) = clock();
    let mut ps = peers(5, base);
    // Peers 0 and 1 take the regular slots; 2 and 3 are old; 4 just connected.
    ps[0].download_rate = 2000;
    ps[1].download_rate = 1000;
    ps[4].connected_at = now - Duration::from_secs(5);
    let mut picks = [0u32; 5];
    for seed in 0..2000 {
        let d = Choker::with_seed(seed).decide(&ps, false, 2, now);
        picks[d.optimistic.unwrap() as usize] += 1;
    }
    assert_eq!(picks[0] + picks[1], 0);
    // Expected 3/5 for the new peer, 1/5 for each old one.
    assert!(picks[4] > 1050 && picks[4] < 1350, "{picks:?}");
    assert!(picks[2] > 300 && picks[3] > 300, "{picks:?}");
}

#[test]
fn ties_are_broken_the_same_way_for_the_same_seed() {
    let (base, now) = clock();
    let ps = peers(10, base);
    let run = |seed| {
        let mut c = Choker::with_seed(seed);
        (0..5)
            .map(|i| c.decide(&ps, false, 3, now + OPTIMISTIC_EVERY * i))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert!(
        (0..8).any(|s| run(s) != run(7)),
        "the seed decides the ties"
    );
}

#[test]
fn leeching_keeps_the_peers_unchoked_already_when_rates_tie() {
    let (base, now) = clock();
    let mut ps = peers(8, base);
    let mut choker = Choker::with_seed(4);
    let first = choker.decide(&ps, false, 3, now);
    apply(&mut ps, &first, now);
    let again = choker.decide(&ps, false, 3, now + RECHOKE_EVERY);
    assert_eq!(regular(&again), regular(&first), "no churn among equals");
}

/// Seeding for `rounds` rechokes of `slots` among `n` peers that download at `rate(id)` while
/// unchoked; returns how many rounds each peer was unchoked and checks the slots each round.
fn seed_rounds(n: u64, slots: usize, rounds: u32, rate: impl Fn(u64) -> u64) -> Vec<u32> {
    let (base, start) = clock();
    let mut ps = peers(n, base);
    let mut choker = Choker::with_seed(5);
    let mut served = vec![0; n as usize];
    for round in 0..rounds {
        let now = start + RECHOKE_EVERY * round;
        for p in &mut ps {
            p.upload_rate = if p.unchoked_since.is_some() {
                rate(p.id)
            } else {
                0
            };
        }
        let d = choker.decide(&ps, true, slots, now);
        assert!(regular(&d).len() <= slots && d.unchoke.len() <= slots + 1);
        for &id in &d.unchoke {
            served[id as usize] += 1;
        }
        apply(&mut ps, &d, now);
    }
    served
}

#[test]
fn seeding_rotates_so_every_interested_peer_is_served_over_time() {
    // 12 peers, 2 slots plus the optimistic: about 4 slots turn over per 20 s term.
    let served = seed_rounds(12, 2, 20, |_| 50_000);
    assert!(served.iter().all(|&s| s > 0), "{served:?}");
    let (min, max) = (served.iter().min().unwrap(), served.iter().max().unwrap());
    assert!(max - min <= 4, "turns are shared evenly: {served:?}");
}

#[test]
fn seeding_keeps_the_fastest_when_nobody_waits_and_drops_an_idle_peer() {
    let (base, now) = clock();
    let mut ps = peers(3, base);
    let long_ago = now - SEED_TERM * 3;
    for (p, rate) in ps.iter_mut().zip([10, 90, 50]) {
        p.unchoked_since = Some(long_ago);
        p.last_unchoked = Some(long_ago);
        p.upload_rate = rate * 1000;
    }
    // Three past their term, nobody waiting: the two fastest keep the regular slots.
    let d = Choker::with_seed(6).decide(&ps, true, 2, now);
    assert_eq!(regular(&d), BTreeSet::from([1, 2]));
    // An unchoked peer that has taken nothing for a rechoke period yields to a waiting one.
    let mut ps = peers(3, base);
    ps[0].unchoked_since = Some(now - RECHOKE_EVERY);
    ps[1].unchoked_since = Some(now - RECHOKE_EVERY);
    ps[1].upload_rate = 40_000;
    let d = Choker::with_seed(6).decide(&ps, true, 2, now);
    assert_eq!(regular(&d), BTreeSet::from([1, 2]));
}

#[test]
fn between_rechokes_a_peer_unchoked_keeps_its_slot_and_only_free_slots_are_given() {
    let (base, now) = clock();
    let mut ps = peers(6, base);
    let mut choker = Choker::with_seed(7);
    // Peers 0 and 1 hold the two slots; 2 and 3 then turn out to give us far more.
    for p in &mut ps[..2] {
        p.unchoked_since = Some(now - RECHOKE_EVERY);
        p.download_rate = 1_000;
    }
    for p in &mut ps[2..4] {
        p.download_rate = 900_000;
    }
    let d = choker.fill(&ps, false, 2, now);
    assert_eq!(
        regular(&d),
        BTreeSet::from([0, 1]),
        "nobody choked off-period"
    );
    // Peer 1 loses interest: its slot is free and goes to the best waiting peer.
    ps[1].interested = false;
    let d = choker.fill(&ps, false, 2, now);
    let r = regular(&d);
    assert!(r.contains(&0) && r.len() == 2 && !r.contains(&1), "{r:?}");
    assert!(
        r.contains(&2) || r.contains(&3),
        "the free slot by rank: {r:?}"
    );
    // The periodic rechoke ranks everyone again.
    apply(&mut ps, &d, now);
    let d = choker.decide(&ps, false, 2, now + RECHOKE_EVERY);
    assert_eq!(regular(&d), BTreeSet::from([2, 3]));
}

#[test]
fn seeding_a_peer_that_got_its_quota_yields_to_a_waiting_one_before_its_term_ends() {
    let (base, now) = clock();
    let mut ps = peers(3, base);
    for p in &mut ps[..2] {
        p.unchoked_since = Some(now - RECHOKE_EVERY / 2);
        p.last_unchoked = Some(now);
        p.upload_rate = 900_000;
    }
    let d = Choker::with_seed(8).decide(&ps, true, 2, now);
    assert_eq!(regular(&d), BTreeSet::from([0, 1]), "terms still running");
    ps[1].quota_used = true;
    let d = Choker::with_seed(8).decide(&ps, true, 2, now);
    assert_eq!(regular(&d), BTreeSet::from([0, 2]), "peer 2 waited");
}
