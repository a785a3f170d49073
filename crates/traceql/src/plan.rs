//! What storage can use before evaluation: the conditions every matching
//! trace must satisfy on some span, and whether a query needs whole traces.

use crate::ast::{Expr, Intrinsic, Pipeline, SpansetExpr, SpansetOp, Stage};
use crate::value::{CompareOp, Static};
use crate::{Condition, Field};

/// Every span kind (`SpanKind` numbers 0 to 5).
pub(crate) const ALL_KINDS: u8 = 0b11_1111;

/// The kinds of span `filter` can be true on; see
/// [`crate::Query::span_kinds`]. Exact for `kind =`/`kind !=` under `&&`
/// and `||`; every kind for anything else. (A false comparison makes `&&`
/// false and leaves `||` to its other operands, and evaluation is true
/// only when the filter is, so an unknown operand changes nothing.)
pub(crate) fn span_kinds(filter: &Expr) -> u8 {
    match filter {
        Expr::Const(false) => 0,
        Expr::Compare {
            field: Field::Intrinsic(Intrinsic::Kind),
            op,
            value: Static::Kind(kind),
            ..
        } => {
            let bit = kind.bit();
            match op {
                CompareOp::Eq => bit,
                CompareOp::Ne => ALL_KINDS & !bit,
                _ => ALL_KINDS,
            }
        }
        Expr::And(operands) => operands
            .iter()
            .fold(ALL_KINDS, |kinds, operand| kinds & span_kinds(operand)),
        Expr::Or(operands) => operands
            .iter()
            .fold(0, |kinds, operand| kinds | span_kinds(operand)),
        _ => ALL_KINDS,
    }
}

/// Necessary conditions; see [`crate::Query::required_conditions`].
pub(crate) fn required_conditions(pipeline: &Pipeline) -> Vec<Vec<Condition>> {
    let mut out = Vec::new();
    required_in_pipeline(pipeline, &mut out);
    out
}

fn required_in_pipeline(pipeline: &Pipeline, out: &mut Vec<Vec<Condition>>) {
    required_in_spanset(&pipeline.head, out);
    // Every spanset filter stage must keep a span for a result to remain.
    for stage in &pipeline.stages {
        if let Stage::Spanset(expr) = stage {
            required_in_spanset(expr, out);
        }
    }
}

fn required_in_spanset(expr: &SpansetExpr, out: &mut Vec<Vec<Condition>>) {
    match expr {
        SpansetExpr::Filter(filter) => {
            let mut conjunction = Vec::new();
            conjuncts(filter, &mut conjunction);
            if !conjunction.is_empty() {
                out.push(conjunction);
            }
        }
        SpansetExpr::Binary { op, lhs, rhs } => match op {
            // Either side alone may match.
            SpansetOp::Or => {}
            // The negated relations yield rhs spans for which no lhs span
            // relates: lhs may match nothing at all.
            SpansetOp::NotChild
            | SpansetOp::NotDescendant
            | SpansetOp::NotParent
            | SpansetOp::NotAncestor
            | SpansetOp::NotSibling => required_in_spanset(rhs, out),
            _ => {
                required_in_spanset(lhs, out);
                required_in_spanset(rhs, out);
            }
        },
        SpansetExpr::Pipeline(pipeline) => required_in_pipeline(pipeline, out),
    }
}

/// The comparisons joined by top-level `&&`: each must hold on a matching
/// span. Conditions on trace-level intrinsics are left out (no single span
/// holds them).
fn conjuncts(expr: &Expr, out: &mut Vec<Condition>) {
    match expr {
        Expr::And(operands) => {
            for operand in operands {
                conjuncts(operand, out);
            }
        }
        Expr::Compare {
            field, op, value, ..
        } if !field.is_trace_level() => out.push(Condition {
            field: field.clone(),
            op: *op,
            value: value.clone(),
        }),
        _ => {}
    }
}

/// Whether evaluation needs the whole trace; see
/// [`crate::Query::needs_whole_trace`].
pub(crate) fn needs_whole_trace(pipeline: &Pipeline) -> bool {
    let SpansetExpr::Filter(head) = &pipeline.head else {
        return true;
    };
    if uses_trace_level(head) {
        return true;
    }
    // Stages only narrow, group or measure the spans the first filter kept,
    // so running them over just those spans gives the same spansets. A
    // later filter is a plain filter (no structure) for that to hold.
    pipeline.stages.iter().any(|stage| match stage {
        Stage::Spanset(SpansetExpr::Filter(expr)) => uses_trace_level(expr),
        Stage::Spanset(_) => true,
        Stage::Scalar { aggregate, .. } => {
            aggregate.field.as_ref().is_some_and(Field::is_trace_level)
        }
        Stage::By(fields) | Stage::Select(fields) => fields.iter().any(Field::is_trace_level),
        Stage::Coalesce => false,
    })
}

fn uses_trace_level(expr: &Expr) -> bool {
    match expr {
        Expr::Const(_) => false,
        Expr::Compare { field, .. } | Expr::Truthy(field) => field.is_trace_level(),
        Expr::Not(inner) => uses_trace_level(inner),
        Expr::And(operands) | Expr::Or(operands) => operands.iter().any(uses_trace_level),
    }
}

/// Every spanset filter of the query, in order.
pub(crate) fn leaf_filters(pipeline: &Pipeline) -> Vec<Expr> {
    let mut out = Vec::new();
    leaves_in_pipeline(pipeline, &mut out);
    out
}

fn leaves_in_pipeline(pipeline: &Pipeline, out: &mut Vec<Expr>) {
    leaves_in_spanset(&pipeline.head, out);
    for stage in &pipeline.stages {
        if let Stage::Spanset(expr) = stage {
            leaves_in_spanset(expr, out);
        }
    }
}

fn leaves_in_spanset(expr: &SpansetExpr, out: &mut Vec<Expr>) {
    match expr {
        SpansetExpr::Filter(filter) => out.push(filter.clone()),
        SpansetExpr::Binary { lhs, rhs, .. } => {
            leaves_in_spanset(lhs, out);
            leaves_in_spanset(rhs, out);
        }
        SpansetExpr::Pipeline(pipeline) => leaves_in_pipeline(pipeline, out),
    }
}

/// Every field the query reads, each once, in the order first written.
pub(crate) fn fields(pipeline: &Pipeline) -> Vec<Field> {
    let mut out = Vec::new();
    fields_in_pipeline(pipeline, &mut out);
    out
}

fn push_field(field: &Field, out: &mut Vec<Field>) {
    if !out.contains(field) {
        out.push(field.clone());
    }
}

fn fields_in_pipeline(pipeline: &Pipeline, out: &mut Vec<Field>) {
    fields_in_spanset(&pipeline.head, out);
    for stage in &pipeline.stages {
        match stage {
            Stage::Spanset(expr) => fields_in_spanset(expr, out),
            Stage::Scalar { aggregate, .. } => {
                if let Some(field) = &aggregate.field {
                    push_field(field, out);
                }
            }
            Stage::By(fields) | Stage::Select(fields) => {
                for field in fields {
                    push_field(field, out);
                }
            }
            Stage::Coalesce => {}
        }
    }
}

fn fields_in_spanset(expr: &SpansetExpr, out: &mut Vec<Field>) {
    match expr {
        SpansetExpr::Filter(filter) => fields_in_expr(filter, out),
        SpansetExpr::Binary { lhs, rhs, .. } => {
            fields_in_spanset(lhs, out);
            fields_in_spanset(rhs, out);
        }
        SpansetExpr::Pipeline(pipeline) => fields_in_pipeline(pipeline, out),
    }
}

fn fields_in_expr(expr: &Expr, out: &mut Vec<Field>) {
    match expr {
        Expr::Const(_) => {}
        Expr::Compare { field, .. } | Expr::Truthy(field) => push_field(field, out),
        Expr::Not(inner) => fields_in_expr(inner, out),
        Expr::And(operands) | Expr::Or(operands) => {
            for operand in operands {
                fields_in_expr(operand, out);
            }
        }
    }
}
