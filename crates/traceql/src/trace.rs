//! [`TraceView`]: the spans of one trace with the parent index and the
//! trace-level values (root, extent) that evaluation needs, built once.

use std::collections::HashMap;

use tracewarden_model::{SpanId, SpanRecord};

/// A trace prepared for evaluation.
///
/// Building it is O(n): one pass to index span ids, one to resolve parents.
/// The spans may be any subset of a trace; a span whose parent is not among
/// them counts as having no parent here (it is not a root, though: the root
/// is a span with no parent span id).
#[derive(Debug, Clone)]
pub struct TraceView<'a> {
    spans: &'a [SpanRecord],
    /// Index of each span's parent in `spans`, when the parent is present.
    parents: Vec<Option<usize>>,
    root: Option<usize>,
    start: u64,
    end: u64,
}

impl<'a> TraceView<'a> {
    pub fn new(spans: &'a [SpanRecord]) -> TraceView<'a> {
        let mut by_id: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
        for (i, record) in spans.iter().enumerate() {
            // With duplicate span ids (hostile or broken data) the first wins.
            by_id.entry(record.span.span_id).or_insert(i);
        }
        let parents = spans
            .iter()
            .enumerate()
            .map(|(i, record)| {
                record
                    .span
                    .parent_span_id
                    .and_then(|p| by_id.get(&p).copied())
                    // A span naming itself as parent would make a cycle of one.
                    .filter(|&p| p != i)
            })
            .collect();
        // The root: a span without a parent span id; with several (broken
        // instrumentation), the earliest.
        let root = spans
            .iter()
            .enumerate()
            .filter(|(_, r)| r.span.parent_span_id.is_none_or(|p| p.is_zero()))
            .min_by_key(|(i, r)| (r.span.start_time_unix_nano, *i))
            .map(|(i, _)| i);
        let start = spans
            .iter()
            .map(|r| r.span.start_time_unix_nano)
            .min()
            .unwrap_or(0);
        let end = spans
            .iter()
            .map(|r| r.span.end_time_unix_nano)
            .max()
            .unwrap_or(0);
        TraceView {
            spans,
            parents,
            root,
            start,
            end,
        }
    }

    pub fn spans(&self) -> &'a [SpanRecord] {
        self.spans
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The index of span `i`'s parent, when it is in this view.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parents.get(i).copied().flatten()
    }

    /// The root span, when the view holds it.
    pub fn root(&self) -> Option<&'a SpanRecord> {
        self.root.and_then(|i| self.spans.get(i))
    }

    /// `rootName`: the root span's name.
    pub fn root_name(&self) -> Option<&'a str> {
        self.root().map(|r| r.span.name.as_str())
    }

    /// `rootServiceName`: the root span's `service.name`.
    pub fn root_service_name(&self) -> Option<&'a str> {
        self.root()
            .and_then(|r| r.resource.attribute("service.name"))
            .and_then(|v| v.as_str())
    }

    /// Earliest span start, unix nanoseconds.
    pub fn start_unix_nano(&self) -> u64 {
        self.start
    }

    /// Latest span end, unix nanoseconds.
    pub fn end_unix_nano(&self) -> u64 {
        self.end
    }

    /// `traceDuration`: latest end minus earliest start.
    pub fn duration_nanos(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}
