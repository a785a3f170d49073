//! Cost of the injection detectors on the values a span carries.
//!
//! `cargo bench -p tracewarden-detect --bench inject`
//!
//! - `benign_query`: a realistic search query string (percent-encoded, several
//!   parameters): the common case at 300k spans/s.
//! - `benign_path`: a plain URL path with nothing to decode (the allocation-free path).
//! - `attack_query`: a UNION-based SQL injection in one parameter.
//! - `attack_xss`: a double-encoded script tag.
//! - `user_agent`: a browser User-Agent header value.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_detect::inject::Detector;

fn inject(c: &mut Criterion) {
    let Ok(detector) = Detector::new() else {
        return;
    };
    let cases = [
        (
            "benign_query",
            "q=rock+%26+roll+hall+of+fame&category=music&sort=price_asc&page=2&per_page=50&lang=en-US",
        ),
        ("benign_path", "/api/v1/users/42/orders/1337/items"),
        (
            "attack_query",
            "id=-1%27%20UNION%20ALL%20SELECT%201,2,concat(user(),0x3a,version())--%20-&page=2",
        ),
        (
            "attack_xss",
            "q=%253Cscript%253Ealert(document.cookie)%253C%252Fscript%253E",
        ),
        (
            "user_agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        ),
    ];
    let mut group = c.benchmark_group("inject");
    let mut out = Vec::with_capacity(4);
    for (name, value) in cases {
        group.throughput(Throughput::Bytes(value.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                detector.detect_into(black_box(value), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, inject);
criterion_main!(benches);
