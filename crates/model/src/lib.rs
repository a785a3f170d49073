//! The shared vocabulary of tracewarden: spans, log records, resources, scopes,
//! attribute values, trace and span ids, and the normalisation of older
//! OpenTelemetry semantic conventions and Zipkin tags onto current names.
//!
//! This crate does no I/O. Receivers (`tracewarden-ingest`) decode wire
//! formats into a [`Batch`], the store (`tracewarden-store`) makes it durable,
//! and everything downstream (query, detection, alerts) reads these types.
//!
//! A [`Batch`] keeps the OTLP hierarchy (resource -> scope -> spans), so the
//! resource and scope of many spans are stored once and shared by [`Arc`].
//!
//! ```
//! use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, TraceId, normalise};
//!
//! let mut span = Span::new(TraceId::from_bytes([1; 16]), SpanId::from_bytes([2; 8]), "GET /login");
//! span.kind = tracewarden_model::SpanKind::Server;
//! span.attributes.push(KeyValue::new("http.status_code", AnyValue::Int(401)));
//! normalise::span(&mut span);
//! assert_eq!(span.attribute("http.response.status_code"), Some(&AnyValue::Int(401)));
//! assert_eq!(span.original_attributes[0].key, "http.status_code");
//! ```
//!
//! [`Arc`]: std::sync::Arc

pub mod batch;
pub mod credential;
pub mod ids;
pub mod log;
pub mod memo;
pub mod normalise;
pub mod record;
pub mod rng;
pub mod semconv;
pub mod span;
pub mod time;
pub mod value;

pub use batch::{Batch, Resource, ResourceLogs, ResourceSpans, Scope, ScopeLogs, ScopeSpans};
pub use ids::{IdError, SpanId, TraceId};
pub use log::LogRecord;
pub use memo::{AttributeKey, AttributeMemo, RecordView, VerdictSlot};
pub use record::{LogEntry, Records, SpanRecord, Trace};
pub use span::{Event, Link, Span, SpanKind, Status, StatusCode};
pub use value::{AnyValue, KeyValue, MAX_DESERIALIZE_DEPTH, Str, find_attribute};
