//! The `piecemeal` command: parses flags and calls the library. Errors are printed once, on
//! one line, with a non-zero exit code.

use clap::{Parser, Subcommand};
use piecemeal::metainfo::{self, CreateOptions, Metainfo};
use piecemeal::peer::{self, PeerConfig};
use piecemeal::tracker::server::{self as tracker, AccessMode, TrackerConfig};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "piecemeal", version, about = "A BitTorrent tracker and peer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a tracker: JSON `POST /announce`, BEP 3 `GET /announce` and `GET /scrape` on one port.
    Tracker(TrackerArgs),
    /// Seed what the folder holds and download what it lacks, until Ctrl-C.
    Peer(PeerConfig),
    /// Make a .torrent file from a file or a folder.
    Create {
        /// The file or folder to describe.
        path: PathBuf,
        /// Tracker announce URL; repeat for backups (each becomes a tier of announce-list).
        #[arg(short, long = "announce", required = true)]
        announce: Vec<String>,
        /// Where to write the .torrent.
        #[arg(short, long)]
        output: PathBuf,
        /// Piece length in bytes (a power of two; default chosen from the size).
        #[arg(short = 'l', long)]
        piece_length: Option<u64>,
        /// A comment stored in the torrent.
        #[arg(short, long)]
        comment: Option<String>,
        /// Mark the torrent private (BEP 27).
        #[arg(long)]
        private: bool,
    },
    /// Print what a .torrent file describes.
    Show {
        /// The .torrent file.
        torrent: PathBuf,
    },
    /// Drive a running peer (`piecemeal peer --rpc`) through its JSON API.
    Remote(piecemeal::rpc::remote::RemoteArgs),
}

/// The tracker's flags.
#[derive(clap::Args)]
struct TrackerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6969")]
    bind: SocketAddr,
    /// Re-announce interval told to peers, in seconds (30 minutes, as public trackers).
    #[arg(long, default_value_t = 1800)]
    interval: u64,
    /// Seconds after which a peer that stopped announcing is forgotten
    /// (default: one and a half intervals).
    #[arg(long)]
    peer_timeout: Option<u64>,
    /// Worker threads answering requests.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// `min interval` told to peers, in seconds (default: half the interval).
    #[arg(long)]
    min_interval: Option<u64>,
    /// Most connections open at once; when full, the longest-waiting idle one is closed.
    #[arg(long, default_value_t = 4096)]
    max_open_connections: usize,
    /// A proxy whose `ip=` and `X-Forwarded-For` are believed (repeatable).
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<IpAddr>,
    /// Most torrents tracked at once; announces for more are refused.
    #[arg(long, default_value_t = 200_000)]
    max_swarms: usize,
    /// Most peers stored per torrent; more are answered but not stored.
    #[arg(long, default_value_t = 50_000)]
    max_peers_per_swarm: usize,
    /// Announces one address (IPv6: one /64) may make per interval; 0 for no limit.
    #[arg(long, default_value_t = 2_000)]
    max_announces_per_ip: u32,
    /// Serve only the info hashes in FILE (40 hex per line, # comments); reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", conflicts_with = "blacklist")]
    whitelist: Option<PathBuf>,
    /// Serve every info hash except those in FILE; reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    blacklist: Option<PathBuf>,
    /// Threads answering UDP (BEP 15) announces on the same port; 0 turns UDP off.
    #[arg(long, default_value_t = 2)]
    udp_threads: usize,
}

impl TrackerArgs {
    fn config(self) -> TrackerConfig {
        let interval = Duration::from_secs(self.interval.max(1));
        let peer_timeout = self
            .peer_timeout
            .map(Duration::from_secs)
            .unwrap_or(tracker::default_peer_timeout(interval));
        let access = match (self.whitelist, self.blacklist) {
            (Some(path), _) => Some((AccessMode::Whitelist, path)),
            (None, Some(path)) => Some((AccessMode::Blacklist, path)),
            (None, None) => None,
        };
        TrackerConfig {
            bind: self.bind,
            workers: self.workers,
            max_open: self.max_open_connections,
            interval,
            min_interval: self
                .min_interval
                .map(Duration::from_secs)
                .unwrap_or(tracker::default_min_interval(interval))
                .min(interval),
            peer_timeout,
            // Short timeouts (tests, demos) need sweeps to match; public ones every 30 s.
            expire_every: (peer_timeout / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(30)),
            trusted_proxies: self.trusted_proxies,
            max_swarms: self.max_swarms,
            max_peers_per_swarm: self.max_peers_per_swarm,
            max_announces_per_ip: self.max_announces_per_ip,
            access,
            udp_threads: self.udp_threads,
            ..TrackerConfig::default()
        }
    }
}

/// Set by `SIGHUP`: the tracker reloads its access list.
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sighup(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

/// Makes `SIGHUP` ask for a reload (instead of stopping, as `ctrlc` set it up to).
fn reload_on_sighup() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGHUP, on_sighup as *const () as libc::sighandler_t);
    }
}

/// Runs the tracker until Ctrl-C or SIGTERM, reloading its access list on SIGHUP.
fn run_tracker(args: TrackerArgs) -> Result<(), String> {
    let stop = stop_flag()?;
    reload_on_sighup();
    let handle = tracker::start(args.config()).map_err(|e| e.to_string())?;
    println!("tracker listening on {}", handle.local_addr());
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if RELOAD.swap(false, Ordering::SeqCst) {
            match handle.reload_access() {
                Ok(count) => eprintln!("piecemeal: access list reloaded, {count} info hashes"),
                Err(e) => eprintln!("piecemeal: {e}; keeping the previous list"),
            }
        }
    }
    handle.shutdown();
    Ok(())
}

/// Sets a flag on Ctrl-C or SIGTERM.
fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(flag)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Tracker(args) => run_tracker(args),
        Command::Peer(mut config) => {
            config.bars = std::io::stdout().is_terminal();
            match peer::run(config, stop_flag()?) {
                // Nothing to run is a usage error, as a missing flag is.
                Err(e @ peer::PeerError::NoTorrents) => <Cli as clap::CommandFactory>::command()
                    .error(clap::error::ErrorKind::MissingRequiredArgument, e)
                    .exit(),
                outcome => outcome.map_err(|e| e.to_string()),
            }
        }
        Command::Create {
            path,
            announce,
            output,
            piece_length,
            comment,
            private,
        } => {
            let options = CreateOptions {
                announce,
                piece_length,
                comment,
                private,
                ..CreateOptions::default()
            };
            let bytes = metainfo::create(&path, &options).map_err(|e| e.to_string())?;
            std::fs::write(&output, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
            let meta = Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())?;
            println!("wrote {} (info hash {})", output.display(), meta.info_hash);
            println!("{}", meta.magnet_link());
            Ok(())
        }
        Command::Show { torrent } => {
            let meta = Metainfo::load(&torrent).map_err(|e| e.to_string())?;
            print!("{}", meta.describe());
            Ok(())
        }
        Command::Remote(args) => piecemeal::rpc::remote::run(args).map_err(|e| e.to_string()),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("piecemeal: {e}");
            ExitCode::FAILURE
        }
    }
}
