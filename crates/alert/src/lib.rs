//! Alerts from detections, in Prometheus Alertmanager's model.
//!
//! # Architecture
//!
//! - [`alerts`]: the lifecycle. A [`Detection`](tracewarden_detect::engine::Detection)
//!   becomes an [`alert::Alert`] with labels (`alertname` = rule id,
//!   `severity`, `rule_kind`, and one label per key field: see
//!   [`labels::key_label_names`]) and annotations (`title`, `description`,
//!   `response`, `tags`, `evidence`). Its fingerprint is the hash of its labels
//!   ([`labels::LabelSet::fingerprint`], Prometheus' own), so detections
//!   with the same labels update one alert. A firing alert resolves after
//!   a quiet `resolve_timeout`.
//! - [`route`]: the routing tree (matchers, `continue`, inherited
//!   `receiver`, `group_by`, `group_wait`, `group_interval`,
//!   `repeat_interval`); [`matcher`]: `=`, `!=`, `=~`, `!~` with anchored
//!   regexes.
//! - [`group`]: aggregation groups, a pure time-driven state machine that
//!   decides when each receiver is notified.
//! - [`silence`] and [`inhibit`]: what mutes an alert. The inhibition
//!   `brute-force-then-success` -> `brute-force-login` (same
//!   `client_address`) ships by default ([`config::default_inhibit_rules`]).
//! - [`engine::Alerting`] ties these together; [`state`] saves them
//!   atomically so a restart loses nothing and notifies nothing twice.
//! - [`payload`] builds what receivers send (webhook v4, Alertmanager API
//!   v2, Slack, RFC 5424 syslog); [`receiver::Notifier`] delivers it, each
//!   receiver with its own bounded queue, retries and counters.
//! - [`config`]: the serde configuration and its validation.
//!
//! Time is always the caller's `now` in unix nanoseconds: nothing here
//! reads a clock, so the same inputs give the same alerts and
//! notifications.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tracewarden_alert::config::Config;
//! use tracewarden_alert::engine::Alerting;
//! use tracewarden_detect::engine::Detection;
//! use tracewarden_detect::rule::Severity;
//!
//! let config: Config = toml::from_str(r#"
//! [route]
//! receiver = "soc"
//! group_by = ["alertname"]
//! group_wait = "30s"
//! [[receivers]]
//! name = "soc"
//! [receivers.webhook]
//! url = "http://soar.example.com/hook"
//! "#).unwrap();
//! let mut alerting = Alerting::new(config.validate().unwrap(), &[]);
//!
//! let t0 = 1_767_225_600_000_000_000u64;
//! let detection = |address: &str| Detection {
//!     rule_id: Arc::from("brute-force-login"),
//!     title: Arc::from("Brute-force login from one address"),
//!     severity: Severity::High,
//!     kind: "threshold",
//!     key: vec![("span.client.address".to_string(), address.to_string())],
//!     count: 10,
//!     first_seen_unix_nano: t0,
//!     last_seen_unix_nano: t0,
//!     trace_ids: vec![],
//!     evidence: None,
//! };
//! alerting.observe(&[detection("203.0.113.9"), detection("203.0.113.9")], t0);
//! alerting.observe(&[detection("198.51.100.7")], t0 + 1_000_000_000);
//! assert_eq!(alerting.alerts().len(), 2, "one alert per address");
//!
//! assert!(alerting.tick(t0 + 29_000_000_000).is_empty(), "group_wait");
//! let notifications = alerting.tick(t0 + 30_000_000_000);
//! assert_eq!(notifications.len(), 1, "one group: the rule");
//! assert_eq!(notifications[0].alerts.len(), 2);
//! assert_eq!(notifications[0].alerts[0].labels.get("client_address"), "198.51.100.7");
//! ```

pub mod alert;
pub mod alerts;
pub mod config;
pub mod engine;
pub mod error;
pub mod group;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod notification;
pub mod payload;
pub mod receiver;
pub mod route;
pub mod silence;
pub mod state;
pub mod time;

pub use alert::{Alert, AlertState};
pub use config::{Config, ValidConfig};
pub use engine::Alerting;
pub use error::{AlertError, ConfigError, Result};
pub use labels::{Fingerprint, LabelSet};
pub use notification::Notification;
pub use receiver::Notifier;
