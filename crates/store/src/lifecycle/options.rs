//! Options of the store's lifecycle: when the hot tier is flushed into a
//! segment, which segments are compacted, how long segments are kept, and
//! the key that signs manifests. The server reads them from the `[store]`
//! section of its configuration (docs/CONFIGURATION.md), with the key file
//! that encrypts the WAL and segments.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When the hot tier is flushed, how segments are compacted and retained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleOptions {
    /// Flush the hot tier into a segment once it holds this many spans and
    /// log records (default 1,000,000). While memory holds
    /// [`crate::MEMORY_LIMIT_FLUSHES`] times as many (flushes are behind),
    /// appends wait up to `memory_wait`, then are refused (429).
    pub flush_spans: u64,
    /// ... or once its oldest data is this old (default 10 minutes), so a
    /// quiet store does not keep data only in the WAL for long.
    #[serde(with = "duration")]
    pub flush_age: Duration,
    /// How long an append waits for the flush under way to free memory
    /// before it is refused (default 1 s; 0 refuses at once).
    #[serde(with = "duration")]
    pub memory_wait: Duration,
    pub compaction: CompactionOptions,
    pub retention: RetentionOptions,
    /// An ed25519 signing key: manifests and retention records are signed
    /// with it when set (see `tracewarden verify`). None by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    /// Encryption at rest: a key file of 64 hex characters (`tracewarden
    /// encryption-key generate`). When set, new WAL files and segments are
    /// encrypted with it, and it is needed to open the store; existing plain
    /// files stay readable. None by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        LifecycleOptions {
            flush_spans: 1_000_000,
            flush_age: Duration::from_secs(10 * 60),
            memory_wait: Duration::from_secs(1),
            compaction: CompactionOptions::default(),
            retention: RetentionOptions::default(),
            signing_key_file: None,
            encryption_key_file: None,
        }
    }
}

/// Merging small segments (from flushes by age, or at shutdown) into larger ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionOptions {
    pub enabled: bool,
    /// Segments holding fewer spans and log records than this are merged,
    /// oldest first (default 100,000).
    pub below_spans: u64,
    /// The most spans and log records one merged segment takes (default
    /// 1,000,000): compaction reads its inputs into memory.
    pub max_spans: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            enabled: true,
            below_spans: 100_000,
            max_spans: 1_000_000,
        }
    }
}

/// How long segments are kept. Whole segments are dropped, oldest first,
/// each drop recorded in `segments/retention.jsonl` before its files are
/// deleted. Nothing is dropped by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionOptions {
    /// Drop a segment once its newest data is older than this.
    #[serde(with = "optional_duration", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// Drop the oldest segments while all segments take more bytes than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_bytes: Option<u64>,
}

impl LifecycleOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.flush_spans == 0 {
            return Err("store.flush_spans must be over 0".to_owned());
        }
        if self.flush_age.is_zero() {
            return Err("store.flush_age must be over 0".to_owned());
        }
        if self.compaction.enabled && self.compaction.max_spans < self.compaction.below_spans {
            return Err(format!(
                "store.compaction.max_spans ({}) must be at least below_spans ({})",
                self.compaction.max_spans, self.compaction.below_spans
            ));
        }
        if self.retention.max_age.is_some_and(|age| age.is_zero()) {
            return Err("store.retention.max_age must be over 0".to_owned());
        }
        Ok(())
    }
}

/// The units a duration is written in, largest first.
const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a duration written as numbers with units, `"10m"`, `"1h30m"`,
/// `"30d"`, `"500ms"` (units: w, d, h, m, s, ms).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration `{text}`: expected numbers with units (w, d, h, m, s, ms), like \"10m\" or \"1h30m\""
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(invalid)?;
        millis = number
            .checked_mul(scale)
            .and_then(|m| millis.checked_add(m))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
        rest = after;
    }
    Ok(Duration::from_millis(millis))
}

/// Writes a duration in the largest unit that divides it exactly, the form
/// [`parse_duration`] reads back (sub-millisecond parts are dropped).
pub fn format_duration(duration: Duration) -> String {
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_owned();
    }
    for (name, scale) in UNITS {
        if millis % scale == 0 {
            return format!("{}{name}", millis / scale);
        }
    }
    format!("{millis}ms")
}

mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_str(&super::format_duration(*value)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format_back() {
        for (text, millis) in [
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("30d", 2_592_000_000),
            ("2w", 1_209_600_000),
            ("500ms", 500),
            ("1s500ms", 1_500),
            (" 45s ", 45_000),
        ] {
            let parsed = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed, Duration::from_millis(millis), "{text}");
            assert_eq!(
                parse_duration(&format_duration(parsed)).unwrap(),
                parsed,
                "{text}"
            );
        }
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "-1s",
            "99999999999999999999w",
            "10m h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn options_validate() {
        assert!(LifecycleOptions::default().validate().is_ok());
        let mut options = LifecycleOptions {
            flush_spans: 0,
            ..LifecycleOptions::default()
        };
        assert!(options.validate().is_err());
        options.flush_spans = 1;
        options.compaction.max_spans = 10;
        options.compaction.below_spans = 11;
        assert!(options.validate().is_err());
        options.compaction.enabled = false;
        assert!(options.validate().is_ok());
        options.retention.max_age = Some(Duration::ZERO);
        assert!(options.validate().is_err());
    }
}
