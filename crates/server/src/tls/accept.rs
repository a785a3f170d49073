//! The TLS accept loop shared by every listener.
//!
//! One task accepts TCP connections and spawns a handshake per connection,
//! each under a timeout, so a slow or silent client holds only its own
//! socket; finished handshakes go through a channel to whoever serves the
//! listener: axum (as an [`axum::serve::Listener`]) or tonic (as a stream
//! of [`GrpcTlsStream`]). Dropping the [`TlsListener`] (what both do on
//! graceful shutdown) stops the loop and closes the socket.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::metrics::{Exposition, Kind, MetricsSource};

/// Handshakes waiting to be served; the loop waits when they pile up.
const QUEUE: usize = 128;

/// Handshake outcomes per listener, for `/metrics`.
#[derive(Debug, Default)]
pub struct HandshakeCounts {
    listeners: Mutex<Vec<(&'static str, Arc<ListenerCounts>)>>,
    /// Certificate reloads that took effect, and changes that did not load.
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_failed: AtomicU64,
}

/// One listener's handshake outcomes.
#[derive(Debug, Default)]
pub struct ListenerCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

impl ListenerCounts {
    /// (succeeded, failed, timed out) so far.
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.timed_out.load(Ordering::Relaxed),
        )
    }
}

impl HandshakeCounts {
    /// The counters of listener `what` (created on first use).
    pub fn listener(&self, what: &'static str) -> Arc<ListenerCounts> {
        let mut listeners = match self.listeners.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, counts)) = listeners.iter().find(|(name, _)| *name == what) {
            return counts.clone();
        }
        let counts = Arc::new(ListenerCounts::default());
        listeners.push((what, counts.clone()));
        counts
    }
}

impl MetricsSource for HandshakeCounts {
    fn collect(&self, out: &mut Exposition) {
        let listeners = match self.listeners.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        out.family(
            "tracewarden_tls_handshakes_total",
            Kind::Counter,
            "TLS handshakes by listener and result (ok, failed, timeout)",
        );
        for (what, counts) in &listeners {
            let (ok, failed, timed_out) = counts.get();
            for (result, value) in [("ok", ok), ("failed", failed), ("timeout", timed_out)] {
                out.sample(
                    "tracewarden_tls_handshakes_total",
                    &[("listener", what), ("result", result)],
                    value as f64,
                );
            }
        }
        out.family(
            "tracewarden_tls_reloads_total",
            Kind::Counter,
            "Changes of the certificate files seen while running, by result (ok: in use; failed: did not load, the previous certificate stays)",
        );
        for (result, value) in [("ok", &self.reloads_ok), ("failed", &self.reloads_failed)] {
            out.sample(
                "tracewarden_tls_reloads_total",
                &[("result", result)],
                value.load(Ordering::Relaxed) as f64,
            );
        }
    }
}

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accept_loop: tokio::task::AbortHandle,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl TlsListener {
    /// Starts accepting on `listener` (on the current tokio runtime).
    pub fn start(
        what: &'static str,
        listener: TcpListener,
        config: Arc<super::LiveConfig>,
        handshake_timeout: Duration,
        counts: Arc<ListenerCounts>,
    ) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(QUEUE);
        let task = tokio::spawn(accept_loop(
            what,
            listener,
            config,
            handshake_timeout,
            counts,
            tx,
        ));
        Ok(TlsListener {
            incoming,
            local_addr,
            accept_loop: task.abort_handle(),
        })
    }

    /// The connections as tonic's `serve_with_incoming*` takes them; the
    /// stream owns the listener, so dropping it stops accepting.
    pub fn into_grpc_incoming(
        mut self,
    ) -> impl Stream<Item = Result<GrpcTlsStream, Infallible>> + Send + 'static {
        futures::stream::poll_fn(move |cx| {
            self.incoming
                .poll_recv(cx)
                .map(|next| next.map(|(stream, _)| Ok(GrpcTlsStream(stream))))
        })
    }
}

async fn accept_loop(
    what: &'static str,
    listener: TcpListener,
    config: Arc<super::LiveConfig>,
    handshake_timeout: Duration,
    counts: Arc<ListenerCounts>,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // As axum does: errors of one connection are skipped; others
                // (out of file descriptors) get a pause before retrying.
                if !is_connection_error(&error) {
                    tracing::error!(listener = what, %error, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        // Responses are small; don't let Nagle hold them back (gRPC measured
        // 23k -> 296k spans/s on one connection with it off).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "failed to set TCP_NODELAY");
        }
        // The configuration in force now: a reload applies from the next
        // connection on.
        let acceptor = TlsAcceptor::from(config.current());
        let (counts, handshaken) = (counts.clone(), handshaken.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                    // Fails only when the listener is gone (shutting down).
                    let _ = handshaken.send((stream, peer)).await;
                }
                Ok(Err(error)) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(listener = what, %peer, %error, "TLS handshake failed");
                }
                Err(_) => {
                    counts.timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(listener = what, %peer, timeout = ?handshake_timeout, "TLS handshake timed out");
                }
            }
        });
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The loop ends only when aborted, which is on drop: unreachable
            // while `self` lives, but never busy-loop if it were.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// A TLS connection as tonic serves it: tonic needs [`Connected`] for
/// connection info, which it implements for TLS streams only with its own
/// TLS features.
///
/// [`Connected`]: tonic::transport::server::Connected
pub struct GrpcTlsStream(TlsStream<TcpStream>);

impl tonic::transport::server::Connected for GrpcTlsStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for GrpcTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
