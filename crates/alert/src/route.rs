//! The routing tree: which receivers an alert goes to, and how its
//! notifications are grouped and timed.
//!
//! As in Alertmanager: the root route matches every alert. An alert goes
//! down to the children whose matchers all match, in order; the first child
//! that matches takes it unless that child has `continue = true`, in which
//! case later siblings are tried too. When no child matches, the route
//! itself takes the alert. Children inherit `receiver`, `group_by` and the
//! three timings from their parent unless they set them.

use std::sync::Arc;
use std::time::Duration;

use crate::config::RouteConfig;
use crate::error::ConfigError;
use crate::labels::{LabelSet, is_valid_label_name};
use crate::matcher::{Matcher, display_matchers, matches_all};

/// Alertmanager's defaults.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Which labels make an aggregation group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// `...`: every label, so every alert is its own group.
    All,
    /// These labels (none: one group for the route).
    Labels(Vec<String>),
}

impl GroupBy {
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels.subset(names.iter().map(String::as_str)),
        }
    }
}

/// One node of the tree, with inherited options resolved.
#[derive(Clone, Debug)]
pub struct Route {
    /// Index in the tree (depth first; the root is 0).
    pub id: usize,
    /// `{}` for the root, then `/`-separated matchers of each level, as
    /// Alertmanager writes route keys in group keys.
    pub key: String,
    pub receiver: Arc<str>,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    children: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct RouteTree {
    routes: Vec<Route>,
}

impl RouteTree {
    /// Compiles the configuration; errors name the field, e.g.
    /// `route.routes[1].matchers[0]`.
    pub fn compile(root: &RouteConfig) -> Result<RouteTree, ConfigError> {
        let receiver = root
            .receiver
            .as_deref()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ConfigError::new("route.receiver", "the root route needs a receiver"))?;
        if !root.matchers.is_empty() {
            return Err(ConfigError::new(
                "route.matchers",
                "the root route matches every alert and cannot have matchers",
            ));
        }
        if root.continue_matching {
            return Err(ConfigError::new(
                "route.continue",
                "the root route cannot have continue",
            ));
        }
        let inherited = Route {
            id: 0,
            key: String::new(),
            receiver: Arc::from(receiver),
            group_by: GroupBy::Labels(Vec::new()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            matchers: Vec::new(),
            continue_matching: false,
            children: Vec::new(),
        };
        let mut tree = RouteTree { routes: Vec::new() };
        tree.add(root, &inherited, "route")?;
        Ok(tree)
    }

    fn add(&mut self, cfg: &RouteConfig, parent: &Route, path: &str) -> Result<usize, ConfigError> {
        let mut matchers = Vec::with_capacity(cfg.matchers.len());
        for (i, text) in cfg.matchers.iter().enumerate() {
            let m = text
                .parse::<Matcher>()
                .map_err(|e| ConfigError::new(format!("{path}.matchers[{i}]"), e))?;
            matchers.push(m);
        }
        let group_by = match &cfg.group_by {
            None => parent.group_by.clone(),
            Some(names) => parse_group_by(names, &format!("{path}.group_by"))?,
        };
        let group_interval = cfg.group_interval.unwrap_or(parent.group_interval);
        let repeat_interval = cfg.repeat_interval.unwrap_or(parent.repeat_interval);
        if group_interval.is_zero() {
            return Err(ConfigError::new(
                format!("{path}.group_interval"),
                "must be greater than zero",
            ));
        }
        if repeat_interval.is_zero() {
            return Err(ConfigError::new(
                format!("{path}.repeat_interval"),
                "must be greater than zero",
            ));
        }
        let id = self.routes.len();
        let key = if id == 0 {
            "{}".to_string()
        } else {
            format!("{}/{}", parent.key, display_matchers(&matchers))
        };
        let route = Route {
            id,
            key,
            receiver: match cfg.receiver.as_deref() {
                Some(r) if !r.is_empty() => Arc::from(r),
                _ => parent.receiver.clone(),
            },
            group_by,
            group_wait: cfg.group_wait.unwrap_or(parent.group_wait),
            group_interval,
            repeat_interval,
            matchers,
            continue_matching: cfg.continue_matching,
            children: Vec::new(),
        };
        self.routes.push(route);
        let mut children = Vec::with_capacity(cfg.routes.len());
        for (i, child) in cfg.routes.iter().enumerate() {
            let parent = self.routes[id].clone();
            children.push(self.add(child, &parent, &format!("{path}.routes[{i}]"))?);
        }
        self.routes[id].children = children;
        Ok(id)
    }

    /// The routes that take an alert with these labels, in tree order.
    pub fn matching(&self, labels: &LabelSet) -> Vec<usize> {
        let mut out = Vec::new();
        self.match_from(0, labels, &mut out);
        out
    }

    fn match_from(&self, id: usize, labels: &LabelSet, out: &mut Vec<usize>) -> bool {
        let route = &self.routes[id];
        if !matches_all(&route.matchers, labels) {
            return false;
        }
        let before = out.len();
        for &child in &route.children {
            if self.match_from(child, labels, out) && !self.routes[child].continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(id);
        }
        true
    }

    pub fn route(&self, id: usize) -> &Route {
        &self.routes[id]
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

fn parse_group_by(names: &[String], field: &str) -> Result<GroupBy, ConfigError> {
    if names.iter().any(|n| n == "...") {
        if names.len() > 1 {
            return Err(ConfigError::new(
                field,
                "`...` (every label) cannot be combined with other labels",
            ));
        }
        return Ok(GroupBy::All);
    }
    for (i, name) in names.iter().enumerate() {
        if !is_valid_label_name(name) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{name}` is not a valid label name"),
            ));
        }
    }
    Ok(GroupBy::Labels(names.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(toml_text: &str) -> RouteTree {
        let cfg: RouteConfig = toml::from_str(toml_text).unwrap();
        RouteTree::compile(&cfg).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const TREE: &str = r#"
receiver = "default"
group_by = ["alertname"]
group_wait = "10s"

[[routes]]
matchers = ['severity="critical"']
receiver = "pager"
continue = true
group_wait = "0s"

[[routes]]
matchers = ['severity=~"high|critical"']
receiver = "soc"
group_by = ["alertname", "client_address"]

  [[routes.routes]]
  matchers = ['alertname=~"brute-force-.*"']
  receiver = "soc-identity"

[[routes]]
matchers = ['severity=~"high|critical"']
receiver = "never"
"#;

    #[test]
    fn matching_follows_alertmanager() {
        let t = tree(TREE);
        let receivers = |pairs: &[(&str, &str)]| -> Vec<String> {
            t.matching(&labels(pairs))
                .into_iter()
                .map(|id| t.route(id).receiver.to_string())
                .collect()
        };
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (&[("severity", "low")], &["default"]),
            (&[("severity", "high"), ("alertname", "x")], &["soc"]),
            (
                &[("severity", "high"), ("alertname", "brute-force-login")],
                &["soc-identity"],
            ),
            // `continue` on the first child lets the second take it too;
            // the second has no `continue`, so the third never does.
            (
                &[("severity", "critical"), ("alertname", "x")],
                &["pager", "soc"],
            ),
            (
                &[
                    ("severity", "critical"),
                    ("alertname", "brute-force-then-success"),
                ],
                &["pager", "soc-identity"],
            ),
            (&[], &["default"]),
        ];
        for (input, expected) in cases {
            assert_eq!(receivers(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn options_inherit() {
        let t = tree(TREE);
        let root = t.route(0);
        assert_eq!(root.key, "{}");
        assert_eq!(root.group_wait, Duration::from_secs(10));
        assert_eq!(root.group_interval, DEFAULT_GROUP_INTERVAL);
        let pager = t.route(1);
        assert_eq!(pager.group_wait, Duration::ZERO);
        assert_eq!(pager.group_by, GroupBy::Labels(vec!["alertname".into()]));
        let identity = t.route(3);
        assert_eq!(&*identity.receiver, "soc-identity");
        assert_eq!(identity.group_wait, Duration::from_secs(10));
        assert_eq!(
            identity.group_by,
            GroupBy::Labels(vec!["alertname".into(), "client_address".into()])
        );
        assert_eq!(
            identity.key,
            r#"{}/{severity=~"high|critical"}/{alertname=~"brute-force-.*"}"#
        );
    }

    #[test]
    fn group_by_all_and_none() {
        let l = labels(&[("a", "1"), ("b", "2")]);
        assert_eq!(GroupBy::All.group_labels(&l), l);
        assert!(GroupBy::Labels(vec![]).group_labels(&l).is_empty());
        assert_eq!(
            GroupBy::Labels(vec!["b".into(), "c".into()]).group_labels(&l),
            labels(&[("b", "2")])
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("group_by = [\"a\"]", "route.receiver"),
            ("receiver = \"x\"\nmatchers = ['a=\"b\"']", "route.matchers"),
            ("receiver = \"x\"\ncontinue = true", "route.continue"),
            (
                "receiver = \"x\"\ngroup_by = [\"...\", \"a\"]",
                "route.group_by",
            ),
            (
                "receiver = \"x\"\ngroup_by = [\"a\", \"b.c\"]",
                "route.group_by[1]",
            ),
            (
                "receiver = \"x\"\n[[routes]]\n[[routes]]\nmatchers = ['a=\"b\"', 'c=~\"(\"']",
                "route.routes[1].matchers[1]",
            ),
            (
                "receiver = \"x\"\n[[routes]]\n[[routes.routes]]\ngroup_interval = \"0s\"",
                "route.routes[0].routes[0].group_interval",
            ),
        ];
        for (text, field) in cases {
            let cfg: RouteConfig = toml::from_str(text).unwrap();
            let err = RouteTree::compile(&cfg).unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
    }
}
