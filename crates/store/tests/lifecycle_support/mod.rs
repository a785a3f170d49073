//! Shared by the lifecycle tests: options that leave every step to the
//! test, batches with known span ids, and the exactly-once check.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tracewarden_model::{SpanId, TraceId};
use tracewarden_store::{
    FailPoint, FailPoints, Store, StoreError, StoreOptions, WalOptions, verify,
};

use crate::common::{realistic_batch, trace_id};

/// Spans per batch in these tests: one trace of ten spans.
pub const SPANS_PER_BATCH: u64 = 10;

/// Options for a test that drives flush, compaction and retention itself:
/// no lifecycle thread, and a WAL file per record (a record is larger than
/// `segment_bytes`), so trimming is visible file by file.
pub fn manual(dir: &Path) -> StoreOptions {
    StoreOptions {
        wal: WalOptions {
            segment_bytes: 64,
            fsync: false,
            ..WalOptions::default()
        },
        lifecycle_thread: false,
        ..StoreOptions::new(dir)
    }
}

/// A hook failing at `point` while armed, counting how often it did.
#[derive(Clone, Default)]
pub struct Injector {
    pub armed: Arc<AtomicBool>,
    pub fired: Arc<AtomicUsize>,
}

impl Injector {
    pub fn hook(&self, point: FailPoint) -> FailPoints {
        let (armed, fired) = (Arc::clone(&self.armed), Arc::clone(&self.fired));
        FailPoints::new(move |at| {
            if at == point && armed.load(Ordering::SeqCst) {
                fired.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Injected { point: at });
            }
            Ok(())
        })
    }

    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

/// What the test knows was acknowledged: trace -> span ids.
#[derive(Clone, Debug, Default)]
pub struct Acked(pub BTreeMap<TraceId, BTreeSet<SpanId>>);

impl Acked {
    /// Appends batch `n` (trace `n`, ten spans) and records its span ids.
    pub async fn append(&mut self, store: &Store, n: u64) {
        let batch = realistic_batch(n, SPANS_PER_BATCH);
        let ids: BTreeSet<SpanId> = batch.spans().map(|(_, _, s)| s.span_id).collect();
        store.append(batch).await.unwrap();
        self.0.insert(trace_id(n), ids);
    }

    pub async fn append_range(&mut self, store: &Store, range: std::ops::Range<u64>) {
        for n in range {
            self.append(store, n).await;
        }
    }

    pub fn spans(&self) -> u64 {
        self.0.values().map(|ids| ids.len() as u64).sum()
    }

    pub fn without(&self, traces: impl IntoIterator<Item = TraceId>) -> Acked {
        let mut kept = self.clone();
        for trace in traces {
            kept.0.remove(&trace);
        }
        kept
    }
}

/// Asserts every acknowledged span is readable exactly once (counted by
/// span id) and nothing else is in those traces.
#[track_caller]
pub fn assert_exactly_once(store: &Store, acked: &Acked) {
    for (trace, expected) in &acked.0 {
        let found = store
            .trace(*trace)
            .unwrap_or_else(|| panic!("trace {trace} lost"));
        let mut counts: BTreeMap<SpanId, usize> = BTreeMap::new();
        for span in &found.spans {
            *counts.entry(span.span.span_id).or_default() += 1;
        }
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "trace {trace}: spans read twice: {twice:?}"
        );
        let ids: BTreeSet<SpanId> = counts.into_keys().collect();
        assert_eq!(&ids, expected, "trace {trace}: spans differ");
    }
}

/// Asserts the traces are gone.
#[track_caller]
pub fn assert_absent(store: &Store, traces: impl IntoIterator<Item = TraceId>) {
    for trace in traces {
        assert!(store.trace(trace).is_none(), "trace {trace} still readable");
    }
}

/// Asserts `tracewarden verify` would pass, listing the findings if not.
#[track_caller]
pub fn assert_verifies(data_dir: &Path) {
    let report = verify(data_dir, None).unwrap();
    assert!(
        report.ok,
        "verify failed:\n{}",
        report
            .findings
            .iter()
            .map(|f| format!("  {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

pub fn segments_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("segments")
}

/// Names in the segments directory (files only), sorted.
pub fn segment_files(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(segments_dir(data_dir))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

pub fn manifest_name(id: u64) -> String {
    format!("{id:020}.manifest.json")
}

pub fn spans_name(id: u64) -> String {
    format!("{id:020}.spans.parquet")
}

pub fn has_file(data_dir: &Path, name: &str) -> bool {
    segments_dir(data_dir).join(name).exists()
}
