//! `verify` against every kind of tampering: each case builds a chain of
//! segments (fake data files, real manifests through `ChainWriter`),
//! tampers in one way, and expects exactly the findings that name it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
use tracewarden_store::integrity::{
    ChainHead, ChainWriter, Finding, HeadProblem, IntegrityError, MANIFEST_FORMAT_VERSION,
    Manifest, ManifestFile, ReplacedSegment, RetentionProblem, SigningKey, VerifyReport,
    VerifyingKey, key_id, manifest_file_name, sha256_file, sha256_hex, to_hex, verify,
};

/// A data directory with a chain of segments `1..=n`, each with two files.
struct Chain {
    dir: tempfile::TempDir,
    key: Option<SigningKey>,
    /// SHA-256 of each segment's manifest file, by id (index 0 = segment 1).
    hashes: Vec<String>,
}

fn spans_file(id: u64) -> String {
    format!("{id:020}.spans.parquet")
}

fn logs_file(id: u64) -> String {
    format!("{id:020}.logs.parquet")
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn attacker_key() -> SigningKey {
    SigningKey::from_bytes(&[66; 32])
}

impl Chain {
    fn new(segments: u64, key: Option<SigningKey>) -> Chain {
        let mut chain = Chain {
            dir: tempfile::tempdir().unwrap(),
            key,
            hashes: Vec::new(),
        };
        let mut writer = chain.writer();
        for id in 1..=segments {
            let (_, sha256) = writer.append(chain.write_segment(id, Vec::new())).unwrap();
            chain.hashes.push(sha256);
        }
        chain
    }

    fn unsigned(segments: u64) -> Chain {
        Chain::new(segments, None)
    }

    fn signed(segments: u64) -> Chain {
        Chain::new(segments, Some(signing_key()))
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn segments(&self) -> PathBuf {
        self.dir.path().join("segments")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.segments().join(name)
    }

    fn writer(&self) -> ChainWriter {
        ChainWriter::open(&self.segments(), self.key.clone()).unwrap()
    }

    fn hash(&self, id: u64) -> String {
        self.hashes[usize::try_from(id).unwrap() - 1].clone()
    }

    /// Writes segment `id`'s data files (bytes that differ per segment) and
    /// returns its manifest, ready to append.
    fn write_segment(&self, id: u64, replaces: Vec<ReplacedSegment>) -> Manifest {
        fs::create_dir_all(self.segments()).unwrap();
        let mut files = Vec::new();
        for (name, size) in [(spans_file(id), 3000 + id * 7), (logs_file(id), 500 + id)] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 + id * 17) as u8).collect();
            let path = self.path(&name);
            fs::write(&path, &bytes).unwrap();
            let (sha256, length) = sha256_file(&path).unwrap();
            files.push(ManifestFile {
                name,
                bytes: length,
                sha256,
            });
        }
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            segment_id: id,
            created_unix_nano: 1_750_000_000_000_000_000 + id,
            files,
            spans: id * 10,
            logs: id,
            min_time_unix_nano: 1_749_000_000_000_000_000 + id * 1000,
            max_time_unix_nano: 1_749_000_000_000_000_000 + id * 1000 + 999,
            lsn_ranges: vec![(id * 100, id * 100 + 9)],
            replaces,
            prev_manifest_sha256: None,
            signature: None,
            key_id: None,
        }
    }

    fn verify(&self) -> VerifyReport {
        verify(self.data_dir(), None).unwrap()
    }

    fn verify_with_key(&self) -> VerifyReport {
        let key: VerifyingKey = signing_key().verifying_key();
        verify(self.data_dir(), Some(&key)).unwrap()
    }

    fn verify_with_key_if_signed(&self) -> VerifyReport {
        match self.key {
            Some(_) => self.verify_with_key(),
            None => self.verify(),
        }
    }

    fn remove_segment_files(&self, id: u64) {
        fs::remove_file(self.path(&spans_file(id))).unwrap();
        fs::remove_file(self.path(&logs_file(id))).unwrap();
    }

    fn remove_segment(&self, id: u64) {
        self.remove_segment_files(id);
        fs::remove_file(self.path(&manifest_file_name(id))).unwrap();
    }

    fn read_manifest(&self, id: u64) -> Manifest {
        serde_json::from_slice(&fs::read(self.path(&manifest_file_name(id))).unwrap()).unwrap()
    }

    /// Writes `manifest` as segment `id`'s manifest file; returns its hash.
    fn write_manifest(&self, id: u64, manifest: &Manifest) -> String {
        let bytes = manifest.file_bytes();
        fs::write(self.path(&manifest_file_name(id)), &bytes).unwrap();
        sha256_hex(&bytes)
    }

    fn read_head(&self) -> ChainHead {
        serde_json::from_slice(&fs::read(self.path("chain.head")).unwrap()).unwrap()
    }

    fn write_head(&self, head: &ChainHead) {
        let mut bytes = serde_json::to_vec(head).unwrap();
        bytes.push(b'\n');
        fs::write(self.path("chain.head"), bytes).unwrap();
    }

    fn retention_lines(&self) -> Vec<String> {
        fs::read_to_string(self.path("retention.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_retention_lines(&self, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(self.path("retention.jsonl"), text).unwrap();
    }
}

#[track_caller]
fn assert_failures(report: &VerifyReport, expected: &[Finding]) {
    let failures: Vec<&Finding> = report.failures().collect();
    let expected: Vec<&Finding> = expected.iter().collect();
    assert_eq!(failures, expected, "all findings: {:#?}", report.findings);
    assert_eq!(report.ok, expected.is_empty());
}

#[track_caller]
fn assert_info(report: &VerifyReport, expected: &[Finding]) {
    let info: Vec<&Finding> = report.findings.iter().filter(|f| !f.is_failure()).collect();
    let expected: Vec<&Finding> = expected.iter().collect();
    assert_eq!(info, expected);
}

fn sha_of(chain: &Chain, name: &str) -> String {
    sha256_file(&chain.path(name)).unwrap().0
}

#[test]
fn a_clean_chain_verifies_with_counts() {
    for chain in [Chain::unsigned(3), Chain::signed(3)] {
        let report = chain.verify();
        assert_failures(&report, &[]);
        assert_info(&report, &[]);
        assert_eq!(report.segments_checked, 3);
        assert_eq!(report.files_checked, 6);
        let bytes: u64 = (1..=3).map(|id| 3000 + id * 7 + 500 + id).sum();
        assert_eq!(report.bytes_checked, bytes);
        assert_eq!(report.head, Some((3, chain.hash(3))));
        assert_eq!(report.key_id, None);
    }
    let report = Chain::signed(3).verify_with_key();
    assert_failures(&report, &[]);
    assert_eq!(report.key_id.as_deref().map(str::len), Some(16));
}

#[test]
fn an_empty_store_verifies_and_a_missing_data_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let report = verify(dir.path(), None).unwrap();
    assert!(report.ok);
    assert_eq!(report.segments_checked, 0);
    assert!(verify(&dir.path().join("nope"), None).is_err());
}

#[test]
fn a_flipped_byte_names_the_segment_and_file() {
    let chain = Chain::unsigned(3);
    let path = chain.path(&spans_file(2));
    let mut bytes = fs::read(&path).unwrap();
    bytes[1234] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let expected = chain.read_manifest(2).files[0].sha256.clone();
    let report = chain.verify();
    assert_failures(
        &report,
        &[Finding::Modified {
            segment_id: 2,
            file: spans_file(2),
            expected_sha256: expected.clone(),
            actual_sha256: sha_of(&chain, &spans_file(2)),
        }],
    );
    let message = report.findings[0].to_string();
    assert!(message.starts_with(&format!(
        "segment 2: file `{}` was modified: expected sha256 {expected}, found ",
        spans_file(2)
    )));
}

#[test]
fn deleted_data_files_are_missing() {
    let chain = Chain::unsigned(3);
    chain.remove_segment_files(2);
    assert_failures(
        &chain.verify(),
        &[
            Finding::Missing {
                segment_id: 2,
                file: spans_file(2),
            },
            Finding::Missing {
                segment_id: 2,
                file: logs_file(2),
            },
        ],
    );
}

#[test]
fn a_segment_removed_from_the_middle_is_named() {
    let chain = Chain::unsigned(3);
    chain.remove_segment(2);
    let report = chain.verify();
    assert_failures(
        &report,
        &[Finding::Removed {
            first_id: Some(2),
            last_id: 2,
            manifest_sha256: chain.hash(2),
        }],
    );
    assert!(
        report.findings[0]
            .to_string()
            .starts_with("segment 2 was removed")
    );
}

#[test]
fn several_removed_segments_are_bounded_by_their_neighbours() {
    let chain = Chain::unsigned(5);
    chain.remove_segment(2);
    chain.remove_segment(3);
    let report = chain.verify();
    assert_failures(
        &report,
        &[Finding::Removed {
            first_id: Some(2),
            last_id: 3,
            manifest_sha256: chain.hash(3),
        }],
    );
    assert!(
        report.findings[0]
            .to_string()
            .starts_with("one or more of segments 2..=3 were removed")
    );
}

#[test]
fn the_removed_newest_segment_is_caught_by_the_head() {
    let chain = Chain::unsigned(3);
    chain.remove_segment(3);
    assert_failures(
        &chain.verify(),
        &[Finding::Removed {
            first_id: Some(3),
            last_id: 3,
            manifest_sha256: chain.hash(3),
        }],
    );
}

#[test]
fn the_removed_oldest_segment_without_a_record_is_removed() {
    let chain = Chain::unsigned(3);
    chain.remove_segment(1);
    assert_failures(
        &chain.verify(),
        &[Finding::Removed {
            first_id: None,
            last_id: 1,
            manifest_sha256: chain.hash(1),
        }],
    );
}

#[test]
fn a_forged_segment_off_the_chain_is_inserted() {
    let chain = Chain::unsigned(3);
    // A segment made up with its own manifest, linked to an old manifest.
    let mut forged = chain.write_segment(4, Vec::new());
    forged.prev_manifest_sha256 = Some(chain.hash(1));
    chain.write_manifest(4, &forged);
    let report = chain.verify();
    assert_failures(
        &report,
        &[Finding::Inserted {
            segment_id: 4,
            file: manifest_file_name(4),
        }],
    );
    assert!(
        report.findings[0]
            .to_string()
            .contains("is not on the chain")
    );
}

#[test]
fn a_forged_segment_appended_with_a_rewritten_head_needs_the_key_to_show() {
    let chain = Chain::signed(3);
    let mut forged = chain.write_segment(4, Vec::new());
    forged.prev_manifest_sha256 = Some(chain.hash(3));
    let forged_hash = chain.write_manifest(4, &forged);
    let mut head = chain.read_head();
    head.segment_id = 4;
    head.manifest_sha256 = forged_hash;
    head.signature = None;
    head.key_id = None;
    chain.write_head(&head);

    // Without the key, recomputing every hash is undetectable (documented).
    assert_failures(&chain.verify(), &[]);
    assert_failures(
        &chain.verify_with_key(),
        &[
            Finding::Head {
                problem: HeadProblem::Unsigned,
            },
            Finding::Unsigned { segment_id: 4 },
        ],
    );
}

#[test]
fn swapped_data_files_name_both_segments() {
    let chain = Chain::unsigned(3);
    let (a, b) = (chain.path(&spans_file(2)), chain.path(&spans_file(3)));
    let tmp = chain.path("swap");
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();
    let report = chain.verify();
    assert_failures(
        &report,
        &[
            Finding::Misplaced {
                segment_id: 2,
                file: spans_file(2),
                holds_segment_id: 3,
                holds_file: spans_file(3),
            },
            Finding::Misplaced {
                segment_id: 3,
                file: spans_file(3),
                holds_segment_id: 2,
                holds_file: spans_file(2),
            },
        ],
    );
    assert!(
        report.findings[0]
            .to_string()
            .contains("files swapped or copied")
    );
}

#[test]
fn swapped_manifests_are_reordered() {
    let chain = Chain::unsigned(3);
    let (a, b) = (
        chain.path(&manifest_file_name(2)),
        chain.path(&manifest_file_name(3)),
    );
    let tmp = chain.path("swap");
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();
    assert_failures(
        &chain.verify(),
        &[
            Finding::Reordered {
                file: manifest_file_name(2),
                segment_id: 3,
            },
            Finding::Reordered {
                file: manifest_file_name(3),
                segment_id: 2,
            },
        ],
    );
}

#[test]
fn an_edited_manifest_breaks_the_link_and_the_signature() {
    let chain = Chain::signed(3);
    let mut manifest = chain.read_manifest(2);
    manifest.spans += 1;
    let edited = chain.write_manifest(2, &manifest);
    let edit = Finding::ManifestEdited {
        segment_id: 2,
        expected_sha256: chain.hash(2),
        actual_sha256: edited,
    };
    assert_failures(&chain.verify(), std::slice::from_ref(&edit));
    assert_failures(
        &chain.verify_with_key(),
        &[Finding::BadSignature { segment_id: 2 }, edit],
    );
}

#[test]
fn an_edited_newest_manifest_is_caught_by_the_head() {
    let chain = Chain::unsigned(3);
    let mut manifest = chain.read_manifest(3);
    manifest.max_time_unix_nano += 1;
    let edited = chain.write_manifest(3, &manifest);
    assert_failures(
        &chain.verify(),
        &[Finding::ManifestEdited {
            segment_id: 3,
            expected_sha256: chain.hash(3),
            actual_sha256: edited,
        }],
    );
}

/// How someone without the key re-signs what they forge.
#[derive(Clone, Copy)]
enum Forgery {
    /// Drop the signatures.
    Unsigned,
    /// Sign with their own key.
    OwnKey,
}

impl Forgery {
    fn signature(self, signed_bytes: &[u8]) -> (Option<String>, Option<String>) {
        match self {
            Forgery::Unsigned => (None, None),
            Forgery::OwnKey => {
                let key = attacker_key();
                (
                    Some(to_hex(&key.sign(signed_bytes).to_bytes())),
                    Some(key_id(&key.verifying_key())),
                )
            }
        }
    }
}

/// Rewrites segment 2's spans file and recomputes every hash after it (the
/// manifests of 2 and 3, `chain.head`), as someone without the key would.
fn forge_from_segment_2(chain: &Chain, forgery: Forgery) {
    let path = chain.path(&spans_file(2));
    fs::write(&path, b"forged spans").unwrap();
    let (sha256, bytes) = sha256_file(&path).unwrap();
    let mut prev = chain.hash(1);
    for id in 2..=3 {
        let mut manifest = chain.read_manifest(id);
        if id == 2 {
            manifest.files[0].sha256 = sha256.clone();
            manifest.files[0].bytes = bytes;
        }
        manifest.prev_manifest_sha256 = Some(prev);
        (manifest.signature, manifest.key_id) = forgery.signature(&manifest.signed_bytes());
        prev = chain.write_manifest(id, &manifest);
    }
    let mut head = chain.read_head();
    head.manifest_sha256 = prev;
    (head.signature, head.key_id) = forgery.signature(&head.signed_bytes());
    chain.write_head(&head);
}

#[test]
fn a_chain_forged_without_the_key_fails_only_with_the_key() {
    let chain = Chain::signed(3);
    forge_from_segment_2(&chain, Forgery::Unsigned);
    // Without the key, recomputing every hash is undetectable (documented).
    assert_failures(&chain.verify(), &[]);
    assert_failures(
        &chain.verify_with_key(),
        &[
            Finding::Head {
                problem: HeadProblem::Unsigned,
            },
            Finding::Unsigned { segment_id: 2 },
            Finding::Unsigned { segment_id: 3 },
        ],
    );

    let chain = Chain::signed(3);
    forge_from_segment_2(&chain, Forgery::OwnKey);
    assert_failures(&chain.verify(), &[]);
    assert_failures(
        &chain.verify_with_key(),
        &[
            Finding::Head {
                problem: HeadProblem::BadSignature,
            },
            Finding::BadSignature { segment_id: 2 },
            Finding::BadSignature { segment_id: 3 },
        ],
    );

    // An unsigned chain verified with a key: everything is unsigned.
    let chain = Chain::unsigned(2);
    assert_failures(
        &chain.verify_with_key(),
        &[
            Finding::Head {
                problem: HeadProblem::Unsigned,
            },
            Finding::Unsigned { segment_id: 1 },
            Finding::Unsigned { segment_id: 2 },
        ],
    );
}

#[test]
fn a_recorded_retention_drop_is_information() {
    for chain in [Chain::unsigned(3), Chain::signed(3)] {
        chain
            .writer()
            .record_drop(1, &chain.hash(1), "max_age")
            .unwrap();
        chain.remove_segment(1);
        let report = chain.verify_with_key_if_signed();
        assert_failures(&report, &[]);
        assert_info(
            &report,
            &[Finding::RetentionDropped {
                segment_id: 1,
                reason: "max_age".into(),
            }],
        );
        assert_eq!(report.retention_entries, 1);
        assert_eq!(
            report.findings[0].to_string(),
            "segment 1 was dropped by retention (max_age)"
        );
    }
}

#[test]
fn a_drop_in_progress_is_information() {
    let chain = Chain::unsigned(3);
    let mut writer = chain.writer();
    writer
        .record_drop(1, &chain.hash(1), "max_total_bytes")
        .unwrap();
    // Recording twice is a no-op.
    writer
        .record_drop(1, &chain.hash(1), "max_total_bytes")
        .unwrap();
    assert_eq!(chain.retention_lines().len(), 1);
    assert_info(&chain.verify(), &[Finding::DropPending { segment_id: 1 }]);

    // Files deleted, manifest not yet.
    chain.remove_segment_files(1);
    let report = chain.verify();
    assert_failures(&report, &[]);
    assert_info(&report, &[Finding::DropPending { segment_id: 1 }]);

    // Manifest deleted, one file left over.
    fs::write(chain.path(&spans_file(1)), b"left").unwrap();
    fs::remove_file(chain.path(&manifest_file_name(1))).unwrap();
    let report = chain.verify();
    assert_failures(&report, &[]);
    assert_info(
        &report,
        &[
            Finding::DropLeftover {
                file: spans_file(1),
            },
            Finding::RetentionDropped {
                segment_id: 1,
                reason: "max_total_bytes".into(),
            },
        ],
    );
}

#[test]
fn a_drop_without_a_record_is_a_removal_even_after_recorded_ones() {
    let chain = Chain::unsigned(4);
    chain
        .writer()
        .record_drop(1, &chain.hash(1), "max_age")
        .unwrap();
    chain.remove_segment(1);
    chain.remove_segment(2);
    assert_failures(
        &chain.verify(),
        &[Finding::Removed {
            first_id: Some(2),
            last_id: 2,
            manifest_sha256: chain.hash(2),
        }],
    );
}

#[test]
fn compaction_records_the_replaced_segments() {
    let chain = Chain::signed(3);
    let replaces = (1..=2)
        .map(|id| ReplacedSegment {
            segment_id: id,
            manifest_sha256: chain.hash(id),
        })
        .collect();
    let manifest = chain.write_segment(4, replaces);
    let (written, _) = chain.writer().append(manifest).unwrap();
    assert_eq!(written.prev_manifest_sha256, Some(chain.hash(3)));
    chain.remove_segment(1);
    chain.remove_segment(2);
    let report = chain.verify_with_key();
    assert_failures(&report, &[]);
    assert_info(
        &report,
        &[
            Finding::Compacted {
                segment_id: 2,
                into: 4,
            },
            Finding::Compacted {
                segment_id: 1,
                into: 4,
            },
        ],
    );
    assert_eq!(chain.retention_lines().len(), 2);
}

fn chain_with_two_drops() -> Chain {
    let chain = Chain::signed(4);
    let mut writer = chain.writer();
    for id in 1..=2 {
        writer.record_drop(id, &chain.hash(id), "max_age").unwrap();
        chain.remove_segment(id);
    }
    chain
}

#[test]
fn an_edited_retention_entry_is_found() {
    let chain = chain_with_two_drops();
    let mut lines = chain.retention_lines();
    lines[0] = lines[0].replace("max_age", "max_agf");
    chain.write_retention_lines(&lines);
    let edited = Finding::RetentionLog {
        line: 1,
        problem: RetentionProblem::Edited,
    };
    assert_failures(&chain.verify(), std::slice::from_ref(&edited));
    assert_failures(
        &chain.verify_with_key(),
        &[
            Finding::RetentionLog {
                line: 1,
                problem: RetentionProblem::BadSignature,
            },
            edited,
        ],
    );
}

#[test]
fn an_edited_last_retention_entry_is_caught_by_the_head() {
    let chain = chain_with_two_drops();
    let mut lines = chain.retention_lines();
    lines[1] = lines[1].replace("max_age", "max_agf");
    chain.write_retention_lines(&lines);
    assert_failures(
        &chain.verify(),
        &[Finding::RetentionLog {
            line: 2,
            problem: RetentionProblem::Edited,
        }],
    );
}

#[test]
fn removed_retention_entries_are_found() {
    // The last line cut: the head still counts it, and segment 2's gap is
    // no longer explained.
    let chain = chain_with_two_drops();
    let lines = chain.retention_lines();
    chain.write_retention_lines(&lines[..1]);
    assert_failures(
        &chain.verify(),
        &[
            Finding::RetentionLog {
                line: 2,
                problem: RetentionProblem::Truncated {
                    expected_entries: 2,
                },
            },
            Finding::Removed {
                first_id: Some(2),
                last_id: 2,
                manifest_sha256: chain.hash(2),
            },
        ],
    );

    // The first line cut: the second is out of sequence.
    let chain = chain_with_two_drops();
    let lines = chain.retention_lines();
    chain.write_retention_lines(&lines[1..]);
    let failures: Vec<Finding> = chain.verify().failures().cloned().collect();
    assert_eq!(
        failures[0],
        Finding::RetentionLog {
            line: 1,
            problem: RetentionProblem::OutOfSequence { seq: 2 },
        },
        "{failures:#?}"
    );
    assert!(failures.contains(&Finding::Removed {
        first_id: None,
        last_id: 1,
        manifest_sha256: chain.hash(1),
    }));
}

#[test]
fn a_crash_before_the_head_is_updated_is_repaired_at_open() {
    let chain = Chain::signed(3);
    let stale_head = fs::read(chain.path("chain.head")).unwrap();
    let (_, sha4) = chain
        .writer()
        .append(chain.write_segment(4, Vec::new()))
        .unwrap();
    fs::write(chain.path("chain.head"), &stale_head).unwrap();
    assert_failures(
        &chain.verify_with_key(),
        &[Finding::AfterHead { segment_id: 4 }],
    );

    let writer = chain.writer();
    assert_eq!(writer.head().map(|h| h.segment_id), Some(4));
    assert_eq!(writer.head().map(|h| h.manifest_sha256.clone()), Some(sha4));
    assert_failures(&chain.verify_with_key(), &[]);

    // Same for a retention line written before the head.
    let stale_head = fs::read(chain.path("chain.head")).unwrap();
    chain
        .writer()
        .record_drop(1, &chain.hash(1), "max_age")
        .unwrap();
    fs::write(chain.path("chain.head"), &stale_head).unwrap();
    assert_failures(
        &chain.verify_with_key(),
        &[Finding::RetentionLog {
            line: 1,
            problem: RetentionProblem::AfterHead,
        }],
    );
    // And a torn line after it.
    let mut log = fs::read(chain.path("retention.jsonl")).unwrap();
    log.extend_from_slice(b"{\"seq\":2,");
    fs::write(chain.path("retention.jsonl"), &log).unwrap();
    drop(chain.writer());
    assert_failures(&chain.verify_with_key(), &[]);
    assert_eq!(chain.retention_lines().len(), 1);
}

#[test]
fn a_removed_head_is_found_and_not_papered_over() {
    let chain = Chain::signed(3);
    fs::remove_file(chain.path("chain.head")).unwrap();
    chain.remove_segment(3);
    assert_failures(
        &chain.verify_with_key(),
        &[Finding::Head {
            problem: HeadProblem::Missing,
        }],
    );
    match ChainWriter::open(&chain.segments(), chain.key.clone()) {
        Err(IntegrityError::Unsafe { reason, .. }) => {
            assert!(reason.contains("chain.head is missing"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_first_manifest_without_a_head_is_adopted() {
    let chain = Chain::signed(1);
    fs::remove_file(chain.path("chain.head")).unwrap();
    let writer = chain.writer();
    assert_eq!(writer.head().map(|h| h.segment_id), Some(1));
    assert_failures(&chain.verify_with_key(), &[]);
}

#[test]
fn a_head_not_signed_by_the_key_is_refused_at_open() {
    let chain = Chain::signed(2);
    match ChainWriter::open(&chain.segments(), Some(attacker_key())) {
        Err(IntegrityError::Unsafe { reason, .. }) => {
            assert!(
                reason.contains("not signed by the configured key"),
                "{reason}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An unsigned chain can start signing: older manifests stay unsigned.
    let chain = Chain::unsigned(2);
    let mut writer = ChainWriter::open(&chain.segments(), Some(signing_key())).unwrap();
    writer.append(chain.write_segment(3, Vec::new())).unwrap();
    assert_failures(
        &chain.verify_with_key(),
        &[
            Finding::Unsigned { segment_id: 1 },
            Finding::Unsigned { segment_id: 2 },
        ],
    );
}

#[test]
fn a_quarantined_segment_is_named() {
    let chain = Chain::unsigned(3);
    let quarantine = chain.path("quarantine");
    fs::create_dir(&quarantine).unwrap();
    for name in [spans_file(2), logs_file(2), manifest_file_name(2)] {
        fs::rename(chain.path(&name), quarantine.join(&name)).unwrap();
    }
    assert_failures(&chain.verify(), &[Finding::Quarantined { segment_id: 2 }]);

    // Interrupted while quarantining: data files moved, the manifest not yet.
    let chain = Chain::unsigned(3);
    let quarantine = chain.path("quarantine");
    fs::create_dir(&quarantine).unwrap();
    fs::rename(chain.path(&spans_file(3)), quarantine.join(spans_file(3))).unwrap();
    assert_failures(&chain.verify(), &[Finding::Quarantined { segment_id: 3 }]);
}

#[test]
fn files_no_manifest_lists_are_reported() {
    let chain = Chain::unsigned(2);
    fs::write(chain.path(&spans_file(9)), b"orphan").unwrap();
    fs::write(chain.path("00000000000000000009.spans.parquet.tmp"), b"x").unwrap();
    let report = chain.verify();
    assert_failures(
        &report,
        &[Finding::UnexpectedFile {
            file: spans_file(9),
        }],
    );
    assert_info(
        &report,
        &[Finding::TempFile {
            file: "00000000000000000009.spans.parquet.tmp".into(),
        }],
    );
}

#[test]
fn invalid_manifests_are_findings() {
    let chain = Chain::unsigned(3);
    fs::write(chain.path(&manifest_file_name(2)), b"{not json").unwrap();
    let failures: Vec<Finding> = chain.verify().failures().cloned().collect();
    assert!(
        matches!(&failures[0], Finding::InvalidManifest { file, .. } if *file == manifest_file_name(2)),
        "{failures:#?}"
    );
    // Its files are no longer listed, and the chain misses it.
    assert!(failures.contains(&Finding::Removed {
        first_id: Some(2),
        last_id: 2,
        manifest_sha256: chain.hash(2),
    }));
}

#[test]
fn the_writer_refuses_what_would_break_the_chain() {
    let chain = Chain::unsigned(2);
    let mut writer = chain.writer();
    fn refused<T>(result: Result<T, IntegrityError>) -> bool {
        matches!(result, Err(IntegrityError::Refused { .. }))
    }
    // Ids only increase.
    assert!(refused(writer.append(chain.write_segment(2, Vec::new()))));
    assert!(refused(writer.append(chain.write_segment(1, Vec::new()))));
    // A replaced segment must match its manifest.
    let wrong = vec![ReplacedSegment {
        segment_id: 1,
        manifest_sha256: chain.hash(2),
    }];
    assert!(refused(writer.append(chain.write_segment(3, wrong))));
    // A drop must name the manifest as it is.
    assert!(refused(writer.record_drop(1, &chain.hash(2), "max_age")));
    assert!(refused(writer.record_drop(7, &chain.hash(2), "max_age")));
    // Unsafe file names never reach a manifest.
    let mut hostile = chain.write_segment(3, Vec::new());
    hostile.files[0].name = "../escape".into();
    assert!(refused(writer.append(hostile)));
    // Nothing was written by the refusals.
    assert_failures(
        &chain.verify(),
        &[
            Finding::UnexpectedFile { file: logs_file(3) },
            Finding::UnexpectedFile {
                file: spans_file(3),
            },
        ],
    );
    assert!(!chain.path("retention.jsonl").exists());
}
