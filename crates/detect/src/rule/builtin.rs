//! The built-in rule pack, embedded from the repository's `rules/` at build
//! time (see `build.rs`).

use std::path::Path;

use super::{LoadErrors, Rule, Site, parse_rule_for};

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// The built-in rules, parsed; every error of every file if one is wrong
/// (a test keeps the pack valid, so this is for a broken build).
pub fn builtin_rules() -> Result<Vec<Rule>, LoadErrors> {
    builtin_rules_for(&Site::default())
}

/// The built-in rules with the facts of `site`.
pub fn builtin_rules_for(site: &Site) -> Result<Vec<Rule>, LoadErrors> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (name, source) in BUILTIN_RULE_FILES {
        match parse_rule_for(source, Path::new(&format!("rules/{name}")), site) {
            Ok(rule) => rules.push(rule),
            Err(mut found) => errors.append(&mut found),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(LoadErrors(errors))
    }
}

/// The ids of the built-in rules: each file is named `<id>.yaml` (a test
/// holds the pack to it).
pub fn builtin_rule_ids() -> Vec<&'static str> {
    BUILTIN_RULE_FILES
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".yaml"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_pack_is_embedded_and_valid() {
        let rules = builtin_rules().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.len(), BUILTIN_RULE_FILES.len());
        assert!(rules.len() >= 7, "{} rules", rules.len());
        assert!(rules.iter().any(|r| r.id == "brute-force-login"));
        let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, builtin_rule_ids(), "each file is named after its rule");
    }
}
