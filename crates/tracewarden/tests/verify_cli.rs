//! `tracewarden verify` and `tracewarden signing-key generate`: exit codes
//! and messages, on a data directory built through the store's public
//! `ChainWriter` (fake data files, real manifests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tracewarden_store::integrity::{
    ChainWriter, MANIFEST_FORMAT_VERSION, Manifest, ManifestFile, load_signing_key, sha256_file,
};

fn tracewarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracewarden"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A data directory with segments 1..=3 (signed when `key_file` is given).
fn data_dir(key_file: Option<&Path>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let segments = dir.path().join("segments");
    fs::create_dir_all(&segments).unwrap();
    let key = key_file.map(|path| load_signing_key(path).unwrap());
    let mut writer = ChainWriter::open(&segments, key).unwrap();
    for id in 1..=3u64 {
        let name = format!("{id:020}.spans.parquet");
        let path = segments.join(&name);
        fs::write(&path, vec![u8::try_from(id).unwrap(); 4096]).unwrap();
        let (sha256, bytes) = sha256_file(&path).unwrap();
        writer
            .append(Manifest {
                format_version: MANIFEST_FORMAT_VERSION,
                segment_id: id,
                created_unix_nano: id,
                files: vec![ManifestFile {
                    name,
                    bytes,
                    sha256,
                }],
                spans: 10,
                logs: 0,
                min_time_unix_nano: 0,
                max_time_unix_nano: 1,
                lsn_ranges: vec![(id, id)],
                replaces: Vec::new(),
                prev_manifest_sha256: None,
                signature: None,
                key_id: None,
            })
            .unwrap();
    }
    dir
}

fn segment_file(dir: &Path, id: u64) -> PathBuf {
    dir.join("segments").join(format!("{id:020}.spans.parquet"))
}

fn flip_a_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    bytes[100] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

#[test]
fn an_intact_store_exits_zero_and_a_modified_one_names_the_file() {
    let dir = data_dir(None);
    let data = dir.path().to_str().unwrap();
    let output = tracewarden(&["verify", "--data-dir", data]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("OK: 3 segments, 3 files (12288 bytes), 0 retention records verified"),
        "{text}"
    );
    assert!(
        text.contains("chain head: segment 3, manifest sha256 "),
        "{text}"
    );
    assert!(text.contains("signatures: not checked"), "{text}");

    flip_a_byte(&segment_file(dir.path(), 2));
    let output = tracewarden(&["verify", "--data-dir", data]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(
            "FAIL: segment 2: file `00000000000000000002.spans.parquet` was modified: expected sha256 "
        ),
        "{text}"
    );
    assert!(text.contains("FAILED: 1 problem in 3 segments"), "{text}");
}

#[test]
fn json_output_lists_findings_with_messages() {
    let dir = data_dir(None);
    fs::remove_file(
        dir.path()
            .join("segments/00000000000000000003.manifest.json"),
    )
    .unwrap();
    fs::remove_file(segment_file(dir.path(), 3)).unwrap();
    let output = tracewarden(&[
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["segments_checked"], 2);
    let finding = &report["findings"][0];
    assert_eq!(finding["kind"], "removed");
    assert_eq!(finding["first_id"], 3);
    assert_eq!(finding["last_id"], 3);
    assert_eq!(finding["failure"], true);
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .starts_with("segment 3 was removed"),
        "{finding}"
    );
}

#[test]
fn signatures_are_checked_with_a_generated_public_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("manifest.key");
    let output = tracewarden(&["signing-key", "generate", "--out", key.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("key id:"), "{text}");
    let secret = fs::read_to_string(&key).unwrap();
    assert!(
        !text.contains(secret.trim()),
        "the secret must not be printed"
    );
    // Never overwrites a key.
    let again = tracewarden(&["signing-key", "generate", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));

    let public = keys.path().join("manifest.key.pub");
    let dir = data_dir(Some(&key));
    let args = |dir: &Path| {
        vec![
            "verify".to_owned(),
            "--data-dir".to_owned(),
            dir.to_str().unwrap().to_owned(),
            "--public-key".to_owned(),
            public.to_str().unwrap().to_owned(),
        ]
    };
    let run = |dir: &Path| {
        let args = args(dir);
        tracewarden(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let output = run(dir.path());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("signatures: checked with key "), "{text}");

    // An unsigned store verified with the key fails, naming each manifest.
    let unsigned = data_dir(None);
    let output = run(unsigned.path());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL: segment 1: the manifest is not signed, but a public key was given"),
        "{text}"
    );
}

#[test]
fn a_missing_data_dir_or_bad_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let output = tracewarden(&["verify", "--data-dir", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot verify"), "{stderr}");

    let bad_key = dir.path().join("bad.pub");
    fs::write(&bad_key, "not a key").unwrap();
    let output = tracewarden(&[
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--public-key",
        bad_key.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid key file"), "{stderr}");
}
