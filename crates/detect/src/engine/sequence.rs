//! State of one key of a sequence rule: the recent matches of each step,
//! and the search for an ordered chain of them within the window.

use std::collections::VecDeque;

use super::Hit;
use super::threshold::{Crossing, sample_trace_ids};

/// Matches kept per step beyond the step's `count`, so that a chain can
/// still be found when later matches of an earlier step arrive after a
/// later step began (out-of-order spans).
const STEP_SLACK: usize = 64;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SequenceKey {
    /// Per step, matching spans sorted by start time.
    steps: Vec<VecDeque<Hit>>,
}

impl SequenceKey {
    /// Records a span that matched the steps whose bit is set in `matched`
    /// (bit i: step i) and looks for a complete chain ending at the newest
    /// match of the last step: `counts[i]` matches of each step i, every
    /// match of step i strictly before every chosen match of step i+1, all
    /// within the window. On success the state is cleared, so the same
    /// spans never make two detections.
    pub(crate) fn record(
        &mut self,
        matched: u32,
        hit: Hit,
        newest: u64,
        window: u64,
        counts: &[u64],
        max_trace_ids: usize,
    ) -> Option<Crossing> {
        if self.steps.len() != counts.len() {
            self.steps = vec![VecDeque::new(); counts.len()];
        }
        for (i, (deque, &count)) in self.steps.iter_mut().zip(counts).enumerate() {
            while deque
                .front()
                .is_some_and(|h| h.0.saturating_add(window) <= newest)
            {
                deque.pop_front();
            }
            if matched & (1 << i) == 0 {
                continue;
            }
            let at = deque.partition_point(|h| h.0 <= hit.0);
            deque.insert(at, hit);
            let cap = usize::try_from(count)
                .unwrap_or(usize::MAX)
                .saturating_add(STEP_SLACK);
            while deque.len() > cap {
                deque.pop_front();
            }
        }
        let chain = self.chain(window, counts)?;
        let first_seen = chain.iter().map(|h| h.0).min().unwrap_or(hit.0);
        let last_seen = chain.iter().map(|h| h.0).max().unwrap_or(hit.0);
        let mut newest_first = chain;
        newest_first.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
        // Everything is cleared, matches after the chain too (they arrived
        // early, out of order). Keeping those fires on some orders where
        // time order would not: in a simulation of 300 shuffled streams of
        // 400 logins (25% failures, counts [5, 1]), keeping them fired 3.7%
        // more often than the same spans in time order, clearing 0.2% less
        // (scripts/sequence-order-sim.py).
        for deque in &mut self.steps {
            deque.clear();
        }
        Some(Crossing {
            count: newest_first.len() as u64,
            first_seen,
            last_seen,
            trace_ids: sample_trace_ids(&newest_first, max_trace_ids),
        })
    }

    /// Greedy from the last step backwards: taking the latest possible
    /// matches of each step leaves the most room for the steps before it,
    /// so if any chain ends at the newest last-step match, this finds one.
    fn chain(&self, window: u64, counts: &[u64]) -> Option<Vec<Hit>> {
        let last = self.steps.last()?;
        let end = last.back()?.0;
        let mut bound = end;
        let mut inclusive = true;
        let mut chain = Vec::new();
        for (deque, &count) in self.steps.iter().zip(counts).rev() {
            let need = usize::try_from(count).unwrap_or(usize::MAX);
            let mut taken = 0usize;
            for h in deque.iter().rev() {
                if taken == need {
                    break;
                }
                let before_bound = if inclusive { h.0 <= bound } else { h.0 < bound };
                if !before_bound {
                    continue;
                }
                if h.0.saturating_add(window) <= end {
                    break;
                }
                chain.push(*h);
                taken += 1;
            }
            if taken < need {
                return None;
            }
            bound = chain.last().map_or(bound, |h| h.0);
            inclusive = false;
        }
        Some(chain)
    }
}

#[cfg(test)]
mod tests {
    use tracewarden_model::TraceId;

    use super::*;

    const W: u64 = 100;

    /// (step bitmask, time) in arrival order -> times at which it fired.
    fn fire_times(events: &[(u32, u64)], counts: &[u64]) -> Vec<(u64, u64, u64)> {
        let mut key = SequenceKey::default();
        let mut newest = 0;
        let mut fired = Vec::new();
        for (i, &(mask, t)) in events.iter().enumerate() {
            newest = newest.max(t);
            let hit = (t, TraceId::from_bytes([i as u8; 16]));
            if let Some(c) = key.record(mask, hit, newest, W, counts, 10) {
                fired.push((t, c.count, c.first_seen));
            }
        }
        fired
    }

    #[test]
    fn failures_then_success_in_order() {
        // Three failures (step 0) then a success (step 1).
        let events = [(1, 0), (1, 10), (1, 20), (2, 30)];
        assert_eq!(fire_times(&events, &[3, 1]), vec![(30, 4, 0)]);
        // Success first: no sequence.
        let events = [(2, 0), (1, 10), (1, 20), (1, 30)];
        assert_eq!(fire_times(&events, &[3, 1]), vec![]);
        // Too few failures.
        let events = [(1, 0), (1, 10), (2, 30)];
        assert_eq!(fire_times(&events, &[3, 1]), vec![]);
    }

    #[test]
    fn whole_chain_must_fit_in_the_window() {
        let events = [(1, 0), (1, 10), (1, 20), (2, 110)];
        assert_eq!(fire_times(&events, &[3, 1]), vec![]);
        // Only 20 and 50 are within 100 of 110: two failures, not three.
        let events = [(1, 0), (1, 10), (1, 20), (1, 50), (2, 110)];
        assert_eq!(fire_times(&events, &[3, 1]), vec![]);
        assert_eq!(fire_times(&events, &[2, 1]), vec![(110, 3, 20)]);
    }

    #[test]
    fn fires_once_per_chain_and_late_earlier_step_completes_it() {
        let events = [(1, 0), (2, 10), (2, 20)];
        assert_eq!(fire_times(&events, &[1, 1]), vec![(10, 2, 0)]);
        // The failure arrives after the success but started before it.
        let events = [(2, 50), (1, 40)];
        assert_eq!(fire_times(&events, &[1, 1]), vec![(40, 2, 40)]);
    }

    #[test]
    fn one_span_cannot_be_two_steps() {
        // A span matching both steps is not a chain by itself.
        assert_eq!(fire_times(&[(3, 10)], &[1, 1]), vec![]);
        assert_eq!(fire_times(&[(3, 10), (3, 20)], &[1, 1]), vec![(20, 2, 10)]);
    }
}
