//! JSON shapes the protobuf mapping requires, shared with the Zipkin decoder.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array (the
//! fields by position). Neither the protobuf JSON mapping nor Zipkin allows
//! that, so every message is read through [`object`], which accepts only a
//! JSON object, and lists through [`list`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A message that must be a JSON object.
#[derive(Debug, Default)]
pub(crate) struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// Reads a whole document that must be a JSON object.
pub(crate) fn object_from_slice<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    serde_json::from_slice::<Object<T>>(body).map(|o| o.0)
}

/// Reads a whole document that must be a JSON array of objects (`null` is
/// not an array here).
pub(crate) fn list_from_slice<'a, T: Deserialize<'a>>(
    body: &'a [u8],
) -> serde_json::Result<Vec<T>> {
    serde_json::from_slice::<List<T>>(body).map(|l| l.0)
}

struct List<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_seq(ListVisitor(PhantomData))
            .map(List)
    }
}

/// For `#[serde(deserialize_with)]` on an optional message: `null` or absent is `None`.
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|o| o.0))
}

/// For `#[serde(deserialize_with)]` on a repeated message: an array of
/// objects; `null` is empty (a null element is not allowed).
pub(crate) fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(ListVisitor(PhantomData))
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of JSON objects")
    }

    fn visit_none<E>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        // Capped: a hostile size hint must not reserve memory the body does not back.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Object(item)) = seq.next_element::<Object<T>>()? {
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Message {
        a: u32,
        #[serde(deserialize_with = "list")]
        items: Vec<Message>,
        #[serde(deserialize_with = "object")]
        inner: Option<Box<Message>>,
    }

    #[test]
    fn objects_are_accepted_and_arrays_are_not() {
        let m: Message =
            object_from_slice(br#"{"a":1,"items":[{"a":2}],"inner":{"a":3}}"#).unwrap();
        assert_eq!(m.items[0].a, 2);
        assert_eq!(m.inner.unwrap().a, 3);
        let err = object_from_slice::<Message>(b"[1]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
        assert!(object_from_slice::<Message>(br#"{"items":[[1]]}"#).is_err());
        assert!(object_from_slice::<Message>(br#"{"inner":[1]}"#).is_err());
        assert!(object_from_slice::<Message>(br#"{"items":[null]}"#).is_err());
    }

    #[test]
    fn top_level_lists_must_be_arrays_of_objects() {
        assert_eq!(
            list_from_slice::<Message>(br#"[{"a":1},{}]"#)
                .unwrap()
                .len(),
            2
        );
        for body in [&b"null"[..], b"{}", b"[[]]", b"[null]", b"\"x\""] {
            assert!(
                list_from_slice::<Message>(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn null_lists_and_messages_are_empty() {
        let m: Message = object_from_slice(br#"{"items":null,"inner":null}"#).unwrap();
        assert_eq!(m, Message::default());
    }
}
