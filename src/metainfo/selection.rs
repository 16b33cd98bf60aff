//! Selective download: which files of a torrent to fetch (`piecemeal peer --only SPEC`), and
//! which pieces that takes.
//!
//! A SPEC is one of
//! - `N`: the file with index `N`, as `piecemeal show` numbers them (from 0);
//! - `N-M`: the files `N` to `M`, both included;
//! - anything else: a glob matched against the whole file path as `piecemeal show` prints it
//!   (`name/folder/file.mkv` for a multi-file torrent), where `*` matches any run of characters
//!   (`/` included, so `*.mkv` finds them in every folder) and `?` any one character.
//!
//! A file is wanted when any SPEC selects it. A piece is wanted when it holds a byte of a wanted
//! file: a piece that spans a wanted and an unwanted file is fetched whole, so some bytes of the
//! unwanted file get written too.

use super::Info;
use crate::bitfield::Bitfield;
use std::fmt;

/// One `--only` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSpec {
    /// Files `first..=last` by index.
    Indices { first: usize, last: usize },
    /// A glob on the file path.
    Glob(String),
}

/// Why a SPEC cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionError {
    /// The SPEC is empty or a backwards range.
    BadSpec(String),
    /// A file index past the torrent's last file.
    NoSuchFile { index: usize, files: usize },
    /// Together the SPECs select no file of the torrent.
    NothingSelected,
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionError::BadSpec(s) => write!(
                f,
                "bad file selection {s:?}: expected an index N, a range N-M (N <= M) or a glob"
            ),
            SelectionError::NoSuchFile { index, files } => write!(
                f,
                "file index {index} is out of range: the torrent has {files} files (0 to {})",
                files.saturating_sub(1)
            ),
            SelectionError::NothingSelected => {
                write!(
                    f,
                    "--only selects no file of this torrent (`piecemeal show` lists them)"
                )
            }
        }
    }
}

impl std::error::Error for SelectionError {}

impl FileSpec {
    /// Parses one SPEC (see the module doc).
    pub fn parse(text: &str) -> Result<FileSpec, SelectionError> {
        let bad = || SelectionError::BadSpec(text.to_string());
        if text.is_empty() {
            return Err(bad());
        }
        let number = |s: &str| -> Option<Result<usize, SelectionError>> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(s.parse().map_err(|_| bad()))
        };
        if let Some(index) = number(text) {
            let index = index?;
            return Ok(FileSpec::Indices {
                first: index,
                last: index,
            });
        }
        if let Some((a, b)) = text.split_once('-')
            && let (Some(first), Some(last)) = (number(a), number(b))
        {
            let (first, last) = (first?, last?);
            if first > last {
                return Err(bad());
            }
            return Ok(FileSpec::Indices { first, last });
        }
        Ok(FileSpec::Glob(text.to_string()))
    }
}

/// Which files of `info` the SPECs select; no SPEC at all selects every file.
pub fn wanted_files(info: &Info, specs: &[FileSpec]) -> Result<Vec<bool>, SelectionError> {
    let paths: Vec<String> = info
        .files
        .iter()
        .map(|file| info.relative_path(file).to_string_lossy().into_owned())
        .collect();
    select_paths(&paths, specs)
}

/// Which of these file paths (as `piecemeal show` prints them, in torrent order, so a path's
/// position is its index) the SPECs select; no SPEC at all selects every file. The same rules
/// as [`wanted_files`], for a caller that has the paths but not the torrent (`piecemeal remote`).
pub fn select_paths<S: AsRef<str>>(
    paths: &[S],
    specs: &[FileSpec],
) -> Result<Vec<bool>, SelectionError> {
    let count = paths.len();
    if specs.is_empty() {
        return Ok(vec![true; count]);
    }
    let mut wanted = vec![false; count];
    for spec in specs {
        match spec {
            FileSpec::Indices { first, last } => {
                if *last >= count {
                    return Err(SelectionError::NoSuchFile {
                        index: *last,
                        files: count,
                    });
                }
                wanted[*first..=*last].iter_mut().for_each(|w| *w = true);
            }
            FileSpec::Glob(pattern) => {
                for (w, path) in wanted.iter_mut().zip(paths) {
                    *w |= glob_matches(pattern.as_bytes(), path.as_ref().as_bytes());
                }
            }
        }
    }
    if !wanted.contains(&true) {
        return Err(SelectionError::NothingSelected);
    }
    Ok(wanted)
}

/// The pieces holding at least one byte of a wanted file.
pub fn wanted_pieces(info: &Info, wanted_files: &[bool]) -> Bitfield {
    let mut pieces = Bitfield::new(info.piece_count());
    let mut offset = 0u64;
    for (file, &wanted) in info.files.iter().zip(wanted_files) {
        if wanted && file.length > 0 {
            let first = offset / info.piece_length;
            let last = (offset + file.length - 1) / info.piece_length;
            for index in first..=last {
                pieces.set(index as usize);
            }
        }
        offset += file.length;
    }
    pieces
}

/// `*` matches any run of bytes, `?` any one byte, anything else itself. Iterative, with one
/// backtrack point (the last `*`), so it is linear in practice and never recurses.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::FileEntry;

    fn info(piece_length: u64, files: &[(&str, u64)]) -> Info {
        let total: u64 = files.iter().map(|f| f.1).sum();
        Info {
            name: "t".into(),
            piece_length,
            pieces: vec![[0; 20]; total.div_ceil(piece_length) as usize],
            files: files
                .iter()
                .map(|(p, l)| FileEntry {
                    path: p.split('/').map(String::from).collect(),
                    length: *l,
                })
                .collect(),
            multi_file: true,
            private: false,
        }
    }

    fn glob(s: &str) -> FileSpec {
        FileSpec::Glob(s.into())
    }

    #[test]
    fn parses_indices_ranges_and_globs() {
        let p = |s| FileSpec::parse(s);
        assert_eq!(p("2"), Ok(FileSpec::Indices { first: 2, last: 2 }));
        assert_eq!(p("1-3"), Ok(FileSpec::Indices { first: 1, last: 3 }));
        assert_eq!(p("*.mkv"), Ok(glob("*.mkv")));
        // Not a range of numbers: a glob on a name with a dash.
        assert_eq!(p("a-1"), Ok(glob("a-1")));
        assert_eq!(p("-1"), Ok(glob("-1")));
        for bad in [
            "",
            "3-1",
            "99999999999999999999999",
            "1-99999999999999999999999",
        ] {
            let err = p(bad).unwrap_err();
            assert_eq!(err, SelectionError::BadSpec(bad.into()));
            assert!(err.to_string().contains("expected an index N"), "{err}");
        }
    }

    #[test]
    fn globs_match_whole_paths() {
        let m = |p: &str, t: &str| glob_matches(p.as_bytes(), t.as_bytes());
        assert!(m("*.mkv", "t/a/b.mkv"));
        assert!(!m("*.mkv", "t/a/b.mkv.part"));
        assert!(m("t/?.txt", "t/a.txt"));
        assert!(!m("t/?.txt", "t/ab.txt"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxx"));
        assert!(m("t/exact", "t/exact"));
        assert!(!m("exact", "t/exact"));
        assert!(m("*", ""));
        assert!(!m("?", ""));
    }

    #[test]
    fn selects_files_by_index_range_and_glob() {
        let i = info(4, &[("a.txt", 5), ("sub/b.mkv", 3), ("c.mkv", 2), ("d", 1)]);
        let w = |specs: &[FileSpec]| wanted_files(&i, specs);
        assert_eq!(w(&[]), Ok(vec![true; 4]));
        assert_eq!(
            w(&[
                FileSpec::parse("0").unwrap(),
                FileSpec::parse("2-3").unwrap()
            ]),
            Ok(vec![true, false, true, true])
        );
        assert_eq!(w(&[glob("*.mkv")]), Ok(vec![false, true, true, false]));
        assert_eq!(w(&[glob("t/sub/*")]), Ok(vec![false, true, false, false]));
        assert_eq!(
            w(&[FileSpec::parse("4").unwrap()]),
            Err(SelectionError::NoSuchFile { index: 4, files: 4 })
        );
        let err = w(&[glob("*.avi")]).unwrap_err();
        assert_eq!(err, SelectionError::NothingSelected);
        assert!(err.to_string().contains("piecemeal show"), "{err}");
    }

    #[test]
    fn wanted_pieces_include_those_spanning_a_file_boundary() {
        // Pieces of 4: a = 0..5 (pieces 0-1), b = 5..8 (piece 1), empty, c = 8..17 (pieces 2-4),
        // d = 17..18 (piece 4).
        let i = info(4, &[("a", 5), ("b", 3), ("e", 0), ("c", 9), ("d", 1)]);
        let pieces = |wanted: &[bool]| wanted_pieces(&i, wanted).ones().collect::<Vec<_>>();
        assert_eq!(pieces(&[false, true, false, false, false]), vec![1]);
        assert_eq!(pieces(&[true, false, false, false, false]), vec![0, 1]);
        assert_eq!(pieces(&[false, false, false, true, false]), vec![2, 3, 4]);
        assert_eq!(pieces(&[false, false, false, false, true]), vec![4]);
        assert_eq!(
            pieces(&[false, false, true, false, false]),
            Vec::<usize>::new()
        );
        assert_eq!(pieces(&[true; 5]), vec![0, 1, 2, 3, 4]);
    }
}
