//! The process's allocator, mimalloc, and the one setting tracewarden changes.
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

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (an index into its
/// options; libmimalloc-sys does not name it). `tests::purge_delay_option`
/// holds the index to the option's documented default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable mimalloc reads `purge_delay` from.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Its deprecated name, which mimalloc still reads.
const RESET_DELAY_ENV: &str = "MIMALLOC_RESET_DELAY";

/// Keeps freed memory for reuse unless the environment chose a purge delay.
/// Call first in `main`, before any other thread starts.
pub fn configure() {
    if purge_delay_in(std::env::vars_os().map(|(name, _)| name)) {
        return;
    }
    // SAFETY: mi_option_set writes one entry of mimalloc's option table and
    // is not synchronised; it runs at the start of `main`, before any thread
    // of ours exists, and PURGE_DELAY is a valid option index (tested). The
    // measured reason is in the module comment.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

/// Whether `names` hold a purge delay for mimalloc, which reads its
/// variables in upper or lower case.
fn purge_delay_in(mut names: impl Iterator<Item = std::ffi::OsString>) -> bool {
    names.any(|name| {
        name.to_str().is_some_and(|name| {
            name.eq_ignore_ascii_case(PURGE_DELAY_ENV) || name.eq_ignore_ascii_case(RESET_DELAY_ENV)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(list: &'a [&str]) -> impl Iterator<Item = std::ffi::OsString> + 'a {
        list.iter().map(std::ffi::OsString::from)
    }

    #[test]
    fn an_environment_purge_delay_is_left_alone() {
        assert!(purge_delay_in(names(&["PATH", "MIMALLOC_PURGE_DELAY"])));
        assert!(purge_delay_in(names(&["mimalloc_purge_delay"])));
        assert!(purge_delay_in(names(&["MIMALLOC_RESET_DELAY"])));
        assert!(!purge_delay_in(names(&["PATH", "MIMALLOC_ALLOW_THP"])));
        assert!(!purge_delay_in(names(&[])));
    }

    /// The index names `purge_delay`: the only option of mimalloc v3 whose
    /// default is 1000 (ms), read unless the environment overrides it.
    #[test]
    fn purge_delay_option() {
        let expected = std::env::var(PURGE_DELAY_ENV)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(1000);
        // SAFETY: mi_option_get only reads mimalloc's option table (it reads
        // the environment once on first use).
        #[allow(unsafe_code)]
        let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(value, expected);
    }
}
