//! The BEP 3 announce: `GET /announce` with a query string, answered with a bencoded dictionary
//! whose peers are compact (BEP 23, `peers6` per BEP 7) unless the client asks for `compact=0`.
//! The dictionary model carries no `peer id`: the registry keeps only a digest of it (as if
//! every client sent `no_peer_id=1`).

use super::params::{Origin, Query, twenty_bytes, valid_port};
use super::routes::{Reply, Service, bytes, dict, int};
use super::stats::Proto;
use super::swarm::{AnnounceReply, PeerAnnounce};
use crate::bencode::Value;
use crate::metainfo::InfoHash;
use crate::tracker::protocol::{Event, compact};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Answers a BEP 3 announce; `Err` holds the failure reason.
pub(super) fn bep3_announce(
    query: &str,
    origin: &Origin,
    service: &Service,
    now: Instant,
) -> Result<Reply, String> {
    let query = Query::parse(query)?;
    let info_hash = InfoHash(twenty_bytes(query.required("info_hash")?, "info_hash")?);
    let peer_id = twenty_bytes(query.required("peer_id")?, "peer_id")?;
    let port = valid_port(query.number("port")?.ok_or("missing port")?)?;
    let left: u64 = query.number("left")?.ok_or("missing left")?;
    let event = match query.get("event") {
        None => Event::None,
        Some(name) => std::str::from_utf8(name)
            .ok()
            .and_then(Event::parse)
            .ok_or("event must be started, completed, stopped or empty")?,
    };
    let compact = query.get("compact") != Some(b"0");
    let announce = PeerAnnounce {
        peer_id,
        addr: SocketAddr::new(origin.peer_ip(query.get("ip")), port),
        left,
        event,
        numwant: query.number("numwant")?,
        own_family_only: false,
    };
    let reply = service.announce(Proto::Http, info_hash, &announce, now, Vec::new())?;
    Ok(Reply::bencoded(&bep3_reply(&reply, compact, service)))
}

/// The bencoded announce reply; compact peers go to `peers` (IPv4) and `peers6` (IPv6).
fn bep3_reply(reply: &AnnounceReply, compact: bool, service: &Service) -> Value {
    let mut out = BTreeMap::new();
    let mut put = |key: &str, value: Value| out.insert(key.as_bytes().to_vec(), value);
    put("interval", int(service.interval.as_secs()));
    put("min interval", int(service.min_interval.as_secs()));
    put("complete", int(reply.complete));
    put("incomplete", int(reply.incomplete));
    if compact {
        let lists = compact::encode(reply.peers.iter().copied());
        put("peers", Value::Bytes(lists.v4));
        if !lists.v6.is_empty() {
            put("peers6", Value::Bytes(lists.v6));
        }
    } else {
        let peers = reply
            .peers
            .iter()
            .map(|p| {
                dict([
                    ("ip", bytes(p.ip().to_string().as_bytes())),
                    ("port", int(p.port().into())),
                ])
            })
            .collect();
        put("peers", Value::List(peers));
    }
    Value::Dict(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::server::testing::{announce_target, field, get, service};
    use std::net::{IpAddr, Ipv6Addr};

    #[test]
    fn compact_reply_splits_ipv4_and_ipv6() {
        let service = service();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        get(
            &service,
            &announce_target(1, 1000, ""),
            IpAddr::from([10, 0, 0, 1]),
        );
        get(&service, &announce_target(2, 2000, ""), v6);
        let reply = get(
            &service,
            &announce_target(3, 3000, "&compact=1"),
            IpAddr::from([10, 0, 0, 3]),
        );
        assert_eq!(
            field(&reply, "peers").and_then(Value::as_bytes),
            Some(&[10, 0, 0, 1, 0x03, 0xe8][..])
        );
        let peers6 = field(&reply, "peers6").and_then(Value::as_bytes).unwrap();
        assert_eq!(
            &peers6[..16],
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&peers6[16..], &2000u16.to_be_bytes());
        assert_eq!(field(&reply, "incomplete").and_then(Value::as_int), Some(3));
        assert_eq!(field(&reply, "interval").and_then(Value::as_int), Some(120));
        assert_eq!(
            field(&reply, "min interval").and_then(Value::as_int),
            Some(30)
        );
    }

    #[test]
    fn ip_is_believed_only_from_trusted_proxies_and_ids_are_never_given() {
        let mut service = service();
        service.trusted_proxies = vec![IpAddr::from([127, 0, 0, 9])];
        get(
            &service,
            &announce_target(1, 1000, "&ip=192.0.2.7"),
            IpAddr::from([127, 0, 0, 1]),
        );
        get(
            &service,
            &announce_target(2, 2000, "&ip=192.0.2.8"),
            IpAddr::from([127, 0, 0, 9]),
        );
        let peers_of = |extra: &str| {
            let reply = get(
                &service,
                &announce_target(3, 3000, extra),
                IpAddr::from([127, 0, 0, 3]),
            );
            let peers = field(&reply, "peers").and_then(Value::as_list).unwrap();
            let mut seen: Vec<(String, i64, Option<Vec<u8>>)> = peers
                .iter()
                .map(|p| {
                    (
                        field(p, "ip").and_then(Value::as_str).unwrap().to_string(),
                        field(p, "port").and_then(Value::as_int).unwrap(),
                        field(p, "peer id")
                            .and_then(Value::as_bytes)
                            .map(<[u8]>::to_vec),
                    )
                })
                .collect();
            seen.sort();
            seen
        };
        let expected = vec![
            ("127.0.0.1".to_string(), 1000, None),
            ("192.0.2.8".to_string(), 2000, None),
        ];
        assert_eq!(peers_of("&compact=0"), expected);
        assert_eq!(peers_of("&compact=0&no_peer_id=1"), expected);
    }
}
