//! `tracewarden signing-key generate --out FILE`: a new ed25519 key for
//! signing manifests.
//!
//! Writes the secret key to FILE (mode 0600: 64 hex characters, the secret
//! seed) and the public key to FILE.pub (64 hex characters). Give FILE to the
//! server (`[store] signing_key_file`) and FILE.pub to
//! `tracewarden verify --public-key`, ideally kept on another machine.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tracewarden_store::integrity::{generate_signing_key, key_id, public_key_path};

#[derive(Args, Debug)]
pub struct SigningKeyArgs {
    #[command(subcommand)]
    pub command: SigningKeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum SigningKeyCommand {
    /// Generate a key: FILE (secret, mode 0600) and FILE.pub (public).
    Generate {
        /// Where to write the secret key; refuses to overwrite.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(args: SigningKeyArgs) -> anyhow::Result<()> {
    match args.command {
        SigningKeyCommand::Generate { out } => {
            let key = generate_signing_key(&out)?;
            // The public half only: the secret never reaches the terminal.
            println!("signing key: {} (keep it secret)", out.display());
            println!("public key:  {}", public_key_path(&out).display());
            println!("key id:      {}", key_id(&key.verifying_key()));
            Ok(())
        }
    }
}
