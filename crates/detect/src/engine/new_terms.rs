//! State of a new_terms rule: per key, the terms (tuples of `fields`
//! values) seen so far, and the decision whether a term is new.
//!
//! # Terms are 64-bit hashes
//!
//! A term is kept as a 64-bit keyed SipHash of its values (the engine's
//! random key, so nobody can craft a value that collides with a known
//! one), with the second it was last seen: 12 bytes a term, whatever the
//! length of a user agent or a table name, where keeping the text would
//! cost its length plus a heap allocation per term. The evidence names the
//! new term from the span that brought it, so the text is never needed
//! later. The price is a collision: a new term whose hash equals a known
//! one's is taken as known (a missed detection, never a false one). With
//! n terms in a key the chance that a given new term collides is n / 2^64,
//! about 5e-16 at the 10,000-term maximum.
//!
//! # Memory per key
//!
//! The key's map entry (the key text, boxed, plus the slot: 40 bytes) and
//! a sorted vector of 12-byte terms, grown one term at a time up to four
//! terms (most users have one to three user agents) and doubling beyond,
//! at most `max_terms_per_key` (default 256, at most 10,000: 120 KB). When
//! a key is full, a new term replaces the least recently seen one (by
//! event time), counted in `RuleStats::evicted_terms`; the forgotten term
//! fires again if it returns.

use crate::rule::{NewKeys, NewTermsRule};

use super::hashing::KeyedHasher;
use super::keys::{KeyMap, decode_key};
use super::{Admitted, RuleStats, slot_for};

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Terms a key's vector grows to one at a time before it doubles.
const SMALL: usize = 4;

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct NewTermsState {
    pub(crate) keys: KeyMap<TermSet>,
    /// Start time of the first span the rule saw.
    learning_start: Option<u64>,
    hasher: KeyedHasher,
}

impl NewTermsState {
    pub(crate) fn new(max_keys: usize) -> NewTermsState {
        NewTermsState {
            keys: KeyMap::new(max_keys),
            learning_start: None,
            hasher: KeyedHasher::random(),
        }
    }

    /// End of learning (event time): the first span's start time, fixed by
    /// the first call, plus `learning`.
    pub(crate) fn learning_end(&mut self, ts: u64, learning: u64) -> u64 {
        self.learning_start
            .get_or_insert(ts)
            .saturating_add(learning)
    }

    /// Records the term (`build_key` encoding of the `fields` values) of
    /// one span for `key`; returns the evidence when it is new and the rule
    /// fires on it: after learning, and not the first term of a new key
    /// when `new_keys: learn`.
    pub(crate) fn observe(
        &mut self,
        rule: &NewTermsRule,
        key: &str,
        term: &str,
        span: &Admitted,
        learning_end: u64,
        stats: &mut RuleStats,
    ) -> Option<String> {
        let hash = self.hasher.hash_one(term);
        let start = self.learning_start.unwrap_or(span.ts);
        let seen = u32::try_from(span.ts.saturating_sub(start) / NANOS_PER_SEC).unwrap_or(u32::MAX);
        let slot = slot_for(&mut self.keys, key, span, stats)?;
        let first = slot.value.is_empty();
        if !slot.value.insert(hash, seen, rule.max_terms_per_key, stats) {
            return None;
        }
        if span.ts < learning_end || (first && rule.new_keys == NewKeys::Learn) {
            return None;
        }
        Some(evidence(rule, key, term))
    }
}

/// The terms of one key, sorted by hash.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct TermSet {
    terms: Vec<Term>,
}

/// 12 bytes: the hash as two halves keeps the alignment at 4.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Term {
    hash: [u32; 2],
    /// Seconds from the rule's first span to the newest span with the term.
    seen: u32,
}

impl TermSet {
    fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Inserts a term or refreshes its last-seen time; true when it was new.
    fn insert(&mut self, hash: u64, seen: u32, cap: usize, stats: &mut RuleStats) -> bool {
        let hash = [(hash >> 32) as u32, hash as u32];
        let mut at = match self.terms.binary_search_by(|t| t.hash.cmp(&hash)) {
            Ok(i) => {
                if let Some(term) = self.terms.get_mut(i) {
                    term.seen = term.seen.max(seen);
                }
                return false;
            }
            Err(at) => at,
        };
        if self.terms.len() >= cap.max(1) {
            let oldest = self
                .terms
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| t.seen)
                .map(|(i, _)| i);
            if let Some(oldest) = oldest {
                self.terms.remove(oldest);
                stats.evicted_terms += 1;
                if oldest < at {
                    at -= 1;
                }
            }
        }
        if self.terms.len() == self.terms.capacity() && self.terms.len() < SMALL {
            self.terms.reserve_exact(1);
        }
        self.terms.insert(at, Term { hash, seen });
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.terms.len()
    }
}

/// `new span.user_agent.original for span.enduser.id=alice: "curl/8.1"`;
/// several fields as a tuple; no `for ...` without `group_by`. Values are
/// escaped, so the text stays one line.
fn evidence(rule: &NewTermsRule, key: &str, term: &str) -> String {
    let names: Vec<&str> = rule.fields.iter().map(|f| f.as_str()).collect();
    let values: Vec<String> = decode_key(term).iter().map(|v| format!("{v:?}")).collect();
    let mut out = if names.len() == 1 {
        format!("new {}", names.join(""))
    } else {
        format!("new ({})", names.join(", "))
    };
    let key_values = decode_key(key);
    if !rule.group_by.is_empty() {
        let pairs: Vec<String> = rule
            .group_by
            .iter()
            .zip(&key_values)
            .map(|(f, v)| format!("{}={}", f.as_str(), v.escape_debug()))
            .collect();
        out.push_str(" for ");
        out.push_str(&pairs.join(", "));
    }
    out.push_str(": ");
    if values.len() == 1 {
        out.push_str(&values.join(""));
    } else {
        out.push('(');
        out.push_str(&values.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rule::{RuleKind, parse_rule};

    fn rule(extra: &str) -> NewTermsRule {
        let text = format!(
            "id: t\ntitle: t\nseverity: low\nkind: new_terms\ncondition: '{{ }}'\ngroup_by: [span.enduser.id]\nfields: [span.user_agent.original]\nlearning: 100s\n{extra}"
        );
        match parse_rule(&text, Path::new("t.yaml")).unwrap().kind {
            RuleKind::NewTerms(n) => n,
            other => panic!("{other:?}"),
        }
    }

    const SEC: u64 = 1_000_000_000;

    /// Feeds (seconds, user, agent) in order; returns the evidence fired.
    fn run(rule: &NewTermsRule, spans: &[(u64, &str, &str)]) -> (Vec<String>, RuleStats) {
        let mut state = NewTermsState::new(1000);
        let mut stats = RuleStats::default();
        let mut fired = Vec::new();
        for &(t, user, agent) in spans {
            let ts = t * SEC;
            let end = state.learning_end(ts, 100 * SEC);
            let key = format!("{}:{user}", user.len());
            let term = format!("{}:{agent}", agent.len());
            let span = Admitted {
                ts,
                future: false,
                watermark: ts,
                window: u64::MAX,
                expiry: u64::MAX,
            };
            if let Some(e) = state.observe(rule, &key, &term, &span, end, &mut stats) {
                fired.push(e);
            }
        }
        (fired, stats)
    }

    #[test]
    fn terms_seen_in_learning_never_fire_and_new_ones_fire_once() {
        let r = rule("");
        let (fired, _) = run(
            &r,
            &[
                (0, "alice", "firefox"),
                (50, "alice", "chrome"),
                // The last second of learning still learns.
                (99, "alice", "safari"),
                (100, "alice", "curl/8.1"),
                (101, "alice", "curl/8.1"),
                (102, "alice", "firefox"),
                (103, "alice", "safari"),
            ],
        );
        assert_eq!(
            fired,
            vec![r#"new span.user_agent.original for span.enduser.id=alice: "curl/8.1""#]
        );
    }

    #[test]
    fn learning_counts_from_the_first_span_and_out_of_order_spans_learn() {
        let r = rule("");
        // Learning ends at 110 (first span at 10). A span from t=50
        // arriving after learning ended is still history.
        let (fired, _) = run(
            &r,
            &[
                (10, "alice", "firefox"),
                (120, "alice", "firefox"),
                (50, "alice", "chrome"),
                (121, "alice", "chrome"),
                (122, "alice", "edge"),
            ],
        );
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(fired[0].ends_with(r#": "edge""#), "{fired:?}");
    }

    #[test]
    fn new_keys_learn_or_alert() {
        let spans = [
            (0, "alice", "firefox"),
            (200, "bob", "curl"),
            (201, "bob", "wget"),
        ];
        let (fired, _) = run(&rule(""), &spans);
        assert_eq!(
            fired,
            vec![r#"new span.user_agent.original for span.enduser.id=bob: "wget""#]
        );
        let (fired, _) = run(&rule("new_keys: alert\n"), &spans);
        assert_eq!(fired.len(), 2, "{fired:?}");
        assert!(fired[0].ends_with(r#"bob: "curl""#), "{fired:?}");
    }

    #[test]
    fn a_full_key_forgets_the_least_recently_seen_term_counted() {
        let r = rule("max_terms_per_key: 3\n");
        let (fired, stats) = run(
            &r,
            &[
                (0, "alice", "a"),
                (1, "alice", "b"),
                (2, "alice", "c"),
                // Refresh a: b is now the least recently seen.
                (3, "alice", "a"),
                (200, "alice", "d"),
                (201, "alice", "a"),
                (202, "alice", "c"),
                (203, "alice", "b"),
            ],
        );
        assert_eq!(stats.evicted_terms, 2, "d evicted b, then b evicted d");
        assert_eq!(fired.len(), 2, "{fired:?}");
        assert!(fired[0].ends_with(r#": "d""#) && fired[1].ends_with(r#": "b""#));
    }

    #[test]
    fn term_sets_stay_sorted_and_small() {
        let mut set = TermSet::default();
        let mut stats = RuleStats::default();
        for h in [5u64, 1, 9, u64::MAX, 1 << 40, 3] {
            assert!(set.insert(h, 0, 100, &mut stats));
        }
        assert!(!set.insert(9, 0, 100, &mut stats));
        assert_eq!(set.len(), 6);
        let hashes: Vec<[u32; 2]> = set.terms.iter().map(|t| t.hash).collect();
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        assert_eq!(hashes, sorted);
        let mut one = TermSet::default();
        one.insert(7, 0, 100, &mut stats);
        assert_eq!(one.terms.capacity(), 1, "one term, one slot");
        assert_eq!(std::mem::size_of::<Term>(), 12);
    }

    #[test]
    fn evidence_of_tuples_and_rules_without_group_by() {
        let text = "id: t\ntitle: t\nseverity: low\nkind: new_terms\ncondition: '{ }'\nfields: [span.a, resource.b]\nlearning: 1s\n";
        let RuleKind::NewTerms(r) = parse_rule(text, Path::new("t.yaml")).unwrap().kind else {
            panic!("not new_terms");
        };
        assert_eq!(
            evidence(&r, "", "1:x3:y\"z"),
            r#"new (span.a, resource.b): ("x", "y\"z")"#
        );
    }
}
