//! Silences: matchers and a time range during which matching alerts are
//! not notified. As in Alertmanager, a silence is pending before
//! `starts_at`, active until `ends_at`, then expired; expired silences
//! stay listed (their history) for the retention, then go.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{AlertError, Result};
use crate::labels::LabelSet;
use crate::matcher::{Matcher, matches_all};
use crate::time;

/// Longest `created_by` and `comment`, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Most matchers in one silence.
pub const MAX_MATCHERS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_unix_nano: u64,
    pub ends_at_unix_nano: u64,
    pub created_by: String,
    pub comment: String,
    /// Last change: creation or expiry.
    pub updated_at_unix_nano: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl Silence {
    pub fn state(&self, now: u64) -> SilenceState {
        if now >= self.ends_at_unix_nano {
            SilenceState::Expired
        } else if now < self.starts_at_unix_nano {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    pub fn mutes(&self, labels: &LabelSet, now: u64) -> bool {
        self.state(now) == SilenceState::Active && matches_all(&self.matchers, labels)
    }
}

/// A silence to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// Times in the past mean now.
    pub starts_at_unix_nano: u64,
    pub ends_at_unix_nano: u64,
    pub created_by: String,
    pub comment: String,
}

#[derive(Clone, Debug)]
pub struct Silences {
    list: Vec<Silence>,
    retention: Duration,
    max: usize,
}

impl Silences {
    pub fn new(retention: Duration, max: usize) -> Silences {
        Silences {
            list: Vec::new(),
            retention,
            max,
        }
    }

    /// Creates a silence and returns its id.
    pub fn create(&mut self, new: NewSilence, now: u64) -> Result<String> {
        let invalid = |field, message: &str| AlertError::Invalid {
            field,
            message: message.to_string(),
        };
        if new.matchers.is_empty() {
            return Err(invalid("matchers", "at least one matcher is needed"));
        }
        if new.matchers.len() > MAX_MATCHERS {
            return Err(invalid("matchers", "more than 64 matchers"));
        }
        // A silence whose every matcher matches "" would mute alerts that
        // lack the labels too: almost certainly a mistake (Alertmanager
        // refuses it for the same reason).
        if new.matchers.iter().all(|m| m.matches_value("")) {
            return Err(invalid(
                "matchers",
                "at least one matcher must not match the empty string",
            ));
        }
        for (field, text) in [("created_by", &new.created_by), ("comment", &new.comment)] {
            if text.trim().is_empty() {
                return Err(invalid(field, "must not be empty"));
            }
            if text.len() > MAX_TEXT_BYTES {
                return Err(invalid(field, "longer than 4096 bytes"));
            }
        }
        let starts = new.starts_at_unix_nano.max(now);
        if new.ends_at_unix_nano <= now {
            return Err(invalid("ends_at", "must be in the future"));
        }
        if new.ends_at_unix_nano <= starts {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        if self.list.len() >= self.max {
            self.forget_expired(now, Duration::ZERO);
        }
        if self.list.len() >= self.max {
            return Err(invalid("matchers", "too many silences; expire some first"));
        }
        let id = new_id();
        self.list.push(Silence {
            id: id.clone(),
            matchers: new.matchers,
            starts_at_unix_nano: starts,
            ends_at_unix_nano: new.ends_at_unix_nano,
            created_by: new.created_by,
            comment: new.comment,
            updated_at_unix_nano: now,
        });
        Ok(id)
    }

    /// Ends a silence now (a pending one never starts).
    pub fn expire(&mut self, id: &str, now: u64) -> Result<()> {
        let silence = self
            .list
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| AlertError::UnknownSilence(id.to_string()))?;
        match silence.state(now) {
            SilenceState::Expired => return Err(AlertError::SilenceExpired(id.to_string())),
            SilenceState::Pending => {
                silence.starts_at_unix_nano = now;
                silence.ends_at_unix_nano = now;
            }
            SilenceState::Active => silence.ends_at_unix_nano = now,
        }
        silence.updated_at_unix_nano = now;
        Ok(())
    }

    /// Every silence, oldest first.
    pub fn list(&self) -> &[Silence] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.list.iter().find(|s| s.id == id)
    }

    /// Ids of the active silences that mute these labels.
    pub fn muting(&self, labels: &LabelSet, now: u64) -> Vec<&str> {
        self.list
            .iter()
            .filter(|s| s.mutes(labels, now))
            .map(|s| s.id.as_str())
            .collect()
    }

    pub fn mutes(&self, labels: &LabelSet, now: u64) -> bool {
        self.list.iter().any(|s| s.mutes(labels, now))
    }

    /// Whether any silence is active at `now` (so muting checks can be
    /// skipped when none is).
    pub fn any_active(&self, now: u64) -> bool {
        self.list
            .iter()
            .any(|s| s.state(now) == SilenceState::Active)
    }

    /// Drops silences expired for longer than the retention; returns how
    /// many.
    pub fn gc(&mut self, now: u64) -> usize {
        self.forget_expired(now, self.retention)
    }

    fn forget_expired(&mut self, now: u64, retention: Duration) -> usize {
        let before = self.list.len();
        self.list
            .retain(|s| now < time::add(s.ends_at_unix_nano, retention));
        before - self.list.len()
    }

    pub fn restore(&mut self, silences: Vec<Silence>) {
        self.list = silences;
    }
}

/// A random UUID (version 4), as Alertmanager's silence ids are.
fn new_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;
    const T0: u64 = 1_767_225_600 * SEC;

    fn new(matchers: &[&str], starts: u64, ends: u64) -> NewSilence {
        NewSilence {
            matchers: matchers.iter().map(|m| m.parse().unwrap()).collect(),
            starts_at_unix_nano: starts,
            ends_at_unix_nano: ends,
            created_by: "ana".into(),
            comment: "pen test from 203.0.113.9".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lifecycle_pending_active_expired() {
        let mut s = Silences::new(Duration::from_secs(3600), 10);
        let id = s
            .create(
                new(
                    &["client_address=\"203.0.113.9\""],
                    T0 + 60 * SEC,
                    T0 + 120 * SEC,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(id.len(), 36);
        let l = labels(&[("alertname", "x"), ("client_address", "203.0.113.9")]);
        let other = labels(&[("alertname", "x"), ("client_address", "198.51.100.7")]);
        let silence = s.get(&id).unwrap().clone();
        assert_eq!(silence.state(T0), SilenceState::Pending);
        assert!(!s.mutes(&l, T0));
        assert!(s.mutes(&l, T0 + 60 * SEC));
        assert_eq!(s.muting(&l, T0 + 60 * SEC), vec![id.as_str()]);
        assert!(!s.mutes(&other, T0 + 60 * SEC));
        assert!(!s.mutes(&l, T0 + 120 * SEC), "ends_at is exclusive");
        assert_eq!(silence.state(T0 + 120 * SEC), SilenceState::Expired);
        // Kept for the retention, then forgotten.
        assert_eq!(s.gc(T0 + 3719 * SEC), 0);
        assert_eq!(s.gc(T0 + 3720 * SEC), 1);
        assert!(s.list().is_empty());
    }

    #[test]
    fn expire_active_and_pending() {
        let mut s = Silences::new(Duration::from_secs(3600), 10);
        let active = s.create(new(&["a=\"1\""], T0, T0 + 600 * SEC), T0).unwrap();
        let pending = s
            .create(new(&["a=\"1\""], T0 + 300 * SEC, T0 + 600 * SEC), T0)
            .unwrap();
        s.expire(&active, T0 + 10 * SEC).unwrap();
        s.expire(&pending, T0 + 10 * SEC).unwrap();
        for id in [&active, &pending] {
            let silence = s.get(id).unwrap();
            assert_eq!(silence.state(T0 + 10 * SEC), SilenceState::Expired);
            assert_eq!(silence.ends_at_unix_nano, T0 + 10 * SEC);
            assert_eq!(silence.updated_at_unix_nano, T0 + 10 * SEC);
        }
        assert!(!s.mutes(&labels(&[("a", "1")]), T0 + 300 * SEC));
        assert!(matches!(
            s.expire(&active, T0 + 20 * SEC),
            Err(AlertError::SilenceExpired(_))
        ));
        assert!(matches!(
            s.expire("nope", T0),
            Err(AlertError::UnknownSilence(_))
        ));
        assert_eq!(s.list().len(), 2, "history stays listed");
    }

    #[test]
    fn refuses_bad_silences() {
        let mut s = Silences::new(Duration::from_secs(3600), 2);
        let cases = [
            (new(&[], T0, T0 + SEC), "matchers"),
            (new(&["a=\"\""], T0, T0 + SEC), "matchers"),
            (new(&["a=~\".*\"", "b!=\"x\""], T0, T0 + SEC), "matchers"),
            (new(&["a=\"1\""], T0, T0), "ends_at"),
            (new(&["a=\"1\""], T0 - 10 * SEC, T0 - SEC), "ends_at"),
            (
                NewSilence {
                    created_by: " ".into(),
                    ..new(&["a=\"1\""], T0, T0 + SEC)
                },
                "created_by",
            ),
            (
                NewSilence {
                    comment: String::new(),
                    ..new(&["a=\"1\""], T0, T0 + SEC)
                },
                "comment",
            ),
        ];
        for (silence, field) in cases {
            match s.create(silence.clone(), T0) {
                Err(AlertError::Invalid { field: f, .. }) => assert_eq!(f, field, "{silence:?}"),
                other => panic!("{silence:?}: {other:?}"),
            }
        }
        // A start in the past means now.
        let id = s.create(new(&["a=\"1\""], 0, T0 + SEC), T0).unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at_unix_nano, T0);
        // Full: expired silences make room, active ones do not.
        s.create(new(&["a=\"1\""], T0, T0 + 2 * SEC), T0).unwrap();
        assert!(s.create(new(&["a=\"1\""], T0, T0 + 9 * SEC), T0).is_err());
        assert!(
            s.create(new(&["a=\"1\""], T0, T0 + 9 * SEC), T0 + SEC)
                .is_ok()
        );
    }
}
