//! The result of `bench ingest`: a few lines for people, JSON for scripts.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::args::Protocol;
use super::driver::Run;
use super::usage::Machine;

/// Everything a figure in docs/BENCHMARKS.md needs, including how to reproduce it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub target: String,
    pub protocol: Protocol,
    pub connections: u16,
    pub gzip: bool,
    pub batch_spans: u32,
    pub batches: u32,
    pub seed: u64,
    pub duration_s: f64,
    /// With --rate: the spans per second asked for.
    pub target_spans_per_second: Option<u64>,
    /// With --rate: requests sent late because the schedule could not be kept.
    pub late_requests: u64,
    pub elapsed_s: f64,
    pub protobuf_bytes_per_span: f64,
    pub body_bytes_per_span: f64,
    pub requests: Requests,
    pub spans: Spans,
    pub spans_per_second: f64,
    /// Request bodies as sent (compressed with --gzip), in MB (10^6 bytes) per second.
    pub sent_mb_per_second: f64,
    /// The same requests' protobuf before compression, in MB per second.
    pub protobuf_mb_per_second: f64,
    /// Of acknowledged requests; `None` when there were none.
    pub latency_ms: Option<Latency>,
    /// CPU cores the load generator kept busy on average (CPU time / elapsed).
    pub client_cpu_cores: Option<f64>,
    /// With --spawn-server: what the server used.
    pub server: Option<ServerUsage>,
    pub errors: Vec<ErrorCount>,
    pub machine: Machine,
}

#[derive(Debug, Serialize)]
pub struct Requests {
    pub ok: u64,
    pub failed: u64,
    /// HTTP 429 / gRPC `RESOURCE_EXHAUSTED` with a retry hint.
    pub throttled: u64,
}

#[derive(Debug, Serialize)]
pub struct Spans {
    pub accepted: u64,
    /// Rejected by the server in an acknowledged request (partial success).
    pub rejected: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct ServerUsage {
    pub cpu_cores: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorCount {
    pub message: String,
    pub count: u64,
}

/// What the report is about, besides the run's counts.
#[derive(Debug)]
pub struct Setting {
    pub command: String,
    pub target: String,
    pub protocol: Protocol,
    pub connections: u16,
    pub gzip: bool,
    pub batch_spans: u32,
    pub batches: u32,
    pub seed: u64,
    pub duration: Duration,
    pub rate: Option<u64>,
    pub protobuf_bytes_per_span: f64,
    pub body_bytes_per_span: f64,
}

/// CPU time used during the run, for the client and (if spawned) the server.
#[derive(Debug, Default)]
pub struct Costs {
    pub client_cpu: Option<Duration>,
    pub server_cpu: Option<Duration>,
    pub server_peak_rss_bytes: Option<u64>,
    pub server_spawned: bool,
}

impl Report {
    pub fn new(setting: Setting, run: Run, costs: Costs) -> Report {
        let Run { mut tally, elapsed } = run;
        let seconds = elapsed.as_secs_f64();
        let per_second = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        let cores = |cpu: Option<Duration>| {
            cpu.filter(|_| seconds > 0.0)
                .map(|cpu| cpu.as_secs_f64() / seconds)
        };
        tally.latencies_us.sort_unstable();
        Report {
            command: setting.command,
            target: setting.target,
            protocol: setting.protocol,
            connections: setting.connections,
            gzip: setting.gzip,
            batch_spans: setting.batch_spans,
            batches: setting.batches,
            seed: setting.seed,
            duration_s: setting.duration.as_secs_f64(),
            target_spans_per_second: setting.rate,
            late_requests: tally.late_requests,
            elapsed_s: seconds,
            protobuf_bytes_per_span: setting.protobuf_bytes_per_span,
            body_bytes_per_span: setting.body_bytes_per_span,
            requests: Requests {
                ok: tally.requests_ok,
                failed: tally.requests_failed,
                throttled: tally.requests_throttled,
            },
            spans: Spans {
                accepted: tally.spans_accepted,
                rejected: tally.spans_rejected,
            },
            spans_per_second: per_second(tally.spans_accepted),
            sent_mb_per_second: per_second(tally.body_bytes) / 1e6,
            protobuf_mb_per_second: per_second(tally.protobuf_bytes) / 1e6,
            latency_ms: Latency::of_sorted(&tally.latencies_us),
            client_cpu_cores: cores(costs.client_cpu),
            server: costs.server_spawned.then(|| ServerUsage {
                cpu_cores: cores(costs.server_cpu),
                peak_rss_bytes: costs.server_peak_rss_bytes,
            }),
            errors: tally
                .errors
                .into_iter()
                .map(|(message, count)| ErrorCount { message, count })
                .collect(),
            machine: Machine::describe(),
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).context("failed to serialise the report")?;
        json.push(b'\n');
        std::fs::write(path, json).with_context(|| format!("failed to write `{}`", path.display()))
    }
}

impl Latency {
    /// Nearest-rank percentiles of latencies in microseconds, sorted ascending.
    fn of_sorted(sorted_us: &[u64]) -> Option<Latency> {
        let max = *sorted_us.last()?;
        let rank = |p: f64| {
            let index = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
            sorted_us
                .get(index.saturating_sub(1))
                .copied()
                .unwrap_or(max)
        };
        let ms = |us: u64| us as f64 / 1000.0;
        let mean =
            sorted_us.iter().map(|&us| us as f64).sum::<f64>() / sorted_us.len() as f64 / 1000.0;
        Some(Latency {
            p50: ms(rank(50.0)),
            p90: ms(rank(90.0)),
            p99: ms(rank(99.0)),
            max: ms(max),
            mean,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench ingest: {} ({}), {} connection{}, {:.1} s, {} spans/request, {} batches, {:.0} B/span protobuf, gzip {}",
            self.target,
            self.protocol,
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.duration_s,
            self.batch_spans,
            self.batches,
            self.protobuf_bytes_per_span,
            if self.gzip {
                format!("on ({:.0} B/span sent)", self.body_bytes_per_span)
            } else {
                "off".to_string()
            },
        )?;
        writeln!(
            f,
            "  requests   ok {}  failed {}  throttled (429 / RESOURCE_EXHAUSTED) {}",
            self.requests.ok, self.requests.failed, self.requests.throttled
        )?;
        writeln!(
            f,
            "  accepted   {:.0} spans/s  {:.1} MB/s sent  {:.1} MB/s protobuf  ({} spans, {} rejected, in {:.2} s)",
            self.spans_per_second,
            self.sent_mb_per_second,
            self.protobuf_mb_per_second,
            self.spans.accepted,
            self.spans.rejected,
            self.elapsed_s
        )?;
        if let Some(rate) = self.target_spans_per_second {
            writeln!(
                f,
                "  paced      asked {rate} spans/s; {} of {} requests sent late",
                self.late_requests,
                self.requests.ok + self.requests.failed + self.requests.throttled
            )?;
        }
        match &self.latency_ms {
            Some(l) => writeln!(
                f,
                "  latency    p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  mean {:.1} ms",
                l.p50, l.p90, l.p99, l.max, l.mean
            )?,
            None => writeln!(f, "  latency    no request was acknowledged")?,
        }
        write!(f, "  cpu        client {}", cores(self.client_cpu_cores))?;
        if let Some(server) = &self.server {
            write!(f, "  server {}", cores(server.cpu_cores))?;
            if let Some(bytes) = server.peak_rss_bytes {
                write!(f, ", peak RSS {:.0} MiB", bytes as f64 / (1024.0 * 1024.0))?;
            }
        }
        writeln!(f, "  (of {} CPUs)", self.machine.cpus)?;
        for error in &self.errors {
            writeln!(f, "  error      {} x {}", error.count, error.message)?;
        }
        Ok(())
    }
}

fn cores(value: Option<f64>) -> String {
    value.map_or_else(
        || "unknown".to_string(),
        |cores| format!("{cores:.2} cores"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cmd::bench::driver::Tally;

    fn setting() -> Setting {
        Setting {
            command: "tracewarden bench ingest --spawn-server".to_string(),
            target: "grpc://127.0.0.1:4317".to_string(),
            protocol: Protocol::Grpc,
            connections: 4,
            gzip: false,
            batch_spans: 1000,
            batches: 16,
            seed: 1,
            duration: Duration::from_secs(2),
            rate: None,
            protobuf_bytes_per_span: 577.0,
            body_bytes_per_span: 577.0,
        }
    }

    #[test]
    fn rates_are_per_elapsed_second_and_the_json_holds_them() {
        let tally = Tally {
            requests_ok: 3,
            requests_throttled: 2,
            spans_accepted: 2500,
            spans_rejected: 500,
            body_bytes: 3_000_000,
            protobuf_bytes: 3_000_000,
            latencies_us: vec![30_000, 10_000, 20_000],
            ..Tally::default()
        };
        let run = Run {
            tally,
            elapsed: Duration::from_millis(2500),
        };
        let costs = Costs {
            client_cpu: Some(Duration::from_millis(250)),
            ..Costs::default()
        };
        let report = Report::new(setting(), run, costs);
        assert_eq!(report.spans_per_second, 1000.0);
        assert_eq!(report.sent_mb_per_second, 1.2);
        assert_eq!(report.client_cpu_cores, Some(0.1));
        assert!(report.server.is_none(), "no server was spawned");
        assert_eq!(
            report.latency_ms.as_ref().map(|l| (l.p50, l.max)),
            Some((20.0, 30.0))
        );

        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["protocol"], "grpc");
        assert_eq!(json["requests"]["throttled"], 2);
        assert_eq!(json["spans"]["rejected"], 500);
        let text = report.to_string();
        assert!(text.contains("1000 spans/s"), "{text}");
        assert!(
            text.contains("throttled (429 / RESOURCE_EXHAUSTED) 2"),
            "{text}"
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<u64> = (1..=1000).map(|ms| ms * 1000).collect();
        let latency = Latency::of_sorted(&sorted);
        assert_eq!(
            latency,
            Some(Latency {
                p50: 500.0,
                p90: 900.0,
                p99: 990.0,
                max: 1000.0,
                mean: 500.5
            })
        );
        assert_eq!(
            Latency::of_sorted(&[7000]),
            Some(Latency {
                p50: 7.0,
                p90: 7.0,
                p99: 7.0,
                max: 7.0,
                mean: 7.0
            })
        );
        assert_eq!(Latency::of_sorted(&[]), None);
    }
}
