//! `AnyValue`, `KeyValue` and attribute lists in the OTLP/JSON mapping,
//! converted into the model's types while they are parsed.
//!
//! Attributes are most of a span's bytes, so they skip the wire-struct step
//! the rest of the request takes: each value becomes an
//! [`AnyValue`] as soon as its JSON object ends, with no intermediate tree
//! to build, move and drop. A value that breaks the mapping (a
//! `stringValue` holding a number, bad base64, two members of the oneof) is
//! kept as an error message for the record holding it; the caller decides
//! whether that rejects a span or only drops a resource attribute.

use std::fmt;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::{Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tracewarden_model::{AnyValue, KeyValue, Str};

use super::scalar::Scalar;
use crate::Decoded;
use crate::decoded::MAX_MESSAGES;

/// Base64 as protobuf JSON parsers accept it: standard or URL-safe
/// alphabet, padded or not.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|e| format!("bytesValue is not base64: {e}"))
}

/// The members of `AnyValue`, by their JSON and proto names.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ValueField {
    #[serde(alias = "string_value")]
    StringValue,
    #[serde(alias = "bool_value")]
    BoolValue,
    #[serde(alias = "int_value")]
    IntValue,
    #[serde(alias = "double_value")]
    DoubleValue,
    #[serde(alias = "bytes_value")]
    BytesValue,
    #[serde(alias = "array_value")]
    ArrayValue,
    #[serde(alias = "kvlist_value")]
    KvlistValue,
    #[serde(other)]
    Unknown,
}

/// An `AnyValue` object, converted; `Err` says why it is invalid.
#[derive(Debug)]
pub(super) struct Value(pub Result<AnyValue, String>);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP AnyValue object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut value: Option<Result<AnyValue, String>> = None;
        let mut several = false;
        while let Some(field) = map.next_key::<ValueField>()? {
            // `None`: the member is null or absent, which means unset.
            let member = match field {
                ValueField::StringValue => scalar(map.next_value()?, |s| {
                    s.string("stringValue")
                        .map(|text| AnyValue::Str(Str::from(text)))
                }),
                ValueField::BoolValue => scalar(map.next_value()?, |s| {
                    s.boolean("boolValue").map(AnyValue::Bool)
                }),
                ValueField::IntValue => scalar(map.next_value()?, |s| {
                    s.int64("intValue").map(AnyValue::Int)
                }),
                ValueField::DoubleValue => scalar(map.next_value()?, |s| {
                    s.double("doubleValue").map(AnyValue::Double)
                }),
                ValueField::BytesValue => scalar(map.next_value()?, |s| {
                    s.string("bytesValue")
                        .and_then(decode_base64)
                        .map(AnyValue::Bytes)
                }),
                ValueField::ArrayValue => map
                    .next_value::<Option<Values<Value>>>()?
                    .map(|array| array.0.map(AnyValue::Array)),
                ValueField::KvlistValue => map
                    .next_value::<Option<Values<Attribute>>>()?
                    .map(|list| list.0.map(AnyValue::KvList)),
                ValueField::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
            };
            if let Some(member) = member {
                several |= value.is_some();
                value = Some(member);
            }
        }
        Ok(Value(if several {
            Err("an attribute value sets more than one of its oneof members".to_string())
        } else {
            // No member set: OTLP allows it (an empty value).
            value.unwrap_or(Ok(AnyValue::Empty))
        }))
    }
}

fn scalar(
    raw: Scalar<'_>,
    convert: impl FnOnce(&Scalar<'_>) -> Result<AnyValue, String>,
) -> Option<Result<AnyValue, String>> {
    if raw.is_null() {
        None
    } else {
        Some(convert(&raw))
    }
}

/// `ArrayValue` and `KeyValueList`: `{"values": [...]}`, converted; the
/// first invalid element makes the whole list invalid.
struct Values<T: Element>(Result<Vec<T::Item>, String>);

/// What a `values` list holds: `AnyValue`s or `KeyValue`s.
trait Element: for<'de> Deserialize<'de> {
    type Item;
    fn into_result(self) -> Result<Self::Item, String>;
}

impl Element for Value {
    type Item = AnyValue;
    fn into_result(self) -> Result<AnyValue, String> {
        self.0
    }
}

impl Element for Attribute {
    type Item = KeyValue;
    fn into_result(self) -> Result<KeyValue, String> {
        self.0
    }
}

impl<'de, T: Element> Deserialize<'de> for Values<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ValuesVisitor(std::marker::PhantomData))
    }
}

struct ValuesVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Element> Visitor<'de> for ValuesVisitor<T> {
    type Value = Values<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object {"values": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values<T>, A::Error> {
        let mut values = None;
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            if key == Scalar::Str("values".into()) {
                if values.is_some() {
                    return Err(A::Error::duplicate_field("values"));
                }
                values = Some(map.next_value::<ElementList<T>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Values(values.unwrap_or_else(|| Ok(Vec::new()))))
    }
}

/// A JSON array of objects (`null`: empty), converted element by element.
struct ElementList<T: Element>(Result<Vec<T::Item>, String>);

impl<'de, T: Element> Deserialize<'de> for ElementList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(ElementListVisitor(std::marker::PhantomData))
    }
}

struct ElementListVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Element> Visitor<'de> for ElementListVisitor<T> {
    type Value = ElementList<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_none<E>(self) -> Result<ElementList<T>, E> {
        Ok(ElementList(Ok(Vec::new())))
    }

    fn visit_unit<E>(self) -> Result<ElementList<T>, E> {
        Ok(ElementList(Ok(Vec::new())))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<ElementList<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ElementList<T>, A::Error> {
        let mut items = Vec::new();
        let mut problem = None;
        // After a bad element the rest is still parsed (the request must be
        // valid JSON) but no longer kept.
        while let Some(element) = seq.next_element::<T>()? {
            match element.into_result() {
                Ok(item) if problem.is_none() => items.push(item),
                Ok(_) => {}
                Err(why) => {
                    problem.get_or_insert(why);
                }
            }
        }
        Ok(ElementList(match problem {
            Some(why) => Err(why),
            None => Ok(items),
        }))
    }
}

/// One `KeyValue` object, converted; `Err` says why it is invalid.
#[derive(Debug)]
pub(super) struct Attribute(pub Result<KeyValue, String>);

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AttributeVisitor)
    }
}

struct AttributeVisitor;

impl<'de> Visitor<'de> for AttributeVisitor {
    type Value = Attribute;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP KeyValue object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attribute, A::Error> {
        let mut key: Option<Scalar<'de>> = None;
        let mut value: Option<Option<Value>> = None;
        while let Some(field) = map.next_key::<Scalar<'de>>()? {
            match field.string("").unwrap_or("") {
                "key" if key.is_some() => return Err(A::Error::duplicate_field("key")),
                "key" => key = Some(map.next_value()?),
                "value" if value.is_some() => return Err(A::Error::duplicate_field("value")),
                "value" => value = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let key = match key.unwrap_or_default().string("attribute key") {
            Ok(key) => Str::from(key),
            Err(why) => return Ok(Attribute(Err(why))),
        };
        let value = match value.flatten() {
            Some(Value(Ok(value))) => value,
            Some(Value(Err(why))) => {
                return Ok(Attribute(Err(format!("attribute `{key}`: {why}"))));
            }
            None => AnyValue::Empty,
        };
        Ok(Attribute(Ok(KeyValue { key, value })))
    }
}

/// The `attributes` of a span, event, link, log record, resource or scope:
/// the valid ones, and what was wrong with the others.
#[derive(Debug, Default)]
pub(super) struct Attributes {
    pub valid: Vec<KeyValue>,
    /// How many attributes were invalid.
    pub invalid: u32,
    /// Why, for the first few (the rest repeat the last reason).
    pub problems: Vec<String>,
}

impl Attributes {
    /// For a record: one bad attribute rejects it.
    pub(super) fn into_record(self) -> Result<Vec<KeyValue>, String> {
        match self.problems.into_iter().next() {
            Some(why) => Err(why),
            None => Ok(self.valid),
        }
    }

    /// For a resource or scope: bad attributes are dropped, counted in
    /// `dropped` and warned about, because rejecting a resource would lose
    /// every record under it.
    pub(super) fn into_lenient(
        self,
        whose: &str,
        dropped: &mut u32,
        decoded: &mut Decoded,
    ) -> Vec<KeyValue> {
        *dropped = dropped.saturating_add(self.invalid);
        for i in 0..self.invalid as usize {
            if let Some(why) = self.problems.get(i).or(self.problems.last()) {
                decoded.warn(format!("{whose} attribute dropped: {why}"));
            }
        }
        self.valid
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(AttributesVisitor)
    }
}

struct AttributesVisitor;

impl<'de> Visitor<'de> for AttributesVisitor {
    type Value = Attributes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of OTLP KeyValue objects")
    }

    fn visit_none<E>(self) -> Result<Attributes, E> {
        Ok(Attributes::default())
    }

    fn visit_unit<E>(self) -> Result<Attributes, E> {
        Ok(Attributes::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Attributes, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attributes, A::Error> {
        let mut attributes = Attributes::default();
        while let Some(Attribute(attribute)) = seq.next_element()? {
            match attribute {
                Ok(kv) => attributes.valid.push(kv),
                Err(why) => {
                    attributes.invalid = attributes.invalid.saturating_add(1);
                    if attributes.problems.len() < MAX_MESSAGES {
                        attributes.problems.push(why);
                    }
                }
            }
        }
        Ok(attributes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn value(json: &str) -> Result<AnyValue, String> {
        serde_json::from_str::<Value>(json).unwrap().0
    }

    fn attributes(json: &str) -> Attributes {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn scalars_map_to_their_variants() {
        assert_eq!(value(r#"{"stringValue":"x"}"#), Ok(AnyValue::from("x")));
        assert_eq!(value(r#"{"boolValue":true}"#), Ok(AnyValue::Bool(true)));
        assert_eq!(value(r#"{"intValue":"-10"}"#), Ok(AnyValue::Int(-10)));
        assert_eq!(value(r#"{"intValue":10}"#), Ok(AnyValue::Int(10)));
        assert_eq!(
            value(r#"{"doubleValue":637.704}"#),
            Ok(AnyValue::Double(637.704))
        );
        assert_eq!(
            value(r#"{"bytesValue":"AAAwOQ=="}"#),
            Ok(AnyValue::Bytes(vec![0, 0, 0x30, 0x39]))
        );
        assert_eq!(value(r#"{}"#), Ok(AnyValue::Empty));
        assert_eq!(value(r#"{"stringValue":null}"#), Ok(AnyValue::Empty));
        assert_eq!(
            value(r#"{"arrayValue":null,"boolValue":false}"#),
            Ok(AnyValue::Bool(false))
        );
    }

    #[test]
    fn snake_case_members_are_read() {
        assert_eq!(value(r#"{"string_value":"x"}"#), Ok(AnyValue::from("x")));
        assert_eq!(value(r#"{"int_value":"7"}"#), Ok(AnyValue::Int(7)));
        assert_eq!(
            value(r#"{"kvlist_value":{"values":[{"key":"k","value":{"bool_value":false}}]}}"#),
            Ok(AnyValue::KvList(vec![KeyValue::new("k", false)]))
        );
    }

    #[test]
    fn base64_accepts_both_alphabets_with_or_without_padding() {
        assert_eq!(decode_base64("AAAwOQ"), Ok(vec![0, 0, 0x30, 0x39]));
        assert_eq!(decode_base64("-_8="), Ok(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("+/8="), Ok(vec![0xfb, 0xff]));
        assert!(
            decode_base64("not base64!")
                .unwrap_err()
                .contains("not base64")
        );
    }

    #[test]
    fn nested_values_convert_and_errors_name_the_attribute() {
        let nested = r#"{"arrayValue":{"values":[{"stringValue":"a"},{"arrayValue":{"values":[{"intValue":1}]}}]}}"#;
        assert_eq!(
            value(nested),
            Ok(AnyValue::Array(vec![
                AnyValue::from("a"),
                AnyValue::Array(vec![AnyValue::Int(1)])
            ]))
        );
        let bad =
            r#"{"kvlistValue":{"values":[{"key":"inner","value":{"intValue":"x"}},{"key":"ok"}]}}"#;
        let err = value(bad).unwrap_err();
        assert!(
            err.contains("attribute `inner`") && err.contains("intValue"),
            "{err}"
        );
        assert_eq!(
            value(r#"{"arrayValue":{}}"#),
            Ok(AnyValue::Array(Vec::new()))
        );
        assert_eq!(
            value(r#"{"arrayValue":{"values":null}}"#),
            Ok(AnyValue::Array(Vec::new()))
        );
    }

    #[test]
    fn two_oneof_members_are_an_error() {
        assert!(
            value(r#"{"stringValue":"a","intValue":1}"#)
                .unwrap_err()
                .contains("more than one")
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(
            value(r#"{"stringValue":5}"#)
                .unwrap_err()
                .contains("stringValue must be a string")
        );
        assert!(
            value(r#"{"boolValue":"yes"}"#)
                .unwrap_err()
                .contains("boolValue")
        );
        assert!(
            serde_json::from_str::<Value>("[]").is_err(),
            "an AnyValue is an object"
        );
        assert!(serde_json::from_str::<Value>(r#"{"arrayValue":{"values":[5]}}"#).is_err());
        assert!(
            serde_json::from_str::<Value>(r#"{"arrayValue":{"values":[],"values":[]}}"#).is_err()
        );
    }

    #[test]
    fn attribute_lists_keep_the_valid_and_count_the_invalid() {
        let list = attributes(
            r#"[{"key":"ok","value":{"stringValue":"v"}},{"key":"bad","value":{"bytesValue":"!"}},{"key":7},{"key":"empty"}]"#,
        );
        assert_eq!(
            list.valid,
            vec![
                KeyValue::new("ok", "v"),
                KeyValue::new("empty", AnyValue::Empty)
            ]
        );
        assert_eq!(list.invalid, 2);
        assert!(list.problems[0].starts_with("attribute `bad`: bytesValue is not base64"));
        assert_eq!(
            list.problems[1],
            "attribute key must be a string, not a number"
        );
        assert!(attributes("null").valid.is_empty());
        assert!(serde_json::from_str::<Attributes>(r#"[{"key":"a","key":"b"}]"#).is_err());
    }

    #[test]
    fn lenient_attributes_drop_and_count_bad_ones() {
        let list = attributes(
            r#"[{"key":"ok","value":{"stringValue":"v"}},{"key":"bad","value":{"bytesValue":"!"}}]"#,
        );
        let mut dropped = 0;
        let mut decoded = Decoded::default();
        let kvs = list.into_lenient("resource", &mut dropped, &mut decoded);
        assert_eq!(kvs, vec![KeyValue::new("ok", "v")]);
        assert_eq!(dropped, 1);
        assert_eq!(decoded.warnings, 1);
        assert!(decoded.messages()[0].contains("resource attribute dropped: attribute `bad`"));
    }

    #[test]
    fn record_attributes_are_rejected_by_their_first_problem() {
        let list = attributes(
            r#"[{"key":"a","value":{"intValue":"x"}},{"key":"b","value":{"intValue":"y"}}]"#,
        );
        let err = list.into_record().unwrap_err();
        assert!(err.starts_with("attribute `a`"), "{err}");
    }
}
