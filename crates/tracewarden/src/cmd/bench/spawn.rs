//! `--spawn-server`: this same binary's `serve` as a child process, on a
//! temporary data directory and ephemeral ports, so one command reproduces a
//! figure. The child is killed and the directory deleted when the run ends,
//! on error paths too (by `Drop`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::StatusCode;
use http::uri::Authority;
use tempfile::TempDir;
use tokio::sync::mpsc;

use super::args::Protocol;
use super::http::get_status;

/// How long the server may take to print its addresses, then to be ready.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_POLL: Duration = Duration::from_millis(50);
/// How much of the server's log to quote when it fails to start.
const LOG_TAIL_BYTES: u64 = 2000;

/// A running `tracewarden serve` child.
pub struct SpawnedServer {
    child: Child,
    /// Holds the data directory and the server's log; deleted on drop.
    dir: Option<TempDir>,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
}

/// The listeners `serve` prints, one per line: "  otlp-grpc  127.0.0.1:4317  (...)".
#[derive(Debug, Default, PartialEq, Eq)]
struct Listeners {
    otlp_grpc: Option<SocketAddr>,
    otlp_http: Option<SocketAddr>,
    api: Option<SocketAddr>,
}

impl Listeners {
    fn note(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(address)) = (words.next(), words.next()) else {
            return;
        };
        let Ok(addr) = address.trim_start_matches("http://").parse::<SocketAddr>() else {
            return;
        };
        match name {
            "otlp-grpc" => self.otlp_grpc = Some(addr),
            "otlp-http" => self.otlp_http = Some(addr),
            "api" => self.api = Some(addr),
            _ => {}
        }
    }

    fn complete(&self) -> Option<(SocketAddr, SocketAddr, SocketAddr)> {
        Some((self.otlp_grpc?, self.otlp_http?, self.api?))
    }
}

impl SpawnedServer {
    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn start(
        config: Option<&Path>,
        temp_parent: Option<&Path>,
    ) -> anyhow::Result<SpawnedServer> {
        let exe = std::env::current_exe().context("failed to find this executable")?;
        let parent = temp_parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix("tracewarden-bench-")
            .tempdir_in(&parent)
            .with_context(|| {
                format!(
                    "failed to create a temporary directory in `{}`",
                    parent.display()
                )
            })?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)
            .with_context(|| format!("failed to create `{}`", log_path.display()))?;
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        for flag in ["--otlp-grpc", "--otlp-http", "--zipkin", "--api"] {
            command.args([flag, "127.0.0.1:0"]);
        }
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        if std::env::var_os("TRACEWARDEN_LOG").is_none() {
            // Per-request logs would cost the server CPU and flood the log.
            command.env("TRACEWARDEN_LOG", "warn");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start `{} serve`", exe.display()))?;
        let stdout = child.stdout.take();
        let mut server = SpawnedServer {
            child,
            dir: Some(dir),
            otlp_grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            otlp_http: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let Some(stdout) = stdout else {
            bail!("the server's stdout was not captured")
        };
        let api = match server.wait_for_listeners(stdout).await {
            Ok(api) => api,
            Err(error) => return Err(error.context(server.log_tail())),
        };
        if let Err(error) = server.wait_until_ready(api).await {
            return Err(error.context(server.log_tail()));
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self, protocol: Protocol) -> SocketAddr {
        match protocol {
            Protocol::Grpc => self.otlp_grpc,
            Protocol::Http => self.otlp_http,
        }
    }

    /// Reads the listener lines from the server's stdout, which a thread
    /// then keeps draining so the server never blocks on a full pipe.
    async fn wait_for_listeners(
        &mut self,
        stdout: impl Read + Send + 'static,
    ) -> anyhow::Result<SocketAddr> {
        let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Once the receiver is gone, keep reading and drop the lines.
                let _ = lines_tx.send(line);
            }
        });
        let mut listeners = Listeners::default();
        let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
        while listeners.complete().is_none() {
            match tokio::time::timeout_at(deadline, lines_rx.recv()).await {
                Ok(Some(line)) => listeners.note(&line),
                Ok(None) => bail!("the server exited before printing its addresses"),
                Err(_) => bail!("the server did not print its addresses within {LISTEN_TIMEOUT:?}"),
            }
        }
        let Some((otlp_grpc, otlp_http, api)) = listeners.complete() else {
            bail!("the server did not print its addresses")
        };
        self.otlp_grpc = otlp_grpc;
        self.otlp_http = otlp_http;
        Ok(api)
    }

    async fn wait_until_ready(&mut self, api: SocketAddr) -> anyhow::Result<()> {
        let authority = Authority::try_from(api.to_string())?;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited while starting ({status})");
            }
            if let Ok(StatusCode::OK) = get_status(&authority, "/readyz").await {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("the server was not ready within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The end of the server's log, to explain a failed start.
    fn log_tail(&self) -> String {
        let Some(path) = self.dir.as_ref().map(|dir| dir.path().join("server.log")) else {
            return String::new();
        };
        match read_tail(&path) {
            Ok(tail) if !tail.trim().is_empty() => {
                format!("server log (end):\n{}", tail.trim_end())
            }
            Ok(_) => "the server logged nothing".to_string(),
            Err(error) => format!(
                "failed to read the server log `{}`: {error}",
                path.display()
            ),
        }
    }

    /// Kills the server and deletes its directory.
    pub fn stop(mut self) -> anyhow::Result<()> {
        // The data is thrown away, so there is nothing to shut down cleanly for.
        self.child.kill().context("failed to kill the server")?;
        self.child.wait().context("failed to wait for the server")?;
        if let Some(dir) = self.dir.take() {
            let path: PathBuf = dir.path().to_path_buf();
            dir.close()
                .with_context(|| format!("failed to delete `{}`", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        // After `stop` these find the child already reaped and do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(String::from_utf8_lossy(&tail).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_lines_of_serve_are_parsed() {
        let mut listeners = Listeners::default();
        for line in [
            "tracewarden 0.1.0 listening:",
            "  otlp-grpc  127.0.0.1:40001  (OTLP/gRPC: TraceService, LogsService)",
            "  otlp-http  http://127.0.0.1:40002  (POST /v1/traces, /v1/logs)",
            "  zipkin     http://127.0.0.1:40003  (POST /api/v2/spans)",
            "  data-dir   /tmp/x",
        ] {
            listeners.note(line);
        }
        assert_eq!(listeners.complete(), None, "no api line yet");
        listeners
            .note("  api        http://[::1]:40004  (GET /api/v1/traces/{id}, /healthz, /readyz)");
        assert_eq!(
            listeners.complete(),
            Some((
                SocketAddr::from(([127, 0, 0, 1], 40001)),
                SocketAddr::from(([127, 0, 0, 1], 40002)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 40004)),
            ))
        );
    }
}
