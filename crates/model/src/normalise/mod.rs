//! Semantic-convention normalisation: maps older OpenTelemetry names and
//! Zipkin tags onto current names, keeping the originals.
//!
//! Senders use several generations of the conventions (`http.status_code`
//! and `http.response.status_code`, `net.peer.ip` and `client.address`) and
//! Zipkin tags. Ingest runs [`batch`] on every batch before it is made
//! durable, so rules and queries are written once, against current names.
//!
//! The contract, for spans, log records and resources:
//! - `attributes` end up with current names; values are converted to the
//!   type the current convention defines (`http.response.status_code` is an
//!   integer, also when a Zipkin tag carried `"401"`).
//! - Every legacy attribute that was mapped leaves `attributes` and is kept,
//!   exactly as received, in `original_attributes`; so is a current
//!   attribute whose value was converted (a string port made an integer).
//! - A current attribute already present wins over one derived from a
//!   legacy attribute; the legacy attribute is still moved.
//! - No attribute is ever lost, and normalising twice is normalising once.
//! - On server spans without `client.address`, it is derived from the
//!   forwarding headers, else the socket peer (see `client`).
//!
//! The mapping table is in `docs/NORMALISATION.md`. Scope attributes and the
//! attributes of events and links are left as they are: those types keep no
//! originals, and the conventions renamed nothing there that rules read.
//!
//! Cost: a span with current names only takes one pass over its attribute
//! keys, each checked by one `match` on the key, and allocates nothing.
//!
//! ```
//! use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanKind, TraceId, normalise};
//!
//! let mut span = Span::new(TraceId::from_bytes([1; 16]), SpanId::from_bytes([2; 8]), "GET");
//! span.kind = SpanKind::Server;
//! span.attributes.push(KeyValue::new("http.target", "/login?next=/admin"));
//! span.attributes.push(KeyValue::new("http.request.header.x-forwarded-for", "203.0.113.7, 10.0.0.2"));
//! normalise::span(&mut span);
//! assert_eq!(span.attribute("url.path"), Some(&AnyValue::from("/login")));
//! assert_eq!(span.attribute("url.query"), Some(&AnyValue::from("next=/admin")));
//! assert_eq!(span.attribute("client.address"), Some(&AnyValue::from("203.0.113.7")));
//! assert_eq!(span.original_attributes[0].key, "http.target");
//! ```

mod client;
mod convert;
mod current;
mod keys;
mod rewrite;
mod url;

use std::sync::Arc;

use crate::batch::{Batch, Resource};
use crate::log::LogRecord;
use crate::span::{Span, SpanKind, Status, StatusCode};
use crate::value::{AnyValue, KeyValue};

use keys::{IntKind, Key, classify};

/// Whose attributes are normalised: some legacy names mean different current
/// names on server and client spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Span(SpanKind),
    Log,
    Resource,
}

/// Maps a span's legacy attributes onto current names, keeping the
/// originals, and sets an unset status to error when a Zipkin `error` tag
/// says the span failed.
pub fn span(span: &mut Span) {
    let target = Target::Span(span.kind);
    if !needs_rewrite(&span.attributes, target) {
        return;
    }
    let outcome = rewrite::attributes(&mut span.attributes, &mut span.original_attributes, target);
    // Zipkin's decoder may already have set the status from the tag, and an
    // explicit OK or error from the sender is not overridden.
    if let Some(message) = outcome.error
        && span.status.code == StatusCode::Unset
    {
        span.status = Status {
            code: StatusCode::Error,
            message,
        };
    }
}

/// Maps a resource's legacy attributes (`deployment.environment`, ...) onto
/// current names, keeping the originals.
pub fn resource(resource: &mut Resource) {
    if needs_rewrite(&resource.attributes, Target::Resource) {
        rewrite::attributes(
            &mut resource.attributes,
            &mut resource.original_attributes,
            Target::Resource,
        );
    }
}

/// Maps a log record's legacy attributes onto current names, keeping the
/// originals. Log records have no span kind, so names whose meaning depends
/// on it (`net.peer.name`, `net.host.*`) stay as they are.
pub fn log(record: &mut LogRecord) {
    if needs_rewrite(&record.attributes, Target::Log) {
        rewrite::attributes(
            &mut record.attributes,
            &mut record.original_attributes,
            Target::Log,
        );
    }
}

/// Normalises every resource, span and log record of a batch. Resources are
/// shared (`Arc`): one is copied only when it has something to change.
pub fn batch(batch: &mut Batch) {
    for resource_spans in &mut batch.resource_spans {
        normalise_shared(&mut resource_spans.resource);
        for scope_spans in &mut resource_spans.scope_spans {
            scope_spans.spans.iter_mut().for_each(span);
        }
    }
    for resource_logs in &mut batch.resource_logs {
        normalise_shared(&mut resource_logs.resource);
        for scope_logs in &mut resource_logs.scope_logs {
            scope_logs.log_records.iter_mut().for_each(log);
        }
    }
}

fn normalise_shared(shared: &mut Arc<Resource>) {
    if needs_rewrite(&shared.attributes, Target::Resource) {
        resource(Arc::make_mut(shared));
    }
}

/// The hot path: whether any attribute needs rewriting. One `match` per key;
/// returns at the first legacy name.
fn needs_rewrite(attributes: &[KeyValue], target: Target) -> bool {
    let mut has_client_address = false;
    let mut has_client_hint = false;
    for kv in attributes {
        match classify(&kv.key) {
            None => {}
            Some(Key::Legacy(rule)) if rule.applies(target) => return true,
            Some(Key::Int(kind))
                if !matches!(kv.value, AnyValue::Int(_))
                    && int_value(kind, &kv.value).is_some() =>
            {
                return true;
            }
            Some(Key::Legacy(_) | Key::Int(_)) => {}
            Some(Key::ClientAddress) => {
                if let AnyValue::Str(address) = &kv.value
                    && client::unmapped_ipv4(address).is_some()
                {
                    return true;
                }
                has_client_address = true;
            }
            Some(Key::ClientHint) => has_client_hint = true,
        }
    }
    target == Target::Span(SpanKind::Server) && has_client_hint && !has_client_address
}

fn int_value(kind: IntKind, value: &AnyValue) -> Option<i64> {
    match kind {
        IntKind::Any => convert::to_int(value),
        IntKind::Port => convert::to_port(value),
    }
}
