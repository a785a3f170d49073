//! The demo system's site facts (`[detection.site]`): without them the
//! topology, data-flow, geography and CSRF rules stay inactive. The demo's
//! own server gets them, with a shorter trace idle time so whole-trace
//! rules answer within a second or two; with `--endpoint` the snippet is
//! printed for the running server's config.

use std::time::Duration;

use tracewarden_server::Config;

/// What the running server's config needs for every scenario's rule.
pub const SITE_TOML: &str = r#"[detection.site]
# The gateway is the only way in; location only serves weather.
entry_services = ["api-gateway"]
allowed_edges = ["api-gateway -> weather", "weather -> location"]
# The partner receives usage data from weather and must not get personal data.
third_parties = ['weather-partner', 'api\.weather-partner\.example']
# The site serves the EU (countries from the CDN's geo header).
allowed_countries = ["UA", "PL", "DE", "FR", "NL", "CZ"]
# The web site's own pages; other origins posting forms are cross-site.
trusted_origins = ['https://weather\.example']
"#;

/// Whole-trace rules run once a trace is idle this long (default 5 s).
pub const TRACE_IDLE: Duration = Duration::from_secs(1);

/// Applies the demo's facts and trace idle time to `config`.
pub fn apply(config: &mut Config) -> anyhow::Result<()> {
    let demo = Config::from_toml(SITE_TOML)
        .map_err(|e| anyhow::anyhow!("the demo's site facts do not parse: {e}"))?;
    config.detection.site = demo.detection.site;
    config.detection.trace_idle = config.detection.trace_idle.min(TRACE_IDLE);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cmd::demo::system::{
        ALLOWED_COUNTRIES, GATEWAY, LOCATION, PARTNER, PARTNER_HOST, WEATHER,
    };

    #[test]
    fn the_snippet_names_the_demo_system() {
        let mut config = Config::default();
        apply(&mut config).unwrap();
        let site = &config.detection.site;
        assert!(site.validate().is_empty(), "{:?}", site.validate());
        assert_eq!(site.entry_services, vec![GATEWAY.to_string()]);
        assert_eq!(
            site.edges(),
            vec![
                (GATEWAY.to_string(), WEATHER.to_string()),
                (WEATHER.to_string(), LOCATION.to_string())
            ]
        );
        assert_eq!(
            site.allowed_countries,
            ALLOWED_COUNTRIES.map(String::from).to_vec()
        );
        // The partner's service name, and its host with the dots escaped.
        assert_eq!(
            site.third_parties,
            vec![PARTNER.to_string(), PARTNER_HOST.replace('.', r"\.")]
        );
        // Facts the demo does not set keep the built-in defaults.
        assert_eq!(
            site.login_routes,
            tracewarden_detect::rule::Site::default().login_routes
        );
        assert_eq!(config.detection.trace_idle, TRACE_IDLE);
    }
}
