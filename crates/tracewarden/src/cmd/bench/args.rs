//! The flags of `bench ingest`, parsed once into typed values: the target
//! (protocol, authority, path) and the run's duration.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use http::Uri;
use http::uri::{Authority, PathAndQuery};
use serde::Serialize;

/// OTLP's default ports (the OTLP exporter specification).
const DEFAULT_GRPC_PORT: u16 = 4317;
const DEFAULT_HTTP_PORT: u16 = 4318;
/// The OTLP/HTTP traces path, appended when the endpoint names none.
const TRACES_PATH: &str = "/v1/traces";

/// Above this many pre-encoded spans (about 600 bytes each) the workload
/// would take gigabytes before the first request: refuse instead.
const MAX_PRE_ENCODED_SPANS: usize = 2_000_000;

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Server to load: http://HOST:PORT (OTLP/HTTP, POST /v1/traces) or
    /// grpc://HOST:PORT (OTLP/gRPC); a path on an http:// URL replaces /v1/traces.
    #[arg(long, value_name = "URL", required_unless_present = "spawn_server")]
    pub endpoint: Option<String>,
    /// Protocol; inferred from the endpoint's scheme when omitted
    /// (with --spawn-server it defaults to grpc).
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// How long to send: "10s", "1m30s", "500ms", or plain seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Spans per request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_spans: u32,
    /// Distinct pre-encoded batches the workers cycle through.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batches: u32,
    /// Send gzip-compressed bodies (compressed once, before the run).
    #[arg(long)]
    pub gzip: bool,
    /// Seed of the generated workload and of the per-request trace ids.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also send the client spans of the services' calls to each other and
    /// of the location service's database queries, as HTTP and database
    /// instrumentations record them (then 45% of the spans are client
    /// spans). Without it every span is an HTTP server span: the costliest
    /// for detection, whose rules mostly look at server spans.
    #[arg(long)]
    pub calls: bool,
    /// Also write the result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Start `tracewarden serve` as a child process on a temporary data
    /// directory and ephemeral ports, load it, then stop it and delete the directory.
    #[arg(long, conflicts_with = "endpoint")]
    pub spawn_server: bool,
    /// With --spawn-server: the server's configuration file (its ports and
    /// data directory are still chosen by the benchmark).
    #[arg(long, value_name = "FILE", requires = "spawn_server")]
    pub server_config: Option<PathBuf>,
    /// With --spawn-server: where to create the data directory [default: the
    /// system temporary directory]. On tmpfs, fsync is free and the figure flatters.
    #[arg(long, value_name = "DIR", requires = "spawn_server")]
    pub temp_dir: Option<PathBuf>,
    /// Threads of the load generator's runtime; one keeps the client's CPU
    /// use bounded and leaves the other cores to the server.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub client_threads: u16,
    /// Send at this many spans per second in all (each connection on its own
    /// share of a fixed schedule) instead of as fast as the server answers:
    /// for latency at a sustainable rate. A connection that falls behind
    /// sends at once until it is back on schedule; the report says how often.
    #[arg(long, value_name = "SPANS_PER_S", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC, TraceService/Export.
    Grpc,
    /// OTLP/HTTP, POST /v1/traces with a protobuf body.
    Http,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        })
    }
}

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    pub authority: Authority,
    /// The HTTP path of OTLP/HTTP requests (unused by gRPC, whose path is the method's).
    pub path: PathAndQuery,
}

impl Target {
    /// The target of a server listening on `addr`.
    pub fn local(protocol: Protocol, addr: SocketAddr) -> Result<Target, ArgsError> {
        let authority = Authority::try_from(addr.to_string())
            .map_err(|_| ArgsError::BadUrl(addr.to_string()))?;
        Ok(Target {
            protocol,
            authority,
            path: PathAndQuery::from_static(TRACES_PATH),
        })
    }

    /// Parses `--endpoint` (and `--protocol`, which must agree with the scheme).
    pub fn parse(endpoint: &str, protocol: Option<Protocol>) -> Result<Target, ArgsError> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| ArgsError::BadUrl(endpoint.to_string()))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| ArgsError::MissingScheme(endpoint.to_string()))?;
        let protocol = match (scheme, protocol) {
            ("grpc", None | Some(Protocol::Grpc)) => Protocol::Grpc,
            ("grpc", Some(Protocol::Http)) => {
                return Err(ArgsError::ProtocolMismatch(endpoint.to_string()));
            }
            ("http", protocol) => protocol.unwrap_or(Protocol::Http),
            ("https" | "grpcs", _) => return Err(ArgsError::Tls(endpoint.to_string())),
            (other, _) => return Err(ArgsError::UnknownScheme(other.to_string())),
        };
        let given = uri
            .authority()
            .ok_or_else(|| ArgsError::BadUrl(endpoint.to_string()))?;
        let authority = match given.port_u16() {
            Some(_) => given.clone(),
            None => {
                let port = match protocol {
                    Protocol::Grpc => DEFAULT_GRPC_PORT,
                    Protocol::Http => DEFAULT_HTTP_PORT,
                };
                Authority::try_from(format!("{}:{port}", given.host()))
                    .map_err(|_| ArgsError::BadUrl(endpoint.to_string()))?
            }
        };
        let given_path = uri.path_and_query().map(PathAndQuery::as_str).unwrap_or("");
        let path = match (protocol, given_path) {
            (_, "" | "/") => PathAndQuery::from_static(TRACES_PATH),
            (Protocol::Http, _) => uri
                .path_and_query()
                .cloned()
                .unwrap_or(PathAndQuery::from_static(TRACES_PATH)),
            (Protocol::Grpc, _) => return Err(ArgsError::GrpcPath(endpoint.to_string())),
        };
        Ok(Target {
            protocol,
            authority,
            path,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::Grpc => write!(f, "grpc://{}", self.authority),
            Protocol::Http => write!(f, "http://{}{}", self.authority, self.path),
        }
    }
}

impl IngestArgs {
    /// With --rate: how long each connection waits between the starts of
    /// its requests (connections x spans per request / rate).
    pub fn pace(&self) -> Option<Duration> {
        let rate = self.rate?;
        let spans = u64::from(self.connections) * u64::from(self.batch_spans);
        Some(Duration::from_secs_f64(spans as f64 / rate as f64))
    }

    /// Checks what clap cannot: the target, and that the workload fits in memory.
    pub fn target(&self) -> Result<Option<Target>, ArgsError> {
        if self.duration.is_zero() {
            return Err(ArgsError::ZeroDuration);
        }
        let spans = usize::try_from(u64::from(self.batch_spans) * u64::from(self.batches))
            .unwrap_or(usize::MAX);
        if spans > MAX_PRE_ENCODED_SPANS {
            return Err(ArgsError::WorkloadTooLarge { spans });
        }
        self.endpoint
            .as_deref()
            .map(|endpoint| Target::parse(endpoint, self.protocol))
            .transpose()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    #[error("`{0}` is not a URL")]
    BadUrl(String),
    #[error("`{0}` has no scheme: write http://HOST:PORT or grpc://HOST:PORT")]
    MissingScheme(String),
    #[error("unknown scheme `{0}`: use http:// or grpc://")]
    UnknownScheme(String),
    #[error("`{0}` is a gRPC endpoint but --protocol http was given")]
    ProtocolMismatch(String),
    #[error("`{0}`: TLS is not supported by the load generator")]
    Tls(String),
    #[error("`{0}`: a gRPC endpoint takes no path")]
    GrpcPath(String),
    #[error("--duration must be longer than zero")]
    ZeroDuration,
    #[error(
        "--batch-spans x --batches is {spans} spans; pre-encoding more than {MAX_PRE_ENCODED_SPANS} is refused"
    )]
    WorkloadTooLarge { spans: usize },
}

/// Why a duration did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("expected a number at `{0}`")]
    ExpectedNumber(String),
    #[error("`{0}` needs a unit (ms, s, m, h) after its number")]
    MissingUnit(String),
    #[error("unknown unit `{0}`: use ms, s, m or h")]
    UnknownUnit(String),
    #[error("`{0}`: fractions only in plain seconds (\"2.5\"); write 1500ms")]
    Fraction(String),
    #[error("duration `{0}` is too long")]
    TooLong(String),
}

/// Parses "10s", "1m30s", "1h 5m", "500ms", or plain (possibly fractional)
/// seconds such as "10" or "2.5": the humantime forms people type.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = text
            .parse()
            .map_err(|_| DurationError::ExpectedNumber(text.to_string()))?;
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| DurationError::TooLong(text.to_string()));
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_end);
        if digits.is_empty() {
            return Err(DurationError::ExpectedNumber(rest.to_string()));
        }
        let number: u64 = digits
            .parse()
            .map_err(|_| DurationError::TooLong(text.to_string()))?;
        if after.starts_with('.') {
            return Err(DurationError::Fraction(text.to_string()));
        }
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let unit_ms: u64 = match unit {
            "ms" | "msec" | "msecs" | "millis" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
            "" => return Err(DurationError::MissingUnit(digits.to_string())),
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::TooLong(text.to_string()))?;
        rest = after.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn duration_case(input: &str, expected: Result<Duration, DurationError>) {
        assert_eq!(parse_duration(input), expected, "input {input:?}");
    }

    #[test]
    fn durations_in_humantime_style_and_plain_seconds() {
        duration_case("10s", Ok(Duration::from_secs(10)));
        duration_case("10", Ok(Duration::from_secs(10)));
        duration_case("2.5", Ok(Duration::from_millis(2500)));
        duration_case("500ms", Ok(Duration::from_millis(500)));
        duration_case("1m30s", Ok(Duration::from_secs(90)));
        duration_case("1h 5m", Ok(Duration::from_secs(3900)));
        duration_case(" 3 seconds ", Ok(Duration::from_secs(3)));
        duration_case("2 min 5 s", Ok(Duration::from_secs(125)));
        duration_case("0s", Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_durations_are_rejected_with_the_reason() {
        duration_case("", Err(DurationError::Empty));
        duration_case("s", Err(DurationError::ExpectedNumber("s".to_string())));
        duration_case("10s 5", Err(DurationError::MissingUnit("5".to_string())));
        duration_case("5d", Err(DurationError::UnknownUnit("d".to_string())));
        duration_case("1.5s", Err(DurationError::Fraction("1.5s".to_string())));
        duration_case(
            "1..2",
            Err(DurationError::ExpectedNumber("1..2".to_string())),
        );
        duration_case(
            "99999999999999999999s",
            Err(DurationError::TooLong("99999999999999999999s".to_string())),
        );
        duration_case(
            "18446744073709551615h",
            Err(DurationError::TooLong("18446744073709551615h".to_string())),
        );
    }

    #[track_caller]
    fn target_case(endpoint: &str, protocol: Option<Protocol>, expected: Result<&str, ArgsError>) {
        let parsed = Target::parse(endpoint, protocol).map(|target| target.to_string());
        assert_eq!(
            parsed,
            expected.map(str::to_string),
            "endpoint {endpoint:?}, protocol {protocol:?}"
        );
    }

    #[test]
    fn endpoints_name_protocol_authority_and_path() {
        target_case("grpc://127.0.0.1:4317", None, Ok("grpc://127.0.0.1:4317"));
        target_case(
            "http://127.0.0.1:4318",
            None,
            Ok("http://127.0.0.1:4318/v1/traces"),
        );
        target_case(
            "http://127.0.0.1:4318/",
            None,
            Ok("http://127.0.0.1:4318/v1/traces"),
        );
        target_case(
            "http://localhost:9000/otlp/v1/traces",
            None,
            Ok("http://localhost:9000/otlp/v1/traces"),
        );
        target_case(
            "http://127.0.0.1:4317",
            Some(Protocol::Grpc),
            Ok("grpc://127.0.0.1:4317"),
        );
        target_case("grpc://collector", None, Ok("grpc://collector:4317"));
        target_case(
            "http://collector",
            None,
            Ok("http://collector:4318/v1/traces"),
        );
    }

    #[test]
    fn unusable_endpoints_are_rejected() {
        target_case(
            "127.0.0.1:4317",
            None,
            Err(ArgsError::MissingScheme("127.0.0.1:4317".to_string())),
        );
        target_case(
            "ftp://host:21",
            None,
            Err(ArgsError::UnknownScheme("ftp".to_string())),
        );
        target_case(
            "https://host:4318",
            None,
            Err(ArgsError::Tls("https://host:4318".to_string())),
        );
        target_case(
            "grpc://host:4317",
            Some(Protocol::Http),
            Err(ArgsError::ProtocolMismatch("grpc://host:4317".to_string())),
        );
        target_case(
            "grpc://host:4317/x",
            None,
            Err(ArgsError::GrpcPath("grpc://host:4317/x".to_string())),
        );
        target_case(
            "not a url",
            None,
            Err(ArgsError::BadUrl("not a url".to_string())),
        );
    }

    #[test]
    fn a_spawned_server_is_reached_on_its_bound_address() -> Result<(), ArgsError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 40123));
        assert_eq!(
            Target::local(Protocol::Http, addr)?.to_string(),
            "http://127.0.0.1:40123/v1/traces"
        );
        assert_eq!(
            Target::local(Protocol::Grpc, addr)?.to_string(),
            "grpc://127.0.0.1:40123"
        );
        Ok(())
    }
}
