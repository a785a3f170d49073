//! An open segment: its files' footers in memory, and the pruned reads.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::{
    Array, BooleanArray, FixedSizeBinaryArray, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray, TimestampNanosecondArray,
};
use arrow_schema::{ArrowError, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    RowFilter, RowSelection, RowSelectionPolicy,
};
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::reader::Length;
use tracewarden_model::TraceId;

use super::file::SegmentFile;
use super::prune::{Condition, intersect, page_rows, row_group_bounds, selection};
use super::records::{LogColumns, Sharing, SpanColumns};
use super::schema::{
    ELEMENT, LOGS_SCHEMA, LOGS_SCHEMA_V1, RESOURCE_ID, RESOURCES_SCHEMA, SPANS_SCHEMA,
    SPANS_SCHEMA_V1, same_fields,
};
use super::{
    DedicatedColumn, FORMAT_VERSION, OLDEST_FORMAT_VERSION, SpanFilter, SpanProjection,
    logs_file_name, metadata_keys, resources_file_name, spans_file_name,
};
use crate::encryption::EncryptionKey;
use crate::encryption::segment::decryption_properties;
use crate::error::{Result, StoreError};
use crate::hot::{LogEntry, SpanRecord};

/// Rows per Arrow batch decoded.
const BATCH_ROWS: usize = 8192;

/// An open segment: its files' Parquet metadata (footer and page index)
/// in memory, bloom filters cached as they are first used.
///
/// `Send + Sync`: reads from many threads share the open files (positional
/// reads, no shared cursor).
#[derive(Debug)]
pub struct Segment {
    id: u64,
    spans: SegmentFileReader,
    logs: SegmentFileReader,
    /// The resources file; `None` in format version 1, whose rows hold
    /// their resources.
    resources: Option<SegmentFileReader>,
}

impl Segment {
    /// Opens segment `id` in `dir`, reading and checking only the footers
    /// and page indexes. A damaged file gives [`StoreError::Corrupt`] naming
    /// it; a file of a newer format, [`StoreError::UnsupportedVersion`].
    ///
    /// An encrypted segment fails with [`StoreError::KeyRequired`]; use
    /// [`Segment::open_with_key`].
    pub fn open(dir: &Path, id: u64) -> Result<Segment> {
        Segment::open_with_key(dir, id, None)
    }

    /// [`Segment::open`] for a segment that may be encrypted: with `key`,
    /// encrypted files are decrypted (plain ones read as they are). A file
    /// encrypted with another key gives [`StoreError::WrongKey`], one with
    /// no key given [`StoreError::KeyRequired`], one whose encrypted footer
    /// fails authentication [`StoreError::Decrypt`].
    pub fn open_with_key(dir: &Path, id: u64, key: Option<Arc<EncryptionKey>>) -> Result<Segment> {
        let spans_path = dir.join(spans_file_name(id));
        let spans = SegmentFileReader::open(&spans_path, id, Kind::Spans, key.clone())?;
        let logs_path = dir.join(logs_file_name(id));
        let logs = SegmentFileReader::open(&logs_path, id, Kind::Logs, key.clone())?;
        if logs.version != spans.version {
            return Err(StoreError::Corrupt {
                path: logs_path,
                offset: 0,
                reason: format!(
                    "has format version {}, its spans file {}",
                    logs.version, spans.version
                ),
            });
        }
        let resources = (spans.version >= 2)
            .then(|| {
                let path = dir.join(resources_file_name(id));
                SegmentFileReader::open(&path, id, Kind::Resources, key)
            })
            .transpose()?;
        Ok(Segment {
            id,
            spans,
            logs,
            resources,
        })
    }

    /// Whether the segment's files are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.files().all(|file| file.encrypted)
    }

    /// The segment's format version.
    pub fn format_version(&self) -> u16 {
        self.spans.version
    }

    fn files(&self) -> impl Iterator<Item = &SegmentFileReader> {
        [&self.spans, &self.logs].into_iter().chain(&self.resources)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Spans in the segment.
    pub fn span_count(&self) -> u64 {
        self.spans.rows()
    }

    /// Log records in the segment.
    pub fn log_count(&self) -> u64 {
        self.logs.rows()
    }

    /// The segment's `(min, max)` time, as [`super::WrittenSegment`] gave it.
    pub fn time_range_unix_nano(&self) -> (u64, u64) {
        (self.spans.min_time, self.spans.max_time)
    }

    /// Bytes read from the segment's files since it was opened (footers
    /// included): what the pruning saves shows here.
    pub fn bytes_read(&self) -> u64 {
        self.files().map(|f| f.file.bytes_read()).sum()
    }

    /// Bytes of the segment's files.
    pub fn bytes(&self) -> u64 {
        self.files().map(|f| f.file.len()).sum()
    }

    /// The spans and log records of a trace, in file order: spans by start
    /// time (then span id), logs by time. Reads only the row groups whose
    /// statistics and bloom filter admit the id, and in them only the pages
    /// whose page statistics do.
    pub fn trace(&self, trace_id: TraceId) -> Result<(Vec<SpanRecord>, Vec<LogEntry>)> {
        let id = trace_id.to_bytes();
        let resources = self.resources.as_ref();
        let mut spans = Vec::new();
        let plan = self.spans.trace_plan(&id)?;
        self.spans.read_spans(plan, resources, &mut spans)?;
        let mut logs = Vec::new();
        let plan = self.logs.trace_plan(&id)?;
        self.logs.read_logs(plan, resources, &mut logs)?;
        Ok((spans, logs))
    }

    /// The log records of every trace in `traces`, in file order: one read
    /// of the logs file for all of them (row groups and pages pruned by the
    /// ids' range, rows filtered by the set before decoding), where
    /// [`Segment::trace`] per trace would read a page of every column each.
    pub fn logs_of_traces(&self, traces: &Arc<HashSet<TraceId>>) -> Result<Vec<LogEntry>> {
        let mut logs = Vec::new();
        let Some(plan) = self.logs.traces_plan(traces)? else {
            return Ok(logs);
        };
        self.logs
            .read_logs(plan, self.resources.as_ref(), &mut logs)?;
        Ok(logs)
    }

    /// The spans that match `filter`, in file order (trace id, start time),
    /// at most `filter.limit`. Row groups and pages are pruned by start
    /// time, service name and dedicated-column statistics, and by the bloom
    /// filters of `client_address`, `enduser_id` and `session_id`; then the
    /// filter is applied exactly.
    pub fn scan_spans(&self, filter: &SpanFilter) -> Result<Vec<SpanRecord>> {
        let mut spans = Vec::new();
        // The visitor never breaks.
        let _ = self.for_each_span(filter, &mut |span| {
            spans.push(span.into_owned());
            ControlFlow::Continue(())
        })?;
        Ok(spans)
    }

    /// Calls `visit` with each span that matches `filter`, in file order
    /// (trace id, start time), pruning as [`Segment::scan_spans`] does,
    /// without collecting them: a query keeps only what it needs (spans come
    /// owned: keeping one costs no copy). Stops reading when `visit` breaks.
    /// `filter.limit` is honoured.
    pub fn for_each_span(
        &self,
        filter: &SpanFilter,
        visit: &mut dyn FnMut(Cow<'_, SpanRecord>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        self.for_each_span_projected(filter, SpanProjection::ALL, visit)
    }

    /// [`Segment::for_each_span`] reading only the columns `projection`
    /// asks for: spans come with the parts left out empty.
    pub fn for_each_span_projected(
        &self,
        filter: &SpanFilter,
        projection: SpanProjection,
        visit: &mut dyn FnMut(Cow<'_, SpanRecord>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        let Some(mut plan) = self.spans.scan_plan(filter)? else {
            return Ok(ControlFlow::Continue(()));
        };
        plan.skip = projection.skipped_columns();
        let mut flow = ControlFlow::Continue(());
        let resources = self.resources.as_ref();
        self.spans
            .read(plan, filter.limit, resources, |batch, sharing| {
                let columns = SpanColumns::new(batch)?;
                for row in 0..columns.len() {
                    if visit(Cow::Owned(columns.record(row, sharing)?)).is_break() {
                        flow = ControlFlow::Break(());
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
        Ok(flow)
    }

    /// Whether the spans file may hold spans of the trace (row-group
    /// statistics, bloom filters and page indexes say it may): `false` is
    /// certain, `true` is not.
    pub fn may_contain_trace(&self, trace_id: TraceId) -> Result<bool> {
        // Called for every candidate of a bulk search against every other
        // segment: row-group statistics and bloom filters only, no page
        // index (pages of a sorted column tile the id space, so they could
        // not rule the id out anyway).
        let id = trace_id.to_bytes();
        let condition = Condition::BytesEqual(id.to_vec());
        let file = &self.spans;
        for row_group in 0..file.parquet().num_row_groups() {
            if !condition.may_match(&row_group_bounds(file.parquet(), row_group, file.trace_id)) {
                continue;
            }
            if file.bloom_may_contain(row_group, file.trace_id, &id)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every span and log record, in file order (for compaction and tests).
    pub fn read_all(&self) -> Result<(Vec<SpanRecord>, Vec<LogEntry>)> {
        let resources = self.resources.as_ref();
        let mut spans = Vec::with_capacity(usize::try_from(self.span_count()).unwrap_or(0));
        self.spans
            .read_spans(self.spans.all(), resources, &mut spans)?;
        let mut logs = Vec::with_capacity(usize::try_from(self.log_count()).unwrap_or(0));
        self.logs.read_logs(self.logs.all(), resources, &mut logs)?;
        Ok((spans, logs))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Spans,
    Logs,
    Resources,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Spans => "spans",
            Kind::Logs => "logs",
            Kind::Resources => "resources",
        }
    }

    /// The file's schema in format `version`; `None` when the format had
    /// no such file.
    fn schema(self, version: u16) -> Option<&'static SchemaRef> {
        match (self, version) {
            (Kind::Spans, 1) => Some(&SPANS_SCHEMA_V1),
            (Kind::Logs, 1) => Some(&LOGS_SCHEMA_V1),
            (Kind::Spans, _) => Some(&SPANS_SCHEMA),
            (Kind::Logs, _) => Some(&LOGS_SCHEMA),
            (Kind::Resources, 1) => None,
            (Kind::Resources, _) => Some(&RESOURCES_SCHEMA),
        }
    }
}

/// What to read of a file.
struct Plan {
    /// In file order.
    row_groups: Vec<usize>,
    selection: Option<RowSelection>,
    filter: Option<RowFilter>,
    /// Top-level span columns left unread (see [`SpanProjection`]).
    skip: Vec<&'static str>,
}

/// One open file of a segment.
#[derive(Debug)]
struct SegmentFileReader {
    file: SegmentFile,
    metadata: ArrowReaderMetadata,
    /// The format version of the file.
    version: u16,
    rows: u64,
    min_time: u64,
    max_time: u64,
    /// Leaf column positions.
    trace_id: usize,
    /// Spans only: `start_time`, `service_name`, and the dedicated columns in
    /// [`DedicatedColumn::ALL`] order.
    start_time: usize,
    service_name: usize,
    dedicated: Vec<usize>,
    /// Leaf columns with bloom filters, and their filters as read so far:
    /// `blooms[row_group * bloom_columns.len() + k]`.
    bloom_columns: Vec<usize>,
    blooms: Vec<OnceLock<Option<Sbbf>>>,
    /// Per row group, the leaf columns holding no value (sorted): reads
    /// leave them out.
    empty: Vec<Vec<usize>>,
    /// Parquet modular encryption: any read failure is an authentication
    /// failure (the data is authenticated before it is decoded).
    encrypted: bool,
}

impl SegmentFileReader {
    fn open(
        path: &Path,
        id: u64,
        kind: Kind,
        key: Option<Arc<EncryptionKey>>,
    ) -> Result<SegmentFileReader> {
        let file = SegmentFile::open(path).map_err(|e| StoreError::io("open", path, e))?;
        let footer = file.len().saturating_sub(8);
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.to_owned(),
            offset: footer,
            reason,
        };
        // Always with decryption properties: the key check sees the key id
        // of an encrypted file even when no key is configured, for the error.
        let (decryption, key_check) = decryption_properties(key, id, kind.name())
            .map_err(|e| corrupt(format!("cannot set up decryption: {e}")))?;
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .with_file_decryption_properties(decryption);
        let metadata = guard(|| ArrowReaderMetadata::load(&file, options))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| {
                if let Some(error) = key_check.key_error(path) {
                    error
                } else if key_check.encrypted() {
                    StoreError::Decrypt {
                        path: path.to_owned(),
                        offset: footer,
                        reason: format!("the encrypted footer fails authentication: {e}"),
                    }
                } else {
                    corrupt(format!("unreadable Parquet footer: {e}"))
                }
            })?;
        let encrypted = key_check.encrypted();
        let parquet = metadata.metadata().clone();

        let key_values = parquet.file_metadata().key_value_metadata();
        let value = |key: &str| {
            key_values.and_then(|kvs| {
                kvs.iter()
                    .find(|kv| kv.key == key)
                    .and_then(|kv| kv.value.as_deref())
            })
        };
        let version = value(metadata_keys::VERSION)
            .ok_or_else(|| corrupt("not a tracewarden segment file (no format version)".into()))?;
        let version: u16 = version
            .parse()
            .map_err(|_| corrupt(format!("format version `{version}` is not a number")))?;
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_owned(),
                what: "segment file",
                version,
                supported: FORMAT_VERSION,
            });
        }
        let number = |key: &str| -> Result<u64> {
            let text = value(key).ok_or_else(|| corrupt(format!("no `{key}` in the metadata")))?;
            text.parse()
                .map_err(|_| corrupt(format!("`{key}` is `{text}`, not a number")))
        };
        let found_id = number(metadata_keys::SEGMENT_ID)?;
        if found_id != id {
            return Err(corrupt(format!("holds segment {found_id}, not {id}")));
        }
        if value(metadata_keys::KIND) != Some(kind.name()) {
            return Err(corrupt(format!("is not a {} file", kind.name())));
        }
        let rows = number(metadata_keys::ROWS)?;
        if i64::try_from(rows).ok() != Some(parquet.file_metadata().num_rows()) {
            return Err(corrupt(format!(
                "records {rows} rows in its metadata, {} in its footer",
                parquet.file_metadata().num_rows()
            )));
        }
        let schema = kind.schema(version).ok_or_else(|| {
            corrupt(format!(
                "is a {} file of format version {version}, which has none",
                kind.name()
            ))
        })?;
        if !same_fields(metadata.schema(), schema) {
            return Err(corrupt(format!(
                "does not have the schema of a {} file of format version {version}",
                kind.name()
            )));
        }

        let leaf = |name: &str| -> Result<usize> {
            parquet
                .file_metadata()
                .schema_descr()
                .columns()
                .iter()
                .position(|c| c.path().parts() == [name])
                .ok_or_else(|| corrupt(format!("has no column `{name}`")))
        };
        // The resources file is read by `resource_id`, in row order.
        let trace_id = match kind {
            Kind::Resources => leaf(RESOURCE_ID)?,
            Kind::Spans | Kind::Logs => leaf("trace_id")?,
        };
        let (start_time, service_name, dedicated, mut bloom_columns) = match kind {
            Kind::Spans => {
                let dedicated = DedicatedColumn::ALL
                    .into_iter()
                    .map(|c| leaf(c.column_name()))
                    .collect::<Result<Vec<_>>>()?;
                let blooms = DedicatedColumn::ALL
                    .into_iter()
                    .filter(|c| c.has_bloom_filter())
                    .filter_map(|c| dedicated.get(c.index()).copied())
                    .collect();
                (
                    leaf("start_time")?,
                    leaf("service_name")?,
                    dedicated,
                    blooms,
                )
            }
            Kind::Logs => (leaf("time")?, leaf("service_name")?, Vec::new(), Vec::new()),
            // Never pruned by time or service: only read by row number.
            Kind::Resources => (trace_id, trace_id, Vec::new(), Vec::new()),
        };
        if kind != Kind::Resources {
            bloom_columns.insert(0, trace_id);
        }
        let blooms = (0..parquet.num_row_groups() * bloom_columns.len())
            .map(|_| OnceLock::new())
            .collect();
        let leaves = parquet.file_metadata().schema_descr().num_columns();
        let empty = parse_empty_leaves(
            value(metadata_keys::EMPTY_LEAVES),
            parquet.num_row_groups(),
            leaves,
        )
        .ok_or_else(|| {
            corrupt(format!(
                "`{}` does not describe its row groups",
                metadata_keys::EMPTY_LEAVES
            ))
        })?;
        Ok(SegmentFileReader {
            version,
            rows,
            min_time: number(metadata_keys::MIN_TIME)?,
            max_time: number(metadata_keys::MAX_TIME)?,
            file,
            metadata,
            trace_id,
            start_time,
            service_name,
            dedicated,
            bloom_columns,
            blooms,
            empty,
            encrypted,
        })
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn parquet(&self) -> &ParquetMetaData {
        self.metadata.metadata()
    }

    fn corrupt(&self, row_group: Option<usize>, reason: String) -> StoreError {
        let offset = row_group
            .and_then(|rg| self.parquet().row_groups().get(rg))
            .and_then(|rg| rg.columns().first())
            .map(|chunk| chunk.byte_range().0)
            .unwrap_or(0);
        if self.encrypted {
            return StoreError::Decrypt {
                path: self.file.path().to_owned(),
                offset,
                reason: format!("encrypted data fails authentication or decoding: {reason}"),
            };
        }
        StoreError::Corrupt {
            path: self.file.path().to_owned(),
            offset,
            reason,
        }
    }

    /// Whether the bloom filter of leaf `column` in `row_group` may hold
    /// `value` (true when the column has none).
    fn bloom_may_contain(&self, row_group: usize, column: usize, value: &[u8]) -> Result<bool> {
        let Some(k) = self.bloom_columns.iter().position(|c| *c == column) else {
            return Ok(true);
        };
        let Some(cell) = self.blooms.get(row_group * self.bloom_columns.len() + k) else {
            return Ok(true);
        };
        if cell.get().is_none() {
            let chunk = self
                .parquet()
                .row_groups()
                .get(row_group)
                .and_then(|rg| rg.columns().get(column));
            let Some(chunk) = chunk else {
                return Ok(true);
            };
            let filter = guard(|| Sbbf::read_from_column_chunk(chunk, &self.file))
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|e| {
                    self.corrupt(Some(row_group), format!("unreadable bloom filter: {e}"))
                })?;
            // Another thread may have read it meanwhile: either copy is right.
            let _ = cell.set(filter);
        }
        let filter = cell.get().and_then(Option::as_ref);
        Ok(filter.is_none_or(|f| f.check(value)))
    }

    fn is_empty(&self, row_group: usize, leaf: usize) -> bool {
        self.empty
            .get(row_group)
            .is_some_and(|leaves| leaves.binary_search(&leaf).is_ok())
    }

    /// The leaves to read from `row_groups`: all but those empty in every one
    /// and those under the top-level columns `skip`.
    fn projection(&self, row_groups: &[usize], skip: &[&str]) -> ProjectionMask {
        let descr = self.parquet().file_metadata().schema_descr();
        let keep = (0..descr.num_columns())
            .filter(|leaf| !row_groups.iter().all(|rg| self.is_empty(*rg, *leaf)))
            .filter(|leaf| {
                skip.is_empty()
                    || !descr
                        .column(*leaf)
                        .path()
                        .parts()
                        .first()
                        .is_some_and(|top| skip.contains(&top.as_str()))
            });
        ProjectionMask::leaves(descr, keep)
    }

    /// Everything.
    fn all(&self) -> Plan {
        Plan {
            row_groups: (0..self.parquet().num_row_groups()).collect(),
            selection: None,
            filter: None,
            skip: Vec::new(),
        }
    }

    /// The row groups and pages that may hold rows with `conditions`, each
    /// on a leaf column; `None` when no row group can.
    fn prune(
        &self,
        conditions: &[(usize, Condition)],
    ) -> Result<Option<(Vec<usize>, RowSelection)>> {
        let parquet = self.parquet();
        let mut groups = Vec::new();
        let mut selected = Vec::new();
        'row_groups: for row_group in 0..parquet.num_row_groups() {
            for (column, condition) in conditions {
                if !condition.may_match(&row_group_bounds(parquet, row_group, *column)) {
                    continue 'row_groups;
                }
                // No value at all: no row can equal one.
                if self.is_empty(row_group, *column) {
                    continue 'row_groups;
                }
                if let Condition::BytesEqual(value) = condition
                    && !self.bloom_may_contain(row_group, *column, value)?
                {
                    continue 'row_groups;
                }
            }
            let rows = parquet
                .row_groups()
                .get(row_group)
                .and_then(|rg| usize::try_from(rg.num_rows()).ok())
                .unwrap_or(0);
            // Every row, until a condition's pages narrow it.
            let mut ranges: Vec<std::ops::Range<usize>> = std::iter::once(0..rows).collect();
            for (column, condition) in conditions {
                if let Some(pages) = page_rows(parquet, row_group, *column, condition) {
                    ranges = intersect(&ranges, &pages);
                }
            }
            if ranges.iter().any(|r| !r.is_empty()) {
                groups.push(row_group);
                selected.push((rows, ranges));
            }
        }
        if groups.is_empty() {
            return Ok(None);
        }
        Ok(Some((groups, selection(&selected))))
    }

    fn trace_plan(&self, id: &[u8; 16]) -> Result<Plan> {
        let Some((row_groups, selection)) =
            self.prune(&[(self.trace_id, Condition::BytesEqual(id.to_vec()))])?
        else {
            return Ok(Plan {
                row_groups: Vec::new(),
                selection: None,
                filter: None,
                skip: Vec::new(),
            });
        };
        let id = *id;
        let mask = ProjectionMask::leaves(
            self.parquet().file_metadata().schema_descr(),
            [self.trace_id],
        );
        let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
            let ids = typed::<FixedSizeBinaryArray>(&batch, "trace_id")?;
            Ok((0..ids.len())
                .map(|i| Some(ids.is_valid(i) && ids.value(i) == id))
                .collect::<BooleanArray>())
        });
        Ok(Plan {
            row_groups,
            selection: Some(selection),
            filter: Some(RowFilter::new(vec![Box::new(predicate)])),
            skip: Vec::new(),
        })
    }

    /// The rows of any of `traces`; `None` when none can be here.
    fn traces_plan(&self, traces: &Arc<HashSet<TraceId>>) -> Result<Option<Plan>> {
        let (Some(low), Some(high)) = (traces.iter().min(), traces.iter().max()) else {
            return Ok(None);
        };
        let range = Condition::BytesRange(low.to_bytes().to_vec(), high.to_bytes().to_vec());
        let Some((row_groups, selection)) = self.prune(&[(self.trace_id, range)])? else {
            return Ok(None);
        };
        let traces = Arc::clone(traces);
        let mask = ProjectionMask::leaves(
            self.parquet().file_metadata().schema_descr(),
            [self.trace_id],
        );
        let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
            let ids = typed::<FixedSizeBinaryArray>(&batch, "trace_id")?;
            Ok((0..ids.len())
                .map(|i| {
                    Some(
                        ids.is_valid(i)
                            && <[u8; 16]>::try_from(ids.value(i))
                                .is_ok_and(|id| traces.contains(&TraceId::from_bytes(id))),
                    )
                })
                .collect::<BooleanArray>())
        });
        Ok(Some(Plan {
            row_groups,
            selection: Some(selection),
            filter: Some(RowFilter::new(vec![Box::new(predicate)])),
            skip: Vec::new(),
        }))
    }

    /// `None` when no span can match.
    fn scan_plan(&self, filter: &SpanFilter) -> Result<Option<Plan>> {
        let mut conditions = Vec::new();
        let mut exact = ExactFilter {
            start: filter.start_unix_nano.unwrap_or(0),
            end: filter.end_unix_nano,
            service_name: filter.service_name.clone(),
            strings: Vec::new(),
            ints: Vec::new(),
            trace_ids: None,
            attributes: Vec::new(),
        };
        if filter.start_unix_nano.is_some() || filter.end_unix_nano.is_some() {
            if filter.end_unix_nano.is_some_and(|end| end <= exact.start) {
                return Ok(None);
            }
            conditions.push((
                self.start_time,
                Condition::TimeIn {
                    start: exact.start,
                    end: filter.end_unix_nano,
                },
            ));
        }
        if let Some(service) = &filter.service_name {
            conditions.push((
                self.service_name,
                Condition::BytesEqual(service.as_bytes().to_vec()),
            ));
        }
        for (column, value) in &filter.equals {
            let Some(&leaf) = self.dedicated.get(column.index()) else {
                continue;
            };
            if column.is_integer() {
                let Ok(number) = value.trim().parse::<i64>() else {
                    return Ok(None);
                };
                conditions.push((leaf, Condition::IntEqual(number)));
                exact.ints.push((column.column_name(), number));
            } else {
                conditions.push((leaf, Condition::BytesEqual(value.as_bytes().to_vec())));
                exact.strings.push((column.column_name(), value.clone()));
            }
        }
        if let Some(traces) = &filter.trace_ids {
            let (Some(low), Some(high)) = (traces.iter().min(), traces.iter().max()) else {
                return Ok(None);
            };
            conditions.push((
                self.trace_id,
                Condition::BytesRange(low.to_bytes().to_vec(), high.to_bytes().to_vec()),
            ));
            exact.trace_ids = Some(Arc::clone(traces));
        }
        let mut attribute_leaves = Vec::new();
        for (key, value) in &filter.attribute_equals {
            match DedicatedColumn::ALL
                .into_iter()
                .find(|c| c.attribute_key() == key && !c.is_integer())
            {
                Some(column) => {
                    let Some(&leaf) = self.dedicated.get(column.index()) else {
                        continue;
                    };
                    conditions.push((leaf, Condition::BytesEqual(value.as_bytes().to_vec())));
                    exact.strings.push((column.column_name(), value.clone()));
                }
                None => exact.attributes.push((key.clone(), value.clone())),
            }
        }
        if !exact.attributes.is_empty() {
            attribute_leaves = self.attribute_key_and_str_leaves()?;
        }
        if conditions.is_empty() && attribute_leaves.is_empty() {
            return Ok(Some(self.all()));
        }
        let (row_groups, selection) = if conditions.is_empty() {
            ((0..self.parquet().num_row_groups()).collect(), None)
        } else {
            let Some((row_groups, selection)) = self.prune(&conditions)? else {
                return Ok(None);
            };
            (row_groups, Some(selection))
        };
        let mut leaves: Vec<usize> = conditions.iter().map(|(leaf, _)| *leaf).collect();
        leaves.extend(attribute_leaves);
        let mask = ProjectionMask::leaves(self.parquet().file_metadata().schema_descr(), leaves);
        let predicate =
            ArrowPredicateFn::new(mask, move |batch: RecordBatch| exact.evaluate(&batch));
        Ok(Some(Plan {
            row_groups,
            selection,
            filter: Some(RowFilter::new(vec![Box::new(predicate)])),
            skip: Vec::new(),
        }))
    }

    /// The leaf columns of the span attributes' keys and string values.
    fn attribute_key_and_str_leaves(&self) -> Result<Vec<usize>> {
        ["key", "str"]
            .into_iter()
            .map(|field| {
                self.parquet()
                    .file_metadata()
                    .schema_descr()
                    .columns()
                    .iter()
                    .position(|c| c.path().parts() == ["attributes", "list", ELEMENT, field])
                    .ok_or_else(|| StoreError::Corrupt {
                        path: self.file.path().to_owned(),
                        offset: 0,
                        reason: format!("has no column `attributes.{field}`"),
                    })
            })
            .collect()
    }

    /// Every planned row of a spans file, decoded whole, onto `spans`.
    fn read_spans(
        &self,
        plan: Plan,
        resources: Option<&SegmentFileReader>,
        spans: &mut Vec<SpanRecord>,
    ) -> Result<()> {
        self.read(plan, None, resources, |batch, sharing| {
            let columns = SpanColumns::new(batch)?;
            for row in 0..columns.len() {
                spans.push(columns.record(row, sharing)?);
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Every planned row of a logs file onto `logs`.
    fn read_logs(
        &self,
        plan: Plan,
        resources: Option<&SegmentFileReader>,
        logs: &mut Vec<LogEntry>,
    ) -> Result<()> {
        self.read(plan, None, resources, |batch, sharing| {
            let columns = LogColumns::new(batch)?;
            for row in 0..columns.len() {
                logs.push(columns.entry(row, sharing)?);
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Reads the pairs `ids` (sorted) of the resources file into `sharing`:
    /// row `i` holds `resource_id` `i`, so a row selection reads only their
    /// pages.
    fn read_resources(&self, ids: &[u32], sharing: &mut Sharing) -> Result<()> {
        let rows = usize::try_from(self.rows).unwrap_or(usize::MAX);
        if let Some(&last) = ids.last()
            && last as usize >= rows
        {
            return Err(self.corrupt(
                None,
                format!("has no resource_id {last}, which a row names ({rows} rows)"),
            ));
        }
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for &id in ids {
            let id = id as usize;
            match ranges.last_mut() {
                Some(run) if run.end == id => run.end += 1,
                _ => ranges.push(id..id + 1),
            }
        }
        let plan = Plan {
            selection: Some(RowSelection::from_consecutive_ranges(
                ranges.into_iter(),
                rows,
            )),
            ..self.all()
        };
        self.read(plan, None, None, |batch, _| {
            sharing.learn(batch)?;
            Ok(ControlFlow::Continue(()))
        })?;
        if let Some(id) = ids.iter().find(|id| !sharing.has(**id)) {
            return Err(self.corrupt(None, format!("row {id} does not hold resource_id {id}")));
        }
        Ok(())
    }

    /// Reads the planned rows, batch by batch, into `each`, after reading
    /// from `resources` (a version 2 spans or logs file's) the pairs each
    /// batch names. A panic of the Parquet
    /// decoder on damaged data becomes [`StoreError::Corrupt`].
    fn read(
        &self,
        plan: Plan,
        limit: Option<usize>,
        resources: Option<&SegmentFileReader>,
        mut each: impl FnMut(&RecordBatch, &mut Sharing) -> Result<ControlFlow<()>, String>,
    ) -> Result<()> {
        if plan.row_groups.is_empty() || limit == Some(0) {
            return Ok(());
        }
        let first_group = plan.row_groups.first().copied();
        let mut sharing = Sharing::default();
        // An error of the resources file, which names that file.
        let mut resources_error = None;
        let mut remaining = limit;
        let outcome = guard(|| -> Result<(), String> {
            let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                self.file.clone(),
                self.metadata.clone(),
            )
            .with_batch_size(BATCH_ROWS)
            .with_projection(self.projection(&plan.row_groups, &plan.skip))
            .with_row_groups(plan.row_groups)
            // Selectors skip whole pages unread; a mask would decode them.
            .with_row_selection_policy(RowSelectionPolicy::Selectors);
            if let Some(selection) = plan.selection {
                builder = builder.with_row_selection(selection);
            }
            if let Some(filter) = plan.filter {
                builder = builder.with_row_filter(filter);
            }
            if let Some(limit) = limit {
                builder = builder.with_limit(limit);
            }
            let reader = builder.build().map_err(|e| e.to_string())?;
            for batch in reader {
                let mut batch = batch.map_err(|e| e.to_string())?;
                if let Some(left) = remaining.as_mut() {
                    // The reader applies the limit too; this only guards it.
                    if *left == 0 {
                        break;
                    }
                    if batch.num_rows() > *left {
                        batch = batch.slice(0, *left);
                    }
                    *left -= batch.num_rows();
                }
                if let Some(resources) = resources {
                    let missing = sharing.missing(&batch)?;
                    if !missing.is_empty()
                        && let Err(error) = resources.read_resources(&missing, &mut sharing)
                    {
                        resources_error = Some(error);
                        return Err(String::new());
                    }
                }
                if each(&batch, &mut sharing)?.is_break() {
                    break;
                }
            }
            Ok(())
        });
        if let Some(error) = resources_error {
            return Err(error);
        }
        outcome
            .and_then(|r| r)
            .map_err(|reason| self.corrupt(first_group, reason))
    }
}

/// Parses [`metadata_keys::EMPTY_LEAVES`]: `None` when it does not describe
/// `row_groups` row groups of `leaves` leaves. A file without the key has
/// no leaf known empty.
fn parse_empty_leaves(
    text: Option<&str>,
    row_groups: usize,
    leaves: usize,
) -> Option<Vec<Vec<usize>>> {
    let Some(text) = text else {
        return Some(vec![Vec::new(); row_groups]);
    };
    if row_groups == 0 {
        return text.is_empty().then(Vec::new);
    }
    let groups: Vec<&str> = text.split(';').collect();
    if groups.len() != row_groups {
        return None;
    }
    groups
        .into_iter()
        .map(|group| {
            let mut list: Vec<usize> = group
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().ok().filter(|leaf| *leaf < leaves))
                .collect::<Option<_>>()?;
            list.sort_unstable();
            list.dedup();
            Some(list)
        })
        .collect()
}

/// The exact span filter, evaluated on the filter columns of a batch.
struct ExactFilter {
    start: u64,
    end: Option<u64>,
    service_name: Option<String>,
    strings: Vec<(&'static str, String)>,
    ints: Vec<(&'static str, i64)>,
    trace_ids: Option<Arc<std::collections::HashSet<TraceId>>>,
    /// Generic string attributes that must be present with these values.
    attributes: Vec<(String, String)>,
}

impl ExactFilter {
    fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        let mut keep = vec![true; batch.num_rows()];
        if self.start > 0 || self.end.is_some() {
            let times = typed::<TimestampNanosecondArray>(batch, "start_time")?;
            for (row, keep) in keep.iter_mut().enumerate() {
                // Stored bits read back as the u64 written.
                let time = times.value(row) as u64;
                *keep &= time >= self.start && self.end.is_none_or(|end| time < end);
            }
        }
        if let Some(service) = &self.service_name {
            strings_equal(&mut keep, typed(batch, "service_name")?, service);
        }
        for (name, value) in &self.strings {
            strings_equal(&mut keep, typed(batch, name)?, value);
        }
        for (name, value) in &self.ints {
            let column = typed::<Int64Array>(batch, name)?;
            for (row, keep) in keep.iter_mut().enumerate() {
                *keep &= column.is_valid(row) && column.value(row) == *value;
            }
        }
        if let Some(traces) = &self.trace_ids {
            let ids = typed::<FixedSizeBinaryArray>(batch, "trace_id")?;
            for (row, keep) in keep.iter_mut().enumerate() {
                *keep = *keep
                    && ids.is_valid(row)
                    && <[u8; 16]>::try_from(ids.value(row))
                        .is_ok_and(|id| traces.contains(&TraceId::from_bytes(id)));
            }
        }
        if !self.attributes.is_empty() {
            attributes_equal(&mut keep, batch, &self.attributes)?;
        }
        Ok(BooleanArray::from(keep))
    }
}

/// Keeps the rows whose `attributes` list holds every `(key, string)`.
fn attributes_equal(
    keep: &mut [bool],
    batch: &RecordBatch,
    wanted: &[(String, String)],
) -> Result<(), ArrowError> {
    let list = typed::<ListArray>(batch, "attributes")?;
    let missing = || ArrowError::SchemaError("filter column `attributes` is malformed".into());
    let entries = list
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(missing)?;
    let field = |name: &str| {
        entries
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(missing)
    };
    let (keys, strings) = (field("key")?, field("str")?);
    let offsets = list.value_offsets();
    for (row, keep) in keep.iter_mut().enumerate() {
        if !*keep {
            continue;
        }
        let (Some(&from), Some(&to)) = (offsets.get(row), offsets.get(row + 1)) else {
            return Err(missing());
        };
        let range = usize::try_from(from).unwrap_or(0)..usize::try_from(to).unwrap_or(0);
        if range.end > keys.len() || range.end > strings.len() {
            return Err(missing());
        }
        *keep = wanted.iter().all(|(key, value)| {
            range
                .clone()
                .any(|i| keys.value(i) == key && strings.is_valid(i) && strings.value(i) == value)
        });
    }
    Ok(())
}

fn strings_equal(keep: &mut [bool], column: &StringArray, value: &str) {
    for (row, keep) in keep.iter_mut().enumerate() {
        *keep &= column.is_valid(row) && column.value(row) == value;
    }
}

fn typed<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, ArrowError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .filter(|c| c.len() == batch.num_rows())
        .ok_or_else(|| ArrowError::SchemaError(format!("filter column `{name}` is missing")))
}

/// Runs `f`, turning a panic into an error: the Parquet and Arrow decoders
/// assume well-formed input in places, and a damaged segment must give an
/// error naming it, not bring the process down.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        format!("the Parquet reader failed: {message}")
    })
}
