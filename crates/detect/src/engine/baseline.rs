//! State of a baseline rule: per key, matching spans counted in buckets of
//! `interval` (event time, aligned on the unix epoch), an exponentially
//! weighted moving mean and variance of past bucket counts, and the
//! decision whether the newest bucket is a burst.
//!
//! # The baseline
//!
//! Each closed bucket's count `x`, empty ones included, is folded in
//! order (Finch, "Incremental calculation of weighted mean and variance",
//! 2009):
//!
//! ```text
//! a     = max(alpha, 1 / n)        n: buckets folded so far, this one included
//! d     = x - mean
//! mean += a * d
//! var   = (1 - a) * (var + a * d * d)
//! ```
//!
//! with `alpha = 2 / (learning + 1)` (the usual "span" of an EWMA: recent
//! `learning` buckets carry about 86% of the weight). `a = 1 / n` while
//! `1 / n > alpha` makes the first buckets the exact running mean and
//! (population) variance, so the baseline does not start biased towards
//! the first bucket or zero. Once learned, a bucket over its threshold is
//! folded as the threshold (winsorised): a burst does not inflate the
//! variance that must catch the next one, while a lasting change of level
//! still raises the baseline, by at most `alpha * (threshold - mean)` a
//! bucket.
//!
//! # The test
//!
//! Once `learning` buckets are folded, the newest bucket is a burst when
//! its count `c` meets every configured test:
//!
//! - `c >= min_count`;
//! - `deviations` k: `z = (c - mean) / sd >= k`, with
//!   `sd = sqrt(max(var, mean, 1))`: a Poisson floor, so a perfectly
//!   regular key (variance 0) or an idle one (mean 0) does not make any
//!   extra span an infinite z-score;
//! - `factor` f: `c > f * mean`;
//! - `distinct` field and min: the bucket holds at least `min` distinct
//!   values of the field (counted exactly up to 4 x `min`); with
//!   `max_share`, no one of those values has more than that share of the
//!   bucket's spans.
//!
//! The baseline stays fixed while a bucket is the newest, so the count the
//! bucket needs is computed once when it opens and each span costs a
//! compare. It fires once per burst: after firing, the key re-arms when a
//! bucket leaves the newest position under its threshold (or empty
//! buckets follow). Burst buckets are folded like any other, so a flood
//! that lasts raises the baseline instead of alerting forever.
//!
//! # Time
//!
//! Two buckets are open: the newest and the one before it, so spans up to
//! one bucket out of order still count (towards the baseline; only the
//! newest bucket can fire). Older spans are late (counted). When a span
//! opens a newer bucket, the buckets falling out are folded, then one
//! zero per empty bucket in between (a key idle for 5 buckets folds 5
//! zeros). A key idle for more than `learning` buckets starts afresh: its
//! old baseline would be mostly those zeros.
//!
//! # Memory per key
//!
//! About 150 bytes of counters and the key's map entry, plus up to
//! `max_trace_ids` (10) trace ids of the newest bucket (24 bytes each) and,
//! with `distinct`, up to 4 x `min` hashes of 8 bytes.

use super::hashing::KeyedHasher;
use std::collections::VecDeque;

use tracewarden_model::{RecordView, TraceId};

use crate::rule::BaselineRule;

use super::keys::KeyMap;
use super::threshold::{Crossing, sample_trace_ids};
use super::{Admitted, EngineConfig, Hit, RuleStats, duration_nanos, slot_for};

/// Parameters of a rule, resolved once.
#[derive(Default)]
pub(crate) struct Params {
    interval: u64,
    learning: u64,
    alpha: f64,
    deviations: Option<f64>,
    factor: Option<f64>,
    min_count: u64,
    distinct_min: Option<u64>,
    distinct_max_share: Option<f64>,
    max_trace_ids: usize,
}

impl Params {
    pub(crate) fn new(rule: &BaselineRule, max_trace_ids: usize) -> Params {
        Params {
            interval: duration_nanos(rule.interval).max(1),
            learning: rule.learning,
            alpha: 2.0 / (rule.learning as f64 + 1.0),
            deviations: rule.deviations,
            factor: rule.factor,
            min_count: rule.min_count,
            distinct_min: rule.distinct.as_ref().map(|d| d.min),
            distinct_max_share: rule.distinct.as_ref().and_then(|d| d.max_share),
            max_trace_ids,
        }
    }

    fn sd(mean: f64, var: f64) -> f64 {
        var.max(mean).max(1.0).sqrt()
    }

    /// The smallest count that passes the rate tests against the baseline.
    fn need(&self, mean: f64, var: f64) -> u64 {
        let mut need = self.min_count as f64;
        if let Some(k) = self.deviations {
            need = need.max((mean + k * Params::sd(mean, var)).ceil());
        }
        if let Some(f) = self.factor {
            need = need.max((f * mean).floor() + 1.0);
        }
        // Float to integer conversion saturates (and a NaN, impossible
        // here, would give 0): the result is at least `min_count` >= 1.
        (need as u64).max(self.min_count)
    }

    fn distinct_cap(&self) -> usize {
        self.distinct_min.map_or(0, |m| {
            usize::try_from(m.saturating_mul(4)).unwrap_or(usize::MAX)
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct BaselineState {
    pub(crate) keys: KeyMap<BaselineKey>,
    /// Derived from the rule: not saved, set again on restore.
    #[serde(skip)]
    params: Params,
    hasher: KeyedHasher,
}

impl BaselineState {
    /// After a restore: the parameters of the rule running now (the same
    /// file digest, so the same values).
    pub(crate) fn set_params(&mut self, rule: &BaselineRule, config: &EngineConfig) {
        self.params = Params::new(rule, config.max_trace_ids);
        self.keys.set_cap(config.max_keys_per_rule);
    }

    pub(crate) fn new(rule: &BaselineRule, config: &EngineConfig) -> BaselineState {
        BaselineState {
            keys: KeyMap::new(config.max_keys_per_rule),
            params: Params::new(rule, config.max_trace_ids),
            hasher: KeyedHasher::random(),
        }
    }

    /// The hash of the span's `distinct` field value, read into `value`;
    /// `None` for rules without `distinct` or spans without the field
    /// (which still count towards the rate).
    pub(crate) fn distinct_hash(
        &self,
        rule: &BaselineRule,
        view: &mut RecordView<'_, '_>,
        value: &mut String,
    ) -> Option<u64> {
        let gate = rule.distinct.as_ref()?;
        value.clear();
        gate.field
            .write_value_in(view, value)
            .then(|| self.hasher.hash_one(value.as_str()))
    }

    /// Counts one admitted span for `key`; returns the detection and its
    /// evidence when the key's newest bucket becomes a burst.
    pub(crate) fn record(
        &mut self,
        rule: &BaselineRule,
        key: &str,
        span: &Admitted,
        trace_id: TraceId,
        distinct: Option<u64>,
        stats: &mut RuleStats,
    ) -> Option<(Crossing, String)> {
        let slot = slot_for(&mut self.keys, key, span, stats)?;
        match slot
            .value
            .record((span.ts, trace_id), distinct, &self.params)
        {
            Outcome::Counted => None,
            Outcome::Late => {
                stats.late_spans += 1;
                None
            }
            Outcome::Burst(burst) => {
                let evidence = burst.evidence(rule);
                Some((burst.crossing, evidence))
            }
        }
    }
}

pub(crate) enum Outcome {
    Counted,
    /// Older than the two open buckets.
    Late,
    Burst(Burst),
}

pub(crate) struct Burst {
    crossing: Crossing,
    mean: f64,
    sd: f64,
    interval: u64,
    /// Distinct values in the bucket, and whether counting stopped at the cap.
    distinct: Option<(usize, bool)>,
}

impl Burst {
    /// `412 spans in a 10s bucket (baseline mean 12.3, sd 3.5, z 114.2), 57
    /// distinct span.client.address`.
    fn evidence(&self, rule: &BaselineRule) -> String {
        let count = self.crossing.count;
        let z = (count as f64 - self.mean) / self.sd;
        let interval = std::time::Duration::from_nanos(self.interval);
        let mut out = format!(
            "{count} spans in a {interval:?} bucket (baseline mean {:.1}, sd {:.1}, z {z:.1})",
            self.mean, self.sd
        );
        if let (Some((n, capped)), Some(gate)) = (self.distinct, &rule.distinct) {
            let plus = if capped { "+" } else { "" };
            out.push_str(&format!(", {n}{plus} distinct {}", gate.field.as_str()));
        }
        out
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct BaselineKey {
    /// False until the key's first span.
    started: bool,
    /// First bucket of the key's history.
    start: u64,
    /// The newest open bucket.
    cur: u64,
    count: u64,
    first_seen: u64,
    last_seen: u64,
    /// Spans in the bucket before `cur` (still open for late spans).
    prev_count: u64,
    /// The threshold that bucket was judged against.
    prev_need: u64,
    /// Newest spans of `cur` by start time, at most `max_trace_ids`,
    /// sorted by start time.
    hits: VecDeque<Hit>,
    /// Sorted hashes of the `distinct` values in `cur`.
    distinct: Vec<u64>,
    /// Spans of each of those values, at the same index.
    distinct_spans: Vec<u32>,
    mean: f64,
    var: f64,
    /// Buckets folded into the baseline.
    folded: u64,
    /// Count at which `cur` is over the threshold (`u64::MAX` while learning).
    need: u64,
    /// Fired, and no bucket under the threshold since.
    fired: bool,
}

impl BaselineKey {
    pub(crate) fn record(&mut self, hit: Hit, distinct: Option<u64>, p: &Params) -> Outcome {
        let bucket = hit.0 / p.interval;
        if !self.started {
            self.started = true;
            self.start = bucket;
            self.open(bucket, p);
            // A late span may still land in the bucket before: nothing
            // judged it, so nothing caps what it folds into the baseline.
            self.prev_need = u64::MAX;
        } else if bucket > self.cur {
            self.advance(bucket, p);
        } else if bucket < self.cur {
            if bucket + 1 < self.cur {
                return Outcome::Late;
            }
            self.prev_count += 1;
            self.start = self.start.min(bucket);
            return Outcome::Counted;
        }
        self.count += 1;
        self.first_seen = self.first_seen.min(hit.0);
        self.last_seen = self.last_seen.max(hit.0);
        // The newest spans by start time, whatever order they arrive in.
        let full = self.hits.len() >= p.max_trace_ids;
        if !(full && self.hits.front().is_none_or(|h| hit.0 < h.0)) {
            let at = self.hits.partition_point(|h| h.0 <= hit.0);
            self.hits.insert(at, hit);
            if self.hits.len() > p.max_trace_ids {
                self.hits.pop_front();
            }
        }
        let cap = p.distinct_cap();
        if let Some(h) = distinct {
            match self.distinct.binary_search(&h) {
                Ok(at) => {
                    if let Some(n) = self.distinct_spans.get_mut(at) {
                        *n = n.saturating_add(1);
                    }
                }
                Err(at) if self.distinct.len() < cap => {
                    self.distinct.insert(at, h);
                    self.distinct_spans.insert(at, 1);
                }
                Err(_) => {}
            }
        }
        if self.fired || self.count < self.need {
            return Outcome::Counted;
        }
        if p.distinct_min
            .is_some_and(|min| (self.distinct.len() as u64) < min)
        {
            return Outcome::Counted;
        }
        // One value over its share: a noisy client among quiet ones.
        if let Some(share) = p.distinct_max_share {
            let busiest = self.distinct_spans.iter().copied().max().unwrap_or(0);
            if f64::from(busiest) > share * self.count as f64 {
                return Outcome::Counted;
            }
        }
        self.fired = true;
        let mut newest_first: Vec<Hit> = self.hits.iter().copied().collect();
        newest_first.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
        Outcome::Burst(Burst {
            crossing: Crossing {
                count: self.count,
                first_seen: self.first_seen,
                last_seen: self.last_seen,
                trace_ids: sample_trace_ids(&newest_first, p.max_trace_ids),
            },
            mean: self.mean,
            sd: Params::sd(self.mean, self.var),
            interval: p.interval,
            distinct: p
                .distinct_min
                .map(|_| (self.distinct.len(), self.distinct.len() >= cap)),
        })
    }

    /// Makes `bucket` the newest: folds what falls out of the two open
    /// buckets, and the empty buckets in between.
    fn advance(&mut self, bucket: u64, p: &Params) {
        let gap = bucket - self.cur;
        if self.count < self.need || gap >= 2 {
            self.fired = false;
        }
        if gap > p.learning {
            let hits = std::mem::take(&mut self.hits);
            let distinct = std::mem::take(&mut self.distinct);
            let distinct_spans = std::mem::take(&mut self.distinct_spans);
            *self = BaselineKey {
                started: true,
                start: bucket,
                hits,
                distinct,
                distinct_spans,
                ..BaselineKey::default()
            };
            self.open(bucket, p);
            self.prev_need = u64::MAX;
            return;
        }
        if self.cur > self.start {
            self.fold(self.prev_count.min(self.prev_need), p);
        }
        if gap == 1 {
            self.prev_count = self.count;
            self.prev_need = self.need;
            self.open(bucket, p);
        } else {
            self.fold(self.count.min(self.need), p);
            for _ in 2..gap {
                self.fold(0, p);
            }
            self.prev_count = 0;
            self.open(bucket, p);
            self.prev_need = self.need;
        }
    }

    fn open(&mut self, bucket: u64, p: &Params) {
        self.cur = bucket;
        self.count = 0;
        self.first_seen = u64::MAX;
        self.last_seen = 0;
        self.hits.clear();
        // A flood's distinct set is not kept for the quiet buckets after it.
        if self.distinct.capacity() > 64 {
            self.distinct = Vec::new();
            self.distinct_spans = Vec::new();
        } else {
            self.distinct.clear();
            self.distinct_spans.clear();
        }
        self.need = if self.folded >= p.learning {
            p.need(self.mean, self.var)
        } else {
            u64::MAX
        };
    }

    fn fold(&mut self, x: u64, p: &Params) {
        self.folded += 1;
        let a = p.alpha.max(1.0 / self.folded as f64);
        let d = x as f64 - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rule::{RuleKind, parse_rule};

    const SEC: u64 = 1_000_000_000;

    fn params(extra: &str) -> Params {
        let text = format!(
            "id: t\ntitle: t\nseverity: low\nkind: baseline\ncondition: '{{ }}'\ninterval: 10s\n{extra}"
        );
        match parse_rule(&text, Path::new("t.yaml")).unwrap().kind {
            RuleKind::Baseline(b) => Params::new(&b, 10),
            other => panic!("{other:?}"),
        }
    }

    /// Feeds `counts[i]` spans in bucket i (spread over the bucket, one
    /// distinct value per span when `distinct`); returns (bucket, count at
    /// firing) for each burst.
    fn run(p: &Params, key: &mut BaselineKey, counts: &[u64], distinct: bool) -> Vec<(usize, u64)> {
        let mut fired = Vec::new();
        for (i, &c) in counts.iter().enumerate() {
            for j in 0..c {
                let ts = i as u64 * 10 * SEC + j * (10 * SEC / c.max(1));
                let hit = (ts, TraceId::from_bytes([1; 16]));
                if let Outcome::Burst(b) = key.record(hit, distinct.then_some(j), p) {
                    fired.push((i, b.crossing.count));
                }
            }
        }
        fired
    }

    #[test]
    fn a_late_span_before_the_first_bucket_folds_as_counted() {
        // The key opens at 15 s (bucket 1); the span at 5 s is one bucket
        // late and counted in bucket 0, which nothing judged: it folds
        // into the baseline as one span, not as zero.
        let p = params("learning: 30\n");
        let mut key = BaselineKey::default();
        let trace = TraceId::from_bytes([1; 16]);
        for ts in [15, 5, 25] {
            key.record((ts * SEC, trace), None, &p);
        }
        assert_eq!(key.folded, 1);
        assert!((key.mean - 1.0).abs() < 1e-9, "{}", key.mean);
    }

    #[test]
    fn the_trace_ids_are_the_newest_spans_of_the_bucket_in_any_arrival_order() {
        // A quiet key (one span a bucket), then 12 spans in bucket 3
        // arriving newest first: the detection cites the 10 newest by
        // start time, not the last 10 to arrive.
        let p = params("learning: 2\nmin_count: 12\n");
        let mut key = BaselineKey::default();
        for bucket in 0..3u64 {
            key.record((bucket * 10 * SEC, TraceId::from_bytes([1; 16])), None, &p);
        }
        let mut burst = None;
        for i in 0..12u8 {
            let ts = 39 * SEC - u64::from(i) * (SEC / 10);
            if let Outcome::Burst(b) =
                key.record((ts, TraceId::from_bytes([100 + i; 16])), None, &p)
            {
                burst = Some(b);
            }
        }
        let crossing = burst.expect("a burst").crossing;
        assert_eq!(crossing.count, 12);
        let newest: Vec<TraceId> = (0..10u8)
            .map(|i| TraceId::from_bytes([100 + i; 16]))
            .collect();
        assert_eq!(crossing.trace_ids, newest);
        assert_eq!(crossing.last_seen, 39 * SEC);
        assert_eq!(crossing.first_seen, 39 * SEC - 11 * (SEC / 10));
    }

    #[test]
    fn the_ewma_starts_as_the_exact_mean_and_variance() {
        let p = params("learning: 30\n");
        let mut key = BaselineKey::default();
        for x in [4, 8, 6] {
            key.fold(x, &p);
        }
        // Running mean 6, population variance 8/3: alpha (2/31) is below
        // 1/3, so these are exact.
        assert!((key.mean - 6.0).abs() < 1e-9, "{}", key.mean);
        assert!((key.var - 8.0 / 3.0).abs() < 1e-9, "{}", key.var);
    }

    #[test]
    fn fires_on_a_burst_only_after_learning() {
        let p = params("learning: 5\nmin_count: 20\n");
        // In bucket 5, four buckets are folded (bucket 4 is still open).
        let mut key = BaselineKey::default();
        assert_eq!(run(&p, &mut key, &[5, 5, 5, 5, 5, 60], false), vec![]);
        // In bucket 6, five: mean 5, sd sqrt(5), so min_count decides.
        let mut key = BaselineKey::default();
        assert_eq!(
            run(&p, &mut key, &[5, 5, 5, 5, 5, 5, 60], false),
            vec![(6, 20)]
        );
    }

    #[test]
    fn min_count_keeps_quiet_keys_silent() {
        // From 1 span a bucket to 8 is a z-score of 7, but under min_count.
        let p = params("learning: 5\nmin_count: 10\n");
        let mut key = BaselineKey::default();
        assert_eq!(
            run(&p, &mut key, &[1, 1, 1, 1, 1, 1, 1, 1, 8], false),
            vec![]
        );
        let mut key = BaselineKey::default();
        assert_eq!(
            run(&p, &mut key, &[1, 1, 1, 1, 1, 1, 1, 1, 12], false),
            vec![(8, 10)]
        );
    }

    #[test]
    fn fires_once_per_burst_and_rearms_after_a_bucket_under_threshold() {
        let p = params("learning: 30\nmin_count: 20\n");
        let mut key = BaselineKey::default();
        // A three-bucket burst fires once; after a quiet bucket, again.
        let mut counts = vec![5; 32];
        counts.extend([100, 100, 100, 5, 150]);
        let fired = run(&p, &mut key, &counts, false);
        assert_eq!(fired.iter().map(|f| f.0).collect::<Vec<_>>(), vec![32, 36]);
        assert_eq!(fired[0].1, 20);
        // Winsorised: the burst moved the baseline by a little only.
        assert!(key.mean < 8.0, "{}", key.mean);
    }

    #[test]
    fn idle_buckets_fold_as_zeros() {
        let p = params("learning: 30\n");
        let mut a = BaselineKey::default();
        run(
            &p,
            &mut a,
            &[10, 10, 10, 10, 10, 10, 0, 0, 0, 0, 0, 10],
            false,
        );
        let mut b = BaselineKey::default();
        for x in [10, 10, 10, 10, 10, 10, 0, 0, 0, 0] {
            b.fold(x, &p);
        }
        // Buckets 10 (empty) and 11 are open; 0..=9 are folded in both.
        assert_eq!(a.folded, b.folded);
        assert!((a.mean - b.mean).abs() < 1e-9, "{} {}", a.mean, b.mean);
        assert!((a.var - b.var).abs() < 1e-9);
        // A key idle past its learning starts afresh.
        let p = params("learning: 3\n");
        let mut c = BaselineKey::default();
        run(&p, &mut c, &[10, 10, 10, 10, 10, 0, 0, 0, 0, 10], false);
        assert_eq!((c.folded, c.mean), (0, 0.0));
    }

    #[test]
    fn spans_one_bucket_late_count_older_ones_are_late() {
        let p = params("learning: 30\n");
        let mut key = BaselineKey::default();
        let t = TraceId::from_bytes([1; 16]);
        for ts in [0, 11 * SEC, 5 * SEC, 25 * SEC, 12 * SEC] {
            assert!(matches!(key.record((ts, t), None, &p), Outcome::Counted));
        }
        assert!(matches!(key.record((9 * SEC, t), None, &p), Outcome::Late));
        // Buckets 0 (2 spans) and 1 (2 spans) are folded at bucket 3.
        key.record((35 * SEC, t), None, &p);
        assert_eq!(key.folded, 2);
        assert!((key.mean - 2.0).abs() < 1e-9);
        assert_eq!(key.prev_count, 1, "bucket 2 holds the span at 25 s");
    }

    #[test]
    fn the_distinct_gate_needs_many_sources() {
        let p = params(
            "learning: 5\nmin_count: 20\ndistinct:\n  field: span.client.address\n  min: 30\n",
        );
        // 100 spans from one source each... and 25 sources only.
        let mut key = BaselineKey::default();
        let fired = run(&p, &mut key, &[5, 5, 5, 5, 5, 5, 5, 100], true);
        assert_eq!(fired, vec![(7, 30)], "fires when the 30th source arrives");
        let mut key = BaselineKey::default();
        let counts = [5, 5, 5, 5, 5, 5, 5, 25];
        assert_eq!(run(&p, &mut key, &counts, true), vec![]);
        // Distinct values are kept up to 4 x min.
        let mut key = BaselineKey::default();
        run(&p, &mut key, &[5, 5, 5, 5, 5, 5, 5, 500], true);
        assert_eq!(key.distinct.len(), 120);
    }

    #[test]
    fn one_value_over_its_share_is_no_flood() {
        let p = params(
            "learning: 5\nmin_count: 20\ndistinct:\n  field: span.client.address\n  min: 10\n  max_share: 0.5\n",
        );
        let trace = TraceId::from_bytes([1; 16]);
        let feed = |key: &mut BaselineKey, bucket: u64, sources: &[u64]| -> Vec<u64> {
            let mut fired = Vec::new();
            for (j, source) in sources.iter().enumerate() {
                let ts = bucket * 10 * SEC + j as u64 * 1000;
                if let Outcome::Burst(b) = key.record((ts, trace), Some(*source), &p) {
                    fired.push(b.crossing.count);
                }
            }
            fired
        };
        let quiet: Vec<u64> = (0..5).collect();
        // 80 spans of one client among 20 others: that client is 80% of
        // the bucket.
        let mut key = BaselineKey::default();
        for bucket in 0..7 {
            assert!(feed(&mut key, bucket, &quiet).is_empty());
        }
        let scraper: Vec<u64> = (0..100)
            .map(|j| if j % 5 == 0 { 100 + j } else { 7 })
            .collect();
        assert_eq!(feed(&mut key, 7, &scraper), Vec::<u64>::new());
        // 100 spans from 100 clients: a flood.
        let mut key = BaselineKey::default();
        for bucket in 0..7 {
            feed(&mut key, bucket, &quiet);
        }
        let botnet: Vec<u64> = (1000..1100).collect();
        assert_eq!(feed(&mut key, 7, &botnet), vec![20]);
    }

    #[test]
    fn factor_alone_and_the_poisson_floor() {
        let p = params("learning: 5\nfactor: 3\nmin_count: 1\n");
        assert_eq!(p.deviations, None);
        // mean 10: needs more than 30.
        assert_eq!(p.need(10.0, 0.0), 31);
        let p = params("learning: 5\nmin_count: 1\n");
        // deviations 4 by default; variance 0 floors at the mean (sd 3).
        assert_eq!(p.need(9.0, 0.0), 21);
        // An idle key: sd 1.
        assert_eq!(p.need(0.0, 0.0), 4);
    }
}
