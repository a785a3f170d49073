//! `tracewarden encryption-key generate --out FILE`: a new key for
//! encryption at rest.
//!
//! Writes 32 random bytes as 64 hex characters to FILE (mode 0600; refuses
//! to overwrite) and prints the key's id, never the key. Give FILE to the
//! server (`[store] encryption_key_file`): new WAL files and segments are then
//! encrypted with it, and the store cannot be opened without it. Keep a copy
//! somewhere safe: data encrypted with a lost key is lost.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tracewarden_store::generate_key_file;

#[derive(Args, Debug)]
pub struct EncryptionKeyArgs {
    #[command(subcommand)]
    pub command: EncryptionKeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum EncryptionKeyCommand {
    /// Generate a key file (mode 0600).
    Generate {
        /// Where to write the key; refuses to overwrite.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(args: EncryptionKeyArgs) -> anyhow::Result<()> {
    match args.command {
        EncryptionKeyCommand::Generate { out } => {
            let id = generate_key_file(&out)?;
            println!(
                "encryption key: {} (keep it secret, and a copy safe)",
                out.display()
            );
            println!("key id:         {id}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tracewarden_store::EncryptionKey;

    #[test]
    fn generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("store.key");
        let generate = || {
            run(EncryptionKeyArgs {
                command: EncryptionKeyCommand::Generate { out: out.clone() },
            })
        };
        generate().unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.trim().len(), 64);
        let id = EncryptionKey::from_file(&out).unwrap().id();
        let error = generate().unwrap_err().to_string();
        assert!(error.contains("store.key"), "{error}");
        assert_eq!(
            EncryptionKey::from_file(&out).unwrap().id(),
            id,
            "not overwritten"
        );
    }
}
