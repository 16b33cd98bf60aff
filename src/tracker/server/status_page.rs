//! `GET /stats`: the tracker's state as JSON, or as a small HTML page for browsers
//! (`GET /stats.html`, or `Accept: text/html`). Torrents, seeders, leechers, announce and
//! scrape rates per protocol over the last minute, uptime and resident memory.

use super::routes::{Reply, Service};
use super::stats::{Proto, ProtoRates};
use serde::Serialize;
use std::time::Instant;

/// What the page shows.
#[derive(Debug, Serialize)]
pub(super) struct Status {
    torrents: u64,
    seeders: u64,
    leechers: u64,
    http: ProtoRates,
    udp: ProtoRates,
    uptime_seconds: u64,
    /// Resident memory of the process, from `/proc/self/statm` (absent where there is none).
    rss_bytes: Option<u64>,
}

impl Status {
    fn now(service: &Service, now: Instant) -> Status {
        let totals = service.swarms.totals();
        Status {
            torrents: totals.torrents,
            seeders: totals.seeders,
            leechers: totals.leechers,
            http: service.stats.rates(Proto::Http, now),
            udp: service.stats.rates(Proto::Udp, now),
            uptime_seconds: service.stats.uptime(now).as_secs(),
            rss_bytes: rss_bytes(),
        }
    }
}

/// The status as JSON.
pub(super) fn stats_json(service: &Service, now: Instant) -> Reply {
    let status = Status::now(service, now);
    Reply::json(200, serde_json::to_vec(&status).unwrap_or_default())
}

/// The status as an HTML table.
pub(super) fn stats_html(service: &Service, now: Instant) -> Reply {
    let s = Status::now(service, now);
    let mib = s.rss_bytes.map_or("unknown".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    });
    let row = |name: &str, r: &ProtoRates| {
        format!(
            "<tr><th>{name}</th><td>{:.1}/s</td><td>{:.1}/s</td><td>{}</td><td>{}</td></tr>",
            r.announces_per_second, r.scrapes_per_second, r.announces, r.scrapes
        )
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>piecemeal tracker</title>\
         </head><body><h1>piecemeal tracker</h1>\
         <p>{} torrents, {} seeders, {} leechers; up {} s; memory {mib}</p>\
         <table><tr><th></th><th>announces (last minute)</th><th>scrapes (last minute)</th>\
         <th>announces</th><th>scrapes</th></tr>{}{}</table></body></html>\n",
        s.torrents,
        s.seeders,
        s.leechers,
        s.uptime_seconds,
        row("HTTP", &s.http),
        row("UDP", &s.udp),
    );
    Reply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: body.into_bytes(),
        failure: None,
    }
}

/// Resident set size: the second field of `/proc/self/statm`, in pages.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::server::testing::{announce_target, get, service};
    use std::net::IpAddr;

    #[test]
    fn status_counts_swarms_and_requests() {
        let service = service();
        let remote = IpAddr::from([127, 0, 0, 1]);
        get(&service, &announce_target(1, 1000, ""), remote);
        get(&service, &announce_target(2, 1001, ""), remote);
        get(
            &service,
            "/scrape?info_hash=%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01",
            remote,
        );
        let status = Status::now(&service, Instant::now());
        assert_eq!((status.torrents, status.leechers), (1, 2));
        assert_eq!((status.http.announces, status.http.scrapes), (2, 1));
        assert_eq!(status.udp.announces, 0);
        assert!(status.rss_bytes.is_some_and(|b| b > 1 << 20));
        let html = String::from_utf8(stats_html(&service, Instant::now()).body).unwrap();
        assert!(html.contains("1 torrents, 0 seeders, 2 leechers"), "{html}");
    }
}
