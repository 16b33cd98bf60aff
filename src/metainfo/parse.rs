//! Decoding and validating a `.torrent` file into a [`Metainfo`], and computing its info hash.
//! The rules enforced here are listed in the [module documentation](super).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{
    FileEntry, Info, InfoHash, MAX_FILES, MAX_PIECE_LENGTH, MAX_TORRENT_FILE_SIZE,
    MAX_TOTAL_LENGTH, Metainfo, MetainfoError, RawInfo, invalid, io_error,
};
use crate::bencode::{self, Value};

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
pub(super) fn component_problem(c: &str) -> Option<&'static str> {
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
            info_hash: InfoHash(sha1_smol::Sha1::from(&bytes[span.clone()]).digest().bytes()),
            info_bytes: RawInfo(bytes[span].into()),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::fixtures::*;
    use std::fs;
    use std::path::PathBuf;

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
}
