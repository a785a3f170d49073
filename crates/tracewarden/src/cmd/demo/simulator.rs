//! The simulator: a virtual clock that writes the system's telemetry tick
//! by tick (benign browsing at `--rate`, attacks every `--every`) and
//! sends each tick as one OTLP trace export and one log export.
//!
//! With a warm-up the clock starts in the past and catches up as fast as
//! the server takes it (in larger ticks), so rules that learn a baseline
//! (ddos-burst: 30 buckets of 10 s) have one when the attacks begin; from
//! then on ticks follow the wall clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use super::otlp::{Telemetry, body};
use super::scenario::{self, Action, PlanContext, Scenario};
use super::system::{Visitor, Writer, users};
use crate::cmd::bench::args::Target;
use crate::cmd::bench::driver::{Exporter, Outcome, Signal};

/// A live tick: the export interval of a busy SDK.
const LIVE_TICK: Duration = Duration::from_millis(100);
/// A tick while catching up: fewer, larger exports.
const CATCH_UP_TICK: Duration = Duration::from_secs(5);
/// The shortest tick, at high rates.
const MIN_TICK: Duration = Duration::from_millis(10);
/// Benign requests per export at most (about 3 spans each, 600 bytes a
/// span: a few MB, well under the receivers' 20 MiB body limit).
const MAX_REQUESTS_PER_TICK: f64 = 2000.0;

/// The tick for `rate`: at most [`MAX_REQUESTS_PER_TICK`] requests.
fn tick_length(rate: f64, longest: Duration) -> Duration {
    Duration::from_secs_f64(MAX_REQUESTS_PER_TICK / rate.max(1.0)).clamp(MIN_TICK, longest)
}
/// The first attack comes this long after live traffic starts.
const FIRST_ATTACK: Duration = Duration::from_secs(2);
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Retries of one export the server throttles or refuses before giving up on it.
const MAX_ATTEMPTS: u32 = 5;

/// What the simulator plays.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Benign requests per second.
    pub rate: f64,
    pub seed: u64,
    /// The attacks, in the order they play (empty: benign traffic only).
    pub scenarios: Vec<&'static Scenario>,
    /// Between two attacks.
    pub every: Duration,
    /// How far in the past the clock starts.
    pub warm_up: Duration,
}

impl Settings {
    /// Benign users: enough that each stays far below per-user and
    /// per-address thresholds (a third of a request per second each).
    pub fn user_count(&self) -> usize {
        ((self.rate * 3.0).ceil() as usize).max(50)
    }
}

/// An attack that started: which, and whom its alerts should name.
#[derive(Clone, Debug)]
pub struct Launched {
    pub scenario: &'static Scenario,
    pub actor: String,
}

/// Writes telemetry tick by tick; deterministic for a seed.
pub struct Simulator {
    settings: Settings,
    rng: StdRng,
    users: Vec<Visitor>,
    /// Planned attack actions not yet written, by time.
    pending: Vec<(u64, Action)>,
    /// Fractional benign requests carried to the next tick.
    carry: f64,
    next_attack: Option<u64>,
    attacks: u64,
    /// No attack starts any more (the run's duration is over); those in
    /// flight still play to their end.
    attacks_over: bool,
}

impl Simulator {
    pub fn new(settings: Settings) -> Simulator {
        let users = users(settings.user_count());
        Simulator {
            rng: StdRng::seed_from_u64(settings.seed),
            users,
            settings,
            pending: Vec::new(),
            carry: 0.0,
            next_attack: None,
            attacks: 0,
            attacks_over: false,
        }
    }

    /// The telemetry of `[start, end)`. Attacks are scheduled once ticks
    /// are `live`, so none plays during the warm-up.
    pub fn tick(&mut self, start: u64, end: u64, live: bool) -> (Telemetry, Vec<Launched>) {
        let mut launched = Vec::new();
        if self.attacks_over {
            self.next_attack = None;
        } else if live && self.next_attack.is_none() && !self.settings.scenarios.is_empty() {
            self.next_attack = Some(start + nanos(FIRST_ATTACK));
        }
        while let Some(at) = self.next_attack.filter(|at| *at < end) {
            launched.push(self.launch(at));
            self.next_attack = Some(at + nanos(self.settings.every).max(1));
        }
        let mut out = Telemetry::default();
        let mut writer = Writer {
            out: &mut out,
            rng: &mut self.rng,
        };
        // Benign requests, evenly spread over the tick.
        self.carry += self.settings.rate * (end - start) as f64 / 1e9;
        let count = self.carry.floor();
        self.carry -= count;
        let count = count as u64;
        for i in 0..count {
            let at = start + i * (end - start) / count.max(1);
            if let Some(action) = scenario::benign(writer.rng, &self.users) {
                action.write(&mut writer, at);
            }
        }
        // Attack actions due in this tick.
        let due = self.pending.partition_point(|(at, _)| *at < end);
        for (at, action) in self.pending.drain(..due) {
            action.write(&mut writer, at);
        }
        (out, launched)
    }

    /// Starts no more attacks; [`Simulator::in_flight`] tells when those
    /// started have played every planned request.
    pub fn end_attacks(&mut self) {
        self.attacks_over = true;
        self.next_attack = None;
    }

    /// Planned attack requests not yet written, and when the last is due.
    pub fn in_flight(&self) -> Option<(usize, u64)> {
        self.pending.last().map(|(at, _)| (self.pending.len(), *at))
    }

    fn launch(&mut self, at: u64) -> Launched {
        let scenarios = &self.settings.scenarios;
        let index = (self.attacks % scenarios.len() as u64) as usize;
        let round = self.attacks / scenarios.len() as u64;
        self.attacks += 1;
        let scenario = scenarios[index];
        let context = PlanContext {
            users: &self.users,
            round,
            rate: self.settings.rate,
        };
        let plan = scenario::plan(scenario, at, &context, &mut self.rng);
        self.pending.extend(plan.actions);
        self.pending.sort_by_key(|(t, _)| *t);
        Launched {
            scenario,
            actor: plan.actor,
        }
    }
}

/// Counts of a run.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub requests: u64,
    pub spans: u64,
    pub logs: u64,
    pub failed_exports: u64,
}

/// Where the simulator sends, and what it reports.
pub struct Run {
    pub target: Target,
    /// Live traffic lasts this long (None: until stopped).
    pub duration: Option<Duration>,
    pub started: Instant,
}

/// Sends the simulator's ticks to `run.target` until the duration is over
/// or `stop` turns true. Prints progress and each attack as it starts.
pub async fn drive(
    mut simulator: Simulator,
    run: &Run,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(Sent, Vec<Launched>)> {
    let mut traces = Exporter::connect_for(&run.target, false, Signal::Traces)
        .await
        .with_context(|| format!("cannot connect to {}", run.target))?;
    let mut logs = Exporter::connect_for(&run.target, false, Signal::Logs)
        .await
        .with_context(|| format!("cannot connect to {}", run.target))?;
    let protocol = run.target.protocol;
    let warm_up = simulator.settings.warm_up;
    let live_tick = nanos(tick_length(simulator.settings.rate, LIVE_TICK));
    let catch_up_tick = nanos(tick_length(simulator.settings.rate, CATCH_UP_TICK));
    let mut clock = now_nanos().saturating_sub(nanos(warm_up));
    let mut live_since: Option<u64> = None;
    let mut sent = Sent::default();
    let mut launched_all = Vec::new();
    let mut last_progress = Instant::now();
    let mut progress_spans = 0;
    let mut reported_error = false;
    if !warm_up.is_zero() {
        println!(
            "warm-up: replaying the last {}s of browsing as fast as the server takes it, so \
             ddos-burst has its baseline (30 buckets of 10s) before the attacks",
            warm_up.as_secs()
        );
    }
    loop {
        if *stop.borrow() {
            break;
        }
        let wall = now_nanos();
        let live = clock + live_tick >= wall;
        if live && live_since.is_none() {
            live_since = Some(clock);
            if !warm_up.is_zero() {
                println!("{} warm-up done: live traffic", stamp(run.started));
            }
        }
        if let (Some(since), Some(duration)) = (live_since, run.duration)
            && clock >= since + nanos(duration)
        {
            // An attack started near the end plays to its end (a flood
            // waits for the next ddos-burst bucket): cut short, its alert
            // would be reported missing.
            match simulator.in_flight() {
                None => break,
                Some((requests, last)) if !simulator.attacks_over => {
                    simulator.end_attacks();
                    println!(
                        "{} duration over: no new attacks; finishing those in flight ({} \
                         requests, {:.1}s more)",
                        stamp(run.started),
                        requests,
                        last.saturating_sub(clock) as f64 / 1e9
                    );
                }
                Some(_) => {}
            }
        }
        let tick = if live { live_tick } else { catch_up_tick };
        let end = (clock + tick).min(wall.max(clock + live_tick));
        let (telemetry, launched) = simulator.tick(clock, end, live);
        for attack in launched {
            println!(
                "{} ATTACK {:<21} actor {:<24} expects {}  ({})",
                stamp(run.started),
                attack.scenario.name,
                attack.actor,
                attack.scenario.rules.join(", "),
                attack.scenario.summary
            );
            launched_all.push(attack);
        }
        let trace_body = body(&telemetry.traces_request(), protocol);
        let log_body =
            (telemetry.log_count() > 0).then(|| body(&telemetry.logs_request(), protocol));
        let (traces_ok, logs_ok) = tokio::join!(export(&mut traces, trace_body), async {
            match log_body {
                Some(b) => export(&mut logs, b).await,
                None => Ok(()),
            }
        });
        for result in [&traces_ok, &logs_ok] {
            if let Err(reason) = result {
                sent.failed_exports += 1;
                if !reported_error {
                    println!("{} export failed: {reason}", stamp(run.started));
                    reported_error = true;
                }
            }
        }
        if traces_ok.is_ok() {
            sent.requests += telemetry.requests;
            sent.spans += telemetry.span_count();
        }
        if logs_ok.is_ok() {
            sent.logs += telemetry.log_count();
        }
        clock = end;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            let seconds = last_progress.elapsed().as_secs_f64();
            println!(
                "{} sent {} requests, {} spans, {} log records ({:.0} spans/s)",
                stamp(run.started),
                sent.requests,
                sent.spans,
                sent.logs,
                (sent.spans - progress_spans) as f64 / seconds
            );
            last_progress = Instant::now();
            progress_spans = sent.spans;
        }
        // Live: wait for the wall clock to reach the tick's end.
        let ahead = clock.saturating_sub(now_nanos());
        if ahead > 0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_nanos(ahead)) => {}
                _ = stop.changed() => {}
            }
        }
    }
    Ok((sent, launched_all))
}

/// Sends one body, waiting and retrying when the server throttles.
async fn export(exporter: &mut Exporter, body: bytes::Bytes) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..MAX_ATTEMPTS {
        match exporter.export(body.clone()).await {
            Outcome::Accepted { .. } => return Ok(()),
            Outcome::Throttled { retry_after } => {
                last = "throttled".to_string();
                tokio::time::sleep(retry_after.unwrap_or(Duration::from_millis(100))).await;
            }
            Outcome::Failed(reason) => {
                last = reason;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Err(last)
}

pub fn stamp(started: Instant) -> String {
    format!("[{:>6.1}s]", started.elapsed().as_secs_f64())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A random seed when none is given.
pub fn random_seed() -> u64 {
    rand::rng().random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_stay_small_at_high_rates() {
        assert_eq!(tick_length(20.0, LIVE_TICK), LIVE_TICK);
        assert_eq!(tick_length(20.0, CATCH_UP_TICK), Duration::from_secs(5));
        assert_eq!(tick_length(100_000.0, LIVE_TICK), Duration::from_millis(20));
        assert_eq!(tick_length(200_000.0, CATCH_UP_TICK), MIN_TICK);
    }
}
