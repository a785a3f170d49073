//! Service edges of one trace, from compact span facts.
//!
//! The same edges the topology rule checks (crates/detect, engine/topology):
//!
//! - a server or consumer span of service B whose parent span (in the
//!   trace) is of service A gives `A -> B` (`http` or `rpc`; `messaging`
//!   for a consumer);
//! - a consumer span linked to a producer span of A in the same trace
//!   gives `A -> B` (`link`);
//!
//! and, for callees that send no spans of their own (databases, third
//! parties): a client or producer span of A naming its peer
//! (`service.peer.name`, which normalisation fills from `peer.service`,
//! or else `server.address`) gives `A -> peer` when no server or consumer
//! span answers it in the trace. Calls within one service give no edge.
//!
//! Zipkin's shared spans (a server span with the id of the client span
//! that called it) make two spans with one id: a child's parent is then
//! the server one, the side that did the work below.

use std::collections::{HashMap, HashSet};

use tracewarden_model::{SpanId, SpanKind, TraceId};

/// Interned name index meaning "none".
pub const NONE: u32 = u32::MAX;

/// What the graph needs of a span (a few dozen bytes, for millions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanFacts {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// Interned `service.name`, or [`NONE`].
    pub service: u32,
    pub kind: SpanKind,
    pub error: bool,
    /// Carries HTTP attributes (method or route).
    pub http: bool,
    pub duration_nanos: u64,
    /// Interned peer name of a client or producer span, or [`NONE`].
    pub peer: u32,
    /// Span ids this span links to within its own trace.
    pub links: Option<Box<[SpanId]>>,
}

/// How a call crossed services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    Http,
    Rpc,
    Messaging,
    Link,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Http => "http",
            EdgeKind::Rpc => "rpc",
            EdgeKind::Messaging => "messaging",
            EdgeKind::Link => "link",
        }
    }
}

/// One call from `caller` to `callee` (interned names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub caller: u32,
    pub callee: u32,
    pub kind: EdgeKind,
    pub error: bool,
    /// The callee span's duration (the client span's, for a peer).
    pub duration_nanos: u64,
}

/// Traces up to this many spans are searched linearly (no hashing).
const SMALL_TRACE: usize = 32;

/// The span with `id` in `spans`; a server span wins over a span sharing
/// its id (Zipkin).
struct Index<'a> {
    spans: &'a [SpanFacts],
    map: Option<HashMap<SpanId, usize>>,
}

impl<'a> Index<'a> {
    fn new(spans: &'a [SpanFacts]) -> Index<'a> {
        if spans.len() <= SMALL_TRACE {
            return Index { spans, map: None };
        }
        let mut map: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
        for (i, span) in spans.iter().enumerate() {
            let replace = match map.get(&span.span_id).and_then(|&j| spans.get(j)) {
                None => true,
                Some(other) => span.kind == SpanKind::Server && other.kind != SpanKind::Server,
            };
            if replace {
                map.insert(span.span_id, i);
            }
        }
        Index {
            spans,
            map: Some(map),
        }
    }

    fn get(&self, id: &SpanId) -> Option<&'a SpanFacts> {
        match &self.map {
            Some(map) => map.get(id).and_then(|&i| self.spans.get(i)),
            None => {
                let mut found: Option<&SpanFacts> = None;
                for span in self.spans.iter().filter(|s| s.span_id == *id) {
                    if found
                        .is_none_or(|f| span.kind == SpanKind::Server && f.kind != SpanKind::Server)
                    {
                        found = Some(span);
                    }
                }
                found
            }
        }
    }
}

/// Appends the calls of one trace's spans to `out`.
pub fn calls(spans: &[SpanFacts], out: &mut Vec<Call>) {
    let index = Index::new(spans);
    // Client and producer spans some server or consumer span answers.
    let mut answered: HashSet<SpanId> = HashSet::new();
    for span in spans {
        if !matches!(span.kind, SpanKind::Server | SpanKind::Consumer) {
            continue;
        }
        answered.insert(span.span_id);
        if let Some(parent) = span.parent {
            answered.insert(parent);
        }
        let callee = span.service;
        let parent = span.parent.and_then(|p| index.get(&p));
        if let Some(parent) = parent
            && callee != NONE
            && parent.service != NONE
            && parent.service != callee
        {
            let kind = if span.kind == SpanKind::Consumer {
                EdgeKind::Messaging
            } else if span.http || parent.http {
                EdgeKind::Http
            } else {
                EdgeKind::Rpc
            };
            let client_error =
                matches!(parent.kind, SpanKind::Client | SpanKind::Producer) && parent.error;
            out.push(Call {
                caller: parent.service,
                callee,
                kind,
                error: span.error || client_error,
                duration_nanos: span.duration_nanos,
            });
        }
        if span.kind != SpanKind::Consumer {
            continue;
        }
        for link in span.links.iter().flat_map(|l| l.iter()) {
            let Some(producer) = index.get(link) else {
                continue;
            };
            answered.insert(*link);
            if producer.kind == SpanKind::Producer
                && producer.service != NONE
                && callee != NONE
                && producer.service != callee
            {
                out.push(Call {
                    caller: producer.service,
                    callee,
                    kind: EdgeKind::Link,
                    error: span.error || producer.error,
                    duration_nanos: span.duration_nanos,
                });
            }
        }
    }
    for span in spans {
        if !matches!(span.kind, SpanKind::Client | SpanKind::Producer)
            || span.service == NONE
            || span.peer == NONE
            || span.peer == span.service
            || answered.contains(&span.span_id)
        {
            continue;
        }
        let kind = if span.kind == SpanKind::Producer {
            EdgeKind::Messaging
        } else if span.http {
            EdgeKind::Http
        } else {
            EdgeKind::Rpc
        };
        out.push(Call {
            caller: span.service,
            callee: span.peer,
            kind,
            error: span.error,
            duration_nanos: span.duration_nanos,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Services: 0 gateway, 1 weather, 2 location, 3 partner (a peer).
    fn span(id: u8, parent: Option<u8>, service: u32, kind: SpanKind) -> SpanFacts {
        SpanFacts {
            trace_id: TraceId::from_bytes([1; 16]),
            span_id: SpanId::from_bytes([id; 8]),
            parent: parent.map(|p| SpanId::from_bytes([p; 8])),
            service,
            kind,
            error: false,
            http: true,
            duration_nanos: u64::from(id) * 1000,
            peer: NONE,
            links: None,
        }
    }

    fn edges(spans: &[SpanFacts]) -> Vec<(u32, u32, &'static str, bool, u64)> {
        let mut out = Vec::new();
        calls(spans, &mut out);
        out.iter()
            .map(|c| {
                (
                    c.caller,
                    c.callee,
                    c.kind.as_str(),
                    c.error,
                    c.duration_nanos,
                )
            })
            .collect()
    }

    #[test]
    fn parent_child_across_services() {
        let mut client = span(2, Some(1), 0, SpanKind::Client);
        client.error = true;
        client.peer = 1;
        let mut grpc = span(3, Some(2), 1, SpanKind::Server);
        grpc.http = false;
        let mut grpc_parent = span(4, Some(3), 1, SpanKind::Client);
        grpc_parent.http = false;
        let mut location = span(5, Some(4), 2, SpanKind::Server);
        location.http = false;
        let spans = [
            span(1, None, 0, SpanKind::Server),
            client,
            grpc,
            grpc_parent,
            location,
            // Within one service: no edge.
            span(6, Some(5), 2, SpanKind::Server),
            // A parent outside the trace, and no service: no edge.
            span(7, Some(99), 1, SpanKind::Server),
            span(8, Some(1), NONE, SpanKind::Server),
        ];
        assert_eq!(
            edges(&spans),
            vec![
                // The client span's error counts; its peer edge is answered.
                (0, 1, "http", true, 3000),
                (1, 2, "rpc", false, 5000),
            ]
        );
    }

    #[test]
    fn messaging_by_parent_and_by_link() {
        let mut producer = span(2, Some(1), 0, SpanKind::Producer);
        producer.peer = 7;
        let consumer = span(3, Some(2), 1, SpanKind::Consumer);
        let mut linked = span(4, None, 2, SpanKind::Consumer);
        linked.links = Some(Box::new([
            SpanId::from_bytes([2; 8]),
            // Not a producer, and not in the trace: no edge.
            SpanId::from_bytes([1; 8]),
            SpanId::from_bytes([42; 8]),
        ]));
        let spans = [
            span(1, None, 0, SpanKind::Server),
            producer,
            consumer,
            linked,
        ];
        assert_eq!(
            edges(&spans),
            vec![
                (0, 1, "messaging", false, 3000),
                (0, 2, "link", false, 4000)
            ]
        );
    }

    #[test]
    fn unanswered_client_spans_call_their_peer() {
        let mut partner = span(2, Some(1), 0, SpanKind::Client);
        partner.peer = 3;
        partner.error = true;
        let mut db = span(3, Some(1), 0, SpanKind::Client);
        db.peer = 0;
        db.http = false;
        let mut queue = span(4, Some(1), 0, SpanKind::Producer);
        queue.peer = 4;
        let no_peer = span(5, Some(1), 0, SpanKind::Client);
        let spans = [
            span(1, None, 0, SpanKind::Server),
            partner,
            db,
            queue,
            no_peer,
        ];
        assert_eq!(
            edges(&spans),
            vec![(0, 3, "http", true, 2000), (0, 4, "messaging", false, 4000)]
        );
    }

    #[test]
    fn zipkin_shared_spans_give_one_edge() {
        // bouncer's server span 1; its client span 2 to pusher, whose
        // server span shares id 2 (and bouncer's parent); pusher's
        // internal span 3 below its server span, and a client span to
        // dove answered by dove's shared server span 4.
        let mut to_pusher = span(2, Some(1), 0, SpanKind::Client);
        to_pusher.peer = 1;
        let mut to_dove = span(4, Some(3), 1, SpanKind::Client);
        to_dove.peer = 2;
        let spans = [
            span(1, None, 0, SpanKind::Server),
            to_pusher,
            span(2, Some(1), 1, SpanKind::Server),
            span(3, Some(2), 1, SpanKind::Internal),
            span(4, Some(3), 2, SpanKind::Server),
            to_dove,
        ];
        let want = vec![(0, 1, "http", false, 2000), (1, 2, "http", false, 4000)];
        assert_eq!(edges(&spans), want);
        // The same in a trace large enough to be indexed by a hash map.
        let mut large = spans.to_vec();
        large.extend((100..140).map(|id| span(id, Some(3), 1, SpanKind::Internal)));
        assert!(large.len() > SMALL_TRACE);
        assert_eq!(edges(&large), want);
    }
}
