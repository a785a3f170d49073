//! The alert: what people act on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::{Fingerprint, LabelSet};

/// Annotation names.
pub const TITLE: &str = "title";
pub const DESCRIPTION: &str = "description";
pub const RESPONSE: &str = "response";
pub const EVIDENCE: &str = "evidence";
/// The rule's tags (ATT&CK techniques and the like), comma-separated.
pub const TAGS: &str = "tags";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// What the detections behind an alert saw, merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Detections merged into the alert.
    pub detections: u64,
    /// Sum of the detections' counts (matching spans, distinct values or
    /// chain lengths, by rule kind).
    pub count: u64,
    /// Earliest span start time of the evidence (unix nanoseconds).
    pub first_seen_unix_nano: u64,
    /// Latest span start time of the evidence (unix nanoseconds).
    pub last_seen_unix_nano: u64,
    /// Distinct trace ids (hex), most recent first, at most the configured
    /// number.
    pub trace_ids: Vec<String>,
}

/// Who acknowledged an alert, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at_unix_nano: u64,
    /// Why, or what is being done; may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

/// One alert: a rule firing for one actor. Alerts with the same labels are
/// the same alert (the same fingerprint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: Fingerprint,
    pub labels: LabelSet,
    /// `title`, `description`, `response`, `tags` and, for payload rules,
    /// `evidence` (what the latest detection found).
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// When the alert began firing (the `now` of its first detection),
    /// unix nanoseconds.
    pub starts_at_unix_nano: u64,
    /// When it resolved; `None` while firing.
    pub ends_at_unix_nano: Option<u64>,
    /// The `now` of the latest detection merged into it.
    pub updated_at_unix_nano: u64,
    pub evidence: Evidence,
    /// Set by a person; cleared when the alert fires again after resolving.
    pub acknowledged: Option<Acknowledgement>,
}

impl Alert {
    pub fn is_firing(&self) -> bool {
        self.state == AlertState::Firing
    }

    pub fn annotation(&self, name: &str) -> &str {
        self.annotations.get(name).map_or("", String::as_str)
    }
}
