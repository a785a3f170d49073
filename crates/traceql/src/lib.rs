//! TraceQL: the trace query language of Grafana Tempo.
//!
//! tracewarden uses TraceQL for search (the executor in `tracewarden-search`)
//! and for detection rules. This crate holds the whole language:
//!
//! - [`parse`] turns text into a [`Query`] (lexer, recursive-descent parser,
//!   parse-time type checks, regexes compiled once), or a [`ParseError`]
//!   that says where, what was expected and what was found. Features of
//!   TraceQL that are not implemented are refused with
//!   [`ParseErrorKind::Unsupported`], never ignored.
//! - [`Query::matches_span`] decides one span against the first spanset
//!   filter without allocating (the per-span hot path of detection and of
//!   pre-filtering).
//! - [`Query::required_conditions`] and [`Query::needs_whole_trace`] tell
//!   storage what it can push down and whether candidate spans suffice.
//! - [`Query::evaluate`] runs the query over a [`TraceView`] (a trace with
//!   its parent index) and returns the [`SpanSet`]s it yields, with the
//!   groups, aggregates and selected values of the pipeline.
//!
//! The supported language, with examples and the list of refusals, is in
//! `docs/TRACEQL.md`. Semantics follow Tempo; where tracewarden chose, the
//! item's documentation says so.
//!
//! ```
//! use std::sync::Arc;
//! use tracewarden_model::{KeyValue, Span, SpanId, SpanRecord, TraceId};
//! use tracewarden_traceql::{TraceView, parse};
//!
//! let query = parse(r#"{ span.http.route = "/login" && status = error } | count() > 0"#).unwrap();
//! let mut span = Span::new(TraceId::from_bytes([1; 16]), SpanId::from_bytes([2; 8]), "POST /login");
//! span.attributes.push(KeyValue::new("http.route", "/login"));
//! span.status.code = tracewarden_model::StatusCode::Error;
//! let record = SpanRecord::new(Arc::default(), Arc::default(), span);
//! assert!(query.matches_span(&record));
//!
//! let spans = [record];
//! let found = query.evaluate(&TraceView::new(&spans));
//! assert_eq!(found[0].spans, vec![0]);
//! ```

mod ast;
mod cost;
mod error;
mod eval;
mod lexer;
mod parser;
mod pattern;
mod plan;
mod trace;
mod value;

use std::fmt;

use tracewarden_model::{RecordView, SpanRecord};

pub use ast::{AttributeScope, Field, Intrinsic};
pub use error::{ParseError, ParseErrorKind};
pub use trace::TraceView;
pub use value::{CompareOp, Static};

/// Longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 64 * 1024;

/// Deepest nesting of parentheses, braces, `!` and spanset operators
/// accepted, so hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 64;

/// Parses a TraceQL query.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    let pipeline = parser::parse(text)?;
    let needs_whole_trace = plan::needs_whole_trace(&pipeline);
    let leaves = plan::leaf_filters(&pipeline)
        .iter()
        .map(cost::ordered)
        .collect();
    let span_filter = match (&pipeline.head, needs_whole_trace) {
        (ast::SpansetExpr::Filter(head), false) => Some(cost::ordered(head)),
        _ => None,
    };
    Ok(Query {
        pipeline,
        needs_whole_trace,
        leaves,
        span_filter,
    })
}

/// A parsed TraceQL query. `Display` prints a canonical form that parses
/// back to the same query.
#[derive(Clone, Debug)]
pub struct Query {
    pipeline: ast::Pipeline,
    needs_whole_trace: bool,
    /// Every spanset filter, for `matches_span` on whole-trace queries,
    /// cheap tests first ([`cost`]).
    leaves: Vec<ast::Expr>,
    /// For span-level queries: the first filter, cheap tests first.
    span_filter: Option<ast::Expr>,
}

impl Query {
    /// Whether evaluation needs every span of the trace: structural
    /// operators, `&&`/`||` between spansets, trace-level intrinsics
    /// (`rootName`, `rootServiceName`, `traceDuration`, `trace:rootName`,
    /// `trace:rootService`, `trace:duration`), a parenthesised pipeline.
    ///
    /// When false the query is one spanset filter followed by a pipeline
    /// whose stages are aggregates, `by`, `select`, `coalesce` or further
    /// plain spanset filters (tracewarden's choice: `{ a } | { b }` keeps
    /// the spans passing both, so candidate spans suffice), and evaluating it
    /// over just the spans for which [`Query::matches_span`] holds gives the
    /// same result as over the whole trace.
    pub fn needs_whole_trace(&self) -> bool {
        self.needs_whole_trace
    }

    /// For queries where [`Query::needs_whole_trace`] is false: whether this
    /// span passes the first spanset filter.
    ///
    /// For the others: whether the span may pass one of the query's spanset
    /// filters, with conditions on trace-level intrinsics (which a span
    /// alone cannot decide) taken as possibly true. It is a pre-filter: no
    /// span of a matching trace's result is rejected, but a true answer
    /// does not mean the trace matches.
    ///
    /// Allocates nothing.
    pub fn matches_span(&self, span: &SpanRecord) -> bool {
        self.matches_view(&mut RecordView::new(span))
    }

    /// [`Query::matches_span`] on a span read through a view, whose memo
    /// (when it has one) the detection engine shares across its rules.
    pub fn matches_view(&self, view: &mut RecordView<'_, '_>) -> bool {
        if let Some(filter) = &self.span_filter {
            return eval::filter::eval(filter, view, None) == eval::filter::Tri::True;
        }
        self.leaves
            .iter()
            .any(|leaf| eval::filter::eval(leaf, view, None).possible())
    }

    /// The span kinds a span can have and satisfy [`Query::matches_view`]:
    /// bit `k` set for the kind numbered `k` (`SpanKind as u8`). A filter
    /// that pins the kind (`{ kind = server && ... }`) lets the detection
    /// engine pass over the spans of other kinds without evaluating it;
    /// anything it cannot read as such (a negation, a whole-trace query)
    /// allows every kind.
    pub fn span_kinds(&self) -> u8 {
        match &self.span_filter {
            Some(filter) => plan::span_kinds(filter),
            None => plan::ALL_KINDS,
        }
    }

    /// Necessary conditions for a trace to match, for storage to push down:
    /// each inner Vec is a conjunction that at least one span of every
    /// matching trace satisfies (the top-level `&&` comparisons of a spanset
    /// filter that must match for the query to match). Empty outer Vec: no
    /// such condition (`{ a } || { b }`, `{ }`, `{ a || b }`).
    ///
    /// Conditions on `event.`/`link.` attributes and on `event:`/`link:`
    /// intrinsics hold when one event (link) of the span satisfies them
    /// ([`Field::is_per_event_or_link`]). Regex conditions carry the
    /// pattern as written (not anchored; TraceQL matches it against the
    /// whole value). Trace-level intrinsics never appear.
    pub fn required_conditions(&self) -> Vec<Vec<Condition>> {
        plan::required_conditions(&self.pipeline)
    }

    /// Every field the query reads (filters, aggregates, `by`, `select`),
    /// each once: what a store must decode for it.
    pub fn fields(&self) -> Vec<Field> {
        plan::fields(&self.pipeline)
    }

    /// Evaluates the query over a trace: the spansets it yields (empty: no
    /// match).
    pub fn evaluate(&self, trace: &TraceView<'_>) -> Vec<SpanSet> {
        eval::evaluate(&self.pipeline, trace)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pipeline)
    }
}

/// A simple condition on one span: `field op value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: CompareOp,
    pub value: Static,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.field, self.op, self.value)
    }
}

/// One result spanset.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanSet {
    /// Indices into [`TraceView::spans`] of the matched spans, sorted, each
    /// once.
    pub spans: Vec<usize>,
    /// The `by()` group: field (as written canonically) and value.
    pub by: Vec<(String, Static)>,
    /// Aggregates computed by scalar filters, e.g. `("count()", Int(3))`,
    /// `("avg(duration)", Duration(..))`.
    pub aggregates: Vec<(String, Static)>,
    /// Per matched span (index), the values of the fields `select(...)`
    /// asked for (nil when absent).
    pub selected: Vec<(usize, Vec<(String, Static)>)>,
}
