//! The `[blocks]` section of the configuration.

use serde::{Deserialize, Serialize};

use super::IpNet;

/// Block decisions for gateways.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocksConfig {
    /// Keep a blocklist and answer decisions (`/api/v1/decision`, ...).
    pub enabled: bool,
    /// Apply the `block:` responses of rules; `false` keeps analysts'
    /// blocks only (rules still detect).
    pub rule_blocks: bool,
    /// Proxies whose `X-Forwarded-For` hops are skipped when finding the
    /// client address (addresses or CIDR ranges).
    pub trusted_proxies: Vec<IpNet>,
    /// The request header the nginx endpoint reads the user id from.
    pub user_header: String,
    /// Blocks in force at most: rule blocks beyond it are refused (and
    /// counted), analysts' blocks answered 409.
    pub max_blocks: usize,
}

impl Default for BlocksConfig {
    fn default() -> Self {
        BlocksConfig {
            enabled: true,
            rule_blocks: true,
            trusted_proxies: Vec::new(),
            user_header: "X-User".to_string(),
            max_blocks: 100_000,
        }
    }
}

impl BlocksConfig {
    /// What is wrong with the section, if anything.
    pub fn validate(&self) -> Result<(), String> {
        if http::HeaderName::from_bytes(self.user_header.as_bytes()).is_err() {
            return Err(format!(
                "[blocks] user_header `{}` is not a header name",
                self.user_header
            ));
        }
        if self.max_blocks == 0 {
            return Err("[blocks] max_blocks must be at least 1".to_string());
        }
        Ok(())
    }
}
