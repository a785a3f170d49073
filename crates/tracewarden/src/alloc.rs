//! The process's allocator, mimalloc, and the settings tracewarden changes.
//!
//! mimalloc: decoding allocates many small strings and vectors per span;
//! measured ~2x faster than the system allocator on OTLP decoding
//! (../shared/MEASURED.md).
//!
//! Transparent huge pages are allowed and freed memory is kept for reuse
//! instead of being returned to the OS ("purged"). A hot tier of a million
//! spans is freed after every flush and refilled at once: returned, its
//! pages came back as page faults, zeroed (as 2 MiB huge pages, 66% of the
//! server's CPU once); kept, the hot tier refills warm memory, and huge
//! pages spare the flush's walk over it most of its TLB misses. Measured at
//! 150k spans/s: the server took ~12% less CPU, its peak RSS rose by ~20%
//! (docs/BENCHMARKS.md, "Huge pages and no purging"). The process keeps its
//! peak; `MIMALLOC_PURGE_DELAY=<ms>` in the environment returns memory
//! unused that long, `MIMALLOC_ALLOW_THP=0` turns huge pages off.
//!
//! The flush frees spans that ingest threads allocated. mimalloc hands a
//! thread's full pages to no one ("abandons" them), and each free into such
//! a page from another thread claimed it, collected it and gave it up
//! again: ~5% of the server's CPU at full speed. The thread that frees now
//! takes the page over ("reclaims" it, with no limit on how many), so the
//! rest of its frees are local; emptied, the page goes back to the arena
//! for ingest to reuse. Measured at full speed: the lifecycle thread took
//! 15-22% less CPU per span, the server ~10% less, for ~4% more resident
//! memory, bounded (docs/BENCHMARKS.md, "Freed pages reclaimed by the
//! thread that frees").

use std::ffi::OsString;
use std::os::raw::c_long;

use libmimalloc_sys::mi_option_t;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Option indexes of mimalloc v3's `mimalloc.h` (libmimalloc-sys does not
/// name them); `tests::option_indexes` holds each to its documented default.
const PURGE_DELAY: mi_option_t = 15;
const PAGE_RECLAIM_ON_FREE: mi_option_t = 35;
const PAGE_CROSS_THREAD_MAX_RECLAIM: mi_option_t = 42;

/// An option tracewarden sets unless the environment does.
struct Setting {
    option: mi_option_t,
    value: c_long,
    /// The variables mimalloc reads the option from (current name, then
    /// the legacy one).
    variables: &'static [&'static str],
}

const SETTINGS: [Setting; 3] = [
    // Never purge.
    Setting {
        option: PURGE_DELAY,
        value: -1,
        variables: &["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"],
    },
    // Reclaim an abandoned page on a free from any thread...
    Setting {
        option: PAGE_RECLAIM_ON_FREE,
        value: 1,
        variables: &[
            "MIMALLOC_PAGE_RECLAIM_ON_FREE",
            "MIMALLOC_ABANDONED_RECLAIM_ON_FREE",
        ],
    },
    // ...however many pages of that size the thread owns already.
    Setting {
        option: PAGE_CROSS_THREAD_MAX_RECLAIM,
        value: -1,
        variables: &["MIMALLOC_PAGE_CROSS_THREAD_MAX_RECLAIM"],
    },
];

/// Applies [`SETTINGS`], each unless the environment chose its value. Call
/// first in `main`, before any other thread starts.
pub fn configure() {
    let names: Vec<OsString> = std::env::vars_os().map(|(name, _)| name).collect();
    for setting in &SETTINGS {
        if set_in(&names, setting.variables) {
            continue;
        }
        // SAFETY: mi_option_set writes one entry of mimalloc's option table
        // and is not synchronised; it runs at the start of `main`, before
        // any thread of ours exists, and each index is a valid option
        // (tested). The measured reasons are in the module comment.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(setting.option, setting.value);
        }
    }
}

/// Whether `names` hold one of `variables`, which mimalloc reads in upper
/// or lower case.
fn set_in(names: &[OsString], variables: &[&str]) -> bool {
    names.iter().any(|name| {
        name.to_str().is_some_and(|name| {
            variables
                .iter()
                .any(|variable| name.eq_ignore_ascii_case(variable))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn an_option_set_in_the_environment_is_left_alone() {
        let [purge, reclaim, max] = &SETTINGS;
        assert!(set_in(
            &names(&["PATH", "MIMALLOC_PURGE_DELAY"]),
            purge.variables
        ));
        assert!(set_in(&names(&["mimalloc_purge_delay"]), purge.variables));
        assert!(set_in(&names(&["MIMALLOC_RESET_DELAY"]), purge.variables));
        assert!(!set_in(
            &names(&["PATH", "MIMALLOC_ALLOW_THP"]),
            purge.variables
        ));
        assert!(!set_in(&names(&[]), purge.variables));
        assert!(set_in(
            &names(&["MIMALLOC_ABANDONED_RECLAIM_ON_FREE"]),
            reclaim.variables
        ));
        assert!(!set_in(
            &names(&["MIMALLOC_PAGE_RECLAIM_ON_FREE"]),
            max.variables
        ));
        assert!(set_in(
            &names(&["MIMALLOC_PAGE_CROSS_THREAD_MAX_RECLAIM"]),
            max.variables
        ));
    }

    /// mimalloc's value of `option`, or `default` when no variable sets it.
    fn default_of(option: mi_option_t, variable: &str, default: c_long) -> (c_long, c_long) {
        let expected = std::env::var(variable)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default);
        // SAFETY: mi_option_get only reads mimalloc's option table (it reads
        // the environment once on first use).
        #[allow(unsafe_code)]
        let value = unsafe { libmimalloc_sys::mi_option_get(option) };
        (value, expected)
    }

    /// The indexes name the options meant: each reads its documented
    /// default, and where that default is common (0), its neighbours read
    /// theirs. `configure` is not called in tests.
    #[test]
    fn option_indexes() {
        for (option, variable, default) in [
            // The only option of mimalloc v3 whose default is 1000 (ms).
            (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 1000),
            // generic_collect (10000), page_reclaim_on_free (0),
            // page_full_retain (2).
            (PAGE_RECLAIM_ON_FREE - 1, "MIMALLOC_GENERIC_COLLECT", 10_000),
            (PAGE_RECLAIM_ON_FREE, "MIMALLOC_PAGE_RECLAIM_ON_FREE", 0),
            (PAGE_RECLAIM_ON_FREE + 1, "MIMALLOC_PAGE_FULL_RETAIN", 2),
            // page_max_reclaim (-1), page_cross_thread_max_reclaim (32).
            (
                PAGE_CROSS_THREAD_MAX_RECLAIM - 1,
                "MIMALLOC_PAGE_MAX_RECLAIM",
                -1,
            ),
            (
                PAGE_CROSS_THREAD_MAX_RECLAIM,
                "MIMALLOC_PAGE_CROSS_THREAD_MAX_RECLAIM",
                32,
            ),
        ] {
            let (value, expected) = default_of(option, variable, default);
            assert_eq!(value, expected, "option {option} ({variable})");
        }
    }
}
