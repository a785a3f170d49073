//! One module per subcommand.

pub mod alerts;
pub mod bench;
pub mod block;
pub mod client;
pub mod demo;
pub mod encryption_key;
pub mod query;
pub mod rules;
pub mod serve;
pub mod signing_key;
pub mod silence;
pub mod verify;
