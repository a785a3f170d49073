//! A JSON scalar read without committing to its type.
//!
//! A field whose bad value should reject one record, not the whole request
//! (ids, times, enums, names), is read as a [`Scalar`] and checked while the
//! record is converted. With a typed field, `"traceId": 7` would make serde
//! fail the whole document; read as a `Scalar`, only that span is rejected
//! and the rest of its batch is kept. Shared with the Zipkin decoder.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Any JSON value, keeping strings (borrowed from the request when they hold
/// no escapes) and numbers; arrays and objects are skipped and only noted.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// `null`, or the field was absent (fields are `#[serde(default)]`).
    #[default]
    Null,
    Bool(bool),
    /// A negative integer; non-negative ones are `UInt`.
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl<'a> Scalar<'a> {
    /// The JSON type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// A string field: `null` is the empty string (proto3 default).
    pub(crate) fn string(&self, field: &str) -> Result<&str, String> {
        match self {
            Scalar::Null => Ok(""),
            Scalar::Str(s) => Ok(s),
            other => Err(format!(
                "{field} must be a string, not {}",
                other.type_name()
            )),
        }
    }

    /// Like [`Self::string`], but keeps the borrow from the request body.
    pub(crate) fn into_string(self, field: &str) -> Result<Cow<'a, str>, String> {
        match self {
            Scalar::Null => Ok(Cow::Borrowed("")),
            Scalar::Str(s) => Ok(s),
            other => Err(format!(
                "{field} must be a string, not {}",
                other.type_name()
            )),
        }
    }

    /// A boolean field: `null` is false.
    pub(crate) fn boolean(&self, field: &str) -> Result<bool, String> {
        match self {
            Scalar::Null => Ok(false),
            Scalar::Bool(b) => Ok(*b),
            other => Err(format!(
                "{field} must be a boolean, not {}",
                other.type_name()
            )),
        }
    }

    /// A uint64 / fixed64 field, as a JSON number or a decimal string
    /// (the protobuf JSON mapping writes 64-bit integers as strings, because
    /// JavaScript numbers lose precision past 2^53).
    pub(crate) fn uint64(&self, field: &str) -> Result<u64, String> {
        match self {
            Scalar::Null => Ok(0),
            Scalar::UInt(n) => Ok(*n),
            // The mapping accepts exponent notation when the value is integral.
            Scalar::Float(f)
                if f.fract() == 0.0 && *f >= 0.0 && *f < 18_446_744_073_709_551_616.0 =>
            {
                Ok(*f as u64)
            }
            Scalar::Str(s) => s
                .parse::<u64>()
                .map_err(|_| format!("{field} must be an unsigned integer, not `{}`", excerpt(s))),
            other => Err(format!(
                "{field} must be an unsigned integer, not {}",
                other.type_name()
            )),
        }
    }

    /// An int64 field, as a JSON number or a decimal string.
    pub(crate) fn int64(&self, field: &str) -> Result<i64, String> {
        match self {
            Scalar::Null => Ok(0),
            Scalar::Int(n) => Ok(*n),
            Scalar::UInt(n) => {
                i64::try_from(*n).map_err(|_| format!("{field} is out of the int64 range"))
            }
            Scalar::Float(f)
                if f.fract() == 0.0
                    && *f >= -9_223_372_036_854_775_808.0
                    && *f < 9_223_372_036_854_775_808.0 =>
            {
                Ok(*f as i64)
            }
            Scalar::Str(s) => s
                .parse::<i64>()
                .map_err(|_| format!("{field} must be an integer, not `{}`", excerpt(s))),
            other => Err(format!(
                "{field} must be an integer, not {}",
                other.type_name()
            )),
        }
    }

    /// A uint32 / fixed32 field (flags, dropped counts).
    pub(crate) fn uint32(&self, field: &str) -> Result<u32, String> {
        let n = self.uint64(field)?;
        u32::try_from(n).map_err(|_| format!("{field} is out of the uint32 range"))
    }

    /// A double field: a number, or a string holding one, including the
    /// mapping's `"NaN"`, `"Infinity"` and `"-Infinity"`.
    pub(crate) fn double(&self, field: &str) -> Result<f64, String> {
        match self {
            Scalar::Null => Ok(0.0),
            Scalar::Int(n) => Ok(*n as f64),
            Scalar::UInt(n) => Ok(*n as f64),
            Scalar::Float(f) => Ok(*f),
            Scalar::Str(s) => match s.as_ref() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                // Rust also reads "inf" and "nan": harmless leniency.
                text => text
                    .parse::<f64>()
                    .map_err(|_| format!("{field} must be a number, not `{}`", excerpt(text))),
            },
            other => Err(format!(
                "{field} must be a number, not {}",
                other.type_name()
            )),
        }
    }

    /// An enum field: its number, or its name in `names` (indexed by value,
    /// as OTLP's enums are dense from 0). `None` for a value OTLP does not
    /// define: the caller keeps the record with the default and warns.
    pub(crate) fn enumeration(&self, names: &[&str]) -> Option<i32> {
        match self {
            Scalar::Null => Some(0),
            Scalar::Int(n) => i32::try_from(*n).ok(),
            Scalar::UInt(n) => i32::try_from(*n).ok(),
            Scalar::Str(s) => match names.iter().position(|name| *name == s.as_ref()) {
                Some(i) => i32::try_from(i).ok(),
                None => s.parse::<i32>().ok(),
            },
            _ => None,
        }
    }

    /// A short rendering of the value for a warning message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Int(n) => n.to_string(),
            Scalar::UInt(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => format!("`{}`", excerpt(s)),
            other => other.type_name().to_string(),
        }
    }
}

/// At most 64 characters of hostile text go into a message.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Scalar::UInt(u),
            Err(_) => Scalar::Int(v),
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        // Skipped without allocating; serde_json's recursion limit bounds the depth.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Scalar<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        assert!(matches!(
            parse(r#""abc""#),
            Scalar::Str(Cow::Borrowed("abc"))
        ));
        assert!(matches!(parse(r#""a\"c""#), Scalar::Str(Cow::Owned(ref s)) if s == "a\"c"));
    }

    #[test]
    fn uint64_reads_numbers_strings_and_integral_exponents() {
        assert_eq!(
            parse("1544712660000000000").uint64("t"),
            Ok(1_544_712_660_000_000_000)
        );
        assert_eq!(parse(r#""18446744073709551615""#).uint64("t"), Ok(u64::MAX));
        assert_eq!(parse("1.5e3").uint64("t"), Ok(1500));
        assert!(parse("1.5").uint64("t").is_err());
        assert!(parse("-1").uint64("t").is_err());
        assert!(parse(r#""12x""#).uint64("t").unwrap_err().contains("`12x`"));
        assert!(parse("[1]").uint64("t").unwrap_err().contains("an array"));
        assert_eq!(Scalar::Null.uint64("t"), Ok(0));
    }

    #[test]
    fn int64_reads_negative_numbers_and_strings() {
        assert_eq!(parse("-42").int64("i"), Ok(-42));
        assert_eq!(parse(r#""-9223372036854775808""#).int64("i"), Ok(i64::MIN));
        assert!(parse("9223372036854775808").int64("i").is_err());
        assert!(parse("true").int64("i").unwrap_err().contains("a boolean"));
    }

    #[test]
    fn doubles_read_the_special_strings() {
        assert!(parse(r#""NaN""#).double("d").unwrap().is_nan());
        assert_eq!(parse(r#""Infinity""#).double("d"), Ok(f64::INFINITY));
        assert_eq!(parse(r#""-Infinity""#).double("d"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse(r#""2.5""#).double("d"), Ok(2.5));
        assert_eq!(parse("7").double("d"), Ok(7.0));
        assert!(parse(r#""seven""#).double("d").is_err());
    }

    #[test]
    fn enums_read_numbers_names_and_reject_unknowns() {
        let names = ["A_UNSPECIFIED", "A_ONE", "A_TWO"];
        assert_eq!(parse("2").enumeration(&names), Some(2));
        assert_eq!(parse(r#""A_ONE""#).enumeration(&names), Some(1));
        assert_eq!(parse(r#""2""#).enumeration(&names), Some(2));
        assert_eq!(parse(r#""A_NINE""#).enumeration(&names), None);
        assert_eq!(parse("4294967296").enumeration(&names), None);
        assert_eq!(parse("{}").enumeration(&names), None);
        assert_eq!(parse("null").enumeration(&names), Some(0));
    }

    #[test]
    fn compound_values_are_skipped() {
        assert_eq!(parse(r#"{"a":[1,{"b":2}]}"#), Scalar::Object);
        assert_eq!(parse("[[[]]]"), Scalar::Array);
    }
}
