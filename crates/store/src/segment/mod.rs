//! Segments: immutable Apache Parquet files holding the spans and logs of a
//! flushed hot tier.
//!
//! # On disk
//!
//! A segment is three files in the `segments/` directory, named by the
//! segment id zero-padded to 20 digits:
//!
//! ```text
//! 00000000000000000001.spans.parquet      one row per span, sorted by (trace_id, start_time, span_id)
//! 00000000000000000001.logs.parquet       one row per log record, sorted by (trace_id, time); no trace id last
//! 00000000000000000001.resources.parquet  one row per distinct (resource, scope) pair, by resource_id
//! ```
//!
//! All are plain Parquet (zstd, dictionary encoding, page statistics with a
//! column and offset index, bloom filters on `trace_id` and on the
//! high-cardinality lookup columns), readable by DuckDB, ClickHouse or any
//! other Parquet reader: a span's resource is the resources row with its
//! `resource_id` (a join). docs/STORAGE.md lists every column.
//!
//! Spans keep the security fields investigators search by in **dedicated
//! columns** (`client_address`, `enduser_id`, `session_id`, ...: see
//! [`DedicatedColumn`]), lifted out of the span attributes when present with
//! the expected type; every other attribute is in the generic `attributes`
//! list of `{key, str, int, double, bool, bytes, json}` structs, exactly one
//! value field set (arrays and key-value lists as OTLP/JSON `AnyValue` text in
//! `json`; an empty value has none).
//!
//! **Resources are stored once.** The spans of one process share its
//! resource (nine to twenty attributes from the SDK: service, host,
//! process, container, cloud), so format version 1, which repeated the
//! resource and scope on every row, spent about a third of a write's
//! instructions on them. Version 2 keeps each distinct pair once in the
//! resources file; a row keeps its `resource_id` and, for pruning, its
//! `service_name`. Version 1 segments stay readable.
//!
//! Files are written as `*.tmp`, fsynced, renamed and the directory fsynced
//! ([`write_segment`]), so a segment file either is complete or does not
//! exist under its final name.
//!
//! # Read path
//!
//! [`Segment::open`] reads and checks the footers (schema, format version,
//! segment id) and keeps the Parquet metadata with the page index in memory;
//! bloom filters are read on first use and cached. [`Segment::trace`] then
//! reads only what can hold the trace:
//!
//! 1. row groups whose `trace_id` min/max cover the id and whose bloom filter
//!    may contain it (rows are sorted by trace id, so usually one);
//! 2. within them, the pages whose `trace_id` min/max (column index) cover
//!    the id, as a row selection: pages of other columns outside those rows
//!    are skipped unread (offset index);
//! 3. a row filter on `trace_id` keeps exactly the trace's rows;
//! 4. the resources those rows name, and only those, from the resources
//!    file (a row selection: row `i` holds `resource_id` `i`).
//!
//! [`Segment::scan_spans`] prunes the same way by start time, service name and
//! equality on dedicated columns (bloom filters on `client_address`,
//! `enduser_id` and `session_id`), then applies the filter exactly.
//!
//! # Round trip
//!
//! A span read back equals the one written, except for the order of its
//! attributes: the dedicated attributes come first, in the order of
//! [`DedicatedColumn::ALL`], then the others in their original order.
//! Resources and scopes are equal by value; rows of one resource read
//! together share one `Arc`.

use std::collections::HashSet;
use std::sync::Arc;

use tracewarden_model::TraceId;

mod attributes;
mod file;
mod pairs;
mod prune;
mod reader;
mod records;
mod schema;
mod writer;

pub use reader::Segment;
pub(crate) use writer::{SpanFacts, span_row_bytes, span_time_range, widen, write_segment_sized};
pub use writer::{write_segment, write_segment_with_key};

/// Value of the `tracewarden.segment.version` key of every file's metadata:
/// 2 since resources are stored once (version 1 files are still read).
pub const FORMAT_VERSION: u16 = 2;

/// The oldest format version read.
pub const OLDEST_FORMAT_VERSION: u16 = 1;

/// Key-value metadata keys of segment files.
pub mod metadata_keys {
    /// The segment format version (`"1"`).
    pub const VERSION: &str = "tracewarden.segment.version";
    /// The segment id, in decimal.
    pub const SEGMENT_ID: &str = "tracewarden.segment.id";
    /// `"spans"`, `"logs"` or `"resources"`.
    pub const KIND: &str = "tracewarden.segment.kind";
    /// Rows in the file (spans or log records), in decimal.
    pub const ROWS: &str = "tracewarden.segment.rows";
    /// The segment's time range, in decimal nanoseconds since the Unix epoch
    /// (see [`super::WrittenSegment`]).
    pub const MIN_TIME: &str = "tracewarden.segment.min_time_unix_nano";
    pub const MAX_TIME: &str = "tracewarden.segment.max_time_unix_nano";
    /// Per row group (separated by `;`), the leaf columns (comma-separated
    /// positions, depth first) holding no value: lists empty on every row,
    /// fields null on every entry. A reader may skip reading them.
    pub const EMPTY_LEAVES: &str = "tracewarden.segment.empty_leaves";
}

/// The name of segment `id`'s spans file.
pub fn spans_file_name(id: u64) -> String {
    format!("{id:020}.spans.parquet")
}

/// The name of segment `id`'s logs file.
pub fn logs_file_name(id: u64) -> String {
    format!("{id:020}.logs.parquet")
}

/// The name of segment `id`'s resources file (format version 2 on).
pub fn resources_file_name(id: u64) -> String {
    format!("{id:020}.resources.parquet")
}

/// How [`write_segment`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentWriteOptions {
    /// Rows per row group (a row group may end earlier when its data would
    /// exceed [`MAX_ROW_GROUP_BYTES`]).
    pub row_group_rows: usize,
    /// zstd level, 1 (fast) to 22 (small).
    pub zstd_level: i32,
    /// False-positive probability of the bloom filters, in (0, 1).
    pub bloom_fpp: f64,
}

impl Default for SegmentWriteOptions {
    fn default() -> Self {
        SegmentWriteOptions {
            row_group_rows: 65_536,
            zstd_level: 3,
            bloom_fpp: 0.01,
        }
    }
}

/// Estimated bytes of variable-length data above which a row group ends
/// before `row_group_rows`. Bounds the memory a row group takes while
/// written, and keeps every Arrow array under its 2 GiB (i32 offset) limit.
pub const MAX_ROW_GROUP_BYTES: usize = 256 << 20;

/// One file of a written segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    /// The file name in the segments directory.
    pub name: String,
    pub bytes: u64,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// What [`write_segment`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenSegment {
    pub id: u64,
    /// The spans file, the logs file, then the resources file.
    pub files: Vec<WrittenFile>,
    pub spans: u64,
    pub logs: u64,
    /// The earliest span start or log time (the observed time for a log
    /// record without a time); 0 for an empty segment.
    pub min_time_unix_nano: u64,
    /// The latest span end (or start, if later) or log time; 0 for an
    /// empty segment.
    pub max_time_unix_nano: u64,
}

/// Which spans [`Segment::scan_spans`] returns: every condition set must hold.
#[derive(Default, Clone, Debug, PartialEq)]
pub struct SpanFilter {
    /// Spans starting at or after this time.
    pub start_unix_nano: Option<u64>,
    /// Spans starting before this time (exclusive).
    pub end_unix_nano: Option<u64>,
    /// Spans of this service (`service.name` of the resource).
    pub service_name: Option<String>,
    /// Spans whose dedicated column equals the value. For
    /// [`DedicatedColumn::HttpResponseStatusCode`] the value is the decimal
    /// number; a value that is not one matches nothing.
    pub equals: Vec<(DedicatedColumn, String)>,
    /// Spans of these traces only (a query assembling many traces from
    /// every tier reads each tier once for all of them).
    pub trace_ids: Option<Arc<HashSet<TraceId>>>,
    /// Spans with a string attribute of this key equal to the value (a
    /// string, not an element of an array). A
    /// generic attribute has no statistics to prune by, but a segment
    /// compares it on the attribute column's keys and strings before a
    /// span is decoded, so only matching spans are built. (A dedicated
    /// column's key is read from its column.)
    pub attribute_equals: Vec<(String, String)>,
    /// At most this many spans, the first in file order.
    pub limit: Option<usize>,
}

/// Which parts of a span a scan decodes ([`Segment::for_each_span_projected`]).
/// A query that reads only a few fields leaves the rest unread: the generic
/// attribute column is most of a segment's bytes. Spans read without a part
/// have it empty (no attributes beyond the dedicated columns, no events...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanProjection {
    /// Span attributes other than the dedicated columns.
    pub attributes: bool,
    /// The attributes normalisation renamed, as they arrived.
    pub original_attributes: bool,
    pub events: bool,
    pub links: bool,
    /// The dedicated columns read: bit `i` for [`DedicatedColumn::ALL`]`[i]`
    /// (see [`SpanProjection::with_dedicated`]).
    pub dedicated: u16,
}

impl SpanProjection {
    /// Every part.
    pub const ALL: SpanProjection = SpanProjection {
        attributes: true,
        original_attributes: true,
        events: true,
        links: true,
        dedicated: (1 << DedicatedColumn::ALL.len()) - 1,
    };

    /// Only the span's own fields (ids, name, kind, times, status), its
    /// resource and scope.
    pub const NONE: SpanProjection = SpanProjection {
        attributes: false,
        original_attributes: false,
        events: false,
        links: false,
        dedicated: 0,
    };

    /// This projection with `column` read too.
    pub fn with_dedicated(mut self, column: DedicatedColumn) -> SpanProjection {
        self.dedicated |= 1 << column.index();
        self
    }

    /// The top-level columns of the spans file left unread.
    pub(crate) fn skipped_columns(self) -> Vec<&'static str> {
        let parts = [
            (self.attributes, "attributes"),
            (self.original_attributes, "original_attributes"),
            (self.events, "events"),
            (self.links, "links"),
        ];
        let dedicated = DedicatedColumn::ALL
            .into_iter()
            .map(|c| (self.dedicated & (1 << c.index()) != 0, c.column_name()));
        parts
            .into_iter()
            .chain(dedicated)
            .filter(|(wanted, _)| !wanted)
            .map(|(_, column)| column)
            .collect()
    }
}

/// A span attribute kept in a column of its own, for fast search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DedicatedColumn {
    ClientAddress,
    EnduserId,
    SessionId,
    HttpRoute,
    UrlPath,
    HttpRequestMethod,
    HttpResponseStatusCode,
    UserAgentOriginal,
    ServerAddress,
    ServicePeerName,
    UrlQuery,
}

impl DedicatedColumn {
    /// Every dedicated column, in the order of the spans file's columns;
    /// attributes read back from a segment come first in this order.
    pub const ALL: [DedicatedColumn; 11] = [
        DedicatedColumn::ClientAddress,
        DedicatedColumn::EnduserId,
        DedicatedColumn::SessionId,
        DedicatedColumn::HttpRoute,
        DedicatedColumn::UrlPath,
        DedicatedColumn::UrlQuery,
        DedicatedColumn::HttpRequestMethod,
        DedicatedColumn::HttpResponseStatusCode,
        DedicatedColumn::UserAgentOriginal,
        DedicatedColumn::ServerAddress,
        DedicatedColumn::ServicePeerName,
    ];

    /// The semantic-convention attribute key the column holds.
    pub fn attribute_key(self) -> &'static str {
        use tracewarden_model::semconv;
        match self {
            DedicatedColumn::ClientAddress => semconv::CLIENT_ADDRESS,
            DedicatedColumn::EnduserId => semconv::ENDUSER_ID,
            DedicatedColumn::SessionId => semconv::SESSION_ID,
            DedicatedColumn::HttpRoute => semconv::HTTP_ROUTE,
            DedicatedColumn::UrlPath => semconv::URL_PATH,
            DedicatedColumn::UrlQuery => semconv::URL_QUERY,
            DedicatedColumn::HttpRequestMethod => semconv::HTTP_REQUEST_METHOD,
            DedicatedColumn::HttpResponseStatusCode => semconv::HTTP_RESPONSE_STATUS_CODE,
            DedicatedColumn::UserAgentOriginal => semconv::USER_AGENT_ORIGINAL,
            DedicatedColumn::ServerAddress => semconv::SERVER_ADDRESS,
            DedicatedColumn::ServicePeerName => semconv::SERVICE_PEER_NAME,
        }
    }

    /// The Parquet column name.
    pub fn column_name(self) -> &'static str {
        match self {
            DedicatedColumn::ClientAddress => "client_address",
            DedicatedColumn::EnduserId => "enduser_id",
            DedicatedColumn::SessionId => "session_id",
            DedicatedColumn::HttpRoute => "http_route",
            DedicatedColumn::UrlPath => "url_path",
            DedicatedColumn::UrlQuery => "url_query",
            DedicatedColumn::HttpRequestMethod => "http_request_method",
            DedicatedColumn::HttpResponseStatusCode => "http_response_status_code",
            DedicatedColumn::UserAgentOriginal => "user_agent_original",
            DedicatedColumn::ServerAddress => "server_address",
            DedicatedColumn::ServicePeerName => "service_peer_name",
        }
    }

    /// The column holding attribute `key`, if one does.
    pub fn from_attribute_key(key: &str) -> Option<DedicatedColumn> {
        // Called for every attribute of every span written: the length
        // rules out all but one to three keys before any byte is compared.
        let candidates: &[DedicatedColumn] = match key.len() {
            8 => &[DedicatedColumn::UrlPath],
            9 => &[DedicatedColumn::UrlQuery],
            10 => &[
                DedicatedColumn::EnduserId,
                DedicatedColumn::SessionId,
                DedicatedColumn::HttpRoute,
            ],
            14 => &[
                DedicatedColumn::ClientAddress,
                DedicatedColumn::ServerAddress,
            ],
            17 => &[DedicatedColumn::ServicePeerName],
            19 => &[
                DedicatedColumn::HttpRequestMethod,
                DedicatedColumn::UserAgentOriginal,
            ],
            25 => &[DedicatedColumn::HttpResponseStatusCode],
            _ => &[],
        };
        candidates
            .iter()
            .copied()
            .find(|column| column.attribute_key() == key)
    }

    /// Position in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            DedicatedColumn::ClientAddress => 0,
            DedicatedColumn::EnduserId => 1,
            DedicatedColumn::SessionId => 2,
            DedicatedColumn::HttpRoute => 3,
            DedicatedColumn::UrlPath => 4,
            DedicatedColumn::UrlQuery => 5,
            DedicatedColumn::HttpRequestMethod => 6,
            DedicatedColumn::HttpResponseStatusCode => 7,
            DedicatedColumn::UserAgentOriginal => 8,
            DedicatedColumn::ServerAddress => 9,
            DedicatedColumn::ServicePeerName => 10,
        }
    }

    /// Whether the column holds integers (else strings).
    pub fn is_integer(self) -> bool {
        self == DedicatedColumn::HttpResponseStatusCode
    }

    /// Whether the column has a bloom filter (high-cardinality lookups).
    pub fn has_bloom_filter(self) -> bool {
        matches!(
            self,
            DedicatedColumn::ClientAddress
                | DedicatedColumn::EnduserId
                | DedicatedColumn::SessionId
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedicated_columns_map_both_ways_and_index_matches_all() {
        for (i, column) in DedicatedColumn::ALL.into_iter().enumerate() {
            assert_eq!(column.index(), i);
            assert_eq!(
                DedicatedColumn::from_attribute_key(column.attribute_key()),
                Some(column)
            );
            assert_eq!(
                column.column_name(),
                column.attribute_key().replace('.', "_")
            );
        }
        assert_eq!(DedicatedColumn::from_attribute_key("url.full"), None);
        assert_eq!(DedicatedColumn::from_attribute_key("url.pat"), None);
        assert_eq!(DedicatedColumn::from_attribute_key("client.addresz"), None);
    }

    #[test]
    fn file_names_are_zero_padded_ids() {
        assert_eq!(spans_file_name(1), "00000000000000000001.spans.parquet");
        assert_eq!(
            logs_file_name(u64::MAX),
            "18446744073709551615.logs.parquet"
        );
        assert_eq!(
            resources_file_name(7),
            "00000000000000000007.resources.parquet"
        );
    }
}
