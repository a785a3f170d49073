//! The manifest of a segment (`<id>.manifest.json`): what the segment holds
//! and the hash of the manifest before it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::{is_sha256_hex, sha256_hex, to_hex};
use super::error::{IntegrityError, Result};
use super::fsio::{list_dir, read_capped};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// A manifest is small (a few files, WAL ranges, replaced segments); the cap
/// only bounds what a hostile file can make a reader allocate.
pub(crate) const MANIFEST_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The manifest of one segment. Field order is the serialisation order and
/// part of the format: signatures and hashes are over these bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    pub segment_id: u64,
    pub created_unix_nano: u64,
    /// The segment's data files, in the segments directory.
    pub files: Vec<ManifestFile>,
    pub spans: u64,
    pub logs: u64,
    pub min_time_unix_nano: u64,
    pub max_time_unix_nano: u64,
    /// WAL records (inclusive LSN ranges) whose data this segment holds.
    pub lsn_ranges: Vec<(u64, u64)>,
    /// For a compaction: the segments this one replaces.
    pub replaces: Vec<ReplacedSegment>,
    /// SHA-256 (hex) of the previous manifest file; `None` for the first.
    /// Filled in by [`ChainWriter::append`](super::ChainWriter::append).
    pub prev_manifest_sha256: Option<String>,
    /// ed25519 signature (hex) of [`Manifest::signed_bytes`]; set by
    /// [`ChainWriter::append`](super::ChainWriter::append) when it has a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// [`key_id`](super::key_id) of the key that made `signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// One data file of a segment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// File name in the segments directory (no directory part).
    pub name: String,
    pub bytes: u64,
    /// SHA-256 (lowercase hex) of the file's bytes.
    pub sha256: String,
}

impl ManifestFile {
    /// A file entry from a raw SHA-256 (as the segment writer returns it).
    pub fn new(name: impl Into<String>, bytes: u64, sha256: &[u8; 32]) -> ManifestFile {
        ManifestFile {
            name: name.into(),
            bytes,
            sha256: to_hex(sha256),
        }
    }
}

/// A segment replaced by a compaction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplacedSegment {
    pub segment_id: u64,
    /// SHA-256 (hex) of the replaced segment's manifest file.
    pub manifest_sha256: String,
}

impl Manifest {
    /// The bytes the signature covers: the manifest serialised in field
    /// order, no whitespace, without `signature` and `key_id`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = Manifest {
            signature: None,
            key_id: None,
            ..self.clone()
        };
        to_json(&unsigned)
    }

    /// The bytes of the manifest file: the manifest serialised in field
    /// order, no whitespace (signature fields included when set), then `\n`.
    pub fn file_bytes(&self) -> Vec<u8> {
        let mut bytes = to_json(self);
        bytes.push(b'\n');
        bytes
    }

    /// Parses a manifest file's bytes, then [`validate`](Manifest::validate)s it.
    pub fn from_file_bytes(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks what a reader relies on: the format version, hashes that are
    /// hashes, and file names that stay inside the segments directory (a
    /// hostile manifest must not make `verify` read `/etc/shadow`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format_version != MANIFEST_FORMAT_VERSION {
            return Err(format!(
                "format version {} (this build reads {MANIFEST_FORMAT_VERSION})",
                self.format_version
            ));
        }
        for file in &self.files {
            if !is_plain_file_name(&file.name) {
                return Err(format!(
                    "file name {:?} is not a plain file name",
                    file.name
                ));
            }
            if file.name.ends_with(MANIFEST_SUFFIX) || is_reserved_name(&file.name) {
                return Err(format!("file name {:?} is reserved", file.name));
            }
            if !is_sha256_hex(&file.sha256) {
                return Err(format!("file {:?} has a malformed sha256", file.name));
            }
        }
        let hashes = self
            .replaces
            .iter()
            .map(|r| &r.manifest_sha256)
            .chain(&self.prev_manifest_sha256);
        for hash in hashes {
            if !is_sha256_hex(hash) {
                return Err(format!("malformed manifest sha256 {hash:?}"));
            }
        }
        Ok(())
    }
}

/// Serialises one of our types. They hold only strings, integers, options
/// and sequences, for which serde_json cannot fail.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A name without directory parts that is not `.` or `..`.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

fn is_reserved_name(name: &str) -> bool {
    name == super::CHAIN_HEAD_FILE
        || name == super::RETENTION_LOG_FILE
        || name == super::QUARANTINE_DIR
        || name.ends_with(super::fsio::TMP_SUFFIX)
}

/// `<id zero-padded to 20 digits>.manifest.json`.
pub fn manifest_file_name(segment_id: u64) -> String {
    format!("{segment_id:020}{MANIFEST_SUFFIX}")
}

/// The segment id a file name starts with (`<20 digits>.`), if it does.
pub(crate) fn segment_id_of_file(name: &str) -> Option<u64> {
    let (digits, rest) = name.split_at_checked(20)?;
    if !rest.starts_with('.') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment id of a manifest file name, if it is one.
pub(crate) fn manifest_id_of_file(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(MANIFEST_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A manifest file read from disk: the manifest, the SHA-256 of the file.
pub(crate) struct ReadManifest {
    pub manifest: Manifest,
    pub sha256: String,
}

/// Reads and parses the manifest file at `path`; `Ok(None)` if missing.
pub(crate) fn read_manifest(path: &Path) -> Result<Option<ReadManifest>> {
    let Some(bytes) = read_capped(path, MANIFEST_LIMIT_BYTES)? else {
        return Ok(None);
    };
    let manifest = Manifest::from_file_bytes(&bytes)
        .map_err(|reason| IntegrityError::invalid(path, reason))?;
    Ok(Some(ReadManifest {
        manifest,
        sha256: sha256_hex(&bytes),
    }))
}

/// Every manifest in `segments_dir` with the SHA-256 of its file, by segment
/// id. Fails on the first manifest that cannot be read, or whose file name
/// does not match its `segment_id`, naming the file: use
/// [`verify`](super::verify()) to examine a damaged directory.
pub fn load_manifests(segments_dir: &Path) -> Result<Vec<(Manifest, String)>> {
    let mut manifests = Vec::new();
    for name in list_dir(segments_dir)? {
        let Some(id) = manifest_id_of_file(&name) else {
            continue;
        };
        let path = segments_dir.join(&name);
        // A manifest that vanished since the listing was deleted meanwhile:
        // it is no longer part of the directory.
        let Some(read) = read_manifest(&path)? else {
            continue;
        };
        if read.manifest.segment_id != id {
            return Err(IntegrityError::invalid(
                path,
                format!("holds the manifest of segment {}", read.manifest.segment_id),
            ));
        }
        manifests.push((read.manifest, read.sha256));
    }
    manifests.sort_by_key(|(manifest, _)| manifest.segment_id);
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample(segment_id: u64) -> Manifest {
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            segment_id,
            created_unix_nano: 1_700_000_000_000_000_000,
            files: vec![ManifestFile::new(
                format!("{segment_id:020}.spans.parquet"),
                10,
                &[0xab; 32],
            )],
            spans: 3,
            logs: 0,
            min_time_unix_nano: 1,
            max_time_unix_nano: 2,
            lsn_ranges: vec![(1, 4), (7, 7)],
            replaces: Vec::new(),
            prev_manifest_sha256: None,
            signature: None,
            key_id: None,
        }
    }

    #[test]
    fn serialisation_is_canonical_and_in_field_order() {
        let manifest = sample(1);
        let text = String::from_utf8(manifest.file_bytes()).unwrap();
        let expected = format!(
            concat!(
                r#"{{"format_version":1,"segment_id":1,"created_unix_nano":1700000000000000000,"#,
                r#""files":[{{"name":"00000000000000000001.spans.parquet","bytes":10,"sha256":"{}"}}],"#,
                r#""spans":3,"logs":0,"min_time_unix_nano":1,"max_time_unix_nano":2,"#,
                r#""lsn_ranges":[[1,4],[7,7]],"replaces":[],"prev_manifest_sha256":null}}"#,
                "\n"
            ),
            "ab".repeat(32)
        );
        assert_eq!(text, expected);
        assert_eq!(manifest.signed_bytes(), text.trim_end().as_bytes());

        let signed = Manifest {
            signature: Some("00".repeat(64)),
            key_id: Some("0123456789abcdef".into()),
            ..manifest.clone()
        };
        assert_eq!(signed.signed_bytes(), manifest.signed_bytes());
        let signed_text = String::from_utf8(signed.file_bytes()).unwrap();
        assert!(signed_text.ends_with(&format!(
            "\"prev_manifest_sha256\":null,\"signature\":\"{}\",\"key_id\":\"0123456789abcdef\"}}\n",
            "00".repeat(64)
        )));
        assert_eq!(
            Manifest::from_file_bytes(signed_text.as_bytes()).unwrap(),
            signed
        );
    }

    #[test]
    fn hostile_manifests_are_rejected() {
        let cases: Vec<(&str, Manifest)> = vec![
            (
                "version",
                Manifest {
                    format_version: 2,
                    ..sample(1)
                },
            ),
            ("path", {
                let mut m = sample(1);
                m.files[0].name = "../../etc/shadow".into();
                m
            }),
            ("dot", {
                let mut m = sample(1);
                m.files[0].name = "..".into();
                m
            }),
            ("reserved", {
                let mut m = sample(1);
                m.files[0].name = "chain.head".into();
                m
            }),
            ("hash", {
                let mut m = sample(1);
                m.files[0].sha256 = "AB".repeat(32);
                m
            }),
            (
                "prev",
                Manifest {
                    prev_manifest_sha256: Some("x".into()),
                    ..sample(1)
                },
            ),
        ];
        for (name, manifest) in cases {
            assert!(manifest.validate().is_err(), "{name}");
            assert!(
                Manifest::from_file_bytes(&manifest.file_bytes()).is_err(),
                "{name}"
            );
        }
        assert!(Manifest::from_file_bytes(b"{}").is_err());
        let mut extra = sample(1).signed_bytes();
        extra.truncate(extra.len() - 1);
        extra.extend_from_slice(br#","admin":true}"#);
        assert!(Manifest::from_file_bytes(&extra).is_err());
    }

    #[test]
    fn file_names_and_ids() {
        assert_eq!(manifest_file_name(42), "00000000000000000042.manifest.json");
        assert_eq!(
            manifest_id_of_file("00000000000000000042.manifest.json"),
            Some(42)
        );
        assert_eq!(manifest_id_of_file("42.manifest.json"), None);
        assert_eq!(
            segment_id_of_file("00000000000000000042.spans.parquet"),
            Some(42)
        );
        assert_eq!(
            segment_id_of_file("0000000000000000004x.spans.parquet"),
            None
        );
        assert_eq!(segment_id_of_file("00000000000000000042"), None);
        assert_eq!(segment_id_of_file("é"), None);
    }

    #[test]
    fn load_manifests_sorts_and_refuses_misnamed_files() {
        let dir = tempfile::tempdir().unwrap();
        for id in [3, 1, 2] {
            std::fs::write(
                dir.path().join(manifest_file_name(id)),
                sample(id).file_bytes(),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let loaded = load_manifests(dir.path()).unwrap();
        let ids: Vec<u64> = loaded.iter().map(|(m, _)| m.segment_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(loaded[0].1, sha256_hex(&sample(1).file_bytes()));

        std::fs::write(
            dir.path().join(manifest_file_name(4)),
            sample(2).file_bytes(),
        )
        .unwrap();
        let error = load_manifests(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("00000000000000000004.manifest.json"),
            "{error}"
        );
        assert!(error.contains("segment 2"), "{error}");
    }
}
