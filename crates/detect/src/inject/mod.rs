//! Attack-payload detectors for request fields carried by spans: `url.query`,
//! `url.path`, `url.full`, `http.request.header.*` and body attributes.
//!
//! Four classes: SQL injection (`sqli`: a SQL lexer run in three quoting contexts
//! plus rules over the token sequence), cross-site scripting (`xss`), path
//! traversal (`traversal`) and OS command injection (`command`). Every value is
//! URL-decoded first (up to three rounds, `%uXXXX`, overlong UTF-8, `+`), then
//! scanned whole and, when it looks like a query string, form body or cookie header,
//! parameter by parameter: a SQL break-out only shows as such from the start of the
//! parameter it was pasted into.
//!
//! Measured against the OWASP CRS regression requests and libinjection's sample
//! lists: see `docs/DETECTION.md` and `tests/inject_rates.rs`.
//!
//! ```
//! use tracewarden_detect::inject::{self, AttackClass};
//!
//! let findings = inject::detect("id=1%27%20or%20%271%27%3D%271");
//! assert_eq!(findings.first().map(|f| f.class), Some(AttackClass::SqlInjection));
//! assert!(inject::detect("q=O%27Brien&page=2").is_empty());
//! ```

mod cache;
mod command;
mod decode;
mod sqli;
mod traversal;
mod xss;

use std::fmt;
use std::sync::LazyLock;

/// Bytes of a value that are scanned. Request fields longer than this (large bodies)
/// are scanned on their first 64 KiB, so a hostile value costs bounded time.
pub const MAX_SCAN_BYTES: usize = 64 * 1024;

/// The kind of attack a payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AttackClass {
    SqlInjection,
    CrossSiteScripting,
    PathTraversal,
    CommandInjection,
}

impl AttackClass {
    /// All classes, in the order [`Detector::detect`] reports them.
    pub const ALL: [AttackClass; 4] = [
        AttackClass::SqlInjection,
        AttackClass::CrossSiteScripting,
        AttackClass::PathTraversal,
        AttackClass::CommandInjection,
    ];

    /// Stable short name, used in rule files and alert labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AttackClass::SqlInjection => "sqli",
            AttackClass::CrossSiteScripting => "xss",
            AttackClass::PathTraversal => "path_traversal",
            AttackClass::CommandInjection => "command_injection",
        }
    }

    fn bit(self) -> u8 {
        match self {
            AttackClass::SqlInjection => 1,
            AttackClass::CrossSiteScripting => 2,
            AttackClass::PathTraversal => 4,
            AttackClass::CommandInjection => 8,
        }
    }
}

impl fmt::Display for AttackClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detected payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub class: AttackClass,
    /// Which rule fired, e.g. `"union select"`, `"event handler"`, `"parent directory"`.
    pub reason: &'static str,
    /// Byte offset, in the scanned value, of the part (the whole value or one
    /// parameter value) in which the payload was found.
    pub offset: usize,
}

/// Building a [`Detector`] failed (an automaton could not be compiled).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    #[error("failed to build the {class} matcher: {source}")]
    Build {
        class: AttackClass,
        #[source]
        source: aho_corasick::BuildError,
    },
    #[error("failed to compile a {class} pattern: {source}")]
    Pattern {
        class: AttackClass,
        #[source]
        source: regex::Error,
    },
}

/// The compiled detectors. Build once (or use [`detector`]) and share: scanning takes
/// `&self` and allocates nothing for a value that needs no decoding and matches
/// nothing.
pub struct Detector {
    xss: xss::Scanner,
    traversal: traversal::Scanner,
    command: command::Scanner,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector").finish_non_exhaustive()
    }
}

impl Detector {
    pub fn new() -> Result<Self, InjectError> {
        let build = |class| move |source| InjectError::Build { class, source };
        Ok(Self {
            xss: xss::Scanner::new().map_err(build(AttackClass::CrossSiteScripting))?,
            traversal: traversal::Scanner::new().map_err(build(AttackClass::PathTraversal))?,
            command: command::Scanner::new()?,
        })
    }

    /// Every class found in `value`, at most one finding per class.
    pub fn detect(&self, value: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        self.detect_into(value, &mut out);
        out
    }

    /// Like [`Detector::detect`], appending to `out` (reuse one buffer per worker).
    pub fn detect_into(&self, value: &str, out: &mut Vec<Finding>) {
        self.run(value, u8::MAX, out);
    }

    /// Scan `value` for one class only.
    pub fn scan(&self, class: AttackClass, value: &str) -> Option<Finding> {
        let mut out = Vec::new();
        self.run(value, class.bit(), &mut out);
        out.pop()
    }

    fn run(&self, value: &str, wanted: u8, out: &mut Vec<Finding>) {
        let value = decode::bounded(value, MAX_SCAN_BYTES);
        let mut found = 0u8;
        // A query string or form body is also scanned parameter by parameter, which
        // covers traversal payloads; the whole value still matters for SQL, markup
        // and shell syntax that spans a `&`, `;` or `=` (`1; DROP`, `<img src=x
        // onerror=...>`, `a && id`).
        let split = value.contains('=');
        let whole = if split {
            wanted & !AttackClass::PathTraversal.bit()
        } else {
            wanted
        };
        self.scan_part(value, 0, whole, Plus::Space, &mut found, out);
        if found & wanted != wanted {
            // JSON and XML bodies: scan each string, attribute value and text node.
            for (offset, part) in structured_parts(value) {
                if found & wanted == wanted {
                    break;
                }
                self.scan_part(&part, offset, wanted, Plus::Literal, &mut found, out);
            }
        }
        if !split {
            return;
        }
        // Query strings, form bodies and cookie headers: scan each parameter value
        // (and names that are not plain identifiers) on its own.
        let mut offset = 0;
        for piece in value.split(['&', ';']) {
            if found & wanted == wanted {
                break;
            }
            let piece_offset = offset;
            offset += piece.len() + 1;
            let (name, val, val_offset) = match piece.split_once('=') {
                Some((name, val)) => (name, val, piece_offset + name.len() + 1),
                None => (piece, "", piece_offset),
            };
            if !val.is_empty() && val.len() < value.len() {
                self.scan_part(val, val_offset, wanted, Plus::Space, &mut found, out);
            }
            let name = name.trim_start();
            if !name.is_empty()
                && name.len() < value.len()
                && !name.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']')
                })
            {
                self.scan_part(name, piece_offset, wanted, Plus::Space, &mut found, out);
            }
        }
    }

    fn scan_part(
        &self,
        raw: &str,
        offset: usize,
        wanted: u8,
        plus: Plus,
        found: &mut u8,
        out: &mut Vec<Finding>,
    ) {
        let decoded = match plus {
            Plus::Space => decode::url(raw),
            Plus::Literal => decode::url_literal_plus(raw),
        };
        let text = decoded.as_ref();
        for class in AttackClass::ALL {
            let bit = class.bit();
            if wanted & bit == 0 || *found & bit != 0 {
                continue;
            }
            let hit = match class {
                AttackClass::SqlInjection => sqli::scan(text),
                AttackClass::CrossSiteScripting => self.xss.scan(text),
                AttackClass::PathTraversal => self.traversal.scan(text),
                AttackClass::CommandInjection => self.command.scan(text),
            };
            if let Some((reason, _)) = hit {
                *found |= bit;
                out.push(Finding {
                    class,
                    reason,
                    offset,
                });
            }
        }
    }
}

/// What a `+` means in a part: a blank in a query string or form body, itself in
/// a JSON string or XML attribute (`probe="~+"` is not `~ `).
#[derive(Clone, Copy)]
enum Plus {
    Space,
    Literal,
}

/// Most parts taken from one structured body: bounds the work on a hostile body made
/// of millions of tiny strings.
const MAX_PARTS: usize = 256;

/// The strings of a JSON body, or the attribute values and text nodes of an XML
/// body (character references decoded), with their byte offsets. Empty for other
/// values; allocates only for values that look structured.
fn structured_parts(value: &str) -> Vec<(usize, std::borrow::Cow<'_, str>)> {
    let trimmed = value.trim_start();
    let lead = value.len() - trimmed.len();
    match trimmed.as_bytes().first() {
        Some(b'{' | b'[') => json_strings(trimmed)
            .into_iter()
            .map(|(at, s)| (lead + at, s))
            .collect(),
        Some(b'<') => xml_values(trimmed)
            .into_iter()
            .map(|(at, s)| (lead + at, s))
            .collect(),
        _ => Vec::new(),
    }
}

/// JSON's one-character escapes decoded; `\u` (and anything else) is left
/// for [`decode::markup`].
fn json_unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(c @ ('/' | '"' | '\\')) => out.push(c),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn json_strings(text: &str) -> Vec<(usize, std::borrow::Cow<'_, str>)> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < bytes.len() && parts.len() < MAX_PARTS {
        if bytes.get(i) != Some(&b'"') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        let mut escaped = false;
        while let Some(&b) = bytes.get(j) {
            if b == b'\\' {
                escaped = true;
                j += 2;
                continue;
            }
            if b == b'"' {
                break;
            }
            j += 1;
        }
        let raw = text.get(start..j.min(bytes.len())).unwrap_or("");
        if !raw.is_empty() {
            // JSON's short escapes (`\n`, `\t`, `\/`) are what the application
            // reads: a line feed, a tab, a slash; `\u003c` is the same shape as
            // JavaScript's.
            let part = if escaped {
                std::borrow::Cow::Owned(decode::markup(&json_unescape(raw)).into_owned())
            } else {
                std::borrow::Cow::Borrowed(raw)
            };
            parts.push((start, part));
        }
        i = j + 1;
    }
    parts
}

fn xml_values(text: &str) -> Vec<(usize, std::borrow::Cow<'_, str>)> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut i = 0;
    let mut in_tag = false;
    while i < bytes.len() && parts.len() < MAX_PARTS {
        let b = bytes.get(i).copied().unwrap_or(0);
        if in_tag && (b == b'"' || b == b'\'') && i > 0 && bytes.get(i - 1) == Some(&b'=') {
            let start = i + 1;
            let end = bytes
                .get(start..)
                .and_then(|r| r.iter().position(|c| *c == b))
                .map_or(bytes.len(), |p| start + p);
            if let Some(raw) = text.get(start..end).filter(|r| !r.is_empty()) {
                parts.push((start, decode::markup(raw)));
            }
            i = end + 1;
            continue;
        }
        match b {
            b'<' => in_tag = true,
            b'>' => {
                in_tag = false;
                let start = i + 1;
                let end = bytes
                    .get(start..)
                    .and_then(|r| r.iter().position(|c| *c == b'<'))
                    .map_or(bytes.len(), |p| start + p);
                if let Some(raw) = text.get(start..end).filter(|r| !r.trim().is_empty()) {
                    parts.push((start, decode::markup(raw)));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts
}

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    // The automata are built from the constant pattern tables in this module; the
    // builders fail only on limits (pattern count, state count) that these tables are
    // far below, and `detector_builds` in the tests proves it for every build.
    #[allow(clippy::expect_used)]
    Detector::new().expect("constant injection patterns compile")
});

/// The process-wide detector, compiled on first use.
pub fn detector() -> &'static Detector {
    &DETECTOR
}

/// Every attack class found in `value` (see [`Detector::detect`]).
pub fn detect(value: &str) -> Vec<Finding> {
    DETECTOR.detect(value)
}

/// Scan `value` for one class (see [`Detector::scan`]).
pub fn scan(class: AttackClass, value: &str) -> Option<Finding> {
    DETECTOR.scan(class, value)
}

pub use cache::{Findings, cache_counts, class_index, findings_cached};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_builds() {
        assert!(Detector::new().is_ok());
    }

    fn classes(value: &str) -> Vec<AttackClass> {
        detect(value).into_iter().map(|f| f.class).collect()
    }

    #[test]
    fn splits_query_strings_into_parameters() {
        // Only visible as a break-out from the start of the `name` parameter.
        let found = detect("page=it%27s&name=x%27%20or%20%27a%27%3D%27a");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found.first().map(|f| f.class),
            Some(AttackClass::SqlInjection)
        );
        assert_eq!(found.first().map(|f| f.offset), Some(17));
    }

    #[test]
    fn decodes_before_matching() {
        assert_eq!(
            classes("%253Cscript%253Ealert(1)%253C/script%253E"),
            vec![AttackClass::CrossSiteScripting]
        );
        assert_eq!(
            classes("file=%c0%ae%c0%ae/%c0%ae%c0%ae/etc/hosts"),
            vec![AttackClass::PathTraversal]
        );
        assert!(
            classes("host=127.0.0.1%3Bcat+%2Fetc%2Fpasswd").contains(&AttackClass::PathTraversal)
        );
        assert!(
            classes("host=127.0.0.1%3Bcat+%2Fetc%2Fpasswd")
                .contains(&AttackClass::CommandInjection)
        );
    }

    #[test]
    fn benign_values_are_clean() {
        for value in [
            "q=O%27Brien&page=2",
            "q=rock+%26+roll",
            "/api/v1/users/42/orders",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "session=abc123; theme=dark; lang=en-US",
            "",
        ] {
            assert!(
                detect(value).is_empty(),
                "flagged {value:?}: {:?}",
                detect(value)
            );
        }
    }

    #[test]
    fn scans_json_and_xml_bodies() {
        let xml = r#"<?xml version="1.0"?><root><a probe="1234 OR 1=1"></a></root>"#;
        assert_eq!(classes(xml), vec![AttackClass::SqlInjection]);
        // A `+` in XML or JSON is a plus, not a form-encoded blank.
        let xml = r#"<?xml version="1.0"?><root><a probe="~+"></a></root>"#;
        assert_eq!(classes(xml), vec![AttackClass::CommandInjection]);
        let json = r#"{"user": {"name": "x' OR '1'='1"}, "n": 2}"#;
        assert_eq!(classes(json), vec![AttackClass::SqlInjection]);
        let json = r#"{"comment": "\u003cscript\u003ealert(1)\u003c/script\u003e"}"#;
        assert_eq!(classes(json), vec![AttackClass::CrossSiteScripting]);
        assert!(
            detect(r#"{"name": "O'Brien", "items": [1, 2], "note": "rock & roll"}"#).is_empty()
        );
        assert!(detect("<order><id>42</id><note>leave at door</note></order>").is_empty());
        // JSON's short escapes are what the application reads.
        for (json, class) in [
            (
                r#"{"host":"127.0.0.1\nwhoami"}"#,
                AttackClass::CommandInjection,
            ),
            (
                r#"{"host":"127.0.0.1\r\nwhoami"}"#,
                AttackClass::CommandInjection,
            ),
            (r#"{"f":"\/etc\/passwd"}"#, AttackClass::PathTraversal),
        ] {
            assert!(
                classes(json).contains(&class),
                "{json}: {:?}",
                classes(json)
            );
        }
        // Stringified JSON and GraphQL inside JSON are no SQL JSON operator.
        for benign in [
            r#"{"query":"{ search(text: \"hello\") { id } }"}"#,
            r#"{"variables":{},"query":"{ viewer { login } }"}"#,
            r#"{"event":"signup","properties":"{\"plan\":\"pro\"}"}"#,
            r#"{"payload":"[1,2,3]"}"#,
        ] {
            assert!(detect(benign).is_empty(), "{benign}: {:?}", detect(benign));
        }
    }

    #[test]
    fn scan_limits_to_one_class() {
        let value = "q=<script>alert(1)</script>";
        assert!(scan(AttackClass::SqlInjection, value).is_none());
        assert_eq!(
            scan(AttackClass::CrossSiteScripting, value).map(|f| f.reason),
            Some("active tag")
        );
    }

    #[test]
    fn oversized_values_are_bounded() {
        let value = format!("q={}", "%2e%2e%2f".repeat(MAX_SCAN_BYTES));
        assert_eq!(classes(&value), vec![AttackClass::PathTraversal]);
    }
}
