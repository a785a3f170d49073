//! Errors of rule loading: every mistake with its file, line and column.

use std::fmt;
use std::path::PathBuf;

/// What is wrong at one place of a rule file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// The file is larger than [`crate::rule::MAX_RULE_FILE_BYTES`].
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The text is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A file must hold exactly one YAML document, a mapping.
    #[error("{0}")]
    Document(String),
    /// A key the rule format does not know (never ignored: a typo would
    /// silently change what the rule does).
    #[error("unknown key `{key}` (expected one of: {allowed})")]
    UnknownKey { key: String, allowed: String },
    /// A key that exists in the format but not for this kind of rule.
    #[error("key `{key}` is not valid for kind `{kind}`")]
    KeyNotForKind { key: String, kind: String },
    /// A required key is absent.
    #[error("missing required key `{0}`")]
    MissingKey(&'static str),
    /// A key has a value of the wrong YAML type.
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    /// Two rule files share an id.
    #[error("duplicate rule id `{id}` (also defined in {first})")]
    DuplicateId { id: String, first: String },
    /// An id with characters outside `[A-Za-z0-9._-]` or too long.
    #[error("invalid id `{0}`: use 1 to 128 of A-Z a-z 0-9 . _ - starting with a letter or digit")]
    BadId(String),
    #[error("unknown severity `{0}` (expected one of: info, low, medium, high, critical)")]
    BadSeverity(String),
    /// A tag that is not a MITRE ATT&CK technique id.
    #[error("invalid tag `{0}`: expected a MITRE ATT&CK technique id such as T1110 or T1110.003")]
    BadTag(String),
    #[error("invalid duration `{text}`: {reason}")]
    BadDuration { text: String, reason: &'static str },
    #[error(
        "unknown kind `{0}` (expected one of: match, threshold, sequence, new_terms, baseline, topology, data_flow)"
    )]
    UnknownKind(String),
    /// The TraceQL of a condition does not parse; the position of the error
    /// is mapped onto the YAML file.
    #[error("TraceQL: {0}")]
    TraceQl(String),
    /// A field of `group_by` or `distinct` that cannot be read from a span.
    #[error("invalid field `{field}`: {reason}")]
    BadField { field: String, reason: String },
    /// A `payload.detect` entry that names no detector.
    #[error("unknown detector `{name}` (expected one of: {allowed})")]
    UnknownDetector { name: String, allowed: String },
    /// A `$name` in a condition that names no site fact.
    #[error("{0}")]
    SiteFact(crate::rule::UnknownFact),
    /// Any other value out of its allowed range.
    #[error("invalid `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

/// One mistake in one rule file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub file: PathBuf,
    /// 1-based line; 0 when the mistake concerns the whole file.
    pub line: usize,
    /// 1-based column, in characters; 0 when unknown.
    pub column: usize,
    pub kind: RuleErrorKind,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A mistake about the whole file (or directory) has no position.
        if self.line == 0 {
            return write!(f, "{}: {}", self.file.display(), self.kind);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.kind
        )
    }
}

/// Every mistake found while loading rules (never only the first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<RuleError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error(s) in rule files", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}
