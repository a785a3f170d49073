//! Replay of damaged WALs: a torn tail is cut, corruption elsewhere is
//! reported and skipped, garbage never panics, and nothing good is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use tempfile::TempDir;
use tracewarden_model::{AnyValue, KeyValue};
use tracewarden_store::{Store, StoreError, WalOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A data directory whose WAL holds `n` records, record `i` (from 1)
/// carrying trace `i`, in files of at most `segment_bytes`.
fn wal_with(n: u64, segment_bytes: u64) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(
        dir.path(),
        WalOptions {
            segment_bytes,
            ..no_fsync()
        },
    );
    let rt = runtime();
    for i in 1..=n {
        assert_eq!(rt.block_on(store.append(tiny_batch(i))).unwrap(), i);
    }
    drop(store);
    dir
}

/// A data directory whose WAL holds exactly these files.
fn data_dir_with(files: &[(String, Vec<u8>)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path(), files);
    dir
}

/// Replaces the WAL of `data_dir` with these files. Tests that reopen a
/// store hundreds of times reuse one directory: creating and removing
/// directories costs more than the replay under test.
fn load(data_dir: &Path, files: &[(String, Vec<u8>)]) {
    let wal = data_dir.join("wal");
    if wal.exists() {
        fs::remove_dir_all(&wal).unwrap();
    }
    fs::create_dir(&wal).unwrap();
    for (name, bytes) in files {
        fs::write(wal.join(name), bytes).unwrap();
    }
}

fn read_wal(dir: &Path) -> Vec<(String, Vec<u8>)> {
    wal_files(dir)
        .into_iter()
        .map(|path| {
            (
                path.file_name().unwrap().to_str().unwrap().to_owned(),
                fs::read(&path).unwrap(),
            )
        })
        .collect()
}

#[track_caller]
fn assert_traces(
    store: &Store,
    present: impl IntoIterator<Item = u64>,
    absent: impl IntoIterator<Item = u64>,
) {
    for t in present {
        assert!(
            store.trace(trace_id(t)).is_some(),
            "trace {t} should be present"
        );
    }
    for t in absent {
        assert!(
            store.trace(trace_id(t)).is_none(),
            "trace {t} should be absent"
        );
    }
}

#[test]
fn torn_tail_at_every_byte_of_the_last_record_drops_only_that_record() {
    let source = wal_with(5, WalOptions::default().segment_bytes);
    let [(name, bytes)] = read_wal(source.path()).try_into().unwrap();
    let last = record_ranges(&bytes)[4].clone();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    for cut in last.start..last.end {
        load(dir.path(), &[(name.clone(), bytes[..cut].to_vec())]);
        let (store, report) = open(dir.path(), no_fsync());
        assert_eq!(report.records, 4, "cut at {cut}");
        assert_eq!(
            report.torn_tail_bytes,
            (cut - last.start) as u64,
            "cut at {cut}"
        );
        assert_eq!(
            (report.corrupt_records, report.last_lsn),
            (0, 4),
            "cut at {cut}"
        );
        assert_traces(&store, 1..=4, [5]);
        // The file was cut back to its good records.
        assert_eq!(
            fs::metadata(&wal_files(dir.path())[0]).unwrap().len(),
            last.start as u64,
            "cut at {cut}"
        );
        // New records follow the good ones and replay with them.
        if cut % 17 == 0 || cut == last.end - 1 {
            assert_eq!(rt.block_on(store.append(tiny_batch(6))).unwrap(), 5);
            drop(store);
            let (store, report) = open(dir.path(), no_fsync());
            assert_eq!(
                (report.records, report.torn_tail_bytes),
                (5, 0),
                "cut at {cut}"
            );
            assert_traces(&store, [1, 2, 3, 4, 6], [5]);
        }
    }
}

#[test]
fn bad_checksum_in_the_last_record_is_a_torn_tail() {
    let source = wal_with(5, WalOptions::default().segment_bytes);
    let [(name, mut bytes)] = read_wal(source.path()).try_into().unwrap();
    let last = record_ranges(&bytes)[4].clone();
    bytes[last.end - 3] ^= 0x01;
    let dir = data_dir_with(&[(name, bytes)]);
    let (store, report) = open(dir.path(), no_fsync());
    assert_eq!((report.records, report.corrupt_records), (4, 0));
    assert_eq!(report.torn_tail_bytes, last.len() as u64);
    assert_traces(&store, 1..=4, [5]);
}

#[test]
fn flipped_byte_anywhere_in_a_middle_record_skips_only_that_record() {
    let source = wal_with(5, WalOptions::default().segment_bytes);
    let [(name, bytes)] = read_wal(source.path()).try_into().unwrap();
    let middle = record_ranges(&bytes)[2].clone();
    let dir = tempfile::tempdir().unwrap();
    for at in middle.clone() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0xFF;
        load(dir.path(), &[(name.clone(), damaged)]);
        let (store, report) = open(dir.path(), no_fsync());
        assert_eq!(report.records, 4, "byte {at}");
        assert_eq!(report.corrupt_records, 1, "byte {at}");
        assert_eq!(report.corrupt_bytes, middle.len() as u64, "byte {at}");
        assert_eq!(
            (report.torn_tail_bytes, report.last_lsn),
            (0, 5),
            "byte {at}"
        );
        assert_traces(&store, [1, 2, 4, 5], [3]);
        // A corrupt record in the middle is skipped, not cut: the file is untouched.
        assert_eq!(
            fs::metadata(&wal_files(dir.path())[0]).unwrap().len(),
            bytes.len() as u64
        );
    }
}

#[test]
fn damage_in_a_file_before_the_last_is_corruption_not_a_torn_tail() {
    let source = wal_with(12, 256);
    let files = read_wal(source.path());
    assert!(files.len() >= 3, "{} files", files.len());
    let first_records = record_ranges(&files[0].1).len() as u64;

    // A truncated last record of the first file...
    let mut truncated = files.clone();
    let end = record_ranges(&truncated[0].1).last().unwrap().clone();
    truncated[0].1.truncate(end.end - 5);
    // ...and a flipped byte in it: both are reported and skipped alike.
    let mut flipped = files.clone();
    flipped[0].1[end.start + 20] ^= 0x40;
    for (what, files) in [("truncated", truncated), ("flipped", flipped)] {
        let dir = data_dir_with(&files);
        let (store, report) = open(dir.path(), no_fsync());
        assert_eq!(report.records, 11, "{what}");
        assert_eq!(
            (report.corrupt_records, report.torn_tail_bytes),
            (1, 0),
            "{what}"
        );
        assert_eq!(report.last_lsn, 12, "{what}");
        assert_traces(
            &store,
            (1..=12).filter(|t| *t != first_records),
            [first_records],
        );
    }
}

#[test]
fn a_garbage_file_between_good_ones_is_reported_and_skipped() {
    let source = wal_with(12, 256);
    let mut files = read_wal(source.path());
    assert!(files.len() >= 3);
    let second_file_lsns: Vec<u64> = {
        let bytes = &files[1].1;
        record_ranges(bytes)
            .iter()
            .map(|r| record_lsn(bytes, r))
            .collect()
    };
    let len = files[1].1.len();
    files[1].1 = garbage(7, len);
    let dir = data_dir_with(&files);
    let (store, report) = open(dir.path(), no_fsync());
    assert_eq!(report.corrupt_records, second_file_lsns.len() as u64);
    assert_eq!(report.corrupt_bytes, len as u64);
    assert_eq!(report.records, 12 - second_file_lsns.len() as u64);
    let kept = (1..=12).filter(|t| !second_file_lsns.contains(t));
    assert_traces(&store, kept, second_file_lsns.iter().copied());
}

#[test]
fn garbage_after_the_good_records_of_the_last_file_is_cut() {
    let source = wal_with(3, WalOptions::default().segment_bytes);
    let [(name, bytes)] = read_wal(source.path()).try_into().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..20 {
        let mut damaged = bytes.clone();
        damaged.extend(garbage(seed, 1 + (seed as usize * 379) % 5000));
        load(dir.path(), &[(name.clone(), damaged.clone())]);
        let (store, report) = open(dir.path(), no_fsync());
        assert_eq!(report.records, 3, "seed {seed}");
        assert_eq!(
            report.torn_tail_bytes,
            (damaged.len() - bytes.len()) as u64,
            "seed {seed}"
        );
        assert_traces(&store, 1..=3, []);
    }
}

#[test]
fn garbage_of_any_length_after_a_header_opens_empty_without_panicking() {
    let header = {
        let source = wal_with(0, WalOptions::default().segment_bytes);
        read_wal(source.path()).remove(0)
    };
    assert_eq!(header.1.len(), FILE_HEADER_LEN);
    let dir = tempfile::tempdir().unwrap();
    for len in (0..64).chain([255, 4096, 70_000]) {
        let mut bytes = header.1.clone();
        bytes.extend(garbage(len as u64, len));
        load(dir.path(), &[(header.0.clone(), bytes)]);
        let (_, report) = open(dir.path(), no_fsync());
        assert_eq!(
            (report.records, report.torn_tail_bytes),
            (0, len as u64),
            "len {len}"
        );
    }
}

#[test]
fn huge_length_fields_are_damage_not_allocations() {
    let source = wal_with(2, WalOptions::default().segment_bytes);
    let [(name, mut bytes)] = read_wal(source.path()).try_into().unwrap();
    let last = record_ranges(&bytes)[1].clone();
    bytes[last.start..last.start + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let dir = data_dir_with(&[(name, bytes)]);
    let (store, report) = open(dir.path(), no_fsync());
    assert_eq!(
        (report.records, report.torn_tail_bytes),
        (1, last.len() as u64)
    );
    assert_traces(&store, [1], [2]);
}

#[test]
fn a_last_file_that_is_not_a_wal_file_stops_the_open() {
    let dir = data_dir_with(&[("wal-00000000000000000001.log".into(), garbage(3, 1000))]);
    let wal = dir.path().join("wal");
    match Store::open_in(
        std::sync::Arc::new(FaultyDirectory::new(wal.clone())),
        no_fsync(),
    ) {
        Err(StoreError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, wal.join("wal-00000000000000000001.log"));
            assert_eq!(offset, 0);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Left untouched for an operator.
    assert_eq!(
        fs::read(wal.join("wal-00000000000000000001.log")).unwrap(),
        garbage(3, 1000)
    );
}

#[test]
fn a_newer_format_version_stops_the_open() {
    let source = wal_with(1, WalOptions::default().segment_bytes);
    let [(name, mut bytes)] = read_wal(source.path()).try_into().unwrap();
    // Version 2 is the encrypted format: 3 is the first one unknown.
    bytes[5..7].copy_from_slice(&3u16.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let dir = data_dir_with(&[(name, bytes)]);
    let result = Store::open_in(
        std::sync::Arc::new(FaultyDirectory::new(dir.path().join("wal"))),
        WalOptions::default(),
    );
    assert!(matches!(
        result,
        Err(StoreError::UnsupportedVersion {
            version: 3,
            what: "WAL file",
            ..
        })
    ));
}

#[test]
fn a_torn_or_zeroed_new_file_is_cut_and_reused() {
    let source = wal_with(3, WalOptions::default().segment_bytes);
    let [(first, bytes)] = read_wal(source.path()).try_into().unwrap();
    let rt = runtime();
    for torn in [Vec::new(), b"TWW".to_vec(), vec![0; 4096]] {
        let dir = data_dir_with(&[
            (first.clone(), bytes.clone()),
            ("wal-00000000000000000004.log".into(), torn.clone()),
        ]);
        let (store, report) = open(dir.path(), no_fsync());
        assert_eq!((report.records, report.last_lsn), (3, 3));
        assert_eq!(report.torn_tail_bytes, torn.len() as u64);
        assert_eq!(rt.block_on(store.append(small_batch(4))).unwrap(), 4);
        drop(store);
        let (store, report) = open(dir.path(), no_fsync());
        assert_eq!((report.records, report.files), (4, 2));
        assert_traces(&store, 1..=4, []);
    }
}

#[test]
fn a_missing_file_is_reported_as_missing_lsns() {
    let source = wal_with(12, 256);
    let mut files = read_wal(source.path());
    assert!(files.len() >= 3);
    let removed = files.remove(1);
    let removed_records = record_ranges(&removed.1).len() as u64;
    let dir = data_dir_with(&files);
    let (_, report) = open(dir.path(), no_fsync());
    assert_eq!(report.missing_lsns, removed_records);
    assert_eq!(report.records, 12 - removed_records);
    assert_eq!(report.corrupt_records, 0);
}

#[test]
fn files_that_are_not_wal_files_are_ignored() {
    let source = wal_with(2, WalOptions::default().segment_bytes);
    let mut files = read_wal(source.path());
    files.push(("notes.txt".into(), b"hello".to_vec()));
    files.push(("wal-1.log".into(), garbage(1, 100)));
    let dir = data_dir_with(&files);
    let (_, report) = open(dir.path(), no_fsync());
    assert_eq!((report.files, report.records), (1, 2));
}

/// A WAL frame hidden in an attribute value of a batch must not be replayed
/// as a record when the record around it is damaged: each file has its own
/// checksum salt, so a frame from elsewhere does not validate.
#[test]
fn a_frame_smuggled_in_an_attribute_is_not_replayed_after_damage() {
    // The frame a sender would forge: a valid record of another WAL (LSN 2,
    // trace 1000), copied byte for byte.
    let other = tempfile::tempdir().unwrap();
    let rt = runtime();
    let forged = {
        let (store, _) = open(other.path(), no_fsync());
        rt.block_on(store.append(small_batch(999))).unwrap();
        rt.block_on(store.append(small_batch(1000))).unwrap();
        drop(store);
        let [(_, bytes)] = read_wal(other.path()).try_into().unwrap();
        bytes[record_ranges(&bytes)[1].clone()].to_vec()
    };

    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), no_fsync());
    rt.block_on(store.append(small_batch(1))).unwrap();
    let mut carrier = small_batch(2);
    carrier.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(KeyValue::new("http.request.body", AnyValue::Bytes(forged)));
    rt.block_on(store.append(carrier)).unwrap();
    rt.block_on(store.append(small_batch(3))).unwrap();
    drop(store);

    // Damage the carrier's header so replay must scan through its payload.
    let [(name, mut bytes)] = read_wal(dir.path()).try_into().unwrap();
    let carrier_range = record_ranges(&bytes)[1].clone();
    bytes[carrier_range.start + 8] ^= 0x55;
    let dir = data_dir_with(&[(name, bytes)]);
    let (store, report) = open(dir.path(), no_fsync());
    assert_eq!((report.records, report.corrupt_records), (2, 1));
    assert_traces(&store, [1, 3], [2, 1000]);
}

/// A record whose checksum holds but whose value is nested a million
/// levels deep (made by hand: the store never writes one deeper than 64)
/// is reported and skipped like any record that does not decode; the
/// reader's stack is not at stake, and the records around it are kept.
#[test]
fn a_record_nested_past_the_model_limit_is_skipped_not_a_stack_overflow() {
    const SENTINEL: &str = "sentinel-value";
    let source = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(source.path(), no_fsync());
        let rt = runtime();
        let mut marked = tiny_batch(2);
        marked.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(KeyValue::new("deep", SENTINEL));
        for batch in [tiny_batch(1), marked, tiny_batch(3)] {
            rt.block_on(store.append(batch)).unwrap();
        }
    }
    let [(name, bytes)] = read_wal(source.path()).try_into().unwrap();
    let record = record_ranges(&bytes)[1].clone();
    let payload = &bytes[record.start + RECORD_HEADER_LEN..record.end];
    // The sentinel as postcard wrote it: variant 1 (`Str`), its length,
    // its bytes. In its place, `Array` (variant 6) of one element, a
    // million times, down to `Empty` (variant 0).
    let mut encoded = vec![1u8, SENTINEL.len() as u8];
    encoded.extend_from_slice(SENTINEL.as_bytes());
    let at = payload
        .windows(encoded.len())
        .position(|w| w == encoded)
        .expect("the sentinel is in the payload");
    let mut deep = [6u8, 1].repeat(1_000_000);
    deep.push(0);
    let mut forged = payload[..at].to_vec();
    forged.extend_from_slice(&deep);
    forged.extend_from_slice(&payload[at + encoded.len()..]);
    // Framed again with a valid checksum.
    let lsn = &bytes[record.start + 8..record.start + 16];
    let crc = record_crc(&bytes, lsn, &forged);
    let mut file = bytes[..record.start].to_vec();
    file.extend_from_slice(&(forged.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(lsn);
    file.extend_from_slice(&forged);
    file.extend_from_slice(&bytes[record.end..]);
    let dir = data_dir_with(&[(name, file)]);
    let (store, report) = open(dir.path(), no_fsync());
    assert_eq!((report.records, report.corrupt_records), (2, 1));
    assert_eq!(report.last_lsn, 3);
    assert_traces(&store, [1, 3], [2]);
}
