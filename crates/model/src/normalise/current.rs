//! The current keys normalisation writes (or converts), as an enum, so the
//! slow path tracks which are present in a bit set instead of scanning the
//! attribute list before every write.

use crate::semconv::*;

use super::keys::IntKind;

macro_rules! current_keys {
    ($($variant:ident = $key:path $(=> $int:expr)?,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Current {
            $($variant,)*
        }

        impl Current {
            pub(super) fn key(self) -> &'static str {
                match self {
                    $(Current::$variant => $key,)*
                }
            }

            pub(super) fn from_key(key: &str) -> Option<Current> {
                match key {
                    $($key => Some(Current::$variant),)*
                    _ => None,
                }
            }

            /// The integer type the convention defines, for integer keys.
            pub(super) fn int_kind(self) -> Option<IntKind> {
                match self {
                    $($(Current::$variant => Some($int),)?)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            #[cfg(test)]
            pub(super) const ALL: &[Current] = &[$(Current::$variant,)*];
        }
    };
}

current_keys! {
    HttpResponseStatusCode = HTTP_RESPONSE_STATUS_CODE => IntKind::Any,
    HttpRequestBodySize = HTTP_REQUEST_BODY_SIZE => IntKind::Any,
    HttpResponseBodySize = HTTP_RESPONSE_BODY_SIZE => IntKind::Any,
    HttpRequestResendCount = HTTP_REQUEST_RESEND_COUNT => IntKind::Any,
    RpcGrpcStatusCode = RPC_GRPC_STATUS_CODE => IntKind::Any,
    ServerPort = SERVER_PORT => IntKind::Port,
    ClientPort = CLIENT_PORT => IntKind::Port,
    NetworkPeerPort = NETWORK_PEER_PORT => IntKind::Port,
    NetworkLocalPort = NETWORK_LOCAL_PORT => IntKind::Port,
    HttpRequestMethod = HTTP_REQUEST_METHOD,
    HttpRequestMethodOriginal = HTTP_REQUEST_METHOD_ORIGINAL,
    UrlFull = URL_FULL,
    UrlPath = URL_PATH,
    UrlQuery = URL_QUERY,
    UrlFragment = URL_FRAGMENT,
    UrlScheme = URL_SCHEME,
    UserAgentOriginal = USER_AGENT_ORIGINAL,
    ClientAddress = CLIENT_ADDRESS,
    ServerAddress = SERVER_ADDRESS,
    NetworkPeerAddress = NETWORK_PEER_ADDRESS,
    NetworkLocalAddress = NETWORK_LOCAL_ADDRESS,
    NetworkProtocolName = NETWORK_PROTOCOL_NAME,
    NetworkProtocolVersion = NETWORK_PROTOCOL_VERSION,
    NetworkTransport = NETWORK_TRANSPORT,
    HeaderXForwardedFor = HTTP_REQUEST_HEADER_X_FORWARDED_FOR,
    HeaderXRealIp = HTTP_REQUEST_HEADER_X_REAL_IP,
    UserRoles = USER_ROLES,
    ServicePeerName = SERVICE_PEER_NAME,
    DbQueryText = DB_QUERY_TEXT,
    DbOperationName = DB_OPERATION_NAME,
    DbNamespace = DB_NAMESPACE,
    DbCollectionName = DB_COLLECTION_NAME,
    MessagingDestinationName = MESSAGING_DESTINATION_NAME,
    OtelScopeName = OTEL_SCOPE_NAME,
    OtelScopeVersion = OTEL_SCOPE_VERSION,
    DeploymentEnvironmentName = DEPLOYMENT_ENVIRONMENT_NAME,
    TelemetryDistroVersion = TELEMETRY_DISTRO_VERSION,
}

/// Which [`Current`] keys an attribute list holds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Present(u64);

impl Present {
    pub(super) fn contains(self, key: Current) -> bool {
        self.0 & (1 << key as u32) != 0
    }

    pub(super) fn insert(&mut self, key: Current) {
        self.0 |= 1 << key as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_fit_the_bit_set() {
        assert!(Current::ALL.len() <= 64);
        for key in Current::ALL {
            assert_eq!(Current::from_key(key.key()), Some(*key));
        }
        let mut present = Present::default();
        present.insert(Current::TelemetryDistroVersion);
        assert!(present.contains(Current::TelemetryDistroVersion));
        assert!(!present.contains(Current::HttpResponseStatusCode));
    }
}
