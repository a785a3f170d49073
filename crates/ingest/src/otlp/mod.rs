//! OTLP decoders: protobuf ([`proto`]) and the OTLP/JSON mapping ([`json`]).

pub mod json;
pub mod proto;
