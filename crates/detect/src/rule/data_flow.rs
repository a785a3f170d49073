//! `kind: data_flow`: personal data reaching a third party, or a service
//! outside an allowed set.
//!
//! ```yaml
//! kind: data_flow
//! third_parties: $third_parties   # the default; or a list of regexes
//! allowed: [api-gateway, weather] # optional: destinations allowed; others count too
//! detect: [email, payment_card, phone, national_id, iban]   # value detectors (default all)
//! classification_keys: [app.data.classification]           # the defaults
//! classification_values: [pii, personal, sensitive, confidential]
//! attribute_names: [email, phone, ssn, card_number, iban, date_of_birth]  # default: a longer list
//! ```
//!
//! A destination is a client or producer span whose `server.address`,
//! `service.peer.name`, `peer.service` or `messaging.destination.name`
//! matches `third_parties` (or, with `allowed`, matches none of it), or a
//! server or consumer span of such a service (`service.name`). Personal
//! data is a span attribute that a classification marks (`app.data.
//! classification = pii`), whose name says so (`user.email`), or whose
//! value holds an e-mail address, card number, phone number, SSN or IBAN
//! ([`crate::pii`]).

use regex::Regex;
use saphyr::{MarkedYaml, YamlData};
use tracewarden_model::semconv::{
    LEGACY_PEER_SERVICE, MESSAGING_DESTINATION_NAME, SERVER_ADDRESS, SERVICE_NAME,
    SERVICE_PEER_NAME,
};
use tracewarden_model::{AnyValue, KeyValue, SpanKind, SpanRecord};

use super::{Checker, Getter, RuleErrorKind, RuleKind, string_of};
use crate::pii::{self, DEFAULT_ATTRIBUTE_NAMES, NameMatcher, PiiKind, PiiKinds};

/// Attributes of a client or producer span that name where it goes.
pub const DESTINATION_KEYS: [&str; 4] = [
    SERVER_ADDRESS,
    SERVICE_PEER_NAME,
    LEGACY_PEER_SERVICE,
    MESSAGING_DESTINATION_NAME,
];
/// Default classification attributes.
pub const DEFAULT_CLASSIFICATION_KEYS: [&str; 1] = ["app.data.classification"];
/// Default classification values that mean personal data.
pub const DEFAULT_CLASSIFICATION_VALUES: [&str; 4] =
    ["pii", "personal", "sensitive", "confidential"];

/// `kind: data_flow`.
#[derive(Clone, Debug)]
pub struct DataFlowRule {
    /// Destinations outside the organisation (anchored). `None`: not
    /// declared (then `allowed` is).
    pub third_parties: Option<Regex>,
    /// Destinations allowed (anchored); any other destination counts too.
    pub allowed: Option<Regex>,
    pub personal_data: PersonalData,
}

/// How personal data is recognised.
#[derive(Clone, Debug)]
pub struct PersonalData {
    /// Value detectors.
    pub detect: PiiKinds,
    pub classification_keys: Vec<String>,
    /// Lowercase.
    pub classification_values: Vec<String>,
    pub attribute_names: NameMatcher,
}

impl Default for PersonalData {
    fn default() -> Self {
        PersonalData {
            detect: PiiKinds::ALL,
            classification_keys: DEFAULT_CLASSIFICATION_KEYS.map(String::from).to_vec(),
            classification_values: DEFAULT_CLASSIFICATION_VALUES.map(String::from).to_vec(),
            attribute_names: NameMatcher::defaults(),
        }
    }
}

/// Where a span sends data, and why that counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination<'a> {
    /// The host, peer, queue or service name.
    pub name: &'a str,
    /// The attribute it came from (`server.address`, `service.name`).
    pub field: &'static str,
    /// A client or producer span (the data leaves), else a server or
    /// consumer span of the destination service (the data arrived).
    pub outbound: bool,
    /// Matches `third_parties`; else outside `allowed`.
    pub third_party: bool,
}

impl Destination<'_> {
    pub fn reason(&self) -> &'static str {
        if self.third_party {
            "third party"
        } else {
            "not allowed"
        }
    }
}

/// Personal data found on a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PiiHit<'a> {
    /// `email`, `payment_card`, ..., an attribute-name entry, or
    /// `classification pii`.
    pub kind: String,
    /// The attribute it was in.
    pub field: &'a str,
    /// The value masked (`****1111`), or the classification value.
    pub shown: String,
}

impl PiiHit<'_> {
    /// `payment_card in url.query (****1111)`.
    pub fn describe(&self) -> String {
        format!("{} in {} ({})", self.kind, self.field, self.shown)
    }
}

impl DataFlowRule {
    /// Where `record` sends data, when that is a third party or not
    /// allowed. Allocates nothing.
    pub fn destination<'a>(&self, record: &'a SpanRecord) -> Option<Destination<'a>> {
        let span = &record.span;
        let mut candidates: [Option<(&'static str, &'a str)>; 4] = [None; 4];
        match span.kind {
            SpanKind::Client | SpanKind::Producer => {
                for (slot, key) in candidates.iter_mut().zip(DESTINATION_KEYS) {
                    *slot = span
                        .attribute(key)
                        .and_then(AnyValue::as_str)
                        .map(|name| (key, name));
                }
            }
            SpanKind::Server | SpanKind::Consumer => {
                candidates[0] = record
                    .resource
                    .attribute(SERVICE_NAME)
                    .and_then(AnyValue::as_str)
                    .map(|name| (SERVICE_NAME, name));
            }
            _ => return None,
        }
        let outbound = matches!(span.kind, SpanKind::Client | SpanKind::Producer);
        let mut first: Option<(&'static str, &'a str)> = None;
        let mut any_allowed = false;
        for (field, name) in candidates.into_iter().flatten() {
            if name.is_empty() {
                continue;
            }
            if self
                .third_parties
                .as_ref()
                .is_some_and(|re| re.is_match(name))
            {
                return Some(Destination {
                    name,
                    field,
                    outbound,
                    third_party: true,
                });
            }
            any_allowed |= self.allowed.as_ref().is_some_and(|re| re.is_match(name));
            first.get_or_insert((field, name));
        }
        match (&self.allowed, first) {
            (Some(_), Some((field, name))) if !any_allowed => Some(Destination {
                name,
                field,
                outbound,
                third_party: false,
            }),
            _ => None,
        }
    }
}

impl PersonalData {
    /// The first personal data among `attributes`: classification first,
    /// then attribute names, then values. Allocates only when found (and
    /// for percent-encoded values).
    pub fn find<'a>(&self, attributes: &'a [KeyValue]) -> Option<PiiHit<'a>> {
        self.find_with(attributes, None)
    }

    /// [`PersonalData::find`], remembering which attribute names match in
    /// `cache`: for scans of many spans, whose keys repeat (matching a key
    /// splits it into words each time).
    pub fn find_cached<'a>(
        &self,
        attributes: &'a [KeyValue],
        cache: &mut NameCache,
    ) -> Option<PiiHit<'a>> {
        self.find_with(attributes, Some(cache))
    }

    fn find_with<'a>(
        &self,
        attributes: &'a [KeyValue],
        mut cache: Option<&mut NameCache>,
    ) -> Option<PiiHit<'a>> {
        for kv in attributes {
            if !self.classification_keys.iter().any(|k| *k == kv.key) {
                continue;
            }
            if let Some(value) = self.classified(&kv.value) {
                return Some(PiiHit {
                    kind: format!("classification {value}"),
                    field: &kv.key,
                    shown: value.to_string(),
                });
            }
        }
        for kv in attributes {
            let entry = match cache.as_deref_mut() {
                None => self.attribute_names.matches(&kv.key),
                Some(cache) => cache.matches(&self.attribute_names, &kv.key),
            };
            let Some(entry) = entry else {
                continue;
            };
            let shown = match &kv.value {
                AnyValue::Str(s) if !redacted(s) => pii::mask(s),
                AnyValue::Int(i) => pii::mask(&i.to_string()),
                _ => continue,
            };
            return Some(PiiHit {
                kind: entry.to_string(),
                field: &kv.key,
                shown,
            });
        }
        if self.detect.is_empty() {
            return None;
        }
        for kv in attributes {
            let found = match &kv.value {
                AnyValue::Str(s) => pii::find(s, self.detect),
                AnyValue::Int(i) => pii::find_in_int(*i, self.detect),
                _ => None,
            };
            if let Some(found) = found {
                return Some(PiiHit {
                    kind: found.kind.as_str().to_string(),
                    field: &kv.key,
                    shown: found.masked,
                });
            }
        }
        None
    }

    /// The classification value that means personal data: the value, one
    /// of its comma-, semicolon-, `|`- or space-separated words, or an
    /// array element.
    fn classified<'v>(&self, value: &'v AnyValue) -> Option<&'v str> {
        let hit = |word: &str| {
            self.classification_values
                .iter()
                .any(|v| v.eq_ignore_ascii_case(word.trim()))
        };
        match value {
            AnyValue::Str(s) => s
                .split([',', ';', '|', ' '])
                .find(|w| hit(w))
                .map(str::trim),
            AnyValue::Array(items) => items.iter().filter_map(AnyValue::as_str).find(|w| hit(w)),
            _ => None,
        }
    }
}

/// Most keys a [`NameCache`] remembers; others are matched each time.
const NAME_CACHE_KEYS: usize = 4096;

/// Which attribute names match a [`NameMatcher`], remembered per key.
#[derive(Debug, Default)]
pub struct NameCache {
    keys: std::collections::HashMap<Box<str>, Option<Box<str>>>,
}

impl NameCache {
    fn matches<'c>(&'c mut self, names: &'c NameMatcher, key: &str) -> Option<&'c str> {
        if !self.keys.contains_key(key) {
            if self.keys.len() >= NAME_CACHE_KEYS {
                return names.matches(key);
            }
            let entry = names.matches(key).map(Box::from);
            self.keys.insert(Box::from(key), entry);
        }
        self.keys.get(key).and_then(|e| e.as_deref())
    }
}

/// A value already masked or withheld (`***`, `[REDACTED]`): not personal
/// data any more.
fn redacted(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.chars()
            .all(|c| matches!(c, '*' | 'x' | 'X' | '#' | '•' | '-'))
        || [
            "redacted",
            "[redacted]",
            "<redacted>",
            "[filtered]",
            "null",
            "none",
            "n/a",
        ]
        .iter()
        .any(|r| v.eq_ignore_ascii_case(r))
}

pub(super) const KEYS: [&str; 6] = [
    "third_parties",
    "allowed",
    "detect",
    "classification_keys",
    "classification_values",
    "attribute_names",
];

pub(super) fn parse(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    // `Err(fact)`: a site fact left empty.
    let third_parties = match get("third_parties") {
        None => match checker.site.regex("third_parties") {
            Ok(Some(_)) => checker.fact_regex("third_parties", root, Some("third_parties")),
            _ => Some(Err("third_parties".to_string())),
        },
        Some(node) => checker.fact_regex("third_parties", node, None),
    };
    let allowed = match get("allowed") {
        None => Some(Ok(None)),
        Some(node) => checker
            .fact_regex("allowed", node, None)
            .map(|r| r.map(Some)),
    };
    let detect = match get("detect") {
        None => Some(PiiKinds::ALL),
        Some(node) => strings(checker, "detect", node, true).and_then(|items| {
            let before = checker.errors.len();
            let mut kinds = PiiKinds::NONE;
            for (name, item) in items {
                match PiiKind::from_name(name) {
                    Some(kind) => kinds = kinds.with(kind),
                    None => checker.error(
                        item,
                        RuleErrorKind::Invalid {
                            key: "detect".to_string(),
                            reason: format!(
                                "unknown detector `{name}` (expected one of: {})",
                                PiiKind::ALL.map(PiiKind::as_str).join(", ")
                            ),
                        },
                    ),
                }
            }
            (checker.errors.len() == before).then_some(kinds)
        }),
    };
    let list = |checker: &mut Checker<'_>, key: &'static str, default: &[&str], lower: bool| {
        match get(key) {
            None => Some(default.iter().map(|s| (*s).to_string()).collect::<Vec<_>>()),
            Some(node) => strings(checker, key, node, false).map(|items| {
                items
                    .into_iter()
                    .map(|(s, _)| {
                        if lower {
                            s.to_ascii_lowercase()
                        } else {
                            s.to_string()
                        }
                    })
                    .collect()
            }),
        }
    };
    let classification_keys = list(
        checker,
        "classification_keys",
        &DEFAULT_CLASSIFICATION_KEYS,
        false,
    );
    let classification_values = list(
        checker,
        "classification_values",
        &DEFAULT_CLASSIFICATION_VALUES,
        true,
    );
    let attribute_names = list(checker, "attribute_names", DEFAULT_ATTRIBUTE_NAMES, false);
    let (third_parties, allowed) = (third_parties?, allowed?);
    // An allow-list from an empty fact would flag every destination: the
    // rule waits for the fact. Without third parties the allow-list alone
    // decides; with neither, nothing is a destination.
    let allowed = match allowed {
        Ok(allowed) => allowed,
        Err(fact) => {
            checker.empty_fact(&fact);
            None
        }
    };
    let third_parties = match third_parties {
        Ok(re) => Some(re),
        Err(fact) => {
            if allowed.is_none() {
                checker.empty_fact(&fact);
            }
            None
        }
    };
    Some(RuleKind::DataFlow(DataFlowRule {
        third_parties,
        allowed,
        personal_data: PersonalData {
            detect: detect?,
            classification_keys: classification_keys?,
            classification_values: classification_values?,
            attribute_names: NameMatcher::new(&attribute_names?),
        },
    }))
}

/// A list of non-empty strings (`non_empty`: at least one entry).
fn strings<'a>(
    checker: &mut Checker<'_>,
    key: &'static str,
    node: &'a MarkedYaml<'a>,
    non_empty: bool,
) -> Option<Vec<(&'a str, &'a MarkedYaml<'a>)>> {
    let YamlData::Sequence(items) = &node.data else {
        checker.error(
            node,
            RuleErrorKind::WrongType {
                key: key.to_string(),
                expected: "a list of strings",
            },
        );
        return None;
    };
    if (non_empty && items.is_empty()) || items.len() > super::facts::MAX_LIST {
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: key.to_string(),
                reason: format!("list 1 to {} entries", super::facts::MAX_LIST),
            },
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match string_of(item) {
            Some(s) if !s.trim().is_empty() => out.push((s.trim(), item)),
            _ => checker.error(
                item,
                RuleErrorKind::WrongType {
                    key: key.to_string(),
                    expected: "a non-empty string",
                },
            ),
        }
    }
    (out.len() == items.len()).then_some(out)
}
