//! The analyst's web UI (docs/UI.md): the app shell at `/`, its assets at
//! `/ui/{asset}`, embedded in the binary (no Node.js at run time, no CDN),
//! and `GET /api/v1/whoami`, which tells the page the role of its key so
//! that it hides the actions the key may not take.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline code, no framing): the UI shows
//! span attributes, which are attacker-controlled, and renders them as text.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{ApiError, ApiState};
use crate::auth::Caller;

/// The UI's routes (public in `auth::routes`: the page itself holds no
/// data; the API calls it makes carry the key).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(shell))
        .route("/ui/{asset}", get(asset))
        .route("/api/v1/whoami", get(whoami))
}

/// No inline script or style, nothing from another origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One embedded file: its name under `/ui/`, its type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../ui/", $name)),
        }
    };
}

/// Every file of `crates/server/ui/` (a test checks none is left out).
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("actions.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("alerts.js", JS),
    asset!("alert.js", JS),
    asset!("search.js", JS),
    asset!("trace.js", JS),
    asset!("waterfall.js", JS),
    asset!("actor.js", JS),
    asset!("graph.js", JS),
    asset!("lists.js", JS),
];

/// The shell, served at `/` (not under `/ui/`).
const SHELL: &str = "index.html";

/// An asset with what is computed once: its ETag and gzip form.
struct Prepared {
    asset: &'static Asset,
    etag: HeaderValue,
    /// `None` when compressing does not make it smaller.
    gzip: Option<Vec<u8>>,
}

fn prepared() -> &'static [Prepared] {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(|| ASSETS.iter().map(prepare).collect())
}

fn prepare(asset: &'static Asset) -> Prepared {
    let digest = Sha256::digest(asset.body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let etag =
        HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"0\""));
    Prepared {
        asset,
        etag,
        gzip: gzip(asset.body).filter(|z| z.len() < asset.body.len()),
    }
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// Whether the client takes gzip (`Accept-Encoding`, `q=0` refusing it).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(wanted) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = etag.to_str().unwrap_or("");
    wanted.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag == ours || tag.strip_prefix("W/").is_some_and(|weak| weak == ours)
    })
}

/// The headers every UI answer carries.
fn security_headers(headers: &mut HeaderMap) {
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // Names are not content-hashed: revalidate each time (a 304 with
        // the ETag is cheap), so an upgraded binary is never mixed with a
        // cached old script.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    for (name, value) in fixed {
        headers.insert(name, value);
    }
}

fn serve(name: &str, request: &HeaderMap) -> Result<Response, ApiError> {
    let found = prepared()
        .iter()
        .find(|p| p.asset.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no UI asset `{name}`")))?;
    let mut response = if not_modified(request, &found.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match &found.gzip {
            Some(zipped) if accepts_gzip(request) => (
                [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                zipped.clone(),
            )
                .into_response(),
            _ => found.asset.body.into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(found.asset.content_type),
    );
    headers.insert(header::ETAG, found.etag.clone());
    security_headers(headers);
    Ok(response)
}

/// `GET /`: the app shell.
pub async fn shell(headers: HeaderMap) -> Result<Response, ApiError> {
    serve(SHELL, &headers)
}

/// `GET /ui/{asset}`.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    // The shell is only `/`, so that one URL is bookmarked.
    if name == SHELL {
        return Err(ApiError::NotFound(format!("no UI asset `{name}`")));
    }
    serve(&name, &headers)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// What the page may show and do: `ingest`, `viewer`, `analyst` or
    /// `admin` (`admin` when keys are not required).
    pub role: &'static str,
    /// The key's name, when one was presented.
    pub key: Option<String>,
    /// Whether the server requires keys.
    pub auth: bool,
}

/// `GET /api/v1/whoami`: the caller's role (any valid key may ask).
pub async fn whoami(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
) -> Json<WhoAmI> {
    let caller = caller.map_or(Caller::Anonymous, |Extension(c)| c);
    Json(WhoAmI {
        role: caller.role().as_str(),
        key: caller.name().map(str::to_string),
        auth: state.auth.as_ref().is_some_and(|g| g.enforcing()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        for (value, want) in [
            ("gzip, deflate, br", true),
            ("br;q=1.0, gzip;q=0.8", true),
            ("*", true),
            ("identity", false),
            ("gzip;q=0", false),
            ("GZIP", true),
        ] {
            let map = headers(&[("accept-encoding", value)]);
            assert_eq!(accepts_gzip(&map), want, "{value}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etags_match_strong_weak_and_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        for (value, want) in [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("*", true),
            ("\"abd\"", false),
        ] {
            let map = headers(&[("if-none-match", value)]);
            assert_eq!(not_modified(&map, &etag), want, "{value}");
        }
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }

    /// Every file of the UI directory is embedded, and nothing else is
    /// listed: a new file cannot be forgotten.
    #[test]
    fn every_ui_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    /// What the shell and scripts reference exists, and they keep to the
    /// policy: no inline script or style, no HTML built from strings (span
    /// attributes are attacker-controlled), nothing from another origin.
    #[test]
    fn assets_keep_to_the_content_security_policy() {
        let text = |a: &Asset| String::from_utf8(a.body.to_vec()).unwrap();
        let shell = ASSETS.iter().find(|a| a.name == SHELL).unwrap();
        let html = text(shell);
        assert!(!html.contains("style="), "inline style in the shell");
        let handler = html.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler in the shell");
        for piece in html.split("<script").skip(1) {
            let tag = &piece[..piece.find('>').unwrap()];
            assert!(tag.contains("src=\"/ui/"), "inline script: <script{tag}>");
        }
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let source = text(asset);
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!source.contains(banned), "{} uses `{banned}`", asset.name);
            }
            // Nothing from another origin (the SVG namespace is a name).
            let elsewhere = source.replace("'http://www.w3.org/2000/svg'", "");
            let elsewhere = elsewhere.contains("http://") || elsewhere.contains("https://");
            assert!(!elsewhere, "{} names another origin", asset.name);
            // Imports (static and dynamic) name embedded files.
            let imports = source.split("from './").skip(1);
            for piece in imports.chain(source.split("import('./").skip(1)) {
                let name = &piece[..piece.find('\'').unwrap()];
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports missing `{name}`",
                    asset.name
                );
            }
        }
        for piece in html.split("/ui/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(ASSETS.iter().any(|a| a.name == name), "missing `{name}`");
        }
    }

    #[test]
    fn first_load_is_small() {
        // Everything the shell loads, compressed as served: the budget of
        // docs/UI.md (300 KB) with room to spare.
        let total: usize = prepared()
            .iter()
            .map(|p| p.gzip.as_ref().map_or(p.asset.body.len(), Vec::len))
            .sum();
        assert!(total < 300_000, "{total} bytes");
    }
}
