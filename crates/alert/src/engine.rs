//! [`Alerting`]: the alert engine, tying the lifecycle, routing, grouping,
//! silences, inhibition and the state file together.
//!
//! The engine is synchronous and reads no clock: every call takes `now`
//! (unix nanoseconds). The caller (the server's alert task) feeds it
//! detections with [`Alerting::observe`], calls [`Alerting::tick`] every
//! second or so and hands the notifications to a
//! [`crate::receiver::Notifier`], then calls [`Alerting::persist_at`].
//! People's actions (silences, acknowledgements) are saved at once.

use std::path::Path;
use std::time::Duration;

use tracewarden_detect::engine::Detection;
use tracewarden_detect::rule::Rule;

use crate::alert::Alert;
use crate::alerts::{AlertSet, Observed};
use crate::config::ValidConfig;
use crate::error::Result;
use crate::group::Dispatcher;
use crate::inhibit::Inhibitions;
use crate::labels::Fingerprint;
use crate::notification::Notification;
use crate::silence::{NewSilence, Silence, SilenceState, Silences};
use crate::state::{STATE_VERSION, State, StateFile};

/// Whether an alert is muted now, and by what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MuteStatus {
    /// Ids of the active silences that match it.
    pub silenced_by: Vec<String>,
    /// Whether a firing alert inhibits it.
    pub inhibited: bool,
}

/// Counters and sizes, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertingStats {
    pub firing: usize,
    pub resolved: usize,
    pub groups: usize,
    pub silences_active: usize,
    pub silences: usize,
    /// New alerts dropped because `max_alerts` alerts were firing.
    pub dropped_alerts: u64,
}

#[derive(Debug)]
pub struct Alerting {
    config: ValidConfig,
    alerts: AlertSet,
    silences: Silences,
    dispatcher: Dispatcher,
    state: Option<StateFile>,
    /// What changed since the last save.
    changed: Change,
    /// When the state was last saved by [`Alerting::persist_at`].
    saved_at: u64,
}

/// What changed in the state since it was saved, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Nothing,
    /// Detections merged into alerts already saved: their counts, last
    /// seen times and sampled trace ids.
    Updates,
    /// Anything else: an alert new, reopened, resolved or forgotten, a
    /// notification logged, a silence or an acknowledgement.
    Lifecycle,
}

/// How long detections merged into known alerts may wait to be saved. An
/// attack in progress updates every firing alert every second; saving each
/// time rewrote the whole file (1.8 MB at 1,000 alerts) every second. A
/// crash loses at most this much of their counts and last-seen times; the
/// alerts themselves, and what was notified, are saved at the next tick.
pub const UPDATES_SAVED_EVERY: Duration = Duration::from_secs(10);

impl Alerting {
    /// An engine without a state file; `rules` annotate the alerts.
    pub fn new(config: ValidConfig, rules: &[Rule]) -> Alerting {
        let alerts = AlertSet::new(config.lifecycle(), rules);
        let silences = Silences::new(config.config.silence_retention, config.config.max_silences);
        let dispatcher = Dispatcher::new(config.routes.clone(), config.receivers.clone());
        Alerting {
            config,
            alerts,
            silences,
            dispatcher,
            state: None,
            changed: Change::Nothing,
            saved_at: 0,
        }
    }

    /// An engine that keeps its state in `dir`, loading what is there.
    /// Restored alerts go back into their groups; the notification log
    /// keeps them from being announced again.
    pub fn open(config: ValidConfig, rules: &[Rule], dir: &Path, now: u64) -> Result<Alerting> {
        Alerting::open_sealed(config, rules, dir, now, None)
    }

    /// [`Alerting::open`] with the state file encrypted by `sealer`.
    pub fn open_sealed(
        config: ValidConfig,
        rules: &[Rule],
        dir: &Path,
        now: u64,
        sealer: Option<std::sync::Arc<dyn crate::state::Sealer>>,
    ) -> Result<Alerting> {
        let file = StateFile::in_dir(dir).sealed_with(sealer);
        let saved = file.load()?;
        let mut engine = Alerting::new(config, rules);
        if let Some(state) = saved {
            engine.silences.restore(state.silences);
            engine.dispatcher.restore_logs(state.notification_log);
            engine.alerts.restore(state.alerts);
            let mut restored: Vec<&Alert> = engine.alerts.iter().collect();
            restored.sort_by_key(|a| a.fingerprint);
            for alert in restored {
                engine.dispatcher.insert(alert, now);
            }
            engine.dispatcher.drop_unclaimed_logs();
        }
        engine.state = Some(file);
        Ok(engine)
    }

    /// Merges detections seen at `now` into alerts.
    pub fn observe(&mut self, detections: &[Detection], now: u64) {
        for detection in detections {
            match self.alerts.observe(detection, now) {
                Observed::New(fp) | Observed::Reopened(fp) => {
                    if let Some(alert) = self.alerts.get(fp) {
                        self.dispatcher.insert(alert, now);
                    }
                    self.changed = Change::Lifecycle;
                }
                Observed::Updated(_) => self.changed = self.changed.max(Change::Updates),
                Observed::Dropped => {}
            }
        }
    }

    /// Advances to `now`: resolves quiet alerts, forgets old ones, and
    /// returns the notifications due.
    pub fn tick(&mut self, now: u64) -> Vec<Notification> {
        let resolved = self.alerts.resolve_quiet(now);
        let forgotten = self.alerts.forget_resolved(now);
        let expired = self.silences.gc(now);
        let silences = &self.silences;
        let check_silences = silences.any_active(now);
        let (rules, all) = (&self.config.inhibit_rules, &self.alerts);
        // Indexed on first use: most ticks flush no group.
        let mut inhibitions: Option<Inhibitions> = None;
        let mut muted = |alert: &Alert| {
            (check_silences && silences.mutes(&alert.labels, now))
                || inhibitions
                    .get_or_insert_with(|| Inhibitions::new(rules, all.iter()))
                    .inhibits(&alert.labels)
        };
        let notifications = self.dispatcher.tick(now, &self.alerts, &mut muted);
        let logged = self.dispatcher.take_changed();
        if logged || !resolved.is_empty() || !forgotten.is_empty() || expired > 0 {
            self.changed = Change::Lifecycle;
        }
        notifications
    }

    /// Every alert, firing first, then the most recent first.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut all: Vec<&Alert> = self.alerts.iter().collect();
        all.sort_by(|a, b| {
            b.is_firing()
                .cmp(&a.is_firing())
                .then(b.starts_at_unix_nano.cmp(&a.starts_at_unix_nano))
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        all
    }

    pub fn alert(&self, fingerprint: Fingerprint) -> Option<&Alert> {
        self.alerts.get(fingerprint)
    }

    /// Whether an alert is silenced or inhibited at `now`.
    pub fn mute_status(&self, fingerprint: Fingerprint, now: u64) -> Option<MuteStatus> {
        let alert = self.alerts.get(fingerprint)?;
        let inhibitions = Inhibitions::new(&self.config.inhibit_rules, self.alerts.iter());
        Some(MuteStatus {
            silenced_by: self
                .silences
                .muting(&alert.labels, now)
                .into_iter()
                .map(str::to_string)
                .collect(),
            inhibited: inhibitions.inhibits(&alert.labels),
        })
    }

    /// Records an acknowledgement (who, and an optional comment) and saves
    /// the state.
    pub fn acknowledge(
        &mut self,
        fingerprint: Fingerprint,
        by: &str,
        comment: &str,
        now: u64,
    ) -> Result<()> {
        self.alerts.acknowledge(fingerprint, by, comment, now)?;
        self.changed = Change::Lifecycle;
        self.persist().map(|_| ())
    }

    /// Creates a silence, saves the state and returns the silence's id.
    pub fn create_silence(&mut self, silence: NewSilence, now: u64) -> Result<String> {
        let id = self.silences.create(silence, now)?;
        self.changed = Change::Lifecycle;
        self.persist()?;
        Ok(id)
    }

    /// Expires a silence now and saves the state.
    pub fn expire_silence(&mut self, id: &str, now: u64) -> Result<()> {
        self.silences.expire(id, now)?;
        self.changed = Change::Lifecycle;
        self.persist().map(|_| ())
    }

    /// Every silence (pending, active, expired within the retention),
    /// oldest first.
    pub fn silences(&self) -> &[Silence] {
        self.silences.list()
    }

    /// Replaces the rules that annotate new alerts (after a rule reload).
    pub fn set_rules(&mut self, rules: &[Rule]) {
        self.alerts.set_rules(rules);
    }

    /// Overrides the resolve timeout of one rule's alerts.
    pub fn set_resolve_timeout(&mut self, rule_id: &str, timeout: Duration) {
        self.alerts.set_resolve_timeout(rule_id, timeout);
    }

    pub fn stats(&self, now: u64) -> AlertingStats {
        let firing = self.alerts.iter().filter(|a| a.is_firing()).count();
        AlertingStats {
            firing,
            resolved: self.alerts.len() - firing,
            groups: self.dispatcher.len(),
            silences_active: self
                .silences
                .list()
                .iter()
                .filter(|s| s.state(now) == SilenceState::Active)
                .count(),
            silences: self.silences.list().len(),
            dropped_alerts: self.alerts.dropped(),
        }
    }

    /// The state as it would be saved.
    pub fn snapshot(&self) -> State {
        let mut alerts: Vec<Alert> = self.alerts.iter().cloned().collect();
        alerts.sort_by_key(|a| a.fingerprint);
        let mut notification_log = self.dispatcher.logs();
        notification_log
            .sort_by(|a, b| (&a.receiver, &a.group_key).cmp(&(&b.receiver, &b.group_key)));
        State {
            version: STATE_VERSION,
            alerts,
            silences: self.silences.list().to_vec(),
            notification_log,
        }
    }

    /// Saves the state if it changed since the last save (and the engine
    /// has a state file); returns whether it wrote. After an error the
    /// state stays marked as changed, so the next call tries again. For
    /// people's actions and shutdown.
    pub fn persist(&mut self) -> Result<bool> {
        self.save_if(Change::Updates)
    }

    /// [`Alerting::persist`] after a tick at `now`: a change to the alerts'
    /// lifecycle (new, reopened, resolved, forgotten; a notification
    /// logged) is saved at once, detections merged into known alerts at
    /// most every [`UPDATES_SAVED_EVERY`].
    pub fn persist_at(&mut self, now: u64) -> Result<bool> {
        let every = u64::try_from(UPDATES_SAVED_EVERY.as_nanos()).unwrap_or(u64::MAX);
        let least = if now.saturating_sub(self.saved_at) >= every {
            Change::Updates
        } else {
            Change::Lifecycle
        };
        let saved = self.save_if(least)?;
        if saved {
            self.saved_at = now;
        }
        Ok(saved)
    }

    fn save_if(&mut self, least: Change) -> Result<bool> {
        let Some(file) = &self.state else {
            return Ok(false);
        };
        // `least` is never `Nothing`: an unchanged state is never saved.
        if self.changed < least {
            return Ok(false);
        }
        file.save(&self.snapshot())?;
        self.changed = Change::Nothing;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertState;
    use crate::alerts::tests::{SEC, T0, detection};
    use crate::config::Config;
    use crate::error::AlertError;
    use crate::notification::NotifyReason;

    fn config() -> ValidConfig {
        let text = r#"
[route]
receiver = "soc"
group_by = ["alertname", "client_address"]
group_wait = "10s"
group_interval = "1m"
[[receivers]]
name = "soc"
[receivers.webhook]
url = "http://127.0.0.1:1/hook"
"#;
        toml::from_str::<Config>(text).unwrap().validate().unwrap()
    }

    fn sequence_detection(address: &str) -> Detection {
        let mut d = detection("brute-force-then-success", address, 9);
        d.kind = "sequence";
        d.severity = tracewarden_detect::rule::Severity::Critical;
        d
    }

    #[test]
    fn default_inhibition_mutes_the_brute_force_alert_for_the_same_address() {
        let mut engine = Alerting::new(config(), &[]);
        engine.observe(
            &[
                detection("brute-force-login", "203.0.113.9", 1),
                detection("brute-force-login", "198.51.100.7", 1),
                sequence_detection("203.0.113.9"),
            ],
            T0,
        );
        let out = engine.tick(T0 + 10 * SEC);
        let mut seen: Vec<(String, String)> = out
            .iter()
            .flat_map(|n| &n.alerts)
            .map(|a| {
                (
                    a.labels.get("alertname").to_string(),
                    a.labels.get("client_address").to_string(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("brute-force-login".into(), "198.51.100.7".into()),
                ("brute-force-then-success".into(), "203.0.113.9".into()),
            ]
        );
        let inhibited = engine
            .alerts()
            .into_iter()
            .find(|a| {
                a.labels.get("alertname") == "brute-force-login"
                    && a.labels.get("client_address") == "203.0.113.9"
            })
            .unwrap()
            .fingerprint;
        let status = engine.mute_status(inhibited, T0 + 10 * SEC).unwrap();
        assert!(status.inhibited);
        assert!(status.silenced_by.is_empty());
    }

    #[test]
    fn silences_mute_until_expired() {
        let mut engine = Alerting::new(config(), &[]);
        let id = engine
            .create_silence(
                NewSilence {
                    matchers: vec!["client_address=\"203.0.113.9\"".parse().unwrap()],
                    starts_at_unix_nano: T0,
                    ends_at_unix_nano: T0 + 3600 * SEC,
                    created_by: "ana".into(),
                    comment: "authorised pen test".into(),
                },
                T0,
            )
            .unwrap();
        engine.observe(&[detection("brute-force-login", "203.0.113.9", 1)], T0);
        assert!(engine.tick(T0 + 10 * SEC).is_empty(), "silenced");
        let fp = engine.alerts()[0].fingerprint;
        assert_eq!(
            engine.mute_status(fp, T0 + 10 * SEC).unwrap().silenced_by,
            vec![id.clone()]
        );
        engine.expire_silence(&id, T0 + 20 * SEC).unwrap();
        engine.observe(
            &[detection("brute-force-login", "203.0.113.9", 2)],
            T0 + 60 * SEC,
        );
        let out = engine.tick(T0 + 70 * SEC);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reason, NotifyReason::FirstNotification);
        assert!(matches!(
            engine.expire_silence(&id, T0 + 80 * SEC),
            Err(AlertError::SilenceExpired(_))
        ));
    }

    #[test]
    fn state_survives_a_restart_without_renotifying() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Alerting::open(config(), &[], dir.path(), T0).unwrap();
        engine.observe(&[detection("brute-force-login", "203.0.113.9", 1)], T0);
        assert_eq!(engine.tick(T0 + 10 * SEC).len(), 1);
        let fp = engine.alerts()[0].fingerprint;
        engine
            .acknowledge(fp, "ana", "blocking at the WAF", T0 + 11 * SEC)
            .unwrap();
        let silence = engine
            .create_silence(
                NewSilence {
                    matchers: vec!["alertname=\"sql-injection\"".parse().unwrap()],
                    starts_at_unix_nano: T0,
                    ends_at_unix_nano: T0 + 3600 * SEC,
                    created_by: "ana".into(),
                    comment: "scanner".into(),
                },
                T0 + 12 * SEC,
            )
            .unwrap();
        assert!(!engine.persist().unwrap(), "already saved by the actions");
        let before = engine.snapshot();
        drop(engine);

        let mut engine = Alerting::open(config(), &[], dir.path(), T0 + 30 * SEC).unwrap();
        assert_eq!(engine.snapshot(), before);
        let alert = engine.alert(fp).unwrap();
        let ack = alert.acknowledged.as_ref().unwrap();
        assert_eq!(
            (ack.by.as_str(), ack.comment.as_str()),
            ("ana", "blocking at the WAF")
        );
        assert_eq!(engine.silences()[0].id, silence);
        // Still firing and already announced: nothing new to say.
        engine.observe(
            &[detection("brute-force-login", "203.0.113.9", 2)],
            T0 + 30 * SEC,
        );
        assert!(engine.tick(T0 + 30 * SEC).is_empty());
        assert!(engine.tick(T0 + 90 * SEC).is_empty());
        // Resolution is announced once, then saved.
        let out = engine.tick(T0 + 400 * SEC);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, AlertState::Resolved);
        assert!(engine.persist().unwrap());
        assert!(!engine.persist().unwrap());
    }

    /// An attack in progress updates its alerts every second: those updates
    /// are saved at most every `UPDATES_SAVED_EVERY`, while a new alert, a
    /// resolution or a notification is saved at the next tick, and
    /// shutdown's `persist` saves whatever is left.
    #[test]
    fn updates_to_known_alerts_wait_for_the_interval_and_the_rest_does_not() {
        let every = UPDATES_SAVED_EVERY.as_secs();
        let dir = tempfile::tempdir().unwrap();
        let saved =
            |dir: &Path| -> Vec<Alert> { StateFile::in_dir(dir).load().unwrap().unwrap().alerts };
        let mut engine = Alerting::open(config(), &[], dir.path(), T0).unwrap();
        engine.observe(&[detection("brute-force-login", "203.0.113.9", 1)], T0);
        engine.tick(T0);
        assert!(engine.persist_at(T0).unwrap(), "a new alert: saved at once");
        // Updates only: not before the interval.
        for s in 1..every {
            let now = T0 + s * SEC;
            engine.observe(&[detection("brute-force-login", "203.0.113.9", 2)], now);
            engine.tick(now);
            assert!(!engine.persist_at(now).unwrap(), "second {s}");
        }
        assert_eq!(saved(dir.path())[0].updated_at_unix_nano, T0);
        let now = T0 + every * SEC;
        engine.observe(&[detection("brute-force-login", "203.0.113.9", 3)], now);
        engine.tick(now);
        assert!(engine.persist_at(now).unwrap(), "the interval is up");
        assert_eq!(saved(dir.path())[0].updated_at_unix_nano, now);
        // A new alert a second later goes at once, updates with it.
        let now = now + SEC;
        engine.observe(
            &[
                detection("brute-force-login", "203.0.113.9", 4),
                detection("brute-force-login", "198.51.100.7", 5),
            ],
            now,
        );
        engine.tick(now);
        assert!(engine.persist_at(now).unwrap());
        assert_eq!(saved(dir.path()).len(), 2);
        // An update left unsaved at shutdown is saved by `persist`.
        engine.observe(
            &[detection("brute-force-login", "198.51.100.7", 6)],
            now + SEC,
        );
        assert!(!engine.persist_at(now + SEC).unwrap());
        assert!(engine.persist().unwrap());
        assert!(
            saved(dir.path())
                .iter()
                .all(|a| a.updated_at_unix_nano >= now)
        );
        assert!(!engine.persist().unwrap());
    }

    #[test]
    fn a_corrupt_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::state::STATE_FILE_NAME), b"{").unwrap();
        let err = Alerting::open(config(), &[], dir.path(), T0).unwrap_err();
        assert!(matches!(err, AlertError::CorruptState { .. }), "{err}");
    }
}
