//! A torrent's metadata (its info dictionary) in `ut_metadata` pieces (BEP 9): cutting it up
//! to serve, and putting it together from what a peer sends, trusting none of it until the
//! whole has the info hash the magnet link named.

use crate::metainfo::InfoHash;
use crate::wire::extended::{MAX_METADATA_SIZE, METADATA_PIECE};
use std::fmt;

/// Why a peer's metadata was refused. Every one but [`Rejected`](Self::Rejected) means the
/// peer sent something it should not have.
#[derive(Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// The announced size is 0 or over [`MAX_METADATA_SIZE`].
    BadSize(u64),
    /// A piece claims a total size other than the one announced.
    SizeChanged { announced: u64, claimed: u64 },
    /// A piece past the end, or one we did not ask for.
    UnexpectedPiece(u32),
    /// A piece of the wrong length.
    PieceLength { piece: u32, got: usize, want: usize },
    /// The whole does not hash to the info hash.
    HashMismatch,
    /// The peer refused a piece.
    Rejected(u32),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::BadSize(n) => write!(
                f,
                "metadata size {n} is not in 1..={MAX_METADATA_SIZE} bytes"
            ),
            MetadataError::SizeChanged { announced, claimed } => write!(
                f,
                "metadata piece claims a total of {claimed} bytes, {announced} were announced"
            ),
            MetadataError::UnexpectedPiece(p) => write!(f, "metadata piece {p} was not asked for"),
            MetadataError::PieceLength { piece, got, want } => {
                write!(f, "metadata piece {piece} is {got} bytes, not {want}")
            }
            MetadataError::HashMismatch => write!(f, "metadata does not match the info hash"),
            MetadataError::Rejected(p) => write!(f, "peer refused metadata piece {p}"),
        }
    }
}

impl std::error::Error for MetadataError {}

/// Pieces of `size` bytes of metadata.
fn piece_count(size: usize) -> usize {
    size.div_ceil(METADATA_PIECE)
}

/// Piece `piece` of `info`, to serve; `None` past the end.
pub fn piece_of(info: &[u8], piece: u32) -> Option<&[u8]> {
    let start = (piece as usize).checked_mul(METADATA_PIECE)?;
    (start < info.len()).then(|| &info[start..(start + METADATA_PIECE).min(info.len())])
}

/// Metadata being fetched from one peer.
pub struct Assembly {
    info_hash: InfoHash,
    size: usize,
    pieces: Vec<Option<Vec<u8>>>,
}

impl Assembly {
    /// Starts on metadata of `size` bytes (as the peer's extended handshake said).
    pub fn new(info_hash: InfoHash, size: u64) -> Result<Assembly, MetadataError> {
        if size == 0 || size > MAX_METADATA_SIZE {
            return Err(MetadataError::BadSize(size));
        }
        let size = size as usize;
        Ok(Assembly {
            info_hash,
            size,
            pieces: vec![None; piece_count(size)],
        })
    }

    /// How many pieces there are (the requests to make).
    pub fn piece_count(&self) -> u32 {
        self.pieces.len() as u32
    }

    /// Takes a piece the peer sent.
    pub fn on_data(
        &mut self,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<(), MetadataError> {
        if total_size != self.size as u64 {
            return Err(MetadataError::SizeChanged {
                announced: self.size as u64,
                claimed: total_size,
            });
        }
        let slot = self
            .pieces
            .get_mut(piece as usize)
            .filter(|s| s.is_none())
            .ok_or(MetadataError::UnexpectedPiece(piece))?;
        let want = (self.size - piece as usize * METADATA_PIECE).min(METADATA_PIECE);
        if data.len() != want {
            return Err(MetadataError::PieceLength {
                piece,
                got: data.len(),
                want,
            });
        }
        *slot = Some(data.to_vec());
        Ok(())
    }

    /// Whether every piece is in.
    pub fn is_complete(&self) -> bool {
        self.pieces.iter().all(Option::is_some)
    }

    /// The whole metadata, once complete and matching the info hash.
    pub fn finish(self) -> Result<Vec<u8>, MetadataError> {
        let mut out = Vec::with_capacity(self.size);
        for piece in self.pieces {
            out.extend(piece.ok_or(MetadataError::HashMismatch)?);
        }
        if sha1_smol::Sha1::from(&out).digest().bytes() != self.info_hash.0 {
            return Err(MetadataError::HashMismatch);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(len: usize) -> (Vec<u8>, InfoHash) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let hash = InfoHash(sha1_smol::Sha1::from(&bytes).digest().bytes());
        (bytes, hash)
    }

    #[test]
    fn pieces_served_reassemble_to_the_info() {
        let (bytes, hash) = info(2 * METADATA_PIECE + 100);
        let mut a = Assembly::new(hash, bytes.len() as u64).unwrap();
        assert_eq!(a.piece_count(), 3);
        for p in [2, 0, 1] {
            assert!(!a.is_complete());
            let piece = piece_of(&bytes, p).unwrap();
            a.on_data(p, bytes.len() as u64, piece).unwrap();
        }
        assert!(piece_of(&bytes, 3).is_none());
        assert!(piece_of(&bytes, u32::MAX).is_none());
        assert!(a.is_complete());
        assert_eq!(a.finish().unwrap(), bytes);
    }

    #[test]
    fn wrong_data_is_refused() {
        let (bytes, hash) = info(METADATA_PIECE + 10);
        let size = bytes.len() as u64;
        let mut a = Assembly::new(hash, size).unwrap();
        let err = |r: Result<(), MetadataError>| r.unwrap_err();
        assert_eq!(
            err(a.on_data(0, size + 1, piece_of(&bytes, 0).unwrap())),
            MetadataError::SizeChanged {
                announced: size,
                claimed: size + 1
            }
        );
        assert_eq!(
            err(a.on_data(2, size, b"x")),
            MetadataError::UnexpectedPiece(2)
        );
        assert_eq!(
            err(a.on_data(1, size, &[0; 11])),
            MetadataError::PieceLength {
                piece: 1,
                got: 11,
                want: 10
            }
        );
        a.on_data(0, size, piece_of(&bytes, 0).unwrap()).unwrap();
        assert_eq!(
            err(a.on_data(0, size, piece_of(&bytes, 0).unwrap())),
            MetadataError::UnexpectedPiece(0),
            "a piece twice"
        );
        // Pieces of the right shape whose whole is not the torrent.
        a.on_data(1, size, &[0xee; 10]).unwrap();
        assert_eq!(a.finish().unwrap_err(), MetadataError::HashMismatch);
    }

    #[test]
    fn sizes_out_of_bounds_are_refused_before_allocating() {
        let hash = InfoHash([0; 20]);
        assert_eq!(
            Assembly::new(hash, 0).err(),
            Some(MetadataError::BadSize(0))
        );
        let huge = MAX_METADATA_SIZE + 1;
        assert_eq!(
            Assembly::new(hash, huge).err(),
            Some(MetadataError::BadSize(huge))
        );
        assert!(Assembly::new(hash, MAX_METADATA_SIZE).is_ok());
        let incomplete = Assembly::new(hash, 5).unwrap();
        assert_eq!(
            incomplete.finish().unwrap_err(),
            MetadataError::HashMismatch
        );
    }
}
