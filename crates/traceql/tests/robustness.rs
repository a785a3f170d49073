//! Hostile input: random strings and mutated valid queries must parse or
//! fail with an error, never panic; what parses must evaluate without
//! panicking and print a form that parses again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sample_trace;
use tracewarden_model::rng::Rng;
use tracewarden_traceql::{MAX_QUERY_LEN, TraceView, parse};

const SEEDS: &[&str] = &[
    r#"{ span.http.method = "GET" && resource.service.name =~ "api-.*" }"#,
    "{ duration > 1.5s } | count() > 2",
    r#"{ name = "a" } >> { status = error } && { kind = server } || { }"#,
    "{ } | by(resource.service.name) | avg(duration) > 10ms | select(span.a, name) | coalesce()",
    r#"({ .a = 1 } | count() > 1) &~ { event:name = "exception" } !<< { link:traceID = "ab" }"#,
    r#"{ !(span.x != nil) || span."a b" = `raw\` && trace:rootService = "x" }"#,
    "{ span:id = \"0000000000000003\" } &> { span:parentID = nil } !~ { traceDuration < 1h30m }",
];

const PIECES: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "|",
    "&&",
    "||",
    "!",
    ">",
    ">>",
    "<",
    "<<",
    "~",
    "!~",
    "=~",
    "=",
    "!=",
    ">=",
    "<=",
    "&>",
    "&~",
    "!>",
    "\"",
    "`",
    "\\",
    ".",
    "span.",
    "resource.",
    "span:",
    "trace:",
    "event.",
    "nil",
    "true",
    "1",
    "-",
    "1.5",
    "1e9",
    "3ms",
    "µs",
    "count()",
    "avg(",
    "by(",
    "select(",
    "coalesce()",
    "name",
    "status",
    "error",
    "kind",
    "server",
    " ",
    "\n",
    "é",
    "\u{0}",
    "99999999999999999999",
    ",",
    "rate()",
    "with(",
    "parent.",
    "+",
    "*",
];

fn check(text: &str) {
    let trace = sample_trace();
    if let Ok(query) = parse(text) {
        let _ = query.evaluate(&TraceView::new(&trace));
        for span in &trace {
            let _ = query.matches_span(span);
        }
        let _ = query.required_conditions();
        let printed = query.to_string();
        let again = parse(&printed)
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again.to_string(), printed, "{text:?}");
    }
}

#[test]
fn random_token_soup_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.below(16);
        let text: String = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        check(&text);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn mutated_valid_queries_never_panic() {
    let mut rng = Rng(7);
    for seed in SEEDS {
        parse(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    for _ in 0..30_000 {
        let mut text: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
        for _ in 0..=rng.below(3) {
            let at = rng.below(text.len() + 1);
            match rng.below(3) {
                0 if at < text.len() => {
                    text.remove(at);
                }
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    for (k, c) in piece.chars().enumerate() {
                        text.insert(at + k, c);
                    }
                }
                _ => {
                    let other = rng.below(text.len().max(1));
                    if at < text.len() && other < text.len() {
                        text.swap(at, other);
                    }
                }
            }
        }
        check(&text.into_iter().collect::<String>());
    }
}

#[test]
fn pathological_inputs_are_refused_quickly() {
    for text in [
        "{".repeat(100_000),
        "(".repeat(60_000),
        "!".repeat(60_000),
        format!("{{ {} }}", "!".repeat(10_000)),
        format!("{}{{ }}", "({ } > ".repeat(5_000)),
        "\"".repeat(MAX_QUERY_LEN),
        format!("{{ name = \"{}\" }}", "\\".repeat(1001)),
        format!("{{ name =~ \"{}\" }}", "(".repeat(1000) + &")".repeat(1000)),
        "{ name =~ \"((a{100}){100}){100}\" }".to_owned(),
    ] {
        assert!(parse(&text).is_err(), "{}", &text[..20]);
    }
}
