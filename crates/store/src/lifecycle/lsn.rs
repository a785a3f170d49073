//! Sets of WAL log sequence numbers, kept as sorted, disjoint, inclusive
//! ranges: what a hot tier holds, what the manifests cover, what the WAL
//! files span. LSNs come in long runs (one per append, one apart), so a set
//! of millions of LSNs is a handful of ranges.

use crate::wal::Lsn;

/// A set of LSNs as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LsnSet {
    ranges: Vec<(Lsn, Lsn)>,
}

impl LsnSet {
    pub fn new() -> LsnSet {
        LsnSet::default()
    }

    /// The set of the given inclusive ranges, in any order, overlapping or
    /// not; a range whose start is after its end is empty and ignored.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (Lsn, Lsn)>) -> LsnSet {
        let mut ranges: Vec<(Lsn, Lsn)> = ranges.into_iter().filter(|(a, b)| a <= b).collect();
        ranges.sort_unstable();
        let mut set = LsnSet {
            ranges: Vec::with_capacity(ranges.len()),
        };
        for (start, end) in ranges {
            set.push_sorted(start, end);
        }
        set
    }

    /// The set of the given LSNs, in any order.
    pub fn from_lsns(mut lsns: Vec<Lsn>) -> LsnSet {
        lsns.sort_unstable();
        let mut set = LsnSet::new();
        for lsn in lsns {
            set.push_sorted(lsn, lsn);
        }
        set
    }

    /// Appends a range that starts at or after the start of every range
    /// held, merging it with the last one when they overlap or touch.
    fn push_sorted(&mut self, start: Lsn, end: Lsn) {
        if let Some(last) = self.ranges.last_mut()
            && start <= last.1.saturating_add(1)
        {
            last.1 = last.1.max(end);
            return;
        }
        self.ranges.push((start, end));
    }

    /// The inclusive ranges, sorted, disjoint and not adjacent.
    pub fn ranges(&self) -> &[(Lsn, Lsn)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many LSNs the set holds.
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| (b - a).saturating_add(1))
            .sum()
    }

    /// The largest LSN held.
    pub fn max(&self) -> Option<Lsn> {
        self.ranges.last().map(|r| r.1)
    }

    pub fn contains(&self, lsn: Lsn) -> bool {
        // The first range ending at or after `lsn` is the only candidate.
        let index = self.ranges.partition_point(|r| r.1 < lsn);
        self.ranges.get(index).is_some_and(|r| r.0 <= lsn)
    }

    /// Whether every LSN of `start..=end` is in the set (true for an empty range).
    pub fn covers(&self, start: Lsn, end: Lsn) -> bool {
        if start > end {
            return true;
        }
        let index = self.ranges.partition_point(|r| r.1 < start);
        // Ranges are not adjacent, so one range must hold all of it.
        self.ranges
            .get(index)
            .is_some_and(|r| r.0 <= start && end <= r.1)
    }

    /// Whether any LSN of `start..=end` is in the set.
    pub fn intersects(&self, start: Lsn, end: Lsn) -> bool {
        if start > end {
            return false;
        }
        let index = self.ranges.partition_point(|r| r.1 < start);
        self.ranges.get(index).is_some_and(|r| r.0 <= end)
    }

    /// Whether the two sets share an LSN.
    pub fn intersects_set(&self, other: &LsnSet) -> bool {
        other.ranges.iter().any(|&(a, b)| self.intersects(a, b))
    }

    /// Adds one LSN; cheap when LSNs come in order (extends the last range).
    pub fn insert(&mut self, lsn: Lsn) {
        match self.ranges.last_mut() {
            None => self.ranges.push((lsn, lsn)),
            Some(last) if lsn > last.1 => self.push_sorted(lsn, lsn),
            Some(_) => {
                if !self.contains(lsn) {
                    self.union_with(&LsnSet::from_ranges([(lsn, lsn)]));
                }
            }
        }
    }

    /// Adds every LSN of `other`.
    pub fn union_with(&mut self, other: &LsnSet) {
        if other.is_empty() {
            return;
        }
        let merged = LsnSet::from_ranges(self.ranges.iter().chain(&other.ranges).copied());
        *self = merged;
    }

    /// The LSNs of `start..=end` that are not in the set.
    pub fn gaps_in(&self, start: Lsn, end: Lsn) -> LsnSet {
        let mut gaps = LsnSet::new();
        if start > end {
            return gaps;
        }
        let mut next = start;
        for &(a, b) in &self.ranges {
            if b < next {
                continue;
            }
            if a > end {
                break;
            }
            if a > next {
                gaps.push_sorted(next, a - 1);
            }
            match b.checked_add(1) {
                Some(after) => next = after,
                None => return gaps,
            }
            if next > end {
                return gaps;
            }
        }
        gaps.push_sorted(next, end);
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_in_and_out_of_order() {
        let mut set = LsnSet::new();
        for lsn in [1, 2, 3, 5, 4, 9, 7, 8, 3, 20] {
            set.insert(lsn);
        }
        assert_eq!(set.ranges(), [(1, 5), (7, 9), (20, 20)]);
        set.insert(6);
        assert_eq!(set.ranges(), [(1, 9), (20, 20)]);
    }

    #[test]
    fn ranges_are_merged_sorted_and_deduplicated() {
        let set = LsnSet::from_ranges([(10, 12), (1, 3), (4, 4), (11, 20), (30, 29), (25, 25)]);
        assert_eq!(set.ranges(), [(1, 4), (10, 20), (25, 25)]);
        assert_eq!(set.len(), 4 + 11 + 1);
        assert_eq!(set.max(), Some(25));
        let set = LsnSet::from_lsns(vec![7, 5, 6, 9, 5, 1]);
        assert_eq!(set.ranges(), [(1, 1), (5, 7), (9, 9)]);
        assert!(LsnSet::from_lsns(Vec::new()).is_empty());
    }

    #[test]
    fn membership_cover_and_intersection() {
        let set = LsnSet::from_ranges([(1, 4), (10, 20)]);
        for (lsn, expected) in [
            (0, false),
            (1, true),
            (4, true),
            (5, false),
            (15, true),
            (21, false),
        ] {
            assert_eq!(set.contains(lsn), expected, "contains {lsn}");
        }
        for ((a, b), expected) in [
            ((1, 4), true),
            ((2, 3), true),
            ((1, 5), false),
            ((4, 10), false),
            ((10, 20), true),
            ((9, 9), false),
            ((5, 4), true),
        ] {
            assert_eq!(set.covers(a, b), expected, "covers {a}..={b}");
        }
        for ((a, b), expected) in [
            ((5, 9), false),
            ((5, 10), true),
            ((0, 1), true),
            ((21, 99), false),
        ] {
            assert_eq!(set.intersects(a, b), expected, "intersects {a}..={b}");
        }
        assert!(set.intersects_set(&LsnSet::from_lsns(vec![6, 20])));
        assert!(!set.intersects_set(&LsnSet::from_lsns(vec![6, 21])));
    }

    #[test]
    fn union_and_gaps() {
        let mut set = LsnSet::from_ranges([(1, 4), (10, 20)]);
        set.union_with(&LsnSet::from_ranges([(5, 8), (30, 31)]));
        assert_eq!(set.ranges(), [(1, 8), (10, 20), (30, 31)]);
        assert_eq!(set.gaps_in(1, 40).ranges(), [(9, 9), (21, 29), (32, 40)]);
        assert_eq!(set.gaps_in(2, 7).ranges(), []);
        assert_eq!(set.gaps_in(0, 0).ranges(), [(0, 0)]);
        assert_eq!(set.gaps_in(15, 25).ranges(), [(21, 25)]);
        let full = LsnSet::from_ranges([(0, u64::MAX)]);
        assert!(full.gaps_in(0, u64::MAX).is_empty());
        assert!(full.covers(7, u64::MAX));
    }
}
