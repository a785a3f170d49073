//! The webhook receiver against a local HTTP server: Alertmanager webhook
//! v4 payloads, retries after failures, permanent errors, and a dead
//! receiver that must not block the caller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use tokio::sync::Mutex;
use tracewarden_alert::engine::Alerting;
use tracewarden_alert::receiver::Notifier;

use common::{SEC, config, detection, now_nanos, wait_for};

#[derive(Clone, Default)]
struct Hook {
    /// Requests answered 500 before the first 200.
    fail_first: usize,
    /// Answer this status to everything when set.
    always: Option<u16>,
    requests: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn answer(State(hook): State<Hook>, body: String) -> StatusCode {
    let n = hook.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = hook.always {
        return StatusCode::from_u16(status).unwrap();
    }
    if n < hook.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    hook.received
        .lock()
        .await
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

async fn serve(hook: Hook) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(answer)).with_state(hook);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hook")
}

fn webhook_config(url: &str, extra: &str) -> String {
    format!(
        r#"
external_url = "https://tracewarden.example.com"
[route]
receiver = "soc"
group_by = ["alertname"]
group_wait = "0s"
[[receivers]]
name = "soc"
max_attempts = 5
backoff_initial = "10ms"
backoff_max = "50ms"
timeout = "5s"
{extra}
[receivers.webhook]
url = "{url}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_payload_arrives_after_retries() {
    let hook = Hook {
        fail_first: 2,
        ..Hook::default()
    };
    let url = serve(hook.clone()).await;
    let valid = config(&webhook_config(&url, ""));
    let notifier = Notifier::start(&valid, Path::new(".")).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    let now = now_nanos();
    engine.observe(
        &[
            detection("brute-force-login", "203.0.113.9", 1),
            detection("brute-force-login", "198.51.100.7", 2),
        ],
        now,
    );
    let notifications = engine.tick(now);
    assert_eq!(notifications.len(), 1);
    for n in notifications {
        notifier.notify(n);
    }
    let payload = wait_for("the payload", Duration::from_secs(20), async || {
        hook.received.lock().await.first().cloned()
    })
    .await;
    assert_eq!(
        hook.requests.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    let stats = wait_for("the counters", Duration::from_secs(5), async || {
        let s = notifier.stats().remove(0);
        (s.sent == 1).then_some(s)
    })
    .await;
    assert_eq!(
        (stats.kind, stats.retries, stats.failed, stats.dropped),
        ("webhook", 2, 0, 0)
    );

    assert_eq!(payload["version"], "4");
    assert_eq!(payload["receiver"], "soc");
    assert_eq!(payload["status"], "firing");
    assert_eq!(payload["groupKey"], "{}:{alertname=\"brute-force-login\"}");
    assert_eq!(payload["groupLabels"]["alertname"], "brute-force-login");
    assert_eq!(payload["commonLabels"]["severity"], "high");
    assert_eq!(payload["externalURL"], "https://tracewarden.example.com");
    assert_eq!(payload["truncatedAlerts"], 0);
    let alerts = payload["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let fingerprints: Vec<String> = engine
        .alerts()
        .iter()
        .map(|a| a.fingerprint.to_string())
        .collect();
    for alert in alerts {
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
        assert!(fingerprints.contains(&alert["fingerprint"].as_str().unwrap().to_string()));
        assert!(
            alert["generatorURL"]
                .as_str()
                .unwrap()
                .starts_with("https://tracewarden.example.com/api/v1/traces/")
        );
        assert_eq!(
            alert["annotations"]["title"],
            "Brute-force login from one address"
        );
    }

    // The resolution goes out the same way.
    let later = now + 301 * SEC;
    for n in engine.tick(later) {
        notifier.notify(n);
    }
    let resolved = wait_for("the resolution", Duration::from_secs(20), async || {
        hook.received.lock().await.get(1).cloned()
    })
    .await;
    assert_eq!(resolved["status"], "resolved");
    assert!(
        resolved["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved" && a["endsAt"] != "0001-01-01T00:00:00Z")
    );
    assert!(notifier.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    let hook = Hook {
        always: Some(400),
        ..Hook::default()
    };
    let url = serve(hook.clone()).await;
    let valid = config(&webhook_config(&url, ""));
    let notifier = Notifier::start(&valid, Path::new(".")).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    let now = now_nanos();
    engine.observe(&[detection("brute-force-login", "203.0.113.9", 1)], now);
    for n in engine.tick(now) {
        notifier.notify(n);
    }
    let stats = wait_for("the failure", Duration::from_secs(20), async || {
        let s = notifier.stats().remove(0);
        (s.failed == 1).then_some(s)
    })
    .await;
    assert_eq!((stats.sent, stats.retries), (0, 0));
    assert_eq!(hook.requests.load(Ordering::SeqCst), 1);
}

/// The default `#[tokio::test]` runtime runs one task at a time: the
/// receiver's task cannot take anything from its queue while the test
/// enqueues, so what is dropped is exact.
#[tokio::test]
async fn a_dead_receiver_never_blocks_the_caller() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let valid = config(
        &webhook_config(&url, "queue_capacity = 2").replace("max_attempts = 5", "max_attempts = 2"),
    );
    let notifier = Notifier::start(&valid, Path::new(".")).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    let now = now_nanos();
    engine.observe(&[detection("brute-force-login", "203.0.113.9", 1)], now);
    let notification = engine.tick(now).remove(0);
    for _ in 0..50 {
        notifier.notify(notification.clone());
    }
    let stats = notifier.stats().remove(0);
    assert_eq!((stats.dropped, stats.queued), (48, 2));
    let stats = wait_for(
        "both queued notifications to fail",
        Duration::from_secs(20),
        async || {
            let s = notifier.stats().remove(0);
            (s.failed == 2).then_some(s)
        },
    )
    .await;
    assert_eq!(
        (stats.sent, stats.retries, stats.dropped, stats.queued),
        (0, 2, 48, 0)
    );
}

#[tokio::test]
async fn file_receiver_appends_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let valid = config(
        r#"
[route]
receiver = "log"
group_wait = "0s"
group_by = ["..."]
[[receivers]]
name = "log"
[receivers.file]
path = "out/alerts.jsonl"
"#,
    );
    let notifier = Notifier::start(&valid, dir.path()).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    let now = now_nanos();
    engine.observe(
        &[
            detection("brute-force-login", "203.0.113.9", 1),
            detection("brute-force-login", "198.51.100.7", 2),
        ],
        now,
    );
    for n in engine.tick(now) {
        notifier.notify(n);
    }
    let path = dir.path().join("out/alerts.jsonl");
    let text = wait_for("two lines", Duration::from_secs(20), async || {
        let text = std::fs::read_to_string(&path).ok()?;
        (text.lines().count() == 2).then_some(text)
    })
    .await;
    for line in text.lines() {
        let payload: Value = serde_json::from_str(line).unwrap();
        assert_eq!(payload["version"], "4");
        assert_eq!(payload["receiver"], "log");
        assert_eq!(
            payload["alerts"].as_array().unwrap().len(),
            1,
            "group_by ... makes one group per alert"
        );
    }
    assert!(notifier.shutdown(Duration::from_secs(5)).await);
}
