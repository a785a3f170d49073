//! Follows the server's alerts (`GET /api/v1/alerts`) on a thread of its
//! own and prints each new one with the link that opens it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;

use super::simulator::stamp;
use crate::cmd::client::{self, text};

const POLL_EVERY: Duration = Duration::from_secs(1);

/// An alert as listed.
#[derive(Clone, Debug)]
pub struct Seen {
    pub fingerprint: String,
    pub rule: String,
    /// The key labels and their values.
    pub actor: BTreeMap<String, String>,
}

/// The polling thread; [`Watcher::finish`] polls once more and returns
/// every alert seen.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Seen>>,
}

impl Watcher {
    pub fn start(server: String, started: Instant) -> anyhow::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("demo-alerts".to_string())
            .spawn(move || follow(&server, started, &flag))?;
        Ok(Watcher { stop, handle })
    }

    pub fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn follow(server: &str, started: Instant, stop: &AtomicBool) -> Vec<Seen> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut failing = false;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        match client::request(server, Method::GET, "/api/v1/alerts?limit=10000", None) {
            Ok(response) => {
                failing = false;
                let mut fresh = new_alerts(&response, &seen);
                // Oldest first, as they fired.
                fresh.reverse();
                for (alert, json) in fresh {
                    print_alert(&alert, &json, server, started);
                    seen.push(alert);
                }
            }
            Err(error) if !failing => {
                println!(
                    "{} cannot read alerts from {server}: {error:#}",
                    stamp(started)
                );
                failing = true;
            }
            Err(_) => {}
        }
        if stopping {
            return seen;
        }
        let until = Instant::now() + POLL_EVERY;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The alerts of a list response not in `seen`, newest first.
fn new_alerts(response: &Value, seen: &[Seen]) -> Vec<(Seen, Value)> {
    let alerts = response
        .get("alerts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    alerts
        .iter()
        .filter(|a| {
            !seen
                .iter()
                .any(|s| s.fingerprint == text(a, "/fingerprint"))
        })
        .map(|a| {
            let actor = a
                .get("actor")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (
                Seen {
                    fingerprint: text(a, "/fingerprint").to_string(),
                    rule: text(a, "/ruleId").to_string(),
                    actor,
                },
                a.clone(),
            )
        })
        .collect()
}

fn print_alert(alert: &Seen, json: &Value, server: &str, started: Instant) {
    let actor: Vec<String> = alert
        .actor
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "{} ALERT  {:<8} {:<28} {}  {}\n          {}/api/v1/alerts/{}",
        stamp(started),
        text(json, "/severity"),
        alert.rule,
        actor.join(" "),
        text(json, "/title"),
        server.trim_end_matches('/'),
        alert.fingerprint
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_alerts_are_those_not_seen() {
        let response = json!({"alerts": [
            {"fingerprint": "b", "ruleId": "sql-injection", "actor": {"client_address": "203.0.113.20"}},
            {"fingerprint": "a", "ruleId": "scanner-user-agent", "actor": {"client_address": "203.0.113.10"}},
        ], "total": 2});
        let fresh = new_alerts(&response, &[]);
        assert_eq!(fresh.len(), 2);
        assert_eq!(fresh[0].0.rule, "sql-injection");
        assert_eq!(
            fresh[0].0.actor.get("client_address").unwrap(),
            "203.0.113.20"
        );
        let seen = vec![fresh[1].0.clone()];
        let again = new_alerts(&response, &seen);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0.fingerprint, "b");
    }
}
