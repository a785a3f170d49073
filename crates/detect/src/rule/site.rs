//! Site facts: what differs from one deployment to the next (login and
//! admin routes, entry services, third parties, allowed edges and
//! countries), kept in one config section that rules reference instead of
//! repeating.
//!
//! A rule condition names a fact as `$name`, outside string literals:
//!
//! ```text
//! { span.http.route =~ $login_routes && span.http.response.status_code = 401 }
//! ```
//!
//! Before the TraceQL is parsed, `$name` becomes one quoted regular
//! expression: the fact's patterns joined by `|` (facts that are regexes,
//! such as routes) or its values escaped and joined (facts that are plain
//! values, such as service names). So facts are used with `=~` and `!~`.
//!
//! A rule that references a fact the site leaves empty does not run: an
//! empty list would make `=~` never hold and `!~` always hold, so a policy
//! nobody configured (say, allowed countries) would otherwise either stay
//! silent while looking active or fire on every span. Such a rule loads and
//! lints, and says why it is inactive ([`crate::rule::Rule::inactive`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The site facts rules may reference. Deserialised from the
/// `[detection.site]` section of the server config; every field has a
/// default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Site {
    /// Login and token routes (`http.route` or `url.path`), as regexes
    /// matched against the whole value.
    pub login_routes: Vec<String>,
    /// Administrative routes, as regexes.
    pub admin_routes: Vec<String>,
    /// Roles (`user.roles` values) allowed on admin routes; compared
    /// case-insensitively, with or without Spring Security's `ROLE_` prefix.
    pub admin_roles: Vec<String>,
    /// Services reached from outside (`service.name`): the only ones a
    /// request may enter by. Empty: not declared (topology rules learn
    /// them, or do not run).
    pub entry_services: Vec<String>,
    /// Third parties: services (`service.name`, `peer.service`) or hosts
    /// (`server.address`) outside the organisation, as regexes.
    pub third_parties: Vec<String>,
    /// Caller -> callee service pairs allowed, written `caller -> callee`.
    pub allowed_edges: Vec<String>,
    /// ISO 3166-1 alpha-2 country codes clients may come from. Empty: no
    /// policy.
    pub allowed_countries: Vec<String>,
    /// Internal and cloud-metadata addresses a server-side request should
    /// not be steered to (SSRF), as regexes over `server.address`.
    pub internal_addresses: Vec<String>,
    /// Origins (`scheme://host[:port]`) the site's own pages are served
    /// from, as regexes; requests from other origins are cross-site.
    pub trusted_origins: Vec<String>,
}

impl Default for Site {
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_string()).collect();
        Site {
            login_routes: strings(&[
                r"(?i).*(login|log-in|signin|sign-in|sign_in|logon|authenticate|auth/token|oauth2?/token|/session|/sessions).*",
            ]),
            admin_routes: strings(&[
                r"(?i)(.*/)?(admin|administrator|wp-admin|manage|management|actuator|console|internal)(/.*)?",
            ]),
            admin_roles: strings(&["admin", "administrator", "root", "superuser"]),
            entry_services: Vec::new(),
            third_parties: Vec::new(),
            allowed_edges: Vec::new(),
            allowed_countries: Vec::new(),
            internal_addresses: strings(&[
                // Cloud instance metadata (AWS, GCP, Azure, OpenStack;
                // Alibaba; AWS over IPv6).
                r"169\.254\.169\.254",
                r"(?i)metadata\.google\.internal",
                r"100\.100\.100\.200",
                r"(?i)\[?fd00:ec2::254\]?",
                // Loopback, link-local and RFC 1918 private ranges, also
                // as IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`, what a
                // dual-stack Node.js server reports as the peer, or
                // `[::ffff:a00:5]` in a URL).
                r"(?i)localhost",
                r"(?i)\[?(::ffff:)?127(\.\d{1,3}){1,3}\]?",
                r"(?i)\[?(::ffff:)?0\.0\.0\.0\]?",
                r"(?i)\[?(::ffff:)?169\.254(\.\d{1,3}){2}\]?",
                r"(?i)\[?(::ffff:)?10(\.\d{1,3}){3}\]?",
                r"(?i)\[?(::ffff:)?192\.168(\.\d{1,3}){2}\]?",
                r"(?i)\[?(::ffff:)?172\.(1[6-9]|2\d|3[01])(\.\d{1,3}){2}\]?",
                // RFC 6598 shared address space 100.64.0.0/10: carrier NAT,
                // and pod ranges (EKS custom networking, GKE, Tailscale).
                r"(?i)\[?(::ffff:)?100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])(\.\d{1,3}){2}\]?",
                r"(?i)\[?::ffff:(7f[0-9a-f]{2}|0?a[0-9a-f]{2}|a9fe|c0a8|ac1[0-9a-f]|0):[0-9a-f]{1,4}\]?",
                // 127.0.0.1 as one number, decimal or hex (URL parsers and
                // inet_aton accept them).
                r"(?i)2130706433|0x0*7f000001",
                // IPv6 loopback and unspecified address, unique local
                // (fc00::/7) and link-local (fe80::/10, with a zone).
                r"(?i)\[?(0{1,4}:){7}0{0,3}1\]?",
                r"\[?::1?\]?",
                r"(?i)\[?f[cd][0-9a-f]{2}:[0-9a-f:]*\]?",
                r"(?i)\[?fe[89ab][0-9a-f]:[0-9a-f:]*(%[^\]]*)?\]?",
            ]),
            trusted_origins: Vec::new(),
        }
    }
}

/// How a fact's values become one regex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FactForm {
    /// The values are regexes: joined as alternatives.
    Patterns,
    /// The values are literal: escaped, then joined.
    Literals,
    /// Role names: literal, compared case-insensitively and also with
    /// Spring Security's `ROLE_` prefix (`Admin`, `ROLE_ADMIN` are `admin`).
    Roles,
}

/// The facts a condition can name, with their form.
pub const FACT_NAMES: [&str; 9] = [
    "login_routes",
    "admin_routes",
    "admin_roles",
    "entry_services",
    "third_parties",
    "allowed_edges",
    "allowed_countries",
    "internal_addresses",
    "trusted_origins",
];

impl Site {
    /// A site with every fact empty (every rule that names a fact inactive).
    pub fn empty() -> Site {
        Site {
            login_routes: Vec::new(),
            admin_routes: Vec::new(),
            admin_roles: Vec::new(),
            entry_services: Vec::new(),
            third_parties: Vec::new(),
            allowed_edges: Vec::new(),
            allowed_countries: Vec::new(),
            internal_addresses: Vec::new(),
            trusted_origins: Vec::new(),
        }
    }

    /// Replaces the values of the fact `name` (fixtures set facts this way).
    pub fn set(&mut self, name: &str, values: Vec<String>) -> Result<(), UnknownFact> {
        let slot = match name {
            "login_routes" => &mut self.login_routes,
            "admin_routes" => &mut self.admin_routes,
            "admin_roles" => &mut self.admin_roles,
            "entry_services" => &mut self.entry_services,
            "third_parties" => &mut self.third_parties,
            "allowed_edges" => &mut self.allowed_edges,
            "allowed_countries" => &mut self.allowed_countries,
            "internal_addresses" => &mut self.internal_addresses,
            "trusted_origins" => &mut self.trusted_origins,
            _ => return Err(UnknownFact(name.to_string())),
        };
        *slot = values;
        Ok(())
    }

    fn fact(&self, name: &str) -> Option<(&[String], FactForm)> {
        use FactForm::{Literals, Patterns, Roles};
        Some(match name {
            "login_routes" => (&self.login_routes, Patterns),
            "admin_routes" => (&self.admin_routes, Patterns),
            "admin_roles" => (&self.admin_roles, Roles),
            "entry_services" => (&self.entry_services, Literals),
            "third_parties" => (&self.third_parties, Patterns),
            "allowed_edges" => (&self.allowed_edges, Literals),
            "allowed_countries" => (&self.allowed_countries, Literals),
            "internal_addresses" => (&self.internal_addresses, Patterns),
            "trusted_origins" => (&self.trusted_origins, Patterns),
            _ => return None,
        })
    }

    /// The regex a fact expands to, or `None` when the site leaves it empty.
    /// Unknown names are `Err`.
    pub fn regex(&self, name: &str) -> Result<Option<String>, UnknownFact> {
        let (values, form) = self
            .fact(name)
            .ok_or_else(|| UnknownFact(name.to_string()))?;
        if values.is_empty() {
            return Ok(None);
        }
        let mut regex = String::from(match form {
            FactForm::Roles => "(?i:(?:ROLE_)?(?:",
            FactForm::Patterns | FactForm::Literals => "(?:",
        });
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                regex.push('|');
            }
            match form {
                FactForm::Patterns => {
                    let _ = write!(regex, "(?:{value})");
                }
                FactForm::Literals | FactForm::Roles => regex.push_str(&regex::escape(value)),
            }
        }
        regex.push(')');
        if form == FactForm::Roles {
            regex.push(')');
        }
        Ok(Some(regex))
    }

    /// Problems with the facts themselves: patterns that are not valid
    /// regexes, edges not written `caller -> callee`, countries that are
    /// not two letters. Each entry names the fact and the value.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for name in FACT_NAMES {
            let Some((values, form)) = self.fact(name) else {
                continue;
            };
            for value in values {
                if form == FactForm::Patterns
                    && let Err(e) = regex::Regex::new(value)
                {
                    problems.push(format!("site.{name}: `{value}` is not a regex: {e}"));
                }
                if value.trim().is_empty() {
                    problems.push(format!("site.{name}: an empty value"));
                }
            }
        }
        for edge in &self.allowed_edges {
            if parse_edge(edge).is_none() {
                problems.push(format!(
                    "site.allowed_edges: `{edge}` is not written `caller -> callee`"
                ));
            }
        }
        for country in &self.allowed_countries {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                problems.push(format!(
                    "site.allowed_countries: `{country}` is not an ISO 3166-1 alpha-2 code such as DE"
                ));
            }
        }
        problems
    }

    /// The allowed edges as (caller, callee) pairs; malformed entries are
    /// left out (see [`Site::validate`]).
    pub fn edges(&self) -> Vec<(String, String)> {
        self.allowed_edges
            .iter()
            .filter_map(|e| parse_edge(e))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

/// `caller -> callee`, both non-empty after trimming.
pub(crate) fn parse_edge(edge: &str) -> Option<(&str, &str)> {
    let (caller, callee) = edge.split_once("->")?;
    let (caller, callee) = (caller.trim(), callee.trim());
    (!caller.is_empty() && !callee.is_empty() && !callee.contains("->")).then_some((caller, callee))
}

/// A `$name` that names no fact.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown site fact `${0}` (expected one of: {names})", names = FACT_NAMES.map(|n| format!("${n}")).join(", "))]
pub struct UnknownFact(pub String);

/// A condition with its `$facts` replaced, and how to map positions in the
/// result back onto the original.
#[derive(Debug)]
pub(crate) struct Expanded {
    pub text: String,
    /// The referenced facts the site leaves empty.
    pub empty: Vec<String>,
    /// (offset in `text`, length in `text`, length in the original) of
    /// each replacement, in order.
    replacements: Vec<(usize, usize, usize)>,
}

/// Why a condition's facts cannot be expanded: the byte offset of the
/// `$name` in the original text and the error.
#[derive(Debug)]
pub(crate) struct ExpandError {
    pub offset: usize,
    pub error: UnknownFact,
}

/// Replaces each `$name` outside string literals with the fact's regex as a
/// TraceQL string literal. An empty fact expands to a regex that never
/// matches (the rule is then marked inactive by the loader).
pub(crate) fn expand(text: &str, site: &Site) -> Result<Expanded, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut empty: Vec<String> = Vec::new();
    let mut replacements = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') if q == '"' => escaped = true,
                (false, c) if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '`' => {
                quote = Some(c);
                out.push(c);
            }
            '$' => {
                let start = i + 1;
                let mut end = start;
                while let Some(&(j, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        end = j + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let name = &text[start..end];
                let regex = site
                    .regex(name)
                    .map_err(|error| ExpandError { offset: i, error })?;
                let regex = match regex {
                    Some(regex) => regex,
                    None => {
                        if !empty.iter().any(|f| f == name) {
                            empty.push(name.to_string());
                        }
                        // `\b\B` holds nowhere: an unconfigured fact matches nothing.
                        r"\b\B".to_string()
                    }
                };
                let literal = traceql_string(&regex);
                replacements.push((out.len(), literal.len(), end - i));
                out.push_str(&literal);
            }
            _ => out.push(c),
        }
    }
    Ok(Expanded {
        text: out,
        empty,
        replacements,
    })
}

impl Expanded {
    /// The byte offset in the original text of byte `offset` of the
    /// expanded text (inside a replacement: the `$` of the fact).
    pub fn original_offset(&self, offset: usize) -> usize {
        let mut shift: isize = 0;
        for &(at, len, original_len) in &self.replacements {
            if offset < at {
                break;
            }
            if offset < at + len {
                return offset_sub(at, shift);
            }
            shift += len as isize - original_len as isize;
        }
        offset_sub(offset, shift)
    }
}

fn offset_sub(offset: usize, shift: isize) -> usize {
    usize::try_from(offset as isize - shift).unwrap_or(0)
}

/// `text` as a double-quoted TraceQL string literal.
fn traceql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_patterns_and_literals() {
        let site = Site {
            entry_services: vec!["api-gateway".into(), "web.frontend".into()],
            ..Site::default()
        };
        let e = expand(r#"{ resource.service.name =~ $entry_services }"#, &site).unwrap();
        assert_eq!(
            e.text,
            r#"{ resource.service.name =~ "(?:api\\-gateway|web\\.frontend)" }"#
        );
        assert!(e.empty.is_empty());
        let query = tracewarden_traceql::parse(&e.text).unwrap();
        assert_eq!(query.fields().len(), 1);
    }

    #[test]
    fn leaves_strings_alone_and_reports_empty_facts() {
        let site = Site::default();
        let e = expand(
            r#"{ span.x = "$login_routes" && span.c !~ $allowed_countries }"#,
            &site,
        )
        .unwrap();
        assert!(e.text.contains(r#""$login_routes""#));
        assert!(e.text.contains(r#"!~ "\\b\\B""#));
        assert_eq!(e.empty, vec!["allowed_countries".to_string()]);
    }

    #[test]
    fn unknown_fact_has_its_offset() {
        let err = expand("{ span.a =~ $nope }", &Site::default()).unwrap_err();
        assert_eq!(err.offset, 12);
        assert!(
            err.error
                .to_string()
                .starts_with("unknown site fact `$nope`")
        );
    }

    #[test]
    fn maps_offsets_back() {
        let site = Site {
            admin_roles: vec!["admin".into()],
            ..Site::default()
        };
        let original = "{ span.r =~ $admin_roles && span.x = }";
        let e = expand(original, &site).unwrap();
        let in_expanded = e.text.find("&&").unwrap();
        assert_eq!(e.original_offset(in_expanded), original.find("&&").unwrap());
        let inside = e.text.find("admin").unwrap();
        assert_eq!(e.original_offset(inside), original.find('$').unwrap());
        assert_eq!(e.original_offset(3), 3);
    }

    #[test]
    fn default_login_routes_match_common_paths() {
        let site = Site::default();
        let re = regex::Regex::new(&format!(
            "^(?s:{})$",
            site.regex("login_routes").unwrap().unwrap()
        ))
        .unwrap();
        for route in [
            "/login",
            "/api/v1/auth/login",
            "/oauth/token",
            "/users/sign_in",
            "/Account/LogOn",
        ] {
            assert!(re.is_match(route), "{route}");
        }
        for route in ["/products", "/blog/logistics", "/"] {
            assert!(!re.is_match(route), "{route}");
        }
    }

    #[test]
    fn default_internal_addresses() {
        let site = Site::default();
        let re = regex::Regex::new(&format!(
            "^(?s:{})$",
            site.regex("internal_addresses").unwrap().unwrap()
        ))
        .unwrap();
        for a in [
            "169.254.169.254",
            "10.0.0.5",
            "172.20.1.1",
            "192.168.1.10",
            "127.0.0.1",
            "localhost",
            "metadata.google.internal",
            "::ffff:10.12.0.7",
            "[::ffff:127.0.0.1]",
            "::ffff:a00:307",
            "127.1",
            "2130706433",
            "::1",
            "[::]",
            "0:0:0:0:0:0:0:1",
            "fd00:10:244:1::17",
            "fe80::1%eth0",
            "100.64.12.7",
            "100.127.255.254",
        ] {
            assert!(re.is_match(a), "{a}");
        }
        for a in [
            "8.8.8.8",
            "172.32.0.1",
            "api.example.com",
            "110.1.2.3",
            "::ffff:203.0.113.9",
            "2001:db8::1",
            "fd.example.com",
            "fe80.example.com",
            "::2",
            "100.63.255.255",
            "100.128.0.1",
        ] {
            assert!(!re.is_match(a), "{a}");
        }
    }

    #[test]
    fn set_replaces_one_fact() {
        let mut site = Site::empty();
        for name in FACT_NAMES {
            assert_eq!(site.regex(name).unwrap(), None, "{name}");
            site.set(name, vec!["a.b".into()]).unwrap();
            assert!(site.regex(name).unwrap().is_some(), "{name}");
        }
        assert_eq!(
            site.regex("admin_roles").unwrap().unwrap(),
            r"(?i:(?:ROLE_)?(?:a\.b))"
        );
        assert_eq!(site.regex("entry_services").unwrap().unwrap(), r"(?:a\.b)");
        assert_eq!(site.regex("admin_routes").unwrap().unwrap(), "(?:(?:a.b))");
        assert!(site.set("nope", Vec::new()).is_err());
    }

    #[test]
    fn validate_names_bad_values() {
        let site = Site {
            allowed_edges: vec!["a -> b".into(), "a b".into()],
            allowed_countries: vec!["DE".into(), "germany".into()],
            third_parties: vec!["(".into()],
            ..Site::default()
        };
        let problems = site.validate();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(site.edges(), vec![("a".to_string(), "b".to_string())]);
        assert!(Site::default().validate().is_empty());
    }
}
