//! WAL replay of arbitrary records. The store replays its WAL on every
//! start: the checksums catch torn writes and damage on disk, not a payload
//! this build misreads (written by a build with a bug) or bytes crafted
//! under a valid checksum. Whatever the files hold, opening the store must
//! give an error or a store, never a panic, a hang or a runaway allocation.
//!
//! The input is a list of payloads, each framed here as a record with a
//! valid checksum (so mutations reach the codec, not only the framing),
//! plus a few bytes that split the records over two files and damage them:
//!
//! ```text
//! input   = layout: u8 | split: u8 | at: u16 LE | (len: u16 LE | payload)*
//! layout  bit 0: a second file starts at record `split % records`
//!         bit 1: the byte at `at % length` of the last file is flipped
//!         bit 2: the last file loses its last `split` bytes
//!         bit 3: the second file's LSNs start `split` past the first's end
//! ```
//!
//! Undamaged, the replay must match what `codec::decode` says of each
//! payload on its own: each one that decodes is replayed with its spans
//! and log records, each one that does not is counted as corrupt, and one
//! of an unknown codec version stops the open.
#![no_main]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use tracewarden_store::codec::{self, CodecError};
use tracewarden_store::wal::{WalDirectory, WalFile, WalFileReader, file_name};
use tracewarden_store::{Store, StoreError, StoreOptions};

/// `wal/mod.rs`: the version 1 file header and record framing.
const MAGIC: &[u8] = b"TWWAL";
const SALT: u32 = 0x5EED_CAFE;

fn file_header() -> Vec<u8> {
    let mut header = Vec::with_capacity(16);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&1u16.to_le_bytes());
    header.push(0);
    header.extend_from_slice(&SALT.to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

fn push_record(file: &mut Vec<u8>, lsn: u64, payload: &[u8]) {
    let mut covered = Vec::with_capacity(12 + payload.len());
    covered.extend_from_slice(&SALT.to_le_bytes());
    covered.extend_from_slice(&lsn.to_le_bytes());
    covered.extend_from_slice(payload);
    file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
    file.extend_from_slice(&lsn.to_le_bytes());
    file.extend_from_slice(payload);
}

/// WAL files in memory: the replay reads, cuts and appends to them as it
/// would on disk.
#[derive(Default)]
struct MemDirectory {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemDirectory {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> R) -> R {
        match self.files.lock() {
            Ok(mut files) => f(&mut files),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

fn missing(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no WAL file `{name}`"))
}

impl WalDirectory for MemDirectory {
    fn path(&self) -> &Path {
        Path::new("memory/wal")
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.with(|files| files.keys().cloned().collect()))
    }

    fn open_read(&self, name: &str) -> io::Result<Box<dyn WalFileReader>> {
        let bytes = self
            .with(|files| files.get(name).cloned())
            .ok_or_else(|| missing(name))?;
        Ok(Box::new(MemReader(bytes)))
    }

    fn open_append(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        if !self.with(|files| files.contains_key(name)) {
            return Err(missing(name));
        }
        Ok(Box::new(MemFile))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        self.with(|files| {
            files.entry(name.to_owned()).or_default();
        });
        Ok(Box::new(MemFile))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.with(|files| {
            let bytes = files.get_mut(name).ok_or_else(|| missing(name))?;
            bytes.truncate(len as usize);
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.with(|files| {
            files.remove(name);
        });
        Ok(())
    }
}

struct MemReader(Vec<u8>);

impl WalFileReader for MemReader {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// Nothing is appended: the store is dropped right after it opens.
struct MemFile;

impl WalFile for MemFile {
    fn write_all(&mut self, _bufs: &[&[u8]]) -> io::Result<()> {
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One data directory per fuzzing process, for the (empty) segments.
fn data_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("tracewarden-fuzz-wal-{}", std::process::id()))
    })
}

fn payloads(mut rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (payload, after) = tail.split_at(len);
        // The writer never frames an empty payload (a codec version byte
        // at least), and replay takes a zero length for damage.
        if !payload.is_empty() {
            out.push(payload);
        }
        rest = after;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [layout, split, at0, at1, rest @ ..] = data else {
        return;
    };
    let (layout, split, at) = (
        *layout,
        *split,
        usize::from(u16::from_le_bytes([*at0, *at1])),
    );
    let payloads = payloads(rest);
    if payloads.is_empty() {
        return;
    }

    let second_at = (layout & 1 != 0).then(|| usize::from(split) % payloads.len());
    let gap = if layout & 8 != 0 { u64::from(split) } else { 0 };
    let mut files: Vec<(u64, Vec<u8>)> = vec![(1, file_header())];
    let mut lsn = 1u64;
    for (i, payload) in payloads.iter().enumerate() {
        if second_at == Some(i) && i > 0 {
            lsn += gap;
            files.push((lsn, file_header()));
        }
        if let Some((_, file)) = files.last_mut() {
            push_record(file, lsn, payload);
        }
        lsn += 1;
    }
    let damaged = layout & 6 != 0;
    if let Some((_, last)) = files.last_mut() {
        if layout & 2 != 0 && !last.is_empty() {
            let i = at % last.len();
            last[i] ^= split | 1;
        }
        if layout & 4 != 0 {
            last.truncate(last.len().saturating_sub(usize::from(split)));
        }
    }

    let directory = Arc::new(MemDirectory::default());
    directory.with(|map| {
        for (first_lsn, bytes) in files {
            map.insert(file_name(first_lsn), bytes);
        }
    });
    let options = StoreOptions {
        lifecycle_thread: false,
        ..StoreOptions::new(data_dir().clone())
    };
    let opened = Store::open_with(directory, options);
    if damaged {
        if let Ok((_, report)) = &opened {
            assert!(report.records <= payloads.len() as u64);
        }
        return;
    }

    // Undamaged: each payload's fate is what the codec says of it alone.
    let (mut records, mut corrupt, mut spans, mut logs) = (0u64, 0u64, 0u64, 0u64);
    let mut unknown_version = false;
    for payload in &payloads {
        match codec::decode(payload) {
            Ok(batch) => {
                records += 1;
                spans += batch.span_count() as u64;
                logs += batch.log_count() as u64;
                // What was read is written again: the hand-written body is
                // the one postcard writes, and it reads back the same. (A
                // value nested past what the store writes is refused.)
                match codec::encode(&batch) {
                    Ok(bytes) => {
                        let body = postcard::to_allocvec(&batch).expect("postcard encodes");
                        assert_eq!(bytes[1..], body[..], "the writer disagrees with postcard");
                        let again = codec::decode(&bytes).expect("an encoded batch decodes");
                        assert_eq!(codec::encode(&again).ok(), Some(bytes));
                    }
                    Err(CodecError::TooDeep { .. }) => {}
                    Err(error) => panic!("a decoded batch does not encode: {error}"),
                }
            }
            Err(CodecError::UnknownVersion(_)) => {
                unknown_version = true;
                break;
            }
            Err(_) => corrupt += 1,
        }
    }
    match opened {
        Err(StoreError::UnsupportedVersion { .. }) if unknown_version => {}
        Err(error) => panic!("undamaged WAL failed to open: {error}"),
        Ok((store, report)) => {
            assert!(
                !unknown_version,
                "a payload of an unknown codec version replayed"
            );
            assert_eq!(report.records, records);
            assert_eq!(report.corrupt_records, corrupt);
            assert_eq!(report.spans, spans);
            assert_eq!(report.logs, logs);
            assert_eq!(report.torn_tail_bytes, 0);
            drop(store);
        }
    }
});
