//! Trace and span ids: fixed-size byte arrays, shown as lowercase hex.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("{what} must be {expected} bytes, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{what} must be {expected} hex digits, got {got} characters")]
    HexLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{what} is not hex: `{text}`")]
    NotHex { what: &'static str, text: String },
    #[error("{what} is all zeroes, which OpenTelemetry defines as invalid")]
    Zero { what: &'static str },
}

macro_rules! define_id {
    ($name:ident, $len:expr, $what:expr) => {
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
        )]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }

            /// Reads an id from its raw bytes; the length must be exact and
            /// the id not all zeroes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    what: $what,
                    expected: $len,
                    got: bytes.len(),
                })?;
                let id = $name(arr);
                if id.is_zero() {
                    return Err(IdError::Zero { what: $what });
                }
                Ok(id)
            }

            /// Reads an id from hex (either case). Shorter Zipkin-style ids
            /// are not accepted here: see [`Self::from_hex_padded`].
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                if text.len() != $len * 2 {
                    return Err(IdError::HexLength {
                        what: $what,
                        expected: $len * 2,
                        got: text.len(),
                    });
                }
                let mut out = [0u8; $len];
                decode_hex(text.as_bytes(), &mut out).map_err(|()| IdError::NotHex {
                    what: $what,
                    text: truncate(text),
                })?;
                let id = $name(out);
                if id.is_zero() {
                    return Err(IdError::Zero { what: $what });
                }
                Ok(id)
            }

            /// Reads hex of up to the full length, left-padding with zeroes
            /// (Zipkin allows 64-bit trace ids and omits leading zeroes).
            pub fn from_hex_padded(text: &str) -> Result<Self, IdError> {
                if text.is_empty() || text.len() > $len * 2 {
                    return Err(IdError::HexLength {
                        what: $what,
                        expected: $len * 2,
                        got: text.len(),
                    });
                }
                let mut padded = [b'0'; $len * 2];
                padded[$len * 2 - text.len()..].copy_from_slice(text.as_bytes());
                let mut out = [0u8; $len];
                decode_hex(&padded, &mut out).map_err(|()| IdError::NotHex {
                    what: $what,
                    text: truncate(text),
                })?;
                let id = $name(out);
                if id.is_zero() {
                    return Err(IdError::Zero { what: $what });
                }
                Ok(id)
            }

            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity($len * 2);
                for b in self.0 {
                    s.push(HEX[(b >> 4) as usize] as char);
                    s.push(HEX[(b & 0xf) as usize] as char);
                }
                s
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $name::from_hex(s)
            }
        }
    };
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(text: &[u8], out: &mut [u8]) -> Result<(), ()> {
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hi = hex_digit(pair[0]).ok_or(())?;
        let lo = hex_digit(pair[1]).ok_or(())?;
        out[i] = (hi << 4) | lo;
    }
    Ok(())
}

define_id!(TraceId, 16, "trace id");
define_id!(SpanId, 8, "span id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = TraceId::from_hex("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(id.to_hex(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(
            SpanId::from_hex("eee19b7ec3c1b174").unwrap().to_hex(),
            "eee19b7ec3c1b174"
        );
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(matches!(
            TraceId::from_hex("abc"),
            Err(IdError::HexLength { .. })
        ));
        assert!(matches!(
            SpanId::from_hex("zzzzzzzzzzzzzzzz"),
            Err(IdError::NotHex { .. })
        ));
        assert!(matches!(
            SpanId::from_hex("0000000000000000"),
            Err(IdError::Zero { .. })
        ));
        assert!(matches!(
            TraceId::from_slice(&[1; 15]),
            Err(IdError::Length { got: 15, .. })
        ));
    }

    #[test]
    fn zipkin_short_ids_are_padded() {
        let id = TraceId::from_hex_padded("d269b633813fc60c").unwrap();
        assert_eq!(id.to_hex(), "0000000000000000d269b633813fc60c");
        assert!(TraceId::from_hex_padded("").is_err());
    }
}
