//! [`SpanFilter`] applied to spans in memory (the hot and frozen tiers), with
//! the meaning segments give it: a dedicated column holds the attribute only
//! when it has the column's type (a string, or an integer for
//! `http.response.status_code`), so an attribute of another type never matches.

use crate::hot::SpanRecord;
use crate::segment::{DedicatedColumn, SpanFilter};
use tracewarden_model::AnyValue;

/// Whether the span meets every condition of `filter` (the limit aside).
pub(crate) fn span_matches(filter: &SpanFilter, record: &SpanRecord) -> bool {
    let start = record.span.start_time_unix_nano;
    if filter.start_unix_nano.is_some_and(|from| start < from) {
        return false;
    }
    if filter.end_unix_nano.is_some_and(|to| start >= to) {
        return false;
    }
    if let Some(traces) = &filter.trace_ids
        && !traces.contains(&record.span.trace_id)
    {
        return false;
    }
    if let Some(service) = &filter.service_name
        && record.resource.service_name() != service
    {
        return false;
    }
    filter
        .equals
        .iter()
        .all(|(column, value)| dedicated_equals(record, *column, value))
        && filter.attribute_equals.iter().all(|(key, value)| {
            matches!(record.span.attribute(key), Some(AnyValue::Str(actual)) if actual == value)
        })
}

fn dedicated_equals(record: &SpanRecord, column: DedicatedColumn, expected: &str) -> bool {
    match record.span.attribute(column.attribute_key()) {
        Some(AnyValue::Int(actual)) if column.is_integer() => expected
            .parse::<i64>()
            .is_ok_and(|expected| *actual == expected),
        Some(AnyValue::Str(actual)) if !column.is_integer() => actual == expected,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{KeyValue, Resource, Span, SpanId, TraceId};

    use super::*;

    fn record(start: u64, service: &str, attributes: Vec<KeyValue>) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "op",
        );
        span.start_time_unix_nano = start;
        span.attributes = attributes;
        SpanRecord {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", service)],
                ..Resource::default()
            }),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let span = record(
            100,
            "auth",
            vec![
                KeyValue::new("client.address", "10.0.0.1"),
                KeyValue::new("http.response.status_code", AnyValue::Int(401)),
                KeyValue::new("enduser.id", AnyValue::Int(7)),
            ],
        );
        let filter = |f: SpanFilter| span_matches(&f, &span);
        assert!(filter(SpanFilter::default()));
        assert!(filter(SpanFilter {
            start_unix_nano: Some(100),
            end_unix_nano: Some(101),
            ..SpanFilter::default()
        }));
        assert!(!filter(SpanFilter {
            start_unix_nano: Some(101),
            ..SpanFilter::default()
        }));
        assert!(!filter(SpanFilter {
            end_unix_nano: Some(100),
            ..SpanFilter::default()
        }));
        assert!(filter(SpanFilter {
            service_name: Some("auth".into()),
            ..SpanFilter::default()
        }));
        assert!(!filter(SpanFilter {
            service_name: Some("billing".into()),
            ..SpanFilter::default()
        }));
        let equals = |pairs: &[(DedicatedColumn, &str)]| SpanFilter {
            equals: pairs.iter().map(|(c, v)| (*c, v.to_string())).collect(),
            ..SpanFilter::default()
        };
        assert!(filter(equals(&[(
            DedicatedColumn::ClientAddress,
            "10.0.0.1"
        )])));
        assert!(filter(equals(&[
            (DedicatedColumn::ClientAddress, "10.0.0.1"),
            (DedicatedColumn::HttpResponseStatusCode, "401"),
        ])));
        assert!(!filter(equals(&[(
            DedicatedColumn::HttpResponseStatusCode,
            "4o1"
        )])));
        assert!(!filter(equals(&[(
            DedicatedColumn::ClientAddress,
            "10.0.0.2"
        )])));
        // An integer enduser.id is not in the (string) column.
        assert!(!filter(equals(&[(DedicatedColumn::EnduserId, "7")])));
        assert!(!filter(equals(&[(DedicatedColumn::SessionId, "")])));
        let traces = |ids: &[TraceId]| SpanFilter {
            trace_ids: Some(std::sync::Arc::new(ids.iter().copied().collect())),
            ..SpanFilter::default()
        };
        assert!(filter(traces(&[TraceId::from_bytes([1; 16])])));
        assert!(!filter(traces(&[TraceId::from_bytes([3; 16])])));
        assert!(!filter(traces(&[])));
        let attributes = |pairs: &[(&str, &str)]| SpanFilter {
            attribute_equals: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..SpanFilter::default()
        };
        assert!(filter(attributes(&[("client.address", "10.0.0.1")])));
        assert!(!filter(attributes(&[("client.address", "10.0.0.2")])));
        // Strings only: the integer status and user id are not matched as text.
        assert!(!filter(attributes(&[("http.response.status_code", "401")])));
        assert!(!filter(attributes(&[("enduser.id", "7")])));
        assert!(!filter(attributes(&[
            ("client.address", "10.0.0.1"),
            ("no.such.key", "x")
        ])));
    }
}
