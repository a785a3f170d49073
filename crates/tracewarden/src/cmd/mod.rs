//! One module per subcommand.

pub mod bench;
pub mod serve;
pub mod signing_key;
pub mod verify;
