//! TLS on every listener (rustls with ring), optionally with client
//! certificates (mutual TLS).
//!
//! [`TlsConfig`] is the `[tls]` section; [`TlsConfig::load`] reads the PEM
//! files once at start-up into a [`ServerTls`]: one rustls configuration for
//! the receivers (OTLP/gRPC, OTLP/HTTP, Zipkin: `client_auth`) and one for
//! the API (`api_client_auth`). Every listener then runs a [`TlsListener`]:
//! concurrent handshakes with a timeout, ALPN `h2` and `http/1.1`.
//! Both configurations are [`LiveConfig`]s: when the files change on disk,
//! [`reload::watch`] builds them again and new connections use them.

mod accept;
mod config;
mod pem;
pub mod reload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

pub use accept::{GrpcTlsStream, HandshakeCounts, ListenerCounts, TlsListener};
pub use config::{ClientAuth, TlsConfig};
pub use reload::LiveConfig;

/// Why the TLS configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("[tls] {0}")]
    Config(String),
    #[error("failed to read {what} `{path}`")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid PEM in {what} `{path}`: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("no certificate found in {what} `{path}` (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error(
        "no private key found in `{path}` (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
    )]
    NoKey { path: PathBuf },
    #[error("the private key `{key}` does not match the certificate `{cert}`")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot use the certificate `{cert}` with the private key `{key}`: {message}")]
    Certificate {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("cannot use the client CA bundle `{path}`: {message}")]
    ClientCa { path: PathBuf, message: String },
}

/// The loaded TLS settings of a server.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// For OTLP/gRPC, OTLP/HTTP and Zipkin.
    pub receivers: Arc<LiveConfig>,
    /// For the API.
    pub api: Arc<LiveConfig>,
    pub handshake_timeout: Duration,
}

impl TlsConfig {
    /// Reads the certificate, key and client CA files; `None` when TLS is
    /// off. Every error names the file at fault.
    pub fn load(&self) -> Result<Option<ServerTls>, TlsError> {
        self.validate().map_err(TlsError::Config)?;
        let (Some(cert_path), Some(key_path)) = (&self.cert, &self.key) else {
            return Ok(None);
        };
        let chain = pem::certificates("certificate", cert_path)?;
        let key = pem::private_key(key_path)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match &self.client_ca {
            Some(path) => Some(client_roots(path)?),
            None => None,
        };
        let build = |auth: ClientAuth| -> Result<Arc<ServerConfig>, TlsError> {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            let builder = match (auth, &roots, &self.client_ca) {
                (ClientAuth::None, _, _) | (_, None, _) | (_, _, None) => {
                    builder.with_no_client_auth()
                }
                (auth, Some(roots), Some(ca_path)) => {
                    let verifier = WebPkiClientVerifier::builder_with_provider(
                        roots.clone(),
                        provider.clone(),
                    );
                    let verifier = if auth == ClientAuth::Optional {
                        verifier.allow_unauthenticated()
                    } else {
                        verifier
                    };
                    let verifier = verifier.build().map_err(|e| TlsError::ClientCa {
                        path: ca_path.clone(),
                        message: e.to_string(),
                    })?;
                    builder.with_client_cert_verifier(verifier)
                }
            };
            let mut config = builder
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                        TlsError::KeyMismatch {
                            cert: cert_path.clone(),
                            key: key_path.clone(),
                        }
                    }
                    e => TlsError::Certificate {
                        cert: cert_path.clone(),
                        key: key_path.clone(),
                        message: e.to_string(),
                    },
                })?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        };
        Ok(Some(ServerTls {
            receivers: LiveConfig::new(build(self.client_auth)?),
            api: LiveConfig::new(build(self.api_client_auth)?),
            handshake_timeout: self.handshake_timeout,
        }))
    }
}

/// The CA bundle client certificates must chain to.
fn client_roots(path: &std::path::Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem::certificates("client CA bundle", path)? {
        roots.add(cert).map_err(|e| TlsError::ClientCa {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_cert_and_keys_go_together() {
        assert!(TlsConfig::default().load().unwrap().is_none());
        assert!(!TlsConfig::default().enabled());
        let cases: [(&str, TlsConfig, &str); 5] = [
            (
                "cert without key",
                TlsConfig {
                    cert: Some("c.pem".into()),
                    ..TlsConfig::default()
                },
                "`key` is not",
            ),
            (
                "key without cert",
                TlsConfig {
                    key: Some("k.pem".into()),
                    ..TlsConfig::default()
                },
                "`cert` is not",
            ),
            (
                "client auth without CA",
                TlsConfig {
                    cert: Some("c.pem".into()),
                    key: Some("k.pem".into()),
                    client_auth: ClientAuth::Required,
                    ..TlsConfig::default()
                },
                "needs `client_ca`",
            ),
            (
                "client auth without TLS",
                TlsConfig {
                    client_ca: Some("ca.pem".into()),
                    api_client_auth: ClientAuth::Optional,
                    ..TlsConfig::default()
                },
                "need TLS",
            ),
            (
                "CA nobody uses",
                TlsConfig {
                    cert: Some("c.pem".into()),
                    key: Some("k.pem".into()),
                    client_ca: Some("ca.pem".into()),
                    ..TlsConfig::default()
                },
                "no listener checks",
            ),
        ];
        for (name, config, expected) in cases {
            let error = config.load().unwrap_err().to_string();
            assert!(error.contains(expected), "{name}: {error}");
            assert!(error.starts_with("[tls]"), "{name}: {error}");
        }
    }

    #[test]
    fn missing_files_are_named() {
        let config = TlsConfig {
            cert: Some("/nonexistent/server.pem".into()),
            key: Some("/nonexistent/server-key.pem".into()),
            ..TlsConfig::default()
        };
        assert!(config.enabled());
        let error = config.load().unwrap_err().to_string();
        assert_eq!(
            error,
            "failed to read certificate `/nonexistent/server.pem`"
        );
    }

    #[test]
    fn parses_from_toml() {
        let config = crate::Config::from_toml(
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\nclient_auth = \"required\"\napi_client_auth = \"optional\"\nhandshake_timeout = \"3s\"\n",
        )
        .unwrap();
        assert_eq!(config.tls.client_auth, ClientAuth::Required);
        assert_eq!(config.tls.api_client_auth, ClientAuth::Optional);
        assert_eq!(config.tls.handshake_timeout, Duration::from_secs(3));
        assert!(config.tls.receivers_require_client_cert());
        let error = crate::Config::from_toml("[tls]\nclient_auth = \"yes\"\n").unwrap_err();
        assert!(error.contains("client_auth"), "{error}");
    }
}
