//! The peer: the process that seeds and downloads torrents.
//!
//! - [`session`]: the process (start-up, announces, completion, shutdown);
//! - [`torrent_state`]: what the process knows about one torrent, shared by its threads;
//! - [`listener`]: incoming connections; [`connection`]: one connection's message loop;
//! - [`picker`]: which piece to fetch next; [`pipeline`]: the block requests of one connection;
//! - [`progress`]: what the user sees while it runs.

pub mod connection;
pub mod listener;
pub mod picker;
pub mod pipeline;
pub mod progress;
pub mod session;
pub mod torrent_state;

pub use session::{PeerConfig, PeerError, run};
