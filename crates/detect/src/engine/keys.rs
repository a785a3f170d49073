//! Per-key state of one rule: a map from key to state with a cap on keys,
//! least-recently-seen eviction, and expiry of keys idle for a window.

use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;

use tracewarden_model::RecordView;

use crate::rule::FieldRef;
use crate::rule::push_decimal;

use super::RuleStats;

/// The state of one key, with what eviction and expiry look at.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Slot<V> {
    /// Arrival order of the last span for this key (for eviction).
    touched: u64,
    /// Newest event time (span start, unix nanoseconds) seen for the key.
    pub(crate) newest: u64,
    pub(crate) value: V,
}

/// The maps of keys and of distinct values: their keys come from spans
/// (addresses, user names), so the hash is keyed at random per process
/// against crafted collisions, as std's SipHash is; aHash costs a fraction
/// of it on these short strings, and every span hashes a key per keyed rule.
pub(crate) type KeyHasher = ahash::RandomState;

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct KeyMap<V> {
    map: HashMap<Box<str>, Slot<V>, KeyHasher>,
    cap: usize,
    clock: u64,
    /// Event time of the next sweep for idle keys.
    next_sweep: u64,
}

impl<V: Default> KeyMap<V> {
    pub(crate) fn new(cap: usize) -> KeyMap<V> {
        KeyMap {
            map: HashMap::default(),
            cap: cap.max(1),
            clock: 0,
            next_sweep: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Applies the current cap to a map restored from a checkpoint; a
    /// smaller cap takes effect as keys are added (eviction).
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// The slot of `key`, created when new. Creating a key when the map is
    /// full first evicts the least recently seen sixteenth of the keys in
    /// one pass (O(keys) once every cap/16 new keys, so O(1) amortised,
    /// where evicting one key at a time would scan the map for each).
    pub(crate) fn slot(&mut self, key: &str, stats: &mut RuleStats) -> &mut Slot<V> {
        self.clock += 1;
        let clock = self.clock;
        // One hash for a key already there (nearly every span): only a full
        // map looks the key up before the entry, to evict for a new one.
        if self.map.len() >= self.cap && !self.map.contains_key(key) {
            self.evict(stats);
        }
        let slot = match self.map.entry_ref(key) {
            EntryRef::Occupied(entry) => entry.into_mut(),
            EntryRef::Vacant(entry) => entry.insert_with_key(
                Box::from(key),
                Slot {
                    touched: clock,
                    newest: 0,
                    value: V::default(),
                },
            ),
        };
        slot.touched = clock;
        slot
    }

    /// The slot of `key` when it exists, without touching it.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&Slot<V>> {
        self.map.get(key)
    }

    fn evict(&mut self, stats: &mut RuleStats) {
        let batch = (self.cap / 16).max(1);
        let mut touched: Vec<u64> = self.map.values().map(|s| s.touched).collect();
        if batch > touched.len() {
            return;
        }
        let (_, cutoff, _) = touched.select_nth_unstable(batch - 1);
        let cutoff = *cutoff;
        let before = self.map.len();
        self.map.retain(|_, slot| slot.touched > cutoff);
        stats.evicted_keys += (before - self.map.len()) as u64;
    }

    /// Drops keys whose newest event left the window, at most once per
    /// window of event time (so the sweep costs O(keys) per window).
    pub(crate) fn sweep(&mut self, watermark: u64, window: u64, stats: &mut RuleStats) {
        if watermark < self.next_sweep {
            return;
        }
        self.next_sweep = watermark.saturating_add(window);
        let before = self.map.len();
        self.map
            .retain(|_, slot| slot.newest.saturating_add(window) > watermark);
        stats.expired_keys += (before - self.map.len()) as u64;
    }
}

/// Builds the key of a span for `group_by` into `key`: each value as
/// `<byte length>:<value>`, so values holding any character decode back
/// exactly. Returns false when the span lacks one of the fields. `value`
/// is scratch space; neither buffer allocates once grown.
pub(crate) fn build_key(
    group_by: &[FieldRef],
    view: &mut RecordView<'_, '_>,
    key: &mut String,
    value: &mut String,
) -> bool {
    key.clear();
    for field in group_by {
        value.clear();
        if !field.write_value_in(view, value) {
            return false;
        }
        push_decimal(key, value.len() as u64);
        key.push(':');
        key.push_str(value);
    }
    true
}

/// Like [`build_key`], with a missing field taken as an empty value (a
/// `suppress` key: the span is still reported).
pub(crate) fn build_key_lenient(
    fields: &[FieldRef],
    view: &mut RecordView<'_, '_>,
    key: &mut String,
    value: &mut String,
) {
    key.clear();
    for field in fields {
        value.clear();
        if !field.write_value_in(view, value) {
            value.clear();
        }
        push_decimal(key, value.len() as u64);
        key.push(':');
        key.push_str(value);
    }
}

/// The values of a key built by [`build_key`].
pub(crate) fn decode_key(key: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = key;
    while let Some((len, after)) = rest.split_once(':') {
        let Ok(len) = len.parse::<usize>() else {
            break;
        };
        let Some(value) = after.get(..len) else {
            break;
        };
        values.push(value.to_string());
        rest = after.get(len..).unwrap_or("");
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trip_with_separators_in_values() {
        let key = format!("{}:{}{}:{}", "a:b".len(), "a:b", "3:x".len(), "3:x");
        assert_eq!(decode_key(&key), vec!["a:b".to_string(), "3:x".to_string()]);
        assert_eq!(decode_key(""), Vec::<String>::new());
    }

    #[test]
    fn eviction_removes_least_recently_seen_and_counts() {
        let mut stats = RuleStats::default();
        let mut keys: KeyMap<u32> = KeyMap::new(32);
        for i in 0..32 {
            keys.slot(&format!("k{i}"), &mut stats);
        }
        // Touch k0 so k1 and k2 are the least recently seen.
        keys.slot("k0", &mut stats);
        keys.slot("new", &mut stats);
        assert_eq!(stats.evicted_keys, 2);
        assert!(keys.get("k0").is_some());
        assert!(keys.get("k1").is_none());
        assert!(keys.get("k2").is_none());
        assert!(keys.get("new").is_some());
        assert_eq!(keys.len(), 31);
    }

    #[test]
    fn sweep_drops_idle_keys_once_per_window() {
        let mut stats = RuleStats::default();
        let mut keys: KeyMap<u32> = KeyMap::new(10);
        keys.slot("old", &mut stats).newest = 100;
        keys.slot("recent", &mut stats).newest = 1_000;
        keys.sweep(1_050, 100, &mut stats);
        assert_eq!(stats.expired_keys, 1);
        assert!(keys.get("recent").is_some());
    }
}
