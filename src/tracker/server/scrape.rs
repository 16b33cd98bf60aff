//! Scrape (BEP 48): `GET /scrape` with one or more `info_hash` values, answered with each
//! torrent's seeder, leecher and download counts. Full scrapes (no `info_hash`) are not offered.

use super::params::{Query, twenty_bytes};
use super::routes::{Reply, Service, dict, int};
use super::stats::Proto;
use crate::bencode::Value;
use crate::metainfo::InfoHash;

/// Most torrents one scrape may ask about.
const MAX_SCRAPE_HASHES: usize = 64;

/// Answers a scrape of the `info_hash` values in `query`; `Err` holds the failure reason.
pub(super) fn scrape(query: &str, service: &Service) -> Result<Reply, String> {
    let query = Query::parse(query)?;
    let hashes = query
        .all("info_hash")
        .map(|h| twenty_bytes(h, "info_hash").map(InfoHash))
        .collect::<Result<Vec<_>, _>>()?;
    if hashes.is_empty() {
        return Err("scrape needs at least one info_hash (full scrapes are not offered)".into());
    }
    if hashes.len() > MAX_SCRAPE_HASHES {
        return Err(format!(
            "at most {MAX_SCRAPE_HASHES} info_hash values per scrape"
        ));
    }
    let files = service
        .scrape(Proto::Http, &hashes)
        .into_iter()
        .map(|(hash, stats)| {
            let entry = dict([
                ("complete", int(stats.complete)),
                ("downloaded", int(stats.downloaded)),
                ("incomplete", int(stats.incomplete)),
            ]);
            (hash.0.to_vec(), entry)
        })
        .collect();
    Ok(Reply::bencoded(&dict([("files", Value::Dict(files))])))
}
