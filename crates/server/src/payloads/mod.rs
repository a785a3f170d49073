//! Request and response bodies of spans, stored for forensics (the
//! `[payloads]` section; docs/PAYLOADS.md).
//!
//! A service or gateway posts a body for a trace and span
//! (`POST /api/v1/payloads`); it is checked ([`body::media_type`], the size
//! limit), redacted by the pipeline's redactor ([`body::redact`]) before
//! anything touches the disk, and stored in `data_dir/payloads/` by
//! [`PayloadStore`] (sealed with the store's key when encryption is on).
//! A sweep removes payloads older than `retention`.

pub mod body;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracewarden_store::{EncryptionKey, PayloadError, PayloadStore};

use crate::metrics::{Exposition, Kind, MetricsSource};

/// Where payloads live under the data directory.
pub const PAYLOADS_DIR: &str = "payloads";

/// The `[payloads]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayloadsConfig {
    /// Accept bodies on `POST /api/v1/payloads`. Stored payloads stay
    /// readable (and swept) when this is turned off.
    pub enabled: bool,
    /// The largest body accepted; larger ones are refused with 413.
    pub max_bytes: usize,
    /// The bytes all stored bodies may take; a body that would pass it
    /// is refused with 507 (a leaked ingest key cannot fill the disk).
    pub max_total_bytes: u64,
    /// How long a payload is kept after it was stored (`"7d"`, `"90d"`,
    /// `"12h"`).
    #[serde(with = "retention")]
    pub retention: Duration,
}

/// A retention as the store's `max_age` is written; over zero.
mod retention {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};
    use tracewarden_store::lifecycle::{format_duration, parse_duration};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let value = parse_duration(&text).map_err(serde::de::Error::custom)?;
        if value.is_zero() {
            return Err(serde::de::Error::custom("a retention must be over 0"));
        }
        Ok(value)
    }
}

impl Default for PayloadsConfig {
    fn default() -> Self {
        PayloadsConfig {
            enabled: true,
            max_bytes: 1024 * 1024,
            max_total_bytes: 10 * 1024 * 1024 * 1024,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a body was refused, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Missing or malformed ids or kind.
    BadRequest,
    TooLarge,
    UnsupportedType,
    Disabled,
    /// `max_total_bytes` reached.
    Full,
    /// The disk write failed (logged).
    Failed,
}

impl Rejection {
    const ALL: [Rejection; 6] = [
        Rejection::BadRequest,
        Rejection::TooLarge,
        Rejection::UnsupportedType,
        Rejection::Disabled,
        Rejection::Full,
        Rejection::Failed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Rejection::BadRequest => "bad_request",
            Rejection::TooLarge => "too_large",
            Rejection::UnsupportedType => "unsupported_type",
            Rejection::Disabled => "disabled",
            Rejection::Full => "full",
            Rejection::Failed => "failed",
        }
    }
}

/// The payload store with its settings and counters.
pub struct Payloads {
    pub store: PayloadStore,
    pub config: PayloadsConfig,
    stored: AtomicU64,
    stored_bytes: AtomicU64,
    rejected: [AtomicU64; 6],
    swept: AtomicU64,
}

impl std::fmt::Debug for Payloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payloads")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Payloads {
    /// Opens `data_dir/payloads`.
    pub fn open(
        config: &PayloadsConfig,
        data_dir: &Path,
        key: Option<Arc<EncryptionKey>>,
    ) -> Result<Payloads, PayloadError> {
        let store = PayloadStore::open(&data_dir.join(PAYLOADS_DIR), key)?;
        Ok(Payloads {
            store,
            config: config.clone(),
            stored: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
            rejected: Default::default(),
            swept: AtomicU64::new(0),
        })
    }

    pub fn count_stored(&self, bytes: u64) {
        self.stored.fetch_add(1, Ordering::Relaxed);
        self.stored_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn count_rejected(&self, why: Rejection) {
        if let Some(i) = Rejection::ALL.iter().position(|r| *r == why)
            && let Some(counter) = self.rejected.get(i)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes the payloads older than the retention; returns how many.
    pub fn sweep(&self, now_unix_nano: u64) -> Result<usize, PayloadError> {
        let retention = u64::try_from(self.config.retention.as_nanos()).unwrap_or(u64::MAX);
        let removed = self.store.sweep(now_unix_nano.saturating_sub(retention))?;
        self.swept.fetch_add(removed as u64, Ordering::Relaxed);
        Ok(removed)
    }
}

/// How often the retention sweep runs: often enough that a payload
/// outlives its retention by little, at most once a minute.
pub fn sweep_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Sweeps every [`sweep_interval`] while `payloads` lives (a thread: the
/// sweep removes files).
pub fn start_sweeper(payloads: &Arc<Payloads>) -> std::io::Result<()> {
    let weak: Weak<Payloads> = Arc::downgrade(payloads);
    let interval = sweep_interval(payloads.config.retention);
    std::thread::Builder::new()
        .name("payload-sweep".into())
        .spawn(move || {
            loop {
                let Some(payloads) = weak.upgrade() else {
                    return;
                };
                match payloads.sweep(now_unix_nano()) {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "payloads past their retention removed"),
                    Err(error) => tracing::warn!(%error, "payload retention sweep failed"),
                }
                drop(payloads);
                std::thread::sleep(interval);
            }
        })
        .map(|_| ())
}

pub fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl MetricsSource for Payloads {
    fn collect(&self, out: &mut Exposition) {
        let stats = self.store.stats();
        out.single(
            "tracewarden_payloads_stored_total",
            Kind::Counter,
            "Request and response bodies stored since start.",
            self.stored.load(Ordering::Relaxed) as f64,
        );
        out.single(
            "tracewarden_payloads_stored_bytes_total",
            Kind::Counter,
            "Bytes of bodies stored (after redaction) since start.",
            self.stored_bytes.load(Ordering::Relaxed) as f64,
        );
        let name = "tracewarden_payloads_rejected_total";
        out.family(
            name,
            Kind::Counter,
            "Bodies refused since start, by reason.",
        );
        for (why, count) in Rejection::ALL.iter().zip(&self.rejected) {
            out.sample(
                name,
                &[("reason", why.as_str())],
                count.load(Ordering::Relaxed) as f64,
            );
        }
        out.single(
            "tracewarden_payloads_swept_total",
            Kind::Counter,
            "Payloads removed by the retention sweep since start.",
            self.swept.load(Ordering::Relaxed) as f64,
        );
        out.single(
            "tracewarden_payloads",
            Kind::Gauge,
            "Payloads in the store.",
            stats.payloads as f64,
        );
        out.single(
            "tracewarden_payloads_bytes",
            Kind::Gauge,
            "Bytes of the bodies in the store.",
            stats.bytes as f64,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tracewarden_model::{SpanId, TraceId};
    use tracewarden_store::{NewPayload, PayloadKind};

    use super::*;

    #[test]
    fn retention_sweep_and_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let config = PayloadsConfig {
            retention: Duration::from_secs(3600),
            ..PayloadsConfig::default()
        };
        let payloads = Payloads::open(&config, dir.path(), None).unwrap();
        let hour = 3_600_000_000_000u64;
        let now = 10 * hour;
        for age in [2 * hour, hour / 2] {
            let new = NewPayload {
                trace_id: TraceId::from_bytes([1; 16]),
                span_id: SpanId::from_bytes([2; 8]),
                kind: PayloadKind::Response,
                content_type: "text/plain; charset=utf-8".into(),
                time_unix_nano: now - age,
                truncated: false,
                redactions: 0,
            };
            payloads.store.put(new, b"body").unwrap();
            payloads.count_stored(4);
        }
        payloads.count_rejected(Rejection::TooLarge);
        assert_eq!(payloads.sweep(now).unwrap(), 1);
        assert_eq!(payloads.store.stats().payloads, 1);
        let mut out = Exposition::new();
        payloads.collect(&mut out);
        let text = out.finish();
        for line in [
            "tracewarden_payloads_stored_total 2\n",
            "tracewarden_payloads_rejected_total{reason=\"too_large\"} 1\n",
            "tracewarden_payloads_rejected_total{reason=\"bad_request\"} 0\n",
            "tracewarden_payloads_swept_total 1\n",
            "tracewarden_payloads 1\n",
            "tracewarden_payloads_bytes 4\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }

    #[test]
    fn the_section_parses() {
        let config: PayloadsConfig =
            toml::from_str("enabled = false\nmax_bytes = 4096\nretention = \"30d\"").unwrap();
        assert_eq!(
            config,
            PayloadsConfig {
                enabled: false,
                max_bytes: 4096,
                max_total_bytes: 10 * 1024 * 1024 * 1024,
                retention: Duration::from_secs(30 * 24 * 3600),
            }
        );
        assert!(toml::from_str::<PayloadsConfig>("max_byte = 1").is_err());
        assert!(toml::from_str::<PayloadsConfig>("retention = \"0s\"").is_err());
        assert_eq!(
            sweep_interval(Duration::from_secs(7 * 24 * 3600)),
            Duration::from_secs(60)
        );
    }
}
