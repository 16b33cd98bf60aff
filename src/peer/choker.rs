//! Which peers we upload to: the choker, a pure function of the connected peers' state (fed
//! by the [`peer_manager`](crate::peer::peer_manager), which applies its decisions).
//!
//! A fixed number of upload slots ([`Choker::decide`]'s `slots`) go to *regular* unchokes, and
//! one more slot to an *optimistic* unchoke:
//!
//! - **Leeching** (tit-for-tat, BEP 3): the interested peers that give us the most (download
//!   rate over the last [`RATE_WINDOW`]) get the regular slots; a snubbed peer (our requests to
//!   it go unanswered) earns none. Ties go to the peer unchoked already, then to chance.
//! - **Seeding** (libtorrent's "fastest upload", with round-robin terms so every interested
//!   peer is served over time): a peer unchoked less than [`SEED_TERM`] ago keeps its slot
//!   while it downloads and until it was sent [`SEED_QUOTA_PIECES`]; waiting peers come next, the one served longest ago first; peers whose
//!   term ran out (or that took nothing for a whole [`RECHOKE_EVERY`]) come last, fastest
//!   first, so they keep slots only when nobody else waits.
//! - **Optimistic**: one interested peer outside the regular set, rotated every
//!   [`OPTIMISTIC_EVERY`]. It is how a new peer with nothing to offer gets its first pieces and
//!   how a faster partner is found; as in BEP 3, peers connected less than [`NEW_PEER`] ago are
//!   three times as likely to be picked.
//!
//! Chance comes from the choker's own seeded generator, so a decision is reproducible.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often the peer manager rechokes when nothing else asks it to.
pub const RECHOKE_EVERY: Duration = Duration::from_secs(10);
/// How long the optimistic unchoke stays with one peer.
pub const OPTIMISTIC_EVERY: Duration = Duration::from_secs(30);
/// The window over which the rates the choker ranks by are measured.
pub const RATE_WINDOW: Duration = Duration::from_secs(20);
/// While seeding, how long an unchoke lasts before waiting peers take precedence.
pub const SEED_TERM: Duration = Duration::from_secs(20);
/// While seeding, a term also ends once the peer was sent this many pieces (libtorrent's
/// `seeding_piece_quota`): on an upload fast for its pieces, the pieces then spread to every
/// interested peer in turn within seconds, not to the peers unchoked first for a whole
/// [`SEED_TERM`].
pub const SEED_QUOTA_PIECES: u64 = 20;
/// Peers connected less than this long ago are favoured for the optimistic unchoke.
pub const NEW_PEER: Duration = Duration::from_secs(60);
/// Upload slots when not told otherwise (libtorrent and Transmission use 4 per torrent too).
pub const DEFAULT_UPLOAD_SLOTS: usize = 4;

/// What the choker knows of one connected peer.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The peer's key (stable while it is connected).
    pub id: u64,
    /// It told us it is interested.
    pub interested: bool,
    /// Bytes per second it sent us (blocks), over [`RATE_WINDOW`].
    pub download_rate: u64,
    /// Bytes per second we sent it (blocks), over [`RATE_WINDOW`].
    pub upload_rate: u64,
    /// It leaves our requests unanswered.
    pub snubbed: bool,
    /// When the connection was made.
    pub connected_at: Instant,
    /// Since when we unchoke it (`None` while choked).
    pub unchoked_since: Option<Instant>,
    /// When we last unchoked it (`None`: never).
    pub last_unchoked: Option<Instant>,
    /// Unchoked, it was sent [`SEED_QUOTA_PIECES`] pieces since its unchoke.
    pub quota_used: bool,
}

/// The peers to unchoke.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Every peer to unchoke, the optimistic one included.
    pub unchoke: BTreeSet<u64>,
    /// The optimistic unchoke, if there is one.
    pub optimistic: Option<u64>,
}

/// The choker's memory between decisions: the optimistic unchoke and its generator.
pub struct Choker {
    optimistic: Option<(u64, Instant)>,
    rng: fastrand::Rng,
}

impl Choker {
    /// A choker whose tie-breaks and optimistic picks follow `seed`.
    pub fn with_seed(seed: u64) -> Choker {
        Choker {
            optimistic: None,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Decides which of `peers` to unchoke at `now`: `slots` regular unchokes plus one
    /// optimistic, by the leeching or the `seeding` rules (see the module doc). The periodic
    /// rechoke, every [`RECHOKE_EVERY`].
    pub fn decide(
        &mut self,
        peers: &[Candidate],
        seeding: bool,
        slots: usize,
        now: Instant,
    ) -> Decision {
        self.choose(peers, seeding, slots, now, false)
    }

    /// Between periodic rechokes (a peer became interested or uninterested, or left): every
    /// interested peer unchoked now keeps its slot, and only the free slots are given, by the
    /// same ranking as [`decide`](Self::decide). Choking a peer throws away the requests it has
    /// queued with us and their round trip; peers' interest flips many times a second in a
    /// busy swarm, so choking on each flip spends the upload on refilling pipelines.
    pub fn fill(
        &mut self,
        peers: &[Candidate],
        seeding: bool,
        slots: usize,
        now: Instant,
    ) -> Decision {
        self.choose(peers, seeding, slots, now, true)
    }

    fn choose(
        &mut self,
        peers: &[Candidate],
        seeding: bool,
        slots: usize,
        now: Instant,
        keep_current: bool,
    ) -> Decision {
        // Shuffled first so the stable sorts below break the remaining ties by chance.
        let mut order: Vec<&Candidate> = peers.iter().filter(|p| p.interested).collect();
        self.rng.shuffle(&mut order);
        // The optimistic peer holds no regular slot: it competes for one as if choked.
        let optimistic = self.optimistic.map(|(id, _)| id);
        let regular_since = |p: &Candidate| p.unchoked_since.filter(|_| Some(p.id) != optimistic);
        if seeding {
            order.sort_by_key(|p| seeding_rank(p, regular_since(p), now));
        } else {
            order.retain(|p| !p.snubbed);
            order.sort_by_key(|p| {
                (
                    std::cmp::Reverse(p.download_rate),
                    regular_since(p).is_none(),
                )
            });
        }
        if keep_current {
            // Stable: the peers unchoked now first, each group in rank order.
            order.sort_by_key(|p| regular_since(p).is_none());
        }
        let mut unchoke: BTreeSet<u64> = order.iter().take(slots).map(|p| p.id).collect();
        let optimistic = self.optimistic(peers, &unchoke, now);
        unchoke.extend(optimistic);
        Decision {
            unchoke,
            optimistic,
        }
    }

    /// Keeps the optimistic unchoke for [`OPTIMISTIC_EVERY`] while its peer is interested and
    /// outside the regular set; otherwise picks another, new peers weighing three times more.
    fn optimistic(
        &mut self,
        peers: &[Candidate],
        regular: &BTreeSet<u64>,
        now: Instant,
    ) -> Option<u64> {
        let eligible = |p: &&Candidate| p.interested && !regular.contains(&p.id);
        if let Some((id, since)) = self.optimistic {
            let still = peers.iter().filter(eligible).any(|p| p.id == id);
            if still && now.saturating_duration_since(since) < OPTIMISTIC_EVERY {
                return Some(id);
            }
        }
        let previous = self.optimistic.map(|(id, _)| id);
        let mut pool: Vec<&Candidate> = peers.iter().filter(eligible).collect();
        if pool.len() > 1 {
            // Rotating means someone else, when there is someone else.
            pool.retain(|p| Some(p.id) != previous);
        }
        let weight = |p: &Candidate| {
            if now.saturating_duration_since(p.connected_at) < NEW_PEER {
                3
            } else {
                1
            }
        };
        let total: u32 = pool.iter().map(|p| weight(p)).sum();
        self.optimistic = None;
        if total == 0 {
            return None;
        }
        let mut ticket = self.rng.u32(..total);
        let chosen = pool.into_iter().find(|p| {
            let w = weight(p);
            if ticket < w {
                return true;
            }
            ticket -= w;
            false
        })?;
        self.optimistic = Some((chosen.id, now));
        Some(chosen.id)
    }
}

/// Where an interested peer stands for a regular slot while seeding: lower is better.
/// `unchoked_since` is when its regular unchoke began.
fn seeding_rank(
    p: &Candidate,
    unchoked_since: Option<Instant>,
    now: Instant,
) -> (u8, std::cmp::Reverse<u64>, Duration) {
    let since = |t: Option<Instant>| t.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
    let fastest = std::cmp::Reverse(p.upload_rate);
    match unchoked_since {
        Some(t) => {
            let held = now.saturating_duration_since(t);
            let idle = held >= RECHOKE_EVERY && p.upload_rate == 0;
            if held < SEED_TERM && !idle && !p.quota_used {
                (0, fastest, Duration::ZERO)
            } else {
                (2, fastest, Duration::ZERO)
            }
        }
        // Waiting: whoever was served longest ago (or never) first.
        None => (
            1,
            std::cmp::Reverse(0),
            Duration::MAX - since(p.last_unchoked),
        ),
    }
}

#[cfg(test)]
mod tests;
