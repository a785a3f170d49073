//! Pipeline stages: spanset filters, scalar filters (aggregates), `by`,
//! `select` and `coalesce`, each mapping a list of spansets to another.

use std::collections::HashMap;

use tracewarden_model::RecordView;

use crate::ast::{Aggregate, AggregateKind, Field, Stage};
use crate::eval::filter::field_value;
use crate::eval::{Set, eval_spanset};
use crate::trace::TraceView;
use crate::value::{Static, Val, compare};

pub(crate) fn run_stage(stage: &Stage, sets: Vec<Set>, trace: &TraceView<'_>) -> Vec<Set> {
    match stage {
        // Filters act on each spanset alone; spansets left empty are dropped.
        Stage::Spanset(expr) => sets
            .iter()
            .flat_map(|set| eval_spanset(expr, set, trace))
            .collect(),
        Stage::Scalar {
            aggregate,
            op,
            value,
        } => sets
            .into_iter()
            .filter_map(|mut set| {
                let result = aggregate_value(aggregate, &set.spans, trace);
                if compare(result.as_val(), *op, value.as_val(), None) {
                    set.aggregates.push((aggregate.to_string(), result));
                    Some(set)
                } else {
                    None
                }
            })
            .collect(),
        Stage::By(fields) => sets
            .into_iter()
            .flat_map(|set| group_by(fields, set, trace))
            .collect(),
        Stage::Select(fields) => sets
            .into_iter()
            .map(|mut set| {
                for field in fields {
                    if !set.select.contains(field) {
                        set.select.push(field.clone());
                    }
                }
                set
            })
            .collect(),
        Stage::Coalesce => coalesce(sets),
    }
}

/// Merges every spanset into one. Groups (`by`) and aggregates describe the
/// spansets that were merged, so they are dropped; selected fields are kept.
fn coalesce(sets: Vec<Set>) -> Vec<Set> {
    let mut merged = Set::default();
    for set in sets {
        merged.spans = crate::eval::spanset::union(&merged.spans, &set.spans);
        for field in set.select {
            if !merged.select.contains(&field) {
                merged.select.push(field);
            }
        }
    }
    if merged.spans.is_empty() {
        Vec::new()
    } else {
        vec![merged]
    }
}

/// Splits a spanset by the values of `fields`. Spans without a field are
/// grouped together under `nil` for it (Tempo groups them the same way),
/// so no span is lost. Groups come in order of first appearance.
fn group_by(fields: &[Field], set: Set, trace: &TraceView<'_>) -> Vec<Set> {
    let mut index: HashMap<Vec<GroupKey>, usize> = HashMap::new();
    let mut groups: Vec<Set> = Vec::new();
    for &i in &set.spans {
        let Some(record) = trace.spans().get(i) else {
            continue;
        };
        let values: Vec<Static> = fields
            .iter()
            .map(|f| {
                field_value(f, &mut RecordView::new(record), Some(trace))
                    .unwrap_or(Val::Nil)
                    .to_static()
            })
            .collect();
        let key: Vec<GroupKey> = values.iter().map(GroupKey::of).collect();
        let slot = *index.entry(key).or_insert_with(|| {
            let mut group = Set {
                spans: Vec::new(),
                by: set.by.clone(),
                aggregates: set.aggregates.clone(),
                select: set.select.clone(),
            };
            for (field, value) in fields.iter().zip(&values) {
                group.by.push((field.to_string(), value.clone()));
            }
            groups.push(group);
            groups.len() - 1
        });
        if let Some(group) = groups.get_mut(slot) {
            group.spans.push(i);
        }
    }
    groups
}

/// A hashable form of [`Static`] (floats by their bits).
#[derive(Clone, PartialEq, Eq, Hash)]
enum GroupKey {
    Nil,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Duration(u64),
    Status(u8),
    Kind(u8),
}

impl GroupKey {
    fn of(value: &Static) -> GroupKey {
        match value {
            Static::Nil => GroupKey::Nil,
            Static::Bool(b) => GroupKey::Bool(*b),
            Static::Int(i) => GroupKey::Int(*i),
            Static::Float(f) => GroupKey::Float(f.to_bits()),
            Static::Str(s) => GroupKey::Str(s.clone()),
            Static::Duration(d) => GroupKey::Duration(*d),
            Static::Status(s) => GroupKey::Status(*s as u8),
            Static::Kind(k) => GroupKey::Kind(*k as u8),
        }
    }
}

/// The aggregate over a spanset. Spans whose field is absent or not a
/// number are skipped; with no number at all the result is nil (and only
/// `= nil` holds for it). Durations stay durations; integer sums stay
/// integers (saturating); `avg` of integers is a float.
pub(crate) fn aggregate_value(
    aggregate: &Aggregate,
    spans: &[usize],
    trace: &TraceView<'_>,
) -> Static {
    let Some(field) = &aggregate.field else {
        return Static::Int(i64::try_from(spans.len()).unwrap_or(i64::MAX));
    };
    let mut count: u64 = 0;
    let mut all_durations = true;
    let mut all_ints = true;
    let mut int_sum: i64 = 0;
    let mut dur_sum: u128 = 0;
    let mut float_sum: f64 = 0.0;
    let mut min: Option<f64> = None;
    let mut max: Option<f64> = None;
    let mut min_exact: Option<Static> = None;
    let mut max_exact: Option<Static> = None;
    for &i in spans {
        let Some(record) = trace.spans().get(i) else {
            continue;
        };
        let value =
            field_value(field, &mut RecordView::new(record), Some(trace)).unwrap_or(Val::Nil);
        let (number, exact) = match value {
            Val::Int(v) => {
                all_durations = false;
                int_sum = int_sum.saturating_add(v);
                (v as f64, Static::Int(v))
            }
            Val::Float(v) => {
                all_durations = false;
                all_ints = false;
                (v, Static::Float(v))
            }
            Val::Duration(d) => {
                all_ints = false;
                dur_sum += u128::from(d);
                (d as f64, Static::Duration(d))
            }
            _ => continue,
        };
        count += 1;
        float_sum += number;
        if min.is_none_or(|m| number < m) {
            min = Some(number);
            min_exact = Some(exact.clone());
        }
        if max.is_none_or(|m| number > m) {
            max = Some(number);
            max_exact = Some(exact);
        }
    }
    if count == 0 {
        return Static::Nil;
    }
    match aggregate.kind {
        AggregateKind::Count => Static::Int(i64::try_from(count).unwrap_or(i64::MAX)),
        AggregateKind::Min => min_exact.unwrap_or(Static::Nil),
        AggregateKind::Max => max_exact.unwrap_or(Static::Nil),
        AggregateKind::Sum => {
            if all_durations {
                Static::Duration(u64::try_from(dur_sum).unwrap_or(u64::MAX))
            } else if all_ints {
                Static::Int(int_sum)
            } else {
                Static::Float(float_sum)
            }
        }
        AggregateKind::Avg => {
            if all_durations {
                Static::Duration(u64::try_from(dur_sum / u128::from(count)).unwrap_or(u64::MAX))
            } else {
                Static::Float(float_sum / count as f64)
            }
        }
    }
}
