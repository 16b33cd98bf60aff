//! Trackers: the announce protocol both sides speak ([`protocol`]), the tracker server
//! ([`server`]) and the client a peer announces with ([`client`]).

pub mod client;
pub mod protocol;
pub mod server;
