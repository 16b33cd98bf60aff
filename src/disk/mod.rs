//! The disk layer: where a torrent's pieces live in its files, checking them, the pool of open
//! file handles and the fast-resume record.

pub mod file_pool;
pub mod resume;
pub mod storage;
mod verify;

pub use file_pool::FilePool;
pub use storage::{Storage, StorageError};
pub use verify::piece_matches;
