//! The `[tls]` section: certificate files and client-certificate checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// TLS for every listener. With `cert` set, OTLP/gRPC, OTLP/HTTP, Zipkin
/// and the API serve TLS only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The private key of the leaf certificate (PEM: PKCS#8, RSA or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The CA bundle (PEM) client certificates are checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Client certificates on the receivers (OTLP/gRPC, OTLP/HTTP, Zipkin).
    pub client_auth: ClientAuth,
    /// Client certificates on the API listener; separate because browsers
    /// and the CLI rarely carry one.
    pub api_client_auth: ClientAuth,
    /// A connection that has not finished its handshake after this long is
    /// closed (a silent client holds no more than a socket until then).
    #[serde(with = "crate::config::interval")]
    pub handshake_timeout: Duration,
    /// Let listeners on non-loopback addresses serve plain text (the
    /// explicit opt-out of the start-up check in `exposure.rs`).
    pub allow_plaintext: bool,
    /// How often the certificate, key and client CA files are read for
    /// changes, which then apply to new connections (`"off"`: only at
    /// start-up).
    #[serde(with = "crate::config::optional_interval")]
    pub reload_interval: Option<Duration>,
}

/// Whether a listener asks for a client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; one that is sent must chain to
    /// `client_ca`, but a client may send none.
    Optional,
    /// A certificate chaining to `client_ca` is required.
    Required,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            client_ca: None,
            client_auth: ClientAuth::None,
            api_client_auth: ClientAuth::None,
            handshake_timeout: Duration::from_secs(10),
            allow_plaintext: false,
            reload_interval: Some(Duration::from_secs(10)),
        }
    }
}

impl TlsConfig {
    /// Whether the listeners serve TLS (a certificate is configured).
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// Whether the receivers require a client certificate.
    pub fn receivers_require_client_cert(&self) -> bool {
        self.enabled() && self.client_auth == ClientAuth::Required
    }

    /// Checks the keys that go together; the files are read by
    /// [`TlsConfig::load`].
    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert, &self.key) {
            (Some(_), None) => return Err("`cert` is set but `key` is not".to_string()),
            (None, Some(_)) => return Err("`key` is set but `cert` is not".to_string()),
            _ => {}
        }
        let checks_clients = [self.client_auth, self.api_client_auth]
            .iter()
            .any(|auth| *auth != ClientAuth::None);
        if checks_clients && self.cert.is_none() {
            return Err("client certificates need TLS: set `cert` and `key`".to_string());
        }
        if checks_clients && self.client_ca.is_none() {
            return Err(
                "`client_auth` or `api_client_auth` needs `client_ca`, the CA bundle client certificates are checked against"
                    .to_string(),
            );
        }
        if !checks_clients && self.client_ca.is_some() {
            return Err(
                "`client_ca` is set but no listener checks client certificates: set `client_auth` (receivers) or `api_client_auth` (API)"
                    .to_string(),
            );
        }
        Ok(())
    }
}
