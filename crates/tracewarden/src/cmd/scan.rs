//! `tracewarden scan FILE...`: offline forensics. Runs the rule pack over
//! exported telemetry (OTLP protobuf or JSON, one request per file or one
//! per line as the Collector's file exporter writes them; Zipkin v2 JSON;
//! any of them gzipped) without a server, and prints what the rules raise,
//! for a responder who was handed an export.
//!
//! The records go through the same normalisation and the same engine as on
//! the server; windows run on the records' own timestamps, and traces still
//! buffered for whole-trace rules are evaluated when the input ends.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;
use tracewarden_detect::engine::{Detection, Engine};
use tracewarden_ingest::{DecodeError, Decoded, Limits};
use tracewarden_model::{Records, credential, normalise};
use tracewarden_server::Config;
use tracewarden_server::detection::{engine_config, load_rules};

/// Largest file read (after decompression): an export bigger than this
/// should be split (the Collector's file exporter rotates by size).
const MAX_FILE_BYTES: usize = 4 << 30;

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Exported files: OTLP protobuf (`.pb`, `.binpb`, ...), OTLP/JSON (one
    /// request per file, or JSON lines), Zipkin v2 JSON; gzip is detected.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// What the files hold [default: detected from their first bytes].
    #[arg(long, value_enum, default_value = "auto")]
    input: Input,
    /// A tracewarden.toml whose [detection] section (site facts, rules
    /// directory, GeoIP database, assembly limits) the scan uses.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// `table` for people, `json` for one JSON object per detection.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Progress on stderr: `auto` when stderr is a terminal.
    #[arg(long, value_enum, default_value = "auto")]
    progress: Progress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Input {
    Auto,
    /// OTLP protobuf ExportTraceServiceRequest.
    OtlpProto,
    /// OTLP protobuf ExportLogsServiceRequest.
    OtlpProtoLogs,
    /// OTLP/JSON traces or logs (told apart by their top-level key).
    OtlpJson,
    /// Zipkin v2 JSON (an array of spans).
    Zipkin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Progress {
    Auto,
    Always,
    Never,
}

/// What the scan read, for the summary line.
#[derive(Debug, Default)]
struct Totals {
    files: usize,
    bytes: u64,
    spans: u64,
    logs: u64,
    rejected: u64,
    /// Requests (files, or lines of a JSON-lines file) that did not decode.
    failed: u64,
    detections: u64,
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let rules = load_rules(&config.detection).map_err(|e| anyhow::anyhow!("rules: {e}"))?;
    let geo = match &config.detection.geoip_database {
        Some(path) => Some(
            tracewarden_detect::geoip::Lookup::open(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut engine_config = engine_config(&config.detection);
    // Offline, arrival time means nothing: a log record waits for its span
    // (and a span's attributes wait for its records) until the end of the
    // input, whichever file comes first; the caps still bound both.
    engine_config.log_join.wait = Duration::MAX;
    let mut engine = Engine::with_config(rules, engine_config);
    engine.index_spans_for_join();
    let total_bytes: u64 = args
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let show_progress = match args.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    let mut progress = Reporter::new(show_progress, total_bytes);
    let mut out = std::io::stdout().lock();
    let mut totals = Totals::default();
    for path in &args.files {
        let raw = read(path)?;
        totals.files += 1;
        totals.bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let requests = decode_file(path, &raw, args.input)?;
        for decoded in requests {
            // A bad request is reported and skipped; the rest of the
            // export is still scanned.
            let mut decoded = match decoded {
                Ok(decoded) => decoded,
                Err(error) => {
                    eprintln!("{}: skipped: {error:#}", path.display());
                    totals.failed += 1;
                    continue;
                }
            };
            totals.rejected += decoded.rejected_spans + decoded.rejected_logs;
            for message in decoded.messages() {
                eprintln!("{}: {message}", path.display());
            }
            normalise::batch(&mut decoded.batch);
            // As ingest does: token rules key on the credential's fingerprint.
            credential::stamp_batch(&mut decoded.batch);
            let Records { mut spans, logs } = Records::from_batch(decoded.batch);
            if let Some(geo) = &geo {
                for record in spans.iter_mut() {
                    geo.enrich(record);
                }
            }
            totals.spans += spans.len() as u64;
            totals.logs += logs.len() as u64;
            let now = now_unix_nano();
            let mut found = engine.process_owned(spans, now);
            found.extend(engine.process_logs(&logs, now));
            found.extend(engine.flush(now));
            print(&mut out, &found, args.format, &mut totals)?;
            progress.update(path, totals.bytes, &totals);
        }
    }
    // The end of the input completes every trace still buffered.
    let found = engine.drain();
    print(&mut out, &found, args.format, &mut totals)?;
    progress.finish();
    let assembly = engine.stats().assembly;
    let evicted = assembly.evicted_trace_limit + assembly.evicted_span_limit;
    eprintln!(
        "scanned {} files ({} bytes): {} spans, {} log records, {} rejected records, {} requests skipped; {} detections{}",
        totals.files,
        totals.bytes,
        totals.spans,
        totals.logs,
        totals.rejected,
        totals.failed,
        totals.detections,
        if evicted > 0 {
            format!(
                "; {evicted} traces evaluated before they were complete (assembly limits, [detection] max_traces)"
            )
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The file's bytes, gunzipped when they start with gzip's magic number.
fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = [0u8; 2];
    let mut bytes = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let n = reader.read(&mut head)?;
    let gzipped = n == 2 && head == [0x1f, 0x8b];
    let chained = std::io::Read::chain(&head[..n], reader);
    let limited = |r: Box<dyn Read>| r.take(MAX_FILE_BYTES as u64 + 1);
    let mut source = if gzipped {
        limited(Box::new(flate2::read::MultiGzDecoder::new(chained)))
    } else {
        limited(Box::new(chained))
    };
    source
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > MAX_FILE_BYTES {
        bail!(
            "{}: larger than {} GiB once decompressed; split the export",
            path.display(),
            MAX_FILE_BYTES >> 30
        );
    }
    Ok(bytes)
}

/// The requests a file holds, decoded (each may fail on its own: a bad
/// line of a JSON-lines export is reported with its line number).
fn decode_file(
    path: &Path,
    bytes: &[u8],
    input: Input,
) -> anyhow::Result<Vec<anyhow::Result<Decoded>>> {
    let limits = Limits {
        max_body_bytes: MAX_FILE_BYTES,
        max_decompressed_bytes: MAX_FILE_BYTES,
        ..Limits::default()
    };
    let input = match input {
        Input::Auto => detect(bytes),
        given => given,
    };
    let one = |r: Result<Decoded, DecodeError>| vec![r.map_err(anyhow::Error::from)];
    Ok(match input {
        Input::OtlpProto => one(tracewarden_ingest::otlp::proto::decode_traces(
            bytes, &limits,
        )),
        Input::OtlpProtoLogs => one(tracewarden_ingest::otlp::proto::decode_logs(bytes, &limits)),
        Input::Zipkin => one(tracewarden_ingest::zipkin::decode_spans(bytes, &limits)),
        Input::OtlpJson | Input::Auto => {
            // One request per line (the Collector's file exporter), or one
            // request spread over many lines.
            let lines: Vec<(usize, &[u8])> = bytes
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| !line.trim_ascii().is_empty())
                .collect();
            let json_lines = lines.len() > 1
                && lines.iter().all(|(_, l)| {
                    l.trim_ascii().first() == Some(&b'{') && l.trim_ascii().last() == Some(&b'}')
                });
            if json_lines {
                lines
                    .into_iter()
                    .map(|(n, line)| {
                        decode_json(line, &limits)
                            .with_context(|| format!("{} line {}", path.display(), n + 1))
                    })
                    .collect()
            } else {
                vec![decode_json(bytes, &limits)]
            }
        }
    })
}

/// OTLP/JSON traces or logs, by the request's top-level key.
fn decode_json(bytes: &[u8], limits: &Limits) -> anyhow::Result<Decoded> {
    let decoded = if contains(bytes, b"\"resourceLogs\"") && !contains(bytes, b"\"resourceSpans\"")
    {
        tracewarden_ingest::otlp::json::decode_logs(bytes, limits)?
    } else {
        tracewarden_ingest::otlp::json::decode_traces(bytes, limits)?
    };
    Ok(decoded)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// JSON starting with `[` is Zipkin's span array, with `{` OTLP/JSON;
/// anything else is taken for OTLP protobuf traces.
fn detect(bytes: &[u8]) -> Input {
    match bytes.trim_ascii_start().first() {
        Some(b'[') => Input::Zipkin,
        Some(b'{') => Input::OtlpJson,
        _ => Input::OtlpProto,
    }
}

fn print(
    out: &mut impl Write,
    detections: &[Detection],
    format: Format,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    for d in detections {
        totals.detections += 1;
        let actor: Vec<String> = d.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let traces: Vec<String> = d.trace_ids.iter().map(|t| t.to_hex()).collect();
        match format {
            Format::Json => {
                let line = json!({
                    "ruleId": &*d.rule_id,
                    "title": &*d.title,
                    "severity": d.severity.as_str(),
                    "kind": d.kind,
                    "key": d
                        .key
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect::<serde_json::Map<_, _>>(),
                    "count": d.count,
                    "firstSeen": tracewarden_search::format_time(d.first_seen_unix_nano),
                    "lastSeen": tracewarden_search::format_time(d.last_seen_unix_nano),
                    "traceIds": traces,
                    "evidence": d.evidence,
                });
                writeln!(out, "{line}")?;
            }
            Format::Table => {
                writeln!(
                    out,
                    "{}  {:<8} {:<30} {}  count {}  {}",
                    tracewarden_search::format_time(d.first_seen_unix_nano),
                    d.severity.as_str(),
                    d.rule_id,
                    actor.join(" "),
                    d.count,
                    d.title
                )?;
                if !traces.is_empty() {
                    writeln!(out, "    traces {}", traces.join(" "))?;
                }
                if let Some(evidence) = &d.evidence {
                    writeln!(out, "    evidence {evidence}")?;
                }
            }
        }
    }
    Ok(())
}

/// Progress on stderr, at most a few times a second.
struct Reporter {
    enabled: bool,
    total_bytes: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Reporter {
    fn new(enabled: bool, total_bytes: u64) -> Reporter {
        Reporter {
            enabled,
            total_bytes,
            started: Instant::now(),
            last: None,
        }
    }

    fn update(&mut self, path: &Path, bytes_done: u64, totals: &Totals) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(Instant::now());
        let percent = if self.total_bytes == 0 {
            100.0
        } else {
            bytes_done as f64 * 100.0 / self.total_bytes as f64
        };
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{:5.1}%  {}  {} spans, {} log records, {} detections, {:.0} spans/s   ",
            percent,
            path.display(),
            totals.spans,
            totals.logs,
            totals.detections,
            totals.spans as f64 / secs
        );
    }

    fn finish(&self) {
        if self.enabled && self.last.is_some() {
            eprintln!();
        }
    }
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_told_apart_by_their_first_bytes() {
        assert_eq!(detect(b"  [{\"traceId\":\"1\"}]"), Input::Zipkin);
        assert_eq!(detect(b"\n{\"resourceSpans\":[]}"), Input::OtlpJson);
        assert_eq!(detect(&[0x0a, 0x10, 0x0a]), Input::OtlpProto);
    }

    #[test]
    fn a_bad_line_of_json_lines_is_named_and_the_others_kept() {
        let good = br#"{"resourceSpans":[]}"#;
        let text = [&good[..], b"\n{\"resourceSpans\": 7}\n", good, b"\n"].concat();
        let decoded = decode_file(Path::new("x.jsonl"), &text, Input::Auto).unwrap();
        assert_eq!(decoded.len(), 3);
        assert!(decoded[0].is_ok());
        let error = format!("{:#}", decoded[1].as_ref().unwrap_err());
        assert!(error.contains("x.jsonl line 2"), "{error}");
        assert!(decoded[2].is_ok());
    }
}
