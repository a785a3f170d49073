//! Attribute values, as OpenTelemetry's `AnyValue`.

use serde::{Deserialize, Serialize};

/// Strings of the model. Keys and most values (methods, addresses, routes)
/// are under 24 bytes and live inline without a heap allocation.
pub type Str = compact_str::CompactString;

/// A value of an attribute, a log body or an array element.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum AnyValue {
    /// No value was set (OTLP allows an `AnyValue` with none of its fields).
    #[default]
    Empty,
    Str(Str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(#[serde(deserialize_with = "nested::array")] Vec<AnyValue>),
    KvList(#[serde(deserialize_with = "nested::kv_list")] Vec<KeyValue>),
}

/// Deepest nesting of arrays and key-value lists a deserializer builds.
///
/// Formats that are not self-describing (postcard: the WAL's payloads,
/// detection checkpoints) decode nested values recursively with no limit
/// of their own, so a record nested deeper, damaged or made by hand,
/// would overflow the stack of whoever reads it. Far above what ingest
/// admits (its `max_value_depth`, 16 by default) and what the store writes
/// (64).
pub const MAX_DESERIALIZE_DEPTH: usize = 128;

/// The depth guard of [`AnyValue`]'s deserialization: the arrays and lists
/// being built on this thread, counted across the recursion (serde passes
/// no context down), released on every exit, errors and panics included.
mod nested {
    use std::cell::Cell;

    use serde::{Deserialize, Deserializer, de::Error};

    use super::{AnyValue, KeyValue, MAX_DESERIALIZE_DEPTH};

    thread_local! {
        static DEPTH: Cell<usize> = const { Cell::new(0) };
    }

    struct Level;

    impl Level {
        fn enter<E: Error>() -> Result<Level, E> {
            DEPTH.with(|depth| {
                let now = depth.get();
                if now >= MAX_DESERIALIZE_DEPTH {
                    return Err(E::custom(format_args!(
                        "value nested deeper than {MAX_DESERIALIZE_DEPTH} arrays or lists"
                    )));
                }
                depth.set(now + 1);
                Ok(Level)
            })
        }
    }

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }

    pub(super) fn array<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AnyValue>, D::Error> {
        let _level = Level::enter()?;
        Vec::deserialize(d)
    }

    pub(super) fn kv_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyValue>, D::Error> {
        let _level = Level::enter()?;
        Vec::deserialize(d)
    }
}

impl AnyValue {
    /// The string, when this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AnyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is an integer value or a string holding one
    /// (Zipkin tags and some SDKs send numbers as strings).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AnyValue::Int(i) => Some(*i),
            AnyValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A display form used by text outputs: strings unquoted, others as JSON-like text.
    pub fn to_text(&self) -> String {
        match self {
            AnyValue::Empty => String::new(),
            AnyValue::Str(s) => s.to_string(),
            AnyValue::Bool(b) => b.to_string(),
            AnyValue::Int(i) => i.to_string(),
            AnyValue::Double(d) => d.to_string(),
            AnyValue::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            AnyValue::Array(items) => {
                let parts: Vec<String> = items.iter().map(AnyValue::to_text).collect();
                format!("[{}]", parts.join(", "))
            }
            AnyValue::KvList(kvs) => {
                let parts: Vec<String> = kvs
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, kv.value.to_text()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
        }
    }

    /// Nesting depth: 0 for a scalar, 1 for an array of scalars, and so on.
    pub fn depth(&self) -> usize {
        match self {
            AnyValue::Array(items) => 1 + items.iter().map(AnyValue::depth).max().unwrap_or(0),
            AnyValue::KvList(kvs) => 1 + kvs.iter().map(|kv| kv.value.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }
}

impl From<&str> for AnyValue {
    fn from(s: &str) -> Self {
        AnyValue::Str(Str::from(s))
    }
}

impl From<i64> for AnyValue {
    fn from(i: i64) -> Self {
        AnyValue::Int(i)
    }
}

impl From<bool> for AnyValue {
    fn from(b: bool) -> Self {
        AnyValue::Bool(b)
    }
}

/// One attribute: a key and its value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Str,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn new(key: impl Into<Str>, value: impl Into<AnyValue>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The value of the first attribute named `key`.
pub fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attribute_position(attributes, key)
        .and_then(|at| attributes.get(at))
        .map(|kv| &kv.value)
}

/// Where the first attribute named `key` is in `attributes`.
pub fn attribute_position(attributes: &[KeyValue], key: &str) -> Option<usize> {
    let key = key.as_bytes();
    let head = head_word(key);
    // Keys of one length often differ early (`session.id`, `enduser.id`,
    // `http.route`): comparing the first word inline leaves `memcmp` to
    // the hits, where detection's lookups spent most of their time.
    attributes.iter().position(|kv| {
        let candidate = kv.key.as_bytes();
        candidate.len() == key.len() && head_word(candidate) == head && candidate == key
    })
}

/// The first 8 bytes of `bytes` as a word, 0 when it is shorter.
#[inline]
fn head_word(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |word| u64::from_le_bytes(*word))
}
