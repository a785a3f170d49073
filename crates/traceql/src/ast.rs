//! The syntax tree of a parsed query, and its canonical text form.

use std::fmt;
use tracewarden_model::{AttributeKey, VerdictSlot};

use crate::pattern::Pattern;
use crate::value::{CompareOp, Static, ValueType, write_quoted};

/// A built-in field of a span, trace, event, link or instrumentation scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Intrinsic {
    /// `name`, `span:name`
    Name,
    /// `status`, `span:status`
    Status,
    /// `statusMessage`, `span:statusMessage`
    StatusMessage,
    /// `kind`, `span:kind`
    Kind,
    /// `duration`, `span:duration`
    Duration,
    /// `span:id` (hex)
    SpanId,
    /// `span:parentID` (hex; nil for a root span)
    ParentId,
    /// `rootName`, `trace:rootName`
    RootName,
    /// `rootServiceName`, `trace:rootService`
    RootServiceName,
    /// `traceDuration`, `trace:duration`
    TraceDuration,
    /// `trace:id` (hex)
    TraceId,
    /// `event:name`
    EventName,
    /// `event:timeSinceStart`
    EventTimeSinceStart,
    /// `link:traceID`
    LinkTraceId,
    /// `link:spanID`
    LinkSpanId,
    /// `instrumentation:name`
    InstrumentationName,
    /// `instrumentation:version`
    InstrumentationVersion,
}

impl Intrinsic {
    /// The canonical (scoped where Tempo has a scoped form) TraceQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::RootName => "rootName",
            Intrinsic::RootServiceName => "rootServiceName",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::EventName => "event:name",
            Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
            Intrinsic::LinkTraceId => "link:traceID",
            Intrinsic::LinkSpanId => "link:spanID",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
        }
    }

    /// Whether the value depends on other spans of the trace (its root, its
    /// extent), so a span alone cannot decide it.
    pub fn is_trace_level(self) -> bool {
        matches!(
            self,
            Intrinsic::RootName | Intrinsic::RootServiceName | Intrinsic::TraceDuration
        )
    }

    pub(crate) fn value_type(self) -> ValueType {
        match self {
            Intrinsic::Status => ValueType::Status,
            Intrinsic::Kind => ValueType::Kind,
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart => {
                ValueType::Duration
            }
            _ => ValueType::Str,
        }
    }

    /// The unscoped name (`name`, `duration`, ...) or the scoped one
    /// (`span:name`, `trace:rootService`, ...).
    pub(crate) fn lookup(scope: Option<&str>, name: &str) -> Option<Intrinsic> {
        Some(match (scope, name) {
            (None | Some("span"), "name") => Intrinsic::Name,
            (None | Some("span"), "status") => Intrinsic::Status,
            (None | Some("span"), "statusMessage") => Intrinsic::StatusMessage,
            (None | Some("span"), "kind") => Intrinsic::Kind,
            (None | Some("span"), "duration") => Intrinsic::Duration,
            (Some("span"), "id") => Intrinsic::SpanId,
            (Some("span"), "parentID") => Intrinsic::ParentId,
            (None, "rootName") | (Some("trace"), "rootName") => Intrinsic::RootName,
            (None, "rootServiceName") | (Some("trace"), "rootService") => {
                Intrinsic::RootServiceName
            }
            (None, "traceDuration") | (Some("trace"), "duration") => Intrinsic::TraceDuration,
            (Some("trace"), "id") => Intrinsic::TraceId,
            (Some("event"), "name") => Intrinsic::EventName,
            (Some("event"), "timeSinceStart") => Intrinsic::EventTimeSinceStart,
            (Some("link"), "traceID") => Intrinsic::LinkTraceId,
            (Some("link"), "spanID") => Intrinsic::LinkSpanId,
            (Some("instrumentation"), "name") => Intrinsic::InstrumentationName,
            (Some("instrumentation"), "version") => Intrinsic::InstrumentationVersion,
            _ => return None,
        })
    }
}

/// Where an attribute is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeScope {
    /// `span.x`
    Span,
    /// `resource.x`
    Resource,
    /// `.x`: the span attribute when the span has it, else the resource's.
    Unscoped,
    /// `event.x`: an attribute of one of the span's events.
    Event,
    /// `link.x`: an attribute of one of the span's links.
    Link,
    /// `instrumentation.x`: an attribute of the instrumentation scope.
    Instrumentation,
}

impl AttributeScope {
    pub fn prefix(self) -> &'static str {
        match self {
            AttributeScope::Span => "span.",
            AttributeScope::Resource => "resource.",
            AttributeScope::Unscoped => ".",
            AttributeScope::Event => "event.",
            AttributeScope::Link => "link.",
            AttributeScope::Instrumentation => "instrumentation.",
        }
    }
}

/// A field a filter reads from a span.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Intrinsic(Intrinsic),
    /// `name` carries the slot detection's remembered lookups use
    /// ([`tracewarden_model::memo`]); it compares as the name alone.
    Attribute {
        scope: AttributeScope,
        name: AttributeKey,
    },
}

impl Field {
    /// Whether the field takes one value per event or link of the span
    /// (a comparison holds when it holds for one of them).
    pub fn is_per_event_or_link(&self) -> bool {
        match self {
            Field::Intrinsic(i) => matches!(
                i,
                Intrinsic::EventName
                    | Intrinsic::EventTimeSinceStart
                    | Intrinsic::LinkTraceId
                    | Intrinsic::LinkSpanId
            ),
            Field::Attribute { scope, .. } => {
                matches!(scope, AttributeScope::Event | AttributeScope::Link)
            }
        }
    }

    pub fn is_trace_level(&self) -> bool {
        matches!(self, Field::Intrinsic(i) if i.is_trace_level())
    }
}

/// Whether an attribute name can be written without quotes (the lexer's
/// attribute characters), so Display can print what parses back.
fn plain_attribute_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('"') && name.chars().all(crate::lexer::is_attribute_char)
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Intrinsic(i) => f.write_str(i.as_str()),
            Field::Attribute { scope, name } => {
                f.write_str(scope.prefix())?;
                if plain_attribute_name(name) {
                    f.write_str(name)
                } else {
                    write_quoted(f, name)
                }
            }
        }
    }
}

/// A boolean expression inside `{ }`.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Const(bool),
    Compare {
        field: Field,
        op: CompareOp,
        value: Static,
        /// Compiled at parse time for `=~` and `!~`, anchored at both ends.
        regex: Option<Pattern>,
        /// Where the detection engine remembers this comparison's verdict
        /// on the span it evaluates (`tracewarden_model::memo`).
        verdict: VerdictSlot,
    },
    /// A bare field: true when it holds the boolean `true`.
    Truthy(Field),
    Not(Box<Expr>),
    /// `a && b && ...`, flat (at least two operands) so long chains do not
    /// make a deep tree.
    And(Vec<Expr>),
    /// `a || b || ...`, flat like `And`.
    Or(Vec<Expr>),
}

/// An operator between two spanset expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpansetOp {
    And,
    Or,
    Child,
    Descendant,
    Parent,
    Ancestor,
    Sibling,
    NotChild,
    NotDescendant,
    NotParent,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionDescendant,
    UnionParent,
    UnionAncestor,
    UnionSibling,
}

impl SpansetOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SpansetOp::And => "&&",
            SpansetOp::Or => "||",
            SpansetOp::Child => ">",
            SpansetOp::Descendant => ">>",
            SpansetOp::Parent => "<",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Sibling => "~",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotSibling => "!~",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionSibling => "&~",
        }
    }

    /// Binding strength: structural operators bind tighter than `&&`, which
    /// binds tighter than `||` (as in Tempo's grammar).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            SpansetOp::Or => 1,
            SpansetOp::And => 2,
            _ => 3,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum SpansetExpr {
    Filter(Expr),
    Binary {
        op: SpansetOp,
        lhs: Box<SpansetExpr>,
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline, `({ a } | count() > 1)`.
    Pipeline(Box<Pipeline>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggregateKind {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

impl AggregateKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Count => "count",
            AggregateKind::Avg => "avg",
            AggregateKind::Min => "min",
            AggregateKind::Max => "max",
            AggregateKind::Sum => "sum",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Aggregate {
    pub kind: AggregateKind,
    /// `None` only for `count()`.
    pub field: Option<Field>,
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}({field})", self.kind.as_str()),
            None => write!(f, "{}()", self.kind.as_str()),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Stage {
    Spanset(SpansetExpr),
    Scalar {
        aggregate: Aggregate,
        op: CompareOp,
        value: Static,
    },
    By(Vec<Field>),
    Select(Vec<Field>),
    Coalesce,
}

#[derive(Clone, Debug)]
pub(crate) struct Pipeline {
    pub head: SpansetExpr,
    pub stages: Vec<Stage>,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(b) => write!(f, "{b}"),
            Expr::Compare {
                field, op, value, ..
            } => write!(f, "{field} {op} {value}"),
            Expr::Truthy(field) => write!(f, "{field}"),
            // Operands of `!`, `&&`, `||` are parenthesised unless atomic, so
            // the printed form never depends on precedence rules.
            Expr::Not(inner) => {
                f.write_str("!")?;
                write_operand(f, inner)
            }
            Expr::And(operands) => write_joined(f, operands, " && "),
            Expr::Or(operands) => write_joined(f, operands, " || "),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, operands: &[Expr], joiner: &str) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(joiner)?;
        }
        write_operand(f, operand)?;
    }
    Ok(())
}

fn write_operand(f: &mut fmt::Formatter<'_>, expr: &Expr) -> fmt::Result {
    match expr {
        Expr::Const(_) | Expr::Truthy(_) | Expr::Not(_) => write!(f, "{expr}"),
        _ => write!(f, "({expr})"),
    }
}

impl fmt::Display for SpansetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpansetExpr::Filter(Expr::Const(true)) => f.write_str("{ }"),
            SpansetExpr::Filter(expr) => write!(f, "{{ {expr} }}"),
            SpansetExpr::Binary { op, lhs, rhs } => {
                write_spanset_operand(f, lhs)?;
                write!(f, " {} ", op.as_str())?;
                write_spanset_operand(f, rhs)
            }
            SpansetExpr::Pipeline(p) => write!(f, "({p})"),
        }
    }
}

fn write_spanset_operand(f: &mut fmt::Formatter<'_>, expr: &SpansetExpr) -> fmt::Result {
    match expr {
        SpansetExpr::Binary { .. } => write!(f, "({expr})"),
        _ => write!(f, "{expr}"),
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Spanset(e) => write!(f, "{e}"),
            Stage::Scalar {
                aggregate,
                op,
                value,
            } => write!(f, "{aggregate} {op} {value}"),
            Stage::By(fields) => write_fields(f, "by", fields),
            Stage::Select(fields) => write_fields(f, "select", fields),
            Stage::Coalesce => f.write_str("coalesce()"),
        }
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, name: &str, fields: &[Field]) -> fmt::Result {
    write!(f, "{name}(")?;
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{field}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.head)?;
        for stage in &self.stages {
            write!(f, " | {stage}")?;
        }
        Ok(())
    }
}
