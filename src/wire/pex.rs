//! Peer exchange messages (BEP 11, `ut_pex` over the extension protocol): the peers the sender
//! connected to and dropped since its last message, as compact address lists with one flag
//! byte per added peer. The lists are in the compact form tracker replies use
//! (`tracker::protocol::compact`).

use std::net::SocketAddr;

use super::extended::ExtError;
use crate::bencode::{self, Value};
use crate::tracker::protocol::compact::{self, Family};

/// Peers sent in one message's `added` (and in its `dropped`): BEP 11 asks for at most 50.
pub const MAX_PEX_SEND: usize = 50;
/// Peers taken from one received list; the rest of a longer one is ignored.
pub const MAX_PEX_TAKE: usize = 200;
/// Flag of an added peer that is a seed (BEP 11).
pub const FLAG_SEED: u8 = 0x02;
/// Flag of an added peer that accepts incoming connections (BEP 11).
pub const FLAG_CONNECTABLE: u8 = 0x10;

/// One `ut_pex` message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers connected since the last message, with their flags.
    pub added: Vec<(SocketAddr, u8)>,
    /// Peers dropped since the last message.
    pub dropped: Vec<SocketAddr>,
}

/// The addresses of a compact list of `family`, at most [`MAX_PEX_TAKE`]; a trailing partial
/// entry is an error.
fn take(list: Option<&Value>, family: Family) -> Result<Vec<SocketAddr>, ExtError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let bytes = list
        .as_bytes()
        .ok_or_else(|| ExtError::Invalid("ut_pex list is not a string".into()))?;
    let mut addrs =
        compact::decode(bytes, family).map_err(|e| ExtError::Invalid(format!("ut_pex: {e}")))?;
    addrs.truncate(MAX_PEX_TAKE);
    Ok(addrs)
}

impl PexMessage {
    /// The bencoded body: `added`/`added.f`/`dropped` for IPv4, `added6`/`added6.f`/`dropped6`
    /// for IPv6. Lists past [`MAX_PEX_SEND`] entries are cut there.
    pub fn encode(&self) -> Vec<u8> {
        let added: Vec<_> = self.added.iter().take(MAX_PEX_SEND).collect();
        let added_lists = compact::encode(added.iter().map(|(a, _)| *a));
        let flags = |v6: bool| -> Vec<u8> {
            let of_family = added.iter().filter(|(a, _)| a.is_ipv6() == v6);
            of_family.map(|(_, f)| *f).collect()
        };
        let dropped = compact::encode(self.dropped.iter().take(MAX_PEX_SEND).copied());
        bencode::encode(&Value::dict([
            ("added", Value::Bytes(added_lists.v4)),
            ("added.f", Value::Bytes(flags(false))),
            ("added6", Value::Bytes(added_lists.v6)),
            ("added6.f", Value::Bytes(flags(true))),
            ("dropped", Value::Bytes(dropped.v4)),
            ("dropped6", Value::Bytes(dropped.v6)),
        ]))
    }

    /// Parses a body, keeping at most [`MAX_PEX_TAKE`] peers of each list. Missing lists are
    /// empty; missing flags are 0. Port 0 entries are dropped (nobody listens there).
    pub fn parse(body: &[u8]) -> Result<PexMessage, ExtError> {
        let top = bencode::decode(body)?;
        if top.as_dict().is_none() {
            return Err(ExtError::Invalid("ut_pex is not a dictionary".into()));
        }
        let flags = |key: &str| top.get(key).and_then(Value::as_bytes).unwrap_or_default();
        let mut added = Vec::new();
        for (list, flag_key, family) in [
            ("added", "added.f", Family::V4),
            ("added6", "added6.f", Family::V6),
        ] {
            let f = flags(flag_key);
            let addrs = take(top.get(list), family)?;
            added.extend(
                addrs
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| (a, f.get(i).copied().unwrap_or(0))),
            );
        }
        let mut dropped = take(top.get("dropped"), Family::V4)?;
        dropped.extend(take(top.get("dropped6"), Family::V6)?);
        added.retain(|(a, _)| a.port() != 0);
        Ok(PexMessage { added, dropped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_both_families() {
        let m = PexMessage {
            added: vec![
                (addr("10.0.0.1:6881"), FLAG_SEED | FLAG_CONNECTABLE),
                (addr("[::1]:51413"), 0),
                (addr("10.0.0.2:1"), FLAG_CONNECTABLE),
            ],
            dropped: vec![addr("192.168.1.1:80"), addr("[fe80::1]:9")],
        };
        let parsed = PexMessage::parse(&m.encode()).unwrap();
        let mut want = m.added.clone();
        want.sort_by_key(|(a, _)| a.is_ipv6());
        assert_eq!(parsed.added, want);
        assert_eq!(parsed.dropped, m.dropped);
        assert_eq!(
            PexMessage::parse(b"d5:added6:\x7f\0\0\x01\x1a\xe1e").unwrap(),
            PexMessage {
                added: vec![(addr("127.0.0.1:6881"), 0)],
                dropped: vec![],
            }
        );
    }

    #[test]
    fn lists_are_bounded_both_ways() {
        let many: Vec<_> = (0..300u16)
            .map(|i| {
                (
                    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000 + i)),
                    0,
                )
            })
            .collect();
        let sent = PexMessage {
            added: many.clone(),
            dropped: many.iter().map(|(a, _)| *a).collect(),
        };
        let parsed = PexMessage::parse(&sent.encode()).unwrap();
        assert_eq!(parsed.added.len(), MAX_PEX_SEND);
        assert_eq!(parsed.dropped.len(), MAX_PEX_SEND);
        // A hand-made list longer than we take.
        let long = compact::encode(many.iter().map(|(a, _)| *a)).v4;
        let mut body = format!("d5:added{}:", long.len()).into_bytes();
        body.extend_from_slice(&long);
        body.push(b'e');
        assert_eq!(PexMessage::parse(&body).unwrap().added.len(), MAX_PEX_TAKE);
    }

    #[test]
    fn malformed_lists_are_errors() {
        for body in [
            &b"d5:added5:\x7f\0\0\x01\x1ae"[..],
            b"d5:addedi3ee",
            b"d6:added67:\x7f\0\0\x01\x1a\xe1e",
            b"le",
            b"d5:added",
        ] {
            assert!(PexMessage::parse(body).is_err(), "{body:?}");
        }
        let zero_port = PexMessage::parse(b"d5:added6:\x7f\0\0\x01\0\0e").unwrap();
        assert!(zero_port.added.is_empty());
    }
}
