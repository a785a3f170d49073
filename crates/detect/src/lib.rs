//! Streaming detection over spans and log records.
//!
//! - [`rule`]: detection rules as data. One YAML file per rule (`id`,
//!   `title`, `severity`, MITRE ATT&CK `tags`, a kind and a TraceQL
//!   condition), loaded with every mistake reported by file, line and
//!   column; fixtures that test each rule like code ([`rule::test_dir`]).
//! - [`engine`]: runs the rules over spans as they arrive: match rules per
//!   span, threshold rules (count or distinct count per key in a sliding
//!   event-time window), sequence rules (ordered steps per key), new_terms
//!   rules (a value never seen for its key after learning) and baseline
//!   rules (a key's rate per bucket against its own moving baseline), with
//!   bounded, counted state, returning [`engine::Detection`]s.
//!   Rules that need whole traces (structural TraceQL, `topology`,
//!   `data_flow`) run on traces the engine assembles.
//! - [`assembly`]: the trace-assembly buffer: spans held per trace id until
//!   the trace is complete (idle time, root arrival, caps that hand traces
//!   over early, partial and counted).
//! - [`log_join`]: log records waiting for the span they were emitted in,
//!   for log rules that read the span's attributes (`join:`).
//! - [`inject`]: detectors for attack payloads (SQL injection, cross-site
//!   scripting, path traversal, command injection) in request fields.
//! - [`geoip`]: client country from a MaxMind GeoIP2/GeoLite2 database,
//!   for the `geo.country.iso_code` that the `geo-policy` rule reads.
//! - [`pii`]: detectors for personal data in attribute values (e-mail,
//!   payment cards, phone numbers, US SSNs, IBANs) and attribute names.
//!
//! Data flow: rule files -> [`rule::load_dir`] -> [`engine::Engine::new`];
//! then each decoded batch of spans -> [`engine::Engine::process`] (or
//! `process_owned`) -> detections for the alerting layer, and on a timer
//! [`engine::Engine::flush`] -> detections of the traces completed since.

pub mod assembly;
pub mod engine;
pub mod geoip;
pub mod inject;
pub mod log_join;
pub mod pii;
pub mod rule;
