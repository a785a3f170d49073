//! Where a buffered span came from, so a checkpoint can name it instead
//! of copying it.

use std::num::NonZeroU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A span's place in the write-ahead log: the record (its LSN; LSNs start
/// at 1) and the span's index among the record's spans, in the order the
/// record holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub lsn: NonZeroU64,
    pub index: u32,
}

impl Origin {
    /// The origin of the `index`th span of record `lsn`; `None` for LSN 0
    /// (no record) or an index past `u32`.
    pub fn new(lsn: u64, index: usize) -> Option<Origin> {
        Some(Origin {
            lsn: NonZeroU64::new(lsn)?,
            index: u32::try_from(index).ok()?,
        })
    }
}

/// A checkpoint names the spans of traces buffered for at most this long
/// and copies the others, so the oldest WAL record it names is about this
/// old: a trace that never goes quiet (held up to `max_wait`, five minutes
/// by default) does not make the WAL keep five minutes of records.
pub const NAMED_MAX_AGE: Duration = Duration::from_secs(30);
