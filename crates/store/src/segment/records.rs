//! Arrow record batches read from a segment back into [`SpanRecord`]s and
//! [`LogEntry`]s.
//!
//! Every column is downcast once per batch; a column of the wrong type, a
//! list offset out of range or an unknown enum number is an error (the file
//! is damaged or not ours), never a panic.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, FixedSizeBinaryArray, Int8Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray, TimestampNanosecondArray, UInt32Array,
};
use tracewarden_model::{
    AnyValue, Event, KeyValue, Link, LogRecord, Resource, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, Str, TraceId,
};

use super::DedicatedColumn;
use super::attributes::{
    AttributeColumns, Malformed, ValueColumns, downcast, list_range, required_field,
};
use super::schema::RESOURCE_ID;
use crate::hot::{LogEntry, SpanRecord};

/// How many distinct resources (and scopes) a read remembers to share.
/// A segment's rows are sorted by trace id, so the resources of a few
/// services alternate from row to row.
const SHARED: usize = 16;

/// Resources and scopes already built during one read, most recent first:
/// rows with an equal resource share its `Arc`.
#[derive(Default)]
pub(crate) struct Sharing {
    resources: Vec<Arc<Resource>>,
    scopes: Vec<Arc<Scope>>,
    /// The pairs of the resources file read so far, by `resource_id`.
    table: HashMap<u32, (Arc<Resource>, Arc<Scope>)>,
}

impl Sharing {
    /// The `resource_id`s of `batch` (of a spans or logs file) not read yet,
    /// sorted; none for a format version 1 batch, whose rows hold theirs.
    pub(crate) fn missing(&self, batch: &RecordBatch) -> Result<Vec<u32>, Malformed> {
        let Some(ids) = column::<UInt32Array>(batch, RESOURCE_ID)? else {
            return Ok(Vec::new());
        };
        let mut missing = Vec::new();
        let mut last = None;
        // Rows of a trace mostly come from one or two services: runs.
        for &id in ids.values() {
            if last != Some(id) && !self.table.contains_key(&id) {
                missing.push(id);
            }
            last = Some(id);
        }
        missing.sort_unstable();
        missing.dedup();
        Ok(missing)
    }

    /// Whether `id` was read.
    pub(crate) fn has(&self, id: u32) -> bool {
        self.table.contains_key(&id)
    }

    /// Remembers the pairs of `batch`, of the resources file.
    pub(crate) fn learn(&mut self, batch: &RecordBatch) -> Result<(), Malformed> {
        let ids: &UInt32Array = required(batch, RESOURCE_ID)?;
        let columns = ResourceColumns::new(batch)?;
        for row in 0..batch.num_rows() {
            let id = number(ids, row)?;
            let pair = (columns.resource(row, self)?, columns.scope(row, self)?);
            self.table.insert(id, pair);
        }
        Ok(())
    }
}

/// Where a batch's rows find their resource and scope.
enum Resources<'a> {
    /// Format version 1: on every row (boxed: a batch makes one).
    Rows(Box<ResourceColumns<'a>>),
    /// Their `resource_id`, read from the resources file beforehand.
    Ids(&'a UInt32Array),
}

impl<'a> Resources<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Resources<'a>, Malformed> {
        Ok(match column::<UInt32Array>(batch, RESOURCE_ID)? {
            Some(ids) => Resources::Ids(ids),
            None => Resources::Rows(Box::new(ResourceColumns::new(batch)?)),
        })
    }

    fn get(
        &self,
        row: usize,
        sharing: &mut Sharing,
    ) -> Result<(Arc<Resource>, Arc<Scope>), Malformed> {
        match self {
            Resources::Rows(columns) => Ok((
                columns.resource(row, sharing)?,
                columns.scope(row, sharing)?,
            )),
            Resources::Ids(ids) => {
                let id = number(*ids, row)?;
                let (resource, scope) = sharing
                    .table
                    .get(&id)
                    .ok_or_else(|| format!("resource_id {id} is not in the resources file"))?;
                Ok((Arc::clone(resource), Arc::clone(scope)))
            }
        }
    }
}

/// A top-level column by name, typed; `None` when it was not read.
fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<Option<&'a T>, Malformed> {
    batch
        .column_by_name(name)
        .map(|array| downcast(array.as_ref(), name))
        .transpose()
}

/// A column every row has a value in (never left out of a read).
fn required<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, Malformed> {
    column(batch, name)?.ok_or_else(|| format!("the batch lacks column `{name}`"))
}

fn list<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a dyn Array> {
    batch.column_by_name(name).map(|a| a.as_ref())
}

fn fixed<const N: usize>(array: &FixedSizeBinaryArray, i: usize) -> Result<[u8; N], Malformed> {
    if i >= array.len() {
        return Err(format!("id {i} is past the end ({})", array.len()));
    }
    array
        .value(i)
        .try_into()
        .map_err(|_| format!("an id has {} bytes, not {N}", array.value_length()))
}

fn string(array: &StringArray, i: usize) -> Result<Str, Malformed> {
    if i >= array.len() {
        return Err(format!("string {i} is past the end ({})", array.len()));
    }
    Ok(Str::from(array.value(i)))
}

fn number<T: arrow_array::ArrowPrimitiveType>(
    array: &arrow_array::PrimitiveArray<T>,
    i: usize,
) -> Result<T::Native, Malformed> {
    if i >= array.len() {
        return Err(format!("value {i} is past the end ({})", array.len()));
    }
    Ok(array.value(i))
}

/// The resource and scope columns: of the resources file, or of every row
/// of a format version 1 file.
struct ResourceColumns<'a> {
    attributes: AttributeColumns<'a>,
    original_attributes: AttributeColumns<'a>,
    dropped: &'a UInt32Array,
    schema_url: &'a StringArray,
    scope_name: &'a StringArray,
    scope_version: &'a StringArray,
    scope_attributes: AttributeColumns<'a>,
    scope_dropped: &'a UInt32Array,
    scope_schema_url: &'a StringArray,
}

impl<'a> ResourceColumns<'a> {
    fn new(batch: &'a RecordBatch) -> Result<ResourceColumns<'a>, Malformed> {
        Ok(ResourceColumns {
            attributes: AttributeColumns::new(
                list(batch, "resource_attributes"),
                "resource_attributes",
            )?,
            original_attributes: AttributeColumns::new(
                list(batch, "resource_original_attributes"),
                "resource_original_attributes",
            )?,
            dropped: required(batch, "resource_dropped_attributes_count")?,
            schema_url: required(batch, "resource_schema_url")?,
            scope_name: required(batch, "scope_name")?,
            scope_version: required(batch, "scope_version")?,
            scope_attributes: AttributeColumns::new(
                list(batch, "scope_attributes"),
                "scope_attributes",
            )?,
            scope_dropped: required(batch, "scope_dropped_attributes_count")?,
            scope_schema_url: required(batch, "scope_schema_url")?,
        })
    }

    fn resource(&self, row: usize, sharing: &mut Sharing) -> Result<Arc<Resource>, Malformed> {
        let dropped = number(self.dropped, row)?;
        let schema_url = string(self.schema_url, row)?;
        let found = sharing.resources.iter().position(|r| {
            r.dropped_attributes_count == dropped
                && r.schema_url == schema_url
                && self.attributes.equals(row, &r.attributes)
                && self.original_attributes.equals(row, &r.original_attributes)
        });
        remember(&mut sharing.resources, found, || {
            Ok(Resource {
                attributes: self.attributes.row(row)?,
                original_attributes: self.original_attributes.row(row)?,
                dropped_attributes_count: dropped,
                schema_url,
            })
        })
    }

    fn scope(&self, row: usize, sharing: &mut Sharing) -> Result<Arc<Scope>, Malformed> {
        let dropped = number(self.scope_dropped, row)?;
        let name = string(self.scope_name, row)?;
        let version = string(self.scope_version, row)?;
        let schema_url = string(self.scope_schema_url, row)?;
        let found = sharing.scopes.iter().position(|s| {
            s.dropped_attributes_count == dropped
                && s.name == name
                && s.version == version
                && s.schema_url == schema_url
                && self.scope_attributes.equals(row, &s.attributes)
        });
        remember(&mut sharing.scopes, found, || {
            Ok(Scope {
                name,
                version,
                attributes: self.scope_attributes.row(row)?,
                dropped_attributes_count: dropped,
                schema_url,
            })
        })
    }
}

/// The remembered `Arc` at `found` (moved to the front), or a new one built
/// and remembered.
fn remember<T>(
    cache: &mut Vec<Arc<T>>,
    found: Option<usize>,
    build: impl FnOnce() -> Result<T, Malformed>,
) -> Result<Arc<T>, Malformed> {
    if let Some(i) = found {
        if i > 0 {
            cache[..=i].rotate_right(1);
        }
        if let Some(hit) = cache.first() {
            return Ok(Arc::clone(hit));
        }
    }
    let value = Arc::new(build()?);
    cache.insert(0, Arc::clone(&value));
    cache.truncate(SHARED);
    Ok(value)
}

/// The `events` column; `None` when it was not read (no events).
struct EventColumns<'a>(Option<EventList<'a>>);

struct EventList<'a> {
    list: &'a ListArray,
    time: &'a TimestampNanosecondArray,
    name: &'a StringArray,
    attributes: AttributeColumns<'a>,
    dropped: &'a UInt32Array,
}

impl<'a> EventColumns<'a> {
    fn new(array: Option<&'a dyn Array>) -> Result<EventColumns<'a>, Malformed> {
        let Some(array) = array else {
            return Ok(EventColumns(None));
        };
        let list: &ListArray = downcast(array, "events")?;
        let entries: &StructArray = downcast(list.values().as_ref(), "events")?;
        Ok(EventColumns(Some(EventList {
            list,
            time: required_field(entries, "time")?,
            name: required_field(entries, "name")?,
            attributes: AttributeColumns::new(
                entries.column_by_name("attributes").map(|a| a.as_ref()),
                "events.attributes",
            )?,
            dropped: required_field(entries, "dropped_attributes_count")?,
        })))
    }

    fn row(&self, row: usize) -> Result<Vec<Event>, Malformed> {
        let Some(events) = &self.0 else {
            return Ok(Vec::new());
        };
        list_range(events.list, row, events.time.len())?
            .map(|i| {
                Ok(Event {
                    time_unix_nano: number(events.time, i)? as u64,
                    name: string(events.name, i)?,
                    attributes: events.attributes.row(i)?,
                    dropped_attributes_count: number(events.dropped, i)?,
                })
            })
            .collect()
    }
}

/// The `links` column; `None` when it was not read (no links).
struct LinkColumns<'a>(Option<LinkList<'a>>);

struct LinkList<'a> {
    list: &'a ListArray,
    trace_id: &'a FixedSizeBinaryArray,
    span_id: &'a FixedSizeBinaryArray,
    trace_state: &'a StringArray,
    attributes: AttributeColumns<'a>,
    dropped: &'a UInt32Array,
    flags: &'a UInt32Array,
}

impl<'a> LinkColumns<'a> {
    fn new(array: Option<&'a dyn Array>) -> Result<LinkColumns<'a>, Malformed> {
        let Some(array) = array else {
            return Ok(LinkColumns(None));
        };
        let list: &ListArray = downcast(array, "links")?;
        let entries: &StructArray = downcast(list.values().as_ref(), "links")?;
        Ok(LinkColumns(Some(LinkList {
            list,
            trace_id: required_field(entries, "trace_id")?,
            span_id: required_field(entries, "span_id")?,
            trace_state: required_field(entries, "trace_state")?,
            attributes: AttributeColumns::new(
                entries.column_by_name("attributes").map(|a| a.as_ref()),
                "links.attributes",
            )?,
            dropped: required_field(entries, "dropped_attributes_count")?,
            flags: required_field(entries, "flags")?,
        })))
    }

    fn row(&self, row: usize) -> Result<Vec<Link>, Malformed> {
        let Some(links) = &self.0 else {
            return Ok(Vec::new());
        };
        list_range(links.list, row, links.trace_id.len())?
            .map(|i| {
                Ok(Link {
                    trace_id: TraceId::from_bytes(fixed(links.trace_id, i)?),
                    span_id: SpanId::from_bytes(fixed(links.span_id, i)?),
                    trace_state: string(links.trace_state, i)?,
                    attributes: links.attributes.row(i)?,
                    dropped_attributes_count: number(links.dropped, i)?,
                    flags: number(links.flags, i)?,
                })
            })
            .collect()
    }
}

enum DedicatedArray<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
}

/// The columns of a batch of the spans file.
pub(crate) struct SpanColumns<'a> {
    rows: usize,
    trace_id: &'a FixedSizeBinaryArray,
    span_id: &'a FixedSizeBinaryArray,
    parent_span_id: Option<&'a FixedSizeBinaryArray>,
    trace_state: &'a StringArray,
    flags: &'a UInt32Array,
    name: &'a StringArray,
    kind: &'a Int8Array,
    start: &'a TimestampNanosecondArray,
    end: &'a TimestampNanosecondArray,
    status_code: &'a Int8Array,
    status_message: &'a StringArray,
    dedicated: Vec<(DedicatedColumn, DedicatedArray<'a>)>,
    attributes: AttributeColumns<'a>,
    original_attributes: AttributeColumns<'a>,
    dropped_attributes: &'a UInt32Array,
    events: EventColumns<'a>,
    dropped_events: &'a UInt32Array,
    links: LinkColumns<'a>,
    dropped_links: &'a UInt32Array,
    resources: Resources<'a>,
}

impl<'a> SpanColumns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Result<SpanColumns<'a>, Malformed> {
        let dedicated = DedicatedColumn::ALL
            .into_iter()
            .filter_map(|c| {
                let name = c.column_name();
                let array = if c.is_integer() {
                    column(batch, name).map(|a| a.map(DedicatedArray::Int))
                } else {
                    column(batch, name).map(|a| a.map(DedicatedArray::Str))
                };
                array.map(|a| a.map(|a| (c, a))).transpose()
            })
            .collect::<Result<_, Malformed>>()?;
        Ok(SpanColumns {
            rows: batch.num_rows(),
            trace_id: required(batch, "trace_id")?,
            span_id: required(batch, "span_id")?,
            parent_span_id: column(batch, "parent_span_id")?,
            trace_state: required(batch, "trace_state")?,
            flags: required(batch, "flags")?,
            name: required(batch, "name")?,
            kind: required(batch, "kind")?,
            start: required(batch, "start_time")?,
            end: required(batch, "end_time")?,
            status_code: required(batch, "status_code")?,
            status_message: required(batch, "status_message")?,
            dedicated,
            attributes: AttributeColumns::new(list(batch, "attributes"), "attributes")?,
            original_attributes: AttributeColumns::new(
                list(batch, "original_attributes"),
                "original_attributes",
            )?,
            dropped_attributes: required(batch, "dropped_attributes_count")?,
            events: EventColumns::new(list(batch, "events"))?,
            dropped_events: required(batch, "dropped_events_count")?,
            links: LinkColumns::new(list(batch, "links"))?,
            dropped_links: required(batch, "dropped_links_count")?,
            resources: Resources::new(batch)?,
        })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn record(&self, row: usize, sharing: &mut Sharing) -> Result<SpanRecord, Malformed> {
        if row >= self.rows {
            return Err(format!("row {row} is past the end ({})", self.rows));
        }
        let kind = number(self.kind, row)?;
        let status_code = number(self.status_code, row)?;
        let mut attributes = Vec::new();
        for (column, array) in &self.dedicated {
            let value = match array {
                DedicatedArray::Str(a) if a.is_valid(row) => AnyValue::Str(string(a, row)?),
                DedicatedArray::Int(a) if a.is_valid(row) => AnyValue::Int(number(*a, row)?),
                _ => continue,
            };
            attributes.push(KeyValue {
                key: Str::from(column.attribute_key()),
                value,
            });
        }
        self.attributes.push_row(row, &mut attributes)?;
        let span = Span {
            trace_id: TraceId::from_bytes(fixed(self.trace_id, row)?),
            span_id: SpanId::from_bytes(fixed(self.span_id, row)?),
            parent_span_id: match self.parent_span_id {
                Some(ids) if ids.is_valid(row) => Some(SpanId::from_bytes(fixed(ids, row)?)),
                _ => None,
            },
            trace_state: string(self.trace_state, row)?,
            flags: number(self.flags, row)?,
            name: string(self.name, row)?,
            kind: SpanKind::from_i32(i32::from(kind))
                .ok_or_else(|| format!("unknown span kind {kind}"))?,
            start_time_unix_nano: number(self.start, row)? as u64,
            end_time_unix_nano: number(self.end, row)? as u64,
            attributes,
            original_attributes: self.original_attributes.row(row)?,
            dropped_attributes_count: number(self.dropped_attributes, row)?,
            events: self.events.row(row)?,
            dropped_events_count: number(self.dropped_events, row)?,
            links: self.links.row(row)?,
            dropped_links_count: number(self.dropped_links, row)?,
            status: Status {
                code: StatusCode::from_i32(i32::from(status_code))
                    .ok_or_else(|| format!("unknown status code {status_code}"))?,
                message: string(self.status_message, row)?,
            },
        };
        let (resource, scope) = self.resources.get(row, sharing)?;
        Ok(SpanRecord {
            resource,
            scope,
            span: span.into(),
        })
    }
}

/// The columns of a batch of the logs file.
pub(crate) struct LogColumns<'a> {
    rows: usize,
    trace_id: Option<&'a FixedSizeBinaryArray>,
    span_id: Option<&'a FixedSizeBinaryArray>,
    time: &'a TimestampNanosecondArray,
    observed_time: &'a TimestampNanosecondArray,
    severity_number: &'a Int32Array,
    severity_text: &'a StringArray,
    /// `None` when every body is empty (no field was read).
    body: Option<ValueColumns<'a>>,
    attributes: AttributeColumns<'a>,
    original_attributes: AttributeColumns<'a>,
    dropped_attributes: &'a UInt32Array,
    flags: &'a UInt32Array,
    event_name: &'a StringArray,
    resources: Resources<'a>,
}

impl<'a> LogColumns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Result<LogColumns<'a>, Malformed> {
        let body: Option<&StructArray> = column(batch, "body")?;
        Ok(LogColumns {
            rows: batch.num_rows(),
            trace_id: column(batch, "trace_id")?,
            span_id: column(batch, "span_id")?,
            time: required(batch, "time")?,
            observed_time: required(batch, "observed_time")?,
            severity_number: required(batch, "severity_number")?,
            severity_text: required(batch, "severity_text")?,
            body: body.map(ValueColumns::new).transpose()?,
            attributes: AttributeColumns::new(list(batch, "attributes"), "attributes")?,
            original_attributes: AttributeColumns::new(
                list(batch, "original_attributes"),
                "original_attributes",
            )?,
            dropped_attributes: required(batch, "dropped_attributes_count")?,
            flags: required(batch, "flags")?,
            event_name: required(batch, "event_name")?,
            resources: Resources::new(batch)?,
        })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn entry(&self, row: usize, sharing: &mut Sharing) -> Result<LogEntry, Malformed> {
        if row >= self.rows {
            return Err(format!("row {row} is past the end ({})", self.rows));
        }
        let record = LogRecord {
            time_unix_nano: number(self.time, row)? as u64,
            observed_time_unix_nano: number(self.observed_time, row)? as u64,
            severity_number: number(self.severity_number, row)?,
            severity_text: string(self.severity_text, row)?,
            body: match &self.body {
                Some(body) => body.value(row)?,
                None => AnyValue::Empty,
            },
            attributes: self.attributes.row(row)?,
            original_attributes: self.original_attributes.row(row)?,
            dropped_attributes_count: number(self.dropped_attributes, row)?,
            flags: number(self.flags, row)?,
            trace_id: match self.trace_id {
                Some(ids) if ids.is_valid(row) => Some(TraceId::from_bytes(fixed(ids, row)?)),
                _ => None,
            },
            span_id: match self.span_id {
                Some(ids) if ids.is_valid(row) => Some(SpanId::from_bytes(fixed(ids, row)?)),
                _ => None,
            },
            event_name: string(self.event_name, row)?,
        };
        let (resource, scope) = self.resources.get(row, sharing)?;
        Ok(LogEntry {
            resource,
            scope,
            record,
        })
    }
}
