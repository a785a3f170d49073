//! Literal values ([`Static`]), comparison operators, and how a value read
//! from a span compares with a literal.
//!
//! Values read from spans are borrowed ([`Val`]) so evaluating a filter does
//! not allocate. Type rules follow Tempo: integers and floats compare
//! numerically, any other pair of different types compares false (for every
//! operator, `!=` included), and a missing value compares false except with
//! `= nil`.

use std::cmp::Ordering;
use std::fmt;

use tracewarden_model::{AnyValue, SpanKind, StatusCode};

use crate::pattern::Pattern;

/// A literal of the query, and the value type results are reported in.
#[derive(Clone, Debug, PartialEq)]
pub enum Static {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Nanoseconds.
    Duration(u64),
    Status(StatusCode),
    Kind(SpanKind),
}

/// A comparison operator of a spanset filter or a scalar filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `=~`: the regular expression matches the whole string.
    Regex,
    /// `!~`: the regular expression does not match the whole string.
    NotRegex,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Regex => "=~",
            CompareOp::NotRegex => "!~",
        }
    }

    /// The operator with its operands swapped (`1 < x` is `x > 1`).
    pub(crate) fn flipped(self) -> CompareOp {
        match self {
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            other => other,
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            CompareOp::Eq => ord == Ordering::Equal,
            CompareOp::Ne => ord != Ordering::Equal,
            CompareOp::Gt => ord == Ordering::Greater,
            CompareOp::Ge => ord != Ordering::Less,
            CompareOp::Lt => ord == Ordering::Less,
            CompareOp::Le => ord != Ordering::Greater,
            CompareOp::Regex | CompareOp::NotRegex => false,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a value, for parse-time checks and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    Nil,
    Bool,
    Int,
    Float,
    Str,
    Duration,
    Status,
    Kind,
}

impl ValueType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ValueType::Nil => "nil",
            ValueType::Bool => "boolean",
            ValueType::Int => "integer",
            ValueType::Float => "float",
            ValueType::Str => "string",
            ValueType::Duration => "duration",
            ValueType::Status => "status",
            ValueType::Kind => "kind",
        }
    }

    /// The name with its indefinite article ("an integer", "a string").
    pub(crate) fn a_name(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    fn is_number(self) -> bool {
        matches!(self, ValueType::Int | ValueType::Float)
    }

    /// Whether values of the two types can ever compare true.
    pub(crate) fn comparable(self, other: ValueType) -> bool {
        self == other || (self.is_number() && other.is_number())
    }
}

impl Static {
    pub(crate) fn value_type(&self) -> ValueType {
        match self {
            Static::Nil => ValueType::Nil,
            Static::Bool(_) => ValueType::Bool,
            Static::Int(_) => ValueType::Int,
            Static::Float(_) => ValueType::Float,
            Static::Str(_) => ValueType::Str,
            Static::Duration(_) => ValueType::Duration,
            Static::Status(_) => ValueType::Status,
            Static::Kind(_) => ValueType::Kind,
        }
    }

    pub(crate) fn as_val(&self) -> Val<'_> {
        match self {
            Static::Nil => Val::Nil,
            Static::Bool(b) => Val::Bool(*b),
            Static::Int(i) => Val::Int(*i),
            Static::Float(f) => Val::Float(*f),
            Static::Str(s) => Val::Str(s),
            Static::Duration(d) => Val::Duration(*d),
            Static::Status(s) => Val::Status(*s),
            Static::Kind(k) => Val::Kind(*k),
        }
    }
}

impl fmt::Display for Static {
    /// The TraceQL literal for this value, which parses back to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Static::Nil => f.write_str("nil"),
            Static::Bool(b) => write!(f, "{b}"),
            Static::Int(i) => write!(f, "{i}"),
            Static::Float(x) => {
                if x.is_finite() {
                    // `{:?}` keeps a `.0` so the literal parses back as a float.
                    write!(f, "{x:?}")
                } else {
                    // TraceQL has no literal for these; they only come from
                    // aggregates, never from a parsed query.
                    write!(f, "{x}")
                }
            }
            Static::Str(s) => write_quoted(f, s),
            Static::Duration(ns) => write_duration(f, *ns),
            Static::Status(s) => f.write_str(s.as_str()),
            Static::Kind(k) => f.write_str(k.as_str()),
        }
    }
}

/// A double-quoted TraceQL string with the escapes the lexer reads back.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A duration in the largest unit that represents it exactly.
fn write_duration(f: &mut fmt::Formatter<'_>, ns: u64) -> fmt::Result {
    const UNITS: [(u64, &str); 5] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    if ns != 0 {
        for (size, unit) in UNITS {
            if ns.is_multiple_of(size) {
                return write!(f, "{}{unit}", ns / size);
            }
        }
    }
    write!(f, "{ns}ns")
}

/// A value read from a span, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Duration(u64),
    Status(StatusCode),
    Kind(SpanKind),
    /// A trace or span id, compared with strings by its lowercase hex form.
    Id(&'a [u8]),
    /// An attribute holding an array: comparisons hold when one element
    /// satisfies them (negative operators: when none satisfies the positive
    /// one).
    Array(&'a [AnyValue]),
    /// Bytes, key-value lists and empty values: present, but not comparable.
    Opaque,
}

impl<'a> Val<'a> {
    pub(crate) fn from_any(value: &'a AnyValue) -> Val<'a> {
        match value {
            AnyValue::Str(s) => Val::Str(s),
            AnyValue::Bool(b) => Val::Bool(*b),
            AnyValue::Int(i) => Val::Int(*i),
            AnyValue::Double(d) => Val::Float(*d),
            AnyValue::Array(items) => Val::Array(items),
            AnyValue::Empty | AnyValue::Bytes(_) | AnyValue::KvList(_) => Val::Opaque,
        }
    }

    /// An owned copy for results (`by`, `select`, aggregates).
    pub(crate) fn to_static(self) -> Static {
        match self {
            Val::Nil => Static::Nil,
            Val::Bool(b) => Static::Bool(b),
            Val::Int(i) => Static::Int(i),
            Val::Float(x) => Static::Float(x),
            Val::Str(s) => Static::Str(s.to_owned()),
            Val::Duration(d) => Static::Duration(d),
            Val::Status(s) => Static::Status(s),
            Val::Kind(k) => Static::Kind(k),
            Val::Id(bytes) => Static::Str(hex(bytes)),
            Val::Array(items) => Static::Str(AnyValue::Array(items.to_vec()).to_text()),
            Val::Opaque => Static::Nil,
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Orders an id against a hex string without building the id's hex form.
/// Uppercase hex in the query compares as lowercase.
fn cmp_id_hex(id: &[u8], text: &str) -> Ordering {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut left = id
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    // A shorter text is left-padded with zeros, as Tempo reads ids: Zipkin's
    // 64-bit trace ids are stored as 128-bit ones with zeros in front.
    let padding = (id.len() * 2).saturating_sub(text.len());
    let mut right =
        std::iter::repeat_n(b'0', padding).chain(text.bytes().map(|b| b.to_ascii_lowercase()));
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) => match a.cmp(&b) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// How `lhs` orders against `rhs`, or `None` when they cannot be compared.
fn order(lhs: Val<'_>, rhs: Val<'_>) -> Option<Ordering> {
    match (lhs, rhs) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(&b)),
        // Mixed int and float compare as floats, as in Tempo.
        (Val::Int(a), Val::Float(b)) => (a as f64).partial_cmp(&b),
        (Val::Float(a), Val::Int(b)) => a.partial_cmp(&(b as f64)),
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(&b),
        (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
        (Val::Duration(a), Val::Duration(b)) => Some(a.cmp(&b)),
        (Val::Id(a), Val::Str(b)) => Some(cmp_id_hex(a, b)),
        (Val::Str(a), Val::Id(b)) => Some(cmp_id_hex(b, a).reverse()),
        _ => None,
    }
}

/// Whether `lhs op rhs` holds. `regex` is the compiled pattern for the regex
/// operators (the parser always provides it for them).
pub(crate) fn compare(lhs: Val<'_>, op: CompareOp, rhs: Val<'_>, regex: Option<&Pattern>) -> bool {
    // nil: `= nil` asks "absent?", `!= nil` asks "present?".
    if let Val::Nil = rhs {
        let absent = matches!(lhs, Val::Nil);
        return match op {
            CompareOp::Eq => absent,
            CompareOp::Ne => !absent,
            _ => false,
        };
    }
    match lhs {
        Val::Nil => false,
        Val::Array(items) => {
            let positive = match op {
                CompareOp::Ne => CompareOp::Eq,
                CompareOp::NotRegex => CompareOp::Regex,
                other => other,
            };
            let any = items
                .iter()
                .any(|item| compare_scalar(Val::from_any(item), positive, rhs, regex));
            if positive == op {
                any
            } else {
                // A negative operator holds when no element matches, but only
                // for an array that holds comparable elements at all.
                !any && items
                    .iter()
                    .any(|item| order_or_regex_possible(Val::from_any(item), rhs))
            }
        }
        _ => compare_scalar(lhs, op, rhs, regex),
    }
}

fn order_or_regex_possible(lhs: Val<'_>, rhs: Val<'_>) -> bool {
    order(lhs, rhs).is_some() || matches!((lhs, rhs), (Val::Bool(_), Val::Bool(_)))
}

fn compare_scalar(lhs: Val<'_>, op: CompareOp, rhs: Val<'_>, regex: Option<&Pattern>) -> bool {
    match op {
        CompareOp::Regex | CompareOp::NotRegex => {
            let Some(regex) = regex else { return false };
            let is_match = match lhs {
                Val::Str(s) => regex.is_match(s),
                Val::Id(bytes) => {
                    // Ids are at most 16 bytes: format into a stack buffer.
                    let mut buf = [0u8; 64];
                    let Some(text) = hex_into(bytes, &mut buf) else {
                        return false;
                    };
                    regex.is_match(text)
                }
                _ => return false,
            };
            is_match == (op == CompareOp::Regex)
        }
        _ => match (lhs, rhs) {
            (Val::Bool(a), Val::Bool(b)) => match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                _ => false,
            },
            (Val::Status(a), Val::Status(b)) => match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                _ => false,
            },
            (Val::Kind(a), Val::Kind(b)) => match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                _ => false,
            },
            _ => order(lhs, rhs).is_some_and(|ord| op.holds(ord)),
        },
    }
}

fn hex_into<'b>(bytes: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b str> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let len = bytes.len().checked_mul(2)?;
    let out = buf.get_mut(..len)?;
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        if let [hi, lo] = pair {
            *hi = DIGITS[usize::from(b >> 4)];
            *lo = DIGITS[usize::from(b & 0x0f)];
        }
    }
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_int_and_float() {
        assert!(compare(Val::Int(3), CompareOp::Lt, Val::Float(3.5), None));
        assert!(compare(Val::Float(2.0), CompareOp::Eq, Val::Int(2), None));
        assert!(!compare(Val::Str("2"), CompareOp::Eq, Val::Int(2), None));
        assert!(!compare(Val::Str("2"), CompareOp::Ne, Val::Int(2), None));
    }

    #[test]
    fn nil_asks_presence() {
        assert!(compare(Val::Nil, CompareOp::Eq, Val::Nil, None));
        assert!(!compare(Val::Nil, CompareOp::Ne, Val::Nil, None));
        assert!(compare(Val::Int(1), CompareOp::Ne, Val::Nil, None));
        assert!(!compare(Val::Nil, CompareOp::Ne, Val::Int(1), None));
    }

    #[test]
    fn ids_compare_with_hex_strings() {
        let id = [0xab, 0x01];
        assert!(compare(Val::Id(&id), CompareOp::Eq, Val::Str("ab01"), None));
        assert!(compare(Val::Id(&id), CompareOp::Eq, Val::Str("AB01"), None));
        assert!(!compare(Val::Id(&id), CompareOp::Eq, Val::Str("ab0"), None));
        let zipkin = [0, 0, 0xab, 0x01];
        assert!(compare(
            Val::Id(&zipkin),
            CompareOp::Eq,
            Val::Str("ab01"),
            None
        ));
        assert!(compare(
            Val::Id(&zipkin),
            CompareOp::Eq,
            Val::Str("0000ab01"),
            None
        ));
        assert!(!compare(
            Val::Id(&zipkin),
            CompareOp::Eq,
            Val::Str("ab02"),
            None
        ));
        let re = Pattern::new(regex::Regex::new("^(?:ab.*)$").unwrap());
        assert!(compare(
            Val::Id(&id),
            CompareOp::Regex,
            Val::Str("ab.*"),
            Some(&re)
        ));
    }

    #[test]
    fn arrays_match_any_element() {
        let items = [AnyValue::from("a"), AnyValue::from("b")];
        assert!(compare(
            Val::Array(&items),
            CompareOp::Eq,
            Val::Str("b"),
            None
        ));
        assert!(!compare(
            Val::Array(&items),
            CompareOp::Ne,
            Val::Str("b"),
            None
        ));
        assert!(compare(
            Val::Array(&items),
            CompareOp::Ne,
            Val::Str("c"),
            None
        ));
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        assert_eq!(Static::Duration(1_500_000_000).to_string(), "1500ms");
        assert_eq!(Static::Duration(7_200_000_000_000).to_string(), "2h");
        assert_eq!(Static::Duration(0).to_string(), "0ns");
        assert_eq!(Static::Float(1.0).to_string(), "1.0");
        assert_eq!(Static::Str("a\"b".into()).to_string(), "\"a\\\"b\"");
    }
}
