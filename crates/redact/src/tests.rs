//! The redactor on whole batches: what each rule and action does, where it
//! applies, and the errors of bad rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tracewarden_model::{
    AnyValue, Batch, Event, KeyValue, Link, LogRecord, Resource, ResourceLogs, ResourceSpans,
    Scope, ScopeLogs, ScopeSpans, Span, SpanId, Status, StatusCode, TraceId,
};

use crate::{HashKey, RedactionConfig, Redactor, RuleConfig};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz";

fn span(attributes: Vec<KeyValue>) -> Span {
    let mut span = Span::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([2; 8]),
        "GET /",
    );
    span.attributes = attributes;
    span
}

fn batch_of(spans: Vec<Span>, logs: Vec<LogRecord>) -> Batch {
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: Arc::new(Resource::default()),
            scope_spans: vec![ScopeSpans {
                scope: Arc::new(Scope::default()),
                spans,
            }],
        }],
        resource_logs: vec![ResourceLogs {
            resource: Arc::new(Resource::default()),
            scope_logs: vec![ScopeLogs {
                scope: Arc::new(Scope::default()),
                log_records: logs,
            }],
        }],
    }
}

fn defaults() -> Redactor {
    Redactor::new(&RedactionConfig::default(), None).unwrap()
}

/// The value of `key` on the single span after redacting it with `redactor`.
#[track_caller]
fn redact_attribute(redactor: &Redactor, key: &str, value: AnyValue) -> Option<AnyValue> {
    let mut batch = batch_of(vec![span(vec![KeyValue::new(key, value)])], vec![]);
    redactor.batch(&mut batch);
    batch.resource_spans[0].scope_spans[0].spans[0]
        .attribute(key)
        .cloned()
}

fn s(text: &str) -> AnyValue {
    AnyValue::from(text)
}

#[test]
fn defaults_on_attribute_values() {
    let redactor = defaults();
    let cases: &[(&str, AnyValue, AnyValue)] = &[
        (
            "url.query",
            s("user=ann&password=hunter2&next=/"),
            s("user=ann&password=[REDACTED]&next=/"),
        ),
        (
            "url.full",
            s("https://shop.example/cb?code=1&access_token=abc123&state=x"),
            s("https://shop.example/cb?code=1&access_token=[REDACTED]&state=x"),
        ),
        // Not Luhn: an order number stays.
        ("app.order", s("4111111111111112"), s("4111111111111112")),
        (
            "app.note",
            s("card 4111111111111111"),
            s("card [REDACTED]1111"),
        ),
        (
            "http.request.body",
            s(&format!("t={JWT}")),
            s("t=[REDACTED]"),
        ),
        (
            "app.msg",
            s("auth Bearer abcdefgh12345678 ok"),
            s("auth Bearer [REDACTED] ok"),
        ),
        ("aws.key", s("AKIAIOSFODNN7EXAMPLE"), s("[REDACTED]")),
        (
            "http.request.header.authorization",
            AnyValue::Array(vec![s("Basic dXNlcjpodW50ZXIy")]),
            AnyValue::Array(vec![s("[REDACTED]")]),
        ),
        (
            "http.request.header.cookie",
            AnyValue::Array(vec![s("sid=1"), s("theme=dark")]),
            AnyValue::Array(vec![s("[REDACTED]"), s("[REDACTED]")]),
        ),
        (
            "http.response.header.set-cookie",
            s("sid=1; HttpOnly"),
            s("[REDACTED]"),
        ),
        ("db.password", s("hunter2"), s("[REDACTED]")),
        ("app.pin_secret", AnyValue::Int(1234), s("[REDACTED]")),
        // Counts of LLM tokens and ordinary attributes stay.
        (
            "gen_ai.usage.input_tokens",
            AnyValue::Int(120),
            AnyValue::Int(120),
        ),
        (
            "http.request.header.user-agent",
            s("curl/8.5"),
            s("curl/8.5"),
        ),
        ("url.query", s("q=select+1&page=2"), s("q=select+1&page=2")),
        // E-mail addresses are left to identity rules unless a rule asks.
        (
            "enduser.email",
            s("jane@example.com"),
            s("jane@example.com"),
        ),
    ];
    for (key, value, expected) in cases {
        assert_eq!(
            redact_attribute(&redactor, key, value.clone()).as_ref(),
            Some(expected),
            "{key} = {value:?}"
        );
    }
}

#[test]
fn every_place_of_a_span_and_a_log_record() {
    let mut s1 = span(vec![KeyValue::new("url.query", "password=p1")]);
    s1.original_attributes = vec![KeyValue::new("http.url", "https://a/?token=t1&x=1")];
    s1.name = "GET /reset?token=t2".into();
    s1.status = Status {
        code: StatusCode::Error,
        message: format!("rejected {JWT}").into(),
    };
    s1.events.push(Event {
        name: "login password=p3".into(),
        attributes: vec![KeyValue::new("exception.message", "bad secret=p4")],
        ..Default::default()
    });
    s1.links.push(Link {
        trace_id: TraceId::from_bytes([3; 16]),
        span_id: SpanId::from_bytes([4; 8]),
        trace_state: Default::default(),
        attributes: vec![KeyValue::new("app.api_key", "k5")],
        dropped_attributes_count: 0,
        flags: 0,
    });
    let log_string = LogRecord {
        body: s("user ann logged in with token=t6"),
        attributes: vec![KeyValue::new("http.request.header.x-api-key", "k7")],
        ..Default::default()
    };
    let log_structured = LogRecord {
        body: AnyValue::KvList(vec![
            KeyValue::new("password", "p8"),
            KeyValue::new("message", format!("jwt {JWT}").as_str()),
            KeyValue::new("user", "ann"),
        ]),
        ..Default::default()
    };
    let mut batch = batch_of(vec![s1], vec![log_string, log_structured]);
    Arc::make_mut(&mut batch.resource_spans[0].resource)
        .attributes
        .push(KeyValue::new("deploy.token", "t9"));
    Arc::make_mut(&mut batch.resource_spans[0].scope_spans[0].scope)
        .attributes
        .push(KeyValue::new("vendor.secret", "s10"));
    defaults().batch(&mut batch);

    let text = format!("{batch:?}");
    for secret in [
        "p1", "t1", "t2", "eyJ", "p3", "p4", "k5", "t6", "k7", "p8", "t9", "s10",
    ] {
        assert!(
            !text.contains(&format!("\"{secret}")) && !text.contains(&format!("={secret}")),
            "{secret} left in {text}"
        );
    }
    let span = &batch.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "GET /reset?token=[REDACTED]");
    assert_eq!(
        span.original_attributes[0].value,
        s("https://a/?token=[REDACTED]&x=1")
    );
    assert_eq!(span.events[0].name, "login password=[REDACTED]");
    let logs = &batch.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(logs[0].body, s("user ann logged in with token=[REDACTED]"));
    let AnyValue::KvList(body) = &logs[1].body else {
        panic!("{:?}", logs[1].body)
    };
    assert_eq!(body[0].value, s("[REDACTED]"));
    assert_eq!(body[1].value, s("jwt [REDACTED]"));
    assert_eq!(body[2].value, s("ann"));
}

#[test]
fn nothing_matching_changes_nothing() {
    let spans = (0..10)
        .map(|i| {
            span(vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.path", format!("/orders/{i}").as_str()),
                KeyValue::new("url.query", "expand=items&page=2"),
                KeyValue::new("http.response.status_code", 200),
                KeyValue::new("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
            ])
        })
        .collect();
    let mut batch = batch_of(spans, vec![]);
    let before = batch.clone();
    let redactor = defaults();
    redactor.batch(&mut batch);
    redactor.batch(&mut batch);
    assert_eq!(batch, before);
    assert!(redactor.counts().iter().all(|(_, n)| *n == 0));
}

#[test]
fn shared_resources_are_copied_not_changed_in_place() {
    let mut batch = batch_of(vec![span(vec![])], vec![]);
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("db.password", "hunter2")],
        ..Default::default()
    });
    batch.resource_spans[0].resource = resource.clone();
    defaults().batch(&mut batch);
    assert_eq!(resource.attributes[0].value, s("hunter2"));
    assert_eq!(
        batch.resource_spans[0].resource.attributes[0].value,
        s("[REDACTED]")
    );
}

fn config(rules: Vec<RuleConfig>) -> RedactionConfig {
    RedactionConfig {
        rules,
        ..RedactionConfig::default()
    }
}

fn rule(name: &str, action: &str) -> RuleConfig {
    RuleConfig {
        name: name.to_string(),
        action: action.to_string(),
        ..RuleConfig::default()
    }
}

#[test]
fn hash_is_stable_and_keyed() {
    let hash_ids = config(vec![RuleConfig {
        keys: vec!["user.id".to_string()],
        ..rule("user-id", "hash")
    }]);
    let a = Redactor::new(&hash_ids, Some(HashKey::new(b"key a"))).unwrap();
    let b = Redactor::new(&hash_ids, Some(HashKey::new(b"key b"))).unwrap();
    let first = redact_attribute(&a, "user.id", s("u-42")).unwrap();
    let again = redact_attribute(&a, "User.Id", s("u-42")).unwrap();
    let other_user = redact_attribute(&a, "user.id", s("u-43")).unwrap();
    let other_key = redact_attribute(&b, "user.id", s("u-42")).unwrap();
    let text = first.as_str().unwrap();
    assert!(text.starts_with("hmac:") && text.len() == 5 + 64, "{text}");
    assert_eq!(first, again);
    assert_ne!(first, other_user);
    assert_ne!(first, other_key);

    let base64 = config(vec![RuleConfig {
        detector: Some("email".to_string()),
        encoding: Some("base64".to_string()),
        ..rule("emails", "hash")
    }]);
    let c = Redactor::new(&base64, Some(HashKey::new(b"key a"))).unwrap();
    let hashed = redact_attribute(&c, "msg", s("mail jane@example.com now")).unwrap();
    let hashed = hashed.as_str().unwrap();
    assert!(
        hashed.starts_with("mail hmac:") && hashed.ends_with(" now") && !hashed.contains("jane"),
        "{hashed}"
    );
}

#[test]
fn drop_glob_regex_and_masks() {
    let redactor = Redactor::new(
        &config(vec![
            RuleConfig {
                key_globs: vec!["app.*.ssn".to_string()],
                ..rule("ssn", "drop")
            },
            RuleConfig {
                key_regex: Some("^internal\\.".to_string()),
                ..rule("internal", "drop")
            },
            RuleConfig {
                detector: Some("private_key".to_string()),
                ..rule("private_key", "drop")
            },
            RuleConfig {
                keys: vec!["app.phone".to_string()],
                keep_last: 2,
                ..rule("phone", "mask")
            },
        ]),
        None,
    )
    .unwrap();
    assert_eq!(
        redact_attribute(&redactor, "app.user.ssn", s("123-45-6789")),
        None
    );
    assert_eq!(redact_attribute(&redactor, "APP.X.SSN", s("1")), None);
    assert_eq!(redact_attribute(&redactor, "internal.debug", s("x")), None);
    assert_eq!(
        redact_attribute(&redactor, "app.cert", s("-----BEGIN PRIVATE KEY-----\nMII")),
        None
    );
    assert_eq!(
        redact_attribute(&redactor, "app.phone", s("+4930123456")),
        Some(s("[REDACTED]56"))
    );
    let counts = redactor.counts();
    assert_eq!(counts[0], ("ssn", 2));
    assert_eq!(counts[1], ("internal", 1));
    assert_eq!(counts[2], ("private_key", 1));
    assert_eq!(counts[3], ("phone", 1));
    // The user's `private_key` replaced the built-in one of that name.
    assert_eq!(
        redactor
            .rule_names()
            .iter()
            .filter(|n| **n == "private_key")
            .count(),
        1
    );
}

#[test]
fn built_in_rules_disabled_by_name() {
    let redactor = Redactor::new(
        &RedactionConfig {
            disable: vec!["secret_params".to_string(), "payment_card".to_string()],
            marker: "***".to_string(),
            ..RedactionConfig::default()
        },
        None,
    )
    .unwrap();
    assert!(!redactor.rule_names().contains(&"payment_card"));
    assert_eq!(
        redact_attribute(&redactor, "url.query", s("password=x&c=4111111111111111")),
        Some(s("password=x&c=4111111111111111"))
    );
    assert_eq!(
        redact_attribute(&redactor, "db.password", s("x")),
        Some(s("***"))
    );
    let off = Redactor::from_config(
        &RedactionConfig {
            enabled: false,
            ..RedactionConfig::default()
        },
        std::path::Path::new("/nonexistent"),
    )
    .unwrap();
    assert!(off.is_none());
}

#[test]
fn bad_rules_are_named_in_the_error() {
    let cases: Vec<(RedactionConfig, &str)> = vec![
        (
            config(vec![RuleConfig {
                key_regex: Some("(unclosed".to_string()),
                ..rule("bad-regex", "mask")
            }]),
            "redaction rule `bad-regex`: invalid key pattern",
        ),
        (
            config(vec![RuleConfig {
                keys: vec!["a".to_string()],
                ..rule("bad-action", "erase")
            }]),
            "redaction rule `bad-action`: unknown action `erase`",
        ),
        (
            config(vec![RuleConfig {
                detector: Some("ssn".to_string()),
                ..rule("bad-detector", "mask")
            }]),
            "redaction rule `bad-detector`: unknown detector `ssn`",
        ),
        (
            config(vec![rule("matches-nothing", "mask")]),
            "redaction rule `matches-nothing`: matches nothing",
        ),
        (
            config(vec![RuleConfig {
                keys: vec!["a".to_string()],
                ..rule("no-key", "hash")
            }]),
            "redaction rule `no-key`: hashes, but no hash key",
        ),
        (
            config(vec![RuleConfig {
                keys: vec!["a".to_string()],
                encoding: Some("hex".to_string()),
                ..rule("encoding-on-mask", "mask")
            }]),
            "redaction rule `encoding-on-mask`: `encoding` applies to `hash` only",
        ),
        (
            RedactionConfig {
                disable: vec!["jwts".to_string()],
                ..RedactionConfig::default()
            },
            "`disable` names `jwts`",
        ),
    ];
    for (config, expected) in cases {
        let err = Redactor::new(&config, None).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}\nexpected: {expected}");
    }
}

#[test]
fn the_config_section_parses_from_toml() {
    let text = r#"
enabled = true
disable = ["jwt"]
hash_key_file = "/etc/tracewarden/redaction.key"

[[rules]]
name = "user-id"
keys = ["enduser.id", "user.id"]
action = "hash"

[[rules]]
name = "emails"
detector = "email"
action = "mask"
"#;
    let config: RedactionConfig = toml::from_str(text).unwrap();
    assert_eq!(config.rules.len(), 2);
    assert_eq!(config.rules[0].keys, ["enduser.id", "user.id"]);
    let redactor = Redactor::new(&config, Some(HashKey::new(b"k"))).unwrap();
    assert_eq!(
        &redactor.rule_names()[..3],
        ["user-id", "emails", "auth_headers"]
    );
    assert!(!redactor.rule_names().contains(&"jwt"));
    let err = toml::from_str::<RedactionConfig>("[[rules]]\nname = \"x\"\nregex = \"a\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("regex"), "{err}");
}

#[test]
fn free_text_and_bare_attribute_lists() {
    let redactor = defaults();
    let mut text = tracewarden_model::Str::from(format!(
        "POST /login\nAuthorization: Bearer {JWT}\n\nuser=ann&password=hunter2"
    ));
    let (edits, drop) = redactor.text(&mut text);
    assert!(!drop);
    assert_eq!(edits, 2, "{text}");
    assert!(!text.contains("hunter2") && !text.contains(JWT), "{text}");
    assert!(text.contains("user=ann"), "{text}");

    let mut nested = vec![
        KeyValue::new("user", "ann"),
        KeyValue::new(
            "credentials",
            AnyValue::KvList(vec![KeyValue::new("password", "hunter2")]),
        ),
        KeyValue::new(
            "profile",
            AnyValue::KvList(vec![KeyValue::new("api_key", "k-123")]),
        ),
    ];
    assert_eq!(redactor.attributes(&mut nested), 2);
    assert_eq!(nested[0].value, s("ann"));
    assert_eq!(
        nested[1].value,
        AnyValue::KvList(vec![KeyValue::new("password", "[REDACTED]")])
    );
    assert_eq!(
        nested[2].value,
        AnyValue::KvList(vec![KeyValue::new("api_key", "[REDACTED]")])
    );
    // The totals count these as they count batches.
    let total: u64 = redactor.counts().iter().map(|(_, c)| c).sum();
    assert_eq!(total, 4);
}

/// The built-in rules and an e-mail detector on `app.note` only: the same
/// text is clean elsewhere and not there.
fn note_emails() -> Redactor {
    Redactor::new(
        &config(vec![RuleConfig {
            keys: vec!["app.note".to_string()],
            detector: Some("email".to_string()),
            ..rule("note-emails", "mask")
        }]),
        None,
    )
    .unwrap()
}

#[test]
fn long_values_remembered_clean_are_still_scanned_where_they_differ() {
    let redactor = note_emails();
    let url = "https://shop.example/catalog/items?page=2&sort=price-ascending";
    let note = "please write to jane@example.com about the order";
    let mut spans = Vec::new();
    for _ in 0..3 {
        spans.push(span(vec![
            KeyValue::new("url.full", url),
            KeyValue::new("app.other", note),
        ]));
    }
    // The remembered URL with a token appended, and the same length with
    // one byte changed to start a secret's parameter.
    let with_token = format!("{url}&access_token=abc123");
    let same_length = url.replace("&sort=", "&pass=");
    spans.push(span(vec![
        KeyValue::new("url.full", with_token.as_str()),
        KeyValue::new("app.note", note),
    ]));
    spans.push(span(vec![KeyValue::new("url.full", same_length.as_str())]));
    let mut batch = batch_of(spans, vec![]);
    redactor.batch(&mut batch);
    let spans = &batch.resource_spans[0].scope_spans[0].spans;
    for span in &spans[..3] {
        assert_eq!(span.attribute("url.full"), Some(&s(url)));
        assert_eq!(span.attribute("app.other"), Some(&s(note)));
    }
    assert_eq!(
        spans[3].attribute("url.full"),
        Some(&s(&format!("{url}&access_token=[REDACTED]")))
    );
    assert_eq!(
        spans[3].attribute("app.note"),
        Some(&s("please write to [REDACTED] about the order"))
    );
    assert_eq!(
        spans[4].attribute("url.full"),
        Some(&s(
            &same_length.replace("pass=price-ascending", "pass=[REDACTED]")
        ))
    );
}

/// A batch redacts as its values do one at a time: the batch's memory of
/// clean values changes what is scanned, never what comes out.
#[test]
fn a_batch_redacts_as_its_values_do_alone() {
    use tracewarden_model::rng::Rng;

    const CLEAN: &[&str] = &[
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "https://shop.example/catalog/items?page=2&sort=price-ascending",
        "SELECT id, name, price FROM items WHERE category = $1 ORDER BY price",
        "please write to the order desk about the delayed parcel soon",
    ];
    const SECRETS: &[&str] = &[
        "&password=hunter2",
        " Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz",
        " jane@example.com",
        " 4111 1111 1111 1111",
        "&token=abc123",
    ];
    // Keys with different decisions (detectors everywhere, an e-mail
    // detector on one, a whole-value rule on two), drawn at random for
    // each position: the pass's memory of the keys at each position must
    // never give one key's decision to another.
    const KEYS: &[&str] = &[
        "url.full",
        "user_agent.original",
        "db.query.text",
        "app.note",
        "db.password",
        "http.response.header.set-cookie",
    ];
    let redactor = note_emails();
    let mut rng = Rng(7);
    for _ in 0..50 {
        let mut spans = Vec::new();
        for _ in 0..40 {
            let mut attributes = Vec::new();
            for _ in 0..3 {
                let mut value = (*rng.pick(CLEAN)).to_string();
                match rng.below(5) {
                    // A secret inside the value, one byte changed, or a
                    // secret at the end (a value with a secret repeated).
                    0 => {
                        let secret = *rng.pick(SECRETS);
                        value.insert_str(rng.below(value.len()), secret);
                    }
                    1 => value.replace_range(10..11, "&"),
                    2 => value.push_str(SECRETS[rng.below(2)]),
                    _ => {}
                }
                attributes.push(KeyValue::new(*rng.pick(KEYS), value.as_str()));
            }
            spans.push(span(attributes));
        }
        let mut alone = spans.clone();
        for span in &mut alone {
            redactor.attributes(&mut span.attributes);
        }
        let mut batch = batch_of(spans, vec![]);
        redactor.batch(&mut batch);
        let together = &batch.resource_spans[0].scope_spans[0].spans;
        for (together, alone) in together.iter().zip(&alone) {
            assert_eq!(together.attributes, alone.attributes);
        }
    }
}
