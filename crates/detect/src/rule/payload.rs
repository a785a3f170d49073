//! The `payload` section of match and threshold rules: besides its TraceQL
//! condition, a span must carry an attack payload (SQL injection, XSS, path
//! traversal, command injection, see [`crate::inject`]) in one of the named
//! string attributes.
//!
//! TraceQL can only compare values; telling `O'Brien` from `' OR '1'='1`
//! needs the lexers of [`crate::inject`], so the payload test is a second
//! stage, run only on spans that already satisfy the condition.

use tracewarden_model::{AnyValue, AttributeKey, RecordView, VerdictSlot};

use crate::inject::{self, AttackClass};

/// Most entries of `payload.fields`.
pub const MAX_PAYLOAD_FIELDS: usize = 16;
/// Longest attribute name in `payload.fields`, in bytes.
pub const MAX_PAYLOAD_FIELD_BYTES: usize = 256;

/// The detector names of rule files, in [`AttackClass::ALL`] order.
pub const DETECTOR_NAMES: [&str; 4] = [
    "sql_injection",
    "xss",
    "path_traversal",
    "command_injection",
];

/// The class a rule file names (`sql_injection`, `xss`, `path_traversal`,
/// `command_injection`).
pub fn detector_from_name(name: &str) -> Option<AttackClass> {
    Some(match name {
        "sql_injection" => AttackClass::SqlInjection,
        "xss" => AttackClass::CrossSiteScripting,
        "path_traversal" => AttackClass::PathTraversal,
        "command_injection" => AttackClass::CommandInjection,
        _ => return None,
    })
}

/// The name of a class as rule files spell it (the inverse of
/// [`detector_from_name`]).
pub fn detector_name(class: AttackClass) -> &'static str {
    match class {
        AttackClass::SqlInjection => "sql_injection",
        AttackClass::CrossSiteScripting => "xss",
        AttackClass::PathTraversal => "path_traversal",
        AttackClass::CommandInjection => "command_injection",
    }
}

/// `payload:` of a rule: which detectors run on which span attributes.
#[derive(Clone, Debug)]
pub struct PayloadMatch {
    /// Detectors, in the order written, without repeats.
    detect: Vec<AttackClass>,
    /// Span attribute names (`url.query`), in the order written, without
    /// repeats.
    fields: Vec<AttributeKey>,
    /// Per field: where the engine's memo keeps that this span's value of
    /// the field holds no payload of any class. The pack's four injection
    /// rules read the same fields of each span; the first scans a field
    /// for every class, and the others skip it when it is clean (nearly
    /// always).
    clean: Vec<VerdictSlot>,
}

/// What a rule's payload test means: its detectors and fields.
impl PartialEq for PayloadMatch {
    fn eq(&self, other: &Self) -> bool {
        self.detect == other.detect && self.fields == other.fields
    }
}

impl Eq for PayloadMatch {}

/// The remembered verdict of a field whose value holds no payload (a field
/// with one is not remembered: the finding is read again from the
/// per-thread cache of [`inject::findings_cached`]).
const CLEAN: u8 = 1;

/// A payload found in one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadHit<'a> {
    pub class: AttackClass,
    /// The attribute the payload was in.
    pub field: &'a str,
    /// Which detector rule fired, e.g. `"union select"`.
    pub reason: &'static str,
}

impl PayloadHit<'_> {
    /// The evidence of a detection: `sql_injection in url.query: union select`.
    pub fn evidence(&self) -> String {
        format!(
            "{} in {}: {}",
            detector_name(self.class),
            self.field,
            self.reason
        )
    }
}

impl PayloadMatch {
    pub fn new(detect: Vec<AttackClass>, fields: Vec<AttributeKey>) -> PayloadMatch {
        let clean = fields.iter().map(|_| VerdictSlot::new()).collect();
        PayloadMatch {
            detect,
            fields,
            clean,
        }
    }

    /// Detectors, in the order written.
    pub fn detect(&self) -> &[AttackClass] {
        &self.detect
    }

    /// Span attribute names, in the order written.
    pub fn fields(&self) -> &[AttributeKey] {
        &self.fields
    }

    /// The first payload found, trying fields in order and, for each,
    /// detectors in order. Only string attributes of the span are scanned
    /// (request fields are strings; a number cannot carry a payload).
    /// Allocates nothing when no field is present (binding a verdict slot,
    /// once per field name in the process, aside).
    pub fn find<'a>(&'a self, view: &mut RecordView<'_, '_>) -> Option<PayloadHit<'a>> {
        for (field, clean) in self.fields.iter().zip(&self.clean) {
            // Another rule has already scanned this field of this span.
            if view.verdict(clean) == Some(CLEAN) {
                continue;
            }
            let value = view
                .span_attribute(field)
                .and_then(AnyValue::as_str)
                .filter(|value| !value.is_empty());
            // Scanned for every class at once (and cached per value: traffic
            // repeats values), so the other rules can skip a clean field.
            let findings = value.map_or([None; 4], inject::findings_cached);
            if findings.iter().all(Option::is_none) {
                view.remember_verdict(clean, || format!("payload {field}"), CLEAN);
                continue;
            }
            for &class in &self.detect {
                if let Some(finding) = findings[inject::class_index(class)] {
                    return Some(PayloadHit {
                        class,
                        field,
                        reason: finding.reason,
                    });
                }
            }
        }
        None
    }
}

/// Whether `name` can be a span attribute name in `payload.fields`: not
/// empty, no whitespace or control characters, at most
/// [`MAX_PAYLOAD_FIELD_BYTES`].
pub(crate) fn check_field_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty attribute name".to_string());
    }
    if name.len() > MAX_PAYLOAD_FIELD_BYTES {
        return Err(format!(
            "attribute names are at most {MAX_PAYLOAD_FIELD_BYTES} bytes"
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("attribute names have no spaces or control characters".to_string());
    }
    if name.starts_with("span.") || name.starts_with("resource.") || name.starts_with('.') {
        return Err(format!(
            "write the span attribute name alone (e.g. `url.query`), not a TraceQL field; did you mean `{}`?",
            name.trim_start_matches("span.")
                .trim_start_matches("resource.")
                .trim_start_matches('.')
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{KeyValue, Span, SpanId, SpanRecord, TraceId};

    use super::*;

    fn record(attributes: &[(&str, AnyValue)]) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "GET /search",
        );
        for (k, v) in attributes {
            span.attributes.push(KeyValue::new(*k, v.clone()));
        }
        SpanRecord {
            resource: Arc::default(),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn payload(detect: &[AttackClass], fields: &[&str]) -> PayloadMatch {
        PayloadMatch::new(
            detect.to_vec(),
            fields.iter().map(|f| (*f).into()).collect(),
        )
    }

    #[test]
    fn names_round_trip_for_every_class() {
        for (class, name) in AttackClass::ALL.iter().zip(DETECTOR_NAMES) {
            assert_eq!(detector_from_name(name), Some(*class));
            assert_eq!(detector_name(*class), name);
        }
        assert_eq!(detector_from_name("sqli"), None);
    }

    #[test]
    fn finds_the_payload_in_the_first_field_that_has_one() {
        let p = payload(
            &[AttackClass::SqlInjection, AttackClass::PathTraversal],
            &["url.query", "url.path"],
        );
        let span = record(&[
            ("url.path", AnyValue::from("/static/../../etc/passwd")),
            ("url.query", AnyValue::from("q=O%27Brien")),
        ]);
        let hit = p
            .find(&mut RecordView::new(&span))
            .unwrap_or_else(|| panic!("no hit"));
        assert_eq!(hit.class, AttackClass::PathTraversal);
        assert_eq!(hit.field, "url.path");
        assert!(
            hit.evidence().starts_with("path_traversal in url.path: "),
            "{}",
            hit.evidence()
        );

        let span = record(&[("url.query", AnyValue::from("id=1' UNION SELECT 1,2--"))]);
        let hit = p
            .find(&mut RecordView::new(&span))
            .unwrap_or_else(|| panic!("no hit"));
        assert_eq!(hit.class, AttackClass::SqlInjection);
        assert_eq!(hit.field, "url.query");
    }

    #[test]
    fn only_the_named_detectors_and_string_fields_count() {
        let p = payload(&[AttackClass::CrossSiteScripting], &["url.query"]);
        // SQL injection is not asked for.
        let span = record(&[("url.query", AnyValue::from("id=1' UNION SELECT 1,2--"))]);
        assert_eq!(p.find(&mut RecordView::new(&span)), None);
        // Not a named field.
        let span = record(&[("url.full", AnyValue::from("q=<script>alert(1)</script>"))]);
        assert_eq!(p.find(&mut RecordView::new(&span)), None);
        // Not a string.
        let span = record(&[("url.query", AnyValue::Int(1))]);
        assert_eq!(p.find(&mut RecordView::new(&span)), None);
        let span = record(&[("url.query", AnyValue::from("q=<script>alert(1)</script>"))]);
        assert_eq!(
            p.find(&mut RecordView::new(&span)).map(|h| h.class),
            Some(AttackClass::CrossSiteScripting)
        );
    }

    #[test]
    fn rules_sharing_a_span_memo_find_what_each_finds_alone() {
        use tracewarden_model::AttributeMemo;
        // The pack's shape: one rule per class over the same fields, one
        // after the other on each span, through one memo.
        let rules: Vec<PayloadMatch> = AttackClass::ALL
            .iter()
            .map(|&class| payload(&[class], &["url.query", "url.path"]))
            .collect();
        let both = payload(
            &[
                AttackClass::CommandInjection,
                AttackClass::CrossSiteScripting,
            ],
            &["url.path", "url.query"],
        );
        let spans = [
            record(&[("url.query", AnyValue::from("q=<script>alert(1)</script>"))]),
            record(&[("url.query", AnyValue::from("city=Berlin&days=3"))]),
            record(&[
                ("url.query", AnyValue::from("id=1' UNION SELECT 1,2--")),
                ("url.path", AnyValue::from("/static/../../etc/passwd")),
            ]),
            record(&[("url.path", AnyValue::from("/api/products/42"))]),
            record(&[(
                "url.query",
                AnyValue::from("host=example.com;cat /etc/passwd"),
            )]),
            record(&[("url.query", AnyValue::from("q=<script>alert(1)</script>"))]),
        ];
        let mut memo = AttributeMemo::new();
        let mut found = 0;
        for span in &spans {
            let mut view = RecordView::memoised(span, &mut memo);
            for rule in rules.iter().chain([&both]) {
                let shared = rule.find(&mut view);
                assert_eq!(shared, rule.find(&mut RecordView::new(span)), "{rule:?}");
                found += usize::from(shared.is_some());
            }
        }
        // xss twice (and `both` twice); sqli once; traversal twice (the
        // path, and `/etc/passwd` in a query); command injection once (and
        // `both` once).
        assert_eq!(found, 9);
    }

    #[test]
    fn field_names_are_checked() {
        assert!(check_field_name("url.query").is_ok());
        assert!(check_field_name("http.request.header.x-forwarded-for").is_ok());
        assert!(check_field_name("").is_err());
        assert!(check_field_name("url query").is_err());
        let e = check_field_name("span.url.query").unwrap_err();
        assert!(e.contains("`url.query`"), "{e}");
        assert!(check_field_name(&"a".repeat(MAX_PAYLOAD_FIELD_BYTES + 1)).is_err());
    }
}
