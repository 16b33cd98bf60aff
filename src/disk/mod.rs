//! The disk layer: where a torrent's pieces live in its files, and checking them.

pub mod storage;

pub use storage::{Storage, StorageError};
