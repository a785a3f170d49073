//! Output piped into `head` and the like: a command that prints and exits
//! ends quietly when its reader goes away, as `ls` and ripgrep do.
//!
//! Rust starts programs with SIGPIPE ignored, so a write to a closed pipe
//! fails with EPIPE and `println!` panics on it (exit 101 and a panic
//! message). Giving SIGPIPE its default action back would also let a socket
//! written with `writev` (hyper's client does) kill the process silently,
//! so instead the panic `println!` raises for a closed stdout ends the
//! process quietly with the status shells give a process ended by SIGPIPE
//! (141). Other panics, and every other error, are reported as before.
//! Only for the commands that print and exit: `serve`, `demo` and `bench`
//! keep the default hook.

/// The exit status of a process ended by SIGPIPE (128 + 13).
const SIGPIPE_STATUS: i32 = 141;

/// Installs the panic hook. Call at the start of `main`.
pub fn end_quietly_when_stdout_closes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if closed_stdout(message) {
            std::process::exit(SIGPIPE_STATUS);
        }
        report(info);
    }));
}

/// Whether `message` is the panic of `print!` on a stdout whose reader left.
fn closed_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_quiet() {
        assert!(closed_stdout(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!closed_stdout(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!closed_stdout("index out of bounds"));
    }
}
