//! Sliding-window state of one key of a threshold rule.
//!
//! Memory per key is bounded by the rule's `count` N: deciding "at least N
//! matching spans (or distinct values) in the window" needs only the N most
//! recent, since the count reaches N exactly when the N-th most recent is
//! still in the window. Counts are therefore exact up to N, which is all
//! the rule reads, and the state never grows past N entries.
//!
//! A `distinct` count above [`EXACT_DISTINCT`] is estimated: the key keeps
//! the [`EXACT_DISTINCT`] values seen most recently (the evidence and the
//! trace ids) and, once it has more in its window, a [`WindowSketch`] of
//! all of them. When the window again holds fewer than [`EXACT_DISTINCT`]
//! (the kept values are then all there is), the count is exact again and
//! the sketch goes.

use std::collections::{HashMap, VecDeque};

use tracewarden_model::TraceId;

use super::Hit;
use super::keys::KeyHasher;
use super::sketch::WindowSketch;

/// Distinct values a threshold key counts exactly; a `count` above this is
/// reached by an estimate (see the module's text).
pub const EXACT_DISTINCT: usize = 1_000;

/// What a crossing reports.
pub(crate) struct Crossing {
    pub(crate) count: u64,
    pub(crate) first_seen: u64,
    pub(crate) last_seen: u64,
    pub(crate) trace_ids: Vec<TraceId>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ThresholdKey {
    /// Count mode: the newest matching spans, sorted by start time, at most N.
    hits: VecDeque<Hit>,
    /// Distinct mode: value -> newest span carrying it, at most N values.
    distinct: HashMap<Box<str>, Hit, KeyHasher>,
    /// No value in `distinct` is older than this (it may be older than the
    /// oldest): the map is swept only when this leaves the window, not for
    /// every span. Not saved: 0 after a restore sweeps once.
    #[serde(skip)]
    distinct_oldest: u64,
    /// Event time of the last firing: the key fires again only a window
    /// later, so a steady attack is reported once per window (keeping its
    /// alert firing) and a count hovering at N does not fire per span.
    fired_at: Option<u64>,
    /// Distinct mode past [`EXACT_DISTINCT`] values in the window: the
    /// estimate of how many.
    sketch: Option<Box<WindowSketch>>,
}

fn in_window(ts: u64, newest: u64, window: u64) -> bool {
    ts.saturating_add(window) > newest
}

impl ThresholdKey {
    /// Records one matching span (start time `hit.0` with `hit.0 + window >
    /// newest`, `newest` the key's newest event time including this span).
    /// Returns the crossing when the count reaches `threshold` and the key
    /// has not fired within the last window.
    pub(crate) fn record(
        &mut self,
        hit: Hit,
        distinct_value: Option<&str>,
        newest: u64,
        window: u64,
        threshold: u64,
        max_trace_ids: usize,
    ) -> Option<Crossing> {
        let cap = usize::try_from(threshold).unwrap_or(usize::MAX);
        // Spans that left the window no longer count.
        match distinct_value {
            None => {
                while self
                    .hits
                    .front()
                    .is_some_and(|h| !in_window(h.0, newest, window))
                {
                    self.hits.pop_front();
                }
            }
            Some(_) if !in_window(self.distinct_oldest, newest, window) => {
                self.distinct.retain(|_, h| in_window(h.0, newest, window));
                self.distinct_oldest = self.oldest_distinct();
                // Fewer than the kept values are left: those evicted were
                // older still, so gone too, and the count is exact again.
                if self.distinct.len() < EXACT_DISTINCT {
                    self.sketch = None;
                }
            }
            Some(_) => {}
        }
        // A window has passed since the last firing: the next crossing is
        // a new detection.
        if self
            .fired_at
            .is_some_and(|at| newest >= at.saturating_add(window))
        {
            self.fired_at = None;
        }
        let count_after = match distinct_value {
            None => {
                let full = self.hits.len() >= cap;
                // Older than all N kept: the count is already at N and this
                // span cannot change what the rule decides.
                if !(full && self.hits.front().is_some_and(|h| hit.0 <= h.0)) {
                    // Spans mostly arrive in start order: append without a search.
                    if self.hits.back().is_none_or(|h| h.0 <= hit.0) {
                        self.hits.push_back(hit);
                    } else {
                        let at = self.hits.partition_point(|h| h.0 <= hit.0);
                        self.hits.insert(at, hit);
                    }
                    if self.hits.len() > cap {
                        self.hits.pop_front();
                    }
                }
                self.hits.len()
            }
            Some(value) => {
                let new = match self.distinct.get_mut(value) {
                    Some(seen) => {
                        if hit.0 >= seen.0 {
                            *seen = hit;
                        }
                        false
                    }
                    None => {
                        self.distinct.insert(Box::from(value), hit);
                        true
                    }
                };
                self.distinct_oldest = self.distinct_oldest.min(hit.0);
                if cap <= EXACT_DISTINCT {
                    // Keep the N values seen most recently, trimmed an
                    // eighth at a time (a pass per N / 8 new values, not a
                    // scan of N per value in a flood). The values kept past
                    // N are in the window too, so "at least N" reads the
                    // same; the count reported stays N.
                    if self.distinct.len() > cap + cap / 8 {
                        self.trim_distinct(cap);
                    }
                    self.distinct.len().min(cap)
                } else {
                    self.count_estimated(value, hit.0, new, newest, window)
                }
            }
        };
        if self.fired_at.is_some() || (count_after as u64) < threshold {
            return None;
        }
        self.fired_at = Some(newest);
        let mut hits: Vec<Hit> = match distinct_value {
            None => self.hits.iter().copied().collect(),
            Some(_) => self.distinct.values().copied().collect(),
        };
        hits.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
        Some(Crossing {
            count: count_after as u64,
            first_seen: hits.last().map_or(hit.0, |h| h.0),
            last_seen: newest,
            trace_ids: sample_trace_ids(&hits, max_trace_ids),
        })
    }

    /// A `distinct` count past [`EXACT_DISTINCT`]: the value goes into the
    /// sketch (made from the kept values when the window first holds more
    /// than they), the kept values are cut back to the newest, and the
    /// count is the estimate (never below the values kept).
    fn count_estimated(
        &mut self,
        value: &str,
        ts: u64,
        new: bool,
        newest: u64,
        window: u64,
    ) -> usize {
        if self.sketch.is_none() && new && self.distinct.len() > EXACT_DISTINCT {
            let mut sketch = Box::new(WindowSketch::new(window));
            for (kept, hit) in &self.distinct {
                sketch.insert(kept, hit.0, newest);
            }
            self.sketch = Some(sketch);
        }
        let Some(sketch) = self.sketch.as_mut() else {
            return self.distinct.len();
        };
        sketch.insert(value, ts, newest);
        let estimate = usize::try_from(sketch.estimate(newest)).unwrap_or(usize::MAX);
        if self.distinct.len() > EXACT_DISTINCT + EXACT_DISTINCT / 8 {
            self.trim_distinct(EXACT_DISTINCT);
        }
        estimate.max(self.distinct.len())
    }

    /// Keeps exactly the `keep` values seen most recently (ties at the cut
    /// broken by the map's order: spans of one instant may be many).
    fn trim_distinct(&mut self, keep: usize) {
        let mut times: Vec<u64> = self.distinct.values().map(|h| h.0).collect();
        let Some(excess) = times.len().checked_sub(keep).filter(|&e| e > 0) else {
            return;
        };
        // The newest time dropped: the excess-th oldest.
        let (older, &mut cut, _) = times.select_nth_unstable(excess - 1);
        let mut ties = excess - older.iter().filter(|&&t| t < cut).count();
        self.distinct.retain(|_, h| {
            if h.0 < cut {
                false
            } else if h.0 == cut && ties > 0 {
                ties -= 1;
                false
            } else {
                true
            }
        });
        self.distinct_oldest = self.oldest_distinct();
    }

    /// When the least recently seen value kept was seen (`u64::MAX`: none).
    fn oldest_distinct(&self) -> u64 {
        self.distinct
            .values()
            .map(|h| h.0)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Whether the distinct count is an estimate (past [`EXACT_DISTINCT`]).
    pub(crate) fn is_estimated(&self) -> bool {
        self.sketch.is_some()
    }

    /// Up to `max` of the distinct values in the window, the most recently
    /// seen first (ties by value, so the order does not depend on the
    /// map's): the evidence of a `distinct` crossing.
    pub(crate) fn newest_distinct(&self, max: usize) -> Vec<&str> {
        let mut values: Vec<(&str, u64)> = self
            .distinct
            .iter()
            .map(|(value, hit)| (&**value, hit.0))
            .collect();
        values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        values
            .into_iter()
            .take(max)
            .map(|(value, _)| value)
            .collect()
    }
}

/// Up to `max` distinct trace ids, most recent first. The zero id (a log
/// record logged outside any trace) names no trace and is left out.
pub(crate) fn sample_trace_ids(hits_newest_first: &[Hit], max: usize) -> Vec<TraceId> {
    let mut ids: Vec<TraceId> = Vec::with_capacity(max.min(hits_newest_first.len()));
    for (_, id) in hits_newest_first {
        if ids.len() >= max {
            break;
        }
        if !id.is_zero() && !ids.contains(id) {
            ids.push(*id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 100;

    fn id(n: u8) -> TraceId {
        TraceId::from_bytes([n; 16])
    }

    /// Feeds start times in order; returns the times at which it fired.
    fn fire_times(times: &[u64], threshold: u64) -> Vec<u64> {
        let mut key = ThresholdKey::default();
        let mut newest = 0;
        let mut fired = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            newest = newest.max(t);
            if key
                .record((t, id(i as u8)), None, newest, W, threshold, 10)
                .is_some()
            {
                fired.push(t);
            }
        }
        fired
    }

    /// Distinct mode against a brute-force count over every value seen:
    /// the same firings and counts, for thresholds with and without the
    /// trimming slack (N / 8 extra values kept between trims).
    #[test]
    fn distinct_firings_match_a_brute_force_count() {
        for threshold in [3u64, 16, 64] {
            let mut key = ThresholdKey::default();
            let mut seen: Vec<(u64, String)> = Vec::new();
            let mut fired_at: Option<u64> = None;
            let mut state = 0x2545_f491_4f6c_dd1du64;
            for i in 0..4000u64 {
                // Times in order, 0-3 apart; values from a pool that
                // drifts, so counts rise and fall across the threshold.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let t = i * (state % 4);
                let t = t.max(seen.last().map_or(0, |s| s.0));
                let value = format!("v{}", (i / 50) * 7 + state % (threshold + threshold / 2));
                seen.push((t, value.clone()));
                let crossing = key.record((t, id(1)), Some(&value), t, W, threshold, 10);
                // Brute force: distinct values in (t - W, t].
                let mut live: Vec<&str> = seen
                    .iter()
                    .filter(|(ts, _)| in_window(*ts, t, W))
                    .map(|(_, v)| v.as_str())
                    .collect();
                live.sort_unstable();
                live.dedup();
                if fired_at.is_some_and(|at| t >= at + W) {
                    fired_at = None;
                }
                let expected = fired_at.is_none() && live.len() as u64 >= threshold;
                if expected {
                    fired_at = Some(t);
                }
                assert_eq!(
                    crossing.as_ref().map(|c| c.count),
                    expected.then_some(threshold),
                    "threshold {threshold}, span {i} at {t}: {} live",
                    live.len()
                );
                assert!(key.distinct.len() as u64 <= threshold + threshold / 8);
            }
        }
    }

    /// Spans of one instant: the values kept stay bounded (ties at the cut
    /// are dropped too), exact and estimated, and the estimate still fires.
    #[test]
    fn values_of_one_instant_stay_bounded() {
        for threshold in [1_000u64, 5_000] {
            let mut key = ThresholdKey::default();
            let mut fired = Vec::new();
            for i in 0..20_000u32 {
                let value = format!("10.0.{}.{}", i >> 8, i & 255);
                if let Some(c) = key.record((7, id(1)), Some(&value), 7, W, threshold, 10) {
                    fired.push(c.count);
                }
                assert!(key.distinct.len() <= EXACT_DISTINCT + EXACT_DISTINCT / 8);
            }
            assert_eq!(fired.len(), 1, "{threshold}: {fired:?}");
            assert_eq!(key.is_estimated(), threshold > EXACT_DISTINCT as u64);
        }
    }

    #[test]
    fn fires_once_per_crossing_and_again_a_window_later() {
        // 3 in the window fires at the third; more spans do not fire again.
        assert_eq!(fire_times(&[0, 10, 20, 30, 40, 50], 3), vec![20]);
        // The window drains (gap > W), then a new burst fires again.
        assert_eq!(fire_times(&[0, 10, 20, 300, 310, 320], 3), vec![20, 320]);
        // Spread out: never 3 within 100.
        assert_eq!(fire_times(&[0, 60, 120, 180, 240], 3), Vec::<u64>::new());
        // Exactly at the window edge the oldest no longer counts.
        assert_eq!(fire_times(&[0, 50, 100], 3), Vec::<u64>::new());
        assert_eq!(fire_times(&[0, 50, 99], 3), vec![99]);
    }

    #[test]
    fn a_count_hovering_at_the_threshold_fires_once_per_window() {
        // One span every 34 in a window of 100: the window holds 3, then 2
        // as the oldest leaves, then 3 again, for ever. It fires at the
        // first crossing and then once per window, not at every span.
        let steady: Vec<u64> = (0..30).map(|i| i * 34).collect();
        let fired = fire_times(&steady, 3);
        assert_eq!(fired.first(), Some(&68));
        for pair in fired.windows(2) {
            assert!(pair[1] - pair[0] >= W, "{fired:?}");
        }
        assert!(fired.len() >= 8 && fired.len() <= 10, "{fired:?}");
        // A burst that dips below and crosses again within the window is
        // one detection; a window later it is reported again.
        assert_eq!(fire_times(&[0, 10, 20, 110, 115, 118], 3), vec![20]);
        assert_eq!(fire_times(&[0, 10, 20, 110, 120, 130], 3), vec![20, 130]);
    }

    #[test]
    fn out_of_order_spans_count() {
        assert_eq!(fire_times(&[50, 40, 45], 3), vec![45]);
    }

    #[test]
    fn distinct_counts_values_not_spans() {
        let mut key = ThresholdKey::default();
        let mut fired = None;
        for (i, user) in ["a", "a", "b", "a", "b", "c"].iter().enumerate() {
            let t = i as u64;
            if let Some(c) = key.record((t, id(i as u8)), Some(user), t, W, 3, 2) {
                fired = Some((t, c.count, c.first_seen, c.trace_ids.len()));
            }
        }
        // Fires at the first "c": first seen is the newest "a" (t=3).
        assert_eq!(fired, Some((5, 3, 3, 2)));
    }

    #[test]
    fn the_newest_distinct_values_are_the_evidence() {
        let mut key = ThresholdKey::default();
        for (t, user) in [
            (1, "carol"),
            (2, "alice"),
            (3, "bob"),
            (3, "aaron"),
            (4, "alice"),
        ] {
            key.record((t, id(1)), Some(user), t, W, 10, 5);
        }
        // alice was seen last (4), then aaron and bob (3, by name), carol.
        assert_eq!(key.newest_distinct(3), ["alice", "aaron", "bob"]);
        assert_eq!(key.newest_distinct(10).len(), 4);
        // Count mode keeps no values.
        let mut counted = ThresholdKey::default();
        counted.record((1, id(1)), None, 1, W, 10, 5);
        assert!(counted.newest_distinct(3).is_empty());
    }

    #[test]
    fn distinct_values_leave_the_window() {
        // Window W = 100. "a" at 0 and 150, "b" at 10, "c" at 120: at 120
        // "a" (0) and "b" (10) have left, so "a" again at 150 makes two
        // values, and "d" at 160 three.
        let mut key = ThresholdKey::default();
        let mut counts = Vec::new();
        for (t, user) in [(0, "a"), (10, "b"), (120, "c"), (150, "a"), (160, "d")] {
            let crossing = key.record((t, id(1)), Some(user), t, W, 3, 2);
            counts.push((t, key.distinct.len(), crossing.map(|c| c.count)));
        }
        assert_eq!(
            counts,
            vec![
                (0, 1, None),
                (10, 2, None),
                (120, 1, None),
                (150, 2, None),
                (160, 3, Some(3))
            ]
        );
        // A value seen again is kept for its newest time: at 240 "a" (150)
        // and "d" (160) are in the window, "c" (120) has left; at 261 only
        // "e" (240) is.
        key.record((240, id(2)), Some("e"), 240, W, 3, 2);
        assert_eq!(key.distinct.len(), 3, "a, d, e");
        key.record((261, id(3)), Some("e"), 261, W, 3, 2);
        assert_eq!(key.distinct.len(), 1, "e");
    }
}
