//! The period of the investigation endpoints: `start`, `end` (Unix seconds
//! or RFC 3339) or `since` (a duration back from now).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tracewarden_search::{parse_duration, parse_time};

use super::ApiError;

/// An omitted `start` is this long before `end`.
pub const DEFAULT_PERIOD_NANOS: u64 = 24 * 3600 * 1_000_000_000;

#[derive(Debug, Default, Deserialize)]
pub struct PeriodParams {
    pub start: Option<String>,
    pub end: Option<String>,
    pub since: Option<String>,
}

pub fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|s| !s.is_empty())
}

impl PeriodParams {
    /// `[start, end)` in Unix nanoseconds: `end` defaults to `now`, `start`
    /// to `since` before now, else 24 hours before `end`.
    pub fn resolve(&self, now: u64) -> Result<(u64, u64), ApiError> {
        let bad = |name: &str, e: String| ApiError::BadRequest(format!("{name}: {e}"));
        let end = match given(self.end.as_deref()) {
            Some(text) => parse_time(text).map_err(|e| bad("end", e))?,
            None => now,
        };
        let start = match (given(self.start.as_deref()), given(self.since.as_deref())) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "give start or since, not both".to_string(),
                ));
            }
            (Some(text), None) => parse_time(text).map_err(|e| bad("start", e))?,
            (None, Some(text)) => {
                now.saturating_sub(parse_duration(text).map_err(|e| bad("since", e))?)
            }
            (None, None) => end.saturating_sub(DEFAULT_PERIOD_NANOS),
        };
        if start >= end {
            return Err(ApiError::BadRequest(format!(
                "the period is empty: start ({start}) is not before end ({end})"
            )));
        }
        Ok((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(start: Option<&str>, end: Option<&str>, since: Option<&str>) -> PeriodParams {
        PeriodParams {
            start: start.map(String::from),
            end: end.map(String::from),
            since: since.map(String::from),
        }
    }

    #[test]
    fn periods() {
        const S: u64 = 1_000_000_000;
        let now = 1_800_000_000 * S;
        let ok = |p: PeriodParams| p.resolve(now).unwrap();
        assert_eq!(ok(params(None, None, None)), (now - 86_400 * S, now));
        assert_eq!(ok(params(None, None, Some("1h"))), (now - 3600 * S, now));
        assert_eq!(
            ok(params(
                Some("1700000000"),
                Some("2023-11-14T22:13:30Z"),
                None
            )),
            (1_700_000_000 * S, 1_700_000_010 * S)
        );
        assert_eq!(
            ok(params(None, Some("1700000000"), Some(" "))),
            (1_699_913_600 * S, 1_700_000_000 * S)
        );
        for (p, message) in [
            (params(Some("yesterday"), None, None), "start:"),
            (params(None, Some("x"), None), "end:"),
            (params(None, None, Some("forever")), "since:"),
            (params(Some("1"), None, Some("1h")), "not both"),
            (
                params(Some("1700000000"), Some("1700000000"), None),
                "empty",
            ),
        ] {
            let error = p.resolve(now).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        }
    }
}
