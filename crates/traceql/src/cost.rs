//! Evaluation order of a spanset filter: `&&` and `||` operands sorted so
//! the cheap tests run first and expensive ones (regexes, per-event
//! scans) only on spans the cheap ones did not already decide.
//!
//! Both operators are commutative in TraceQL's three-valued logic (false
//! and unknown combine the same whatever the order), and comparisons have
//! no side effects, so the order changes the time taken, never the result.
//! Only the copy used by [`crate::Query::matches_span`] is reordered; the
//! query's text and canonical form keep the order written.

use crate::CompareOp;
use crate::ast::{AttributeScope, Expr, Field, Intrinsic};

/// A rough relative cost of evaluating `expr` on one span.
pub(crate) fn cost(expr: &Expr) -> u32 {
    match expr {
        Expr::Const(_) => 0,
        Expr::Compare {
            field, op, regex, ..
        } => {
            let lookup = field_cost(field);
            let test = match (regex, op) {
                (Some(_), _) => 40,
                (None, CompareOp::Eq | CompareOp::Ne) => 1,
                (None, _) => 2,
            };
            lookup + test
        }
        Expr::Truthy(field) => field_cost(field) + 1,
        Expr::Not(inner) => cost(inner),
        Expr::And(operands) | Expr::Or(operands) => operands.iter().map(cost).sum(),
    }
}

fn field_cost(field: &Field) -> u32 {
    match field {
        Field::Intrinsic(
            Intrinsic::Kind | Intrinsic::Status | Intrinsic::Duration | Intrinsic::ParentId,
        ) => 1,
        Field::Intrinsic(
            Intrinsic::EventName
            | Intrinsic::EventTimeSinceStart
            | Intrinsic::LinkTraceId
            | Intrinsic::LinkSpanId,
        ) => 20,
        Field::Intrinsic(_) => 3,
        // A linear scan of the span's attributes (a dozen or so).
        Field::Attribute {
            scope: AttributeScope::Span | AttributeScope::Resource,
            ..
        } => 6,
        // The span's attributes, then the resource's.
        Field::Attribute {
            scope: AttributeScope::Unscoped,
            ..
        } => 10,
        Field::Attribute { .. } => 20,
    }
}

/// `expr` with the operands of every `&&` and `||` in increasing cost
/// (stable: equal costs keep the order written).
pub(crate) fn ordered(expr: &Expr) -> Expr {
    match expr {
        Expr::And(operands) => Expr::And(sorted(operands)),
        Expr::Or(operands) => Expr::Or(sorted(operands)),
        Expr::Not(inner) => Expr::Not(Box::new(ordered(inner))),
        other => other.clone(),
    }
}

fn sorted(operands: &[Expr]) -> Vec<Expr> {
    let mut out: Vec<(u32, Expr)> = operands
        .iter()
        .map(|e| {
            let e = ordered(e);
            (cost(&e), e)
        })
        .collect();
    out.sort_by_key(|(c, _)| *c);
    out.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanKind, SpanRecord, TraceId};

    use crate::ast::SpansetExpr;

    fn head(query: &str) -> super::Expr {
        let pipeline = crate::parser::parse(query).unwrap();
        match pipeline.head {
            SpansetExpr::Filter(expr) => expr,
            _ => panic!("not a filter"),
        }
    }

    #[test]
    fn cheap_tests_first_written_order_kept() {
        let query = r#"{ span.http.route =~ "(?i).*login.*" && kind = server && span.http.response.status_code = 401 }"#;
        let ordered = super::ordered(&head(query));
        assert_eq!(
            ordered.to_string(),
            r#"(kind = server) && (span.http.response.status_code = 401) && (span.http.route =~ "(?i).*login.*")"#
        );
        // The query keeps the order written.
        assert_eq!(
            crate::parse(query).unwrap().to_string(),
            r#"{ (span.http.route =~ "(?i).*login.*") && (kind = server) && (span.http.response.status_code = 401) }"#
        );
    }

    #[test]
    fn the_order_never_changes_a_result() {
        let queries = [
            r#"{ span.a =~ "x.*" && kind = server && span.b = 1 }"#,
            r#"{ span.a =~ "x.*" || span.b = 1 || status = error }"#,
            r#"{ !(span.a =~ "x.*" && span.b != nil) || (kind = client && span.c > 2) }"#,
            r#"{ .a = "x" && span.b = nil && resource.service.name =~ "s.*" }"#,
        ];
        let mut spans = Vec::new();
        for kind in [SpanKind::Server, SpanKind::Client] {
            for a in [None, Some("xy"), Some("zz")] {
                for b in [None, Some(1), Some(3)] {
                    let mut span = Span::new(
                        TraceId::from_bytes([1; 16]),
                        SpanId::from_bytes([1; 8]),
                        "s",
                    );
                    span.kind = kind;
                    if let Some(a) = a {
                        span.attributes.push(KeyValue::new("a", a));
                    }
                    if let Some(b) = b {
                        span.attributes.push(KeyValue::new("b", AnyValue::Int(b)));
                        span.attributes.push(KeyValue::new("c", AnyValue::Int(b)));
                    }
                    spans.push(SpanRecord {
                        resource: Arc::default(),
                        scope: Arc::default(),
                        span: span.into(),
                    });
                }
            }
        }
        for query in queries {
            let written = head(query);
            let ordered = super::ordered(&written);
            for span in &spans {
                assert_eq!(
                    crate::eval::filter::eval(
                        &written,
                        &mut tracewarden_model::RecordView::new(span),
                        None
                    ),
                    crate::eval::filter::eval(
                        &ordered,
                        &mut tracewarden_model::RecordView::new(span),
                        None
                    ),
                    "{query}"
                );
            }
        }
    }
}
