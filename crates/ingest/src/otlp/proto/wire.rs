//! The protobuf wire format: varints, fixed-width numbers and length-delimited
//! fields, read from a byte slice without copying.
//!
//! A [`Reader`] walks the fields of one message. Every read checks how many
//! bytes are left, so truncated or hostile input gives a [`WireError`] (never
//! a panic or an out-of-bounds read), and every error names the message, the
//! field and the byte offset in the request body where the bad item starts.

use std::fmt;

/// The wire types that protobuf 3 still uses. The group wire types (3 and 4)
/// were deprecated before OTLP existed and 6 and 7 were never defined, so
/// none of them is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "length-delimited",
            WireType::Fixed32 => "fixed32",
        }
    }
}

/// What went wrong at the wire level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireErrorKind {
    /// The message ends inside a key, a value or a length-delimited field.
    Truncated,
    /// A varint longer than 10 bytes, or one whose value does not fit 64 bits.
    VarintTooLong,
    FieldNumberZero,
    /// A key whose value does not fit 32 bits.
    FieldNumberTooLarge,
    /// Wire type 3 or 4 (start or end of a group).
    Group(u8),
    /// Wire type 6 or 7.
    InvalidWireType(u8),
    /// A known field sent with another wire type than its declaration implies.
    WrongWireType {
        expected: WireType,
        got: WireType,
    },
    /// A length prefix larger than what is left of the enclosing message.
    LengthTooLarge {
        length: u64,
        left: usize,
    },
    /// A string field that is not UTF-8, where no single record can be blamed.
    InvalidUtf8,
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireErrorKind::Truncated => f.write_str("message ends inside a field"),
            WireErrorKind::VarintTooLong => f.write_str("varint longer than 64 bits"),
            WireErrorKind::FieldNumberZero => f.write_str("field number 0 is not allowed"),
            WireErrorKind::FieldNumberTooLarge => f.write_str("field number out of range"),
            WireErrorKind::Group(wt) => {
                write!(f, "deprecated group wire type {wt} is not supported")
            }
            WireErrorKind::InvalidWireType(wt) => write!(f, "invalid wire type {wt}"),
            WireErrorKind::WrongWireType { expected, got } => {
                write!(
                    f,
                    "expected wire type {}, got {}",
                    expected.name(),
                    got.name()
                )
            }
            WireErrorKind::LengthTooLarge { length, left } => {
                write!(f, "length {length} is larger than the {left} bytes left")
            }
            WireErrorKind::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
        }
    }
}

/// Which field an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldRef {
    /// The error is in a key, before the field is known.
    Key,
    Named(&'static str),
    /// A field the decoder does not know (being skipped).
    Number(u32),
}

/// A framing error: the bytes are not a valid protobuf message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireError {
    pub message: &'static str,
    pub field: FieldRef,
    /// Byte offset in the request body where the bad item starts.
    pub offset: usize,
    pub kind: WireErrorKind,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            FieldRef::Key => write!(f, "{} key", self.message)?,
            FieldRef::Named(name) => write!(f, "{}.{}", self.message, name)?,
            FieldRef::Number(n) => write!(f, "{} field {}", self.message, n)?,
        }
        write!(f, " at byte {}: {}", self.offset, self.kind)
    }
}

/// Errors are boxed so the `Ok` path of every read stays two words wide.
pub(crate) type WireResult<T> = Result<T, Box<WireError>>;

/// Reads a varint from the front of `buf`, advancing it past the varint.
///
/// Accepts the non-canonical (zero-padded) encodings protobuf allows, up to
/// the 10-byte maximum; `buf` is left unchanged on error.
#[inline]
pub(crate) fn read_varint(buf: &mut &[u8]) -> Result<u64, WireErrorKind> {
    // Most varints on the OTLP hot path (keys, lengths, small enums) are one
    // byte: keep that path free of the loop.
    match buf.first() {
        Some(&b) if b < 0x80 => {
            *buf = &buf[1..];
            Ok(u64::from(b))
        }
        Some(_) => read_varint_slow(buf),
        None => Err(WireErrorKind::Truncated),
    }
}

#[cold]
#[inline(never)]
fn read_varint_slow(buf: &mut &[u8]) -> Result<u64, WireErrorKind> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().take(10).enumerate() {
        // The 10th byte holds only bit 63: anything above 1 overflows u64.
        if i == 9 && byte > 1 {
            return Err(WireErrorKind::VarintTooLong);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    if buf.len() >= 10 {
        Err(WireErrorKind::VarintTooLong)
    } else {
        Err(WireErrorKind::Truncated)
    }
}

/// `bytes` as text when they are valid UTF-8. Every string of a request
/// passes here (~25 a span); most are short and ASCII, which std's
/// `from_utf8` checks a byte at a time before its word-wide loop pays off
/// (~4.6 instructions a byte, measured), while `is_ascii` reads words.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        #[allow(unsafe_code)]
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

/// Splits `n` bytes off the front of `buf`.
#[inline]
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = buf.split_at_checked(n)?;
    *buf = tail;
    Some(head)
}

/// A cursor over the fields of one protobuf message.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// Offset in the request body of the end of this message, so an error
    /// can name its absolute position: `end - rest.len()`.
    end: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over a whole request body, a message named `message`.
    pub(crate) fn new(bytes: &'a [u8], message: &'static str) -> Reader<'a> {
        Reader {
            rest: bytes,
            end: bytes.len(),
            message,
        }
    }

    /// Offset in the request body of the next unread byte.
    pub(crate) fn offset(&self) -> usize {
        self.end - self.rest.len()
    }

    /// Bytes left unread in this message.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The unread bytes themselves, for a caller that recognises a
    /// common layout faster than a field-by-field walk would.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn message_name(&self) -> &'static str {
        self.message
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn error(
        &self,
        field: FieldRef,
        offset: usize,
        kind: WireErrorKind,
    ) -> Box<WireError> {
        Box::new(WireError {
            message: self.message,
            field,
            offset,
            kind,
        })
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    #[inline(always)]
    pub(crate) fn next_field(&mut self) -> WireResult<Option<(u32, WireType)>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let at = self.offset();
        let key =
            read_varint(&mut self.rest).map_err(|kind| self.error(FieldRef::Key, at, kind))?;
        let Ok(key) = u32::try_from(key) else {
            return Err(self.error(FieldRef::Key, at, WireErrorKind::FieldNumberTooLarge));
        };
        let number = key >> 3;
        if number == 0 {
            return Err(self.error(FieldRef::Key, at, WireErrorKind::FieldNumberZero));
        }
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            wt @ (3 | 4) => {
                return Err(self.error(
                    FieldRef::Number(number),
                    at,
                    WireErrorKind::Group(wt as u8),
                ));
            }
            wt => {
                return Err(self.error(
                    FieldRef::Number(number),
                    at,
                    WireErrorKind::InvalidWireType(wt as u8),
                ));
            }
        };
        Ok(Some((number, wire_type)))
    }

    #[inline(always)]
    fn expect(&self, got: WireType, expected: WireType, field: &'static str) -> WireResult<()> {
        if got == expected {
            Ok(())
        } else {
            Err(self.error(
                FieldRef::Named(field),
                self.offset(),
                WireErrorKind::WrongWireType { expected, got },
            ))
        }
    }

    /// A varint field's raw value (int32, int64, uint32, bool and enum fields).
    #[inline(always)]
    pub(crate) fn varint(&mut self, wire_type: WireType, field: &'static str) -> WireResult<u64> {
        self.expect(wire_type, WireType::Varint, field)?;
        let at = self.offset();
        read_varint(&mut self.rest).map_err(|kind| self.error(FieldRef::Named(field), at, kind))
    }

    /// A fixed64 or double field's raw bits.
    #[inline(always)]
    pub(crate) fn fixed64(&mut self, wire_type: WireType, field: &'static str) -> WireResult<u64> {
        self.expect(wire_type, WireType::Fixed64, field)?;
        match take(&mut self.rest, 8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(bytes) => Ok(u64::from_le_bytes(bytes)),
            None => Err(self.error(
                FieldRef::Named(field),
                self.offset(),
                WireErrorKind::Truncated,
            )),
        }
    }

    /// A fixed32 field.
    #[inline(always)]
    pub(crate) fn fixed32(&mut self, wire_type: WireType, field: &'static str) -> WireResult<u32> {
        self.expect(wire_type, WireType::Fixed32, field)?;
        match take(&mut self.rest, 4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
            Some(bytes) => Ok(u32::from_le_bytes(bytes)),
            None => Err(self.error(
                FieldRef::Named(field),
                self.offset(),
                WireErrorKind::Truncated,
            )),
        }
    }

    /// A length-delimited field's bytes (bytes, string and message fields).
    #[inline(always)]
    pub(crate) fn bytes(
        &mut self,
        wire_type: WireType,
        field: &'static str,
    ) -> WireResult<&'a [u8]> {
        self.expect(wire_type, WireType::Len, field)?;
        self.len_delimited(FieldRef::Named(field))
    }

    /// An embedded message field, as a reader over its bytes.
    #[inline(always)]
    pub(crate) fn message(
        &mut self,
        wire_type: WireType,
        field: &'static str,
        message: &'static str,
    ) -> WireResult<Reader<'a>> {
        let bytes = self.bytes(wire_type, field)?;
        Ok(Reader {
            rest: bytes,
            end: self.offset(),
            message,
        })
    }

    #[inline(always)]
    fn len_delimited(&mut self, field: FieldRef) -> WireResult<&'a [u8]> {
        let at = self.offset();
        let length = read_varint(&mut self.rest).map_err(|kind| self.error(field, at, kind))?;
        let left = self.rest.len();
        match usize::try_from(length)
            .ok()
            .and_then(|n| take(&mut self.rest, n))
        {
            Some(bytes) => Ok(bytes),
            None => Err(self.error(field, at, WireErrorKind::LengthTooLarge { length, left })),
        }
    }

    /// Skips the value of a field the decoder does not use.
    pub(crate) fn skip(&mut self, number: u32, wire_type: WireType) -> WireResult<()> {
        let field = FieldRef::Number(number);
        let at = self.offset();
        let ok = match wire_type {
            WireType::Varint => {
                return read_varint(&mut self.rest)
                    .map(drop)
                    .map_err(|kind| self.error(field, at, kind));
            }
            WireType::Fixed64 => take(&mut self.rest, 8).is_some(),
            WireType::Fixed32 => take(&mut self.rest, 4).is_some(),
            WireType::Len => return self.len_delimited(field).map(drop),
        };
        if ok {
            Ok(())
        } else {
            Err(self.error(field, at, WireErrorKind::Truncated))
        }
    }

    /// How many times field `number` occurs in the rest of the message,
    /// counting until the first framing error (which the real parse will
    /// report). Used to size vectors before filling them.
    pub(crate) fn count(&self, number: u32) -> usize {
        let mut scan = *self;
        let mut n = 0;
        while let Ok(Some((field, wire_type))) = scan.next_field() {
            if field == number {
                n += 1;
            }
            if scan.skip(field, wire_type).is_err() {
                break;
            }
        }
        n
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn utf8_accepts_text_and_refuses_invalid_sequences() {
        assert_eq!(utf8(b""), Some(""));
        assert_eq!(utf8(b"GET /api/v1/orders"), Some("GET /api/v1/orders"));
        assert_eq!(
            utf8("Zürich ¼ cup 東京".as_bytes()),
            Some("Zürich ¼ cup 東京")
        );
        for invalid in [
            &b"\xff"[..],
            b"abc\x80",
            b"\xc3",
            b"\xed\xa0\x80",
            b"long ascii prefix past a word \xe2\x82",
        ] {
            assert_eq!(utf8(invalid), None, "{invalid:?}");
        }
    }

    fn varint(bytes: &[u8]) -> Result<(u64, usize), WireErrorKind> {
        let mut buf = bytes;
        let value = read_varint(&mut buf)?;
        Ok((value, bytes.len() - buf.len()))
    }

    fn encode_varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
        out
    }

    #[test]
    fn varints_of_every_length() {
        let cases: &[(&[u8], u64)] = &[
            (&[0x00], 0),
            (&[0x01], 1),
            (&[0x7f], 127),
            (&[0x80, 0x01], 128),
            (&[0xac, 0x02], 300),
            (&[0xff, 0xff, 0xff, 0xff, 0x0f], u64::from(u32::MAX)),
            // -1 as int32/int64: ten bytes, the last holding bit 63.
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                u64::MAX,
            ),
            (
                &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                1 << 63,
            ),
        ];
        for &(bytes, expected) in cases {
            assert_eq!(
                varint(bytes),
                Ok((expected, bytes.len())),
                "input {bytes:02x?}"
            );
        }
    }

    #[test]
    fn varints_round_trip_at_every_bit_width() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) | 1] {
                let bytes = encode_varint(value);
                assert_eq!(varint(&bytes), Ok((value, bytes.len())), "value {value}");
            }
        }
    }

    #[test]
    fn zero_padded_varints_are_accepted_up_to_ten_bytes() {
        // Protobuf decoders accept non-canonical encodings; prost does too.
        assert_eq!(varint(&[0x80, 0x00]), Ok((0, 2)));
        assert_eq!(varint(&[0x81, 0x80, 0x80, 0x00]), Ok((1, 4)));
        assert_eq!(
            varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Ok((0, 10))
        );
    }

    #[test]
    fn overlong_and_overflowing_varints_are_rejected() {
        let eleven = [
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        assert_eq!(varint(&eleven), Err(WireErrorKind::VarintTooLong));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(varint(&overflow), Err(WireErrorKind::VarintTooLong));
        assert_eq!(varint(&[0xff; 20]), Err(WireErrorKind::VarintTooLong));
    }

    #[test]
    fn truncated_varints_are_rejected_and_leave_the_buffer() {
        assert_eq!(varint(&[]), Err(WireErrorKind::Truncated));
        for len in 1..10 {
            let bytes = vec![0x80; len];
            let mut buf = &bytes[..];
            assert_eq!(
                read_varint(&mut buf),
                Err(WireErrorKind::Truncated),
                "{len} continuation bytes"
            );
            assert_eq!(buf.len(), len);
        }
    }

    /// A message exercising every wire type: field 1 varint, 2 fixed64,
    /// 3 length-delimited, 4 fixed32, 5 a nested message with a varint.
    fn sample() -> Vec<u8> {
        let mut m = vec![0x08, 0x96, 0x01]; // 1: varint 150
        m.push(0x11); // 2: fixed64
        m.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        m.extend_from_slice(&[0x1a, 0x03, b'a', b'b', b'c']); // 3: "abc"
        m.push(0x25); // 4: fixed32
        m.extend_from_slice(&7u32.to_le_bytes());
        m.extend_from_slice(&[0x2a, 0x02, 0x08, 0x05]); // 5: { 1: 5 }
        m
    }

    /// Reads `sample()` (or a prefix of it) field by field.
    fn read_sample(bytes: &[u8]) -> WireResult<Vec<u64>> {
        let mut r = Reader::new(bytes, "Sample");
        let mut seen = Vec::new();
        while let Some((field, wt)) = r.next_field()? {
            let value = match field {
                1 => r.varint(wt, "a")?,
                2 => r.fixed64(wt, "b")?,
                3 => r.bytes(wt, "c")?.len() as u64,
                4 => u64::from(r.fixed32(wt, "d")?),
                5 => {
                    let mut inner = r.message(wt, "e", "Inner")?;
                    let mut v = 0;
                    while let Some((f, wt)) = inner.next_field()? {
                        if f == 1 {
                            v = inner.varint(wt, "x")?;
                        } else {
                            inner.skip(f, wt)?;
                        }
                    }
                    v
                }
                _ => {
                    r.skip(field, wt)?;
                    continue;
                }
            };
            seen.push(value);
        }
        Ok(seen)
    }

    #[test]
    fn reads_every_wire_type() {
        assert_eq!(
            read_sample(&sample()).unwrap(),
            vec![150, 0x0102_0304_0506_0708, 3, 7, 5]
        );
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_or_a_shorter_message() {
        let full = sample();
        let boundaries = [0, 3, 12, 17, 22, full.len()];
        for cut in 0..=full.len() {
            match read_sample(&full[..cut]) {
                Ok(values) => assert!(
                    boundaries.contains(&cut),
                    "cut at {cut} parsed as {values:?}"
                ),
                Err(e) => {
                    assert!(!boundaries.contains(&cut), "cut at {cut}: {e}");
                    assert!(
                        e.offset <= cut,
                        "cut at {cut}: offset {} past the end",
                        e.offset
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut m = Vec::new();
        m.extend_from_slice(&[0x38, 0xff, 0xff, 0x03]); // 7: varint
        m.push(0x41); // 8: fixed64
        m.extend_from_slice(&[9; 8]);
        m.extend_from_slice(&[0x4a, 0x02, 0xff, 0xfe]); // 9: bytes (not UTF-8: never looked at)
        m.push(0x55); // 10: fixed32
        m.extend_from_slice(&[1; 4]);
        m.extend_from_slice(&[0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01]); // field 2^29-1: varint
        m.extend_from_slice(&[0x08, 0x2a]); // 1: varint 42
        assert_eq!(read_sample(&m).unwrap(), vec![42]);
    }

    #[test]
    fn bad_keys_and_wire_types_are_named() {
        let cases: &[(&[u8], WireErrorKind, &str)] = &[
            (
                &[0x0b],
                WireErrorKind::Group(3),
                "Sample field 1 at byte 0: deprecated group wire type 3 is not supported",
            ),
            (
                &[0x0c],
                WireErrorKind::Group(4),
                "Sample field 1 at byte 0: deprecated group wire type 4 is not supported",
            ),
            (
                &[0x0e],
                WireErrorKind::InvalidWireType(6),
                "Sample field 1 at byte 0: invalid wire type 6",
            ),
            (
                &[0x0f],
                WireErrorKind::InvalidWireType(7),
                "Sample field 1 at byte 0: invalid wire type 7",
            ),
            (
                &[0x00],
                WireErrorKind::FieldNumberZero,
                "Sample key at byte 0: field number 0 is not allowed",
            ),
            (
                &[0x80, 0x80, 0x80, 0x80, 0x10],
                WireErrorKind::FieldNumberTooLarge,
                "Sample key at byte 0: field number out of range",
            ),
            (
                &[0x08, 0x01, 0x0a, 0x00],
                WireErrorKind::WrongWireType {
                    expected: WireType::Varint,
                    got: WireType::Len,
                },
                "Sample.a at byte 3: expected wire type varint, got length-delimited",
            ),
            (
                &[0x1a, 0x05, b'a'],
                WireErrorKind::LengthTooLarge { length: 5, left: 1 },
                "Sample.c at byte 1: length 5 is larger than the 1 bytes left",
            ),
            (
                &[0x11, 1, 2, 3],
                WireErrorKind::Truncated,
                "Sample.b at byte 1: message ends inside a field",
            ),
        ];
        for &(bytes, kind, text) in cases {
            let err = read_sample(bytes).unwrap_err();
            assert_eq!(err.kind, kind, "input {bytes:02x?}");
            assert_eq!(err.to_string(), text, "input {bytes:02x?}");
        }
    }

    #[test]
    fn nested_errors_carry_the_absolute_offset() {
        // Field 5 holds a message whose varint is cut short.
        let m = [0x08, 0x01, 0x2a, 0x02, 0x08, 0x80];
        let err = read_sample(&m).unwrap_err();
        assert_eq!(err.message, "Inner");
        assert_eq!(err.offset, 5);
        assert_eq!(err.kind, WireErrorKind::Truncated);
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut m = vec![0x1a];
        m.extend_from_slice(&encode_varint(u64::MAX));
        let err = read_sample(&m).unwrap_err();
        assert!(
            matches!(err.kind, WireErrorKind::LengthTooLarge { .. }),
            "{err}"
        );
    }

    #[test]
    fn count_stops_at_the_first_framing_error() {
        let mut m = Vec::new();
        for _ in 0..3 {
            m.extend_from_slice(&[0x12, 0x01, 0x00]);
        }
        m.extend_from_slice(&[0x08, 0x01]);
        let r = Reader::new(&m, "Sample");
        assert_eq!(r.count(2), 3);
        assert_eq!(r.count(1), 1);
        // A field whose length runs past the end is counted; nothing after it is.
        m.extend_from_slice(&[0x12, 0x09]);
        m.extend_from_slice(&[0x12, 0x01, 0x00]);
        assert_eq!(Reader::new(&m, "Sample").count(2), 4);
    }
}
