//! Embeds the built-in rule pack (the repository's `rules/*.yaml`) in the
//! library, so `tracewarden serve` detects on its defaults with no rule
//! directory at hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    let rules = Path::new(&manifest).join("../../rules");
    println!("cargo:rerun-if-changed={}", rules.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rules)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from(
        "/// The built-in rule files: (file name, contents).\npub const BUILTIN_RULE_FILES: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let absolute = file.canonicalize().unwrap_or_else(|_| file.clone());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            absolute.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_string());
    if let Err(error) = std::fs::write(Path::new(&out_dir).join("builtin_rules.rs"), out) {
        panic!("cannot write the built-in rule list: {error}");
    }
}
