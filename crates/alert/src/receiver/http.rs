//! One HTTP client for every HTTP receiver: hyper over plain TCP or TLS
//! (rustls with the ring provider and the Mozilla roots of webpki-roots).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::SendError;

/// Most of an error answer's body kept for the message.
const MAX_ERROR_BODY: usize = 512;
/// Most of an answer's body read (the rest is refused).
const MAX_BODY: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    pub fn new(connect_timeout: Duration) -> Result<HttpClient, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient { client })
    }

    /// POSTs a JSON body. 2xx is success; 408, 429 and 5xx and transport
    /// errors can be retried; other answers cannot.
    pub async fn post_json(&self, uri: &Uri, body: Vec<u8>) -> Result<(), SendError> {
        let request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("tracewarden/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::permanent(format!("bad request: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| SendError::retryable(format!("POST {uri}: {}", error_chain(&e))))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned();
        let message = format!("POST {uri}: {status}: {}", text.trim());
        if retryable(status) {
            Err(SendError::retryable(message))
        } else {
            Err(SendError::permanent(message))
        }
    }
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_client_builds_with_the_ring_provider() {
        assert!(HttpClient::new(Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn retry_classes() {
        for (code, expected) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (400, false),
            (404, false),
            (401, false),
        ] {
            assert_eq!(
                retryable(StatusCode::from_u16(code).unwrap()),
                expected,
                "{code}"
            );
        }
    }
}
