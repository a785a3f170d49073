//! The injection detectors on hostile values: 64 KiB (or so) runs of the
//! characters the scanners look around, each timed once through
//! `inject::detect`. Every value should take milliseconds: a scanner that
//! re-reads a run at each position shows here as seconds (docs/DETECTION.md,
//! "Hostile and ordinary values"). No assertion: timings are for reading.
//!
//! Run: `cargo run --release -p tracewarden-detect --example hostile_values`

fn main() {
    println!("value   time       findings");
    for (name, value) in [
        ("${", "${".repeat(32 * 1024)),
        ("..;", "..;".repeat(21 * 1024)),
        ("{", "{".repeat(64 * 1024)),
        ("nl", "\n".repeat(64 * 1024)),
        ("stars", format!(";{}7", "*".repeat(40))),
        ("(", "(".repeat(64 * 1024)),
        ("'", "'".repeat(64 * 1024)),
        ("\\", "\\".repeat(64 * 1024)),
        ("%25", "%25".repeat(20 * 1024)),
        ("<", "<".repeat(64 * 1024)),
        ("/*", "/*".repeat(32 * 1024)),
        ("a=", "a=".repeat(32 * 1024)),
        ("&#", "&#".repeat(32 * 1024)),
        ("-- ", "-- ".repeat(21 * 1024)),
        ("$(", "$(".repeat(32 * 1024)),
        ("`", "`".repeat(64 * 1024)),
        ("../", "../".repeat(21 * 1024)),
        ("dq", "\"".repeat(64 * 1024)),
        (";", ";".repeat(64 * 1024)),
        ("|", "|".repeat(64 * 1024)),
        ("&", "&".repeat(64 * 1024)),
        ("$", "$".repeat(64 * 1024)),
        ("%", "%".repeat(64 * 1024)),
        ("sp", " ".repeat(64 * 1024)),
        ("=", "=".repeat(64 * 1024)),
        (",", ",".repeat(64 * 1024)),
        (".", ".".repeat(64 * 1024)),
        ("/", "/".repeat(64 * 1024)),
        ("\\x", "\\x".repeat(32 * 1024)),
        ("&lt;", "&lt;".repeat(16 * 1024)),
        ("/**/", "/**/".repeat(16 * 1024)),
        ("<!--", "<!--".repeat(16 * 1024)),
        ("'--", "'--".repeat(21 * 1024)),
        ("a ", "a ".repeat(32 * 1024)),
        ("id;", "id;".repeat(21 * 1024)),
        ("{a,", "{a,".repeat(21 * 1024)),
        ("[", "[".repeat(64 * 1024)),
        ("?", "?".repeat(64 * 1024)),
        ("*", "*".repeat(64 * 1024)),
        ("/?", "/?".repeat(32 * 1024)),
        ("` a", "` a".repeat(21 * 1024)),
        ("x`", "x`".repeat(32 * 1024)),
        ("u+", "%u0041".repeat(10 * 1024)),
        // Markdown tables: one row of 32k cells, 16k one-cell rows.
        ("|-|", format!("|-|\n{}", "| ".repeat(32 * 1024))),
        ("rows", "|-|\n".repeat(16 * 1024)),
        ("cells", format!("|-|\n|{}", "a |".repeat(21 * 1024))),
    ] {
        let t = std::time::Instant::now();
        let found = tracewarden_detect::inject::detect(&value);
        println!(
            "{name:6} {:>8.1} ms {}",
            t.elapsed().as_secs_f64() * 1000.0,
            found.len()
        );
    }
}
