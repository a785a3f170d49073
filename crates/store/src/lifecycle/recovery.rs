//! Opening the segments directory: finish or undo what a crash interrupted,
//! quarantine what cannot be read, and open the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{LiveSegment, remove_files, segment_file_names, sync_dir};
use crate::encryption::EncryptionKey;
use crate::error::{Result, StoreError};
use crate::integrity::manifest::{
    MANIFEST_LIMIT_BYTES, manifest_id_of_file, read_manifest, segment_id_of_file,
};
use crate::integrity::retention::read_log;
use crate::integrity::{
    ChainWriter, IntegrityError, MANIFEST_FORMAT_VERSION, Manifest, QUARANTINE_DIR,
    RETENTION_LOG_FILE, SigningKey,
};
use crate::segment::Segment;

/// Suffix of files being written; a crash can leave them behind.
const TMP_SUFFIX: &str = ".tmp";
/// Suffix of the file that says why a segment was quarantined.
const REASON_SUFFIX: &str = ".reason";

/// The segments directory after recovery.
pub(crate) struct Recovered {
    pub chain: ChainWriter,
    /// The segments that opened, by id.
    pub live: BTreeMap<u64, LiveSegment>,
    /// Above every segment id used so far.
    pub next_id: u64,
    /// Segments in quarantine (moved there now or earlier).
    pub quarantined: u64,
}

/// Recovers `dir` (created if missing): see [`crate::lifecycle`], "Open and
/// crash recovery".
///
/// A segment that cannot be read for want of the right encryption key fails
/// the recovery (it is not damaged: it must not be quarantined).
pub(crate) fn recover(
    dir: &Path,
    signing_key: Option<SigningKey>,
    encryption_key: Option<Arc<EncryptionKey>>,
) -> Result<Recovered> {
    // Opening the chain first repairs chain.head from what reached the disk
    // (a manifest or log line written just before a crash).
    let chain = ChainWriter::open(dir, signing_key)?;
    remove_tmp_files(dir)?;

    let (manifests, unreadable) = load_manifests_or_quarantine(dir)?;
    let log = read_log(&dir.join(RETENTION_LOG_FILE))?;
    // Manifest hash -> the segment that replaces it (None: a retention drop).
    let recorded: HashMap<&str, Option<u64>> = log
        .lines
        .iter()
        .filter_map(|line| line.entry.as_ref().ok())
        .map(|entry| (entry.manifest_sha256.as_str(), entry.replaced_by))
        .collect();
    let present: BTreeSet<u64> = manifests.iter().map(|(m, _)| m.segment_id).collect();
    // Replaced by a compaction whose manifest is durable.
    let replaced: BTreeSet<(u64, &str)> = manifests
        .iter()
        .flat_map(|(m, _)| &m.replaces)
        .map(|r| (r.segment_id, r.manifest_sha256.as_str()))
        .collect();

    let mut max_id = chain.head().map_or(0, |head| head.segment_id);
    max_id = max_id.max(present.last().copied().unwrap_or(0));
    for entry in log.lines.iter().filter_map(|line| line.entry.as_ref().ok()) {
        max_id = max_id.max(entry.segment_id);
    }

    let mut candidates: Vec<(Manifest, String)> = Vec::new();
    for (manifest, sha256) in &manifests {
        let id = manifest.segment_id;
        let gone = match recorded.get(sha256.as_str()) {
            Some(None) => true,
            Some(Some(by)) if present.contains(by) => true,
            Some(Some(by)) => {
                // The compaction recorded its inputs, then crashed before its
                // manifest: its inputs still hold the data.
                tracing::warn!(
                    segment = id,
                    replaced_by = by,
                    "segment recorded as compacted into a segment whose manifest is missing; keeping it"
                );
                false
            }
            None => replaced.contains(&(id, sha256.as_str())),
        };
        if gone {
            let removed = remove_files(dir, &segment_file_names(id))?;
            if removed > 0 {
                tracing::info!(
                    segment = id,
                    files = removed,
                    "finished removing a segment dropped or compacted before a crash"
                );
            }
        } else {
            candidates.push((manifest.clone(), sha256.clone()));
        }
    }

    let quarantine_dir = dir.join(QUARANTINE_DIR);
    let mut quarantined_ids = quarantined_ids(&quarantine_dir)?;
    quarantined_ids.extend(unreadable);
    max_id = max_id.max(quarantined_ids.iter().next_back().copied().unwrap_or(0));

    remove_orphans(dir, &candidates)?;

    let mut live = BTreeMap::new();
    for (manifest, sha256) in candidates {
        let id = manifest.segment_id;
        if quarantined_ids.contains(&id) {
            tracing::error!(
                segment = id,
                reason_file = %quarantine_dir.join(reason_file_name(id)).display(),
                "segment is in quarantine; not serving it"
            );
            continue;
        }
        match open_checked(dir, &manifest, encryption_key.clone()) {
            Ok(segment) => {
                live.insert(
                    id,
                    LiveSegment {
                        manifest,
                        sha256,
                        segment: Arc::new(segment),
                    },
                );
            }
            Err(error @ (StoreError::KeyRequired { .. } | StoreError::WrongKey { .. })) => {
                return Err(error);
            }
            Err(error) => {
                quarantine(dir, id, &error)?;
                quarantined_ids.insert(id);
            }
        }
    }
    Ok(Recovered {
        chain,
        live,
        next_id: max_id.saturating_add(1),
        quarantined: quarantined_ids.len() as u64,
    })
}

/// A manifest and the SHA-256 (hex) of its file.
type ManifestAndHash = (Manifest, String);

/// Every manifest of `dir` with its file's SHA-256, by id. A manifest that
/// cannot be read as one (damaged, or not ours) has its segment
/// quarantined; its id is returned with the second list. A manifest of a
/// newer format stops the open instead: this build must not set aside data
/// it merely cannot read.
fn load_manifests_or_quarantine(dir: &Path) -> Result<(Vec<ManifestAndHash>, Vec<u64>)> {
    let mut manifests = Vec::new();
    let mut unreadable = Vec::new();
    for name in list(dir)? {
        let Some(id) = manifest_id_of_file(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let error = match read_manifest(&path) {
            Ok(Some(read)) if read.manifest.segment_id == id => {
                manifests.push((read.manifest, read.sha256));
                continue;
            }
            Ok(Some(read)) => StoreError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("holds the manifest of segment {}", read.manifest.segment_id),
            },
            // Deleted since the listing.
            Ok(None) => continue,
            Err(IntegrityError::Invalid { path, reason }) => {
                if let Some(version) = newer_format_version(&path) {
                    return Err(StoreError::UnsupportedVersion {
                        path,
                        what: "segment manifest",
                        version,
                        supported: u16::try_from(MANIFEST_FORMAT_VERSION).unwrap_or(u16::MAX),
                    });
                }
                StoreError::Corrupt {
                    path,
                    offset: 0,
                    reason,
                }
            }
            Err(other) => return Err(other.into()),
        };
        quarantine(dir, id, &error)?;
        unreadable.push(id);
    }
    manifests.sort_by_key(|(manifest, _)| manifest.segment_id);
    Ok((manifests, unreadable))
}

/// The `format_version` of a manifest file when it is a JSON object with a
/// version above the one this build writes.
fn newer_format_version(path: &Path) -> Option<u16> {
    use std::io::Read;
    // Bounded: the file may be anything.
    let mut bytes = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(MANIFEST_LIMIT_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let version = value.get("format_version")?.as_u64()?;
    (version > u64::from(MANIFEST_FORMAT_VERSION))
        .then(|| u16::try_from(version).unwrap_or(u16::MAX))
}

/// Opens a segment after checking its files have the sizes its manifest
/// records (a cheap check for truncation; `tracewarden verify` hashes them).
fn open_checked(
    dir: &Path,
    manifest: &Manifest,
    encryption_key: Option<Arc<EncryptionKey>>,
) -> Result<Segment> {
    for file in &manifest.files {
        let path = dir.join(&file.name);
        let bytes = fs::metadata(&path)
            .map_err(|e| StoreError::io("read metadata of segment file", &path, e))?
            .len();
        if bytes != file.bytes {
            return Err(StoreError::Corrupt {
                path,
                offset: 0,
                reason: format!("{bytes} bytes where the manifest records {}", file.bytes),
            });
        }
    }
    Segment::open_with_key(dir, manifest.segment_id, encryption_key)
}

/// Moves segment `id`'s files (data and manifest) into the quarantine
/// directory, with a `<id>.reason` file saying why. `tracewarden verify`
/// names the segment as quarantined (and the chain continues through its
/// manifest there). With its manifest gone, the segment no longer covers its
/// WAL records: those still in the WAL are replayed, and flushed again.
pub(crate) fn quarantine(dir: &Path, id: u64, error: &StoreError) -> Result<()> {
    let quarantine_dir = dir.join(QUARANTINE_DIR);
    match fs::create_dir(&quarantine_dir) {
        Ok(()) => sync_dir(dir)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io("create directory", &quarantine_dir, e)),
    }
    let mut moved = Vec::new();
    // The manifest last: until it moves, the next open retries the rest.
    for name in segment_file_names(id) {
        let from = dir.join(&name);
        let to = quarantine_dir.join(&name);
        match fs::rename(&from, &to) {
            Ok(()) => moved.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("move into quarantine", from, e)),
        }
    }
    let reason = format!(
        "segment {id} was quarantined at open: {error}\n\
         moved here: {}\n",
        if moved.is_empty() {
            "nothing (its files were missing)".to_owned()
        } else {
            moved.join(", ")
        }
    );
    let reason_path = quarantine_dir.join(reason_file_name(id));
    write_durable(&reason_path, reason.as_bytes())?;
    sync_dir(&quarantine_dir)?;
    sync_dir(dir)?;
    tracing::error!(
        segment = id,
        %error,
        quarantine = %quarantine_dir.display(),
        "corrupt segment moved to quarantine; the rest of the store serves"
    );
    Ok(())
}

fn reason_file_name(id: u64) -> String {
    format!("{id:020}{REASON_SUFFIX}")
}

fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = fs::File::create(path).map_err(|e| StoreError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("write", path, e))
}

/// Ids of the segments in quarantine (by their reason files).
fn quarantined_ids(quarantine_dir: &Path) -> Result<BTreeSet<u64>> {
    let entries = match fs::read_dir(quarantine_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(StoreError::io("list", quarantine_dir, e)),
    };
    let mut ids = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", quarantine_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = segment_id_of_file(&name) {
            ids.insert(id);
        }
    }
    Ok(ids)
}

/// Deletes `*.tmp` files: writes a crash interrupted before their rename.
fn remove_tmp_files(dir: &Path) -> Result<()> {
    let names = list(dir)?;
    let tmp: Vec<String> = names
        .into_iter()
        .filter(|name| name.ends_with(TMP_SUFFIX))
        .collect();
    if !tmp.is_empty() {
        tracing::info!(
            files = tmp.len(),
            "removing files a crash left half-written"
        );
        remove_files(dir, &tmp)?;
    }
    Ok(())
}

/// Deletes segment data files that no manifest lists: a flush or compaction
/// that crashed before its manifest was durable. Their data is still in the
/// WAL (or in the segments a compaction would have replaced).
fn remove_orphans(dir: &Path, kept: &[(Manifest, String)]) -> Result<()> {
    let listed: BTreeSet<&str> = kept
        .iter()
        .flat_map(|(m, _)| &m.files)
        .map(|f| f.name.as_str())
        .collect();
    let orphans: Vec<String> = list(dir)?
        .into_iter()
        .filter(|name| {
            [".spans.parquet", ".logs.parquet", ".resources.parquet"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
                && segment_id_of_file(name).is_some()
                && !listed.contains(name.as_str())
        })
        .collect();
    if !orphans.is_empty() {
        tracing::warn!(
            files = ?orphans,
            "removing segment files without a manifest (a flush interrupted by a crash; the WAL still holds their data)"
        );
        remove_files(dir, &orphans)?;
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))? {
        let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
