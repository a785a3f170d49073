//! `tracewarden demo` end to end: the real binary starts its server and
//! the simulator on port 0 and a temporary data directory; every attack
//! must be answered by the alert of its rule naming the attacker, and
//! benign users alone must raise no alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn demo(data_dir: &std::path::Path, args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_tracewarden"))
        .arg("demo")
        .args(["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"])
        .args(["--zipkin", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tracewarden demo");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "demo failed ({status})\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// An `ATTACK` line: scenario, actor, expected rules.
fn attacks(out: &str) -> Vec<(String, String, Vec<String>)> {
    out.lines()
        .filter_map(|line| {
            let rest = line.split_once("] ATTACK ")?.1;
            let mut words = rest.split_whitespace();
            let scenario = words.next()?.to_string();
            assert_eq!(words.next(), Some("actor"), "{line}");
            let actor = words.next()?.to_string();
            assert_eq!(words.next(), Some("expects"), "{line}");
            let rules = rest
                .split_once(" expects ")?
                .1
                .split("  (")
                .next()?
                .split(", ")
                .map(str::to_string)
                .collect();
            Some((scenario, actor, rules))
        })
        .collect()
}

/// An `ALERT` line: rule and the actor's `label=value` pairs.
fn alerts(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| {
            let rest = line.split_once("] ALERT ")?.1;
            let mut words = rest.split_whitespace();
            let _severity = words.next()?;
            let rule = words.next()?.to_string();
            Some((rule, rest.to_string()))
        })
        .collect()
}

#[test]
fn every_attack_raises_the_alert_of_its_rule() {
    let dir = tempfile::tempdir().unwrap();
    // 14 attacks a second apart from 2 s, the flood waiting for its
    // 10 s bucket: 30 s of live traffic covers them all.
    let out = demo(
        dir.path(),
        &[
            "--duration",
            "30s",
            "--every",
            "1s",
            "--seed",
            "42",
            "--rate",
            "10",
        ],
    );
    let attacks = attacks(&out);
    let scenarios: std::collections::BTreeSet<&str> =
        attacks.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(scenarios.len(), 14, "every scenario played\n{out}");
    let alerts = alerts(&out);
    let mut missing = Vec::new();
    // The first round; later rounds may start too late to complete.
    for (scenario, actor, rules) in attacks.iter().take(14) {
        for rule in rules {
            let named = |line: &str| {
                line.split_whitespace().any(|pair| {
                    pair.split_once('=')
                        .is_some_and(|(_, v)| v == actor || v == format!("[{actor}]"))
                })
            };
            if !alerts.iter().any(|(r, line)| r == rule && named(line)) {
                missing.push(format!("{scenario}: {rule} for {actor}"));
            }
        }
    }
    assert!(missing.is_empty(), "no alert for {missing:?}\n{out}");
    // The demo's own summary agrees.
    assert!(out.contains("  ok       ddos"), "{out}");
}

#[test]
fn benign_users_raise_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(
        dir.path(),
        &[
            "--no-attacks",
            "--duration",
            "12s",
            "--seed",
            "42",
            "--rate",
            "40",
        ],
    );
    assert!(attacks(&out).is_empty(), "{out}");
    assert!(alerts(&out).is_empty(), "{out}");
    assert!(out.contains("; 0 alerts"), "{out}");
    assert!(out.contains("spans/s"), "{out}");
}
