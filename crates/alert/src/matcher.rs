//! Label matchers, as Alertmanager writes them: `name="value"`,
//! `name!="value"`, `name=~"regex"`, `name!~"regex"`.
//!
//! Regexes are anchored at both ends, as Alertmanager anchors them
//! (`^(?:regex)$`): `severity=~"high|critical"` matches `high`, not
//! `highest`. An absent label matches as the empty string, so
//! `client_address=""` matches alerts without that label.

use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::labels::{LabelSet, Quoted, is_valid_label_name};

/// Largest compiled regex, in bytes: matchers come from configuration and
/// from silences people create, and a regex must not take the memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Longest matcher text accepted.
pub const MAX_MATCHER_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
}

/// One condition on one label.
#[derive(Clone, Debug)]
pub struct Matcher {
    name: String,
    kind: MatchType,
    value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.kind == other.kind && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    pub fn new(name: &str, kind: MatchType, value: &str) -> Result<Matcher, String> {
        if !is_valid_label_name(name) {
            return Err(format!("`{name}` is not a valid label name"));
        }
        let regex = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(
                RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("invalid regex `{value}`: {e}"))?,
            ),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            kind,
            value: value.to_string(),
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> MatchType {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the value (`""` for an absent label) satisfies the matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match (&self.kind, &self.regex) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regex, Some(re)) => re.is_match(value),
            (MatchType::NotRegex, Some(re)) => !re.is_match(value),
            // `new` compiles a regex for both regex kinds.
            (MatchType::Regex | MatchType::NotRegex, None) => false,
        }
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.get(&self.name))
    }
}

/// Whether every matcher matches (true for none).
pub fn matches_all(matchers: &[Matcher], labels: &LabelSet) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `{a="b", c=~"d"}`, as Alertmanager prints matchers in route keys.
pub fn display_matchers(matchers: &[Matcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", inner.join(", "))
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.kind.as_str(),
            Quoted(&self.value)
        )
    }
}

impl FromStr for Matcher {
    type Err = String;

    /// Parses `name<op>value`; the value may be double-quoted (with `\"`,
    /// `\\`, `\n`, `\t` escapes) or bare.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > MAX_MATCHER_BYTES {
            return Err(format!("longer than {MAX_MATCHER_BYTES} bytes"));
        }
        let text = text.trim();
        let name_len = text
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let (name, rest) = text.split_at(name_len);
        if name.is_empty() {
            return Err(format!(
                "`{text}`: expected a label name, then =, !=, =~ or !~, then a value"
            ));
        }
        let rest = rest.trim_start();
        let (kind, rest) = [
            ("=~", MatchType::Regex),
            ("!~", MatchType::NotRegex),
            ("!=", MatchType::NotEqual),
            ("=", MatchType::Equal),
        ]
        .into_iter()
        .find_map(|(op, kind)| rest.strip_prefix(op).map(|r| (kind, r)))
        .ok_or_else(|| format!("`{text}`: expected =, !=, =~ or !~ after `{name}`"))?;
        let value = parse_value(rest.trim()).map_err(|e| format!("`{text}`: {e}"))?;
        Matcher::new(name, kind, &value)
    }
}

fn parse_value(text: &str) -> Result<String, String> {
    let Some(inner) = text.strip_prefix('"') else {
        if text.contains('"') {
            return Err("unbalanced quote in value".to_string());
        }
        return Ok(text.to_string());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    loop {
        match chars.next() {
            None => return Err("missing closing quote".to_string()),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c) => {
                    // Regexes keep their own escapes: `\.` stays `\.`.
                    out.push('\\');
                    out.push(c);
                }
                None => return Err("missing closing quote".to_string()),
            },
            Some(c) => out.push(c),
        }
    }
    if !chars.as_str().trim().is_empty() {
        return Err("text after the closing quote".to_string());
    }
    Ok(out)
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matching_table() {
        let l = labels(&[
            ("alertname", "brute-force-login"),
            ("severity", "high"),
            ("client_address", "203.0.113.9"),
        ]);
        let cases = [
            ("severity=\"high\"", true),
            ("severity=high", true),
            ("severity = \"high\"", true),
            ("severity!=\"high\"", false),
            ("severity=~\"high|critical\"", true),
            ("severity=~\"hig\"", false),
            ("severity=~\"h.*\"", true),
            ("severity!~\"low|info\"", true),
            ("alertname=~\"brute-force-.*\"", true),
            ("alertname=~\"force\"", false),
            ("client_address=~\"203\\.0\\.113\\..*\"", true),
            ("client_address=~\"203\\.0\\.114\\..*\"", false),
            ("missing=\"\"", true),
            ("missing!=\"\"", false),
            ("missing=~\".*\"", true),
            ("missing=~\".+\"", false),
            ("severity=~\"(?i)HIGH\"", true),
        ];
        for (text, expected) in cases {
            let m: Matcher = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.matches(&l), expected, "{text}");
        }
    }

    #[test]
    fn anchoring_applies_to_alternations() {
        // `a|b` anchored as `^(?:a|b)$`, not `^a|b$`.
        let m: Matcher = "x=~\"a|b\"".parse().unwrap();
        assert!(m.matches_value("a"));
        assert!(m.matches_value("b"));
        assert!(!m.matches_value("ab"));
        assert!(!m.matches_value("xb"));
    }

    #[test]
    fn refuses_bad_matchers() {
        for (text, message) in [
            ("", "expected a label name"),
            ("=x", "expected a label name"),
            ("a.b=\"x\"", "expected =, !=, =~ or !~"),
            ("a>5", "expected =, !=, =~ or !~"),
            ("a=\"x", "missing closing quote"),
            ("a=\"x\" y", "text after the closing quote"),
            ("a=x\"", "unbalanced quote"),
            ("a=~\"(\"", "invalid regex"),
            ("9a=\"x\"", "not a valid label name"),
        ] {
            let err = text.parse::<Matcher>().unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "a=\"b\"",
            "a!=\"b\"",
            "a=~\"x|y\\\\.z\"",
            "a!~\"say \\\"hi\\\"\"",
        ] {
            let m: Matcher = text.parse().unwrap();
            assert_eq!(m.to_string(), text);
            assert_eq!(m.to_string().parse::<Matcher>().unwrap(), m);
        }
        let ms: Vec<Matcher> = ["a=\"1\"", "b=~\"2\""]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(display_matchers(&ms), r#"{a="1", b=~"2"}"#);
    }
}
