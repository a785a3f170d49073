use std::sync::Arc;

use tracewarden_model::{KeyValue, Resource, Span, SpanId, SpanKind, TraceId};

use super::render::{CSV_HEADER, csv, escape, html};
use super::*;

fn span(service: &str, kind: SpanKind, ts: u64, attributes: &[(&str, &str)]) -> SpanRecord {
    let mut span = Span::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([2; 8]),
        "op",
    );
    span.kind = kind;
    span.start_time_unix_nano = ts;
    span.end_time_unix_nano = ts + 10;
    span.attributes = attributes
        .iter()
        .map(|(k, v)| KeyValue::new(*k, *v))
        .collect();
    SpanRecord {
        resource: Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", service)],
            ..Resource::default()
        }),
        scope: Arc::default(),
        span: span.into(),
    }
}

fn tally_of(spans: &[SpanRecord]) -> Tally {
    let mut site = Site::empty();
    site.set("third_parties", vec![r"partner\.example\.com".into()])
        .unwrap();
    let rule = DataFlowRule {
        third_parties: third_parties(&site).unwrap(),
        allowed: None,
        personal_data: PersonalData::default(),
    };
    let mut tally = Tally::default();
    for s in spans {
        tally.span(&rule, s);
    }
    tally
}

fn report_of(spans: &[SpanRecord]) -> ComplianceReport {
    // Two halves merged: what two scan threads do.
    let (a, b) = spans.split_at(spans.len() / 2);
    let mut tally = tally_of(a);
    tally.merge(tally_of(b));
    let site = Site::empty();
    let inputs = Inputs {
        start: 0,
        end: 1000,
        now: 2000,
        site: &site,
        alerts: &[],
        verify: &|| Err("not asked".to_string()),
    };
    assemble(tally, inputs, Err("no store".to_string()), vec![3])
}

#[test]
fn accesses_users_services_and_third_party_flows() {
    use SpanKind::*;
    let spans = [
        span(
            "gateway",
            Server,
            10,
            &[("enduser.id", "alice"), ("url.query", "to=a%40b.example")],
        ),
        span(
            "gateway",
            Server,
            20,
            &[("enduser.id", "alice"), ("user.email", "alice@example.com")],
        ),
        span(
            "billing",
            Server,
            30,
            &[
                ("enduser.id", "bob"),
                ("app.data.classification", "internal, pii"),
            ],
        ),
        span("billing", Server, 40, &[("card", "4111 1111 1111 1111")]),
        // No personal data: not an access.
        span(
            "billing",
            Server,
            50,
            &[("enduser.id", "carol"), ("order", "4111111111111112")],
        ),
        span(
            "weather",
            Client,
            60,
            &[
                ("enduser.id", "alice"),
                ("server.address", "partner.example.com"),
                ("q", "alice@example.com"),
            ],
        ),
        span(
            "weather",
            Client,
            70,
            &[("server.address", "partner.example.com")],
        ),
        span(
            "weather",
            Client,
            80,
            &[
                ("server.address", "internal.example.com"),
                ("q", "x@example.com"),
            ],
        ),
    ];
    let report = report_of(&spans);
    let rows: Vec<(&str, &str, &str, u64, &str, &str)> = report
        .accesses
        .iter()
        .map(|a| {
            (
                a.user.as_str(),
                a.service.as_str(),
                a.classification.as_str(),
                a.count,
                a.first_seen.as_str(),
                a.last_seen.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("", "billing", "payment_card", 1, "40", "40"),
            ("", "weather", "email", 1, "80", "80"),
            ("alice", "gateway", "email", 2, "10", "20"),
            ("alice", "weather", "email", 1, "60", "60"),
            ("bob", "billing", "classification pii", 1, "30", "30"),
        ]
    );
    let users: Vec<(&str, u64, &[String])> = report
        .users
        .iter()
        .map(|u| (u.user.as_str(), u.accesses, u.services.as_slice()))
        .collect();
    assert_eq!(
        users,
        vec![
            (
                "alice",
                3,
                &["gateway".to_string(), "weather".to_string()][..]
            ),
            ("bob", 1, &["billing".to_string()][..]),
        ]
    );
    let services: Vec<(&str, u64, u64)> = report
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.accesses, s.users))
        .collect();
    assert_eq!(
        services,
        vec![("billing", 2, 1), ("gateway", 2, 1), ("weather", 2, 1)]
    );
    assert_eq!(report.third_party_flows.len(), 1);
    let flow = &report.third_party_flows[0];
    assert_eq!(
        (
            flow.service.as_str(),
            flow.destination.as_str(),
            flow.field.as_str(),
            flow.calls,
            flow.with_personal_data,
            flow.classifications.as_slice(),
            flow.first_seen.as_str(),
            flow.last_seen.as_str()
        ),
        (
            "weather",
            "partner.example.com",
            "server.address",
            2,
            1,
            &["email".to_string()][..],
            "60",
            "70"
        )
    );
    assert_eq!(
        report.summary,
        Summary {
            spans: 8,
            personal_data_spans: 6,
            users: 2,
            services: 3,
            third_party_calls: 2,
            third_party_calls_with_personal_data: 1,
            violations: 0,
        }
    );
    assert!(!report.integrity.ok);
    assert_eq!(report.integrity.segments_in_period, vec![3]);
    assert!(report.integrity.failures[0].contains("no store"));
}

#[test]
fn csv_is_one_quoted_table() {
    let spans = [
        span(
            "gw",
            SpanKind::Server,
            1_000_000_000,
            &[("enduser.id", "a,\"b\""), ("user.email", "x@y.example")],
        ),
        span(
            "gw",
            SpanKind::Server,
            1_000_000_000,
            &[("enduser.id", "=cmd()"), ("user.email", "x@y.example")],
        ),
    ];
    let text = csv(&report_of(&spans));
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines,
        vec![
            CSV_HEADER,
            "\"'=cmd()\",gw,email,1,1970-01-01T00:00:01.000Z,1970-01-01T00:00:01.000Z",
            "\"a,\"\"b\"\"\",gw,email,1,1970-01-01T00:00:01.000Z,1970-01-01T00:00:01.000Z",
            "",
        ]
    );
}

#[test]
fn html_escapes_every_value_and_loads_nothing() {
    let evil = "<script>alert('x')</script>";
    let spans = [span(
        "gw\"><img src=x>",
        SpanKind::Server,
        5,
        &[("enduser.id", evil), ("user.email", "x@y.example")],
    )];
    let mut report = report_of(&spans);
    report
        .integrity
        .failures
        .push("<b>segment 3</b> & more".to_string());
    let page = html(&report);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("gw&quot;&gt;&lt;img src=x&gt;"), "{page}");
    assert!(
        page.contains("&lt;b&gt;segment 3&lt;/b&gt; &amp; more"),
        "{page}"
    );
    let lower = page.to_ascii_lowercase();
    for banned in [
        "<script", "<img", "<link", "src=\"", "href=", "http://", "https://", "@import", "url(",
    ] {
        assert!(!lower.contains(banned), "{banned} in {page}");
    }
    assert!(
        page.contains("1970-01-01T00:00:00.000Z to 1970-01-01T00:00:00.000Z"),
        "{page}"
    );
    assert!(page.contains("NOT intact"), "{page}");
    assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
}
