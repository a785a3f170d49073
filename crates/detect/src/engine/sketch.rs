//! A sliding-window estimate of how many distinct values a key saw: the
//! sketch a `distinct` threshold switches to past the exact bound
//! ([`super::threshold::EXACT_DISTINCT`] values).
//!
//! HyperLogLog (Flajolet et al. 2007) with 2^10 registers: a standard error
//! of 1.04 / 32, about 3.3%, in a kilobyte. The window slides by slices:
//! it is cut into [`SLICES`] slices of `window / SLICES`, each with its own
//! registers, and the estimate merges the slices that overlap the window
//! (the register-wise maximum), so a slice leaves whole: the window
//! reaches up to one slice further back than an exact one (an eighth).
//! Memory is fixed: 9 slices and the merged view, ~10 KiB per key that
//! needs it. The merged view is updated in place as values arrive and
//! built again only when a slice leaves (once per slice length).
//!
//! Values are hashed with a key random per sketch (SipHash, kept in the
//! checkpoint with the registers), so a sender cannot choose values that
//! land in the same register to keep the estimate low.

use serde::{Deserialize, Serialize};

use super::hashing::KeyedHasher;

/// Register index bits: 2^10 registers.
const P: u32 = 10;
const REGISTERS: usize = 1 << P;
/// Slices per window.
pub(crate) const SLICES: u64 = 8;
/// Slots: the slices of a window plus the one partly inside it.
const SLOTS: usize = SLICES as usize + 1;
const EMPTY: u64 = u64::MAX;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WindowSketch {
    hasher: KeyedHasher,
    /// Nanoseconds per slice (at least 1).
    slice: u64,
    /// The slice number each slot holds (start time / `slice`), or EMPTY.
    epochs: [u64; SLOTS],
    /// `SLOTS * REGISTERS` registers, slot by slot.
    registers: Vec<u8>,
    /// The register-wise maximum of the live slots, with what the estimate
    /// needs of it; rebuilt when `merged_at` (the newest slice when it was
    /// built) falls behind. Not saved: rebuilt after a restore.
    #[serde(skip)]
    merged: Merged,
}

#[derive(Clone, Debug, Default)]
struct Merged {
    registers: Vec<u8>,
    /// Sum of 2^-register.
    sum: f64,
    zeros: u32,
    /// Newest slice when built; `None`: stale.
    at: Option<u64>,
}

impl WindowSketch {
    pub(crate) fn new(window: u64) -> WindowSketch {
        WindowSketch {
            hasher: KeyedHasher::random(),
            slice: (window / SLICES).max(1),
            epochs: [EMPTY; SLOTS],
            registers: vec![0; SLOTS * REGISTERS],
            merged: Merged::default(),
        }
    }

    /// Whether a slice is in the window whose newest slice is `newest`.
    fn live(epoch: u64, newest: u64) -> bool {
        epoch != EMPTY && epoch <= newest && epoch.saturating_add(SLICES) >= newest
    }

    /// Counts `value`, seen at `ts`, in a window whose newest span started
    /// at `newest`. A value older than the window is ignored.
    pub(crate) fn insert(&mut self, value: &str, ts: u64, newest: u64) {
        let epoch = ts / self.slice;
        let newest_epoch = newest / self.slice;
        if !Self::live(epoch, newest_epoch.max(epoch)) {
            return;
        }
        let slot = (epoch % SLOTS as u64) as usize;
        let Some(held) = self.epochs.get_mut(slot) else {
            return;
        };
        if *held != epoch {
            // The slot holds a slice that left the window (9 slots, 9
            // slices in reach): reuse it.
            if *held != EMPTY && *held > epoch {
                return;
            }
            *held = epoch;
            if let Some(registers) = self
                .registers
                .get_mut(slot * REGISTERS..(slot + 1) * REGISTERS)
            {
                registers.fill(0);
            }
            self.merged.at = None;
        }
        let hash = self.hasher.hash_one(value);
        let index = (hash >> (64 - P)) as usize;
        // Leading zeros of the other bits, plus one; the sentinel bit
        // bounds it at 64 - P + 1.
        let rank = ((hash << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        let Some(register) = self.registers.get_mut(slot * REGISTERS + index) else {
            return;
        };
        if rank <= *register {
            return;
        }
        *register = rank;
        // Keep the merged view current when it covers this slice.
        if self.merged.at == Some(newest_epoch)
            && let Some(merged) = self.merged.registers.get_mut(index)
            && rank > *merged
        {
            self.merged.sum += 2f64.powi(-i32::from(rank)) - 2f64.powi(-i32::from(*merged));
            if *merged == 0 {
                self.merged.zeros -= 1;
            }
            *merged = rank;
        }
    }

    /// The estimated number of distinct values in the window whose newest
    /// span started at `newest`.
    pub(crate) fn estimate(&mut self, newest: u64) -> u64 {
        let newest_epoch = newest / self.slice;
        if self.merged.at != Some(newest_epoch) {
            self.rebuild(newest_epoch);
        }
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / self.merged.sum;
        let estimate = if raw <= 2.5 * m && self.merged.zeros > 0 {
            // Small range: linear counting.
            m * (m / f64::from(self.merged.zeros)).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    fn rebuild(&mut self, newest_epoch: u64) {
        let mut merged = std::mem::take(&mut self.merged.registers);
        merged.clear();
        merged.resize(REGISTERS, 0);
        for (slot, &epoch) in self.epochs.iter().enumerate() {
            if !Self::live(epoch, newest_epoch) {
                continue;
            }
            let Some(registers) = self.registers.get(slot * REGISTERS..(slot + 1) * REGISTERS)
            else {
                continue;
            };
            for (m, &r) in merged.iter_mut().zip(registers) {
                *m = (*m).max(r);
            }
        }
        self.merged.sum = merged.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        self.merged.zeros = merged.iter().filter(|&&r| r == 0).count() as u32;
        self.merged.registers = merged;
        self.merged.at = Some(newest_epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn estimates_within_a_few_percent() {
        for n in [100u64, 1_000, 10_000, 100_000] {
            let mut sketch = WindowSketch::new(60 * SEC);
            for i in 0..n {
                sketch.insert(
                    &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                    SEC,
                    SEC,
                );
            }
            // Duplicates change nothing.
            for i in 0..n / 2 {
                sketch.insert(
                    &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                    SEC,
                    SEC,
                );
            }
            let estimate = sketch.estimate(SEC) as f64;
            let error = (estimate - n as f64).abs() / n as f64;
            // Four standard errors: a random key never fails this in practice.
            assert!(error < 0.14, "{n}: estimated {estimate}");
        }
    }

    #[test]
    fn values_leave_with_their_slice() {
        let window = 80 * SEC;
        let mut sketch = WindowSketch::new(window);
        // 5000 values early, 3000 others 70 s later.
        for i in 0..5000 {
            sketch.insert(&format!("early{i}"), SEC, SEC);
        }
        let later = 71 * SEC;
        for i in 0..3000 {
            sketch.insert(&format!("late{i}"), later, later);
        }
        let both = sketch.estimate(later) as f64;
        assert!((both - 8000.0).abs() < 8000.0 * 0.14, "{both}");
        // 100 s on, the early slice left the window, the late one has not.
        let now = 101 * SEC;
        let late = sketch.estimate(now) as f64;
        assert!((late - 3000.0).abs() < 3000.0 * 0.14, "{late}");
        // A value older than the window is ignored.
        sketch.insert("ancient", 0, now);
        assert_eq!(sketch.estimate(200 * SEC), 0);
    }

    #[test]
    fn the_merged_view_kept_in_place_matches_one_built_again() {
        let mut sketch = WindowSketch::new(8 * SEC);
        sketch.insert("a", SEC, SEC);
        let _ = sketch.estimate(SEC);
        for i in 0..2000 {
            sketch.insert(&format!("v{i}"), SEC, SEC);
        }
        let in_place = sketch.estimate(SEC);
        sketch.merged.at = None;
        assert_eq!(sketch.estimate(SEC), in_place);
        // And after a checkpoint, which leaves it out.
        let bytes = postcard::to_allocvec(&sketch).unwrap();
        let mut back: WindowSketch = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.estimate(SEC), in_place);
        back.insert("v1", SEC, SEC);
        assert_eq!(back.estimate(SEC), in_place, "the same key hashes the same");
    }
}
