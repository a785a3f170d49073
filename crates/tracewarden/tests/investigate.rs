//! Actor timelines end to end: traces with known answers sent to the real
//! server (OTLP/HTTP and Zipkin), then `GET /api/v1/actors/{kind}/{value}/
//! timeline` and `tracewarden investigate` checked against them: order,
//! counts, identities, the alerts citing a brute force, the logs of each
//! trace, paging, and 400s on bad requests. The expected answers of the
//! SmartThings fixtures (the copies in crates/ingest/tests/fixtures) are
//! computed here from the files themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, binary, get, now_nanos, post};
use http::StatusCode;
use serde_json::{Value, json};

const ATTACKER: &str = "198.51.100.23";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn attr(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        other => other,
    };
    json!({ "key": key, "value": value })
}

/// One request: a gateway server span carrying who sent it, and the
/// backend's server span under it; a log record on the backend span.
struct Sent {
    trace: u32,
    start: u64,
    address: String,
    user: &'static str,
    session: String,
    method: &'static str,
    route: &'static str,
    path: String,
    status: i64,
    backend: &'static str,
    /// Attributes of the backend span beyond the HTTP ones.
    backend_extra: Vec<Value>,
    log: Option<&'static str>,
}

fn trace_hex(n: u32) -> String {
    format!("{n:032x}")
}

fn span_hex(n: u32, which: u32) -> String {
    format!("{:016x}", u64::from(n) << 8 | u64::from(which))
}

fn exports(requests: &[Sent]) -> (String, String) {
    let mut gateway = Vec::new();
    let mut backends: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut logs: Vec<(&str, Vec<Value>)> = Vec::new();
    for r in requests {
        let mut attributes = vec![
            attr("client.address", json!(r.address)),
            attr("user_agent.original", json!(BROWSER)),
            attr("http.request.method", json!(r.method)),
            attr("http.route", json!(r.route)),
            attr("url.path", json!(r.path)),
            attr("http.response.status_code", json!(r.status)),
            attr("session.id", json!(r.session)),
        ];
        if !r.user.is_empty() {
            attributes.push(attr("enduser.id", json!(r.user)));
        }
        gateway.push(json!({
            "traceId": trace_hex(r.trace), "spanId": span_hex(r.trace, 1),
            "name": format!("{} {}", r.method, r.route), "kind": 2,
            "startTimeUnixNano": r.start.to_string(), "endTimeUnixNano": (r.start + 9_000_000).to_string(),
            "attributes": attributes,
        }));
        let mut attributes = vec![
            attr("http.request.method", json!(r.method)),
            attr("http.route", json!(r.route)),
            attr("http.response.status_code", json!(r.status)),
        ];
        attributes.extend(r.backend_extra.iter().cloned());
        let span = json!({
            "traceId": trace_hex(r.trace), "spanId": span_hex(r.trace, 2),
            "parentSpanId": span_hex(r.trace, 1),
            "name": format!("{} {}", r.method, r.route), "kind": 2,
            "startTimeUnixNano": (r.start + 1_000_000).to_string(),
            "endTimeUnixNano": (r.start + 8_000_000).to_string(),
            "attributes": attributes,
        });
        match backends.iter_mut().find(|(name, _)| *name == r.backend) {
            Some((_, spans)) => spans.push(span),
            None => backends.push((r.backend, vec![span])),
        }
        if let Some(body) = r.log {
            let record = json!({
                "timeUnixNano": (r.start + 5_000_000).to_string(),
                "severityNumber": 13, "severityText": "WARN",
                "body": {"stringValue": body},
                "traceId": trace_hex(r.trace), "spanId": span_hex(r.trace, 2),
            });
            match logs.iter_mut().find(|(name, _)| *name == r.backend) {
                Some((_, records)) => records.push(record),
                None => logs.push((r.backend, vec![record])),
            }
        }
    }
    let resource = |name: &str| json!({"attributes": [attr("service.name", json!(name))]});
    let mut resource_spans = vec![json!({
        "resource": resource("gateway"),
        "scopeSpans": [{"scope": {"name": "test"}, "spans": gateway}],
    })];
    for (name, spans) in backends {
        resource_spans.push(json!({
            "resource": resource(name),
            "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
        }));
    }
    let resource_logs: Vec<Value> = logs
        .into_iter()
        .map(|(name, records)| {
            json!({
                "resource": resource(name),
                "scopeLogs": [{"scope": {"name": "test"}, "logRecords": records}],
            })
        })
        .collect();
    (
        json!({ "resourceSpans": resource_spans }).to_string(),
        json!({ "resourceLogs": resource_logs }).to_string(),
    )
}

/// The attack: 12 failed logins (9 as alice, 3 as bob), a success as
/// alice, then alice's profile read through the users service; and five
/// benign users from their own addresses, twice each.
fn traffic(base: u64) -> Vec<Sent> {
    let login = |i: u32, user: &'static str, status: i64| Sent {
        trace: 100 + i,
        start: base + u64::from(i) * 1_000_000_000,
        address: ATTACKER.to_string(),
        user,
        session: "sess-atk".to_string(),
        method: "POST",
        route: "/api/login",
        path: "/api/login".to_string(),
        status,
        backend: "auth",
        backend_extra: vec![],
        log: (status == 401).then_some("login failed: bad credentials"),
    };
    let mut sent: Vec<Sent> = (0..12)
        .map(|i| login(i, if i < 9 { "alice" } else { "bob" }, 401))
        .collect();
    sent.push(login(12, "alice", 200));
    sent.push(Sent {
        trace: 113,
        start: base + 13_000_000_000,
        address: ATTACKER.to_string(),
        user: "alice",
        session: "sess-atk".to_string(),
        method: "GET",
        route: "/api/users/{id}",
        path: "/api/users/7".to_string(),
        status: 200,
        backend: "users",
        backend_extra: vec![
            attr("app.data.classification", json!("Personal")),
            attr("user.email", json!("alice@example.com")),
        ],
        log: None,
    });
    for u in 0..5u32 {
        for k in 0..2u32 {
            sent.push(Sent {
                trace: 200 + u * 2 + k,
                start: base + u64::from(u * 2 + k) * 500_000_000,
                address: format!("192.0.2.{}", 10 + u),
                user: ["u1", "u2", "u3", "u4", "u5"][u as usize],
                session: format!("sess-u{}", u + 1),
                method: "GET",
                route: "/api/home",
                path: "/api/home".to_string(),
                status: 200,
                backend: "web",
                backend_extra: vec![],
                log: None,
            });
        }
    }
    sent
}

async fn timeline(server: &TestServer, path_and_query: &str) -> Value {
    let answer = get(&server.api_url(path_and_query)).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path_and_query}: {}\n--- server stderr\n{}",
        answer.text(),
        server.stderr()
    );
    answer.json()
}

/// Waits until `check` holds on the timeline (ingest and detection run
/// behind the acknowledgement).
async fn timeline_when(
    server: &TestServer,
    path_and_query: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = timeline(server, path_and_query).await;
        if check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what} never came: {body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A summary's identities as (kind, value, count), in the order answered.
fn identities(summary: &Value) -> Vec<(String, String, u64)> {
    summary["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["value"].as_str().unwrap().to_string(),
                i["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn counts(value: &Value, field: &str) -> Vec<(String, u64)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[field].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_brute_force_across_two_services_reads_in_order_with_its_alerts_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let base = now_nanos() - 120_000_000_000;
    let sent = traffic(base);
    let (spans, logs) = exports(&sent);
    let answer = post(&server.otlp_http_url("/v1/logs"), "application/json", logs).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        spans,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let path = format!("/api/v1/actors/client.address/{ATTACKER}/timeline");
    let body = timeline_when(&server, &path, "the brute-force alert", |b| {
        b["summary"]["requests"] == 14
            && b["summary"]["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["ruleId"] == "brute-force-login"))
    })
    .await;

    assert_eq!(
        body["actor"],
        json!({"kind": "client.address", "value": ATTACKER})
    );
    let summary = &body["summary"];
    assert_eq!(summary["traces"], 14);
    assert_eq!(summary["firstSeen"], base.to_string());
    assert_eq!(summary["lastSeen"], (base + 13_000_000_000).to_string());
    assert_eq!(
        counts(&summary["byStatus"], "status"),
        vec![("401".to_string(), 12), ("200".to_string(), 2)]
    );
    assert_eq!(
        counts(&summary["byRoute"], "route"),
        vec![
            ("/api/login".to_string(), 13),
            ("/api/users/{id}".to_string(), 1)
        ]
    );
    assert_eq!(
        identities(summary),
        vec![
            ("session.id".to_string(), "sess-atk".to_string(), 14),
            ("enduser.id".to_string(), "alice".to_string(), 11),
            ("enduser.id".to_string(), "bob".to_string(), 3),
        ]
    );
    let bob = summary["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["value"] == "bob")
        .unwrap();
    assert_eq!(bob["firstSeen"], (base + 9_000_000_000).to_string());
    assert_eq!(bob["lastSeen"], (base + 11_000_000_000).to_string());

    // The alert the rule raised for the address, as /api/v1/alerts has it.
    let alerts = get(&server.api_url("/api/v1/alerts?rule=brute-force-login")).await;
    let alerts = alerts.json();
    let brute = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actor"]["client_address"] == ATTACKER)
        .unwrap_or_else(|| panic!("no alert for the attacker: {alerts:#}"));
    let fingerprint = brute["fingerprint"].as_str().unwrap();
    let cited: BTreeSet<&str> = brute["evidence"]["traceIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        summary["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["fingerprint"] == fingerprint && a["severity"] == "high"),
        "{summary:#}"
    );

    // Every request, oldest first, with what it crossed and touched.
    let requests = body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 14);
    assert_eq!(body["nextCursor"], Value::Null);
    for (i, r) in requests.iter().enumerate() {
        let i = i as u32;
        assert_eq!(r["traceId"], trace_hex(100 + i), "{r:#}");
        assert_eq!(r["spanId"], span_hex(100 + i, 1));
        assert_eq!(r["time"], (base + u64::from(i) * 1_000_000_000).to_string());
        assert_eq!(r["service"], "gateway");
        assert_eq!(r["durationNs"], "9000000");
        let trace_cited = cited.contains(trace_hex(100 + i).as_str());
        let cites = r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["fingerprint"] == fingerprint);
        assert_eq!(cites, trace_cited, "request {i}: {r:#}");
        if i < 12 {
            assert_eq!(
                (r["status"].as_str(), r["method"].as_str()),
                (Some("401"), Some("POST"))
            );
            assert_eq!(strings(&r["services"]), vec!["auth", "gateway"]);
            assert_eq!(r["classifications"], json!([]));
            let logs = r["logs"].as_array().unwrap();
            assert_eq!(logs.len(), 1, "{r:#}");
            assert_eq!(logs[0]["body"], "login failed: bad credentials");
            assert_eq!(logs[0]["severityText"], "WARN");
            assert_eq!(logs[0]["spanId"], span_hex(100 + i, 2));
            assert_eq!(logs[0]["service"], "auth");
        } else {
            assert_eq!(r["status"], "200");
            assert_eq!(r["logs"], json!([]));
            assert!(!cites, "a success is not brute-force evidence: {r:#}");
        }
    }
    // The rule counts ten failures: at least that many are cited.
    let citing = requests
        .iter()
        .filter(|r| {
            r["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["fingerprint"] == fingerprint)
        })
        .count();
    assert!(citing >= 10, "{citing} requests cite the alert");
    let read = &requests[13];
    assert_eq!(
        (read["route"].as_str(), read["path"].as_str()),
        (Some("/api/users/{id}"), Some("/api/users/7"))
    );
    assert_eq!(strings(&read["services"]), vec!["gateway", "users"]);
    assert_eq!(strings(&read["classifications"]), vec!["email", "personal"]);

    // Paging by five gives the same requests, in order, in three pages.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("{path}?limit=5&cursor={c}"),
            None => format!("{path}?limit=5"),
        };
        let page = timeline(&server, &query).await;
        assert_eq!(
            page["summary"]["requests"], 14,
            "each page has the whole summary"
        );
        paged.extend(
            page["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["traceId"].clone()),
        );
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let all: Vec<Value> = requests.iter().map(|r| r["traceId"].clone()).collect();
    assert_eq!(paged, all);

    // The users behind the address, and the address behind a user.
    let bob = timeline(&server, "/api/v1/actors/enduser.id/bob/timeline").await;
    assert_eq!(bob["summary"]["requests"], 3);
    let addresses: Vec<&Value> = bob["summary"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "client.address")
        .collect();
    assert_eq!(addresses.len(), 1);
    assert_eq!(
        (
            addresses[0]["value"].as_str(),
            addresses[0]["count"].as_u64()
        ),
        (Some(ATTACKER), Some(3))
    );

    // A benign address: its two requests, nothing of the attacker's.
    let benign = timeline(&server, "/api/v1/actors/client.address/192.0.2.12/timeline").await;
    assert_eq!(benign["summary"]["requests"], 2);
    assert_eq!(benign["summary"]["alerts"], json!([]));
    let traces: Vec<&str> = benign["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["traceId"].as_str().unwrap())
        .collect();
    assert_eq!(traces, vec![trace_hex(204), trace_hex(205)]);
    assert_eq!(
        counts(&benign["summary"]["identities"], "value")
            .into_iter()
            .map(|(v, _)| v)
            .collect::<Vec<_>>(),
        vec!["u3", "sess-u3"]
    );

    // A period without the attack is empty.
    let start = (base - 7_200_000_000_000) / 1_000_000_000;
    let end = (base - 3_600_000_000_000) / 1_000_000_000;
    let before = timeline(&server, &format!("{path}?start={start}&end={end}")).await;
    assert_eq!(before["summary"]["requests"], 0);
    assert_eq!(before["requests"], json!([]));
    assert_eq!(before["summary"]["firstSeen"], Value::Null);

    // Bad requests are 400s that say why.
    for (query, says) in [
        (
            "/api/v1/actors/token/sha256:00/timeline",
            "a token actor is its fingerprint",
        ),
        (
            "/api/v1/actors/user/alice/timeline",
            "supported kinds: client.address, enduser.id, session.id, token",
        ),
        ("/api/v1/actors/ip/1.2.3.4/timeline", "unknown actor kind"),
        ("/api/v1/actors/enduser.id/%20/timeline", "empty"),
        (&format!("{path}?start=yesterday"), "start:"),
        (&format!("{path}?since=1h&start=1"), "not both"),
        (&format!("{path}?limit=0"), "between 1 and 1000"),
        (&format!("{path}?limit=1001"), "between 1 and 1000"),
        (&format!("{path}?cursor=zz"), "invalid cursor"),
    ] {
        let answer = get(&server.api_url(query)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.text()
        );
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(says), "{query}: {message}");
    }

    // The CLI pages through with the cursor, up to --limit.
    let output = Command::new(binary())
        .args([
            "investigate",
            "--actor",
            &format!("client.address={ATTACKER}"),
            "--since",
            "24h",
            "--limit",
            "13",
            "--server",
            &server.api_url(""),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("actor       client.address={ATTACKER}")),
        "{stdout}"
    );
    assert!(stdout.contains("requests    14 in 14 traces"), "{stdout}");
    assert!(stdout.contains("by status   401 12, 200 2"), "{stdout}");
    assert!(
        stdout.contains("brute-force-login (high, firing)"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("POST /api/login"))
        .collect();
    assert_eq!(lines.len(), 13, "{stdout}");
    assert!(
        lines[0].contains("401") && lines[0].contains("auth,gateway"),
        "{stdout}"
    );
    assert!(
        stdout.contains("13 requests listed (more in the period"),
        "{stdout}"
    );
    let json_out = Command::new(binary())
        .args([
            "investigate",
            "--actor",
            &format!("client.address={ATTACKER}"),
            "--format",
            "json",
            "--server",
            &server.api_url(""),
        ])
        .output()
        .unwrap();
    assert!(json_out.status.success());
    let parsed: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(parsed["requests"].as_array().unwrap().len(), 14);
    let bad = Command::new(binary())
        .args([
            "investigate",
            "--actor",
            "203.0.113.7",
            "--server",
            &server.api_url(""),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("KIND=VALUE"));
}

/// What a Zipkin fixture says of one address: its server spans (Zipkin
/// puts the caller in `remoteEndpoint`), their times and the services of
/// the file.
struct Expected {
    requests: usize,
    first_us: u64,
    last_us: u64,
    services: BTreeSet<String>,
    statuses: Vec<String>,
}

fn expected(file: &Value, address: &str) -> Expected {
    let spans = file.as_array().unwrap();
    let mut times: Vec<(u64, String)> = spans
        .iter()
        .filter(|s| s["kind"] == "SERVER" && s["remoteEndpoint"]["ipv4"] == address)
        .map(|s| {
            let status = s["tags"]["http.status_code"].as_str().unwrap_or("unset");
            (s["timestamp"].as_u64().unwrap(), status.to_string())
        })
        .collect();
    times.sort();
    Expected {
        requests: times.len(),
        first_us: times.first().unwrap().0,
        last_us: times.last().unwrap().0,
        services: spans
            .iter()
            .filter_map(|s| s["localEndpoint"]["serviceName"].as_str())
            .map(str::to_string)
            .collect(),
        statuses: times.into_iter().map(|(_, s)| s).collect(),
    }
}

#[tokio::test]
async fn smartthings_zipkin_traces_give_the_addresses_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ingest/tests/fixtures/zipkin-v2");
    let oauth_text = std::fs::read(fixtures.join("smartthings-oauth-authorization.json")).unwrap();
    let install_text = std::fs::read(fixtures.join("smartthings-mobile-web-install.json")).unwrap();
    for body in [&oauth_text, &install_text] {
        let answer = post(
            &server.zipkin_url("/api/v2/spans"),
            "application/json",
            body.clone(),
        )
        .await;
        assert!(answer.status.is_success(), "{}", answer.text());
    }
    let oauth: Value = serde_json::from_slice(&oauth_text).unwrap();
    let install: Value = serde_json::from_slice(&install_text).unwrap();

    // The OAuth flow (November 2018): the address that logged in with a
    // 401 first, and the busiest one.
    let period = "start=1543334000&end=1543335000";
    for address in ["52.0.0.9", "54.0.0.101"] {
        let want = expected(&oauth, address);
        let path = format!("/api/v1/actors/client.address/{address}/timeline?{period}");
        let body = timeline_when(&server, &path, "the fixture's spans", |b| {
            b["summary"]["requests"] == want.requests
        })
        .await;
        let summary = &body["summary"];
        assert_eq!(summary["traces"], 1);
        assert_eq!(summary["firstSeen"], (want.first_us * 1000).to_string());
        assert_eq!(summary["lastSeen"], (want.last_us * 1000).to_string());
        let requests = body["requests"].as_array().unwrap();
        let times: Vec<u64> = requests
            .iter()
            .map(|r| r["time"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        let statuses: Vec<String> = requests
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect();
        let mut want_statuses = want.statuses.clone();
        let mut got = statuses.clone();
        want_statuses.sort();
        got.sort();
        assert_eq!(got, want_statuses, "{address}");
        for r in requests {
            let services: BTreeSet<String> = strings(&r["services"]).into_iter().collect();
            assert_eq!(services, want.services);
            // The trace carries user.email tags (joe@example.com).
            assert!(
                strings(&r["classifications"]).contains(&"email".to_string()),
                "{r:#}"
            );
        }
    }
    let failed = timeline(
        &server,
        &format!("/api/v1/actors/client.address/52.0.0.9/timeline?{period}"),
    )
    .await;
    assert!(
        counts(&failed["summary"]["byStatus"], "status").contains(&("401".to_string(), 1)),
        "{failed:#}"
    );
    assert!(
        failed["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "401" && r["path"] == "/sso/authenticate"),
        "{failed:#}"
    );

    // The app install: a proxy address with many calls, paged by 20.
    let address = "34.200.62.214";
    let want = expected(&install, address);
    assert!(want.requests > 40, "the fixture changed: {}", want.requests);
    let path =
        format!("/api/v1/actors/client.address/{address}/timeline?start=1543549000&end=1543550000");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("{path}&limit=20&cursor={c}"),
            None => format!("{path}&limit=20"),
        };
        let page = timeline(&server, &query).await;
        assert_eq!(page["summary"]["requests"], want.requests);
        seen.extend(page["requests"].as_array().unwrap().iter().map(|r| {
            (
                r["time"].as_str().unwrap().parse::<u64>().unwrap(),
                r["spanId"].clone(),
            )
        }));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), want.requests);
    assert_eq!(seen.first().unwrap().0, want.first_us * 1000);
    assert_eq!(seen.last().unwrap().0, want.last_us * 1000);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    let distinct: BTreeSet<String> = seen.iter().map(|(_, s)| s.to_string()).collect();
    assert_eq!(
        distinct.len(),
        want.requests,
        "no request twice across pages"
    );
}

/// A leaked bearer token used from three addresses: its requests are found
/// by the fingerprint ingest stamps before redaction, the per-token rate
/// rule names it, the CLI fingerprints a raw token locally (or read from
/// standard input), and the token itself is nowhere on disk.
#[tokio::test]
async fn a_leaked_token_reads_by_its_fingerprint_and_never_reaches_the_disk() {
    const LEAKED: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdmMtY3Jhd2xlciJ9.bGVha2VkLXNpZ25hdHVyZQ";
    const OTHER: &str = "opaque-token-of-a-normal-client-4242";
    let fingerprint = tracewarden_model::credential::fingerprint(LEAKED);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let base = now_nanos() - 600_000_000_000;
    let span = |n: u32, start: u64, address: &str, user: &str, authorization: &str| {
        json!({
            "traceId": format!("{:032x}", 0x7000_0000u32 + n), "spanId": format!("{:016x}", 0x7000_0000u64 + u64::from(n)),
            "name": "GET /api/products/{id}", "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 2_000_000).to_string(),
            "attributes": [
                attr("client.address", json!(address)),
                attr("enduser.id", json!(user)),
                attr("http.request.method", json!("GET")),
                attr("http.route", json!("/api/products/{id}")),
                attr("url.path", json!(format!("/api/products/{n}"))),
                attr("http.response.status_code", json!(200)),
                // As OpenTelemetry records a captured header: a string array.
                {"key": "http.request.header.authorization",
                 "value": {"arrayValue": {"values": [{"stringValue": authorization}]}}},
            ],
        })
    };
    // 650 requests with the leaked token in 65 s from three addresses
    // (more than 600 in a minute); 5 with another token; 5 with Basic
    // credentials of the same user (a password: never fingerprinted); one
    // claiming the leaked token's fingerprint without a token.
    let mut spans: Vec<Value> = (0..650u32)
        .map(|n| {
            let address = ["203.0.113.5", "203.0.113.6", "198.51.100.77"][(n % 3) as usize];
            span(
                n,
                base + u64::from(n) * 100_000_000,
                address,
                "svc-crawler",
                &format!("Bearer {LEAKED}"),
            )
        })
        .collect();
    spans.extend((0..5u32).map(|n| {
        span(
            1000 + n,
            base + u64::from(n) * 1_000_000_000,
            "192.0.2.9",
            "carol",
            &format!("Bearer {OTHER}"),
        )
    }));
    spans.extend((0..5u32).map(|n| {
        span(
            2000 + n,
            base + u64::from(n) * 1_000_000_000,
            "192.0.2.9",
            "svc-crawler",
            "Basic c3ZjLWNyYXdsZXI6aHVudGVyMg==",
        )
    }));
    let mut forged = span(3000, base, "192.0.2.66", "mallory", "");
    forged["attributes"].as_array_mut().unwrap().pop();
    forged["attributes"]
        .as_array_mut()
        .unwrap()
        .push(attr("tracewarden.token.fingerprint", json!(fingerprint)));
    spans.push(forged);
    let export = json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", json!("catalog-api"))]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }]});
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        export.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let path = format!("/api/v1/actors/token/{fingerprint}/timeline?since=1h&limit=1000");
    let body = timeline_when(&server, &path, "the per-token rate alert", |b| {
        b["summary"]["requests"] == 650
            && b["summary"]["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["ruleId"] == "excessive-request-rate-token")
            })
    })
    .await;
    assert_eq!(
        body["actor"],
        json!({"kind": "token", "value": fingerprint})
    );
    let requests = body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 650);
    assert_eq!(requests[0]["time"], base.to_string());
    assert_eq!(requests[0]["path"], "/api/products/0");
    assert_eq!(requests[649]["path"], "/api/products/649");
    assert_eq!(
        identities(&body["summary"]),
        vec![
            ("enduser.id".to_string(), "svc-crawler".to_string(), 650),
            ("client.address".to_string(), "203.0.113.5".to_string(), 217),
            ("client.address".to_string(), "203.0.113.6".to_string(), 217),
            (
                "client.address".to_string(),
                "198.51.100.77".to_string(),
                216
            ),
        ]
    );

    // The alert names the token by its fingerprint only.
    let alerts = get(&server.api_url("/api/v1/alerts?rule=excessive-request-rate-token"))
        .await
        .json();
    let alert = &alerts["alerts"].as_array().unwrap()[0];
    assert_eq!(
        alert["actor"]["tracewarden_token_fingerprint"], fingerprint,
        "{alert:#}"
    );
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1, "{alerts:#}");

    // The other token has its own five requests; Basic credentials and
    // the forged attribute gave no fingerprint.
    let other = tracewarden_model::credential::fingerprint(OTHER);
    let other_body = timeline(
        &server,
        &format!("/api/v1/actors/token/{other}/timeline?since=1h"),
    )
    .await;
    assert_eq!(other_body["summary"]["requests"], 5);
    let trace = common::get_trace(&server, &format!("{:032x}", 0x7000_0000u32 + 2000)).await;
    let text = trace.to_string();
    assert!(
        !text.contains("tracewarden.token.fingerprint"),
        "Basic was fingerprinted: {text}"
    );
    assert!(text.contains("[REDACTED]"), "the header is masked: {text}");
    let forged = common::get_trace(&server, &format!("{:032x}", 0x7000_0000u32 + 3000)).await;
    assert!(
        !forged.to_string().contains(&fingerprint),
        "a forged fingerprint was kept: {forged}"
    );

    // A raw token is refused in the URL, and the refusal does not echo it.
    let raw = get(&server.api_url(&format!("/api/v1/actors/token/{LEAKED}/timeline"))).await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(!raw.text().contains(LEAKED), "{}", raw.text());

    // The CLI fingerprints the raw token (or `Bearer ...`) locally, or reads
    // it from standard input.
    for actor in [
        format!("token={LEAKED}"),
        format!("token=Bearer {LEAKED}"),
        "token=-".to_string(),
    ] {
        let mut child = Command::new(binary())
            .args([
                "investigate",
                "--actor",
                &actor,
                "--since",
                "1h",
                "--limit",
                "3",
                "--format",
                "json",
                "--server",
                &server.api_url(""),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "{LEAKED}").unwrap();
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{actor}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(answer["actor"]["value"], fingerprint, "{actor}");
        assert_eq!(answer["summary"]["requests"], 650, "{actor}");
        assert_eq!(answer["requests"].as_array().unwrap().len(), 3, "{actor}");
    }

    // Neither token is anywhere on disk (WAL, segments, audit log) or in
    // the server's log.
    assert!(server.terminate().success(), "{}", server.stderr());
    let stderr = server.stderr();
    for secret in [LEAKED, OTHER, "c3ZjLWNyYXdsZXI6aHVudGVyMg"] {
        assert!(!stderr.contains(secret), "a token in the server log");
        for path in common::files_under(dir.path()) {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "a token in {}",
                path.display()
            );
        }
    }
}
