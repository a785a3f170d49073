//! Writing a segment: one sequential pass over the input (sort keys, size
//! estimates and depth check, the distinct resource/scope pairs; the
//! attribute walk split over two threads), a sort, then per slice of a row
//! group (8192 rows): Arrow columns built on one thread while the Parquet
//! writer encodes the previous slice on another; finally fsync, rename and
//! a directory fsync.
//!
//! Where the time goes (200k HTTP spans, about 0.6 s of CPU): Parquet
//! encoding 40% (a third of it interning dictionary values, a fifth zstd),
//! building the Arrow columns 45% (mostly loads of span attributes and
//! strings), the preparing pass 10%. The rows are visited in sorted (trace
//! id) order, which is random order in memory, yet visiting them in memory
//! order saves only about 6%. Each distinct resource/scope pair is written
//! once, to the resources file, after the spans and logs that name it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use arrow_array::builder::{
    FixedSizeBinaryBuilder, Int8Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder,
};
use arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, ListArray, RecordBatch, StructArray, UInt32Array,
};
use arrow_buffer::{Buffer, NullBuffer};
use arrow_schema::{ArrowError, SchemaRef};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue as ParquetKeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};
use tracewarden_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span};

use super::attributes::{AttributeListBuilder, MAX_VALUE_DEPTH, ValueBuilder, list_array, offset};
use super::pairs::Pairs;
use super::schema::{LOGS_SCHEMA, RESOURCES_SCHEMA, SPANS_SCHEMA, event_fields, link_fields};
use super::{
    DedicatedColumn, FORMAT_VERSION, MAX_ROW_GROUP_BYTES, SegmentWriteOptions, WrittenFile,
    WrittenSegment, logs_file_name, metadata_keys, resources_file_name, spans_file_name,
};
use crate::encryption::EncryptionKey;
use crate::encryption::segment::encryption_properties;
use crate::error::{Result, StoreError};
use crate::hot::{LogEntry, SpanRecord};
use crate::prefetch::{prefetch, prefetch_strings, prefetch_whole};

/// Writes segment `id`: `<id>.spans.parquet`, `<id>.logs.parquet` and
/// `<id>.resources.parquet` in `dir` (all three always, possibly without
/// rows).
///
/// The records are borrowed: a flush writes straight out of the frozen hot
/// tier, which stays readable (and so keeps its records) until the segment
/// is published, and copying 200k spans out of it cost a fifth to a third
/// of the flush.
///
/// Each file is written as `<name>.tmp`, fsynced and renamed; then the
/// directory is fsynced. On error the temporary files are removed (a crash
/// can leave them: the caller deletes leftover `*.tmp` when it opens the
/// directory). A file of the same name is replaced.
///
/// Uses a second thread while it encodes (one row group is built while the
/// previous one is compressed).
pub fn write_segment(
    dir: &Path,
    id: u64,
    spans: &[&SpanRecord],
    logs: &[&LogEntry],
    options: &SegmentWriteOptions,
) -> Result<WrittenSegment> {
    write_segment_with_key(dir, id, spans, logs, options, None)
}

/// [`write_segment`], encrypting every file with `key` when given (Parquet
/// modular encryption, see [`crate::encryption`]). Encrypted files have no
/// bloom filters: parquet-rs writes them unencrypted, and they would tell
/// which ids and addresses a segment holds.
pub fn write_segment_with_key(
    dir: &Path,
    id: u64,
    spans: &[&SpanRecord],
    logs: &[&LogEntry],
    options: &SegmentWriteOptions,
    key: Option<&EncryptionKey>,
) -> Result<WrittenSegment> {
    write_segment_inner(dir, id, spans, None, logs, options, key)
}

/// [`write_segment_with_key`] with each span's row-size estimate already
/// taken ([`span_row_bytes`], by the hot tier at apply, while the span was
/// in cache): the flush then skips a walk over every span's attributes in
/// cold memory. Skips the depth check too: spans reach the hot tier only
/// through the WAL codec, whose depth limit is below a segment's.
pub(crate) fn write_segment_sized(
    dir: &Path,
    id: u64,
    spans: &[&SpanRecord],
    facts: SpanFacts<'_>,
    logs: &[&LogEntry],
    options: &SegmentWriteOptions,
    key: Option<&EncryptionKey>,
) -> Result<WrittenSegment> {
    write_segment_inner(dir, id, spans, Some(facts), logs, options, key)
}

/// What the hot tier measured of its spans at apply, while each was in
/// cache, so that a flush need not walk every span in cold memory for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanFacts<'a> {
    /// Each span's row-size estimate ([`span_row_bytes`]), in the order of
    /// the spans handed over with it.
    pub row_bytes: &'a [u32],
    /// The earliest start and the latest end (or start, when later) of the
    /// spans ([`span_time_range`]); `None` when there are none.
    pub times: Option<(u64, u64)>,
}

// What `write_segment_sized` relies on to skip the depth check.
const _: () = assert!(crate::codec::MAX_VALUE_DEPTH <= MAX_VALUE_DEPTH);

/// The time range a span adds to a segment's: its start, and its end when
/// later than the start.
pub(crate) fn span_time_range(span: &Span) -> (u64, u64) {
    (
        span.start_time_unix_nano,
        span.start_time_unix_nano.max(span.end_time_unix_nano),
    )
}

/// A span's row-size estimate for [`write_segment_sized`].
pub(crate) fn span_row_bytes(span: &Span) -> u32 {
    debug_assert!(check_depth(span).is_ok());
    u32::try_from(span_bytes(span)).unwrap_or(u32::MAX)
}

fn write_segment_inner(
    dir: &Path,
    id: u64,
    spans: &[&SpanRecord],
    facts: Option<SpanFacts<'_>>,
    logs: &[&LogEntry],
    options: &SegmentWriteOptions,
    key: Option<&EncryptionKey>,
) -> Result<WrittenSegment> {
    check_options(dir, options)?;
    let span_times = match facts {
        Some(facts) => facts.times,
        None => spans.iter().map(|s| span_time_range(&s.span)).reduce(widen),
    };
    let (min_time, max_time) = time_range(span_times, logs);
    let meta = FileMeta {
        id,
        min_time,
        max_time,
        key,
    };

    let names = [
        spans_file_name(id),
        logs_file_name(id),
        resources_file_name(id),
    ];
    let [spans_tmp, logs_tmp, resources_tmp] =
        names.clone().map(|name| dir.join(format!("{name}.tmp")));
    let span_bytes = facts.map(|facts| facts.row_bytes);
    let written = (|| {
        let (spans_digest, mut pairs) = write_spans(&spans_tmp, spans, span_bytes, options, &meta)?;
        // The logs' pairs are numbered after the spans'.
        let (logs_digest, log_pairs) = write_logs(&logs_tmp, logs, pairs.len(), options, &meta)?;
        pairs.extend(log_pairs);
        let resources_digest = write_resources(&resources_tmp, &pairs, options, &meta)?;
        Ok([spans_digest, logs_digest, resources_digest])
    })();
    let digests = match written {
        Ok(digests) => digests,
        Err(e) => {
            for tmp in [&spans_tmp, &logs_tmp, &resources_tmp] {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
    };
    for (tmp, name) in [&spans_tmp, &logs_tmp, &resources_tmp]
        .into_iter()
        .zip(&names)
    {
        let path = dir.join(name);
        fs::rename(tmp, &path).map_err(|e| StoreError::io("rename", tmp.as_path(), e))?;
    }
    sync_dir(dir)?;

    Ok(WrittenSegment {
        id,
        files: names
            .into_iter()
            .zip(digests)
            .map(|(name, digest)| WrittenFile {
                name,
                bytes: digest.bytes,
                sha256: digest.sha256,
            })
            .collect(),
        spans: spans.len() as u64,
        logs: logs.len() as u64,
        min_time_unix_nano: min_time,
        max_time_unix_nano: max_time,
    })
}

fn check_options(dir: &Path, options: &SegmentWriteOptions) -> Result<()> {
    let problem = if options.row_group_rows == 0 {
        Some("row_group_rows must be at least 1".to_string())
    } else if ZstdLevel::try_new(options.zstd_level).is_err() {
        Some(format!("zstd_level {} is not 1 to 22", options.zstd_level))
    } else if !(options.bloom_fpp > 0.0 && options.bloom_fpp < 1.0) {
        Some(format!("bloom_fpp {} is not in (0, 1)", options.bloom_fpp))
    } else {
        None
    };
    match problem {
        Some(reason) => Err(StoreError::Segment {
            path: dir.to_owned(),
            reason: format!("invalid segment options: {reason}"),
        }),
        None => Ok(()),
    }
}

/// The segment's time range: the spans' (`None` if there are none)
/// widened by every log record's time; (0, 0) for an empty segment.
fn time_range(span_times: Option<(u64, u64)>, logs: &[&LogEntry]) -> (u64, u64) {
    logs.iter()
        .map(|l| {
            let time = l.record.effective_time_unix_nano();
            (time, time)
        })
        .fold(span_times, |range, log| {
            Some(range.map_or(log, |range| widen(range, log)))
        })
        .unwrap_or((0, 0))
}

/// The smallest range holding both.
pub(crate) fn widen((min, max): (u64, u64), (lo, hi): (u64, u64)) -> (u64, u64) {
    (min.min(lo), max.max(hi))
}

/// What every file's key-value metadata records.
struct FileMeta<'a> {
    id: u64,
    min_time: u64,
    max_time: u64,
    /// Encrypt the files with this key.
    key: Option<&'a EncryptionKey>,
}

impl FileMeta<'_> {
    /// A new file's encryption properties (a fresh file key each), if the
    /// segment is encrypted.
    fn encryption(
        &self,
        kind: &str,
    ) -> Result<Option<Arc<parquet::encryption::encrypt::FileEncryptionProperties>>, String> {
        self.key
            .map(|key| encryption_properties(key, self.id, kind))
            .transpose()
    }

    fn key_values(&self, kind: &str, rows: usize) -> Vec<ParquetKeyValue> {
        [
            (metadata_keys::VERSION, FORMAT_VERSION.to_string()),
            (metadata_keys::SEGMENT_ID, self.id.to_string()),
            (metadata_keys::KIND, kind.to_string()),
            (metadata_keys::ROWS, rows.to_string()),
            (metadata_keys::MIN_TIME, self.min_time.to_string()),
            (metadata_keys::MAX_TIME, self.max_time.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| ParquetKeyValue::new(key.to_string(), value))
        .collect()
    }
}

/// Bytes and hash of a written file.
struct Digest32 {
    bytes: u64,
    sha256: [u8; 32],
}

// ---------------------------------------------------------------- preparing

/// A file's rows in write order, and what every row group needs.
struct Prepared<'a, T, K> {
    /// The input rows, sorted.
    rows: Vec<&'a T>,
    /// Their sort keys, in the same order: what a pass over the sorted rows
    /// needs of them is read here, in order, not through each row's
    /// pointer in no order in memory.
    keys: Vec<K>,
    /// Per sorted row, its (resource, scope) pair in `pairs`.
    pair_of: Vec<u32>,
    /// The distinct (resource, scope) pairs ([`Pairs`]).
    pairs: Vec<(&'a Resource, &'a Scope)>,
    /// Row groups, as ranges of `rows`.
    groups: Vec<Range<usize>>,
}

impl<T, K> Prepared<'_, T, K> {
    /// The most distinct values of `part` (a leading part of the sort key)
    /// in one row group: the rows are sorted by it, so counting the changes
    /// counts the values.
    fn max_distinct_in_a_group<D: PartialEq>(&self, part: impl Fn(&K) -> D) -> u64 {
        self.groups
            .iter()
            .map(|group| {
                let keys = self.keys.get(group.clone()).unwrap_or(&[]);
                1 + keys
                    .windows(2)
                    .filter(|w| part(&w[0]) != part(&w[1]))
                    .count() as u64
            })
            .max()
            .unwrap_or(1)
    }
}

/// Sorts `input` by `key` (then input position, so equal keys keep their
/// order), finds the distinct resource/scope pairs and cuts row groups, in
/// one sequential pass over the input and one over the sorted keys.
/// `ahead` is called with the row [`AHEAD_ROWS`] ahead of the one whose key
/// is taken, to prefetch what `key` will read; the row itself (the input
/// holds pointers to rows in no order in memory) is prefetched twice as far
/// ahead, so that `ahead` does not wait for it.
/// `own_bytes` estimates a row's bytes, or refuses the row; it walks every
/// attribute (a third of this pass), so on a large input a second thread
/// takes half the rows.
fn prepare<'a, T: Sync, K: Ord + Copy>(
    input: &[&'a T],
    max_rows: usize,
    key: impl Fn(&T) -> K,
    ahead: impl Fn(&T),
    context: impl Fn(&'a T) -> (&'a Arc<Resource>, &'a Arc<Scope>),
    own_bytes: impl Fn(&T) -> Result<usize, String> + Sync,
    known_bytes: Option<&[u32]>,
) -> Result<Prepared<'a, T, K>, String> {
    let count = u32::try_from(input.len())
        .map_err(|_| format!("{} rows are too many for one file", input.len()))?;
    // Estimates taken earlier, one per row, replace `own_bytes`.
    let known_bytes = known_bytes.filter(|known| known.len() == input.len());
    let estimate = |rows: &[&T]| -> Result<Vec<u32>, String> {
        if let Some(known) = known_bytes {
            return Ok(known.to_vec());
        }
        rows.iter()
            .map(|row| own_bytes(row).map(|bytes| u32::try_from(bytes).unwrap_or(u32::MAX)))
            .collect()
    };
    // Below this many rows a thread costs more than it saves.
    const PARALLEL_ROWS: usize = 16 * 1024;
    let (first, second) = input.split_at(if input.len() < PARALLEL_ROWS || known_bytes.is_some() {
        input.len()
    } else {
        input.len() / 2
    });
    let (row_bytes, mut keys, row_pair, pairs) = std::thread::scope(|scope| {
        let second = (!second.is_empty()).then(|| scope.spawn(|| estimate(second)));
        let mut keys: Vec<(K, u32)> = Vec::with_capacity(input.len());
        let mut row_pair: Vec<u32> = Vec::with_capacity(input.len());
        let mut pairs = Pairs::new();
        for (&row, i) in input.iter().zip(0..count) {
            // The row itself first: `ahead` reads through it.
            if let Some(&later) = input.get(i as usize + 2 * AHEAD_ROWS) {
                prefetch(later);
            }
            if let Some(&later) = input.get(i as usize + AHEAD_ROWS) {
                ahead(later);
            }
            keys.push((key(row), i));
            let (resource, scope) = context(row);
            row_pair.push(pairs.number(resource, scope));
        }
        let mut row_bytes = estimate(first)?;
        if let Some(second) = second {
            let rest = second
                .join()
                .map_err(|_| "estimating row sizes failed".to_string())??;
            row_bytes.extend(rest);
        }
        Ok::<_, String>((row_bytes, keys, row_pair, pairs.into_pairs()))
    })?;
    keys.sort_unstable();

    let mut rows = Vec::with_capacity(keys.len());
    let mut sorted_keys = Vec::with_capacity(keys.len());
    let mut pair_of = Vec::with_capacity(keys.len());
    let mut sizes = Vec::with_capacity(keys.len());
    for (key, i) in keys {
        let i = i as usize;
        if let (Some(row), Some(pair), Some(bytes)) =
            (input.get(i), row_pair.get(i), row_bytes.get(i))
        {
            rows.push(*row);
            sorted_keys.push(key);
            pair_of.push(*pair);
            sizes.push(*bytes as usize);
        }
    }
    let groups = row_groups(&sizes, max_rows, |bytes| *bytes);
    Ok(Prepared {
        rows,
        keys: sorted_keys,
        pair_of,
        pairs,
        groups,
    })
}

impl<T, K> Prepared<'_, T, K> {
    /// The sorted rows in `range`, with their resource/scope pairs.
    fn slice(&self, range: Range<usize>) -> (&[&T], &[u32]) {
        (
            self.rows.get(range.clone()).unwrap_or(&[]),
            self.pair_of.get(range).unwrap_or(&[]),
        )
    }

    fn slices(&self) -> Vec<Slice> {
        slices(&self.groups)
    }

    /// The most rows of a row group.
    fn max_group_rows(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.len() as u64)
            .max()
            .unwrap_or(1)
    }
}

/// The row groups cut into slices of at most [`SLICE_ROWS`] rows.
fn slices(groups: &[Range<usize>]) -> Vec<Slice> {
    let mut slices = Vec::new();
    for group in groups {
        let mut start = group.start;
        while start < group.end {
            let end = group.end.min(start + SLICE_ROWS);
            slices.push(Slice {
                rows: start..end,
                ends_row_group: end == group.end,
            });
            start = end;
        }
    }
    slices
}

/// What a row keeps of its resource and scope: `service_name` (for
/// pruning), and the `resource_id` of its pair in the resources file.
struct PairColumns {
    /// One per pair.
    service_name: ArrayRef,
    /// The `resource_id` of the file's first pair.
    first_id: u32,
}

impl PairColumns {
    fn new(pairs: &[(&Resource, &Scope)], first_id: usize) -> Result<PairColumns, String> {
        let last = first_id.checked_add(pairs.len());
        let first_id = u32::try_from(first_id)
            .ok()
            .filter(|_| last.is_some_and(|last| u32::try_from(last).is_ok()))
            .ok_or_else(|| format!("{} resources are too many for one segment", pairs.len()))?;
        let mut service_name = StringBuilder::new();
        for (resource, _) in pairs {
            service_name.append_value(resource.service_name());
        }
        Ok(PairColumns {
            service_name: Arc::new(service_name.finish()),
            first_id,
        })
    }

    /// `service_name` and `resource_id` of rows whose pairs are `pair_of`.
    fn take(&self, pair_of: &[u32]) -> Result<(ArrayRef, ArrayRef), ArrowError> {
        let indices = UInt32Array::from(pair_of.to_vec());
        let ids = UInt32Array::from_iter_values(pair_of.iter().map(|p| p + self.first_id));
        Ok((
            arrow_select::take::take(self.service_name.as_ref(), &indices, None)?,
            Arc::new(ids),
        ))
    }
}

/// Refuses values nested deeper than a segment can read back.
fn check_depth(span: &Span) -> Result<(), String> {
    let any_too_deep = |attributes: &[KeyValue]| attributes.iter().any(|kv| too_deep(&kv.value));
    if any_too_deep(&span.attributes)
        || any_too_deep(&span.original_attributes)
        || span.events.iter().any(|e| any_too_deep(&e.attributes))
        || span.links.iter().any(|l| any_too_deep(&l.attributes))
    {
        return Err(format!(
            "span {} of trace {} has an attribute nested deeper than {MAX_VALUE_DEPTH} levels",
            span.span_id, span.trace_id
        ));
    }
    Ok(())
}

/// Whether `value` nests deeper than a segment stores (scalars never do:
/// only containers pay for the walk).
fn too_deep(value: &AnyValue) -> bool {
    matches!(value, AnyValue::Array(_) | AnyValue::KvList(_)) && value.depth() > MAX_VALUE_DEPTH
}

/// Cuts rows into row groups of `max_rows`, ending a group early when its
/// estimated variable-length bytes reach [`MAX_ROW_GROUP_BYTES`].
fn row_groups<T>(rows: &[T], max_rows: usize, bytes: impl Fn(&T) -> usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut group_bytes) = (0, 0usize);
    for (i, row) in rows.iter().enumerate() {
        let row_bytes = bytes(row);
        if i > start && (i - start >= max_rows || group_bytes + row_bytes > MAX_ROW_GROUP_BYTES) {
            groups.push(start..i);
            start = i;
            group_bytes = 0;
        }
        group_bytes += row_bytes;
    }
    if start < rows.len() {
        groups.push(start..rows.len());
    }
    groups
}

/// An upper estimate of the bytes a span adds to the Arrow arrays of its
/// row group, resource and scope aside: string and binary lengths plus a
/// fixed cost per value.
fn span_bytes(span: &Span) -> usize {
    128 + span.name.len()
        + span.trace_state.len()
        + span.status.message.len()
        + attributes_bytes(&span.attributes)
        + attributes_bytes(&span.original_attributes)
        + span
            .events
            .iter()
            .map(|e| 32 + e.name.len() + attributes_bytes(&e.attributes))
            .sum::<usize>()
        + span
            .links
            .iter()
            .map(|l| 48 + l.trace_state.len() + attributes_bytes(&l.attributes))
            .sum::<usize>()
}

fn resource_scope_bytes(resource: &Resource, scope: &Scope) -> usize {
    32 + attributes_bytes(&resource.attributes)
        + attributes_bytes(&resource.original_attributes)
        + resource.schema_url.len()
        + scope.name.len()
        + scope.version.len()
        + scope.schema_url.len()
        + attributes_bytes(&scope.attributes)
}

fn attributes_bytes(attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| 32 + kv.key.len() + value_bytes(&kv.value))
        .sum()
}

fn value_bytes(value: &AnyValue) -> usize {
    match value {
        AnyValue::Str(s) => s.len(),
        AnyValue::Bytes(b) => b.len(),
        // JSON text: brackets, names and quotes around every element, and
        // base64 for bytes (4/3 of them) inside.
        AnyValue::Array(items) => 32 + items.iter().map(|v| 32 + 2 * value_bytes(v)).sum::<usize>(),
        AnyValue::KvList(kvs) => {
            32 + kvs
                .iter()
                .map(|kv| 48 + 2 * kv.key.len() + 2 * value_bytes(&kv.value))
                .sum::<usize>()
        }
        _ => 8,
    }
}

// ---------------------------------------------------------------- spans

/// Writes the spans file; returns its digest and the distinct
/// resource/scope pairs, numbered from 0, that its rows name.
fn write_spans<'a>(
    path: &Path,
    spans: &[&'a SpanRecord],
    known_bytes: Option<&[u32]>,
    options: &SegmentWriteOptions,
    meta: &FileMeta,
) -> Result<(Digest32, Vec<(&'a Resource, &'a Scope)>)> {
    let segment_error = |reason: String| StoreError::Segment {
        path: path.to_owned(),
        reason,
    };
    // Ids as big-endian integers order as their bytes do, and compare in
    // one instruction.
    let prepared = prepare(
        spans,
        options.row_group_rows,
        |s| {
            (
                u128::from_be_bytes(s.span.trace_id.to_bytes()),
                s.span.start_time_unix_nano,
                u64::from_be_bytes(s.span.span_id.to_bytes()),
            )
        },
        // The key's fields only: they share a line or two, and where the
        // compiler lays them out is not the span's first line (today it is
        // its fourth).
        |s| {
            prefetch(&s.span.trace_id);
            prefetch(&s.span.start_time_unix_nano);
            prefetch(&s.span.span_id);
        },
        |s| (&s.resource, &s.scope),
        // The depth check walks the attributes the size estimate walks:
        // in the same pass, they are read from memory once.
        |s| {
            check_depth(&s.span)?;
            Ok(span_bytes(&s.span))
        },
        known_bytes,
    )
    .map_err(segment_error)?;
    let pair_columns = PairColumns::new(&prepared.pairs, 0).map_err(segment_error)?;

    // Bloom filters: sized for the distinct trace ids of the largest row
    // group (rows are sorted by trace id: count the changes), and for its
    // row count on the other columns. The Parquet writer folds each filter
    // down to the values it received, so an upper bound only costs memory
    // while writing.
    let trace_ndv = prepared.max_distinct_in_a_group(|(trace_id, _, _)| *trace_id);
    let mut bloom_ndv = vec![("trace_id".to_string(), trace_ndv)];
    bloom_ndv.extend(
        DedicatedColumn::ALL
            .into_iter()
            .filter(|c| c.has_bloom_filter())
            .map(|c| (c.column_name().to_string(), prepared.max_group_rows())),
    );
    let encryption = meta.encryption("spans").map_err(segment_error)?;
    if encryption.is_some() {
        // Written unencrypted by parquet-rs: they would leak membership.
        bloom_ndv.clear();
    }
    let properties = properties(
        options,
        meta.key_values("spans", spans.len()),
        &SPANS_SCHEMA,
        SpanTuning { bloom_ndv },
        encryption,
    )
    .map_err(|e| segment_error(e.to_string()))?;

    let digest = write_file(
        path,
        &SPANS_SCHEMA,
        properties,
        &prepared.slices(),
        |range| {
            let (rows, pair_of) = prepared.slice(range);
            span_batch(rows, pair_columns.take(pair_of)?)
        },
    )?;
    Ok((digest, prepared.pairs))
}

/// Which dedicated column takes each attribute of `span`: the first
/// attribute of a dedicated key with the column's type. The attributes that
/// stay in the generic list go to `generic`, cleared first (one buffer
/// serves every span of a batch: no allocation per span).
fn lift_dedicated<'a>(
    keys: &DedicatedKeys,
    span: &'a Span,
    generic: &mut Vec<&'a KeyValue>,
) -> [Option<&'a AnyValue>; 11] {
    let mut dedicated: [Option<&AnyValue>; 11] = [None; 11];
    generic.clear();
    for kv in &span.attributes {
        let slot = keys.column(&kv.key).and_then(|column| {
            let fits = match &kv.value {
                AnyValue::Int(_) => column.is_integer(),
                AnyValue::Str(_) => !column.is_integer(),
                _ => false,
            };
            let slot = dedicated.get_mut(column.index())?;
            (fits && slot.is_none()).then_some(slot)
        });
        match slot {
            Some(slot) => *slot = Some(&kv.value),
            None => generic.push(kv),
        }
    }
    dedicated
}

/// [`DedicatedColumn::from_attribute_key`] for every attribute of every
/// span written, as a few word comparisons: a key of 8 to 32 bytes is
/// covered by its bytes 0..8, 8..16, 16..24 and its last 8 (each 0 when the
/// key is too short), so equal lengths and words are equal keys. String
/// equality called `memcmp` once per attribute, about 8% of the writer's
/// CPU time on HTTP spans; this takes a third of that.
struct DedicatedKeys([(usize, [u64; 4], DedicatedColumn); 11]);

impl DedicatedKeys {
    fn new() -> DedicatedKeys {
        DedicatedKeys(
            DedicatedColumn::ALL
                .map(|c| (c.attribute_key().len(), key_words(c.attribute_key()), c)),
        )
    }

    fn column(&self, key: &str) -> Option<DedicatedColumn> {
        if !(8..=32).contains(&key.len()) {
            // No dedicated key is that short or long: fall back to the
            // definition (which finds none), not to a guess.
            return DedicatedColumn::from_attribute_key(key);
        }
        let words = key_words(key);
        self.0
            .iter()
            .find(|(len, known, _)| *len == key.len() && *known == words)
            .map(|(_, _, column)| *column)
    }
}

/// Bytes 0..8, 8..16, 16..24 and the last 8 of `key` as little-endian
/// words, 0 where `key` is too short for one.
fn key_words(key: &str) -> [u64; 4] {
    let bytes = key.as_bytes();
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    };
    [
        word(0),
        word(8),
        word(16),
        word(bytes.len().saturating_sub(8)),
    ]
}

/// A row group of spans; `pair` holds the `service_name` and `resource_id`
/// columns, taken from [`PairColumns`].
fn span_batch(rows: &[&SpanRecord], pair: (ArrayRef, ArrayRef)) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    // Sized from a sample: a string builder that outgrows its buffer copies
    // it whole.
    let keys = DedicatedKeys::new();
    let mut rest: Vec<&KeyValue> = Vec::new();
    let sample: Vec<([Option<&AnyValue>; 11], usize)> = sample(rows)
        .map(|s| (lift_dedicated(&keys, &s.span, &mut rest), rest.len()))
        .collect();
    let mut trace_id = Ids::new(n, 16);
    let mut span_id = Ids::new(n, 8);
    let mut parent_span_id = Ids::new(n, 8);
    let mut trace_state =
        StringBuilder::with_capacity(n, estimate(rows, |s| s.span.trace_state.len()));
    let mut flags = UInt32Builder::with_capacity(n);
    let mut name = StringBuilder::with_capacity(n, estimate(rows, |s| s.span.name.len()));
    let mut kind = Int8Builder::with_capacity(n);
    let mut start = timestamps(n);
    let mut end = timestamps(n);
    let mut duration = Int64Builder::with_capacity(n);
    let mut status_code = Int8Builder::with_capacity(n);
    let mut status_message =
        StringBuilder::with_capacity(n, estimate(rows, |s| s.span.status.message.len()));
    let mut dedicated: Vec<DedicatedBuilder> = DedicatedColumn::ALL
        .into_iter()
        .map(|c| {
            if c.is_integer() {
                DedicatedBuilder::Int(Int64Builder::with_capacity(n))
            } else {
                let bytes: usize = sample
                    .iter()
                    .filter_map(|(lifted, _)| lifted.get(c.index()).copied().flatten())
                    .filter_map(AnyValue::as_str)
                    .map(str::len)
                    .sum();
                DedicatedBuilder::Str(StringBuilder::with_capacity(
                    n,
                    scale(bytes, sample.len(), n),
                ))
            }
        })
        .collect();
    let generic_entries: usize = sample.iter().map(|(_, rest)| rest).sum();
    let mut generic =
        AttributeListBuilder::with_capacity(n, scale(generic_entries, sample.len(), n));
    let mut original = AttributeListBuilder::with_capacity(n, 0);
    let mut dropped_attributes = UInt32Builder::with_capacity(n);
    let mut events = EventListBuilder::new(n);
    let mut dropped_events = UInt32Builder::with_capacity(n);
    let mut links = LinkListBuilder::new(n);
    let mut dropped_links = UInt32Builder::with_capacity(n);

    for (at, record) in rows.iter().enumerate() {
        // Sorted rows are in no order in memory: fetch each row's record
        // (which holds the pointer to its span), then its span, then its
        // attribute array, then the string values that array points to,
        // each once the pointer to it has arrived.
        if let Some(&later) = rows.get(at + 2 * AHEAD_ROWS) {
            prefetch(later);
        }
        if let Some(later) = rows.get(at + AHEAD_ROWS) {
            prefetch_whole(&*later.span);
        }
        if let Some(later) = rows.get(at + AHEAD_ROWS / 2) {
            prefetch_whole(later.span.attributes.as_slice());
        }
        if let Some(later) = rows.get(at + AHEAD_ROWS / 4) {
            prefetch_strings(&later.span.attributes);
        }
        let span = &record.span;
        trace_id.push(Some(span.trace_id.as_bytes()));
        span_id.push(Some(span.span_id.as_bytes()));
        parent_span_id.push(
            span.parent_span_id
                .as_ref()
                .map(|p| p.as_bytes().as_slice()),
        );
        trace_state.append_value(&span.trace_state);
        flags.append_value(span.flags);
        name.append_value(&span.name);
        kind.append_value(span.kind as i8);
        // Times past i64::MAX (year 2262) keep their bits: read back exactly.
        start.append_value(span.start_time_unix_nano as i64);
        end.append_value(span.end_time_unix_nano as i64);
        duration.append_value(i64::try_from(span.duration_nanos()).unwrap_or(i64::MAX));
        status_code.append_value(span.status.code as i8);
        status_message.append_value(&span.status.message);
        let lifted = lift_dedicated(&keys, span, &mut rest);
        for (builder, value) in dedicated.iter_mut().zip(lifted) {
            builder.append(value);
        }
        generic.append(rest.iter().copied())?;
        original.append(&span.original_attributes)?;
        dropped_attributes.append_value(span.dropped_attributes_count);
        events.append(&span.events)?;
        dropped_events.append_value(span.dropped_events_count);
        links.append(&span.links)?;
        dropped_links.append_value(span.dropped_links_count);
    }

    let (service_name, resource_id) = pair;
    let mut columns: Vec<ArrayRef> = vec![
        trace_id.finish()?,
        span_id.finish()?,
        parent_span_id.finish()?,
        Arc::new(trace_state.finish()),
        Arc::new(flags.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(duration.finish()),
        Arc::new(status_code.finish()),
        Arc::new(status_message.finish()),
        service_name,
    ];
    columns.extend(dedicated.iter_mut().map(DedicatedBuilder::finish));
    columns.extend([
        Arc::new(generic.finish()?) as ArrayRef,
        Arc::new(original.finish()?),
        Arc::new(dropped_attributes.finish()),
        Arc::new(events.finish()?),
        Arc::new(dropped_events.finish()),
        Arc::new(links.finish()?),
        Arc::new(dropped_links.finish()),
        resource_id,
    ]);
    RecordBatch::try_new(SPANS_SCHEMA.clone(), columns)
}

/// How far ahead of the row being read the writer's passes prefetch: far
/// enough for a miss to complete, near enough for the line to stay cached.
const AHEAD_ROWS: usize = 16;

/// Rows spread evenly over `rows`, to size builders by.
fn sample<'a, T>(rows: &'a [&'a T]) -> impl Iterator<Item = &'a T> {
    const SAMPLE: usize = 64;
    let step = (rows.len() / SAMPLE).max(1);
    rows.iter().step_by(step).take(SAMPLE).copied()
}

/// `sampled` (a total over `samples` rows) scaled to `rows`, with a margin.
fn scale(sampled: usize, samples: usize, rows: usize) -> usize {
    if samples == 0 {
        return 0;
    }
    (sampled * rows / samples) * 5 / 4 + 64
}

/// The bytes `len` gives `rows`, estimated from a sample.
fn estimate<T>(rows: &[&T], len: impl Fn(&T) -> usize) -> usize {
    let (mut bytes, mut samples) = (0, 0);
    for row in sample(rows) {
        bytes += len(row);
        samples += 1;
    }
    scale(bytes, samples, rows.len())
}

/// A `FixedSizeBinary` id column built straight into its buffers (the
/// Arrow builder checks and copies each value through more layers).
struct Ids {
    width: i32,
    bytes: Vec<u8>,
    valid: Vec<bool>,
    nulls: bool,
}

impl Ids {
    fn new(rows: usize, width: usize) -> Ids {
        Ids {
            width: width as i32,
            bytes: Vec::with_capacity(rows * width),
            valid: Vec::with_capacity(rows),
            nulls: false,
        }
    }

    /// Appends an id of the column's width, or null.
    fn push(&mut self, id: Option<&[u8]>) {
        match id {
            Some(id) => {
                self.bytes.extend_from_slice(id);
                self.valid.push(true);
            }
            None => {
                let width = usize::try_from(self.width).unwrap_or(0);
                self.bytes.resize(self.bytes.len() + width, 0);
                self.valid.push(false);
                self.nulls = true;
            }
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let nulls = self.nulls.then(|| NullBuffer::from(self.valid));
        Ok(Arc::new(FixedSizeBinaryArray::try_new(
            self.width,
            Buffer::from_vec(self.bytes),
            nulls,
        )?))
    }
}

fn timestamps(n: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC")
}

enum DedicatedBuilder {
    Str(StringBuilder),
    Int(Int64Builder),
}

impl DedicatedBuilder {
    fn append(&mut self, value: Option<&AnyValue>) {
        match (self, value) {
            (DedicatedBuilder::Str(b), Some(AnyValue::Str(s))) => b.append_value(s),
            (DedicatedBuilder::Int(b), Some(AnyValue::Int(i))) => b.append_value(*i),
            (DedicatedBuilder::Str(b), _) => b.append_null(),
            (DedicatedBuilder::Int(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            DedicatedBuilder::Str(b) => Arc::new(b.finish()),
            DedicatedBuilder::Int(b) => Arc::new(b.finish()),
        }
    }
}

struct EventListBuilder {
    offsets: Vec<i32>,
    count: usize,
    time: TimestampNanosecondBuilder,
    name: StringBuilder,
    attributes: AttributeListBuilder,
    dropped: UInt32Builder,
}

impl EventListBuilder {
    fn new(rows: usize) -> EventListBuilder {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        EventListBuilder {
            offsets,
            count: 0,
            time: timestamps(0),
            name: StringBuilder::new(),
            attributes: AttributeListBuilder::with_capacity(0, 0),
            dropped: UInt32Builder::new(),
        }
    }

    fn append(&mut self, events: &[Event]) -> Result<(), ArrowError> {
        for event in events {
            self.time.append_value(event.time_unix_nano as i64);
            self.name.append_value(&event.name);
            self.attributes.append(&event.attributes)?;
            self.dropped.append_value(event.dropped_attributes_count);
        }
        self.count += events.len();
        self.offsets.push(offset(self.count)?);
        Ok(())
    }

    fn finish(&mut self) -> Result<arrow_array::ListArray, ArrowError> {
        let entries = StructArray::try_new(
            event_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.name.finish()),
                Arc::new(self.attributes.finish()?),
                Arc::new(self.dropped.finish()),
            ],
            None,
        )?;
        list_array(
            event_fields(),
            std::mem::take(&mut self.offsets),
            Arc::new(entries),
        )
    }
}

struct LinkListBuilder {
    offsets: Vec<i32>,
    count: usize,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    trace_state: StringBuilder,
    attributes: AttributeListBuilder,
    dropped: UInt32Builder,
    flags: UInt32Builder,
}

impl LinkListBuilder {
    fn new(rows: usize) -> LinkListBuilder {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        LinkListBuilder {
            offsets,
            count: 0,
            trace_id: FixedSizeBinaryBuilder::new(16),
            span_id: FixedSizeBinaryBuilder::new(8),
            trace_state: StringBuilder::new(),
            attributes: AttributeListBuilder::with_capacity(0, 0),
            dropped: UInt32Builder::new(),
            flags: UInt32Builder::new(),
        }
    }

    fn append(&mut self, links: &[Link]) -> Result<(), ArrowError> {
        for link in links {
            self.trace_id.append_value(link.trace_id.as_bytes())?;
            self.span_id.append_value(link.span_id.as_bytes())?;
            self.trace_state.append_value(&link.trace_state);
            self.attributes.append(&link.attributes)?;
            self.dropped.append_value(link.dropped_attributes_count);
            self.flags.append_value(link.flags);
        }
        self.count += links.len();
        self.offsets.push(offset(self.count)?);
        Ok(())
    }

    fn finish(&mut self) -> Result<arrow_array::ListArray, ArrowError> {
        let entries = StructArray::try_new(
            link_fields(),
            vec![
                Arc::new(self.trace_id.finish()),
                Arc::new(self.span_id.finish()),
                Arc::new(self.trace_state.finish()),
                Arc::new(self.attributes.finish()?),
                Arc::new(self.dropped.finish()),
                Arc::new(self.flags.finish()),
            ],
            None,
        )?;
        list_array(
            link_fields(),
            std::mem::take(&mut self.offsets),
            Arc::new(entries),
        )
    }
}

/// The resource and scope columns of the resources file.
struct ResourceScopeBuilder {
    attributes: AttributeListBuilder,
    original_attributes: AttributeListBuilder,
    dropped: UInt32Builder,
    schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: AttributeListBuilder,
    scope_dropped: UInt32Builder,
    scope_schema_url: StringBuilder,
}

impl ResourceScopeBuilder {
    fn new(rows: usize) -> ResourceScopeBuilder {
        ResourceScopeBuilder {
            attributes: AttributeListBuilder::with_capacity(rows, rows * 8),
            original_attributes: AttributeListBuilder::with_capacity(rows, 0),
            dropped: UInt32Builder::with_capacity(rows),
            schema_url: StringBuilder::with_capacity(rows, rows * 32),
            scope_name: StringBuilder::with_capacity(rows, rows * 32),
            scope_version: StringBuilder::with_capacity(rows, rows * 8),
            scope_attributes: AttributeListBuilder::with_capacity(rows, 0),
            scope_dropped: UInt32Builder::with_capacity(rows),
            scope_schema_url: StringBuilder::with_capacity(rows, 0),
        }
    }

    fn append(&mut self, resource: &Resource, scope: &Scope) -> Result<(), ArrowError> {
        self.attributes.append(&resource.attributes)?;
        self.original_attributes
            .append(&resource.original_attributes)?;
        self.dropped.append_value(resource.dropped_attributes_count);
        self.schema_url.append_value(&resource.schema_url);
        self.scope_name.append_value(&scope.name);
        self.scope_version.append_value(&scope.version);
        self.scope_attributes.append(&scope.attributes)?;
        self.scope_dropped
            .append_value(scope.dropped_attributes_count);
        self.scope_schema_url.append_value(&scope.schema_url);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        Ok(vec![
            Arc::new(self.attributes.finish()?),
            Arc::new(self.original_attributes.finish()?),
            Arc::new(self.dropped.finish()),
            Arc::new(self.schema_url.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            Arc::new(self.scope_attributes.finish()?),
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema_url.finish()),
        ])
    }
}

// ---------------------------------------------------------------- logs

/// Writes the logs file; returns its digest and the distinct
/// resource/scope pairs its rows name, numbered from `first_id`.
fn write_logs<'a>(
    path: &Path,
    logs: &[&'a LogEntry],
    first_id: usize,
    options: &SegmentWriteOptions,
    meta: &FileMeta,
) -> Result<(Digest32, Vec<(&'a Resource, &'a Scope)>)> {
    let segment_error = |reason: String| StoreError::Segment {
        path: path.to_owned(),
        reason,
    };
    // Records with a trace id first, by (trace id, time); the others after,
    // by time.
    let prepared = prepare(
        logs,
        options.row_group_rows,
        |l| {
            (
                l.record.trace_id.is_none(),
                u128::from_be_bytes(l.record.trace_id.unwrap_or_default().to_bytes()),
                l.record.effective_time_unix_nano(),
            )
        },
        // A log record is held in place, not behind a pointer.
        |_| {},
        |l| (&l.resource, &l.scope),
        |l| {
            check_log_depth(l)?;
            Ok(log_bytes(l))
        },
        None,
    )
    .map_err(segment_error)?;
    let pair_columns = PairColumns::new(&prepared.pairs, first_id).map_err(segment_error)?;
    let encryption = meta.encryption("logs").map_err(segment_error)?;
    // No bloom filter in an encrypted file: parquet-rs writes it unencrypted.
    let trace_ndv = encryption.is_none().then(|| {
        prepared.max_distinct_in_a_group(|(untraced, trace_id, _)| (*untraced, *trace_id))
    });
    let properties = properties(
        options,
        meta.key_values("logs", logs.len()),
        &LOGS_SCHEMA,
        LogTuning { trace_ndv },
        encryption,
    )
    .map_err(|e| segment_error(e.to_string()))?;
    let digest = write_file(
        path,
        &LOGS_SCHEMA,
        properties,
        &prepared.slices(),
        |range| {
            let (rows, pair_of) = prepared.slice(range);
            log_batch(rows, pair_columns.take(pair_of)?)
        },
    )?;
    Ok((digest, prepared.pairs))
}

/// Refuses values nested deeper than a segment can read back.
fn check_log_depth(entry: &LogEntry) -> Result<(), String> {
    let record = &entry.record;
    if too_deep(&record.body)
        || record
            .attributes
            .iter()
            .chain(&record.original_attributes)
            .any(|kv| too_deep(&kv.value))
    {
        return Err(format!(
            "a log record has a value nested deeper than {MAX_VALUE_DEPTH} levels"
        ));
    }
    Ok(())
}

fn log_bytes(entry: &LogEntry) -> usize {
    let record = &entry.record;
    128 + record.severity_text.len()
        + record.event_name.len()
        + 2 * value_bytes(&record.body)
        + attributes_bytes(&record.attributes)
        + attributes_bytes(&record.original_attributes)
}

fn log_batch(rows: &[&LogEntry], pair: (ArrayRef, ArrayRef)) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut trace_id = Ids::new(n, 16);
    let mut span_id = Ids::new(n, 8);
    let mut time = timestamps(n);
    let mut observed_time = timestamps(n);
    let mut severity_number = Int32Builder::with_capacity(n);
    let mut severity_text = StringBuilder::with_capacity(n, n * 5);
    let mut body = ValueBuilder::with_capacity(n);
    let mut attributes = AttributeListBuilder::with_capacity(n, n * 4);
    let mut original = AttributeListBuilder::with_capacity(n, 0);
    let mut dropped_attributes = UInt32Builder::with_capacity(n);
    let mut flags = UInt32Builder::with_capacity(n);
    let mut event_name = StringBuilder::with_capacity(n, 0);
    for entry in rows {
        let record = &entry.record;
        trace_id.push(record.trace_id.as_ref().map(|id| id.as_bytes().as_slice()));
        span_id.push(record.span_id.as_ref().map(|id| id.as_bytes().as_slice()));
        time.append_value(record.time_unix_nano as i64);
        observed_time.append_value(record.observed_time_unix_nano as i64);
        severity_number.append_value(record.severity_number);
        severity_text.append_value(&record.severity_text);
        body.append(&record.body);
        attributes.append(&record.attributes)?;
        original.append(&record.original_attributes)?;
        dropped_attributes.append_value(record.dropped_attributes_count);
        flags.append_value(record.flags);
        event_name.append_value(&record.event_name);
    }
    let (service_name, resource_id) = pair;
    let columns: Vec<ArrayRef> = vec![
        trace_id.finish()?,
        span_id.finish()?,
        Arc::new(time.finish()),
        Arc::new(observed_time.finish()),
        Arc::new(severity_number.finish()),
        Arc::new(severity_text.finish()),
        Arc::new(body.finish_struct()?),
        Arc::new(attributes.finish()?),
        Arc::new(original.finish()?),
        Arc::new(dropped_attributes.finish()),
        Arc::new(flags.finish()),
        Arc::new(event_name.finish()),
        service_name,
        resource_id,
    ];
    RecordBatch::try_new(LOGS_SCHEMA.clone(), columns)
}

// ---------------------------------------------------------------- resources

/// Writes the resources file: `pairs[i]` in row `i`, with `resource_id` `i`.
fn write_resources(
    path: &Path,
    pairs: &[(&Resource, &Scope)],
    options: &SegmentWriteOptions,
    meta: &FileMeta,
) -> Result<Digest32> {
    let segment_error = |reason: String| StoreError::Segment {
        path: path.to_owned(),
        reason,
    };
    let groups = row_groups(pairs, options.row_group_rows, |(resource, scope)| {
        resource_scope_bytes(resource, scope)
    });
    let encryption = meta.encryption("resources").map_err(segment_error)?;
    let properties = properties(
        options,
        meta.key_values("resources", pairs.len()),
        &RESOURCES_SCHEMA,
        ResourceTuning {
            plain: pairs.len() <= PLAIN_RESOURCES,
        },
        encryption,
    )
    .map_err(|e| segment_error(e.to_string()))?;
    write_file(
        path,
        &RESOURCES_SCHEMA,
        properties,
        &slices(&groups),
        |range| resource_batch(pairs, range),
    )
}

fn resource_batch(
    pairs: &[(&Resource, &Scope)],
    range: Range<usize>,
) -> Result<RecordBatch, ArrowError> {
    let rows = pairs.get(range.clone()).unwrap_or(&[]);
    let ids = range
        .map(u32::try_from)
        .collect::<Result<UInt32Array, _>>()
        .map_err(|_| ArrowError::InvalidArgumentError("too many resources".into()))?;
    let mut builder = ResourceScopeBuilder::new(rows.len());
    for (resource, scope) in rows {
        builder.append(resource, scope)?;
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ids)];
    columns.extend(builder.finish()?);
    RecordBatch::try_new(RESOURCES_SCHEMA.clone(), columns)
}

// ---------------------------------------------------------------- Parquet

/// Per-file choices of [`properties`].
trait Tuning {
    fn apply(
        &self,
        builder: parquet::file::properties::WriterPropertiesBuilder,
        fpp: f64,
    ) -> parquet::file::properties::WriterPropertiesBuilder;
    /// Leaf column paths the rows are sorted by.
    fn sorted_by(&self) -> &'static [&'static str];
}

struct SpanTuning {
    bloom_ndv: Vec<(String, u64)>,
}

impl Tuning for SpanTuning {
    fn apply(
        &self,
        mut builder: parquet::file::properties::WriterPropertiesBuilder,
        fpp: f64,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        // Random ids: a dictionary only costs; plain is as small as they get.
        for column in ["trace_id", "span_id", "parent_span_id"] {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        // Times and durations are nearly unique and close together.
        for column in ["start_time", "end_time", "duration_ns"] {
            let path = ColumnPath::from(column);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
        for (column, ndv) in &self.bloom_ndv {
            builder = bloom(builder, column, *ndv, fpp);
        }
        builder
    }

    fn sorted_by(&self) -> &'static [&'static str] {
        &["trace_id", "start_time", "span_id"]
    }
}

/// Up to this many pairs, the resources file is stored plain.
const PLAIN_RESOURCES: usize = 1024;

struct ResourceTuning {
    /// No compression and no dictionaries: a read of a few pairs then
    /// costs no zstd context and no dictionary page per column chunk
    /// (~0.3 ms of a trace lookup). Larger files (a sender that puts a
    /// request id in its resource) are compressed like the others.
    plain: bool,
}

impl Tuning for ResourceTuning {
    fn apply(
        &self,
        builder: parquet::file::properties::WriterPropertiesBuilder,
        _fpp: f64,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        if self.plain {
            return builder
                .set_compression(Compression::UNCOMPRESSED)
                .set_dictionary_enabled(false);
        }
        // 0, 1, 2...: a dictionary only costs.
        builder.set_column_dictionary_enabled(ColumnPath::from("resource_id"), false)
    }

    fn sorted_by(&self) -> &'static [&'static str] {
        &["resource_id"]
    }
}

struct LogTuning {
    /// `None`: no bloom filter.
    trace_ndv: Option<u64>,
}

impl Tuning for LogTuning {
    fn apply(
        &self,
        mut builder: parquet::file::properties::WriterPropertiesBuilder,
        fpp: f64,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        for column in ["trace_id", "span_id"] {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        for column in ["time", "observed_time"] {
            let path = ColumnPath::from(column);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
        match self.trace_ndv {
            Some(ndv) => bloom(builder, "trace_id", ndv, fpp),
            None => builder,
        }
    }

    fn sorted_by(&self) -> &'static [&'static str] {
        &["trace_id", "time"]
    }
}

fn bloom(
    builder: parquet::file::properties::WriterPropertiesBuilder,
    column: &str,
    ndv: u64,
    fpp: f64,
) -> parquet::file::properties::WriterPropertiesBuilder {
    let path = ColumnPath::from(column);
    builder
        .set_column_bloom_filter_enabled(path.clone(), true)
        .set_column_bloom_filter_fpp(path.clone(), fpp)
        .set_column_bloom_filter_max_ndv(path, ndv.max(1))
}

/// Whether zstd pays for a leaf column (its path's parts).
///
/// Reading a compressed column chunk costs more than its pages: parquet 60
/// creates a zstd compression and decompression context per column chunk
/// read (~25 µs), and a trace lookup reads one chunk of every leaf. Leaves
/// zstd cannot shrink are stored plain: random ids, times in random order
/// and durations, small enums and counters (dictionary or RLE runs
/// already), and the numeric fields of lists that are nearly always empty
/// (events, links, original and scope attributes). Strings, dictionary
/// pages and the lists on every row (generic and resource attributes,
/// whose repetition levels zstd shrinks tenfold) stay zstd. A row's
/// `resource_id` is a dictionary index run already.
fn worth_compressing(parts: &[String]) -> bool {
    let names: Vec<&str> = parts.iter().map(String::as_str).collect();
    match names.as_slice() {
        [
            "span_id"
            | "parent_span_id"
            | "end_time"
            | "duration_ns"
            | "flags"
            | "kind"
            | "status_code"
            | "severity_number"
            | "dropped_attributes_count"
            | "dropped_events_count"
            | "dropped_links_count"
            | "resource_id"
            | "resource_dropped_attributes_count"
            | "scope_dropped_attributes_count",
        ] => false,
        [
            "events"
            | "links"
            | "original_attributes"
            | "resource_original_attributes"
            | "scope_attributes",
            ..,
            leaf,
        ] => !matches!(
            *leaf,
            "int" | "double" | "bool" | "time" | "dropped_attributes_count" | "flags" | "span_id"
        ),
        _ => true,
    }
}

/// Top-level columns written without statistics (see [`properties`]).
const NO_STATISTICS: [&str; 17] = [
    "span_id",
    "parent_span_id",
    "trace_state",
    "name",
    "status_message",
    "client_address",
    "enduser_id",
    "session_id",
    "url_path",
    "url_query",
    "user_agent_original",
    "resource_schema_url",
    "scope_name",
    "scope_version",
    "scope_schema_url",
    "severity_text",
    "event_name",
];

fn properties(
    options: &SegmentWriteOptions,
    key_values: Vec<ParquetKeyValue>,
    schema: &SchemaRef,
    tuning: impl Tuning,
    encryption: Option<Arc<parquet::encryption::encrypt::FileEncryptionProperties>>,
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let sorting = tuning
        .sorted_by()
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .map(|index| SortingColumn {
            // These are top-level primitive columns before any nested one,
            // so the field position is the leaf column position.
            column_idx: index as i32,
            descending: false,
            nulls_first: false,
        })
        .collect();
    // String min/max costs a comparison per value. Rows are sorted by trace
    // id, so a row group or page holds every common value of the other
    // columns: their min/max prune nothing. Statistics are kept on the
    // numbers and ids, and on the short strings of few values
    // (`service_name`, method, route, ...); the leaves of nested columns
    // (attribute lists, events, links) and long or high-cardinality strings
    // go without (bloom filters serve equality on `client_address`,
    // `enduser_id` and `session_id`).
    let leaves = ArrowSchemaConverter::new().convert(schema)?;
    let plain: Vec<ColumnPath> = leaves
        .columns()
        .iter()
        .filter(|c| !worth_compressing(c.path().parts()))
        .map(|c| c.path().clone())
        .collect();
    let unindexed: Vec<ColumnPath> = leaves
        .columns()
        .iter()
        .filter(|c| {
            let parts = c.path().parts();
            parts.len() > 1
                || parts
                    .first()
                    .is_some_and(|name| NO_STATISTICS.contains(&name.as_str()))
        })
        .map(|c| c.path().clone())
        .collect();
    let mut builder = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(options.zstd_level)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_size_limit(64 * 1024)
        // Pages of at most 8192 rows: a point lookup decodes one page per
        // column; smaller pages cost header and index bytes.
        .set_data_page_row_count_limit(8192)
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_key_value_metadata(Some(key_values))
        .set_sorting_columns(Some(sorting));
    for path in unindexed {
        builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    for path in plain {
        builder = builder.set_column_compression(path, Compression::UNCOMPRESSED);
    }
    if let Some(encryption) = encryption {
        builder = builder.with_file_encryption_properties(encryption);
    }
    Ok(tuning.apply(builder, options.bloom_fpp).build())
}

/// Rows per Arrow batch handed to the Parquet writer: a row group is built
/// and encoded in slices of this many rows (a page's worth, see
/// [`properties`]). Built a row group at a time, the first group's build
/// and the last group's encoding each ran with the other core idle (a
/// quarter of the work of a 4-group file); slices shrink that to a slice,
/// and only two slices (a few MB) wait in memory instead of two row groups.
const SLICE_ROWS: usize = 8192;

/// Part of a row group, built and encoded as one Arrow batch.
struct Slice {
    /// Sorted row positions.
    rows: Range<usize>,
    /// The last slice of its row group: the row group is flushed after it.
    ends_row_group: bool,
}

/// Writes `slices` to `path` (a row group ends after each slice marked so),
/// then fsyncs it. A second thread builds each slice's batch (only the next
/// one waits in memory) while this one encodes the previous.
fn write_file(
    path: &Path,
    schema: &SchemaRef,
    properties: WriterProperties,
    slices: &[Slice],
    batch: impl Fn(Range<usize>) -> Result<RecordBatch, ArrowError> + Sync,
) -> Result<Digest32> {
    let segment_error = |reason: String| StoreError::Segment {
        path: path.to_owned(),
        reason,
    };
    let row_groups = slices.iter().filter(|s| s.ends_row_group).count();
    let file = File::create(path).map_err(|e| StoreError::io("create", path, e))?;
    let out = HashingWriter {
        file,
        hasher: Sha256::new(),
        bytes: 0,
        path: path.to_owned(),
    };
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))
        .map_err(|e| segment_error(e.to_string()))?;
    let mut empty = Vec::with_capacity(row_groups);
    std::thread::scope(|scope| -> Result<()> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let batch = &batch;
        scope.spawn(move || {
            for slice in slices {
                // The encoder hung up: it failed, stop building.
                if sender.send(batch(slice.rows.clone())).is_err() {
                    break;
                }
            }
        });
        // The empty leaves of the row group being written: those empty in
        // every slice so far.
        let mut group_empty: Option<Vec<usize>> = None;
        for (built, slice) in receiver.iter().zip(slices) {
            let built = built.map_err(|e| segment_error(e.to_string()))?;
            let slice_empty = empty_leaves(&built);
            group_empty = Some(match group_empty.take() {
                None => slice_empty,
                Some(mut leaves) => {
                    leaves.retain(|leaf| slice_empty.binary_search(leaf).is_ok());
                    leaves
                }
            });
            writer
                .write(&built)
                .map_err(|e| segment_error(e.to_string()))?;
            if slice.ends_row_group {
                writer.flush().map_err(|e| segment_error(e.to_string()))?;
                empty.push(group_empty.take().unwrap_or_default());
            }
        }
        Ok(())
    })?;
    if writer.flushed_row_groups().len() != row_groups || empty.len() != row_groups {
        return Err(segment_error(format!(
            "wrote {} of {row_groups} row groups",
            writer.flushed_row_groups().len()
        )));
    }
    writer.append_key_value_metadata(ParquetKeyValue::new(
        metadata_keys::EMPTY_LEAVES.to_string(),
        empty
            .iter()
            .map(|leaves| {
                leaves
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join(";"),
    ));
    let out = writer
        .into_inner()
        .map_err(|e| segment_error(e.to_string()))?;
    out.file
        .sync_all()
        .map_err(|e| StoreError::io("fsync", path, e))?;
    Ok(Digest32 {
        bytes: out.bytes,
        sha256: out.hasher.finalize().into(),
    })
}

/// The leaf columns (in Parquet order: depth first) of `batch` that hold no
/// value: lists empty on every row, fields null on every entry. Readers
/// skip them (see `metadata_keys::EMPTY_LEAVES`).
fn empty_leaves(batch: &RecordBatch) -> Vec<usize> {
    fn visit(array: &dyn Array, next: &mut usize, out: &mut Vec<usize>) {
        if let Some(list) = array.as_any().downcast_ref::<ListArray>() {
            visit(list.values().as_ref(), next, out);
        } else if let Some(fields) = array.as_any().downcast_ref::<StructArray>() {
            for column in fields.columns() {
                visit(column.as_ref(), next, out);
            }
        } else {
            if array.null_count() == array.len() {
                out.push(*next);
            }
            *next += 1;
        }
    }
    let (mut next, mut out) = (0, Vec::new());
    for column in batch.columns() {
        visit(column.as_ref(), &mut next, &mut out);
    }
    out
}

/// Writes to the file and hashes what it writes, so the hash costs no
/// second read of the file.
struct HashingWriter {
    file: File,
    hasher: Sha256,
    bytes: u64,
    path: PathBuf,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("failed to write `{}`: {e}", self.path.display()),
            )
        })?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("fsync directory", dir, e))
    }
    // Windows cannot open a directory as a file; renames there are durable
    // once the file itself is.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_groups_cut_by_rows_and_by_bytes() {
        let rows = vec![1usize; 10];
        assert_eq!(row_groups(&rows, 4, |_| 1), vec![0..4, 4..8, 8..10]);
        assert_eq!(row_groups(&rows, 100, |_| 1), vec![0..10]);
        let big = vec![MAX_ROW_GROUP_BYTES / 2 + 1; 3];
        assert_eq!(row_groups(&big, 100, |b| *b), vec![0..1, 1..2, 2..3]);
        // A row larger than the budget still gets a row group of its own.
        let huge = vec![MAX_ROW_GROUP_BYTES * 2; 2];
        assert_eq!(row_groups(&huge, 100, |b| *b), vec![0..1, 1..2]);
        assert!(row_groups::<usize>(&[], 4, |_| 1).is_empty());
    }

    #[test]
    fn dedicated_keys_match_exactly_the_dedicated_attribute_keys() {
        let keys = DedicatedKeys::new();
        for column in DedicatedColumn::ALL {
            let key = column.attribute_key();
            assert_eq!(keys.column(key), Some(column), "{key}");
            // Every byte matters: change each one in turn.
            for i in 0..key.len() {
                let mut near: Vec<u8> = key.as_bytes().to_vec();
                near[i] = if near[i] == b'x' { b'y' } else { b'x' };
                let near = String::from_utf8(near).unwrap();
                assert_eq!(keys.column(&near), None, "{near}");
            }
            assert_eq!(keys.column(&format!("{key}.")), None);
            assert_eq!(keys.column(&key[..key.len() - 1]), None);
            assert_eq!(keys.column(&format!("x{key}")), None);
        }
        for key in [
            "",
            "url",
            "a.very.long.attribute.key.past.32.bytes",
            "http.response.status_codes",
        ] {
            assert_eq!(
                keys.column(key),
                DedicatedColumn::from_attribute_key(key),
                "{key}"
            );
        }
    }

    #[test]
    fn row_groups_are_cut_into_slices() {
        let sizes = vec![1usize; 2 * SLICE_ROWS + 10];
        let prepared = Prepared::<u8, ()> {
            rows: Vec::new(),
            keys: Vec::new(),
            pair_of: Vec::new(),
            pairs: Vec::new(),
            groups: row_groups(&sizes, SLICE_ROWS + 5, |_| 1),
        };
        let slices: Vec<(Range<usize>, bool)> = prepared
            .slices()
            .into_iter()
            .map(|s| (s.rows, s.ends_row_group))
            .collect();
        let (a, b) = (SLICE_ROWS, SLICE_ROWS + 5);
        assert_eq!(
            slices,
            vec![
                (0..a, false),
                (a..b, true),
                (b..b + a, false),
                (b + a..2 * SLICE_ROWS + 10, true)
            ]
        );
    }

    /// A row group of several slices records as empty only the leaves
    /// empty in all of them: the reader skips those, so a leaf with a value
    /// in a later slice only must not be among them.
    #[test]
    fn a_leaf_with_values_in_a_later_slice_only_is_read_back() {
        let resource = Arc::new(Resource::default());
        let scope = Arc::new(Scope::default());
        let rows = SLICE_ROWS + 100;
        let records: Vec<SpanRecord> = (0..rows)
            .map(|i| {
                let mut trace = [0u8; 16];
                trace[12..].copy_from_slice(&(i as u32).to_be_bytes());
                let mut span = Span::new(
                    tracewarden_model::TraceId::from_bytes(trace),
                    tracewarden_model::SpanId::from_bytes([1; 8]),
                    "GET",
                );
                if i == rows - 1 {
                    span.events.push(Event {
                        time_unix_nano: 5,
                        name: "exception".into(),
                        attributes: vec![KeyValue::new("exception.type", "E")],
                        dropped_attributes_count: 0,
                    });
                    span.attributes.push(KeyValue::new("late", 1i64));
                }
                SpanRecord {
                    resource: Arc::clone(&resource),
                    scope: Arc::clone(&scope),
                    span: span.into(),
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let refs: Vec<&SpanRecord> = records.iter().collect();
        write_segment(dir.path(), 1, &refs, &[], &SegmentWriteOptions::default()).unwrap();
        let segment = crate::Segment::open(dir.path(), 1).unwrap();
        let last = &records[rows - 1].span;
        let (spans, _) = segment.trace(last.trace_id).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].span.events, last.events);
        assert_eq!(spans[0].span.attributes, last.attributes);
        let (spans, _) = segment.trace(records[0].span.trace_id).unwrap();
        assert_eq!(spans.len(), 1);
        assert!(spans[0].span.events.is_empty());
    }

    #[test]
    fn sizes_taken_at_apply_cut_the_row_groups() {
        let resource = Arc::new(Resource::default());
        let scope = Arc::new(Scope::default());
        let records: Vec<SpanRecord> = (0..6u8)
            .map(|i| {
                let span = Span::new(
                    tracewarden_model::TraceId::from_bytes([i; 16]),
                    tracewarden_model::SpanId::from_bytes([1; 8]),
                    "GET",
                );
                SpanRecord::new(Arc::clone(&resource), Arc::clone(&scope), span)
            })
            .collect();
        let refs: Vec<&SpanRecord> = records.iter().collect();
        let row_groups = |sizes: Option<&[u32]>| {
            let dir = tempfile::tempdir().unwrap();
            let options = SegmentWriteOptions::default();
            match sizes {
                Some(row_bytes) => {
                    let times = refs.iter().map(|r| span_time_range(&r.span)).reduce(widen);
                    let facts = SpanFacts { row_bytes, times };
                    write_segment_sized(dir.path(), 1, &refs, facts, &[], &options, None)
                }
                None => write_segment(dir.path(), 1, &refs, &[], &options),
            }
            .unwrap();
            let file = std::fs::File::open(dir.path().join(spans_file_name(1))).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            parquet::file::reader::FileReader::metadata(&reader).num_row_groups()
        };
        // Small spans share one row group; the given sizes (each over half
        // the byte budget) are what the writer goes by.
        assert_eq!(row_groups(None), 1);
        let large = u32::try_from(MAX_ROW_GROUP_BYTES / 2 + 1).unwrap();
        assert_eq!(row_groups(Some(&[large; 6])), 6);
        let own: Vec<u32> = records.iter().map(|r| span_row_bytes(&r.span)).collect();
        assert_eq!(row_groups(Some(&own)), 1);
    }

    #[test]
    fn dedicated_attributes_are_lifted_only_with_their_type_and_once() {
        let mut span = Span::new(
            tracewarden_model::TraceId::from_bytes([1; 16]),
            tracewarden_model::SpanId::from_bytes([2; 8]),
            "GET",
        );
        span.attributes = vec![
            KeyValue::new("client.address", "203.0.113.7"),
            KeyValue::new("http.response.status_code", "200"),
            KeyValue::new("client.address", "198.51.100.1"),
            KeyValue::new("url.full", "https://x/"),
            KeyValue::new("http.response.status_code", AnyValue::Int(404)),
        ];
        let mut rest = Vec::new();
        let lifted = lift_dedicated(&DedicatedKeys::new(), &span, &mut rest);
        assert_eq!(lifted[0], Some(&AnyValue::from("203.0.113.7")));
        assert_eq!(lifted[7], Some(&AnyValue::Int(404)));
        let rest: Vec<&str> = rest.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            rest,
            ["http.response.status_code", "client.address", "url.full"]
        );
    }
}
