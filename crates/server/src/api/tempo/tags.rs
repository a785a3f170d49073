//! Tag names and tag values for Tempo's search-tags endpoints, computed over
//! a slice of span records (the store hands over the spans of the requested
//! time range; everything here is pure, so it is tested without a store).
//!
//! Tempo's vocabulary: a *tag* is an attribute name, in a *scope* (`span`,
//! `resource`, `event`, `link`, `instrumentation`), or an *intrinsic* (a
//! field every span has: `name`, `status`, `kind`, ...). The v2 endpoints
//! name a tag by its TraceQL identifier (`span.http.route`,
//! `resource.service.name`, `.service.name` for either, `name`, `span:name`).
//!
//! Results are distinct and sorted. Two caps keep a response bounded however
//! many distinct values the data holds: a number of names or values, and,
//! for values, a byte budget (Tempo's `max_bytes_per_tag_values_query` is
//! the same idea). Once a cap is reached no new entry is added, so a capped
//! answer holds the first entries found (in the store's order, by start
//! time), sorted.

use std::collections::BTreeSet;

use serde::Serialize;
use tracewarden_model::{AnyValue, KeyValue, SpanRecord};

/// Names returned per scope when the request gives no `limit`.
pub const DEFAULT_MAX_TAG_NAMES: usize = 5_000;
/// Values returned when the request gives no `limit`.
pub const DEFAULT_MAX_TAG_VALUES: usize = 5_000;
/// Bytes of values (their text) returned at most, whatever the `limit`.
pub const MAX_TAG_VALUE_BYTES: usize = 1_000_000;

/// Tempo's intrinsic tag names, as `/api/v2/search/tags?scope=intrinsic`
/// lists them (both the legacy and the `scope:name` spellings).
pub const INTRINSICS: [&str; 20] = [
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:kind",
    "span:name",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

/// Why a tag request was refused (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    #[error("please provide a valid tagName: {0}")]
    InvalidTagName(String),
}

/// The scope of a tag-names request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagScope {
    Span,
    Resource,
    Intrinsic,
    Event,
    Link,
    Instrumentation,
}

impl TagScope {
    /// Reads the `scope` parameter; `None` (no parameter, empty, or `all`) is
    /// every scope.
    pub fn parse(text: Option<&str>) -> Result<Option<TagScope>, TagError> {
        Ok(Some(match text.unwrap_or("") {
            "" | "all" => return Ok(None),
            "span" => TagScope::Span,
            "resource" => TagScope::Resource,
            "intrinsic" => TagScope::Intrinsic,
            "event" => TagScope::Event,
            "link" => TagScope::Link,
            "instrumentation" => TagScope::Instrumentation,
            other => return Err(TagError::InvalidScope(truncate(other))),
        }))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TagScope::Span => "span",
            TagScope::Resource => "resource",
            TagScope::Intrinsic => "intrinsic",
            TagScope::Event => "event",
            TagScope::Link => "link",
            TagScope::Instrumentation => "instrumentation",
        }
    }
}

/// One scope of the v2 tag-names answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeTags {
    pub name: &'static str,
    pub tags: Vec<String>,
}

/// `/api/search/tags`: attribute names, one sorted list. Without a scope,
/// span and resource names together, as Tempo does; intrinsics only when
/// asked for.
pub fn tag_names_v1(records: &[SpanRecord], scope: Option<TagScope>, limit: usize) -> Vec<String> {
    match scope {
        None => {
            let mut names = attribute_names(records, TagScope::Span, limit);
            names.extend(attribute_names(records, TagScope::Resource, limit));
            // Both lists were capped, their union may not be.
            names.into_iter().take(limit).collect()
        }
        Some(scope) => names_of_scope(records, scope, limit),
    }
}

/// `/api/v2/search/tags`: names by scope. Without a scope: `span`,
/// `resource` and `intrinsic` always, then `event`, `link` and
/// `instrumentation` when the data has any.
pub fn tag_names_v2(
    records: &[SpanRecord],
    scope: Option<TagScope>,
    limit: usize,
) -> Vec<ScopeTags> {
    let scope_tags = |scope: TagScope| ScopeTags {
        name: scope.as_str(),
        tags: names_of_scope(records, scope, limit),
    };
    match scope {
        Some(scope) => vec![scope_tags(scope)],
        None => {
            let mut out: Vec<ScopeTags> = [TagScope::Span, TagScope::Resource, TagScope::Intrinsic]
                .into_iter()
                .map(scope_tags)
                .collect();
            for optional in [TagScope::Event, TagScope::Link, TagScope::Instrumentation] {
                let tags = scope_tags(optional);
                if !tags.tags.is_empty() {
                    out.push(tags);
                }
            }
            out
        }
    }
}

fn names_of_scope(records: &[SpanRecord], scope: TagScope, limit: usize) -> Vec<String> {
    match scope {
        TagScope::Intrinsic => INTRINSICS
            .iter()
            .take(limit)
            .map(|s| s.to_string())
            .collect(),
        other => attribute_names(records, other, limit).into_iter().collect(),
    }
}

/// Distinct attribute names of one (non-intrinsic) scope, at most `limit`.
fn attribute_names(records: &[SpanRecord], scope: TagScope, limit: usize) -> BTreeSet<String> {
    fn add(names: &mut BTreeSet<String>, list: &[KeyValue], limit: usize) {
        for kv in list {
            if names.len() >= limit {
                return;
            }
            if !names.contains(kv.key.as_str()) {
                names.insert(kv.key.to_string());
            }
        }
    }
    let mut names = BTreeSet::new();
    for record in records {
        if names.len() >= limit {
            break;
        }
        match scope {
            TagScope::Span => add(&mut names, &record.span.attributes, limit),
            TagScope::Resource => add(&mut names, &record.resource.attributes, limit),
            TagScope::Instrumentation => add(&mut names, &record.scope.attributes, limit),
            TagScope::Event => {
                for event in &record.span.events {
                    add(&mut names, &event.attributes, limit);
                }
            }
            TagScope::Link => {
                for link in &record.span.links {
                    add(&mut names, &link.attributes, limit);
                }
            }
            TagScope::Intrinsic => {}
        }
    }
    names
}

/// Where an attribute tag is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeScope {
    Span,
    Resource,
    /// `.name`: span attributes and resource attributes.
    Unscoped,
    Event,
    Link,
    Instrumentation,
}

/// An intrinsic whose values can be listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intrinsic {
    Name,
    Status,
    StatusMessage,
    Kind,
    RootName,
    RootServiceName,
    EventName,
    InstrumentationName,
    InstrumentationVersion,
    /// Durations (`duration`, `traceDuration`, `event:timeSinceStart`, ...):
    /// a list of every duration seen is no help for autocompletion, so the
    /// answer is empty.
    Duration,
}

/// A v2 tag: a TraceQL identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    Attribute { scope: AttributeScope, name: String },
    Intrinsic(Intrinsic),
}

impl Tag {
    /// Reads a TraceQL identifier: `span.a.b`, `resource.a`, `.a`,
    /// `event.a`, `link.a`, `instrumentation.a` (the name may be quoted:
    /// `span."a b"`), or an intrinsic (`name`, `span:name`, `status`, ...).
    pub fn parse(text: &str) -> Result<Tag, TagError> {
        const SCOPES: [(&str, AttributeScope); 6] = [
            ("span.", AttributeScope::Span),
            ("resource.", AttributeScope::Resource),
            ("event.", AttributeScope::Event),
            ("link.", AttributeScope::Link),
            ("instrumentation.", AttributeScope::Instrumentation),
            (".", AttributeScope::Unscoped),
        ];
        for (prefix, scope) in SCOPES {
            if let Some(rest) = text.strip_prefix(prefix) {
                let name = rest
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .unwrap_or(rest);
                if name.is_empty() {
                    return Err(TagError::InvalidTagName(format!(
                        "`{}` names no attribute",
                        truncate(text)
                    )));
                }
                return Ok(Tag::Attribute {
                    scope,
                    name: name.to_string(),
                });
            }
        }
        let intrinsic = match text {
            "name" | "span:name" => Intrinsic::Name,
            "status" | "span:status" => Intrinsic::Status,
            "statusMessage" | "span:statusMessage" => Intrinsic::StatusMessage,
            "kind" | "span:kind" => Intrinsic::Kind,
            "rootName" | "trace:rootName" => Intrinsic::RootName,
            "rootServiceName" | "trace:rootService" => Intrinsic::RootServiceName,
            "event:name" => Intrinsic::EventName,
            "instrumentation:name" => Intrinsic::InstrumentationName,
            "instrumentation:version" => Intrinsic::InstrumentationVersion,
            "duration"
            | "span:duration"
            | "traceDuration"
            | "trace:duration"
            | "event:timeSinceStart" => Intrinsic::Duration,
            other => {
                return Err(TagError::InvalidTagName(format!(
                    "`{}` is neither a scoped attribute (`span.`, `resource.`, `.`, ...) nor an intrinsic",
                    truncate(other)
                )));
            }
        };
        Ok(Tag::Intrinsic(intrinsic))
    }
}

/// One value of the v2 tag-values answer: its TraceQL type and its text.
/// Ordered by text, then type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagValue {
    /// `string`, `int`, `float`, `bool`, or `keyword` (the fixed values of
    /// `status` and `kind`), as Tempo names them.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

impl Ord for TagValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.value, self.kind).cmp(&(&other.value, other.kind))
    }
}

impl PartialOrd for TagValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Tempo lists `status` and `kind` values from the language, not the data.
const STATUS_VALUES: [&str; 3] = ["ok", "error", "unset"];
const KIND_VALUES: [&str; 6] = [
    "client",
    "server",
    "producer",
    "consumer",
    "internal",
    "unspecified",
];

/// `/api/v2/search/tag/{tag}/values`: distinct typed values, sorted by value
/// then type, at most `limit` and [`MAX_TAG_VALUE_BYTES`].
pub fn tag_values_v2(records: &[SpanRecord], tag: &Tag, limit: usize) -> Vec<TagValue> {
    let mut collector = Collector::new(limit);
    match tag {
        Tag::Intrinsic(Intrinsic::Status) => {
            for v in STATUS_VALUES {
                collector.add("keyword", v.to_string());
            }
        }
        Tag::Intrinsic(Intrinsic::Kind) => {
            for v in KIND_VALUES {
                collector.add("keyword", v.to_string());
            }
        }
        Tag::Intrinsic(Intrinsic::Duration) => {}
        Tag::Intrinsic(intrinsic) => {
            for record in records {
                if collector.full() {
                    break;
                }
                intrinsic_values(record, *intrinsic, &mut |v| {
                    collector.add("string", v.to_string())
                });
            }
        }
        Tag::Attribute { scope, name } => {
            for record in records {
                if collector.full() {
                    break;
                }
                attribute_values(record, *scope, name, &mut |v| {
                    if let Some((kind, text)) = typed_text(v) {
                        collector.add(kind, text);
                    }
                });
            }
        }
    }
    collector.values.into_iter().collect()
}

/// `/api/search/tag/{tag}/values`: an attribute name looked up in span and
/// resource attributes, values as text. `status.code` lists the span status
/// names, as Tempo's v1 endpoint does.
pub fn tag_values_v1(records: &[SpanRecord], tag: &str, limit: usize) -> Vec<String> {
    let typed = if tag == "status.code" {
        let mut collector = Collector::new(limit);
        for v in ["unset", "ok", "error"] {
            collector.add("keyword", v.to_string());
        }
        collector.values
    } else {
        let parsed = Tag::Attribute {
            scope: AttributeScope::Unscoped,
            name: tag.to_string(),
        };
        tag_values_v2(records, &parsed, limit).into_iter().collect()
    };
    // The same text under two types (`"200"` and `200`) is one v1 value.
    typed
        .into_iter()
        .map(|v| v.value)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn intrinsic_values(record: &SpanRecord, intrinsic: Intrinsic, add: &mut dyn FnMut(&str)) {
    let span = &record.span;
    match intrinsic {
        Intrinsic::Name => add(&span.name),
        Intrinsic::StatusMessage => {
            if !span.status.message.is_empty() {
                add(&span.status.message)
            }
        }
        Intrinsic::RootName => {
            if span.is_root() {
                add(&span.name)
            }
        }
        Intrinsic::RootServiceName => {
            if span.is_root() && !record.resource.service_name().is_empty() {
                add(record.resource.service_name())
            }
        }
        Intrinsic::EventName => span.events.iter().for_each(|e| add(&e.name)),
        Intrinsic::InstrumentationName => {
            if !record.scope.name.is_empty() {
                add(&record.scope.name)
            }
        }
        Intrinsic::InstrumentationVersion => {
            if !record.scope.version.is_empty() {
                add(&record.scope.version)
            }
        }
        Intrinsic::Status | Intrinsic::Kind | Intrinsic::Duration => {}
    }
}

fn attribute_values(
    record: &SpanRecord,
    scope: AttributeScope,
    name: &str,
    add: &mut dyn FnMut(&AnyValue),
) {
    let mut from = |list: &[KeyValue]| {
        for kv in list.iter().filter(|kv| kv.key == name) {
            add(&kv.value);
        }
    };
    match scope {
        AttributeScope::Span => from(&record.span.attributes),
        AttributeScope::Resource => from(&record.resource.attributes),
        AttributeScope::Unscoped => {
            from(&record.span.attributes);
            from(&record.resource.attributes);
        }
        AttributeScope::Event => record.span.events.iter().for_each(|e| from(&e.attributes)),
        AttributeScope::Link => record.span.links.iter().for_each(|l| from(&l.attributes)),
        AttributeScope::Instrumentation => from(&record.scope.attributes),
    }
}

/// A scalar value's TraceQL type and text; arrays, maps, bytes and empty
/// values cannot be typed into a TraceQL comparison and are left out.
fn typed_text(v: &AnyValue) -> Option<(&'static str, String)> {
    Some(match v {
        AnyValue::Str(s) => ("string", s.to_string()),
        AnyValue::Int(i) => ("int", i.to_string()),
        AnyValue::Double(d) => ("float", d.to_string()),
        AnyValue::Bool(b) => ("bool", b.to_string()),
        AnyValue::Empty | AnyValue::Bytes(_) | AnyValue::Array(_) | AnyValue::KvList(_) => {
            return None;
        }
    })
}

/// Distinct values under a count limit and the byte budget.
struct Collector {
    values: BTreeSet<TagValue>,
    limit: usize,
    bytes: usize,
}

impl Collector {
    fn new(limit: usize) -> Collector {
        Collector {
            values: BTreeSet::new(),
            limit,
            bytes: 0,
        }
    }

    fn full(&self) -> bool {
        self.values.len() >= self.limit || self.bytes >= MAX_TAG_VALUE_BYTES
    }

    fn add(&mut self, kind: &'static str, value: String) {
        if self.full() || self.bytes.saturating_add(value.len()) > MAX_TAG_VALUE_BYTES {
            return;
        }
        let len = value.len();
        if self.values.insert(TagValue { kind, value }) {
            self.bytes += len;
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{Event, Resource, Scope, Span, SpanId, StatusCode, TraceId};

    use super::*;

    fn record(service: &str, name: &str, attributes: Vec<KeyValue>) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            name,
        );
        span.attributes = attributes;
        SpanRecord {
            resource: Arc::new(Resource {
                attributes: vec![
                    KeyValue::new("service.name", AnyValue::from(service)),
                    KeyValue::new("host.name", AnyValue::from("h1")),
                ],
                ..Resource::default()
            }),
            scope: Arc::new(Scope {
                name: "lib".into(),
                version: "1.2".into(),
                ..Scope::default()
            }),
            span: span.into(),
        }
    }

    fn sample() -> Vec<SpanRecord> {
        let mut child = record(
            "db",
            "SELECT",
            vec![
                KeyValue::new("http.response.status_code", AnyValue::Int(500)),
                KeyValue::new("db.system", AnyValue::from("postgresql")),
            ],
        );
        child.span_mut().parent_span_id = Some(SpanId::from_bytes([9; 8]));
        child.span_mut().status.code = StatusCode::Error;
        child.span_mut().status.message = "timeout".into();
        child.span_mut().events.push(Event {
            name: "exception".into(),
            attributes: vec![KeyValue::new("exception.type", AnyValue::from("Timeout"))],
            ..Event::default()
        });
        vec![
            record(
                "gateway",
                "GET /login",
                vec![
                    KeyValue::new("http.route", AnyValue::from("/login")),
                    KeyValue::new("http.response.status_code", AnyValue::Int(200)),
                    // The same text as an int elsewhere: two v2 values, one v1 value.
                    KeyValue::new("code", AnyValue::from("500")),
                    KeyValue::new("ratio", AnyValue::Double(0.5)),
                    KeyValue::new("ok", AnyValue::Bool(true)),
                    KeyValue::new("raw", AnyValue::Bytes(vec![1])),
                ],
            ),
            child,
            record(
                "gateway",
                "GET /login",
                vec![KeyValue::new("code", AnyValue::Int(500))],
            ),
        ]
    }

    #[test]
    fn v1_names_merge_span_and_resource_sorted() {
        let names = tag_names_v1(&sample(), None, 100);
        assert_eq!(
            names,
            [
                "code",
                "db.system",
                "host.name",
                "http.response.status_code",
                "http.route",
                "ok",
                "ratio",
                "raw",
                "service.name",
            ]
        );
        assert_eq!(
            tag_names_v1(&sample(), Some(TagScope::Resource), 100),
            ["host.name", "service.name"]
        );
        assert_eq!(
            tag_names_v1(&sample(), Some(TagScope::Intrinsic), 100).len(),
            20
        );
        assert_eq!(tag_names_v1(&sample(), None, 3).len(), 3, "limit holds");
    }

    #[test]
    fn v2_names_by_scope() {
        let scopes = tag_names_v2(&sample(), None, 100);
        let names: Vec<&str> = scopes.iter().map(|s| s.name).collect();
        assert_eq!(names, ["span", "resource", "intrinsic", "event"]);
        assert_eq!(scopes[1].tags, ["host.name", "service.name"]);
        assert_eq!(scopes[3].tags, ["exception.type"]);
        assert!(scopes[2].tags.contains(&"span:status".to_string()));
        let only = tag_names_v2(&sample(), Some(TagScope::Link), 100);
        assert_eq!(
            only,
            [ScopeTags {
                name: "link",
                tags: vec![]
            }]
        );
        let capped = tag_names_v2(&sample(), Some(TagScope::Span), 2);
        assert_eq!(capped[0].tags.len(), 2);
    }

    #[test]
    fn scopes_and_identifiers_are_validated() {
        assert_eq!(TagScope::parse(Some("all")), Ok(None));
        assert_eq!(TagScope::parse(None), Ok(None));
        assert!(matches!(
            TagScope::parse(Some("spans")),
            Err(TagError::InvalidScope(_))
        ));
        assert_eq!(
            Tag::parse("span.http.route"),
            Ok(Tag::Attribute {
                scope: AttributeScope::Span,
                name: "http.route".into()
            })
        );
        assert_eq!(
            Tag::parse("resource.\"service name\""),
            Ok(Tag::Attribute {
                scope: AttributeScope::Resource,
                name: "service name".into()
            })
        );
        assert_eq!(
            Tag::parse(".service.name"),
            Ok(Tag::Attribute {
                scope: AttributeScope::Unscoped,
                name: "service.name".into()
            })
        );
        assert_eq!(
            Tag::parse("span:status"),
            Ok(Tag::Intrinsic(Intrinsic::Status))
        );
        for bad in ["http.route", "span.", "", "span:nothing"] {
            assert!(
                matches!(Tag::parse(bad), Err(TagError::InvalidTagName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn v2_values_are_typed_distinct_and_sorted() {
        let records = sample();
        let tag = Tag::parse("span.http.response.status_code").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tag_values_v2(&records, &tag, 100),
            [
                TagValue {
                    kind: "int",
                    value: "200".into()
                },
                TagValue {
                    kind: "int",
                    value: "500".into()
                },
            ]
        );
        let code = Tag::parse(".code").unwrap_or_else(|e| panic!("{e}"));
        let values = tag_values_v2(&records, &code, 100);
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values[0].kind, "int");
        assert_eq!(values[1].kind, "string");
        let service = Tag::parse("resource.service.name").unwrap_or_else(|e| panic!("{e}"));
        let services: Vec<String> = tag_values_v2(&records, &service, 100)
            .into_iter()
            .map(|v| v.value)
            .collect();
        assert_eq!(services, ["db", "gateway"]);
        // Bytes are not a TraceQL type.
        let raw = Tag::parse("span.raw").unwrap_or_else(|e| panic!("{e}"));
        assert!(tag_values_v2(&records, &raw, 100).is_empty());
        let ratio = Tag::parse("span.ratio").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tag_values_v2(&records, &ratio, 100),
            [TagValue {
                kind: "float",
                value: "0.5".into()
            }]
        );
    }

    #[test]
    fn v2_intrinsic_values() {
        let records = sample();
        let values = |tag: &str| -> Vec<String> {
            let tag = Tag::parse(tag).unwrap_or_else(|e| panic!("{e}"));
            tag_values_v2(&records, &tag, 100)
                .into_iter()
                .map(|v| v.value)
                .collect()
        };
        assert_eq!(values("name"), ["GET /login", "SELECT"]);
        assert_eq!(values("rootName"), ["GET /login"], "the child is no root");
        assert_eq!(values("trace:rootService"), ["gateway"]);
        assert_eq!(values("statusMessage"), ["timeout"]);
        assert_eq!(values("event:name"), ["exception"]);
        assert_eq!(values("instrumentation:version"), ["1.2"]);
        assert_eq!(values("status"), ["error", "ok", "unset"]);
        assert_eq!(values("kind").len(), 6);
        assert!(values("duration").is_empty());
        let status = Tag::parse("status").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            tag_values_v2(&records, &status, 100)
                .iter()
                .all(|v| v.kind == "keyword")
        );
    }

    #[test]
    fn v1_values_are_text_and_limits_hold() {
        let records = sample();
        assert_eq!(tag_values_v1(&records, "code", 100), ["500"]);
        assert_eq!(
            tag_values_v1(&records, "service.name", 100),
            ["db", "gateway"]
        );
        assert_eq!(tag_values_v1(&records, "service.name", 1).len(), 1);
        assert_eq!(
            tag_values_v1(&records, "status.code", 100),
            ["error", "ok", "unset"]
        );
        assert!(tag_values_v1(&records, "absent", 100).is_empty());
    }

    #[test]
    fn value_bytes_are_bounded() {
        let big = "x".repeat(400_000);
        let records: Vec<SpanRecord> = (0..5)
            .map(|i| {
                record(
                    "s",
                    "n",
                    vec![KeyValue::new(
                        "blob",
                        AnyValue::from(format!("{i}{big}").as_str()),
                    )],
                )
            })
            .collect();
        let tag = Tag::parse("span.blob").unwrap_or_else(|e| panic!("{e}"));
        let values = tag_values_v2(&records, &tag, 1_000);
        let bytes: usize = values.iter().map(|v| v.value.len()).sum();
        assert_eq!(
            values.len(),
            2,
            "two 400 kB values fit in 1 MB, a third not"
        );
        assert!(bytes <= MAX_TAG_VALUE_BYTES);
    }
}
