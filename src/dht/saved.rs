//! The routing table kept across runs: on exit the node writes its id and nodes to a JSON file
//! in the peer's folder (atomically: a temporary file renamed over the old one), and at start
//! it reuses the id and asks the saved nodes first, so a restart rejoins without bootstrap
//! routers. A missing or unreadable file just means a fresh start.

use crate::dht::krpc::NodeInfo;
use crate::dht::node_id::NodeId;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::Path;

/// Most nodes read back (a table holds at most 1280; anything more is not ours).
const MAX_NODES: usize = 2000;
/// Largest file read.
const MAX_FILE: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    addr: String,
}

#[derive(Serialize, Deserialize)]
struct SavedTable {
    id: String,
    nodes: Vec<SavedNode>,
}

/// Our id and the nodes we knew.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub id: NodeId,
    pub nodes: Vec<NodeInfo>,
}

/// Reads a saved table; `None` if there is none or it cannot be used (logged).
pub fn load(path: &Path) -> Option<Saved> {
    let read = || -> io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() > MAX_FILE {
            return Err(io::Error::other("file too large"));
        }
        std::fs::read(path)
    };
    let bytes = match read() {
        Ok(b) => b,
        // No table yet (or no folder yet: its errors are the caller's to report).
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return None;
        }
        Err(e) => {
            log::warn!("{}: not reusing the DHT routing table: {e}", path.display());
            return None;
        }
    };
    let parsed = serde_json::from_slice::<SavedTable>(&bytes)
        .ok()
        .and_then(|t| {
            let id = NodeId::from_hex(&t.id)?;
            let nodes = t
                .nodes
                .iter()
                .take(MAX_NODES)
                .filter_map(|n| {
                    Some(NodeInfo {
                        id: NodeId::from_hex(&n.id)?,
                        addr: n.addr.parse().ok()?,
                    })
                })
                .collect();
            Some(Saved { id, nodes })
        });
    if parsed.is_none() {
        log::warn!(
            "{}: not a DHT routing table, starting afresh",
            path.display()
        );
    }
    parsed
}

/// Writes `saved` to `path` atomically, creating its folder.
pub fn store(path: &Path, saved: &Saved) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let table = SavedTable {
        id: saved.id.to_hex(),
        nodes: saved
            .nodes
            .iter()
            .map(|n| SavedNode {
                id: n.id.to_hex(),
                addr: n.addr.to_string(),
            })
            .collect(),
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(&table).map_err(io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_round_trips_and_garbage_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".piecemeal/dht.json");
        assert_eq!(load(&path), None);
        let saved = Saved {
            id: NodeId::random(),
            nodes: vec![NodeInfo {
                id: NodeId::random(),
                addr: "127.0.0.1:6881".parse().unwrap(),
            }],
        };
        store(&path, &saved).unwrap();
        assert_eq!(load(&path), Some(saved));
        std::fs::write(&path, b"{\"id\": 3}").unwrap();
        assert_eq!(load(&path), None);
    }
}
