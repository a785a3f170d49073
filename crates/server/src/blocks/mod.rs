//! Block decisions: who may not pass the gateways in front of the
//! monitored services.
//!
//! A block names an actor (an address or CIDR range, a user id, or a bearer
//! token's fingerprint), until when, why, and who asked: an analyst through
//! the API, or a rule with a `block:` response through [`RuleBlocks`].
//! Gateways ask for a decision (`/api/v1/decision`, or the nginx
//! `auth_request` endpoint); lookups take a read lock, one hash probe per
//! exact value and a scan of the (short) list of ranges.
//!
//! Changes are durable before they are visible: each one rewrites
//! `data_dir/blocks/blocklist.json` atomically and appends to
//! `history.jsonl` (see `files`). Expired blocks stop denying at once
//! and are removed (with an `expire` history entry) by the next sweep.

mod config;
mod files;
pub mod net;
mod sink;
pub mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use config::BlocksConfig;
pub use net::IpNet;
pub use sink::RuleBlocks;
pub use tracewarden_detect::rule::ActorKind as BlockKind;

use files::Files;

/// The directory of the blocklist, within the data directory.
pub const BLOCKS_DIR: &str = "blocks";
/// Longest user id or token accepted in a block, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Longest reason or `by`, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Why a block could not be made, removed, or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlocksError {
    #[error("failed to {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the blocklist `{path}` is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// The request is wrong (an unreadable address, an empty reason).
    #[error("{0}")]
    Invalid(String),
    /// `max_blocks` blocks are in force.
    #[error("the blocklist is full ({0} blocks); remove some or raise `[blocks] max_blocks`")]
    Full(usize),
}

/// One block in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    #[serde(with = "kind_name")]
    pub kind: BlockKind,
    /// The address or range (canonical text), the user id, or the token
    /// fingerprint (`sha256:` and 32 hex digits).
    pub value: String,
    pub reason: String,
    /// `rule:<id>` for rule blocks; the analyst's name otherwise.
    pub by: String,
    pub created_unix_ms: u64,
    /// `None`: until removed.
    pub until_unix_ms: Option<u64>,
}

impl Block {
    fn active(&self, now_ms: u64) -> bool {
        self.until_unix_ms.is_none_or(|until| until > now_ms)
    }
}

/// What a history entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Block,
    /// An active block made to last longer.
    Extend,
    Unblock,
    Expire,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Block,
        Action::Extend,
        Action::Unblock,
        Action::Expire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Extend => "extend",
            Action::Unblock => "unblock",
            Action::Expire => "expire",
        }
    }
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at_unix_ms: u64,
    pub action: Action,
    #[serde(with = "kind_name")]
    pub kind: BlockKind,
    pub value: String,
    /// Who made the change (`rule:<id>`, an analyst, `expiry`).
    pub by: String,
    pub reason: String,
    /// Until when the block holds after the change (`None`: until removed,
    /// or not blocked any more for unblock and expire).
    pub until_unix_ms: Option<u64>,
}

mod kind_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::BlockKind;

    pub fn serialize<S: Serializer>(kind: &BlockKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BlockKind, D::Error> {
        let text = String::deserialize(d)?;
        BlockKind::from_name(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown block kind `{text}`")))
    }
}

/// What to block: a kind and a value in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: BlockKind,
    pub value: String,
    range: Option<IpNet>,
}

impl Target {
    /// Reads a value of `kind`: an address or CIDR range; a user id; a
    /// token (fingerprinted unless it is one already).
    pub fn parse(kind: BlockKind, value: &str) -> Result<Target, BlocksError> {
        match kind {
            BlockKind::Address => {
                let net: IpNet = value.parse().map_err(BlocksError::Invalid)?;
                Ok(Target {
                    kind,
                    value: net.to_string(),
                    range: (!net.is_host()).then_some(net),
                })
            }
            BlockKind::User => {
                let value = value.trim();
                if value.is_empty()
                    || value.len() > MAX_VALUE_BYTES
                    || value.chars().any(char::is_control)
                {
                    return Err(BlocksError::Invalid(format!(
                        "a user id is 1 to {MAX_VALUE_BYTES} bytes without control characters"
                    )));
                }
                Ok(Target {
                    kind,
                    value: value.to_string(),
                    range: None,
                })
            }
            BlockKind::Token => {
                if value.trim().is_empty() || value.len() > MAX_VALUE_BYTES {
                    return Err(BlocksError::Invalid(format!(
                        "a token is 1 to {MAX_VALUE_BYTES} bytes"
                    )));
                }
                let value = if token::is_fingerprint(value) {
                    value.to_string()
                } else {
                    token::fingerprint(value)
                };
                Ok(Target {
                    kind,
                    value,
                    range: None,
                })
            }
        }
    }
}

/// A request to block.
#[derive(Clone, Debug)]
pub struct BlockRequest {
    pub target: Target,
    /// `None`: until removed.
    pub duration: Option<Duration>,
    pub reason: String,
    pub by: String,
}

/// What a block request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Extended,
    /// A block already in force lasts as long (or nearly: see
    /// [`Blocklist::apply`]).
    Unchanged,
}

/// Counters of the blocklist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Blocks in force, by kind (in [`BlockKind::ALL`] order).
    pub active: [u64; 3],
    /// History entries written, by action (in [`Action::ALL`] order).
    pub changes: [u64; 4],
    pub allowed: u64,
    pub denied: u64,
    /// Rule blocks not applied: the list was full, the value unreadable, or
    /// the queue to the blocks thread full.
    pub rule_blocks_refused: u64,
}

#[derive(Default)]
struct Index {
    /// Exact values by kind and canonical text.
    exact: HashMap<(BlockKind, String), Block>,
    /// Address ranges, scanned in order.
    ranges: Vec<(IpNet, Block)>,
}

impl Index {
    fn get(&self, kind: BlockKind, value: &str) -> Option<&Block> {
        // Ranges are few: scanning them for an exact-text match is cheap.
        self.exact.get(&(kind, value.to_string())).or_else(|| {
            self.ranges
                .iter()
                .find(|(_, b)| b.kind == kind && b.value == value)
                .map(|(_, b)| b)
        })
    }

    fn insert(&mut self, block: Block) {
        match (block.kind, block.value.parse::<IpNet>()) {
            (BlockKind::Address, Ok(net)) if !net.is_host() => {
                self.ranges.retain(|(_, b)| b.value != block.value);
                self.ranges.push((net, block));
            }
            _ => {
                self.exact.insert((block.kind, block.value.clone()), block);
            }
        }
    }

    fn remove(&mut self, kind: BlockKind, value: &str) -> Option<Block> {
        if let Some(block) = self.exact.remove(&(kind, value.to_string())) {
            return Some(block);
        }
        let at = self
            .ranges
            .iter()
            .position(|(_, b)| b.kind == kind && b.value == value)?;
        Some(self.ranges.remove(at).1)
    }

    fn iter(&self) -> impl Iterator<Item = &Block> {
        self.exact
            .values()
            .chain(self.ranges.iter().map(|(_, b)| b))
    }

    fn len(&self) -> usize {
        self.exact.len() + self.ranges.len()
    }
}

/// The blocklist: share it as `Arc<Blocklist>`.
pub struct Blocklist {
    /// Readers clone the `Arc` and let go of the lock at once.
    index: RwLock<Arc<Index>>,
    /// Serialises changes (and their file writes).
    files: Mutex<Option<Files>>,
    max_blocks: usize,
    changes: [AtomicU64; 4],
    allowed: AtomicU64,
    denied: AtomicU64,
    pub(crate) rule_blocks_refused: AtomicU64,
}

/// Now in unix milliseconds.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn check_text(what: &str, text: &str) -> Result<(), BlocksError> {
    if text.trim().is_empty() || text.len() > MAX_TEXT_BYTES || text.chars().any(char::is_control) {
        return Err(BlocksError::Invalid(format!(
            "`{what}` is 1 to {MAX_TEXT_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

impl Blocklist {
    /// Opens the blocklist saved in `dir` (created if absent). Blocks that
    /// expired while the server was down are removed and recorded.
    pub fn open(dir: &Path, max_blocks: usize, now_ms: u64) -> Result<Blocklist, BlocksError> {
        let files = Files::open(dir)?;
        let saved = files.read_list()?;
        let list = Blocklist::with_files(Some(files), max_blocks);
        let mut index = Index::default();
        for block in saved {
            index.insert(block);
        }
        *list.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        list.sweep(now_ms)?;
        Ok(list)
    }

    /// A blocklist kept in memory only (tests, `data_dir`-less use).
    pub fn in_memory(max_blocks: usize) -> Blocklist {
        Blocklist::with_files(None, max_blocks)
    }

    fn with_files(files: Option<Files>, max_blocks: usize) -> Blocklist {
        Blocklist {
            index: RwLock::new(Arc::new(Index::default())),
            files: Mutex::new(files),
            max_blocks,
            changes: Default::default(),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            rule_blocks_refused: AtomicU64::new(0),
        }
    }

    fn snapshot(&self) -> Arc<Index> {
        self.index
            .read()
            .map(|index| Arc::clone(&index))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    /// Applies changes made by `change` to a copy of the index, saves them,
    /// then makes them visible. Nothing changes if saving fails.
    fn commit<T>(
        &self,
        change: impl FnOnce(&mut Index, &mut Vec<HistoryEntry>) -> Result<T, BlocksError>,
    ) -> Result<T, BlocksError> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.snapshot();
        let mut next = Index {
            exact: current.exact.clone(),
            ranges: current.ranges.clone(),
        };
        let mut history = Vec::new();
        let result = change(&mut next, &mut history)?;
        if history.is_empty() {
            return Ok(result);
        }
        if let Some(files) = files.as_ref() {
            let mut blocks: Vec<&Block> = next.iter().collect();
            blocks.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
            files.write_list(&blocks)?;
            files.append_history(&history)?;
        }
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        for entry in &history {
            self.changes[entry.action as usize].fetch_add(1, Ordering::Relaxed);
        }
        Ok(result)
    }

    /// Blocks each target of `requests`. An actor already blocked is
    /// extended when the new end is later by at least a tenth of the new
    /// duration (so a rule firing again and again does not write a history
    /// line each time); otherwise left as is.
    pub fn apply(
        &self,
        requests: &[BlockRequest],
        now_ms: u64,
    ) -> Result<Vec<Change>, BlocksError> {
        for request in requests {
            check_text("reason", &request.reason)?;
            check_text("by", &request.by)?;
        }
        let max = self.max_blocks;
        self.commit(|index, history| {
            let mut changes = Vec::with_capacity(requests.len());
            for request in requests {
                let target = &request.target;
                let until = request.duration.map(|d| {
                    now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                });
                let existing = index
                    .get(target.kind, &target.value)
                    .filter(|b| b.active(now_ms))
                    .cloned();
                let change = match &existing {
                    None => Change::Added,
                    Some(old) => match (old.until_unix_ms, until) {
                        (None, _) => Change::Unchanged,
                        (Some(_), None) => Change::Extended,
                        (Some(old_until), Some(new_until)) => {
                            let step = request
                                .duration
                                .map_or(0, |d| u64::try_from(d.as_millis() / 10).unwrap_or(0));
                            if new_until > old_until.saturating_add(step) {
                                Change::Extended
                            } else {
                                Change::Unchanged
                            }
                        }
                    },
                };
                if change == Change::Added && existing.is_none() && index.len() >= max {
                    return Err(BlocksError::Full(max));
                }
                if change != Change::Unchanged {
                    let created = existing.as_ref().map_or(now_ms, |b| b.created_unix_ms);
                    index.insert(Block {
                        kind: target.kind,
                        value: target.value.clone(),
                        reason: request.reason.clone(),
                        by: request.by.clone(),
                        created_unix_ms: created,
                        until_unix_ms: until,
                    });
                    history.push(HistoryEntry {
                        at_unix_ms: now_ms,
                        action: if change == Change::Added {
                            Action::Block
                        } else {
                            Action::Extend
                        },
                        kind: target.kind,
                        value: target.value.clone(),
                        by: request.by.clone(),
                        reason: request.reason.clone(),
                        until_unix_ms: until,
                    });
                }
                changes.push(change);
            }
            Ok(changes)
        })
    }

    /// Removes the block of `target`; `None` if there was none in force.
    pub fn unblock(
        &self,
        target: &Target,
        by: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<Block>, BlocksError> {
        check_text("by", by)?;
        check_text("reason", reason)?;
        self.commit(|index, history| {
            let removed = index
                .remove(target.kind, &target.value)
                .filter(|b| b.active(now_ms));
            if removed.is_some() {
                history.push(HistoryEntry {
                    at_unix_ms: now_ms,
                    action: Action::Unblock,
                    kind: target.kind,
                    value: target.value.clone(),
                    by: by.to_string(),
                    reason: reason.to_string(),
                    until_unix_ms: None,
                });
            }
            Ok(removed)
        })
    }

    /// Removes the blocks that ended by `now_ms`, recording each; how many.
    pub fn sweep(&self, now_ms: u64) -> Result<usize, BlocksError> {
        if self.snapshot().iter().all(|b| b.active(now_ms)) {
            return Ok(0);
        }
        self.commit(|index, history| {
            let expired: Vec<Block> = index
                .iter()
                .filter(|b| !b.active(now_ms))
                .cloned()
                .collect();
            for block in &expired {
                index.remove(block.kind, &block.value);
                history.push(HistoryEntry {
                    at_unix_ms: now_ms,
                    action: Action::Expire,
                    kind: block.kind,
                    value: block.value.clone(),
                    by: "expiry".to_string(),
                    reason: block.reason.clone(),
                    until_unix_ms: None,
                });
            }
            Ok(expired.len())
        })
    }

    /// The block that denies a request from `address`, by `user`, with the
    /// token fingerprinted as `token` (checked in that order), or `None`:
    /// allow. Counts the decision.
    pub fn decide(
        &self,
        address: Option<IpAddr>,
        user: Option<&str>,
        token: Option<&str>,
        now_ms: u64,
    ) -> Option<Block> {
        let index = self.snapshot();
        let by_address = address.and_then(|addr| {
            let addr = net::canonical(addr);
            index
                .exact
                .get(&(BlockKind::Address, addr.to_string()))
                .filter(|b| b.active(now_ms))
                .or_else(|| {
                    index
                        .ranges
                        .iter()
                        .find(|(net, b)| net.contains(addr) && b.active(now_ms))
                        .map(|(_, b)| b)
                })
        });
        let found = by_address
            .or_else(|| {
                let user = user.map(str::trim).filter(|u| !u.is_empty())?;
                index
                    .exact
                    .get(&(BlockKind::User, user.to_string()))
                    .filter(|b| b.active(now_ms))
            })
            .or_else(|| {
                let token = token?;
                index
                    .exact
                    .get(&(BlockKind::Token, token.to_string()))
                    .filter(|b| b.active(now_ms))
            })
            .cloned();
        let counter = if found.is_some() {
            &self.denied
        } else {
            &self.allowed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The blocks in force, by kind then value.
    pub fn list(&self, now_ms: u64) -> Vec<Block> {
        let mut blocks: Vec<Block> = self
            .snapshot()
            .iter()
            .filter(|b| b.active(now_ms))
            .cloned()
            .collect();
        blocks.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
        blocks
    }

    /// The last `limit` changes, oldest first (empty when in memory only).
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, BlocksError> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        match files.as_ref() {
            Some(files) => files.read_history(limit),
            None => Ok(Vec::new()),
        }
    }

    pub fn stats(&self, now_ms: u64) -> BlockStats {
        let mut active = [0u64; 3];
        for block in self.snapshot().iter().filter(|b| b.active(now_ms)) {
            active[block.kind as usize] += 1;
        }
        BlockStats {
            active,
            changes: std::array::from_fn(|i| self.changes[i].load(Ordering::Relaxed)),
            allowed: self.allowed.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            rule_blocks_refused: self.rule_blocks_refused.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;

/// Unix milliseconds as RFC 3339 in UTC, to the second
/// (`2026-01-01T00:00:00Z`), for people reading the API and reason headers.
pub fn format_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = tracewarden_model::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
