//! The service graph, Jaeger's dependencies and the compliance report end
//! to end, against the real server: a geo-weather system (gateway ->
//! weather -> location) with one forbidden edge (gateway -> location) and
//! one third-party flow carrying an e-mail address (weather ->
//! partner.example.com), and the Zipkin SmartThings traces of
//! crates/ingest/tests/fixtures/zipkin-v2, whose expected edges were worked out by reading the
//! files (remote service names, shared span ids, `http.url` hosts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, binary, get, now_nanos, port_zero_args, post};
use http::StatusCode;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);
const MS: u64 = 1_000_000;

/// One OTLP/JSON resource-spans entry holding one span.
#[allow(clippy::too_many_arguments)]
fn span(
    trace: u32,
    id: u32,
    parent: Option<u32>,
    service: &str,
    kind: u8,
    start: u64,
    duration: u64,
    error: bool,
    attributes: &[(&str, &str)],
) -> Value {
    let attributes: Vec<Value> = attributes
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    let mut span = json!({
        "traceId": format!("{trace:032x}"), "spanId": format!("{id:016x}"),
        "name": "GET /weather", "kind": kind,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + duration).to_string(),
        "attributes": attributes,
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    if error {
        span["status"] = json!({"code": 2});
    }
    json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [span]}],
    })
}

const SERVER: u8 = 2;
const CLIENT: u8 = 3;
const GET: (&str, &str) = ("http.request.method", "GET");

/// The geo-weather traces: three through gateway -> weather -> location
/// (weather servers 10, 20, 30 ms), the first also calling the partner with
/// an e-mail in its query; a fourth straight from gateway to location
/// (failing). Users: alice (classified pii, e-mail), a `<script>` user
/// (phone by attribute name), mallory (an IBAN value).
fn geo_weather(t: u64) -> Vec<Value> {
    let mut spans = Vec::new();
    for trace in 1..=3u32 {
        let base = trace * 10;
        let at = t + u64::from(trace) * 1000 * MS;
        let user: Vec<(&str, &str)> = match trace {
            1 => vec![("enduser.id", "alice"), ("app.data.classification", "pii")],
            2 => vec![
                ("enduser.id", "<script>x</script>"),
                ("user.phone", "+1 415 555 0100"),
            ],
            _ => vec![("enduser.id", "carol")],
        };
        spans.push(span(
            trace,
            base + 1,
            None,
            "api-gateway",
            SERVER,
            at,
            50 * MS,
            false,
            &user,
        ));
        spans.push(span(
            trace,
            base + 2,
            Some(base + 1),
            "api-gateway",
            CLIENT,
            at,
            45 * MS,
            false,
            &[GET],
        ));
        let weather_ms = u64::from(trace) * 10 * MS;
        spans.push(span(
            trace,
            base + 3,
            Some(base + 2),
            "weather",
            SERVER,
            at,
            weather_ms,
            false,
            &[GET],
        ));
        spans.push(span(
            trace,
            base + 4,
            Some(base + 3),
            "weather",
            CLIENT,
            at,
            5 * MS,
            false,
            &[GET],
        ));
        spans.push(span(
            trace,
            base + 5,
            Some(base + 4),
            "location",
            SERVER,
            at,
            4 * MS,
            false,
            &[GET],
        ));
        if trace == 1 {
            spans.push(span(
                trace,
                base + 6,
                Some(base + 3),
                "weather",
                CLIENT,
                at,
                7 * MS,
                false,
                &[
                    GET,
                    ("enduser.id", "alice"),
                    ("server.address", "partner.example.com"),
                    ("url.query", "email=alice%40example.com"),
                ],
            ));
        }
    }
    let at = t + 5000 * MS;
    spans.push(span(
        4,
        41,
        None,
        "api-gateway",
        SERVER,
        at,
        9 * MS,
        false,
        &[("enduser.id", "mallory")],
    ));
    spans.push(span(
        4,
        42,
        Some(41),
        "api-gateway",
        CLIENT,
        at,
        8 * MS,
        false,
        &[GET],
    ));
    spans.push(span(
        4,
        43,
        Some(42),
        "location",
        SERVER,
        at,
        3 * MS,
        true,
        &[
            GET,
            ("enduser.id", "mallory"),
            ("transfer.target", "DE89370400440532013000"),
        ],
    ));
    spans
}

async fn start_geo_weather() -> (tempfile::TempDir, TestServer, u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tracewarden.toml");
    std::fs::write(
        &config,
        "[store]\nflush_spans = 10\n\
         [detection]\ntrace_idle = \"200ms\"\n\
         [detection.site]\nentry_services = [\"api-gateway\"]\n\
         allowed_edges = [\"api-gateway -> weather\", \"weather -> location\"]\n\
         third_parties = ['partner\\.example\\.com']\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut args = port_zero_args(&data);
    args.push("--config".into());
    args.push(config.into_os_string());
    let server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    let t = now_nanos() - 60_000 * MS;
    let body = json!({"resourceSpans": geo_weather(t)}).to_string();
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    (dir, server, t)
}

/// Polls `url` until `ready` holds of its JSON.
async fn poll(url: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let answer = get(url).await;
        assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.text());
        let json = answer.json();
        if ready(&json) {
            return json;
        }
        assert!(start.elapsed() < DEADLINE, "{url} never ready: {json:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row<'a>(items: &'a Value, key: &str, name: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i[key] == name)
        .unwrap_or_else(|| panic!("no {key} {name} in {items:#}"))
}

#[tokio::test]
async fn the_geo_weather_graph_marks_the_forbidden_edge_and_the_report_finds_the_leak() {
    let (_dir, server, t) = start_geo_weather().await;
    let (start, end) = (
        (t - 1000 * MS) / 1_000_000_000,
        (t + 10_000 * MS) / 1_000_000_000 + 1,
    );
    let period = format!("start={start}&end={end}");

    let graph = poll(
        &server.api_url(&format!("/api/v1/service-graph?{period}")),
        |g| g["spans"] == 19,
    )
    .await;
    let services: Vec<(&str, bool, u64, u64, bool)> = graph["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["entry"].as_bool().unwrap(),
                s["spans"].as_u64().unwrap(),
                s["errors"].as_u64().unwrap(),
                s["thirdParty"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        services,
        vec![
            ("api-gateway", true, 8, 0, false),
            ("location", false, 4, 1, false),
            ("partner.example.com", false, 0, 0, true),
            ("weather", false, 7, 0, false),
        ]
    );
    let edges: Vec<(&str, &str, &str, u64, u64, &str)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["caller"].as_str().unwrap(),
                e["callee"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["calls"].as_u64().unwrap(),
                e["errors"].as_u64().unwrap(),
                e["policy"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        vec![
            ("api-gateway", "location", "http", 1, 1, "violating"),
            ("api-gateway", "weather", "http", 3, 0, "allowed"),
            ("weather", "location", "http", 3, 0, "allowed"),
            ("weather", "partner.example.com", "http", 1, 0, "violating"),
        ]
    );
    let weather = &graph["edges"][1];
    assert_eq!(weather["p50Ns"], (20 * MS).to_string(), "{weather}");
    assert_eq!(weather["p99Ns"], (30 * MS).to_string(), "{weather}");
    assert_eq!(graph["start"], (start * 1_000_000_000).to_string());

    // Jaeger's shape, in milliseconds.
    let deps = get(&server.api_url(&format!(
        "/api/dependencies?endTs={}&lookback={}",
        end * 1000,
        (end - start) * 1000
    )))
    .await
    .json();
    assert_eq!(
        deps,
        json!({"data": [
            {"parent": "api-gateway", "child": "location", "callCount": 1},
            {"parent": "api-gateway", "child": "weather", "callCount": 3},
            {"parent": "weather", "child": "location", "callCount": 3},
            {"parent": "weather", "child": "partner.example.com", "callCount": 1},
        ], "total": 4, "limit": 0, "offset": 0, "errors": null})
    );
    let bad = get(&server.api_url("/api/dependencies?endTs=soon")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    let empty = get(&server.api_url("/api/v1/service-graph?start=20&end=10")).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.text());

    // The report, once the alerts are raised and the spans are in segments.
    let url = server.api_url(&format!("/api/v1/reports/compliance?{period}"));
    let report = poll(&url, |r| {
        r["summary"]["violations"] == 2
            && r["integrity"]["segmentsInPeriod"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
    })
    .await;
    let accesses: Vec<(&str, &str, &str, u64)> = report["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["user"].as_str().unwrap(),
                a["service"].as_str().unwrap(),
                a["classification"].as_str().unwrap(),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        accesses,
        vec![
            ("<script>x</script>", "api-gateway", "phone", 1),
            ("alice", "api-gateway", "classification pii", 1),
            ("alice", "weather", "email", 1),
            ("mallory", "location", "iban", 1),
        ]
    );
    assert_eq!(row(&report["users"], "user", "alice")["accesses"], 2);
    assert_eq!(
        row(&report["users"], "user", "alice")["services"],
        json!(["api-gateway", "weather"])
    );
    assert_eq!(
        row(&report["services"], "service", "api-gateway")["users"],
        2
    );
    assert_eq!(
        report["thirdPartyFlows"],
        json!([{
            "service": "weather", "destination": "partner.example.com", "field": "server.address",
            "calls": 1, "withPersonalData": 1, "classifications": ["email"],
            "firstSeen": (t + 1000 * MS).to_string(), "lastSeen": (t + 1000 * MS).to_string(),
        }])
    );
    let rules: BTreeSet<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        BTreeSet::from(["pii-to-third-party", "topology-wrong-caller"])
    );
    let wrong = row(&report["violations"], "ruleId", "topology-wrong-caller");
    assert_eq!(wrong["labels"]["callee"], "location", "{wrong}");
    assert_eq!(
        report["summary"],
        json!({"spans": 19, "personalDataSpans": 4, "users": 3, "services": 3,
               "thirdPartyCalls": 1, "thirdPartyCallsWithPersonalData": 1, "violations": 2})
    );
    let integrity = &report["integrity"];
    assert_eq!(integrity["ok"], true, "{integrity}");
    assert_eq!(integrity["signatures"], "unsigned", "{integrity}");
    assert_eq!(integrity["failures"], json!([]), "{integrity}");
    assert!(
        integrity["segmentsChecked"].as_u64().unwrap() >= 1,
        "{integrity}"
    );

    // The API's CSV and HTML.
    let csv = get(&format!("{url}&format=csv")).await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = csv.text();
    assert!(
        csv.starts_with("user,service,classification,count,first_seen,last_seen\r\n"),
        "{csv}"
    );
    assert!(csv.contains("\r\nmallory,location,iban,1,"), "{csv}");
    let html = get(&format!("{url}&format=html")).await;
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = html.text();
    assert!(
        html.contains("&lt;script&gt;x&lt;/script&gt;") && !html.contains("<script"),
        "{html}"
    );
    let bad = get(&format!("{url}&format=pdf")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());

    // The CLI, once in each format.
    let out_dir = tempfile::tempdir().unwrap();
    let cli = |format: &str, output: Option<PathBuf>| {
        let mut command = Command::new(binary());
        command.args([
            "report",
            "compliance",
            "--server",
            &server.api_url(""),
            "--start",
            &start.to_string(),
            "--end",
            &end.to_string(),
            "--format",
            format,
        ]);
        if let Some(path) = &output {
            command.arg("--output").arg(path);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        match output {
            Some(path) => std::fs::read_to_string(path).unwrap(),
            None => String::from_utf8(out.stdout).unwrap(),
        }
    };
    let json_out: Value = serde_json::from_str(&cli("json", None)).unwrap();
    assert_eq!(json_out["accesses"], report["accesses"]);
    let csv_out = cli("csv", Some(out_dir.path().join("report.csv")));
    assert_eq!(csv_out, csv);
    let html_out = cli("html", Some(out_dir.path().join("report.html")));
    assert!(html_out.contains("&lt;script&gt;x&lt;/script&gt;") && !html_out.contains("<script"));
    assert!(
        html_out.contains("intact: the manifest chain verifies"),
        "{html_out}"
    );
}

const SPANS_IN_PERIOD: u64 = 1041 + 175 - 84;

/// The SmartThings Zipkin traces: every edge read off the files, the
/// services that carry user e-mail addresses, and the two entry services.
#[tokio::test]
async fn the_smartthings_zipkin_traces_give_their_edges_and_email_services() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ingest/tests/fixtures/zipkin-v2");
    for name in [
        "smartthings-mobile-web-install.json",
        "smartthings-oauth-authorization.json",
    ] {
        let body = std::fs::read(fixtures.join(name)).unwrap();
        let answer = post(
            &server.zipkin_url("/api/v2/spans"),
            "application/json",
            body,
        )
        .await;
        assert!(answer.status.is_success(), "{name}: {}", answer.text());
    }
    // Both files are from late November 2018; 84 spans of the first have
    // no timestamp (in flight when exported), so they start at 0, outside
    // the period.
    let period = "start=2018-11-27T00:00:00Z&end=2018-12-01T00:00:00Z";
    let graph = poll(
        &server.api_url(&format!("/api/v1/service-graph?{period}")),
        |g| g["spans"] == SPANS_IN_PERIOD,
    )
    .await;
    let edges: BTreeSet<(String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["caller"].as_str().unwrap().to_string(),
                e["callee"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("account", "auth"),
        ("bookie", "account"),
        ("bookie", "auth"),
        ("bookie", "coreSrv"),
        ("bookie", "execution"),
        ("bouncer", "auth"),
        ("bouncer", "pusher"),
        ("coreSrv", "auth"),
        ("coreSrv", "strongman"),
        ("datamgmt", "account"),
        ("datamgmt", "auth"),
        ("datamgmt", "bouncer"),
        ("datamgmt", "stlogin"),
        ("execution", "alice"),
        ("execution", "auth"),
        ("execution", "bookie"),
        ("execution", "bouncer"),
        ("execution", "guardian"),
        ("guardian", "platformapi"),
        ("paperboy", "auth"),
        ("platformapi", "bookie"),
        ("platformapi", "execution"),
        ("platformapi", "gizmo"),
        ("platformapi", "paperboy"),
        // A client span without a remote service: its `http.url` host.
        ("pusher", "archiver.st.internal"),
        ("pusher", "dove"),
        ("pusher", "oreck"),
        ("pusher", "paperboy"),
        ("stLogin", "auth"),
        ("stLogin", "platformapi"),
        ("stLogin", "strongman"),
        ("stlogin", "auth"),
        ("stlogin", "datamgmt"),
        ("strongman", "auth"),
        ("strongman", "platformapi"),
        ("strongman", "stLogin"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(edges, expected, "{graph:#}");
    // No policy declared: nothing is allowed or forbidden.
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["policy"] == "unknown")
    );
    let entries: BTreeSet<&str> = graph["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["entry"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(entries, BTreeSet::from(["coreSrv", "datamgmt"]));

    let report = get(&server.api_url(&format!("/api/v1/reports/compliance?{period}")))
        .await
        .json();
    let email_services: BTreeSet<&str> = report["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["classification"] == "email")
        .map(|a| a["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        email_services,
        BTreeSet::from(["coreSrv", "datamgmt"]),
        "{report:#}"
    );
    assert_eq!(report["summary"]["spans"], SPANS_IN_PERIOD);
    // Nothing flushed yet: no segment, and an empty chain verifies.
    assert_eq!(report["integrity"]["ok"], true);
    assert_eq!(report["integrity"]["segmentsInPeriod"], json!([]));
}
