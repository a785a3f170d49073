//! Server configuration: a TOML file, with command-line overrides on top.
//!
//! Every setting has a default, so `tracewarden serve` runs with no file.
//! docs/CONFIGURATION.md documents each key; `tracewarden.example.toml` at the
//! repository root is a complete file with the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracewarden_detect::rule::Site;
use tracewarden_ingest::Limits;
use tracewarden_store::{LifecycleOptions, StoreOptions, WalOptions};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("failed to read config file `{path}`")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the WAL and the segments live.
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub limits: Limits,
    pub wal: WalOptions,
    /// The `[store]` section: flush triggers, compaction, retention, signing key.
    pub store: LifecycleOptions,
    /// The `[detection]` section: which rules run on what arrives.
    pub detection: DetectionConfig,
    /// The `[alerts]` section: routes, receivers, inhibit rules and timings
    /// of the alerts raised from detections (docs/ALERTS.md).
    pub alerts: tracewarden_alert::Config,
    /// The `[blocks]` section: block decisions for gateways.
    pub blocks: crate::blocks::BlocksConfig,
    /// The `[redaction]` section: secrets dropped, masked or hashed before
    /// the WAL (docs/REDACTION.md).
    pub redaction: tracewarden_redact::RedactionConfig,
    /// The `[auth]` section: API keys, the start-up protection check and
    /// rate limits (docs/SECURITY.md).
    pub auth: crate::auth::AuthConfig,
    /// The `[tls]` section: TLS on every listener, client certificates.
    pub tls: crate::tls::TlsConfig,
    /// The `[payloads]` section: request and response bodies stored for
    /// forensics (docs/PAYLOADS.md).
    pub payloads: crate::payloads::PayloadsConfig,
}

/// Detection settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionConfig {
    /// Run the rules on every acknowledged batch.
    pub enabled: bool,
    /// Load the built-in rule pack (embedded in the binary).
    pub builtin_rules: bool,
    /// A directory of more rule files (`*.yaml`); a rule with the id of a
    /// built-in one replaces it. Any error in them stops the start.
    pub rules_dir: Option<PathBuf>,
    /// Batches waiting for the detection thread; more are stored but not
    /// detected on (counted), so detection never slows ingest.
    pub queue_batches: usize,
    /// How often `rules_dir` is checked for changed rule files (`"off"`:
    /// never; reload with `POST /api/v1/rules/reload`).
    #[serde(with = "optional_interval")]
    pub reload_interval: Option<std::time::Duration>,
    /// How often the detection state is checkpointed into
    /// `data_dir/detection/` (`"off"`: never; a restart then starts empty).
    #[serde(with = "optional_interval")]
    pub checkpoint_interval: Option<std::time::Duration>,
    /// A trace is complete (and whole-trace rules run on it) after this
    /// long without a new span.
    #[serde(with = "interval")]
    pub trace_idle: std::time::Duration,
    /// A trace still receiving spans after this long is evaluated as it is
    /// (partial).
    #[serde(with = "interval")]
    pub trace_max_wait: std::time::Duration,
    /// Traces held for assembly at once; beyond, the oldest is evaluated
    /// partial (counted).
    pub max_traces: usize,
    /// Spans of one trace held; beyond, it is split (counted).
    pub max_spans_per_trace: usize,
    /// Spans held for assembly in all; beyond, the oldest trace is
    /// evaluated partial (counted).
    pub max_buffered_spans: usize,
    /// Keys of state per threshold, sequence, new_terms or baseline rule;
    /// beyond, the least recently seen key is evicted (counted). Bounds
    /// detection memory whatever the number of actors.
    #[serde(deserialize_with = "at_least_one")]
    pub max_keys_per_rule: usize,
    /// How long a log record waits for the span it was emitted in when a
    /// log rule joins span attributes (`join:`); also how long a span's
    /// attributes are kept for records arriving after it.
    #[serde(with = "interval")]
    pub log_join_wait: std::time::Duration,
    /// Log records waiting for their span at once; beyond, the oldest is
    /// evaluated without its span (counted).
    pub log_join_max_pending: usize,
    /// Spans whose attributes are kept for records arriving after them;
    /// beyond, the oldest is forgotten (counted).
    pub log_join_max_spans: usize,
    /// A MaxMind GeoIP2/GeoLite2 Country or City database: spans with a
    /// `client.address` and no country get `geo.country.iso_code` before
    /// the rules run (for `geo-policy`). None: no lookup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoip_database: Option<PathBuf>,
    /// The `[detection.site]` section: facts rules reference as `$name`.
    pub site: Site,
}

/// A count that must be at least 1.
fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let value = <usize as serde::Deserialize>::deserialize(d)?;
    if value == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(value)
}

/// A duration such as `"5s"`, at least 100 ms.
pub(crate) mod interval {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};
    use tracewarden_detect::rule::{format_duration, parse_duration};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let value = parse_duration(&text).map_err(serde::de::Error::custom)?;
        if value < Duration::from_millis(100) {
            return Err(serde::de::Error::custom(
                "a duration must be at least 100ms",
            ));
        }
        Ok(value)
    }
}

/// `"2s"` or `"off"`.
pub(crate) mod optional_interval {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};
    use tracewarden_detect::rule::{format_duration, parse_duration};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim() == "off" {
            return Ok(None);
        }
        let interval = parse_duration(&text).map_err(serde::de::Error::custom)?;
        if interval < Duration::from_millis(100) {
            return Err(serde::de::Error::custom(
                "an interval must be at least 100ms (or \"off\")",
            ));
        }
        Ok(Some(interval))
    }
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            enabled: true,
            builtin_rules: true,
            rules_dir: None,
            queue_batches: 1024,
            reload_interval: Some(std::time::Duration::from_secs(2)),
            checkpoint_interval: Some(std::time::Duration::from_secs(10)),
            trace_idle: std::time::Duration::from_secs(5),
            trace_max_wait: std::time::Duration::from_secs(300),
            max_traces: 100_000,
            max_spans_per_trace: 10_000,
            max_buffered_spans: 500_000,
            max_keys_per_rule: 100_000,
            log_join_wait: std::time::Duration::from_secs(5),
            log_join_max_pending: 100_000,
            log_join_max_spans: 100_000,
            geoip_database: None,
            site: Site::default(),
        }
    }
}

/// The addresses the server listens on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// OTLP over gRPC (TraceService and LogsService).
    pub otlp_grpc: SocketAddr,
    /// OTLP over HTTP (`/v1/traces`, `/v1/logs`).
    pub otlp_http: SocketAddr,
    /// Zipkin v2 (`/api/v2/spans`).
    pub zipkin: SocketAddr,
    /// The query API, health checks (and later the web UI).
    pub api: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Listen {
            otlp_grpc: local(4317),
            otlp_http: local(4318),
            zipkin: local(9411),
            api: local(7700),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: Listen::default(),
            limits: Limits::default(),
            wal: WalOptions::default(),
            store: LifecycleOptions::default(),
            detection: DetectionConfig::default(),
            alerts: tracewarden_alert::Config::default(),
            blocks: crate::blocks::BlocksConfig::default(),
            redaction: tracewarden_redact::RedactionConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            payloads: crate::payloads::PayloadsConfig::default(),
        }
    }
}

impl Config {
    /// The options the store opens with.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            wal: self.wal.clone(),
            lifecycle: self.store.clone(),
            ..StoreOptions::new(self.data_dir.clone())
        }
    }

    /// Reads a TOML file; keys it omits keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text; the error is the parser's message with its position.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let text = include_str!("../../../tracewarden.example.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn overrides_and_unknown_keys() {
        let config = Config::from_toml(
            "data_dir = \"/var/lib/tw\"\n[listen]\napi = \"0.0.0.0:8080\"\n[limits]\nmax_body_bytes = 1024\n",
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/tw"));
        assert_eq!(config.listen.api.port(), 8080);
        assert_eq!(config.listen.otlp_grpc.port(), 4317);
        assert_eq!(config.limits.max_body_bytes, 1024);
        let err = Config::from_toml("[listen]\napii = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("apii"), "{err}");
        let err = Config::from_toml("[listen]\napi = \"nonsense\"\n").unwrap_err();
        assert!(err.contains("api"), "{err}");
    }

    #[test]
    fn alerts_section_of_the_docs_parses_and_validates() {
        let docs = include_str!("../../../docs/ALERTS.md");
        let section = &docs[docs.find("## In the server").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let text = &section[start..start + section[start..].find("```").unwrap()];
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.alerts.route.receiver.as_deref(), Some("soc"));
        assert_eq!(config.alerts.receivers.len(), 2);
        config.alerts.validate().unwrap();
    }

    #[test]
    fn key_cap_per_rule_reaches_the_engine_and_is_positive() {
        let config = Config::from_toml("[detection]\nmax_keys_per_rule = 5000\n").unwrap();
        assert_eq!(
            crate::detection::engine_config(&config.detection).max_keys_per_rule,
            5000
        );
        let err = Config::from_toml("[detection]\nmax_keys_per_rule = 0\n").unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn auth_section() {
        let config = Config::from_toml(
            "[auth]\nenabled = \"on\"\nallow_unauthenticated = true\n\
             [auth.rate_limit]\nrequests_per_second = 2.5\nburst = 7\n",
        )
        .unwrap();
        assert_eq!(config.auth.enabled, crate::auth::AuthMode::On);
        assert!(config.auth.allow_unauthenticated);
        assert_eq!(config.auth.rate_limit.requests_per_second, 2.5);
        assert_eq!(config.auth.rate_limit.burst, 7);
        let err = Config::from_toml("[auth]\nenabled = \"maybe\"\n").unwrap_err();
        assert!(err.contains("maybe"), "{err}");
    }

    #[test]
    fn store_section_maps_to_the_store_options() {
        let config = Config::from_toml(
            "data_dir = \"/d\"\n\
             [store]\nflush_spans = 1000\nflush_age = \"1h30m\"\nmemory_wait = \"250ms\"\nsigning_key_file = \"/k/manifest.key\"\n\
             encryption_key_file = \"/k/store.key\"\n\
             [store.compaction]\nenabled = false\nbelow_spans = 10\n\
             [store.retention]\nmax_age = \"30d\"\nmax_total_bytes = 1000000000\n",
        )
        .unwrap();
        let options = config.store_options();
        assert_eq!(options.data_dir, PathBuf::from("/d"));
        let store = options.lifecycle;
        assert_eq!(store.flush_spans, 1000);
        assert_eq!(store.flush_age, std::time::Duration::from_secs(5400));
        assert_eq!(store.memory_wait, std::time::Duration::from_millis(250));
        assert_eq!(
            store.signing_key_file,
            Some(PathBuf::from("/k/manifest.key"))
        );
        assert_eq!(
            store.encryption_key_file,
            Some(PathBuf::from("/k/store.key"))
        );
        assert!(!store.compaction.enabled);
        assert_eq!(store.compaction.below_spans, 10);
        assert_eq!(store.compaction.max_spans, 1_000_000);
        assert_eq!(
            store.retention.max_age,
            Some(std::time::Duration::from_secs(30 * 24 * 3600))
        );
        assert_eq!(store.retention.max_total_bytes, Some(1_000_000_000));
        let defaults = Config::default().store_options().lifecycle;
        assert_eq!(defaults.retention.max_age, None);
        assert_eq!(defaults.signing_key_file, None);
        assert_eq!(defaults.encryption_key_file, None);

        let err = Config::from_toml("[store]\nflush_age = \"10 minutes\"\n").unwrap_err();
        assert!(err.contains("flush_age"), "{err}");
        let err = Config::from_toml("[store.retention]\nmax_days = 3\n").unwrap_err();
        assert!(err.contains("max_days"), "{err}");
    }
}
