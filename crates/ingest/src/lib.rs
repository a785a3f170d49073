//! Receivers and decoders: how spans and logs get into tracewarden.
//!
//! - [`otlp::proto`] decodes OTLP protobuf straight from the request bytes
//!   into a [`tracewarden_model::Batch`] (no intermediate owned OTLP structs).
//! - [`otlp::json`] decodes the OTLP/JSON mapping.
//! - [`zipkin`] decodes Zipkin v2 JSON spans.
//! - [`receiver::grpc`] and [`receiver::http`] speak the wire protocols and
//!   hand each decoded batch to a [`BatchSink`] (the pipeline: normalise,
//!   redact, WAL). A request is answered only when the sink says the batch
//!   is durable.
//!
//! Every decoder treats bad input as normal input: a framing error fails the
//! whole request with a [`DecodeError`] (HTTP 400, gRPC `INVALID_ARGUMENT`),
//! while a bad record (an id of the wrong length, say) is rejected alone and
//! counted in [`Decoded`], so the valid records of the batch are kept and the
//! sender gets an OTLP partial success.

pub mod compression;
pub mod decoded;
pub mod error;
pub mod limits;
pub mod otlp;
pub mod receiver;
pub mod sink;
pub mod stats;
pub mod zipkin;

pub use decoded::Decoded;
pub use error::DecodeError;
pub use limits::Limits;
pub use sink::{BatchSink, SinkError};
pub use stats::IngestStats;
