//! Reading certificates and keys from PEM files, each error naming the file.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, error: pem::Error) -> TlsError {
    TlsError::Pem {
        what,
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

/// Every certificate in a PEM file (a chain or a CA bundle); at least one.
pub fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "private key";
    let bytes = read(WHAT, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        e => invalid(WHAT, path, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real certificate is not needed to test what happens before parsing
    // DER: the PEM layer only checks the armour and the base64.
    const FAKE_CERT: &str = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
    const FAKE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nAAECAw==\n-----END PRIVATE KEY-----\n";

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[track_caller]
    fn assert_names(error: TlsError, path: &Path, expected: &str) {
        let text = error.to_string();
        assert!(
            text.contains(&path.display().to_string()),
            "`{text}` does not name {path:?}"
        );
        assert!(text.contains(expected), "`{text}` lacks `{expected}`");
    }

    #[test]
    fn certificate_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert_names(
            certificates("certificate", &missing).unwrap_err(),
            &missing,
            "failed to read certificate",
        );
        for (name, text, expected) in [
            ("empty.pem", "", "no certificate found"),
            ("key-only.pem", FAKE_KEY, "no certificate found"),
            ("text.pem", "hello\n", "no certificate found"),
            (
                "bad-base64.pem",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "invalid PEM",
            ),
            (
                "unterminated.pem",
                "-----BEGIN CERTIFICATE-----\nAAECAw==\n",
                "invalid PEM",
            ),
        ] {
            let path = file(&dir, name, text);
            assert_names(
                certificates("certificate", &path).unwrap_err(),
                &path,
                expected,
            );
        }
        let path = file(&dir, "two.pem", &format!("{FAKE_CERT}{FAKE_CERT}"));
        assert_eq!(certificates("certificate", &path).unwrap().len(), 2);
    }

    #[test]
    fn key_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-key.pem");
        assert_names(
            private_key(&missing).unwrap_err(),
            &missing,
            "failed to read private key",
        );
        for (name, text, expected) in [
            ("empty.pem", "", "no private key found"),
            ("cert-only.pem", FAKE_CERT, "no private key found"),
            (
                "bad.pem",
                "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
                "invalid PEM",
            ),
        ] {
            let path = file(&dir, name, text);
            assert_names(private_key(&path).unwrap_err(), &path, expected);
        }
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            let path = file(
                &dir,
                "key.pem",
                &format!("-----BEGIN {label}-----\nAAECAw==\n-----END {label}-----\n"),
            );
            let key = private_key(&path).unwrap();
            assert_eq!(key.secret_der(), &[0, 1, 2, 3], "{label}");
        }
    }
}
