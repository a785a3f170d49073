//! JSON lines appended to a file: one webhook v4 payload per notification.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt as _;

use super::SendError;

#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

impl FileSink {
    pub fn new(path: PathBuf) -> FileSink {
        FileSink { path, file: None }
    }

    /// Appends one line. The file is opened on first use and again after an
    /// error (it may have been rotated away).
    pub async fn append(&mut self, mut line: Vec<u8>) -> Result<(), SendError> {
        line.push(b'\n');
        let result = self.write(&line).await;
        if result.is_err() {
            self.file = None;
        }
        result.map_err(|e| SendError::retryable(format!("{}: {e}", self.path.display())))
    }

    async fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent()
                && !dir.as_os_str().is_empty()
            {
                tokio::fs::create_dir_all(dir).await?;
            }
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await?;
            self.file = Some(file);
        }
        if let Some(file) = &mut self.file {
            file.write_all(line).await?;
            file.flush().await?;
        }
        Ok(())
    }
}
