//! Long strings a pass found clean, remembered for the rest of its batch.
//!
//! The spans of a batch repeat their long values: a browser's user agent
//! on each of its requests, the few URLs and database statements of a
//! service. Each cost a walk for its byte classes and, since letters and
//! digits admit the parameter-name and token detectors, the trigger
//! automaton's walk of about eight instructions a byte. A value found clean
//! once, by the same detector rules, is looked up instead: its words
//! hashed, then its bytes compared. The comparison is exact, so a hash
//! collision costs a scan, never lets a value through unscanned.

use std::hash::Hasher;

use crate::redactor::{RuleMask, WordHash};

/// Values shorter than this are scanned each time: the automaton is then
/// about as cheap as the lookup.
pub(crate) const MIN_LEN: usize = 32;

/// Slots of the table, one value each (a newer value takes its slot),
/// picked by the hash's top bits.
const SLOT_BITS: u32 = 8;
const SLOTS: usize = 1 << SLOT_BITS;

/// Bytes of remembered values per pass; beyond, nothing more is
/// remembered (a batch of distinct long values gains nothing from it).
const MAX_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u64,
    /// The detector rules the value was found clean by.
    rules: RuleMask,
    start: u32,
    /// 0: empty (remembered values are at least [`MIN_LEN`] long).
    len: u32,
}

/// Clean values of one pass: a direct-mapped table over one byte buffer.
#[derive(Default)]
pub(crate) struct CleanValues {
    slots: Vec<Slot>,
    bytes: Vec<u8>,
}

impl CleanValues {
    /// The hash `contains` and `insert` take for `text` scanned with `rules`.
    pub(crate) fn hash(text: &[u8], rules: RuleMask) -> u64 {
        let mut hasher = WordHash::default();
        hasher.write(text);
        hasher.write_u64(rules);
        hasher.finish()
    }

    /// Whether `text` was found clean by the detector rules `rules`.
    pub(crate) fn contains(&self, text: &[u8], rules: RuleMask, hash: u64) -> bool {
        let Some(slot) = self.slots.get(slot_of(hash)) else {
            return false;
        };
        slot.len as usize == text.len()
            && slot.hash == hash
            && slot.rules == rules
            && self
                .bytes
                .get(slot.start as usize..slot.start as usize + text.len())
                .is_some_and(|remembered| remembered == text)
    }

    /// Remembers that `text` is clean for `rules`, while the pass's buffer
    /// has room.
    pub(crate) fn insert(&mut self, text: &[u8], rules: RuleMask, hash: u64) {
        let (Ok(start), Ok(len)) = (u32::try_from(self.bytes.len()), u32::try_from(text.len()))
        else {
            return;
        };
        if text.len() < MIN_LEN || self.bytes.len() + text.len() > MAX_BYTES {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS];
        }
        self.bytes.extend_from_slice(text);
        if let Some(slot) = self.slots.get_mut(slot_of(hash)) {
            *slot = Slot {
                hash,
                rules,
                start,
                len,
            };
        }
    }
}

fn slot_of(hash: u64) -> usize {
    // The high bits: the multiply of the last round mixes into them most.
    (hash >> (u64::BITS - SLOT_BITS)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    #[test]
    fn a_value_is_found_with_its_rules_only() {
        let mut clean = CleanValues::default();
        let hash = CleanValues::hash(AGENT, 0b101);
        assert!(!clean.contains(AGENT, 0b101, hash));
        clean.insert(AGENT, 0b101, hash);
        assert!(clean.contains(AGENT, 0b101, hash));
        // Scanned by other detectors, it is not known clean.
        let other = CleanValues::hash(AGENT, 0b111);
        assert!(!clean.contains(AGENT, 0b111, other));
        // Not either with the hash colliding.
        assert!(!clean.contains(AGENT, 0b111, hash));
    }

    #[test]
    fn the_bytes_decide_not_the_hash() {
        let mut clean = CleanValues::default();
        let hash = CleanValues::hash(AGENT, 1);
        clean.insert(AGENT, 1, hash);
        // Same length, same slot and hash (as a collision would give): the
        // bytes differ, so it is not taken for clean.
        let mut secret = AGENT.to_vec();
        secret[10] = b'Z';
        assert!(!clean.contains(&secret, 1, hash));
        // A prefix with a made-up equal hash is not either.
        assert!(!clean.contains(&AGENT[..40], 1, hash));
    }

    #[test]
    fn short_values_and_a_full_buffer_are_not_remembered() {
        let mut clean = CleanValues::default();
        let short = &AGENT[..MIN_LEN - 1];
        let hash = CleanValues::hash(short, 1);
        clean.insert(short, 1, hash);
        assert!(!clean.contains(short, 1, hash));
        assert!(
            clean.slots.is_empty(),
            "nothing allocated for a short value"
        );

        // Fill the buffer with distinct values, then one more: not kept.
        let mut value = vec![b'a'; 1024];
        for i in 0..MAX_BYTES / 1024 {
            value[..8].copy_from_slice(&(i as u64).to_le_bytes());
            clean.insert(&value, 1, CleanValues::hash(&value, 1));
        }
        assert_eq!(clean.bytes.len(), MAX_BYTES);
        value[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let hash = CleanValues::hash(&value, 1);
        clean.insert(&value, 1, hash);
        assert!(!clean.contains(&value, 1, hash));
        assert_eq!(clean.bytes.len(), MAX_BYTES);
    }
}
