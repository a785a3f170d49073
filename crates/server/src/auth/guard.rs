//! The [`Guard`]: the keys in memory (re-read when the file changes), the
//! rate limiter, the audit log and the refusal counters; and the two
//! layers that apply it, [`api_layer`] and [`ingest_layer`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use super::audit::{self, AuditLog, Record};
use super::keys::{KeyInfo, KeyRing, KeyStore, Lookup};
use super::limit::RateLimiter;
use super::{Access, AuthConfig, AuthError, AuthMode, ResultCount, Role, routes};
use crate::blocks::now_unix_ms;
use crate::metrics::{Exposition, Kind, MetricsSource};

/// How often the keys file is checked for changes.
const KEY_POLL: Duration = Duration::from_secs(1);
/// The header a gateway (nginx) can send its key in, leaving the client's
/// `Authorization` to the decision endpoint.
pub const KEY_HEADER: &str = "x-tracewarden-key";

/// The listeners, for counters and for the shape of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Api,
    OtlpGrpc,
    OtlpHttp,
    Zipkin,
}

impl Listener {
    const ALL: [Listener; 4] = [
        Listener::Api,
        Listener::OtlpGrpc,
        Listener::OtlpHttp,
        Listener::Zipkin,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Listener::Api => "api",
            Listener::OtlpGrpc => "otlp_grpc",
            Listener::OtlpHttp => "otlp_http",
            Listener::Zipkin => "zipkin",
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Unauthenticated,
    Forbidden,
    RateLimited,
}

impl Refusal {
    const ALL: [Refusal; 3] = [
        Refusal::Unauthenticated,
        Refusal::Forbidden,
        Refusal::RateLimited,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Forbidden => "forbidden",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// Why a request was refused, and by which key (when one was found).
struct Denial {
    refusal: Refusal,
    message: String,
    key: Option<KeyInfo>,
}

/// Who is calling, for handlers (a request extension): a key, or anyone
/// when auth is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Key(KeyInfo),
    Anonymous,
}

impl Caller {
    /// The role to act with: anonymous callers (auth off) may do anything.
    pub fn role(&self) -> Role {
        match self {
            Caller::Key(key) => key.role,
            Caller::Anonymous => Role::Admin,
        }
    }

    /// The name actions are recorded under, when there is a key.
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Key(key) => Some(&key.name),
            Caller::Anonymous => None,
        }
    }
}

/// The shared state of the auth layers.
pub struct Guard {
    mode: AuthMode,
    store: KeyStore,
    keys: RwLock<Arc<KeyRing>>,
    /// Whether the keys file has any record, revoked ones included: in
    /// `auto` mode, revoking every key must not open the server.
    any_key: std::sync::atomic::AtomicBool,
    limiter: Option<RateLimiter>,
    audit: AuditLog,
    refused: [[AtomicU64; Refusal::ALL.len()]; Listener::ALL.len()],
    audited: AtomicU64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("mode", &self.mode).finish()
    }
}

/// The state of the file the keys were read from, to notice a change.
type FileStamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

impl Guard {
    /// Loads the keys of `data_dir`, opens the audit log in
    /// `data_dir/audit` and starts watching the keys file. `mode` is the
    /// one start-up settled on ([`crate::exposure`]).
    pub fn start(
        data_dir: &Path,
        mode: AuthMode,
        config: &AuthConfig,
    ) -> Result<Arc<Guard>, AuthError> {
        config.rate_limit.validate().map_err(AuthError::Invalid)?;
        let store = KeyStore::new(data_dir);
        let first = stamp(store.path());
        let records = store.load()?;
        let rotation = config.audit.rotation().map_err(AuthError::Invalid)?;
        let audit = AuditLog::open_with(&data_dir.join(audit::AUDIT_DIR), rotation)?;
        let guard = Arc::new(Guard {
            mode,
            any_key: (!records.is_empty()).into(),
            keys: RwLock::new(Arc::new(KeyRing::new(&records))),
            store,
            limiter: RateLimiter::new(&config.rate_limit),
            audit,
            refused: Default::default(),
            audited: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&guard);
        std::thread::Builder::new()
            .name("tracewarden-keys".into())
            .spawn(move || watch_keys(weak, first))
            .map_err(|e| AuthError::io("start the watcher of", data_dir, e))?;
        Ok(guard)
    }

    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    pub fn audit_dir(&self) -> &Path {
        self.audit.dir()
    }

    /// Writes the queued audit entries and stops the writer (shutdown).
    pub fn close(&self) {
        self.audit.close();
    }

    /// Whether requests must carry a key now.
    pub fn enforcing(&self) -> bool {
        match self.mode {
            AuthMode::On => true,
            AuthMode::Off => false,
            AuthMode::Auto => self.any_key.load(Ordering::Relaxed),
        }
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .map(|ring| ring.clone())
            .unwrap_or_default()
    }

    /// Re-reads the keys file; keeps the old keys if it cannot be read.
    fn reload(&self) {
        match self.store.load() {
            Ok(records) => {
                let ring = KeyRing::new(&records);
                tracing::info!(live_keys = ring.live(), "API keys reloaded");
                // Once keys were required they stay required: a keys file
                // deleted or emptied while the server runs leaves no valid
                // key, not an open server (as revoking every key does).
                if !records.is_empty() {
                    self.any_key.store(true, Ordering::Relaxed);
                } else if self.mode == AuthMode::Auto && self.any_key.load(Ordering::Relaxed) {
                    tracing::error!(
                        path = %self.store.path().display(),
                        "the keys file is gone or holds no key: keys stay required and none is valid now; restore the file or create a key with `tracewarden keys create`"
                    );
                }
                if let Ok(mut keys) = self.keys.write() {
                    *keys = Arc::new(ring);
                }
            }
            Err(error) => {
                tracing::error!(%error, "the keys file could not be read; the keys loaded before stay in force");
            }
        }
    }

    /// Who presents `headers`, if `access` lets them in.
    fn admit(&self, headers: &HeaderMap, access: Access) -> Result<Caller, Denial> {
        if access == Access::Open || !self.enforcing() {
            return Ok(Caller::Anonymous);
        }
        let Some(key) = credential(headers) else {
            return Err(Denial {
                refusal: Refusal::Unauthenticated,
                message: "an API key is required: send `Authorization: Bearer <key>` (make one with `tracewarden keys create`)".into(),
                key: None,
            });
        };
        let found = if key.len() > MAX_KEY_BYTES {
            Lookup::Unknown
        } else {
            self.ring().lookup(key)
        };
        match found {
            Lookup::Unknown => Err(Denial {
                refusal: Refusal::Unauthenticated,
                message: "unknown API key".into(),
                key: None,
            }),
            Lookup::Revoked(info) => Err(Denial {
                refusal: Refusal::Unauthenticated,
                message: format!("the API key `{}` was revoked", info.name),
                key: Some(info),
            }),
            Lookup::Valid(info) if info.role.grants(access) => Ok(Caller::Key(info)),
            Lookup::Valid(info) => Err(Denial {
                refusal: Refusal::Forbidden,
                message: format!(
                    "the key `{}` has the role {}; this needs {}",
                    info.name,
                    info.role,
                    access.least_role()
                ),
                key: Some(info),
            }),
        }
    }

    fn count(&self, listener: Listener, refusal: Refusal) {
        self.refused[listener as usize][refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn audit(&self, record: Record) {
        self.audited.fetch_add(1, Ordering::Relaxed);
        self.audit.append(record);
    }
}

/// Polls the keys file until the guard is dropped.
fn watch_keys(guard: Weak<Guard>, mut last: FileStamp) {
    loop {
        std::thread::sleep(KEY_POLL);
        let Some(guard) = guard.upgrade() else { return };
        let now = stamp(guard.store.path());
        if now != last {
            last = now;
            guard.reload();
        }
    }
}

/// Longer presented keys are refused unhashed (ours are 47 bytes).
const MAX_KEY_BYTES: usize = 256;

/// The key a request presents: `X-Tracewarden-Key`, else a bearer token.
fn credential(headers: &HeaderMap) -> Option<&str> {
    let key = match headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()) {
        Some(key) => key.trim(),
        None => {
            let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
            let (scheme, token) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            token.trim()
        }
    };
    (!key.is_empty()).then_some(key)
}

fn error_json(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error": { "code": status.as_u16(), "message": message } });
    (status, Json(body)).into_response()
}

fn refusal_response(refusal: Refusal, message: &str) -> Response {
    match refusal {
        Refusal::Unauthenticated => {
            let mut response = error_json(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tracewarden\""),
            );
            response
        }
        Refusal::Forbidden => error_json(StatusCode::FORBIDDEN, message),
        Refusal::RateLimited => error_json(StatusCode::TOO_MANY_REQUESTS, message),
    }
}

/// Whose rate-limit bucket a request spends: its key's; without auth, its
/// remote address's. Local clients without a key (a quick start's scripts
/// and dashboards) are not limited.
fn bucket(caller: &Caller, client: Option<SocketAddr>) -> Option<String> {
    match (caller, client) {
        (Caller::Key(key), _) => Some(format!("key:{}", key.id)),
        (Caller::Anonymous, Some(addr)) if !addr.ip().is_loopback() => {
            Some(format!("addr:{}", addr.ip()))
        }
        (Caller::Anonymous, _) => None,
    }
}

fn client_address(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0)
}

/// The connection's remote address, for plain TCP and TLS listeners alike
/// (axum only provides `SocketAddr` connect info for its own listeners).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl<'a>
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, crate::PlainListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, crate::PlainListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl<'a>
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, crate::tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, crate::tls::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The API layer: authenticates, authorises by [`routes::ROUTES`], rate
/// limits and audits each request.
pub async fn api_layer(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let access = routes::required(request.method(), request.uri().path());
    let client = client_address(&request);
    let mut record = Record {
        unix_ms: now_unix_ms(),
        client: client.map(|c| c.ip().to_string()),
        method: request.method().to_string(),
        path: audit::redact_path(request.uri().path()),
        query: request.uri().query().map(audit::redact_query),
        key_name: "-".into(),
        ..Record::default()
    };
    // Probes are not audited: orchestrators call them every few seconds.
    let audited = access != Access::Open;
    let caller = match guard.admit(request.headers(), access) {
        Ok(caller) => caller,
        Err(denial) => {
            guard.count(Listener::Api, denial.refusal);
            let response = refusal_response(denial.refusal, &denial.message);
            if audited {
                if let Some(key) = &denial.key {
                    record.set_key(key);
                }
                record.status = response.status().as_u16();
                record.reason = Some(denial.message);
                guard.audit(record);
            }
            return response;
        }
    };
    match &caller {
        Caller::Key(key) => record.set_key(key),
        Caller::Anonymous => record.key_name = "anonymous".into(),
    }
    if access.rate_limited()
        && let Some(limiter) = &guard.limiter
        && let Some(who) = bucket(&caller, client)
        && let Err(wait) = limiter.check(&who, Instant::now())
    {
        guard.count(Listener::Api, Refusal::RateLimited);
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let message = format!(
            "rate limit of {} requests/s exceeded; retry in {seconds} s",
            limiter.rate()
        );
        let mut response = refusal_response(Refusal::RateLimited, &message);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        record.status = response.status().as_u16();
        record.reason = Some(message);
        guard.audit(record);
        return response;
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    record.results = response
        .extensions_mut()
        .remove::<ResultCount>()
        .map(|c| c.0);
    record.status = response.status().as_u16();
    record.allowed = true;
    // A gateway asks on every request it proxies: its allowed decisions
    // would drown the log (refusals above are kept).
    if audited && access != Access::Gateway {
        guard.audit(record);
    }
    response
}

/// The receivers' layer state: the guard and which listener it guards.
#[derive(Clone)]
pub struct IngestGate {
    pub guard: Arc<Guard>,
    pub listener: Listener,
}

/// The receivers' layer: a key with the `ingest` (or `admin`) role.
/// gRPC refusals are gRPC statuses (`UNAUTHENTICATED`,
/// `PERMISSION_DENIED`), the rest HTTP 401 / 403 with a JSON message.
pub async fn ingest_layer(
    State(gate): State<IngestGate>,
    request: Request,
    next: Next,
) -> Response {
    match gate.guard.admit(request.headers(), Access::Ingest) {
        Ok(_) => next.run(request).await,
        Err(Denial {
            refusal, message, ..
        }) => {
            gate.guard.count(gate.listener, refusal);
            if gate.listener == Listener::OtlpGrpc {
                let status = match refusal {
                    Refusal::Forbidden => tonic::Status::permission_denied(message),
                    _ => tonic::Status::unauthenticated(message),
                };
                status.into_http()
            } else {
                refusal_response(refusal, &message)
            }
        }
    }
}

impl MetricsSource for Guard {
    fn collect(&self, out: &mut Exposition) {
        let name = "tracewarden_auth_refused_requests_total";
        out.family(
            name,
            Kind::Counter,
            "Requests refused by authentication, role or rate limit, by listener and reason.",
        );
        for listener in Listener::ALL {
            for refusal in Refusal::ALL {
                let n = self.refused[listener as usize][refusal as usize].load(Ordering::Relaxed);
                out.sample(
                    name,
                    &[
                        ("listener", listener.as_str()),
                        ("reason", refusal.as_str()),
                    ],
                    n as f64,
                );
            }
        }
        out.single(
            "tracewarden_audit_entries_total",
            Kind::Counter,
            "API requests handed to the audit log.",
            self.audited.load(Ordering::Relaxed) as f64,
        );
        out.single(
            "tracewarden_auth_enforcing",
            Kind::Gauge,
            "1 when API keys are required, 0 when auth is off.",
            f64::from(u8::from(self.enforcing())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        map
    }

    #[test]
    fn admission() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let (viewer, _) = store.create("victor", Role::Viewer).unwrap();
        let (gone, _) = store.create("gone", Role::Admin).unwrap();
        store.revoke("gone").unwrap();
        let guard = Guard::start(dir.path(), AuthMode::Auto, &AuthConfig::default()).unwrap();
        assert!(guard.enforcing());
        let refusal = |h: &HeaderMap, access| guard.admit(h, access).err().map(|d| d.refusal);
        let long = format!("twk_{}", "a".repeat(MAX_KEY_BYTES));
        let cases = [
            (
                HeaderMap::new(),
                Access::Viewer,
                Some(Refusal::Unauthenticated),
            ),
            (HeaderMap::new(), Access::Open, None),
            (
                headers("twk_unknown"),
                Access::Gateway,
                Some(Refusal::Unauthenticated),
            ),
            (
                headers(&long),
                Access::Gateway,
                Some(Refusal::Unauthenticated),
            ),
            (
                headers(&gone),
                Access::Viewer,
                Some(Refusal::Unauthenticated),
            ),
            (headers(&viewer), Access::Viewer, None),
            (headers(&viewer), Access::Gateway, None),
            (headers(&viewer), Access::Analyst, Some(Refusal::Forbidden)),
            (headers(&viewer), Access::Ingest, Some(Refusal::Forbidden)),
        ];
        for (i, (h, access, want)) in cases.iter().enumerate() {
            assert_eq!(refusal(h, *access), *want, "case {i}: {access:?}");
        }
        // The keys file deleted while the server runs: keys stay required,
        // and the keys it held are no longer valid.
        std::fs::remove_file(store.path()).unwrap();
        guard.reload();
        assert!(guard.enforcing());
        assert_eq!(
            refusal(&HeaderMap::new(), Access::Admin),
            Some(Refusal::Unauthenticated)
        );
        assert_eq!(
            refusal(&headers(&viewer), Access::Viewer),
            Some(Refusal::Unauthenticated)
        );
        guard.close();

        // Off: everyone is anonymous.
        let off = Guard::start(dir.path(), AuthMode::Off, &AuthConfig::default()).unwrap();
        assert_eq!(
            off.admit(&HeaderMap::new(), Access::Admin).ok(),
            Some(Caller::Anonymous)
        );
        off.close();
    }

    #[test]
    fn rate_limit_buckets() {
        let key = Caller::Key(KeyInfo {
            id: "abc".into(),
            name: "alice".into(),
            role: Role::Analyst,
        });
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert_eq!(bucket(&key, Some(local)).as_deref(), Some("key:abc"));
        assert_eq!(bucket(&key, None).as_deref(), Some("key:abc"));
        assert_eq!(
            bucket(&Caller::Anonymous, Some(remote)).as_deref(),
            Some("addr:203.0.113.9")
        );
        assert_eq!(bucket(&Caller::Anonymous, Some(local)), None);
        assert_eq!(bucket(&Caller::Anonymous, None), None);
    }

    #[test]
    fn credentials_from_headers() {
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Headers, Option<&str>); 6] = [
            (&[("authorization", "Bearer twk_a")], Some("twk_a")),
            (&[("authorization", "bearer  twk_a ")], Some("twk_a")),
            (&[("authorization", "Basic dXNlcg==")], None),
            (&[("authorization", "Bearer ")], None),
            // A gateway's own key wins over the client's Authorization.
            (
                &[("authorization", "Bearer client"), (KEY_HEADER, "twk_gw")],
                Some("twk_gw"),
            ),
            (&[], None),
        ];
        for (headers, want) in cases {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(credential(&map), want, "{headers:?}");
        }
    }
}
