//! Numbering the distinct (resource, scope) pairs of a file's rows, for the
//! resources file.
//!
//! Rows of one OTLP export share their resource's `Arc`, but every export
//! decodes its own: a service that exports 50 spans at a time sends the
//! same resource 20,000 times per million spans. Pairs are told apart by
//! `Arc` identity first (cheap, and most rows repeat the previous row's),
//! then by value, so each distinct pair is stored once. Equal by value
//! means equal bit for bit: `-0.0` and `0.0` (or two NaNs of different
//! payloads) stay apart, so every row reads back exactly what it had.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;

use tracewarden_model::{AnyValue, KeyValue, Resource, Scope};

type Identity = (*const Resource, *const Scope);

/// The distinct pairs seen so far, numbered from 0 in order of appearance.
pub(super) struct Pairs<'a> {
    pairs: Vec<(&'a Resource, &'a Scope)>,
    by_identity: HashMap<Identity, u32>,
    /// Pair numbers by the hash of their value (collisions are compared).
    by_value: HashMap<u64, Vec<u32>>,
    last: Option<(Identity, u32)>,
}

impl<'a> Pairs<'a> {
    pub(super) fn new() -> Pairs<'a> {
        Pairs {
            pairs: Vec::new(),
            by_identity: HashMap::new(),
            by_value: HashMap::new(),
            last: None,
        }
    }

    /// The number of the pair, a new one if no earlier pair equals it.
    pub(super) fn number(&mut self, resource: &'a Arc<Resource>, scope: &'a Arc<Scope>) -> u32 {
        let identity = (Arc::as_ptr(resource), Arc::as_ptr(scope));
        if let Some((last, pair)) = self.last
            && last == identity
        {
            return pair;
        }
        let pair = match self.by_identity.get(&identity) {
            Some(pair) => *pair,
            None => {
                let pair = self.by_value(resource, scope);
                self.by_identity.insert(identity, pair);
                pair
            }
        };
        self.last = Some((identity, pair));
        pair
    }

    fn by_value(&mut self, resource: &'a Resource, scope: &'a Scope) -> u32 {
        let candidates = self.by_value.entry(pair_hash(resource, scope)).or_default();
        let found = candidates.iter().copied().find(|&pair| {
            self.pairs
                .get(pair as usize)
                .is_some_and(|(r, s)| same_resource(r, resource) && same_scope(s, scope))
        });
        if let Some(pair) = found {
            return pair;
        }
        // A file holds fewer than 2^32 rows (checked by the caller), so
        // fewer pairs.
        let pair = u32::try_from(self.pairs.len()).unwrap_or(u32::MAX);
        candidates.push(pair);
        self.pairs.push((resource, scope));
        pair
    }

    /// The pairs, in number order.
    pub(super) fn into_pairs(self) -> Vec<(&'a Resource, &'a Scope)> {
        self.pairs
    }
}

fn pair_hash(resource: &Resource, scope: &Scope) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash_attributes(&resource.attributes, &mut hasher);
    hash_attributes(&resource.original_attributes, &mut hasher);
    hasher.write_u32(resource.dropped_attributes_count);
    hash_str(&resource.schema_url, &mut hasher);
    hash_str(&scope.name, &mut hasher);
    hash_str(&scope.version, &mut hasher);
    hash_attributes(&scope.attributes, &mut hasher);
    hasher.write_u32(scope.dropped_attributes_count);
    hash_str(&scope.schema_url, &mut hasher);
    hasher.finish()
}

fn hash_str(text: &str, hasher: &mut impl Hasher) {
    hasher.write_usize(text.len());
    hasher.write(text.as_bytes());
}

fn hash_attributes(attributes: &[KeyValue], hasher: &mut impl Hasher) {
    hasher.write_usize(attributes.len());
    for kv in attributes {
        hash_str(&kv.key, hasher);
        hash_value(&kv.value, hasher);
    }
}

fn hash_value(value: &AnyValue, hasher: &mut impl Hasher) {
    match value {
        AnyValue::Empty => hasher.write_u8(0),
        AnyValue::Str(s) => {
            hasher.write_u8(1);
            hash_str(s, hasher);
        }
        AnyValue::Bool(b) => {
            hasher.write_u8(2);
            hasher.write_u8(u8::from(*b));
        }
        AnyValue::Int(i) => {
            hasher.write_u8(3);
            hasher.write_i64(*i);
        }
        AnyValue::Double(d) => {
            hasher.write_u8(4);
            hasher.write_u64(d.to_bits());
        }
        AnyValue::Bytes(bytes) => {
            hasher.write_u8(5);
            hasher.write_usize(bytes.len());
            hasher.write(bytes);
        }
        AnyValue::Array(items) => {
            hasher.write_u8(6);
            hasher.write_usize(items.len());
            for item in items {
                hash_value(item, hasher);
            }
        }
        AnyValue::KvList(kvs) => {
            hasher.write_u8(7);
            hash_attributes(kvs, hasher);
        }
    }
}

fn same_resource(a: &Resource, b: &Resource) -> bool {
    a.dropped_attributes_count == b.dropped_attributes_count
        && a.schema_url == b.schema_url
        && same_attributes(&a.attributes, &b.attributes)
        && same_attributes(&a.original_attributes, &b.original_attributes)
}

fn same_scope(a: &Scope, b: &Scope) -> bool {
    a.dropped_attributes_count == b.dropped_attributes_count
        && a.name == b.name
        && a.version == b.version
        && a.schema_url == b.schema_url
        && same_attributes(&a.attributes, &b.attributes)
}

fn same_attributes(a: &[KeyValue], b: &[KeyValue]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.key == b.key && same_value(&a.value, &b.value))
}

/// Equality bit for bit: doubles by their bits, not by `==`.
fn same_value(a: &AnyValue, b: &AnyValue) -> bool {
    match (a, b) {
        (AnyValue::Double(a), AnyValue::Double(b)) => a.to_bits() == b.to_bits(),
        (AnyValue::Array(a), AnyValue::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_value(a, b))
        }
        (AnyValue::KvList(a), AnyValue::KvList(b)) => same_attributes(a, b),
        (AnyValue::Double(_) | AnyValue::Array(_) | AnyValue::KvList(_), _) => false,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(value: AnyValue) -> Arc<Resource> {
        Arc::new(Resource {
            attributes: vec![
                KeyValue::new("service.name", "checkout"),
                KeyValue::new("nested", AnyValue::Array(vec![value])),
            ],
            ..Resource::default()
        })
    }

    #[test]
    fn equal_pairs_share_a_number_whatever_their_arc() {
        let scope = Arc::new(Scope::default());
        let other_scope = Arc::new(Scope {
            name: "http".into(),
            ..Scope::default()
        });
        let (a, b, c) = (
            resource(AnyValue::Int(1)),
            resource(AnyValue::Int(1)),
            resource(AnyValue::Int(2)),
        );
        let mut pairs = Pairs::new();
        assert_eq!(pairs.number(&a, &scope), 0);
        assert_eq!(pairs.number(&a, &scope), 0);
        assert_eq!(pairs.number(&b, &scope), 0, "equal by value");
        assert_eq!(pairs.number(&c, &scope), 1);
        assert_eq!(pairs.number(&a, &other_scope), 2, "another scope");
        assert_eq!(pairs.number(&b, &scope), 0);
        let stored = pairs.into_pairs();
        assert_eq!(stored.len(), 3);
        assert_eq!(*stored[1].0, *c);
        assert_eq!(stored[2].1.name, "http");
    }

    #[test]
    fn doubles_are_compared_by_their_bits() {
        let scope = Arc::new(Scope::default());
        let values = [
            AnyValue::Double(0.0),
            AnyValue::Double(-0.0),
            AnyValue::Double(f64::NAN),
            AnyValue::Double(f64::from_bits(f64::NAN.to_bits() ^ 1)),
        ];
        let resources: Vec<Arc<Resource>> = values.iter().cloned().map(resource).collect();
        let mut pairs = Pairs::new();
        let numbers: Vec<u32> = resources.iter().map(|r| pairs.number(r, &scope)).collect();
        assert_eq!(numbers, [0, 1, 2, 3]);
        // A NaN with the same bits is the same value here.
        let again = resource(AnyValue::Double(f64::NAN));
        assert_eq!(pairs.number(&again, &scope), 2);
    }
}
