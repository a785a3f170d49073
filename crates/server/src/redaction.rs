//! Redaction's figures in `GET /metrics`.

use std::sync::Arc;

use tracewarden_redact::Redactor;

use crate::metrics::{Exposition, Kind, MetricsSource};

/// Adds `tracewarden_redactions_total{rule}` to each scrape.
pub(crate) struct RedactionMetrics(pub(crate) Arc<Redactor>);

impl MetricsSource for RedactionMetrics {
    fn collect(&self, out: &mut Exposition) {
        let name = "tracewarden_redactions_total";
        out.family(
            name,
            Kind::Counter,
            "Values masked or hashed and attributes dropped before the WAL since start, by redaction rule.",
        );
        for (rule, count) in self.0.counts() {
            out.sample(name, &[("rule", rule)], count as f64);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracewarden_model::{Batch, KeyValue, ResourceSpans, ScopeSpans, Span, SpanId, TraceId};
    use tracewarden_redact::RedactionConfig;

    use super::*;

    #[test]
    fn counts_per_rule() {
        let redactor = Arc::new(Redactor::new(&RedactionConfig::default(), None).unwrap());
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "GET",
        );
        span.attributes
            .push(KeyValue::new("url.query", "password=a&token=b"));
        let mut batch = Batch {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        redactor.batch(&mut batch);
        let mut out = Exposition::new();
        RedactionMetrics(redactor).collect(&mut out);
        let text = out.finish();
        assert!(
            text.contains("tracewarden_redactions_total{rule=\"secret_params\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tracewarden_redactions_total{rule=\"jwt\"} 0\n"),
            "{text}"
        );
    }
}
