//! A span or log record together with the resource and scope it came with:
//! the unit the store keeps and query and detection read.

use std::sync::Arc;

use crate::{Batch, LogRecord, Resource, Scope, Span, TraceId};

/// A span with the resource and scope it came with.
///
/// The span is shared: the hot tier and detection hold the same one, so a
/// batch is not copied for detection (the copy was a fifth of the ingest
/// workers' time). Mutate through [`SpanRecord::span_mut`], which copies
/// only a span that is shared.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub span: Arc<Span>,
}

impl SpanRecord {
    pub fn new(resource: Arc<Resource>, scope: Arc<Scope>, span: Span) -> Self {
        Self {
            resource,
            scope,
            span: Arc::new(span),
        }
    }

    /// The span, to change: copied first if another holder shares it.
    pub fn span_mut(&mut self) -> &mut Span {
        Arc::make_mut(&mut self.span)
    }
}

/// A log record with the resource and scope it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub record: LogRecord,
}

/// A batch taken apart into records: what the store keeps and detection
/// reads, in the batch's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    pub spans: Vec<SpanRecord>,
    pub logs: Vec<LogEntry>,
}

impl Records {
    pub fn from_batch(batch: Batch) -> Self {
        let mut spans = Vec::with_capacity(batch.span_count());
        let mut logs = Vec::with_capacity(batch.log_count());
        for rs in batch.resource_spans {
            for ss in rs.scope_spans {
                for span in ss.spans {
                    spans.push(SpanRecord::new(
                        Arc::clone(&rs.resource),
                        Arc::clone(&ss.scope),
                        span,
                    ));
                }
            }
        }
        for rl in batch.resource_logs {
            for sl in rl.scope_logs {
                for record in sl.log_records {
                    logs.push(LogEntry {
                        resource: Arc::clone(&rl.resource),
                        scope: Arc::clone(&sl.scope),
                        record,
                    });
                }
            }
        }
        Self { spans, logs }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty()
    }
}

/// Everything held for one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub trace_id: TraceId,
    /// Ordered by start time (then span id, so the order is stable).
    pub spans: Vec<SpanRecord>,
    /// Log records carrying this trace id, ordered by time
    /// ([`LogRecord::effective_time_unix_nano`]).
    pub logs: Vec<LogEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyValue, ResourceLogs, ResourceSpans, ScopeLogs, ScopeSpans, SpanId};

    #[test]
    fn a_record_is_three_shared_pointers() {
        // The hot tier and detection each hold one per span: a record that
        // owned its span would be copied per holder again.
        assert_eq!(size_of::<SpanRecord>(), 3 * size_of::<usize>());
    }

    #[test]
    fn records_keep_the_batch_order_and_share_resources() {
        let span = |id: u8| {
            Span::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes([id; 8]),
                "op",
            )
        };
        let resource = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "api")],
            ..Resource::default()
        });
        let batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: Arc::clone(&resource),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Arc::default(),
                        spans: vec![span(1), span(2)],
                    },
                    ScopeSpans {
                        scope: Arc::default(),
                        spans: vec![span(3)],
                    },
                ],
            }],
            resource_logs: vec![ResourceLogs {
                resource: Arc::clone(&resource),
                scope_logs: vec![ScopeLogs {
                    scope: Arc::default(),
                    log_records: vec![LogRecord::default()],
                }],
            }],
        };
        let records = Records::from_batch(batch);
        let ids: Vec<u8> = records
            .spans
            .iter()
            .map(|r| r.span.span_id.as_bytes()[0])
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(
            records
                .spans
                .iter()
                .all(|r| Arc::ptr_eq(&r.resource, &resource))
        );
        assert_eq!(records.logs.len(), 1);
        assert!(!records.is_empty());
        assert!(Records::default().is_empty());
    }
}
