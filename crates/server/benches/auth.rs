//! What the auth layer adds to each request: hashing the presented key,
//! finding it among the keys, and checking its role (`KeyRing::lookup` +
//! `Role::grants`), with 100 keys loaded.
//!
//! `cargo bench -p tracewarden-server --bench auth`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tracewarden_server::auth::keys::{KeyRing, hash_key};
use tracewarden_server::auth::{Access, KeyStore, Role};

fn auth(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut keys = Vec::new();
    for n in 0..100 {
        let role = if n % 2 == 0 {
            Role::Ingest
        } else {
            Role::Analyst
        };
        keys.push(store.create(&format!("key-{n}"), role).unwrap().0);
    }
    let ring = KeyRing::new(&store.load().unwrap());
    let ingest = keys[42].clone();
    let unknown = format!("twk_{}", "x".repeat(43));

    c.bench_function("sha256 of a key", |b| {
        b.iter(|| hash_key(black_box(&ingest)))
    });
    c.bench_function("lookup + role check, valid key", |b| {
        b.iter(|| match ring.lookup(black_box(&ingest)) {
            tracewarden_server::auth::keys::Lookup::Valid(info) => info.role.grants(Access::Ingest),
            _ => false,
        })
    });
    c.bench_function("lookup, unknown key", |b| {
        b.iter(|| ring.lookup(black_box(&unknown)))
    });
}

criterion_group!(benches, auth);
criterion_main!(benches);
