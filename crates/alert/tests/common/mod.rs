//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracewarden_alert::config::{Config, ValidConfig};
use tracewarden_detect::engine::Detection;
use tracewarden_detect::rule::Severity;
use tracewarden_model::TraceId;

pub const SEC: u64 = 1_000_000_000;

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn detection(rule: &str, address: &str, trace: u8) -> Detection {
    Detection {
        rule_id: Arc::from(rule),
        title: Arc::from("Brute-force login from one address"),
        severity: Severity::High,
        kind: "threshold",
        key: vec![("span.client.address".to_string(), address.to_string())],
        count: 10,
        first_seen_unix_nano: now_nanos() - 60 * SEC,
        last_seen_unix_nano: now_nanos() - SEC,
        trace_ids: vec![TraceId::from_bytes([trace; 16])],
        evidence: None,
    }
}

pub fn config(text: &str) -> ValidConfig {
    toml::from_str::<Config>(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `check` until it returns `Some`, or panics with `what` after
/// `deadline`.
pub async fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
