//! Attribute lists and values in Arrow columns, and the OTLP/JSON text of
//! arrays and key-value lists.
//!
//! An attribute is a `{key, str, int, double, bool, bytes, json}` struct with
//! exactly one value field set; an empty value ([`AnyValue::Empty`]) has none.
//! Arrays and key-value lists go into `json` as their OTLP/JSON `AnyValue`
//! (`{"arrayValue":{"values":[{"intValue":"1"}]}}`), which other engines can
//! query with their JSON functions. The text is written and parsed here, not
//! with serde_json, so that doubles round-trip bit for bit and nesting is
//! bounded on read.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
    StructArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, Field, Fields};
use tracewarden_model::{AnyValue, KeyValue, Str};

use super::schema::{ELEMENT, attribute_fields, value_fields};

/// Deepest [`AnyValue`] nesting a segment stores (an array of scalars is 1).
/// The ingest limit (`max_value_depth`, 16 by default) is far below; the
/// bound keeps the recursive JSON reader's stack small on a hostile file.
pub(crate) const MAX_VALUE_DEPTH: usize = 128;

/// JSON containers per `AnyValue` level: `{"arrayValue":{"values":[{...`.
const MAX_JSON_DEPTH: usize = 3 * MAX_VALUE_DEPTH + 4;

/// Why stored data could not be read back.
pub(crate) type Malformed = String;

// ---------------------------------------------------------------- writing

/// Builds the value fields (`str` .. `json`) of attributes or log bodies.
pub(crate) struct ValueBuilder {
    str: StringBuilder,
    int: Int64Builder,
    double: Float64Builder,
    bool: BooleanBuilder,
    bytes: BinaryBuilder,
    json: StringBuilder,
    scratch: String,
}

impl ValueBuilder {
    pub fn with_capacity(values: usize) -> ValueBuilder {
        ValueBuilder {
            str: StringBuilder::with_capacity(values, values * 16),
            int: Int64Builder::with_capacity(values),
            double: Float64Builder::with_capacity(values),
            bool: BooleanBuilder::with_capacity(values),
            bytes: BinaryBuilder::with_capacity(values, 0),
            json: StringBuilder::with_capacity(values, 0),
            scratch: String::new(),
        }
    }

    pub fn append(&mut self, value: &AnyValue) {
        let set = match value {
            AnyValue::Empty => 0,
            AnyValue::Str(_) => 1,
            AnyValue::Int(_) => 2,
            AnyValue::Double(_) => 3,
            AnyValue::Bool(_) => 4,
            AnyValue::Bytes(_) => 5,
            AnyValue::Array(_) | AnyValue::KvList(_) => 6,
        };
        match value {
            AnyValue::Str(s) => self.str.append_value(s),
            _ => self.str.append_null(),
        }
        match value {
            AnyValue::Int(i) => self.int.append_value(*i),
            _ => self.int.append_null(),
        }
        match value {
            AnyValue::Double(d) => self.double.append_value(*d),
            _ => self.double.append_null(),
        }
        match value {
            AnyValue::Bool(b) => self.bool.append_value(*b),
            _ => self.bool.append_null(),
        }
        match value {
            AnyValue::Bytes(b) => self.bytes.append_value(b),
            _ => self.bytes.append_null(),
        }
        if set == 6 {
            self.scratch.clear();
            write_json(value, &mut self.scratch);
            self.json.append_value(&self.scratch);
        } else {
            self.json.append_null();
        }
    }

    pub fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.str.finish()),
            Arc::new(self.int.finish()),
            Arc::new(self.double.finish()),
            Arc::new(self.bool.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.json.finish()),
        ]
    }

    /// The log body: a struct of the value fields.
    pub fn finish_struct(&mut self) -> Result<StructArray, ArrowError> {
        StructArray::try_new(Fields::from(value_fields()), self.finish(), None)
    }
}

/// Builds a `List<Struct<key, str, int, double, bool, bytes, json>>` column.
pub(crate) struct AttributeListBuilder {
    offsets: Vec<i32>,
    entries: usize,
    key: StringBuilder,
    values: ValueBuilder,
}

impl AttributeListBuilder {
    pub fn with_capacity(rows: usize, entries: usize) -> AttributeListBuilder {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        AttributeListBuilder {
            offsets,
            entries: 0,
            key: StringBuilder::with_capacity(entries, entries * 16),
            values: ValueBuilder::with_capacity(entries),
        }
    }

    /// Appends one row: a list of these attributes.
    pub fn append<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = &'a KeyValue>,
    ) -> Result<(), ArrowError> {
        for kv in attributes {
            self.key.append_value(&kv.key);
            self.values.append(&kv.value);
            self.entries += 1;
        }
        self.offsets.push(offset(self.entries)?);
        Ok(())
    }

    pub fn finish(&mut self) -> Result<ListArray, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.key.finish())];
        columns.extend(self.values.finish());
        let entries = StructArray::try_new(attribute_fields(), columns, None)?;
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        self.entries = 0;
        list_array(attribute_fields(), offsets, Arc::new(entries))
    }
}

/// A list offset, refused past `i32::MAX` rather than wrapped.
pub(crate) fn offset(n: usize) -> Result<i32, ArrowError> {
    i32::try_from(n).map_err(|_| {
        ArrowError::InvalidArgumentError(format!("{n} list entries overflow a row group"))
    })
}

/// A non-null list of non-null structs with these offsets.
pub(crate) fn list_array(
    fields: Fields,
    offsets: Vec<i32>,
    values: ArrayRef,
) -> Result<ListArray, ArrowError> {
    let field = Arc::new(Field::new(
        ELEMENT,
        arrow_schema::DataType::Struct(fields),
        false,
    ));
    let offsets = OffsetBuffer::new(offsets.into());
    ListArray::try_new(field, offsets, values, None)
}

// ---------------------------------------------------------------- reading
//
// A reader may leave out leaf columns that hold no value in the row groups
// it reads (`metadata_keys::EMPTY_LEAVES`): a missing list column is empty
// on every row, a missing field null on every entry.

pub(crate) fn downcast<'a, T: 'static>(
    array: &'a dyn Array,
    what: &str,
) -> Result<&'a T, Malformed> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column `{what}` has type {}", array.data_type()))
}

/// A struct's field by name, typed; `None` when it was not read.
pub(crate) fn field<'a, T: 'static>(
    array: &'a StructArray,
    name: &str,
) -> Result<Option<&'a T>, Malformed> {
    array
        .column_by_name(name)
        .map(|column| downcast(column.as_ref(), name))
        .transpose()
}

/// A struct's field that every entry has.
pub(crate) fn required_field<'a, T: 'static>(
    array: &'a StructArray,
    name: &str,
) -> Result<&'a T, Malformed> {
    field(array, name)?.ok_or_else(|| format!("field `{name}` is missing"))
}

/// The value fields of attributes or of log bodies, typed.
pub(crate) struct ValueColumns<'a> {
    str: Option<&'a StringArray>,
    int: Option<&'a Int64Array>,
    double: Option<&'a Float64Array>,
    bool: Option<&'a BooleanArray>,
    bytes: Option<&'a BinaryArray>,
    json: Option<&'a StringArray>,
    len: usize,
}

impl<'a> ValueColumns<'a> {
    /// The value fields of `array` (those read).
    pub fn new(array: &'a StructArray) -> Result<ValueColumns<'a>, Malformed> {
        Ok(ValueColumns {
            str: field(array, "str")?,
            int: field(array, "int")?,
            double: field(array, "double")?,
            bool: field(array, "bool")?,
            bytes: field(array, "bytes")?,
            json: field(array, "json")?,
            len: array.len(),
        })
    }

    /// The value at `i`: the first field set, or empty when none is.
    pub fn value(&self, i: usize) -> Result<AnyValue, Malformed> {
        if i >= self.len {
            return Err(format!("value {i} is past the end ({})", self.len));
        }
        // Every field of a struct has the struct's length: `i` is in range.
        Ok(if let Some(a) = self.str.filter(|a| a.is_valid(i)) {
            AnyValue::Str(Str::from(a.value(i)))
        } else if let Some(a) = self.int.filter(|a| a.is_valid(i)) {
            AnyValue::Int(a.value(i))
        } else if let Some(a) = self.double.filter(|a| a.is_valid(i)) {
            AnyValue::Double(a.value(i))
        } else if let Some(a) = self.bool.filter(|a| a.is_valid(i)) {
            AnyValue::Bool(a.value(i))
        } else if let Some(a) = self.bytes.filter(|a| a.is_valid(i)) {
            AnyValue::Bytes(a.value(i).to_vec())
        } else if let Some(a) = self.json.filter(|a| a.is_valid(i)) {
            parse_json(a.value(i))?
        } else {
            AnyValue::Empty
        })
    }

    /// Whether the value at `i` equals `expected`, without building it for
    /// strings and integers (resources repeat on every row; see
    /// [`AttributeColumns::equals`]).
    fn value_equals(&self, i: usize, expected: &AnyValue) -> bool {
        if i >= self.len {
            return false;
        }
        let set = |column: Option<&dyn Array>| column.is_some_and(|a| a.is_valid(i));
        match expected {
            AnyValue::Str(s) => self
                .str
                .filter(|a| a.is_valid(i))
                .is_some_and(|a| a.value(i) == s.as_str()),
            AnyValue::Int(n) => {
                !set(self.str.map(|a| a as &dyn Array))
                    && self
                        .int
                        .filter(|a| a.is_valid(i))
                        .is_some_and(|a| a.value(i) == *n)
            }
            _ => self.value(i).is_ok_and(|v| v == *expected),
        }
    }
}

/// An attribute list column, typed.
struct AttributeList<'a> {
    list: &'a ListArray,
    key: &'a StringArray,
    values: ValueColumns<'a>,
}

/// An attribute list column, typed; empty on every row when it was not read.
pub(crate) struct AttributeColumns<'a>(Option<AttributeList<'a>>);

impl<'a> AttributeColumns<'a> {
    pub fn new(
        array: Option<&'a dyn Array>,
        what: &str,
    ) -> Result<AttributeColumns<'a>, Malformed> {
        let Some(array) = array else {
            return Ok(AttributeColumns(None));
        };
        let list: &ListArray = downcast(array, what)?;
        let entries: &StructArray = downcast(list.values().as_ref(), what)?;
        Ok(AttributeColumns(Some(AttributeList {
            list,
            key: required_field(entries, "key")?,
            values: ValueColumns::new(entries)?,
        })))
    }

    pub fn push_row(&self, row: usize, out: &mut Vec<KeyValue>) -> Result<(), Malformed> {
        let Some(columns) = &self.0 else {
            return Ok(());
        };
        let range = list_range(columns.list, row, columns.key.len())?;
        out.reserve(range.len());
        for i in range {
            out.push(KeyValue {
                key: Str::from(columns.key.value(i)),
                value: columns.values.value(i)?,
            });
        }
        Ok(())
    }

    pub fn row(&self, row: usize) -> Result<Vec<KeyValue>, Malformed> {
        let mut out = Vec::new();
        self.push_row(row, &mut out)?;
        Ok(out)
    }

    /// Whether row `row` holds exactly `expected`.
    pub fn equals(&self, row: usize, expected: &[KeyValue]) -> bool {
        let Some(columns) = &self.0 else {
            return expected.is_empty();
        };
        let Ok(range) = list_range(columns.list, row, columns.key.len()) else {
            return false;
        };
        range.len() == expected.len()
            && range.zip(expected).all(|(i, kv)| {
                columns.key.value(i) == kv.key.as_str() && columns.values.value_equals(i, &kv.value)
            })
    }
}

/// The child range of list row `row`, checked to lie within `children`.
pub(crate) fn list_range(
    list: &ListArray,
    row: usize,
    children: usize,
) -> Result<Range<usize>, Malformed> {
    let offsets = list.value_offsets();
    let (Some(&start), Some(&end)) = (offsets.get(row), offsets.get(row + 1)) else {
        return Err(format!("list row {row} is past the end ({})", list.len()));
    };
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err(format!("list row {row} has negative offsets"));
    };
    if start > end || end > children {
        return Err(format!(
            "list row {row} spans {start}..{end} of {children} entries"
        ));
    }
    Ok(start..end)
}

// ---------------------------------------------------------------- OTLP/JSON

/// Appends the OTLP/JSON form of `value` to `out`.
pub(crate) fn write_json(value: &AnyValue, out: &mut String) {
    match value {
        AnyValue::Empty => out.push_str("{}"),
        AnyValue::Str(s) => {
            out.push_str(r#"{"stringValue":"#);
            write_json_string(s, out);
            out.push('}');
        }
        AnyValue::Bool(b) => {
            let _ = write!(out, r#"{{"boolValue":{b}}}"#);
        }
        // int64 is a string in the protobuf JSON mapping.
        AnyValue::Int(i) => {
            let _ = write!(out, r#"{{"intValue":"{i}"}}"#);
        }
        AnyValue::Double(d) => {
            if d.is_nan() {
                out.push_str(r#"{"doubleValue":"NaN"}"#);
            } else if d.is_infinite() {
                let sign = if *d < 0.0 { "-" } else { "" };
                let _ = write!(out, r#"{{"doubleValue":"{sign}Infinity"}}"#);
            } else {
                // Debug is the shortest text that parses back to the same
                // bits, with an exponent for large and small magnitudes.
                let _ = write!(out, r#"{{"doubleValue":{d:?}}}"#);
            }
        }
        AnyValue::Bytes(b) => {
            out.push_str(r#"{"bytesValue":""#);
            base64_encode(b, out);
            out.push_str("\"}");
        }
        AnyValue::Array(items) => {
            out.push_str(r#"{"arrayValue":{"values":["#);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push_str("]}}");
        }
        AnyValue::KvList(kvs) => {
            out.push_str(r#"{"kvlistValue":{"values":["#);
            for (i, kv) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"key":"#);
                write_json_string(&kv.key, out);
                out.push_str(r#","value":"#);
                write_json(&kv.value, out);
                out.push('}');
            }
            out.push_str("]}}");
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A parsed JSON value; numbers keep their text, so they parse exactly.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Reads the OTLP/JSON form of an `AnyValue`.
pub(crate) fn parse_json(text: &str) -> Result<AnyValue, Malformed> {
    let mut parser = JsonParser { text, pos: 0 };
    let json = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != text.len() {
        return Err(parser.error("trailing characters"));
    }
    json_any_value(json)
}

fn json_any_value(json: Json) -> Result<AnyValue, Malformed> {
    let Json::Object(mut fields) = json else {
        return Err("an AnyValue must be a JSON object".to_string());
    };
    let Some((kind, value)) = fields.pop() else {
        return Ok(AnyValue::Empty);
    };
    if !fields.is_empty() {
        return Err("an AnyValue has more than one field".to_string());
    }
    Ok(match (kind.as_str(), value) {
        ("stringValue", Json::String(s)) => AnyValue::Str(Str::from(s)),
        ("boolValue", Json::Bool(b)) => AnyValue::Bool(b),
        ("intValue", Json::String(n) | Json::Number(n)) => AnyValue::Int(
            n.parse()
                .map_err(|_| format!("intValue `{n}` is not an int64"))?,
        ),
        ("doubleValue", Json::Number(n)) => AnyValue::Double(parse_double(&n)?),
        ("doubleValue", Json::String(s)) => AnyValue::Double(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => parse_double(other)?,
        }),
        ("bytesValue", Json::String(s)) => AnyValue::Bytes(base64_decode(&s)?),
        ("arrayValue", Json::Object(fields)) => {
            let items = values_of(fields, "arrayValue")?;
            AnyValue::Array(
                items
                    .into_iter()
                    .map(json_any_value)
                    .collect::<Result<_, _>>()?,
            )
        }
        ("kvlistValue", Json::Object(fields)) => {
            let items = values_of(fields, "kvlistValue")?;
            let mut kvs = Vec::with_capacity(items.len());
            for item in items {
                let Json::Object(fields) = item else {
                    return Err("a kvlistValue entry must be an object".to_string());
                };
                let (mut key, mut value) = (None, AnyValue::Empty);
                for (name, json) in fields {
                    match (name.as_str(), json) {
                        ("key", Json::String(k)) => key = Some(k),
                        ("value", json) => value = json_any_value(json)?,
                        (other, _) => return Err(format!("unexpected kvlist field `{other}`")),
                    }
                }
                let key = key.ok_or("a kvlistValue entry has no key")?;
                kvs.push(KeyValue {
                    key: Str::from(key),
                    value,
                });
            }
            AnyValue::KvList(kvs)
        }
        (kind, _) => return Err(format!("unexpected AnyValue field `{kind}`")),
    })
}

/// The `values` array of an `arrayValue` or `kvlistValue` (absent = empty).
fn values_of(fields: Vec<(String, Json)>, what: &str) -> Result<Vec<Json>, Malformed> {
    let mut values = Vec::new();
    for (name, json) in fields {
        match (name.as_str(), json) {
            ("values", Json::Array(items)) => values = items,
            ("values", Json::Null) => {}
            (other, _) => return Err(format!("unexpected {what} field `{other}`")),
        }
    }
    Ok(values)
}

fn parse_double(text: &str) -> Result<f64, Malformed> {
    text.parse()
        .map_err(|_| format!("doubleValue `{text}` is not a number"))
}

struct JsonParser<'a> {
    text: &'a str,
    pos: usize,
}

impl JsonParser<'_> {
    fn error(&self, what: &str) -> Malformed {
        format!("invalid JSON at byte {}: {what}", self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Malformed> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, Malformed> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, Malformed> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') | Some(b'[') if depth >= MAX_JSON_DEPTH => {
                Err(self.error("nested too deeply"))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                self.skip_whitespace();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.skip_whitespace();
                    let key = self.string()?;
                    self.expect(b':')?;
                    let value = self.value(depth + 1)?;
                    fields.push((key, value));
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(fields));
                        }
                        _ => return Err(self.error("expected `,` or `}`")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_whitespace();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.error("expected `,` or `]`")),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                Ok(Json::Number(self.text[start..self.pos].to_string()))
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn string(&mut self) -> Result<String, Malformed> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote or escape in one go.
            let rest = &self.text[self.pos..];
            let run = rest
                .find(['"', '\\'])
                .ok_or_else(|| self.error("unterminated string"))?;
            out.push_str(&rest[..run]);
            self.pos += run;
            if self.peek() == Some(b'"') {
                self.pos += 1;
                return Ok(out);
            }
            // A backslash.
            self.pos += 1;
            let escape = self
                .peek()
                .ok_or_else(|| self.error("unterminated escape"))?;
            self.pos += 1;
            match escape {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let high = self.hex4()?;
                    let c = if (0xD800..0xDC00).contains(&high) {
                        if !self.text[self.pos..].starts_with("\\u") {
                            return Err(self.error("unpaired surrogate"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return Err(self.error("unpaired surrogate"));
                        }
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        high
                    };
                    out.push(char::from_u32(c).ok_or_else(|| self.error("invalid \\u escape"))?);
                }
                _ => return Err(self.error("invalid escape")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Malformed> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("short \\u escape"))?;
        let value =
            u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(value)
    }
}

// ---------------------------------------------------------------- base64

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as the protobuf JSON mapping writes bytes.
fn base64_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// Standard or URL-safe base64, padding optional (the protobuf JSON mapping
/// accepts both alphabets).
fn base64_decode(text: &str) -> Result<Vec<u8>, Malformed> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err(format!("invalid base64 character `{}`", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("truncated base64".to_string());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(value: &AnyValue) -> AnyValue {
        let mut text = String::new();
        write_json(value, &mut text);
        parse_json(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn otlp_json_round_trips_every_value_kind() {
        let nested = AnyValue::KvList(vec![
            KeyValue::new("s", "quote \" backslash \\ nl \n ctl \u{1} ünï 😀"),
            KeyValue::new("i", AnyValue::Int(i64::MIN)),
            KeyValue::new("d", AnyValue::Double(0.1 + 0.2)),
            KeyValue::new("tiny", AnyValue::Double(5e-324)),
            KeyValue::new("big", AnyValue::Double(-1.7976931348623157e308)),
            KeyValue::new("negzero", AnyValue::Double(-0.0)),
            KeyValue::new("inf", AnyValue::Double(f64::NEG_INFINITY)),
            KeyValue::new("b", true),
            KeyValue::new("bytes", AnyValue::Bytes((0..=255).collect())),
            KeyValue::new("empty", AnyValue::Empty),
            KeyValue::new("", AnyValue::Array(vec![])),
            KeyValue::new(
                "arr",
                AnyValue::Array(vec![
                    AnyValue::Empty,
                    AnyValue::Array(vec![AnyValue::Int(1)]),
                    AnyValue::KvList(vec![]),
                ]),
            ),
        ]);
        assert_eq!(round_trip(&nested), nested);
        let AnyValue::Double(d) = round_trip(&AnyValue::Double(-0.0)) else {
            panic!()
        };
        assert!(d.is_sign_negative());
        let AnyValue::Double(nan) = round_trip(&AnyValue::Double(f64::NAN)) else {
            panic!()
        };
        assert!(nan.is_nan());
    }

    #[test]
    fn json_text_is_otlp_json() {
        let mut text = String::new();
        write_json(
            &AnyValue::Array(vec![AnyValue::Int(1), AnyValue::from("two")]),
            &mut text,
        );
        assert_eq!(
            text,
            r#"{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"two"}]}}"#
        );
        // What other writers produce reads too: numbers for ints, escapes,
        // whitespace, absent values.
        assert_eq!(
            parse_json(r#" { "kvlistValue" : { "values" : [ {"key":"\u00e9\ud83d\ude00"} ] } } "#)
                .unwrap(),
            AnyValue::KvList(vec![KeyValue::new("é😀", AnyValue::Empty)])
        );
        assert_eq!(parse_json(r#"{"intValue":7}"#).unwrap(), AnyValue::Int(7));
        assert_eq!(
            parse_json(r#"{"arrayValue":{}}"#).unwrap(),
            AnyValue::Array(vec![])
        );
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for text in [
            "",
            "{",
            "[]",
            r#"{"stringValue":1}"#,
            r#"{"intValue":"x"}"#,
            r#"{"bytesValue":"a"}"#,
            r#"{"stringValue":"\ud800"}"#,
            r#"{"stringValue":"\u12"}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"stringValue":"x"} trailing"#,
            r#"{"kvlistValue":{"values":[{"value":{}}]}}"#,
        ] {
            assert!(parse_json(text).is_err(), "{text}");
        }
        let deep = "[".repeat(100_000);
        assert!(parse_json(&format!(r#"{{"arrayValue":{{"values":{deep}"#)).is_err());
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = String::new();
            base64_encode(plain.as_bytes(), &mut out);
            assert_eq!(out, encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zm9v!").is_err());
    }
}
