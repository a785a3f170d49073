//! The payload store: request and response bodies of spans, kept for
//! forensics (docs/PAYLOADS.md).
//!
//! One file per payload, `DIR/<id>.payload`, written crash-safely: a
//! temporary file is written and fsynced, renamed into place, and the
//! directory fsynced, so a payload is either whole on disk or absent, and
//! [`PayloadStore::put`] returns only once it is durable. A file holds
//!
//! ```text
//! "TWPAYLD1" | flags (u8; 1 = sealed) | meta length (u32 LE) | meta | body
//! ```
//!
//! where the meta is the JSON of [`PayloadMeta`]. With an encryption key
//! the meta and the body are each sealed with [`EncryptionKey::seal_file`]
//! (AES-256-GCM under a per-file key derived from the store's key and a
//! random salt), with a purpose naming the payload id, so a body cannot be
//! passed off as another payload's. Nothing is encrypted without a key.
//!
//! The meta of every payload is kept in memory (an index by id and by
//! trace), read at open; bodies are read from disk on demand.
//! [`PayloadStore::sweep`] removes payloads stored before a cut-off (the
//! retention).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tracewarden_model::{SpanId, TraceId};

use crate::encryption::{EncryptionKey, random_bytes};
use crate::integrity::to_hex;

const MAGIC: &[u8; 8] = b"TWPAYLD1";
const FLAG_SEALED: u8 = 1;
const SUFFIX: &str = ".payload";
const TEMP_SUFFIX: &str = ".tmp";
/// A meta is a few hundred bytes; anything larger is not one of ours.
const META_LIMIT: u32 = 64 * 1024;

/// Why a payload could not be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error("payload store `{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("payload file `{path}`: {reason}")]
    Damaged { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PayloadError + '_ {
    move |source| PayloadError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether a body is what a span received or what it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    Request,
    Response,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Request => "request",
            PayloadKind::Response => "response",
        }
    }

    /// `request` or `response`, as the API spells them.
    pub fn parse(text: &str) -> Option<PayloadKind> {
        match text {
            "request" => Some(PayloadKind::Request),
            "response" => Some(PayloadKind::Response),
            _ => None,
        }
    }
}

/// What is known of a stored payload without reading its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadMeta {
    /// 32 lowercase hex characters, random.
    pub id: String,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub kind: PayloadKind,
    pub content_type: String,
    /// Bytes of the stored (redacted) body.
    pub size: u64,
    /// When it was stored (unix nanoseconds): retention counts from here.
    pub time_unix_nano: u64,
    /// The sender said the body was cut before it was sent.
    pub truncated: bool,
    /// Values masked or hashed in the body before it was stored.
    pub redactions: u64,
}

/// A payload to store.
#[derive(Clone, Debug)]
pub struct NewPayload {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub kind: PayloadKind,
    pub content_type: String,
    pub time_unix_nano: u64,
    pub truncated: bool,
    pub redactions: u64,
}

#[derive(Default)]
struct Index {
    by_id: HashMap<String, PayloadMeta>,
    by_trace: HashMap<TraceId, Vec<String>>,
    bytes: u64,
}

impl Index {
    fn insert(&mut self, meta: PayloadMeta) {
        self.bytes += meta.size;
        self.by_trace
            .entry(meta.trace_id)
            .or_default()
            .push(meta.id.clone());
        self.by_id.insert(meta.id.clone(), meta);
    }

    fn remove(&mut self, id: &str) {
        let Some(meta) = self.by_id.remove(id) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(meta.size);
        if let Some(ids) = self.by_trace.get_mut(&meta.trace_id) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_trace.remove(&meta.trace_id);
            }
        }
    }
}

/// Payloads and their bytes, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadStats {
    pub payloads: u64,
    pub bytes: u64,
}

/// The store of one directory. Cheap to share behind an `Arc`.
pub struct PayloadStore {
    dir: PathBuf,
    key: Option<Arc<EncryptionKey>>,
    index: RwLock<Index>,
}

impl std::fmt::Debug for PayloadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadStore")
            .field("dir", &self.dir)
            .field("encrypted", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether `id` has the shape of a payload id (so it can name a file).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl PayloadStore {
    /// Opens (creating) `dir`: removes temporary files a crash left, and
    /// reads the meta of every payload. A file that cannot be read (damaged,
    /// another key) is left in place, logged and not listed.
    pub fn open(dir: &Path, key: Option<Arc<EncryptionKey>>) -> Result<PayloadStore, PayloadError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let store = PayloadStore {
            dir: dir.to_owned(),
            key,
            index: RwLock::new(Index::default()),
        };
        let mut index = Index::default();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.ends_with(TEMP_SUFFIX) {
                // Never renamed into place: never acknowledged.
                fs::remove_file(&path).map_err(io_error(&path))?;
                continue;
            }
            let Some(id) = name.strip_suffix(SUFFIX).filter(|id| valid_id(id)) else {
                continue;
            };
            match store.read(id, false) {
                Ok((meta, _)) => index.insert(meta),
                Err(error) => {
                    tracing::warn!(%error, "a stored payload cannot be read; it is not listed")
                }
            }
        }
        *store.index.write() = index;
        Ok(store)
    }

    /// Whether bodies are encrypted on disk.
    pub fn encrypted(&self) -> bool {
        self.key.is_some()
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }

    /// Stores `body`; returns once it is durable (file and directory
    /// fsynced).
    pub fn put(&self, new: NewPayload, body: &[u8]) -> Result<PayloadMeta, PayloadError> {
        let mut raw = [0u8; 16];
        random_bytes(&mut raw).map_err(io_error(&self.dir))?;
        let id = to_hex(&raw);
        let meta = PayloadMeta {
            id: id.clone(),
            trace_id: new.trace_id,
            span_id: new.span_id,
            kind: new.kind,
            content_type: new.content_type,
            size: body.len() as u64,
            time_unix_nano: new.time_unix_nano,
            truncated: new.truncated,
            redactions: new.redactions,
        };
        let path = self.path(&id);
        let bytes = self.encode(&meta, body).map_err(io_error(&path))?;
        let temp = self.dir.join(format!("{id}{TEMP_SUFFIX}"));
        let written = write_durably(&temp, &path, &self.dir, &bytes);
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(io_error(&path))?;
        self.index.write().insert(meta.clone());
        Ok(meta)
    }

    fn encode(&self, meta: &PayloadMeta, body: &[u8]) -> io::Result<Vec<u8>> {
        let meta_json = serde_json::to_vec(meta).map_err(io::Error::other)?;
        let (flags, meta_bytes, body_bytes) = match &self.key {
            None => (0, meta_json, body.to_vec()),
            Some(key) => (
                FLAG_SEALED,
                key.seal_file(&meta_purpose(&meta.id), &meta_json)?,
                key.seal_file(&body_purpose(&meta.id), body)?,
            ),
        };
        let meta_len = u32::try_from(meta_bytes.len())
            .ok()
            .filter(|len| *len <= META_LIMIT)
            .ok_or_else(|| io::Error::other("payload meta too large"))?;
        let mut out = Vec::with_capacity(13 + meta_bytes.len() + body_bytes.len());
        out.extend_from_slice(MAGIC);
        out.push(flags);
        out.extend_from_slice(&meta_len.to_le_bytes());
        out.extend_from_slice(&meta_bytes);
        out.extend_from_slice(&body_bytes);
        Ok(out)
    }

    /// Reads the meta of payload `id` and, when `with_body`, its body.
    fn read(&self, id: &str, with_body: bool) -> Result<(PayloadMeta, Vec<u8>), PayloadError> {
        let path = self.path(id);
        let damaged = |reason: String| PayloadError::Damaged {
            path: path.clone(),
            reason,
        };
        let mut file = File::open(&path).map_err(io_error(&path))?;
        let mut head = [0u8; 13];
        file.read_exact(&mut head)
            .map_err(|e| damaged(format!("no header: {e}")))?;
        if !head.starts_with(MAGIC) {
            return Err(damaged("not a payload file".into()));
        }
        let sealed = head[8] & FLAG_SEALED != 0;
        let meta_len = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if meta_len > META_LIMIT {
            return Err(damaged(format!("meta of {meta_len} bytes")));
        }
        let mut meta_bytes = vec![0u8; meta_len as usize];
        file.read_exact(&mut meta_bytes)
            .map_err(|e| damaged(format!("meta cut short: {e}")))?;
        let key = match (&self.key, sealed) {
            (Some(key), true) => Some(key),
            (None, false) => None,
            (None, true) => {
                return Err(damaged(
                    "encrypted, and no encryption key is configured".into(),
                ));
            }
            // Written before encryption was turned on: readable as it is.
            (Some(_), false) => None,
        };
        if let Some(key) = key {
            meta_bytes = key
                .open_file(&meta_purpose(id), &meta_bytes)
                .map_err(damaged)?;
        }
        let meta: PayloadMeta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| damaged(format!("meta unreadable: {e}")))?;
        if meta.id != id {
            return Err(damaged(format!("holds payload {}", meta.id)));
        }
        if !with_body {
            return Ok((meta, Vec::new()));
        }
        let mut body = Vec::new();
        file.read_to_end(&mut body).map_err(io_error(&path))?;
        if let Some(key) = key {
            body = key.open_file(&body_purpose(id), &body).map_err(damaged)?;
        }
        if body.len() as u64 != meta.size {
            return Err(damaged(format!(
                "body of {} bytes, meta says {}",
                body.len(),
                meta.size
            )));
        }
        Ok((meta, body))
    }

    /// The payloads of a trace, by time.
    pub fn list(&self, trace_id: &TraceId) -> Vec<PayloadMeta> {
        let index = self.index.read();
        let mut out: Vec<PayloadMeta> = index
            .by_trace
            .get(trace_id)
            .into_iter()
            .flatten()
            .filter_map(|id| index.by_id.get(id).cloned())
            .collect();
        out.sort_by(|a, b| (a.time_unix_nano, &a.id).cmp(&(b.time_unix_nano, &b.id)));
        out
    }

    /// A payload and its body; `None` for an id not stored (or not of the
    /// shape of an id).
    pub fn get(&self, id: &str) -> Result<Option<(PayloadMeta, Vec<u8>)>, PayloadError> {
        if !valid_id(id) || !self.index.read().by_id.contains_key(id) {
            return Ok(None);
        }
        match self.read(id, true) {
            Ok(found) => Ok(Some(found)),
            // Swept between the look-up and the read.
            Err(PayloadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Removes the payloads stored before `cutoff_unix_nano`; returns how
    /// many. A file that cannot be removed stays listed (and is tried again
    /// at the next sweep).
    pub fn sweep(&self, cutoff_unix_nano: u64) -> Result<usize, PayloadError> {
        let old: Vec<String> = self
            .index
            .read()
            .by_id
            .values()
            .filter(|m| m.time_unix_nano < cutoff_unix_nano)
            .map(|m| m.id.clone())
            .collect();
        let mut removed = Vec::with_capacity(old.len());
        let mut first_error = None;
        for id in old {
            let path = self.path(&id);
            match fs::remove_file(&path) {
                Ok(()) => removed.push(id),
                Err(e) if e.kind() == io::ErrorKind::NotFound => removed.push(id),
                Err(e) => {
                    first_error.get_or_insert(PayloadError::Io { path, source: e });
                }
            }
        }
        if !removed.is_empty() {
            let mut index = self.index.write();
            for id in &removed {
                index.remove(id);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(removed.len()),
        }
    }

    pub fn stats(&self) -> PayloadStats {
        let index = self.index.read();
        PayloadStats {
            payloads: index.by_id.len() as u64,
            bytes: index.bytes,
        }
    }
}

fn meta_purpose(id: &str) -> String {
    format!("payload meta {id}")
}

fn body_purpose(id: &str) -> String {
    format!("payload body {id}")
}

/// Writes `bytes` to `temp`, fsyncs it, renames it to `path` and fsyncs
/// `dir`, so `path` is either absent or whole after a crash.
fn write_durably(temp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn new_payload(trace: u8, time: u64) -> NewPayload {
        NewPayload {
            trace_id: TraceId::from_bytes([trace; 16]),
            span_id: SpanId::from_bytes([2; 8]),
            kind: PayloadKind::Request,
            content_type: "application/json".into(),
            time_unix_nano: time,
            truncated: false,
            redactions: 0,
        }
    }

    fn key() -> Arc<EncryptionKey> {
        Arc::new(EncryptionKey::from_bytes(&[7; 32]))
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = PayloadStore::open(dir.path(), None).unwrap();
        let a = store.put(new_payload(1, 20), b"{\"a\":1}").unwrap();
        let b = store.put(new_payload(1, 10), b"second").unwrap();
        let other = store.put(new_payload(9, 5), b"other trace").unwrap();
        assert!(valid_id(&a.id) && a.id != b.id);
        assert_eq!(a.size, 7);
        let (meta, body) = store.get(&a.id).unwrap().expect("stored");
        assert_eq!((meta, body.as_slice()), (a.clone(), &b"{\"a\":1}"[..]));
        // By time within the trace; other traces apart.
        let trace = TraceId::from_bytes([1; 16]);
        assert_eq!(store.list(&trace), vec![b.clone(), a.clone()]);
        assert_eq!(
            store.stats(),
            PayloadStats {
                payloads: 3,
                bytes: 7 + 6 + 11
            }
        );
        drop(store);
        // A crash mid-write leaves a temporary file: it is removed at open.
        fs::write(
            dir.path().join(format!("{}{TEMP_SUFFIX}", "0".repeat(32))),
            b"x",
        )
        .unwrap();
        let store = PayloadStore::open(dir.path(), None).unwrap();
        assert_eq!(store.list(&trace), vec![b, a]);
        assert_eq!(store.get(&other.id).unwrap().unwrap().1, b"other trace");
        assert_eq!(files(dir.path()).len(), 3);
    }

    #[test]
    fn hostile_ids_are_not_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = PayloadStore::open(dir.path(), None).unwrap();
        for id in [
            "../../etc/passwd",
            "",
            "ABCDEF0123456789ABCDEF0123456789",
            &"0".repeat(32),
        ] {
            assert!(store.get(id).unwrap().is_none(), "{id}");
        }
    }

    #[test]
    fn encrypted_bodies_are_not_on_disk_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = PayloadStore::open(dir.path(), Some(key())).unwrap();
        let secret = b"card=4111111111111111 and the content-type text/plain";
        let meta = store.put(new_payload(1, 1), secret).unwrap();
        let on_disk = fs::read(store.path(&meta.id)).unwrap();
        let needle = b"4111111111111111";
        assert!(!on_disk.windows(needle.len()).any(|w| w == needle));
        let ctype = b"application/json";
        assert!(!on_disk.windows(ctype.len()).any(|w| w == ctype));
        assert_eq!(store.get(&meta.id).unwrap().unwrap().1, secret);
        drop(store);
        // Reopened with the key: listed and readable.
        let store = PayloadStore::open(dir.path(), Some(key())).unwrap();
        assert_eq!(store.list(&meta.trace_id), vec![meta.clone()]);
        drop(store);
        // Without it, or with another one: not listed, never a panic.
        let store = PayloadStore::open(dir.path(), None).unwrap();
        assert!(store.list(&meta.trace_id).is_empty());
        let other = Arc::new(EncryptionKey::from_bytes(&[8; 32]));
        let store = PayloadStore::open(dir.path(), Some(other)).unwrap();
        assert!(store.get(&meta.id).unwrap().is_none());
    }

    #[test]
    fn altered_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = PayloadStore::open(dir.path(), Some(key())).unwrap();
        let meta = store.put(new_payload(1, 1), b"body bytes").unwrap();
        let path = store.path(&meta.id);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            store.get(&meta.id),
            Err(PayloadError::Damaged { .. })
        ));
        // Truncated files and garbage: errors at open, not panics.
        fs::write(&path, &bytes[..20]).unwrap();
        fs::write(
            dir.path().join(format!("{}{SUFFIX}", "1".repeat(32))),
            b"TWPAYLD1",
        )
        .unwrap();
        let store = PayloadStore::open(dir.path(), Some(key())).unwrap();
        assert_eq!(store.stats().payloads, 0);
    }

    #[test]
    fn sweep_removes_what_is_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let store = PayloadStore::open(dir.path(), None).unwrap();
        let old = store.put(new_payload(1, 100), b"old").unwrap();
        let new = store.put(new_payload(1, 300), b"new").unwrap();
        assert_eq!(store.sweep(200).unwrap(), 1);
        assert!(store.get(&old.id).unwrap().is_none());
        assert!(!store.path(&old.id).exists());
        assert_eq!(store.list(&old.trace_id), vec![new.clone()]);
        assert_eq!(
            store.stats(),
            PayloadStats {
                payloads: 1,
                bytes: 3
            }
        );
        assert_eq!(store.sweep(200).unwrap(), 0);
        assert_eq!(store.sweep(301).unwrap(), 1);
        assert!(files(dir.path()).is_empty());
    }
}
