//! The Zipkin v2 JSON span shape (zipkin2-api.yaml, `Span`), borrowing
//! strings from the request body. Fields that can make one span invalid are
//! [`Scalar`]s, checked during conversion, so a bad span is rejected alone.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::otlp::json::{Scalar, list, object};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawSpan<'a> {
    #[serde(borrow)]
    pub trace_id: Scalar<'a>,
    #[serde(borrow)]
    pub id: Scalar<'a>,
    #[serde(borrow)]
    pub parent_id: Scalar<'a>,
    #[serde(borrow)]
    pub name: Scalar<'a>,
    #[serde(borrow)]
    pub kind: Scalar<'a>,
    #[serde(borrow)]
    pub timestamp: Scalar<'a>,
    #[serde(borrow)]
    pub duration: Scalar<'a>,
    #[serde(borrow)]
    pub debug: Scalar<'a>,
    #[serde(borrow)]
    pub shared: Scalar<'a>,
    #[serde(borrow, deserialize_with = "object")]
    pub local_endpoint: Option<RawEndpoint<'a>>,
    #[serde(borrow, deserialize_with = "object")]
    pub remote_endpoint: Option<RawEndpoint<'a>>,
    #[serde(borrow, deserialize_with = "list")]
    pub annotations: Vec<RawAnnotation<'a>>,
    #[serde(borrow)]
    pub tags: RawTags<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawEndpoint<'a> {
    #[serde(borrow)]
    pub service_name: Scalar<'a>,
    #[serde(borrow)]
    pub ipv4: Scalar<'a>,
    #[serde(borrow)]
    pub ipv6: Scalar<'a>,
    #[serde(borrow)]
    pub port: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawAnnotation<'a> {
    #[serde(borrow)]
    pub timestamp: Scalar<'a>,
    #[serde(borrow)]
    pub value: Scalar<'a>,
}

/// `tags`, a JSON object of strings, in the order sent. Values are read as
/// [`Scalar`]s so a number or an object in a tag rejects its span, not the
/// whole request.
#[derive(Debug, Default)]
pub(super) struct RawTags<'a>(pub Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawTags<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(TagsVisitor)
    }
}

struct TagsVisitor;

impl<'de> Visitor<'de> for TagsVisitor {
    type Value = RawTags<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string tags")
    }

    fn visit_none<E>(self) -> Result<RawTags<'de>, E> {
        Ok(RawTags::default())
    }

    fn visit_unit<E>(self) -> Result<RawTags<'de>, E> {
        Ok(RawTags::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawTags<'de>, D::Error> {
        deserializer.deserialize_map(TagsVisitor)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTags<'de>, A::Error> {
        // No size hint from serde_json; the body limit bounds the length.
        let mut tags = Vec::new();
        // Keys are read as `Scalar`s because serde's `Cow<str>` never
        // borrows; JSON object keys are always strings.
        while let Some((key, value)) = map.next_entry::<Scalar<'de>, Scalar<'de>>()? {
            if let Scalar::Str(key) = key {
                tags.push((key, value));
            }
        }
        Ok(RawTags(tags))
    }
}
