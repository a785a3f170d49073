//! Aggregation groups: when each receiver hears about which alerts.
//!
//! A pure, time-driven state machine in Alertmanager's model. Each route
//! that takes an alert puts it in the group of its `group_by` labels. A new
//! group is flushed `group_wait` after it was created (at once if its alert
//! started longer ago than that, as after a restart), then every
//! `group_interval`. A flush looks at the group's alerts that are not
//! muted and notifies when something changed since the last notification
//! to the group: new firing alerts, newly resolved ones (if the receiver
//! sends resolved), everything resolved; or when `repeat_interval` passed
//! with nothing new. Resolved alerts leave the group after a flush; an
//! empty group is dropped with its notification log.
//!
//! Alertmanager receivers are pushed to as Prometheus pushes: every alert
//! is its own group, flushed at every tick, and re-sent every
//! `resend_interval` while firing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertState};
use crate::alerts::AlertSet;
use crate::config::ReceiverPolicy;
use crate::labels::{Fingerprint, LabelSet};
use crate::notification::{Notification, NotifyReason};
use crate::route::{GroupBy, RouteTree};
use crate::time;

/// What a group's last notification said (Alertmanager's notification log
/// entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub receiver: String,
    pub group_key: String,
    pub at_unix_nano: u64,
    pub firing: BTreeSet<Fingerprint>,
    pub resolved: BTreeSet<Fingerprint>,
}

#[derive(Debug)]
struct Group {
    receiver: Arc<str>,
    key: String,
    labels: LabelSet,
    alerts: BTreeSet<Fingerprint>,
    next_flush: u64,
    has_flushed: bool,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    send_resolved: bool,
    last: Option<LogEntry>,
}

/// The groups of every route.
#[derive(Debug)]
pub struct Dispatcher {
    routes: RouteTree,
    policies: HashMap<String, ReceiverPolicy>,
    groups: BTreeMap<(usize, LabelSet), Group>,
    /// Notification logs restored from a saved state, waiting for their
    /// group to be created again.
    restored: HashMap<(String, String), LogEntry>,
    /// A notification log changed since the last `take_changed`.
    changed: bool,
}

impl Dispatcher {
    pub fn new(routes: RouteTree, policies: HashMap<String, ReceiverPolicy>) -> Dispatcher {
        Dispatcher {
            routes,
            policies,
            groups: BTreeMap::new(),
            restored: HashMap::new(),
            changed: false,
        }
    }

    /// Puts a new (or reopened) alert into the groups of its routes.
    pub fn insert(&mut self, alert: &Alert, now: u64) {
        for route_id in self.routes.matching(&alert.labels) {
            let route = self.routes.route(route_id);
            let policy = self.policies.get(route.receiver.as_ref());
            let send_resolved = policy.is_some_and(|p| p.send_resolved);
            let (group_by, wait, interval, repeat) = match policy.and_then(|p| p.push_every) {
                Some(every) => (&GroupBy::All, Duration::ZERO, Duration::ZERO, every),
                None => (
                    &route.group_by,
                    route.group_wait,
                    route.group_interval,
                    route.repeat_interval,
                ),
            };
            let labels = group_by.group_labels(&alert.labels);
            let group = self
                .groups
                .entry((route_id, labels.clone()))
                .or_insert_with(|| {
                    let key = format!("{}:{labels}", route.key);
                    let last = self
                        .restored
                        .remove(&(route.receiver.to_string(), key.clone()));
                    Group {
                        receiver: route.receiver.clone(),
                        key,
                        labels,
                        alerts: BTreeSet::new(),
                        next_flush: time::add(now, wait),
                        has_flushed: false,
                        group_wait: wait,
                        group_interval: interval,
                        repeat_interval: repeat,
                        send_resolved,
                        last,
                    }
                });
            group.alerts.insert(alert.fingerprint);
            // An alert older than the wait (restored after a restart) need
            // not wait again.
            if !group.has_flushed && time::add(alert.starts_at_unix_nano, group.group_wait) <= now {
                group.next_flush = group.next_flush.min(now);
            }
        }
    }

    /// Flushes the groups due at `now`; `muted` says whether an alert is
    /// silenced or inhibited.
    pub fn tick(
        &mut self,
        now: u64,
        alerts: &AlertSet,
        muted: &mut dyn FnMut(&Alert) -> bool,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (id, group) in &mut self.groups {
            if group.next_flush > now {
                continue;
            }
            group.next_flush = time::add(now, group.group_interval);
            group.has_flushed = true;
            let logged = group.last.as_ref().map(|l| l.at_unix_nano);
            if let Some(n) = flush(group, now, alerts, muted) {
                out.push(n);
            }
            self.changed |= group.last.as_ref().map(|l| l.at_unix_nano) != logged;
            // Resolved alerts were just dealt with; forgotten ones are gone.
            group
                .alerts
                .retain(|fp| alerts.get(*fp).is_some_and(Alert::is_firing));
            if group.alerts.is_empty() {
                empty.push(id.clone());
            }
        }
        for id in empty {
            if self.groups.remove(&id).is_some_and(|g| g.last.is_some()) {
                self.changed = true;
            }
        }
        out
    }

    /// The notification logs of the current groups (for the state file).
    pub fn logs(&self) -> Vec<LogEntry> {
        self.groups
            .values()
            .filter_map(|g| g.last.clone())
            .chain(self.restored.values().cloned())
            .collect()
    }

    /// Takes back notification logs from a saved state; call before
    /// inserting the restored alerts.
    pub fn restore_logs(&mut self, logs: Vec<LogEntry>) {
        for entry in logs {
            self.restored
                .insert((entry.receiver.clone(), entry.group_key.clone()), entry);
        }
    }

    /// Drops restored logs no group claimed (call after re-inserting).
    pub fn drop_unclaimed_logs(&mut self) {
        self.restored.clear();
    }

    /// Whether a notification log changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Groups held now.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

fn flush(
    group: &mut Group,
    now: u64,
    alerts: &AlertSet,
    muted: &mut dyn FnMut(&Alert) -> bool,
) -> Option<Notification> {
    let mut visible: Vec<&Alert> = group
        .alerts
        .iter()
        .filter_map(|fp| alerts.get(*fp))
        .filter(|a| !muted(a))
        .collect();
    let firing: BTreeSet<Fingerprint> = visible
        .iter()
        .filter(|a| a.is_firing())
        .map(|a| a.fingerprint)
        .collect();
    let resolved: BTreeSet<Fingerprint> = visible
        .iter()
        .filter(|a| !a.is_firing())
        .map(|a| a.fingerprint)
        .collect();
    let reason = needs_update(
        group.last.as_ref(),
        &firing,
        &resolved,
        group.send_resolved,
        group.repeat_interval,
        now,
    )?;
    let any_firing = !firing.is_empty();
    group.last = Some(LogEntry {
        receiver: group.receiver.to_string(),
        group_key: group.key.clone(),
        at_unix_nano: now,
        firing,
        resolved,
    });
    visible.retain(|a| a.is_firing() || group.send_resolved);
    if visible.is_empty() {
        // Everything resolved for a receiver that is not told: the log
        // records it, nothing is sent.
        return None;
    }
    visible.sort_by(|a, b| a.labels.cmp(&b.labels));
    Some(Notification {
        receiver: group.receiver.clone(),
        group_key: group.key.clone(),
        group_labels: group.labels.clone(),
        status: if any_firing {
            AlertState::Firing
        } else {
            AlertState::Resolved
        },
        alerts: visible.into_iter().cloned().collect(),
        reason,
        at_unix_nano: now,
    })
}

/// Alertmanager's dedup decision.
fn needs_update(
    last: Option<&LogEntry>,
    firing: &BTreeSet<Fingerprint>,
    resolved: &BTreeSet<Fingerprint>,
    send_resolved: bool,
    repeat: Duration,
    now: u64,
) -> Option<NotifyReason> {
    let Some(last) = last else {
        return (!firing.is_empty()).then_some(NotifyReason::FirstNotification);
    };
    if !firing.is_subset(&last.firing) {
        return Some(if last.firing.is_empty() {
            NotifyReason::FirstNotification
        } else {
            NotifyReason::NewAlertsInGroup
        });
    }
    if firing.is_empty() {
        // Alerts that fired and resolved between two flushes were never
        // announced, so their resolution is not either.
        return (!last.firing.is_empty()).then_some(NotifyReason::AllAlertsResolved);
    }
    if send_resolved && !resolved.is_subset(&last.resolved) {
        return Some(NotifyReason::NewResolvedAlerts);
    }
    (now >= time::add(last.at_unix_nano, repeat)).then_some(NotifyReason::RepeatIntervalElapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::tests::{SEC, T0, detection};
    use crate::alerts::{Lifecycle, Observed};
    use crate::config::RouteConfig;

    struct Harness {
        alerts: AlertSet,
        dispatcher: Dispatcher,
        muted: BTreeSet<String>,
    }

    impl Harness {
        fn new(route: &str, policies: &[(&str, bool, Option<Duration>)]) -> Harness {
            let cfg: RouteConfig = toml::from_str(route).unwrap();
            let policies = policies
                .iter()
                .map(|(name, send_resolved, push_every)| {
                    (
                        name.to_string(),
                        ReceiverPolicy {
                            send_resolved: *send_resolved,
                            push_every: *push_every,
                        },
                    )
                })
                .collect();
            Harness {
                alerts: AlertSet::new(Lifecycle::default(), &[]),
                dispatcher: Dispatcher::new(RouteTree::compile(&cfg).unwrap(), policies),
                muted: BTreeSet::new(),
            }
        }

        fn detect(&mut self, rule: &str, address: &str, now: u64) -> Fingerprint {
            match self.alerts.observe(&detection(rule, address, 1), now) {
                Observed::New(fp) | Observed::Reopened(fp) => {
                    let alert = self.alerts.get(fp).unwrap().clone();
                    self.dispatcher.insert(&alert, now);
                    fp
                }
                Observed::Updated(fp) => fp,
                Observed::Dropped => panic!("dropped"),
            }
        }

        /// `(receiver, reason, firing addresses, resolved addresses)`.
        fn tick(&mut self, now: u64) -> Vec<(String, NotifyReason, Vec<String>, Vec<String>)> {
            self.alerts.resolve_quiet(now);
            let muted = self.muted.clone();
            let mut is_muted = |a: &Alert| muted.contains(a.labels.get("client_address"));
            self.dispatcher
                .tick(now, &self.alerts, &mut is_muted)
                .into_iter()
                .map(|n| {
                    let addr = |a: &Alert| a.labels.get("client_address").to_string();
                    (
                        n.receiver.to_string(),
                        n.reason,
                        n.firing().map(addr).collect(),
                        n.resolved().map(addr).collect(),
                    )
                })
                .collect()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const ROUTE: &str = r#"
receiver = "soc"
group_by = ["alertname"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"
"#;

    #[test]
    fn group_wait_interval_and_repeat() {
        let mut h = Harness::new(ROUTE, &[("soc", true, None)]);
        h.detect("r", "a", T0);
        assert!(h.tick(T0 + 29 * SEC).is_empty(), "group_wait");
        h.detect("r", "b", T0 + 10 * SEC);
        // One notification for both: they share the group.
        assert_eq!(
            h.tick(T0 + 30 * SEC),
            vec![(
                "soc".into(),
                NotifyReason::FirstNotification,
                s(&["a", "b"]),
                s(&[])
            )]
        );
        // A new alert waits for group_interval after the last flush.
        h.detect("r", "c", T0 + 60 * SEC);
        h.detect("r", "a", T0 + 300 * SEC);
        h.detect("r", "b", T0 + 300 * SEC);
        assert!(h.tick(T0 + 329 * SEC).is_empty());
        let out = h.tick(T0 + 330 * SEC);
        assert_eq!(out[0].1, NotifyReason::NewAlertsInGroup);
        assert_eq!(out[0].2, s(&["a", "b", "c"]));
        // Keep them firing; unchanged groups repeat after 4h.
        let mut now = T0 + 330 * SEC;
        let mut repeats = Vec::new();
        while now < T0 + 4 * 3600 * SEC + 660 * SEC {
            now += 60 * SEC;
            for addr in ["a", "b", "c"] {
                h.detect("r", addr, now);
            }
            for n in h.tick(now) {
                repeats.push((now, n.1));
            }
        }
        // Flushes fall on T0+30s+k*5m; the first at or after 4h past the
        // last notification (T0+330s) is T0+330s+4h.
        assert_eq!(
            repeats,
            vec![(
                T0 + 330 * SEC + 4 * 3600 * SEC,
                NotifyReason::RepeatIntervalElapsed
            )]
        );
    }

    #[test]
    fn resolution_is_notified_once_and_the_group_goes() {
        let mut h = Harness::new(ROUTE, &[("soc", true, None)]);
        h.detect("r", "a", T0);
        h.detect("r", "b", T0);
        assert_eq!(h.tick(T0 + 30 * SEC).len(), 1);
        // `b` keeps firing, `a` goes quiet and resolves at T0+5m.
        h.detect("r", "b", T0 + 200 * SEC);
        let out = h.tick(T0 + 330 * SEC);
        assert_eq!(
            out,
            vec![(
                "soc".into(),
                NotifyReason::NewResolvedAlerts,
                s(&["b"]),
                s(&["a"])
            )]
        );
        // `a` left the group: the next change mentions only `b`.
        let out = h.tick(T0 + 630 * SEC);
        assert_eq!(
            out,
            vec![(
                "soc".into(),
                NotifyReason::AllAlertsResolved,
                s(&[]),
                s(&["b"])
            )]
        );
        assert!(h.dispatcher.is_empty(), "empty groups are dropped");
        assert!(h.tick(T0 + 930 * SEC).is_empty());
    }

    #[test]
    fn receivers_without_send_resolved() {
        let mut h = Harness::new(ROUTE, &[("soc", false, None)]);
        h.detect("r", "a", T0);
        h.detect("r", "b", T0);
        h.tick(T0 + 30 * SEC);
        h.detect("r", "b", T0 + 200 * SEC);
        // `a` resolved: not a reason to notify this receiver.
        assert!(h.tick(T0 + 330 * SEC).is_empty());
        // All resolved: logged, nothing sent.
        assert!(h.tick(T0 + 630 * SEC).is_empty());
        assert!(h.dispatcher.is_empty());
    }

    #[test]
    fn muted_alerts_are_left_out() {
        let mut h = Harness::new(ROUTE, &[("soc", true, None)]);
        h.muted.insert("a".into());
        h.detect("r", "a", T0);
        assert!(h.tick(T0 + 30 * SEC).is_empty(), "only a muted alert");
        h.detect("r", "b", T0 + 40 * SEC);
        let out = h.tick(T0 + 330 * SEC);
        assert_eq!(out[0].2, s(&["b"]));
        // Unmuted: `a` is news.
        h.muted.clear();
        h.detect("r", "a", T0 + 400 * SEC);
        h.detect("r", "b", T0 + 400 * SEC);
        let out = h.tick(T0 + 630 * SEC);
        assert_eq!(out[0].1, NotifyReason::NewAlertsInGroup);
        assert_eq!(out[0].2, s(&["a", "b"]));
    }

    #[test]
    fn group_by_labels_and_all_and_continue() {
        let route = r#"
receiver = "soc"
group_by = ["alertname"]
group_wait = "0s"
[[routes]]
matchers = ['alertname="r"']
receiver = "per-alert"
group_by = ["..."]
continue = true
[[routes]]
matchers = ['alertname=~"r|q"']
receiver = "per-rule"
"#;
        let mut h = Harness::new(
            route,
            &[
                ("soc", true, None),
                ("per-alert", true, None),
                ("per-rule", true, None),
            ],
        );
        h.detect("r", "a", T0);
        h.detect("r", "b", T0);
        h.detect("q", "a", T0);
        let mut out = h.tick(T0);
        out.sort();
        let receivers: Vec<(&str, usize)> = out.iter().map(|n| (n.0.as_str(), n.2.len())).collect();
        assert_eq!(
            receivers,
            vec![
                ("per-alert", 1),
                ("per-alert", 1),
                ("per-rule", 1),
                ("per-rule", 2)
            ]
        );
    }

    #[test]
    fn alertmanager_receivers_are_pushed_every_resend_interval() {
        let route = "receiver = \"am\"\ngroup_wait = \"30s\"\ngroup_by = [\"alertname\"]";
        let mut h = Harness::new(route, &[("am", true, Some(Duration::from_secs(60)))]);
        h.detect("r", "a", T0);
        h.detect("r", "b", T0);
        // No group_wait, one alert per notification.
        let out = h.tick(T0);
        assert_eq!(out.len(), 2);
        assert!(
            out.iter()
                .all(|n| n.1 == NotifyReason::FirstNotification && n.2.len() == 1)
        );
        assert!(h.tick(T0 + 59 * SEC).is_empty());
        assert_eq!(h.tick(T0 + 60 * SEC).len(), 2, "re-sent while firing");
        // `a` keeps firing; `b` stays quiet and resolves at T0+5m: the push
        // says so at once, and `a` is re-sent.
        h.detect("r", "a", T0 + 250 * SEC);
        let mut out = h.tick(T0 + 300 * SEC);
        out.sort();
        assert_eq!(
            out,
            vec![
                (
                    "am".into(),
                    NotifyReason::AllAlertsResolved,
                    s(&[]),
                    s(&["b"])
                ),
                (
                    "am".into(),
                    NotifyReason::RepeatIntervalElapsed,
                    s(&["a"]),
                    s(&[])
                ),
            ]
        );
    }

    #[test]
    fn restored_groups_flush_at_once_without_repeating() {
        let mut h = Harness::new(ROUTE, &[("soc", true, None)]);
        let fp = h.detect("r", "a", T0);
        h.tick(T0 + 30 * SEC);
        let logs = h.dispatcher.logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].firing, BTreeSet::from([fp]));

        // A new dispatcher, as after a restart, with the saved log.
        let mut restarted = Harness::new(ROUTE, &[("soc", true, None)]);
        restarted.alerts = h.alerts;
        restarted.dispatcher.restore_logs(logs);
        let alert = restarted.alerts.get(fp).unwrap().clone();
        restarted.dispatcher.insert(&alert, T0 + 100 * SEC);
        restarted.dispatcher.drop_unclaimed_logs();
        restarted.detect("r", "a", T0 + 100 * SEC);
        // Flushed at once (the alert is older than group_wait), but the log
        // says the receiver already knows.
        assert!(restarted.tick(T0 + 100 * SEC).is_empty());
        // Without the log it would have been announced again.
        let mut forgetful = Harness::new(ROUTE, &[("soc", true, None)]);
        forgetful.alerts = restarted.alerts;
        forgetful.dispatcher.insert(&alert, T0 + 100 * SEC);
        assert_eq!(forgetful.tick(T0 + 100 * SEC).len(), 1);
    }
}
