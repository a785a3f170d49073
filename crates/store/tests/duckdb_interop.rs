//! Segments are plain Parquet that other engines read: DuckDB (from PyPI)
//! queries a segment written here and finds the same spans, the same values
//! in dedicated columns and in the generic attribute list, the same
//! resources (joined by `resource_id`), timestamps and log bodies.
//!
//! Needs Python with DuckDB: `TRACEWARDEN_PYTHON`, else the repository's
//! `.venv/bin/python`, which `scripts/python-env` creates. Without either
//! the test fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod segment_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use segment_support::*;
use serde_json::Value;
use tracewarden_model::AnyValue;
use tracewarden_store::segment::{logs_file_name, resources_file_name, spans_file_name};
use tracewarden_store::{SegmentWriteOptions, write_segment};

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("TRACEWARDEN_PYTHON") {
        return PathBuf::from(python);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = repo.join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with DuckDB: run scripts/python-env (it creates {}), or set TRACEWARDEN_PYTHON",
        venv.display()
    );
    venv
}

/// The queries; prints one JSON object.
const QUERIES: &str = r#"
import json, os, sys
import duckdb

spans, logs, resources, client, span_hex, trace_hex = sys.argv[1:7]
db = duckdb.connect()
def one(sql, *params):
    return db.execute(sql, list(params)).fetchone()
def rows(sql, *params):
    return [list(r) for r in db.execute(sql, list(params)).fetchall()]

out = {}
out["spans"] = one("SELECT count(*), count(DISTINCT trace_id), min(epoch_ns(start_time)), max(epoch_ns(end_time)) FROM read_parquet(?)", spans)
out["by_client"] = one("SELECT count(*) FROM read_parquet(?) WHERE client_address = ?", spans, client)
out["status"] = rows("SELECT http_response_status_code, count(*) FROM read_parquet(?) GROUP BY 1 ORDER BY 1 NULLS FIRST", spans)
out["services"] = rows("""
    SELECT s.service_name, list_filter(r.resource_attributes, lambda a: a.key = 'service.name')[1].str, count(*)
    FROM read_parquet(?) s JOIN read_parquet(?) r USING (resource_id) GROUP BY ALL ORDER BY 1""", spans, resources)
# Over every segment of the directory: resource ids are per segment.
out["all_segments"] = one("""
    SELECT count(*), count(DISTINCT s.filename) FROM read_parquet(? || '/*.spans.parquet', filename = true) s
    JOIN read_parquet(? || '/*.resources.parquet', filename = true) r
      ON s.resource_id = r.resource_id AND left(parse_filename(s.filename), 20) = left(parse_filename(r.filename), 20)
    WHERE s.service_name = list_filter(r.resource_attributes, lambda a: a.key = 'service.name')[1].str""",
    os.path.dirname(spans), os.path.dirname(spans))
out["log_resources"] = one("""
    SELECT count(*), count(DISTINCT resource_id) FROM read_parquet(?) l JOIN read_parquet(?) r USING (resource_id)""", logs, resources)
out["peer_address"] = one("""
    SELECT count(*) FROM (SELECT unnest(attributes) AS a FROM read_parquet(?))
    WHERE a.key = 'network.peer.address' AND a.str IS NOT NULL""", spans)
out["span"] = one("""
    SELECT lower(hex(trace_id)), name, kind, epoch_ns(start_time), duration_ns, url_path, user_agent_original,
           list_filter(attributes, lambda a: a.key = 'network.peer.address')[1].str
    FROM read_parquet(?) WHERE lower(hex(span_id)) = ?""", spans, span_hex)
out["trace"] = one("SELECT count(*) FROM read_parquet(?) WHERE trace_id = unhex(?)", spans, trace_hex)
out["logs"] = one("""
    SELECT count(*), count(trace_id), count(body.str), count(body.int), count(body.json)
    FROM read_parquet(?)""", logs)
out["log_json"] = rows("""
    SELECT body.json FROM read_parquet(?) WHERE body.json IS NOT NULL ORDER BY 1 LIMIT 3""", logs)
print(json.dumps(out))
"#;

#[test]
fn duckdb_reads_a_segment_and_finds_what_was_written() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let spans = Workload::new(21).spans(5_000);
    let logs = Random::new(21).logs(400, 60);
    let options = SegmentWriteOptions {
        row_group_rows: 1_500,
        ..SegmentWriteOptions::default()
    };
    write_segment(
        dir.path(),
        9,
        &spans.iter().collect::<Vec<_>>(),
        &logs.iter().collect::<Vec<_>>(),
        &options,
    )
    .unwrap();
    // A second segment beside it, of other services' spans in another order.
    let other = Workload::new(22).spans(700);
    write_segment(
        dir.path(),
        10,
        &other.iter().rev().collect::<Vec<_>>(),
        &[],
        &options,
    )
    .unwrap();
    let spans_path = dir.path().join(spans_file_name(9));
    let logs_path = dir.path().join(logs_file_name(9));
    let resources_path = dir.path().join(resources_file_name(9));

    // What DuckDB should find, computed from the spans written.
    let str_attr = |s: &tracewarden_store::SpanRecord, key: &str| {
        s.span
            .attribute(key)
            .and_then(AnyValue::as_str)
            .map(str::to_string)
    };
    let client = str_attr(&spans[0], "client.address").unwrap();
    let probe = &spans[1234];
    let probe_trace = probe.span.trace_id;
    let mut statuses: BTreeMap<Option<i64>, u64> = BTreeMap::new();
    let mut services: BTreeMap<String, u64> = BTreeMap::new();
    for s in &spans {
        *statuses
            .entry(
                s.span
                    .attribute("http.response.status_code")
                    .and_then(AnyValue::as_i64),
            )
            .or_default() += 1;
        *services
            .entry(s.resource.service_name().to_string())
            .or_default() += 1;
    }

    let output = Command::new(&python)
        .arg("-c")
        .arg(QUERIES)
        .arg(&spans_path)
        .arg(&logs_path)
        .arg(&resources_path)
        .arg(&client)
        .arg(probe.span.span_id.to_hex())
        .arg(probe_trace.to_hex())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/python-env",
                python.display()
            )
        });
    assert!(
        output.status.success(),
        "DuckDB failed ({}; run scripts/python-env if duckdb is missing):\n{}",
        python.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();

    let distinct_traces = spans
        .iter()
        .map(|s| s.span.trace_id)
        .collect::<std::collections::HashSet<_>>()
        .len();
    // Nanoseconds exactly (DuckDB before 2.0 read them as microseconds).
    let min_start = spans
        .iter()
        .map(|s| s.span.start_time_unix_nano)
        .min()
        .unwrap();
    let max_end = spans
        .iter()
        .map(|s| s.span.end_time_unix_nano)
        .max()
        .unwrap();
    assert_eq!(
        out["spans"],
        serde_json::json!([spans.len(), distinct_traces, min_start, max_end])
    );

    let by_client = spans
        .iter()
        .filter(|s| str_attr(s, "client.address").as_deref() == Some(&client))
        .count();
    assert_eq!(out["by_client"], serde_json::json!([by_client]));

    let statuses: Vec<Value> = statuses
        .into_iter()
        .map(|(code, n)| serde_json::json!([code, n]))
        .collect();
    assert_eq!(out["status"], Value::Array(statuses));

    let services: Vec<Value> = services
        .into_iter()
        .map(|(name, n)| serde_json::json!([name, name, n]))
        .collect();
    assert_eq!(out["services"], Value::Array(services));
    assert_eq!(
        out["all_segments"],
        serde_json::json!([spans.len() + other.len(), 2])
    );
    // Every log record finds its resource too, each distinct (resource,
    // scope) pair stored once.
    let log_resources = logs
        .iter()
        .map(|l| {
            (
                std::sync::Arc::as_ptr(&l.resource),
                std::sync::Arc::as_ptr(&l.scope),
            )
        })
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(
        out["log_resources"],
        serde_json::json!([logs.len(), log_resources])
    );

    // Only network.peer.address stays in the generic list in this workload.
    let peer = spans
        .iter()
        .filter(|s| str_attr(s, "network.peer.address").is_some())
        .count();
    assert_eq!(out["peer_address"], serde_json::json!([peer]));

    assert_eq!(
        out["span"],
        serde_json::json!([
            probe_trace.to_hex(),
            probe.span.name.as_str(),
            probe.span.kind as i32,
            probe.span.start_time_unix_nano,
            probe.span.duration_nanos(),
            str_attr(probe, "url.path"),
            str_attr(probe, "user_agent.original"),
            str_attr(probe, "network.peer.address"),
        ])
    );
    let in_trace = spans
        .iter()
        .filter(|s| s.span.trace_id == probe_trace)
        .count();
    assert_eq!(out["trace"], serde_json::json!([in_trace]));

    let count =
        |f: &dyn Fn(&tracewarden_store::LogEntry) -> bool| logs.iter().filter(|l| f(l)).count();
    assert_eq!(
        out["logs"],
        serde_json::json!([
            logs.len(),
            count(&|l| l.record.trace_id.is_some()),
            count(&|l| matches!(l.record.body, AnyValue::Str(_))),
            count(&|l| matches!(l.record.body, AnyValue::Int(_))),
            count(&|l| matches!(l.record.body, AnyValue::Array(_) | AnyValue::KvList(_))),
        ])
    );
    // Arrays and key-value lists are OTLP/JSON text that JSON functions read.
    for row in out["log_json"].as_array().unwrap() {
        let text = row[0].as_str().unwrap();
        let json: Value = serde_json::from_str(text).unwrap();
        assert!(
            json.get("arrayValue").is_some() || json.get("kvlistValue").is_some(),
            "{text}"
        );
    }
}
