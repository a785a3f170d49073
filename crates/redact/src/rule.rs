//! Rules compiled from the configuration, and the built-in ones.

use regex::Regex;

use crate::config::{RedactionConfig, RuleConfig};
use crate::detector::Detector;
use crate::error::{RedactError, Result};
use crate::hash::Encoding;

/// Rules at most: the redactor keeps rule sets as 64-bit masks.
pub const MAX_RULES: usize = 64;

/// What a rule does with what it matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Remove the attribute (for a log body, span name or status message:
    /// empty it).
    Drop,
    /// Replace with the marker, keeping the last `keep_last` characters.
    Mask { keep_last: usize },
    /// Replace with `hmac:` and the keyed hash.
    Hash(Encoding),
}

/// Which attribute keys a rule applies to.
#[derive(Clone, Debug)]
pub(crate) struct KeyPattern {
    exact: Vec<String>,
    regex: Option<Regex>,
}

impl KeyPattern {
    pub(crate) fn matches(&self, key: &str) -> bool {
        self.exact.iter().any(|k| k.eq_ignore_ascii_case(key))
            || self.regex.as_ref().is_some_and(|r| r.is_match(key))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) keys: Option<KeyPattern>,
    pub(crate) detector: Option<Detector>,
    pub(crate) action: Action,
}

/// Header and gRPC metadata names that carry credentials, as the semantic
/// conventions record them (`http.request.header.<lowercase name>`, dashes
/// kept; before v1.23 dashes were underscores).
const AUTH_HEADERS: &str = r"(?i)^(?:http\.(?:request|response)\.header|rpc\.grpc\.(?:request|response)\.metadata)\.(?:authorization|proxy[-_]authorization|cookie|set[-_]cookie|x[-_]api[-_]key|api[-_]key|x[-_]auth[-_]token|x[-_]access[-_]token|x[-_]amz[-_]security[-_]token)$";

/// Keys whose last word names a secret: `db.password`, `app.api_key`,
/// `oauth.refresh_token`. `*_tokens` (counts of LLM tokens) do not match.
const SECRET_KEYS: &str = r"(?i)(?:^|[._-])(?:password|passwd|passphrase|pwd|secret|client[_-]?secret|secret[_-]?key|access[_-]?key|api[_-]?key|apikey|private[_-]?key|token|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|session[_-]?token|credentials?)$";

fn mask(name: &str, detector: Detector, keep_last: usize) -> RuleConfig {
    RuleConfig {
        name: name.to_string(),
        detector: Some(detector.as_str().to_string()),
        action: "mask".to_string(),
        keep_last,
        ..RuleConfig::default()
    }
}

fn mask_keys(name: &str, regex: &str) -> RuleConfig {
    RuleConfig {
        name: name.to_string(),
        key_regex: Some(regex.to_string()),
        action: "mask".to_string(),
        ..RuleConfig::default()
    }
}

/// The built-in rules, on unless disabled by name or replaced by a rule of
/// the same name. E-mail addresses are not among them: identity and
/// data-flow rules need them (add a rule with `detector = "email"`).
pub fn builtin() -> Vec<RuleConfig> {
    vec![
        mask_keys("auth_headers", AUTH_HEADERS),
        mask_keys("secret_keys", SECRET_KEYS),
        mask("bearer_token", Detector::Bearer, 0),
        mask("jwt", Detector::Jwt, 0),
        mask("secret_params", Detector::SecretParam, 0),
        mask("payment_card", Detector::PaymentCard, 4),
        mask("aws_access_key", Detector::AwsAccessKey, 0),
        mask("github_token", Detector::GithubToken, 0),
        mask("slack_token", Detector::SlackToken, 0),
        mask("stripe_key", Detector::StripeKey, 0),
        mask("google_api_key", Detector::GoogleApiKey, 0),
        mask("private_key", Detector::PrivateKey, 0),
    ]
}

/// The rules in force: the operator's, then the built-in ones not disabled
/// or replaced; each checked, the first error naming its rule.
pub(crate) fn compile(config: &RedactionConfig) -> Result<Vec<Rule>> {
    let builtin = builtin();
    for name in &config.disable {
        if !builtin.iter().any(|b| &b.name == name) {
            let known: Vec<&str> = builtin.iter().map(|b| b.name.as_str()).collect();
            return Err(RedactError::Config(format!(
                "`disable` names `{name}`, which is no built-in rule (built-in: {})",
                known.join(", ")
            )));
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    for rule in &config.rules {
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(RedactError::rule(&rule.name, "defined twice"));
        }
        rules.push(compile_rule(rule)?);
    }
    for rule in &builtin {
        let replaced = rules.iter().any(|r| r.name == rule.name);
        if !replaced && !config.disable.contains(&rule.name) {
            rules.push(compile_rule(rule)?);
        }
    }
    if rules.len() > MAX_RULES {
        return Err(RedactError::Config(format!(
            "{} rules in force, at most {MAX_RULES} are supported",
            rules.len()
        )));
    }
    Ok(rules)
}

fn compile_rule(rule: &RuleConfig) -> Result<Rule> {
    let name = rule.name.as_str();
    if name.trim().is_empty() {
        return Err(RedactError::rule(name, "a rule needs a `name`"));
    }
    let detector = match &rule.detector {
        None => None,
        Some(d) => Some(Detector::from_name(d).ok_or_else(|| {
            let known: Vec<&str> = Detector::ALL.iter().map(|d| d.as_str()).collect();
            RedactError::rule(
                name,
                format!("unknown detector `{d}` (known: {})", known.join(", ")),
            )
        })?),
    };
    let keys = key_pattern(rule)?;
    if keys.is_none() && detector.is_none() {
        return Err(RedactError::rule(
            name,
            "matches nothing: give `keys`, `key_globs`, `key_regex` or `detector`",
        ));
    }
    let action = match rule.action.as_str() {
        "drop" => Action::Drop,
        "mask" => Action::Mask {
            keep_last: rule.keep_last,
        },
        "hash" => {
            let encoding = rule.encoding.as_deref().unwrap_or("hex");
            Action::Hash(Encoding::from_name(encoding).ok_or_else(|| {
                RedactError::rule(
                    name,
                    format!("unknown encoding `{encoding}` (expected hex or base64)"),
                )
            })?)
        }
        "" => {
            return Err(RedactError::rule(
                name,
                "a rule needs an `action` (drop, mask or hash)",
            ));
        }
        other => {
            return Err(RedactError::rule(
                name,
                format!("unknown action `{other}` (expected drop, mask or hash)"),
            ));
        }
    };
    if rule.keep_last > 0 && !matches!(action, Action::Mask { .. }) {
        return Err(RedactError::rule(
            name,
            "`keep_last` applies to `mask` only",
        ));
    }
    if rule.encoding.is_some() && !matches!(action, Action::Hash(_)) {
        return Err(RedactError::rule(name, "`encoding` applies to `hash` only"));
    }
    Ok(Rule {
        name: name.to_string(),
        keys,
        detector,
        action,
    })
}

fn key_pattern(rule: &RuleConfig) -> Result<Option<KeyPattern>> {
    let mut alternatives: Vec<String> = rule.key_globs.iter().map(|g| glob_regex(g)).collect();
    if let Some(regex) = &rule.key_regex {
        alternatives.push(format!("(?:{regex})"));
    }
    let regex = if alternatives.is_empty() {
        None
    } else {
        let glob_count = rule.key_globs.len();
        let text = alternatives
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i < glob_count {
                    format!("(?i:^{a}$)")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("|");
        Some(
            Regex::new(&text)
                .map_err(|e| RedactError::rule(&rule.name, format!("invalid key pattern: {e}")))?,
        )
    };
    if regex.is_none() && rule.keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(KeyPattern {
        exact: rule.keys.clone(),
        regex,
    }))
}

/// A glob as a regular expression: `*` any run, `?` one character, the
/// rest literal.
fn glob_regex(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}
