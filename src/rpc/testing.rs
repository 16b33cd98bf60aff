//! A [`Control`] test double for the server's unit tests: two torrents whose ids share the
//! prefix `aaaa` (so `aaaa` is ambiguous), a log of the changing calls, and a few set-ups
//! that fail the way the session does.

use super::control::*;
use crate::net::http::Request;
use std::sync::Mutex;

/// Two torrents, `aaaa0…` (one file, any call works) and `aaaa1…` (verify is refused: it is
/// still checking). `set_limits` with an upload of 13 fails as a disk would.
#[derive(Default)]
pub(super) struct FakeControl {
    torrents: Mutex<Vec<TorrentSummary>>,
    calls: Mutex<Vec<String>>,
}

fn summary(id: String, status: TorrentStatus) -> TorrentSummary {
    TorrentSummary {
        name: format!("name-{}", &id[..5]),
        id,
        status,
        size: 1000,
        done: 250,
        progress: 0.25,
        download_rate: 100,
        upload_rate: 0,
        downloaded: 250,
        uploaded: 0,
        ratio: 0.0,
        peers: 1,
        eta_secs: Some(8),
        error: None,
        limits: Limits::default(),
    }
}

impl FakeControl {
    pub(super) fn sample() -> FakeControl {
        let fake = FakeControl::default();
        for digit in ['0', '1'] {
            let id = format!("aaaa{}", digit.to_string().repeat(36));
            fake.torrents
                .lock()
                .unwrap()
                .push(summary(id, TorrentStatus::Downloading));
        }
        fake
    }

    pub(super) fn first_id(&self) -> String {
        self.torrents.lock().unwrap()[0].id.clone()
    }

    /// The changing calls so far, one line each.
    pub(super) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    /// The full id of `prefix`, as the session resolves it.
    fn resolve(&self, prefix: &str) -> Result<String, ControlError> {
        let torrents = self.torrents.lock().unwrap();
        let found: Vec<&TorrentSummary> = torrents
            .iter()
            .filter(|t| prefix.len() >= 4 && t.id.starts_with(prefix))
            .collect();
        match found[..] {
            [one] => Ok(one.id.clone()),
            [] => Err(ControlError::UnknownTorrent(prefix.to_string())),
            _ => Err(ControlError::AmbiguousId(prefix.to_string())),
        }
    }
}

impl Control for FakeControl {
    fn session(&self) -> SessionInfo {
        SessionInfo {
            version: "test".into(),
            listen: "127.0.0.1:6881".into(),
            download_rate: 0,
            upload_rate: 0,
            limits: Limits::default(),
            torrents: self.torrents.lock().unwrap().len(),
        }
    }

    fn list(&self) -> Vec<TorrentSummary> {
        self.torrents.lock().unwrap().clone()
    }

    fn detail(&self, id: &str) -> Result<TorrentDetail, ControlError> {
        let id = self.resolve(id)?;
        let summary = self.list().into_iter().find(|t| t.id == id).unwrap();
        Ok(TorrentDetail {
            magnet: format!("magnet:?xt=urn:btih:{id}"),
            files: vec![FileInfo {
                index: 0,
                path: summary.name.clone(),
                length: 1000,
                done: 250,
                wanted: true,
            }],
            peer_list: Vec::new(),
            trackers: Vec::new(),
            piece_count: 4,
            pieces: "80".into(),
            summary,
        })
    }

    fn add(&self, source: AddSource, paused: bool) -> Result<TorrentSummary, ControlError> {
        match source {
            AddSource::Torrent(bytes) => {
                self.log(format!("add torrent {} bytes paused={paused}", bytes.len()));
                Err(ControlError::BadTorrent("no info dictionary".into()))
            }
            AddSource::Magnet(link) => {
                self.log(format!("add magnet paused={paused}"));
                let hash = link
                    .strip_prefix("magnet:?xt=urn:btih:")
                    .filter(|h| h.len() == 40)
                    .ok_or_else(|| ControlError::BadMagnet("no xt=urn:btih: hash".into()))?;
                if self.resolve(hash).is_ok() {
                    return Err(ControlError::AlreadyAdded(hash.to_string()));
                }
                let status = if paused {
                    TorrentStatus::Paused
                } else {
                    TorrentStatus::FetchingMetadata
                };
                let added = summary(hash.to_string(), status);
                self.torrents.lock().unwrap().push(added.clone());
                Ok(added)
            }
        }
    }

    fn pause(&self, id: &str) -> Result<(), ControlError> {
        let id = self.resolve(id)?;
        self.log(format!("pause {id}"));
        Ok(())
    }

    fn resume(&self, id: &str) -> Result<(), ControlError> {
        let id = self.resolve(id)?;
        self.log(format!("resume {id}"));
        Ok(())
    }

    fn remove(&self, id: &str, delete_data: bool) -> Result<(), ControlError> {
        let id = self.resolve(id)?;
        self.log(format!("remove {id} delete_data={delete_data}"));
        self.torrents.lock().unwrap().retain(|t| t.id != id);
        Ok(())
    }

    fn verify(&self, id: &str) -> Result<(), ControlError> {
        let id = self.resolve(id)?;
        if id.starts_with("aaaa1") {
            return Err(ControlError::NotNow("the torrent is still checking".into()));
        }
        self.log(format!("verify {id}"));
        Ok(())
    }

    fn choose_files(&self, id: &str, wanted: &[usize]) -> Result<(), ControlError> {
        let id = self.resolve(id)?;
        if let Some(&index) = wanted.iter().find(|&&i| i >= 1) {
            return Err(ControlError::BadFile {
                id,
                index,
                files: 1,
            });
        }
        self.log(format!("files {id} {wanted:?}"));
        Ok(())
    }

    fn set_limits(&self, limits: Limits) -> Result<(), ControlError> {
        if limits.upload == 13 {
            return Err(ControlError::Failed("the disk is full".into()));
        }
        self.log(format!("limits {}/{}", limits.upload, limits.download));
        Ok(())
    }

    fn set_torrent_limits(&self, id: &str, limits: Limits) -> Result<(), ControlError> {
        let id = self.resolve(id)?;
        self.log(format!(
            "torrent-limits {id} {}/{}",
            limits.upload, limits.download
        ));
        Ok(())
    }
}

/// A request as `read_request` would return it.
pub(super) fn request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Request {
    Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    }
}
