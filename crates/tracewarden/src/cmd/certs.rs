//! `tracewarden certs dev`: a local CA, a server certificate and a client
//! certificate for trying TLS and mutual TLS (docs/TLS.md). Not for
//! production: the CA key sits next to the certificates it signs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

#[derive(Args, Debug)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Subcommand, Debug)]
enum CertsCommand {
    /// Write a development CA (ca.pem, ca-key.pem), a server certificate for
    /// localhost, 127.0.0.1, ::1 and every --host (server.pem, server-key.pem)
    /// and a client certificate for mutual TLS (client.pem, client-key.pem).
    Dev {
        /// Directory to write the files to (created if missing).
        #[arg(long, value_name = "DIR", default_value = "certs")]
        out: PathBuf,
        /// Another name or address the server certificate is valid for (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, value_name = "N", default_value_t = 365)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// The names every dev server certificate carries.
const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The files written, in the order written.
const FILES: [&str; 6] = [
    "ca.pem",
    "ca-key.pem",
    "server.pem",
    "server-key.pem",
    "client.pem",
    "client-key.pem",
];

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    match args.command {
        CertsCommand::Dev {
            out,
            hosts,
            days,
            force,
        } => dev(&out, &hosts, days, force),
    }
}

fn dev(out: &Path, hosts: &[String], days: u32, force: bool) -> anyhow::Result<()> {
    if days == 0 {
        bail!("--days must be at least 1");
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("failed to create the directory `{}`", out.display()))?;
    if !force {
        for name in FILES {
            let path = out.join(name);
            if path.exists() {
                bail!("`{}` exists; pass --force to overwrite it", path.display());
            }
        }
    }
    let mut names: Vec<String> = LOCAL_NAMES.iter().map(|n| n.to_string()).collect();
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let pems = generate(&names, days)?;
    for (name, (text, private)) in FILES.iter().zip(pems) {
        write(&out.join(name), &text, private)?;
    }
    let dir = out
        .canonicalize()
        .with_context(|| format!("failed to resolve `{}`", out.display()))?;
    print!("{}", usage(&dir, &names));
    Ok(())
}

/// The six PEM texts of [`FILES`], each with whether it is a private key.
fn generate(server_names: &[String], days: u32) -> anyhow::Result<Vec<(String, bool)>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let now = i64::try_from(now).context("the clock is out of range")?;
    // An hour back, so a client whose clock is a little behind accepts it.
    let not_before = rcgen::date_time_ymd(1970, 1, 1) + time::Duration::seconds(now - 3600);
    let not_after = not_before + time::Duration::days(i64::from(days)) + time::Duration::hours(1);
    let validity = |params: &mut CertificateParams| {
        params.not_before = not_before;
        params.not_after = not_after;
    };

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "tracewarden development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca = CertifiedIssuer::self_signed(ca, ca_key).context("signing the CA certificate")?;

    let leaf = |common_name: &str,
                names: Vec<String>,
                usage: ExtendedKeyUsagePurpose|
     -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate().context("generating a key")?;
        let mut params = CertificateParams::new(names)
            .with_context(|| format!("invalid name for the {common_name} certificate"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let cert = params
            .signed_by(&key, &ca)
            .with_context(|| format!("signing the {common_name} certificate"))?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (server, server_key) = leaf(
        "tracewarden server",
        server_names.to_vec(),
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client, client_key) = leaf(
        "tracewarden client",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    Ok(vec![
        (ca.pem(), false),
        (ca_key_pem, true),
        (server, false),
        (server_key, true),
        (client, false),
        (client_key, true),
    ])
}

/// Writes `text` to `path`; private keys readable by the owner only.
fn write(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mode = if private { 0o600 } else { 0o644 };
        options.mode(mode);
        let mut file = options
            .open(path)
            .with_context(|| format!("failed to create `{}`", path.display()))?;
        // `mode` applies only to a new file; --force may reuse an old one.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    #[cfg(not(unix))]
    {
        let _ = private;
        let mut file = options
            .open(path)
            .with_context(|| format!("failed to create `{}`", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    Ok(())
}

/// What to put in the config and the environment to use the files in `dir`.
fn usage(dir: &Path, names: &[String]) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    let (ca, server, server_key, client, client_key) = (
        file("ca.pem"),
        file("server.pem"),
        file("server-key.pem"),
        file("client.pem"),
        file("client-key.pem"),
    );
    format!(
        "wrote a development CA, a server certificate ({names}) and a client certificate to {dir}
(private keys are mode 0600; the CA key signs anything: keep it out of production)

# tracewarden.toml: TLS on every listener
[tls]
cert = \"{server}\"
key = \"{server_key}\"
# mutual TLS: the receivers (OTLP/gRPC, OTLP/HTTP, Zipkin) require a client certificate
client_ca = \"{ca}\"
client_auth = \"required\"

# or, without a config file: tracewarden serve --tls-cert {server} --tls-key {server_key}

# the API and the CLI
curl --cacert {ca} https://localhost:7700/healthz
export TRACEWARDEN_CA_CERT={ca}

# OpenTelemetry SDKs and the Collector's OTLP exporter
export OTEL_EXPORTER_OTLP_ENDPOINT=https://localhost:4317
export OTEL_EXPORTER_OTLP_CERTIFICATE={ca}
export OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE={client}
export OTEL_EXPORTER_OTLP_CLIENT_KEY={client_key}

# OTLP/HTTP with the client certificate
curl --cacert {ca} --cert {client} --key {client_key} -H 'content-type: application/json' \\
  -d '{{\"resourceSpans\":[]}}' https://localhost:4318/v1/traces
",
        names = names.join(", "),
        dir = dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_six_files_keys_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        dev(&out, &["tw.example".to_string()], 30, false).unwrap();
        for name in FILES {
            let text = std::fs::read_to_string(out.join(name)).unwrap();
            let expected = if name.ends_with("-key.pem") {
                "PRIVATE KEY-----"
            } else {
                "-----BEGIN CERTIFICATE-----"
            };
            assert!(text.contains(expected), "{name}: {text}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(out.join(name))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777;
                let expected = if name.ends_with("-key.pem") {
                    0o600
                } else {
                    0o644
                };
                assert_eq!(mode, expected, "{name}");
            }
        }
        let error = dev(&out, &[], 30, false).unwrap_err().to_string();
        assert!(error.contains("--force"), "{error}");
        let before = std::fs::read(out.join("ca.pem")).unwrap();
        dev(&out, &[], 30, true).unwrap();
        assert_ne!(std::fs::read(out.join("ca.pem")).unwrap(), before);
    }

    #[test]
    fn bad_host_and_days_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(dev(dir.path(), &[], 0, false).is_err());
        assert!(dev(dir.path(), &["ex\u{e4}mple.com".to_string()], 1, false).is_err());
    }
}
