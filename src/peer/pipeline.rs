//! The request pipeline of one connection: which blocks of which pieces are asked for, which
//! have arrived, and when a piece is whole and ready to verify.
//!
//! What counts is the number of requests in flight, not the number of pieces: the connection
//! keeps [`Window::target`] requests outstanding (sized from the peer's measured rate, see
//! [`window`](crate::peer::window)), asking for the blocks of the pieces it holds oldest piece
//! first, so partial pieces finish before new ones start, and takes a new piece from the
//! picker only when the blocks left to ask for in the pieces it holds cannot fill the window.
//! With 16 KiB pieces (one block each) that means many pieces at once.

use crate::peer::window::Window;
use crate::wire::BLOCK_SIZE;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    Missing,
    /// Asked for at this time.
    Requested(Instant),
    Received,
}

struct PartialPiece {
    index: u32,
    data: Vec<u8>,
    blocks: Vec<Block>,
    received: usize,
}

impl PartialPiece {
    fn missing(&self) -> usize {
        self.blocks.iter().filter(|b| **b == Block::Missing).count()
    }

    fn request(&self, slot: usize) -> BlockRequest {
        let begin = slot as u32 * BLOCK_SIZE;
        BlockRequest {
            index: self.index,
            begin,
            length: BLOCK_SIZE.min(self.data.len() as u32 - begin),
        }
    }
}

/// A block request, as the `request` and `cancel` messages carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    /// The piece.
    pub index: u32,
    /// Offset of the block within the piece.
    pub begin: u32,
    /// Bytes asked for.
    pub length: u32,
}

/// The pieces one connection is fetching.
pub struct Pipeline {
    /// Oldest first.
    pieces: Vec<PartialPiece>,
    in_flight: usize,
    /// Blocks of the held pieces not asked for yet.
    missing: usize,
    window: Window,
    /// At most this many in flight, whatever the window says (see [`Pipeline::set_cap`]).
    cap: usize,
}

impl Pipeline {
    /// A pipeline for a peer that accepts `peer_reqq` outstanding requests (see
    /// [`DEFAULT_PEER_REQQ`](crate::peer::window::DEFAULT_PEER_REQQ)).
    pub fn new(peer_reqq: usize) -> Pipeline {
        Pipeline {
            pieces: Vec::new(),
            in_flight: 0,
            missing: 0,
            window: Window::new(peer_reqq),
            cap: usize::MAX,
        }
    }

    /// How many requests to keep in flight: the window's target, under the cap.
    fn target(&self) -> usize {
        self.window.target().min(self.cap)
    }

    /// Caps the requests in flight at `cap` (a snubbing peer gets one), or lifts the cap.
    pub fn set_cap(&mut self, cap: Option<usize>) {
        self.cap = cap.unwrap_or(usize::MAX);
    }

    /// Whether the connection should take another piece: the blocks left to ask for in the
    /// pieces it holds cannot fill the window.
    pub fn wants_piece(&self) -> bool {
        self.in_flight + self.missing < self.target()
    }

    /// Starts fetching piece `index` of `size` bytes.
    pub fn add_piece(&mut self, index: u32, size: u32) {
        let count = size.div_ceil(BLOCK_SIZE) as usize;
        self.missing += count;
        self.pieces.push(PartialPiece {
            index,
            data: vec![0; size as usize],
            blocks: vec![Block::Missing; count],
            received: 0,
        });
    }

    /// Marks blocks of the pieces `may` accepts as requested (at `now`) up to the window's
    /// target and returns them.
    pub fn next_requests(&mut self, now: Instant, may: impl Fn(u32) -> bool) -> Vec<BlockRequest> {
        let mut out = Vec::new();
        let target = self.target();
        'pieces: for piece in &mut self.pieces {
            if !may(piece.index) {
                continue;
            }
            for slot in 0..piece.blocks.len() {
                if self.in_flight >= target {
                    break 'pieces;
                }
                if piece.blocks[slot] == Block::Missing {
                    piece.blocks[slot] = Block::Requested(now);
                    self.in_flight += 1;
                    self.missing -= 1;
                    out.push(piece.request(slot));
                }
            }
        }
        if !out.is_empty() {
            self.window.on_requests(now);
        } else if self.in_flight == 0 {
            self.window.on_idle();
        }
        out
    }

    /// Stores a received block (arriving at `now`). Returns the whole piece when this was its
    /// last block. Blocks nobody asked for (late after a choke, or from a confused peer) are
    /// ignored.
    pub fn on_block(
        &mut self,
        index: u32,
        begin: u32,
        data: &[u8],
        now: Instant,
    ) -> Option<(u32, Vec<u8>)> {
        let pos = self.pieces.iter().position(|p| p.index == index)?;
        let piece = &mut self.pieces[pos];
        let slot = begin
            .is_multiple_of(BLOCK_SIZE)
            .then_some((begin / BLOCK_SIZE) as usize)?;
        let expected = BLOCK_SIZE.min((piece.data.len() as u32).saturating_sub(begin)) as usize;
        let Some(&Block::Requested(asked)) = piece.blocks.get(slot) else {
            return None;
        };
        if data.len() != expected {
            return None;
        }
        piece.data[begin as usize..begin as usize + expected].copy_from_slice(data);
        piece.blocks[slot] = Block::Received;
        piece.received += 1;
        self.in_flight -= 1;
        self.window
            .on_block(expected, now.saturating_duration_since(asked), now);
        if piece.received < piece.blocks.len() {
            return None;
        }
        let piece = self.pieces.remove(pos);
        Some((piece.index, piece.data))
    }

    /// The peer choked us: it dropped our requests. Every piece held here is given up, with
    /// its partial data, and returned so the caller hands it back to the picker for other
    /// peers; a choking peer must not hold pieces until it unchokes.
    pub fn on_choke(&mut self) -> Vec<u32> {
        self.in_flight = 0;
        self.missing = 0;
        self.window.on_idle();
        self.pieces.drain(..).map(|p| p.index).collect()
    }

    /// The peer rejected a request (BEP 6): the block may be asked for again. Whether it was
    /// outstanding.
    pub fn on_reject(&mut self, request: BlockRequest) -> bool {
        let Some(piece) = self.pieces.iter_mut().find(|p| p.index == request.index) else {
            return false;
        };
        let slot = (request.begin / BLOCK_SIZE) as usize;
        if !matches!(piece.blocks.get(slot), Some(Block::Requested(_)))
            || piece.request(slot) != request
        {
            return false;
        }
        piece.blocks[slot] = Block::Missing;
        self.in_flight -= 1;
        self.missing += 1;
        if self.in_flight == 0 {
            self.window.on_idle();
        }
        true
    }

    /// Gives up the pieces none of whose blocks is outstanding, except those `keep` accepts,
    /// and returns them (a peer that chokes us will not serve them).
    pub fn release(&mut self, keep: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut released = Vec::new();
        self.pieces.retain(|p| {
            let asked = p.blocks.iter().any(|b| matches!(b, Block::Requested(_)));
            if asked || keep(p.index) {
                return true;
            }
            released.push(p.index);
            false
        });
        self.missing = self.pieces.iter().map(PartialPiece::missing).sum();
        released
    }

    /// Drops a piece (verified elsewhere first); returns the requests to cancel, or `None`
    /// when this pipeline was not fetching it.
    pub fn abandon(&mut self, index: u32) -> Option<Vec<BlockRequest>> {
        let pos = self.pieces.iter().position(|p| p.index == index)?;
        let piece = self.pieces.remove(pos);
        let mut cancels = Vec::new();
        for (slot, block) in piece.blocks.iter().enumerate() {
            match block {
                Block::Requested(_) => cancels.push(piece.request(slot)),
                Block::Missing => self.missing -= 1,
                Block::Received => {}
            }
        }
        self.in_flight -= cancels.len();
        Some(cancels)
    }

    /// Indices of the pieces in progress.
    pub fn pieces(&self) -> Vec<u32> {
        self.pieces.iter().map(|p| p.index).collect()
    }

    /// Outstanding block requests.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The window that sizes the requests in flight.
    pub fn window(&self) -> &Window {
        &self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::window::{MAX, START};

    fn req(index: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            index,
            begin,
            length,
        }
    }

    fn now() -> Instant {
        Instant::now()
    }

    /// Every piece may be asked for.
    fn any(_: u32) -> bool {
        true
    }

    #[test]
    fn keeps_the_pipeline_full_and_assembles_pieces() {
        let mut p = Pipeline::new(3);
        assert!(p.wants_piece());
        p.add_piece(7, 2 * BLOCK_SIZE + 10);
        let reqs = p.next_requests(now(), any);
        assert_eq!(
            reqs,
            vec![
                req(7, 0, BLOCK_SIZE),
                req(7, BLOCK_SIZE, BLOCK_SIZE),
                req(7, 2 * BLOCK_SIZE, 10)
            ]
        );
        assert!(!p.wants_piece(), "pipeline full");
        assert_eq!(p.on_block(7, 2 * BLOCK_SIZE, &[5; 10], now()), None);
        assert!(p.wants_piece());
        assert_eq!(p.on_block(7, 0, &[1; BLOCK_SIZE as usize], now()), None);
        let (index, data) = p
            .on_block(7, BLOCK_SIZE, &[2; BLOCK_SIZE as usize], now())
            .unwrap();
        assert_eq!(index, 7);
        assert_eq!(data.len(), 2 * BLOCK_SIZE as usize + 10);
        assert_eq!(
            (data[0], data[BLOCK_SIZE as usize], data[data.len() - 1]),
            (1, 2, 5)
        );
        assert_eq!(p.in_flight(), 0);
        assert!(p.pieces().is_empty());
    }

    #[test]
    fn takes_pieces_until_the_window_is_full_and_finishes_older_pieces_first() {
        let mut p = Pipeline::new(4);
        p.add_piece(1, 3 * BLOCK_SIZE);
        assert!(p.wants_piece(), "3 blocks cannot fill a window of 4");
        p.add_piece(2, 3 * BLOCK_SIZE);
        assert!(!p.wants_piece(), "6 blocks can");
        let reqs = p.next_requests(now(), any);
        assert_eq!(reqs.iter().filter(|r| r.index == 1).count(), 3);
        assert_eq!(
            reqs,
            [req(1, 0, BLOCK_SIZE), req(1, BLOCK_SIZE, BLOCK_SIZE)]
                .into_iter()
                .chain([req(1, 2 * BLOCK_SIZE, BLOCK_SIZE), req(2, 0, BLOCK_SIZE)])
                .collect::<Vec<_>>()
        );
        assert!(!p.wants_piece(), "piece 2 still has blocks to ask for");
        p.on_block(1, 0, &[0; BLOCK_SIZE as usize], now());
        assert_eq!(
            p.next_requests(now(), any),
            vec![req(2, BLOCK_SIZE, BLOCK_SIZE)]
        );
    }

    #[test]
    fn one_block_pieces_keep_the_whole_window_in_flight() {
        let mut p = Pipeline::new(MAX);
        let mut index = 0;
        while p.wants_piece() {
            p.add_piece(index, BLOCK_SIZE);
            index += 1;
        }
        let reqs = p.next_requests(now(), any);
        assert_eq!(reqs.len(), START);
        assert_eq!(p.pieces().len(), START, "one piece per request");
    }

    #[test]
    fn ignores_unrequested_or_wrongly_sized_blocks() {
        let mut p = Pipeline::new(8);
        p.add_piece(1, BLOCK_SIZE * 2);
        p.next_requests(now(), any);
        assert_eq!(p.on_block(2, 0, &[0; BLOCK_SIZE as usize], now()), None);
        assert_eq!(p.on_block(1, 5, &[0; BLOCK_SIZE as usize], now()), None);
        assert_eq!(p.on_block(1, 0, &[0; 10], now()), None);
        assert_eq!(p.in_flight(), 2);
        p.on_block(1, 0, &[0; BLOCK_SIZE as usize], now());
        assert_eq!(
            p.on_block(1, 0, &[0; BLOCK_SIZE as usize], now()),
            None,
            "duplicate"
        );
        assert_eq!(p.in_flight(), 1);
    }

    #[test]
    fn choke_gives_up_every_piece_and_abandon_cancels() {
        let mut p = Pipeline::new(8);
        p.add_piece(1, BLOCK_SIZE * 2);
        p.add_piece(2, BLOCK_SIZE * 2);
        p.next_requests(now(), any);
        p.on_block(1, 0, &[0; BLOCK_SIZE as usize], now());
        assert_eq!(p.on_choke(), vec![1, 2]);
        assert_eq!(p.in_flight(), 0);
        assert!(p.pieces().is_empty());
        assert!(p.wants_piece());
        assert_eq!(p.next_requests(now(), any), vec![]);
        // A block that was on its way when the choke came is not wanted any more.
        assert_eq!(
            p.on_block(1, BLOCK_SIZE, &[0; BLOCK_SIZE as usize], now()),
            None
        );

        p.add_piece(1, BLOCK_SIZE * 3);
        p.add_piece(3, BLOCK_SIZE);
        assert_eq!(p.next_requests(now(), any).len(), 4);
        p.on_block(1, 0, &[0; BLOCK_SIZE as usize], now());
        let cancels = vec![
            req(1, BLOCK_SIZE, BLOCK_SIZE),
            req(1, 2 * BLOCK_SIZE, BLOCK_SIZE),
        ];
        assert_eq!(p.abandon(1), Some(cancels));
        assert_eq!(p.abandon(1), None);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.pieces(), vec![3]);
    }

    #[test]
    fn blocks_arriving_at_the_measured_rate_grow_the_window() {
        let mut p = Pipeline::new(MAX);
        let start = Instant::now();
        let mut index = 0;
        let mut at = start;
        // 16 KiB pieces answered at 32 MiB/s for two seconds.
        while at < start + std::time::Duration::from_secs(2) {
            while p.wants_piece() {
                p.add_piece(index, BLOCK_SIZE);
                index += 1;
            }
            let asked = p.next_requests(at, any);
            for r in asked {
                at += std::time::Duration::from_micros(488);
                assert!(
                    p.on_block(r.index, 0, &[0; BLOCK_SIZE as usize], at)
                        .is_some()
                );
            }
        }
        assert_eq!(p.window().target(), MAX);
        while p.wants_piece() {
            p.add_piece(index, BLOCK_SIZE);
            index += 1;
        }
        assert_eq!(p.next_requests(at, any).len(), MAX);
    }

    #[test]
    fn a_rejected_block_is_asked_again_and_idle_pieces_are_released() {
        let mut p = Pipeline::new(10);
        p.add_piece(1, 2 * BLOCK_SIZE);
        p.add_piece(2, BLOCK_SIZE);
        p.add_piece(3, BLOCK_SIZE);
        assert_eq!(
            p.next_requests(now(), |i| i != 3).len(),
            3,
            "piece 3 held back"
        );
        assert!(!p.on_reject(req(1, 0, 5)), "not what was asked");
        assert!(!p.on_reject(req(9, 0, BLOCK_SIZE)), "not held");
        assert!(p.on_reject(req(1, BLOCK_SIZE, BLOCK_SIZE)));
        assert!(
            !p.on_reject(req(1, BLOCK_SIZE, BLOCK_SIZE)),
            "rejected once only"
        );
        assert_eq!(p.in_flight(), 2);
        // Piece 3 was never asked for: nothing of it is outstanding, so it goes unless kept.
        assert_eq!(p.release(|i| i == 3), Vec::<u32>::new());
        assert_eq!(p.release(|_| false), vec![3]);
        assert!(p.on_reject(req(2, 0, BLOCK_SIZE)));
        assert_eq!(p.release(|_| false), vec![2]);
        assert_eq!(p.pieces(), vec![1], "piece 1 still has a block asked for");
        assert_eq!(
            p.next_requests(now(), any),
            vec![req(1, BLOCK_SIZE, BLOCK_SIZE)]
        );
        assert_eq!(p.on_block(1, 0, &[1; BLOCK_SIZE as usize], now()), None);
        assert!(
            p.on_block(1, BLOCK_SIZE, &[2; BLOCK_SIZE as usize], now())
                .is_some()
        );
    }

    #[test]
    fn a_cap_limits_the_requests_in_flight() {
        let mut p = Pipeline::new(250);
        p.set_cap(Some(1));
        assert!(p.wants_piece());
        p.add_piece(4, 3 * BLOCK_SIZE);
        assert!(!p.wants_piece());
        assert_eq!(p.next_requests(now(), any), vec![req(4, 0, BLOCK_SIZE)]);
        assert_eq!(p.next_requests(now(), any), vec![]);
        p.set_cap(None);
        assert_eq!(p.next_requests(now(), any).len(), 2);
    }
}
