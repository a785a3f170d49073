//! Configuration: serde structs (the server reads them from TOML), their
//! defaults, and validation into the compiled form the engine runs.
//!
//! Durations are written as rule windows are (`30s`, `5m`, `4h`, `1h30m`),
//! plus `0s` where zero makes sense (`group_wait`). Validation errors name
//! the field: `receivers[2].webhook.url: ...`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alerts::Lifecycle;
use crate::error::ConfigError;
use crate::inhibit::InhibitRule;
use crate::labels::is_valid_label_name;
use crate::matcher::Matcher;
use crate::route::RouteTree;

/// Everything about alerts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Quiet time after which a firing alert resolves.
    #[serde(with = "duration")]
    pub resolve_timeout: Duration,
    /// Per-rule resolve timeouts: rule id -> duration.
    #[serde(with = "duration_map")]
    pub rule_resolve_timeout: BTreeMap<String, Duration>,
    /// This server's URL as people reach it; links in notifications start
    /// with it (`externalURL`, `generatorURL`). Empty: no links.
    pub external_url: String,
    /// Alerts held (firing and resolved).
    pub max_alerts: usize,
    /// Trace ids kept per alert.
    pub max_trace_ids: usize,
    /// How long resolved alerts are kept.
    #[serde(with = "duration")]
    pub resolved_retention: Duration,
    /// How long expired silences are kept (their history).
    #[serde(with = "duration")]
    pub silence_retention: Duration,
    /// Silences held (pending, active and expired).
    pub max_silences: usize,
    pub route: RouteConfig,
    pub receivers: Vec<ReceiverConfig>,
    pub inhibit_rules: Vec<InhibitRuleConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resolve_timeout: Duration::from_secs(300),
            rule_resolve_timeout: BTreeMap::new(),
            external_url: String::new(),
            max_alerts: 10_000,
            max_trace_ids: 20,
            resolved_retention: Duration::from_secs(24 * 3600),
            silence_retention: Duration::from_secs(5 * 24 * 3600),
            max_silences: 1_000,
            route: RouteConfig {
                receiver: Some("default".to_string()),
                group_by: Some(vec!["alertname".to_string()]),
                ..RouteConfig::default()
            },
            receivers: vec![ReceiverConfig::new(
                "default",
                ReceiverKind::File(FileConfig {
                    path: PathBuf::from("alerts.jsonl"),
                    send_resolved: true,
                }),
            )],
            inhibit_rules: default_inhibit_rules(),
        }
    }
}

/// The inhibition shipped by default: a brute force that worked makes the
/// brute-force alert for the same address redundant.
pub fn default_inhibit_rules() -> Vec<InhibitRuleConfig> {
    vec![InhibitRuleConfig {
        source_matchers: vec!["alertname=\"brute-force-then-success\"".to_string()],
        target_matchers: vec!["alertname=\"brute-force-login\"".to_string()],
        equal: vec!["client_address".to_string()],
    }]
}

/// A node of the routing tree (see [`crate::route`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Required on the root; inherited when absent.
    pub receiver: Option<String>,
    /// Label names, or `["..."]` for every label; inherited when absent.
    pub group_by: Option<Vec<String>>,
    /// Wait before the first notification of a new group (default 30s).
    #[serde(with = "opt_duration")]
    pub group_wait: Option<Duration>,
    /// Wait between notifications of a group that changed (default 5m).
    #[serde(with = "opt_duration")]
    pub group_interval: Option<Duration>,
    /// Wait before notifying an unchanged group again (default 4h).
    #[serde(with = "opt_duration")]
    pub repeat_interval: Option<Duration>,
    /// Alertmanager matchers (`severity=~"high|critical"`), all must match.
    pub matchers: Vec<String>,
    /// Keep trying later siblings after this route matched.
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    pub routes: Vec<RouteConfig>,
}

/// `source_matchers` firing inhibit `target_matchers` with the same values
/// of `equal`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InhibitRuleConfig {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    pub equal: Vec<String>,
}

/// A named receiver: at most one of `webhook`, `slack`, `alertmanager`,
/// `file`, `syslog` (none: notifications are discarded), and how it is
/// delivered to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogConfig>,
    /// Notifications waiting; past it new ones are dropped (counted).
    #[serde(default = "defaults::queue_capacity")]
    pub queue_capacity: usize,
    /// Attempts per notification, the first included.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per retry, with jitter.
    #[serde(default = "defaults::backoff_initial", with = "duration")]
    pub backoff_initial: Duration,
    #[serde(default = "defaults::backoff_max", with = "duration")]
    pub backoff_max: Duration,
    /// Time allowed for one attempt (connect, send, answer).
    #[serde(default = "defaults::timeout", with = "duration")]
    pub timeout: Duration,
}

mod defaults {
    use std::time::Duration;

    pub fn queue_capacity() -> usize {
        1024
    }
    pub fn max_attempts() -> u32 {
        5
    }
    pub fn backoff_initial() -> Duration {
        Duration::from_millis(500)
    }
    pub fn backoff_max() -> Duration {
        Duration::from_secs(30)
    }
    pub fn timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn yes() -> bool {
        true
    }
    pub fn resend_interval() -> Duration {
        Duration::from_secs(60)
    }
    pub fn app_name() -> String {
        "tracewarden".to_string()
    }
}

impl ReceiverConfig {
    /// A receiver with the default delivery options.
    pub fn new(name: &str, kind: ReceiverKind) -> ReceiverConfig {
        let mut cfg = ReceiverConfig {
            name: name.to_string(),
            webhook: None,
            slack: None,
            alertmanager: None,
            file: None,
            syslog: None,
            queue_capacity: defaults::queue_capacity(),
            max_attempts: defaults::max_attempts(),
            backoff_initial: defaults::backoff_initial(),
            backoff_max: defaults::backoff_max(),
            timeout: defaults::timeout(),
        };
        match kind {
            ReceiverKind::Webhook(c) => cfg.webhook = Some(c),
            ReceiverKind::Slack(c) => cfg.slack = Some(c),
            ReceiverKind::Alertmanager(c) => cfg.alertmanager = Some(c),
            ReceiverKind::File(c) => cfg.file = Some(c),
            ReceiverKind::Syslog(c) => cfg.syslog = Some(c),
            ReceiverKind::Discard => {}
        }
        cfg
    }

    /// The one kind set, `Discard` when none is; `Err` names the fields
    /// when several are.
    pub fn kind(&self) -> Result<ReceiverKind, Vec<&'static str>> {
        let mut set: Vec<(&'static str, ReceiverKind)> = Vec::new();
        if let Some(c) = &self.webhook {
            set.push(("webhook", ReceiverKind::Webhook(c.clone())));
        }
        if let Some(c) = &self.slack {
            set.push(("slack", ReceiverKind::Slack(c.clone())));
        }
        if let Some(c) = &self.alertmanager {
            set.push(("alertmanager", ReceiverKind::Alertmanager(c.clone())));
        }
        if let Some(c) = &self.file {
            set.push(("file", ReceiverKind::File(c.clone())));
        }
        if let Some(c) = &self.syslog {
            set.push(("syslog", ReceiverKind::Syslog(c.clone())));
        }
        match set.len() {
            0 => Ok(ReceiverKind::Discard),
            1 => Ok(set.remove(0).1),
            _ => Err(set.into_iter().map(|(n, _)| n).collect()),
        }
    }
}

/// What a receiver sends to.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiverKind {
    Webhook(WebhookConfig),
    Slack(SlackConfig),
    Alertmanager(AlertmanagerConfig),
    File(FileConfig),
    Syslog(SyslogConfig),
    /// No destination: notifications are counted as sent and discarded.
    Discard,
}

impl ReceiverKind {
    /// Whether resolved alerts are notified.
    pub fn send_resolved(&self) -> bool {
        match self {
            ReceiverKind::Webhook(c) => c.send_resolved,
            ReceiverKind::Slack(c) => c.send_resolved,
            ReceiverKind::Alertmanager(_) => true,
            ReceiverKind::File(c) => c.send_resolved,
            ReceiverKind::Syslog(c) => c.send_resolved,
            ReceiverKind::Discard => false,
        }
    }
}

/// Alertmanager webhook v4 JSON, POSTed to `url`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "defaults::yes")]
    pub send_resolved: bool,
    /// Most alerts in one payload (the rest counted in `truncatedAlerts`);
    /// 0: all.
    #[serde(default)]
    pub max_alerts: usize,
}

/// A Slack incoming webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub url: String,
    #[serde(default)]
    pub send_resolved: bool,
    /// Overrides the webhook's channel, where Slack allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A Prometheus Alertmanager: alerts are POSTed to
/// `{url}/api/v2/alerts` as Prometheus does, firing ones again every
/// `resend_interval` (Alertmanager resolves alerts it stops hearing of).
/// Grouping, timing and silencing are then Alertmanager's; routes here
/// only choose which alerts it gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub url: String,
    #[serde(default = "defaults::resend_interval", with = "duration")]
    pub resend_interval: Duration,
}

/// JSON lines appended to a file, one webhook v4 payload per notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Relative paths are resolved against the directory the notifier is
    /// started with (the server's data directory).
    pub path: PathBuf,
    #[serde(default = "defaults::yes")]
    pub send_resolved: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    #[default]
    Udp,
    /// Octet-counting framing (RFC 6587).
    Tcp,
}

/// RFC 5424 facilities (RFC 5424, table 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    /// Security/authorization messages.
    #[default]
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// RFC 5424 syslog, one message per alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the collector.
    pub address: String,
    #[serde(default)]
    pub transport: SyslogTransport,
    #[serde(default)]
    pub facility: Facility,
    #[serde(default = "defaults::app_name")]
    pub app_name: String,
    /// HOSTNAME of the messages; default: this machine's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default = "defaults::yes")]
    pub send_resolved: bool,
}

/// How the alert engine treats a receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverPolicy {
    pub send_resolved: bool,
    /// For Alertmanager receivers: every alert is its own group, notified
    /// at once and again every this often while firing.
    pub push_every: Option<Duration>,
}

/// A checked configuration, compiled.
#[derive(Clone, Debug)]
pub struct ValidConfig {
    pub config: Config,
    pub routes: RouteTree,
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: HashMap<String, ReceiverPolicy>,
}

impl ValidConfig {
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            resolve_timeout: self.config.resolve_timeout,
            rule_resolve_timeout: self
                .config
                .rule_resolve_timeout
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            max_trace_ids: self.config.max_trace_ids,
            max_alerts: self.config.max_alerts,
            resolved_retention: self.config.resolved_retention,
        }
    }
}

impl Config {
    /// Checks every field and compiles routes, matchers and inhibit rules.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let positive = [
            ("resolve_timeout", self.resolve_timeout),
            ("resolved_retention", self.resolved_retention),
            ("silence_retention", self.silence_retention),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        for (rule, value) in &self.rule_resolve_timeout {
            if value.is_zero() {
                return Err(ConfigError::new(
                    format!("rule_resolve_timeout.{rule}"),
                    "must be greater than zero",
                ));
            }
        }
        for (field, value) in [
            ("max_alerts", self.max_alerts),
            ("max_trace_ids", self.max_trace_ids),
            ("max_silences", self.max_silences),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1"));
            }
        }
        if !self.external_url.is_empty() {
            check_url(&self.external_url, "external_url")?;
        }
        let mut receivers = HashMap::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let path = format!("receivers[{i}]");
            let policy = validate_receiver(r, &path)?;
            if receivers.insert(r.name.clone(), policy).is_some() {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    format!("receiver `{}` is defined twice", r.name),
                ));
            }
        }
        let routes = RouteTree::compile(&self.route)?;
        for route in routes.routes() {
            if !receivers.contains_key(route.receiver.as_ref()) {
                return Err(ConfigError::new(
                    route_path(&self.route, route.id),
                    format!("no receiver named `{}`", route.receiver),
                ));
            }
        }
        let mut inhibit_rules = Vec::with_capacity(self.inhibit_rules.len());
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            inhibit_rules.push(InhibitRule::compile(r, &format!("inhibit_rules[{i}]"))?);
        }
        Ok(ValidConfig {
            config: self.clone(),
            routes,
            inhibit_rules,
            receivers,
        })
    }
}

/// The field path of the receiver of route `id` (depth-first index).
fn route_path(root: &RouteConfig, id: usize) -> String {
    fn walk(cfg: &RouteConfig, path: String, next: &mut usize, id: usize) -> Option<String> {
        if *next == id {
            return Some(format!("{path}.receiver"));
        }
        *next += 1;
        for (i, child) in cfg.routes.iter().enumerate() {
            if let Some(found) = walk(child, format!("{path}.routes[{i}]"), next, id) {
                return Some(found);
            }
        }
        None
    }
    let mut next = 0;
    walk(root, "route".to_string(), &mut next, id).unwrap_or_else(|| "route".to_string())
}

fn validate_receiver(r: &ReceiverConfig, path: &str) -> Result<ReceiverPolicy, ConfigError> {
    if r.name.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{path}.name"),
            "must not be empty",
        ));
    }
    if r.queue_capacity == 0 {
        return Err(ConfigError::new(
            format!("{path}.queue_capacity"),
            "must be at least 1",
        ));
    }
    if r.max_attempts == 0 {
        return Err(ConfigError::new(
            format!("{path}.max_attempts"),
            "must be at least 1",
        ));
    }
    if r.timeout.is_zero() {
        return Err(ConfigError::new(
            format!("{path}.timeout"),
            "must be greater than zero",
        ));
    }
    if r.backoff_max < r.backoff_initial {
        return Err(ConfigError::new(
            format!("{path}.backoff_max"),
            "must be at least backoff_initial",
        ));
    }
    let kind = r.kind().map_err(|names| {
        ConfigError::new(
            path.to_string(),
            format!("a receiver has one kind, found {}", names.join(" and ")),
        )
    })?;
    let push_every = match &kind {
        ReceiverKind::Webhook(c) => {
            check_url(&c.url, &format!("{path}.webhook.url"))?;
            None
        }
        ReceiverKind::Slack(c) => {
            check_url(&c.url, &format!("{path}.slack.url"))?;
            None
        }
        ReceiverKind::Alertmanager(c) => {
            check_url(&c.url, &format!("{path}.alertmanager.url"))?;
            if c.resend_interval.is_zero() {
                return Err(ConfigError::new(
                    format!("{path}.alertmanager.resend_interval"),
                    "must be greater than zero",
                ));
            }
            Some(c.resend_interval)
        }
        ReceiverKind::File(c) => {
            if c.path.as_os_str().is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.file.path"),
                    "must not be empty",
                ));
            }
            None
        }
        ReceiverKind::Syslog(c) => {
            check_host_port(&c.address, &format!("{path}.syslog.address"))?;
            if c.app_name.is_empty()
                || c.app_name.len() > 48
                || !c.app_name.bytes().all(|b| (33..=126).contains(&b))
            {
                return Err(ConfigError::new(
                    format!("{path}.syslog.app_name"),
                    "must be 1 to 48 printable ASCII characters without spaces (RFC 5424)",
                ));
            }
            if let Some(host) = &c.hostname
                && (host.is_empty()
                    || host.len() > 255
                    || !host.bytes().all(|b| (33..=126).contains(&b)))
            {
                return Err(ConfigError::new(
                    format!("{path}.syslog.hostname"),
                    "must be 1 to 255 printable ASCII characters without spaces (RFC 5424)",
                ));
            }
            None
        }
        ReceiverKind::Discard => None,
    };
    Ok(ReceiverPolicy {
        send_resolved: kind.send_resolved(),
        push_every,
    })
}

fn check_url(url: &str, field: &str) -> Result<(), ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError::new(field, format!("`{url}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(ConfigError::new(
                field,
                format!("`{url}` must start with http:// or https://"),
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ConfigError::new(field, format!("`{url}` has no host")));
    }
    Ok(())
}

fn check_host_port(address: &str, field: &str) -> Result<(), ConfigError> {
    let ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("`{address}` is not host:port"),
        ))
    }
}

/// Checks the names of `equal` labels and parses matchers; used by inhibit
/// rules.
pub(crate) fn parse_matchers(texts: &[String], field: &str) -> Result<Vec<Matcher>, ConfigError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.parse::<Matcher>()
                .map_err(|e| ConfigError::new(format!("{field}[{i}]"), e))
        })
        .collect()
}

pub(crate) fn check_label_names(names: &[String], field: &str) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        if !is_valid_label_name(name) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{name}` is not a valid label name"),
            ));
        }
        if !seen.insert(name) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{name}` is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Parses a duration as rule windows are parsed, plus zero (`0s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if !number.is_empty()
        && number.bytes().all(|b| b == b'0')
        && matches!(unit, "ms" | "s" | "m" | "h" | "d")
    {
        return Ok(Duration::ZERO);
    }
    tracewarden_detect::rule::parse_duration(trimmed).map_err(|e| format!("`{text}`: {e}"))
}

/// The shortest text [`parse_duration`] reads back as `d`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    const UNITS: [(&str, u128); 5] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    let mut rest = nanos;
    let mut out = String::new();
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    // Below a millisecond cannot be written; round up so it is not zero.
    if rest > 0 && out.is_empty() {
        out.push_str("1ms");
    }
    out
}

mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

mod duration_map {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, super::format_duration(*v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        let texts = BTreeMap::<String, String>::deserialize(d)?;
        texts
            .into_iter()
            .map(|(k, v)| {
                super::parse_duration(&v)
                    .map(|d| (k, d))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults_are_valid() {
        let valid = Config::default().validate().unwrap();
        assert_eq!(valid.routes.routes().len(), 1);
        assert_eq!(valid.inhibit_rules.len(), 1);
        assert_eq!(
            valid.receivers["default"],
            ReceiverPolicy {
                send_resolved: true,
                push_every: None
            }
        );
        // An empty file is the default configuration.
        assert_eq!(parse(""), Config::default());
    }

    #[test]
    fn docs_example_parses() {
        let cfg = parse(&docs_example());
        let valid = cfg.validate().unwrap();
        assert_eq!(cfg.resolve_timeout, Duration::from_secs(600));
        assert_eq!(
            cfg.rule_resolve_timeout["excessive-request-rate"],
            Duration::from_secs(120)
        );
        assert_eq!(valid.routes.routes().len(), 3);
        assert_eq!(
            valid.receivers["am"].push_every,
            Some(Duration::from_secs(30))
        );
        assert!(!valid.receivers["slack"].send_resolved);
        let syslog = cfg.receivers[3].syslog.as_ref().unwrap();
        assert_eq!(syslog.transport, SyslogTransport::Tcp);
        assert_eq!(syslog.facility.code(), 10);
        assert_eq!(cfg.receivers[0].max_attempts, 8);
        assert_eq!(cfg.receivers[1].max_attempts, 5, "default");
        // Serialising and reading back gives the same configuration.
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(parse(&text), cfg);
    }

    /// The example of docs/ALERTS.md: the first `toml` block there.
    fn docs_example() -> String {
        let doc = include_str!("../../../docs/ALERTS.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + doc[start..].find("```").unwrap();
        doc[start..end].to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let base = "[route]\nreceiver = \"r\"\n";
        let cases = [
            (
                "resolve_timeout = \"0s\"\n[[receivers]]\nname = \"r\"",
                "resolve_timeout",
            ),
            ("max_alerts = 0\n[[receivers]]\nname = \"r\"", "max_alerts"),
            (
                "external_url = \"ftp://x\"\n[[receivers]]\nname = \"r\"",
                "external_url",
            ),
            ("[[receivers]]\nname = \"x\"", "route.receiver"),
            (
                "[[receivers]]\nname = \"r\"\n[[receivers]]\nname = \"r\"",
                "receivers[1].name",
            ),
            (
                "[[receivers]]\nname = \"r\"\n[receivers.webhook]\nurl = \"not a url\"",
                "receivers[0].webhook.url",
            ),
            (
                "[[receivers]]\nname = \"r\"\n[receivers.webhook]\nurl = \"http://a\"\n[receivers.slack]\nurl = \"http://b\"",
                "receivers[0]",
            ),
            (
                "[[receivers]]\nname = \"r\"\n[receivers.syslog]\naddress = \"siem\"",
                "receivers[0].syslog.address",
            ),
            (
                "[[receivers]]\nname = \"r\"\nqueue_capacity = 0",
                "receivers[0].queue_capacity",
            ),
            (
                "[[receivers]]\nname = \"r\"\nbackoff_initial = \"1m\"\nbackoff_max = \"1s\"",
                "receivers[0].backoff_max",
            ),
            (
                "[[receivers]]\nname = \"r\"\n[[route.routes]]\nreceiver = \"nope\"",
                "route.routes[0].receiver",
            ),
            (
                "[[receivers]]\nname = \"r\"\n[[inhibit_rules]]\nsource_matchers = ['a=~\"(\"']",
                "inhibit_rules[0].source_matchers[0]",
            ),
            (
                "[[receivers]]\nname = \"r\"\n[[inhibit_rules]]\ntarget_matchers = ['a=\"b\"']\nequal = [\"a.b\"]",
                "inhibit_rules[0].equal[0]",
            ),
        ];
        for (text, field) in cases {
            let text = format!("{text}\n{base}");
            // Tables after [route] would nest; put [route] last.
            let cfg: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
    }

    #[test]
    fn serde_errors_name_the_field() {
        let err = toml::from_str::<Config>("resolve_timeout = \"5 minutes\"").unwrap_err();
        assert!(err.to_string().contains("resolve_timeout"), "{err}");
        let err = toml::from_str::<Config>("resolv_timeout = \"5m\"").unwrap_err();
        assert!(err.to_string().contains("resolv_timeout"), "{err}");
        let err = toml::from_str::<Config>(
            "[[receivers]]\nname = \"r\"\n[receivers.webhook]\nurll = \"x\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("urll"), "{err}");
    }

    #[test]
    fn durations_round_trip() {
        for (text, d) in [
            ("0s", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("1h30m", Duration::from_secs(5400)),
            ("5d", Duration::from_secs(5 * 86400)),
        ] {
            assert_eq!(parse_duration(text), Ok(d), "{text}");
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(parse_duration("00m"), Ok(Duration::ZERO));
        assert!(parse_duration("0").is_err(), "a unit is required");
        assert!(parse_duration("10x").is_err());
    }
}
