//! The state file: alerts, silences (with their history) and the
//! notification log, so a restart neither forgets an incident nor notifies
//! it twice.
//!
//! One JSON document, `alerts-state.json` in the given directory, with a
//! format `version`. It is replaced atomically: written to a temporary file
//! in the same directory, fsynced, renamed over the old one, and the
//! directory fsynced, so a crash leaves the old state or the new one, never
//! half of either. A file that cannot be read as state is an error naming
//! it, and is left alone.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::error::{AlertError, Result};
use crate::group::LogEntry;
use crate::silence::Silence;

pub const STATE_FILE_NAME: &str = "alerts-state.json";
const TEMP_SUFFIX: &str = ".tmp";
/// Format version written; only this one is read.
pub const STATE_VERSION: u32 = 1;

/// What survives a restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
    pub notification_log: Vec<LogEntry>,
}

/// Encryption at rest of the state file: the server plugs in the store's
/// key, so alerts (which name actors) are not kept in clear when the data
/// they come from is not.
pub trait Sealer: Send + Sync + std::fmt::Debug {
    /// The encrypted form of the file's content.
    fn seal(&self, plain: &[u8]) -> std::io::Result<Vec<u8>>;
    /// The content of a file read back: `Ok(None)` when it is not sealed
    /// (written before encryption was switched on), `Err` when it is sealed
    /// and cannot be opened.
    fn open(&self, bytes: &[u8]) -> std::result::Result<Option<Vec<u8>>, String>;
}

#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
    dir: PathBuf,
    sealer: Option<std::sync::Arc<dyn Sealer>>,
}

impl StateFile {
    /// The state file of `dir` (created on first save).
    pub fn in_dir(dir: &Path) -> StateFile {
        StateFile {
            path: dir.join(STATE_FILE_NAME),
            dir: dir.to_path_buf(),
            sealer: None,
        }
    }

    /// The same file, encrypted with `sealer`.
    pub fn sealed_with(mut self, sealer: Option<std::sync::Arc<dyn Sealer>>) -> StateFile {
        self.sealer = sealer;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or `None` when there is no file yet.
    pub fn load(&self) -> Result<Option<State>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io("read", source)),
        };
        let corrupt = |message: String| AlertError::CorruptState {
            path: self.path.clone(),
            message,
        };
        let bytes = match &self.sealer {
            Some(sealer) => sealer.open(&bytes).map_err(corrupt)?.unwrap_or(bytes),
            None => bytes,
        };
        // The version first, so a newer format is reported as such rather
        // than as whichever field it changed.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if version.version != STATE_VERSION {
            return Err(corrupt(format!(
                "format version {} (this build reads version {STATE_VERSION})",
                version.version
            )));
        }
        let state: State = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(state))
    }

    /// Replaces the file with `state`, atomically.
    pub fn save(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec(state).map_err(|e| AlertError::CorruptState {
            path: self.path.clone(),
            message: format!("cannot encode state: {e}"),
        })?;
        let bytes = match &self.sealer {
            Some(sealer) => sealer.seal(&bytes).map_err(|e| self.io("encrypt", e))?,
            None => bytes,
        };
        fs::create_dir_all(&self.dir).map_err(|e| self.io("create the directory of", e))?;
        let mut temp_name = self.path.as_os_str().to_owned();
        temp_name.push(TEMP_SUFFIX);
        let temp = PathBuf::from(temp_name);
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        };
        write().map_err(|e| self.io("write", e))?;
        fs::rename(&temp, &self.path).map_err(|e| self.io("replace", e))?;
        // The rename is durable only once the directory is.
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io("sync the directory of", e))?;
        Ok(())
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> AlertError {
        AlertError::StateIo {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_no_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StateFile::in_dir(dir.path()).load().unwrap(), None);
    }

    #[test]
    fn save_replaces_and_load_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(&dir.path().join("sub"));
        let mut state = State {
            version: STATE_VERSION,
            ..State::default()
        };
        file.save(&state).unwrap();
        state.notification_log.push(LogEntry {
            receiver: "soc".into(),
            group_key: "{}:{}".into(),
            at_unix_nano: 7,
            firing: Default::default(),
            resolved: Default::default(),
        });
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), Some(state));
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![STATE_FILE_NAME.to_string()],
            "no temporary file left"
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        let cases: [(&[u8], &str); 4] = [
            (b"{\"version\": 1, \"alerts\": [", "EOF"),
            (b"\x00\x01garbage", "expected value"),
            (b"{\"version\": 2}", "format version 2"),
            (
                b"{\"version\": 1, \"alerts\": [], \"silences\": [{\"id\": 5}], \"notification_log\": []}",
                "invalid type",
            ),
        ];
        for (bytes, message) in cases {
            fs::write(file.path(), bytes).unwrap();
            let err = file.load().unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, AlertError::CorruptState { .. }), "{text}");
            assert!(text.contains(STATE_FILE_NAME), "{text}");
            assert!(text.contains(message), "{text}");
            // Left alone for a person to look at.
            assert_eq!(fs::read(file.path()).unwrap(), bytes);
        }
    }
}
