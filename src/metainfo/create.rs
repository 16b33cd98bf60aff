//! Making a new `.torrent` from a file or folder: walking the source files, picking a piece
//! length, hashing the pieces and writing the bencoded dictionary.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::parse::component_problem;
use super::{
    FileEntry, MAX_FILES, MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH, MetainfoError, invalid, io_error,
};
use crate::bencode::{self, Value};

/// Smallest piece length [`create`] uses or accepts.
pub const MIN_CREATE_PIECE_LENGTH: u64 = 16 << 10;
/// Largest piece length [`create`] picks by itself.
const MAX_DEFAULT_PIECE_LENGTH: u64 = 16 << 20;

/// Whether `url` has a tracker scheme and a host. Clients accept these three schemes; anything
/// else in a new torrent is almost certainly a typo.
fn is_tracker_url(url: &str) -> bool {
    ["http://", "https://", "udp://"]
        .iter()
        .filter_map(|scheme| url.strip_prefix(scheme))
        .any(|rest| {
            !rest.is_empty() && !rest.starts_with(['/', ':']) && !rest.contains(char::is_whitespace)
        })
}

/// Settings for [`create`].
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Tracker URLs; at least one. The first becomes `announce`. With more than one, all are also
    /// written to `announce-list`, one per tier, so clients try them in the given order.
    pub announce: Vec<String>,
    /// Power of two from [`MIN_CREATE_PIECE_LENGTH`] to [`MAX_PIECE_LENGTH`]. `None` picks one
    /// from the total size as libtorrent does: the smallest power of two of at least ten times
    /// the square root of the size, from 16 KiB to 16 MiB (64 KiB for 20 MiB).
    pub piece_length: Option<u64>,
    pub comment: Option<String>,
    pub private: bool,
    /// Written as `created by` unless empty.
    pub created_by: String,
    /// Written as `creation date` when set; left out by default so output is reproducible.
    pub creation_date: Option<i64>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            announce: Vec::new(),
            piece_length: None,
            comment: None,
            private: false,
            created_by: concat!("piecemeal ", env!("CARGO_PKG_VERSION")).to_string(),
            creation_date: None,
        }
    }
}

/// A file to be hashed into a new torrent.
struct SourceFile {
    fs_path: PathBuf,
    entry: FileEntry,
}

/// The name a file or folder gets inside a torrent; must pass [`component_problem`].
fn source_name(path: &Path, name: Option<&std::ffi::OsStr>) -> Result<String, MetainfoError> {
    let content = |problem: String| MetainfoError::Content {
        path: path.to_path_buf(),
        problem,
    };
    let name = name
        .ok_or_else(|| content("has no usable name".to_string()))?
        .to_str()
        .ok_or_else(|| content("name is not valid UTF-8".to_string()))?;
    match component_problem(name) {
        Some(problem) => Err(content(format!("name {problem}"))),
        None => Ok(name.to_string()),
    }
}

/// Every regular file below `root`, sorted by path component by component. Symlinks and special
/// files (sockets, devices, FIFOs) are skipped with a warning: following links could escape the
/// folder or loop, and special files have no fixed content.
fn collect_files(root: &Path) -> Result<Vec<SourceFile>, MetainfoError> {
    let mut files = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, components)) = dirs.pop() {
        for item in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let item = item.map_err(|e| io_error(&dir, e))?;
            let fs_path = item.path();
            let name = source_name(&fs_path, Some(&item.file_name()))?;
            let meta = fs::symlink_metadata(&fs_path).map_err(|e| io_error(&fs_path, e))?;
            let mut path: Vec<String> = components.clone();
            path.push(name);
            if meta.is_dir() {
                dirs.push((fs_path, path));
            } else if meta.is_file() {
                if files.len() == MAX_FILES {
                    return Err(MetainfoError::Content {
                        path: root.to_path_buf(),
                        problem: format!("holds more than {MAX_FILES} files"),
                    });
                }
                let entry = FileEntry {
                    path,
                    length: meta.len(),
                };
                files.push(SourceFile { fs_path, entry });
            } else {
                log::warn!(
                    "skipping {}: not a regular file or folder",
                    fs_path.display()
                );
            }
        }
    }
    files.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(files)
}

/// The piece length [`create`] picks when none is given: the smallest power of two from 16 KiB
/// (one block) to 16 MiB that is at least ten times the square root of the total size.
///
/// This is libtorrent's rule (`create_torrent`, auto piece size, also qBittorrent's default):
/// the piece-hash list grows as the square root of the content, so both the piece count and the
/// piece length grow as it does. 16 KiB up to 2.5 MiB, 64 KiB for 20 MiB (320 pieces), 512 KiB
/// for 1 GiB (2048 pieces), 1 MiB for 10 GiB. A fixed piece count (Transmission aims at ~1024)
/// would give small torrents pieces of a few KiB, and fixed-size pieces (mktorrent's 256 KiB)
/// would give multi-GiB ones hash lists of megabytes.
fn default_piece_length(total: u64) -> u64 {
    let mut length = MIN_CREATE_PIECE_LENGTH;
    // length >= 10 * sqrt(total), squared to stay in integers.
    while length < MAX_DEFAULT_PIECE_LENGTH && (length as u128).pow(2) < 100 * total as u128 {
        length *= 2;
    }
    length
}

/// SHA-1 of each piece of the files' concatenation, read in a streaming fashion.
fn hash_pieces(files: &[SourceFile], piece_length: u64) -> Result<Vec<u8>, MetainfoError> {
    let mut hashes = Vec::new();
    let mut buf = vec![0u8; piece_length as usize];
    let mut filled = 0;
    for file in files {
        let f = File::open(&file.fs_path).map_err(|e| io_error(&file.fs_path, e))?;
        // One byte past the expected length reveals a file that grew since it was listed.
        let mut reader = f.take(file.entry.length + 1);
        let mut read_total = 0u64;
        loop {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    read_total += n as u64;
                    if filled == buf.len() {
                        hashes.extend_from_slice(&sha1_smol::Sha1::from(&buf[..]).digest().bytes());
                        filled = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&file.fs_path, e)),
            }
        }
        if read_total != file.entry.length {
            return Err(MetainfoError::Content {
                path: file.fs_path.clone(),
                problem: format!(
                    "changed size while hashing (listed {} bytes, read {read_total})",
                    file.entry.length
                ),
            });
        }
    }
    if filled > 0 {
        hashes.extend_from_slice(&sha1_smol::Sha1::from(&buf[..filled]).digest().bytes());
    }
    Ok(hashes)
}

/// Builds a `.torrent` (bencoded bytes) for the file or folder at `path` (followed if it is a
/// symlink). A folder always gives a multi-file torrent, even with one file; it is walked
/// recursively, skipping symlinks and special files (with a warning), and must hold at least one
/// byte of data. Files are hashed streaming, one piece buffer at a time. The same content and
/// options always give the same bytes.
pub fn create(path: &Path, opts: &CreateOptions) -> Result<Vec<u8>, MetainfoError> {
    let Some(first_tracker) = opts.announce.first() else {
        return Err(invalid("announce", "needs at least one tracker URL"));
    };
    if let Some(url) = opts.announce.iter().find(|u| !is_tracker_url(u)) {
        return Err(invalid(
            "announce",
            format!("{url:?} is not a tracker URL (http://, https:// or udp://host...)"),
        ));
    }
    if let Some(pl) = opts.piece_length
        && (!pl.is_power_of_two() || !(MIN_CREATE_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&pl))
    {
        return Err(invalid(
            "piece length",
            format!(
                "{pl} is not a power of two from {MIN_CREATE_PIECE_LENGTH} to {MAX_PIECE_LENGTH}"
            ),
        ));
    }
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    let name = match path.file_name() {
        Some(n) => source_name(path, Some(n))?,
        // `.`, `..` or `/`: name the torrent after the folder they resolve to.
        None => {
            let canonical = fs::canonicalize(path).map_err(|e| io_error(path, e))?;
            source_name(path, canonical.file_name())?
        }
    };
    let files = if meta.is_dir() {
        collect_files(path)?
    } else if meta.is_file() {
        vec![SourceFile {
            fs_path: path.to_path_buf(),
            entry: FileEntry {
                path: vec![name.clone()],
                length: meta.len(),
            },
        }]
    } else {
        return Err(MetainfoError::Content {
            path: path.to_path_buf(),
            problem: "is neither a regular file nor a folder".to_string(),
        });
    };
    let total = files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.entry.length))
        .filter(|&t| t <= MAX_TOTAL_LENGTH)
        .ok_or_else(|| MetainfoError::Content {
            path: path.to_path_buf(),
            problem: format!("holds more than {MAX_TOTAL_LENGTH} bytes"),
        })?;
    if total == 0 {
        return Err(MetainfoError::Content {
            path: path.to_path_buf(),
            problem: "holds no data (no files, or only empty ones)".to_string(),
        });
    }
    let piece_length = opts
        .piece_length
        .unwrap_or_else(|| default_piece_length(total));
    let pieces = hash_pieces(&files, piece_length)?;

    let mut info = vec![
        ("name", Value::from(name.as_str())),
        ("piece length", Value::Int(piece_length as i64)),
        ("pieces", Value::Bytes(pieces)),
    ];
    if meta.is_dir() {
        let list = files
            .iter()
            .map(|f| {
                Value::dict(vec![
                    ("length", Value::Int(f.entry.length as i64)),
                    (
                        "path",
                        Value::List(
                            f.entry
                                .path
                                .iter()
                                .map(|c| Value::from(c.as_str()))
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        info.push(("files", Value::List(list)));
    } else {
        info.push(("length", Value::Int(total as i64)));
    }
    if opts.private {
        info.push(("private", Value::Int(1)));
    }

    let mut top = vec![
        ("announce", Value::from(first_tracker.as_str())),
        ("info", Value::dict(info)),
    ];
    if opts.announce.len() > 1 {
        let tiers = opts
            .announce
            .iter()
            .map(|u| Value::List(vec![Value::from(u.as_str())]))
            .collect();
        top.push(("announce-list", Value::List(tiers)));
    }
    if let Some(comment) = &opts.comment {
        top.push(("comment", Value::from(comment.as_str())));
    }
    if !opts.created_by.is_empty() {
        top.push(("created by", Value::from(opts.created_by.as_str())));
    }
    if let Some(date) = opts.creation_date {
        top.push(("creation date", Value::Int(date)));
    }
    Ok(bencode::encode(&Value::dict(top)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;

    fn opts(piece_length: Option<u64>) -> CreateOptions {
        CreateOptions {
            announce: vec!["http://127.0.0.1:6969/announce".into()],
            piece_length,
            ..CreateOptions::default()
        }
    }

    /// Deterministic pseudo-random content.
    fn content(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    /// SHA-1 of each `piece_length` chunk of `data`.
    fn piece_hashes(data: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
        data.chunks(piece_length)
            .map(|c| sha1_smol::Sha1::from(c).digest().bytes())
            .collect()
    }

    #[test]
    fn creates_single_file_torrent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let data = content(100_000, 1);
        fs::write(&path, &data).unwrap();
        let options = CreateOptions {
            comment: Some("c".into()),
            private: true,
            creation_date: Some(5),
            ..opts(Some(16384))
        };
        let bytes = create(&path, &options).unwrap();
        assert_eq!(create(&path, &options).unwrap(), bytes, "not deterministic");
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.info.name, "data.bin");
        assert!(!m.info.multi_file && m.info.private);
        assert_eq!(
            m.info.files,
            vec![FileEntry {
                path: vec!["data.bin".into()],
                length: 100_000
            }]
        );
        assert_eq!(m.info.pieces, piece_hashes(&data, 16384));
        assert_eq!(m.comment.as_deref(), Some("c"));
        assert_eq!(m.creation_date, Some(5));
        assert_eq!(m.created_by, Some(options.created_by.clone()));
        assert_eq!(m.announce, Some(options.announce[0].clone()));
        assert!(m.announce_list.is_empty());
    }

    #[test]
    fn creates_folder_torrent_with_pieces_spanning_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("album");
        fs::create_dir_all(root.join("b/deeper")).unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        // Listed out of order on purpose; create must sort by path.
        let parts = [
            ("b/deeper/z.dat", content(20_000, 2)),
            ("a/y.dat", content(17_000, 3)),
            ("empty", Vec::new()),
            ("a/x.dat", content(5, 4)),
        ];
        for (p, data) in &parts {
            fs::write(root.join(p), data).unwrap();
        }
        std::os::unix::fs::symlink(root.join("a/x.dat"), root.join("link")).unwrap();
        let mut options = opts(Some(16384));
        options.announce.push("http://backup/announce".into());
        let m = Metainfo::from_bytes(&create(&root, &options).unwrap()).unwrap();
        assert!(m.info.multi_file);
        assert_eq!(m.info.name, "album");
        let listed: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
        assert_eq!(listed, ["a/x.dat", "a/y.dat", "b/deeper/z.dat", "empty"]);
        let order = [3, 1, 0, 2];
        let joined: Vec<u8> = order.iter().flat_map(|&i| parts[i].1.clone()).collect();
        assert_eq!(m.info.pieces, piece_hashes(&joined, 16384));
        assert_eq!(
            m.tracker_tiers(),
            vec![
                vec![options.announce[0].clone()],
                vec![options.announce[1].clone()]
            ]
        );
    }

    #[test]
    fn create_picks_piece_length() {
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        // (total size, piece length): libtorrent's table, from one byte to its largest entry.
        for (total, length) in [
            (1, 16 * KIB),
            (40_000, 16 * KIB),
            (2_684_354, 16 * KIB),
            (2_684_355, 32 * KIB),
            (4 * MIB, 32 * KIB),
            (20 * MIB, 64 * KIB),
            (31 * MIB, 64 * KIB),
            (100 * MIB, 128 * KIB),
            (700 * MIB, 512 * KIB),
            (1 << 30, 512 * KIB),
            (10 << 30, MIB),
            (100 << 30, 4 * MIB),
            (703_687_441_776, 8 * MIB),
            (703_687_441_777, 16 * MIB),
            (1 << 50, 16 * MIB),
            (u64::MAX, 16 * MIB),
        ] {
            assert_eq!(default_piece_length(total), length, "{total} bytes");
        }
        // Neither too few pieces to spread over peers nor a hash list of megabytes.
        for total in [20 * MIB, 200 * MIB, 4 << 30, 64 << 30] {
            let pieces = total.div_ceil(default_piece_length(total));
            assert!((256..=16384).contains(&pieces), "{total}: {pieces} pieces");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, content(40_000, 5)).unwrap();
        let m = Metainfo::from_bytes(&create(&path, &opts(None)).unwrap()).unwrap();
        assert_eq!(m.info.piece_length, 16 << 10);
        assert_eq!(m.info.piece_count(), 3);
    }

    #[test]
    fn create_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        fs::create_dir_all(empty.join("sub")).unwrap();
        fs::write(empty.join("sub/zero"), b"").unwrap();
        let msg = create(&empty, &opts(None)).unwrap_err().to_string();
        assert!(
            msg.starts_with(&empty.display().to_string()) && msg.contains("no data"),
            "{msg}"
        );
        let file = dir.path().join("f");
        fs::write(&file, b"data").unwrap();
        for bad in [0, 1000, 8192, 3 << 14, MAX_PIECE_LENGTH * 2] {
            let msg = create(&file, &opts(Some(bad))).unwrap_err().to_string();
            assert!(msg.starts_with("piece length"), "{bad}: {msg}");
        }
        let mut none = opts(None);
        none.announce.clear();
        assert_eq!(
            create(&file, &none).unwrap_err().to_string(),
            "announce needs at least one tracker URL"
        );
        for url in [
            "",
            "not a url",
            "http://",
            "ftp://host/announce",
            "http:// spaced/a",
        ] {
            let mut bad = opts(None);
            bad.announce.push(url.to_string());
            let msg = create(&file, &bad).unwrap_err().to_string();
            assert!(msg.contains("is not a tracker URL"), "{url}: {msg}");
        }
        for url in [
            "udp://tracker.example:1337",
            "https://t.example/announce?passkey=x",
        ] {
            let mut good = opts(None);
            good.announce.push(url.to_string());
            assert!(create(&file, &good).is_ok(), "{url}");
        }
        let missing = dir.path().join("missing");
        let err = create(&missing, &opts(None)).unwrap_err();
        assert!(matches!(err, MetainfoError::Io { .. }), "{err}");
        let odd = dir.path().join("odd");
        fs::create_dir(&odd).unwrap();
        fs::write(odd.join("back\\slash"), b"x").unwrap();
        let msg = create(&odd, &opts(None)).unwrap_err().to_string();
        assert!(
            msg.ends_with("back\\slash: name contains a path separator"),
            "{msg}"
        );
    }
}
