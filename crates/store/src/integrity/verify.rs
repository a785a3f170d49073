//! `verify`: checks a segments directory against its manifest chain and
//! names every difference.
//!
//! # How
//!
//! 1. Read every `<id>.manifest.json` (hashing the file), `chain.head`, the
//!    retention log, and the manifests in `quarantine/`.
//! 2. Check signatures when a public key is given.
//! 3. Hash every data file a manifest lists (streamed) and compare.
//! 4. Walk the chain from `chain.head` back to the first manifest: each step
//!    looks the `prev_manifest_sha256` up among the present manifests, the
//!    retention records (dropped segments) and the quarantined manifests.
//!    A hash that matches nothing is a gap: the unreached manifest with the
//!    highest id below it tells whether it was edited (no id fits between)
//!    or segments were removed (the ids between), and the walk resumes there.
//! 5. Whatever was not reached from the head was inserted.
//!
//! Segment ids only increase, which is what lets a gap name the segments
//! missing from it: when one id fits in the gap, the finding is exact.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::digest::{sha256_file, sha256_hex};
use super::error::{IntegrityError, Result};
use super::fsio::{TMP_SUFFIX, list_dir, read_capped};
use super::head::ChainHead;
use super::manifest::{MANIFEST_LIMIT_BYTES, Manifest, manifest_id_of_file, segment_id_of_file};
use super::retention::{LogRead, RetentionEntry, read_log};
use super::signing::{VerifyingKey, key_id, verify_hex};
use super::{CHAIN_HEAD_FILE, QUARANTINE_DIR, RETENTION_LOG_FILE, SEGMENTS_DIR};

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// No finding is a failure ([`Finding::is_failure`]).
    pub ok: bool,
    /// Manifests read (present in the directory and parseable).
    pub segments_checked: u64,
    /// Data files hashed, and their total size.
    pub files_checked: u64,
    pub bytes_checked: u64,
    /// Lines of the retention log.
    pub retention_entries: u64,
    /// What `chain.head` names (segment id, manifest SHA-256), when readable.
    /// Keep it elsewhere to catch a later roll-back of the whole directory.
    pub head: Option<(u64, String)>,
    /// The id of the key signatures were checked with; `None` when no key
    /// was given (signatures were not checked).
    pub key_id: Option<String>,
    /// Failures and information, in the order found.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// The failures only.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_failure())
    }
}

/// One thing `verify` found. [`Finding::is_failure`] tells failures from
/// information; `Display` says exactly what, naming segments and files.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A data file's bytes differ from its manifest.
    Modified {
        segment_id: u64,
        file: String,
        expected_sha256: String,
        actual_sha256: String,
    },
    /// A data file holds the bytes another segment's manifest lists for
    /// another file: files were swapped (or copied over).
    Misplaced {
        segment_id: u64,
        file: String,
        holds_segment_id: u64,
        holds_file: String,
    },
    /// A data file listed in a manifest is gone (the manifest is there).
    Missing { segment_id: u64, file: String },
    /// A data file that could not be read.
    UnreadableFile { file: String, reason: String },
    /// Manifests are gone from the chain and no retention record explains
    /// it. The removed segments have ids in `first_id..=last_id` (exact when
    /// equal; `first_id` is `None` when no earlier segment bounds it);
    /// `manifest_sha256` is the hash the chain expected.
    Removed {
        first_id: Option<u64>,
        last_id: u64,
        manifest_sha256: String,
    },
    /// A manifest's file differs from the one the chain links to (the next
    /// manifest's `prev_manifest_sha256`, or `chain.head`).
    ManifestEdited {
        segment_id: u64,
        expected_sha256: String,
        actual_sha256: String,
    },
    /// A link of the chain matches nothing, and neither an edit nor a removal
    /// explains it (a forged or edited retention record, a cycle).
    ChainBroken {
        /// The segment whose link is broken (`None`: `chain.head`'s).
        segment_id: Option<u64>,
        missing_sha256: String,
    },
    /// A manifest that is not on the chain.
    Inserted { segment_id: u64, file: String },
    /// A manifest newer than `chain.head`: written after the head was last
    /// updated (a crash; opening the store repairs it) or inserted.
    AfterHead { segment_id: u64 },
    /// A manifest file named for one segment holds another's manifest.
    Reordered { file: String, segment_id: u64 },
    /// The chain links a manifest after one with a lower or equal id.
    OutOfOrder { segment_id: u64, successor_id: u64 },
    /// A manifest file that cannot be read as one.
    InvalidManifest { file: String, reason: String },
    /// A manifest's signature does not verify with the given key.
    BadSignature { segment_id: u64 },
    /// A manifest without a signature, while a key was given.
    Unsigned { segment_id: u64 },
    /// A segment on the chain whose manifest is in `quarantine/`.
    Quarantined { segment_id: u64 },
    /// Something wrong with `chain.head`.
    Head { problem: HeadProblem },
    /// Something wrong with line `line` of the retention log.
    RetentionLog {
        line: u64,
        problem: RetentionProblem,
    },
    /// A file in the segments directory that no manifest lists.
    UnexpectedFile { file: String },
    /// Information: a segment dropped by retention, as recorded.
    RetentionDropped { segment_id: u64, reason: String },
    /// Information: a segment replaced by a compaction, as recorded.
    Compacted { segment_id: u64, into: u64 },
    /// Information: a segment recorded as dropped whose manifest is still
    /// there (the drop was interrupted; its files may be partly deleted).
    DropPending { segment_id: u64 },
    /// Information: a file of a recorded-dropped segment not yet deleted.
    DropLeftover { file: String },
    /// Information: a `*.tmp` file (an interrupted write; removed at open).
    TempFile { file: String },
}

/// What is wrong with `chain.head`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadProblem {
    /// Missing although manifests or retention records exist.
    Missing,
    Invalid {
        reason: String,
    },
    BadSignature,
    Unsigned,
    /// The manifest the head's hash leads to has another segment id.
    WrongSegment {
        head_segment_id: u64,
        manifest_segment_id: u64,
    },
}

/// What is wrong with a retention log line.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionProblem {
    Invalid {
        reason: String,
    },
    /// The line differs from the one the log (or `chain.head`) links to.
    Edited,
    /// The line's `seq` is not its position: lines were removed or inserted
    /// before it.
    OutOfSequence {
        seq: u64,
    },
    BadSignature,
    Unsigned,
    /// `chain.head` records more lines than there are: the last ones were
    /// removed (`line` is the first missing one).
    Truncated {
        expected_entries: u64,
    },
    /// A line after the last one `chain.head` records.
    AfterHead,
    /// Information: bytes after the last full line (a crash while recording a
    /// drop; cut off when the store opens).
    TornTail {
        bytes: u64,
    },
}

impl Finding {
    /// Whether this finding fails verification (the rest is information).
    pub fn is_failure(&self) -> bool {
        match self {
            Finding::RetentionDropped { .. }
            | Finding::Compacted { .. }
            | Finding::DropPending { .. }
            | Finding::DropLeftover { .. }
            | Finding::TempFile { .. } => false,
            Finding::RetentionLog { problem, .. } => {
                !matches!(problem, RetentionProblem::TornTail { .. })
            }
            _ => true,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Modified {
                segment_id,
                file,
                expected_sha256,
                actual_sha256,
            } => write!(
                f,
                "segment {segment_id}: file `{file}` was modified: expected sha256 {expected_sha256}, found {actual_sha256}"
            ),
            Finding::Misplaced {
                segment_id,
                file,
                holds_segment_id,
                holds_file,
            } => write!(
                f,
                "segment {segment_id}: file `{file}` holds the bytes of segment {holds_segment_id}'s `{holds_file}` (files swapped or copied)"
            ),
            Finding::Missing { segment_id, file } => {
                write!(f, "segment {segment_id}: file `{file}` was removed")
            }
            Finding::UnreadableFile { file, reason } => {
                write!(f, "file `{file}` could not be read: {reason}")
            }
            Finding::Removed {
                first_id,
                last_id,
                manifest_sha256,
            } => match first_id {
                Some(first) if first == last_id => write!(
                    f,
                    "segment {last_id} was removed (manifest sha256 {manifest_sha256}) and no retention record explains it"
                ),
                Some(first) => write!(
                    f,
                    "one or more of segments {first}..={last_id} were removed (the newest had manifest sha256 {manifest_sha256}) and no retention record explains it"
                ),
                None => write!(
                    f,
                    "one or more segments up to {last_id} were removed (the newest had manifest sha256 {manifest_sha256}) and no retention record explains it"
                ),
            },
            Finding::ManifestEdited {
                segment_id,
                expected_sha256,
                actual_sha256,
            } => write!(
                f,
                "segment {segment_id}: the manifest was edited: the chain links to sha256 {expected_sha256}, the file has {actual_sha256}"
            ),
            Finding::ChainBroken {
                segment_id,
                missing_sha256,
            } => match segment_id {
                Some(id) => write!(
                    f,
                    "the chain is broken after segment {id}: it links to manifest sha256 {missing_sha256}, which matches no manifest or retention record"
                ),
                None => write!(
                    f,
                    "the chain is broken: chain.head links to manifest sha256 {missing_sha256}, which matches no manifest or retention record"
                ),
            },
            Finding::Inserted { segment_id, file } => write!(
                f,
                "segment {segment_id} was inserted: its manifest `{file}` is not on the chain"
            ),
            Finding::AfterHead { segment_id } => write!(
                f,
                "segment {segment_id}'s manifest is newer than chain.head: written just before a crash (opening the store repairs it), while verify ran, or inserted"
            ),
            Finding::Reordered { file, segment_id } => write!(
                f,
                "manifest file `{file}` holds the manifest of segment {segment_id}: manifests were swapped or renamed"
            ),
            Finding::OutOfOrder {
                segment_id,
                successor_id,
            } => write!(
                f,
                "segments were re-ordered: segment {segment_id} is linked before segment {successor_id}"
            ),
            Finding::InvalidManifest { file, reason } => {
                write!(f, "manifest file `{file}` is invalid: {reason}")
            }
            Finding::BadSignature { segment_id } => write!(
                f,
                "segment {segment_id}: the manifest's signature does not verify with the given public key"
            ),
            Finding::Unsigned { segment_id } => write!(
                f,
                "segment {segment_id}: the manifest is not signed, but a public key was given"
            ),
            Finding::Quarantined { segment_id } => write!(
                f,
                "segment {segment_id} is in quarantine/ (it failed to open); its data is not served"
            ),
            Finding::Head { problem } => match problem {
                HeadProblem::Missing => write!(
                    f,
                    "chain.head is missing: the newest segments may have been removed with it"
                ),
                HeadProblem::Invalid { reason } => write!(f, "chain.head is invalid: {reason}"),
                HeadProblem::BadSignature => write!(
                    f,
                    "chain.head's signature does not verify with the given public key"
                ),
                HeadProblem::Unsigned => {
                    write!(f, "chain.head is not signed, but a public key was given")
                }
                HeadProblem::WrongSegment {
                    head_segment_id,
                    manifest_segment_id,
                } => write!(
                    f,
                    "chain.head names segment {head_segment_id}, but its hash is segment {manifest_segment_id}'s manifest"
                ),
            },
            Finding::RetentionLog { line, problem } => match problem {
                RetentionProblem::Invalid { reason } => {
                    write!(f, "retention log line {line} is invalid: {reason}")
                }
                RetentionProblem::Edited => write!(
                    f,
                    "retention log line {line} was edited: the log links to other bytes"
                ),
                RetentionProblem::OutOfSequence { seq } => write!(
                    f,
                    "retention log line {line} holds entry {seq}: entries were removed or inserted before it"
                ),
                RetentionProblem::BadSignature => write!(
                    f,
                    "retention log line {line}: the signature does not verify with the given public key"
                ),
                RetentionProblem::Unsigned => write!(
                    f,
                    "retention log line {line} is not signed, but a public key was given"
                ),
                RetentionProblem::Truncated { expected_entries } => write!(
                    f,
                    "the retention log was cut: chain.head records {expected_entries} entries, line {line} on are missing"
                ),
                RetentionProblem::AfterHead => write!(
                    f,
                    "retention log line {line} is newer than chain.head: written just before a crash (opening the store repairs it) or inserted"
                ),
                RetentionProblem::TornTail { bytes } => write!(
                    f,
                    "the retention log ends with {bytes} bytes of a torn line (a crash while recording a drop; cut off when the store opens)"
                ),
            },
            Finding::UnexpectedFile { file } => write!(
                f,
                "file `{file}` is not listed by any manifest (an interrupted flush, removed when the store opens, or an inserted file)"
            ),
            Finding::RetentionDropped { segment_id, reason } => {
                write!(
                    f,
                    "segment {segment_id} was dropped by retention ({reason})"
                )
            }
            Finding::Compacted { segment_id, into } => {
                write!(f, "segment {segment_id} was compacted into segment {into}")
            }
            Finding::DropPending { segment_id } => write!(
                f,
                "segment {segment_id} is recorded as dropped but its manifest is still there (an interrupted drop)"
            ),
            Finding::DropLeftover { file } => write!(
                f,
                "file `{file}` belongs to a dropped segment and was not deleted yet"
            ),
            Finding::TempFile { file } => write!(
                f,
                "file `{file}` is left from an interrupted write (removed when the store opens)"
            ),
        }
    }
}

/// Verifies the segments of the store in `data_dir` (its `segments/`
/// directory), checking signatures when `verifying_key` is given.
///
/// Fails only when it cannot run (`data_dir` missing, the directory cannot
/// be listed); everything it finds is in the report. A store that never
/// flushed a segment verifies OK with no segments.
pub fn verify(data_dir: &Path, verifying_key: Option<&VerifyingKey>) -> Result<VerifyReport> {
    std::fs::metadata(data_dir)
        .map_err(|source| IntegrityError::io("open data directory", data_dir, source))?;
    verify_segments(&data_dir.join(SEGMENTS_DIR), verifying_key)
}

/// [`verify`] on a segments directory itself.
pub fn verify_segments(
    segments_dir: &Path,
    verifying_key: Option<&VerifyingKey>,
) -> Result<VerifyReport> {
    let mut run = Run::new(segments_dir, verifying_key);
    run.read_directory()?;
    run.check_files();
    run.check_log();
    run.walk_chain();
    Ok(run.report())
}

/// A manifest found in the directory.
struct Present {
    file: String,
    manifest: Manifest,
    sha256: String,
}

/// A node of the chain, by the SHA-256 of its manifest file.
struct Node {
    id: u64,
    prev: Option<String>,
    kind: NodeKind,
}

enum NodeKind {
    Present,
    Dropped {
        reason: String,
        replaced_by: Option<u64>,
    },
    Quarantined,
}

/// What the walk stepped from.
#[derive(Clone, Copy)]
enum Link {
    Head { segment_id: u64 },
    Manifest { segment_id: u64 },
    Resumed,
}

struct Run<'a> {
    dir: &'a Path,
    key: Option<&'a VerifyingKey>,
    names: Vec<String>,
    present: Vec<Present>,
    head: Option<ChainHead>,
    log: LogRead,
    /// Manifests in quarantine: segment id, file SHA-256, link.
    quarantined: Vec<(u64, String, Option<String>)>,
    findings: Vec<Finding>,
    files_checked: u64,
    bytes_checked: u64,
}

impl<'a> Run<'a> {
    fn new(dir: &'a Path, key: Option<&'a VerifyingKey>) -> Self {
        Run {
            dir,
            key,
            names: Vec::new(),
            present: Vec::new(),
            head: None,
            log: LogRead::default(),
            quarantined: Vec::new(),
            findings: Vec::new(),
            files_checked: 0,
            bytes_checked: 0,
        }
    }

    fn signed(&self, signature: Option<&str>, bytes: impl FnOnce() -> Vec<u8>) -> Option<bool> {
        let key = self.key?;
        Some(signature.is_some_and(|s| verify_hex(key, &bytes(), s)))
    }

    /// Step 1 and 2: manifests, head, log, quarantine; signatures.
    ///
    /// The head and the log are read first: on a live store, a segment
    /// flushed while this runs then shows as newer than the head rather than
    /// as a removal.
    fn read_directory(&mut self) -> Result<()> {
        self.read_head_file();
        let log_path = self.dir.join(RETENTION_LOG_FILE);
        self.log = match read_log(&log_path) {
            Ok(log) => log,
            Err(error) => {
                self.findings.push(Finding::RetentionLog {
                    line: 1,
                    problem: RetentionProblem::Invalid {
                        reason: error.to_string(),
                    },
                });
                LogRead::default()
            }
        };
        self.names = list_dir(self.dir)?;
        for name in self.names.clone() {
            if let Some(name_id) = manifest_id_of_file(&name) {
                self.read_manifest_file(name, name_id);
            }
        }
        self.read_quarantine();
        Ok(())
    }

    fn read_manifest_file(&mut self, name: String, name_id: u64) {
        let path = self.dir.join(&name);
        let bytes = match read_capped(&path, MANIFEST_LIMIT_BYTES) {
            Ok(Some(bytes)) => bytes,
            // Deleted since the listing: as if it never was.
            Ok(None) => return,
            Err(error) => {
                self.findings.push(Finding::InvalidManifest {
                    file: name,
                    reason: error.to_string(),
                });
                return;
            }
        };
        let manifest = match Manifest::from_file_bytes(&bytes) {
            Ok(manifest) => manifest,
            Err(reason) => {
                self.findings
                    .push(Finding::InvalidManifest { file: name, reason });
                return;
            }
        };
        let segment_id = manifest.segment_id;
        if segment_id != name_id {
            self.findings.push(Finding::Reordered {
                file: name.clone(),
                segment_id,
            });
        }
        match self.signed(manifest.signature.as_deref(), || manifest.signed_bytes()) {
            Some(false) if manifest.signature.is_none() => {
                self.findings.push(Finding::Unsigned { segment_id });
            }
            Some(false) => self.findings.push(Finding::BadSignature { segment_id }),
            _ => {}
        }
        self.present.push(Present {
            file: name,
            manifest,
            sha256: sha256_hex(&bytes),
        });
    }

    fn read_head_file(&mut self) {
        let path = self.dir.join(CHAIN_HEAD_FILE);
        let head = match read_capped(&path, 64 * 1024) {
            Ok(Some(bytes)) => ChainHead::from_file_bytes(&bytes),
            Ok(None) => return,
            Err(error) => Err(error.to_string()),
        };
        match head {
            Ok(head) => {
                let problem = match self.signed(head.signature.as_deref(), || head.signed_bytes()) {
                    Some(false) if head.signature.is_none() => Some(HeadProblem::Unsigned),
                    Some(false) => Some(HeadProblem::BadSignature),
                    _ => None,
                };
                if let Some(problem) = problem {
                    self.findings.push(Finding::Head { problem });
                }
                self.head = Some(head);
            }
            Err(reason) => self.findings.push(Finding::Head {
                problem: HeadProblem::Invalid { reason },
            }),
        }
    }

    /// Manifests moved to `quarantine/` (directly or one directory down),
    /// so a gap they explain is named as such.
    fn read_quarantine(&mut self) {
        let quarantine = self.dir.join(QUARANTINE_DIR);
        let mut paths = Vec::new();
        for name in list_dir(&quarantine).unwrap_or_default() {
            let path = quarantine.join(&name);
            if path.is_dir() {
                for inner in list_dir(&path).unwrap_or_default() {
                    paths.push(path.join(inner));
                }
            } else {
                paths.push(path);
            }
        }
        for path in paths {
            let is_manifest = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".manifest.json"));
            if !is_manifest {
                continue;
            }
            if let Ok(Some(bytes)) = read_capped(&path, MANIFEST_LIMIT_BYTES)
                && let Ok(manifest) = Manifest::from_file_bytes(&bytes)
            {
                self.quarantined.push((
                    manifest.segment_id,
                    sha256_hex(&bytes),
                    manifest.prev_manifest_sha256,
                ));
            }
        }
    }

    fn dropped_entries(&self) -> impl Iterator<Item = &RetentionEntry> {
        self.log
            .lines
            .iter()
            .filter_map(|line| line.entry.as_ref().ok())
    }

    /// Step 3: data files, and files nobody lists.
    fn check_files(&mut self) {
        let dropped: HashSet<&str> = self
            .dropped_entries()
            .map(|e| e.manifest_sha256.as_str())
            .collect();
        // Where each expected hash belongs, to recognise swapped files.
        let mut expected: HashMap<&str, (u64, &str)> = HashMap::new();
        for present in &self.present {
            for file in &present.manifest.files {
                expected
                    .entry(file.sha256.as_str())
                    .or_insert((present.manifest.segment_id, file.name.as_str()));
            }
        }
        let quarantine = self.dir.join(QUARANTINE_DIR);
        let mut findings = Vec::new();
        let (mut files_checked, mut bytes_checked) = (0u64, 0u64);
        let mut listed: HashSet<&str> = HashSet::new();
        for present in &self.present {
            let segment_id = present.manifest.segment_id;
            let pending = dropped.contains(present.sha256.as_str());
            if pending {
                findings.push(Finding::DropPending { segment_id });
            }
            for file in &present.manifest.files {
                if !listed.insert(file.name.as_str()) {
                    continue;
                }
                let path = self.dir.join(&file.name);
                match sha256_file(&path) {
                    Ok((actual, bytes)) => {
                        files_checked += 1;
                        bytes_checked += bytes;
                        if actual == file.sha256 {
                            continue;
                        }
                        findings.push(match expected.get(actual.as_str()) {
                            Some(&(holds_segment_id, holds_file)) if holds_file != file.name => {
                                Finding::Misplaced {
                                    segment_id,
                                    file: file.name.clone(),
                                    holds_segment_id,
                                    holds_file: holds_file.to_owned(),
                                }
                            }
                            _ => Finding::Modified {
                                segment_id,
                                file: file.name.clone(),
                                expected_sha256: file.sha256.clone(),
                                actual_sha256: actual,
                            },
                        });
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        let quarantined = Finding::Quarantined { segment_id };
                        if pending || findings.contains(&quarantined) {
                            // An interrupted drop deletes files before the
                            // manifest; a quarantined segment is named once.
                        } else if quarantine.join(&file.name).exists() {
                            // Moved to quarantine, manifest not yet (a crash
                            // while quarantining).
                            findings.push(quarantined);
                        } else {
                            findings.push(Finding::Missing {
                                segment_id,
                                file: file.name.clone(),
                            });
                        }
                    }
                    Err(error) => findings.push(Finding::UnreadableFile {
                        file: file.name.clone(),
                        reason: error.to_string(),
                    }),
                }
            }
        }

        let present_ids: HashSet<u64> =
            self.present.iter().map(|p| p.manifest.segment_id).collect();
        let dropped_ids: HashSet<u64> = self
            .dropped_entries()
            .map(|e| e.segment_id)
            .filter(|id| !present_ids.contains(id))
            .collect();
        for name in &self.names {
            let special = name == CHAIN_HEAD_FILE
                || name == RETENTION_LOG_FILE
                || name == QUARANTINE_DIR
                || manifest_id_of_file(name).is_some()
                || listed.contains(name.as_str());
            if special {
                continue;
            }
            let finding = if name.ends_with(TMP_SUFFIX) {
                Finding::TempFile { file: name.clone() }
            } else if segment_id_of_file(name).is_some_and(|id| dropped_ids.contains(&id)) {
                Finding::DropLeftover { file: name.clone() }
            } else {
                Finding::UnexpectedFile { file: name.clone() }
            };
            findings.push(finding);
        }
        self.files_checked += files_checked;
        self.bytes_checked += bytes_checked;
        self.findings.extend(findings);
    }

    /// The retention log on its own: line links, sequence, signatures, and
    /// its end against `chain.head`.
    fn check_log(&mut self) {
        let mut findings = Vec::new();
        let mut offset: Option<i128> = None;
        let mut previous: Option<(&str, bool)> = None;
        for line in &self.log.lines {
            let entry = match &line.entry {
                Ok(entry) => entry,
                Err(reason) => {
                    findings.push(Finding::RetentionLog {
                        line: line.line,
                        problem: RetentionProblem::Invalid {
                            reason: reason.clone(),
                        },
                    });
                    previous = Some((&line.sha256, false));
                    continue;
                }
            };
            // One finding where the numbering jumps, not one per later line.
            let shift = i128::from(entry.seq) - i128::from(line.line);
            let in_sequence = shift == offset.unwrap_or(0);
            if !in_sequence {
                findings.push(Finding::RetentionLog {
                    line: line.line,
                    problem: RetentionProblem::OutOfSequence { seq: entry.seq },
                });
            }
            offset = Some(shift);
            let expected_prev = previous.map(|(sha, _)| sha);
            if in_sequence && entry.prev_entry_sha256.as_deref() != expected_prev {
                let edited_line = line.line.saturating_sub(1);
                let previous_parsed = previous.is_some_and(|(_, parsed)| parsed);
                if edited_line > 0 && previous_parsed {
                    findings.push(Finding::RetentionLog {
                        line: edited_line,
                        problem: RetentionProblem::Edited,
                    });
                } else if edited_line == 0 {
                    // The first line claims a predecessor: it was edited.
                    findings.push(Finding::RetentionLog {
                        line: line.line,
                        problem: RetentionProblem::Edited,
                    });
                }
            }
            if let Some(false) = self.signed(entry.signature.as_deref(), || entry.signed_bytes()) {
                findings.push(Finding::RetentionLog {
                    line: line.line,
                    problem: if entry.signature.is_none() {
                        RetentionProblem::Unsigned
                    } else {
                        RetentionProblem::BadSignature
                    },
                });
            }
            previous = Some((&line.sha256, true));
        }

        let lines = u64::try_from(self.log.lines.len()).unwrap_or(u64::MAX);
        if let Some(head) = &self.head {
            let recorded = head.retention_entries;
            if lines < recorded {
                findings.push(Finding::RetentionLog {
                    line: lines + 1,
                    problem: RetentionProblem::Truncated {
                        expected_entries: recorded,
                    },
                });
            } else {
                if recorded > 0 {
                    let last = usize::try_from(recorded - 1)
                        .ok()
                        .and_then(|i| self.log.lines.get(i));
                    if last.map(|l| &l.sha256) != head.retention_sha256.as_ref() {
                        findings.push(Finding::RetentionLog {
                            line: recorded,
                            problem: RetentionProblem::Edited,
                        });
                    }
                }
                if lines > recorded {
                    findings.push(Finding::RetentionLog {
                        line: recorded + 1,
                        problem: RetentionProblem::AfterHead,
                    });
                }
            }
        }
        if self.log.torn_bytes > 0 {
            findings.push(Finding::RetentionLog {
                line: lines + 1,
                problem: RetentionProblem::TornTail {
                    bytes: self.log.torn_bytes,
                },
            });
        }
        // An edit found both by the next line's link and by the head is one
        // finding.
        findings.dedup();
        self.findings.extend(findings);
    }

    fn nodes(&self) -> HashMap<String, Node> {
        let mut nodes = HashMap::new();
        for (id, sha256, prev) in &self.quarantined {
            nodes.insert(
                sha256.clone(),
                Node {
                    id: *id,
                    prev: prev.clone(),
                    kind: NodeKind::Quarantined,
                },
            );
        }
        for entry in self.dropped_entries() {
            nodes.insert(
                entry.manifest_sha256.clone(),
                Node {
                    id: entry.segment_id,
                    prev: entry.manifest_prev_sha256.clone(),
                    kind: NodeKind::Dropped {
                        reason: entry.reason.clone(),
                        replaced_by: entry.replaced_by,
                    },
                },
            );
        }
        for present in self.present.iter().rev() {
            nodes.insert(
                present.sha256.clone(),
                Node {
                    id: present.manifest.segment_id,
                    prev: present.manifest.prev_manifest_sha256.clone(),
                    kind: NodeKind::Present,
                },
            );
        }
        nodes
    }

    /// Step 4 and 5.
    fn walk_chain(&mut self) {
        let nodes = self.nodes();
        let mut reached: HashSet<&str> = HashSet::new();
        let mut findings = Vec::new();

        let newest = |reached: &HashSet<&str>, below: Option<u64>| {
            nodes
                .iter()
                .filter(|(sha, node)| {
                    !reached.contains(sha.as_str()) && below.is_none_or(|b| node.id < b)
                })
                .max_by_key(|(sha, node)| (node.id, matches!(node.kind, NodeKind::Present), *sha))
                .map(|(sha, _)| sha.clone())
        };

        let (mut cursor, mut link) = match &self.head {
            Some(head) => (
                Some(head.manifest_sha256.clone()),
                Link::Head {
                    segment_id: head.segment_id,
                },
            ),
            None => {
                let start = newest(&reached, None);
                let head_invalid = self.findings.iter().any(|f| {
                    matches!(
                        f,
                        Finding::Head {
                            problem: HeadProblem::Invalid { .. }
                        }
                    )
                });
                if start.is_some() && !head_invalid {
                    findings.push(Finding::Head {
                        problem: HeadProblem::Missing,
                    });
                }
                (start, Link::Resumed)
            }
        };

        // Each step reaches a node or resumes at an unreached one, so this
        // ends; the bound is a guard, not a limit.
        let mut steps = 0usize;
        while let Some(hash) = cursor.take() {
            steps += 1;
            if steps > 2 * nodes.len() + 2 {
                break;
            }
            if let Some((key, node)) = nodes.get_key_value(&hash) {
                if reached.contains(key.as_str()) {
                    findings.push(Finding::ChainBroken {
                        segment_id: Some(node.id),
                        missing_sha256: hash,
                    });
                    break;
                }
                match link {
                    Link::Head { segment_id } if node.id != segment_id => {
                        findings.push(Finding::Head {
                            problem: HeadProblem::WrongSegment {
                                head_segment_id: segment_id,
                                manifest_segment_id: node.id,
                            },
                        });
                    }
                    Link::Manifest { segment_id } if node.id >= segment_id => {
                        findings.push(Finding::OutOfOrder {
                            segment_id: node.id,
                            successor_id: segment_id,
                        });
                    }
                    _ => {}
                }
                reached.insert(key.as_str());
                match &node.kind {
                    NodeKind::Present => {}
                    NodeKind::Dropped {
                        reason,
                        replaced_by: None,
                    } => findings.push(Finding::RetentionDropped {
                        segment_id: node.id,
                        reason: reason.clone(),
                    }),
                    NodeKind::Dropped {
                        replaced_by: Some(into),
                        ..
                    } => findings.push(Finding::Compacted {
                        segment_id: node.id,
                        into: *into,
                    }),
                    NodeKind::Quarantined => findings.push(Finding::Quarantined {
                        segment_id: node.id,
                    }),
                }
                link = Link::Manifest {
                    segment_id: node.id,
                };
                cursor = node.prev.clone();
                continue;
            }

            // A gap: `hash` matches nothing.
            let (finding, resume) = match link {
                Link::Head { segment_id } => {
                    let resume = newest(&reached, segment_id.checked_add(1));
                    let candidate = resume.as_ref().and_then(|sha| nodes.get(sha));
                    let finding = match candidate {
                        Some(c) if c.id == segment_id => match c.kind {
                            NodeKind::Present => Finding::ManifestEdited {
                                segment_id,
                                expected_sha256: hash,
                                actual_sha256: resume.clone().unwrap_or_default(),
                            },
                            _ => Finding::ChainBroken {
                                segment_id: None,
                                missing_sha256: hash,
                            },
                        },
                        _ => Finding::Removed {
                            first_id: candidate.map(|c| c.id + 1),
                            last_id: segment_id,
                            manifest_sha256: hash,
                        },
                    };
                    (finding, resume)
                }
                Link::Manifest { segment_id } => {
                    let resume = newest(&reached, Some(segment_id));
                    let candidate = resume.as_ref().and_then(|sha| nodes.get(sha));
                    let finding = match (candidate, segment_id.checked_sub(1)) {
                        (Some(c), _) if c.id + 1 == segment_id => match c.kind {
                            NodeKind::Present => Finding::ManifestEdited {
                                segment_id: c.id,
                                expected_sha256: hash,
                                actual_sha256: resume.clone().unwrap_or_default(),
                            },
                            _ => Finding::ChainBroken {
                                segment_id: Some(segment_id),
                                missing_sha256: hash,
                            },
                        },
                        (_, Some(last_id)) => Finding::Removed {
                            first_id: candidate.map(|c| c.id + 1),
                            last_id,
                            manifest_sha256: hash,
                        },
                        (_, None) => Finding::ChainBroken {
                            segment_id: Some(segment_id),
                            missing_sha256: hash,
                        },
                    };
                    (finding, resume)
                }
                // Resumed at a node, so the cursor was a node's hash.
                Link::Resumed => break,
            };
            findings.push(finding);
            cursor = resume;
            link = Link::Resumed;
        }

        let unreached: HashMap<&str, &Present> = self
            .present
            .iter()
            .filter(|p| !reached.contains(p.sha256.as_str()))
            .map(|p| (p.sha256.as_str(), p))
            .collect();
        for present in &self.present {
            if reached.contains(present.sha256.as_str()) {
                continue;
            }
            let segment_id = present.manifest.segment_id;
            if self.extends_head(present, &unreached) {
                findings.push(Finding::AfterHead { segment_id });
            } else if !findings
                .iter()
                .any(|f| matches!(f, Finding::ManifestEdited { actual_sha256, .. } if *actual_sha256 == present.sha256))
            {
                findings.push(Finding::Inserted {
                    segment_id,
                    file: present.file.clone(),
                });
            }
        }
        self.findings.extend(findings);
    }

    /// Whether `present` is newer than `chain.head` and links to it, through
    /// other such manifests: what a crash between writing a manifest and the
    /// head leaves.
    fn extends_head(&self, present: &Present, unreached: &HashMap<&str, &Present>) -> bool {
        let Some(head) = &self.head else {
            return false;
        };
        let mut current = present;
        for _ in 0..=unreached.len() {
            if current.manifest.segment_id <= head.segment_id {
                return false;
            }
            match current.manifest.prev_manifest_sha256.as_deref() {
                Some(prev) if prev == head.manifest_sha256 => return true,
                Some(prev) => match unreached.get(prev) {
                    Some(next) => current = next,
                    None => return false,
                },
                None => return false,
            }
        }
        false
    }

    fn report(self) -> VerifyReport {
        VerifyReport {
            ok: !self.findings.iter().any(Finding::is_failure),
            segments_checked: u64::try_from(self.present.len()).unwrap_or(u64::MAX),
            files_checked: self.files_checked,
            bytes_checked: self.bytes_checked,
            retention_entries: u64::try_from(self.log.lines.len()).unwrap_or(u64::MAX),
            head: self
                .head
                .as_ref()
                .map(|h| (h.segment_id, h.manifest_sha256.clone())),
            key_id: self.key.map(key_id),
            findings: self.findings,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn findings_serialise_with_their_kind_and_fields() {
        let cases = [
            (
                Finding::Removed {
                    first_id: Some(2),
                    last_id: 2,
                    manifest_sha256: "ab".into(),
                },
                r#"{"kind":"removed","first_id":2,"last_id":2,"manifest_sha256":"ab"}"#,
            ),
            (
                Finding::Head {
                    problem: HeadProblem::Unsigned,
                },
                r#"{"kind":"head","problem":"unsigned"}"#,
            ),
            (
                Finding::RetentionLog {
                    line: 3,
                    problem: RetentionProblem::Truncated {
                        expected_entries: 4,
                    },
                },
                r#"{"kind":"retention_log","line":3,"problem":{"truncated":{"expected_entries":4}}}"#,
            ),
        ];
        for (finding, json) in cases {
            assert_eq!(serde_json::to_string(&finding).unwrap(), json);
        }
    }

    #[test]
    fn only_recorded_and_interrupted_operations_are_information() {
        let info = [
            Finding::RetentionDropped {
                segment_id: 1,
                reason: "max_age".into(),
            },
            Finding::Compacted {
                segment_id: 1,
                into: 4,
            },
            Finding::DropPending { segment_id: 1 },
            Finding::DropLeftover { file: "x".into() },
            Finding::TempFile { file: "x".into() },
            Finding::RetentionLog {
                line: 1,
                problem: RetentionProblem::TornTail { bytes: 3 },
            },
        ];
        assert!(info.iter().all(|f| !f.is_failure()));
        let failures = [
            Finding::Missing {
                segment_id: 1,
                file: "x".into(),
            },
            Finding::AfterHead { segment_id: 1 },
            Finding::RetentionLog {
                line: 1,
                problem: RetentionProblem::Edited,
            },
            Finding::Head {
                problem: HeadProblem::Missing,
            },
        ];
        assert!(failures.iter().all(Finding::is_failure));
    }

    #[test]
    fn removal_messages_say_how_exact_they_are() {
        let removed = |first_id, last_id| {
            Finding::Removed {
                first_id,
                last_id,
                manifest_sha256: "ab".into(),
            }
            .to_string()
        };
        assert!(removed(Some(3), 3).starts_with("segment 3 was removed"));
        assert!(removed(Some(3), 5).starts_with("one or more of segments 3..=5 were removed"));
        assert!(removed(None, 5).starts_with("one or more segments up to 5 were removed"));
    }
}
