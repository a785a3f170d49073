//! The evidence text of match, threshold and sequence detections: the
//! distinct values a `distinct` threshold counted, and the `evidence:`
//! fields of the span that made a rule fire (of the spans a whole-trace
//! match returned).
//!
//! Values come from traffic, so an attacker chooses them: they are cut and
//! escaped (`escape_debug`, as new_terms escapes its terms) so that one value
//! cannot break a notification into lines or pose as another field.

use tracewarden_model::{RecordView, SpanRecord};

use crate::rule::FieldRef;

/// Distinct values a `distinct` threshold detection names in its evidence.
pub(super) const EVIDENCE_VALUES: usize = 5;
/// Longest distinct value named in evidence, in characters (a value over
/// 256 bytes is already kept as a prefix and a hash).
const DISTINCT_VALUE_CHARS: usize = 64;
/// Longest `evidence:` field value named, in characters: a browser's user
/// agent (~130) fits.
const FIELD_VALUE_CHARS: usize = 160;

/// `5 distinct span.enduser.id: dave, carol, bob, alice, aaron`, the most
/// recently seen first, `and N more` past [`EVIDENCE_VALUES`]; `about 12034
/// distinct ...` when the count is an estimate.
pub(super) fn distinct_evidence(
    field: &FieldRef,
    count: u64,
    estimated: bool,
    newest: &[&str],
) -> String {
    let about = if estimated { "about " } else { "" };
    let mut text = format!("{about}{count} distinct {}: ", field.as_str());
    for (i, value) in newest.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        push_cut_escaped(&mut text, value, DISTINCT_VALUE_CHARS);
    }
    let more = count.saturating_sub(newest.len() as u64);
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// Appends the rule's `evidence:` fields of the span in `view` to the
/// evidence the detection already has (a payload found, the distinct values
/// counted), after `; `: `span.user_agent.original="sqlmap/1.8" span.url.path=/admin`.
/// A field the span lacks reads `nil`, as in TraceQL. `None` when there is
/// neither.
pub fn field_evidence(
    evidence: Option<String>,
    fields: &[FieldRef],
    view: &mut RecordView<'_, '_>,
) -> Option<String> {
    write_fields(evidence, fields, |field, out| {
        field.write_value_in(view, out)
    })
}

/// [`field_evidence`] for a whole-trace match: each field read from the
/// first of `spans` (the spans the trace's query returned, in trace order)
/// that has a value for it.
pub fn trace_field_evidence<'a>(
    evidence: Option<String>,
    fields: &[FieldRef],
    spans: impl Iterator<Item = &'a SpanRecord> + Clone,
) -> Option<String> {
    write_fields(evidence, fields, |field, out| {
        spans.clone().any(|span| field.write_value(span, out))
    })
}

fn write_fields(
    evidence: Option<String>,
    fields: &[FieldRef],
    mut value_of: impl FnMut(&FieldRef, &mut String) -> bool,
) -> Option<String> {
    if fields.is_empty() {
        return evidence;
    }
    let mut text = evidence.unwrap_or_default();
    if !text.is_empty() {
        text.push_str("; ");
    }
    let mut value = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(field.as_str());
        text.push('=');
        value.clear();
        if !value_of(field, &mut value) {
            text.push_str("nil");
        } else if needs_quotes(&value) {
            text.push('"');
            push_cut_escaped(&mut text, &value, FIELD_VALUE_CHARS);
            text.push('"');
        } else {
            push_cut_escaped(&mut text, &value, FIELD_VALUE_CHARS);
        }
    }
    Some(text)
}

/// Whether a value must be quoted to read as one value (logfmt's rule, plus
/// `nil`, which stands for an absent field, and `;`, which ends the fields).
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value == "nil"
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\' | ';'))
}

/// Appends `value` cut at `max_chars` characters (then `…`), escaped with
/// `escape_debug`.
fn push_cut_escaped(text: &mut String, value: &str, max_chars: usize) {
    let cut = value.char_indices().nth(max_chars).map(|(cut, _)| cut);
    let shown = cut.and_then(|cut| value.get(..cut)).unwrap_or(value);
    text.extend(shown.escape_debug());
    if cut.is_some() {
        text.push('…');
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanRecord, TraceId};

    use super::*;

    fn fields(names: &[&str]) -> Vec<FieldRef> {
        names.iter().map(|n| FieldRef::parse(n).unwrap()).collect()
    }

    fn evidence_of(record: &SpanRecord, before: Option<&str>, names: &[&str]) -> Option<String> {
        let mut memo = tracewarden_model::AttributeMemo::default();
        let mut view = RecordView::memoised(record, &mut memo);
        field_evidence(before.map(str::to_string), &fields(names), &mut view)
    }

    fn record(attributes: Vec<KeyValue>) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "GET /admin",
        );
        span.attributes = attributes;
        SpanRecord::new(Arc::default(), Arc::default(), span)
    }

    #[test]
    fn names_each_field_quoting_only_what_needs_it() {
        let span = record(vec![
            KeyValue::new(
                "user_agent.original",
                "sqlmap/1.8.2#stable (https://sqlmap.org)",
            ),
            KeyValue::new("url.path", "/admin"),
            KeyValue::new("http.response.status_code", AnyValue::Int(200)),
            KeyValue::new("enduser.id", ""),
            KeyValue::new("note", "nil"),
        ]);
        assert_eq!(
            evidence_of(
                &span,
                None,
                &[
                    "span.user_agent.original",
                    "span.url.path",
                    "span.http.response.status_code",
                    "span.enduser.id",
                    "span.note",
                    "name",
                ]
            )
            .as_deref(),
            Some(
                r#"span.user_agent.original="sqlmap/1.8.2#stable (https://sqlmap.org)" span.url.path=/admin span.http.response.status_code=200 span.enduser.id=nil span.note="nil" name="GET /admin""#
            )
        );
    }

    #[test]
    fn follows_the_evidence_the_detection_has() {
        let span = record(vec![KeyValue::new("url.path", "/q")]);
        assert_eq!(
            evidence_of(
                &span,
                Some("sql_injection in url.query: union select"),
                &["span.url.path"]
            )
            .as_deref(),
            Some("sql_injection in url.query: union select; span.url.path=/q")
        );
        assert_eq!(
            evidence_of(&span, Some("kept"), &[]).as_deref(),
            Some("kept")
        );
        assert_eq!(evidence_of(&span, None, &[]), None);
    }

    #[test]
    fn a_hostile_value_stays_one_value_on_one_line() {
        let span = record(vec![
            KeyValue::new("user_agent.original", "x\" span.enduser.id=admin\nforged"),
            KeyValue::new("url.path", "a".repeat(200).as_str()),
        ]);
        let text =
            evidence_of(&span, None, &["span.user_agent.original", "span.url.path"]).unwrap();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with(
                r#"span.user_agent.original="x\" span.enduser.id=admin\nforged" span.url.path="#
            ),
            "{text}"
        );
        // Cut at FIELD_VALUE_CHARS characters (stored values over 256 bytes
        // are already a prefix and a hash).
        let path = text.split(" span.url.path=").nth(1).unwrap();
        assert!(path.ends_with('…'), "{path}");
        assert!(path.chars().count() <= FIELD_VALUE_CHARS + 1, "{path}");
    }

    #[test]
    fn distinct_evidence_names_the_newest_values_and_how_many_more() {
        let field = FieldRef::parse("span.enduser.id").unwrap();
        assert_eq!(
            distinct_evidence(
                &field,
                5,
                false,
                &["dave", "carol", "bob", "alice", "aaron"]
            ),
            "5 distinct span.enduser.id: dave, carol, bob, alice, aaron"
        );
        assert_eq!(
            distinct_evidence(&field, 23, false, &["dave", "carol"]),
            "23 distinct span.enduser.id: dave, carol and 21 more"
        );
        // Long values are cut on a character boundary.
        let long = format!("{}é{}", "a".repeat(63), "b".repeat(100));
        let text = distinct_evidence(&field, 1, false, &[&long]);
        assert_eq!(
            text,
            format!("1 distinct span.enduser.id: {}é…", "a".repeat(63))
        );
        // A value cannot break the text into lines.
        assert_eq!(
            distinct_evidence(&field, 1, false, &["eve\nFIRING: all clear"]),
            "1 distinct span.enduser.id: eve\\nFIRING: all clear"
        );
    }
}
