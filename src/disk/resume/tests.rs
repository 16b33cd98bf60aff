use super::*;
use crate::disk::Storage;
use crate::metainfo::FileEntry;

/// Three files of 20, 0 and 30 bytes in pieces of 16: f0 = pieces 0-1, f2 = pieces 1-3.
fn torrent() -> (Info, InfoHash, Vec<u8>) {
    let all: Vec<u8> = (0..50u8).map(|x| x.wrapping_mul(37)).collect();
    let pieces = all
        .chunks(16)
        .map(|c| sha1_smol::Sha1::from(c).digest().bytes())
        .collect();
    let files = [20, 0, 30]
        .iter()
        .enumerate()
        .map(|(i, &length)| FileEntry {
            path: vec![format!("f{i}")],
            length,
        })
        .collect();
    let info = Info {
        name: "t".into(),
        piece_length: 16,
        pieces,
        files,
        multi_file: true,
        private: false,
    };
    (info, InfoHash([7; 20]), all)
}

fn stamp(length: u64, mtime_ns: u64) -> Option<FileStamp> {
    Some(FileStamp { length, mtime_ns })
}

fn record(info_hash: InfoHash) -> ResumeRecord {
    ResumeRecord {
        info_hash,
        pieces: Bitfield::with_pieces(4, &[0, 1, 3]),
        files: vec![stamp(20, 5), stamp(0, 6), stamp(30, 7)],
        stamped_at_ns: 7 + RACY_NS,
    }
}

#[test]
fn a_valid_record_reads_back_and_is_trusted_whole() {
    let (info, hash, _) = torrent();
    let rec = record(hash);
    let back = ResumeRecord::decode(&rec.encode(), &hash, &info).unwrap();
    assert_eq!(back, rec);
    let plan = plan(&back, &rec.files, &info);
    assert_eq!(plan.trusted, rec.pieces);
    assert_eq!(plan.to_hash.count(), 0, "nothing to hash");
}

#[test]
fn a_torn_or_damaged_record_is_refused() {
    let (info, hash, _) = torrent();
    let bytes = record(hash).encode();
    for cut in 0..bytes.len() {
        let err = ResumeRecord::decode(&bytes[..cut], &hash, &info).unwrap_err();
        assert!(matches!(err, ResumeError::Torn), "cut at {cut}: {err}");
    }
    for at in [3, bytes.len() / 2, bytes.len() - 2] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x04;
        let err = ResumeRecord::decode(&flipped, &hash, &info).unwrap_err();
        assert!(matches!(err, ResumeError::Torn), "flip at {at}: {err}");
    }
}

#[test]
fn a_foreign_or_other_version_record_is_refused() {
    let (info, hash, _) = torrent();
    let other = InfoHash([8; 20]);
    let err = ResumeRecord::decode(&record(other).encode(), &hash, &info).unwrap_err();
    assert!(
        matches!(&err, ResumeError::Foreign(h) if *h == other.hex()),
        "{err}"
    );
    // A well-checksummed body of another version.
    let body = String::from_utf8(record(hash).encode()).unwrap();
    let json = body
        .split_once('\n')
        .unwrap()
        .1
        .replace(&format!("\"version\":{VERSION}"), "\"version\":99");
    let sum = sha1_smol::Sha1::from(&json).digest();
    let bytes = format!("{MAGIC} {sum}\n{json}");
    let err = ResumeRecord::decode(bytes.as_bytes(), &hash, &info).unwrap_err();
    assert!(matches!(err, ResumeError::Version(99)), "{err}");
    // One of another torrent's shape under the same hash (a forged or buggy record).
    let mut short = record(hash);
    short.files.pop();
    let err = ResumeRecord::decode(&short.encode(), &hash, &info).unwrap_err();
    assert!(matches!(err, ResumeError::Shape(_)), "{err}");
}

#[test]
fn a_stale_file_has_only_its_pieces_hashed_again() {
    let (info, _, _) = torrent();
    let rec = record(InfoHash([7; 20]));
    // f0 (pieces 0-1) was touched after the record.
    let now = vec![stamp(20, 99), stamp(0, 6), stamp(30, 7)];
    let plan = plan(&rec, &now, &info);
    assert_eq!(plan.to_hash.ones().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(plan.trusted.ones().collect::<Vec<_>>(), vec![3]);
    // f2 (pieces 1-3) deleted: piece 0 is still trusted, 1-3 are hashed (and will be missing).
    let now = vec![stamp(20, 5), stamp(0, 6), None];
    let plan = super::plan(&rec, &now, &info);
    assert_eq!(plan.to_hash.ones().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(plan.trusted.ones().collect::<Vec<_>>(), vec![0]);
}

#[test]
fn save_replaces_the_record_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let (info, hash, _) = torrent();
    let path = path_for(dir.path(), &hash);
    assert!(matches!(
        load(&path, &hash, &info),
        Err(ResumeError::Unreadable(_))
    ));
    let mut rec = record(hash);
    save(&path, &rec).unwrap();
    rec.pieces.set(2);
    save(&path, &rec).unwrap();
    assert_eq!(load(&path, &hash, &info).unwrap(), rec);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(format!("{}.resume", hash.hex()))]
    );
}

#[test]
fn a_matching_record_skips_hashing_and_a_touched_file_is_hashed_again() {
    let dir = tempfile::tempdir().unwrap();
    let (info, hash, all) = torrent();
    let storage = Storage::open(&info, dir.path()).unwrap();
    for index in [0u32, 1, 3] {
        let start = index as usize * 16;
        storage
            .write_piece(index, &all[start..(start + 16).min(all.len())])
            .unwrap();
    }
    storage.sync().unwrap();
    let rec = ResumeRecord {
        info_hash: hash,
        pieces: storage.verify(&info),
        files: storage.stamps(),
        stamped_at_ns: now_ns() + RACY_NS,
    };
    assert_eq!(rec.pieces.ones().collect::<Vec<_>>(), vec![0, 1, 3]);
    // Damage piece 0 but put f0's modification time back: the record is trusted as it stands,
    // which shows that nothing was hashed (and why a stamp must change when content does).
    let f0 = dir.path().join("t/f0");
    let mtime = std::fs::metadata(&f0).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&f0).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&f0, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f0)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let trusting = plan(&rec, &storage.stamps(), &info);
    assert_eq!(storage.check(&info, &trusting), rec.pieces);
    // With another modification time, f0's pieces are hashed: 0 fails, 1 still matches.
    std::fs::File::options()
        .write(true)
        .open(&f0)
        .unwrap()
        .set_modified(mtime + std::time::Duration::from_secs(1))
        .unwrap();
    let checking = plan(&rec, &storage.stamps(), &info);
    assert_eq!(checking.to_hash.ones().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(
        storage.check(&info, &checking).ones().collect::<Vec<_>>(),
        vec![1, 3]
    );
}

#[test]
fn a_file_modified_just_before_the_stamps_is_hashed_again() {
    let (info, hash, _) = torrent();
    let mut rec = record(hash);
    assert!(!rec.has_racy_files());
    // Every file was modified within the racy window before the stamps: a write just after
    // them could have left the same modification time, so all are hashed, stamps unchanged.
    rec.stamped_at_ns = 7 + 1_000_000;
    assert!(rec.has_racy_files());
    let plan = plan(&rec, &rec.files, &info);
    assert_eq!(plan.to_hash.ones().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    // With f0 modified long before, only f2 is racy (f1 is empty): piece 0 stays trusted.
    rec.files[0] = stamp(20, 0);
    rec.stamped_at_ns = RACY_NS + 1;
    let plan = super::plan(&rec, &rec.files, &info);
    assert_eq!(plan.to_hash.ones().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(plan.trusted.ones().collect::<Vec<_>>(), vec![0]);
}
