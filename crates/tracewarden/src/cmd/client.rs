//! A minimal client for a running server's JSON API (HTTP/1.1, one request
//! per connection, over TLS for an `https://` server), shared by the
//! commands that take `--server`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Largest response read from the server.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The default `--server`.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

/// The environment variable with the API key when `--api-key` is not given.
pub const API_KEY_ENV: &str = "TRACEWARDEN_API_KEY";

static API_KEY: OnceLock<Option<String>> = OnceLock::new();

/// The global `--api-key` flag (set once, by `main`).
pub fn set_api_key(key: Option<String>) {
    let _ = API_KEY.set(key.filter(|k| !k.trim().is_empty()));
}

/// The key to send: `--api-key`, else `TRACEWARDEN_API_KEY`.
pub fn api_key() -> Option<String> {
    API_KEY.get().cloned().flatten().or_else(|| {
        std::env::var(API_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty())
    })
}

/// `Authorization: Bearer <key>`, when there is a key.
pub fn authorization() -> anyhow::Result<Option<http::HeaderValue>> {
    api_key()
        .map(|key| {
            let mut value = http::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .context("the API key is not a valid header value")?;
            value.set_sensitive(true);
            Ok(value)
        })
        .transpose()
}

/// How to trust an `https://` server (and prove who we are to it): the
/// global `--ca-cert`, `--client-cert`, `--client-key` flags, set once by
/// `main` before any command runs; unset flags fall back to the environment.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// CA bundle (PEM) the server certificate must chain to; without it,
    /// the public web PKI roots are trusted.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate and key (PEM), for a server that requires mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

static CLIENT_TLS: OnceLock<ClientTls> = OnceLock::new();

impl ClientTls {
    /// Records the flags for every later request (the first call wins).
    pub fn install(self) {
        let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
        let _ = CLIENT_TLS.set(ClientTls {
            ca_cert: self.ca_cert.or_else(|| from_env("TRACEWARDEN_CA_CERT")),
            client_cert: self
                .client_cert
                .or_else(|| from_env("TRACEWARDEN_CLIENT_CERT")),
            client_key: self
                .client_key
                .or_else(|| from_env("TRACEWARDEN_CLIENT_KEY")),
        });
    }

    fn rustls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .with_context(|| {
                        format!("cannot read the CA certificate `{}`", path.display())
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    bail!("no CA certificate found in `{}`", path.display());
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&self.client_cert, &self.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .with_context(|| {
                        format!("cannot read the client certificate `{}`", cert.display())
                    })?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("cannot read the client key `{}`", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .context("the client certificate and key do not go together")?
            }
            _ => bail!("--client-cert and --client-key go together"),
        };
        Ok(config)
    }
}

/// An HTTP/1.1 exchange on an open connection.
async fn send<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<http::Response<hyper::body::Incoming>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}

/// Sends `method path` (with a JSON body, if any) to the server at
/// `server` and returns the JSON answer; an error status becomes an error
/// carrying the server's message.
pub fn request(
    server: &str,
    method: Method,
    path_and_query: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let base: Uri = server
        .parse()
        .with_context(|| format!("`{server}` is not a URL"))?;
    let tls = match base.scheme_str() {
        Some("http") => None,
        Some("https") => Some(CLIENT_TLS.get_or_init(ClientTls::default).rustls_config()?),
        _ => bail!("--server must be an http:// or https:// URL, not `{server}`"),
    };
    let authority = base
        .authority()
        .with_context(|| format!("`{server}` has no host"))?
        .clone();
    let path = format!("{}{path_and_query}", base.path().trim_end_matches('/'));
    let body = match body {
        Some(json) => Bytes::from(serde_json::to_vec(json)?),
        None => Bytes::new(),
    };
    let authorization = authorization()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let port = authority
            .port_u16()
            .unwrap_or(if tls.is_some() { 443 } else { 80 });
        // `[::1]` in a URL, `::1` for the resolver and the certificate check.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| {
                format!("cannot reach tracewarden at {server} (is `tracewarden serve` running?)")
            })?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, authority.as_str())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json");
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let request = request.body(Full::new(body))?;
        let response = match tls {
            None => send(TokioIo::new(stream), request).await?,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .with_context(|| format!("`{host}` is not a valid server name"))?;
                let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, stream)
                    .await
                    .with_context(|| format!("TLS handshake with {server} failed"))?;
                send(TokioIo::new(stream), request).await?
            }
        };
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the response: {e}"))?
            .to_bytes();
        let json: Value = serde_json::from_slice(&body).with_context(|| {
            format!(
                "the server answered {status} with a body that is not JSON: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        if !status.is_success() {
            let message = json
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            bail!("the server answered {status}: {message}");
        }
        Ok(json)
    })
}

/// `?a=1&b=2` from the pairs whose value is set (percent-encoded); empty
/// when none is.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut query = String::new();
    for (name, value) in pairs {
        if let Some(value) = value {
            query.push(if query.is_empty() { '?' } else { '&' });
            let _ = write!(query, "{name}={}", percent_encode(value));
        }
    }
    query
}

/// Percent-encodes a query-string value or path segment (RFC 3986
/// unreserved kept).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The text at `pointer` in `json`, or `""`.
pub fn text<'a>(json: &'a Value, pointer: &str) -> &'a str {
    json.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(
            percent_encode(r#"{ .a = "b c" }"#),
            "%7B%20.a%20%3D%20%22b%20c%22%20%7D"
        );
        assert_eq!(
            query_string([("a", Some("1 2")), ("b", None), ("c", Some("x=y"))]),
            "?a=1%202&c=x%3Dy"
        );
        assert_eq!(query_string([("a", None)]), "");
    }
}
