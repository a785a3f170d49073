//! One module per subcommand.

pub mod alerts;
pub mod bench;
pub mod block;
pub mod certs;
pub mod client;
pub mod demo;
pub mod encryption_key;
pub mod investigate;
pub mod keys;
pub mod query;
pub mod report;
pub mod rules;
pub mod scan;
pub mod serve;
pub mod signing_key;
pub mod silence;
pub mod verify;
