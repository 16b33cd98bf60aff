//! Driving a running peer from outside: the operations it offers ([`control`]) and the web
//! page that calls them ([`web`]).

pub mod control;
pub mod web;
