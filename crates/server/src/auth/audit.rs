//! The audit log: one JSON line per API request in
//! `data_dir/audit/audit.log`, hash-chained.
//!
//! Format: each line is the entry's JSON with `"hash"` appended last;
//! `hash` is the hex SHA-256 of the exact bytes of the entry without it
//! (the line with `,"hash":"…"` cut out), and each entry's `prev` is the
//! `hash` of the one before (64 zeros for the first); `seq` counts from 1.
//! Editing, deleting or reordering lines breaks the chain at that line.
//! `audit/head` (`{"seq","hash"}`, rewritten after every batch) anchors the
//! end, so deleting the last lines shows too. Someone who can rewrite the
//! whole directory can recompute every hash: keep a copy of the head
//! elsewhere for that threat.
//!
//! Durability: requests hand entries to one writer thread, which writes
//! what has queued up and fsyncs once per batch (group commit) after the
//! response has gone: a crash can lose the last batch (milliseconds).
//!
//! Rotation: when `audit.log` reaches [`Rotation::max_bytes`] it is renamed
//! `audit-<first seq, 12 digits>.log` and a new `audit.log` continues the
//! same chain (its first entry's `prev` is the last hash of the file
//! before). The oldest rotated files beyond [`Rotation::keep_files`] are
//! removed; `verify` then checks from the oldest file kept and says where
//! the kept history starts.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuthError;
use super::keys::{create_private_dir, hex};
use crate::blocks::format_time;

pub const AUDIT_DIR: &str = "audit";
const LOG_FILE: &str = "audit.log";
/// Rotated files: `audit-000000000001.log` (the seq of their first entry).
const ROTATED_PREFIX: &str = "audit-";
const ROTATED_SUFFIX: &str = ".log";
const HEAD_FILE: &str = "head";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_FIELD: &str = ",\"hash\":\"";
/// The tail read at start-up to find the last entry: longer lines than
/// this are not written (paths and queries are cut).
const TAIL_BYTES: u64 = 64 * 1024;
/// Longest path or query kept in an entry.
const MAX_TEXT: usize = 2048;

/// What a request did, as the audit layer saw it.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub unix_ms: u64,
    pub key_id: Option<String>,
    /// The key's name, or `anonymous` when auth is off, or `-` when no
    /// valid key was presented.
    pub key_name: String,
    pub role: Option<&'static str>,
    pub client: Option<String>,
    pub method: String,
    pub path: String,
    /// Already redacted ([`redact_query`]).
    pub query: Option<String>,
    pub status: u16,
    pub allowed: bool,
    pub reason: Option<String>,
    pub results: Option<u64>,
}

impl Record {
    pub fn set_key(&mut self, key: &super::keys::KeyInfo) {
        self.key_id = Some(key.id.clone());
        self.key_name = key.name.clone();
        self.role = Some(key.role.as_str());
    }
}

/// An entry as written (field order is the format: do not reorder).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    pub unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub key_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub status: u16,
    /// `allowed` or `denied`.
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<u64>,
    pub prev: String,
}

/// Query parameters whose values are secrets: never written.
const SECRET_PARAMS: &[&str] = &[
    "authorization",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "secret",
];

/// The query string with secret values replaced by `[redacted]`: the
/// values of `SECRET_PARAMS` and anything that looks like one of our
/// keys or a bearer token.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = name.to_ascii_lowercase();
            let value_lower = value.to_ascii_lowercase();
            if SECRET_PARAMS.contains(&lower.as_str())
                || value_lower.contains("twk_")
                || value_lower.starts_with("bearer")
            {
                format!("{name}=[redacted]")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The path with a raw token in it replaced by `[redacted]`: the value
/// after `/actors/token/` or `/blocks/token/` unless it is already a
/// fingerprint, and any segment that looks like one of our keys or an
/// `Authorization` value. (Those routes take a fingerprint; a raw token
/// sent by mistake must not be kept here.)
pub fn redact_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let after_token =
            i >= 2 && segments[i - 1] == "token" && matches!(segments[i - 2], "actors" | "blocks");
        let lower = segment.to_ascii_lowercase();
        let secret = (after_token
            && !tracewarden_model::credential::is_fingerprint(&lower.replace("%3a", ":")))
            || lower.contains("twk_")
            || lower.starts_with("bearer");
        out.push(if secret { "[redacted]" } else { segment });
    }
    out.join("/")
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The line of `entry`, and its hash.
fn seal(entry: &Entry) -> Result<(String, String), AuthError> {
    let body = serde_json::to_string(entry).map_err(|e| AuthError::Invalid(e.to_string()))?;
    let hash = hex(&Sha256::digest(body.as_bytes()));
    // `body` is an object: it ends with `}`.
    let line = format!("{}{HASH_FIELD}{hash}\"}}", &body[..body.len() - 1]);
    Ok((line, hash))
}

/// Splits a line into the sealed body and the hash it claims.
fn unseal(line: &str) -> Option<(String, &str)> {
    let at = line.rfind(HASH_FIELD)?;
    let hash = line[at + HASH_FIELD.len()..].strip_suffix("\"}")?;
    if hash.len() != 64 {
        return None;
    }
    Some((format!("{}}}", &line[..at]), hash))
}

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
    /// The oldest entry kept: 1 until rotation removes old files (so
    /// deleting the first lines of the log shows, while retention does not
    /// look like tampering).
    #[serde(default = "one")]
    first: u64,
}

fn one() -> u64 {
    1
}

/// When the log is rotated and how much of it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// `audit.log` is rotated once it holds this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (the oldest beyond are removed).
    pub keep_files: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 64 * 1024 * 1024,
            keep_files: 10,
        }
    }
}

/// The appending side: a writer thread fed by a channel.
pub struct AuditLog {
    sender: Mutex<Option<mpsc::Sender<Record>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
}

impl AuditLog {
    /// Opens (or starts) the log in `dir`, dropping a torn last line, with
    /// the default rotation.
    pub fn open(dir: &Path) -> Result<AuditLog, AuthError> {
        AuditLog::open_with(dir, Rotation::default())
    }

    /// [`AuditLog::open`] rotating as `rotation` says.
    pub fn open_with(dir: &Path, rotation: Rotation) -> Result<AuditLog, AuthError> {
        create_private_dir(dir)?;
        let path = dir.join(LOG_FILE);
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|e| AuthError::io("open", &path, e))?;
        let rotated = rotated_files(dir)?;
        let (seq, hash) = match last_entry(&mut file, &path)? {
            // A fresh `audit.log` after a rotation: the chain goes on from
            // the last rotated file.
            (0, _) => match rotated.last() {
                Some((_, last)) => last_entry(
                    &mut File::open(last).map_err(|e| AuthError::io("open", last, e))?,
                    last,
                )?,
                None => (0, GENESIS.to_string()),
            },
            found => found,
        };
        let first_seq = first_seq_of(&path)?.unwrap_or(seq + 1);
        let oldest = rotated.first().map_or(1, |(seq, _)| *seq);
        let (sender, receiver) = mpsc::channel();
        let writer_dir = dir.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("tracewarden-audit".into())
            .spawn(move || {
                let chain = Chain {
                    seq,
                    prev: hash,
                    first_seq,
                    oldest,
                };
                write_loop(file, &writer_dir, rotation, receiver, chain);
            })
            .map_err(|e| AuthError::io("start the writer of", dir, e))?;
        Ok(AuditLog {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues an entry; never blocks the request.
    pub fn append(&self, record: Record) {
        if let Ok(sender) = self.sender.lock()
            && let Some(sender) = sender.as_ref()
            && sender.send(record).is_err()
        {
            tracing::error!("the audit writer stopped: an audit entry was lost");
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The seq and hash of the last complete line (0 and the genesis hash for
/// an empty log); a torn last line (a crash mid-write) is cut off.
fn last_entry(file: &mut File, path: &Path) -> Result<(u64, String), AuthError> {
    let io = |e| AuthError::io("read", path, e);
    let len = file.metadata().map_err(io)?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < tail.len() {
        let keep = start + complete as u64;
        tracing::warn!(
            path = %path.display(),
            bytes = len - keep,
            "the audit log ends with a torn line (a crash mid-write); cut off"
        );
        file.set_len(keep)
            .map_err(|e| AuthError::io("truncate", path, e))?;
    }
    let text = String::from_utf8_lossy(&tail[..complete]);
    let Some(line) = text.lines().next_back() else {
        if len > TAIL_BYTES {
            return Err(AuthError::Corrupt {
                path: path.to_path_buf(),
                message: "no line end in the last 64 KiB".into(),
            });
        }
        return Ok((0, GENESIS.to_string()));
    };
    let corrupt = |message: String| AuthError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let (body, hash) = unseal(line).ok_or_else(|| corrupt("the last line has no hash".into()))?;
    let entry: Entry =
        serde_json::from_str(&body).map_err(|e| corrupt(format!("the last line: {e}")))?;
    Ok((entry.seq, hash.to_string()))
}

/// Where the chain stands: the last entry's seq and hash, and the seq of
/// the first entry of the current file (the name it gets when rotated).
struct Chain {
    seq: u64,
    prev: String,
    first_seq: u64,
    /// The seq of the oldest entry kept (the head file records it).
    oldest: u64,
}

fn write_loop(
    mut file: File,
    dir: &Path,
    rotation: Rotation,
    receiver: mpsc::Receiver<Record>,
    chain: Chain,
) {
    let path = dir.join(LOG_FILE);
    let head = dir.join(HEAD_FILE);
    let Chain {
        mut seq,
        mut prev,
        mut first_seq,
        mut oldest,
    } = chain;
    let mut batch = String::new();
    while let Ok(first) = receiver.recv() {
        batch.clear();
        let mut next = Some(first);
        while let Some(record) = next {
            seq += 1;
            let entry = entry(record, seq, std::mem::take(&mut prev));
            match seal(&entry) {
                Ok((line, hash)) => {
                    batch.push_str(&line);
                    batch.push('\n');
                    prev = hash;
                }
                Err(error) => {
                    tracing::error!(%error, "an audit entry could not be encoded");
                    seq -= 1;
                    prev = entry.prev;
                }
            }
            next = receiver.try_recv().ok();
        }
        let written = file
            .write_all(batch.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| AuthError::io("append to", &path, e))
            .and_then(|()| write_head(&head, seq, &prev, oldest));
        if let Err(error) = written {
            tracing::error!(%error, "the audit log could not be written");
            continue;
        }
        let full = file.metadata().is_ok_and(|m| m.len() >= rotation.max_bytes);
        if full {
            match rotate(dir, first_seq, rotation.keep_files) {
                Ok((fresh, kept_from)) => {
                    file = fresh;
                    first_seq = seq + 1;
                    oldest = kept_from;
                    if let Err(error) = write_head(&head, seq, &prev, oldest) {
                        tracing::error!(%error, "the audit head could not be written");
                    }
                }
                Err(error) => tracing::error!(%error, "the audit log could not be rotated"),
            }
        }
    }
}

/// Renames the full `audit.log` after its first entry and starts a new
/// one; removes the oldest rotated files beyond `keep`. Returns the new
/// file and the seq of the oldest entry kept.
fn rotate(dir: &Path, first_seq: u64, keep: usize) -> Result<(File, u64), AuthError> {
    let path = dir.join(LOG_FILE);
    let rotated = dir.join(rotated_name(first_seq));
    std::fs::rename(&path, &rotated).map_err(|e| AuthError::io("rotate", &path, e))?;
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| AuthError::io("open", &path, e))?;
    // The rename and the new file survive a crash.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    let files = rotated_files(dir)?;
    for (_, old) in files.iter().take(files.len().saturating_sub(keep)) {
        match std::fs::remove_file(old) {
            Ok(()) => {
                tracing::info!(file = %old.display(), "removed an old audit log file (audit_keep_files)")
            }
            Err(error) => {
                tracing::error!(file = %old.display(), %error, "an old audit log file could not be removed")
            }
        }
    }
    tracing::info!(file = %rotated.display(), "audit log rotated");
    let kept_from = rotated_files(dir)?
        .first()
        .map_or(first_seq, |(seq, _)| *seq);
    Ok((file, kept_from))
}

fn rotated_name(first_seq: u64) -> String {
    format!("{ROTATED_PREFIX}{first_seq:012}{ROTATED_SUFFIX}")
}

/// The rotated files of `dir` with the seq of their first entry, oldest
/// first.
fn rotated_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuthError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuthError::io("list", dir, e)),
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let seq = name
                .to_str()?
                .strip_prefix(ROTATED_PREFIX)?
                .strip_suffix(ROTATED_SUFFIX)?
                .parse::<u64>()
                .ok()?;
            Some((seq, entry.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Every file of the chain, oldest first: the rotated ones, then
/// `audit.log` (when present).
fn chain_files(dir: &Path) -> Result<Vec<PathBuf>, AuthError> {
    let mut files: Vec<PathBuf> = rotated_files(dir)?.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(LOG_FILE);
    if current.exists() {
        files.push(current);
    }
    Ok(files)
}

/// The seq of the first entry of a log file, `None` when it is empty.
fn first_seq_of(path: &Path) -> Result<Option<u64>, AuthError> {
    let file = File::open(path).map_err(|e| AuthError::io("open", path, e))?;
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| AuthError::io("read", path, e))?;
    Ok(unseal(line.trim_end())
        .and_then(|(body, _)| serde_json::from_str::<Entry>(&body).ok())
        .map(|entry| entry.seq))
}

fn entry(record: Record, seq: u64, prev: String) -> Entry {
    Entry {
        seq,
        time: format_time(record.unix_ms),
        unix_ms: record.unix_ms,
        key_id: record.key_id,
        key_name: record.key_name,
        role: record.role.map(str::to_string),
        client: record.client,
        method: record.method,
        path: cut(record.path),
        query: record.query.map(cut),
        status: record.status,
        decision: if record.allowed { "allowed" } else { "denied" }.to_string(),
        reason: record.reason,
        results: record.results,
        prev,
    }
}

fn write_head(path: &Path, seq: u64, hash: &str, first: u64) -> Result<(), AuthError> {
    let text = serde_json::to_vec(&Head {
        seq,
        hash: hash.to_string(),
        first,
    })
    .map_err(|e| AuthError::Invalid(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .map_err(|e| AuthError::io("create", &tmp, e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_data())
        .map_err(|e| AuthError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| AuthError::io("rename", path, e))
}

/// Which entries `GET /api/v1/audit` answers.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub since_unix_ms: Option<u64>,
    /// A key id or name.
    pub key: Option<String>,
    pub limit: usize,
}

/// The newest `filter.limit` entries that match, newest first, from the
/// current file back through the rotated ones.
pub fn read(dir: &Path, filter: &Filter) -> Result<Vec<serde_json::Value>, AuthError> {
    let mut found: Vec<serde_json::Value> = Vec::new();
    for path in chain_files(dir)?.into_iter().rev() {
        let wanted = filter.limit.saturating_sub(found.len());
        if wanted == 0 {
            break;
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            // Rotated or removed since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AuthError::io("open", &path, e)),
        };
        let mut kept = VecDeque::with_capacity(wanted.min(1024));
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| AuthError::io("read", &path, e))?;
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let text = |name: &str| value.get(name).and_then(|v| v.as_str());
            if let Some(since) = filter.since_unix_ms
                && value.get("unixMs").and_then(|v| v.as_u64()).unwrap_or(0) < since
            {
                continue;
            }
            if let Some(key) = filter.key.as_deref()
                && text("keyId") != Some(key)
                && text("keyName") != Some(key)
            {
                continue;
            }
            if kept.len() == wanted {
                kept.pop_front();
            }
            kept.push_back(value);
        }
        found.extend(kept.into_iter().rev());
    }
    Ok(found)
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the directory holds an audit log at all.
    pub present: bool,
    pub entries: u64,
    /// The hash of the last entry (the chain head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The first break in the chain, naming its line and entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// A torn last line (a crash mid-write), not a break.
    pub torn_tail: bool,
    /// The seq of the oldest entry kept: 1, or later when the oldest
    /// rotated files were removed (`audit_keep_files`); 0 when empty.
    pub first_seq: u64,
}

/// Checks the chain of `dir` line by line, across the rotated files and
/// `audit.log`, and against its head file.
pub fn verify(dir: &Path) -> Result<VerifyReport, AuthError> {
    let mut report = VerifyReport::default();
    let files = chain_files(dir)?;
    if files.is_empty() {
        if dir.join(HEAD_FILE).exists() {
            report.present = true;
            report.failure = Some(format!(
                "`{}` is missing but its head file exists",
                dir.join(LOG_FILE).display()
            ));
        }
        return Ok(report);
    }
    report.present = true;
    let head: Option<Result<Head, String>> = std::fs::read(dir.join(HEAD_FILE))
        .ok()
        .map(|text| serde_json::from_slice::<Head>(&text).map_err(|e| e.to_string()));
    // Where the kept history starts: 1, or what the head file says after
    // retention removed old files.
    let oldest = match &head {
        Some(Ok(head)) => head.first.max(1),
        _ => 1,
    };
    // `None` until the first entry.
    let mut prev: Option<String> = None;
    let mut last_seq = 0u64;
    let count = files.len();
    for (index, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(|e| AuthError::io("read", path, e))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut lines = bytes.split_inclusive(|b| *b == b'\n').peekable();
        let mut number = 0u64;
        while let Some(raw) = lines.next() {
            number += 1;
            let Some(raw) = raw.strip_suffix(b"\n") else {
                // Only the last piece of the current file can lack its end.
                if index + 1 == count && lines.peek().is_none() {
                    report.torn_tail = true;
                } else {
                    report.failure =
                        Some(format!("{name} line {number}: a torn line inside the log"));
                    return Ok(report);
                }
                break;
            };
            let (expected_seq, expected_prev) = match &prev {
                Some(prev) => (last_seq + 1, prev.clone()),
                None if oldest > 1 => match first_entry(raw) {
                    // Trusted: the entries before it were removed.
                    Some(entry) if entry.seq == oldest => (entry.seq, entry.prev),
                    _ => (oldest, String::new()),
                },
                None => (1, GENESIS.to_string()),
            };
            match check_line(raw, expected_seq, &expected_prev) {
                Ok(hash) => {
                    report.entries += 1;
                    last_seq = expected_seq;
                    prev = Some(hash);
                }
                Err(message) => {
                    report.failure = Some(format!(
                        "{name} line {number} (entry {expected_seq}): {message}"
                    ));
                    return Ok(report);
                }
            }
        }
    }
    if report.entries > 0 {
        report.first_seq = oldest;
    }
    let prev = prev.unwrap_or_else(|| GENESIS.to_string());
    if report.entries > 0 {
        report.head = Some(prev.clone());
    }
    if let Some(head) = head {
        match head {
            Err(e) => report.failure = Some(format!("the head file is unreadable: {e}")),
            Ok(head) if head.seq > last_seq => {
                report.failure = Some(format!(
                    "the head file says {} entries but the log ends at entry {last_seq}: entries after {last_seq} were deleted",
                    head.seq
                ));
            }
            Ok(head) if head.seq == last_seq && head.hash != prev => {
                report.failure = Some(format!(
                    "entry {} does not have the hash the head file anchors",
                    head.seq
                ));
            }
            // A head behind the log: a crash between the append and the
            // head update, or a batch in flight.
            Ok(_) => {}
        }
    }
    Ok(report)
}

/// The first entry of a history whose older files were removed: what it
/// chains to (trusted: nothing before it is kept).
fn first_entry(raw: &[u8]) -> Option<Entry> {
    let line = std::str::from_utf8(raw).ok()?;
    let (body, _) = unseal(line)?;
    serde_json::from_str(&body).ok()
}

/// The hash of a line, if it is sealed and chained right.
fn check_line(raw: &[u8], seq: u64, prev: &str) -> Result<String, String> {
    let line = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
    let (body, claimed) = unseal(line).ok_or("no hash at the end of the line")?;
    let actual = hex(&Sha256::digest(body.as_bytes()));
    if actual != claimed {
        return Err("its hash does not match its content (edited)".into());
    }
    let entry: Entry = serde_json::from_str(&body).map_err(|e| format!("not an entry: {e}"))?;
    if entry.seq != seq {
        return Err(format!(
            "sequence number {} where {seq} was expected (deleted or reordered)",
            entry.seq
        ));
    }
    if entry.prev != prev {
        return Err("it does not chain to the entry before (deleted or reordered)".into());
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_carry_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        write_rotating(dir.path(), 15, 100);
        let rotated = rotated_files(dir.path()).unwrap();
        let firsts: Vec<u64> = rotated.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(firsts, (1..=15).collect::<Vec<_>>());
        assert_eq!(
            rotated[1].1.file_name().unwrap().to_str().unwrap(),
            "audit-000000000002.log"
        );
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.failure, None);
        assert_eq!((report.entries, report.first_seq), (15, 1));
        // Reads run back across the files, newest first.
        let filter = |limit| Filter {
            limit,
            ..Filter::default()
        };
        assert_eq!(
            seqs(&read(dir.path(), &filter(4)).unwrap()),
            [15, 14, 13, 12]
        );
        assert_eq!(read(dir.path(), &filter(100)).unwrap().len(), 15);
        // A restart after a rotation goes on with the chain.
        write(dir.path(), 2);
        let report = verify(dir.path()).unwrap();
        assert_eq!((report.failure, report.entries), (None, 17));
        // An edit in a rotated file is found, and named.
        let (_, second) = &rotated_files(dir.path()).unwrap()[1];
        let text = std::fs::read_to_string(second).unwrap();
        std::fs::write(second, text.replacen("alice", "mallo", 1)).unwrap();
        let failure = verify(dir.path()).unwrap().failure.unwrap();
        assert!(
            failure.starts_with("audit-000000000002.log line 1 (entry 2)"),
            "{failure}"
        );
    }

    #[test]
    fn retention_removes_the_oldest_files_and_verify_starts_after_them() {
        let dir = tempfile::tempdir().unwrap();
        write_rotating(dir.path(), 5, 2);
        let firsts: Vec<u64> = rotated_files(dir.path())
            .unwrap()
            .iter()
            .map(|(seq, _)| *seq)
            .collect();
        assert_eq!(firsts, [4, 5]);
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.failure, None);
        assert_eq!((report.entries, report.first_seq), (2, 4));
        // Deleting the oldest file kept is not retention: the head file
        // says where the kept history starts.
        std::fs::remove_file(&rotated_files(dir.path()).unwrap()[0].1).unwrap();
        let failure = verify(dir.path()).unwrap().failure.unwrap();
        assert!(failure.contains("sequence number 5 where 4"), "{failure}");
    }

    #[test]
    fn without_rotation_deleting_the_first_lines_still_shows() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 4);
        let kept = lines(dir.path())[2..].to_vec();
        rewrite(dir.path(), &kept);
        let failure = verify(dir.path()).unwrap().failure.unwrap();
        assert!(failure.contains("sequence number 3 where 1"), "{failure}");
    }

    #[test]
    fn rotation_settings_are_checked() {
        let config = crate::auth::AuditConfig {
            max_bytes: 100,
            keep_files: 3,
        };
        assert!(config.rotation().unwrap_err().contains("max_bytes"));
        let config = crate::auth::AuditConfig {
            max_bytes: 1 << 20,
            keep_files: 0,
        };
        assert!(config.rotation().unwrap_err().contains("keep_files"));
        assert_eq!(
            crate::auth::AuditConfig::default().rotation().unwrap(),
            Rotation::default()
        );
    }

    fn lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(LOG_FILE))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rewrite(dir: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(dir.join(LOG_FILE), text).unwrap();
    }

    #[test]
    fn appends_chain_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 3);
        write(dir.path(), 2);
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.failure, None);
        assert_eq!(report.entries, 5);
        let all = read(
            dir.path(),
            &Filter {
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0]["seq"], 5, "newest first");
        assert_eq!(all[0]["keyName"], "alice");
        let two = read(
            dir.path(),
            &Filter {
                limit: 2,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        let none = read(
            dir.path(),
            &Filter {
                key: Some("bob".into()),
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn tampering_names_the_first_broken_entry() {
        type Tamper = fn(&mut Vec<String>);
        let cases: [(&str, Tamper, &str); 5] = [
            (
                "edit",
                |l| l[2] = l[2].replace("\"status\":200", "\"status\":403"),
                "line 3 (entry 3)",
            ),
            (
                "delete",
                |l| {
                    l.remove(1);
                },
                "line 2 (entry 2)",
            ),
            ("reorder", |l| l.swap(1, 2), "line 2 (entry 2)"),
            (
                "truncate",
                |l| {
                    l.pop();
                },
                "entries after 4 were deleted",
            ),
            ("garbage", |l| l.insert(0, "{}".into()), "line 1 (entry 1)"),
        ];
        for (name, tamper, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), 5);
            assert_eq!(verify(dir.path()).unwrap().failure, None, "{name}");
            let mut all = lines(dir.path());
            tamper(&mut all);
            rewrite(dir.path(), &all);
            let failure = verify(dir.path()).unwrap().failure;
            assert!(
                failure.as_deref().is_some_and(|f| f.contains(expected)),
                "{name}: {failure:?}"
            );
        }
    }

    #[test]
    fn a_torn_line_is_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 2);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        file.write_all(b"{\"seq\":3,\"ti").unwrap();
        assert!(verify(dir.path()).unwrap().torn_tail);
        write(dir.path(), 1);
        let report = verify(dir.path()).unwrap();
        assert_eq!(
            (report.entries, report.failure, report.torn_tail),
            (3, None, false)
        );
    }

    #[test]
    fn secrets_in_queries_are_redacted() {
        let cases = [
            (
                "address=1.2.3.4&authorization=Bearer%20xyz",
                "address=1.2.3.4&authorization=[redacted]",
            ),
            ("q=%7B%7D&limit=5", "q=%7B%7D&limit=5"),
            ("api_key=twk_abc&x=1", "api_key=[redacted]&x=1"),
            ("x=twk_abc", "x=[redacted]"),
            ("h=Bearer%20abc", "h=[redacted]"),
            ("Token=abc", "Token=[redacted]"),
        ];
        for (query, want) in cases {
            assert_eq!(redact_query(query), want, "{query}");
        }
    }

    #[test]
    fn raw_tokens_in_paths_are_redacted() {
        let fingerprint = tracewarden_model::credential::fingerprint("s3cret");
        for (path, expect) in [
            (
                "/api/v1/actors/token/eyJhbGciOiJIUzI1NiJ9.x.y/timeline".to_string(),
                "/api/v1/actors/token/[redacted]/timeline".to_string(),
            ),
            (
                "/api/v1/blocks/token/Bearer%20s3cret".to_string(),
                "/api/v1/blocks/token/[redacted]".to_string(),
            ),
            (
                format!("/api/v1/actors/token/{fingerprint}/timeline"),
                format!("/api/v1/actors/token/{fingerprint}/timeline"),
            ),
            (
                format!("/api/v1/blocks/token/{}", fingerprint.replace(':', "%3A")),
                format!("/api/v1/blocks/token/{}", fingerprint.replace(':', "%3A")),
            ),
            (
                "/api/v1/actors/enduser.id/twk_abc/timeline".to_string(),
                "/api/v1/actors/enduser.id/[redacted]/timeline".to_string(),
            ),
            (
                "/api/v1/actors/client.address/203.0.113.7/timeline".to_string(),
                "/api/v1/actors/client.address/203.0.113.7/timeline".to_string(),
            ),
            ("/api/v1/alerts".to_string(), "/api/v1/alerts".to_string()),
        ] {
            assert_eq!(redact_path(&path), expect, "{path}");
        }
    }

    fn record(n: u64) -> Record {
        Record {
            unix_ms: 1_700_000_000_000 + n,
            key_id: Some("abc".into()),
            key_name: "alice".into(),
            role: Some("analyst"),
            method: "GET".into(),
            path: format!("/api/v1/search/{n}"),
            query: Some("q=%7B%7D".into()),
            status: 200,
            allowed: true,
            results: Some(n),
            ..Record::default()
        }
    }

    fn write(dir: &Path, n: u64) {
        let log = AuditLog::open(dir).unwrap();
        for i in 0..n {
            log.append(record(i));
        }
        log.close();
    }

    /// `n` openings of the log with one entry each: with a tiny
    /// `max_bytes` every batch (here: every entry) rotates.
    fn write_rotating(dir: &Path, n: u64, keep_files: usize) {
        let rotation = Rotation {
            max_bytes: 1,
            keep_files,
        };
        for i in 0..n {
            let log = AuditLog::open_with(dir, rotation).unwrap();
            log.append(record(i));
            log.close();
        }
    }

    fn seqs(entries: &[serde_json::Value]) -> Vec<u64> {
        entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
    }
}
