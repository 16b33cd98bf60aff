//! What a running peer lets a caller change and see while it runs: the operations behind the
//! JSON API, the web page and `piecemeal remote`.
//!
//! The HTTP side ([`crate::rpc`]) knows only this trait; the peer's session implements it. Every
//! type here is what the API sends and receives as JSON, field for field, so the web page and
//! scripts read the same names as this file.
//!
//! A torrent is named by its info hash in hex (40 characters, lowercase), which stays the same
//! across restarts. Every `id` argument also accepts a unique prefix of at least 4 characters,
//! as `git` does for commits.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a torrent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TorrentStatus {
    /// A magnet link whose info dictionary is still being fetched from peers.
    FetchingMetadata,
    /// The files on disk are being hashed (start-up check, or `verify`).
    Checking,
    /// Fetching the wanted pieces.
    Downloading,
    /// Every wanted piece is verified; serving others.
    Seeding,
    /// Stopped by the user: no connections, no announces; kept across restarts.
    Paused,
    /// Stopped by an error (see `error`), e.g. a disk that is full.
    Error,
}

/// Upload and download limits in bytes per second; 0 means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub upload: u64,
    pub download: u64,
}

/// One line of the torrent list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorrentSummary {
    /// The info hash in lowercase hex.
    pub id: String,
    /// The torrent's name (a magnet link's `dn`, or its hash, until its metadata is known).
    pub name: String,
    pub status: TorrentStatus,
    /// Bytes of the wanted files (0 while the metadata is unknown).
    pub size: u64,
    /// Of those, the bytes verified on disk.
    pub done: u64,
    /// `done / size`, from 0.0 to 1.0 (0.0 while the metadata is unknown).
    pub progress: f64,
    /// Bytes per second over the last few seconds.
    pub download_rate: u64,
    pub upload_rate: u64,
    /// Payload bytes since the torrent was started in this process.
    pub downloaded: u64,
    pub uploaded: u64,
    /// Uploaded divided by the torrent's size (0.0 when the size is unknown).
    pub ratio: f64,
    /// Connected peers.
    pub peers: usize,
    /// Seconds until the wanted files are complete at the current rate; None when unknown
    /// (no rate) or already complete.
    pub eta_secs: Option<u64>,
    /// Why the torrent stopped, when `status` is `error`.
    pub error: Option<String>,
    /// This torrent's own limits (the process-wide ones apply on top).
    pub limits: Limits,
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The index `piecemeal show` prints, and `choose_files` takes.
    pub index: usize,
    /// The path inside the torrent, `/`-separated.
    pub path: String,
    pub length: u64,
    /// Bytes of this file inside verified pieces.
    pub done: u64,
    /// Whether the file is fetched.
    pub wanted: bool,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// `ip:port` as connected.
    pub addr: String,
    /// The client, from its peer id or extended handshake (e.g. `-lt2080-`), when known.
    pub client: Option<String>,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    /// Fraction of the torrent the peer says it has, 0.0 to 1.0.
    pub progress: f64,
}

/// One tracker of a torrent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackerInfo {
    pub url: String,
    /// Peers in the last reply, when there was one.
    pub peers: Option<u32>,
    /// The last announce's error, if it failed.
    pub error: Option<String>,
}

/// Everything about one torrent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorrentDetail {
    #[serde(flatten)]
    pub summary: TorrentSummary,
    /// The magnet link of the torrent.
    pub magnet: String,
    pub files: Vec<FileInfo>,
    /// The connected peers (the summary's `peers` is their count).
    pub peer_list: Vec<PeerInfo>,
    pub trackers: Vec<TrackerInfo>,
    /// Pieces in the torrent (0 while the metadata is unknown).
    pub piece_count: u32,
    /// Verified pieces as the wire's bitfield (piece 0 is the high bit of the first byte), in
    /// lowercase hex.
    pub pieces: String,
}

/// The whole process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// piecemeal's version.
    pub version: String,
    /// The peer's listening address.
    pub listen: String,
    pub download_rate: u64,
    pub upload_rate: u64,
    /// The process-wide limits.
    pub limits: Limits,
    pub torrents: usize,
}

/// What to add.
#[derive(Clone, Debug, PartialEq)]
pub enum AddSource {
    /// The bytes of a `.torrent` file.
    Torrent(Vec<u8>),
    /// A magnet link (`magnet:?xt=urn:btih:...`).
    Magnet(String),
}

/// Why an operation was refused. The messages are shown to the user as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlError {
    /// No torrent has this id (or prefix).
    UnknownTorrent(String),
    /// The prefix names more than one torrent.
    AmbiguousId(String),
    /// The bytes given are no valid `.torrent` (the reason says which field).
    BadTorrent(String),
    /// The magnet link cannot be parsed.
    BadMagnet(String),
    /// The torrent is in the session already (its id).
    AlreadyAdded(String),
    /// A file index the torrent does not have.
    BadFile {
        id: String,
        index: usize,
        files: usize,
    },
    /// The operation cannot be done in the torrent's current state (e.g. choosing the files of a
    /// magnet link whose metadata is not known yet).
    NotNow(String),
    /// The disk or another resource failed; the session keeps running.
    Failed(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::UnknownTorrent(id) => write!(f, "no torrent with id {id}"),
            ControlError::AmbiguousId(id) => {
                write!(f, "id {id} matches several torrents: give more characters")
            }
            ControlError::BadTorrent(why) => write!(f, "not a valid .torrent: {why}"),
            ControlError::BadMagnet(why) => write!(f, "not a valid magnet link: {why}"),
            ControlError::AlreadyAdded(id) => write!(f, "torrent {id} is already in the session"),
            ControlError::BadFile { id, index, files } => write!(
                f,
                "torrent {id} has no file {index} (it has {files}, numbered from 0)"
            ),
            ControlError::NotNow(why) => write!(f, "{why}"),
            ControlError::Failed(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// The operations on a running peer. Calls return at once: slow work (hashing, fetching
/// metadata, closing connections) goes on in the session's threads, and the list shows it.
pub trait Control: Send + Sync {
    /// The process as a whole.
    fn session(&self) -> SessionInfo;
    /// Every torrent, in the order they were added.
    fn list(&self) -> Vec<TorrentSummary>;
    /// One torrent with its files, peers, trackers and pieces.
    fn detail(&self, id: &str) -> Result<TorrentDetail, ControlError>;
    /// Adds a torrent, saved in the peer's folder so it is back after a restart; `paused`
    /// adds it without starting it.
    fn add(&self, source: AddSource, paused: bool) -> Result<TorrentSummary, ControlError>;
    /// Stops a torrent's connections and announces (a `stopped` announce); it stays listed.
    fn pause(&self, id: &str) -> Result<(), ControlError>;
    /// Starts a paused torrent again (checking it against its resume record first).
    fn resume(&self, id: &str) -> Result<(), ControlError>;
    /// Removes a torrent from the session; with `delete_data` its files are deleted too
    /// (only the files the torrent names, never anything else in the folder).
    fn remove(&self, id: &str, delete_data: bool) -> Result<(), ControlError>;
    /// Hashes the torrent's files again, as at a first start.
    fn verify(&self, id: &str) -> Result<(), ControlError>;
    /// Fetches only these files (indexes as in [`FileInfo::index`]); an empty list fetches
    /// none.
    fn choose_files(&self, id: &str, wanted: &[usize]) -> Result<(), ControlError>;
    /// Sets the process-wide limits.
    fn set_limits(&self, limits: Limits) -> Result<(), ControlError>;
    /// Sets one torrent's limits.
    fn set_torrent_limits(&self, id: &str, limits: Limits) -> Result<(), ControlError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_names_each_field_once_and_reads_back() {
        let summary = TorrentSummary {
            id: "ab".repeat(20),
            name: "t".into(),
            status: TorrentStatus::Downloading,
            size: 10,
            done: 5,
            progress: 0.5,
            download_rate: 1,
            upload_rate: 2,
            downloaded: 5,
            uploaded: 0,
            ratio: 0.0,
            peers: 1,
            eta_secs: Some(5),
            error: None,
            limits: Limits::default(),
        };
        let peer = PeerInfo {
            addr: "127.0.0.1:6881".into(),
            client: Some("-PM0100-".into()),
            download_rate: 1,
            upload_rate: 0,
            downloaded: 5,
            uploaded: 0,
            progress: 1.0,
        };
        let detail = TorrentDetail {
            summary,
            magnet: "magnet:?xt=urn:btih:".to_string() + &"ab".repeat(20),
            files: Vec::new(),
            peer_list: vec![peer],
            trackers: Vec::new(),
            piece_count: 1,
            pieces: "80".into(),
        };
        let json = serde_json::to_string(&detail).unwrap();
        // A JSON reader keeps only one of two equal keys: the flattened summary must not share
        // a name with the detail's own fields.
        for key in ["\"peers\":", "\"peer_list\":", "\"id\":", "\"files\":"] {
            assert_eq!(json.matches(key).count(), 1, "{key} in {json}");
        }
        assert_eq!(
            serde_json::from_str::<TorrentDetail>(&json).unwrap(),
            detail
        );
    }
}
