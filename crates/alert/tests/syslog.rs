//! The syslog receiver over UDP and TCP on loopback: RFC 5424 messages,
//! one per alert, octet-counted on TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, UdpSocket};
use tracewarden_alert::engine::Alerting;
use tracewarden_alert::receiver::Notifier;

use common::{config, detection, now_nanos, wait_for};

fn syslog_config(address: &str, transport: &str) -> String {
    format!(
        r#"
[route]
receiver = "siem"
group_by = ["alertname"]
group_wait = "0s"
[[receivers]]
name = "siem"
[receivers.syslog]
address = "{address}"
transport = "{transport}"
facility = "local4"
hostname = "tw-test"
"#
    )
}

/// Two alerts in one notification; returns the engine's fingerprints.
fn notify_two(notifier: &Notifier, engine: &mut Alerting) -> Vec<String> {
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
    engine
        .alerts()
        .iter()
        .map(|a| a.fingerprint.to_string())
        .collect()
}

fn check(message: &str, fingerprints: &[String]) {
    // local4 (20) * 8 + err (3) for a high-severity firing alert.
    assert!(message.starts_with("<163>1 "), "{message}");
    let fields: Vec<&str> = message.splitn(8, ' ').collect();
    assert_eq!(fields[2], "tw-test");
    assert_eq!(fields[3], "tracewarden");
    assert_eq!(fields[4], std::process::id().to_string());
    assert_eq!(fields[5], "firing");
    assert!(fields[6].starts_with("[tracewarden@32473"), "{message}");
    assert!(
        fingerprints
            .iter()
            .any(|f| message.contains(&format!("fingerprint=\"{f}\""))),
        "{message}"
    );
    assert!(
        message.contains("alertname=\"brute-force-login\""),
        "{message}"
    );
    assert!(message.contains("] \u{feff}Brute-force login from one address (brute-force-login) firing: client_address="), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_one_datagram_per_alert() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let valid = config(&syslog_config(&address, "udp"));
    let notifier = Notifier::start(&valid, Path::new(".")).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    let fingerprints = notify_two(&notifier, &mut engine);
    let mut buf = vec![0u8; 4096];
    let mut messages = Vec::new();
    for _ in 0..2 {
        let (len, _) = tokio::time::timeout(Duration::from_secs(20), socket.recv_from(&mut buf))
            .await
            .expect("a datagram")
            .unwrap();
        messages.push(String::from_utf8(buf[..len].to_vec()).unwrap());
    }
    for m in &messages {
        check(m, &fingerprints);
    }
    assert_ne!(messages[0], messages[1]);
    wait_for("the counter", Duration::from_secs(5), async || {
        (notifier.stats()[0].sent == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_octet_counting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let valid = config(&syslog_config(&address, "tcp"));
    let notifier = Notifier::start(&valid, Path::new(".")).unwrap();
    let mut engine = Alerting::new(valid, &[]);
    let fingerprints = notify_two(&notifier, &mut engine);
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("a connection")
        .unwrap();
    let mut received = Vec::new();
    let mut messages: Vec<String> = Vec::new();
    while messages.len() < 2 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk))
            .await
            .expect("more bytes")
            .unwrap();
        assert!(n > 0, "connection closed early");
        received.extend_from_slice(&chunk[..n]);
        // Take every complete frame: `LEN SP MSG`.
        while let Some(space) = received.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&received[..space])
                .unwrap()
                .parse()
                .unwrap();
            if received.len() < space + 1 + len {
                break;
            }
            let frame: Vec<u8> = received.drain(..space + 1 + len).collect();
            messages.push(String::from_utf8(frame[space + 1..].to_vec()).unwrap());
        }
    }
    for m in &messages {
        check(m, &fingerprints);
    }
    assert!(received.is_empty(), "nothing after the two frames");
}
