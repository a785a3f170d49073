//! `GET /metrics`: the server's figures in the Prometheus text exposition
//! format 0.0.4.
//!
//! [`Exposition`] writes it: one `# HELP` and `# TYPE` per family (written
//! with its first sample), counters named `*_total`, label values escaped
//! (`\\`, `"`, newline). [`Metrics`] gathers the built-in figures (ingest,
//! detection, WAL and store, blocks) at scrape time from the counters the
//! components already keep, and asks every registered [`MetricsSource`]
//! for theirs: that is how a component the server does not know about
//! (alerting, say) adds its own families.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use tracewarden_detect::assembly::AssemblyStats;
use tracewarden_detect::log_join::LogJoinStats;
use tracewarden_ingest::IngestStats;
use tracewarden_ingest::stats::ReasonCounts;

use crate::blocks::{Action, BlockKind, Blocklist, now_unix_ms};
use crate::latency::Exposed;
use crate::pipeline::Pipeline;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A scrape being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    families: HashSet<String>,
}

/// Something that adds its own families to each scrape.
pub trait MetricsSource: Send + Sync {
    fn collect(&self, out: &mut Exposition);
}

fn escape_help(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_label(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts family `name` (once: later calls for it write nothing).
    /// Counter names must end in `_total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Exposition {
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        if self.families.insert(name.to_string()) {
            let _ = write!(self.out, "# HELP {name} ");
            escape_help(help, &mut self.out);
            let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
        }
        self
    }

    /// One sample of the family last started (for histograms, `name` is the
    /// family's name with `_bucket`, `_sum` or `_count`).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Exposition {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"");
                escape_label(value, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = if value.is_finite() {
            writeln!(self.out, " {value}")
        } else if value.is_nan() {
            writeln!(self.out, " NaN")
        } else if value > 0.0 {
            writeln!(self.out, " +Inf")
        } else {
            writeln!(self.out, " -Inf")
        };
        self
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help).sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The figures `/metrics` reports.
pub struct Metrics {
    ingest: Arc<IngestStats>,
    sources: RwLock<Vec<Arc<dyn MetricsSource>>>,
}

impl Metrics {
    pub fn new(ingest: Arc<IngestStats>) -> Metrics {
        Metrics {
            ingest,
            sources: RwLock::new(Vec::new()),
        }
    }

    /// Adds `source`'s families to every later scrape.
    pub fn add_source(&self, source: Arc<dyn MetricsSource>) {
        if let Ok(mut sources) = self.sources.write() {
            sources.push(source);
        }
    }

    /// One scrape.
    pub fn render(&self, pipeline: &Pipeline, blocks: Option<&Blocklist>) -> String {
        let mut out = Exposition::new();
        self.ingest(&mut out);
        detection(&mut out, pipeline);
        store(&mut out, pipeline);
        if let Some(blocks) = blocks {
            block_figures(&mut out, blocks);
        }
        if let Ok(sources) = self.sources.read() {
            for source in sources.iter() {
                source.collect(&mut out);
            }
        }
        out.finish()
    }

    fn ingest(&self, out: &mut Exposition) {
        let s = self.ingest.snapshot();
        let name = "tracewarden_ingest_requests_total";
        out.family(
            name,
            Kind::Counter,
            "Requests received by the receivers, by protocol.",
        );
        for (protocol, n) in [
            ("otlp_grpc", s.requests.otlp_grpc),
            ("otlp_http", s.requests.otlp_http),
            ("zipkin", s.requests.zipkin),
        ] {
            out.sample(name, &[("protocol", protocol)], n as f64);
        }
        let name = "tracewarden_ingest_failed_requests_total";
        out.family(
            name,
            Kind::Counter,
            "Requests answered with an error, by reason.",
        );
        reasons(out, name, &[], &s.failed_requests);
        let name = "tracewarden_ingest_accepted_total";
        out.family(name, Kind::Counter, "Records made durable, by signal.")
            .sample(name, &[("signal", "spans")], s.spans_accepted as f64)
            .sample(name, &[("signal", "logs")], s.logs_accepted as f64);
        let name = "tracewarden_ingest_rejected_total";
        out.family(
            name,
            Kind::Counter,
            "Decoded records not accepted, by signal and reason.",
        );
        reasons(out, name, &[("signal", "spans")], &s.spans_rejected);
        reasons(out, name, &[("signal", "logs")], &s.logs_rejected);
    }
}

fn reasons(out: &mut Exposition, name: &str, labels: &[(&str, &str)], counts: &ReasonCounts) {
    for (reason, n) in [
        ("malformed", counts.malformed),
        ("too_large", counts.too_large),
        ("unsupported_media_type", counts.unsupported_media_type),
        ("overloaded", counts.overloaded),
        ("unavailable", counts.unavailable),
        ("internal", counts.internal),
        ("invalid_record", counts.invalid_record),
    ] {
        let mut all = labels.to_vec();
        all.push(("reason", reason));
        out.sample(name, &all, n as f64);
    }
}

fn detection(out: &mut Exposition, pipeline: &Pipeline) {
    let Some(detector) = pipeline.detector() else {
        return;
    };
    let s = detector.stats();
    out.single(
        "tracewarden_detection_queue_batches",
        Kind::Gauge,
        "Acknowledged batches waiting for the detection thread.",
        s.queued_batches as f64,
    );
    for (name, help, value) in [
        (
            "tracewarden_detection_batches_total",
            "Batches detected on.",
            s.batches,
        ),
        (
            "tracewarden_detection_spans_total",
            "Spans detected on.",
            s.spans,
        ),
        (
            "tracewarden_detection_logs_total",
            "Log records detected on.",
            s.logs,
        ),
        (
            "tracewarden_detection_dropped_batches_total",
            "Batches stored but not detected on because the detection queue was full.",
            s.dropped_batches,
        ),
        (
            "tracewarden_detection_dropped_spans_total",
            "Spans stored but not detected on because the detection queue was full.",
            s.dropped_spans,
        ),
        (
            "tracewarden_detections_total",
            "Detections raised.",
            s.detections,
        ),
        (
            "tracewarden_detection_checkpoint_failures_total",
            "Detection checkpoints that could not be written.",
            s.checkpoint_failures,
        ),
    ] {
        out.single(name, Kind::Counter, help, value as f64);
    }
    out.single(
        "tracewarden_detection_checkpoint_restore_failed",
        Kind::Gauge,
        "1 when the checkpoint found at start could not be restored (detection started empty; the file was moved aside), else 0.",
        f64::from(u8::from(s.checkpoint_restore_error.is_some())),
    );
    let (latency, trace_delay) = detector.latency_histograms();
    histogram(
        out,
        "tracewarden_detection_latency_seconds",
        "From a batch's WAL acknowledgement to the span rules having run on it (the delay of span, window and sequence detections).",
        &latency,
    );
    histogram(
        out,
        "tracewarden_detection_trace_delay_seconds",
        "From a trace becoming complete (its idle time passed) to the whole-trace rules having run on it.",
        &trace_delay,
    );
    // Why the WAL is longer than the segments alone would keep it:
    // `tracewarden_wal_last_lsn` minus this is the records held.
    if let Some(held) = detector.wal_hold().and_then(|hold| hold.get()) {
        out.single(
            "tracewarden_detection_wal_hold_lsn",
            Kind::Gauge,
            "The lowest WAL record (LSN) kept for a restart from the latest detection checkpoint: the records it names buffered spans in, and every record after those it covers.",
            held as f64,
        );
    }
    assembly(out, &detector.assembly_stats());
    log_join(out, &detector.log_join_stats());
    let rules = detector.rule_stats();
    // Per rule; keys pushed out at the cap show an attacker flooding a rule
    // with new actors.
    type Counter = fn(&tracewarden_detect::engine::RuleStats) -> u64;
    let counters: [(&str, &str, Counter); 7] = [
        (
            "tracewarden_rule_evaluations_total",
            "Spans (or log records) the rule's condition was evaluated on, plus assembled traces for whole-trace rules, since the rule was loaded.",
            |r| r.evaluated,
        ),
        (
            "tracewarden_rule_matched_total",
            "Spans (or log records) that satisfied the rule's condition, since the rule was loaded.",
            |r| r.matched_spans,
        ),
        (
            "tracewarden_rule_detections_total",
            "Detections raised by the rule, since it was loaded.",
            |r| r.detections,
        ),
        (
            "tracewarden_rule_evicted_keys_total",
            "Keys (actors) the rule evicted at max_keys_per_rule, least recently seen first, since it was loaded.",
            |r| r.evicted_keys,
        ),
        (
            "tracewarden_rule_late_spans_total",
            "Matching spans the rule dropped as older than its window, since it was loaded.",
            |r| r.late_spans,
        ),
        (
            "tracewarden_rule_evicted_terms_total",
            "Terms a new_terms rule forgot at max_terms_per_key, since it was loaded.",
            |r| r.evicted_terms,
        ),
        (
            "tracewarden_rule_excepted_total",
            "Spans (or log records) that satisfied the rule's condition but one of its exceptions too, so were left out, since the rule was loaded.",
            |r| r.excepted,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, Kind::Counter, help);
        for rule in &rules {
            out.sample(name, &[("rule", &rule.rule_id)], value(rule) as f64);
        }
    }
    let name = "tracewarden_rule_keys";
    out.family(
        name,
        Kind::Gauge,
        "Keys (actors) the rule holds state for now.",
    );
    for rule in &rules {
        out.sample(name, &[("rule", &rule.rule_id)], rule.keys as f64);
    }
}

fn store(out: &mut Exposition, pipeline: &Pipeline) {
    let Some(store) = pipeline.store() else {
        return;
    };
    let s = store.stats();
    for (name, help, value) in [
        (
            "tracewarden_wal_appends_total",
            "Appends acknowledged by the WAL.",
            s.appends,
        ),
        (
            "tracewarden_wal_fsyncs_total",
            "fdatasync calls on WAL files.",
            s.fsyncs,
        ),
        (
            "tracewarden_store_memory_waits_total",
            "Appends that found memory full (flushes behind) and waited for a flush.",
            s.memory_waits,
        ),
        (
            "tracewarden_store_flushes_total",
            "Flushes of the hot tier into a segment.",
            s.flushes,
        ),
        (
            "tracewarden_store_flush_failures_total",
            "Flushes that failed and were retried.",
            s.flush_failures,
        ),
        (
            "tracewarden_store_compactions_total",
            "Segment compactions.",
            s.compactions,
        ),
        (
            "tracewarden_store_dropped_segments_total",
            "Segments dropped by retention.",
            s.dropped_segments,
        ),
    ] {
        out.single(name, Kind::Counter, help, value as f64);
    }
    for (name, help, value) in [
        (
            "tracewarden_wal_pending_appends",
            "Appends queued for the WAL writer.",
            s.pending_appends,
        ),
        (
            "tracewarden_wal_pending_bytes",
            "Encoded bytes queued for the WAL writer.",
            s.pending_bytes,
        ),
        ("tracewarden_wal_bytes", "Bytes in WAL files.", s.wal_bytes),
        (
            "tracewarden_wal_last_lsn",
            "The LSN of the last record the WAL holds (records are numbered from 1).",
            s.last_lsn,
        ),
        ("tracewarden_wal_files", "WAL files.", s.wal_files),
        ("tracewarden_store_hot_spans", "Spans in memory.", s.spans),
        (
            "tracewarden_store_hot_logs",
            "Log records in memory.",
            s.logs,
        ),
        ("tracewarden_store_segments", "Segments served.", s.segments),
        (
            "tracewarden_store_segment_bytes",
            "Bytes of segment data files.",
            s.segment_bytes,
        ),
        (
            "tracewarden_store_quarantined_segments",
            "Corrupt segments set aside.",
            s.quarantined_segments,
        ),
    ] {
        out.single(name, Kind::Gauge, help, value as f64);
    }
    let fsync = Exposed {
        buckets: tracewarden_store::FSYNC_BUCKETS
            .iter()
            .copied()
            .zip(s.wal_fsync.cumulative.iter().copied())
            .collect(),
        count: s.wal_fsync.count,
        sum_seconds: s.wal_fsync.sum_nanos as f64 / 1e9,
    };
    histogram(
        out,
        "tracewarden_wal_fsync_duration_seconds",
        "How long WAL file fsyncs took.",
        &fsync,
    );
}

/// A histogram family: cumulative buckets, `+Inf`, sum and count.
/// The trace-assembly buffer of whole-trace rules: what it holds, and why
/// traces left it before they were known complete (a limit reached, which
/// an operator raises or alerts on).
fn assembly(out: &mut Exposition, a: &AssemblyStats) {
    out.single(
        "tracewarden_assembly_buffered_traces",
        Kind::Gauge,
        "Traces held for the whole-trace rules, waiting to be complete.",
        a.buffered_traces as f64,
    );
    out.single(
        "tracewarden_assembly_buffered_spans",
        Kind::Gauge,
        "Spans of the traces held for the whole-trace rules.",
        a.buffered_spans as f64,
    );
    out.single(
        "tracewarden_assembly_complete_traces_total",
        Kind::Counter,
        "Traces handed to the whole-trace rules complete (their idle time passed, or at shutdown).",
        a.complete_traces as f64,
    );
    by_reason(
        out,
        "tracewarden_assembly_partial_traces_total",
        "Traces handed to the whole-trace rules before they were known complete, by reason: pushed out by `max_traces` or `max_buffered_spans`, split at `max_spans_per_trace`, held for `trace_max_wait`, or late spans of a trace already evaluated.",
        &[
            ("max_traces", a.evicted_trace_limit),
            ("max_buffered_spans", a.evicted_span_limit),
            ("max_spans_per_trace", a.split_traces),
            ("trace_max_wait", a.max_wait_traces),
            ("late_spans", a.late_fragments),
        ],
    );
    out.single(
        "tracewarden_assembly_missing_restored_spans_total",
        Kind::Counter,
        "Spans of traces waiting for assembly that the detection checkpoint named by their WAL record and the replay at start-up no longer found; their traces were evaluated without them.",
        a.missing_restored_spans as f64,
    );
}

/// Log records of `join:` rules waiting for their span, and how they were
/// evaluated: with their span's attributes, or alone (the span did not come
/// in time, or a limit pushed them out).
fn log_join(out: &mut Exposition, j: &LogJoinStats) {
    out.single(
        "tracewarden_log_join_pending_records",
        Kind::Gauge,
        "Log records waiting for the span they were emitted in (`join:` rules).",
        j.pending_records as f64,
    );
    out.single(
        "tracewarden_log_join_index_spans",
        Kind::Gauge,
        "Recent spans kept for log records still to come (their joined attributes, or a link to their parent).",
        j.index_spans as f64,
    );
    for (name, help, value) in [
        (
            "tracewarden_log_join_joined_records_total",
            "Log records evaluated with the attributes of their span or of an ancestor of it.",
            j.joined_records,
        ),
        (
            "tracewarden_log_join_ancestor_joined_records_total",
            "Log records that took a joined attribute from an ancestor of their span (logged in a child span of the handler).",
            j.ancestor_joined_records,
        ),
        (
            "tracewarden_log_join_evicted_spans_total",
            "Spans pushed out of the join index by `log_join_max_spans` before `log_join_wait` passed.",
            j.evicted_spans,
        ),
    ] {
        out.single(name, Kind::Counter, help, value as f64);
    }
    by_reason(
        out,
        "tracewarden_log_join_unjoined_records_total",
        "Log records evaluated without the span they waited for, by reason: it did not come within `log_join_wait`, `log_join_max_pending` pushed them out, or shutdown.",
        &[
            ("expired", j.expired_records),
            ("evicted", j.evicted_records),
            ("drained", j.drained_records),
        ],
    );
}

/// Counter family `name`, one sample per `(reason, count)`.
fn by_reason(out: &mut Exposition, name: &str, help: &str, counts: &[(&str, u64)]) {
    out.family(name, Kind::Counter, help);
    for &(reason, n) in counts {
        out.sample(name, &[("reason", reason)], n as f64);
    }
}

fn histogram(out: &mut Exposition, name: &str, help: &str, h: &Exposed) {
    out.family(name, Kind::Histogram, help);
    let bucket = format!("{name}_bucket");
    for (bound, n) in &h.buckets {
        out.sample(&bucket, &[("le", &bound.to_string())], *n as f64);
    }
    out.sample(&bucket, &[("le", "+Inf")], h.count as f64)
        .sample(&format!("{name}_sum"), &[], h.sum_seconds)
        .sample(&format!("{name}_count"), &[], h.count as f64);
}

fn block_figures(out: &mut Exposition, blocks: &Blocklist) {
    let s = blocks.stats(now_unix_ms());
    let name = "tracewarden_blocks_active";
    out.family(name, Kind::Gauge, "Blocks in force, by kind.");
    for kind in BlockKind::ALL {
        out.sample(
            name,
            &[("kind", kind.as_str())],
            s.active[kind as usize] as f64,
        );
    }
    let name = "tracewarden_block_changes_total";
    out.family(
        name,
        Kind::Counter,
        "Changes to the blocklist since start, by action.",
    );
    for action in Action::ALL {
        out.sample(
            name,
            &[("action", action.as_str())],
            s.changes[action as usize] as f64,
        );
    }
    let name = "tracewarden_block_decisions_total";
    out.family(
        name,
        Kind::Counter,
        "Decisions answered to gateways, by outcome.",
    )
    .sample(name, &[("decision", "allow")], s.allowed as f64)
    .sample(name, &[("decision", "deny")], s.denied as f64);
    out.single(
        "tracewarden_rule_blocks_refused_total",
        Kind::Counter,
        "Rule blocks not applied (list full, unreadable actor, queue full).",
        s.rule_blocks_refused as f64,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn help_and_type_once_labels_escaped() {
        let mut out = Exposition::new();
        out.family("a_total", Kind::Counter, "Help with \\ and\nnewline.")
            .sample("a_total", &[("rule", "x\"y\\z\nw")], 3.0);
        out.family("a_total", Kind::Counter, "again")
            .sample("a_total", &[("rule", "b")], 1.5);
        out.single("g", Kind::Gauge, "A gauge.", f64::INFINITY);
        assert_eq!(
            out.finish(),
            "# HELP a_total Help with \\\\ and\\nnewline.\n# TYPE a_total counter\n\
             a_total{rule=\"x\\\"y\\\\z\\nw\"} 3\na_total{rule=\"b\"} 1.5\n\
             # HELP g A gauge.\n# TYPE g gauge\ng +Inf\n"
        );
    }

    struct Alerts;

    impl MetricsSource for Alerts {
        fn collect(&self, out: &mut Exposition) {
            out.family("tracewarden_alerts", Kind::Gauge, "Alerts by state.")
                .sample("tracewarden_alerts", &[("state", "firing")], 2.0);
        }
    }

    #[test]
    fn sources_add_their_families() {
        let ingest = Arc::new(IngestStats::new());
        ingest.record_accepted(5, 0);
        let metrics = Metrics::new(ingest);
        metrics.add_source(Arc::new(Alerts));
        let text = metrics.render(&Pipeline::new(), None);
        assert!(
            text.contains("tracewarden_ingest_accepted_total{signal=\"spans\"} 5\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "# TYPE tracewarden_alerts gauge\ntracewarden_alerts{state=\"firing\"} 2\n"
            ),
            "{text}"
        );
        // Without detection, a store or blocks: their families are absent.
        assert!(!text.contains("tracewarden_wal_"), "{text}");
    }
}
