//! Driving a running peer from outside: the operations it offers ([`control`]).

pub mod control;
