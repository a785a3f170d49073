//! A corrupt segment at open is quarantined, named, and the rest serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lifecycle_support;

use std::fs;

use common::trace_id;
use lifecycle_support::*;
use tracewarden_store::{Finding, Store, StoreOptions, WalOptions, verify};

/// Damages a file in each way a disk or a person can.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Truncate,
    FlipFooter,
    Delete,
}

fn damage(path: &std::path::Path, how: Damage) {
    match how {
        Damage::Truncate => {
            let len = fs::metadata(path).unwrap().len();
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(len / 2).unwrap();
        }
        Damage::FlipFooter => {
            // The footer length and the closing magic: same size, bad bytes.
            let mut bytes = fs::read(path).unwrap();
            let len = bytes.len();
            for byte in &mut bytes[len - 8..] {
                *byte ^= 0x5a;
            }
            fs::write(path, bytes).unwrap();
        }
        Damage::Delete => fs::remove_file(path).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_segment_is_quarantined_and_the_rest_serves() {
    for how in [Damage::Truncate, Damage::FlipFooter, Damage::Delete] {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(manual(dir.path())).unwrap();
        let mut acked = Acked::default();
        for round in 0..3 {
            acked.append_range(&store, round * 10..round * 10 + 2).await;
            store.flush().unwrap();
        }
        drop(store);
        let damaged = segments_dir(dir.path()).join(spans_name(2));
        damage(&damaged, how);

        let (store, report) = Store::open(manual(dir.path())).unwrap();
        assert_eq!(store.segment_ids(), [1, 3], "{how:?}");
        assert_eq!(store.stats().quarantined_segments, 1, "{how:?}");
        // Its WAL records were trimmed long ago: its traces are gone, the
        // others are whole.
        assert_eq!(report.records, 0, "{how:?}");
        let lost = [trace_id(10), trace_id(11)];
        assert_absent(&store, lost);
        assert_exactly_once(&store, &acked.without(lost));

        let quarantine = segments_dir(dir.path()).join("quarantine");
        assert!(quarantine.join(manifest_name(2)).exists(), "{how:?}");
        assert!(!has_file(dir.path(), &manifest_name(2)), "{how:?}");
        let reason = fs::read_to_string(quarantine.join("00000000000000000002.reason")).unwrap();
        assert!(reason.contains(&spans_name(2)), "{how:?}: {reason}");
        if !matches!(how, Damage::Delete) {
            assert!(quarantine.join(spans_name(2)).exists(), "{how:?}");
        }
        // verify names it; nothing else is wrong.
        let verified = verify(dir.path(), None).unwrap();
        let failures: Vec<_> = verified.failures().cloned().collect();
        assert_eq!(
            failures,
            [Finding::Quarantined { segment_id: 2 }],
            "{how:?}"
        );

        // The store goes on: new segments continue the chain, ids are not reused.
        acked.append(&store, 50).await;
        assert_eq!(store.flush().unwrap(), Some(4), "{how:?}");
        drop(store);
        let (store, _) = Store::open(manual(dir.path())).unwrap();
        assert_eq!(store.segment_ids(), [1, 3, 4], "{how:?}");
        assert_eq!(store.stats().quarantined_segments, 1, "{how:?}");
        assert_exactly_once(&store, &acked.without(lost));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_segment_still_in_the_wal_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    // One WAL file, never trimmed (it is the newest): it still holds
    // every record.
    let options = StoreOptions {
        wal: WalOptions {
            fsync: false,
            ..WalOptions::default()
        },
        ..manual(dir.path())
    };
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..3).await;
    store.flush().unwrap();
    acked.append_range(&store, 3..5).await;
    store.flush().unwrap();
    drop(store);
    damage(
        &segments_dir(dir.path()).join(spans_name(1)),
        Damage::Truncate,
    );

    let (store, report) = Store::open(options).unwrap();
    // Segment 1's records are replayed; segment 2's skipped.
    assert_eq!((report.records, report.skipped_records), (3, 2));
    assert_eq!(store.segment_ids(), [2]);
    assert_exactly_once(&store, &acked);
    store.flush().unwrap();
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_manifest_quarantines_its_segment_and_a_newer_one_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let mut acked = Acked::default();
    for round in 0..3 {
        acked.append_range(&store, round * 10..round * 10 + 2).await;
        store.flush().unwrap();
    }
    drop(store);
    let manifest = segments_dir(dir.path()).join(manifest_name(2));
    let original = fs::read(&manifest).unwrap();

    // A newer format: refused, nothing moved.
    let text = String::from_utf8(original.clone()).unwrap();
    let newer = text.replace(
        "\"format_version\":1,",
        "\"format_version\":2,\"future\":true,",
    );
    assert_ne!(newer, text);
    fs::write(&manifest, &newer).unwrap();
    match Store::open(manual(dir.path())) {
        Err(tracewarden_store::StoreError::UnsupportedVersion { version, what, .. }) => {
            assert_eq!((version, what), (2, "segment manifest"));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert!(manifest.exists());

    // Garbage: the segment is quarantined, the rest serves.
    fs::write(&manifest, b"{\"segment_id\": 2, oops").unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    assert_eq!(store.segment_ids(), [1, 3]);
    assert_eq!(store.stats().quarantined_segments, 1);
    let lost = [trace_id(10), trace_id(11)];
    assert_absent(&store, lost);
    assert_exactly_once(&store, &acked.without(lost));
    let quarantine = segments_dir(dir.path()).join("quarantine");
    let reason = fs::read_to_string(quarantine.join("00000000000000000002.reason")).unwrap();
    assert!(reason.contains(&manifest_name(2)), "{reason}");
    assert!(quarantine.join(spans_name(2)).exists());
}
