//! RFC 5424 syslog over UDP (a datagram per message, RFC 5426) or TCP
//! (octet-counting framing, RFC 6587).

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket};

use super::SendError;
use crate::config::{SyslogConfig, SyslogTransport};
use crate::notification::Notification;
use crate::payload::syslog::{
    MAX_TCP_BYTES, MAX_UDP_BYTES, SyslogHeader, octet_counted, syslog_message,
};

#[derive(Debug)]
pub struct SyslogSink {
    address: String,
    transport: SyslogTransport,
    header: SyslogHeader,
    tcp: Option<TcpStream>,
}

impl SyslogSink {
    pub fn new(cfg: &SyslogConfig) -> SyslogSink {
        SyslogSink {
            address: cfg.address.clone(),
            transport: cfg.transport,
            header: SyslogHeader {
                facility: cfg.facility,
                hostname: cfg.hostname.clone().unwrap_or_else(local_hostname),
                app_name: cfg.app_name.clone(),
                procid: std::process::id().to_string(),
            },
            tcp: None,
        }
    }

    /// Sends one message per alert of the notification.
    pub async fn send(&mut self, n: &Notification) -> Result<(), SendError> {
        let fail =
            |e: std::io::Error| SendError::retryable(format!("syslog {}: {e}", self.address));
        match self.transport {
            SyslogTransport::Udp => {
                let target = tokio::net::lookup_host(&self.address)
                    .await
                    .map_err(fail)?
                    .next()
                    .ok_or_else(|| {
                        SendError::retryable(format!("syslog {}: no address", self.address))
                    })?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await.map_err(fail)?;
                for alert in &n.alerts {
                    let message =
                        syslog_message(alert, &self.header, n.at_unix_nano, MAX_UDP_BYTES);
                    socket
                        .send_to(message.as_bytes(), target)
                        .await
                        .map_err(fail)?;
                }
                Ok(())
            }
            SyslogTransport::Tcp => {
                let mut frames = String::new();
                for alert in &n.alerts {
                    let message =
                        syslog_message(alert, &self.header, n.at_unix_nano, MAX_TCP_BYTES);
                    frames.push_str(&octet_counted(&message));
                }
                if self.tcp.is_none() {
                    self.tcp = Some(TcpStream::connect(&self.address).await.map_err(fail)?);
                }
                let Some(stream) = &mut self.tcp else {
                    return Err(SendError::retryable("syslog: not connected".to_string()));
                };
                let written = async {
                    stream.write_all(frames.as_bytes()).await?;
                    stream.flush().await
                }
                .await;
                if let Err(e) = written {
                    // Reconnect on the next attempt.
                    self.tcp = None;
                    return Err(fail(e));
                }
                Ok(())
            }
        }
    }
}

/// This machine's host name (Linux), or RFC 5424's NILVALUE.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "-".to_string())
}
