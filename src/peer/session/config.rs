//! The flags a peer is started with.

use crate::disk::file_pool::DEFAULT_MAX_OPEN_FILES;
use crate::metainfo::magnet::Magnet;
use crate::metainfo::selection::FileSpec;
use crate::peer::choker::DEFAULT_UPLOAD_SLOTS;
use crate::peer::connection_limits::{DEFAULT_PER_PROCESS, DEFAULT_PER_TORRENT};
use crate::peer::encryption::Encryption;
use crate::peer::rate_limit::Rate;
use clap::builder::TypedValueParser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// How a peer is started: these are the `piecemeal peer` flags (the doc comments are their
/// help text).
#[derive(Clone, Debug, clap::Args)]
pub struct PeerConfig {
    /// The peer's folder (content is read from and written below it).
    #[arg(long)]
    pub dir: PathBuf,
    /// A .torrent file to serve; repeat for several.
    #[arg(long = "torrent")]
    pub torrents: Vec<PathBuf>,
    /// A magnet link to download (magnet:?xt=urn:btih:...); repeat for several. Its metadata
    /// is fetched from peers of the link's trackers (tr), its x.pe, --connect and the DHT, saved as
    /// NAME.torrent in --dir, and the download goes on as with --torrent.
    #[arg(long = "magnet", value_name = "URI", value_parser = Magnet::parse)]
    pub magnets: Vec<Magnet>,
    /// Address to listen on (default: every interface, IPv6 and IPv4).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 6881)]
    pub port: u16,
    /// Announce to this tracker URL instead of the torrents' own.
    #[arg(long)]
    pub tracker: Option<String>,
    /// A peer address to connect to directly; repeat for several.
    #[arg(long = "connect")]
    pub connect: Vec<SocketAddr>,
    /// Exit once every torrent is complete instead of seeding.
    #[arg(long)]
    pub exit_when_done: bool,
    /// Fetch only these files (of every torrent given); repeat for several. SPEC is a file
    /// index as `piecemeal show` numbers them (3), a range of them (2-5), or a glob on the
    /// path `show` prints (`*.mkv`; `*` also matches `/`, `?` one character). Pieces shared
    /// with other files are fetched whole. Done (the `complete` line, --exit-when-done) once
    /// the selected files are; the tracker still hears the whole torrent's bytes as `left`.
    #[arg(long = "only", value_name = "SPEC", value_parser = FileSpec::parse)]
    pub only: Vec<FileSpec>,
    /// Incoming handshakes served at once, on top of --max-connections (a worker serves an
    /// incoming connection for its whole life).
    #[arg(long, default_value_t = 64)]
    pub upload_workers: usize,
    /// Connections open at once for all torrents together, both directions. When full, a new
    /// one takes the place of one that exchanged no data for 30 s, or is refused.
    #[arg(long, default_value_t = DEFAULT_PER_PROCESS, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_connections: usize,
    /// Connections open at once per torrent, both directions (like --max-connections).
    #[arg(long, default_value_t = DEFAULT_PER_TORRENT, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_connections_per_torrent: usize,
    /// Upload limit for all torrents together, in bytes per second: 500k, 2M, 1.5M
    /// (k = 1024, M = 1024²); 0 is unlimited. Applies to every peer, local ones too. Without
    /// it, the limit last set through the API in this folder, else unlimited.
    #[arg(long, value_name = "RATE", value_parser = Rate::parse)]
    pub max_upload_rate: Option<Rate>,
    /// Download limit for all torrents together, in bytes per second, like --max-upload-rate.
    #[arg(long, value_name = "RATE", value_parser = Rate::parse)]
    pub max_download_rate: Option<Rate>,
    /// Peers uploaded to at once per torrent (the fastest to us while downloading, in turns
    /// while seeding), plus one optimistic unchoke.
    #[arg(long, default_value_t = DEFAULT_UPLOAD_SLOTS, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub upload_slots: usize,
    /// Files kept open at once for all torrents together (the least recently used is closed
    /// first), so a torrent of many files needs no descriptor per file.
    #[arg(long, default_value_t = DEFAULT_MAX_OPEN_FILES, value_parser = TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_open_files: usize,
    /// Message stream encryption: `prefer` dials encrypted and falls back to plaintext,
    /// `require` speaks RC4-encrypted connections only, `off` plaintext only. Incoming
    /// connections may be either unless `require` or `off` says otherwise.
    #[arg(long, value_enum, default_value_t = Encryption::Prefer)]
    pub encryption: Encryption,
    /// Do not run the DHT node (it is never used for private torrents anyway).
    #[arg(long)]
    pub no_dht: bool,
    /// A DHT node to bootstrap from, HOST:PORT; repeat for several. Default: the public
    /// routers router.bittorrent.com, dht.transmissionbt.com and router.utorrent.com (6881),
    /// none when --bind is a loopback address. The table saved in the folder is asked first.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Draw progress bars (stdout is a terminal) instead of plain lines.
    #[arg(skip)]
    pub bars: bool,
    /// Serve the JSON API on HOST:PORT, e.g. 127.0.0.1:9091 (port 0 picks a free one); off
    /// unless given. Requests need the token (see --rpc-token). With --rpc the peer may start
    /// with no torrent and be given them while it runs.
    #[arg(long, value_name = "HOST:PORT")]
    pub rpc: Option<SocketAddr>,
    /// The API token; default: DIR/.piecemeal/rpc-token, made and printed at first start
    /// (on a loopback --rpc address only: any other needs this flag or that file).
    #[arg(long, value_name = "TOKEN")]
    pub rpc_token: Option<String>,
}
