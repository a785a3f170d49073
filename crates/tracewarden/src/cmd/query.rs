//! `tracewarden query '<TraceQL>'`: search a running server (its
//! `GET /api/v1/search`) or, with `--data-dir`, a data directory no server
//! is using.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http::header::{ACCEPT, HOST};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tracewarden_search::format_time;
use tracewarden_server::Config;
use tracewarden_server::api::{SearchParams, native_json};
use tracewarden_store::Store;

/// Largest response read from the server.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The TraceQL query, e.g. '{ span.http.response.status_code = 401 }'.
    pub query: String,
    /// How far back to search (e.g. 15m, 1h, 7d); ignored with --start.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Start of the range: Unix seconds or RFC 3339 (overrides --since).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the range: Unix seconds or RFC 3339 [default: now].
    #[arg(long)]
    pub until: Option<String>,
    /// Traces returned at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Spans listed per spanset at most.
    #[arg(long, default_value_t = 3)]
    pub spss: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The server's API address.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7700",
        conflicts_with = "data_dir"
    )]
    pub server: String,
    /// Search this data directory directly instead of a server (it must not
    /// be in use by a running server).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file, for the store settings with --data-dir.
    #[arg(long, value_name = "FILE", requires = "data_dir")]
    pub config: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One row per matching trace, spanset attributes and matched spans below.
    Table,
    /// The JSON of `GET /api/v1/search`.
    Json,
}

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let params = SearchParams {
        q: Some(args.query.clone()),
        start: args.start.clone(),
        end: args.until.clone(),
        since: Some(args.since.clone()),
        limit: Some(args.limit.to_string()),
        spss: Some(args.spss.to_string()),
        ..SearchParams::default()
    };
    let response = match &args.data_dir {
        Some(dir) => search_directory(dir, args.config.as_deref(), &params)?,
        None => search_server(&args.server, &params)?,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&response)?),
        Format::Table => print!("{}", table(&response)),
    }
    Ok(())
}

fn search_directory(
    dir: &std::path::Path,
    config: Option<&std::path::Path>,
    params: &SearchParams,
) -> anyhow::Result<Value> {
    // Validate before opening anything.
    let request = params.request().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut config = match config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.data_dir = dir.to_owned();
    if !dir.exists() {
        bail!("the data directory `{}` does not exist", dir.display());
    }
    let mut options = config.store_options();
    // Read only what is there: no flush, compaction or retention.
    options.lifecycle_thread = false;
    let (store, _report) = Store::open(options)
        .with_context(|| format!("cannot open the data directory `{}`", dir.display()))?;
    let result = tracewarden_search::search(&store, &request)?;
    Ok(native_json(&result))
}

fn search_server(server: &str, params: &SearchParams) -> anyhow::Result<Value> {
    let base: Uri = server
        .parse()
        .with_context(|| format!("`{server}` is not a URL"))?;
    if base.scheme_str() != Some("http") {
        bail!("--server must be an http:// URL, not `{server}`");
    }
    let authority = base
        .authority()
        .with_context(|| format!("`{server}` has no host"))?
        .clone();
    let mut query = String::new();
    for (name, value) in [
        ("q", &params.q),
        ("start", &params.start),
        ("end", &params.end),
        ("since", &params.since),
        ("limit", &params.limit),
        ("spss", &params.spss),
    ] {
        if let Some(value) = value {
            if !query.is_empty() {
                query.push('&');
            }
            let _ = write!(query, "{name}={}", percent_encode(value));
        }
    }
    let path = format!(
        "{}/api/v1/search?{query}",
        base.path().trim_end_matches('/')
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((authority.host(), port))
            .await
            .with_context(|| {
                format!("cannot reach tracewarden at {server} (is `tracewarden serve` running?)")
            })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::get(path)
            .header(HOST, authority.as_str())
            .header(ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
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

/// Percent-encodes a query-string value (RFC 3986 unreserved kept).
pub(crate) fn percent_encode(text: &str) -> String {
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

/// The response as a table: a line per trace, then its spansets.
fn table(response: &Value) -> String {
    let mut out = String::new();
    let traces = response
        .get("traces")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<32}  {:<24}  {:>10}  {:<20}  ROOT SPAN",
        "TRACE ID", "START (UTC)", "DURATION", "ROOT SERVICE"
    );
    for trace in traces {
        let text = |key: &str| trace.get(key).and_then(Value::as_str).unwrap_or("");
        let start: u64 = text("startTimeUnixNano").parse().unwrap_or(0);
        let duration: u64 = text("durationNanos").parse().unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<32}  {:<24}  {:>10}  {:<20}  {}",
            text("traceId"),
            format_time(start),
            format_duration(duration),
            trace
                .get("rootServiceName")
                .and_then(Value::as_str)
                .unwrap_or("<no root span>"),
            text("rootSpanName"),
        );
        for set in trace
            .get("spanSets")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let matched = set.get("matched").and_then(Value::as_u64).unwrap_or(0);
            let mut line = format!("    spanset: {matched} matched");
            if let Some(attributes) = set.get("attributes").and_then(Value::as_object) {
                for (key, value) in attributes {
                    let _ = write!(line, ", {key} = {value}");
                }
            }
            let _ = writeln!(out, "{line}");
            for span in set
                .get("spans")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let text = |key: &str| span.get(key).and_then(Value::as_str).unwrap_or("");
                let service = span
                    .pointer("/resource/attributes/service.name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let _ = writeln!(
                    out,
                    "      {}  {}  {}",
                    text("spanId"),
                    service,
                    text("name")
                );
            }
        }
    }
    let metrics = response.get("metrics");
    let number = |key: &str| {
        metrics
            .and_then(|m| m.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let _ = writeln!(
        out,
        "{} traces; inspected {} spans and {} traces",
        traces.len(),
        number("inspectedSpans"),
        number("inspectedTraces")
    );
    if let Some(partial) = metrics
        .and_then(|m| m.get("partial"))
        .and_then(Value::as_str)
    {
        let _ = writeln!(out, "partial result: {partial}");
    }
    out
}

fn format_duration(nanos: u64) -> String {
    match nanos {
        n if n >= 1_000_000_000 => format!("{:.2}s", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}ms", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.2}µs", n as f64 / 1e3),
        n => format!("{n}ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time(1_795_453_200_123_000_000),
            "2026-11-23T17:00:00.123Z"
        );
        assert_eq!(
            format_time(951_825_600_000_000_000),
            "2000-02-29T12:00:00.000Z"
        );
        assert_eq!(format_duration(1_500_000_000), "1.50s");
        assert_eq!(format_duration(2_500_000), "2.50ms");
        assert_eq!(format_duration(999), "999ns");
        assert_eq!(
            percent_encode(r#"{ .a = "b c" }"#),
            "%7B%20.a%20%3D%20%22b%20c%22%20%7D"
        );
    }
}
