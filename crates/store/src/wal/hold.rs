//! A hold on the WAL: the lowest LSN whose WAL file must not be trimmed.
//!
//! The trim (`trim.rs`) deletes a WAL file once segments cover all of its
//! records. The server's detection keeps spans buffered across restarts by
//! naming them in its checkpoint by LSN rather than copying them, and gets
//! them back at the next open from the WAL replay
//! ([`crate::Store::open_observed`]). Those records are usually in segments
//! already, so without a hold their WAL files would be gone by then.
//!
//! The detection therefore holds the WAL from the lowest LSN a restart
//! from its latest checkpoint may need (the records it names, and those it
//! may take in after it): lowered before a checkpoint is written, raised
//! once it is durable, released when one cannot be written (the WAL must
//! not grow without bound behind a failing disk). At start-up it holds
//! from what the checkpoint it loaded needs, before the store opens, since
//! the store trims at open too.
//!
//! The hold only delays the trim, and only of the files from the held LSN
//! on. A checkpoint names only spans of traces buffered for less than 30 s
//! (older ones it copies), so the WAL is kept at most about that much
//! longer than the segments alone would keep it, plus the holder's lag
//! and its checkpoint interval. Retention of the segments whose
//! records those files hold waits for the trim, as it always does. After
//! a release or a move, the files are removed at the next trim (the next
//! flush, or the next open).

use std::sync::atomic::{AtomicU64, Ordering};

use super::Lsn;

/// No hold (not an LSN the WAL ever reaches).
const NONE: u64 = u64::MAX;

/// The lowest LSN that must stay in the WAL, shared between its holder and
/// the store (through [`crate::StoreOptions::wal_hold`]); read at each trim.
#[derive(Debug)]
pub struct WalHold {
    from: AtomicU64,
}

impl WalHold {
    /// No hold.
    pub fn new() -> WalHold {
        WalHold {
            from: AtomicU64::new(NONE),
        }
    }

    /// Keeps every WAL file that may hold `lsn` or a later record, replacing
    /// any earlier hold (lower or higher).
    pub fn hold_from(&self, lsn: Lsn) {
        // Paired with `get`: a trim that sees this hold also sees what the
        // holder did before setting it.
        self.from.store(lsn, Ordering::Release);
    }

    /// Lets the trim remove every covered file again.
    pub fn release(&self) {
        self.from.store(NONE, Ordering::Release);
    }

    /// The held LSN, `None` when nothing is held.
    pub fn get(&self) -> Option<Lsn> {
        match self.from.load(Ordering::Acquire) {
            NONE => None,
            lsn => Some(lsn),
        }
    }
}

impl Default for WalHold {
    fn default() -> Self {
        WalHold::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_released() {
        let hold = WalHold::default();
        assert_eq!(hold.get(), None);
        hold.hold_from(7);
        assert_eq!(hold.get(), Some(7));
        hold.hold_from(3);
        assert_eq!(hold.get(), Some(3), "a hold can move down");
        hold.release();
        assert_eq!(hold.get(), None);
    }
}
