//! Roles a key carries and what each route needs ([`Access`]).

use serde::{Deserialize, Serialize};

/// The role of an API key. Not a ladder: `ingest` only sends data, and
/// the reading roles cannot send it (least privilege for exporters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends spans and logs to the receivers (and asks gateway decisions).
    Ingest,
    /// Alerts, rules, detections, metrics, health; actors masked.
    Viewer,
    /// A viewer that also searches and reads traces and payloads.
    Analyst,
    /// Everything: rules reload, silences, acknowledgements, blocks, keys,
    /// the audit log, and ingest.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Ingest, Role::Viewer, Role::Analyst, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Whether a key of this role may use a route that needs `access`.
    pub fn grants(self, access: Access) -> bool {
        match access {
            Access::Open | Access::Gateway => true,
            Access::Ingest => matches!(self, Role::Ingest | Role::Admin),
            Access::Viewer => matches!(self, Role::Viewer | Role::Analyst | Role::Admin),
            Access::Analyst => matches!(self, Role::Analyst | Role::Admin),
            Access::Admin => self == Role::Admin,
        }
    }

    /// Whether what this role reads has its actors masked (viewers see
    /// that something happened, not to whom).
    pub fn masks_actors(self) -> bool {
        matches!(self, Role::Viewer | Role::Ingest)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!("unknown role `{text}` (expected ingest, viewer, analyst or admin)")
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route needs of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// No key, ever (liveness and readiness probes).
    Open,
    /// Any valid key, whatever its role: gateways ask block decisions
    /// with a low-privilege (`ingest`) key.
    Gateway,
    /// The receivers: `ingest` or `admin`.
    Ingest,
    Viewer,
    Analyst,
    Admin,
}

impl Access {
    /// The least role that has this access, for messages and docs.
    pub fn least_role(self) -> &'static str {
        match self {
            Access::Open => "none",
            Access::Gateway => "any key",
            Access::Ingest => "ingest",
            Access::Viewer => "viewer",
            Access::Analyst => "analyst",
            Access::Admin => "admin",
        }
    }

    /// Whether the per-key rate limit applies: to the query API and the
    /// actions, not to probes, gateway decisions or ingest (which have
    /// their own back-pressure).
    pub fn rate_limited(self) -> bool {
        matches!(self, Access::Viewer | Access::Analyst | Access::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_by_role() {
        use Access::*;
        // (role, accesses granted), every other access refused.
        let table = [
            (Role::Ingest, vec![Open, Gateway, Ingest]),
            (Role::Viewer, vec![Open, Gateway, Viewer]),
            (Role::Analyst, vec![Open, Gateway, Viewer, Analyst]),
            (
                Role::Admin,
                vec![Open, Gateway, Ingest, Viewer, Analyst, Admin],
            ),
        ];
        for (role, granted) in table {
            for access in [Open, Gateway, Ingest, Viewer, Analyst, Admin] {
                assert_eq!(
                    role.grants(access),
                    granted.contains(&access),
                    "{role} {access:?}"
                );
            }
        }
    }

    #[test]
    fn parses_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(" Admin ".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().unwrap_err().contains("root"));
    }
}
