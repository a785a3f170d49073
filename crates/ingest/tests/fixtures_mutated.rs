//! The fixtures, damaged: seeded random edits of every small OTLP/JSON and
//! Zipkin fixture (bytes deleted, inserted, replaced, duplicated, cut) must
//! decode or fail cleanly, never panic, and what decodes keeps the model's
//! invariants. A deterministic cousin of the fuzz targets
//! (fuzz/fuzz_targets/{otlp_json,zipkin}.rs) that runs with every test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tracewarden_ingest::otlp::json::{decode_logs, decode_traces};
use tracewarden_ingest::zipkin::decode_spans;
use tracewarden_ingest::{DecodeError, Decoded, Limits};

/// splitmix64, so every run tries the same edits.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that change JSON structure or id and number syntax.
const INTERESTING: &[u8] = b"{}[]\":,0123456789abcdefABCDEF-+.eE nulltrue\\\xff";

fn mutate(original: &[u8], seq: &mut Seq) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + seq.below(4) {
        let at = seq.below(bytes.len());
        match seq.below(5) {
            0 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, INTERESTING[seq.below(INTERESTING.len())]),
            2 if !bytes.is_empty() => bytes[at] = INTERESTING[seq.below(INTERESTING.len())],
            3 => {
                let end = (at + seq.below(64)).min(bytes.len());
                let slice = bytes[at..end].to_vec();
                bytes.splice(at..at, slice);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn check(result: Result<Decoded, DecodeError>, limits: &Limits, input: &[u8]) {
    let decoded = match result {
        Ok(decoded) => decoded,
        Err(DecodeError::Malformed { message, .. }) => {
            assert!(message.contains("line"), "{message}");
            return;
        }
        Err(other) => panic!("only Malformed is possible here, got {other}"),
    };
    let context = || String::from_utf8_lossy(input).into_owned();
    for (_, _, span) in decoded.batch.spans() {
        assert!(
            !span.trace_id.is_zero() && !span.span_id.is_zero(),
            "{}",
            context()
        );
        assert!(
            span.attributes.len() <= limits.max_attributes_per_record,
            "{}",
            context()
        );
        assert!(
            span.attributes
                .iter()
                .all(|kv| kv.value.depth() <= limits.max_value_depth)
        );
    }
    for (_, _, log) in decoded.batch.logs() {
        assert!((0..=24).contains(&log.severity_number), "{}", context());
    }
}

fn small_fixtures(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| std::fs::read(p).unwrap())
        .filter(|bytes| bytes.len() < 16 * 1024)
        .collect()
}

#[test]
fn mutated_otlp_json_fixtures_never_panic() {
    let limits = Limits::default();
    let mut seq = Seq(0x07_1a_50_4e);
    let mut fixtures = small_fixtures("otlp-json");
    fixtures.extend(small_fixtures("jaeger-otlp-json"));
    assert!(fixtures.len() >= 35);
    let mut decoded_ok = 0;
    for original in &fixtures {
        for _ in 0..150 {
            let input = mutate(original, &mut seq);
            let traces = decode_traces(&input, &limits);
            decoded_ok += usize::from(traces.is_ok());
            check(traces, &limits, &input);
            check(decode_logs(&input, &limits), &limits, &input);
        }
    }
    // Many edits land inside strings or ids and leave valid JSON: the
    // record-level paths get exercised, not only the parser's errors.
    assert!(decoded_ok > 500, "{decoded_ok}");
}

#[test]
fn mutated_zipkin_fixtures_never_panic() {
    let limits = Limits::default();
    let mut seq = Seq(0x21_9c_1e);
    let fixtures: Vec<Vec<u8>> = small_fixtures("zipkin-v2")
        .into_iter()
        .map(|bytes| {
            if bytes.first() == Some(&b'{') {
                [b"[".as_slice(), &bytes, b"]"].concat()
            } else {
                bytes
            }
        })
        .collect();
    assert!(fixtures.len() >= 10);
    let mut decoded_ok = 0;
    for original in &fixtures {
        for _ in 0..300 {
            let input = mutate(original, &mut seq);
            let result = decode_spans(&input, &limits);
            decoded_ok += usize::from(result.is_ok());
            check(result, &limits, &input);
        }
    }
    assert!(decoded_ok > 300, "{decoded_ok}");
}
