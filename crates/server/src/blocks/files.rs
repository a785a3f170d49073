//! The blocklist on disk, in `data_dir/blocks/`:
//!
//! - `blocklist.json`: `{"version": 1, "blocks": [...]}`, every block in
//!   force, rewritten whole on each change (to a temporary file, fsynced,
//!   renamed over the old one, directory fsynced: a crash leaves the old
//!   list or the new one, never half of one);
//! - `history.jsonl`: one JSON object per change (block, extend, unblock,
//!   expire: who, why, until), appended and fsynced, never rewritten.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Block, BlocksError, HistoryEntry};

const LIST_FILE: &str = "blocklist.json";
const HISTORY_FILE: &str = "history.jsonl";
const VERSION: u32 = 1;
/// The history answered by the API is read from at most this many bytes
/// at the end of the file.
const HISTORY_TAIL_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct ListFile {
    version: u32,
    blocks: Vec<Block>,
}

/// The directory of the blocklist files.
#[derive(Debug)]
pub(super) struct Files {
    dir: PathBuf,
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> BlocksError {
    BlocksError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Files {
    /// Creates the directory if needed.
    pub fn open(dir: &Path) -> Result<Files, BlocksError> {
        std::fs::create_dir_all(dir).map_err(|e| io("create the blocks directory", dir, e))?;
        Ok(Files {
            dir: dir.to_path_buf(),
        })
    }

    /// The saved blocks; none if the list was never written.
    pub fn read_list(&self) -> Result<Vec<Block>, BlocksError> {
        let path = self.dir.join(LIST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read the blocklist", &path, e)),
        };
        let list: ListFile = serde_json::from_slice(&bytes).map_err(|e| BlocksError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if list.version != VERSION {
            return Err(BlocksError::Corrupt {
                path,
                message: format!("unknown version {}", list.version),
            });
        }
        Ok(list.blocks)
    }

    /// Replaces the list atomically.
    pub fn write_list(&self, blocks: &[&Block]) -> Result<(), BlocksError> {
        #[derive(Serialize)]
        struct Out<'a> {
            version: u32,
            blocks: &'a [&'a Block],
        }
        let path = self.dir.join(LIST_FILE);
        let tmp = self.dir.join(format!("{LIST_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&Out {
            version: VERSION,
            blocks,
        })
        .map_err(|e| BlocksError::Invalid(format!("cannot encode the blocklist: {e}")))?;
        let mut file = File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        file.write_all(&bytes).map_err(|e| io("write", &tmp, e))?;
        file.sync_all().map_err(|e| io("fsync", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| io("rename", &path, e))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io("fsync", &self.dir, e))
    }

    /// Appends changes to the history and fsyncs it.
    pub fn append_history(&self, entries: &[HistoryEntry]) -> Result<(), BlocksError> {
        if entries.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(HISTORY_FILE);
        let mut text = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut text, entry)
                .map_err(|e| BlocksError::Invalid(format!("cannot encode history: {e}")))?;
            text.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        file.write_all(&text)
            .map_err(|e| io("append to", &path, e))?;
        file.sync_data().map_err(|e| io("fsync", &path, e))
    }

    /// The last `limit` history entries, oldest first. Lines that do not
    /// parse (a torn last line after a crash) are skipped.
    pub fn read_history(&self, limit: usize) -> Result<Vec<HistoryEntry>, BlocksError> {
        let path = self.dir.join(HISTORY_FILE);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("open", &path, e)),
        };
        let len = file.metadata().map_err(|e| io("stat", &path, e))?.len();
        let start = len.saturating_sub(HISTORY_TAIL_BYTES);
        file.seek(SeekFrom::Start(start))
            .map_err(|e| io("seek", &path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io("read", &path, e))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            // The first line read may be the end of a longer one.
            lines.remove(0);
        }
        let entries: Vec<HistoryEntry> = lines
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let skip = entries.len().saturating_sub(limit);
        Ok(entries.into_iter().skip(skip).collect())
    }
}
