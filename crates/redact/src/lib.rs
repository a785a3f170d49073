//! Redaction before the write-ahead log: secrets and personal data in
//! spans and log records are dropped, masked or replaced by a keyed hash
//! before anything is written to disk (data minimisation).
//!
//! The ingest pipeline runs [`Redactor::batch`] on every batch after
//! semantic-convention normalisation (so rules see current attribute names)
//! and before `Store::append`. It covers span, resource, scope, event and
//! link attributes, the legacy attributes normalisation kept, span names,
//! status messages, event names, and log bodies (strings and structured)
//! and attributes.
//!
//! A rule matches attribute keys (exact, glob or regex), a value detector
//! ([`Detector`]), or both, and acts on what it matched ([`Action`]):
//! a key rule on the whole value, a detector only on the part it found
//! (`password=hunter2&next=/` keeps `next=/`), so detection rules that read
//! the rest of the value still work. Built-in rules ([`builtin`]) are on by
//! default; docs/REDACTION.md lists them.
//!
//! Cost: keys are decided once and cached; each string value takes one
//! Aho-Corasick scan over the triggers of all detectors (plus a digit count
//! for card numbers), and nothing is allocated unless something matches.
//! A long value found clean is remembered for the rest of its batch, whose
//! spans repeat it (user agents, URLs, statements), and looked up instead.
//!
//! ```
//! use tracewarden_model::{AnyValue, Batch, KeyValue, ResourceSpans, ScopeSpans, Span, SpanId, TraceId};
//! use tracewarden_redact::{RedactionConfig, Redactor};
//!
//! let mut span = Span::new(TraceId::from_bytes([1; 16]), SpanId::from_bytes([2; 8]), "GET /login");
//! span.attributes.push(KeyValue::new("url.query", "user=ann&password=hunter2&next=/"));
//! span.attributes.push(KeyValue::new("http.request.header.authorization", "Bearer abc.def.ghi"));
//! let mut batch = Batch {
//!     resource_spans: vec![ResourceSpans {
//!         scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let redactor = Redactor::new(&RedactionConfig::default(), None).unwrap();
//! redactor.batch(&mut batch);
//! let span = &batch.resource_spans[0].scope_spans[0].spans[0];
//! assert_eq!(span.attribute("url.query"), Some(&AnyValue::from("user=ann&password=[REDACTED]&next=/")));
//! assert_eq!(span.attribute("http.request.header.authorization"), Some(&AnyValue::from("[REDACTED]")));
//! ```

mod clean;
pub mod config;
pub mod detector;
pub mod error;
pub mod hash;
mod redactor;
pub mod rule;

pub use config::{RedactionConfig, RuleConfig};
pub use detector::Detector;
pub use error::{RedactError, Result};
pub use hash::{Encoding, HashKey};
pub use redactor::{DEFAULT_KEY_FILE, Redactor};
pub use rule::{Action, builtin};

/// What replaces a masked secret unless `marker` says otherwise.
pub const DEFAULT_MARKER: &str = "[REDACTED]";

#[cfg(test)]
mod tests;
