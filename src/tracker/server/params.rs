//! Checking what a request says: query strings, and the announce parameters that the JSON API
//! and BEP 3 announces validate the same way.

use super::service::Service;
use crate::net::http::{self, Request};
use std::net::IpAddr;

/// Where a request comes from, as far as the tracker believes it.
pub(super) struct Origin {
    /// The address the connection (or packet) came from.
    remote: IpAddr,
    /// Whether `remote` is a trusted proxy, whose word on the peer's address counts.
    trusted: bool,
    /// The client a trusted proxy named in `X-Forwarded-For` (its last entry).
    forwarded: Option<IpAddr>,
}

impl Origin {
    /// The origin of `request`, which arrived from `remote`.
    pub(super) fn of(request: &Request, remote: IpAddr, service: &Service) -> Origin {
        let trusted = service.trusts(remote);
        let forwarded = trusted
            .then(|| request.header("x-forwarded-for"))
            .flatten()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
        Origin {
            remote,
            trusted,
            forwarded,
        }
    }

    /// The address the peer is known and reached by: the `ip` it asked for when a trusted
    /// proxy passes it on, else the client the proxy named, else where the request came from.
    /// From anyone else `ip` is ignored: believing it would let a stranger point other peers
    /// at an address of its choosing.
    pub(super) fn peer_ip(&self, requested: Option<&[u8]>) -> IpAddr {
        let requested = requested
            .filter(|_| self.trusted)
            .and_then(|ip| std::str::from_utf8(ip).ok())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        requested
            .or(self.forwarded)
            .unwrap_or(self.remote)
            .to_canonical()
    }
}

/// A listening port other peers can connect to: any but 0.
pub(super) fn valid_port(port: u16) -> Result<u16, String> {
    if port == 0 {
        Err("port must be between 1 and 65535".into())
    } else {
        Ok(port)
    }
}

/// A decoded query string, looked up by parameter name.
pub(super) struct Query(Vec<(String, Vec<u8>)>);

impl Query {
    /// Decodes a raw query string; a bad percent escape is refused with the reason.
    pub(super) fn parse(query: &str) -> Result<Query, String> {
        http::parse_query(query)
            .map(Query)
            .map_err(|e| e.to_string())
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name`, which must be there.
    pub(super) fn required(&self, name: &str) -> Result<&[u8], String> {
        self.get(name).ok_or_else(|| format!("missing {name}"))
    }

    /// The first value of `name` as a number, if given.
    pub(super) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|v| {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{name} must be a non-negative integer in range"))
            })
            .transpose()
    }
}

/// A raw 20-byte parameter (`info_hash`, `peer_id`), named `name` in the error.
pub(super) fn twenty_bytes(value: &[u8], name: &str) -> Result<[u8; 20], String> {
    value
        .try_into()
        .map_err(|_| format!("{name} must be 20 bytes (URL-encoded), got {}", value.len()))
}
