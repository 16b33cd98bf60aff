//! The `piecemeal` command: parses flags and calls the library. Errors are printed once, on
//! one line, with a non-zero exit code.

use clap::{Parser, Subcommand};
use piecemeal::metainfo::{self, CreateOptions, Metainfo};
use piecemeal::peer::{self, PeerConfig};
use piecemeal::tracker::server::{self as tracker, TrackerConfig};
use std::io::IsTerminal;
use std::net::SocketAddr;
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
    Tracker {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:6969")]
        bind: SocketAddr,
        /// Re-announce interval told to peers, in seconds.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Seconds after which a peer that stopped announcing is forgotten
        /// (default: twice the interval plus 30).
        #[arg(long)]
        peer_timeout: Option<u64>,
        /// Worker threads answering requests.
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// Threads answering UDP (BEP 15) announces on the same port; 0 turns UDP off.
        #[arg(long, default_value_t = 2)]
        udp_threads: usize,
    },
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
        Command::Tracker {
            bind,
            interval,
            peer_timeout,
            workers,
            udp_threads,
        } => {
            let interval = Duration::from_secs(interval.max(1));
            let defaults = TrackerConfig::default();
            let config = TrackerConfig {
                bind,
                workers,
                interval,
                min_interval: defaults.min_interval.min(interval),
                peer_timeout: peer_timeout
                    .map(Duration::from_secs)
                    .unwrap_or(tracker::default_peer_timeout(interval)),
                udp_threads,
                ..defaults
            };
            let stop = stop_flag()?;
            let handle = tracker::start(config).map_err(|e| e.to_string())?;
            println!("tracker listening on {}", handle.local_addr());
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            handle.shutdown();
            Ok(())
        }
        Command::Peer(mut config) => {
            config.bars = std::io::stdout().is_terminal();
            peer::run(config, stop_flag()?).map_err(|e| e.to_string())
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
