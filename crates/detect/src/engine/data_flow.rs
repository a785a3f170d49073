//! Data-flow rules: personal data reaching a third party or a service
//! outside the allowed set.
//!
//! Decided in two places:
//!
//! - **span by span** ([`check_span`], in `Engine::process`): a destination
//!   span carrying personal data itself: a client span to
//!   `partner.example.com` with an e-mail address in `url.query`, or a
//!   server span of a third-party service with a card number in its body;
//! - **per trace** ([`check_trace`], on assembled traces): personal data
//!   on the caller side of a destination span that carries none itself:
//!   the client span that called a third-party service, or the spans of
//!   the calling service above the outgoing call (the operation that
//!   handled the data, then called out). One finding per destination span.
//!
//! The two never report the same destination span: the per-trace pass
//! skips destination spans that carry personal data themselves, and a
//! third-party server span whose parent client span is a destination too.

use std::collections::HashMap;

use tracewarden_model::{SpanId, SpanKind, SpanRecord};
use tracewarden_traceql::TraceView;

use super::topology::{linked_producers, service_of};
use crate::rule::{DataFlowRule, Destination, PiiHit};

/// Ancestors walked up from a destination span.
const MAX_DEPTH: usize = 64;

/// One finding: key, evidence and the start time of the destination span.
#[derive(Debug)]
pub(crate) struct Flow {
    pub key: Vec<(String, String)>,
    pub evidence: String,
    pub ts: u64,
    /// An exception of the rule holds for the destination span or the span
    /// carrying the data: left out, counted.
    pub excepted: bool,
}

fn key(destination: &Destination<'_>, hit: &PiiHit<'_>) -> Vec<(String, String)> {
    vec![
        ("destination".to_string(), destination.name.to_string()),
        ("data".to_string(), hit.kind.clone()),
    ]
}

fn describe(destination: &Destination<'_>) -> String {
    if destination.outbound {
        format!(
            "sent to {} ({}, {})",
            destination.name,
            destination.field,
            destination.reason()
        )
    } else {
        format!(
            "received by service {} ({})",
            destination.name,
            destination.reason()
        )
    }
}

/// A destination span carrying personal data itself.
pub(crate) fn check_span(rule: &DataFlowRule, record: &SpanRecord) -> Option<Flow> {
    let destination = rule.destination(record)?;
    let hit = rule.personal_data.find(&record.span.attributes)?;
    Some(Flow {
        key: key(&destination, &hit),
        evidence: format!("{} {}", hit.describe(), describe(&destination)),
        ts: record.span.start_time_unix_nano,
        // The engine asks the rule's exceptions of the span itself.
        excepted: false,
    })
}

/// Personal data on the caller side of destination spans of one trace.
/// A flow whose destination span or carrying span `except` holds for (the
/// rule's exceptions) comes marked `excepted`.
pub(crate) fn check_trace(
    rule: &DataFlowRule,
    view: &TraceView<'_>,
    except: &dyn Fn(&SpanRecord) -> bool,
    out: &mut Vec<Flow>,
) {
    let spans = view.spans();
    // Span id -> index, built when a consumer without a parent needs it.
    let mut span_ids: Option<HashMap<SpanId, usize>> = None;
    for (i, record) in spans.iter().enumerate() {
        let Some(destination) = rule.destination(record) else {
            continue;
        };
        if rule.personal_data.find(&record.span.attributes).is_some() {
            continue;
        }
        // The first span whose data went along: for an outgoing call, the
        // spans of the same service above it; for a third-party server
        // span, the client span that called it, then the spans above that.
        let start = if destination.outbound {
            view.parent(i).filter(|&p| {
                spans
                    .get(p)
                    .is_some_and(|s| service_of(s) == service_of(record))
            })
        } else {
            // A consumer may link to its producer instead of taking it as
            // parent (messaging): the producer is its caller then.
            let caller = view
                .parent(i)
                .or_else(|| linked_producers(spans, record, &mut span_ids).next());
            match caller {
                Some(p) => {
                    let Some(parent) = spans.get(p) else { continue };
                    let outbound =
                        matches!(parent.span.kind, SpanKind::Client | SpanKind::Producer);
                    if service_of(parent) == service_of(record)
                        || (outbound && rule.destination(parent).is_some())
                    {
                        continue;
                    }
                    Some(p)
                }
                None => None,
            }
        };
        let Some(start) = start else { continue };
        let service = spans.get(start).map_or("", service_of);
        let mut at = Some(start);
        for _ in 0..MAX_DEPTH {
            let Some(index) = at else { break };
            let Some(carrier) = spans.get(index) else {
                break;
            };
            if service_of(carrier) != service {
                break;
            }
            if let Some(hit) = rule.personal_data.find(&carrier.span.attributes) {
                out.push(Flow {
                    key: key(&destination, &hit),
                    evidence: format!(
                        "{} on span \"{}\" of {service}, then {} span \"{}\" {}",
                        hit.describe(),
                        carrier.span.name,
                        record.span.kind.as_str(),
                        record.span.name,
                        describe(&destination)
                    ),
                    ts: record.span.start_time_unix_nano,
                    excepted: except(record) || except(carrier),
                });
                break;
            }
            at = view.parent(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use tracewarden_model::{KeyValue, Resource, Span, TraceId};

    use super::*;
    use crate::rule::{RuleKind, Site, parse_rule_for};

    fn span(
        id: u8,
        parent: Option<u8>,
        service: &str,
        kind: SpanKind,
        attributes: &[(&str, &str)],
    ) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([3; 16]),
            SpanId::from_bytes([id; 8]),
            format!("op{id}"),
        );
        span.parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
        span.kind = kind;
        span.attributes = attributes
            .iter()
            .map(|(k, v)| KeyValue::new(*k, *v))
            .collect();
        SpanRecord {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", service)],
                ..Resource::default()
            }),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn rule(extra: &str) -> DataFlowRule {
        let site = Site {
            third_parties: vec![r"(.*\.)?partner\.example".into()],
            ..Site::default()
        };
        let text = format!("id: d\ntitle: t\nseverity: high\nkind: data_flow\n{extra}");
        match parse_rule_for(&text, Path::new("d.yaml"), &site).map(|r| r.kind) {
            Ok(RuleKind::DataFlow(d)) => d,
            other => panic!("{other:?}"),
        }
    }

    fn trace_flows(rule: &DataFlowRule, spans: &[SpanRecord]) -> Vec<String> {
        let mut out = Vec::new();
        check_trace(rule, &TraceView::new(spans), &|_| false, &mut out);
        out.into_iter().map(|f| f.evidence).collect()
    }

    #[test]
    fn an_allow_list_makes_other_destinations_count() {
        let rule = rule("allowed: [api-gateway, weather, 'db\\.internal']\n");
        let to_db = span(
            1,
            None,
            "weather",
            SpanKind::Client,
            &[
                ("server.address", "db.internal"),
                ("db.query.text", "jane@example.com"),
            ],
        );
        assert!(check_span(&rule, &to_db).is_none());
        let to_analytics = span(
            1,
            None,
            "weather",
            SpanKind::Client,
            &[
                ("server.address", "analytics.internal"),
                ("db.query.text", "jane@example.com"),
            ],
        );
        let flow = check_span(&rule, &to_analytics).map(|f| f.evidence);
        assert_eq!(
            flow.as_deref(),
            Some(
                "email in db.query.text (****.com) sent to analytics.internal (server.address, not allowed)"
            )
        );
        let server = span(
            2,
            None,
            "analytics",
            SpanKind::Server,
            &[("user.email", "jane@example.com")],
        );
        assert!(
            check_span(&rule, &server)
                .is_some_and(|f| f.evidence.contains("received by service analytics"))
        );
    }

    #[test]
    fn propagation_stays_within_the_calling_service() {
        let rule = rule("");
        let spans = [
            // Personal data on the gateway, which calls weather; weather
            // calls the partner without any: the gateway's data is not
            // weather's to send.
            span(
                1,
                None,
                "gw",
                SpanKind::Server,
                &[("user.email", "jane@example.com")],
            ),
            span(
                2,
                Some(1),
                "gw",
                SpanKind::Client,
                &[("server.address", "weather")],
            ),
            span(3, Some(2), "weather", SpanKind::Server, &[]),
            span(
                4,
                Some(3),
                "weather",
                SpanKind::Client,
                &[("server.address", "api.partner.example")],
            ),
        ];
        assert!(trace_flows(&rule, &spans).is_empty());
        let mut spans = spans.to_vec();
        spans[2]
            .span_mut()
            .attributes
            .push(KeyValue::new("enduser.phone", "+1 415 555 2671"));
        let flows = trace_flows(&rule, &spans);
        assert_eq!(flows.len(), 1);
        assert!(flows[0].starts_with("phone in enduser.phone (****2671) on span \"op3\" of weather, then client span \"op4\" sent to api.partner.example"), "{flows:?}");
    }

    #[test]
    fn a_third_party_consumer_linked_to_a_producer_receives_its_data() {
        let rule = rule("");
        let mut consumer = span(
            3,
            None,
            "analytics.partner.example",
            SpanKind::Consumer,
            &[],
        );
        let link = |id: u8| tracewarden_model::Link {
            trace_id: TraceId::from_bytes([3; 16]),
            span_id: SpanId::from_bytes([id; 8]),
            trace_state: Default::default(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
        };
        consumer.span_mut().links.push(link(2));
        let spans = [
            span(
                1,
                None,
                "shop",
                SpanKind::Server,
                &[("user.email", "jane@example.com")],
            ),
            span(
                2,
                Some(1),
                "shop",
                SpanKind::Producer,
                &[("messaging.destination.name", "orders")],
            ),
            consumer,
        ];
        let flows = trace_flows(&rule, &spans);
        assert_eq!(flows.len(), 1, "{flows:?}");
        assert!(
            flows[0].starts_with("email in user.email (****.com) on span \"op1\" of shop, then consumer span \"op3\" received by service analytics.partner.example"),
            "{flows:?}"
        );
        // A link to a span that is no producer is no call.
        let mut spans = spans.to_vec();
        spans[1].span_mut().kind = SpanKind::Internal;
        assert!(trace_flows(&rule, &spans).is_empty());
    }
}
