//! What each tracker of a torrent last answered, shared between the announce thread that
//! records it and whoever shows it (the session's torrent detail).

use crate::lock::lock;
use std::sync::Mutex;

/// The last outcome of announcing to one tracker URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerReply {
    /// Peers in its last reply, once one came.
    pub peers: Option<u32>,
    /// Why its last announce failed, if it did (cleared by a reply).
    pub error: Option<String>,
}

/// Tracker URLs in the announcer's order with their last outcomes.
#[derive(Debug, Default)]
pub struct TrackerStatus {
    trackers: Mutex<Vec<(String, TrackerReply)>>,
}

impl TrackerStatus {
    /// Every URL of `tiers`, none announced to yet.
    pub fn new(tiers: &[Vec<String>]) -> TrackerStatus {
        let trackers = tiers
            .iter()
            .flatten()
            .map(|u| (u.clone(), TrackerReply::default()));
        TrackerStatus {
            trackers: Mutex::new(trackers.collect()),
        }
    }

    /// `url` answered with `peers` peers.
    pub fn replied(&self, url: &str, peers: usize) {
        self.update(url, |r| {
            r.peers = Some(u32::try_from(peers).unwrap_or(u32::MAX));
            r.error = None;
        });
    }

    /// Announcing to `url` failed with `error` (the peers of an earlier reply are kept).
    pub fn failed(&self, url: &str, error: String) {
        self.update(url, |r| r.error = Some(error));
    }

    fn update(&self, url: &str, f: impl FnOnce(&mut TrackerReply)) {
        let mut trackers = lock(&self.trackers);
        match trackers.iter_mut().find(|(u, _)| u == url) {
            Some((_, reply)) => f(reply),
            None => {
                let mut reply = TrackerReply::default();
                f(&mut reply);
                trackers.push((url.to_string(), reply));
            }
        }
    }

    /// Every URL with its last outcome.
    pub fn all(&self) -> Vec<(String, TrackerReply)> {
        lock(&self.trackers).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_clears_the_error_and_a_failure_keeps_the_peers() {
        let tiers = vec![vec!["http://a".to_string()], vec!["udp://b".to_string()]];
        let status = TrackerStatus::new(&tiers);
        status.failed("http://a", "refused".into());
        status.replied("udp://b", 7);
        status.failed("udp://b", "timed out".into());
        status.replied("http://a", 3);
        let expected = vec![
            (
                "http://a".to_string(),
                TrackerReply {
                    peers: Some(3),
                    error: None,
                },
            ),
            (
                "udp://b".to_string(),
                TrackerReply {
                    peers: Some(7),
                    error: Some("timed out".into()),
                },
            ),
        ];
        assert_eq!(status.all(), expected);
    }
}
