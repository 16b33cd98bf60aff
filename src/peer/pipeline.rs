//! The request pipeline of one connection: which blocks of which pieces are asked for, which
//! have arrived, and when a piece is whole and ready to verify.
//!
//! Several requests stay in flight per peer (no stop-and-wait): the connection asks for more
//! blocks whenever fewer than `max_in_flight` are outstanding, taking new pieces from the
//! picker once every block of the pieces it holds has been asked for.

use crate::wire::BLOCK_SIZE;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    Missing,
    Requested,
    Received,
}

struct PartialPiece {
    index: u32,
    data: Vec<u8>,
    blocks: Vec<Block>,
    received: usize,
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
    pieces: Vec<PartialPiece>,
    in_flight: usize,
    max_in_flight: usize,
    max_pieces: usize,
}

impl Pipeline {
    /// At most `max_in_flight` block requests and `max_pieces` pieces at once. The piece cap
    /// keeps a fast peer from taking a large share of a small-piece torrent's queue before
    /// the other peers have even unchoked us.
    pub fn new(max_in_flight: usize, max_pieces: usize) -> Pipeline {
        Pipeline {
            pieces: Vec::new(),
            in_flight: 0,
            max_in_flight,
            max_pieces,
        }
    }

    /// Whether the connection should take another piece: every block of the pieces it holds
    /// is requested and there is room for more requests.
    pub fn wants_piece(&self) -> bool {
        self.in_flight < self.max_in_flight
            && self.pieces.len() < self.max_pieces
            && self
                .pieces
                .iter()
                .all(|p| !p.blocks.contains(&Block::Missing))
    }

    /// Starts fetching piece `index` of `size` bytes.
    pub fn add_piece(&mut self, index: u32, size: u32) {
        let count = size.div_ceil(BLOCK_SIZE) as usize;
        self.pieces.push(PartialPiece {
            index,
            data: vec![0; size as usize],
            blocks: vec![Block::Missing; count],
            received: 0,
        });
    }

    /// Marks blocks as requested up to the in-flight limit and returns them.
    pub fn next_requests(&mut self) -> Vec<BlockRequest> {
        let mut out = Vec::new();
        for piece in &mut self.pieces {
            for (i, block) in piece.blocks.iter_mut().enumerate() {
                if self.in_flight >= self.max_in_flight {
                    return out;
                }
                if *block == Block::Missing {
                    *block = Block::Requested;
                    self.in_flight += 1;
                    let begin = i as u32 * BLOCK_SIZE;
                    out.push(BlockRequest {
                        index: piece.index,
                        begin,
                        length: BLOCK_SIZE.min(piece.data.len() as u32 - begin),
                    });
                }
            }
        }
        out
    }

    /// Stores a received block. Returns the whole piece when this was its last block. Blocks
    /// nobody asked for (late after a choke, or from a confused peer) are ignored.
    pub fn on_block(&mut self, index: u32, begin: u32, data: &[u8]) -> Option<(u32, Vec<u8>)> {
        let pos = self.pieces.iter().position(|p| p.index == index)?;
        let piece = &mut self.pieces[pos];
        let slot = begin
            .is_multiple_of(BLOCK_SIZE)
            .then_some((begin / BLOCK_SIZE) as usize)?;
        let expected = BLOCK_SIZE.min((piece.data.len() as u32).saturating_sub(begin)) as usize;
        if piece.blocks.get(slot) != Some(&Block::Requested) || data.len() != expected {
            return None;
        }
        piece.data[begin as usize..begin as usize + expected].copy_from_slice(data);
        piece.blocks[slot] = Block::Received;
        piece.received += 1;
        self.in_flight -= 1;
        if piece.received < piece.blocks.len() {
            return None;
        }
        let piece = self.pieces.swap_remove(pos);
        Some((piece.index, piece.data))
    }

    /// The peer choked us: it dropped our requests, so they must be asked for again later.
    pub fn on_choke(&mut self) {
        for piece in &mut self.pieces {
            for block in &mut piece.blocks {
                if *block == Block::Requested {
                    *block = Block::Missing;
                }
            }
        }
        self.in_flight = 0;
    }

    /// Drops a piece (verified elsewhere first); returns the requests to cancel, or `None`
    /// when this pipeline was not fetching it.
    pub fn abandon(&mut self, index: u32) -> Option<Vec<BlockRequest>> {
        let pos = self.pieces.iter().position(|p| p.index == index)?;
        let piece = self.pieces.swap_remove(pos);
        let size = piece.data.len() as u32;
        let cancels: Vec<BlockRequest> = piece
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == Block::Requested)
            .map(|(i, _)| {
                let begin = i as u32 * BLOCK_SIZE;
                BlockRequest {
                    index,
                    begin,
                    length: BLOCK_SIZE.min(size - begin),
                }
            })
            .collect();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(index: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            index,
            begin,
            length,
        }
    }

    #[test]
    fn keeps_the_pipeline_full_and_assembles_pieces() {
        let mut p = Pipeline::new(3, 4);
        assert!(p.wants_piece());
        p.add_piece(7, 2 * BLOCK_SIZE + 10);
        let reqs = p.next_requests();
        assert_eq!(
            reqs,
            vec![
                req(7, 0, BLOCK_SIZE),
                req(7, BLOCK_SIZE, BLOCK_SIZE),
                req(7, 2 * BLOCK_SIZE, 10)
            ]
        );
        assert!(!p.wants_piece(), "pipeline full");
        assert_eq!(p.on_block(7, 2 * BLOCK_SIZE, &[5; 10]), None);
        assert!(p.wants_piece());
        assert_eq!(p.on_block(7, 0, &[1; BLOCK_SIZE as usize]), None);
        let (index, data) = p
            .on_block(7, BLOCK_SIZE, &[2; BLOCK_SIZE as usize])
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
    fn caps_the_pieces_held() {
        let mut p = Pipeline::new(100, 2);
        p.add_piece(1, 10);
        p.add_piece(2, 10);
        p.next_requests();
        assert!(!p.wants_piece());
        p.on_block(1, 0, &[0; 10]);
        assert!(p.wants_piece());
    }

    #[test]
    fn ignores_unrequested_or_wrongly_sized_blocks() {
        let mut p = Pipeline::new(8, 4);
        p.add_piece(1, BLOCK_SIZE * 2);
        p.next_requests();
        assert_eq!(p.on_block(2, 0, &[0; BLOCK_SIZE as usize]), None);
        assert_eq!(p.on_block(1, 5, &[0; BLOCK_SIZE as usize]), None);
        assert_eq!(p.on_block(1, 0, &[0; 10]), None);
        assert_eq!(p.in_flight(), 2);
        p.on_block(1, 0, &[0; BLOCK_SIZE as usize]);
        assert_eq!(
            p.on_block(1, 0, &[0; BLOCK_SIZE as usize]),
            None,
            "duplicate"
        );
        assert_eq!(p.in_flight(), 1);
    }

    #[test]
    fn choke_requeues_requested_blocks_and_abandon_cancels() {
        let mut p = Pipeline::new(8, 4);
        p.add_piece(1, BLOCK_SIZE * 2);
        p.next_requests();
        p.on_block(1, 0, &[0; BLOCK_SIZE as usize]);
        p.on_choke();
        assert_eq!(p.in_flight(), 0);
        assert_eq!(p.next_requests(), vec![req(1, BLOCK_SIZE, BLOCK_SIZE)]);
        assert_eq!(p.abandon(1), Some(vec![req(1, BLOCK_SIZE, BLOCK_SIZE)]));
        assert_eq!(p.abandon(1), None);
        assert_eq!(p.in_flight(), 0);
        assert!(p.pieces().is_empty());
    }
}
