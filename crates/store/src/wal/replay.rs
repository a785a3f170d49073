//! Reading the WAL back on open: the read path described in [`crate::wal`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use tracewarden_model::Batch;

use super::directory::{WalDirectory, WalFileReader};
use super::{
    ENCRYPTED_FILE_HEADER_LEN, FILE_HEADER_LEN, FORMAT_VERSION, FileHeader, Lsn, MAX_RECORD_BYTES,
    RECORD_HEADER_LEN, RecordHeader, parse_file_header, parse_file_name, record_crc,
};
use crate::codec::{self, CodecError};
use crate::encryption::{EncryptionKey, RecordCipher};
use crate::error::{Result, StoreError};
use crate::lifecycle::LsnSet;

/// How far past the last good LSN a record found while resynchronising may
/// be. Records are written one LSN apart, so a larger jump is not a record
/// of this WAL; the bound also makes random bytes that pass the other checks
/// rarer still before their checksum is even computed.
const MAX_LSN_GAP: u64 = 1 << 24;
/// Bytes read at a time while scanning for the next good record.
const SCAN_CHUNK: usize = 64 * 1024;
/// Candidate records whose checksum one resynchronisation may compute before
/// giving up. Real damage needs a handful; only crafted files reach this, and
/// each check may read up to `MAX_RECORD_BYTES`.
const MAX_RESYNC_CHECKS: u32 = 4096;

/// What replay found, returned by [`crate::Store::open`].
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// WAL files read.
    pub files: u64,
    /// Records replayed into the hot tier.
    pub records: u64,
    /// Records skipped because a segment's manifest already covers their
    /// LSN: flushed before the WAL file holding them could be removed (or
    /// while a [`crate::WalHold`] kept it).
    pub skipped_records: u64,
    /// Those of the skipped records that were decoded and shown to the
    /// observer of [`crate::Store::open_observed`], which asked for them;
    /// never applied to the hot tier. One that fails to decode is counted in
    /// `corrupt_records` instead.
    pub observed_in_segments: u64,
    /// Spans in the records replayed into the hot tier.
    pub spans: u64,
    /// Log records in the records replayed into the hot tier.
    pub logs: u64,
    /// Bytes cut from the end of the last file: a write torn by a crash,
    /// never acknowledged.
    pub torn_tail_bytes: u64,
    /// Records lost to damage (bad checksum, bad header, undecodable
    /// payload) that replay reported and skipped. A damaged region counts the
    /// LSNs it covered when the records around it tell, and at least one.
    /// Also counts the records asked for by [`crate::Store::open_observed`]
    /// in segments that fail to decode (also in `skipped_records`; their
    /// data is in the segment, not lost).
    pub corrupt_records: u64,
    /// Bytes in those damaged regions.
    pub corrupt_bytes: u64,
    /// LSNs missing between intact records and files, with no damaged bytes
    /// to account for them (a file removed by hand, or written with fsync off).
    pub missing_lsns: u64,
    /// The last LSN the WAL used; new records continue after it (0: none).
    pub last_lsn: Lsn,
}

/// The last WAL file as replay left it, for the writer to continue.
#[derive(Debug)]
pub(crate) struct Tail {
    pub name: String,
    /// Its length after any torn tail was cut.
    pub len: u64,
    /// Its salt; `None` when its header was torn and the file cut to nothing.
    pub salt: Option<u32>,
    /// Whether it is an encrypted (version 2) file.
    pub encrypted: bool,
}

#[derive(Debug)]
pub(crate) struct Replayed {
    pub report: ReplayReport,
    pub tail: Option<Tail>,
    /// Bytes in all WAL files after replay.
    pub wal_bytes: u64,
    /// The LSN of the next record.
    pub next_lsn: Lsn,
}

/// Replays every record of the WAL in `dir`, in LSN order, into `apply`,
/// except those whose LSN `covered` holds (their data is in a segment): they
/// are checked (checksum, order) but not decoded, unless `wants_in_segments`
/// asks for their LSN. Those are decoded and handed to `apply` too, in the
/// same order, with `in_segment` true: for the caller to look at, not to
/// apply. One that fails to decode or decrypt is reported and skipped, never
/// a failure: its data is safe in the segment.
///
/// Encrypted files are decrypted with `key`; one encrypted with another key,
/// or with no key given, fails the replay before any of its records is read
/// (and before anything is cut).
pub(crate) fn replay(
    dir: &dyn WalDirectory,
    covered: &LsnSet,
    key: Option<&EncryptionKey>,
    wants_in_segments: &dyn Fn(Lsn) -> bool,
    apply: &mut dyn FnMut(Lsn, Batch, bool),
) -> Result<Replayed> {
    let names = dir
        .list()
        .map_err(|e| StoreError::io("list WAL directory", dir.path(), e))?;
    let mut files: Vec<(Lsn, String)> = Vec::new();
    for name in names {
        match parse_file_name(&name) {
            Some(lsn) => files.push((lsn, name)),
            None => {
                tracing::warn!(file = %dir.path().join(&name).display(), "ignoring a file that is not a WAL file")
            }
        }
    }
    files.sort();

    let mut replayer = Replayer {
        dir,
        key,
        covered,
        wants_in_segments,
        report: ReplayReport::default(),
        prev: 0,
        payload: Vec::new(),
        window: Vec::new(),
    };
    let mut wal_bytes = 0u64;
    let mut tail = None;
    for (index, (first_lsn, name)) in files.iter().enumerate() {
        let next_file_lsn = files.get(index + 1).map(|(lsn, _)| *lsn);
        let is_last = next_file_lsn.is_none();
        replayer.start_file(*first_lsn, index == 0, &dir.path().join(name));
        let end = replayer.replay_file(name, is_last, next_file_lsn, apply)?;
        replayer.report.files += 1;
        wal_bytes += end.len;
        if is_last {
            tail = Some(Tail {
                name: name.clone(),
                len: end.len,
                salt: end.salt,
                encrypted: end.encrypted,
            });
        }
    }
    let Replayer {
        mut report, prev, ..
    } = replayer;
    report.last_lsn = prev;
    Ok(Replayed {
        report,
        tail,
        wal_bytes,
        next_lsn: prev.saturating_add(1),
    })
}

struct FileEnd {
    len: u64,
    salt: Option<u32>,
    encrypted: bool,
}

struct Replayer<'a> {
    dir: &'a dyn WalDirectory,
    key: Option<&'a EncryptionKey>,
    /// LSNs whose data is in a segment: not replayed.
    covered: &'a LsnSet,
    /// Which of those to decode for the caller anyway.
    wants_in_segments: &'a dyn Fn(Lsn) -> bool,
    report: ReplayReport,
    /// The LSN of the last record read, or the one before the current file's first.
    prev: Lsn,
    /// Reused for every payload read.
    payload: Vec<u8>,
    /// Reused while scanning for the next good record.
    window: Vec<u8>,
}

impl Replayer<'_> {
    fn start_file(&mut self, first_lsn: Lsn, is_first: bool, path: &Path) {
        let before_first = first_lsn.saturating_sub(1);
        if before_first > self.prev {
            // The first file's name says where the WAL starts (later, after
            // older files were flushed to segments and removed): not a gap.
            if !is_first {
                let missing = before_first - self.prev;
                tracing::warn!(
                    file = %path.display(),
                    after_lsn = self.prev,
                    missing,
                    "LSNs missing before this WAL file"
                );
                self.report.missing_lsns += missing;
            }
            self.prev = before_first;
        }
    }

    fn replay_file(
        &mut self,
        name: &str,
        is_last: bool,
        next_file_lsn: Option<Lsn>,
        apply: &mut dyn FnMut(Lsn, Batch, bool),
    ) -> Result<FileEnd> {
        let path = self.dir.path().join(name);
        let reader = self
            .dir
            .open_read(name)
            .map_err(|e| StoreError::io("open WAL file", &path, e))?;
        let reader = &*reader;
        let len = reader.len();
        let read_err = |e: std::io::Error| StoreError::io("read WAL file", &path, e);

        // Room for either version's header.
        let mut header = [0u8; ENCRYPTED_FILE_HEADER_LEN];
        let have = len.min(ENCRYPTED_FILE_HEADER_LEN as u64) as usize;
        let header = header.get_mut(..have).unwrap_or_default();
        reader.read_exact_at(header, 0).map_err(read_err)?;
        let (salt, cipher, header_len) = match parse_file_header(header) {
            FileHeader::Valid { salt } => (salt, None, FILE_HEADER_LEN),
            FileHeader::Encrypted {
                salt,
                key_id,
                key_salt,
            } => {
                // Checked before any record is read, so a wrong or missing key
                // never makes records look damaged (nor cut).
                let key = match self.key {
                    None => {
                        return Err(StoreError::KeyRequired {
                            path,
                            key_id: key_id.to_string(),
                        });
                    }
                    Some(key) if key.id() != key_id => {
                        return Err(StoreError::WrongKey {
                            path,
                            file_key_id: key_id.to_string(),
                            configured_key_id: key.id().to_string(),
                        });
                    }
                    Some(key) => key,
                };
                let cipher =
                    key.wal_file_cipher(&key_salt)
                        .map_err(|reason| StoreError::Decrypt {
                            path: path.clone(),
                            offset: 0,
                            reason: reason.to_owned(),
                        })?;
                (salt, Some(cipher), ENCRYPTED_FILE_HEADER_LEN)
            }
            FileHeader::UnsupportedVersion(version) => {
                return Err(StoreError::UnsupportedVersion {
                    path,
                    what: "WAL file",
                    version,
                    supported: FORMAT_VERSION,
                });
            }
            FileHeader::Torn if is_last => return self.torn_header(name, &path, len),
            // A crash right after creating the file can leave its size
            // extended but its bytes zero.
            FileHeader::Invalid(_)
                if is_last && all_zero(reader, &mut self.window).map_err(read_err)? =>
            {
                return self.torn_header(name, &path, len);
            }
            FileHeader::Invalid(reason) if is_last => {
                // Never truncate or write after what may be another program's
                // file: an operator decides.
                return Err(StoreError::Corrupt {
                    path,
                    offset: 0,
                    reason: format!("{reason}: not a WAL file header"),
                });
            }
            damaged @ (FileHeader::Torn | FileHeader::Invalid(_)) => {
                let reason = match damaged {
                    FileHeader::Invalid(reason) => reason,
                    _ => "torn header",
                };
                // Every file but the last had its header fsynced before the
                // next file was created, so this is damage: skip the file.
                let lost = lost_lsns(self.prev, next_file_lsn);
                tracing::error!(
                    file = %path.display(),
                    offset = 0,
                    lost,
                    reason,
                    "skipping WAL file with a damaged header"
                );
                self.report.corrupt_records += lost;
                self.report.corrupt_bytes += len;
                if let Some(next) = next_file_lsn {
                    self.prev = self.prev.max(next.saturating_sub(1));
                }
                return Ok(FileEnd {
                    len,
                    salt: None,
                    encrypted: false,
                });
            }
        };
        let encrypted = cipher.is_some();

        let mut offset = header_len as u64;
        while offset < len {
            match self
                .read_record(reader, salt, offset, len, next_file_lsn)
                .map_err(read_err)?
            {
                Ok(header) => {
                    if header.lsn > self.prev.saturating_add(1) {
                        let missing = header.lsn - self.prev - 1;
                        tracing::warn!(
                            file = %path.display(),
                            offset,
                            lsn = header.lsn,
                            missing,
                            "LSNs missing before this WAL record"
                        );
                        self.report.missing_lsns += missing;
                    }
                    if self.covered.contains(header.lsn) {
                        self.report.skipped_records += 1;
                        if (self.wants_in_segments)(header.lsn) {
                            self.observe_payload(&path, offset, header, cipher.as_ref(), apply);
                        }
                    } else {
                        self.apply_payload(&path, offset, header, cipher.as_ref(), apply)?;
                    }
                    self.prev = header.lsn;
                    offset += (RECORD_HEADER_LEN as u64) + u64::from(header.len);
                }
                Err(reason) => {
                    match self.resync(reader, salt, offset + 1, len, next_file_lsn, &path)? {
                        Some((next_offset, next_lsn)) => {
                            let lost = (next_lsn - self.prev - 1).max(1);
                            let bytes = next_offset - offset;
                            tracing::error!(
                                file = %path.display(),
                                offset,
                                bytes,
                                lost,
                                reason,
                                "skipping corrupt WAL record"
                            );
                            self.report.corrupt_records += lost;
                            self.report.corrupt_bytes += bytes;
                            offset = next_offset;
                        }
                        None if is_last => {
                            let cut = len - offset;
                            tracing::warn!(
                                file = %path.display(),
                                offset,
                                bytes_cut = cut,
                                reason,
                                "cutting torn tail of the WAL"
                            );
                            self.dir
                                .truncate(name, offset)
                                .map_err(|e| StoreError::io("truncate WAL file", &path, e))?;
                            self.report.torn_tail_bytes += cut;
                            return Ok(FileEnd {
                                len: offset,
                                salt: Some(salt),
                                encrypted,
                            });
                        }
                        None => {
                            let lost = lost_lsns(self.prev, next_file_lsn);
                            let bytes = len - offset;
                            tracing::error!(
                                file = %path.display(),
                                offset,
                                bytes,
                                lost,
                                reason,
                                "skipping corrupt end of WAL file"
                            );
                            self.report.corrupt_records += lost;
                            self.report.corrupt_bytes += bytes;
                            if let Some(next) = next_file_lsn {
                                self.prev = self.prev.max(next.saturating_sub(1));
                            }
                            break;
                        }
                    }
                }
            }
        }
        Ok(FileEnd {
            len,
            salt: Some(salt),
            encrypted,
        })
    }

    /// The last file's header was torn while the file was being created:
    /// nothing in it was ever acknowledged. Cut it to nothing; the writer
    /// writes a fresh header.
    fn torn_header(&mut self, name: &str, path: &Path, len: u64) -> Result<FileEnd> {
        if len > 0 {
            tracing::warn!(
                file = %path.display(),
                offset = 0,
                bytes_cut = len,
                "cutting torn header of the last WAL file"
            );
            self.dir
                .truncate(name, 0)
                .map_err(|e| StoreError::io("truncate WAL file", path, e))?;
            self.report.torn_tail_bytes += len;
        }
        Ok(FileEnd {
            len: 0,
            salt: None,
            encrypted: false,
        })
    }

    /// Reads the record at `offset` into `self.payload`. The inner `Err`
    /// says why the bytes there are not a valid next record.
    fn read_record(
        &mut self,
        reader: &dyn WalFileReader,
        salt: u32,
        offset: u64,
        len: u64,
        next_file_lsn: Option<Lsn>,
    ) -> std::io::Result<Result<RecordHeader, &'static str>> {
        let mut bytes = [0u8; RECORD_HEADER_LEN];
        if len - offset < RECORD_HEADER_LEN as u64 {
            return Ok(Err("truncated record header"));
        }
        reader.read_exact_at(&mut bytes, offset)?;
        let header = RecordHeader::parse(&bytes);
        if header.len == 0 || header.len as usize > MAX_RECORD_BYTES {
            return Ok(Err("record length out of range"));
        }
        if offset + (RECORD_HEADER_LEN as u64) + u64::from(header.len) > len {
            return Ok(Err("record runs past the end of the file"));
        }
        if !self.checksum_matches(reader, salt, offset, header)? {
            return Ok(Err("checksum mismatch"));
        }
        if header.lsn <= self.prev {
            return Ok(Err("LSN not after the previous record's"));
        }
        if next_file_lsn.is_some_and(|next| header.lsn >= next) {
            return Ok(Err("LSN not before the next file's first"));
        }
        Ok(Ok(header))
    }

    fn checksum_matches(
        &mut self,
        reader: &dyn WalFileReader,
        salt: u32,
        offset: u64,
        header: RecordHeader,
    ) -> std::io::Result<bool> {
        // The length was checked against MAX_RECORD_BYTES and the file's
        // length by the caller, so this allocation is bounded.
        self.payload.resize(header.len as usize, 0);
        reader.read_exact_at(&mut self.payload, offset + RECORD_HEADER_LEN as u64)?;
        let crc = record_crc(
            salt,
            header.lsn,
            crc32c::crc32c(&self.payload),
            self.payload.len(),
        );
        Ok(crc == header.crc)
    }

    /// Scans forward from `from` for the offset and LSN of the next record
    /// whose header is plausible and whose checksum validates.
    fn resync(
        &mut self,
        reader: &dyn WalFileReader,
        salt: u32,
        from: u64,
        len: u64,
        next_file_lsn: Option<Lsn>,
        path: &Path,
    ) -> Result<Option<(u64, Lsn)>> {
        let read_err = |e: std::io::Error| StoreError::io("read WAL file", path, e);
        let mut max_lsn = self.prev.saturating_add(MAX_LSN_GAP);
        if let Some(next) = next_file_lsn {
            max_lsn = max_lsn.min(next.saturating_sub(1));
        }
        let mut window = std::mem::take(&mut self.window);
        window.resize(SCAN_CHUNK + RECORD_HEADER_LEN - 1, 0);
        let mut checks = 0u32;
        let mut start = from;
        let mut found = None;
        'scan: while start.saturating_add(RECORD_HEADER_LEN as u64) <= len {
            let n = (window.len() as u64).min(len - start) as usize;
            let chunk = window.get_mut(..n).unwrap_or_default();
            reader.read_exact_at(chunk, start).map_err(read_err)?;
            // Header positions in this chunk; the last RECORD_HEADER_LEN - 1
            // bytes of a full chunk start the next one.
            let positions = (n + 1 - RECORD_HEADER_LEN).min(SCAN_CHUNK);
            for i in 0..positions {
                let Some(bytes) = chunk
                    .get(i..i + RECORD_HEADER_LEN)
                    .and_then(|s| <&[u8; 16]>::try_from(s).ok())
                else {
                    break;
                };
                let header = RecordHeader::parse(bytes);
                let at = start + i as u64;
                let plausible = header.len != 0
                    && header.len as usize <= MAX_RECORD_BYTES
                    && at + (RECORD_HEADER_LEN as u64) + u64::from(header.len) <= len
                    && header.lsn > self.prev
                    && header.lsn <= max_lsn;
                if !plausible {
                    continue;
                }
                checks += 1;
                if checks > MAX_RESYNC_CHECKS {
                    self.window = window;
                    return Err(StoreError::Corrupt {
                        path: path.to_owned(),
                        offset: from,
                        reason: format!(
                            "gave up looking for the next valid record after {MAX_RESYNC_CHECKS} candidates"
                        ),
                    });
                }
                if self
                    .checksum_matches(reader, salt, at, header)
                    .map_err(read_err)?
                {
                    found = Some((at, header.lsn));
                    break 'scan;
                }
            }
            start += positions as u64;
        }
        self.window = window;
        Ok(found)
    }

    /// Decodes the payload just read into the hot tier's `apply`.
    fn apply_payload(
        &mut self,
        path: &Path,
        offset: u64,
        header: RecordHeader,
        cipher: Option<&RecordCipher>,
        apply: &mut dyn FnMut(Lsn, Batch, bool),
    ) -> Result<()> {
        match self.decode_payload(path, offset, header, cipher)? {
            Ok(batch) => {
                self.report.records += 1;
                self.report.spans += batch.span_count() as u64;
                self.report.logs += batch.log_count() as u64;
                apply(header.lsn, batch, false);
            }
            // The checksum held, so these are the bytes that were written:
            // a model change without a codec version, not disk damage.
            Err(error) => self.skip_undecodable(path, offset, header, &error, false),
        }
        Ok(())
    }

    /// Decodes the payload just read, of a record a segment holds, for the
    /// caller to look at. Whatever fails is reported and skipped: the
    /// segment has the data, so the open goes on.
    fn observe_payload(
        &mut self,
        path: &Path,
        offset: u64,
        header: RecordHeader,
        cipher: Option<&RecordCipher>,
        apply: &mut dyn FnMut(Lsn, Batch, bool),
    ) {
        let error = match self.decode_payload(path, offset, header, cipher) {
            Ok(Ok(batch)) => {
                self.report.observed_in_segments += 1;
                apply(header.lsn, batch, true);
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(error) => error.to_string(),
        };
        self.skip_undecodable(path, offset, header, &error, true);
    }

    /// Counts a record whose payload did not decode as corrupt, and says so.
    fn skip_undecodable(
        &mut self,
        path: &Path,
        offset: u64,
        header: RecordHeader,
        error: &dyn std::fmt::Display,
        in_segment: bool,
    ) {
        self.report.corrupt_records += 1;
        self.report.corrupt_bytes += (RECORD_HEADER_LEN as u64) + u64::from(header.len);
        tracing::error!(
            file = %path.display(),
            offset,
            lsn = header.lsn,
            %error,
            in_segment,
            "skipping WAL record that does not decode"
        );
    }

    /// Decrypts (when `cipher`) and decodes the payload just read. `Err` for
    /// what must stop a replay (a record modified after it was written, a
    /// newer codec); `Ok(Err)` for a payload this build cannot decode.
    fn decode_payload(
        &mut self,
        path: &Path,
        offset: u64,
        header: RecordHeader,
        cipher: Option<&RecordCipher>,
    ) -> Result<std::result::Result<Batch, CodecError>> {
        let decoded = match cipher {
            None => codec::decode(&self.payload),
            Some(cipher) => {
                // The crc held, so these are the bytes the writer wrote, or
                // bytes forged with a matching crc: never damage to skip.
                let plaintext = cipher.open(header.lsn, &mut self.payload).map_err(|()| {
                    StoreError::Decrypt {
                        path: path.to_owned(),
                        offset,
                        reason: format!(
                            "WAL record {} passes its checksum but fails authentication: it was modified after it was written",
                            header.lsn
                        ),
                    }
                })?;
                codec::decode(plaintext)
            }
        };
        match decoded {
            Err(CodecError::UnknownVersion(version)) => Err(StoreError::UnsupportedVersion {
                path: PathBuf::from(path),
                what: "record payload codec",
                version: u16::from(version),
                supported: u16::from(codec::CODEC_VERSION),
            }),
            decoded => Ok(decoded),
        }
    }
}

/// LSNs between the last good record and the next file, at least one.
fn lost_lsns(prev: Lsn, next_file_lsn: Option<Lsn>) -> u64 {
    next_file_lsn
        .map(|next| next.saturating_sub(prev).saturating_sub(1))
        .unwrap_or(0)
        .max(1)
}

/// Whether every byte of the file is zero.
fn all_zero(reader: &dyn WalFileReader, window: &mut Vec<u8>) -> std::io::Result<bool> {
    window.resize(SCAN_CHUNK, 0);
    let mut offset = 0u64;
    while offset < reader.len() {
        let n = (window.len() as u64).min(reader.len() - offset) as usize;
        let chunk = window.get_mut(..n).unwrap_or_default();
        reader.read_exact_at(chunk, offset)?;
        if chunk.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        offset += n as u64;
    }
    Ok(true)
}
