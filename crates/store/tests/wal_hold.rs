//! The WAL hold and the observed replay: WAL files holding records already
//! in segments stay while held, and `open_observed` hands over the ones its
//! caller asks for, in LSN order, without applying them twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lifecycle_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{
    RECORD_HEADER_LEN, realistic_batch, record_crc, record_lsn, record_ranges, trace_id, wal_files,
};
use lifecycle_support::*;
use tracewarden_model::{Records, SpanId};
use tracewarden_store::wal::parse_file_name;
use tracewarden_store::{Lsn, Store, StoreOptions, WalHold, WalOptions};

/// Appends batch `n` (trace `n`, ten spans), records it as acknowledged and
/// returns its LSN and span ids in the batch's order.
async fn append(store: &Store, acked: &mut Acked, n: u64) -> (Lsn, Vec<SpanId>) {
    let batch = realistic_batch(n, SPANS_PER_BATCH);
    let ids: Vec<SpanId> = batch.spans().map(|(_, _, s)| s.span_id).collect();
    let lsn = store.append(batch).await.unwrap();
    acked.0.insert(trace_id(n), ids.iter().copied().collect());
    (lsn, ids)
}

/// The first LSN of each WAL file of `data_dir`.
fn wal_firsts(data_dir: &std::path::Path) -> Vec<Lsn> {
    wal_files(data_dir)
        .iter()
        .filter_map(|p| parse_file_name(p.file_name()?.to_str()?))
        .collect()
}

/// Reopens with `open_observed`, returning what the observer saw (LSN and
/// span ids, in call order) with the store and report.
fn reopen_observed(
    options: StoreOptions,
    wants: &dyn Fn(Lsn) -> bool,
) -> (
    Store,
    tracewarden_store::ReplayReport,
    Vec<(Lsn, Vec<SpanId>)>,
) {
    let mut seen = Vec::new();
    let mut observer = |lsn: Lsn, records: &Records| {
        let ids = records.spans.iter().map(|s| s.span.span_id).collect();
        seen.push((lsn, ids));
    };
    let (store, report) = Store::open_observed(options, wants, &mut observer).unwrap();
    (store, report, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_wal_hands_records_in_segments_to_the_observer_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let hold = Arc::new(WalHold::new());
    // One WAL file per record (`manual`): file `n` holds LSN `n` only.
    let options = StoreOptions {
        wal_hold: Some(Arc::clone(&hold)),
        ..manual(dir.path())
    };
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    let mut sent = Vec::new();
    for n in 0..6 {
        sent.push(append(&store, &mut acked, n).await);
    }
    assert_eq!(
        sent.iter().map(|(lsn, _)| *lsn).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    // Set after the open: the trim reads it each time.
    hold.hold_from(3);
    assert_eq!(store.flush().unwrap(), Some(1));
    // Files 1 and 2 end before the hold; 3..=5 reach it; 6 is the newest.
    assert_eq!(wal_firsts(dir.path()), [3, 4, 5, 6]);
    assert_eq!(store.stats().trimmed_wal_files, 2);
    // Two more in the hot tier only: replayed at the reopen.
    for n in 6..8 {
        sent.push(append(&store, &mut acked, n).await);
    }
    drop(store);

    // 2 is trimmed already, 3 not asked for, 6 not asked for.
    let wants = |lsn: Lsn| [2, 4, 5].contains(&lsn);
    let (store, report, seen) = reopen_observed(options.clone(), &wants);
    let expected: Vec<(Lsn, Vec<SpanId>)> =
        [3, 4, 6, 7].into_iter().map(|i| sent[i].clone()).collect();
    assert_eq!(
        seen.iter().map(|(lsn, _)| *lsn).collect::<Vec<_>>(),
        [4, 5, 7, 8]
    );
    assert_eq!(seen, expected, "the observed records carry their spans");
    assert_eq!(report.records, 2, "only the uncovered records are replayed");
    assert_eq!(report.observed_in_segments, 2);
    assert_eq!(report.skipped_records, 4, "LSNs 3..=6 are in the segment");
    assert_eq!(report.spans, 2 * SPANS_PER_BATCH);
    assert_eq!(report.corrupt_records, 0);
    // The hot tier took only the uncovered records; every span once.
    assert_eq!(store.stats().spans, 2 * SPANS_PER_BATCH);
    assert_eq!(store.stats().segment_spans, 6 * SPANS_PER_BATCH);
    assert_exactly_once(&store, &acked);
    // The trim at open kept the held files too.
    assert_eq!(wal_firsts(dir.path())[..3], [3, 4, 5]);

    // Released: the next flush trims every covered file but the newest.
    hold.release();
    assert_eq!(store.flush().unwrap(), Some(2));
    assert_eq!(wal_firsts(dir.path()), [8]);
    drop(store);
    let (store, report, seen) = reopen_observed(options, &|_| true);
    assert_eq!(
        seen,
        [sent[7].clone()],
        "only the newest file is left to observe"
    );
    assert_eq!((report.records, report.observed_in_segments), (0, 1));
    assert_eq!(store.stats().spans, 0);
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_moved_past_a_file_lets_the_trim_remove_it() {
    let dir = tempfile::tempdir().unwrap();
    let hold = Arc::new(WalHold::new());
    hold.hold_from(2);
    let options = StoreOptions {
        wal_hold: Some(Arc::clone(&hold)),
        ..manual(dir.path())
    };
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    for n in 0..4 {
        append(&store, &mut acked, n).await;
    }
    store.flush().unwrap();
    assert_eq!(wal_firsts(dir.path()), [2, 3, 4]);
    hold.hold_from(4);
    append(&store, &mut acked, 4).await;
    store.flush().unwrap();
    assert_eq!(wal_firsts(dir.path()), [4, 5]);
    drop(store);
    let (store, report, seen) = reopen_observed(options, &|_| true);
    let lsns: Vec<Lsn> = seen.iter().map(|(lsn, _)| *lsn).collect();
    assert_eq!(lsns, [4, 5]);
    assert_eq!((report.records, report.observed_in_segments), (0, 2));
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_hold_flushed_wal_files_are_trimmed_and_not_observed() {
    let dir = tempfile::tempdir().unwrap();
    let options = manual(dir.path());
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    for n in 0..4 {
        append(&store, &mut acked, n).await;
    }
    store.flush().unwrap();
    assert_eq!(wal_firsts(dir.path()), [4], "only the newest file is left");
    drop(store);
    let (store, report, seen) = reopen_observed(options.clone(), &|_| true);
    let lsns: Vec<Lsn> = seen.iter().map(|(lsn, _)| *lsn).collect();
    assert_eq!(lsns, [4]);
    assert_eq!(report.observed_in_segments, 1);
    assert_exactly_once(&store, &acked);
    drop(store);

    // `open` asks for none: the covered record is skipped as before.
    let (store, report) = Store::open(options).unwrap();
    assert_eq!(
        (
            report.records,
            report.skipped_records,
            report.observed_in_segments
        ),
        (0, 1, 0)
    );
    assert_exactly_once(&store, &acked);
}

/// Records in a segment that do not decode (a payload cut short, a codec
/// version from a newer build) are reported and left out, and the open
/// goes on: the segment has their data. Asked for by no one, they are
/// not even decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_in_a_segment_never_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    // One WAL file, the newest: never trimmed.
    let options = StoreOptions {
        wal: WalOptions {
            fsync: false,
            ..WalOptions::default()
        },
        ..manual(dir.path())
    };
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    let mut sent = Vec::new();
    for n in 0..4 {
        sent.push(append(&store, &mut acked, n).await);
    }
    store.flush().unwrap();
    drop(store);

    let [path] = wal_files(dir.path()).try_into().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let records = record_ranges(&bytes);
    assert_eq!(records.len(), 4);
    let mut file = bytes[..records[0].start].to_vec();
    for record in &records {
        let lsn = &bytes[record.start + 8..record.start + 16];
        let payload = &bytes[record.start + RECORD_HEADER_LEN..record.end];
        // Framed again with a valid checksum, so only the decoding fails.
        let payload = match record_lsn(&bytes, record) {
            2 => payload[..3].to_vec(),
            3 => [&[0xEE][..], &payload[1..]].concat(),
            _ => payload.to_vec(),
        };
        let crc = record_crc(&bytes, lsn, &payload);
        file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        file.extend_from_slice(&crc.to_le_bytes());
        file.extend_from_slice(lsn);
        file.extend_from_slice(&payload);
    }
    std::fs::write(&path, file).unwrap();

    let (store, report, seen) = reopen_observed(options.clone(), &|_| true);
    assert_eq!(seen, [sent[0].clone(), sent[3].clone()]);
    assert_eq!(report.observed_in_segments, 2);
    assert_eq!(report.corrupt_records, 2);
    assert_eq!((report.records, report.skipped_records), (0, 4));
    assert_exactly_once(&store, &acked);
    drop(store);

    let (store, report) = Store::open(options).unwrap();
    assert_eq!((report.corrupt_records, report.skipped_records), (0, 4));
    let traces: BTreeSet<_> = (0..4).map(trace_id).collect();
    assert!(traces.iter().all(|t| store.trace(*t).is_some()));
}
