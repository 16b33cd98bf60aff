//! BEP 3 `.torrent` files: parsing with validation, the info hash, and creating new torrents.
//!
//! Parsing ([`Metainfo::from_bytes`], [`Metainfo::load`]) validates everything a peer relies on
//! before any of it touches the disk or the network:
//! - `announce` is optional (trackerless torrents exist; the peer can be given `--tracker` or
//!   `--connect`), but when present it must be a non-empty UTF-8 string; `announce-list` must be
//!   a list of lists of non-empty UTF-8 strings (empty tiers are dropped).
//! - `info.name` and every `info.files[].path` component must be UTF-8 and a plain file name:
//!   not empty, not `.` or `..`, no `/`, `\` or NUL. Non-UTF-8 names are rejected rather than
//!   guessed at (the `name.utf-8` extension is not consulted).
//! - Exactly one of `length` and `files`; no two files may share a path or have one file's path
//!   be a folder of another's.
//! - `piece length` in 1..=[`MAX_PIECE_LENGTH`], total size in 1..=[`MAX_TOTAL_LENGTH`], at most
//!   [`MAX_FILES`] files, and `pieces` holding exactly `ceil(total / piece length)` hashes.
//! - `private` must be 0 or 1. `comment` and `created by` are decoded lossily: they are only shown.
//!
//! The info hash is the SHA-1 of the `info` value's bytes exactly as they stand in the file, so
//! torrents with unsorted keys keep the hash other clients compute.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::bencode::{self, BencodeError, Value};

/// SHA-1 of the bencoded `info` dictionary exactly as it stands in the file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// 40 lowercase hex characters.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 40 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<InfoHash> {
        if s.len() != 40 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(InfoHash(out))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.hex())
    }
}

/// One file of a torrent, in the order the `info` dictionary lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's root; validated (no empty, `.`, `..`, separators, NUL).
    /// For a single-file torrent this is `[name]`.
    pub path: Vec<String>,
    pub length: u64,
}

/// The validated `info` dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    /// Every file; a single-file torrent has exactly one entry whose path is `[name]`.
    pub files: Vec<FileEntry>,
    /// True when the torrent used the `files` list: files live under a folder called `name`.
    pub multi_file: bool,
    pub private: bool,
}

impl Info {
    /// Sum of all file lengths.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index`: `piece_length` except for a shorter last piece. Only the last
    /// piece needs the total length, so the common case costs nothing per call.
    pub fn piece_size(&self, index: usize) -> u64 {
        if index + 1 < self.pieces.len() {
            return self.piece_length;
        }
        let start = index as u64 * self.piece_length;
        self.piece_length
            .min(self.total_length().saturating_sub(start))
    }

    /// Path of a file relative to the download folder (`name/...` for multi-file torrents).
    pub fn relative_path(&self, file: &FileEntry) -> std::path::PathBuf {
        let mut p = std::path::PathBuf::new();
        if self.multi_file {
            p.push(&self.name);
        }
        for c in &file.path {
            p.push(c);
        }
        p
    }
}

/// A parsed `.torrent` file.
#[derive(Clone, Debug)]
pub struct Metainfo {
    pub announce: Option<String>,
    /// BEP 12 tiers, as in the file (empty when absent).
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    pub info: Info,
    pub info_hash: InfoHash,
}

impl Metainfo {
    /// Tracker tiers to use: `announce-list` when present (BEP 12), else `[[announce]]`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|a| vec![a.clone()]).collect()
    }
}

/// Largest accepted piece length (64 MiB); a peer buffers whole pieces in memory.
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;
/// Largest accepted total size (1 PiB); anything bigger is a corrupt or hostile torrent.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 50;
/// Most files accepted in one torrent.
pub const MAX_FILES: usize = 1_000_000;
/// Largest `.torrent` file [`Metainfo::load`] reads.
pub const MAX_TORRENT_FILE_SIZE: u64 = 64 << 20;
/// Smallest piece length [`create`] uses or accepts.
pub const MIN_CREATE_PIECE_LENGTH: u64 = 16 << 10;
/// Largest piece length [`create`] picks by itself.
const MAX_DEFAULT_PIECE_LENGTH: u64 = 16 << 20;
/// [`create`] picks the smallest piece length giving at most this many pieces.
const TARGET_MAX_PIECES: u64 = 2000;

/// Why a torrent could not be parsed, loaded or created.
#[derive(Debug)]
pub enum MetainfoError {
    /// Reading a file failed.
    Io { path: PathBuf, source: io::Error },
    /// The bytes are not valid bencode.
    Bencode(BencodeError),
    /// A field is missing, has the wrong type, or an unacceptable value. `field` is a dotted path
    /// such as `info.files[2].path[0]`.
    Invalid { field: String, problem: String },
    /// [`create`] cannot make a torrent from this file or folder.
    Content { path: PathBuf, problem: String },
    /// An error in the torrent file at `path`.
    InFile {
        path: PathBuf,
        error: Box<MetainfoError>,
    },
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            MetainfoError::Bencode(e) => e.fmt(f),
            MetainfoError::Invalid { field, problem } => write!(f, "{field} {problem}"),
            MetainfoError::Content { path, problem } => write!(f, "{}: {problem}", path.display()),
            MetainfoError::InFile { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for MetainfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetainfoError::Io { source, .. } => Some(source),
            MetainfoError::Bencode(e) => Some(e),
            MetainfoError::InFile { error, .. } => Some(error.as_ref()),
            MetainfoError::Invalid { .. } | MetainfoError::Content { .. } => None,
        }
    }
}

impl From<BencodeError> for MetainfoError {
    fn from(e: BencodeError) -> Self {
        MetainfoError::Bencode(e)
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> MetainfoError {
    MetainfoError::Invalid {
        field: field.to_string(),
        problem: problem.into(),
    }
}

fn io_error(path: &Path, source: io::Error) -> MetainfoError {
    MetainfoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A dictionary being validated, with the dotted name of where it sits for error messages.
struct Fields<'a> {
    map: &'a BTreeMap<Vec<u8>, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, name: &str) -> Result<Self, MetainfoError> {
        let map = value.as_dict().ok_or_else(|| {
            invalid(
                name,
                format!("is {}, expected a dictionary", value.type_name()),
            )
        })?;
        let prefix = if name.is_empty() {
            String::new()
        } else {
            format!("{name}.")
        };
        Ok(Fields { map, prefix })
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key.as_bytes())
    }

    fn required(&self, key: &str) -> Result<&'a Value, MetainfoError> {
        self.get(key)
            .ok_or_else(|| invalid(&self.name(key), "is missing"))
    }

    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        conv: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, MetainfoError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => conv(v).map(Some).ok_or_else(|| {
                invalid(
                    &self.name(key),
                    format!("is {}, expected {expected}", v.type_name()),
                )
            }),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, MetainfoError> {
        self.typed(key, "an integer", Value::as_int)
    }

    fn bytes(&self, key: &str) -> Result<Option<&'a [u8]>, MetainfoError> {
        self.typed(key, "a byte string", Value::as_bytes)
    }

    fn list(&self, key: &str) -> Result<Option<&'a [Value]>, MetainfoError> {
        self.typed(key, "a list", Value::as_list)
    }

    /// A text field that is only displayed: decoded lossily.
    fn lossy_text(&self, key: &str) -> Result<Option<String>, MetainfoError> {
        Ok(self
            .bytes(key)?
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    /// A non-negative length no larger than [`MAX_TOTAL_LENGTH`].
    fn length(&self, key: &str) -> Result<Option<u64>, MetainfoError> {
        match self.int(key)? {
            None => Ok(None),
            Some(n) if n < 0 => Err(invalid(&self.name(key), format!("is negative ({n})"))),
            Some(n) if n as u64 > MAX_TOTAL_LENGTH => Err(invalid(
                &self.name(key),
                format!("is absurdly large ({n} bytes, limit {MAX_TOTAL_LENGTH})"),
            )),
            Some(n) => Ok(Some(n as u64)),
        }
    }
}

/// A UTF-8 string that must be non-empty (tracker URLs).
fn nonempty_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, MetainfoError> {
    match v.as_str() {
        Some("") => Err(invalid(field, "is empty")),
        Some(s) => Ok(s),
        None if v.as_bytes().is_some() => Err(invalid(field, "is not valid UTF-8")),
        None => Err(invalid(
            field,
            format!("is {}, expected a string", v.type_name()),
        )),
    }
}

/// Why `c` cannot be a file or folder name inside the download folder, if it cannot.
fn component_problem(c: &str) -> Option<&'static str> {
    if c.is_empty() {
        Some("is empty")
    } else if c == "." || c == ".." {
        Some("is `.` or `..`")
    } else if c.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if c.contains('\0') {
        Some("contains a NUL byte")
    } else {
        None
    }
}

/// A validated path component (the torrent name or one element of a file's path).
fn component(v: &Value, field: &str) -> Result<String, MetainfoError> {
    let s = match v.as_bytes() {
        None => {
            return Err(invalid(
                field,
                format!("is {}, expected a string", v.type_name()),
            ));
        }
        Some(b) => std::str::from_utf8(b).map_err(|_| invalid(field, "is not valid UTF-8"))?,
    };
    match component_problem(s) {
        Some(problem) => Err(invalid(field, format!("{problem} ({s:?})"))),
        None => Ok(s.to_string()),
    }
}

fn parse_announce_list(top: &Fields) -> Result<Vec<Vec<String>>, MetainfoError> {
    let mut tiers = Vec::new();
    for (i, tier) in top
        .list("announce-list")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("announce-list[{i}]");
        let urls = tier.as_list().ok_or_else(|| {
            invalid(
                &field,
                format!("is {}, expected a list of URLs", tier.type_name()),
            )
        })?;
        let urls = urls
            .iter()
            .enumerate()
            .map(|(j, u)| nonempty_str(u, &format!("{field}[{j}]")).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        if !urls.is_empty() {
            tiers.push(urls);
        }
    }
    Ok(tiers)
}

fn parse_files(list: &[Value]) -> Result<Vec<FileEntry>, MetainfoError> {
    if list.is_empty() {
        return Err(invalid("info.files", "is empty"));
    }
    if list.len() > MAX_FILES {
        return Err(invalid(
            "info.files",
            format!(
                "lists {} files, more than the limit of {MAX_FILES}",
                list.len()
            ),
        ));
    }
    let mut files = Vec::with_capacity(list.len());
    // Every file path, and every folder above one: a path may not be both, or appear twice.
    let mut file_paths: HashSet<&[Value]> = HashSet::new();
    let mut dir_paths: HashSet<&[Value]> = HashSet::new();
    for (i, entry) in list.iter().enumerate() {
        let name = format!("info.files[{i}]");
        let f = Fields::new(entry, &name)?;
        let length = f
            .length("length")?
            .ok_or_else(|| invalid(&f.name("length"), "is missing"))?;
        let path_field = f.name("path");
        let raw = f
            .list("path")?
            .ok_or_else(|| invalid(&path_field, "is missing"))?;
        if raw.is_empty() {
            return Err(invalid(&path_field, "is empty"));
        }
        let path = raw
            .iter()
            .enumerate()
            .map(|(j, c)| component(c, &format!("{path_field}[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let clash = dir_paths.contains(raw)
            || !file_paths.insert(raw)
            || (1..raw.len()).any(|n| file_paths.contains(&raw[..n]));
        if clash {
            return Err(invalid(
                &path_field,
                format!("{:?} collides with another file's path", path.join("/")),
            ));
        }
        dir_paths.extend((1..raw.len()).map(|n| &raw[..n]));
        files.push(FileEntry { path, length });
    }
    Ok(files)
}

fn parse_info(value: &Value) -> Result<Info, MetainfoError> {
    let f = Fields::new(value, "info")?;
    let name = component(f.required("name")?, &f.name("name"))?;
    let piece_length = f
        .length("piece length")?
        .ok_or_else(|| invalid(&f.name("piece length"), "is missing"))?;
    if piece_length == 0 {
        return Err(invalid(&f.name("piece length"), "is zero"));
    }
    if piece_length > MAX_PIECE_LENGTH {
        return Err(invalid(
            &f.name("piece length"),
            format!("is {piece_length} bytes, more than the limit of {MAX_PIECE_LENGTH}"),
        ));
    }
    let (files, multi_file) = match (f.length("length")?, f.list("files")?) {
        (Some(length), None) => (
            vec![FileEntry {
                path: vec![name.clone()],
                length,
            }],
            false,
        ),
        (None, Some(list)) => (parse_files(list)?, true),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "info",
                "has both `length` and `files`; expected one",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "info",
                "has neither `length` nor `files`; expected one",
            ));
        }
    };
    let total = files
        .iter()
        .try_fold(0u64, |sum, file| sum.checked_add(file.length))
        .filter(|&t| t <= MAX_TOTAL_LENGTH)
        .ok_or_else(|| {
            invalid(
                "info",
                format!("total size exceeds the limit of {MAX_TOTAL_LENGTH} bytes"),
            )
        })?;
    if total == 0 {
        return Err(invalid("info", "describes no data (total size is zero)"));
    }
    let raw_pieces = f
        .bytes("pieces")?
        .ok_or_else(|| invalid(&f.name("pieces"), "is missing"))?;
    if raw_pieces.len() % 20 != 0 {
        return Err(invalid(
            &f.name("pieces"),
            format!("is {} bytes long, not a multiple of 20", raw_pieces.len()),
        ));
    }
    let expected = total.div_ceil(piece_length);
    let count = raw_pieces.len() as u64 / 20;
    if count != expected {
        return Err(invalid(
            &f.name("pieces"),
            format!(
                "holds {count} hashes but {total} bytes in pieces of {piece_length} need {expected}"
            ),
        ));
    }
    let pieces = raw_pieces
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();
    let private = match f.int("private")? {
        None | Some(0) => false,
        Some(1) => true,
        Some(n) => {
            return Err(invalid(
                &f.name("private"),
                format!("is {n}, expected 0 or 1"),
            ));
        }
    };
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        private,
    })
}

impl Metainfo {
    /// Parses and validates a `.torrent` file's contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let top_value = bencode::decode(bytes)?;
        let top = Fields::new(&top_value, "")
            .map_err(|_| invalid("torrent", "is not a bencoded dictionary"))?;
        let announce = top
            .get("announce")
            .map(|v| nonempty_str(v, "announce").map(str::to_string))
            .transpose()?;
        let announce_list = parse_announce_list(&top)?;
        let info = parse_info(top.required("info")?)?;
        let span = bencode::dict_value_span(bytes, b"info")?
            .ok_or_else(|| invalid("info", "is missing"))?;
        Ok(Metainfo {
            announce,
            announce_list,
            comment: top.lossy_text("comment")?,
            created_by: top.lossy_text("created by")?,
            creation_date: top.int("creation date")?,
            info,
            info_hash: InfoHash(sha1_smol::Sha1::from(&bytes[span]).digest().bytes()),
        })
    }

    /// Reads and parses a `.torrent` file; errors name the file.
    pub fn load(path: &Path) -> Result<Metainfo, MetainfoError> {
        let in_file = |error| MetainfoError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        };
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_TORRENT_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(path, e))?;
        if bytes.len() as u64 > MAX_TORRENT_FILE_SIZE {
            return Err(in_file(invalid(
                "torrent",
                format!("is larger than {MAX_TORRENT_FILE_SIZE} bytes; not a torrent file?"),
            )));
        }
        Metainfo::from_bytes(&bytes).map_err(in_file)
    }

    /// Human-readable summary in the spirit of `transmission-show`; has a line `Hash: <hex>`.
    pub fn describe(&self) -> String {
        let info = &self.info;
        let mut out = format!("Name: {}\nHash: {}\n", info.name, self.info_hash);
        if let Some(by) = &self.created_by {
            out += &format!("Created by: {by}\n");
        }
        if let Some(date) = self.creation_date {
            out += &format!("Created on: {}\n", utc_date(date));
        }
        if let Some(comment) = &self.comment {
            out += &format!("Comment: {comment}\n");
        }
        out += &format!(
            "Piece Count: {}\nPiece Size: {}\nTotal Size: {}\nPrivacy: {}\n",
            info.piece_count(),
            human_size(info.piece_length),
            human_size(info.total_length()),
            if info.private {
                "Private torrent"
            } else {
                "Public torrent"
            },
        );
        out += "\nTRACKERS\n";
        for (i, tier) in self.tracker_tiers().iter().enumerate() {
            out += &format!("Tier #{}\n", i + 1);
            for url in tier {
                out += &format!("  {url}\n");
            }
        }
        out += "\nFILES\n";
        for file in &info.files {
            out += &format!(
                "  {} ({})\n",
                info.relative_path(file).display(),
                human_size(file.length)
            );
        }
        out
    }
}

/// `2.50 MiB, 2621440 bytes` (binary units, plus the exact count).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}, {bytes} bytes", UNITS[unit])
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix timestamp (proleptic Gregorian calendar).
fn utc_date(secs: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm; values stay far from overflow for any i64 input.
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

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
    /// Power of two from [`MIN_CREATE_PIECE_LENGTH`] to [`MAX_PIECE_LENGTH`]. `None` picks the
    /// smallest power of two from 16 KiB to 16 MiB giving at most 2000 pieces.
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

/// Smallest power of two from 16 KiB to 16 MiB giving at most [`TARGET_MAX_PIECES`] pieces.
fn default_piece_length(total: u64) -> u64 {
    let mut length = MIN_CREATE_PIECE_LENGTH;
    while length < MAX_DEFAULT_PIECE_LENGTH && total.div_ceil(length) > TARGET_MAX_PIECES {
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

    type Map = BTreeMap<Vec<u8>, Value>;

    fn set(map: &mut Map, key: &str, v: Value) {
        map.insert(key.as_bytes().to_vec(), v);
    }

    fn path_list(components: &[&str]) -> Value {
        Value::List(components.iter().map(|&c| Value::from(c)).collect())
    }

    fn file(length: i64, components: &[&str]) -> Value {
        Value::dict(vec![
            ("length", Value::Int(length)),
            ("path", path_list(components)),
        ])
    }

    /// A valid single-file info dictionary: 100 bytes in pieces of 32.
    fn single_info() -> Map {
        let mut info = Map::new();
        set(&mut info, "name", Value::from("a.txt"));
        set(&mut info, "piece length", Value::Int(32));
        set(&mut info, "pieces", Value::Bytes(vec![0xab; 4 * 20]));
        set(&mut info, "length", Value::Int(100));
        info
    }

    /// A valid multi-file info dictionary: 40 + 60 bytes in pieces of 32.
    fn multi_info() -> Map {
        let mut info = single_info();
        info.remove(&b"length"[..]);
        set(&mut info, "name", Value::from("dir"));
        set(
            &mut info,
            "files",
            Value::List(vec![file(40, &["x", "one"]), file(60, &["two"])]),
        );
        info
    }

    fn torrent(info: Map) -> Map {
        let mut top = Map::new();
        set(&mut top, "announce", Value::from("http://t/announce"));
        set(&mut top, "info", Value::Dict(info));
        top
    }

    fn parse(top: Map) -> Result<Metainfo, MetainfoError> {
        Metainfo::from_bytes(&bencode::encode(&Value::Dict(top)))
    }

    /// The (field, problem) of an `Invalid` error from parsing a torrent with this info dict.
    fn rejection(edit: impl FnOnce(&mut Map)) -> (String, String) {
        let mut info = multi_info();
        edit(&mut info);
        match parse(torrent(info)) {
            Err(MetainfoError::Invalid { field, problem }) => (field, problem),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn parses_single_file() {
        let mut top = torrent(single_info());
        set(&mut top, "comment", Value::Bytes(b"hi \xff".to_vec()));
        set(&mut top, "creation date", Value::Int(1_700_000_000));
        let m = parse(top).unwrap();
        assert_eq!(m.announce.as_deref(), Some("http://t/announce"));
        assert_eq!(
            m.tracker_tiers(),
            vec![vec!["http://t/announce".to_string()]]
        );
        assert_eq!(m.comment.as_deref(), Some("hi \u{fffd}"));
        assert_eq!(m.creation_date, Some(1_700_000_000));
        assert_eq!(m.created_by, None);
        let info = &m.info;
        assert_eq!(info.name, "a.txt");
        assert!(!info.multi_file && !info.private);
        assert_eq!(
            info.files,
            vec![FileEntry {
                path: vec!["a.txt".into()],
                length: 100
            }]
        );
        assert_eq!(info.piece_count(), 4);
        assert_eq!(info.piece_size(3), 4);
        assert_eq!(info.relative_path(&info.files[0]), PathBuf::from("a.txt"));
    }

    #[test]
    fn parses_multi_file_and_tiers() {
        let mut top = torrent(multi_info());
        let tiers = vec![
            Value::List(vec![Value::from("http://a"), Value::from("udp://b")]),
            Value::List(vec![]),
            Value::List(vec![Value::from("http://c")]),
        ];
        set(&mut top, "announce-list", Value::List(tiers));
        let m = parse(top).unwrap();
        assert_eq!(
            m.tracker_tiers(),
            vec![
                vec!["http://a".to_string(), "udp://b".into()],
                vec!["http://c".into()]
            ]
        );
        assert!(m.info.multi_file);
        assert_eq!(m.info.total_length(), 100);
        assert_eq!(
            m.info.relative_path(&m.info.files[0]),
            PathBuf::from("dir/x/one")
        );
    }

    #[test]
    fn info_hash_covers_exact_bytes() {
        let bytes = bencode::encode(&Value::Dict(torrent(single_info())));
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let info = bencode::encode(&Value::Dict(single_info()));
        assert_eq!(m.info_hash.0, sha1_smol::Sha1::from(&info).digest().bytes());

        // Unsorted keys: the hash is of the bytes as written, not of a re-encoding.
        let unsorted_info = [
            &b"d4:name5:a.txt6:lengthi100e12:piece lengthi32e6:pieces80:"[..],
            &[0xab; 80],
            b"e",
        ]
        .concat();
        let file = [&b"d4:info"[..], &unsorted_info, b"e"].concat();
        let m2 = Metainfo::from_bytes(&file).unwrap();
        assert_eq!(m2.info, m.info);
        assert_eq!(
            m2.info_hash.0,
            sha1_smol::Sha1::from(&unsorted_info).digest().bytes()
        );
        assert_ne!(m2.info_hash, m.info_hash);
        assert_eq!(m2.announce, None);
    }

    #[test]
    fn rejects_bad_top_level() {
        let err = Metainfo::from_bytes(b"i1e").unwrap_err();
        assert_eq!(err.to_string(), "torrent is not a bencoded dictionary");
        let err = Metainfo::from_bytes(b"d4:infoi1e").unwrap_err();
        assert!(matches!(err, MetainfoError::Bencode(_)), "{err}");
        let err = Metainfo::from_bytes(b"d8:announce1:xe").unwrap_err();
        assert_eq!(err.to_string(), "info is missing");
        let mut top = torrent(single_info());
        set(&mut top, "info", Value::Int(3));
        assert_eq!(
            parse(top).unwrap_err().to_string(),
            "info is an integer, expected a dictionary"
        );
        let mut top = torrent(single_info());
        set(&mut top, "announce", Value::Int(3));
        assert_eq!(
            parse(top).unwrap_err().to_string(),
            "announce is an integer, expected a string"
        );
        let mut top = torrent(single_info());
        set(&mut top, "announce", Value::from(""));
        assert_eq!(parse(top).unwrap_err().to_string(), "announce is empty");
        let mut top = torrent(single_info());
        set(
            &mut top,
            "announce-list",
            Value::List(vec![Value::from("x")]),
        );
        assert!(
            parse(top)
                .unwrap_err()
                .to_string()
                .starts_with("announce-list[0] is a byte string")
        );
        let mut top = torrent(single_info());
        let bad_tier = Value::List(vec![Value::List(vec![Value::Bytes(vec![0xff])])]);
        set(&mut top, "announce-list", bad_tier);
        assert_eq!(
            parse(top).unwrap_err().to_string(),
            "announce-list[0][0] is not valid UTF-8"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for (bad, problem) in [
            ("", "is empty"),
            (".", "is `.` or `..`"),
            ("..", "is `.` or `..`"),
            ("/etc", "contains a path separator"),
            ("a/b", "contains a path separator"),
            ("a\\b", "contains a path separator"),
            ("a\0b", "contains a NUL byte"),
        ] {
            let (field, p) = rejection(|i| set(i, "name", Value::from(bad)));
            assert_eq!(field, "info.name");
            assert!(p.starts_with(problem), "{bad:?}: {p}");
            let (field, p) = rejection(|i| {
                set(i, "files", Value::List(vec![file(100, &["ok", bad])]));
            });
            assert_eq!(field, "info.files[0].path[1]");
            assert!(p.starts_with(problem), "{bad:?}: {p}");
        }
        let (field, p) = rejection(|i| set(i, "name", Value::Bytes(b"caf\xe9".to_vec())));
        assert_eq!(
            (field.as_str(), p.as_str()),
            ("info.name", "is not valid UTF-8")
        );
        let (field, _) = rejection(|i| set(i, "name", Value::Int(1)));
        assert_eq!(field, "info.name");
        let (field, p) = rejection(|i| {
            i.remove(&b"name"[..]);
        });
        assert_eq!((field.as_str(), p.as_str()), ("info.name", "is missing"));
    }

    #[test]
    fn rejects_bad_file_lists() {
        let files = |list: Vec<Value>| move |i: &mut Map| set(i, "files", Value::List(list));
        let cases = [
            (files(vec![]), "info.files", "is empty"),
            (
                files(vec![Value::Int(1)]),
                "info.files[0]",
                "is an integer, expected a dictionary",
            ),
            (
                files(vec![file(100, &[])]),
                "info.files[0].path",
                "is empty",
            ),
            (
                files(vec![file(-1, &["a"])]),
                "info.files[0].length",
                "is negative (-1)",
            ),
            (
                files(vec![Value::dict(vec![("path", path_list(&["a"]))])]),
                "info.files[0].length",
                "is missing",
            ),
            (
                files(vec![Value::dict(vec![("length", Value::Int(100))])]),
                "info.files[0].path",
                "is missing",
            ),
            (
                files(vec![file(50, &["a", "b"]), file(50, &["a", "b"])]),
                "info.files[1].path",
                "\"a/b\" collides with another file's path",
            ),
            (
                files(vec![file(50, &["a"]), file(50, &["a", "b"])]),
                "info.files[1].path",
                "\"a/b\" collides with another file's path",
            ),
            (
                files(vec![file(50, &["a", "b"]), file(50, &["a"])]),
                "info.files[1].path",
                "\"a\" collides with another file's path",
            ),
        ];
        for (edit, field, problem) in cases {
            assert_eq!(rejection(edit), (field.to_string(), problem.to_string()));
        }
        // Shared folders are fine.
        let mut info = multi_info();
        files(vec![file(50, &["a", "b"]), file(50, &["a", "c"])])(&mut info);
        assert_eq!(parse(torrent(info)).unwrap().info.files.len(), 2);
    }

    #[test]
    fn rejects_bad_sizes_and_pieces() {
        let (f, p) = rejection(|i| set(i, "piece length", Value::Int(0)));
        assert_eq!(format!("{f} {p}"), "info.piece length is zero");
        let (f, p) = rejection(|i| set(i, "piece length", Value::Int(-32)));
        assert_eq!(format!("{f} {p}"), "info.piece length is negative (-32)");
        let (f, _) = rejection(|i| set(i, "piece length", Value::Int(MAX_PIECE_LENGTH as i64 + 1)));
        assert_eq!(f, "info.piece length");
        let (f, p) = rejection(|i| set(i, "pieces", Value::Bytes(vec![0; 79])));
        assert_eq!(
            format!("{f} {p}"),
            "info.pieces is 79 bytes long, not a multiple of 20"
        );
        let (f, p) = rejection(|i| set(i, "pieces", Value::Bytes(vec![0; 60])));
        assert_eq!(
            format!("{f} {p}"),
            "info.pieces holds 3 hashes but 100 bytes in pieces of 32 need 4"
        );
        let (f, p) = rejection(|i| set(i, "pieces", Value::Bytes(vec![0; 100])));
        assert!(f == "info.pieces" && p.starts_with("holds 5 hashes"), "{p}");
        let (f, _) = rejection(|i| {
            i.remove(&b"pieces"[..]);
        });
        assert_eq!(f, "info.pieces");
        let (f, p) = rejection(|i| set(i, "length", Value::Int(100)));
        assert_eq!(
            format!("{f} {p}"),
            "info has both `length` and `files`; expected one"
        );
        let (f, p) = rejection(|i| {
            i.remove(&b"files"[..]);
        });
        assert_eq!(
            format!("{f} {p}"),
            "info has neither `length` nor `files`; expected one"
        );
        let (f, p) = rejection(|i| set(i, "files", Value::List(vec![file(0, &["a"])])));
        assert_eq!(
            format!("{f} {p}"),
            "info describes no data (total size is zero)"
        );
        let huge = (MAX_TOTAL_LENGTH / 2 + 1) as i64;
        let (f, p) = rejection(|i| {
            set(
                i,
                "files",
                Value::List(vec![file(huge, &["a"]), file(huge, &["b"])]),
            );
        });
        assert!(f == "info" && p.starts_with("total size exceeds"), "{p}");
        let (f, p) = rejection(|i| set(i, "files", Value::List(vec![file(i64::MAX, &["a"])])));
        assert!(
            f == "info.files[0].length" && p.starts_with("is absurdly large"),
            "{p}"
        );
        let (f, p) = rejection(|i| set(i, "private", Value::Int(2)));
        assert_eq!(format!("{f} {p}"), "info.private is 2, expected 0 or 1");
        let mut info = multi_info();
        set(&mut info, "private", Value::Int(1));
        assert!(parse(torrent(info)).unwrap().info.private);
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.torrent");
        let mut info = single_info();
        set(&mut info, "piece length", Value::Int(0));
        fs::write(&path, bencode::encode(&Value::Dict(torrent(info)))).unwrap();
        let msg = Metainfo::load(&path).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!("{}: info.piece length is zero", path.display())
        );
        let missing = dir.path().join("missing.torrent");
        let msg = Metainfo::load(&missing).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}: ", missing.display())),
            "{msg}"
        );
        fs::write(&path, b"d4:infoi1").unwrap();
        let msg = Metainfo::load(&path).unwrap_err().to_string();
        assert!(
            msg.contains("x.torrent: invalid bencode at byte 9"),
            "{msg}"
        );
    }

    #[test]
    fn formats_dates_and_sizes() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc_date(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(utc_date(1_763_731_200), "2025-11-21 13:20:00 UTC");
        // Extreme values must not overflow.
        assert!(utc_date(i64::MAX).ends_with("UTC"));
        assert!(utc_date(i64::MIN).ends_with("UTC"));
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(32768), "32.00 KiB, 32768 bytes");
        assert_eq!(human_size(2_621_440), "2.50 MiB, 2621440 bytes");
        assert_eq!(
            human_size(MAX_TOTAL_LENGTH),
            "1.00 PiB, 1125899906842624 bytes"
        );
    }

    #[test]
    fn describe_lists_everything() {
        let mut top = torrent(multi_info());
        set(&mut top, "created by", Value::from("me"));
        set(&mut top, "comment", Value::from("note"));
        let m = parse(top).unwrap();
        let text = m.describe();
        assert!(
            text.lines().any(|l| l == format!("Hash: {}", m.info_hash)),
            "{text}"
        );
        for needle in [
            "Name: dir\n",
            "Created by: me\n",
            "Comment: note\n",
            "Piece Count: 4\n",
            "Piece Size: 32 bytes\n",
            "Total Size: 100 bytes\n",
            "Privacy: Public torrent\n",
            "Tier #1\n  http://t/announce\n",
            "  dir/x/one (40 bytes)\n",
            "  dir/two (60 bytes)\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("Created on"));
    }

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
        assert_eq!(default_piece_length(1), 16 << 10);
        assert_eq!(default_piece_length(2000 * (16 << 10)), 16 << 10);
        assert_eq!(default_piece_length(2000 * (16 << 10) + 1), 32 << 10);
        assert_eq!(default_piece_length(1 << 30), 1 << 20);
        assert_eq!(default_piece_length(1 << 50), 16 << 20);
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
