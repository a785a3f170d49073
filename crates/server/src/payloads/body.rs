//! What a body may be and how it is redacted before it is stored.
//!
//! Only text is stored, because only text can be redacted: a body whose
//! media type is not textual is refused (415). JSON bodies are parsed and
//! redacted as attributes are (object keys are attribute keys, so
//! `{"password": "x"}` is masked by the `secret_keys` rule as
//! `db.password` would be), then written back compactly with members in
//! their order and repeated keys kept; a JSON body that
//! does not parse (an attacker's malformed request is evidence too) and
//! every other textual body are redacted as log bodies are, by the value
//! detectors (bearer tokens, JWTs, `password=` parameters, card numbers...).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
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
        && let Ok(document) = serde_json::from_str::<Json>(&text)
    {
        return redact_json(redactor, document);
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

fn redact_json(redactor: &Redactor, document: Json) -> Redacted {
    // The whole document under an empty key: objects are attribute lists,
    // and a top-level string or array is scanned by the detectors.
    let mut attributes = vec![KeyValue::new("", to_any(&document))];
    let redactions = redactor.attributes(&mut attributes);
    let redacted = match attributes.pop() {
        Some(kv) => from_any(&document, kv.value),
        None => Json::Null,
    };
    let mut text = String::new();
    redacted.write(&mut text);
    Redacted { text, redactions }
}

/// A JSON document as it was written: members in their order, repeated
/// keys kept (`{"role":"user","role":"admin"}` is evidence), numbers as
/// their text.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.to_string()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.to_string()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
        // JSON has no NaN or infinities; serde_json parses none.
        Ok(Number::from_f64(n).map_or(Json::Null, |n| Json::Number(n.to_string())))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

impl Json {
    /// Compact JSON text (nesting is bounded by the parser's 128 levels).
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        // Unreachable: a string always serialises.
        Err(_) => out.push_str("\"\""),
    }
}

/// JSON as attribute values. Numbers become their text, so detectors see
/// them (a card number sent as a number).
fn to_any(value: &Json) -> AnyValue {
    match value {
        Json::Null => AnyValue::Empty,
        Json::Bool(b) => AnyValue::Bool(*b),
        Json::Number(n) => AnyValue::Str(Str::from(n.as_str())),
        Json::String(s) => AnyValue::Str(Str::from(s.as_str())),
        Json::Array(items) => AnyValue::Array(items.iter().map(to_any).collect()),
        Json::Object(members) => AnyValue::KvList(
            members
                .iter()
                .map(|(k, v)| KeyValue::new(k.as_str(), to_any(v)))
                .collect(),
        ),
    }
}

/// Back to JSON, with `original` as the guide: unchanged numbers stay
/// numbers; members a rule dropped are left out (the redactor keeps the
/// order of the rest, so the two lists are walked side by side).
fn from_any(original: &Json, redacted: AnyValue) -> Json {
    match (original, redacted) {
        (Json::Number(n), AnyValue::Str(s)) if s.as_str() == n.as_str() => Json::Number(n.clone()),
        (Json::Object(members), AnyValue::KvList(kvs)) => {
            let mut before = members.iter();
            let mut out = Vec::with_capacity(kvs.len());
            for kv in kvs {
                let guide = before
                    .by_ref()
                    .find(|(key, _)| key.as_str() == kv.key.as_str())
                    .map_or(&Json::Null, |(_, value)| value);
                out.push((kv.key.to_string(), from_any(guide, kv.value)));
            }
            Json::Object(out)
        }
        (Json::Array(items), AnyValue::Array(values)) => Json::Array(
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| from_any(items.get(i).unwrap_or(&Json::Null), v))
                .collect(),
        ),
        (_, AnyValue::Empty) => Json::Null,
        (_, AnyValue::Bool(b)) => Json::Bool(b),
        (_, AnyValue::Int(i)) => Json::Number(i.to_string()),
        (_, AnyValue::Double(d)) => {
            Number::from_f64(d).map_or(Json::Null, |n| Json::Number(n.to_string()))
        }
        (_, AnyValue::Str(s)) => Json::String(s.to_string()),
        (_, AnyValue::Bytes(b)) => Json::String(String::from_utf8_lossy(&b).into_owned()),
        (_, AnyValue::Array(values)) => Json::Array(
            values
                .into_iter()
                .map(|v| from_any(&Json::Null, v))
                .collect(),
        ),
        (_, AnyValue::KvList(kvs)) => Json::Object(
            kvs.into_iter()
                .map(|kv| (kv.key.to_string(), from_any(&Json::Null, kv.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::Value;
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
    fn json_keeps_member_order_repeated_keys_and_number_text() {
        let body = r#"{"role":"user","password":"a","role":"admin","n":1.50,"e":1e3,"z":[1,{"b":2,"a":3}]}"#;
        let out = redact(Some(&redactor()), TextKind::Json, body.as_bytes());
        assert_eq!(
            out.text,
            r#"{"role":"user","password":"[REDACTED]","role":"admin","n":1.5,"e":1000.0,"z":[1,{"b":2,"a":3}]}"#
        );
        // Escapes survive the round trip.
        let body = r#"{"q":"\"<\u0000>\n\u00e9"}"#;
        let out = redact(Some(&redactor()), TextKind::Json, body.as_bytes());
        let value: Value = serde_json::from_str(&out.text).unwrap();
        assert_eq!(value["q"], "\"<\u{0}>\n\u{e9}");
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
