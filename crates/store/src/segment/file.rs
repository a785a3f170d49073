//! A segment file opened for reading: positional reads (any number of
//! threads read one open file at once, no shared cursor) that count the
//! bytes they read.
//!
//! The parquet crate's own `ChunkReader` for `File` seeks a cloned handle,
//! and clones share one file offset, so concurrent readers would race.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

/// An open segment file. Cloning shares the handle and the byte counter.
#[derive(Clone, Debug)]
pub(crate) struct SegmentFile {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    path: PathBuf,
    len: u64,
    bytes_read: AtomicU64,
}

impl SegmentFile {
    pub fn open(path: &Path) -> io::Result<SegmentFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SegmentFile {
            inner: Arc::new(Inner {
                file,
                path: path.to_owned(),
                len,
                bytes_read: AtomicU64::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes read from the file since it was opened.
    pub fn bytes_read(&self) -> u64 {
        self.inner.bytes_read.load(Ordering::Relaxed)
    }

    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_exact_at(&self.inner.file, buf, offset)?;
        self.inner
            .bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = read_at(&self.inner.file, buf, offset)?;
        self.inner.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ends before the range read",
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Length for SegmentFile {
    fn len(&self) -> u64 {
        self.inner.len
    }
}

impl ChunkReader for SegmentFile {
    type T = io::BufReader<SegmentReader>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(io::BufReader::new(SegmentReader {
            file: self.clone(),
            offset: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        // The length comes from the file's metadata: refuse a range past the
        // end before allocating for it.
        let end = start.checked_add(length as u64);
        if end.is_none_or(|end| end > self.inner.len) {
            return Err(ParquetError::EOF(format!(
                "range {start}+{length} is past the end of the file ({} bytes)",
                self.inner.len
            )));
        }
        let mut buf = vec![0; length];
        self.read_exact_at(&mut buf, start)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Bytes::from(buf))
    }
}

/// A sequential reader over a [`SegmentFile`] with its own position.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    file: SegmentFile,
    offset: u64,
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = SegmentFile::open(&path).unwrap();
        assert_eq!(&file.get_bytes(2, 3).unwrap()[..], b"234");
        let mut rest = String::new();
        file.get_read(7).unwrap().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "789");
        assert_eq!(file.bytes_read(), 6);
        assert!(file.get_bytes(8, 3).is_err());
        assert!(file.get_bytes(u64::MAX, 2).is_err());
        assert_eq!(file.len(), 10);
    }
}
