//! What saving the alert state costs with many alerts firing: the pack's
//! rules (for their titles, descriptions and responses), N alerts of the
//! brute-force rule from N addresses, then every alert updated by a new
//! detection and the state saved, five times. Under an attack in progress
//! every firing alert is updated each second; the alerting thread saves such
//! updates at most every `UPDATES_SAVED_EVERY` (docs/BENCHMARKS.md).
//!
//! `cargo run --release -p tracewarden-alert --example state_save [N...]`
//! (default 1000 10000).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracewarden_alert::config::Config;
use tracewarden_alert::engine::{Alerting, UPDATES_SAVED_EVERY};
use tracewarden_detect::engine::Detection;
use tracewarden_detect::rule::{Severity, load_dir};
use tracewarden_model::TraceId;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_767_225_600 * SEC;

fn detection(address: &str, round: u64) -> Detection {
    Detection {
        rule_id: Arc::from("brute-force-login"),
        title: Arc::from("Brute-force login from one address"),
        severity: Severity::High,
        kind: "threshold",
        key: vec![("span.client.address".to_string(), address.to_string())],
        count: 10 + round,
        first_seen_unix_nano: T0,
        last_seen_unix_nano: T0 + round * SEC,
        trace_ids: (0..5u8)
            .map(|i| TraceId::from_bytes([i + round as u8; 16]))
            .collect(),
        evidence: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))?;
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    for n in sizes {
        let dir = tempfile::tempdir()?;
        let config = toml::from_str::<Config>(&format!("max_alerts = {n}"))?.validate()?;
        let mut engine = Alerting::open(config, &rules, dir.path(), T0)?;
        let addresses: Vec<String> = (0..n)
            .map(|i| format!("198.51.{}.{}", i / 256, i % 256))
            .collect();
        let first: Vec<Detection> = addresses.iter().map(|a| detection(a, 0)).collect();
        engine.observe(&first, T0);
        engine.tick(T0);
        engine.persist()?;
        let mut times = Vec::new();
        for round in 1..=5u64 {
            let now = T0 + round * SEC;
            let update: Vec<Detection> = addresses.iter().map(|a| detection(a, round)).collect();
            engine.observe(&update, now);
            let started = Instant::now();
            engine.persist()?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let bytes = std::fs::metadata(dir.path().join("alerts-state.json"))?.len();
        println!(
            "{n} alerts: state file {:.1} MB; one save (serialise, write, fsync, rename) median {:.1} ms (min {:.1}, max {:.1}); \
             updates saved every {} s instead of every second",
            bytes as f64 / 1e6,
            times[2],
            times[0],
            times[4],
            UPDATES_SAVED_EVERY.as_secs()
        );
    }
    Ok(())
}
