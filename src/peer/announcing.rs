//! The announce thread of one torrent: it tells the tracker how the torrent stands (`started`,
//! regular re-announces, `completed`, `stopped`), dials the peers the tracker names, and redials
//! the peers given with `--connect` while no connection to them is open.

use crate::peer::dial::dial;
use crate::peer::torrent_state::{TorrentEvent, TorrentState};
use crate::tracker::client::status::TrackerStatus;
use crate::tracker::client::{AnnounceError, Announcer};
use crate::tracker::protocol::{AnnounceRequest, AnnounceResponse, Event};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often `--connect` peers without an open connection are dialled again.
const REDIAL: Duration = Duration::from_secs(10);
/// Retry delay after a failed announce.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(15);
/// Bounds on the re-announce interval a tracker may ask for.
const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// The `stopped` announce is a courtesy: a dead tracker must not hold up the exit for long.
const STOPPED_TIMEOUT: Duration = Duration::from_secs(3);

/// The announces of one torrent; its [`run`](Self::run) is the body of the announce thread.
pub struct AnnounceTask {
    torrent: Arc<TorrentState>,
    announcer: Announcer,
    has_tracker: bool,
    port: u16,
    /// Peers given with `--connect`: dialled at start (before the first announce) and again
    /// every [`REDIAL`] while no connection to them is open, since they may come up later or
    /// hang up.
    connect: Vec<SocketAddr>,
}

impl AnnounceTask {
    /// Announces `torrent` (listening on `port`) to the tracker `tiers` (none: it runs on the
    /// `connect` peers alone).
    pub fn new(
        torrent: Arc<TorrentState>,
        tiers: Vec<Vec<String>>,
        port: u16,
        connect: Vec<SocketAddr>,
    ) -> AnnounceTask {
        AnnounceTask {
            torrent,
            has_tracker: !tiers.is_empty(),
            announcer: Announcer::new(tiers),
            port,
            connect,
        }
    }

    /// Each tracker's last outcome, as the announces record it.
    pub fn tracker_status(&self) -> Arc<TrackerStatus> {
        self.announcer.status()
    }

    /// The `started` announce, made by the caller before the thread starts so that a tracker
    /// that cannot be reached stops the process at once; `None` without a tracker.
    pub fn announce_started(&mut self) -> Option<Result<AnnounceResponse, AnnounceError>> {
        self.has_tracker.then(|| {
            self.announcer
                .announce(&request(&self.torrent, self.port, Event::Started))
        })
    }

    /// Re-announces at the tracker's interval, announces `completed` once the torrent is whole
    /// and `stopped` on shutdown, and dials the peers the tracker names.
    pub fn run(mut self, first: Option<AnnounceResponse>, events: Receiver<TorrentEvent>) {
        let torrent = self.torrent.clone();
        let mut next = handle_reply(&torrent, first.as_ref());
        let mut next_redial = Instant::now() + REDIAL;
        while !torrent.is_shutting_down() {
            if Instant::now() >= next_redial {
                for addr in &self.connect {
                    dial(&torrent, *addr);
                }
                next_redial = Instant::now() + REDIAL;
            }
            match events.recv_timeout(Duration::from_millis(200)) {
                Ok(TorrentEvent::Completed) if self.has_tracker => {
                    next = self.announce(Event::Completed)
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {
                    if self.has_tracker && Instant::now() >= next {
                        next = self.announce(Event::None);
                    }
                }
                // The torrent owns the sender, so this only happens once it is gone.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.has_tracker {
            self.announcer.set_timeout(STOPPED_TIMEOUT);
            self.announce(Event::Stopped);
        }
    }

    /// Announces once; returns when to announce next.
    fn announce(&mut self, event: Event) -> Instant {
        match self
            .announcer
            .announce(&request(&self.torrent, self.port, event))
        {
            Ok(reply) => handle_reply(&self.torrent, Some(&reply)),
            Err(e) => {
                log::warn!("{}: {e}", self.torrent.meta.info.name);
                Instant::now() + ANNOUNCE_RETRY
            }
        }
    }
}

/// The announce of `torrent` as it stands now.
fn request(torrent: &TorrentState, port: u16, event: Event) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: torrent.meta.info_hash,
        peer_id: torrent.peer_id,
        port,
        uploaded: torrent.uploaded.load(Ordering::Relaxed),
        downloaded: torrent.downloaded.load(Ordering::Relaxed),
        left: torrent.left(),
        event,
        numwant: Some(50),
    }
}

/// Dials the peers of a tracker reply and returns when to announce next.
fn handle_reply(torrent: &Arc<TorrentState>, reply: Option<&AnnounceResponse>) -> Instant {
    let Some(reply) = reply else {
        return Instant::now() + ANNOUNCE_RETRY;
    };
    log::info!(
        "{}: tracker lists {} peers (complete {:?}, incomplete {:?})",
        torrent.meta.info.name,
        reply.peers.len(),
        reply.complete,
        reply.incomplete
    );
    for peer in &reply.peers {
        dial(torrent, peer.addr);
    }
    let interval = reply.interval.max(reply.min_interval.unwrap_or_default());
    Instant::now() + interval.clamp(MIN_INTERVAL, MAX_INTERVAL)
}
