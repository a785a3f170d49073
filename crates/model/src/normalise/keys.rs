//! Which attribute keys normalisation cares about: one `match` on the key,
//! so the common case (a span with current names only) costs one string
//! comparison chain per attribute and no allocation.

use crate::semconv::*;
use crate::span::SpanKind;

use super::Target;

/// What a key means to normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A legacy name, mapped by a [`Rule`].
    Legacy(Rule),
    /// A current name whose convention type is an integer; a string value
    /// holding one (Zipkin tags are strings) is converted in place.
    Int(IntKind),
    /// `client.address` is present: no derivation needed.
    ClientAddress,
    /// An attribute `client.address` can be derived from on server spans.
    ClientHint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntKind {
    /// Any integer (status codes, sizes, counts).
    Any,
    /// A TCP/UDP port, 0 to 65535.
    Port,
}

/// How a legacy attribute maps onto current ones. Declaration order is the
/// priority when several legacy attributes map to the same current key: the
/// earlier rule sets it, later ones only move their attribute to the
/// originals (for example `http.target` gives `url.path` before `http.url`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Rule {
    HttpStatusCode,
    HttpMethod,
    HttpTarget,
    ZipkinHttpPath,
    HttpScheme,
    HttpUserAgent,
    HttpClientIp,
    NetSockPeerAddr,
    NetPeerIp,
    NetSockPeerPort,
    NetPeerPort,
    NetPeerName,
    NetHostName,
    NetHostPort,
    HttpHost,
    HttpServerName,
    HttpUrl,
    NetProtocolName,
    NetProtocolVersion,
    HttpFlavor,
    HttpRequestContentLength,
    HttpResponseContentLength,
    HttpResendCount,
    HeaderXForwardedFor,
    HeaderXRealIp,
    NetSockHostAddr,
    NetHostIp,
    NetSockHostPort,
    NetTransport,
    EnduserRole,
    PeerService,
    DbStatement,
    DbOperation,
    DbName,
    DbRedisDatabaseIndex,
    DbCollection,
    MessagingDestination,
    OtelLibraryName,
    OtelLibraryVersion,
    DeploymentEnvironment,
    TelemetryAutoVersion,
    ZipkinError,
}

impl Rule {
    /// Whether the rule maps its attribute for this target. A legacy name
    /// whose meaning depends on the span kind stays untouched where no
    /// current name fits (for example `net.host.name` on a client span
    /// names the local host, not the server).
    pub(crate) fn applies(self, target: Target) -> bool {
        let kind = match target {
            Target::Span(kind) => Some(kind),
            Target::Log | Target::Resource => None,
        };
        match self {
            Rule::NetPeerName => matches!(
                kind,
                Some(SpanKind::Server | SpanKind::Client | SpanKind::Producer | SpanKind::Consumer)
            ),
            Rule::NetHostName | Rule::NetHostPort => kind == Some(SpanKind::Server),
            // An `error` attribute on a log record or resource is someone's
            // own field, not Zipkin's error tag.
            Rule::ZipkinError => kind.is_some(),
            _ => true,
        }
    }
}

macro_rules! key_table {
    ($($key:path => $class:expr,)*) => {
        /// What `key` means to normalisation; `None` for every other key.
        #[inline]
        pub(crate) fn classify(key: &str) -> Option<Key> {
            match key {
                $($key => Some($class),)*
                _ => None,
            }
        }

        /// Every key [`classify`] knows, with its meaning (for tests and docs).
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) const KEYS: &[(&str, Key)] = &[$(($key, $class),)*];
    };
}

key_table! {
    LEGACY_HTTP_STATUS_CODE => Key::Legacy(Rule::HttpStatusCode),
    LEGACY_HTTP_METHOD => Key::Legacy(Rule::HttpMethod),
    LEGACY_HTTP_TARGET => Key::Legacy(Rule::HttpTarget),
    ZIPKIN_HTTP_PATH => Key::Legacy(Rule::ZipkinHttpPath),
    LEGACY_HTTP_SCHEME => Key::Legacy(Rule::HttpScheme),
    LEGACY_HTTP_USER_AGENT => Key::Legacy(Rule::HttpUserAgent),
    LEGACY_HTTP_CLIENT_IP => Key::Legacy(Rule::HttpClientIp),
    LEGACY_NET_SOCK_PEER_ADDR => Key::Legacy(Rule::NetSockPeerAddr),
    LEGACY_NET_PEER_IP => Key::Legacy(Rule::NetPeerIp),
    LEGACY_NET_SOCK_PEER_PORT => Key::Legacy(Rule::NetSockPeerPort),
    LEGACY_NET_PEER_PORT => Key::Legacy(Rule::NetPeerPort),
    LEGACY_NET_PEER_NAME => Key::Legacy(Rule::NetPeerName),
    LEGACY_NET_HOST_NAME => Key::Legacy(Rule::NetHostName),
    LEGACY_NET_HOST_PORT => Key::Legacy(Rule::NetHostPort),
    LEGACY_HTTP_HOST => Key::Legacy(Rule::HttpHost),
    LEGACY_HTTP_SERVER_NAME => Key::Legacy(Rule::HttpServerName),
    LEGACY_HTTP_URL => Key::Legacy(Rule::HttpUrl),
    LEGACY_NET_PROTOCOL_NAME => Key::Legacy(Rule::NetProtocolName),
    LEGACY_NET_PROTOCOL_VERSION => Key::Legacy(Rule::NetProtocolVersion),
    LEGACY_HTTP_FLAVOR => Key::Legacy(Rule::HttpFlavor),
    LEGACY_HTTP_REQUEST_CONTENT_LENGTH => Key::Legacy(Rule::HttpRequestContentLength),
    LEGACY_HTTP_RESPONSE_CONTENT_LENGTH => Key::Legacy(Rule::HttpResponseContentLength),
    LEGACY_HTTP_RESEND_COUNT => Key::Legacy(Rule::HttpResendCount),
    LEGACY_HTTP_REQUEST_HEADER_X_FORWARDED_FOR => Key::Legacy(Rule::HeaderXForwardedFor),
    LEGACY_HTTP_REQUEST_HEADER_X_REAL_IP => Key::Legacy(Rule::HeaderXRealIp),
    LEGACY_NET_SOCK_HOST_ADDR => Key::Legacy(Rule::NetSockHostAddr),
    LEGACY_NET_HOST_IP => Key::Legacy(Rule::NetHostIp),
    LEGACY_NET_SOCK_HOST_PORT => Key::Legacy(Rule::NetSockHostPort),
    LEGACY_NET_TRANSPORT => Key::Legacy(Rule::NetTransport),
    LEGACY_ENDUSER_ROLE => Key::Legacy(Rule::EnduserRole),
    LEGACY_PEER_SERVICE => Key::Legacy(Rule::PeerService),
    LEGACY_DB_STATEMENT => Key::Legacy(Rule::DbStatement),
    LEGACY_DB_OPERATION => Key::Legacy(Rule::DbOperation),
    LEGACY_DB_NAME => Key::Legacy(Rule::DbName),
    LEGACY_DB_REDIS_DATABASE_INDEX => Key::Legacy(Rule::DbRedisDatabaseIndex),
    LEGACY_DB_SQL_TABLE => Key::Legacy(Rule::DbCollection),
    LEGACY_DB_CASSANDRA_TABLE => Key::Legacy(Rule::DbCollection),
    LEGACY_DB_MONGODB_COLLECTION => Key::Legacy(Rule::DbCollection),
    LEGACY_DB_COSMOSDB_CONTAINER => Key::Legacy(Rule::DbCollection),
    LEGACY_MESSAGING_DESTINATION => Key::Legacy(Rule::MessagingDestination),
    LEGACY_OTEL_LIBRARY_NAME => Key::Legacy(Rule::OtelLibraryName),
    LEGACY_OTEL_LIBRARY_VERSION => Key::Legacy(Rule::OtelLibraryVersion),
    LEGACY_DEPLOYMENT_ENVIRONMENT => Key::Legacy(Rule::DeploymentEnvironment),
    LEGACY_TELEMETRY_AUTO_VERSION => Key::Legacy(Rule::TelemetryAutoVersion),
    ZIPKIN_ERROR => Key::Legacy(Rule::ZipkinError),

    HTTP_RESPONSE_STATUS_CODE => Key::Int(IntKind::Any),
    HTTP_REQUEST_BODY_SIZE => Key::Int(IntKind::Any),
    HTTP_RESPONSE_BODY_SIZE => Key::Int(IntKind::Any),
    HTTP_REQUEST_RESEND_COUNT => Key::Int(IntKind::Any),
    RPC_GRPC_STATUS_CODE => Key::Int(IntKind::Any),
    SERVER_PORT => Key::Int(IntKind::Port),
    CLIENT_PORT => Key::Int(IntKind::Port),
    NETWORK_PEER_PORT => Key::Int(IntKind::Port),
    NETWORK_LOCAL_PORT => Key::Int(IntKind::Port),

    CLIENT_ADDRESS => Key::ClientAddress,
    NETWORK_PEER_ADDRESS => Key::ClientHint,
    HTTP_REQUEST_HEADER_X_FORWARDED_FOR => Key::ClientHint,
    HTTP_REQUEST_HEADER_X_REAL_IP => Key::ClientHint,
    HTTP_REQUEST_HEADER_FORWARDED => Key::ClientHint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_classifies_as_listed() {
        for (key, class) in KEYS {
            assert_eq!(classify(key), Some(*class), "{key}");
        }
        assert_eq!(classify("http.route"), None);
        assert_eq!(classify(""), None);
        assert_eq!(
            classify("HTTP.STATUS_CODE"),
            None,
            "keys are case-sensitive"
        );
    }

    /// docs/NORMALISATION.md lists every legacy name this table maps.
    #[test]
    fn documentation_lists_every_legacy_name() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/NORMALISATION.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        for (key, class) in KEYS {
            if matches!(class, Key::Legacy(_)) {
                assert!(
                    doc.contains(&format!("| `{key}`")),
                    "{key} is not in the table of {path}"
                );
            }
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
    }
}
