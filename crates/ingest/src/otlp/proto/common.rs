//! `opentelemetry.proto.common.v1` and `resource.v1`: attributes, values,
//! resources and instrumentation scopes.

use std::sync::Arc;

use tracewarden_model::{AnyValue, KeyValue, Resource, Scope, Str};

use super::wire::{self, Reader, WireResult, WireType, read_varint};
use super::{Ctx, Problem, Scratch};

/// Reads one attribute (a `KeyValue` field of the enclosing message) into the
/// scratch vector `which`, or skips it, undecoded, when the record already
/// holds [`crate::Limits::max_attributes_per_record`] attributes; `skipped`
/// counts those.
#[inline]
pub(super) fn attribute(
    r: &mut Reader<'_>,
    wire_type: WireType,
    field: &'static str,
    ctx: &mut Ctx<'_>,
    which: Scratch,
    skipped: &mut u32,
) -> WireResult<()> {
    let message = r.message(wire_type, field, "KeyValue")?;
    if ctx.scratch(which).len() >= ctx.limits.max_attributes_per_record {
        *skipped = skipped.saturating_add(1);
        return Ok(());
    }
    let kv = match key_value_canonical(message.rest()) {
        Some(kv) => kv,
        None => key_value(message, ctx, ctx.value_levels)?,
    };
    ctx.scratch(which).push(kv);
    Ok(())
}

/// Reads the layout nearly every encoder writes for an attribute: the key,
/// then a value holding one string, int, bool or double, each field in
/// order with a one-byte length. Anything else (an array, a varint length,
/// fields out of order, invalid UTF-8, trailing fields) gives `None`, and
/// the general field-by-field walk reads the attribute instead; so this
/// only skips dispatch, never a check.
#[inline(always)]
fn key_value_canonical(bytes: &[u8]) -> Option<KeyValue> {
    // A length byte of 0x80 or more starts a longer varint: not this layout.
    let [0x0a, key_len @ 0..0x80, rest @ ..] = bytes else {
        return None;
    };
    let (key, rest) = rest.split_at_checked(usize::from(*key_len))?;
    let [0x12, value_len @ 0..0x80, value @ ..] = rest else {
        return None;
    };
    if usize::from(*value_len) != value.len() {
        return None;
    }
    let value = match value {
        [0x0a, len @ 0..0x80, text @ ..] if usize::from(*len) == text.len() => {
            AnyValue::Str(Str::from(wire::utf8(text)?))
        }
        [0x18, int @ ..] => {
            let mut int = int;
            let n = read_varint(&mut int).ok()?;
            if !int.is_empty() {
                return None;
            }
            AnyValue::Int(n as i64)
        }
        [0x10, b] if *b < 0x80 => AnyValue::Bool(*b != 0),
        [0x21, bits @ ..] => AnyValue::Double(f64::from_bits(u64::from_le_bytes(
            <[u8; 8]>::try_from(bits).ok()?,
        ))),
        _ => return None,
    };
    let key = wire::utf8(key)?;
    let key = if key.len() > MAX_INLINE {
        static_key(key).unwrap_or_else(|| Str::from(key))
    } else {
        Str::from(key)
    };
    Some(KeyValue { key, value })
}

/// The longest string a [`Str`] holds without allocating.
const MAX_INLINE: usize = std::mem::size_of::<Str>();

/// `KeyValue`: 1 key, 2 value; 3 `key_strindex` (profiles only) is skipped.
fn key_value(mut r: Reader<'_>, ctx: &mut Ctx<'_>, levels: usize) -> WireResult<KeyValue> {
    let mut key = Str::default();
    let mut value = AnyValue::Empty;
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => key = attribute_key(&mut r, wire_type, ctx)?,
            2 => {
                let message = r.message(wire_type, "value", "AnyValue")?;
                any_value_into(message, ctx, &mut value, levels)?;
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(KeyValue { key, value })
}

/// Reads an attribute key. Keys that fit a [`Str`] inline cost no
/// allocation; longer keys of the semantic conventions are served from
/// static strings, so they cost none either.
#[inline]
fn attribute_key(r: &mut Reader<'_>, wire_type: WireType, ctx: &mut Ctx<'_>) -> WireResult<Str> {
    let key = ctx.string(r, wire_type, "key")?;
    if key.is_heap_allocated()
        && let Some(known) = static_key(&key)
    {
        return Ok(known);
    }
    Ok(key)
}

/// Semantic-convention keys longer than an inline [`Str`] (24 bytes) that
/// senders commonly use.
macro_rules! static_keys {
    ($($key:literal),* $(,)?) => {
        fn static_key(key: &str) -> Option<Str> {
            match key {
                $($key => Some(Str::const_new($key)),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const STATIC_KEYS: &[&str] = &[$($key),*];
    };
}

static_keys!(
    "http.response.status_code",
    "http.request.method_original",
    "http.request.resend_count",
    "http.request.header.authorization",
    "http.request.header.content-type",
    "http.request.header.cookie",
    "http.request.header.user-agent",
    "http.request.header.x-forwarded-for",
    "http.response.header.content-type",
    "http.response.header.set-cookie",
    "user_agent.synthetic.type",
    "deployment.environment.name",
    "process.runtime.description",
    "messaging.destination.name",
    "messaging.destination.partition.id",
    "messaging.consumer.group.name",
    "messaging.message.body.size",
    "messaging.kafka.message.key",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
);

/// Merges an `AnyValue` message into `value`: the last member of the oneof
/// wins, and an array or key-value list sent twice is concatenated, as
/// protobuf merges a repeated message field.
///
/// `levels` is how many more arrays or key-value lists may open: at 0 a
/// nested one is skipped by its length (never recursed into), stored as
/// [`AnyValue::Empty`], and noted so the record is rejected.
pub(super) fn any_value_into(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    value: &mut AnyValue,
    levels: usize,
) -> WireResult<()> {
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => *value = AnyValue::Str(ctx.string(&mut r, wire_type, "string_value")?),
            2 => *value = AnyValue::Bool(r.varint(wire_type, "bool_value")? != 0),
            // int64 is the varint's bits read as two's complement.
            3 => *value = AnyValue::Int(r.varint(wire_type, "int_value")? as i64),
            4 => *value = AnyValue::Double(f64::from_bits(r.fixed64(wire_type, "double_value")?)),
            5 => {
                let message = r.message(wire_type, "array_value", "ArrayValue")?;
                let Some(levels) = levels.checked_sub(1) else {
                    cut_too_deep(ctx, value);
                    continue;
                };
                let mut items = match std::mem::take(value) {
                    AnyValue::Array(items) => items,
                    _ => Vec::new(),
                };
                array_values(message, ctx, &mut items, levels)?;
                *value = AnyValue::Array(items);
            }
            6 => {
                let message = r.message(wire_type, "kvlist_value", "KeyValueList")?;
                let Some(levels) = levels.checked_sub(1) else {
                    cut_too_deep(ctx, value);
                    continue;
                };
                let mut kvs = match std::mem::take(value) {
                    AnyValue::KvList(kvs) => kvs,
                    _ => Vec::new(),
                };
                key_value_list(message, ctx, &mut kvs, levels)?;
                *value = AnyValue::KvList(kvs);
            }
            7 => *value = AnyValue::Bytes(r.bytes(wire_type, "bytes_value")?.to_vec()),
            8 => {
                // OTLP asks receivers of other signals to treat this profiles-only
                // member as absent, with a warning.
                r.varint(wire_type, "string_value_strindex")?;
                *value = AnyValue::Empty;
                ctx.decoded.warn("AnyValue.string_value_strindex is only defined for profiles, value stored as empty");
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(())
}

#[cold]
fn cut_too_deep(ctx: &mut Ctx<'_>, value: &mut AnyValue) {
    ctx.note_problem(Problem::TooDeep);
    *value = AnyValue::Empty;
}

/// `ArrayValue`: 1 values (repeated `AnyValue`).
fn array_values(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    items: &mut Vec<AnyValue>,
    levels: usize,
) -> WireResult<()> {
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => {
                let message = r.message(wire_type, "values", "AnyValue")?;
                let mut item = AnyValue::Empty;
                any_value_into(message, ctx, &mut item, levels)?;
                items.push(item);
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(())
}

/// `KeyValueList`: 1 values (repeated `KeyValue`).
fn key_value_list(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    kvs: &mut Vec<KeyValue>,
    levels: usize,
) -> WireResult<()> {
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => {
                let message = r.message(wire_type, "values", "KeyValue")?;
                kvs.push(key_value(message, ctx, levels)?);
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(())
}

/// `ResourceSpans` / `ResourceLogs`: 1 resource, 2 the scope groups
/// (`groups` names their field and message; `scope_group` reads one),
/// 3 schema_url. Traces and logs share this walk; only the records differ.
pub(super) fn resource_group<G>(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    groups: (&'static str, &'static str),
    mut scope_group: impl FnMut(Reader<'_>, &mut Ctx<'_>) -> WireResult<G>,
) -> WireResult<(Arc<Resource>, Vec<G>)> {
    let mut resource = Resource::default();
    let mut skipped = 0;
    let mut scope_groups = Vec::new();
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => {
                let message = r.message(wire_type, "resource", "Resource")?;
                resource_into(message, ctx, &mut resource, &mut skipped)?;
            }
            2 => {
                let message = r.message(wire_type, groups.0, groups.1)?;
                scope_groups.push(scope_group(message, ctx)?);
            }
            3 => resource.schema_url = Ctx::strict_string(&mut r, wire_type, "schema_url")?,
            _ => r.skip(field, wire_type)?,
        }
    }
    ctx.attributes_over_cap(&mut resource.dropped_attributes_count, skipped);
    ctx.limits
        .apply_to_resource(&mut resource, &mut ctx.decoded);
    Ok((Arc::new(resource), scope_groups))
}

/// `ScopeSpans` / `ScopeLogs`: 1 scope, 2 the records (`records` names their
/// field and message; `record` reads one, `None` when it was rejected and
/// counted), 3 schema_url. `min_record_bytes` is the smallest valid record:
/// hostile input announcing many tiny records cannot reserve more than its
/// own length allows.
pub(super) fn scope_group<T>(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    records: (&'static str, &'static str),
    min_record_bytes: usize,
    mut record: impl FnMut(Reader<'_>, &mut Ctx<'_>) -> WireResult<Option<T>>,
) -> WireResult<(Arc<Scope>, Vec<T>)> {
    let mut scope = Scope::default();
    let mut skipped = 0;
    // One pass over the keys sizes the vector.
    let mut kept = Vec::with_capacity(r.count(2).min(r.remaining() / min_record_bytes));
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => {
                let message = r.message(wire_type, "scope", "InstrumentationScope")?;
                scope_into(message, ctx, &mut scope, &mut skipped)?;
            }
            2 => {
                let message = r.message(wire_type, records.0, records.1)?;
                if let Some(one) = record(message, ctx)? {
                    kept.push(one);
                }
            }
            3 => scope.schema_url = Ctx::strict_string(&mut r, wire_type, "schema_url")?,
            _ => r.skip(field, wire_type)?,
        }
    }
    ctx.attributes_over_cap(&mut scope.dropped_attributes_count, skipped);
    ctx.limits.apply_to_scope(&mut scope, &mut ctx.decoded);
    Ok((Arc::new(scope), kept))
}

/// Merges a `Resource` message into `resource`: 1 attributes, 2
/// dropped_attributes_count; 3 entity_refs is skipped. Attributes skipped
/// over the cap are added to `skipped`.
fn resource_into(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    resource: &mut Resource,
    skipped: &mut u32,
) -> WireResult<()> {
    ctx.begin();
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => attribute(
                &mut r,
                wire_type,
                "attributes",
                ctx,
                Scratch::Record,
                skipped,
            )?,
            2 => {
                resource.dropped_attributes_count =
                    r.varint(wire_type, "dropped_attributes_count")? as u32
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    resource.attributes.append(&mut ctx.record_attributes);
    ctx.container_problem("resource")
}

/// Merges an `InstrumentationScope` message into `scope`: 1 name, 2
/// version, 3 attributes, 4 dropped_attributes_count.
fn scope_into(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    scope: &mut Scope,
    skipped: &mut u32,
) -> WireResult<()> {
    ctx.begin();
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => scope.name = Ctx::strict_string(&mut r, wire_type, "name")?,
            2 => scope.version = Ctx::strict_string(&mut r, wire_type, "version")?,
            3 => attribute(
                &mut r,
                wire_type,
                "attributes",
                ctx,
                Scratch::Record,
                skipped,
            )?,
            4 => {
                scope.dropped_attributes_count =
                    r.varint(wire_type, "dropped_attributes_count")? as u32
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    scope.attributes.append(&mut ctx.record_attributes);
    ctx.container_problem("scope")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn static_keys_are_served_without_allocation() {
        for key in STATIC_KEYS {
            assert!(
                key.len() > 24,
                "`{key}` fits inline and needs no static copy"
            );
            let interned = static_key(key).unwrap();
            assert_eq!(interned, *key);
            assert!(!interned.is_heap_allocated(), "`{key}`");
        }
        assert_eq!(static_key("http.response.status_codes"), None);
    }

    #[test]
    fn the_canonical_layout_reads_like_the_general_walk() {
        let cases: &[&[u8]] = &[
            &[0x0a, 0x01, b'k', 0x12, 0x03, 0x0a, 0x01, b'v'],
            &[0x0a, 0x01, b'k', 0x12, 0x02, 0x18, 0x05],
            &[
                0x0a, 0x01, b'k', 0x12, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0x01,
            ],
            &[0x0a, 0x01, b'k', 0x12, 0x03, 0x18, 0x80, 0x00], // zero-padded varint
            &[0x0a, 0x01, b'k', 0x12, 0x02, 0x10, 0x02],
            &[
                0x0a, 0x01, b'k', 0x12, 0x09, 0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
            ],
            &[0x0a, 0x00, 0x12, 0x02, 0x0a, 0x00],
            // Not the canonical layout: the general walk reads these.
            &[0x12, 0x02, 0x18, 0x05, 0x0a, 0x01, b'k'], // value before key
            &[0x0a, 0x01, b'k', 0x12, 0x02, 0x18, 0x05, 0x18, 0x01], // trailing field
            &[0x0a, 0x01, b'k', 0x12, 0x00],             // empty value
            &[0x0a, 0x01, b'k'],                         // no value
            &[0x0a, 0x81, 0x00, b'k', 0x12, 0x02, 0x18, 0x05], // padded length
            &[0x0a, 0x01, b'k', 0x12, 0x04, 0x0a, 0x02, 0xc3, 0x28], // invalid UTF-8
        ];
        let limits = Limits::default();
        let mut fast = 0;
        for bytes in cases {
            let mut ctx = Ctx::new(&limits);
            let levels = ctx.value_levels;
            let general = key_value(Reader::new(bytes, "KeyValue"), &mut ctx, levels).unwrap();
            if let Some(canonical) = key_value_canonical(bytes) {
                assert_eq!(canonical, general, "input {bytes:02x?}");
                assert!(ctx.problem.is_none(), "input {bytes:02x?}");
                fast += 1;
            }
        }
        assert_eq!(fast, 7);
    }

    fn any_value(bytes: &[u8], limits: &Limits) -> (AnyValue, Option<Problem>) {
        let mut ctx = Ctx::new(limits);
        let mut value = AnyValue::Empty;
        let levels = ctx.value_levels;
        any_value_into(Reader::new(bytes, "AnyValue"), &mut ctx, &mut value, levels).unwrap();
        (value, ctx.problem)
    }

    #[test]
    fn every_any_value_member() {
        let limits = Limits::default();
        let cases: &[(&[u8], AnyValue)] = &[
            (&[], AnyValue::Empty),
            (&[0x0a, 0x02, b'h', b'i'], AnyValue::from("hi")),
            (&[0x10, 0x01], AnyValue::Bool(true)),
            (
                &[
                    0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                AnyValue::Int(-1),
            ),
            (&[0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f], AnyValue::Double(1.5)),
            (&[0x3a, 0x02, 0xff, 0x00], AnyValue::Bytes(vec![0xff, 0x00])),
            (
                &[0x2a, 0x04, 0x0a, 0x02, 0x18, 0x07],
                AnyValue::Array(vec![AnyValue::Int(7)]),
            ),
            (
                &[0x32, 0x07, 0x0a, 0x05, 0x0a, 0x01, b'k', 0x12, 0x00],
                AnyValue::KvList(vec![KeyValue {
                    key: "k".into(),
                    value: AnyValue::Empty,
                }]),
            ),
            // Last member of the oneof wins.
            (&[0x0a, 0x01, b'a', 0x18, 0x05], AnyValue::Int(5)),
            // An array sent twice is merged.
            (
                &[
                    0x2a, 0x04, 0x0a, 0x02, 0x18, 0x01, 0x2a, 0x04, 0x0a, 0x02, 0x18, 0x02,
                ],
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Int(2)]),
            ),
            // The profiles-only string index reads as empty.
            (&[0x0a, 0x01, b'a', 0x40, 0x03], AnyValue::Empty),
        ];
        for (bytes, expected) in cases {
            let (value, problem) = any_value(bytes, &limits);
            assert_eq!(&value, expected, "input {bytes:02x?}");
            assert!(problem.is_none(), "input {bytes:02x?}");
        }
    }

    #[test]
    fn invalid_utf8_is_noted_not_fatal() {
        let (value, problem) = any_value(&[0x0a, 0x02, 0xc3, 0x28], &Limits::default());
        assert_eq!(value, AnyValue::Str(Str::default()));
        assert!(matches!(
            problem,
            Some(Problem::InvalidUtf8 {
                field: "string_value",
                offset: 1,
                ..
            })
        ));
    }

    /// `levels` arrays, each holding the next, around an int.
    fn nested_arrays(levels: usize) -> Vec<u8> {
        let mut value = vec![0x18, 0x01];
        for _ in 0..levels {
            let mut array = vec![0x0a, value.len() as u8];
            array.extend_from_slice(&value);
            value = vec![0x2a, array.len() as u8];
            value.extend_from_slice(&array);
        }
        value
    }

    #[test]
    fn nesting_is_followed_to_one_level_past_the_limit() {
        let limits = Limits {
            max_value_depth: 2,
            ..Limits::default()
        };
        for depth in 0..=3 {
            let (value, problem) = any_value(&nested_arrays(depth), &limits);
            assert_eq!(value.depth(), depth);
            assert!(problem.is_none(), "depth {depth}");
        }
        // Depth 4 is cut at the fourth level: depth 3 remains, and the problem is noted.
        let (value, problem) = any_value(&nested_arrays(4), &limits);
        assert_eq!(value.depth(), 3);
        assert!(matches!(problem, Some(Problem::TooDeep)));
    }
}
