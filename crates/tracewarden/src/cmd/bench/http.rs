//! The OTLP/HTTP client: `POST /v1/traces` with a protobuf body over one
//! HTTP/1.1 keep-alive connection (hyper's connection-level client, so there
//! is no pool between the worker and its socket).

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::args::Target;
use super::driver::{Outcome, Signal};

/// Enough for any response this client expects; a larger one is an error.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of an error body to quote in a failure.
const QUOTED_BODY_BYTES: usize = 200;

/// One keep-alive connection to an OTLP/HTTP receiver, reopened when the
/// server closes it.
pub struct HttpExporter {
    authority: Authority,
    path: PathAndQuery,
    gzip: bool,
    /// `Authorization: Bearer <key>` from `--api-key`.
    authorization: Option<http::HeaderValue>,
    signal: Signal,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpExporter {
    pub async fn connect(
        target: &Target,
        gzip: bool,
        signal: Signal,
    ) -> anyhow::Result<HttpExporter> {
        let sender = open(&target.authority).await?;
        Ok(HttpExporter {
            authority: target.authority.clone(),
            path: signal.http_path(&target.path),
            gzip,
            authorization: crate::cmd::client::authorization()?,
            signal,
            sender: Some(sender),
        })
    }

    /// Sends one encoded `ExportTraceServiceRequest` (or
    /// `ExportLogsServiceRequest`, for logs).
    pub async fn export(&mut self, body: Bytes) -> Outcome {
        let sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => match open(&self.authority).await {
                Ok(sender) => sender,
                Err(error) => return Outcome::failed(format!("reconnect: {error:#}")),
            },
        };
        let (outcome, sender) = self.send(sender, body).await;
        self.sender = sender;
        outcome
    }

    /// Sends on `sender`, handing it back unless the connection broke.
    async fn send(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        body: Bytes,
    ) -> (Outcome, Option<SendRequest<Full<Bytes>>>) {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/x-protobuf");
        if self.gzip {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(value) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, value.clone());
        }
        let request = match request.body(Full::new(body)) {
            Ok(request) => request,
            Err(error) => return (Outcome::failed(format!("request: {error}")), Some(sender)),
        };
        if let Err(error) = sender.ready().await {
            return (Outcome::failed(format!("connection: {error}")), None);
        }
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => return (Outcome::failed(format!("transport: {error}")), None),
        };
        let (parts, body) = response.into_parts();
        // Read the whole body: the connection is reused only once it is drained.
        let body = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return (Outcome::failed(format!("response body: {error}")), None),
        };
        (
            response_outcome(self.signal, parts.status, &parts.headers, &body),
            Some(sender),
        )
    }
}

fn response_outcome(
    signal: Signal,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
) -> Outcome {
    match status {
        StatusCode::OK => match signal.rejected(body.clone()) {
            Ok(rejected_spans) => Outcome::Accepted { rejected_spans },
            Err(reason) => Outcome::failed(reason),
        },
        StatusCode::TOO_MANY_REQUESTS => Outcome::Throttled {
            retry_after: retry_after(headers),
        },
        status => {
            let quoted = String::from_utf8_lossy(body.get(..QUOTED_BODY_BYTES).unwrap_or(body));
            Outcome::failed(format!("HTTP {status}: {}", quoted.trim()))
        }
    }
}

/// `Retry-After` in seconds; the HTTP-date form is not worth parsing here.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// Opens a connection and drives it on its own task.
async fn open(authority: &Authority) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority.as_str()).await?;
    // Requests are written whole; Nagle would only delay the last segment.
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Its errors reach the sender's next request; nothing to do here.
        let _ = connection.await;
    });
    Ok(sender)
}

/// GETs `path` on a fresh connection and returns the status (for /readyz).
pub async fn get_status(authority: &Authority, path: &str) -> anyhow::Result<StatusCode> {
    let mut sender = open(authority).await?;
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(HOST, authority.as_str())
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    Ok(response.status())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    use prost::Message;

    fn response_outcome(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> Outcome {
        super::response_outcome(Signal::Traces, status, headers, body)
    }

    #[test]
    fn ok_counts_the_spans_the_server_rejected() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "bad ids".to_string(),
            }),
        };
        let body = Bytes::from(response.encode_to_vec());
        assert_eq!(
            response_outcome(StatusCode::OK, &HeaderMap::new(), &body),
            Outcome::Accepted { rejected_spans: 3 }
        );
        assert_eq!(
            response_outcome(StatusCode::OK, &HeaderMap::new(), &Bytes::new()),
            Outcome::Accepted { rejected_spans: 0 }
        );
    }

    #[test]
    fn too_many_requests_is_throttling_with_its_hint() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(
            response_outcome(StatusCode::TOO_MANY_REQUESTS, &headers, &Bytes::new()),
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            response_outcome(StatusCode::TOO_MANY_REQUESTS, &headers, &Bytes::new()),
            Outcome::Throttled { retry_after: None }
        );
    }

    #[test]
    fn errors_quote_the_start_of_the_body() {
        let body = Bytes::from("x".repeat(1000));
        let Outcome::Failed(message) =
            response_outcome(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body)
        else {
            panic!("a 400 is a failure");
        };
        assert!(
            message.starts_with("HTTP 400 Bad Request: xxx"),
            "{message}"
        );
        assert!(message.len() < 250, "{message}");
        let garbage = Bytes::from_static(b"\xff\x00not protobuf");
        assert!(matches!(
            response_outcome(StatusCode::OK, &HeaderMap::new(), &garbage),
            Outcome::Failed(_)
        ));
    }
}
