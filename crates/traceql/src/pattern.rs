//! A compiled `=~` / `!~` pattern, with its verdicts remembered per thread.
//!
//! Rules match the same few values over and over (a site sees a few hundred
//! user agents and routes; every server span carries them), and an anchored
//! case-insensitive alternation scans every byte of each: ~11% of the
//! built-in pack's time went to the regex engine, and with long values
//! remembered, still ~10% on routes and paths. A verdict depends on the
//! pattern and the value alone, so a remembered one is never stale.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use ahash::RandomState;
use regex::Regex;

/// Values shorter than this are scanned: the lookup would cost about as
/// much. From 8 bytes on (routes, paths), remembering halves the regex
/// engine's instructions on the pack (docs/BENCHMARKS.md).
const MIN_CACHED_BYTES: usize = 8;
/// Longer values are scanned each time (bodies, log lines): rarely repeated.
const MAX_CACHED_BYTES: usize = 512;
/// Slots of the per-thread table (a power of two).
const SLOTS: usize = 1024;

/// Distinguishes patterns in the shared table; 0 marks an empty slot.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A pattern anchored at both ends, as the parser compiles it.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    regex: Regex,
    /// Unique per compiled pattern; clones share it (same regex, same verdicts).
    id: u64,
}

impl Pattern {
    pub(crate) fn new(regex: Regex) -> Pattern {
        Pattern {
            regex,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub(crate) fn is_match(&self, value: &str) -> bool {
        if !(MIN_CACHED_BYTES..=MAX_CACHED_BYTES).contains(&value.len()) {
            return self.regex.is_match(value);
        }
        VERDICTS.with(|table| table.borrow_mut().verdict(self, value))
    }
}

thread_local! {
    static VERDICTS: RefCell<Verdicts> = RefCell::new(Verdicts::default());
}

#[derive(Default)]
struct Slot {
    id: u64,
    value: String,
    verdict: bool,
}

/// Direct-mapped: a value evicts whatever shared its slot. Slots are
/// chosen by a hash keyed per thread at random, as the injection verdict
/// cache does (`detect::inject::cache`), so crafted values cannot aim at
/// one; a collision only costs the scan done anyway.
#[derive(Default)]
struct Verdicts {
    slots: Vec<Slot>,
    hasher: RandomState,
}

impl Verdicts {
    /// The pattern's verdict on `value`, scanning only when not remembered.
    fn verdict(&mut self, pattern: &Pattern, value: &str) -> bool {
        let at = self.hasher.hash_one((pattern.id, value)) as usize & (SLOTS - 1);
        if let Some(verdict) = self.get(at, pattern.id, value) {
            return verdict;
        }
        let verdict = pattern.regex.is_match(value);
        self.put(at, pattern.id, value, verdict);
        verdict
    }

    fn get(&self, at: usize, id: u64, value: &str) -> Option<bool> {
        let slot = self.slots.get(at)?;
        (slot.id == id && slot.value == value).then_some(slot.verdict)
    }

    fn put(&mut self, at: usize, id: u64, value: &str, verdict: bool) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Slot::default);
        }
        if let Some(slot) = self.slots.get_mut(at) {
            slot.id = id;
            // Reuses the slot's buffer: no allocation once it has grown.
            slot.value.clear();
            slot.value.push_str(value);
            slot.verdict = verdict;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Pattern {
        Pattern::new(Regex::new(&format!("^(?s:{p})$")).unwrap())
    }

    #[test]
    fn remembered_verdicts_equal_the_scan() {
        let scanner = pattern("(?i).*(sqlmap|nikto).*");
        let browser = pattern("(?i)mozilla/5\\.0.*");
        let values = [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
            "sqlmap/1.7.2#stable (https://sqlmap.org) and a long enough tail",
            "short",
            "/api/nikto/run",
            "/mozilla/5.0/x",
            "Mozilla/5.0 (compatible; Nikto/2.5.0) with a long enough tail",
        ];
        // Twice: the second pass reads the table, for both patterns on the
        // same values (the id keeps their verdicts apart).
        for _ in 0..2 {
            for value in values {
                for p in [&scanner, &browser] {
                    assert_eq!(p.is_match(value), p.regex.is_match(value), "{value}");
                }
            }
        }
    }

    #[test]
    fn a_slot_shared_by_two_values_keeps_the_last() {
        let p = pattern(".*a.*");
        let mut table = Verdicts::default();
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        // Forced into one slot: the slot is the caller's.
        table.put(7, p.id, &a, true);
        assert_eq!(table.get(7, p.id, &a), Some(true));
        table.put(7, p.id, &b, false);
        assert_eq!(table.get(7, p.id, &a), None);
        assert_eq!(table.get(7, p.id, &b), Some(false));
        assert_eq!(table.get(7, p.id + 1, &b), None);
    }
}
