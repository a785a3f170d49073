//! Fields of `group_by` and `distinct`: TraceQL field syntax
//! (`span.client.address`, `resource.service.name`, `.enduser.id`, `name`,
//! `status`, ...) read from one span as text.
//!
//! The field is parsed by the TraceQL parser itself (as the filter
//! `{ <field> != nil }`), so a rule names fields exactly as a hunt does.

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};

use tracewarden_model::{AnyValue, RecordView, SpanRecord, find_attribute};
use tracewarden_traceql::{AttributeScope, Field, Intrinsic};

/// Longest value, in bytes, kept as is in a key or a distinct set. Longer
/// values keep a prefix and a 64-bit hash of the whole value, so memory per
/// key is bounded while values that differ only at the end stay distinct
/// (barring a hash collision).
pub const MAX_VALUE_BYTES: usize = 256;
const KEPT_PREFIX_BYTES: usize = 200;

/// A field a rule reads from spans to build a key or count distinct values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRef {
    /// Canonical TraceQL spelling, e.g. `span.client.address`.
    text: String,
    field: Field,
}

impl FieldRef {
    /// Parses a field in TraceQL syntax. Refused: event and link fields
    /// (a span has several values) and trace-level intrinsics (a span alone
    /// does not know them).
    pub fn parse(text: &str) -> Result<FieldRef, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("empty field".to_string());
        }
        let query = tracewarden_traceql::parse(&format!("{{ {trimmed} != nil }}"))
            .map_err(|e| e.message)?;
        let mut fields = query.fields();
        let field = match (fields.pop(), fields.is_empty()) {
            (Some(field), true) => field,
            _ => return Err("expected exactly one field".to_string()),
        };
        // The text must be the field and nothing else: `a != nil || b`
        // would otherwise slip through as a field.
        if query.to_string() != format!("{{ {field} != nil }}") {
            return Err("expected exactly one field".to_string());
        }
        if field.is_per_event_or_link() {
            return Err("event and link fields have one value per event or link; use a span, resource or instrumentation field".to_string());
        }
        if field.is_trace_level() {
            return Err("trace-level intrinsics are not known from one span".to_string());
        }
        Ok(FieldRef {
            text: field.to_string(),
            field,
        })
    }

    /// Canonical TraceQL spelling.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn field(&self) -> &Field {
        &self.field
    }

    /// Appends the field's value in `span` as text to `out` and returns
    /// true, or returns false (leaving `out` as it was) when the span has
    /// no value for it. Allocates only if `out` must grow.
    pub fn write_value(&self, record: &SpanRecord, out: &mut String) -> bool {
        self.write_value_in(&mut RecordView::new(record), out)
    }

    /// [`FieldRef::write_value`] through a view, whose memo the engine
    /// shares across its rules.
    pub fn write_value_in(&self, view: &mut RecordView<'_, '_>, out: &mut String) -> bool {
        let start = out.len();
        let record = view.record();
        let span = &record.span;
        let found = match &self.field {
            Field::Intrinsic(intrinsic) => match intrinsic {
                Intrinsic::Name => write_str(out, &span.name),
                Intrinsic::Status => write_str(out, span.status.code.as_str()),
                Intrinsic::StatusMessage => write_str(out, &span.status.message),
                Intrinsic::Kind => write_str(out, span.kind.as_str()),
                Intrinsic::Duration => write!(out, "{}ns", span.duration_nanos()).is_ok(),
                Intrinsic::SpanId => write_hex(out, span.span_id.as_bytes()),
                Intrinsic::ParentId => match &span.parent_span_id {
                    Some(parent) => write_hex(out, parent.as_bytes()),
                    None => false,
                },
                Intrinsic::TraceId => write_hex(out, span.trace_id.as_bytes()),
                Intrinsic::InstrumentationName => write_str(out, &record.scope.name),
                Intrinsic::InstrumentationVersion => write_str(out, &record.scope.version),
                // Refused by `parse`; a future intrinsic reads as absent.
                _ => false,
            },
            Field::Attribute { scope, name } => {
                let value = match scope {
                    AttributeScope::Span => view.span_attribute(name),
                    AttributeScope::Resource => view.resource_attribute(name),
                    AttributeScope::Unscoped => view
                        .span_attribute(name)
                        .or_else(|| view.resource_attribute(name)),
                    AttributeScope::Instrumentation => {
                        find_attribute(&record.scope.attributes, name)
                    }
                    AttributeScope::Event | AttributeScope::Link => None,
                };
                value.is_some_and(|v| write_any(out, v))
            }
        };
        if !found {
            out.truncate(start);
            return false;
        }
        bound_tail(out, start);
        true
    }
}

fn write_str(out: &mut String, s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    out.push_str(s);
    true
}

fn write_hex(out: &mut String, bytes: &[u8]) -> bool {
    for b in bytes {
        if write!(out, "{b:02x}").is_err() {
            return false;
        }
    }
    true
}

fn write_any(out: &mut String, value: &AnyValue) -> bool {
    match value {
        AnyValue::Empty => false,
        AnyValue::Str(s) => write_str(out, s),
        AnyValue::Bool(b) => write!(out, "{b}").is_ok(),
        AnyValue::Int(i) => {
            if *i < 0 {
                out.push('-');
            }
            push_decimal(out, i.unsigned_abs());
            true
        }
        AnyValue::Double(d) => write!(out, "{d}").is_ok(),
        AnyValue::Bytes(b) => !b.is_empty() && write_hex(out, b),
        // Rare as keys; the text form allocates, which is acceptable on a
        // matching span only.
        AnyValue::Array(_) | AnyValue::KvList(_) => {
            out.push_str(&value.to_text());
            true
        }
    }
}

/// Appends `n` in decimal, as `write!(out, "{n}")` does, without the
/// formatting machinery: keys carry lengths and status codes on every span,
/// and `core::fmt` took ~3% of the pack's time doing it. Most calls write
/// the length of a short value, so one and two digits skip the loop.
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    let digit = |d: u64| char::from(b'0' + (d % 10) as u8);
    if n < 10 {
        out.push(digit(n));
        return;
    }
    if n < 100 {
        out.push(digit(n / 10));
        out.push(digit(n));
        return;
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n > 0 {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Bounds what was appended after `start` to [`MAX_VALUE_BYTES`].
pub(crate) fn bound_tail(out: &mut String, start: usize) {
    let Some(tail) = out.get(start..) else {
        return;
    };
    if tail.len() <= MAX_VALUE_BYTES {
        return;
    }
    let mut hasher = DefaultHasher::new();
    tail.hash(&mut hasher);
    let hash = hasher.finish();
    let mut cut = start + KEPT_PREFIX_BYTES;
    while cut > start && !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    // Cannot fail: writing to a String.
    let _ = write!(out, "...#{hash:016x}");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{KeyValue, Resource, Span, SpanId, TraceId};

    use super::*;

    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for n in [0, 7, 9, 10, 42, 99, 100, 200, 404, 99_999, u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
        for i in [0i64, -1, 401, -40_000, i64::MIN, i64::MAX] {
            let mut out = String::new();
            assert!(write_any(&mut out, &AnyValue::Int(i)));
            assert_eq!(out, i.to_string());
        }
    }

    fn record() -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "POST /login",
        );
        span.attributes
            .push(KeyValue::new("client.address", "10.0.0.1"));
        span.attributes.push(KeyValue::new(
            "http.response.status_code",
            AnyValue::Int(401),
        ));
        let resource = Resource {
            attributes: vec![
                KeyValue::new("service.name", "shop"),
                KeyValue::new("client.address", "resource"),
            ],
            ..Resource::default()
        };
        SpanRecord {
            resource: Arc::new(resource),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn value(field: &str) -> Option<String> {
        let field = FieldRef::parse(field).ok()?;
        let mut out = String::from("prefix|");
        let found = field.write_value(&record(), &mut out);
        let value = out.strip_prefix("prefix|").map(str::to_string);
        if found {
            value
        } else {
            assert_eq!(
                out, "prefix|",
                "absent field must leave the buffer as it was"
            );
            None
        }
    }

    #[test]
    fn reads_scopes_and_intrinsics() {
        assert_eq!(value("span.client.address").as_deref(), Some("10.0.0.1"));
        assert_eq!(value(".client.address").as_deref(), Some("10.0.0.1"));
        assert_eq!(
            value("resource.client.address").as_deref(),
            Some("resource")
        );
        assert_eq!(value(".service.name").as_deref(), Some("shop"));
        assert_eq!(
            value("span.http.response.status_code").as_deref(),
            Some("401")
        );
        assert_eq!(value("name").as_deref(), Some("POST /login"));
        assert_eq!(value("span:name").as_deref(), Some("POST /login"));
        assert_eq!(
            value("trace:id").as_deref(),
            Some("01010101010101010101010101010101")
        );
        assert_eq!(value("span.missing"), None);
        assert_eq!(value("span:parentID"), None);
    }

    #[test]
    fn refuses_what_is_not_one_span_field() {
        for bad in [
            "",
            "span.a != nil || span.b",
            "event.x",
            "link:spanID",
            "rootName",
            "1",
            "}",
            "{ span.a }",
            "span.a) || (span.b",
        ] {
            assert!(FieldRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            FieldRef::parse(" span.client.address ").map(|f| f.as_str().to_string()),
            Ok("span.client.address".to_string())
        );
    }

    #[test]
    fn long_values_are_bounded_and_stay_distinct() {
        let mut a = "x".repeat(1000);
        bound_tail(&mut a, 0);
        let mut b = "x".repeat(999) + "y";
        bound_tail(&mut b, 0);
        assert!(a.len() <= MAX_VALUE_BYTES);
        assert_ne!(a, b);
        let mut multibyte = "é".repeat(400);
        bound_tail(&mut multibyte, 0);
        assert!(multibyte.len() <= MAX_VALUE_BYTES);
    }
}
