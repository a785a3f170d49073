//! What the run cost, and on what: CPU time and peak memory of a process,
//! and the machine, from Linux's /proc. Elsewhere these are `None`, and the
//! report says "unknown".

use std::fs;
use std::time::Duration;

use serde::Serialize;

/// Clock ticks per second of /proc's CPU times: `USER_HZ`, which Linux fixes
/// at 100 on every architecture it exports times for (see proc(5)).
const USER_HZ: u64 = 100;

/// A process to read: this one or a child.
#[derive(Clone, Copy, Debug)]
pub enum Process {
    This,
    Child(u32),
}

impl Process {
    fn proc_dir(self) -> String {
        match self {
            Process::This => "/proc/self".to_string(),
            Process::Child(pid) => format!("/proc/{pid}"),
        }
    }

    /// User plus system CPU time of all the process's threads so far.
    pub fn cpu_time(self) -> Option<Duration> {
        let stat = fs::read_to_string(format!("{}/stat", self.proc_dir())).ok()?;
        parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
    }

    /// The resident set's high-water mark (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(self) -> Option<u64> {
        let status = fs::read_to_string(format!("{}/status", self.proc_dir())).ok()?;
        kibibytes_field(&status, "VmHWM:").map(|kib| kib * 1024)
    }
}

/// utime + stime from a /proc/PID/stat line. The command name (field 2) is
/// in parentheses and may hold spaces or parentheses, so fields are counted
/// from the last ')': state is then the first, utime the 12th, stime the 13th.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A "Name:   1234 kB" line of /proc/PID/status or /proc/meminfo.
fn kibibytes_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The machine the figures were measured on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_bytes: Option<u64>,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map(|(_, model)| model.trim().to_string());
        let memory_bytes = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| kibibytes_field(&m, "MemTotal:"))
            .map(|kib| kib * 1024);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_past_a_tricky_command_name() {
        // From a real /proc/PID/stat, with the name replaced by one holding ") (".
        let stat = "4242 (tracewarden) (x) S 4200 4242 4200 34816 4242 4194304 8104 0 0 0 1234 567 0 0 20 0 6 0 \
                    1009 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_cpu_ticks("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn kibibyte_fields_are_found_by_name() {
        let status =
            "Name:\ttracewarden\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(kibibytes_field(status, "VmHWM:"), Some(81234));
        assert_eq!(kibibytes_field(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory_on_linux() {
        if cfg!(target_os = "linux") {
            // Burn a little CPU so the tick counter has moved.
            let mut x = 0u64;
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            assert!(Process::This.cpu_time().is_some());
            assert!(
                Process::This
                    .peak_rss_bytes()
                    .is_some_and(|bytes| bytes > 0)
            );
            assert!(
                Machine::describe()
                    .memory_bytes
                    .is_some_and(|bytes| bytes > 0)
            );
        }
    }
}
