//! Durable small-file writes: `<name>.tmp`, fsync, rename, fsync the
//! directory, so a crash leaves either the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::{IntegrityError, Result};

/// Suffix of files being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Replaces (or creates) `dir/name` with `bytes`, durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(IntegrityError::io("write", tmp, source));
    }
    if let Err(source) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(IntegrityError::io("rename into place", target, source));
    }
    sync_dir(dir)
}

/// Makes `dir`'s entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| IntegrityError::io("fsync directory", dir, source))
}

/// Creates `dir` and its missing parents, making each new entry durable.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.is_dir())
        .map(Path::to_path_buf)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir)
        .map_err(|source| IntegrityError::io("create directory", dir, source))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Reads a whole file of at most `limit` bytes; `Ok(None)` when it does not
/// exist. A larger file is an error: these files are small by construction,
/// and a hostile one must not make us allocate without bound.
pub(crate) fn read_capped(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IntegrityError::io("open", path, source)),
    };
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| IntegrityError::io("read", path, source))?;
    if bytes.len() as u64 > limit {
        return Err(IntegrityError::invalid(
            path,
            format!("larger than the {limit} bytes such a file can be"),
        ));
    }
    Ok(Some(bytes))
}

/// Names of the entries of `dir`, sorted (decoded lossily: all of ours are
/// UTF-8, and any other name is reported as it looks); an empty list when
/// `dir` does not exist.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(IntegrityError::io("list", dir, source)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| IntegrityError::io("list", dir, source))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Nanoseconds since the Unix epoch, now (0 if the clock is before 1970).
pub(crate) fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
