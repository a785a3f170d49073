//! The simulator's traffic: reproducible for a seed, shaped as the rules
//! of each scenario expect.

use std::collections::BTreeSet;

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span};

use super::otlp::Telemetry;
use super::scenario::{SCENARIOS, Scenario, find};
use super::simulator::{Settings, Simulator};
use super::system::{GATEWAY, LOCATION, PARTNER_HOST, WEATHER};

const SECOND: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, a bucket boundary.
const T0: u64 = 1_767_225_600 * SECOND;

fn settings(scenarios: Vec<&'static Scenario>, seed: u64) -> Settings {
    Settings {
        rate: 20.0,
        seed,
        scenarios,
        every: std::time::Duration::from_secs(1),
        warm_up: std::time::Duration::ZERO,
    }
}

/// `seconds` of live traffic in 100 ms ticks, merged.
fn play(settings: Settings, seconds: u64) -> Vec<Telemetry> {
    let mut simulator = Simulator::new(settings);
    let tick = SECOND / 10;
    (0..seconds * 10)
        .map(|i| simulator.tick(T0 + i * tick, T0 + (i + 1) * tick, true).0)
        .collect()
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    find_attr(&span.attributes, key)
}

fn find_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

fn status(span: &Span) -> i64 {
    match attr(span, "http.response.status_code") {
        Some(any_value::Value::IntValue(n)) => *n,
        _ => 0,
    }
}

fn is_server(span: &Span) -> bool {
    span.kind == span::SpanKind::Server as i32
}

#[test]
fn the_same_seed_sends_the_same_traffic() {
    let all: Vec<&'static Scenario> = SCENARIOS.iter().collect();
    let a = play(settings(all.clone(), 7), 5);
    let b = play(settings(all.clone(), 7), 5);
    let c = play(settings(all, 8), 5);
    let encode = |t: &[Telemetry]| -> Vec<(Vec<u8>, Vec<u8>)> {
        use prost::Message;
        t.iter()
            .map(|t| {
                (
                    t.traces_request().encode_to_vec(),
                    t.logs_request().encode_to_vec(),
                )
            })
            .collect()
    };
    assert_eq!(encode(&a), encode(&b));
    assert_ne!(encode(&a), encode(&c));
    assert!(a.iter().map(Telemetry::span_count).sum::<u64>() > 100);
}

#[test]
fn attacks_in_flight_play_to_their_end_after_the_last_start() {
    // The flood starts after the next 10 s bucket boundary: a run whose
    // duration ends at the launch must keep ticking until it is written.
    let mut simulator = Simulator::new(settings(vec![find("ddos").unwrap()], 7));
    let tick = SECOND / 10;
    let mut i = 0;
    while simulator.in_flight().is_none() {
        simulator.tick(T0 + i * tick, T0 + (i + 1) * tick, true);
        i += 1;
        assert!(i < 100, "the attack never started");
    }
    simulator.end_attacks();
    let mut flood = 0;
    while simulator.in_flight().is_some() {
        let (telemetry, launched) = simulator.tick(T0 + i * tick, T0 + (i + 1) * tick, true);
        assert!(launched.is_empty(), "no attack starts after end_attacks");
        flood += telemetry.requests;
        i += 1;
        assert!(i < 400, "the attack never finished");
    }
    // The plan's 600 requests at least, and benign ones beside them.
    assert!(flood >= 600, "{flood}");
    for _ in 0..50 {
        let (_, launched) = simulator.tick(T0 + i * tick, T0 + (i + 1) * tick, true);
        assert!(launched.is_empty());
        i += 1;
    }
}

#[test]
fn benign_traces_link_client_and_server_spans_across_services() {
    let ticks = play(settings(Vec::new(), 3), 10);
    let spans: Vec<(&str, &Span)> = ticks.iter().flat_map(Telemetry::spans).collect();
    let ids: BTreeSet<&[u8]> = spans.iter().map(|(_, s)| s.span_id.as_slice()).collect();
    let mut edges = BTreeSet::new();
    for (service, span) in &spans {
        if span.parent_span_id.is_empty() {
            // Only the gateway starts traces, and it records the client.
            assert_eq!(*service, GATEWAY, "{span:?}");
            assert!(is_server(span));
            assert!(text(span, "client.address").starts_with("46."), "{span:?}");
            assert!(!text(span, "user_agent.original").is_empty());
            assert!(!text(span, "geo.country.iso_code").is_empty());
        } else {
            assert!(
                ids.contains(span.parent_span_id.as_slice()),
                "orphan {span:?}"
            );
        }
        if is_server(span) && *service != GATEWAY {
            // Internal spans carry no client address (the gateway's
            // would pass for a client making every request).
            assert!(attr(span, "client.address").is_none());
            assert!(attr(span, "network.peer.address").is_none());
            let parent = spans
                .iter()
                .find(|(_, p)| p.span_id == span.parent_span_id)
                .expect("parent");
            assert_eq!(parent.1.kind, span::SpanKind::Client as i32);
            edges.insert((parent.0, *service));
        }
        if is_server(span) {
            assert!(status(span) >= 200 && status(span) < 500, "{span:?}");
            assert!(!text(span, "http.route").is_empty(), "{span:?}");
        }
        assert!(!text(span, "url.query").contains('@'), "{span:?}");
        assert!(!text(span, "url.full").contains("email"), "{span:?}");
    }
    let expected: BTreeSet<(&str, &str)> = [(GATEWAY, WEATHER), (WEATHER, LOCATION)]
        .into_iter()
        .collect();
    assert_eq!(edges, expected);
    // Usage reports go to the partner, without personal data.
    assert!(
        spans
            .iter()
            .any(|(_, s)| text(s, "server.address") == PARTNER_HOST)
    );
}

/// The spans of one scenario alone (no benign traffic), played for 15 s.
fn attack(name: &str) -> (Vec<(&'static str, Span)>, Vec<String>) {
    let scenario = find(name).expect("scenario");
    let mut settings = settings(vec![scenario], 1);
    settings.rate = 0.0;
    settings.every = std::time::Duration::from_secs(3600);
    let ticks = play(settings, 15);
    let spans = ticks
        .iter()
        .flat_map(|t| t.spans().map(|(s, span)| (s, span.clone())))
        .collect();
    let logs = ticks
        .iter()
        .flat_map(|t| {
            t.logs().map(
                |(_, l)| match l.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    _ => String::new(),
                },
            )
        })
        .collect();
    (spans, logs)
}

fn gateway_servers<'a>(spans: &'a [(&'static str, Span)]) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|(s, span)| *s == GATEWAY && is_server(span))
        .map(|(_, span)| span)
        .collect()
}

#[test]
fn each_scenario_has_the_shape_its_rules_expect() {
    for scenario in &SCENARIOS {
        let (spans, logs) = attack(scenario.name);
        let name = scenario.name;
        assert!(!spans.is_empty(), "{name}: no spans");
        let gateway = gateway_servers(&spans);
        let addresses: BTreeSet<&str> = gateway.iter().map(|s| text(s, "client.address")).collect();
        match name {
            "scanner" => assert!(
                gateway
                    .iter()
                    .all(|s| text(s, "user_agent.original").contains("Nikto"))
            ),
            "injection" => {
                assert_eq!(gateway.len(), 4, "{name}");
                // The gateway refuses them: nothing reaches weather.
                assert_eq!(spans.len(), 4, "{name}");
            }
            "brute-force" => {
                let failed = gateway.iter().filter(|s| status(s) == 401).count();
                assert!(failed >= 10, "{name}: {failed}");
                assert_eq!(status(gateway.last().expect("login")), 200);
                assert_eq!(addresses.len(), 1);
                assert!(
                    logs.iter()
                        .filter(|l| l.contains("invalid password"))
                        .count()
                        >= 10
                );
            }
            "credential-stuffing" => {
                let users: BTreeSet<&str> = gateway.iter().map(|s| text(s, "enduser.id")).collect();
                assert!(users.len() >= 5 && gateway.len() < 10, "{name}");
                assert_eq!(addresses.len(), 1);
            }
            "foreign-country" => assert!(
                gateway
                    .iter()
                    .all(|s| text(s, "geo.country.iso_code") == "US")
            ),
            "location-via-gateway" => {
                let location = spans.iter().find(|(s, sp)| *s == LOCATION && is_server(sp));
                let (_, location) = location.expect("location span");
                let parent = spans
                    .iter()
                    .find(|(_, p)| p.span_id == location.parent_span_id)
                    .expect("parent");
                assert_eq!(parent.0, GATEWAY);
            }
            "location-direct" => {
                assert_eq!(spans.len(), 1);
                assert_eq!(spans[0].0, LOCATION);
                assert!(spans[0].1.parent_span_id.is_empty());
            }
            "spoofed-context" => {
                let root = gateway.first().expect("gateway span");
                assert!(!root.parent_span_id.is_empty());
                assert_eq!(root.flags, 0x300);
                assert!(spans.iter().all(|(_, s)| s.span_id != root.parent_span_id));
            }
            "pii-to-partner" => assert!(
                spans
                    .iter()
                    .any(|(_, s)| text(s, "server.address") == PARTNER_HOST
                        && text(s, "url.full").contains("email="))
            ),
            "csrf" => assert!(gateway.iter().all(|s| matches!(
                attr(s, "http.request.header.origin"),
                Some(any_value::Value::ArrayValue(_))
            )
                && attr(s, "http.request.header.x-csrf-token").is_none())),
            "privilege-probing" => {
                let denied = spans
                    .iter()
                    .filter(|(_, s)| is_server(s) && status(s) == 403)
                    .count();
                assert!(denied >= 10, "{name}");
                assert!(logs.iter().filter(|l| l.contains("access denied")).count() >= 10);
            }
            "enumeration" => {
                let paths: BTreeSet<&str> = gateway.iter().map(|s| text(s, "url.path")).collect();
                assert!(paths.len() >= 30, "{name}");
                assert!(
                    gateway
                        .iter()
                        .all(|s| text(s, "http.route") == "/api/v1/places/{id}")
                );
            }
            "scraping" => {
                assert!(gateway.len() > 600 && addresses.len() == 1, "{name}");
            }
            "ddos" => {
                assert!(gateway.len() >= 600 && addresses.len() >= 20, "{name}");
                let first = gateway
                    .iter()
                    .map(|s| s.start_time_unix_nano)
                    .min()
                    .unwrap_or(0);
                let last = gateway
                    .iter()
                    .map(|s| s.start_time_unix_nano)
                    .max()
                    .unwrap_or(0);
                // Within one 10 s bucket of the baseline.
                assert_eq!(first / (10 * SECOND), last / (10 * SECOND), "{name}");
            }
            other => panic!("no shape check for scenario {other}"),
        }
    }
}

#[test]
fn injection_payloads_are_what_the_detectors_find_and_benign_queries_are_not() {
    use tracewarden_detect::inject::{AttackClass, scan};
    let (spans, _) = attack("injection");
    let gateway = gateway_servers(&spans);
    let field = |s: &Span| {
        let query = text(s, "url.query");
        if query.is_empty() {
            text(s, "url.path").to_string()
        } else {
            query.to_string()
        }
    };
    let classes = [
        AttackClass::SqlInjection,
        AttackClass::CrossSiteScripting,
        AttackClass::PathTraversal,
        AttackClass::CommandInjection,
    ];
    for (span, class) in gateway.iter().zip(classes) {
        assert!(
            scan(class, &field(span)).is_some(),
            "{class:?}: {}",
            field(span)
        );
    }
    let benign = play(settings(Vec::new(), 5), 10);
    for (_, span) in benign.iter().flat_map(Telemetry::spans) {
        for key in ["url.query", "url.path"] {
            let value = text(span, key);
            assert!(
                tracewarden_detect::inject::detect(value).is_empty(),
                "{key}={value}"
            );
        }
    }
}

mod flags {
    use clap::Parser;

    use super::super::DemoArgs;
    use crate::cmd::bench::args::Protocol;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn parse(args: &[&str]) -> Result<DemoArgs, String> {
        Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
            .map(|cli| cli.demo)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn scenarios_are_repeated_or_comma_separated_and_checked() {
        let args = parse(&["--scenario", "csrf,ddos", "--scenario", "scanner"]).unwrap();
        let names: Vec<&str> = args.scenarios().unwrap().iter().map(|s| s.name).collect();
        assert_eq!(names, ["csrf", "ddos", "scanner"]);
        assert_eq!(parse(&[]).unwrap().scenarios().unwrap().len(), 14);
        assert!(
            parse(&["--no-attacks"])
                .unwrap()
                .scenarios()
                .unwrap()
                .is_empty()
        );
        let unknown = parse(&["--scenario", "sqli"])
            .unwrap()
            .scenarios()
            .unwrap_err();
        assert!(
            unknown
                .to_string()
                .starts_with("unknown scenario `sqli` (expected one of: scanner, injection"),
            "{unknown}"
        );
        assert!(parse(&["--no-attacks", "--scenario", "csrf"]).is_err());
    }

    #[test]
    fn rates_durations_and_endpoints() {
        for bad in ["0", "-5", "abc", "300000"] {
            assert!(parse(&["--rate", bad]).is_err(), "--rate {bad}");
        }
        let args = parse(&["--rate", "2.5", "--duration", "1m30s", "--seed", "9"]).unwrap();
        assert_eq!(args.rate, 2.5);
        assert_eq!(args.duration, Some(std::time::Duration::from_secs(90)));
        assert_eq!(args.seed, Some(9));
        // --server only goes with --endpoint.
        assert!(parse(&["--server", "http://127.0.0.1:7700"]).is_err());
        for (endpoint, protocol) in [
            ("http://127.0.0.1:4317", Protocol::Grpc),
            ("grpc://collector:4317", Protocol::Grpc),
            ("http://127.0.0.1:4318", Protocol::Http),
            ("http://127.0.0.1:9000", Protocol::Http),
        ] {
            let args = parse(&["--endpoint", endpoint]).unwrap();
            assert_eq!(
                args.target(endpoint).unwrap().protocol,
                protocol,
                "{endpoint}"
            );
        }
        assert!(parse(&[]).unwrap().target("127.0.0.1:4317").is_err());
        assert!(!parse(&[]).unwrap().serve_flags_given());
        assert!(
            parse(&["--data-dir", "/tmp/x"])
                .unwrap()
                .serve_flags_given()
        );
    }
}
