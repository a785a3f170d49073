//! Shared by the store's integration tests and benchmarks: batches built
//! from fixed data, a WAL directory that injects failures, and a reader of
//! the WAL's record layout written independently of the crate's own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};
use tracewarden_model::{
    AnyValue, Batch, Event, KeyValue, Link, LogRecord, Resource, ResourceLogs, ResourceSpans,
    Scope, ScopeLogs, ScopeSpans, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};
use tracewarden_store::wal::{FsWalDirectory, WalDirectory, WalFile, WalFileReader};
use tracewarden_store::{Store, WalOptions};

pub const FILE_HEADER_LEN: usize = 16;
pub const RECORD_HEADER_LEN: usize = 16;

/// A trace id that encodes `n`, never all zero.
pub fn trace_id(n: u64) -> TraceId {
    let mut bytes = [0xA5; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    TraceId::from_bytes(bytes)
}

pub fn span_id(n: u64) -> SpanId {
    let mut bytes = n.to_be_bytes();
    bytes[0] |= 0x80;
    SpanId::from_bytes(bytes)
}

fn service_resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", service),
            KeyValue::new("service.version", "2.14.1"),
            KeyValue::new(
                "service.instance.id",
                "7c1f4a52-9f3e-4d8e-a1b0-3b7f7a4c2d10",
            ),
            KeyValue::new("deployment.environment.name", "production"),
            KeyValue::new("host.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
            KeyValue::new("telemetry.sdk.language", "java"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            KeyValue::new("telemetry.sdk.version", "1.44.1"),
        ],
        original_attributes: Vec::new(),
        dropped_attributes_count: 0,
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    })
}

fn http_scope() -> Arc<Scope> {
    Arc::new(Scope {
        name: "io.opentelemetry.tomcat-10.0".into(),
        version: "2.10.0-alpha".into(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        schema_url: "".into(),
    })
}

/// An HTTP server span as an API gateway reports it: twelve attributes,
/// the shape MEASURED.md's decode figures use.
pub fn http_server_span(trace: u64, n: u64) -> Span {
    let mut span = Span::new(
        trace_id(trace),
        span_id(trace * 1_000_003 + n),
        "GET /api/v1/weather/{city}",
    );
    span.parent_span_id = (n > 0).then(|| span_id(trace * 1_000_003));
    span.kind = SpanKind::Server;
    span.flags = 1;
    span.start_time_unix_nano = 1_764_000_000_000_000_000 + trace * 1_000_000 + n * 1_000;
    span.end_time_unix_nano = span.start_time_unix_nano + 12_345_678;
    let status = [200, 200, 200, 401, 404, 500][(n % 6) as usize];
    span.attributes = vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new(
            "url.path",
            format!("/api/v1/weather/city-{}", n % 97).as_str(),
        ),
        KeyValue::new("url.query", "units=metric&lang=en"),
        KeyValue::new("url.scheme", "https"),
        KeyValue::new("http.route", "/api/v1/weather/{city}"),
        KeyValue::new("http.response.status_code", AnyValue::Int(status)),
        KeyValue::new("client.address", format!("203.0.113.{}", n % 250).as_str()),
        KeyValue::new("client.port", AnyValue::Int(40_000 + (n % 20_000) as i64)),
        KeyValue::new("server.address", "api.example.com"),
        KeyValue::new("server.port", AnyValue::Int(443)),
        KeyValue::new("network.protocol.version", "1.1"),
        KeyValue::new(
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        ),
    ];
    if status >= 500 {
        span.status = Status {
            code: StatusCode::Error,
            message: "upstream timeout".into(),
        };
    }
    span
}

/// `spans` HTTP server spans spread over traces of ten spans, starting at
/// trace `first_trace`, in one resource and scope.
pub fn realistic_batch(first_trace: u64, spans: u64) -> Batch {
    let spans = (0..spans)
        .map(|i| http_server_span(first_trace + i / 10, i % 10))
        .collect();
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: service_resource("api-gateway"),
            scope_spans: vec![ScopeSpans {
                scope: http_scope(),
                spans,
            }],
        }],
        resource_logs: Vec::new(),
    }
}

/// A small batch: one span of trace `trace` and one log record of it.
pub fn small_batch(trace: u64) -> Batch {
    let span = http_server_span(trace, 0);
    let log = LogRecord {
        time_unix_nano: span.start_time_unix_nano + 5,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: AnyValue::from("login attempt"),
        trace_id: Some(span.trace_id),
        span_id: Some(span.span_id),
        ..LogRecord::default()
    };
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: service_resource("api-gateway"),
            scope_spans: vec![ScopeSpans {
                scope: http_scope(),
                spans: vec![span],
            }],
        }],
        resource_logs: vec![ResourceLogs {
            resource: service_resource("api-gateway"),
            scope_logs: vec![ScopeLogs {
                scope: http_scope(),
                log_records: vec![log],
            }],
        }],
    }
}

/// A batch of one bare span of trace `trace`, about 80 bytes encoded: for
/// tests that damage records byte by byte.
pub fn tiny_batch(trace: u64) -> Batch {
    let mut span = Span::new(trace_id(trace), span_id(trace), "GET /");
    span.start_time_unix_nano = trace;
    span.attributes
        .push(KeyValue::new("client.address", "198.51.100.7"));
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: Arc::default(),
            scope_spans: vec![ScopeSpans {
                scope: Arc::default(),
                spans: vec![span],
            }],
        }],
        resource_logs: Vec::new(),
    }
}

/// A batch in which every field of every model type is set, and every
/// attribute value variant appears.
pub fn full_batch() -> Batch {
    let every_value = vec![
        KeyValue::new("empty", AnyValue::Empty),
        KeyValue::new("str", "text with ünïcode"),
        KeyValue::new("bool", true),
        KeyValue::new("int", AnyValue::Int(-42)),
        KeyValue::new("double", AnyValue::Double(0.125)),
        KeyValue::new("bytes", AnyValue::Bytes(vec![0, 1, 254, 255])),
        KeyValue::new(
            "array",
            AnyValue::Array(vec![AnyValue::Int(1), AnyValue::from("two")]),
        ),
        KeyValue::new(
            "kvlist",
            AnyValue::KvList(vec![KeyValue::new(
                "nested",
                AnyValue::Array(vec![AnyValue::Bool(false)]),
            )]),
        ),
    ];
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", "checkout")],
        original_attributes: vec![KeyValue::new("service", "checkout")],
        dropped_attributes_count: 3,
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    });
    let scope = Arc::new(Scope {
        name: "checkout-lib".into(),
        version: "1.2.3".into(),
        attributes: vec![KeyValue::new("scope.attr", "x")],
        dropped_attributes_count: 4,
        schema_url: "https://example.com/scope-schema".into(),
    });
    let span = Span {
        trace_id: trace_id(77),
        span_id: span_id(1),
        parent_span_id: Some(span_id(2)),
        trace_state: "vendor=value".into(),
        flags: 0x301,
        name: "POST /checkout".into(),
        kind: SpanKind::Consumer,
        start_time_unix_nano: 1_700_000_000_000_000_001,
        end_time_unix_nano: 1_700_000_000_900_000_002,
        attributes: every_value.clone(),
        original_attributes: vec![KeyValue::new("http.status_code", AnyValue::Int(503))],
        dropped_attributes_count: 5,
        events: vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".into(),
            attributes: vec![KeyValue::new("exception.type", "java.io.IOException")],
            dropped_attributes_count: 6,
        }],
        dropped_events_count: 7,
        links: vec![Link {
            trace_id: trace_id(78),
            span_id: span_id(3),
            trace_state: "other=1".into(),
            attributes: vec![KeyValue::new("link.kind", "follows")],
            dropped_attributes_count: 8,
            flags: 1,
        }],
        dropped_links_count: 9,
        status: Status {
            code: StatusCode::Error,
            message: "payment declined".into(),
        },
    };
    let log = LogRecord {
        time_unix_nano: 1_700_000_000_200_000_000,
        observed_time_unix_nano: 1_700_000_000_300_000_000,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: AnyValue::KvList(every_value.clone()),
        attributes: every_value,
        original_attributes: vec![KeyValue::new("level", "error")],
        dropped_attributes_count: 10,
        flags: 1,
        trace_id: Some(trace_id(77)),
        span_id: Some(span_id(1)),
        event_name: "payment.failed".into(),
    };
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: Arc::clone(&resource),
            scope_spans: vec![ScopeSpans {
                scope: Arc::clone(&scope),
                spans: vec![span],
            }],
        }],
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs {
                scope,
                log_records: vec![log],
            }],
        }],
    }
}

/// WAL options for tests about replay, where fsync only costs time.
pub fn no_fsync() -> WalOptions {
    WalOptions {
        fsync: false,
        ..WalOptions::default()
    }
}

pub fn open(dir: &Path, options: WalOptions) -> (Store, tracewarden_store::ReplayReport) {
    let directory = FsWalDirectory::open(dir.join("wal")).unwrap();
    Store::open_in(Arc::new(directory), options).unwrap()
}

/// The WAL files of a data directory, in name (LSN) order.
pub fn wal_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Byte ranges of the records of a WAL file (header included), read with
/// the documented layout: a 16-byte file header, then records of a 16-byte
/// header (length u32 LE, crc, lsn) and the payload.
pub fn record_ranges(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut offset = FILE_HEADER_LEN;
    while offset + RECORD_HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let end = offset + RECORD_HEADER_LEN + len;
        assert!(end <= bytes.len(), "record at {offset} runs past the end");
        ranges.push(offset..end);
        offset = end;
    }
    assert_eq!(offset, bytes.len(), "trailing bytes after the last record");
    ranges
}

/// A record's crc as the writer computes it: crc32c over the file's salt
/// (bytes 8..12 of its header), the record's LSN field and its payload.
pub fn record_crc(file: &[u8], lsn: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c(&[&file[8..12], lsn, payload].concat())
}

/// The LSN field of the record at `range`.
pub fn record_lsn(bytes: &[u8], range: &Range<usize>) -> u64 {
    u64::from_le_bytes(bytes[range.start + 8..range.start + 16].try_into().unwrap())
}

/// A tiny deterministic generator (xorshift) for garbage bytes.
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Failures a [`FaultyDirectory`] injects, switched on and off by tests.
#[derive(Default)]
pub struct Faults {
    pub fail_write: AtomicBool,
    pub fail_sync: AtomicBool,
    /// While true, `sync_data` blocks (a disk stalled mid-fsync).
    held: Mutex<bool>,
    released: Condvar,
    /// `sync_data` calls currently blocked.
    pub blocked_syncs: AtomicUsize,
    /// `sync_data` calls that returned success.
    pub syncs: AtomicUsize,
}

impl Faults {
    /// Stalls every `sync_data` until the returned guard is dropped (also
    /// when a failing assertion unwinds, so a failing test cannot hang on a
    /// writer stuck in a stalled fsync).
    pub fn hold_syncs(self: &Arc<Self>) -> SyncHold {
        *self.held.lock() = true;
        SyncHold(Arc::clone(self))
    }

    fn wait_while_held(&self) {
        let mut held = self.held.lock();
        if *held {
            self.blocked_syncs.fetch_add(1, Ordering::SeqCst);
            while *held {
                self.released.wait(&mut held);
            }
            self.blocked_syncs.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Releases stalled fsyncs when dropped.
#[must_use = "dropping the guard releases the fsyncs at once"]
pub struct SyncHold(Arc<Faults>);

impl Drop for SyncHold {
    fn drop(&mut self) {
        *self.0.held.lock() = false;
        self.0.released.notify_all();
    }
}

/// The real file-system directory with failures injected where durability
/// is claimed: file writes and fsyncs.
pub struct FaultyDirectory {
    inner: FsWalDirectory,
    pub faults: Arc<Faults>,
}

impl FaultyDirectory {
    pub fn new(path: PathBuf) -> FaultyDirectory {
        FaultyDirectory {
            inner: FsWalDirectory::open(path).unwrap(),
            faults: Arc::default(),
        }
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl WalDirectory for FaultyDirectory {
    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn open_read(&self, name: &str) -> io::Result<Box<dyn WalFileReader>> {
        self.inner.open_read(name)
    }

    fn open_append(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        Ok(Box::new(FaultyFile {
            inner: self.inner.open_append(name)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        Ok(Box::new(FaultyFile {
            inner: self.inner.create(name)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.inner.truncate(name, len)
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

struct FaultyFile {
    inner: Box<dyn WalFile>,
    faults: Arc<Faults>,
}

impl WalFile for FaultyFile {
    fn write_all(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        if self.faults.fail_write.load(Ordering::SeqCst) {
            // A short write: half of the first buffer reaches the file.
            if let Some(first) = bufs.first() {
                self.inner.write_all(&[&first[..first.len() / 2]])?;
            }
            return Err(injected("write"));
        }
        self.inner.write_all(bufs)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.faults.wait_while_held();
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(injected("fsync"));
        }
        self.inner.sync_data()?;
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
