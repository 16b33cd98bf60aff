//! Driving a running peer from outside: the operations it offers ([`control`]), the JSON API
//! that serves them over HTTP ([`serve`], with its token and `Host` checks in [`auth`]), the
//! web page served beside it ([`web`]), and the `piecemeal remote` command that calls that API
//! ([`remote`]).

pub mod auth;
pub mod control;
pub mod remote;
mod routes;
mod server;
mod table;
#[cfg(test)]
mod testing;
pub mod web;

pub use server::{MAX_BODY, RpcError, RpcHandle, serve};
