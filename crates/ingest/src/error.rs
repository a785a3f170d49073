//! Why a whole request could not be decoded.

/// A request-level decoding failure. Record-level problems are not errors:
/// they are counted in [`crate::Decoded`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a valid message of the expected type.
    #[error("malformed {format}: {message}")]
    Malformed {
        format: &'static str,
        message: String,
    },
    /// The body, or what it decompresses to, is over the configured limit.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    /// A compression the receiver does not speak.
    #[error("unsupported content encoding `{0}` (supported: gzip, deflate, identity)")]
    UnsupportedEncoding(String),
}

impl DecodeError {
    pub fn malformed(format: &'static str, message: impl Into<String>) -> Self {
        DecodeError::Malformed {
            format,
            message: message.into(),
        }
    }
}
