//! The few `google.rpc` and `google.protobuf` messages OTLP error responses carry.
//!
//! OTLP/HTTP answers every 4xx and 5xx with a `google.rpc.Status` body, and
//! OTLP/gRPC signals "retry later" with a `google.rpc.RetryInfo` inside the
//! `grpc-status-details-bin` trailer. The field numbers are those of
//! `google/rpc/status.proto`, `google/rpc/error_details.proto`,
//! `google/protobuf/any.proto` and `google/protobuf/duration.proto`; four
//! small messages do not justify a dependency.

use prost::Message;

/// `type_url` of a packed [`RetryInfo`].
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code` (the gRPC status code).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: when the client may retry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<Duration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Duration {
        Duration {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // Always below 1e9, so it fits.
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        }
    }
}

impl Status {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Status {
        Status {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a `RetryInfo` detail telling the client to wait `delay`.
    pub fn with_retry_delay(mut self, delay: std::time::Duration) -> Status {
        let info = RetryInfo {
            retry_delay: Some(delay.into()),
        };
        self.details.push(Any {
            type_url: RETRY_INFO_TYPE_URL.to_string(),
            value: info.encode_to_vec(),
        });
        self
    }

    /// The `RetryInfo` delay among the details, if there is one.
    pub fn retry_delay(&self) -> Option<std::time::Duration> {
        let any = self
            .details
            .iter()
            .find(|any| any.type_url == RETRY_INFO_TYPE_URL)?;
        let delay = RetryInfo::decode(&any.value[..]).ok()?.retry_delay?;
        let seconds = u64::try_from(delay.seconds).ok()?;
        let nanos = u32::try_from(delay.nanos).ok()?;
        std::time::Duration::new(seconds, 0)
            .checked_add(std::time::Duration::from_nanos(u64::from(nanos)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips() {
        let status = Status::new(tonic::Code::ResourceExhausted, "slow down")
            .with_retry_delay(std::time::Duration::from_millis(2500));
        let bytes = status.encode_to_vec();
        let back = Status::decode(&bytes[..]).unwrap();
        assert_eq!(back.code, 8);
        assert_eq!(back.message, "slow down");
        assert_eq!(back.details.len(), 1);
        assert_eq!(back.details[0].type_url, RETRY_INFO_TYPE_URL);
        assert_eq!(
            back.retry_delay(),
            Some(std::time::Duration::from_millis(2500))
        );
    }

    #[test]
    fn wire_bytes_match_the_proto_field_numbers() {
        // code = 3 (field 1, varint), message = "x" (field 2, length-delimited).
        let bytes = Status::new(tonic::Code::InvalidArgument, "x").encode_to_vec();
        assert_eq!(bytes, [0x08, 0x03, 0x12, 0x01, b'x']);
        // seconds = 5 (field 1), nanos = 7 (field 2).
        let bytes = Duration {
            seconds: 5,
            nanos: 7,
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x08, 0x05, 0x10, 0x07]);
    }

    #[test]
    fn no_retry_info_means_no_delay() {
        assert_eq!(
            Status::new(tonic::Code::InvalidArgument, "bad").retry_delay(),
            None
        );
    }
}
