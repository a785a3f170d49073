//! Label sets, their fingerprints, and the label names of detection keys.
//!
//! A fingerprint is Prometheus' `LabelSet.Fingerprint()`: FNV-1a (64 bit)
//! over the labels sorted by name, each written as name, `0xff`, value,
//! `0xff`. Alertmanager shows the same 16 hex digits for the same labels,
//! so an alert can be looked up by fingerprint on either side.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The rule id.
pub const ALERTNAME: &str = "alertname";
/// The rule's severity (`info` ... `critical`).
pub const SEVERITY: &str = "severity";
/// The rule's kind (`match`, `threshold`, `sequence`).
pub const RULE_KIND: &str = "rule_kind";

/// Label names every alert has; key fields never take them.
const RESERVED: [&str; 3] = [ALERTNAME, SEVERITY, RULE_KIND];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;

/// Labels sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelSet(BTreeMap<String, String>);

impl LabelSet {
    pub fn new() -> LabelSet {
        LabelSet::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The value of `name`, or `""` when absent (Prometheus' convention: an
    /// absent label and an empty one are the same).
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The labels whose name is in `names`.
    pub fn subset<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> LabelSet {
        let mut out = LabelSet::new();
        for name in names {
            if let Some(value) = self.0.get(name) {
                out.insert(name, value.clone());
            }
        }
        out
    }

    /// The labels that `other` has with the same value.
    pub fn intersect(&self, other: &LabelSet) -> LabelSet {
        LabelSet(
            self.0
                .iter()
                .filter(|(k, v)| other.0.get(*k) == Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    pub fn fingerprint(&self) -> Fingerprint {
        let mut hash = FNV_OFFSET;
        let mut write = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        };
        for (name, value) in &self.0 {
            write(name.as_bytes());
            write(&[SEPARATOR]);
            write(value.as_bytes());
            write(&[SEPARATOR]);
        }
        Fingerprint(hash)
    }
}

impl FromIterator<(String, String)> for LabelSet {
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        LabelSet(iter.into_iter().collect())
    }
}

/// `{a="1", b="2"}`, as Alertmanager prints label sets in group keys.
impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={}", Quoted(value))?;
        }
        f.write_str("}")
    }
}

/// A string in double quotes with `\`, `"` and control characters escaped.
pub(crate) struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{{{:04x}}}", u32::from(c))?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// The 64-bit hash that identifies an alert (and a group's labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || text.len() > 16 {
            return Err(format!("fingerprint `{text}` is not 1 to 16 hex digits"));
        }
        u64::from_str_radix(text, 16)
            .map(Fingerprint)
            .map_err(|_| format!("fingerprint `{text}` is not hex"))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `name` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Label names for the fields of a detection key, in order.
///
/// A field becomes its name without the scope (`span.`, `resource.`,
/// `instrumentation.`, a leading `.` for unscoped attributes, `span:` and
/// the like for intrinsics), every character outside `[a-zA-Z0-9_]`
/// replaced by `_`, and `_` put before a leading digit:
/// `span.client.address` -> `client_address`, `resource.service.name` ->
/// `service_name`, `.enduser.id` -> `enduser_id`, `kind` -> `kind`.
///
/// When that short name is taken (by `alertname`, `severity`, `rule_kind`,
/// an earlier field of the key) or starts with `__` (reserved by
/// Prometheus), the whole field is used instead (`resource.service.name`
/// -> `resource_service_name`), and if that is taken too, `_2`, `_3`, ...
/// is appended.
pub fn key_label_names<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for field in fields {
        let taken = |name: &str, names: &[String]| {
            RESERVED.contains(&name) || name.starts_with("__") || names.iter().any(|n| n == name)
        };
        let mut name = sanitize(strip_scope(field));
        if taken(&name, &names) {
            name = sanitize(field.trim_start_matches('.'));
        }
        if taken(&name, &names) {
            let base = name.clone();
            let mut n = 2;
            while taken(&name, &names) {
                name = format!("{base}_{n}");
                n += 1;
            }
        }
        names.push(name);
    }
    names
}

fn strip_scope(field: &str) -> &str {
    for prefix in ["span.", "resource.", "instrumentation.", "."] {
        if let Some(rest) = field.strip_prefix(prefix) {
            return rest;
        }
    }
    // Scoped intrinsics: `span:name`, `trace:rootService`.
    match field.split_once(':') {
        Some((_, rest)) => rest,
        None => field,
    }
}

fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.as_bytes()[0].is_ascii_digit() {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprint_matches_prometheus() {
        // Values from prometheus/common model/signature_test.go and an
        // empty set (the FNV offset basis).
        assert_eq!(LabelSet::new().fingerprint().0, 14_695_981_039_346_656_037);
        assert_eq!(
            set(&[("name", "garland, briggs"), ("fear", "love is not enough")])
                .fingerprint()
                .0,
            5_799_056_148_416_392_346
        );
    }

    #[test]
    fn fingerprint_is_order_independent_and_value_sensitive() {
        let a = set(&[("alertname", "x"), ("client_address", "10.0.0.1")]);
        let b: LabelSet = [
            ("client_address".to_string(), "10.0.0.1".to_string()),
            ("alertname".to_string(), "x".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = set(&[("alertname", "x"), ("client_address", "10.0.0.2")]);
        assert_ne!(a.fingerprint(), c.fingerprint());
        // The separator keeps `ab`+`c` apart from `a`+`bc`.
        assert_ne!(
            set(&[("ab", "c")]).fingerprint(),
            set(&[("a", "bc")]).fingerprint()
        );
    }

    #[test]
    fn fingerprint_text_round_trips() {
        let fp = Fingerprint(0x00ab_cdef_0123_4567);
        assert_eq!(fp.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<Fingerprint>(), Ok(fp));
        assert!("xyz".parse::<Fingerprint>().is_err());
        assert!("00abcdef012345678".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn display_is_alertmanagers() {
        let labels = set(&[("b", "say \"hi\""), ("a", "1")]);
        assert_eq!(labels.to_string(), r#"{a="1", b="say \"hi\""}"#);
        assert_eq!(LabelSet::new().to_string(), "{}");
    }

    #[test]
    fn key_fields_become_label_names() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["span.client.address"], &["client_address"]),
            (&["resource.service.name"], &["service_name"]),
            (&[".enduser.id"], &["enduser_id"]),
            (&["name", "kind", "status"], &["name", "kind", "status"]),
            (&["span:name"], &["name"]),
            (
                &["span.http.request.header.x-api-key"],
                &["http_request_header_x_api_key"],
            ),
            (&["span.3com"], &["_3com"]),
            (
                &["span.service.name", "resource.service.name"],
                &["service_name", "resource_service_name"],
            ),
            (&["span.severity"], &["span_severity"]),
            (&["span.__x"], &["span___x"]),
            (&["span.a.b", "span.a_b"], &["a_b", "span_a_b"]),
            (
                &["span.a_b", ".a.b", "span.a.b"],
                &["a_b", "a_b_2", "span_a_b"],
            ),
        ];
        for (fields, expected) in cases {
            let names = key_label_names(fields.iter().copied());
            assert_eq!(names, *expected, "{fields:?}");
            for name in &names {
                assert!(is_valid_label_name(name), "{name}");
            }
        }
    }

    #[test]
    fn label_name_validity() {
        for ok in ["a", "_a", "client_address", "A9"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a.b", "a-b", "é"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }
}
