//! Secure by default: the one start-up check of how the server is
//! protected, given where it listens. On loopback a quick start may run
//! without keys and without TLS (with a warning); on any other address it
//! refuses to start without keys, and without TLS, unless the operator opts
//! out of each explicitly.

use std::net::SocketAddr;

use crate::Config;
use crate::auth::{AuthMode, KeyRecord};

/// Why the server will not start as configured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unprotected(pub String);

/// The listeners not bound to a loopback address, by name.
pub fn public_listeners(config: &Config) -> Vec<(&'static str, SocketAddr)> {
    let listen = &config.listen;
    [
        ("otlp_grpc", listen.otlp_grpc),
        ("otlp_http", listen.otlp_http),
        ("zipkin", listen.zipkin),
        ("api", listen.api),
    ]
    .into_iter()
    .filter(|(_, addr)| !addr.ip().is_loopback())
    .collect()
}

/// The auth mode the server runs with, or why it must not start (every
/// missing protection named in one message). Logs what the operator must
/// know (auth off, plain text, opt-outs) as warnings.
pub fn check(config: &Config, keys: &[KeyRecord]) -> Result<AuthMode, Unprotected> {
    match (check_auth(config, keys), check_tls(config)) {
        (Ok(mode), Ok(())) => Ok(mode),
        (Err(auth), Err(tls)) => Err(Unprotected(format!("{}; and {}", auth.0, tls.0))),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Plain text on a non-loopback listener: refused unless `[tls]
/// allow_plaintext` says the operator terminates TLS elsewhere.
fn check_tls(config: &Config) -> Result<(), Unprotected> {
    let public = public_listeners(config);
    if public.is_empty() || config.tls.enabled() {
        return Ok(());
    }
    let where_ = public
        .iter()
        .map(|(name, addr)| format!("{name} on {addr}"))
        .collect::<Vec<_>>()
        .join(", ");
    if config.tls.allow_plaintext {
        tracing::warn!(listeners = %where_, "PLAIN TEXT ON NON-LOOPBACK LISTENERS (`[tls] allow_plaintext`): keys and traces cross the network unencrypted");
        return Ok(());
    }
    Err(Unprotected(format!(
        "refusing to start without TLS on non-loopback addresses ({where_}): set `[tls] cert` and \
         `key` (`tracewarden certs dev` writes some to try), bind every listener to 127.0.0.1, \
         or opt out explicitly with `[tls] allow_plaintext = true` (`tracewarden serve --insecure-no-tls`)"
    )))
}

fn check_auth(config: &Config, keys: &[KeyRecord]) -> Result<AuthMode, Unprotected> {
    let auth = &config.auth;
    let public = public_listeners(config);
    let where_ = public
        .iter()
        .map(|(name, addr)| format!("{name} on {addr}"))
        .collect::<Vec<_>>()
        .join(", ");
    let create = format!(
        "create a key with `tracewarden keys create --role admin --name admin --data-dir {}`",
        config.data_dir.display()
    );
    let opt_out = "or opt out explicitly with `[auth] allow_unauthenticated = true` \
                   (`tracewarden serve --insecure-no-auth`)";
    match auth.enabled {
        AuthMode::On => {
            if keys.iter().all(|k| k.revoked_unix_ms.is_some()) {
                tracing::warn!(
                    "auth is on but there is no live API key: every request is refused until you {create}"
                );
            }
            Ok(AuthMode::On)
        }
        AuthMode::Off if public.is_empty() => {
            tracing::warn!(
                "AUTH IS OFF (`[auth] enabled = \"off\"`): anyone who can reach the listeners can read and send data"
            );
            Ok(AuthMode::Off)
        }
        AuthMode::Off if auth.allow_unauthenticated => {
            tracing::warn!(listeners = %where_, "AUTH IS OFF ON NON-LOOPBACK LISTENERS (`allow_unauthenticated`): anyone who can reach them can read all traces and send data");
            Ok(AuthMode::Off)
        }
        AuthMode::Off => Err(Unprotected(format!(
            "refusing to start: `[auth] enabled = \"off\"` with listeners on non-loopback addresses ({where_}); \
             turn auth on, bind to 127.0.0.1, {opt_out}"
        ))),
        AuthMode::Auto if !keys.is_empty() => Ok(AuthMode::Auto),
        AuthMode::Auto if public.is_empty() => {
            tracing::warn!(
                "auth is off: there is no API key and every listener is on loopback; it turns on as soon as you {create}"
            );
            Ok(AuthMode::Auto)
        }
        AuthMode::Auto if auth.allow_unauthenticated => {
            tracing::warn!(listeners = %where_, "AUTH IS OFF ON NON-LOOPBACK LISTENERS (`allow_unauthenticated`, no API key): anyone who can reach them can read all traces and send data; it turns on as soon as you {create}");
            Ok(AuthMode::Auto)
        }
        AuthMode::Auto => Err(Unprotected(format!(
            "refusing to start without API keys on non-loopback addresses ({where_}): {create}, \
             bind every listener to 127.0.0.1, {opt_out}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn config(api: &str, mode: AuthMode, allow: bool) -> Config {
        let mut config = Config::default();
        config.listen.api = api.parse().unwrap();
        config.auth.enabled = mode;
        config.auth.allow_unauthenticated = allow;
        // These cases are about keys; plain text is checked on its own.
        config.tls.allow_plaintext = true;
        config
    }

    fn key() -> KeyRecord {
        KeyRecord {
            id: "0123456789ab".into(),
            name: "admin".into(),
            role: Role::Admin,
            sha256: "00".repeat(32),
            created_unix_ms: 0,
            revoked_unix_ms: None,
        }
    }

    #[test]
    fn decisions() {
        use AuthMode::*;
        let local = "127.0.0.1:7700";
        let public = "0.0.0.0:7700";
        // (api address, mode, allow_unauthenticated, keys, outcome)
        let cases = [
            (local, Auto, false, false, Ok(Auto)),
            (local, Auto, false, true, Ok(Auto)),
            (public, Auto, false, true, Ok(Auto)),
            (
                public,
                Auto,
                false,
                false,
                Err("refusing to start without API keys"),
            ),
            (public, Auto, true, false, Ok(Auto)),
            (public, Off, false, true, Err("refusing to start")),
            (public, Off, true, false, Ok(Off)),
            (local, Off, false, false, Ok(Off)),
            (public, On, false, false, Ok(On)),
            ("[::1]:7700", Auto, false, false, Ok(Auto)),
        ];
        for (api, mode, allow, has_key, want) in cases {
            let keys = if has_key { vec![key()] } else { vec![] };
            let got = check(&config(api, mode, allow), &keys);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{api} {mode:?} {allow} {has_key}"),
                (Err(e), Err(text)) => {
                    assert!(e.0.contains(text), "{e}");
                    assert!(e.0.contains("0.0.0.0:7700"), "{e}");
                    assert!(e.0.contains("allow_unauthenticated"), "{e}");
                }
                (got, want) => panic!("{api} {mode:?} {allow} {has_key}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn plain_text_on_a_public_address_is_refused_unless_opted_out() {
        let mut plain = config("0.0.0.0:7700", AuthMode::Auto, false);
        plain.tls.allow_plaintext = false;
        let keys = [key()];
        let refused = check(&plain, &keys).unwrap_err();
        assert!(refused.0.contains("without TLS"), "{refused}");
        assert!(refused.0.contains("--insecure-no-tls"), "{refused}");
        assert!(refused.0.contains("0.0.0.0:7700"), "{refused}");

        // Both protections missing: one message names both.
        let both = check(&plain, &[]).unwrap_err();
        assert!(both.0.contains("without API keys"), "{both}");
        assert!(both.0.contains("without TLS"), "{both}");

        // A certificate (or the opt-out) satisfies the check.
        let mut tls = plain.clone();
        tls.tls.cert = Some("server.pem".into());
        assert_eq!(check(&tls, &keys).unwrap(), AuthMode::Auto);
        plain.tls.allow_plaintext = true;
        assert_eq!(check(&plain, &keys).unwrap(), AuthMode::Auto);

        // Loopback needs neither.
        let mut local = config("127.0.0.1:7700", AuthMode::Auto, false);
        local.tls.allow_plaintext = false;
        assert_eq!(check(&local, &[]).unwrap(), AuthMode::Auto);
    }
}
