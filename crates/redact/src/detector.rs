//! Value detectors: where a secret sits inside a string value.
//!
//! Each detector returns the byte range to replace, as narrow as the format
//! allows (the value of `password=` but not the name, the token after
//! `Bearer ` but not the scheme), so the rest of the value stays readable
//! and detection rules on it keep working.
//!
//! Most detectors are anchored on a literal that every match contains
//! ("trigger": `eyJ` for a JWT, `AKIA` for an AWS key id, `password` for a
//! parameter); the redactor finds all triggers of all rules with one
//! Aho-Corasick scan per value and asks a detector only where its trigger
//! is. Card numbers and e-mail addresses have no literal: they reuse the
//! personal-data scanners of `tracewarden-detect` (Luhn and issuer checks
//! for cards), behind a cheap prefilter (13 digits, an `@`).

use base64::Engine as _;
use tracewarden_detect::pii::{self, PiiKind, PiiKinds};

/// A kind of secret found inside values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Detector {
    /// The credentials of `Bearer <token>` and `Basic <base64 user:password>`.
    Bearer,
    /// A JSON Web Token (`eyJ...` `.` `eyJ...` `.` signature).
    Jwt,
    /// The value of a secret-named parameter (`password=`, `token=`,
    /// `"api_key": "..."`) and the password of `scheme://user:password@host`.
    SecretParam,
    /// A payment card number with a valid Luhn check digit and issuer prefix.
    PaymentCard,
    /// An e-mail address.
    Email,
    /// An AWS access key id (`AKIA...`, `ASIA...`).
    AwsAccessKey,
    /// A GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// A Slack token (`xoxb-`, `xoxp-`, `xoxa-`, `xoxs-`).
    SlackToken,
    /// A Stripe live secret or restricted key (`sk_live_`, `rk_live_`).
    StripeKey,
    /// A Google API key (`AIza` and 35 characters).
    GoogleApiKey,
    /// A PEM private key block, `-----BEGIN ... PRIVATE KEY-----` to its END line.
    PrivateKey,
}

/// Parameter names whose value is a secret (matched ASCII
/// case-insensitively, at a word start, before `=` or `:`).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "auth",
    "signature",
    "credential",
    "credentials",
    "session_id",
    "sessionid",
];

impl Detector {
    pub const ALL: [Detector; 11] = [
        Detector::Bearer,
        Detector::Jwt,
        Detector::SecretParam,
        Detector::PaymentCard,
        Detector::Email,
        Detector::AwsAccessKey,
        Detector::GithubToken,
        Detector::SlackToken,
        Detector::StripeKey,
        Detector::GoogleApiKey,
        Detector::PrivateKey,
    ];

    /// The name configuration uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Bearer => "bearer",
            Detector::Jwt => "jwt",
            Detector::SecretParam => "secret_param",
            Detector::PaymentCard => "payment_card",
            Detector::Email => "email",
            Detector::AwsAccessKey => "aws_access_key",
            Detector::GithubToken => "github_token",
            Detector::SlackToken => "slack_token",
            Detector::StripeKey => "stripe_key",
            Detector::GoogleApiKey => "google_api_key",
            Detector::PrivateKey => "private_key",
        }
    }

    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The literals every match contains: exactly, or ASCII
    /// case-insensitively when [`Detector::folds_case`]; empty for the
    /// scanning detectors.
    pub(crate) fn triggers(self) -> &'static [&'static str] {
        match self {
            Detector::Bearer => &["bearer ", "basic "],
            Detector::Jwt => &["eyJ"],
            Detector::SecretParam => &[],
            Detector::PaymentCard | Detector::Email => &[],
            Detector::AwsAccessKey => &["AKIA", "ASIA"],
            Detector::GithubToken => &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            Detector::SlackToken => &["xoxb-", "xoxp-", "xoxa-", "xoxs-"],
            Detector::StripeKey => &["sk_live_", "rk_live_"],
            Detector::GoogleApiKey => &["AIza"],
            Detector::PrivateKey => &["-----BEGIN "],
        }
    }

    /// Whether the triggers match in any ASCII case (`Bearer`, `PASSWORD=`);
    /// the others are searched exactly, which is faster.
    pub(crate) fn folds_case(self) -> bool {
        matches!(self, Detector::Bearer | Detector::SecretParam)
    }

    /// Triggers including the secret parameter names (kept apart so the
    /// list above stays readable).
    pub(crate) fn all_triggers(self) -> Vec<&'static str> {
        match self {
            Detector::SecretParam => {
                let mut all = SECRET_PARAMS.to_vec();
                all.push("://");
                all
            }
            other => other.triggers().to_vec(),
        }
    }

    /// The byte classes ([`Profile`]) every match needs: a value lacking
    /// one is skipped without searching it.
    pub(crate) fn required(self) -> u16 {
        match self {
            Detector::Bearer => class::SPACE | class::LETTER_B,
            Detector::Jwt => class::DOT | class::UPPER_J,
            Detector::SecretParam => class::EQ_COLON,
            Detector::AwsAccessKey | Detector::GoogleApiKey => class::UPPER_A | class::UPPER_I,
            Detector::GithubToken | Detector::StripeKey => class::UNDERSCORE,
            Detector::SlackToken => class::DASH | class::LOWER_X,
            Detector::PrivateKey => class::DASH | class::SPACE | class::LETTER_B,
            Detector::Email => class::AT,
            // Gated by the digit run instead.
            Detector::PaymentCard => 0,
        }
    }

    /// Whether the detector scans values itself instead of using triggers.
    pub(crate) fn scans(self) -> bool {
        matches!(self, Detector::PaymentCard | Detector::Email)
    }

    /// The range to replace, given trigger `at..at + len` in `text`.
    pub(crate) fn at_trigger(self, text: &[u8], at: usize, len: usize) -> Option<(usize, usize)> {
        let after = at + len;
        match self {
            Detector::Bearer => bearer(text, at, after),
            Detector::Jwt => jwt(text, at),
            Detector::SecretParam if text.get(at) == Some(&b':') => userinfo_password(text, after),
            Detector::SecretParam => secret_param(text, at, after),
            Detector::AwsAccessKey => {
                exact(text, at, &[b"AKIA", b"ASIA"])?;
                fixed_token(text, at, after, 16, |b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit()
                })
            }
            Detector::GithubToken => {
                // Triggers match case-insensitively; token prefixes are lowercase.
                if text.get(at..after)?.iter().any(u8::is_ascii_uppercase) {
                    return None;
                }
                let fine_grained = after - at == "github_pat_".len();
                if fine_grained {
                    min_token(text, at, after, 22, |b| {
                        b.is_ascii_alphanumeric() || b == b'_'
                    })
                } else {
                    fixed_token(text, at, after, 36, |b| b.is_ascii_alphanumeric())
                }
            }
            Detector::SlackToken | Detector::StripeKey => {
                if text.get(at..after)?.iter().any(u8::is_ascii_uppercase) {
                    return None;
                }
                min_token(text, at, after, 10, |b| {
                    b.is_ascii_alphanumeric() || (self == Detector::SlackToken && b == b'-')
                })
            }
            Detector::GoogleApiKey => {
                exact(text, at, &[b"AIza"])?;
                fixed_token(text, at, after, 35, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
                })
            }
            Detector::PrivateKey => private_key(text, at, after),
            Detector::PaymentCard | Detector::Email => None,
        }
    }

    /// Every range the scanning detectors find in `text`.
    pub(crate) fn scan(self, text: &str, found: &mut impl FnMut(usize, usize)) {
        let kind = match self {
            Detector::PaymentCard => PiiKind::PaymentCard,
            Detector::Email => PiiKind::Email,
            _ => return,
        };
        let kinds = PiiKinds::NONE.with(kind);
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(rest) = bytes.get(from..)
            && let Some((_, start, end)) = pii::scan(rest, kinds)
        {
            found(from + start, from + end);
            from += end.max(start + 1);
        }
    }
}

/// Classes of bytes that matches need, as bits of [`Profile::present`];
/// the two high bits of the table drive the digit-run count.
pub(crate) mod class {
    pub const EQ_COLON: u16 = 1;
    pub const SPACE: u16 = 1 << 1;
    pub const DOT: u16 = 1 << 2;
    pub const UPPER_J: u16 = 1 << 3;
    pub const UPPER_A: u16 = 1 << 4;
    pub const UNDERSCORE: u16 = 1 << 5;
    pub const DASH: u16 = 1 << 6;
    pub const AT: u16 = 1 << 7;
    /// `b` or `B` (`Bearer`, `Basic`, `BEGIN`).
    pub const LETTER_B: u16 = 1 << 8;
    /// `x` (`xoxb-`).
    pub const LOWER_X: u16 = 1 << 9;
    /// `I` (`AKIA`, `ASIA`, `AIza`).
    pub const UPPER_I: u16 = 1 << 10;
    /// Bits of the classes above: [`Profile::present`] has no others.
    pub const CLASSES: u16 = (1 << 11) - 1;
    pub(super) const DIGIT: u16 = 1 << 14;
    /// Spaces and dashes between the digit groups of a card number.
    pub(super) const GROUP_SEPARATOR: u16 = 1 << 15;

    pub(super) const TABLE: [u16; 256] = {
        let mut table = [0u16; 256];
        table[b'=' as usize] = EQ_COLON;
        table[b':' as usize] = EQ_COLON;
        table[b' ' as usize] = SPACE | GROUP_SEPARATOR;
        table[b'.' as usize] = DOT;
        table[b'J' as usize] = UPPER_J;
        table[b'A' as usize] = UPPER_A;
        table[b'_' as usize] = UNDERSCORE;
        table[b'-' as usize] = DASH | GROUP_SEPARATOR;
        table[b'@' as usize] = AT;
        table[b'b' as usize] = LETTER_B;
        table[b'B' as usize] = LETTER_B;
        table[b'x' as usize] = LOWER_X;
        table[b'I' as usize] = UPPER_I;
        let mut digit = b'0';
        while digit <= b'9' {
            table[digit as usize] = DIGIT;
            digit += 1;
        }
        table
    };
}

/// What one pass over a value's bytes tells the redactor: which byte
/// classes occur, and whether a run of digits, spaces and dashes is long
/// enough to be a card number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    pub present: u16,
    pub card_run: bool,
}

/// Digits a card number has at least.
pub(crate) const CARD_MIN_DIGITS: usize = 13;

impl Profile {
    pub(crate) fn of(text: &[u8]) -> Profile {
        // This runs on every string value. First the classes alone: one
        // load and one OR a byte, with nothing carried but the OR, so the
        // bytes pipeline.
        let mut present = 0u16;
        for &b in text {
            present |= class::TABLE[usize::from(b)];
        }
        // Then, only for a value that has a digit and could hold a card
        // number at all, whether a run of digits and separators is long
        // enough (most values have no digit, or are shorter).
        let card_run = present & class::DIGIT != 0
            && text.len() >= CARD_MIN_DIGITS
            && has_group_run(text, CARD_MIN_DIGITS);
        Profile {
            present: present & class::CLASSES,
            card_run,
        }
    }

    /// Whether `detector` can match a value of this profile (the
    /// redactor precomputes this per rule set; tests ask directly).
    #[cfg(test)]
    pub(crate) fn admits(self, detector: Detector) -> bool {
        match detector {
            Detector::PaymentCard => self.card_run,
            other => self.present & other.required() == other.required(),
        }
    }
}

/// Whether `text` holds a run of at least `len` digits and group
/// separators (separators count too: a loose bound, the card scanner
/// checks); stops at the first such run.
fn has_group_run(text: &[u8], len: usize) -> bool {
    let mut run = 0usize;
    for &b in text {
        let grouped = class::TABLE[usize::from(b)] & (class::DIGIT | class::GROUP_SEPARATOR) != 0;
        run = if grouped { run + 1 } else { 0 };
        if run >= len {
            return true;
        }
    }
    false
}

/// Whether a word may start at `at`: the previous byte is no letter or digit.
fn word_start(text: &[u8], at: usize) -> bool {
    at == 0 || !text.get(at - 1).is_some_and(u8::is_ascii_alphanumeric)
}

/// The trigger at `at`, exactly as one of `spellings` (case-sensitive).
fn exact(text: &[u8], at: usize, spellings: &[&[u8]]) -> Option<()> {
    let found = spellings
        .iter()
        .any(|s| text.get(at..at + s.len()) == Some(*s));
    found.then_some(())
}

/// `at..after` followed by exactly `count` bytes of `class`, as a whole word.
fn fixed_token(
    text: &[u8],
    at: usize,
    after: usize,
    count: usize,
    class: impl Fn(u8) -> bool,
) -> Option<(usize, usize)> {
    let end = run(text, after, &class);
    (word_start(text, at) && end - after == count).then_some((at, end))
}

/// `at..after` followed by at least `count` bytes of `class`, as a word start.
fn min_token(
    text: &[u8],
    at: usize,
    after: usize,
    count: usize,
    class: impl Fn(u8) -> bool,
) -> Option<(usize, usize)> {
    let end = run(text, after, &class);
    (word_start(text, at) && end - after >= count).then_some((at, end))
}

/// The end of the run of `class` bytes starting at `from`.
fn run(text: &[u8], from: usize, class: &impl Fn(u8) -> bool) -> usize {
    let mut end = from;
    while text.get(end).is_some_and(|&b| class(b)) {
        end += 1;
    }
    end
}

fn bearer(text: &[u8], at: usize, after: usize) -> Option<(usize, usize)> {
    if !word_start(text, at) {
        return None;
    }
    let start = run(text, after, &|b| b == b' ');
    let end = run(text, start, &|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
    });
    let end = run(text, end, &|b| b == b'=');
    let token = text.get(start..end)?;
    if token.len() < 8 {
        return None;
    }
    let basic = text
        .get(at + 1)
        .is_some_and(|b| b.eq_ignore_ascii_case(&b'a'));
    if basic {
        // "Basic" is also an English word: only a base64 `user:password` counts.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        if !decoded.contains(&b':') {
            return None;
        }
    }
    Some((start, end))
}

fn jwt(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    exact(text, at, &[b"eyJ"])?;
    if at > 0 && text.get(at - 1).is_some_and(|&b| b64url(b)) {
        return None;
    }
    let header_end = run(text, at, &b64url);
    if header_end - at < 10 || text.get(header_end) != Some(&b'.') {
        return None;
    }
    let payload = header_end + 1;
    if text.get(payload..payload + 2) != Some(b"ey") {
        return None;
    }
    let payload_end = run(text, payload, &b64url);
    if payload_end - payload < 4 || text.get(payload_end) != Some(&b'.') {
        return None;
    }
    Some((at, run(text, payload_end + 1, &b64url)))
}

/// The value after a secret-named parameter: `name=value`, `name: value`,
/// `"name": "value"`.
fn secret_param(text: &[u8], at: usize, after: usize) -> Option<(usize, usize)> {
    if !word_start(text, at) {
        return None;
    }
    let mut i = after;
    if matches!(text.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    i = run(text, i, &|b| b == b' ');
    if !matches!(text.get(i), Some(b'=' | b':')) {
        return None;
    }
    i = run(text, i + 1, &|b| b == b' ');
    let (start, end) = match text.get(i) {
        Some(&quote @ (b'"' | b'\'')) => {
            let start = i + 1;
            (start, run(text, start, &|b| b != quote))
        }
        _ => (
            i,
            run(text, i, &|b| {
                !matches!(
                    b,
                    b'&' | b' '
                        | b'\t'
                        | b'\n'
                        | b'\r'
                        | b'"'
                        | b'\''
                        | b','
                        | b';'
                        | b'}'
                        | b')'
                        | b']'
                        | b'<'
                        | b'#'
                )
            }),
        ),
    };
    (end > start).then_some((start, end))
}

/// The password of `scheme://user:password@host`, given the end of `://`.
fn userinfo_password(text: &[u8], after: usize) -> Option<(usize, usize)> {
    let authority_end = run(text, after, &|b| {
        !matches!(b, b'/' | b'?' | b'#' | b' ' | b'\n' | b'"' | b'\'')
    });
    let authority = text.get(after..authority_end)?;
    let at_sign = authority.iter().rposition(|&b| b == b'@')?;
    let colon = authority.get(..at_sign)?.iter().position(|&b| b == b':')?;
    (at_sign > colon + 1).then_some((after + colon + 1, after + at_sign))
}

fn private_key(text: &[u8], at: usize, after: usize) -> Option<(usize, usize)> {
    const LABEL_END: &[u8] = b"PRIVATE KEY-----";
    let line_end = run(text, after, &|b| b != b'\n' && b != b'\r');
    let line = text.get(after..line_end)?;
    let label = line.windows(LABEL_END.len()).position(|w| w == LABEL_END)?;
    let body = after + label + LABEL_END.len();
    let end = find(text, body, b"-----END ")
        .and_then(|end| find(text, end + 9, b"-----").map(|close| close + 5))
        .unwrap_or(text.len());
    Some((at, end))
}

fn find(text: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    text.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `detector` finds in `text`, via its triggers or its scan.
    fn found(detector: Detector, text: &str) -> Vec<String> {
        let mut ranges = Vec::new();
        if !Profile::of(text.as_bytes()).admits(detector) {
            return Vec::new();
        }
        if detector.scans() {
            detector.scan(text, &mut |s, e| ranges.push((s, e)));
        } else {
            let haystack = if detector.folds_case() {
                text.to_ascii_lowercase()
            } else {
                text.to_string()
            };
            for trigger in detector.all_triggers() {
                let mut from = 0;
                while let Some(i) = haystack.get(from..).and_then(|t| t.find(trigger)) {
                    let at = from + i;
                    if let Some(range) = detector.at_trigger(text.as_bytes(), at, trigger.len()) {
                        ranges.push(range);
                    }
                    from = at + 1;
                }
            }
        }
        ranges.sort();
        ranges.dedup();
        ranges
            .into_iter()
            .map(|(s, e)| {
                text.get(s..e)
                    .unwrap_or("<not a char boundary>")
                    .to_string()
            })
            .collect()
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz";

    #[test]
    fn positives() {
        let cases: &[(Detector, &str, &str)] = &[
            (Detector::Bearer, "Bearer abcdef123456", "abcdef123456"),
            (
                Detector::Bearer,
                "authorization: bearer  tok_ABC.123-x",
                "tok_ABC.123-x",
            ),
            (
                Detector::Bearer,
                "Basic dXNlcjpodW50ZXIy",
                "dXNlcjpodW50ZXIy",
            ),
            (Detector::Jwt, JWT, JWT),
            (Detector::Jwt, &format!("token {JWT} expired"), JWT),
            (
                Detector::SecretParam,
                "user=ann&password=hunter2&next=/",
                "hunter2",
            ),
            (Detector::SecretParam, "PWD=x1;path=/", "x1"),
            (Detector::SecretParam, "access_token=abc&x=1", "abc"),
            (
                Detector::SecretParam,
                r#"{"user":"ann","password": "p a s s"}"#,
                "p a s s",
            ),
            (Detector::SecretParam, "client_secret=s3cr3t", "s3cr3t"),
            (Detector::SecretParam, "X-Amz-Signature=abcdef", "abcdef"),
            (
                Detector::SecretParam,
                "postgres://app:hunter2@db:5432/x",
                "hunter2",
            ),
            (
                Detector::PaymentCard,
                "card 4111 1111 1111 1111 ok",
                "4111 1111 1111 1111",
            ),
            (
                Detector::Email,
                "from jane.doe@example.com today",
                "jane.doe@example.com",
            ),
            (
                Detector::AwsAccessKey,
                "key=AKIAIOSFODNN7EXAMPLE",
                "AKIAIOSFODNN7EXAMPLE",
            ),
            (
                Detector::GithubToken,
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            ),
            (
                Detector::GithubToken,
                "github_pat_11ABCDEFG0123456789_abcdefghijkl",
                "github_pat_11ABCDEFG0123456789_abcdefghijkl",
            ),
            (
                Detector::SlackToken,
                "xoxb-1234567890-abcdefghij",
                "xoxb-1234567890-abcdefghij",
            ),
            (
                Detector::StripeKey,
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            ),
            (
                Detector::GoogleApiKey,
                "k=AIzaSyA1234567890abcdefghijklmnopqrstuv",
                "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            ),
            (
                Detector::PrivateKey,
                "x -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- y",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            ),
        ];
        for (detector, text, secret) in cases {
            assert_eq!(
                found(*detector, text),
                vec![secret.to_string()],
                "{detector:?} in {text}"
            );
        }
    }

    #[test]
    fn negatives() {
        let cases: &[(Detector, &str)] = &[
            (Detector::Bearer, "Bearer short"),
            (Detector::Bearer, "basic information about the plan"),
            (Detector::Jwt, "eyJust a word"),
            (Detector::SecretParam, "passport=X123&tokens=5"),
            (Detector::SecretParam, "password=&next=/"),
            (Detector::SecretParam, "https://example.com/login?user=ann"),
            (Detector::SecretParam, "mytoken"),
            (Detector::PaymentCard, "order 4111111111111112 (not Luhn)"),
            (Detector::PaymentCard, "ts=1767225600000000000"),
            (Detector::Email, "lodash@4.17.21"),
            (Detector::AwsAccessKey, "akiaiosfodnn7example"),
            (Detector::AwsAccessKey, "AKIAIOSFODNN7EXAMPLEX"),
            (Detector::GithubToken, "ghp_short"),
            (Detector::SlackToken, "xoxb-short"),
            (Detector::StripeKey, "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
            (Detector::GoogleApiKey, "AIzaShort"),
            (Detector::PrivateKey, "-----BEGIN PUBLIC KEY-----\nMIIB"),
        ];
        for (detector, text) in cases {
            assert_eq!(
                found(*detector, text),
                Vec::<String>::new(),
                "{detector:?} in {text}"
            );
        }
    }

    #[test]
    fn profiles() {
        let p = Profile::of(b"Basic card 4111 1111-1111 1111 x");
        assert!(p.card_run);
        assert!(p.admits(Detector::PaymentCard) && p.admits(Detector::Bearer));
        assert!(!p.admits(Detector::SecretParam) && !p.admits(Detector::Jwt));
        let hex = Profile::of(b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(!hex.card_run);
        assert_eq!(Profile::of(b"/api/v1/orders").present, 0);
        assert!(Profile::of(b"a@b.c").admits(Detector::Email));
    }

    #[test]
    fn a_card_run_is_thirteen_digits_and_separators_in_a_row_with_a_digit() {
        let cases: &[(&[u8], bool)] = &[
            (b"123456789012", false),
            (b"1234567890123", true),
            (b"id=1234567890123&x", true),
            (b"1234567890.123456", false),
            (b"1234 5678-9012 3", true),
            (b"1234 5678-90x 12345", false),
            // Separators count (a loose bound), but a digit must be there.
            (b"------------- 1", true),
            (b"-------------", false),
            (b"", false),
        ];
        for (text, card_run) in cases {
            assert_eq!(
                Profile::of(text).card_run,
                *card_run,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for detector in Detector::ALL {
            assert_eq!(Detector::from_name(detector.as_str()), Some(detector));
        }
        assert_eq!(Detector::from_name("ssn"), None);
    }
}
