//! The slow path: rewrites an attribute list that has something to change.
//! Allocation is fine here; the hot path ([`super::needs_rewrite`]) decides
//! whether we get here at all.

use crate::semconv::*;
use crate::span::SpanKind;
use crate::value::{AnyValue, KeyValue, Str, find_attribute};

use super::convert::{self, to_int, to_port, to_text};
use super::current::{Current, Present};
use super::keys::{Key, Rule, classify};
use super::{Target, client, int_value, url};

/// What the span itself (not its attributes) should take from the rewrite.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// A Zipkin `error` tag said the span failed; the status message.
    pub error: Option<Str>,
}

/// Rewrites `attributes` onto current names, moving what it replaces or
/// converts to `originals`. See the module docs of `normalise` for the rules.
pub(super) fn attributes(
    attributes: &mut Vec<KeyValue>,
    originals: &mut Vec<KeyValue>,
    target: Target,
) -> Outcome {
    let legacy_rule = |key: &str| match classify(key) {
        Some(Key::Legacy(rule)) if rule.applies(target) => Some(rule),
        _ => None,
    };

    // One pass over the keys: note which current keys are present, convert
    // the integer ones that arrived as strings (keeping the string), and
    // find the legacy ones.
    let mut present = Present::default();
    let mut legacy: Vec<(Rule, usize)> = Vec::new();
    for (position, kv) in attributes.iter_mut().enumerate() {
        if let Some(current) = Current::from_key(&kv.key) {
            present.insert(current);
            if let Some(kind) = current.int_kind()
                && !matches!(kv.value, AnyValue::Int(_))
                && let Some(n) = int_value(kind, &kv.value)
            {
                originals.push(kv.clone());
                kv.value = AnyValue::Int(n);
            }
            if current == Current::ClientAddress
                && let AnyValue::Str(address) = &kv.value
                && let Some(v4) = client::unmapped_ipv4(address)
            {
                originals.push(kv.clone());
                kv.value = AnyValue::from(v4.to_string().as_str());
            }
        } else if let Some(rule) = legacy_rule(&kv.key) {
            legacy.push((rule, position));
        }
    }

    // Legacy attributes go straight to the originals, in the order received;
    // the rules read them there. `extract_if` keeps the others' order.
    originals.reserve(legacy.len());
    let first_legacy = originals.len();
    let mut positions = legacy.iter().map(|(_, position)| *position).peekable();
    let mut position = 0;
    originals.extend(attributes.extract_if(.., |_| {
        let is_legacy = positions.next_if_eq(&position).is_some();
        position += 1;
        is_legacy
    }));
    let moved = originals.get(first_legacy..).unwrap_or_default();

    // Rules run in priority order, so when two legacy attributes map to the
    // same current key the higher-priority one sets it (for duplicate keys,
    // the first received).
    for (received, (_, index)) in legacy.iter_mut().enumerate() {
        *index = received;
    }
    legacy.sort_unstable();

    // Most legacy attributes map to one current attribute, a few to more:
    // reserve once rather than grow twice.
    if !legacy.is_empty() {
        attributes.reserve(legacy.len() + 2);
    }
    let mut out = Out {
        attributes,
        present,
        error: None,
        peer_name: None,
    };
    for (rule, received) in legacy {
        if let Some(kv) = moved.get(received) {
            apply(rule, &kv.value, target, &mut out);
        }
    }

    if target == Target::Span(SpanKind::Server) {
        out.derive_client_address();
    }
    Outcome { error: out.error }
}

/// The attributes being built, and what rules leave for after them.
struct Out<'a> {
    attributes: &'a mut Vec<KeyValue>,
    /// Which current keys `attributes` holds.
    present: Present,
    error: Option<Str>,
    /// `net.peer.name` on a server span: the client's host name, the last
    /// resort for `client.address`.
    peer_name: Option<Str>,
}

impl Out<'_> {
    fn has(&self, key: Current) -> bool {
        self.present.contains(key)
    }

    /// Sets `key` unless present (a current attribute, or one set by a rule
    /// of higher priority, wins). `value` is only computed when needed.
    fn set_with(&mut self, key: Current, value: impl FnOnce() -> Option<AnyValue>) {
        if !self.has(key)
            && let Some(value) = value()
        {
            // `const_new` keeps the static key without a heap allocation even
            // past the 24 bytes a `Str` holds inline.
            self.attributes.push(KeyValue {
                key: Str::const_new(key.key()),
                value,
            });
            self.present.insert(key);
        }
    }

    fn set_text(&mut self, key: Current, value: &AnyValue) {
        self.set_with(key, || to_text(value).map(AnyValue::Str));
    }

    fn set_str(&mut self, key: Current, text: Option<&str>) {
        self.set_with(key, || text.map(AnyValue::from));
    }

    fn set_int(&mut self, key: Current, value: &AnyValue) {
        self.set_with(key, || to_int(value).map(AnyValue::Int));
    }

    fn set_port(&mut self, key: Current, value: &AnyValue) {
        self.set_with(key, || to_port(value).map(AnyValue::Int));
    }

    fn set_port_number(&mut self, key: Current, port: Option<u16>) {
        self.set_with(key, || port.map(|p| AnyValue::Int(i64::from(p))));
    }

    /// `client.address` on a server span that lacks it, in the conventions'
    /// order: the forwarding headers, else the socket peer (with its port as
    /// `client.port`), else the legacy `net.peer.name`.
    fn derive_client_address(&mut self) {
        if self.has(Current::ClientAddress) {
            return;
        }
        let attributes: &[KeyValue] = self.attributes;
        let mut port = None;
        let address = if let Some(forwarded) = client::from_headers(attributes) {
            Some(Str::from(forwarded))
        } else if let Some(AnyValue::Str(peer)) = find_attribute(attributes, NETWORK_PEER_ADDRESS) {
            if let Some(AnyValue::Int(p)) = find_attribute(attributes, NETWORK_PEER_PORT) {
                port = Some(*p);
            }
            Some(peer.clone())
        } else {
            self.peer_name.take()
        };
        // One client, one address: `::ffff:203.0.113.5` is 203.0.113.5.
        let address = address.map(|a| match client::unmapped_ipv4(&a) {
            Some(v4) => Str::from(v4.to_string().as_str()),
            None => a,
        });
        self.set_with(Current::ClientAddress, || address.map(AnyValue::Str));
        self.set_with(Current::ClientPort, || port.map(AnyValue::Int));
    }
}

/// Whether the remote side (`net.peer.*`) of a span of this kind is a
/// server: the callee of a client span, the broker of a producer or consumer.
fn peer_is_server(target: Target) -> bool {
    matches!(
        target,
        Target::Span(SpanKind::Client | SpanKind::Producer | SpanKind::Consumer)
    )
}

fn apply(rule: Rule, value: &AnyValue, target: Target, out: &mut Out<'_>) {
    match rule {
        Rule::HttpStatusCode => out.set_int(Current::HttpResponseStatusCode, value),
        Rule::HttpMethod => {
            if !out.has(Current::HttpRequestMethod)
                && let Some(raw) = to_text(value)
            {
                let (method, original) = convert::method(&raw);
                out.set_with(Current::HttpRequestMethod, || Some(AnyValue::Str(method)));
                out.set_with(Current::HttpRequestMethodOriginal, || {
                    original.map(AnyValue::Str)
                });
            }
        }
        Rule::HttpTarget => {
            if let Some(text) = value.as_str() {
                let parts = url::split_target(text);
                out.set_str(Current::UrlPath, parts.path);
                out.set_str(Current::UrlQuery, parts.query);
                out.set_str(Current::UrlFragment, parts.fragment);
            }
        }
        Rule::ZipkinHttpPath => out.set_text(Current::UrlPath, value),
        Rule::HttpScheme => {
            out.set_with(Current::UrlScheme, || {
                value.as_str().map(|s| AnyValue::Str(convert::lowercase(s)))
            });
        }
        Rule::HttpUserAgent => out.set_text(Current::UserAgentOriginal, value),
        Rule::HttpClientIp => out.set_with(Current::ClientAddress, || {
            value
                .as_str()
                .and_then(client::first_list_entry)
                .map(AnyValue::from)
        }),
        Rule::NetSockPeerAddr | Rule::NetPeerIp => out.set_text(Current::NetworkPeerAddress, value),
        Rule::NetSockPeerPort => out.set_port(Current::NetworkPeerPort, value),
        Rule::NetPeerPort if peer_is_server(target) => out.set_port(Current::ServerPort, value),
        Rule::NetPeerPort => out.set_port(Current::NetworkPeerPort, value),
        Rule::NetPeerName if peer_is_server(target) => out.set_text(Current::ServerAddress, value),
        Rule::NetPeerName => {
            if out.peer_name.is_none() {
                out.peer_name = to_text(value);
            }
        }
        Rule::NetHostName | Rule::HttpServerName => out.set_text(Current::ServerAddress, value),
        Rule::NetHostPort => out.set_port(Current::ServerPort, value),
        Rule::HttpHost => {
            if let Some(text) = value.as_str() {
                let (host, port) = url::split_host_port(text.trim());
                server_address_and_port(out, host, port);
            }
        }
        Rule::HttpUrl => url_full(value, out),
        Rule::NetProtocolName => out.set_with(Current::NetworkProtocolName, || {
            to_text(value).map(|name| AnyValue::Str(convert::lowercase(&name)))
        }),
        Rule::NetProtocolVersion | Rule::HttpFlavor => out
            .set_with(Current::NetworkProtocolVersion, || {
                to_text(value).map(|version| AnyValue::Str(convert::protocol_version(&version)))
            }),
        Rule::HttpRequestContentLength => out.set_int(Current::HttpRequestBodySize, value),
        Rule::HttpResponseContentLength => out.set_int(Current::HttpResponseBodySize, value),
        Rule::HttpResendCount => out.set_int(Current::HttpRequestResendCount, value),
        // Header values stay as they are (a string or a string array).
        Rule::HeaderXForwardedFor => {
            out.set_with(Current::HeaderXForwardedFor, || Some(value.clone()))
        }
        Rule::HeaderXRealIp => out.set_with(Current::HeaderXRealIp, || Some(value.clone())),
        Rule::NetSockHostAddr | Rule::NetHostIp => {
            out.set_text(Current::NetworkLocalAddress, value)
        }
        Rule::NetSockHostPort => out.set_port(Current::NetworkLocalPort, value),
        Rule::NetTransport => out.set_with(Current::NetworkTransport, || {
            value.as_str().map(|t| AnyValue::Str(convert::transport(t)))
        }),
        Rule::EnduserRole => out.set_with(Current::UserRoles, || convert::roles(value)),
        Rule::PeerService => out.set_text(Current::ServicePeerName, value),
        Rule::DbStatement => out.set_text(Current::DbQueryText, value),
        Rule::DbOperation => out.set_text(Current::DbOperationName, value),
        Rule::DbName | Rule::DbRedisDatabaseIndex => out.set_text(Current::DbNamespace, value),
        Rule::DbCollection => out.set_text(Current::DbCollectionName, value),
        Rule::MessagingDestination => out.set_text(Current::MessagingDestinationName, value),
        Rule::OtelLibraryName => out.set_text(Current::OtelScopeName, value),
        Rule::OtelLibraryVersion => out.set_text(Current::OtelScopeVersion, value),
        Rule::DeploymentEnvironment => out.set_text(Current::DeploymentEnvironmentName, value),
        Rule::TelemetryAutoVersion => out.set_text(Current::TelemetryDistroVersion, value),
        Rule::ZipkinError => {
            if out.error.is_none() {
                out.error = error_message(value);
            }
        }
    }
}

/// `server.address` and `server.port` from a host and port found together
/// (`http.host`, `http.url`). The port is only taken with its own host: a
/// URL's port says nothing about a different `server.address` set earlier.
fn server_address_and_port(out: &mut Out<'_>, host: Option<&str>, port: Option<u16>) {
    let Some(host) = host else { return };
    if !out.has(Current::ServerAddress) {
        out.set_str(Current::ServerAddress, Some(host));
    } else if find_attribute(out.attributes, SERVER_ADDRESS).and_then(AnyValue::as_str)
        != Some(host)
    {
        return;
    }
    out.set_port_number(Current::ServerPort, port);
}

/// `url.full` from `http.url`, credentials redacted, plus whatever of
/// `url.scheme`, `url.path`, `url.query`, `url.fragment`, `server.address`
/// and `server.port` the URL gives and the span lacks.
fn url_full(value: &AnyValue, out: &mut Out<'_>) {
    let Some(text) = value.as_str() else {
        out.set_text(Current::UrlFull, value);
        return;
    };
    let parts = url::parse_url(text);
    out.set_with(Current::UrlFull, || {
        let redacted = parts
            .as_ref()
            .and_then(|p| p.userinfo)
            .and_then(|range| url::redact_userinfo(text, range));
        Some(AnyValue::Str(
            redacted.map_or_else(|| Str::from(text), Str::from),
        ))
    });
    let Some(parts) = parts else { return };
    out.set_with(Current::UrlScheme, || {
        parts.scheme.map(|s| AnyValue::Str(convert::lowercase(s)))
    });
    out.set_str(Current::UrlPath, parts.path);
    out.set_str(Current::UrlQuery, parts.query);
    out.set_str(Current::UrlFragment, parts.fragment);
    server_address_and_port(out, parts.host, parts.port_or_default());
}

/// Zipkin marks a failed span with an `error` tag holding the message
/// (OpenTracing used a boolean). `None` when the tag says it did not fail.
fn error_message(value: &AnyValue) -> Option<Str> {
    match value {
        AnyValue::Bool(false) => None,
        AnyValue::Bool(true) => Some(Str::default()),
        AnyValue::Str(s) if s.trim().eq_ignore_ascii_case("false") => None,
        AnyValue::Str(s) if s.trim().eq_ignore_ascii_case("true") => Some(Str::default()),
        other => Some(to_text(other).unwrap_or_default()),
    }
}
