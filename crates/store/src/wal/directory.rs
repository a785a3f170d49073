//! Where WAL files live: a small trait over the few file operations the WAL
//! needs, so tests can inject failures (a failing or stalled fsync, a failing
//! write) where durability is claimed, and a later backend can differ.
//!
//! [`FsWalDirectory`] is the real one: a directory on the local file system.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A directory of WAL files, addressed by file name.
pub trait WalDirectory: Send + Sync {
    /// The directory's path, for messages.
    fn path(&self) -> &Path;
    /// Names of the files in the directory (any order).
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading.
    fn open_read(&self, name: &str) -> io::Result<Box<dyn WalFileReader>>;
    /// Opens an existing file to append to its end.
    fn open_append(&self, name: &str) -> io::Result<Box<dyn WalFile>>;
    /// Creates a new, empty file to append to; fails if it exists.
    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>>;
    /// Cuts a file to `len` bytes and makes that durable.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Makes the directory's entries (created and removed files) durable.
    fn sync(&self) -> io::Result<()>;
    /// Removes a file (one whose records are all in segments). Durable only
    /// after [`WalDirectory::sync`]. A directory that cannot remove files
    /// keeps them: the WAL then only grows.
    fn remove(&self, name: &str) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this WAL directory cannot remove `{name}`"),
        ))
    }
}

/// A WAL file open for appending.
pub trait WalFile: Send {
    /// Writes all of `bufs`, in order, at the end of the file.
    fn write_all(&mut self, bufs: &[&[u8]]) -> io::Result<()>;
    /// Makes what was written durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// A WAL file open for reading at any offset.
pub trait WalFileReader: Send {
    /// The file's length in bytes when it was opened.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// WAL files in a directory of the local file system.
#[derive(Debug)]
pub struct FsWalDirectory {
    path: PathBuf,
}

impl FsWalDirectory {
    /// Uses `path` as the WAL directory, creating it (and its parents) when
    /// missing, and making a newly created directory durable.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<FsWalDirectory> {
        let path = path.into();
        // The directories about to be created, deepest first: each one's
        // entry lives in its parent, which must be fsynced to keep it.
        let missing: Vec<PathBuf> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.is_dir())
            .map(Path::to_path_buf)
            .collect();
        if !missing.is_empty() {
            fs::create_dir_all(&path)?;
            for dir in missing.iter().rev() {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    sync_dir(parent)?;
                }
            }
        }
        Ok(FsWalDirectory { path })
    }
}

impl WalDirectory for FsWalDirectory {
    fn path(&self) -> &Path {
        &self.path
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            // A name that is not UTF-8 cannot be a WAL file's.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open_read(&self, name: &str) -> io::Result<Box<dyn WalFileReader>> {
        let file = File::open(self.path.join(name))?;
        let len = file.metadata()?.len();
        Ok(Box::new(FsReader { file, len }))
    }

    fn open_append(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        let file = OpenOptions::new().append(true).open(self.path.join(name))?;
        Ok(Box::new(FsFile { file }))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(self.path.join(name))?;
        Ok(Box::new(FsFile { file }))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.path.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn sync(&self) -> io::Result<()> {
        sync_dir(&self.path)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path.join(name))
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

struct FsFile {
    file: File,
}

impl WalFile for FsFile {
    fn write_all(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        // Empty slices are left out: a write of only empty slices returns 0,
        // which the loop would take for a full disk.
        let mut slices: Vec<IoSlice<'_>> = bufs
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| IoSlice::new(b))
            .collect();
        let mut remaining: &mut [IoSlice<'_>] = &mut slices;
        // `Write::write_all_vectored` is unstable; this is its loop. std caps
        // each call at IOV_MAX slices, the loop continues with the rest.
        while !remaining.is_empty() {
            match self.file.write_vectored(remaining) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole WAL group",
                    ));
                }
                Ok(n) => IoSlice::advance_slices(&mut remaining, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

struct FsReader {
    file: File,
    len: u64,
}

impl WalFileReader for FsReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_missing_parents() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/wal");
        let directory = FsWalDirectory::open(&path).unwrap();
        assert!(path.is_dir());
        assert!(directory.list().unwrap().is_empty());
        // Opening an existing directory is fine too.
        FsWalDirectory::open(&path).unwrap();
    }

    #[test]
    fn files_are_appended_read_and_truncated() {
        let root = tempfile::tempdir().unwrap();
        let directory = FsWalDirectory::open(root.path()).unwrap();
        let mut file = directory.create("x.log").unwrap();
        assert!(
            directory.create("x.log").is_err(),
            "create never overwrites"
        );
        file.write_all(&[b"hello ", b"", b"world"]).unwrap();
        file.sync_data().unwrap();
        let mut file = directory.open_append("x.log").unwrap();
        file.write_all(&[b"!"]).unwrap();
        let reader = directory.open_read("x.log").unwrap();
        assert_eq!(reader.len(), 12);
        let mut buf = [0u8; 5];
        reader.read_exact_at(&mut buf, 6).unwrap();
        assert_eq!(&buf, b"world");
        assert!(
            reader.read_exact_at(&mut buf, 10).is_err(),
            "reads past the end fail"
        );
        directory.truncate("x.log", 5).unwrap();
        assert_eq!(directory.open_read("x.log").unwrap().len(), 5);
        assert_eq!(directory.list().unwrap(), ["x.log"]);
        directory.sync().unwrap();
    }
}
