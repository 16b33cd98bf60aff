//! What the session keeps of one torrent across pauses and restarts within the process: how
//! it was added, its choices (files, limits, paused), where it stands, and its rates; and how
//! it is shown ([`TorrentSummary`], [`TorrentDetail`]).

use crate::bitfield::Bitfield;
use crate::metainfo::magnet::Magnet;
use crate::metainfo::selection;
use crate::metainfo::{InfoHash, Metainfo};
use crate::net::http::percent_encode;
use crate::peer::peer_manager::SlotView;
use crate::peer::rate_meter::RateMeter;
use crate::peer::session::torrent::Running;
use crate::peer::torrent_state::TorrentState;
use crate::rpc::control::{
    FileInfo, Limits, PeerInfo, TorrentDetail, TorrentStatus, TorrentSummary, TrackerInfo,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where a torrent's current start stands.
pub(crate) enum Phase {
    /// A magnet link's metadata is being fetched.
    Fetching,
    /// Its files are being checked (or its first announce is under way).
    Checking,
    /// Its threads run.
    Running(Running),
    /// Not started (paused).
    Stopped,
    /// Its start failed; the reason.
    Failed(String),
}

/// One torrent of the session.
pub(crate) struct Entry {
    pub info_hash: InfoHash,
    /// The link it was added by, when a magnet link.
    pub magnet: Option<Magnet>,
    /// The torrent, once known (a magnet link's after its metadata arrived).
    pub meta: Option<Metainfo>,
    /// Which files to fetch; `None` for every file (or `--only` for a `--torrent`).
    pub wanted: Option<Vec<bool>>,
    pub limits: Limits,
    pub paused: bool,
    /// Given with `--torrent` or `--magnet`: not stored, and a disk failure ends the process
    /// as it always did.
    pub from_cli: bool,
    pub phase: Phase,
    /// The current start's stop flag.
    pub stop: Arc<AtomicBool>,
    /// The last start, stopped but its threads perhaps not yet ended: what is shown while
    /// paused, and waited for before the next start.
    pub parked: Option<Running>,
    /// Verified pieces known without a start (read from the resume record at a restart).
    pub have: Option<Bitfield>,
    /// Payload bytes of earlier starts in this process (downloaded, uploaded).
    pub carried: (u64, u64),
    pub down: RateMeter,
    pub up: RateMeter,
    /// When it was added (the process's start for the torrents it starts with).
    pub added: Instant,
    /// Peers to dial at its next start, and peers banned for bad metadata.
    pub connect: Vec<SocketAddr>,
    pub banned: Vec<(SocketAddr, [u8; 20])>,
    /// Held by a start's thread while it runs (a check writes the files), so that a removal
    /// deletes the files only after it, and starts run one after another.
    pub starting: Arc<Mutex<()>>,
}

impl Entry {
    /// A torrent not started yet.
    pub fn new(info_hash: InfoHash, meta: Option<Metainfo>, added: Instant) -> Entry {
        Entry {
            info_hash,
            magnet: None,
            meta,
            wanted: None,
            limits: Limits::default(),
            paused: false,
            from_cli: false,
            phase: Phase::Stopped,
            stop: Arc::new(AtomicBool::new(true)),
            parked: None,
            have: None,
            carried: (0, 0),
            down: RateMeter::default(),
            up: RateMeter::default(),
            added,
            connect: Vec::new(),
            banned: Vec::new(),
            starting: Arc::default(),
        }
    }

    /// The running torrent's state.
    pub fn running(&self) -> Option<&Arc<TorrentState>> {
        match &self.phase {
            Phase::Running(r) => Some(&r.torrent),
            _ => None,
        }
    }

    /// The trackers the current (or last) start announces to, with their last outcomes; the
    /// torrent's own before a start.
    fn trackers(&self, meta: &Metainfo) -> Vec<TrackerInfo> {
        let started = match &self.phase {
            Phase::Running(r) => Some(r),
            _ => self.parked.as_ref(),
        };
        let known = started.map(|r| r.trackers.all()).unwrap_or_default();
        if known.is_empty() {
            let urls = meta.tracker_tiers().into_iter().flatten();
            return urls
                .map(|url| TrackerInfo {
                    url,
                    peers: None,
                    error: None,
                })
                .collect();
        }
        (known.into_iter())
            .map(|(url, reply)| TrackerInfo {
                url,
                peers: reply.peers,
                error: reply.error,
            })
            .collect()
    }

    /// The state to show: the running one, or the last one.
    fn shown(&self) -> Option<&Arc<TorrentState>> {
        self.running().or(self.parked.as_ref().map(|r| &r.torrent))
    }

    /// The files to fetch, one flag per file of `meta`.
    pub fn wanted_files(&self, meta: &Metainfo) -> Vec<bool> {
        self.wanted
            .clone()
            .filter(|w| w.len() == meta.info.files.len())
            .unwrap_or_else(|| vec![true; meta.info.files.len()])
    }

    /// Verified pieces, when known.
    fn verified(&self) -> Option<Bitfield> {
        match self.shown() {
            Some(t) => Some(t.picker.have()),
            None => self.have.clone(),
        }
    }

    /// Payload bytes since the torrent was added in this process (downloaded, uploaded).
    pub fn traffic(&self) -> (u64, u64) {
        let (down, up) = self.shown().map_or((0, 0), |t| {
            (
                t.downloaded.load(Ordering::Relaxed),
                t.uploaded.load(Ordering::Relaxed),
            )
        });
        (self.carried.0 + down, self.carried.1 + up)
    }

    /// Samples the rates at `now`.
    pub fn sample(&mut self, now: Instant) {
        let (down, up) = self.traffic();
        self.down.record(now, down);
        self.up.record(now, up);
    }

    /// Where it stands.
    pub fn status(&self) -> TorrentStatus {
        match &self.phase {
            _ if self.paused => TorrentStatus::Paused,
            Phase::Fetching => TorrentStatus::FetchingMetadata,
            Phase::Checking => TorrentStatus::Checking,
            Phase::Stopped => TorrentStatus::Paused,
            Phase::Failed(_) => TorrentStatus::Error,
            Phase::Running(r) if r.torrent.failure().is_some() => TorrentStatus::Error,
            Phase::Running(r) if r.torrent.is_complete() => TorrentStatus::Seeding,
            Phase::Running(_) => TorrentStatus::Downloading,
        }
    }

    fn error(&self) -> Option<String> {
        match &self.phase {
            Phase::Failed(why) => Some(why.clone()),
            Phase::Running(r) => r.torrent.failure(),
            _ => None,
        }
    }

    /// Bytes of the wanted files, and of those the bytes verified.
    fn sizes(&self) -> (u64, u64) {
        let Some(meta) = &self.meta else {
            return (0, 0);
        };
        if let Some(t) = self.shown() {
            let (done, size) = t.wanted_progress();
            return (size, done);
        }
        let wanted = selection::wanted_pieces(&meta.info, &self.wanted_files(meta));
        let have = self
            .have
            .clone()
            .unwrap_or_else(|| Bitfield::new(wanted.len()));
        let size = |i| meta.info.piece_size(i);
        let done = wanted.ones().filter(|&i| have.get(i)).map(size).sum();
        (wanted.ones().map(size).sum(), done)
    }

    /// Its line of the list.
    pub fn summary(&self) -> TorrentSummary {
        let (size, done) = self.sizes();
        let (downloaded, uploaded) = self.traffic();
        let name = match (&self.meta, &self.magnet) {
            (Some(meta), _) => meta.info.name.clone(),
            (None, Some(Magnet { name: Some(n), .. })) => n.clone(),
            _ => self.info_hash.hex(),
        };
        let (download_rate, upload_rate) = (self.down.rate(), self.up.rate());
        let eta_secs = (done < size && download_rate > 0).then(|| (size - done) / download_rate);
        let ratio = |n: u64| {
            if size == 0 {
                0.0
            } else {
                n as f64 / size as f64
            }
        };
        TorrentSummary {
            id: self.info_hash.hex(),
            name,
            status: self.status(),
            size,
            done,
            progress: ratio(done),
            download_rate,
            upload_rate,
            downloaded,
            uploaded,
            ratio: ratio(uploaded),
            peers: self
                .running()
                .map_or(0, |t| t.connections.load(Ordering::Relaxed)),
            eta_secs,
            error: self.error(),
            limits: self.limits,
        }
    }

    /// Everything about it.
    pub fn detail(&self) -> TorrentDetail {
        let summary = self.summary();
        let Some(meta) = &self.meta else {
            let magnet = self.magnet.as_ref().map_or_else(
                || format!("magnet:?xt=urn:btih:{}", self.info_hash),
                magnet_link,
            );
            return TorrentDetail {
                summary,
                magnet,
                files: Vec::new(),
                peer_list: Vec::new(),
                trackers: Vec::new(),
                piece_count: 0,
                pieces: String::new(),
            };
        };
        let verified = self
            .verified()
            .unwrap_or_else(|| Bitfield::new(meta.info.piece_count()));
        let wanted = self.wanted_files(meta);
        let mut offset = 0;
        let files = (meta.info.files.iter().enumerate())
            .map(|(index, file)| {
                let done = verified_bytes(meta.info.piece_length, &verified, offset, file.length);
                offset += file.length;
                FileInfo {
                    index,
                    path: meta
                        .info
                        .relative_path(file)
                        .to_string_lossy()
                        .replace('\\', "/"),
                    length: file.length,
                    done,
                    wanted: wanted[index],
                }
            })
            .collect();
        TorrentDetail {
            summary,
            magnet: meta.magnet_link(),
            files,
            peer_list: self.running().map_or_else(Vec::new, |t| peers(t)),
            trackers: self.trackers(meta),
            piece_count: meta.info.piece_count() as u32,
            pieces: verified
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

/// A link naming what `magnet` names (its hash, name, trackers and peers).
pub(crate) fn magnet_link(magnet: &Magnet) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{}", magnet.info_hash);
    if let Some(name) = &magnet.name {
        link += &format!("&dn={}", percent_encode(name.as_bytes()));
    }
    for url in &magnet.trackers {
        link += &format!("&tr={}", percent_encode(url.as_bytes()));
    }
    for peer in &magnet.peers {
        link += &format!("&x.pe={}", percent_encode(peer.as_bytes()));
    }
    link
}

/// Bytes of the span `offset..offset + length` of the torrent inside verified pieces.
fn verified_bytes(piece: u64, verified: &Bitfield, offset: u64, length: u64) -> u64 {
    if length == 0 {
        return 0;
    }
    let (first, last) = (offset / piece, (offset + length - 1) / piece);
    (first..=last)
        .filter(|&i| verified.get(i as usize))
        .map(|i| {
            let start = (i * piece).max(offset);
            let end = ((i + 1) * piece).min(offset + length);
            end - start
        })
        .sum()
}

/// The torrent's connected peers: the bytes of verified pieces each sent, the block bytes
/// sent to it, the rates its connection last sampled, and the share of pieces it has.
fn peers(torrent: &TorrentState) -> Vec<PeerInfo> {
    let stats = torrent.peer_stats();
    let piece_count = torrent.meta.info.piece_count() as u64;
    torrent
        .links()
        .into_iter()
        .map(|link| {
            let id = &link.peer_id;
            // Azureus-style ids (`-lt2080-`) name the client; others are left unnamed.
            let client = (id[0] == b'-' && id[7] == b'-' && id[1..7].is_ascii())
                .then(|| String::from_utf8_lossy(&id[..8]).into_owned());
            let view =
                (torrent.peers.slot_of(link.addr)).map_or_else(SlotView::default, |s| s.view());
            PeerInfo {
                addr: link.addr.to_string(),
                client,
                download_rate: view.download_rate,
                upload_rate: view.upload_rate,
                downloaded: stats.get(&link.addr).map_or(0, |s| s.bytes),
                uploaded: view.sent,
                progress: share(view.pieces, piece_count),
            }
        })
        .collect()
}

/// `part` of `whole` as a fraction from 0.0 to 1.0 (0.0 of nothing).
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part.min(whole) as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_share_is_bounded_and_zero_of_nothing() {
        assert_eq!(share(3, 4), 0.75);
        assert_eq!(share(5, 4), 1.0);
        assert_eq!(share(0, 0), 0.0);
    }

    #[test]
    fn a_files_verified_bytes_are_its_part_of_the_verified_pieces() {
        // Pieces of 10 bytes, 0 and 2 verified; a file from byte 5 to 25.
        let verified = Bitfield::with_pieces(3, &[0, 2]);
        assert_eq!(verified_bytes(10, &verified, 5, 20), 5 + 5);
        assert_eq!(verified_bytes(10, &verified, 10, 10), 0);
        assert_eq!(verified_bytes(10, &verified, 0, 30), 20);
        assert_eq!(verified_bytes(10, &verified, 7, 0), 0);
    }

    #[test]
    fn a_magnet_link_made_again_parses_to_the_same_magnet() {
        let uri = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=a+b%26c\
                   &tr=http%3A%2F%2Ft%3A1%2Fannounce&x.pe=127.0.0.1:6881";
        let magnet = Magnet::parse(uri).unwrap();
        assert_eq!(Magnet::parse(&magnet_link(&magnet)).unwrap(), magnet);
    }
}
