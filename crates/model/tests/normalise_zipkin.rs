//! Normalisation of real Zipkin v2 traces (the Zipkin UI's test data,
//! including SmartThings traces with 401s), read from the copies the ingest
//! crate keeps with their sources and licence (crates/ingest/tests/fixtures):
//! tags are strings there, with `http.path`, `http.method`,
//! `http.status_code`, `http.url` and `error`.

use std::path::PathBuf;

use serde_json::Value;
use tracewarden_model::{
    AnyValue, KeyValue, Span, SpanId, SpanKind, StatusCode, TraceId, normalise,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ingest/tests/fixtures/zipkin-v2")
}

/// The spans of one fixture file: a JSON array of Zipkin v2 spans (two files
/// hold a single span object).
fn zipkin_spans(name: &str) -> Vec<(Span, Vec<KeyValue>)> {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let list = match json {
        Value::Array(items) => items,
        one => vec![one],
    };
    list.iter()
        .enumerate()
        .map(|(n, zipkin)| {
            let id = (n as u64 + 1).to_be_bytes();
            let mut span = Span::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes(id),
                "zipkin",
            );
            span.kind = match zipkin["kind"].as_str() {
                Some("SERVER") => SpanKind::Server,
                Some("CLIENT") => SpanKind::Client,
                Some("PRODUCER") => SpanKind::Producer,
                Some("CONSUMER") => SpanKind::Consumer,
                _ => SpanKind::Unspecified,
            };
            if let Some(tags) = zipkin["tags"].as_object() {
                for (key, value) in tags {
                    let text = value.as_str().unwrap_or_default();
                    span.attributes.push(KeyValue::new(key.as_str(), text));
                }
            }
            let tags = span.attributes.clone();
            (span, tags)
        })
        .collect()
}

const ZIPKIN_LEGACY: [&str; 6] = [
    "http.path",
    "http.method",
    "http.status_code",
    "http.url",
    "http.host",
    "error",
];

#[test]
fn zipkin_fixtures_normalise_without_loss() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap_or_else(|e| panic!("listing {}: {e}", fixtures().display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the Zipkin fixtures, found {files:?}"
    );

    let mut spans_seen = 0;
    let mut status_codes = 0;
    let mut errors = 0;
    for file in &files {
        for (mut span, tags) in zipkin_spans(file) {
            spans_seen += 1;
            normalise::span(&mut span);
            let context = format!("{file}, tags {tags:?}");
            for kv in &span.attributes {
                assert!(
                    !ZIPKIN_LEGACY.contains(&kv.key.as_str()),
                    "{} left in attributes: {context}",
                    kv.key
                );
            }
            for tag in &tags {
                assert!(
                    span.attributes.contains(tag) || span.original_attributes.contains(tag),
                    "tag {tag:?} lost: {context}"
                );
            }
            if let Some(code) = span.attribute("http.response.status_code") {
                assert!(
                    matches!(code, AnyValue::Int(100..=599)),
                    "status code {code:?}: {context}"
                );
                status_codes += 1;
            }
            if tags.iter().any(|kv| kv.key == "error") {
                assert_eq!(span.status.code, StatusCode::Error, "{context}");
                errors += 1;
            }
            if let Some(path) = tags.iter().find(|kv| kv.key == "http.path") {
                assert_eq!(span.attribute("url.path"), Some(&path.value), "{context}");
            }
        }
    }
    assert!(spans_seen > 1000, "only {spans_seen} spans");
    assert!(status_codes >= 15, "only {status_codes} status codes");
    assert!(errors >= 5, "only {errors} error tags");
}

#[test]
fn smartthings_oauth_401s_become_integer_status_codes() {
    let spans = zipkin_spans("smartthings-oauth-authorization.json");
    let unauthorised: Vec<Span> = spans
        .into_iter()
        .map(|(mut span, _)| {
            normalise::span(&mut span);
            span
        })
        .filter(|span| span.attribute("http.response.status_code") == Some(&AnyValue::Int(401)))
        .collect();
    assert!(!unauthorised.is_empty());
    for span in &unauthorised {
        assert!(
            span.original_attributes
                .contains(&KeyValue::new("http.status_code", "401"))
        );
    }
}
