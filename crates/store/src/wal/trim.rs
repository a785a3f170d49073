//! Removing WAL files whose records are all in segments.
//!
//! A WAL file named for LSN `a`, followed by a file named for `b`, holds at
//! most the records `a..b`. Once every one of those LSNs is covered (by a
//! durable segment manifest, or known to hold no data), the file is deleted
//! and the directory fsynced. The newest file is never deleted: the writer
//! appends to it, and its name is what tells replay where LSNs continue.
//! Nor is a file that may hold a record at or after a [`super::WalHold`]'s
//! LSN: its holder needs those records at the next open.

use super::directory::WalDirectory;
use super::{Lsn, parse_file_name};
use crate::error::{Result, StoreError};
use crate::lifecycle::LsnSet;

/// What one trim removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trimmed {
    pub files: u64,
    pub bytes: u64,
}

/// A WAL file and the LSNs it may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WalFileRange {
    pub name: String,
    pub first: Lsn,
    /// The last LSN it may hold; `None` for the newest file, still growing.
    pub last: Option<Lsn>,
}

/// The WAL files of `dir` in LSN order, with the LSNs each may hold.
pub(crate) fn file_ranges(dir: &dyn WalDirectory) -> Result<Vec<WalFileRange>> {
    let names = dir
        .list()
        .map_err(|e| StoreError::io("list WAL directory", dir.path(), e))?;
    let mut files: Vec<(Lsn, String)> = names
        .into_iter()
        .filter_map(|name| parse_file_name(&name).map(|lsn| (lsn, name)))
        .collect();
    files.sort();
    let nexts: Vec<Option<Lsn>> = files.iter().skip(1).map(|(lsn, _)| Some(*lsn)).collect();
    Ok(files
        .into_iter()
        .zip(nexts.into_iter().chain(std::iter::once(None)))
        .map(|((first, name), next)| WalFileRange {
            name,
            first,
            last: next.map(|n| n.saturating_sub(1)),
        })
        .collect())
}

/// Deletes every WAL file, except the newest, all of whose LSNs `covered`
/// holds and which ends before `hold` (when set), then fsyncs the directory.
/// Call only once what covers them is durable.
pub(crate) fn trim(dir: &dyn WalDirectory, covered: &LsnSet, hold: Option<Lsn>) -> Result<Trimmed> {
    let mut trimmed = Trimmed::default();
    for file in file_ranges(dir)? {
        let Some(last) = file.last else { continue };
        if !covered.covers(file.first, last) || hold.is_some_and(|hold| last >= hold) {
            continue;
        }
        let path = dir.path().join(&file.name);
        let bytes = dir
            .open_read(&file.name)
            .map(|reader| reader.len())
            .map_err(|e| StoreError::io("open WAL file", &path, e))?;
        dir.remove(&file.name)
            .map_err(|e| StoreError::io("remove WAL file", &path, e))?;
        tracing::debug!(file = %path.display(), bytes, "removed WAL file whose records are all in segments");
        trimmed.files += 1;
        trimmed.bytes += bytes;
    }
    if trimmed.files > 0 {
        dir.sync()
            .map_err(|e| StoreError::io("fsync WAL directory", dir.path(), e))?;
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::directory::FsWalDirectory;
    use crate::wal::file_name;

    fn dir_with(firsts: &[Lsn]) -> (tempfile::TempDir, FsWalDirectory) {
        let root = tempfile::tempdir().unwrap();
        let dir = FsWalDirectory::open(root.path()).unwrap();
        for first in firsts {
            let mut file = dir.create(&file_name(*first)).unwrap();
            file.write_all(&[&[0u8; 10][..]]).unwrap();
        }
        dir.create("notes.txt").unwrap();
        (root, dir)
    }

    fn names(dir: &FsWalDirectory) -> Vec<Lsn> {
        let mut firsts: Vec<Lsn> = dir
            .list()
            .unwrap()
            .iter()
            .filter_map(|n| parse_file_name(n))
            .collect();
        firsts.sort();
        firsts
    }

    #[test]
    fn ranges_end_before_the_next_file() {
        let (_root, dir) = dir_with(&[11, 1, 21]);
        let ranges = file_ranges(&dir).unwrap();
        let got: Vec<(Lsn, Option<Lsn>)> = ranges.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(got, [(1, Some(10)), (11, Some(20)), (21, None)]);
    }

    #[test]
    fn only_fully_covered_files_before_the_newest_are_removed() {
        let (_root, dir) = dir_with(&[1, 11, 21, 31]);
        // 1..=10 covered; 11..=20 misses 15; 21..=30 covered; the newest never goes.
        let covered = LsnSet::from_ranges([(1, 14), (16, 40)]);
        let trimmed = trim(&dir, &covered, None).unwrap();
        assert_eq!(
            trimmed,
            Trimmed {
                files: 2,
                bytes: 20
            }
        );
        assert_eq!(names(&dir), [11, 31]);
        assert_eq!(
            trim(&dir, &LsnSet::new(), None).unwrap(),
            Trimmed::default()
        );
        let everything = LsnSet::from_ranges([(0, u64::MAX)]);
        trim(&dir, &everything, None).unwrap();
        assert_eq!(names(&dir), [31]);
        assert!(dir.list().unwrap().contains(&"notes.txt".to_string()));
    }

    #[test]
    fn a_file_reaching_the_hold_stays_until_the_hold_moves_past_it() {
        let (_root, dir) = dir_with(&[1, 11, 21, 31]);
        let everything = LsnSet::from_ranges([(0, u64::MAX)]);
        let hold = crate::wal::WalHold::new();
        // 11..=20 reaches 15, so it stays, and so does every later file.
        hold.hold_from(15);
        let trimmed = trim(&dir, &everything, hold.get()).unwrap();
        assert_eq!(trimmed.files, 1);
        assert_eq!(names(&dir), [11, 21, 31]);
        // A hold on a file's last LSN keeps it; the next LSN does not.
        hold.hold_from(20);
        assert_eq!(trim(&dir, &everything, hold.get()).unwrap().files, 0);
        assert_eq!(names(&dir), [11, 21, 31]);
        hold.hold_from(21);
        assert_eq!(trim(&dir, &everything, hold.get()).unwrap().files, 1);
        assert_eq!(names(&dir), [21, 31]);
        // Released: covered files go, the newest still stays.
        hold.release();
        assert_eq!(trim(&dir, &everything, hold.get()).unwrap().files, 1);
        assert_eq!(names(&dir), [31]);
    }

    #[test]
    fn a_hold_does_not_remove_what_segments_do_not_cover() {
        let (_root, dir) = dir_with(&[1, 11, 21]);
        // A hold past everything removes only the covered file.
        let covered = LsnSet::from_ranges([(1, 10)]);
        assert_eq!(trim(&dir, &covered, Some(100)).unwrap().files, 1);
        assert_eq!(names(&dir), [11, 21]);
    }
}
