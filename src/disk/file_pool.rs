//! A bounded set of open file handles shared by every torrent of a process, least recently used
//! closed first, so a torrent of 10,000 files does not hold 10,000 descriptors.
//!
//! A file is opened read-only until a write needs it (a complete file that is read-only, or on a
//! read-only folder, is still seeded); the first write reopens it for writing. The pool lock is
//! held for the bookkeeping only: opening happens outside it, and the I/O itself runs on an
//! `Arc<File>` the caller holds, so an evicted handle stays usable by the one I/O in progress
//! and is closed when that ends. So at most `capacity` files are open through the pool, plus
//! at most one per thread that is in the middle of a read, write or sync on an evicted file.

use crate::lock::lock;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The default of `--max-open-files`.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// Which file: the storage that registered it, and its index there.
pub type FileKey = (u64, usize);

/// What the caller is about to do with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads only: the file must exist, and is opened read-only.
    Read,
    /// Writes: the file (and its folders) is created when missing, never cut.
    Write,
}

struct Slot {
    file: Arc<File>,
    writable: bool,
    /// The tick of its last use, its key in `Lru::order`.
    used: u64,
}

#[derive(Default)]
struct Lru {
    tick: u64,
    open: HashMap<FileKey, Slot>,
    /// Open files by last use, oldest first.
    order: BTreeMap<u64, FileKey>,
    /// Files being opened outside the lock, whose room is already made.
    opening: usize,
}

impl Lru {
    /// The open handle of `key` if it allows `access`, marked as just used.
    fn reuse(&mut self, key: FileKey, access: Access) -> Option<Arc<File>> {
        let slot = self.open.get(&key)?;
        if access == Access::Write && !slot.writable {
            return None;
        }
        let file = slot.file.clone();
        self.touch(key);
        Some(file)
    }

    fn touch(&mut self, key: FileKey) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.open.get_mut(&key) {
            self.order.remove(&slot.used);
            slot.used = tick;
            self.order.insert(tick, key);
        }
    }
}

/// At most `capacity` files open at once (see the module doc).
pub struct FilePool {
    capacity: usize,
    state: Mutex<Lru>,
    next_owner: AtomicU64,
}

impl FilePool {
    /// A pool keeping at most `capacity` (at least 1) files open.
    pub fn new(capacity: usize) -> Arc<FilePool> {
        Arc::new(FilePool {
            capacity: capacity.max(1),
            state: Mutex::new(Lru::default()),
            next_owner: AtomicU64::new(0),
        })
    }

    /// A fresh owner id for the keys of one storage.
    pub fn register(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::SeqCst)
    }

    /// The handle of `key` (the file at `path`), opened as `access` needs if it is not open
    /// that way already. Room is made before opening (the least recently used handles are
    /// dropped), so the pool's handles and the ones being opened never exceed its capacity.
    pub fn get(&self, key: FileKey, path: &Path, access: Access) -> io::Result<Arc<File>> {
        {
            let mut state = lock(&self.state);
            if let Some(file) = state.reuse(key, access) {
                return Ok(file);
            }
            if let Some(old) = state.open.remove(&key) {
                state.order.remove(&old.used);
            }
            while state.open.len() + state.opening >= self.capacity {
                let Some((_, oldest)) = state.order.pop_first() else {
                    break;
                };
                state.open.remove(&oldest);
            }
            state.opening += 1;
        }
        let opened = open(path, access);
        let mut state = lock(&self.state);
        state.opening -= 1;
        let file = Arc::new(opened?);
        // Another thread may have opened it meanwhile: its handle serves if it is good enough.
        if let Some(theirs) = state.reuse(key, access) {
            return Ok(theirs);
        }
        if let Some(old) = state.open.remove(&key) {
            state.order.remove(&old.used);
        }
        state.open.insert(
            key,
            Slot {
                file: file.clone(),
                writable: access == Access::Write,
                used: 0,
            },
        );
        state.touch(key);
        Ok(file)
    }

    /// Closes the handles of `owner` (a storage going away).
    pub fn forget(&self, owner: u64) {
        let mut state = lock(&self.state);
        let keys: Vec<FileKey> = state
            .open
            .keys()
            .filter(|(o, _)| *o == owner)
            .copied()
            .collect();
        for key in keys {
            if let Some(slot) = state.open.remove(&key) {
                state.order.remove(&slot.used);
            }
        }
    }

    /// How many handles the pool holds now.
    pub fn open_count(&self) -> usize {
        lock(&self.state).open.len()
    }
}

fn open(path: &Path, access: Access) -> io::Result<File> {
    match access {
        Access::Read => File::open(path),
        Access::Write => {
            let options = || {
                let mut o = OpenOptions::new();
                o.read(true).write(true).create(true).truncate(false);
                o
            };
            match options().open(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    options().open(path)
                }
                other => other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The `flags:` of a descriptor, from /proc (octal), to see how a file was opened.
    fn open_flags(file: &File) -> u32 {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))
            .expect("fdinfo");
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .expect("flags line");
        u32::from_str_radix(flags.trim(), 8).unwrap()
    }

    const O_ACCMODE: u32 = 0o3;

    #[test]
    fn least_recently_used_files_are_closed_beyond_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FilePool::new(3);
        let owner = pool.register();
        let path = |i: usize| dir.path().join(format!("d/f{i}"));
        for i in 0..3 {
            pool.get((owner, i), &path(i), Access::Write).unwrap();
        }
        // f0 used again: f1 is now the oldest and goes when f3 comes.
        let f0 = pool.get((owner, 0), &path(0), Access::Read).unwrap();
        pool.get((owner, 3), &path(3), Access::Write).unwrap();
        assert_eq!(pool.open_count(), 3);
        let state = lock(&pool.state);
        assert!(state.open.contains_key(&(owner, 0)));
        assert!(!state.open.contains_key(&(owner, 1)));
        assert_eq!(state.order.len(), 3);
        drop(state);
        assert!(Arc::ptr_eq(
            &f0,
            &pool.get((owner, 0), &path(0), Access::Read).unwrap()
        ));
        pool.forget(owner);
        assert_eq!(pool.open_count(), 0);
    }

    #[test]
    fn files_open_read_only_until_a_write_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"bytes").unwrap();
        let pool = FilePool::new(4);
        let read = pool.get((0, 0), &path, Access::Read).unwrap();
        assert_eq!(open_flags(&read) & O_ACCMODE, 0, "O_RDONLY");
        let write = pool.get((0, 0), &path, Access::Write).unwrap();
        assert_eq!(open_flags(&write) & O_ACCMODE, 2, "O_RDWR");
        // The writable handle now serves reads too.
        let again = pool.get((0, 0), &path, Access::Read).unwrap();
        assert!(Arc::ptr_eq(&write, &again));
        assert_eq!(std::fs::read(&path).unwrap(), b"bytes", "never cut");
        assert!(
            pool.get((0, 1), &dir.path().join("none"), Access::Read)
                .is_err()
        );
    }
}
