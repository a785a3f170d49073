//! What the engine hands to receivers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertState};
use crate::labels::LabelSet;

/// Why a group was notified (Alertmanager's reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    /// The group had not been notified, or its last notification was a
    /// resolution.
    FirstNotification,
    /// Alerts fire that the last notification did not have.
    NewAlertsInGroup,
    /// Alerts resolved since the last notification.
    NewResolvedAlerts,
    /// Every alert of the group resolved.
    AllAlertsResolved,
    /// Nothing changed for `repeat_interval`.
    RepeatIntervalElapsed,
}

/// One message to one receiver about one aggregation group.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub receiver: Arc<str>,
    /// `<route key>:<group labels>`, e.g.
    /// `{}/{severity="high"}:{alertname="brute-force-login"}`.
    pub group_key: String,
    pub group_labels: LabelSet,
    /// Firing when any alert of the notification fires.
    pub status: AlertState,
    /// The group's alerts not muted (resolved ones only when the receiver
    /// sends resolved), sorted by labels.
    pub alerts: Vec<Alert>,
    pub reason: NotifyReason,
    /// The `now` of the tick that made it.
    pub at_unix_nano: u64,
}

impl Notification {
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.is_firing())
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| !a.is_firing())
    }
}
