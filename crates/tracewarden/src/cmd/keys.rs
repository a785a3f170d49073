//! `tracewarden keys create|list|revoke`: the API keys of a data directory
//! (`data_dir/auth/keys.json`). Works offline, so the first admin key can
//! be made before the server starts; a running server picks changes up
//! within a couple of seconds.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tracewarden_server::auth::{KeyStore, Role};

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a key and print it once (only its SHA-256 is stored).
    Create {
        /// ingest (send spans and logs), viewer, analyst or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A unique name for the key's holder (letters, digits, - _ . @).
        #[arg(long)]
        name: String,
        /// The server's data directory.
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// List the keys (never their secrets).
    List {
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Revoke a key by its id or name; a running server refuses it at once
    /// after it notices (within about a second).
    Revoke {
        /// The key's id (from `keys list`) or name.
        key: String,
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    match args.command {
        KeysCommand::Create {
            role,
            name,
            data_dir,
        } => {
            let (key, record) = KeyStore::new(&data_dir).create(&name, role)?;
            // The key alone on stdout (for `KEY=$(tracewarden keys create ...)`),
            // the rest on stderr.
            eprintln!(
                "created key `{}` (id {}, role {}); it is shown once, store it now:",
                record.name, record.id, record.role
            );
            println!("{key}");
            Ok(())
        }
        KeysCommand::List { data_dir } => {
            let keys = KeyStore::new(&data_dir).load()?;
            println!(
                "{:<12}  {:<20}  {:<8}  {:<24}  REVOKED",
                "ID", "NAME", "ROLE", "CREATED"
            );
            for key in keys {
                println!(
                    "{:<12}  {:<20}  {:<8}  {:<24}  {}",
                    key.id,
                    key.name,
                    key.role,
                    key.created(),
                    key.revoked().unwrap_or_else(|| "-".into())
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { key, data_dir } => {
            let record = KeyStore::new(&data_dir).revoke(&key)?;
            println!(
                "revoked key `{}` (id {}, role {})",
                record.name, record.id, record.role
            );
            Ok(())
        }
    }
}
