//! Proof that segments are untouched: manifests, the hash chain, ed25519
//! signatures, the retention log and `verify`.
//!
//! # On disk (in `data_dir/segments/`)
//!
//! ```text
//! 00000000000000000001.spans.parquet     data files (written by the segment writer)
//! 00000000000000000001.logs.parquet
//! 00000000000000000001.resources.parquet (format version 2 on)
//! 00000000000000000001.manifest.json     one manifest per segment
//! ...
//! chain.head                             the newest manifest and the retention log's end
//! retention.jsonl                        one line per segment dropped (retention, compaction)
//! quarantine/                            corrupt segments moved aside
//! ```
//!
//! **Manifest** ([`Manifest`], `<id>.manifest.json`): the segment's files with
//! their size and SHA-256, its counts and time range, the WAL records it holds,
//! the segments it replaces (compaction), and `prev_manifest_sha256`, the
//! SHA-256 of the previous manifest *file*: every manifest commits to the whole
//! history before it. The file is the manifest serialised by `serde_json` in
//! struct field order with no whitespace, then one `\n`. With a signing key
//! the file also holds `signature` (ed25519, hex) over the same JSON without
//! the `signature` and `key_id` fields (see [`Manifest::signed_bytes`]), and
//! `key_id`. The hash that the next manifest links to is the SHA-256 of the
//! file's bytes, signature included.
//!
//! **Chain head** ([`ChainHead`], `chain.head`): the id and hash of the
//! newest manifest, and the count and hash of the last retention log line;
//! signed like a manifest. Without it, deleting the newest segments (and the
//! last log lines) would leave a chain that looks whole.
//!
//! **Retention log** ([`RetentionEntry`], `retention.jsonl`): before a segment
//! is deleted (retention by [`ChainWriter::record_drop`], or replaced by a
//! compaction in [`ChainWriter::append`]) one JSON line records its id, its
//! manifest's hash *and that manifest's own `prev_manifest_sha256`*, so that
//! verification walks the chain through dropped segments as if they were
//! still there. Each line holds the SHA-256 of the line before it, and is
//! signed when a key is set.
//!
//! Every file but the log is written as `<name>.tmp`, fsynced, renamed and the
//! directory fsynced; log lines are appended and fsynced. A crash can leave a
//! manifest or log lines newer than `chain.head`, or a torn last log line:
//! [`ChainWriter::open`] repairs both (and nothing else).
//!
//! # Verification ([`verify()`])
//!
//! Walks the chain from `chain.head` back to the first manifest, through
//! present manifests and retention records, hashes every data file (streamed)
//! and checks signatures with the public key when one is given. Each problem
//! is a [`Finding`] that names the segment and file; retention drops and
//! compactions are listed as information.
//!
//! # Keys ([`signing`])
//!
//! A signing key file holds the 32-byte ed25519 secret seed as 64 hex
//! characters (one line); the public key file (`<key file>.pub` when
//! generated) the 32-byte public key as 64 hex characters. A key's id
//! ([`key_id`]) is the first 16 hex characters of the SHA-256 of the public
//! key.
//!
//! # What it proves, and what not
//!
//! Without a key the chain catches accidental damage and careless tampering:
//! someone who can write the directory can recompute every hash. With a key,
//! nobody without it can edit, insert or re-order a segment unnoticed;
//! removal of the newest segments is caught by the signed `chain.head`, unless
//! an older signed `chain.head` is put back (a roll-back): keep the head hash
//! that `tracewarden verify` prints somewhere else to catch that too.

pub mod chain;
mod digest;
mod error;
mod fsio;
pub mod head;
pub mod manifest;
pub mod retention;
pub mod signing;
pub mod verify;

pub use chain::ChainWriter;
pub use digest::{sha256_file, sha256_hex, to_hex};
pub use error::{IntegrityError, Result};
pub use head::ChainHead;
pub use manifest::{
    MANIFEST_FORMAT_VERSION, Manifest, ManifestFile, ReplacedSegment, load_manifests,
    manifest_file_name,
};
pub use retention::RetentionEntry;
pub use signing::{
    SigningKey, VerifyingKey, generate_signing_key, key_id, load_signing_key, load_verifying_key,
    public_key_path, write_verifying_key,
};
pub use verify::{Finding, HeadProblem, RetentionProblem, VerifyReport, verify, verify_segments};

/// The directory of segments under a data directory.
pub const SEGMENTS_DIR: &str = "segments";
/// The chain head file in the segments directory.
pub const CHAIN_HEAD_FILE: &str = "chain.head";
/// The retention log in the segments directory.
pub const RETENTION_LOG_FILE: &str = "retention.jsonl";
/// Where corrupt segments are moved, under the segments directory.
pub const QUARANTINE_DIR: &str = "quarantine";
