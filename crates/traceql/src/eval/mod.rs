//! Whole-trace evaluation: a query maps the trace (one spanset holding every
//! span) to the spansets it yields, as Tempo's engine does.

pub(crate) mod filter;
pub(crate) mod pipeline;
pub(crate) mod spanset;

use tracewarden_model::RecordView;

use crate::SpanSet;
use crate::ast::{Field, Pipeline, SpansetExpr};
use crate::trace::TraceView;
use crate::value::Val;

/// A spanset during evaluation: spans (sorted indices into the trace) and
/// what the pipeline attached to it so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Set {
    pub spans: Vec<usize>,
    pub by: Vec<(String, crate::Static)>,
    pub aggregates: Vec<(String, crate::Static)>,
    /// Fields `select(...)` asked for; their values are read at the end.
    pub select: Vec<Field>,
}

pub(crate) fn evaluate(query: &Pipeline, trace: &TraceView<'_>) -> Vec<SpanSet> {
    let all = Set {
        spans: (0..trace.len()).collect(),
        ..Set::default()
    };
    run_pipeline(query, &all, trace)
        .into_iter()
        .filter(|set| !set.spans.is_empty())
        .map(|set| finish(set, trace))
        .collect()
}

fn run_pipeline(pipeline: &Pipeline, input: &Set, trace: &TraceView<'_>) -> Vec<Set> {
    let mut sets = eval_spanset(&pipeline.head, input, trace);
    for stage in &pipeline.stages {
        if sets.is_empty() {
            break;
        }
        sets = pipeline::run_stage(stage, sets, trace);
    }
    sets
}

/// The spansets a spanset expression yields for one input spanset. A filter
/// or an operator yields at most one, keeping the input's groups,
/// aggregates and selections; a parenthesised pipeline may yield several.
pub(crate) fn eval_spanset(expr: &SpansetExpr, input: &Set, trace: &TraceView<'_>) -> Vec<Set> {
    let spans = match expr {
        SpansetExpr::Filter(filter) => input
            .spans
            .iter()
            .copied()
            .filter(|&i| {
                trace.spans().get(i).is_some_and(|r| {
                    filter::eval(filter, &mut RecordView::new(r), Some(trace)) == filter::Tri::True
                })
            })
            .collect::<Vec<_>>(),
        SpansetExpr::Binary { op, lhs, rhs } => {
            // Both sides see the same input; their spansets are flattened
            // (as Tempo's SpansetOperation does).
            let lhs = flatten(eval_spanset(lhs, input, trace));
            let rhs = flatten(eval_spanset(rhs, input, trace));
            match spanset::combine(*op, &lhs, &rhs, trace) {
                Some(spans) => spans,
                None => return Vec::new(),
            }
        }
        SpansetExpr::Pipeline(pipeline) => return run_pipeline(pipeline, input, trace),
    };
    if spans.is_empty() {
        return Vec::new();
    }
    vec![Set {
        spans,
        by: input.by.clone(),
        aggregates: input.aggregates.clone(),
        select: input.select.clone(),
    }]
}

fn flatten(sets: Vec<Set>) -> Vec<usize> {
    let mut iter = sets.into_iter();
    let Some(first) = iter.next() else {
        return Vec::new();
    };
    iter.fold(first.spans, |acc, set| spanset::union(&acc, &set.spans))
}

fn finish(set: Set, trace: &TraceView<'_>) -> SpanSet {
    let selected = if set.select.is_empty() {
        Vec::new()
    } else {
        set.spans
            .iter()
            .filter_map(|&i| {
                let record = trace.spans().get(i)?;
                let values = set
                    .select
                    .iter()
                    .map(|field| {
                        let value =
                            filter::field_value(field, &mut RecordView::new(record), Some(trace))
                                .unwrap_or(Val::Nil)
                                .to_static();
                        (field.to_string(), value)
                    })
                    .collect();
                Some((i, values))
            })
            .collect()
    };
    SpanSet {
        spans: set.spans,
        by: set.by,
        aggregates: set.aggregates,
        selected,
    }
}
