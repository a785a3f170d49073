//! Limits on what one request may make the receiver read and allocate.

use serde::{Deserialize, Serialize};

/// Configurable limits. Defaults follow the OpenTelemetry Collector (20 MiB
/// request bodies) and the OpenTelemetry SDKs (128 attributes per record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted on the wire (compressed), in bytes. Larger: 413.
    pub max_body_bytes: usize,
    /// Largest body after decompression, in bytes (guards against gzip bombs). Larger: 413.
    pub max_decompressed_bytes: usize,
    /// Attributes kept per span, event, link, log record, resource or scope;
    /// the rest are dropped and counted in `dropped_attributes_count`.
    pub max_attributes_per_record: usize,
    /// Longest string or bytes value kept, in bytes; longer values are
    /// truncated (at a character boundary) and counted as a warning.
    pub max_attribute_value_bytes: usize,
    /// Events kept per span; the rest are dropped and counted.
    pub max_events_per_span: usize,
    /// Links kept per span; the rest are dropped and counted.
    pub max_links_per_span: usize,
    /// Deepest nesting of arrays and key-value lists in one value; a record
    /// holding a deeper value is rejected.
    pub max_value_depth: usize,
    /// Request bodies (as received) being decoded and made durable at once,
    /// in bytes; beyond it requests are refused with HTTP 429 / gRPC
    /// `RESOURCE_EXHAUSTED` and a retry hint, bounding decode memory.
    pub max_inflight_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 20 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_attributes_per_record: 128,
            max_attribute_value_bytes: 64 * 1024,
            max_events_per_span: 128,
            max_links_per_span: 128,
            max_value_depth: 16,
            max_inflight_bytes: 256 * 1024 * 1024,
        }
    }
}

use tracewarden_model::{AnyValue, KeyValue, LogRecord, Resource, Scope, Span};

use crate::Decoded;

impl Limits {
    /// Enforces the limits on a decoded span: drops attributes, events and
    /// links over their caps (counting them in the span's dropped counts),
    /// truncates long values, and rejects (`Err` with the reason) a span
    /// holding a value nested deeper than allowed. Every decoder calls this,
    /// so the limits mean the same whatever the wire format.
    pub fn apply_to_span(&self, span: &mut Span, decoded: &mut Decoded) -> Result<(), String> {
        self.apply_to_attributes(
            &mut span.attributes,
            &mut span.dropped_attributes_count,
            decoded,
        )?;
        if span.events.len() > self.max_events_per_span {
            let extra = span.events.len() - self.max_events_per_span;
            span.events.truncate(self.max_events_per_span);
            span.dropped_events_count = span.dropped_events_count.saturating_add(saturate(extra));
            decoded.warn(format!(
                "events over the limit of {} per span dropped",
                self.max_events_per_span
            ));
        }
        if span.links.len() > self.max_links_per_span {
            let extra = span.links.len() - self.max_links_per_span;
            span.links.truncate(self.max_links_per_span);
            span.dropped_links_count = span.dropped_links_count.saturating_add(saturate(extra));
            decoded.warn(format!(
                "links over the limit of {} per span dropped",
                self.max_links_per_span
            ));
        }
        for event in &mut span.events {
            self.apply_to_attributes(
                &mut event.attributes,
                &mut event.dropped_attributes_count,
                decoded,
            )?;
        }
        for link in &mut span.links {
            self.apply_to_attributes(
                &mut link.attributes,
                &mut link.dropped_attributes_count,
                decoded,
            )?;
        }
        Ok(())
    }

    /// Enforces the limits on a log record, its body included.
    pub fn apply_to_log(&self, log: &mut LogRecord, decoded: &mut Decoded) -> Result<(), String> {
        self.apply_to_attributes(
            &mut log.attributes,
            &mut log.dropped_attributes_count,
            decoded,
        )?;
        self.apply_to_value(&mut log.body, decoded)
    }

    /// Enforces the limits on a resource. A resource that breaks them is
    /// not rejected (its records would all be lost): over-deep values are
    /// replaced by their text form instead.
    pub fn apply_to_resource(&self, resource: &mut Resource, decoded: &mut Decoded) {
        self.apply_lenient(
            &mut resource.attributes,
            &mut resource.dropped_attributes_count,
            decoded,
        );
    }

    /// Enforces the limits on a scope, leniently as for a resource.
    pub fn apply_to_scope(&self, scope: &mut Scope, decoded: &mut Decoded) {
        self.apply_lenient(
            &mut scope.attributes,
            &mut scope.dropped_attributes_count,
            decoded,
        );
    }

    fn apply_lenient(
        &self,
        attributes: &mut Vec<KeyValue>,
        dropped: &mut u32,
        decoded: &mut Decoded,
    ) {
        if self
            .apply_to_attributes(attributes, dropped, decoded)
            .is_err()
        {
            for kv in attributes.iter_mut() {
                if kv.value.depth() > self.max_value_depth {
                    let mut text = kv.value.to_text();
                    truncate_string(&mut text, self.max_attribute_value_bytes);
                    kv.value = AnyValue::Str(text.into());
                }
            }
        }
    }

    /// Caps the number of attributes and the size of each value.
    pub fn apply_to_attributes(
        &self,
        attributes: &mut Vec<KeyValue>,
        dropped: &mut u32,
        decoded: &mut Decoded,
    ) -> Result<(), String> {
        if attributes.len() > self.max_attributes_per_record {
            let extra = attributes.len() - self.max_attributes_per_record;
            attributes.truncate(self.max_attributes_per_record);
            *dropped = dropped.saturating_add(saturate(extra));
            decoded.warn(format!(
                "attributes over the limit of {} per record dropped",
                self.max_attributes_per_record
            ));
        }
        for kv in attributes.iter_mut() {
            if kv.key.len() > self.max_attribute_value_bytes {
                let mut key = kv.key.to_string();
                truncate_string(&mut key, self.max_attribute_value_bytes);
                kv.key = key.into();
                decoded.warn(format!(
                    "attribute key longer than {} bytes truncated",
                    self.max_attribute_value_bytes
                ));
            }
            self.apply_to_value(&mut kv.value, decoded)?;
        }
        Ok(())
    }

    fn apply_to_value(&self, value: &mut AnyValue, decoded: &mut Decoded) -> Result<(), String> {
        if value.depth() > self.max_value_depth {
            return Err(format!(
                "value nested deeper than the limit of {} levels",
                self.max_value_depth
            ));
        }
        self.truncate_value(value, decoded);
        Ok(())
    }

    fn truncate_value(&self, value: &mut AnyValue, decoded: &mut Decoded) {
        let limit = self.max_attribute_value_bytes;
        match value {
            AnyValue::Str(s) if s.len() > limit => {
                let mut owned = s.to_string();
                truncate_string(&mut owned, limit);
                *s = owned.into();
                decoded.warn(format!("value longer than {limit} bytes truncated"));
            }
            AnyValue::Bytes(b) if b.len() > limit => {
                b.truncate(limit);
                decoded.warn(format!("value longer than {limit} bytes truncated"));
            }
            AnyValue::Array(items) => {
                for item in items {
                    self.truncate_value(item, decoded);
                }
            }
            AnyValue::KvList(kvs) => {
                for kv in kvs {
                    self.truncate_value(&mut kv.value, decoded);
                }
            }
            _ => {}
        }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Truncates to at most `limit` bytes, at a character boundary.
fn truncate_string(s: &mut String, limit: usize) {
    if s.len() <= limit {
        return;
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

#[cfg(test)]
mod tests {
    use tracewarden_model::{SpanId, TraceId};

    use super::*;

    fn span() -> Span {
        Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([1; 8]),
            "s",
        )
    }

    #[test]
    fn long_values_are_truncated_at_char_boundaries() {
        let limits = Limits {
            max_attribute_value_bytes: 4,
            ..Limits::default()
        };
        let mut s = span();
        s.attributes
            .push(KeyValue::new("k", AnyValue::from("aé€bc")));
        let mut decoded = Decoded::default();
        limits.apply_to_span(&mut s, &mut decoded).unwrap();
        assert_eq!(s.attributes[0].value, AnyValue::from("aé"));
        assert_eq!(decoded.warnings, 1);
    }

    #[test]
    fn attributes_over_the_cap_are_dropped_and_counted() {
        let limits = Limits {
            max_attributes_per_record: 2,
            ..Limits::default()
        };
        let mut s = span();
        for i in 0..5 {
            s.attributes
                .push(KeyValue::new(format!("k{i}"), AnyValue::Int(i)));
        }
        let mut decoded = Decoded::default();
        limits.apply_to_span(&mut s, &mut decoded).unwrap();
        assert_eq!(s.attributes.len(), 2);
        assert_eq!(s.dropped_attributes_count, 3);
    }

    #[test]
    fn deep_values_reject_the_span() {
        let limits = Limits {
            max_value_depth: 3,
            ..Limits::default()
        };
        let mut value = AnyValue::Int(1);
        for _ in 0..5 {
            value = AnyValue::Array(vec![value]);
        }
        let mut s = span();
        s.attributes.push(KeyValue::new("deep", value));
        let mut decoded = Decoded::default();
        let err = limits.apply_to_span(&mut s, &mut decoded).unwrap_err();
        assert!(err.contains("deeper"), "{err}");
    }
}
