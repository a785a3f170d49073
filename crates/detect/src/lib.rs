//! Streaming detection over spans and log records.
//!
//! - [`rule`]: detection rules as data. One YAML file per rule (`id`,
//!   `title`, `severity`, MITRE ATT&CK `tags`, a kind and a TraceQL
//!   condition), loaded with every mistake reported by file, line and
//!   column; fixtures that test each rule like code ([`rule::test_dir`]).
//! - [`engine`]: runs the rules over spans as they arrive: match rules per
//!   span, threshold rules (count or distinct count per key in a sliding
//!   event-time window) and sequence rules (ordered steps per key), with
//!   bounded, counted state, returning [`engine::Detection`]s.
//! - [`inject`]: detectors for attack payloads (SQL injection, cross-site
//!   scripting, path traversal, command injection) in request fields.
//!
//! Data flow: rule files -> [`rule::load_dir`] -> [`engine::Engine::new`];
//! then each decoded batch of spans -> [`engine::Engine::process`] ->
//! detections for the alerting layer.

pub mod assembly;
pub mod engine;
pub mod inject;
pub mod pii;
pub mod rule;
