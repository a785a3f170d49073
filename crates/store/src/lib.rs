//! Durable storage of tracewarden: the write-ahead log (WAL), the hot tier,
//! and Parquet segments behind a tamper-evident manifest chain.
//!
//! # Overview
//!
//! A receiver hands each decoded [`Batch`](tracewarden_model::Batch) to
//! [`Store::append`], which answers only once the batch is durable:
//!
//! 1. **Encode** ([`codec`]), in the caller's task: the batch becomes a WAL
//!    record payload (a codec version byte, then postcard).
//! 2. **Group commit** ([`wal`]): a dedicated writer thread takes every
//!    record queued, writes them with one vectored write, fsyncs once and
//!    answers all of them with their log sequence numbers ([`Lsn`]). Many
//!    concurrent appends share one fsync. When more than
//!    [`WalOptions::max_pending_bytes`] wait for the writer, appends are
//!    refused at once with [`StoreError::Overloaded`] (a 429 for the sender).
//! 3. **Apply** ([`hot`]): the batch goes into the hot tier, spans and logs
//!    indexed by trace id in lock shards, where [`Store::trace`] finds them.
//!
//! On [`Store::open`], every WAL record is replayed into the hot tier. A write
//! torn by a crash is cut off; damage anywhere else is reported in the
//! [`ReplayReport`] and logged, then skipped: nothing acknowledged is lost
//! without a word. A failed write or fsync makes the store refuse further
//! appends until it is reopened, since after a failed fsync nothing can say
//! what reached the disk.
//!
//! 4. **Flush** ([`lifecycle`]): a dedicated thread writes the hot tier into
//!    an immutable Parquet [`segment`] (by size and age, and at
//!    [`Store::close`]), appends its manifest to the hash chain
//!    ([`integrity`]), then removes the WAL files the manifests cover. Small
//!    segments are compacted, old ones dropped by retention. Reads
//!    ([`Store::trace`], [`Store::find_spans`]) see the hot tier, a tier being
//!    flushed and the segments, each span once.
//!
//! Replay skips the WAL records a segment already holds, and a crash at any
//! step of a flush, compaction or retention leaves every acknowledged span
//! readable exactly once (see [`lifecycle`]).
//!
//! With [`LifecycleOptions::encryption_key_file`] set, WAL records and
//! segment files are encrypted at rest ([`encryption`]): AES-256-GCM per WAL
//! record, Parquet modular encryption for segments. A missing or wrong key
//! fails the open with a typed error naming the file, before anything is
//! read or changed.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tracewarden_model::{Batch, ResourceSpans, ScopeSpans, Span, SpanId, TraceId};
//! use tracewarden_store::{Store, StoreOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let trace_id = TraceId::from_bytes([1; 16]);
//! let batch = Batch {
//!     resource_spans: vec![ResourceSpans {
//!         resource: Arc::default(),
//!         scope_spans: vec![ScopeSpans {
//!             scope: Arc::default(),
//!             spans: vec![Span::new(trace_id, SpanId::from_bytes([2; 8]), "GET /login")],
//!         }],
//!     }],
//!     resource_logs: Vec::new(),
//! };
//!
//! let (store, report) = Store::open(StoreOptions::new(dir.path()))?;
//! assert_eq!(report.records, 0);
//! let runtime = tokio::runtime::Runtime::new()?;
//! let lsn = runtime.block_on(store.append(batch))?;
//! assert_eq!(store.trace(trace_id).map(|t| t.spans.len()), Some(1));
//! drop(store);
//!
//! // Dropped without closing: reopening replays the WAL.
//! let (store, report) = Store::open(StoreOptions::new(dir.path()))?;
//! assert_eq!((report.records, report.last_lsn), (1, lsn));
//! assert!(store.trace(trace_id).is_some());
//!
//! // Closing flushes the hot tier into a Parquet segment: the next open
//! // finds the record there and skips it in the WAL.
//! store.close();
//! drop(store);
//! let (store, report) = Store::open(StoreOptions::new(dir.path()))?;
//! assert_eq!((report.records, report.skipped_records), (0, 1));
//! assert_eq!(store.segment_ids(), [1]);
//! let trace = store.trace(trace_id).expect("in the segment");
//! assert_eq!(trace.spans[0].span.name, "GET /login");
//! # Ok(())
//! # }
//! ```

pub mod codec;
pub mod encryption;
pub mod error;
pub mod hot;
pub mod integrity;
pub mod lifecycle;
pub mod payloads;
mod prefetch;
pub mod segment;
mod snapshot;
mod store;
pub mod wal;

pub use codec::CodecError;
pub use encryption::{EncryptionKey, KeyId, generate_key_file};
pub use error::{Result, StoreError};
pub use hot::{LogEntry, SpanRecord, Trace};
pub use integrity::{
    ChainWriter, Finding, IntegrityError, Manifest, ManifestFile, ReplacedSegment, SigningKey,
    VerifyReport, VerifyingKey, chain, load_manifests, manifest, verify,
};
pub use lifecycle::{
    CompactionOptions, FailPoint, FailPoints, LifecycleOptions, LsnSet, RetentionOptions,
    TraceLookup, UnreadableSegment,
};
pub use payloads::{
    NewPayload, PayloadError, PayloadKind, PayloadMeta, PayloadStats, PayloadStore,
};
pub use segment::{
    DedicatedColumn, Segment, SegmentWriteOptions, SpanFilter, SpanProjection, WrittenFile,
    WrittenSegment, write_segment, write_segment_with_key,
};
pub use snapshot::{ScanUnit, Snapshot};
pub use store::{MEMORY_LIMIT_FLUSHES, OVERLOAD_RETRY_AFTER, Store, StoreOptions, StoreStats};
pub use wal::{FSYNC_BUCKETS, FsyncHistogram, Lsn, ReplayReport, WalHold, WalOptions};
