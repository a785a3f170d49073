//! Just enough URL parsing to split `http.url`, `http.target` and
//! `http.host` into the current `url.*` and `server.*` attributes. Written
//! by hand: the input is whatever a sender put in a string, so every step
//! accepts garbage and yields fewer parts rather than failing.

/// The parts of a URL or of a request target. Absent parts are `None`; an
/// empty path, query or fragment counts as absent.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct UrlParts<'a> {
    pub scheme: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
    pub path: Option<&'a str>,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
    /// Byte range of the user info (`user:password`) in the input, when the
    /// authority has one.
    pub userinfo: Option<(usize, usize)>,
}

impl UrlParts<'_> {
    /// The port the URL names, or the scheme's default (the conventions
    /// record `server.port` even when it is the default).
    pub fn port_or_default(&self) -> Option<u16> {
        if self.port.is_some() {
            return self.port;
        }
        self.host?;
        match self.scheme? {
            s if s.eq_ignore_ascii_case("http") => Some(80),
            s if s.eq_ignore_ascii_case("https") => Some(443),
            _ => None,
        }
    }
}

/// Parses an absolute URL (`scheme://authority/path?query#fragment`), a
/// network-path reference (`//authority/path`) or an origin-form target
/// (`/path?query`). `None` for anything else.
pub(super) fn parse_url(text: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = if let Some(rest) = text.strip_prefix("//") {
        (None, rest)
    } else if text.starts_with('/') {
        return Some(split_path(text));
    } else {
        let (scheme, rest) = text.split_once("://")?;
        if !is_scheme(scheme) {
            return None;
        }
        (Some(scheme), rest)
    };
    let authority_start = text.len() - rest.len();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (
            Some((authority_start, authority_start + at)),
            authority.get(at + 1..)?,
        ),
        None => (None, authority),
    };
    let (host, port) = split_host_port(host_port);
    let path = split_path(tail);
    Some(UrlParts {
        scheme,
        host,
        port,
        userinfo,
        ..path
    })
}

/// Splits `path?query#fragment`.
pub(super) fn split_path(text: &str) -> UrlParts<'_> {
    let (rest, fragment) = match text.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (text, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    UrlParts {
        path: non_empty(path),
        query: query.and_then(non_empty),
        fragment: fragment.and_then(non_empty),
        ..UrlParts::default()
    }
}

/// Splits `http.target`: usually `/path?query`, but a request to a proxy
/// carries an absolute URL (`GET http://host/path HTTP/1.1`).
pub(super) fn split_target(text: &str) -> UrlParts<'_> {
    if !text.starts_with('/')
        && let Some(parts) = parse_url(text)
    {
        return UrlParts {
            path: parts.path,
            query: parts.query,
            fragment: parts.fragment,
            ..UrlParts::default()
        };
    }
    split_path(text)
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. A bare IPv6 address
/// (several colons, no brackets) is all host. A port that is not a number
/// from 0 to 65535 is dropped.
pub(super) fn split_host_port(text: &str) -> (Option<&str>, Option<u16>) {
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (
                non_empty(host),
                after.strip_prefix(':').and_then(parse_port),
            ),
            None => (None, None),
        };
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => (non_empty(host), parse_port(port)),
        Some(_) => (non_empty(text), None),
        None => (non_empty(text), None),
    }
}

/// `url.full` with the user info replaced by `REDACTED:REDACTED`: the
/// conventions forbid credentials in `url.full` (the original attribute
/// keeps them until the redaction stage).
pub(super) fn redact_userinfo(text: &str, (start, end): (usize, usize)) -> Option<String> {
    let before = text.get(..start)?;
    let after = text.get(end..)?;
    Some(format!("{before}REDACTED:REDACTED{after}"))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Option<UrlParts<'_>>) {
        assert_eq!(parse_url(input), expected, "input: {input:?}");
    }

    #[test]
    fn urls() {
        check(
            "https://user:pw@api.example.com:8443/v1/login?next=/a#top",
            Some(UrlParts {
                scheme: Some("https"),
                host: Some("api.example.com"),
                port: Some(8443),
                path: Some("/v1/login"),
                query: Some("next=/a"),
                fragment: Some("top"),
                userinfo: Some((8, 15)),
            }),
        );
        check(
            "http://[::1]:8080?x=1",
            Some(UrlParts {
                scheme: Some("http"),
                host: Some("::1"),
                port: Some(8080),
                query: Some("x=1"),
                ..UrlParts::default()
            }),
        );
        check(
            "//cdn.example.com/a.js",
            Some(UrlParts {
                host: Some("cdn.example.com"),
                path: Some("/a.js"),
                ..UrlParts::default()
            }),
        );
        check(
            "/search?q=1",
            Some(UrlParts {
                path: Some("/search"),
                query: Some("q=1"),
                ..UrlParts::default()
            }),
        );
        check(
            "http://host:99999/",
            Some(UrlParts {
                scheme: Some("http"),
                host: Some("host"),
                path: Some("/"),
                ..UrlParts::default()
            }),
        );
        check(
            "http://",
            Some(UrlParts {
                scheme: Some("http"),
                ..UrlParts::default()
            }),
        );
        check("not a url", None);
        check("", None);
        check("a/b?u=http://x", None);
        check("1http://x", None);
        check("mailto:someone@example.com", None);
        check(
            "http://[::1/x",
            Some(UrlParts {
                scheme: Some("http"),
                path: Some("/x"),
                ..UrlParts::default()
            }),
        );
        check(
            "http://é@ü:1/",
            Some(UrlParts {
                scheme: Some("http"),
                host: Some("ü"),
                port: Some(1),
                path: Some("/"),
                userinfo: Some((7, 9)),
                ..UrlParts::default()
            }),
        );
    }

    #[test]
    fn default_ports() {
        let port = |url: &str| parse_url(url).and_then(|p| p.port_or_default());
        assert_eq!(port("https://example.com/"), Some(443));
        assert_eq!(port("HTTP://example.com/"), Some(80));
        assert_eq!(port("http://example.com:8080/"), Some(8080));
        assert_eq!(port("ftp://example.com/"), None);
        assert_eq!(port("https:///path"), None);
    }

    #[test]
    fn targets() {
        let t = split_target("/a/b?c=d&e");
        assert_eq!((t.path, t.query), (Some("/a/b"), Some("c=d&e")));
        let t = split_target("/a?");
        assert_eq!((t.path, t.query), (Some("/a"), None));
        let t = split_target("http://proxy.example/p?q");
        assert_eq!((t.path, t.query, t.host), (Some("/p"), Some("q"), None));
        let t = split_target("*");
        assert_eq!((t.path, t.query), (Some("*"), None));
        let t = split_target("?only");
        assert_eq!((t.path, t.query), (None, Some("only")));
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            split_host_port("example.com:8080"),
            (Some("example.com"), Some(8080))
        );
        assert_eq!(split_host_port("example.com"), (Some("example.com"), None));
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            (Some("2001:db8::1"), Some(443))
        );
        assert_eq!(split_host_port("2001:db8::1"), (Some("2001:db8::1"), None));
        assert_eq!(
            split_host_port("example.com:http"),
            (Some("example.com"), None)
        );
        assert_eq!(split_host_port(":80"), (None, Some(80)));
        assert_eq!(split_host_port(""), (None, None));
    }

    #[test]
    fn userinfo_is_redacted() {
        let url = "https://alice:s3cret@example.com/x";
        let parts = parse_url(url).and_then(|p| p.userinfo);
        assert_eq!(
            parts
                .and_then(|range| redact_userinfo(url, range))
                .as_deref(),
            Some("https://REDACTED:REDACTED@example.com/x")
        );
    }
}
