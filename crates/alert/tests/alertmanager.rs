//! Against a real Prometheus Alertmanager: an alert pushed by the
//! alertmanager receiver appears in its API with our labels and the same
//! fingerprint, and leaves the active set once resolved.
//!
//! Needs `/usr/bin/prometheus-alertmanager` (Debian's
//! `prometheus-alertmanager` package) or `TW_ALERTMANAGER_BIN`. Without it
//! the test prints why and passes, unless `TW_REQUIRE_ALERTMANAGER` is set
//! (CI sets it), in which case it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tracewarden_alert::engine::Alerting;
use tracewarden_alert::receiver::Notifier;

use common::{SEC, config, detection, now_nanos, wait_for};

const DEFAULT_BIN: &str = "/usr/bin/prometheus-alertmanager";

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("TW_ALERTMANAGER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
    path.is_file().then_some(path)
}

/// Kills Alertmanager when the test ends, however it ends.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, dir: &Path) -> (Running, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let log = dir.join("alertmanager.log");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No cluster: no gossip port, no peers.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (Running { child, log }, port)
}

async fn get(url: &str) -> Option<(u16, Bytes)> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().ok()?).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_real_alertmanager_and_resolve() {
    let Some(bin) = binary() else {
        assert!(
            std::env::var_os("TW_REQUIRE_ALERTMANAGER").is_none(),
            "TW_REQUIRE_ALERTMANAGER is set but {DEFAULT_BIN} (or TW_ALERTMANAGER_BIN) is missing"
        );
        eprintln!("skipped: {DEFAULT_BIN} not found (apt-get install prometheus-alertmanager)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut running, port) = start(&bin, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let ready = format!("{base}/-/ready");
    let log = running.log.clone();
    wait_for(
        "Alertmanager to be ready",
        Duration::from_secs(30),
        async || {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!(
                    "alertmanager exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            matches!(get(&ready).await, Some((200, _))).then_some(())
        },
    )
    .await;

    let valid = config(&format!(
        r#"
external_url = "http://tracewarden.test:7700"
[route]
receiver = "am"
[[receivers]]
name = "am"
backoff_initial = "50ms"
backoff_max = "500ms"
[receivers.alertmanager]
url = "{base}"
resend_interval = "1m"
"#
    ));
    let notifier = Notifier::start(&valid, dir.path()).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    engine.set_resolve_timeout("brute-force-login", Duration::from_secs(1));
    // Seen a little in the past, so that its resolution (a second of quiet
    // later) is in the past for Alertmanager too.
    let seen = now_nanos() - 10 * SEC;
    engine.observe(&[detection("brute-force-login", "203.0.113.9", 1)], seen);
    let notifications = engine.tick(seen);
    assert_eq!(notifications.len(), 1, "pushed at once, no group_wait");
    for n in notifications {
        notifier.notify(n);
    }
    let ours = engine.alerts()[0].clone();

    let alerts_url = format!("{base}/api/v2/alerts");
    let found = wait_for(
        "the alert in Alertmanager",
        Duration::from_secs(30),
        async || {
            let (status, body) = get(&alerts_url).await?;
            assert_eq!(status, 200);
            let alerts: Value = serde_json::from_slice(&body).unwrap();
            alerts
                .as_array()?
                .iter()
                .find(|a| a["labels"]["client_address"] == "203.0.113.9")
                .cloned()
        },
    )
    .await;
    assert_eq!(found["labels"]["alertname"], "brute-force-login");
    assert_eq!(found["labels"]["severity"], "high");
    assert_eq!(found["labels"]["rule_kind"], "threshold");
    assert_eq!(
        found["fingerprint"],
        ours.fingerprint.to_string(),
        "same fingerprint on both sides"
    );
    assert_eq!(
        found["annotations"]["title"],
        "Brute-force login from one address"
    );
    assert_eq!(found["annotations"]["count"], "10");
    assert_eq!(found["status"]["state"], "active");
    assert_eq!(
        found["generatorURL"],
        format!(
            "http://tracewarden.test:7700/api/v1/traces/{}",
            ours.evidence.trace_ids[0]
        )
    );

    // A second of quiet resolves it; the push carries its endsAt.
    let notifications = engine.tick(seen + 2 * SEC);
    assert_eq!(notifications.len(), 1);
    assert!(notifications[0].alerts.iter().all(|a| !a.is_firing()));
    for n in notifications {
        notifier.notify(n);
    }
    wait_for(
        "the alert to leave the active set",
        Duration::from_secs(30),
        async || {
            let (_, body) = get(&alerts_url).await?;
            let alerts: Value = serde_json::from_slice(&body).unwrap();
            let still = alerts
                .as_array()?
                .iter()
                .any(|a| a["labels"]["client_address"] == "203.0.113.9");
            (!still).then_some(())
        },
    )
    .await;
    let stats = wait_for("the counters", Duration::from_secs(5), async || {
        let s = notifier.stats().remove(0);
        (s.sent == 2).then_some(s)
    })
    .await;
    assert_eq!(
        (stats.kind, stats.failed, stats.dropped),
        ("alertmanager", 0, 0)
    );
}
