//! Where a torrent's bytes live on disk: the mapping from pieces to spans of files, reads for
//! uploads, writes of verified pieces, and the start-up check of what a folder already holds.
//!
//! The torrent is one contiguous byte range cut into files in `info` order; a piece may span
//! several files. Files are opened on demand through the process's [`FilePool`] (read-only until
//! a write needs them) and accessed with positioned reads and writes, so many threads can use
//! one `Storage` without a lock.
//!
//! A user's bytes are never cut: an existing file longer than the torrent says is refused at
//! [`Storage::open_selected`] (it is not the torrent's file, or not only), and nothing outside
//! the torrent's files is touched. With a selective download an unwanted file is neither
//! created nor opened for writing at open: it is created (sparse, empty up to the bytes written)
//! only when a piece it shares with a wanted file is written.

use super::file_pool::{Access, DEFAULT_MAX_OPEN_FILES, FilePool};
use super::resume::{CheckPlan, FileStamp};
use crate::bitfield::Bitfield;
use crate::metainfo::Info;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A storage failure, naming the file involved.
#[derive(Debug)]
pub struct StorageError {
    /// The file or folder involved.
    pub path: PathBuf,
    /// What was being done to it: `open`, `read`, `write`, `sync`, ...
    pub action: &'static str,
    /// Why it failed.
    pub source: io::Error,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

struct StoredFile {
    path: PathBuf,
    /// Offset of the file's first byte within the torrent.
    offset: u64,
    length: u64,
    /// Written since the last [`Storage::sync`].
    dirty: AtomicBool,
}

/// One span of a file that a range of the torrent maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Index of the file in `info` order.
    pub file: usize,
    /// Where the span starts within the file.
    pub file_offset: u64,
    /// Bytes in the span.
    pub length: u64,
}

/// The files of one torrent inside a download folder.
pub struct Storage {
    files: Vec<StoredFile>,
    /// `(offset, length)` of each file, kept beside `files` for [`spans`].
    layout: Vec<(u64, u64)>,
    piece_length: u64,
    total_length: u64,
    pool: Arc<FilePool>,
    /// This storage's id in `pool`.
    owner: u64,
}

/// Maps the torrent range `[start, start+len)` onto the files given by `(offset, length)`
/// pairs sorted by offset. Zero-length files get no span.
pub fn spans(files: &[(u64, u64)], start: u64, len: u64) -> Vec<Span> {
    let end = start + len;
    let first = files.partition_point(|&(offset, length)| offset + length <= start);
    files[first..]
        .iter()
        .enumerate()
        .take_while(|(_, (offset, _))| *offset < end)
        .filter(|(_, (_, length))| *length > 0)
        .map(|(i, &(offset, length))| {
            let from = start.max(offset);
            let to = end.min(offset + length);
            Span {
                file: first + i,
                file_offset: from - offset,
                length: to - from,
            }
        })
        .collect()
}

impl Storage {
    /// Opens every file of `info` below `dir` with a pool of its own (see
    /// [`open_selected`](Self::open_selected)).
    pub fn open(info: &Info, dir: &Path) -> Result<Storage, StorageError> {
        let pool = FilePool::new(DEFAULT_MAX_OPEN_FILES);
        Storage::open_selected(info, dir, &vec![true; info.files.len()], &pool)
    }

    /// Lays out the files of `info` below `dir`, creating the wanted ones that are missing
    /// (empty, with their folders); existing files are not opened until used. An existing file
    /// longer than the torrent says is refused, never cut. Unwanted files (`wanted` false) are
    /// left as they are. Handles come from `pool`.
    pub fn open_selected(
        info: &Info,
        dir: &Path,
        wanted: &[bool],
        pool: &Arc<FilePool>,
    ) -> Result<Storage, StorageError> {
        let mut files = Vec::with_capacity(info.files.len());
        let mut offset = 0;
        for (entry, &wanted) in info.files.iter().zip(wanted) {
            let path = dir.join(info.relative_path(entry));
            if wanted {
                prepare(&path, entry.length)?;
            }
            files.push(StoredFile {
                path,
                offset,
                length: entry.length,
                dirty: AtomicBool::new(false),
            });
            offset += entry.length;
        }
        let layout = files.iter().map(|f| (f.offset, f.length)).collect();
        Ok(Storage {
            files,
            layout,
            piece_length: info.piece_length,
            total_length: offset,
            pool: pool.clone(),
            owner: pool.register(),
        })
    }

    /// The handle of file `index` from the pool, opened for `access`.
    fn handle(&self, index: usize, access: Access) -> io::Result<Arc<File>> {
        self.pool
            .get((self.owner, index), &self.files[index].path, access)
    }

    /// Reads `len` bytes at `begin` within piece `index`. Bytes past a file's current end (a
    /// file not yet fully written) are an error, so only data on disk is ever served.
    pub fn read(&self, index: u32, begin: u32, len: u32) -> Result<Vec<u8>, StorageError> {
        let mut out = vec![0u8; len as usize];
        self.read_into(index, begin, &mut out)?;
        Ok(out)
    }

    /// [`read`](Self::read) into `out` (as many bytes as it holds).
    pub fn read_into(&self, index: u32, begin: u32, out: &mut [u8]) -> Result<(), StorageError> {
        let start = index as u64 * self.piece_length + begin as u64;
        self.each_span(start, out.len() as u64, "read", |file, offset, range| {
            self.handle(file, Access::Read)?
                .read_exact_at(&mut out[range], offset)
        })
    }

    /// Writes a whole piece into the files it spans.
    pub fn write_piece(&self, index: u32, data: &[u8]) -> Result<(), StorageError> {
        self.write(index, 0, data)
    }

    /// Writes `data` at `begin` within piece `index`, into the files it spans.
    pub fn write(&self, index: u32, begin: u32, data: &[u8]) -> Result<(), StorageError> {
        let start = index as u64 * self.piece_length + begin as u64;
        self.each_span(start, data.len() as u64, "write", |file, offset, range| {
            self.handle(file, Access::Write)?
                .write_all_at(&data[range], offset)?;
            self.files[file].dirty.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    /// Starts writing piece `index`'s bytes back to disk without waiting for them (Linux
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that the fsync before the next resume
    /// record, and the one at completion, find little left to do: without it a download
    /// shorter than a save period leaves all of its bytes to one fsync at the end, which held
    /// up a 1 GiB download's exit by about 0.7 s. A hint: a failure is ignored here, and the
    /// fsync reports real ones.
    pub fn start_writeback(&self, index: u32) {
        let start = index as u64 * self.piece_length;
        let len = self
            .piece_length
            .min(self.total_length.saturating_sub(start));
        let _ = self.each_span(start, len, "write back", |file, offset, range| {
            write_back(
                &*self.handle(file, Access::Read)?,
                offset,
                range.len() as u64,
            )
        });
    }

    /// Calls `io` for each file span of the torrent range `[start, start+len)` with the file's
    /// index, the offset in it, and the matching range of the caller's buffer.
    fn each_span(
        &self,
        start: u64,
        len: u64,
        action: &'static str,
        mut io: impl FnMut(usize, u64, std::ops::Range<usize>) -> io::Result<()>,
    ) -> Result<(), StorageError> {
        let mut at = 0usize;
        for span in spans(&self.layout, start, len) {
            let range = at..at + span.length as usize;
            io(span.file, span.file_offset, range).map_err(|source| StorageError {
                path: self.files[span.file].path.clone(),
                action,
                source,
            })?;
            at += span.length as usize;
        }
        Ok(())
    }

    /// Hashes every piece on disk (with every core) and returns the set that matches `info`.
    /// Pieces whose bytes are missing (short or absent files) are simply not in the set.
    pub fn verify(&self, info: &Info) -> Bitfield {
        self.check(info, &CheckPlan::everything(info.piece_count()))
    }

    /// The start-up check: hashes (with every core) the pieces `plan` lists to hash and returns
    /// those that match, with the ones `plan` already trusts (from a resume record).
    pub fn check(&self, info: &Info, plan: &CheckPlan) -> Bitfield {
        let mut have = super::verify::check(self, info, &plan.to_hash);
        for index in plan.trusted.ones() {
            have.set(index);
        }
        have
    }

    /// Total bytes of the torrent.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// The size and modification time of each file now (`None`: absent).
    pub fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.files.iter().map(|f| FileStamp::of(&f.path)).collect()
    }

    /// Flushes every file written since the last sync to disk (Linux flushes a file's pages
    /// through any of its descriptors, so an evicted handle needs no reopening for writing).
    pub fn sync(&self) -> Result<(), StorageError> {
        for (index, file) in self.files.iter().enumerate() {
            if !file.dirty.swap(false, Ordering::SeqCst) {
                continue;
            }
            if let Err(source) = self.handle(index, Access::Read).and_then(|h| h.sync_data()) {
                file.dirty.store(true, Ordering::SeqCst);
                return Err(StorageError {
                    path: file.path.clone(),
                    action: "sync",
                    source,
                });
            }
        }
        Ok(())
    }
}

/// Starts the writeback of `len` bytes at `offset` of `file` (see [`Storage::start_writeback`]).
#[cfg(target_os = "linux")]
fn write_back(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: a valid descriptor (the File outlives the call) and plain integers.
    let done = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.pool.forget(self.owner);
    }
}

/// Creates a wanted file (and its folders) if missing; refuses one longer than `length`.
fn prepare(path: &Path, length: u64) -> Result<(), StorageError> {
    let error = |action, source| StorageError {
        path: path.to_path_buf(),
        action,
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > length => Err(error(
            "use",
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it holds {} bytes, more than the torrent's {length}; piecemeal never cuts \
                     a file: move it away or give the peer another --dir",
                    meta.len()
                ),
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| StorageError {
                    path: parent.to_path_buf(),
                    action: "create folder",
                    source,
                })?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map(drop)
                .map_err(|source| error("create", source))
        }
        Err(source) => Err(error("open", source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::piece_matches;
    use crate::metainfo::FileEntry;

    fn info_for(content: &[&[u8]], piece_length: u64) -> (Info, Vec<u8>) {
        let all: Vec<u8> = content.concat();
        let pieces = all
            .chunks(piece_length as usize)
            .map(|c| sha1_smol::Sha1::from(c).digest().bytes())
            .collect();
        let files = content
            .iter()
            .enumerate()
            .map(|(i, c)| FileEntry {
                path: vec!["sub".into(), format!("f{i}")],
                length: c.len() as u64,
            })
            .collect();
        let info = Info {
            name: "t".into(),
            piece_length,
            pieces,
            files,
            multi_file: true,
            private: false,
        };
        (info, all)
    }

    #[test]
    fn spans_cross_file_boundaries_and_skip_empty_files() {
        let files = [(0, 5), (5, 0), (5, 3), (8, 10)];
        assert_eq!(
            spans(&files, 3, 7),
            vec![
                Span {
                    file: 0,
                    file_offset: 3,
                    length: 2
                },
                Span {
                    file: 2,
                    file_offset: 0,
                    length: 3
                },
                Span {
                    file: 3,
                    file_offset: 0,
                    length: 2
                },
            ]
        );
        assert_eq!(
            spans(&files, 8, 10),
            vec![Span {
                file: 3,
                file_offset: 0,
                length: 10
            }]
        );
    }

    #[test]
    fn pieces_written_out_of_order_land_in_the_right_files() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..100u8).collect();
        let b: Vec<u8> = vec![];
        let c: Vec<u8> = (0..37u8).map(|x| x.wrapping_mul(7)).collect();
        let (info, all) = info_for(&[&a, &b, &c], 16);
        let storage = Storage::open(&info, dir.path()).unwrap();
        assert_eq!(storage.verify(&info).count(), 0);
        for index in (0..info.piece_count()).rev() {
            let start = index * 16;
            let end = (start + 16).min(all.len());
            assert!(piece_matches(&info, index, &all[start..end]));
            storage.write_piece(index as u32, &all[start..end]).unwrap();
            // Across the empty file and the short last piece, and harmless to the bytes.
            storage.start_writeback(index as u32);
        }
        storage.start_writeback(info.piece_count() as u32);
        assert!(storage.verify(&info).is_complete());
        assert_eq!(std::fs::read(dir.path().join("t/sub/f0")).unwrap(), a);
        assert_eq!(std::fs::read(dir.path().join("t/sub/f1")).unwrap(), b);
        assert_eq!(std::fs::read(dir.path().join("t/sub/f2")).unwrap(), c);
        assert_eq!(storage.read(6, 2, 6).unwrap(), all[98..104].to_vec());
    }

    #[test]
    fn verify_finds_only_intact_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..64u8).collect();
        let (info, all) = info_for(&[&a], 16);
        let storage = Storage::open(&info, dir.path()).unwrap();
        storage.write_piece(0, &all[..16]).unwrap();
        storage.write_piece(2, &all[32..48]).unwrap();
        let mut corrupt = all[16..32].to_vec();
        corrupt[0] ^= 1;
        storage.write_piece(1, &corrupt).unwrap();
        let have = storage.verify(&info);
        assert_eq!(
            (have.get(0), have.get(1), have.get(2), have.get(3)),
            (true, false, true, false)
        );
    }

    #[test]
    fn reading_past_what_is_on_disk_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (info, _) = info_for(&[&[1u8; 40]], 16);
        let storage = Storage::open(&info, dir.path()).unwrap();
        let err = storage.read(1, 0, 16).unwrap_err();
        assert!(err.to_string().contains("t/sub/f0"), "{err}");
    }

    #[test]
    fn a_longer_file_is_refused_not_cut_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..40u8).collect();
        let (info, _) = info_for(&[&content, &content], 16);
        let path = dir.path().join("t/sub/f1");
        let longer = [&content[..], b"the user's own tail"].concat();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &longer).unwrap();
        std::fs::write(dir.path().join("t/sub/notes"), b"mine").unwrap();
        let err = Storage::open(&info, dir.path()).err().expect("refused");
        let message = err.to_string();
        assert!(
            message.contains("t/sub/f1")
                && message.contains("59 bytes, more than the torrent's 40"),
            "{message}"
        );
        assert!(!message.contains('\n'));
        assert_eq!(std::fs::read(&path).unwrap(), longer, "not cut");
        assert_eq!(
            std::fs::read(dir.path().join("t/sub/notes")).unwrap(),
            b"mine"
        );
    }

    #[test]
    fn a_complete_read_only_file_is_read_through_a_read_only_handle() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..40u8).collect();
        let (info, all) = info_for(&[&content], 16);
        let path = dir.path().join("t/sub/f0");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &content).unwrap();
        let pool = FilePool::new(4);
        let storage = Storage::open_selected(&info, dir.path(), &[true], &pool).unwrap();
        assert!(storage.verify(&info).is_complete());
        assert_eq!(storage.read(1, 0, 16).unwrap(), all[16..32].to_vec());
        // Every descriptor the check and the read used is O_RDONLY: no write access was asked
        // for, so a file the user made read-only (or a read-only mount) seeds.
        let handle = pool.get((storage.owner, 0), &path, Access::Read).unwrap();
        let fdinfo = std::fs::read_to_string(format!(
            "/proc/self/fdinfo/{}",
            std::os::fd::AsRawFd::as_raw_fd(&*handle)
        ))
        .unwrap();
        let flags = fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .unwrap();
        assert_eq!(
            u32::from_str_radix(flags.trim(), 8).unwrap() & 0o3,
            0,
            "{fdinfo}"
        );
        assert_eq!(pool.open_count(), 1);
    }

    #[test]
    fn unwanted_files_are_left_alone_until_a_shared_piece_is_written() {
        let dir = tempfile::tempdir().unwrap();
        // Pieces of 16: f0 = 0..20 (pieces 0-1), f1 = 20..40 (pieces 1-2), f2 = 40..70 (2-4).
        let content: Vec<Vec<u8>> = [20u8, 20, 30]
            .iter()
            .map(|&n| vec![n; n as usize])
            .collect();
        let parts: Vec<&[u8]> = content.iter().map(|c| &c[..]).collect();
        let (info, all) = info_for(&parts, 16);
        let unwanted = dir.path().join("t/sub/f2");
        std::fs::create_dir_all(unwanted.parent().unwrap()).unwrap();
        std::fs::write(
            &unwanted,
            b"longer than nothing, and not the torrent's bytes at all",
        )
        .unwrap();
        let before = std::fs::read(&unwanted).unwrap();
        let pool = FilePool::new(2);
        let storage =
            Storage::open_selected(&info, dir.path(), &[false, true, false], &pool).unwrap();
        // Neither created nor cut: f0 is absent, f2 untouched.
        assert!(!dir.path().join("t/sub/f0").exists());
        assert_eq!(std::fs::read(&unwanted).unwrap(), before);
        assert_eq!(storage.verify(&info).count(), 0);
        // Piece 1 spans f0 and f1: f0 is created, sparse, up to the bytes written.
        storage.write_piece(1, &all[16..32]).unwrap();
        let f0 = std::fs::read(dir.path().join("t/sub/f0")).unwrap();
        assert_eq!(f0.len(), 20);
        assert_eq!(&f0[16..], &all[16..20]);
        assert_eq!(&f0[..16], &[0; 16], "a hole, not the torrent's bytes");
        assert_eq!(storage.read(1, 0, 16).unwrap(), all[16..32].to_vec());
        storage.sync().unwrap();
        assert_eq!(storage.verify(&info).ones().collect::<Vec<_>>(), vec![1]);
    }
}
