//! The one table of what every API route needs (docs/SECURITY.md shows the
//! same table). A route missing here needs `admin` (deny by default), and
//! a test fails when a route of `api/` has no row.

use http::Method;

use super::Access;

/// (method, path pattern as the router spells it, access needed).
/// `HEAD` is checked as `GET`.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // Probes stay open: orchestrators have no key.
    ("GET", "/healthz", Access::Open),
    ("GET", "/readyz", Access::Open),
    // The web UI's shell and assets hold no data; its API calls carry the key.
    ("GET", "/", Access::Open),
    ("GET", "/ui/{asset}", Access::Open),
    // The caller's role, for the UI to hide what the key may not do.
    ("GET", "/api/v1/whoami", Access::Gateway),
    // Gateways ask decisions with any key (an `ingest` one is enough).
    ("GET", "/api/v1/decision", Access::Gateway),
    ("GET", "/api/v1/decision/nginx", Access::Gateway),
    ("GET", "/api/v1/blocks.txt", Access::Gateway),
    // What happened, not what the traces hold.
    ("GET", "/api/v1/alerts", Access::Viewer),
    ("GET", "/api/v1/alerts/{fingerprint}", Access::Viewer),
    ("GET", "/api/v1/silences", Access::Viewer),
    ("GET", "/api/v1/detections", Access::Viewer),
    ("GET", "/api/v1/rules", Access::Viewer),
    ("GET", "/api/v1/blocks", Access::Viewer),
    ("GET", "/api/v1/blocks/history", Access::Viewer),
    ("GET", "/metrics", Access::Viewer),
    ("GET", "/ready", Access::Viewer),
    ("GET", "/api/echo", Access::Viewer),
    // The service graph shows services and call counts, not trace contents.
    ("GET", "/api/v1/service-graph", Access::Viewer),
    ("GET", "/api/dependencies", Access::Viewer),
    ("GET", "/api/status/buildinfo", Access::Viewer),
    // The traces themselves: search, trace lookups, the Tempo API.
    ("GET", "/api/v1/search", Access::Analyst),
    ("GET", "/api/v1/traces/{trace_id}", Access::Analyst),
    (
        "GET",
        "/api/v1/actors/{kind}/{value}/timeline",
        Access::Analyst,
    ),
    ("GET", "/api/search", Access::Analyst),
    ("GET", "/api/traces/{trace_id}", Access::Analyst),
    ("GET", "/api/v2/traces/{trace_id}", Access::Analyst),
    ("GET", "/api/search/tags", Access::Analyst),
    ("GET", "/api/v2/search/tags", Access::Analyst),
    ("GET", "/api/search/tag/{tag}/values", Access::Analyst),
    ("GET", "/api/v2/search/tag/{tag}/values", Access::Analyst),
    // Stored request and response bodies (redacted).
    ("GET", "/api/v1/payloads", Access::Analyst),
    ("GET", "/api/v1/payloads/{id}", Access::Analyst),
    // Services and gateways send bodies as they send spans.
    ("POST", "/api/v1/payloads", Access::Ingest),
    // Names the users who touched personal data.
    ("GET", "/api/v1/reports/compliance", Access::Analyst),
    // Actions and the security configuration.
    ("POST", "/api/v1/rules/reload", Access::Admin),
    ("POST", "/api/v1/alerts/{fingerprint}/ack", Access::Admin),
    ("POST", "/api/v1/silences", Access::Admin),
    ("DELETE", "/api/v1/silences/{id}", Access::Admin),
    ("POST", "/api/v1/blocks", Access::Admin),
    ("DELETE", "/api/v1/blocks/{kind}/{value}", Access::Admin),
    ("GET", "/api/v1/keys", Access::Admin),
    ("GET", "/api/v1/audit", Access::Admin),
];

/// What `method path` needs; `Admin` for anything not in [`ROUTES`].
pub fn required(method: &Method, path: &str) -> Access {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(m, pattern, _)| *m == method && matches(pattern, path))
        .map_or(Access::Admin, |(_, _, access)| *access)
}

/// Whether `path` fits `pattern`, where `{name}` stands for one non-empty
/// segment (as the router matches it). A trailing slash does not match.
fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) => {
                let any = w.starts_with('{') && w.ends_with('}');
                if !(any && !g.is_empty() || w == g) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_patterns() {
        let cases = [
            ("/api/v1/traces/{trace_id}", "/api/v1/traces/abc", true),
            ("/api/v1/traces/{trace_id}", "/api/v1/traces/", false),
            ("/api/v1/traces/{trace_id}", "/api/v1/traces/a/b", false),
            ("/api/v1/traces/{trace_id}", "/api/v1/traces", false),
            ("/healthz", "/healthz", true),
            ("/healthz", "/healthz/", false),
            ("/api/v1/blocks", "/api/v1/blocks.txt", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(matches(pattern, path), want, "{pattern} {path}");
        }
    }

    #[test]
    fn routes_need_their_access() {
        let get = Method::GET;
        let cases = [
            (&get, "/healthz", Access::Open),
            (&Method::HEAD, "/readyz", Access::Open),
            (&get, "/", Access::Open),
            (&get, "/ui/app.js", Access::Open),
            (&get, "/ui/a/b.js", Access::Admin),
            (&Method::POST, "/", Access::Admin),
            (&get, "/api/v1/decision/nginx", Access::Gateway),
            (&get, "/api/v1/alerts/0123", Access::Viewer),
            (&Method::POST, "/api/v1/alerts/0123/ack", Access::Admin),
            (&get, "/api/v1/blocks", Access::Viewer),
            (&Method::POST, "/api/v1/blocks", Access::Admin),
            (
                &get,
                "/api/v2/search/tag/service.name/values",
                Access::Analyst,
            ),
            (&get, "/api/v1/search", Access::Analyst),
            (&get, "/api/v1/audit", Access::Admin),
            (&Method::POST, "/api/v1/payloads", Access::Ingest),
            (&get, "/api/v1/payloads", Access::Analyst),
            (&get, "/api/v1/payloads/0123", Access::Analyst),
            (&Method::DELETE, "/api/v1/payloads/0123", Access::Admin),
            // Deny by default.
            (&get, "/no/such/route", Access::Admin),
            (&Method::PUT, "/healthz", Access::Admin),
        ];
        for (method, path, want) in cases {
            assert_eq!(required(method, path), want, "{method} {path}");
        }
    }

    /// Every `.route("...")` of the API sources has a row here, so a new
    /// route cannot be added without deciding who may use it.
    #[test]
    fn every_api_route_is_in_the_table() {
        let sources = [
            include_str!("../api/mod.rs"),
            include_str!("../api/alerts.rs"),
            include_str!("../api/tempo/mod.rs"),
            include_str!("../api/ui.rs"),
        ];
        let mut seen = 0;
        for source in sources {
            for piece in source.split(".route(\"").skip(1) {
                let Some(end) = piece.find('"') else { continue };
                let path = &piece[..end];
                seen += 1;
                assert!(
                    ROUTES.iter().any(|(_, pattern, _)| *pattern == path),
                    "route `{path}` has no row in auth::routes::ROUTES"
                );
            }
        }
        assert!(seen >= 30, "only {seen} routes found in the API sources");
    }
}
