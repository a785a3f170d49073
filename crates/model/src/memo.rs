//! Attribute lookups remembered for the span being evaluated.
//!
//! The detection engine runs every rule over one span before the next, and
//! the rules read the same few keys again and again: with the built-in
//! pack a span is asked for ~66 attributes, 13 of them distinct
//! (`http.response.status_code` 14 times, `client.address` 7, ...). Each
//! [`find_attribute`](crate::find_attribute) scans the span's list, so most of those scans repeat
//! one already done. A [`RecordView`] answers lookups from an
//! [`AttributeMemo`] instead: when the view is made, one pass over the
//! span's attributes records where each key some rule has asked for is;
//! a lookup then reads that position, or knows the key is absent. Only a
//! key never asked for before, and resource attributes, are scanned, once
//! per span.
//!
//! The same goes for whole comparisons: 22 rules of the pack test
//! `kind = server`, ten test `$login_routes` (a regex) on the route or
//! path. A [`VerdictSlot`] names one comparison (by its full text) and the
//! memo remembers its verdict for the span.
//!
//! Keys are identified by a slot number, bound to an [`AttributeKey`] on its
//! first remembered lookup from a process-wide table of key names. Only
//! remembered lookups bind, so names from search queries never enter the
//! table; it holds at most [`MAX_SLOTS`] names, and a key beyond that is
//! scanned every time (slower, never wrong).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex};

use crate::record::SpanRecord;
use crate::value::{AnyValue, KeyValue, attribute_position};

/// Most key names the slot table holds (rule files name a few dozen).
pub const MAX_SLOTS: u32 = 4096;
/// Not yet bound.
const UNBOUND: u32 = u32::MAX;
/// The table was full: always scanned.
const NO_SLOT: u32 = u32::MAX - 1;
/// "Looked up, not there" in an [`Entry`].
const ABSENT: u32 = u32::MAX;

/// Names and their slots, numbered from 0 without gaps in the order names
/// arrive, with the count readable without the lock (a memo copies the
/// key table again when it moved).
struct SlotTable {
    names: LazyLock<Mutex<HashMap<Box<str>, u32>>>,
    count: AtomicU32,
}

impl SlotTable {
    const fn new() -> SlotTable {
        SlotTable {
            names: LazyLock::new(Default::default),
            count: AtomicU32::new(0),
        }
    }

    /// The table, locked. A panic elsewhere while holding the lock leaves
    /// the map consistent (an insert either happened or did not).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, u32>> {
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many names the table holds.
    fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// The slot of `name`, or [`NO_SLOT`] when the table is full.
    fn slot(&self, name: &str) -> u32 {
        let mut slots = self.lock();
        if let Some(&slot) = slots.get(name) {
            return slot;
        }
        let Ok(next) = u32::try_from(slots.len()) else {
            return NO_SLOT;
        };
        if next >= MAX_SLOTS {
            return NO_SLOT;
        }
        slots.insert(name.into(), next);
        self.count.store(next + 1, Ordering::Release);
        next
    }
}

/// Attribute key names.
static SLOTS: SlotTable = SlotTable::new();
/// Comparisons, by their full text.
static VERDICT_SLOTS: SlotTable = SlotTable::new();

/// A slot number bound on first use from a name in a table; clones keep
/// the binding.
struct Slot(AtomicU32);

impl Slot {
    fn unbound() -> Slot {
        Slot(AtomicU32::new(UNBOUND))
    }

    /// The slot, [`UNBOUND`] until bound (past any entry of a memo).
    #[inline]
    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// The slot, binding it from `name` (read only when unbound).
    fn get_or_bind(&self, table: &SlotTable, name: impl FnOnce() -> String) -> u32 {
        let slot = self.get();
        if slot != UNBOUND {
            return slot;
        }
        // Two threads binding at once store the same number.
        let slot = table.slot(&name());
        self.0.store(slot, Ordering::Relaxed);
        slot
    }
}

impl Clone for Slot {
    fn clone(&self) -> Self {
        Slot(AtomicU32::new(self.get()))
    }
}

/// An attribute key as a query or rule names it, with the slot its
/// remembered lookups use. Compares, hashes, prints and derefs as the
/// name alone.
#[derive(Clone)]
pub struct AttributeKey {
    name: String,
    slot: Slot,
}

impl AttributeKey {
    pub fn new(name: impl Into<String>) -> AttributeKey {
        AttributeKey {
            name: name.into(),
            slot: Slot::unbound(),
        }
    }

    /// The key's slot, bound on first use.
    fn slot(&self) -> u32 {
        self.slot.get_or_bind(&SLOTS, || self.name.clone())
    }
}

impl PartialEq for AttributeKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for AttributeKey {}

impl Hash for AttributeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for AttributeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

impl fmt::Display for AttributeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Deref for AttributeKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.name
    }
}

impl From<String> for AttributeKey {
    fn from(name: String) -> Self {
        AttributeKey::new(name)
    }
}

impl From<&str> for AttributeKey {
    fn from(name: &str) -> Self {
        AttributeKey::new(name)
    }
}

impl PartialEq<str> for AttributeKey {
    fn eq(&self, other: &str) -> bool {
        self.name == other
    }
}

impl PartialEq<&str> for AttributeKey {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

/// The slot of one comparison's remembered verdict, bound on first use
/// from the comparison's text (two comparisons with the same text share
/// it). It is not part of what the comparison means.
#[derive(Clone)]
pub struct VerdictSlot(Slot);

impl VerdictSlot {
    pub fn new() -> VerdictSlot {
        VerdictSlot(Slot::unbound())
    }
}

impl Default for VerdictSlot {
    fn default() -> Self {
        VerdictSlot::new()
    }
}

impl fmt::Debug for VerdictSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerdictSlot")
    }
}

/// One comparison's verdict in the current span, valid while the
/// generation is the memo's.
#[derive(Clone, Copy, Default)]
struct Verdict {
    generation: u64,
    verdict: u8,
}

/// What one key was found to be in the current span: the position in the
/// span's (resource's) attributes, or [`ABSENT`], valid while the
/// generation is the memo's.
#[derive(Clone, Copy, Default)]
struct Entry {
    span_generation: u64,
    resource_generation: u64,
    span_at: u32,
    resource_at: u32,
}

/// Lookups remembered across the rules evaluated on one span. Reused from
/// span to span: a new [`RecordView`] starts a new generation, which makes
/// every remembered answer stale without clearing anything.
#[derive(Default)]
pub struct AttributeMemo {
    /// Starts at 0 and is incremented before use, so a default [`Entry`]
    /// (generation 0) is never current. A u64 does not wrap.
    generation: u64,
    entries: Vec<Entry>,
    verdicts: Vec<Verdict>,
    /// A copy of the key table ([`SLOTS`]), taken again when it grew, so
    /// a span's keys are matched to slots without its lock.
    names: Names,
    /// Slots below this were matched against the current span's
    /// attributes when its view was made ([`RecordView::memoised`]): one
    /// of them without a current entry is absent from the span.
    filled: u32,
}

impl AttributeMemo {
    pub fn new() -> AttributeMemo {
        AttributeMemo::default()
    }

    /// Records where each bound key is in `attributes` (the first of a
    /// repeated key), for the current generation.
    fn fill(&mut self, attributes: &[KeyValue]) {
        if SLOTS.count() as usize != self.names.len() {
            self.names = Names::new(&SLOTS.lock());
        }
        // Every slot below `names.len()` is in `names`: slots are numbered
        // without gaps.
        let filled = u32::try_from(self.names.len()).unwrap_or(0);
        if self.entries.len() < filled as usize {
            self.entries.resize(filled as usize, Entry::default());
        }
        let generation = self.generation;
        let mut complete = true;
        for (at, kv) in attributes.iter().enumerate() {
            let Some(slot) = self.names.get(kv.key.as_bytes()) else {
                continue;
            };
            let Some(entry) = self.entries.get_mut(slot as usize) else {
                continue;
            };
            if entry.span_generation == generation {
                continue;
            }
            // A position beyond u32 (not possible within ingest limits)
            // is not remembered, and then no absence is assumed either.
            match u32::try_from(at) {
                Ok(at) if at != ABSENT => {
                    entry.span_generation = generation;
                    entry.span_at = at;
                }
                _ => complete = false,
            }
        }
        self.filled = if complete { filled } else { 0 };
    }
}

/// Key names to slots, for the pass over every attribute of every span:
/// open addressing on a hash of the length and the first and last eight
/// bytes. The pass costs ~80 instructions an attribute this way, ~130 with
/// aHash over the whole name (callgrind, docs/BENCHMARKS.md). Names sent
/// by senders can be made to collide, which only lengthens a probe to at
/// most the table's few dozen names.
#[derive(Default)]
struct Names {
    /// Name and slot, at a power-of-two count of buckets at most half full.
    buckets: Vec<Option<(Box<str>, u32)>>,
    len: usize,
}

impl Names {
    fn new(slots: &HashMap<Box<str>, u32>) -> Names {
        let size = (slots.len() * 2).next_power_of_two().max(16);
        let mut names = Names {
            buckets: vec![None; size],
            len: slots.len(),
        };
        let mask = size - 1;
        for (name, &slot) in slots {
            let mut at = Names::hash(name.as_bytes()) & mask;
            while let Some(Some(_)) = names.buckets.get(at) {
                at = (at + 1) & mask;
            }
            if let Some(bucket) = names.buckets.get_mut(at) {
                *bucket = Some((name.clone(), slot));
            }
        }
        names
    }

    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn hash(name: &[u8]) -> usize {
        let (head, tail) = match (name.first_chunk::<8>(), name.last_chunk::<8>()) {
            (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
            _ => {
                let mut short = [0u8; 8];
                let n = name.len().min(8);
                short[..n].copy_from_slice(&name[..n]);
                (u64::from_le_bytes(short), 0)
            }
        };
        let mixed =
            (head ^ tail.rotate_left(29) ^ name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 32) as usize
    }

    #[inline]
    fn get(&self, name: &[u8]) -> Option<u32> {
        let mask = self.buckets.len().checked_sub(1)?;
        let mut at = Names::hash(name) & mask;
        loop {
            match self.buckets.get(at)? {
                Some((candidate, slot)) => {
                    if candidate.as_bytes() == name {
                        return Some(*slot);
                    }
                }
                None => return None,
            }
            at = (at + 1) & mask;
        }
    }
}

/// Which list of a span record a lookup reads.
#[derive(Clone, Copy)]
enum List {
    Span,
    Resource,
}

/// One span record as rules read it: its attributes looked up through a
/// memo when there is one. Holding the record and the memo together is
/// what keeps a remembered position from being read against another span.
pub struct RecordView<'r, 'm> {
    record: &'r SpanRecord,
    memo: Option<&'m mut AttributeMemo>,
}

impl<'r, 'm> RecordView<'r, 'm> {
    /// A view that scans on every lookup (search, one-off checks).
    pub fn new(record: &'r SpanRecord) -> Self {
        RecordView { record, memo: None }
    }

    /// A view whose lookups are remembered in `memo` until the next view
    /// made from it.
    ///
    /// One pass over the span's attributes matches each key to its slot,
    /// so the rules' first lookups of the keys they share do not each scan
    /// the list (13 scans of ~11 attributes per span with the built-in
    /// pack, most of them for keys the span lacks).
    pub fn memoised(record: &'r SpanRecord, memo: &'m mut AttributeMemo) -> Self {
        memo.generation += 1;
        memo.fill(&record.span.attributes);
        RecordView {
            record,
            memo: Some(memo),
        }
    }

    pub fn record(&self) -> &'r SpanRecord {
        self.record
    }

    /// The verdict remembered for the comparison of `slot` in this span.
    #[inline]
    pub fn verdict(&self, slot: &VerdictSlot) -> Option<u8> {
        let memo = self.memo.as_deref()?;
        let remembered = memo.verdicts.get(slot.0.get() as usize)?;
        (remembered.generation == memo.generation).then_some(remembered.verdict)
    }

    /// Remembers a comparison's verdict for this span (nothing without a
    /// memo). `text` is the comparison's full text, read only to bind the
    /// slot the first time.
    #[inline]
    pub fn remember_verdict(
        &mut self,
        slot: &VerdictSlot,
        text: impl FnOnce() -> String,
        verdict: u8,
    ) {
        let Some(memo) = self.memo.as_deref_mut() else {
            return;
        };
        // A bound slot the memo has room for: every call after the first
        // few spans (an unbound slot, `UNBOUND`, is past any length).
        if let Some(remembered) = memo.verdicts.get_mut(slot.0.get() as usize) {
            *remembered = Verdict {
                generation: memo.generation,
                verdict,
            };
            return;
        }
        self.bind_and_remember_verdict(slot, text, verdict);
    }

    #[cold]
    fn bind_and_remember_verdict(
        &mut self,
        slot: &VerdictSlot,
        text: impl FnOnce() -> String,
        verdict: u8,
    ) {
        let Some(memo) = self.memo.as_deref_mut() else {
            return;
        };
        let slot = slot.0.get_or_bind(&VERDICT_SLOTS, text);
        if slot >= MAX_SLOTS {
            return;
        }
        let index = slot as usize;
        if index >= memo.verdicts.len() {
            memo.verdicts.resize(index + 1, Verdict::default());
        }
        if let Some(remembered) = memo.verdicts.get_mut(index) {
            *remembered = Verdict {
                generation: memo.generation,
                verdict,
            };
        }
    }

    /// Whether lookups and verdicts are remembered.
    pub fn is_memoised(&self) -> bool {
        self.memo.is_some()
    }

    /// The span's attribute `key`.
    #[inline]
    pub fn span_attribute(&mut self, key: &AttributeKey) -> Option<&'r AnyValue> {
        let attributes = &self.record.span.attributes;
        self.lookup(List::Span, attributes, key)
    }

    /// The resource's attribute `key`.
    #[inline]
    pub fn resource_attribute(&mut self, key: &AttributeKey) -> Option<&'r AnyValue> {
        let attributes = &self.record.resource.attributes;
        self.lookup(List::Resource, attributes, key)
    }

    /// The remembered answer when there is a current one (inlined: most
    /// lookups end here), else [`RecordView::lookup_and_remember`].
    #[inline]
    fn lookup(
        &mut self,
        list: List,
        attributes: &'r [KeyValue],
        key: &AttributeKey,
    ) -> Option<&'r AnyValue> {
        if let Some(memo) = self.memo.as_deref() {
            // Unbound keys and keys without a slot are past any entry.
            let slot = key.slot.get() as usize;
            if let Some(entry) = memo.entries.get(slot) {
                let (generation, at) = match list {
                    List::Span => (entry.span_generation, entry.span_at),
                    List::Resource => (entry.resource_generation, entry.resource_at),
                };
                if generation == memo.generation {
                    return attributes.get(at as usize).map(|kv| &kv.value);
                }
                if matches!(list, List::Span) && slot < memo.filled as usize {
                    return None;
                }
            }
        }
        self.lookup_and_remember(list, attributes, key)
    }

    /// Scans for `key`, and remembers where it was (or that it was not
    /// there) when the view has a memo and the key a slot.
    #[inline(never)]
    fn lookup_and_remember(
        &mut self,
        list: List,
        attributes: &'r [KeyValue],
        key: &AttributeKey,
    ) -> Option<&'r AnyValue> {
        let position = attribute_position(attributes, key);
        let found = position.and_then(|p| attributes.get(p)).map(|kv| &kv.value);
        let Some(memo) = self.memo.as_deref_mut() else {
            return found;
        };
        let slot = key.slot();
        if slot >= MAX_SLOTS {
            return found;
        }
        let index = slot as usize;
        if index >= memo.entries.len() {
            memo.entries.resize(index + 1, Entry::default());
        }
        // A position beyond u32 (not possible within ingest limits) is
        // not remembered: it is scanned again next time.
        let remembered = match position {
            None => Some(ABSENT),
            Some(p) => u32::try_from(p).ok().filter(|&p| p != ABSENT),
        };
        if let (Some(entry), Some(remembered)) = (memo.entries.get_mut(index), remembered) {
            let generation = memo.generation;
            match list {
                List::Span => {
                    entry.span_generation = generation;
                    entry.span_at = remembered;
                }
                List::Resource => {
                    entry.resource_generation = generation;
                    entry.resource_at = remembered;
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::batch::{Resource, Scope};
    use crate::ids::{SpanId, TraceId};
    use crate::span::Span;

    fn record(span: &[(&str, &str)], resource: &[(&str, &str)]) -> SpanRecord {
        let mut s = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "x",
        );
        s.attributes = span.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect();
        SpanRecord {
            resource: Arc::new(Resource {
                attributes: resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(*k, *v))
                    .collect(),
                ..Resource::default()
            }),
            scope: Arc::new(Scope::default()),
            span: s.into(),
        }
    }

    fn text(value: Option<&AnyValue>) -> Option<&str> {
        value.and_then(AnyValue::as_str)
    }

    #[test]
    fn remembered_answers_are_the_scans_answers_span_after_span() {
        let key = AttributeKey::new("memo.test.client.address");
        let absent = AttributeKey::new("memo.test.absent");
        let service = AttributeKey::new("memo.test.client.address");
        let records = [
            record(&[("memo.test.client.address", "10.0.0.1")], &[]),
            // The same key at another position, and on the resource.
            record(
                &[("a", "1"), ("memo.test.client.address", "10.0.0.2")],
                &[("memo.test.client.address", "from the resource")],
            ),
            // Not there at all.
            record(&[("a", "1")], &[]),
            // The key that was absent before is there now.
            record(&[("memo.test.absent", "here")], &[]),
        ];
        let mut memo = AttributeMemo::new();
        for record in &records {
            let mut view = RecordView::memoised(record, &mut memo);
            for _ in 0..3 {
                assert_eq!(
                    text(view.span_attribute(&key)),
                    text(record.span.attribute("memo.test.client.address"))
                );
                // Another key of the same name shares the slot.
                assert_eq!(
                    text(view.span_attribute(&service)),
                    text(record.span.attribute("memo.test.client.address"))
                );
                assert_eq!(
                    text(view.resource_attribute(&key)),
                    text(record.resource.attribute("memo.test.client.address"))
                );
                assert_eq!(
                    text(view.span_attribute(&absent)),
                    text(record.span.attribute("memo.test.absent"))
                );
            }
        }
        assert_eq!(key.slot(), service.slot());
        assert_ne!(key.slot(), absent.slot());
    }

    /// The pass that matches a span's keys to slots when its view is
    /// made: the first of a repeated key, absence of a bound key, and a
    /// key bound only after the view was made (found by a scan).
    #[test]
    fn the_pass_over_a_span_answers_as_the_scan_does() {
        let route = AttributeKey::new("memo.fill.http.route");
        let status = AttributeKey::new("memo.fill.status");
        let _ = (route.slot(), status.slot());
        let records = [
            record(
                &[
                    ("memo.fill.other", "x"),
                    ("memo.fill.http.route", "/first"),
                    ("memo.fill.http.route", "/second"),
                ],
                &[("memo.fill.status", "on the resource only")],
            ),
            record(&[("memo.fill.status", "200")], &[]),
            record(&[], &[]),
            record(&[("memo.fill.late", "bound after the view")], &[]),
        ];
        let mut memo = AttributeMemo::new();
        for record in &records {
            let mut view = RecordView::memoised(record, &mut memo);
            let late = AttributeKey::new("memo.fill.late");
            for _ in 0..2 {
                for key in [&route, &status, &late] {
                    assert_eq!(
                        text(view.span_attribute(key)),
                        text(record.span.attribute(key)),
                        "{key}"
                    );
                    assert_eq!(
                        text(view.resource_attribute(key)),
                        text(record.resource.attribute(key)),
                        "{key}"
                    );
                }
            }
            assert!(view.memo.as_deref().is_some_and(|m| m.filled >= 2));
        }
        // What the first span asked for is remembered as the first of
        // the two, not the last.
        let mut view = RecordView::memoised(&records[0], &mut memo);
        assert_eq!(text(view.span_attribute(&route)), Some("/first"));
        // A name first bound while a view is open (by another engine's
        // rule, say), on a span that holds it: not taken for absent.
        let fresh = record(&[("memo.fill.fresh", "v")], &[]);
        let mut view = RecordView::memoised(&fresh, &mut memo);
        let key = AttributeKey::new("memo.fill.fresh");
        let _ = key.slot();
        assert_eq!(text(view.span_attribute(&key)), Some("v"));
        assert_eq!(text(view.span_attribute(&key)), Some("v"));
    }

    #[test]
    fn the_name_table_finds_exactly_its_names() {
        let names = [
            "",
            "a",
            "url.path",
            "http.route",
            "http.response.status_code",
            // Same length, first and last eight bytes: the same hash.
            "client.1.address",
            "client.2.address",
        ];
        let slots: HashMap<Box<str>, u32> = names
            .iter()
            .zip(0..)
            .map(|(name, slot)| (Box::from(*name), slot))
            .collect();
        let table = Names::new(&slots);
        assert_eq!(table.len(), names.len());
        for (name, slot) in names.iter().zip(0..) {
            assert_eq!(table.get(name.as_bytes()), Some(slot), "{name}");
        }
        for absent in [
            "b",
            "url.pat",
            "url.paths",
            "client.3.address",
            "http.route ",
        ] {
            assert_eq!(table.get(absent.as_bytes()), None, "{absent}");
        }
        assert_eq!(Names::default().get(b"url.path"), None);
    }

    #[test]
    fn verdicts_last_one_span() {
        let records = [record(&[("k", "v")], &[]), record(&[], &[])];
        let slot = VerdictSlot::new();
        let same_text = VerdictSlot::new();
        let text = || "memo.test: k = \"v\"".to_string();
        let mut memo = AttributeMemo::new();
        let mut view = RecordView::memoised(&records[0], &mut memo);
        assert_eq!(view.verdict(&slot), None);
        view.remember_verdict(&slot, text, 1);
        assert_eq!(view.verdict(&slot), Some(1));
        // The same comparison elsewhere shares the verdict once bound.
        assert_eq!(view.verdict(&same_text), None);
        view.remember_verdict(&same_text, text, 2);
        assert_eq!(view.verdict(&slot), Some(2));
        let view = RecordView::memoised(&records[1], &mut memo);
        assert_eq!(view.verdict(&slot), None);
        assert_eq!(view.verdict(&same_text), None);
        // Without a memo nothing is remembered or bound.
        let unbound = VerdictSlot::new();
        let mut plain = RecordView::new(&records[0]);
        plain.remember_verdict(&unbound, text, 1);
        assert_eq!(plain.verdict(&unbound), None);
        assert_eq!(unbound.0.get(), UNBOUND);
    }

    #[test]
    fn a_view_without_a_memo_scans() {
        let record = record(&[("k", "v")], &[("r", "w")]);
        let mut view = RecordView::new(&record);
        let key = AttributeKey::new("memo.test.unbound");
        assert_eq!(view.span_attribute(&key), None);
        // Never bound: search queries' names stay out of the table.
        assert_eq!(key.slot.get(), UNBOUND);
        assert_eq!(text(view.span_attribute(&"k".into())), Some("v"));
        assert_eq!(text(view.resource_attribute(&"r".into())), Some("w"));
    }

    #[test]
    fn keys_compare_and_print_as_their_names() {
        let a = AttributeKey::new("http.route");
        let b = a.clone();
        let _ = a.slot();
        assert_eq!(a, b);
        assert_eq!(format!("{a}"), "http.route");
        assert_eq!(format!("{a:?}"), "\"http.route\"");
        assert_eq!(&*a, "http.route");
    }
}
