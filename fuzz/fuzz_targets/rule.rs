//! Rule files from arbitrary text (rules are loaded from a directory an
//! operator may not fully control, and reloaded while the server runs):
//! never a panic, a hang or a stack overflow, only errors with positions.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tracewarden_detect::rule::parse_rule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = parse_rule(text, Path::new("fuzz.yaml")) {
        // Every error renders (file:line:column and a message).
        for error in errors {
            let _ = error.to_string();
        }
    }
});
