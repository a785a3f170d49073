//! A damaged segment file gives an error naming it, never a panic: files
//! truncated anywhere, bytes flipped in the footer and page index or in
//! the data, files of another segment, of another format version, or not
//! Parquet at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod segment_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use segment_support::*;
use tracewarden_store::segment::{logs_file_name, resources_file_name, spans_file_name};
use tracewarden_store::{Segment, SegmentWriteOptions, StoreError, write_segment};

/// A small segment with several row groups of spans and logs.
fn write(dir: &Path, id: u64) {
    let spans = Workload::new(11).spans(3_000);
    let logs = Random::new(11).logs(300, 50);
    let options = SegmentWriteOptions {
        row_group_rows: 700,
        ..SegmentWriteOptions::default()
    };
    write_segment(
        dir,
        id,
        &spans.iter().collect::<Vec<_>>(),
        &logs.iter().collect::<Vec<_>>(),
        &options,
    )
    .unwrap();
}

/// Opens segment `id` and reads all of it and a trace: the first error.
fn open_and_read(dir: &Path, id: u64) -> Result<(), StoreError> {
    let segment = Segment::open(dir, id)?;
    segment.read_all()?;
    segment.trace(trace_id(3))?;
    Ok(())
}

fn assert_corrupt_naming(error: &StoreError, path: &Path) {
    match error {
        StoreError::Corrupt { path: named, .. } => assert_eq!(named, path, "{error}"),
        other => panic!("expected a corrupt-file error naming {path:?}, got {other:?}"),
    }
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

/// The offset where the Parquet footer (file metadata) starts.
fn footer_start(bytes: &[u8]) -> usize {
    let len = bytes.len();
    let metadata_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    len - 8 - metadata_len
}

#[test]
fn truncated_files_are_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1);
    for name in [
        spans_file_name(1),
        logs_file_name(1),
        resources_file_name(1),
    ] {
        let path = dir.path().join(&name);
        let original = std::fs::read(&path).unwrap();
        let len = original.len();
        for cut in [
            0,
            1,
            4,
            7,
            100,
            len / 3,
            len / 2,
            footer_start(&original),
            len - 9,
            len - 8,
            len - 4,
            len - 1,
        ] {
            std::fs::write(&path, &original[..cut]).unwrap();
            let error = Segment::open(dir.path(), 1).unwrap_err();
            assert_corrupt_naming(&error, &path);
        }
        std::fs::write(&path, &original).unwrap();
    }
    open_and_read(dir.path(), 1).unwrap();
}

#[test]
fn flipped_bytes_in_footer_and_page_index_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1);
    let path = dir.path().join(spans_file_name(1));
    let original = std::fs::read(&path).unwrap();
    let len = original.len();
    // The page index sits just before the footer; cover both.
    let start = footer_start(&original).saturating_sub(4_000);
    let positions: Vec<usize> = (start..len).step_by(((len - start) / 400).max(1)).collect();
    let (mut corrupt, mut unnoticed) = (0, 0);
    for at in positions {
        let mut damaged = original.clone();
        damaged[at] ^= 0xA5;
        std::fs::write(&path, &damaged).unwrap();
        match open_and_read(dir.path(), 1) {
            Ok(()) => unnoticed += 1,
            Err(error @ StoreError::Corrupt { .. }) => {
                assert_corrupt_naming(&error, &path);
                corrupt += 1;
            }
            // A flip in the version value itself.
            Err(StoreError::UnsupportedVersion { path: named, .. }) => assert_eq!(named, path),
            Err(other) => panic!("flip at {at}: unexpected error {other:?}"),
        }
    }
    // Statistics and names can change without breaking the structure (the
    // manifest hash catches those); most flips break it.
    assert!(
        corrupt > unnoticed,
        "{corrupt} corrupt, {unnoticed} unnoticed"
    );
    // The magic and the footer length are always checked.
    for at in [len - 1, len - 4, len - 5, len - 8] {
        let mut damaged = original.clone();
        damaged[at] ^= 0xFF;
        std::fs::write(&path, &damaged).unwrap();
        assert_corrupt_naming(&Segment::open(dir.path(), 1).unwrap_err(), &path);
    }
}

#[test]
fn flipped_bytes_in_data_pages_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1);
    for name in [logs_file_name(1), resources_file_name(1)] {
        let path = dir.path().join(name);
        let original = std::fs::read(&path).unwrap();
        let end = footer_start(&original);
        for at in (4..end).step_by((end / 150).max(1)) {
            let mut damaged = original.clone();
            damaged[at] ^= 0x5A;
            std::fs::write(&path, &damaged).unwrap();
            // A flip inside a value may go unnoticed (the manifest's hash
            // catches it); a damaged structure is an error naming the file.
            if let Err(error) = open_and_read(dir.path(), 1) {
                assert_corrupt_naming(&error, &path);
            }
        }
        std::fs::write(&path, &original).unwrap();
    }
}

/// Rows naming a resource the resources file lacks: an error naming it.
#[test]
fn a_resources_file_without_a_named_resource_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1);
    // Segment 1 of another store, with fewer resources.
    let other = tempfile::tempdir().unwrap();
    let spans = Workload::new(11).spans(10);
    write_segment(
        other.path(),
        1,
        &spans.iter().take(1).collect::<Vec<_>>(),
        &[],
        &SegmentWriteOptions::default(),
    )
    .unwrap();
    let path = dir.path().join(resources_file_name(1));
    std::fs::copy(other.path().join(resources_file_name(1)), &path).unwrap();
    let segment = Segment::open(dir.path(), 1).unwrap();
    let error = segment.read_all().unwrap_err();
    assert_corrupt_naming(&error, &path);
    assert!(error.to_string().contains("has no resource_id"), "{error}");

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Segment::open(dir.path(), 1).unwrap_err(),
        StoreError::Io { .. }
    ));
}

#[test]
fn a_file_of_another_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1);
    for name in [
        spans_file_name(1),
        logs_file_name(1),
        resources_file_name(1),
    ] {
        std::fs::copy(
            dir.path().join(&name),
            dir.path().join(name.replace("01.", "02.")),
        )
        .unwrap();
    }
    let error = Segment::open(dir.path(), 2).unwrap_err();
    assert_corrupt_naming(&error, &dir.path().join(spans_file_name(2)));
    assert!(
        error.to_string().contains("holds segment 1, not 2"),
        "{error}"
    );

    // A logs file where the spans file should be.
    std::fs::copy(
        dir.path().join(logs_file_name(1)),
        dir.path().join(spans_file_name(1)),
    )
    .unwrap();
    let error = Segment::open(dir.path(), 1).unwrap_err();
    assert!(error.to_string().contains("not a spans file"), "{error}");

    // A logs file where the resources file should be.
    write(dir.path(), 1);
    std::fs::copy(
        dir.path().join(logs_file_name(1)),
        dir.path().join(resources_file_name(1)),
    )
    .unwrap();
    let error = Segment::open(dir.path(), 1).unwrap_err();
    assert!(
        error.to_string().contains("not a resources file"),
        "{error}"
    );
}

/// A Parquet file with one column and the given key-value metadata.
fn foreign_parquet(path: &PathBuf, metadata: Vec<KeyValue>) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
    )
    .unwrap();
    let properties = WriterProperties::builder()
        .set_key_value_metadata(Some(metadata))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn foreign_files_and_newer_versions_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1);
    let path = dir.path().join(spans_file_name(1));

    foreign_parquet(&path, Vec::new());
    let error = Segment::open(dir.path(), 1).unwrap_err();
    assert_corrupt_naming(&error, &path);
    assert!(
        error.to_string().contains("not a tracewarden segment"),
        "{error}"
    );

    foreign_parquet(
        &path,
        vec![KeyValue::new(
            "tracewarden.segment.version".into(),
            "3".to_string(),
        )],
    );
    match Segment::open(dir.path(), 1).unwrap_err() {
        StoreError::UnsupportedVersion {
            path: named,
            version: 3,
            supported: 2,
            ..
        } => assert_eq!(named, path),
        other => panic!("{other:?}"),
    }

    // The right version and id, the wrong columns.
    foreign_parquet(
        &path,
        vec![
            KeyValue::new("tracewarden.segment.version".into(), "1".to_string()),
            KeyValue::new("tracewarden.segment.id".into(), "1".to_string()),
            KeyValue::new("tracewarden.segment.kind".into(), "spans".to_string()),
            KeyValue::new("tracewarden.segment.rows".into(), "3".to_string()),
            KeyValue::new(
                "tracewarden.segment.min_time_unix_nano".into(),
                "0".to_string(),
            ),
            KeyValue::new(
                "tracewarden.segment.max_time_unix_nano".into(),
                "0".to_string(),
            ),
        ],
    );
    let error = Segment::open(dir.path(), 1).unwrap_err();
    assert!(error.to_string().contains("schema"), "{error}");

    std::fs::write(&path, garbage()).unwrap();
    assert_corrupt_naming(&Segment::open(dir.path(), 1).unwrap_err(), &path);

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Segment::open(dir.path(), 1).unwrap_err(),
        StoreError::Io { .. }
    ));
}

/// Bytes that end like a Parquet file (a length and the magic) but hold noise.
fn garbage() -> Vec<u8> {
    let mut bytes = b"PAR1".to_vec();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..5_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push((state >> 24) as u8);
    }
    bytes.extend_from_slice(&1_000u32.to_le_bytes());
    bytes.extend_from_slice(b"PAR1");
    bytes
}
