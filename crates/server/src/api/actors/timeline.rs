//! The actor timeline's logic, apart from the store and HTTP: which of an
//! actor's spans are requests, the summary over all of them, and paging.
//!
//! A **request** is a span carrying the actor's attribute that is a root
//! span or of kind server: where the actor entered a service. Zipkin's
//! address is the immediate peer's, so every server span with it is a call
//! from that address; an OpenTelemetry service records `client.address`
//! on its server spans. A trace whose actor spans are all internal or
//! client spans counts its earliest one, so no activity of the actor is
//! dropped. (A deployment that copies the end client's address onto every
//! downstream hop sees each hop as a request of its service.)

use std::collections::{BTreeMap, HashMap};

use tracewarden_model::{AnyValue, SpanKind, SpanRecord, StatusCode, TraceId, credential, semconv};
use tracewarden_store::segment::DedicatedColumn;

/// Who a timeline is about: an identity kept in a dedicated column, or a
/// bearer token by the fingerprint ingest stamps on spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    ClientAddress,
    EnduserId,
    SessionId,
    Token,
}

/// The name of the token kind in the API.
const TOKEN: &str = "token";

/// The kinds the timeline answers, as the API spells them.
pub const SUPPORTED_KINDS: [&str; 4] = [
    semconv::CLIENT_ADDRESS,
    semconv::ENDUSER_ID,
    semconv::SESSION_ID,
    TOKEN,
];

impl ActorKind {
    pub const ALL: [ActorKind; 4] = [
        ActorKind::ClientAddress,
        ActorKind::EnduserId,
        ActorKind::SessionId,
        ActorKind::Token,
    ];

    /// The kind named `text`, or why not.
    pub fn parse(text: &str) -> Result<ActorKind, String> {
        ActorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown actor kind `{text}`; supported kinds: {}",
                    SUPPORTED_KINDS.join(", ")
                )
            })
    }

    /// The kind as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Token => TOKEN,
            other => other.attribute_key(),
        }
    }

    /// The span attribute holding the actor.
    pub fn attribute_key(self) -> &'static str {
        match self.column() {
            Some(column) => column.attribute_key(),
            None => credential::TOKEN_FINGERPRINT,
        }
    }

    /// The dedicated column holding the actor; `None` for tokens, read
    /// from the generic attributes.
    pub fn column(self) -> Option<DedicatedColumn> {
        match self {
            ActorKind::ClientAddress => Some(DedicatedColumn::ClientAddress),
            ActorKind::EnduserId => Some(DedicatedColumn::EnduserId),
            ActorKind::SessionId => Some(DedicatedColumn::SessionId),
            ActorKind::Token => None,
        }
    }

    /// The alert label a rule grouping by this attribute gets
    /// (`client.address` -> `client_address`).
    pub fn label_name(self) -> &'static str {
        match self.column() {
            Some(column) => column.column_name(),
            None => "tracewarden_token_fingerprint",
        }
    }
}

/// A checked actor value: trimmed, not empty, not absurdly long. An
/// address is canonicalised (`::ffff:203.0.113.7` is `203.0.113.7`) the way
/// spans are normalised; anything else in `client.address` (a host name) is
/// taken as given.
pub fn actor_value(kind: ActorKind, text: &str) -> Result<String, String> {
    const MAX_VALUE_BYTES: usize = 1024;
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("the {} value is empty", kind.as_str()));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the {} value is longer than {MAX_VALUE_BYTES} bytes",
            kind.as_str()
        ));
    }
    match kind {
        ActorKind::ClientAddress => match value.parse::<std::net::IpAddr>() {
            Ok(address) => Ok(address.to_canonical().to_string()),
            Err(_) => Ok(value.to_string()),
        },
        ActorKind::Token => {
            // Only the fingerprint: a raw token in a URL would end up in
            // access logs and the audit log.
            let fingerprint = value.to_ascii_lowercase();
            if credential::is_fingerprint(&fingerprint) {
                Ok(fingerprint)
            } else {
                Err(format!(
                    "a token actor is its fingerprint, `{}` and 32 hex digits (`tracewarden \
                     investigate --actor token=...` fingerprints a raw token locally); a raw \
                     token does not belong in a URL",
                    credential::PREFIX
                ))
            }
        }
        ActorKind::EnduserId | ActorKind::SessionId => Ok(value.to_string()),
    }
}

/// What a timeline keeps of one request (from a span read with the
/// dedicated columns only).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub time: u64,
    pub end: u64,
    pub trace_id: TraceId,
    pub span_id: [u8; 8],
    pub service: String,
    pub name: String,
    pub method: String,
    pub route: String,
    pub path: String,
    pub status: String,
}

impl Request {
    fn new(record: &SpanRecord) -> Request {
        let span = &record.span;
        let text = |key: &str| {
            span.attribute(key)
                .and_then(AnyValue::as_str)
                .unwrap_or("")
                .to_string()
        };
        let path = text(semconv::URL_PATH);
        let route = [text(semconv::HTTP_ROUTE), path.clone()]
            .into_iter()
            .find(|r| !r.is_empty())
            .unwrap_or_else(|| span.name.to_string());
        Request {
            time: span.start_time_unix_nano,
            end: span.end_time_unix_nano.max(span.start_time_unix_nano),
            trace_id: span.trace_id,
            span_id: span.span_id.to_bytes(),
            service: record.resource.service_name().to_string(),
            name: span.name.to_string(),
            method: text(semconv::HTTP_REQUEST_METHOD),
            route,
            path,
            status: status(record),
        }
    }

    /// The order of the timeline, and what a cursor points at.
    pub fn key(&self) -> Key {
        Key {
            time: self.time,
            trace_id: self.trace_id.to_bytes(),
            span_id: self.span_id,
        }
    }
}

/// The HTTP status code; for other spans the span status (`error`, `ok`,
/// `unset`).
fn status(record: &SpanRecord) -> String {
    match record.span.attribute(semconv::HTTP_RESPONSE_STATUS_CODE) {
        Some(AnyValue::Int(code)) => code.to_string(),
        Some(AnyValue::Str(code)) if !code.is_empty() => code.to_string(),
        _ => match record.span.status.code {
            StatusCode::Error => "error",
            StatusCode::Ok => "ok",
            StatusCode::Unset => "unset",
        }
        .to_string(),
    }
}

/// A position in the timeline: start time, then trace id, then span id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub time: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// The requests among the actor's spans (see the module's rule), oldest
/// first.
pub fn select_requests(spans: &[SpanRecord]) -> Vec<Request> {
    let mut by_trace: HashMap<TraceId, Vec<&SpanRecord>> = HashMap::new();
    for record in spans {
        by_trace
            .entry(record.span.trace_id)
            .or_default()
            .push(record);
    }
    let mut requests = Vec::new();
    for (_, mut spans) in by_trace {
        spans.sort_by_key(|r| (r.span.start_time_unix_nano, r.span.span_id.to_bytes()));
        let entries: Vec<&SpanRecord> = spans
            .iter()
            .copied()
            .filter(|r| r.span.parent_span_id.is_none() || r.span.kind == SpanKind::Server)
            .collect();
        if entries.is_empty() {
            requests.extend(spans.first().map(|r| Request::new(r)));
        } else {
            requests.extend(entries.into_iter().map(Request::new));
        }
    }
    requests.sort_by_key(Request::key);
    requests
}

/// One value counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    pub value: String,
    pub count: u64,
}

/// Another identity seen on the actor's spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub kind: &'static str,
    pub value: String,
    /// The actor's spans carrying it.
    pub count: u64,
    pub first_seen: u64,
    pub last_seen: u64,
}

/// The summary over every request of the period (not only one page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub first_seen: Option<u64>,
    pub last_seen: Option<u64>,
    pub requests: u64,
    pub traces: u64,
    pub by_status: Vec<Count>,
    pub by_route: Vec<Count>,
    pub identities: Vec<Identity>,
}

/// The summary of `requests` (oldest first) and of the identities other
/// than the actor's own kind on `spans` (every span of the actor).
pub fn summarise(kind: ActorKind, requests: &[Request], spans: &[SpanRecord]) -> Summary {
    let mut traces: Vec<TraceId> = requests.iter().map(|r| r.trace_id).collect();
    traces.sort_unstable_by_key(|t| t.to_bytes());
    traces.dedup();
    let mut identities: BTreeMap<(&'static str, String), Identity> = BTreeMap::new();
    for record in spans {
        let time = record.span.start_time_unix_nano;
        for other in ActorKind::ALL.into_iter().filter(|&k| k != kind) {
            let Some(value) = record
                .span
                .attribute(other.attribute_key())
                .and_then(AnyValue::as_str)
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            let entry = identities
                .entry((other.as_str(), value.to_string()))
                .or_insert_with(|| Identity {
                    kind: other.as_str(),
                    value: value.to_string(),
                    count: 0,
                    first_seen: time,
                    last_seen: time,
                });
            entry.count += 1;
            entry.first_seen = entry.first_seen.min(time);
            entry.last_seen = entry.last_seen.max(time);
        }
    }
    let mut identities: Vec<Identity> = identities.into_values().collect();
    identities.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.kind.cmp(b.kind))
            .then(a.value.cmp(&b.value))
    });
    Summary {
        first_seen: requests.iter().map(|r| r.time).min(),
        last_seen: requests.iter().map(|r| r.time).max(),
        requests: requests.len() as u64,
        traces: traces.len() as u64,
        by_status: counts(requests.iter().map(|r| r.status.as_str())),
        by_route: counts(requests.iter().map(|r| r.route.as_str())),
        identities,
    }
}

/// Values by count, most frequent first (then by value).
fn counts<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Count> {
    let mut map: HashMap<&str, u64> = HashMap::new();
    for value in values {
        *map.entry(value).or_default() += 1;
    }
    let mut counts: Vec<Count> = map
        .into_iter()
        .map(|(value, count)| Count {
            value: value.to_string(),
            count,
        })
        .collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
    counts
}

/// One page: the requests after `after` (all when `None`), at most
/// `limit`, and the cursor of the next page when more follow.
pub fn page(requests: &[Request], after: Option<Key>, limit: usize) -> (&[Request], Option<Key>) {
    let from = match after {
        Some(key) => requests.partition_point(|r| r.key() <= key),
        None => 0,
    };
    let rest = requests.get(from..).unwrap_or_default();
    let taken = rest.get(..limit.min(rest.len())).unwrap_or_default();
    let next = (rest.len() > taken.len())
        .then(|| taken.last().map(Request::key))
        .flatten();
    (taken, next)
}

/// Cursor format version: a cursor is `v1` and the key, hex-encoded, so
/// clients treat it as opaque and a later format can be told apart.
const CURSOR_VERSION: &str = "v1";

/// The opaque text of a cursor.
pub fn encode_cursor(key: Key) -> String {
    let mut text = String::with_capacity(2 + 2 * (8 + 16 + 8));
    text.push_str(CURSOR_VERSION);
    for byte in key
        .time
        .to_be_bytes()
        .iter()
        .chain(&key.trace_id)
        .chain(&key.span_id)
    {
        text.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        text.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    text
}

/// The key of a cursor [`encode_cursor`] made, or why it is not one.
pub fn decode_cursor(text: &str) -> Result<Key, String> {
    let invalid = || format!("invalid cursor `{text}`: pass nextCursor as it was answered");
    let hex = text
        .trim()
        .strip_prefix(CURSOR_VERSION)
        .ok_or_else(invalid)?;
    if hex.len() != 2 * 32 || !hex.is_ascii() {
        return Err(invalid());
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or_else(invalid)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
    }
    let mut time = [0u8; 8];
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    time.copy_from_slice(&bytes[..8]);
    trace_id.copy_from_slice(&bytes[8..24]);
    span_id.copy_from_slice(&bytes[24..]);
    Ok(Key {
        time: u64::from_be_bytes(time),
        trace_id,
        span_id,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{KeyValue, Resource, Span, SpanId};

    use super::*;

    fn span(
        trace: u8,
        id: u8,
        parent: Option<u8>,
        kind: SpanKind,
        start: u64,
        end: u64,
        attributes: &[(&str, AnyValue)],
    ) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([trace; 16]),
            SpanId::from_bytes([id; 8]),
            "POST /login",
        );
        span.parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
        span.kind = kind;
        span.start_time_unix_nano = start;
        span.end_time_unix_nano = end;
        span.attributes = attributes
            .iter()
            .map(|(k, v)| KeyValue::new(*k, v.clone()))
            .collect();
        let resource = Resource {
            attributes: vec![KeyValue::new(
                semconv::SERVICE_NAME,
                AnyValue::from("gateway"),
            )],
            ..Resource::default()
        };
        SpanRecord {
            resource: Arc::new(resource),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn addr() -> (&'static str, AnyValue) {
        (semconv::CLIENT_ADDRESS, AnyValue::from("203.0.113.7"))
    }

    #[test]
    fn kinds_and_values_are_checked() {
        assert_eq!(
            ActorKind::parse("client.address"),
            Ok(ActorKind::ClientAddress)
        );
        assert_eq!(ActorKind::parse("enduser.id"), Ok(ActorKind::EnduserId));
        assert_eq!(ActorKind::parse("session.id"), Ok(ActorKind::SessionId));
        assert_eq!(ActorKind::parse("token"), Ok(ActorKind::Token));
        let unknown = ActorKind::parse("user").unwrap_err();
        assert!(unknown.contains("unknown actor kind"), "{unknown}");
        assert!(
            unknown.contains("client.address, enduser.id, session.id, token"),
            "{unknown}"
        );
        assert_eq!(ActorKind::EnduserId.label_name(), "enduser_id");
        // The label a rule keyed on the fingerprint gets in its alerts.
        assert_eq!(
            tracewarden_alert::labels::key_label_names(["span.tracewarden.token.fingerprint"]),
            [ActorKind::Token.label_name()]
        );
        assert_eq!(
            ActorKind::Token.attribute_key(),
            tracewarden_model::credential::TOKEN_FINGERPRINT
        );
        // A token is named by its fingerprint (any case), never in clear.
        let fingerprint = tracewarden_model::credential::fingerprint("Bearer s3cret");
        assert_eq!(
            actor_value(
                ActorKind::Token,
                &fingerprint.to_uppercase().replace("SHA256", "sha256")
            )
            .unwrap(),
            fingerprint
        );
        let raw = actor_value(ActorKind::Token, "Bearer s3cret").unwrap_err();
        assert!(raw.contains("fingerprint"), "{raw}");
        assert!(!raw.contains("s3cret"), "{raw}");
        assert!(actor_value(ActorKind::Token, "sha256:abc").is_err());
        assert_eq!(
            actor_value(ActorKind::ClientAddress, " ::ffff:203.0.113.7 ").unwrap(),
            "203.0.113.7"
        );
        assert_eq!(actor_value(ActorKind::EnduserId, "alice").unwrap(), "alice");
        assert!(actor_value(ActorKind::SessionId, "  ").is_err());
        assert!(actor_value(ActorKind::SessionId, &"x".repeat(2000)).is_err());
    }

    #[test]
    fn root_and_server_spans_are_requests() {
        let spans = vec![
            // Trace 1: a root span (any kind), and a server span: two; a
            // client span carrying the address is not a request.
            span(1, 1, None, SpanKind::Internal, 100, 200, &[addr()]),
            span(1, 2, Some(9), SpanKind::Server, 120, 150, &[addr()]),
            span(1, 3, Some(2), SpanKind::Client, 125, 130, &[addr()]),
            // Trace 2: two concurrent server spans under a browser root
            // that is not the actor's: two requests.
            span(2, 1, Some(7), SpanKind::Server, 300, 310, &[addr()]),
            span(2, 2, Some(7), SpanKind::Server, 300, 330, &[addr()]),
            // Trace 3: only an internal and a client span carry the actor:
            // the earliest counts.
            span(3, 6, Some(4), SpanKind::Client, 55, 58, &[addr()]),
            span(3, 5, Some(4), SpanKind::Internal, 50, 60, &[addr()]),
        ];
        let requests = select_requests(&spans);
        let keys: Vec<(u8, u8)> = requests
            .iter()
            .map(|r| (r.trace_id.to_bytes()[0], r.span_id[0]))
            .collect();
        assert_eq!(keys, vec![(3, 5), (1, 1), (1, 2), (2, 1), (2, 2)]);
    }

    #[test]
    fn request_fields_fall_back_sensibly() {
        let with_http = span(
            1,
            1,
            None,
            SpanKind::Server,
            1,
            2,
            &[
                addr(),
                (semconv::HTTP_ROUTE, AnyValue::from("/users/{id}")),
                (semconv::URL_PATH, AnyValue::from("/users/7")),
                (semconv::HTTP_REQUEST_METHOD, AnyValue::from("GET")),
                (semconv::HTTP_RESPONSE_STATUS_CODE, AnyValue::Int(404)),
            ],
        );
        let request = &select_requests(&[with_http])[0];
        assert_eq!(
            (request.route.as_str(), request.path.as_str()),
            ("/users/{id}", "/users/7")
        );
        assert_eq!(
            (request.method.as_str(), request.status.as_str()),
            ("GET", "404")
        );
        let mut bare = span(2, 1, None, SpanKind::Server, 1, 2, &[addr()]);
        bare.span_mut().status.code = StatusCode::Error;
        let request = &select_requests(&[bare])[0];
        assert_eq!(request.route, "POST /login");
        assert_eq!(request.status, "error");
        assert_eq!(request.service, "gateway");
    }

    #[test]
    fn summary_counts_every_request_and_other_identities() {
        let user = |name: &str| (semconv::ENDUSER_ID, AnyValue::from(name));
        let code = |c: i64| (semconv::HTTP_RESPONSE_STATUS_CODE, AnyValue::Int(c));
        let route = (semconv::HTTP_ROUTE, AnyValue::from("/login"));
        let spans = vec![
            span(
                1,
                1,
                None,
                SpanKind::Server,
                10,
                11,
                &[addr(), user("alice"), code(401), route.clone()],
            ),
            span(
                2,
                1,
                None,
                SpanKind::Server,
                20,
                21,
                &[addr(), user("alice"), code(401), route.clone()],
            ),
            span(
                3,
                1,
                None,
                SpanKind::Server,
                30,
                31,
                &[addr(), user("bob"), code(200), route.clone()],
            ),
            span(4, 1, None, SpanKind::Server, 40, 41, &[addr(), code(200)]),
        ];
        let requests = select_requests(&spans);
        let summary = summarise(ActorKind::ClientAddress, &requests, &spans);
        assert_eq!((summary.requests, summary.traces), (4, 4));
        assert_eq!(
            (summary.first_seen, summary.last_seen),
            (Some(10), Some(40))
        );
        let statuses: Vec<(&str, u64)> = summary
            .by_status
            .iter()
            .map(|c| (c.value.as_str(), c.count))
            .collect();
        assert_eq!(statuses, vec![("200", 2), ("401", 2)]);
        let routes: Vec<(&str, u64)> = summary
            .by_route
            .iter()
            .map(|c| (c.value.as_str(), c.count))
            .collect();
        assert_eq!(routes, vec![("/login", 3), ("POST /login", 1)]);
        let users: Vec<(&str, &str, u64, u64, u64)> = summary
            .identities
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.count, i.first_seen, i.last_seen))
            .collect();
        assert_eq!(
            users,
            vec![
                ("enduser.id", "alice", 2, 10, 20),
                ("enduser.id", "bob", 1, 30, 30)
            ]
        );
        // The actor's own kind is not listed as another identity.
        let by_user = summarise(ActorKind::EnduserId, &requests, &spans);
        assert!(
            by_user
                .identities
                .iter()
                .all(|i| i.kind == "client.address")
        );
        assert_eq!(
            summarise(ActorKind::ClientAddress, &[], &[]),
            Summary::default()
        );
    }

    #[test]
    fn pages_follow_the_cursor_to_the_end_without_gaps_or_repeats() {
        // Equal start times are ordered by trace then span id.
        let spans: Vec<SpanRecord> = (0..7u8)
            .map(|i| {
                span(
                    i,
                    1,
                    None,
                    SpanKind::Server,
                    100 + u64::from(i / 2),
                    1000,
                    &[addr()],
                )
            })
            .collect();
        let requests = select_requests(&spans);
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let (taken, next) = page(&requests, after, 3);
            seen.extend(taken.iter().map(|r| r.trace_id.to_bytes()[0]));
            pages += 1;
            match next {
                Some(key) => after = Some(decode_cursor(&encode_cursor(key)).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<u8>>());
        assert_eq!(pages, 3);
        // An exact fit has no next page.
        assert_eq!(page(&requests, None, 7).1, None);
        assert_eq!(page(&requests, None, 6).1, Some(requests[5].key()));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let key = Key {
            time: 1_733_340_000_000_000_000,
            trace_id: [0xab; 16],
            span_id: [7; 8],
        };
        let text = encode_cursor(key);
        assert!(text.starts_with("v1"));
        assert_eq!(decode_cursor(&text), Ok(key));
        for bad in [
            "",
            "v1",
            "v2",
            "v1zz",
            &text[..text.len() - 1],
            &format!("{text}00"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        let mut wrong = text.clone();
        wrong.replace_range(2..4, "g0");
        assert!(decode_cursor(&wrong).is_err());
    }
}
