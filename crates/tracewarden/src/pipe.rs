//! Output piped into `head` and the like: a command that prints and exits
//! ends quietly when its reader goes away, as `ls` and ripgrep do.
//!
//! Rust starts programs with SIGPIPE ignored, so a write to a closed pipe
//! fails with EPIPE and `println!` panics on it (exit 101 and a panic
//! message). With the default action back, the kernel ends the process at
//! that write, silently, with the status shells report for SIGPIPE. Only
//! for the commands that print and exit: `serve`, `demo` and `bench` keep it
//! ignored, so a closed log pipe is an error they handle, not their end.
//! Sockets are unaffected: Rust sends on them with MSG_NOSIGNAL.

/// Restores SIGPIPE's default action. Call at the start of `main`.
pub fn end_quietly_when_stdout_closes() {
    #[cfg(unix)]
    // SAFETY: `signal` sets the disposition of one signal to the default
    // action: no handler of ours runs, nothing is shared with Rust code, and
    // it runs at the start of `main`, before any thread of ours exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
