//! The Arrow schemas of the spans and logs files (docs/STORAGE.md describes
//! each column), and the positions of their columns.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use super::DedicatedColumn;

/// Name of the element field of every list (the Parquet LIST convention).
pub(crate) const ELEMENT: &str = "element";

pub(crate) fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The value fields of an attribute (and of a log body): exactly one is set.
pub(crate) fn value_fields() -> Vec<Field> {
    vec![
        Field::new("str", DataType::Utf8, true),
        Field::new("int", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("bool", DataType::Boolean, true),
        Field::new("bytes", DataType::Binary, true),
        Field::new("json", DataType::Utf8, true),
    ]
}

/// `{key, str, int, double, bool, bytes, json}`.
pub(crate) fn attribute_fields() -> Fields {
    let mut fields = vec![Field::new("key", DataType::Utf8, false)];
    fields.extend(value_fields());
    Fields::from(fields)
}

/// `List<Struct<key, str, int, double, bool, bytes, json>>`.
pub(crate) fn attribute_list() -> DataType {
    DataType::List(Arc::new(Field::new(
        ELEMENT,
        DataType::Struct(attribute_fields()),
        false,
    )))
}

pub(crate) fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", timestamp(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attributes", attribute_list(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

pub(crate) fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("attributes", attribute_list(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
        Field::new("flags", DataType::UInt32, false),
    ])
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new(
        ELEMENT,
        DataType::Struct(fields),
        false,
    )))
}

/// The resource and scope columns: the resources file's (after
/// `resource_id`), and those every row of a version 1 file ended with.
fn resource_scope_fields() -> Vec<Field> {
    vec![
        Field::new("resource_attributes", attribute_list(), false),
        Field::new("resource_original_attributes", attribute_list(), false),
        Field::new("resource_dropped_attributes_count", DataType::UInt32, false),
        Field::new("resource_schema_url", DataType::Utf8, false),
        Field::new("scope_name", DataType::Utf8, false),
        Field::new("scope_version", DataType::Utf8, false),
        Field::new("scope_attributes", attribute_list(), false),
        Field::new("scope_dropped_attributes_count", DataType::UInt32, false),
        Field::new("scope_schema_url", DataType::Utf8, false),
    ]
}

/// The column of a spans or logs row naming its resource and scope: the
/// row of the resources file with that `resource_id`.
pub(crate) const RESOURCE_ID: &str = "resource_id";

fn resource_id() -> Field {
    Field::new(RESOURCE_ID, DataType::UInt32, false)
}

/// The columns of a span, resource and scope aside.
fn span_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("parent_span_id", DataType::FixedSizeBinary(8), true),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Int8, false),
        Field::new("start_time", timestamp(), false),
        Field::new("end_time", timestamp(), false),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("status_code", DataType::Int8, false),
        Field::new("status_message", DataType::Utf8, false),
        Field::new("service_name", DataType::Utf8, false),
    ];
    for column in DedicatedColumn::ALL {
        let data_type = if column.is_integer() {
            DataType::Int64
        } else {
            DataType::Utf8
        };
        fields.push(Field::new(column.column_name(), data_type, true));
    }
    fields.extend([
        Field::new("attributes", attribute_list(), false),
        Field::new("original_attributes", attribute_list(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
        Field::new("events", list_of(event_fields()), false),
        Field::new("dropped_events_count", DataType::UInt32, false),
        Field::new("links", list_of(link_fields()), false),
        Field::new("dropped_links_count", DataType::UInt32, false),
    ]);
    fields
}

/// The columns of a log record, resource and scope aside.
fn log_fields() -> Vec<Field> {
    vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), true),
        Field::new("span_id", DataType::FixedSizeBinary(8), true),
        Field::new("time", timestamp(), false),
        Field::new("observed_time", timestamp(), false),
        Field::new("severity_number", DataType::Int32, false),
        Field::new("severity_text", DataType::Utf8, false),
        Field::new(
            "body",
            DataType::Struct(Fields::from(value_fields())),
            false,
        ),
        Field::new("attributes", attribute_list(), false),
        Field::new("original_attributes", attribute_list(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("service_name", DataType::Utf8, false),
    ]
}

fn schema(fields: impl IntoIterator<Item = Field>) -> SchemaRef {
    Arc::new(Schema::new(fields.into_iter().collect::<Vec<_>>()))
}

/// The spans file: a span per row, its resource and scope by `resource_id`.
pub(crate) static SPANS_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| schema(span_fields().into_iter().chain([resource_id()])));

/// The logs file: a log record per row, its resource and scope by
/// `resource_id`.
pub(crate) static LOGS_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| schema(log_fields().into_iter().chain([resource_id()])));

/// The resources file: each distinct (resource, scope) pair of the spans
/// and logs files once, in `resource_id` order from 0.
pub(crate) static RESOURCES_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| schema([resource_id()].into_iter().chain(resource_scope_fields())));

/// Format version 1's spans file: the resource and scope on every row.
pub(crate) static SPANS_SCHEMA_V1: LazyLock<SchemaRef> =
    LazyLock::new(|| schema(span_fields().into_iter().chain(resource_scope_fields())));

/// Format version 1's logs file.
pub(crate) static LOGS_SCHEMA_V1: LazyLock<SchemaRef> =
    LazyLock::new(|| schema(log_fields().into_iter().chain(resource_scope_fields())));

/// Whether `found` has the fields of `expected` (names, types, nullability),
/// ignoring metadata a reader may attach.
pub(crate) fn same_fields(found: &Schema, expected: &Schema) -> bool {
    found.fields().len() == expected.fields().len()
        && found
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| same_field(a, b))
}

fn same_field(a: &Field, b: &Field) -> bool {
    a.name() == b.name()
        && a.is_nullable() == b.is_nullable()
        && same_type(a.data_type(), b.data_type())
}

fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(a), DataType::List(b)) => same_field(a, b),
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same_field(a, b))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedicated_columns_follow_service_name_in_order() {
        let spans = &*SPANS_SCHEMA;
        let service = spans.index_of("service_name").unwrap();
        for column in DedicatedColumn::ALL {
            let at = spans.index_of(column.column_name()).unwrap();
            assert_eq!(at, service + 1 + column.index());
            assert!(spans.field(at).is_nullable());
        }
        assert_eq!(spans.fields().len(), 32);
        assert_eq!(LOGS_SCHEMA.fields().len(), 14);
        assert_eq!(RESOURCES_SCHEMA.fields().len(), 10);
        // Rows of both files end with their resource's id; version 1's
        // ended with the resource and scope themselves.
        for schema in [&*SPANS_SCHEMA, &*LOGS_SCHEMA] {
            assert_eq!(schema.fields().last().unwrap().name(), RESOURCE_ID);
        }
        for (v1, v2) in [
            (&*SPANS_SCHEMA_V1, &*SPANS_SCHEMA),
            (&*LOGS_SCHEMA_V1, &*LOGS_SCHEMA),
        ] {
            let names: Vec<&str> = v1.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(names.len(), v2.fields().len() - 1 + 9);
            assert_eq!(names[names.len() - 9], "resource_attributes");
            assert_eq!(names[names.len() - 1], "scope_schema_url");
        }
        assert_eq!(RESOURCES_SCHEMA.field(1).name(), "resource_attributes");
    }
}
