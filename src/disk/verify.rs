//! Piece verification: whether bytes are the piece a torrent describes, by its SHA-1.

use crate::metainfo::Info;

/// Whether `data` is the piece `info` describes at `index`.
pub fn piece_matches(info: &Info, index: usize, data: &[u8]) -> bool {
    info.pieces.get(index) == Some(&sha1_smol::Sha1::from(data).digest().bytes())
}
