//! The BEP 3 announce: `GET /announce` with a query string, answered with a bencoded dictionary
//! whose peers are compact (BEP 23, `peers6` per BEP 7) unless the client asks for `compact=0`.

use super::params::{Query, peer_ip, twenty_bytes, valid_port};
use super::routes::{Reply, Service, bytes, dict, int};
use super::swarm::{AnnounceReply, PeerAnnounce};
use crate::bencode::Value;
use crate::metainfo::InfoHash;
use crate::tracker::protocol::{Event, compact};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Answers a BEP 3 announce; `Err` holds the failure reason.
pub(super) fn bep3_announce(
    query: &str,
    remote: IpAddr,
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
        addr: SocketAddr::new(peer_ip(query.get("ip"), remote), port),
        left,
        event,
        numwant: query.number("numwant")?,
    };
    let reply = service.swarms.announce(info_hash, &announce, now);
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
        let lists = compact::encode(reply.peers.iter().map(|p| p.addr));
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
                    ("ip", bytes(p.addr.ip().to_string().as_bytes())),
                    ("peer id", bytes(&p.peer_id)),
                    ("port", int(p.addr.port().into())),
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
    use std::net::Ipv6Addr;

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
    fn dictionary_reply_and_ip_override() {
        let service = service();
        get(
            &service,
            &announce_target(1, 1000, "&ip=192.0.2.7"),
            IpAddr::from([127, 0, 0, 1]),
        );
        get(
            &service,
            &announce_target(2, 2000, "&ip=not-an-ip"),
            IpAddr::from([127, 0, 0, 2]),
        );
        let reply = get(
            &service,
            &announce_target(3, 3000, "&compact=0"),
            IpAddr::from([127, 0, 0, 3]),
        );
        let peers = field(&reply, "peers").and_then(Value::as_list).unwrap();
        let mut seen: Vec<(String, i64, Vec<u8>)> = peers
            .iter()
            .map(|p| {
                (
                    field(p, "ip").and_then(Value::as_str).unwrap().to_string(),
                    field(p, "port").and_then(Value::as_int).unwrap(),
                    field(p, "peer id")
                        .and_then(Value::as_bytes)
                        .unwrap()
                        .to_vec(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("127.0.0.2".to_string(), 2000, b"02".repeat(10)),
                ("192.0.2.7".to_string(), 1000, b"01".repeat(10)),
            ]
        );
    }
}
