//! `kind: baseline`: a key's matching spans per bucket far above its own
//! moving baseline (bursts, floods). Parsing only; the state and the exact
//! computation are in `engine/baseline.rs`.

use std::time::Duration;

use saphyr::{MarkedYaml, Scalar, YamlData};

use super::{
    Checker, Condition, FieldRef, Getter, MAX_COUNT, MAX_DISTINCT, RuleErrorKind, RuleKind,
    required,
};

/// `learning` when the rule does not set it: full buckets of history
/// before the rule may fire.
pub const DEFAULT_BASELINE_LEARNING: u64 = 30;
/// Largest `learning`.
pub const MAX_BASELINE_LEARNING: u64 = 10_000;
/// `deviations` when the rule sets neither `deviations` nor `factor`.
pub const DEFAULT_DEVIATIONS: f64 = 4.0;
/// `min_count` when the rule does not set it.
pub const DEFAULT_MIN_COUNT: u64 = 10;
/// Shortest `interval`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `interval`.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// The keys of a baseline rule (besides the common ones).
pub(super) const KEYS: [&str; 9] = [
    "condition",
    "group_by",
    "interval",
    "learning",
    "deviations",
    "factor",
    "min_count",
    "distinct",
    "evidence",
];
const DISTINCT_KEYS: [&str; 3] = ["field", "min", "max_share"];

/// `kind: baseline`.
#[derive(Clone, Debug)]
pub struct BaselineRule {
    /// One spanset filter, decided span by span.
    pub condition: Condition,
    pub group_by: Vec<FieldRef>,
    /// Bucket width: spans are counted per key and bucket.
    pub interval: Duration,
    /// Full buckets of history a key needs before it may fire; also sets
    /// the baseline's memory (EWMA alpha = 2 / (learning + 1)).
    pub learning: u64,
    /// Fire only when the bucket's z-score against the baseline reaches
    /// this. `None` when the rule sets only `factor`.
    pub deviations: Option<f64>,
    /// Fire only when the bucket's count exceeds this many times the
    /// baseline mean.
    pub factor: Option<f64>,
    /// Fire only when the bucket holds at least this many spans.
    pub min_count: u64,
    /// Fire only when the bucket also holds this many distinct values.
    pub distinct: Option<DistinctGate>,
}

/// `distinct: {field, min}` of a baseline rule.
#[derive(Clone, Debug)]
pub struct DistinctGate {
    pub field: FieldRef,
    /// 1 to [`MAX_DISTINCT`]; values are counted exactly up to 4 x `min`.
    pub min: u64,
    /// The largest share of the bucket's spans one value may have (above 0,
    /// at most 1): one noisy client among many quiet ones is no flood.
    pub max_share: Option<f64>,
}

pub(super) fn parse(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    let condition =
        required(checker, root, get, "condition").and_then(|n| checker.condition(n, true));
    let group_by = get("group_by").map_or(Some(Vec::new()), |n| checker.group_by(n));
    let interval = required(checker, root, get, "interval").and_then(|n| {
        let d = checker.duration("interval", n)?;
        if (MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
            Some(d)
        } else {
            checker.error(
                n,
                RuleErrorKind::Invalid {
                    key: "interval".to_string(),
                    reason: "must be between 1s and 1d".to_string(),
                },
            );
            None
        }
    });
    let learning = get("learning").map_or(Some(DEFAULT_BASELINE_LEARNING), |n| {
        checker.count("learning", n, MAX_BASELINE_LEARNING)
    });
    let deviations = match get("deviations") {
        None => Some(None),
        Some(n) => number(checker, n, "deviations", 0.0, 100.0).map(Some),
    };
    let factor = match get("factor") {
        None => Some(None),
        Some(n) => number(checker, n, "factor", 1.0, 1000.0).map(Some),
    };
    let deviations = match (deviations, &factor) {
        (Some(None), Some(None)) => Some(Some(DEFAULT_DEVIATIONS)),
        (d, _) => d,
    };
    let min_count = get("min_count").map_or(Some(DEFAULT_MIN_COUNT), |n| {
        checker.count("min_count", n, MAX_COUNT * 100)
    });
    let distinct = match get("distinct") {
        None => Some(None),
        Some(node) => distinct(checker, node).map(Some),
    };
    Some(RuleKind::Baseline(BaselineRule {
        condition: condition?,
        group_by: group_by?,
        interval: interval?,
        learning: learning?,
        deviations: deviations?,
        factor: factor?,
        min_count: min_count?,
        distinct: distinct?,
    }))
}

/// A number (integer or float) in `(low, high]`.
fn number(
    checker: &mut Checker<'_>,
    node: &MarkedYaml<'_>,
    key: &str,
    low: f64,
    high: f64,
) -> Option<f64> {
    let value = match &node.data {
        YamlData::Value(Scalar::Integer(i)) => *i as f64,
        YamlData::Value(Scalar::FloatingPoint(f)) => f.into_inner(),
        _ => {
            checker.error(
                node,
                RuleErrorKind::WrongType {
                    key: key.to_string(),
                    expected: "a number",
                },
            );
            return None;
        }
    };
    if value > low && value <= high {
        Some(value)
    } else {
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: key.to_string(),
                reason: format!("must be greater than {low} and at most {high}"),
            },
        );
        None
    }
}

fn distinct(checker: &mut Checker<'_>, node: &MarkedYaml<'_>) -> Option<DistinctGate> {
    let entries = checker.mapping(node, "distinct", &DISTINCT_KEYS, None)?;
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, _, v)| *v)
    };
    let field = match get("field") {
        Some(n) => checker.field(n, "distinct.field"),
        None => {
            checker.error(node, RuleErrorKind::MissingKey("distinct.field"));
            None
        }
    };
    let min = match get("min") {
        Some(n) => checker.count("distinct.min", n, MAX_DISTINCT),
        None => {
            checker.error(node, RuleErrorKind::MissingKey("distinct.min"));
            None
        }
    };
    let max_share = match get("max_share") {
        None => Some(None),
        Some(n) => match &n.data {
            YamlData::Value(Scalar::FloatingPoint(f)) if f.0 > 0.0 && f.0 <= 1.0 => Some(Some(f.0)),
            YamlData::Value(Scalar::Integer(1)) => Some(Some(1.0)),
            _ => {
                checker.error(
                    n,
                    RuleErrorKind::Invalid {
                        key: "distinct.max_share".to_string(),
                        reason: "a share above 0 and at most 1, such as 0.5".to_string(),
                    },
                );
                None
            }
        },
    };
    Some(DistinctGate {
        field: field?,
        min: min?,
        max_share: max_share?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rule::parse_rule;

    const HEAD: &str = "id: x\ntitle: t\nseverity: low\nkind: baseline\ncondition: '{ }'\n";

    fn rule(body: &str) -> BaselineRule {
        match parse_rule(&format!("{HEAD}{body}"), Path::new("r.yaml"))
            .unwrap()
            .kind
        {
            RuleKind::Baseline(b) => b,
            other => panic!("{other:?}"),
        }
    }

    fn errs(body: &str) -> Vec<String> {
        match parse_rule(&format!("{HEAD}{body}"), Path::new("r.yaml")) {
            Ok(rule) => panic!("accepted: {rule:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn parses_with_defaults_and_options() {
        let b = rule("interval: 10s\n");
        assert_eq!(b.interval, Duration::from_secs(10));
        assert_eq!(b.learning, DEFAULT_BASELINE_LEARNING);
        assert_eq!(b.deviations, Some(DEFAULT_DEVIATIONS));
        assert_eq!((b.factor, b.min_count), (None, DEFAULT_MIN_COUNT));
        assert!(b.distinct.is_none() && b.group_by.is_empty());

        let b = rule(
            "group_by: [span.http.route]\ninterval: 1m\nlearning: 60\nfactor: 2.5\nmin_count: 100\ndistinct:\n  field: span.client.address\n  min: 20\n",
        );
        assert_eq!((b.learning, b.deviations, b.factor), (60, None, Some(2.5)));
        let gate = b.distinct.unwrap();
        assert_eq!((gate.field.as_str(), gate.min), ("span.client.address", 20));
        let b = rule("interval: 10s\ndeviations: 3\nfactor: 2\n");
        assert_eq!((b.deviations, b.factor), (Some(3.0), Some(2.0)));
    }

    #[test]
    fn every_error_with_its_position() {
        let cases: &[(&str, &[&str])] = &[
            (
                "learning: 5\n",
                &["r.yaml:1:1: missing required key `interval`"],
            ),
            (
                "interval: 500ms\n",
                &["r.yaml:6:11: invalid `interval`: must be between 1s and 1d"],
            ),
            (
                "interval: 2d\n",
                &["r.yaml:6:11: invalid `interval`: must be between 1s and 1d"],
            ),
            (
                "interval: 10s\nlearning: 0\n",
                &["r.yaml:7:11: invalid `learning`: must be between 1 and 10000"],
            ),
            (
                "interval: 10s\nlearning: 1h\n",
                &["r.yaml:7:11: `learning` must be an integer"],
            ),
            (
                "interval: 10s\ndeviations: -1\n",
                &["r.yaml:7:13: invalid `deviations`: must be greater than 0 and at most 100"],
            ),
            (
                "interval: 10s\nfactor: 0.5\n",
                &["r.yaml:7:9: invalid `factor`: must be greater than 1 and at most 1000"],
            ),
            (
                "interval: 10s\nfactor: lots\n",
                &["r.yaml:7:9: `factor` must be a number"],
            ),
            (
                "interval: 10s\nmin_count: 0\n",
                &["r.yaml:7:12: invalid `min_count`: must be between 1 and 1000000"],
            ),
            (
                "interval: 10s\ndistinct: span.client.address\n",
                &["r.yaml:7:11: `distinct` must be a mapping"],
            ),
            (
                "interval: 10s\ndistinct:\n  field: span.client.address\n",
                &["r.yaml:8:3: missing required key `distinct.min`"],
            ),
            (
                "interval: 10s\ndistinct:\n  field: event.x\n  min: 5000\n  max: 3\n",
                &[
                    "r.yaml:10:3: unknown key `max` (expected one of: field, min, max_share)",
                    "r.yaml:8:10: invalid field `event.x`: event and link fields have one value per event or link; use a span, resource or instrumentation field",
                    "r.yaml:9:8: invalid `distinct.min`: must be between 1 and 1000",
                ],
            ),
            (
                "interval: 10s\ndistinct:\n  field: span.client.address\n  min: 5\n  max_share: 1.5\n",
                &[
                    "r.yaml:10:14: invalid `distinct.max_share`: a share above 0 and at most 1, such as 0.5",
                ],
            ),
            (
                "interval: 10s\nwindow: 5m\nfields: [span.a]\n",
                &[
                    "r.yaml:7:1: key `window` is not valid for kind `baseline`",
                    "r.yaml:8:1: key `fields` is not valid for kind `baseline`",
                ],
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(&errs(body), expected, "{body}");
        }
    }
}
