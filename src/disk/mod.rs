//! The disk layer: where a torrent's pieces live in its files, and checking them.

pub mod storage;
mod verify;

pub use storage::{Storage, StorageError};
pub use verify::{check, piece_matches, stored_piece_matches};
