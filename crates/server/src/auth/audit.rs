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
/// values of [`SECRET_PARAMS`] and anything that looks like one of our
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
}

/// The appending side: a writer thread fed by a channel.
pub struct AuditLog {
    sender: Mutex<Option<mpsc::Sender<Record>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
}

impl AuditLog {
    /// Opens (or starts) the log in `dir`, dropping a torn last line.
    pub fn open(dir: &Path) -> Result<AuditLog, AuthError> {
        create_private_dir(dir)?;
        let path = dir.join(LOG_FILE);
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|e| AuthError::io("open", &path, e))?;
        let (seq, hash) = last_entry(&mut file, &path)?;
        let (sender, receiver) = mpsc::channel();
        let head = dir.join(HEAD_FILE);
        let writer = std::thread::Builder::new()
            .name("tracewarden-audit".into())
            .spawn(move || write_loop(file, path, head, receiver, seq, hash))
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

fn write_loop(
    mut file: File,
    path: PathBuf,
    head: PathBuf,
    receiver: mpsc::Receiver<Record>,
    mut seq: u64,
    mut prev: String,
) {
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
            .and_then(|()| write_head(&head, seq, &prev));
        if let Err(error) = written {
            tracing::error!(%error, "the audit log could not be written");
        }
    }
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

fn write_head(path: &Path, seq: u64, hash: &str) -> Result<(), AuthError> {
    let text = serde_json::to_vec(&Head {
        seq,
        hash: hash.to_string(),
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

/// The newest `filter.limit` entries that match, newest first.
pub fn read(dir: &Path, filter: &Filter) -> Result<Vec<serde_json::Value>, AuthError> {
    let path = dir.join(LOG_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuthError::io("open", &path, e)),
    };
    let mut kept = VecDeque::with_capacity(filter.limit.min(1024));
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
        if kept.len() == filter.limit {
            kept.pop_front();
        }
        kept.push_back(value);
    }
    Ok(kept.into_iter().rev().collect())
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
}

/// Checks the chain of `dir` line by line and against its head file.
pub fn verify(dir: &Path) -> Result<VerifyReport, AuthError> {
    let path = dir.join(LOG_FILE);
    let mut report = VerifyReport::default();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(HEAD_FILE).exists() {
                report.present = true;
                report.failure = Some(format!(
                    "`{}` is missing but its head file exists",
                    path.display()
                ));
            }
            return Ok(report);
        }
        Err(e) => return Err(AuthError::io("read", &path, e)),
    };
    report.present = true;
    let mut prev = GENESIS.to_string();
    let mut lines = bytes.split_inclusive(|b| *b == b'\n').peekable();
    let mut number = 0u64;
    while let Some(raw) = lines.next() {
        number += 1;
        let Some(raw) = raw.strip_suffix(b"\n") else {
            // Only the last piece can lack its line end.
            report.torn_tail = lines.peek().is_none();
            break;
        };
        let expected_seq = report.entries + 1;
        let problem = check_line(raw, expected_seq, &prev);
        match problem {
            Ok(hash) => {
                report.entries += 1;
                prev = hash;
            }
            Err(message) => {
                report.failure = Some(format!("line {number} (entry {expected_seq}): {message}"));
                return Ok(report);
            }
        }
    }
    if report.entries > 0 {
        report.head = Some(prev.clone());
    }
    if let Ok(text) = std::fs::read(dir.join(HEAD_FILE)) {
        match serde_json::from_slice::<Head>(&text) {
            Err(e) => report.failure = Some(format!("the head file is unreadable: {e}")),
            Ok(head) if head.seq > report.entries => {
                report.failure = Some(format!(
                    "the head file says {} entries but the log has {}: entries after {} were deleted",
                    head.seq, report.entries, report.entries
                ));
            }
            Ok(head) if head.seq == report.entries && head.hash != prev => {
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

    use super::*;

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
}
