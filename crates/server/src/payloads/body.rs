//! What a body may be and how it is redacted before it is stored.
//!
//! Only text is stored, because only text can be redacted: a body whose
//! media type is not textual is refused (415). JSON bodies are parsed and
//! redacted as attributes are (object keys are attribute keys, so
//! `{"password": "x"}` is masked by the `secret_keys` rule as
//! `db.password` would be), then written back compactly; a JSON body that
//! does not parse (an attacker's malformed request is evidence too) and
//! every other textual body are redacted as log bodies are, by the value
//! detectors (bearer tokens, JWTs, `password=` parameters, card numbers...).

use serde_json::{Map, Number, Value};
use tracewarden_model::{AnyValue, KeyValue, Str};
use tracewarden_redact::Redactor;

/// How a stored body is redacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Json,
    Text,
}

/// A body's media type, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// What is stored and answered: the lowercase media type and, for
    /// text, `; charset=utf-8`.
    pub content_type: String,
    pub kind: TextKind,
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// Checks a `Content-Type`: a textual media type in UTF-8 (or ASCII).
/// The error says why it is refused (answered 415).
pub fn media_type(header: Option<&str>) -> Result<MediaType, String> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(
        "a Content-Type is required (a textual type such as application/json or text/plain)",
    )?;
    let mut parts = header.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let (kind_part, subtype) = essence
        .split_once('/')
        .filter(|(t, s)| is_token(t) && is_token(s))
        .ok_or_else(|| format!("`{essence}` is not a media type"))?;
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"').to_ascii_lowercase();
            if !matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii") {
                return Err(format!(
                    "charset `{charset}` is not supported: send the body as UTF-8"
                ));
            }
        }
    }
    let json = subtype == "json" || subtype.ends_with("+json") || subtype == "x-ndjson";
    let textual = kind_part == "text"
        || json
        || (kind_part == "application"
            && (matches!(
                subtype,
                "xml"
                    | "x-www-form-urlencoded"
                    | "graphql"
                    | "javascript"
                    | "x-yaml"
                    | "yaml"
                    | "soap+xml"
            ) || subtype.ends_with("+xml")));
    if !textual {
        return Err(format!(
            "`{essence}` is not a textual media type: only text can be redacted, so binary bodies are not stored"
        ));
    }
    Ok(MediaType {
        content_type: format!("{essence}; charset=utf-8"),
        kind: if json && subtype != "x-ndjson" {
            TextKind::Json
        } else {
            TextKind::Text
        },
    })
}

/// A redacted body: the text to store and the redactions made.
#[derive(Debug, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub redactions: u64,
}

/// Redacts `body` (invalid UTF-8 is replaced by U+FFFD first).
pub fn redact(redactor: Option<&Redactor>, kind: TextKind, body: &[u8]) -> Redacted {
    let text = String::from_utf8_lossy(body).into_owned();
    let Some(redactor) = redactor else {
        return Redacted {
            text,
            redactions: 0,
        };
    };
    if kind == TextKind::Json
        && let Ok(value) = serde_json::from_str::<Value>(&text)
    {
        return redact_json(redactor, value);
    }
    let mut text = Str::from(text);
    let (redactions, dropped) = redactor.text(&mut text);
    Redacted {
        // A `drop` rule found something: nothing of the body is kept.
        text: if dropped {
            String::new()
        } else {
            text.to_string()
        },
        redactions,
    }
}

fn redact_json(redactor: &Redactor, value: Value) -> Redacted {
    // The whole document under an empty key: objects are attribute lists,
    // and a top-level string or array is scanned by the detectors.
    let mut attributes = vec![KeyValue::new("", to_any(&value))];
    let redactions = redactor.attributes(&mut attributes);
    let redacted = match attributes.pop() {
        Some(kv) => from_any(&value, kv.value),
        None => Value::Null,
    };
    Redacted {
        text: redacted.to_string(),
        redactions,
    }
}

/// JSON as attribute values. Numbers become their text, so detectors see
/// them (a card number sent as a number) and they come back exact.
fn to_any(value: &Value) -> AnyValue {
    match value {
        Value::Null => AnyValue::Empty,
        Value::Bool(b) => AnyValue::Bool(*b),
        Value::Number(n) => AnyValue::Str(Str::from(n.to_string())),
        Value::String(s) => AnyValue::Str(Str::from(s.as_str())),
        Value::Array(items) => AnyValue::Array(items.iter().map(to_any).collect()),
        Value::Object(map) => AnyValue::KvList(
            map.iter()
                .map(|(k, v)| KeyValue::new(k.as_str(), to_any(v)))
                .collect(),
        ),
    }
}

/// Back to JSON, with `original` as the guide: unchanged numbers stay
/// numbers, object members a rule dropped are left out.
fn from_any(original: &Value, redacted: AnyValue) -> Value {
    match (original, redacted) {
        (Value::Number(n), AnyValue::Str(s)) if s.as_str() == n.to_string() => {
            Value::Number(n.clone())
        }
        (Value::Object(map), AnyValue::KvList(kvs)) => {
            let mut out = Map::new();
            for kv in kvs {
                let value = match map.get(kv.key.as_str()) {
                    Some(before) => from_any(before, kv.value),
                    None => from_any(&Value::Null, kv.value),
                };
                out.insert(kv.key.to_string(), value);
            }
            Value::Object(out)
        }
        (Value::Array(items), AnyValue::Array(values)) => Value::Array(
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| from_any(items.get(i).unwrap_or(&Value::Null), v))
                .collect(),
        ),
        (_, AnyValue::Empty) => Value::Null,
        (_, AnyValue::Bool(b)) => Value::Bool(b),
        (_, AnyValue::Int(i)) => Value::Number(Number::from(i)),
        (_, AnyValue::Double(d)) => Number::from_f64(d).map_or(Value::Null, Value::Number),
        (_, AnyValue::Str(s)) => Value::String(s.to_string()),
        (_, AnyValue::Bytes(b)) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        (_, AnyValue::Array(values)) => Value::Array(
            values
                .into_iter()
                .map(|v| from_any(&Value::Null, v))
                .collect(),
        ),
        (_, AnyValue::KvList(kvs)) => Value::Object(
            kvs.into_iter()
                .map(|kv| (kv.key.to_string(), from_any(&Value::Null, kv.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tracewarden_redact::RedactionConfig;

    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz";

    fn redactor() -> Redactor {
        Redactor::new(&RedactionConfig::default(), None).unwrap()
    }

    #[test]
    fn media_types() {
        let ok = [
            (
                "application/json",
                "application/json; charset=utf-8",
                TextKind::Json,
            ),
            (
                "Application/JSON; charset=UTF-8",
                "application/json; charset=utf-8",
                TextKind::Json,
            ),
            (
                "application/problem+json",
                "application/problem+json; charset=utf-8",
                TextKind::Json,
            ),
            ("text/plain", "text/plain; charset=utf-8", TextKind::Text),
            (
                "text/html; charset=\"utf-8\"",
                "text/html; charset=utf-8",
                TextKind::Text,
            ),
            (
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=utf-8",
                TextKind::Text,
            ),
            (
                "application/soap+xml",
                "application/soap+xml; charset=utf-8",
                TextKind::Text,
            ),
        ];
        for (header, stored, kind) in ok {
            let media = media_type(Some(header)).unwrap();
            assert_eq!(
                (media.content_type.as_str(), media.kind),
                (stored, kind),
                "{header}"
            );
        }
        for bad in [
            None,
            Some(""),
            Some("application/octet-stream"),
            Some("image/png"),
            Some("multipart/form-data; boundary=x"),
            Some("text/plain; charset=latin1"),
            Some("json"),
            Some("text/<script>"),
            Some("text/"),
        ] {
            assert!(media_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_bodies_are_redacted_as_attributes() {
        let body = format!(
            r#"{{"user":"ann","password":"hunter2","card":4111111111111111,"n":1.50,"big":18446744073709551615,"auth":{{"token":"t-1"}},"items":["Bearer {JWT}",2,null,true]}}"#
        );
        let out = redact(Some(&redactor()), TextKind::Json, body.as_bytes());
        let value: Value = serde_json::from_str(&out.text).unwrap();
        assert_eq!(value["user"], "ann");
        assert_eq!(value["password"], "[REDACTED]");
        assert_eq!(value["card"], "[REDACTED]1111");
        assert_eq!(value["auth"]["token"], "[REDACTED]");
        assert_eq!(value["items"][0], "Bearer [REDACTED]");
        assert_eq!(value["items"][1], 2);
        assert_eq!(value["items"][2], Value::Null);
        assert_eq!(value["items"][3], true);
        // Numbers untouched stay numbers, digits kept.
        assert!(
            out.text.contains("\"big\":18446744073709551615"),
            "{}",
            out.text
        );
        assert!(value["n"].is_number());
        assert_eq!(out.redactions, 4);
        for secret in ["hunter2", "4111111111111111", "t-1", JWT] {
            assert!(!out.text.contains(secret), "{secret} in {}", out.text);
        }
    }

    #[test]
    fn text_and_malformed_json_are_redacted_by_the_detectors() {
        let body =
            format!("GET /?user=ann&password=hunter2\nAuthorization: Bearer {JWT}\n{{\"broken");
        for kind in [TextKind::Text, TextKind::Json] {
            let out = redact(Some(&redactor()), kind, body.as_bytes());
            assert!(
                !out.text.contains("hunter2") && !out.text.contains(JWT),
                "{}",
                out.text
            );
            assert!(out.text.contains("user=ann"), "{}", out.text);
            assert_eq!(out.redactions, 2);
        }
        // Top-level strings in JSON too.
        let out = redact(
            Some(&redactor()),
            TextKind::Json,
            format!("\"{JWT}\"").as_bytes(),
        );
        assert_eq!(out.text, "\"[REDACTED]\"");
    }

    #[test]
    fn without_a_redactor_the_text_is_kept() {
        let out = redact(None, TextKind::Json, b"{\"password\":\"x\"}\xff");
        assert_eq!(out.text, "{\"password\":\"x\"}\u{fffd}");
        assert_eq!(out.redactions, 0);
    }

    #[test]
    fn deeply_nested_json_does_not_overflow() {
        // serde_json refuses nesting beyond 128 levels: such a body is
        // redacted as text instead.
        let deep = format!("{}\"password=x\"{}", "[".repeat(10_000), "]".repeat(10_000));
        let out = redact(Some(&redactor()), TextKind::Json, deep.as_bytes());
        assert!(!out.text.contains("password=x"));
        let ok = format!(
            "{}{{\"password\":\"x\"}}{}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let out = redact(Some(&redactor()), TextKind::Json, ok.as_bytes());
        assert!(
            out.text.contains("\"password\":\"[REDACTED]\""),
            "{}",
            out.text
        );
    }
}
