//! Attribute keys of the OpenTelemetry semantic conventions that tracewarden
//! reads, current names first, then the legacy names senders still use.
//!
//! [`crate::normalise`] maps every legacy name below onto its current name;
//! docs/NORMALISATION.md has the table.

// Current names.
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_PEER_NAME: &str = "service.peer.name";
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const HTTP_REQUEST_BODY_SIZE: &str = "http.request.body.size";
pub const HTTP_RESPONSE_BODY_SIZE: &str = "http.response.body.size";
pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
pub const HTTP_ROUTE: &str = "http.route";
/// Request headers are `http.request.header.<lowercase name>`, dashes kept
/// (the semantic conventions stopped turning them into underscores in v1.23).
pub const HTTP_REQUEST_HEADER_X_FORWARDED_FOR: &str = "http.request.header.x-forwarded-for";
pub const HTTP_REQUEST_HEADER_X_REAL_IP: &str = "http.request.header.x-real-ip";
pub const HTTP_REQUEST_HEADER_FORWARDED: &str = "http.request.header.forwarded";
pub const URL_FULL: &str = "url.full";
pub const URL_PATH: &str = "url.path";
pub const URL_QUERY: &str = "url.query";
pub const URL_FRAGMENT: &str = "url.fragment";
pub const URL_SCHEME: &str = "url.scheme";
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
pub const NETWORK_LOCAL_ADDRESS: &str = "network.local.address";
pub const NETWORK_LOCAL_PORT: &str = "network.local.port";
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const ENDUSER_ID: &str = "enduser.id";
pub const USER_ROLES: &str = "user.roles";
pub const SESSION_ID: &str = "session.id";
pub const ERROR_TYPE: &str = "error.type";
pub const DB_SYSTEM: &str = "db.system";
pub const DB_NAMESPACE: &str = "db.namespace";
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
pub const DB_OPERATION_NAME: &str = "db.operation.name";
pub const DB_QUERY_TEXT: &str = "db.query.text";
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
pub const OTEL_SCOPE_NAME: &str = "otel.scope.name";
pub const OTEL_SCOPE_VERSION: &str = "otel.scope.version";
pub const DEPLOYMENT_ENVIRONMENT_NAME: &str = "deployment.environment.name";
pub const TELEMETRY_DISTRO_VERSION: &str = "telemetry.distro.version";

// Legacy names (older semantic conventions, OpenTracing and Zipkin tags).
pub const LEGACY_HTTP_STATUS_CODE: &str = "http.status_code";
pub const LEGACY_HTTP_METHOD: &str = "http.method";
pub const LEGACY_HTTP_TARGET: &str = "http.target";
pub const LEGACY_HTTP_URL: &str = "http.url";
pub const LEGACY_HTTP_SCHEME: &str = "http.scheme";
pub const LEGACY_HTTP_HOST: &str = "http.host";
pub const LEGACY_HTTP_SERVER_NAME: &str = "http.server_name";
pub const LEGACY_HTTP_FLAVOR: &str = "http.flavor";
pub const LEGACY_HTTP_USER_AGENT: &str = "http.user_agent";
pub const LEGACY_HTTP_CLIENT_IP: &str = "http.client_ip";
pub const LEGACY_HTTP_REQUEST_CONTENT_LENGTH: &str = "http.request_content_length";
pub const LEGACY_HTTP_RESPONSE_CONTENT_LENGTH: &str = "http.response_content_length";
pub const LEGACY_HTTP_RESEND_COUNT: &str = "http.resend_count";
/// Before v1.23 header names had their dashes turned into underscores.
pub const LEGACY_HTTP_REQUEST_HEADER_X_FORWARDED_FOR: &str = "http.request.header.x_forwarded_for";
pub const LEGACY_HTTP_REQUEST_HEADER_X_REAL_IP: &str = "http.request.header.x_real_ip";
pub const LEGACY_NET_PEER_IP: &str = "net.peer.ip";
pub const LEGACY_NET_PEER_PORT: &str = "net.peer.port";
pub const LEGACY_NET_PEER_NAME: &str = "net.peer.name";
pub const LEGACY_NET_SOCK_PEER_ADDR: &str = "net.sock.peer.addr";
pub const LEGACY_NET_SOCK_PEER_PORT: &str = "net.sock.peer.port";
pub const LEGACY_NET_HOST_NAME: &str = "net.host.name";
pub const LEGACY_NET_HOST_PORT: &str = "net.host.port";
pub const LEGACY_NET_HOST_IP: &str = "net.host.ip";
pub const LEGACY_NET_SOCK_HOST_ADDR: &str = "net.sock.host.addr";
pub const LEGACY_NET_SOCK_HOST_PORT: &str = "net.sock.host.port";
pub const LEGACY_NET_TRANSPORT: &str = "net.transport";
pub const LEGACY_NET_PROTOCOL_NAME: &str = "net.protocol.name";
pub const LEGACY_NET_PROTOCOL_VERSION: &str = "net.protocol.version";
pub const LEGACY_ENDUSER_ROLE: &str = "enduser.role";
pub const LEGACY_PEER_SERVICE: &str = "peer.service";
pub const LEGACY_DB_STATEMENT: &str = "db.statement";
pub const LEGACY_DB_OPERATION: &str = "db.operation";
pub const LEGACY_DB_NAME: &str = "db.name";
pub const LEGACY_DB_REDIS_DATABASE_INDEX: &str = "db.redis.database_index";
pub const LEGACY_DB_SQL_TABLE: &str = "db.sql.table";
pub const LEGACY_DB_CASSANDRA_TABLE: &str = "db.cassandra.table";
pub const LEGACY_DB_MONGODB_COLLECTION: &str = "db.mongodb.collection";
pub const LEGACY_DB_COSMOSDB_CONTAINER: &str = "db.cosmosdb.container";
pub const LEGACY_MESSAGING_DESTINATION: &str = "messaging.destination";
pub const LEGACY_OTEL_LIBRARY_NAME: &str = "otel.library.name";
pub const LEGACY_OTEL_LIBRARY_VERSION: &str = "otel.library.version";
pub const LEGACY_DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment";
pub const LEGACY_TELEMETRY_AUTO_VERSION: &str = "telemetry.auto.version";
pub const ZIPKIN_HTTP_PATH: &str = "http.path";
pub const ZIPKIN_ERROR: &str = "error";
