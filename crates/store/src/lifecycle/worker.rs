//! The lifecycle thread: checks the flush triggers, and runs flushes,
//! compactions and retention off the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Lifecycle;
use super::tiers::Tiers;

/// How often compaction and retention run when nothing else wakes the thread.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// The longest wait before retrying a failed flush.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Wakes the lifecycle thread: a flush is due, or the store stops.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// Set by appenders when the hot tier reached `flush_spans`, so only the
    /// first of them takes the lock to wake the thread.
    nudged: AtomicBool,
    state: Mutex<SignalState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    nudged: bool,
    stop: bool,
}

enum Wake {
    Nudged,
    Timeout,
    Stop,
}

impl Signal {
    /// Asks for a flush check now. Cheap when one is already asked for.
    pub fn nudge(&self) {
        if self.nudged.swap(true, Ordering::AcqRel) {
            return;
        }
        self.state.lock().nudged = true;
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_one();
    }

    fn wait(&self, timeout: Duration) -> Wake {
        let mut state = self.state.lock();
        if !state.stop && !state.nudged {
            self.wake.wait_for(&mut state, timeout);
        }
        if state.stop {
            return Wake::Stop;
        }
        if std::mem::take(&mut state.nudged) {
            self.nudged.store(false, Ordering::Release);
            return Wake::Nudged;
        }
        Wake::Timeout
    }
}

/// Starts the lifecycle thread.
pub(crate) fn spawn(
    lifecycle: Arc<Mutex<Lifecycle>>,
    tiers: Arc<Tiers>,
    signal: Arc<Signal>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tracewarden-lifecycle".into())
        .spawn(move || run(&lifecycle, &tiers, &signal))
}

fn run(lifecycle: &Mutex<Lifecycle>, tiers: &Tiers, signal: &Signal) {
    let (flush_spans, flush_age) = {
        let lifecycle = lifecycle.lock();
        (lifecycle.options.flush_spans, lifecycle.options.flush_age)
    };
    // Often enough that a flush by age is at most a quarter late.
    let tick = (flush_age / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut backoff = tick;
    let mut retry_at: Option<Instant> = None;
    // Compaction and retention run at start (a store opened with old
    // segments), after each flush and every MAINTENANCE_INTERVAL.
    let mut maintenance_at = Instant::now();
    loop {
        if let Wake::Stop = signal.wait(tick) {
            return;
        }
        let now = Instant::now();
        if retry_at.is_none_or(|at| now >= at) {
            let state = tiers.snapshot();
            let counts = state.hot.counts();
            let due = state.frozen.is_some()
                || counts.spans.saturating_add(counts.logs) >= flush_spans
                || state.hot.age().is_some_and(|age| age >= flush_age);
            if due {
                match lifecycle.lock().flush() {
                    Ok(_) => {
                        retry_at = None;
                        backoff = tick;
                        maintenance_at = now;
                    }
                    Err(_) => {
                        // Logged by flush(); the WAL keeps the data.
                        retry_at = Some(now + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
        if Instant::now() >= maintenance_at {
            maintenance_at = Instant::now() + MAINTENANCE_INTERVAL;
            let mut lifecycle = lifecycle.lock();
            // Both log their own failures and are retried next time.
            if lifecycle.options.compaction.enabled {
                let _ = lifecycle.compact();
            }
            let _ = lifecycle.enforce_retention();
        }
    }
}
