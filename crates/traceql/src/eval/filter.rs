//! Evaluating a spanset filter's boolean expression on one span.
//!
//! Evaluation is three-valued so [`crate::Query::matches_span`] can run
//! without the trace: a trace-level intrinsic (rootName, traceDuration, ...)
//! is `Unknown` on a span alone, and `Unknown` propagates through `!`, `&&`
//! and `||` as in Kleene logic. With a [`TraceView`] nothing is unknown.

use tracewarden_model::{RecordView, find_attribute};

use crate::ast::{AttributeScope, Expr, Field, Intrinsic};
use crate::pattern::Pattern;
use crate::trace::TraceView;
use crate::value::{CompareOp, Static, Val, compare};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tri {
    False = 0,
    True = 1,
    Unknown = 2,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }

    fn from_u8(value: u8) -> Tri {
        match value {
            0 => Tri::False,
            1 => Tri::True,
            _ => Tri::Unknown,
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::True => Tri::False,
            Tri::Unknown => Tri::Unknown,
        }
    }

    /// True or unknown: the span may pass.
    pub(crate) fn possible(self) -> bool {
        self != Tri::False
    }
}

/// `view` is the span, read through the detection engine's memo when it
/// has one (`tracewarden_model::memo`).
pub(crate) fn eval<'a>(
    expr: &Expr,
    view: &mut RecordView<'a, '_>,
    trace: Option<&TraceView<'a>>,
) -> Tri {
    match expr {
        Expr::Not(inner) => operand(inner, view, trace).not(),
        Expr::And(operands) => {
            let mut result = Tri::True;
            for operand in operands {
                match self::operand(operand, view, trace) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::True => {}
                }
            }
            result
        }
        Expr::Or(operands) => {
            let mut result = Tri::False;
            for operand in operands {
                match self::operand(operand, view, trace) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::False => {}
                }
            }
            result
        }
        leaf => operand(leaf, view, trace),
    }
}

/// An operand of `&&`, `||` or `!`: a leaf is evaluated in place, a nested
/// expression by [`eval`]. Most operands are comparisons whose verdict the
/// memo already holds, and a call per operand cost more than the lookup
/// (~50 operands a span with the built-in pack).
#[inline(always)]
fn operand<'a>(expr: &Expr, view: &mut RecordView<'a, '_>, trace: Option<&TraceView<'a>>) -> Tri {
    match expr {
        Expr::Const(b) => Tri::from_bool(*b),
        Expr::Compare {
            field,
            op,
            value,
            regex,
            verdict,
        } => {
            // Rules repeat comparisons (`kind = server` in 22 of the pack's);
            // on a span alone a verdict depends on the comparison's text and
            // the span, so the engine's memo keeps it for the other rules.
            if trace.is_some() || !view.is_memoised() {
                return compare_field(field, *op, value, regex.as_ref(), view, trace);
            }
            if let Some(remembered) = view.verdict(verdict) {
                return Tri::from_u8(remembered);
            }
            let tri = compare_field(field, *op, value, regex.as_ref(), view, trace);
            view.remember_verdict(verdict, || format!("{field:?} {op:?} {value:?}"), tri as u8);
            tri
        }
        Expr::Truthy(field) => {
            compare_field(field, CompareOp::Eq, &Static::Bool(true), None, view, trace)
        }
        nested => eval(nested, view, trace),
    }
}

fn compare_field<'a>(
    field: &Field,
    op: CompareOp,
    value: &Static,
    regex: Option<&Pattern>,
    view: &mut RecordView<'a, '_>,
    trace: Option<&TraceView<'a>>,
) -> Tri {
    let rhs = value.as_val();
    let span = &view.record().span;
    // Fields with one value per event or link hold when one of them does.
    // A span without events (links) has the field absent.
    let per_item = |values: &mut dyn Iterator<Item = Val<'_>>| -> Tri {
        let mut any_item = false;
        for v in values {
            any_item = true;
            if compare(v, op, rhs, regex) {
                return Tri::True;
            }
        }
        Tri::from_bool(!any_item && compare(Val::Nil, op, rhs, regex))
    };
    match field {
        Field::Intrinsic(Intrinsic::EventName) => {
            per_item(&mut span.events.iter().map(|e| Val::Str(&e.name)))
        }
        Field::Intrinsic(Intrinsic::EventTimeSinceStart) => per_item(
            &mut span
                .events
                .iter()
                .map(|e| Val::Duration(e.time_unix_nano.saturating_sub(span.start_time_unix_nano))),
        ),
        Field::Intrinsic(Intrinsic::LinkTraceId) => {
            per_item(&mut span.links.iter().map(|l| Val::Id(l.trace_id.as_bytes())))
        }
        Field::Intrinsic(Intrinsic::LinkSpanId) => {
            per_item(&mut span.links.iter().map(|l| Val::Id(l.span_id.as_bytes())))
        }
        Field::Attribute {
            scope: AttributeScope::Event,
            name,
        } => per_item(
            &mut span
                .events
                .iter()
                .filter_map(|e| find_attribute(&e.attributes, name))
                .map(Val::from_any),
        ),
        Field::Attribute {
            scope: AttributeScope::Link,
            name,
        } => per_item(
            &mut span
                .links
                .iter()
                .filter_map(|l| find_attribute(&l.attributes, name))
                .map(Val::from_any),
        ),
        _ => match field_value(field, view, trace) {
            Some(lhs) => Tri::from_bool(compare(lhs, op, rhs, regex)),
            None => Tri::Unknown,
        },
    }
}

/// The value of a field on a span; `None` when it needs the trace and none
/// was given. For per-event and per-link fields, the first event or link
/// that has one (used by aggregates, `by` and `select`).
#[inline(always)]
pub(crate) fn field_value<'a>(
    field: &Field,
    view: &mut RecordView<'a, '_>,
    trace: Option<&TraceView<'a>>,
) -> Option<Val<'a>> {
    let record = view.record();
    let span = &record.span;
    let attr = |attrs: &'a [tracewarden_model::KeyValue], name: &str| -> Val<'a> {
        find_attribute(attrs, name).map_or(Val::Nil, Val::from_any)
    };
    Some(match field {
        Field::Intrinsic(i) => match i {
            Intrinsic::Name => Val::Str(&span.name),
            Intrinsic::Status => Val::Status(span.status.code),
            Intrinsic::StatusMessage => Val::Str(&span.status.message),
            Intrinsic::Kind => Val::Kind(span.kind),
            Intrinsic::Duration => Val::Duration(span.duration_nanos()),
            Intrinsic::SpanId => Val::Id(span.span_id.as_bytes()),
            Intrinsic::ParentId => span
                .parent_span_id
                .as_ref()
                .map_or(Val::Nil, |p| Val::Id(p.as_bytes())),
            Intrinsic::TraceId => Val::Id(span.trace_id.as_bytes()),
            Intrinsic::RootName => trace?.root_name().map_or(Val::Nil, Val::Str),
            Intrinsic::RootServiceName => trace?.root_service_name().map_or(Val::Nil, Val::Str),
            Intrinsic::TraceDuration => Val::Duration(trace?.duration_nanos()),
            Intrinsic::EventName => span.events.first().map_or(Val::Nil, |e| Val::Str(&e.name)),
            Intrinsic::EventTimeSinceStart => span.events.first().map_or(Val::Nil, |e| {
                Val::Duration(e.time_unix_nano.saturating_sub(span.start_time_unix_nano))
            }),
            Intrinsic::LinkTraceId => span
                .links
                .first()
                .map_or(Val::Nil, |l| Val::Id(l.trace_id.as_bytes())),
            Intrinsic::LinkSpanId => span
                .links
                .first()
                .map_or(Val::Nil, |l| Val::Id(l.span_id.as_bytes())),
            Intrinsic::InstrumentationName => Val::Str(&record.scope.name),
            Intrinsic::InstrumentationVersion => Val::Str(&record.scope.version),
        },
        Field::Attribute { scope, name } => match scope {
            AttributeScope::Span => view.span_attribute(name).map_or(Val::Nil, Val::from_any),
            AttributeScope::Resource => view
                .resource_attribute(name)
                .map_or(Val::Nil, Val::from_any),
            AttributeScope::Unscoped => match view.span_attribute(name) {
                Some(v) => Val::from_any(v),
                None => view
                    .resource_attribute(name)
                    .map_or(Val::Nil, Val::from_any),
            },
            AttributeScope::Instrumentation => attr(&record.scope.attributes, name),
            AttributeScope::Event => span
                .events
                .iter()
                .find_map(|e| find_attribute(&e.attributes, name))
                .map_or(Val::Nil, Val::from_any),
            AttributeScope::Link => span
                .links
                .iter()
                .find_map(|l| find_attribute(&l.attributes, name))
                .map_or(Val::Nil, Val::from_any),
        },
    })
}
