#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end: TraceQL over real fixture data, through the real binary.
//!
//! Starts `tracewarden serve`, sends every OTLP/JSON trace fixture of
//! `crates/ingest/tests/fixtures/jaeger-otlp-json/` and `otlp-json/trace.json`
//! to `/v1/traces` and every Zipkin v2 fixture to `/api/v2/spans`, then runs
//! a table of TraceQL queries through `GET /api/v1/search` (and some through
//! Tempo's `GET /api/search`) and compares the exact set of trace ids.
//!
//! The expected ids were NOT produced by tracewarden: the Python script in
//! the comment block at the end of this file reads the fixture files and
//! evaluates each query with hand-written logic (Tempo's semantics and the
//! choices of docs/TRACEQL.md: fully anchored regexes, Tempo's type rules,
//! `.x` = span then resource, nil = absent; the renames of
//! docs/NORMALISATION.md that the queries touch; Zipkin tags as strings,
//! 64-bit Zipkin trace ids left-padded to 32 hex digits). Its output was
//! pasted into [`CASES`] and [`SPAN_COUNTS`]. Run it from the workspace root:
//! `sed -n 's,^// py: \?,,p' crates/tracewarden/tests/traceql_fixtures.rs | python3`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use http::StatusCode;
use serde_json::Value;

use common::{TestServer, get, post};

const JSON: &str = "application/json";

/// The search window: everything from 1970 to 2100 (the SmartThings traces
/// have spans without a timestamp, stored at 0).
const WINDOW: &str = "start=0&end=4102444800&limit=1000";

/// Zipkin fixtures that hold one span object, not an array: the endpoint
/// takes arrays only (Zipkin's own benchmarks decode them with
/// `decodeOne`), so the server rejects them whole and the script skips them.
const ZIPKIN_SINGLE_OBJECTS: &[&str] = &["zipkin2-chinese.json", "zipkin2-client.json"];

/// Spans per trace after ingest (the script's `len(traces[t])`): every
/// span of every accepted fixture is stored, none twice or lost.
const SPAN_COUNTS: &[(&str, usize)] = &[
    ("00000000000000000000000000000001", 1),
    ("00000000000000000000000000000002", 1),
    ("00000000000000000000000000000003", 1),
    ("00000000000000000000000000000004", 1),
    ("00000000000000000000000000000005", 2),
    ("00000000000000000000000000000006", 1),
    ("00000000000000000000000000000007", 2),
    ("00000000000000000000000000000008", 1),
    ("00000000000000000000000000000009", 1),
    ("00000000000000000000000000000010", 1),
    ("00000000000000000000000000000011", 5),
    ("00000000000000000000000000000012", 1),
    ("00000000000000000000000000000013", 1),
    ("00000000000000000000000000000014", 1),
    ("00000000000000000000000000000015", 1),
    ("00000000000000000000000000000016", 1),
    ("00000000000000000000000000000017", 1),
    ("00000000000000000000000000000018", 1),
    ("00000000000000000000000000000019", 1),
    ("00000000000000000000000000000020", 1),
    ("00000000000000000000000000000021", 1),
    ("00000000000000000000000000000221", 1),
    ("00000000000000000000000000000222", 1),
    ("00000000000000000000000000000223", 1),
    ("00000000000000000000000000000224", 1),
    ("00000000000000000000000000000225", 1),
    ("00000000000000000000000000000226", 1),
    ("00000000000000000000000000000227", 1),
    ("00000000000000000000000000000512", 1),
    ("00000000000000000000000000000a12", 1),
    ("00000000000000000000000000001212", 1),
    ("00000000000000000000000000005912", 1),
    ("00000000000000000562809467078eab", 28),
    ("00000000000000000d1a94ebc9256244", 11),
    ("000000000000000014b60fd9ae504820", 1041),
    ("000000000000000019f84f102048e047", 5),
    ("00000000000000001e223ff1f80f1c69", 4),
    ("00000000000000008ce82b2e9ed820ba", 175),
    ("0000000000000000978883983d506fa5", 1),
    ("0000000000000000a03ee8fff1dcd9b9", 16),
    ("0000000000000000ef86c83c0a05a6d6", 8),
    ("5aab74dbb904746bb33447baae403ed6", 4),
    ("5b8efff798038103d269b633813fc60c", 1),
    ("83a9efd15c1c98a977e0711cc93ee28b", 2),
];

/// (query, trace ids it must return), from the script at the end of the file.
#[rustfmt::skip]
const CASES: &[(&str, &[&str])] = &[
    // spanset filters on intrinsics
    ("{ }", &["00000000000000000000000000000001", "00000000000000000000000000000002", "00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000005", "00000000000000000000000000000006", "00000000000000000000000000000007", "00000000000000000000000000000008", "00000000000000000000000000000009", "00000000000000000000000000000010", "00000000000000000000000000000011", "00000000000000000000000000000012", "00000000000000000000000000000013", "00000000000000000000000000000014", "00000000000000000000000000000015", "00000000000000000000000000000016", "00000000000000000000000000000017", "00000000000000000000000000000018", "00000000000000000000000000000019", "00000000000000000000000000000020", "00000000000000000000000000000021", "00000000000000000000000000000221", "00000000000000000000000000000222", "00000000000000000000000000000223", "00000000000000000000000000000224", "00000000000000000000000000000225", "00000000000000000000000000000226", "00000000000000000000000000000227", "00000000000000000000000000000512", "00000000000000000000000000000a12", "00000000000000000000000000001212", "00000000000000000000000000005912", "00000000000000000562809467078eab", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "000000000000000019f84f102048e047", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000978883983d506fa5", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6", "5aab74dbb904746bb33447baae403ed6", "5b8efff798038103d269b633813fc60c", "83a9efd15c1c98a977e0711cc93ee28b"]),
    ("{ false }", &[]),
    ("{ name = \"example-operation-1\" }", &["00000000000000000000000000000011"]),
    ("{ span:name =~ \"query2[0-9]-operation\" }", &["00000000000000000000000000000221", "00000000000000000000000000000222", "00000000000000000000000000000223", "00000000000000000000000000000226", "00000000000000000000000000000512", "00000000000000000000000000000a12", "00000000000000000000000000001212", "00000000000000000000000000005912"]),
    ("{ name =~ \"query2\" }", &[]),
    ("{ name !~ \".*operation.*\" && resource.service.name =~ \"query0.*\" }", &["00000000000000000000000000000002", "00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000009"]),
    ("{ status = error }", &["00000000000000000562809467078eab", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ span:status != unset }", &["00000000000000000562809467078eab", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ status = ok }", &[]),
    ("{ statusMessage = \"401\" }", &["00000000000000008ce82b2e9ed820ba"]),
    ("{ span:statusMessage = \"some error\" }", &["00000000000000000562809467078eab"]),
    ("{ status = error && statusMessage = \"\" }", &["00000000000000000562809467078eab"]),
    ("{ kind = consumer }", &["00000000000000000562809467078eab", "00000000000000000d1a94ebc9256244", "5aab74dbb904746bb33447baae403ed6"]),
    ("{ span:kind = client && resource.service.name = \"example-service-1\" }", &["00000000000000000000000000000011"]),
    ("{ kind != unspecified && resource.service.name =~ \"(query|example).*\" }", &["00000000000000000000000000000011"]),
    ("{ kind = unspecified && name = \"async\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ duration > 5s }", &[]),
    ("{ span:duration >= 7us && duration < 100us }", &["00000000000000000000000000000001", "00000000000000000562809467078eab", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba", "5aab74dbb904746bb33447baae403ed6"]),
    ("{ duration <= 1us && duration > 0ns }", &["00000000000000000000000000000007", "00000000000000000000000000000010", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000018", "00000000000000000000000000000021", "00000000000000000000000000000224", "00000000000000000000000000000225", "00000000000000000000000000000512", "00000000000000000000000000005912", "00000000000000000562809467078eab"]),
    ("{ duration = 2.414ms }", &["000000000000000019f84f102048e047"]),
    ("{ rootName = \"get /\" }", &["5aab74dbb904746bb33447baae403ed6"]),
    ("{ trace:rootName = \"http:/book\" && name = \"insert\" }", &["000000000000000019f84f102048e047"]),
    ("{ rootServiceName = \"servicea\" }", &["00000000000000000562809467078eab", "00000000000000001e223ff1f80f1c69"]),
    ("{ trace:rootService = \"example-service-1\" }", &["00000000000000000000000000000011"]),
    ("{ traceDuration > 1s }", &["00000000000000000000000000000005", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ trace:duration >= 1s }", &["00000000000000000000000000000005", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba", "5b8efff798038103d269b633813fc60c"]),
    ("{ traceDuration < 2us }", &["00000000000000000000000000000010", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000018", "00000000000000000000000000000021", "00000000000000000000000000000224", "00000000000000000000000000000225", "00000000000000000000000000000512", "00000000000000000000000000005912"]),
    ("{ trace:id = \"00000000000000000000000000000011\" }", &["00000000000000000000000000000011"]),
    ("{ trace:id = \"00000000000000001e223ff1f80f1c69\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ trace:id = \"5B8EFFF798038103D269B633813FC60C\" }", &["5b8efff798038103d269b633813fc60c"]),
    // Zipkin's 64-bit form, left-padded as Tempo reads ids.
    ("{ trace:id = \"1e223ff1f80f1c69\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ span:id = \"74280ae0c10d8062\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ span:parentID = \"bf396325699c84bf\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ span:parentID = nil && kind = server }", &["00000000000000000000000000000011", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "000000000000000019f84f102048e047", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000978883983d506fa5", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6", "5aab74dbb904746bb33447baae403ed6"]),
    ("{ event:name = \"brave.flush\" }", &["000000000000000014b60fd9ae504820"]),
    ("{ event:name =~ \"Status.*\" }", &["000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ event:name = \"py_zipkin.logging_end\" }", &["0000000000000000a03ee8fff1dcd9b9"]),
    ("{ link:traceID = \"000000000000000000000000000000ff\" }", &["00000000000000000000000000000012", "00000000000000000000000000000226"]),
    ("{ link:spanID = \"0000000000000002\" }", &["00000000000000000000000000000012", "00000000000000000000000000000226"]),
    ("{ instrumentation:name = \"testing-library\" }", &["00000000000000000000000000000224", "00000000000000000000000000000225"]),
    // scoped and unscoped attributes, literal types, nil
    ("{ span.sameplacetag2 = 123 }", &["00000000000000000000000000000001", "00000000000000000000000000000012", "00000000000000000000000000000015", "00000000000000000000000000000020", "00000000000000000000000000000224"]),
    ("{ span.sameplacetag2 = 123.0 }", &["00000000000000000000000000000001", "00000000000000000000000000000012", "00000000000000000000000000000015", "00000000000000000000000000000020", "00000000000000000000000000000224"]),
    ("{ span.sameplacetag2 = \"123\" }", &[]),
    ("{ span.sameplacetag2 != \"123\" }", &[]),
    ("{ resource.sameplacetag2 > 100 }", &["00000000000000000000000000000003", "00000000000000000000000000000013", "00000000000000000000000000000016"]),
    ("{ span.sameplacetag3 = 72.5 }", &["00000000000000000000000000000001", "00000000000000000000000000000004", "00000000000000000000000000000012", "00000000000000000000000000000015", "00000000000000000000000000000017", "00000000000000000000000000000224"]),
    ("{ resource.sameplacetag3 >= 72 && resource.sameplacetag3 < 73 }", &["00000000000000000000000000000003", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000018", "00000000000000000000000000000019", "00000000000000000000000000000020", "00000000000000000000000000000021"]),
    ("{ .sameplacetag3 <= 72.5 }", &["00000000000000000000000000000001", "00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000012", "00000000000000000000000000000013", "00000000000000000000000000000015", "00000000000000000000000000000016", "00000000000000000000000000000017", "00000000000000000000000000000018", "00000000000000000000000000000019", "00000000000000000000000000000020", "00000000000000000000000000000021", "00000000000000000000000000000224"]),
    ("{ span.sameplacetag4 = true }", &["00000000000000000000000000000001", "00000000000000000000000000000004", "00000000000000000000000000000012", "00000000000000000000000000000015", "00000000000000000000000000000020", "00000000000000000000000000000224"]),
    ("{ resource.sameplacetag4 }", &["00000000000000000000000000000003", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000019", "00000000000000000000000000000021"]),
    ("{ .sameplacetag4 != false }", &["00000000000000000000000000000001", "00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000012", "00000000000000000000000000000013", "00000000000000000000000000000015", "00000000000000000000000000000016", "00000000000000000000000000000019", "00000000000000000000000000000020", "00000000000000000000000000000021", "00000000000000000000000000000224"]),
    ("{ .sameplacetag1 = \"sameplacevalue\" }", &["00000000000000000000000000000001", "00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000012", "00000000000000000000000000000013", "00000000000000000000000000000015", "00000000000000000000000000000016", "00000000000000000000000000000017", "00000000000000000000000000000018", "00000000000000000000000000000019", "00000000000000000000000000000021", "00000000000000000000000000000224"]),
    ("{ resource.sameplacetag1 = \"sameplacevalue\" && span.sameplacetag1 = nil }", &["00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000017"]),
    ("{ span.sameplacetag1 = \"same*\" }", &["00000000000000000000000000000512"]),
    ("{ span.sameplacetag1 =~ `same\\*` }", &["00000000000000000000000000000512"]),
    ("{ span.sameplacetag1 =~ \"sameplacevalue[0-9]\" }", &["00000000000000000000000000000a12", "00000000000000000000000000001212"]),
    ("{ span.sameplacetag1 !~ \"sameplace.*\" }", &["00000000000000000000000000000512"]),
    ("{ span.sameplacetag1 != \"sameplacevalue\" }", &["00000000000000000000000000000512", "00000000000000000000000000000a12", "00000000000000000000000000001212", "00000000000000000000000000005912"]),
    ("{ span.blob != nil }", &["00000000000000000000000000000001", "00000000000000000000000000000012", "00000000000000000000000000000015", "00000000000000000000000000000224"]),
    ("{ resource.blob != nil && span.blob = nil }", &["00000000000000000000000000000003", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000020"]),
    ("{ span.blob = \"AAAwOQ==\" }", &[]),
    ("{ event.sameplacetag2 = 123 && event.sameplacetag3 > 72 && event.sameplacetag4 = true }", &["00000000000000000000000000000002", "00000000000000000000000000000014"]),
    ("{ event.sameplacetag1 != nil }", &["00000000000000000000000000000002", "00000000000000000000000000000014", "00000000000000000000000000000020"]),
    ("{ link.sameplacelinkattribute2 >= 123 && link.sameplacelinkattribute3 = 72.5 }", &["00000000000000000000000000000226"]),
    ("{ link.opentracing.ref_type = \"follows_from\" }", &["00000000000000000000000000000012", "00000000000000000000000000000226"]),
    ("{ span.http.response.status_code >= 400 }", &["000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ span.http.response.status_code = 200 && kind = server }", &["0000000000000000978883983d506fa5"]),
    ("{ span.http.status_code != nil }", &[]),
    ("{ span.error != nil }", &[]),
    ("{ span.response_size = \"67342\" }", &["0000000000000000978883983d506fa5"]),
    ("{ span.response_size = 67342 }", &[]),
    ("{ span.sql.query =~ \"insert into api_book .*\" }", &["000000000000000019f84f102048e047"]),
    ("{ span.service.peer.name = \"telemetrygen-client\" }", &["83a9efd15c1c98a977e0711cc93ee28b"]),
    ("{ span.peer.service != nil }", &[]),
    ("{ span.url.path = \"/book\" && span.http.request.method = \"POST\" }", &["000000000000000019f84f102048e047"]),
    ("{ span.zipkin.shared = true && resource.service.name = \"serviceb\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ resource.service.name = \"unknown_service\" }", &["0000000000000000978883983d506fa5"]),
    ("{ .service.name = \"backend\" }", &["5aab74dbb904746bb33447baae403ed6"]),
    ("{ span.service.name = \"backend\" }", &[]),
    // boolean logic
    ("{ (name = \"get\" || name = \"post\") && resource.service.name = \"servicea\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ name = \"get\" || name = \"post\" && resource.service.name = \"servicea\" }", &["00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6"]),
    ("{ !(span.sameplacetag4 = true) && .sameplacetag1 != nil }", &["00000000000000000000000000000003", "00000000000000000000000000000013", "00000000000000000000000000000016", "00000000000000000000000000000017", "00000000000000000000000000000018", "00000000000000000000000000000019", "00000000000000000000000000000021", "00000000000000000000000000000512", "00000000000000000000000000000a12", "00000000000000000000000000001212", "00000000000000000000000000005912"]),
    ("{ kind = producer || kind = consumer }", &["00000000000000000562809467078eab", "00000000000000000d1a94ebc9256244", "5aab74dbb904746bb33447baae403ed6"]),
    // spanset operators
    ("{ name = \"insert\" } && { name = \"call\" }", &["000000000000000019f84f102048e047"]),
    ("{ kind = producer } && { status = error }", &["00000000000000000562809467078eab"]),
    ("{ name = \"async\" } || { name = \"publish\" }", &["00000000000000000d1a94ebc9256244", "00000000000000001e223ff1f80f1c69", "5aab74dbb904746bb33447baae403ed6"]),
    ("({ kind = producer } || { kind = consumer }) && { status = error }", &["00000000000000000562809467078eab"]),
    ("{ name = \"insert\" } && { name = \"nothing-has-this-name\" }", &[]),
    // structural
    ("{ resource.service.name = \"frontend\" } > { resource.service.name = \"backend\" }", &["5aab74dbb904746bb33447baae403ed6"]),
    ("{ kind = server } > { kind = client }", &["00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "000000000000000019f84f102048e047", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6"]),
    ("{ name = \"get\" && resource.service.name = \"servicea\" } >> { name = \"async\" }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ span:parentID = nil } >> { resource.service.name = \"app_db\" || span.service.peer.name = \"app_db\" }", &["000000000000000019f84f102048e047"]),
    ("{ kind = consumer } < { kind = producer }", &["00000000000000000562809467078eab", "5aab74dbb904746bb33447baae403ed6"]),
    ("{ name = \"async\" } << { kind = server }", &["00000000000000001e223ff1f80f1c69"]),
    ("{ status = error } << { span:parentID = nil }", &["00000000000000000562809467078eab", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ name = \"insert\" } ~ { name = \"call\" }", &["000000000000000019f84f102048e047"]),
    ("{ kind = producer } ~ { kind = consumer }", &[]),
    ("{ } !> { kind = server }", &["00000000000000000000000000000011", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "000000000000000019f84f102048e047", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000978883983d506fa5", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6", "5aab74dbb904746bb33447baae403ed6", "5b8efff798038103d269b633813fc60c", "83a9efd15c1c98a977e0711cc93ee28b"]),
    ("{ kind = server } !> { kind = client }", &["00000000000000000000000000000011", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6"]),
    ("{ resource.service.name = \"auth\" } !>> { resource.service.name = \"auth\" }", &["000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ kind = client } !< { kind = server }", &["00000000000000000000000000000011", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000978883983d506fa5", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6", "5aab74dbb904746bb33447baae403ed6", "5b8efff798038103d269b633813fc60c", "83a9efd15c1c98a977e0711cc93ee28b"]),
    ("{ name = \"insert\" } !<< { kind = server }", &["00000000000000000000000000000011", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000978883983d506fa5", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6", "5aab74dbb904746bb33447baae403ed6", "5b8efff798038103d269b633813fc60c", "83a9efd15c1c98a977e0711cc93ee28b"]),
    ("{ kind = client } !~ { kind = client }", &["00000000000000000000000000000011", "00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "00000000000000001e223ff1f80f1c69", "00000000000000008ce82b2e9ed820ba", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6"]),
    // pipelines
    ("{ } | count() > 100", &["000000000000000014b60fd9ae504820", "00000000000000008ce82b2e9ed820ba"]),
    ("{ resource.service.name = \"auth\" } | count() > 100", &["000000000000000014b60fd9ae504820"]),
    ("{ kind = client } | count() = 4", &["00000000000000000d1a94ebc9256244", "000000000000000019f84f102048e047"]),
    ("{ status = error } | count() > 2", &["00000000000000000562809467078eab"]),
    ("{ name = \"insert\" } | avg(duration) > 1500us", &["000000000000000019f84f102048e047"]),
    ("{ kind = client } | avg(duration) > 100ms", &["00000000000000000d1a94ebc9256244"]),
    ("{ resource.service.name =~ \"query.*\" } | max(duration) >= 7us", &["00000000000000000000000000000001", "00000000000000000000000000000221", "00000000000000000000000000000222", "00000000000000000000000000000223", "00000000000000000000000000000227"]),
    ("{ } | min(duration) >= 100us", &["00000000000000000000000000000011", "00000000000000000000000000000221", "00000000000000000000000000000222", "00000000000000000000000000000223", "00000000000000000000000000000227", "000000000000000019f84f102048e047", "00000000000000001e223ff1f80f1c69", "0000000000000000978883983d506fa5", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6", "5b8efff798038103d269b633813fc60c", "83a9efd15c1c98a977e0711cc93ee28b"]),
    ("{ } | sum(duration) > 10s", &["000000000000000014b60fd9ae504820"]),
    ("{ } | sum(span.sameplacetag2) >= 123", &["00000000000000000000000000000001", "00000000000000000000000000000012", "00000000000000000000000000000015", "00000000000000000000000000000020", "00000000000000000000000000000224"]),
    ("{ } | avg(.sameplacetag3) = 72.5", &["00000000000000000000000000000001", "00000000000000000000000000000003", "00000000000000000000000000000004", "00000000000000000000000000000012", "00000000000000000000000000000013", "00000000000000000000000000000015", "00000000000000000000000000000016", "00000000000000000000000000000017", "00000000000000000000000000000018", "00000000000000000000000000000019", "00000000000000000000000000000020", "00000000000000000000000000000021", "00000000000000000000000000000224"]),
    ("{ } | by(resource.service.name) | count() > 100", &["000000000000000014b60fd9ae504820"]),
    ("{ kind = client } | by(span.service.peer.name) | count() >= 3", &["00000000000000000d1a94ebc9256244", "000000000000000014b60fd9ae504820", "000000000000000019f84f102048e047", "00000000000000008ce82b2e9ed820ba", "0000000000000000a03ee8fff1dcd9b9", "0000000000000000ef86c83c0a05a6d6"]),
    ("{ name = \"insert\" } | select(span.sql.query)", &["000000000000000019f84f102048e047"]),
    ("{ kind = producer } | coalesce()", &["00000000000000000562809467078eab", "00000000000000000d1a94ebc9256244", "5aab74dbb904746bb33447baae403ed6"]),
    ("{ } | by(resource.service.name) | count() > 100 | coalesce()", &["000000000000000014b60fd9ae504820"]),
    ("{ kind = server } | by(resource.service.name) | coalesce() | count() > 100", &["000000000000000014b60fd9ae504820"]),
];

/// Queries also sent to Tempo's `GET /api/search`, which must agree.
const TEMPO_CASES: &[&str] = &[
    "{ status = error }",
    "{ span.sameplacetag1 =~ \"sameplacevalue[0-9]\" }",
    "{ kind = server } > { kind = client }",
    "{ name = \"insert\" } !<< { kind = server }",
    "{ } | by(resource.service.name) | count() > 100",
    "{ trace:rootService = \"example-service-1\" }",
    "{ false }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceql_table_over_real_fixtures() {
    let data = tempfile::tempdir().expect("temp data dir");
    let server = TestServer::start(data.path()).await;
    ingest_fixtures(&server).await;
    assert_span_counts(&server).await;

    let mut failures = Vec::new();
    for (query, expected) in CASES {
        let answer = search(&server, "/api/v1/search", query).await;
        let found = trace_ids(&answer, "traceId");
        let expected = expected_ids(expected);
        if found != expected {
            failures.push(format!(
                "{query}\n  expected {expected:?}\n  got      {found:?}\n  missing  {:?}\n  extra    {:?}",
                expected.difference(&found).collect::<Vec<_>>(),
                found.difference(&expected).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries returned other traces than the script computed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );

    for query in TEMPO_CASES {
        let expected = CASES
            .iter()
            .find(|(q, _)| q == query)
            .map(|(_, ids)| expected_ids(ids))
            .unwrap_or_else(|| panic!("{query} is not in CASES"));
        let answer = search(&server, "/api/search", query).await;
        assert_eq!(
            trace_ids(&answer, "traceID"),
            expected,
            "Tempo API: {query}"
        );
    }
}

/// The values the pipeline reports, computed by hand from the fixture
/// (simple-db-p6.json, mobile-web-install.json): aggregates, `by` groups
/// and `select`ed fields, not only which traces matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_values_over_real_fixtures() {
    let data = tempfile::tempdir().expect("temp data dir");
    let server = TestServer::start(data.path()).await;
    ingest_fixtures(&server).await;

    // The three `insert` spans last 2033, 2414 and 1118 µs: 1855 µs on average.
    let answer = search(
        &server,
        "/api/v1/search",
        "{ name = \"insert\" } | avg(duration) > 1500us",
    )
    .await;
    let sets = &answer["traces"][0]["spanSets"];
    assert_eq!(sets.as_array().map(Vec::len), Some(1), "{answer:#}");
    assert_eq!(sets[0]["matched"], 3, "{answer:#}");
    assert_eq!(
        sets[0]["attributes"]["avg(duration)"], 1_855_000,
        "{answer:#}"
    );

    // platformapi 335, bookie 198, auth 188 spans; no other service has 100.
    let answer = search(
        &server,
        "/api/v1/search",
        "{ } | by(resource.service.name) | count() > 100",
    )
    .await;
    let mut groups: Vec<(String, u64)> = answer["traces"][0]["spanSets"]
        .as_array()
        .expect("spanSets")
        .iter()
        .map(|set| {
            let service = set["attributes"]["resource.service.name"]
                .as_str()
                .unwrap_or_else(|| panic!("no by() value in {set:#}"))
                .to_string();
            (service, set["matched"].as_u64().expect("matched"))
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            ("auth".to_string(), 188),
            ("bookie".to_string(), 198),
            ("platformapi".to_string(), 335)
        ],
        "{answer:#}"
    );

    // Each insert span carries its SQL statement as the selected field.
    let answer = search(
        &server,
        "/api/v1/search",
        "{ name = \"insert\" } | select(span.sql.query)",
    )
    .await;
    let spans = answer["traces"][0]["spanSets"][0]["spans"]
        .as_array()
        .expect("spans");
    assert_eq!(spans.len(), 3, "{answer:#}");
    for span in spans {
        let query = span["selected"]["span.sql.query"].as_str().unwrap_or("");
        assert!(query.starts_with("insert into "), "{span:#}");
    }
}

/// Sends every fixture; asserts the ones the table relies on are accepted
/// whole.
async fn ingest_fixtures(server: &TestServer) {
    let root = fixtures();
    let mut otlp = json_files(&root.join("jaeger-otlp-json"));
    otlp.push(root.join("otlp-json/trace.json"));
    for path in otlp {
        let answer = post(&server.otlp_http_url("/v1/traces"), JSON, read(&path)).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {}",
            path.display(),
            answer.text()
        );
        let rejected = answer.json()["partialSuccess"]["rejectedSpans"].clone();
        assert!(
            rejected.is_null() || rejected == 0 || rejected == "0",
            "{}: {}",
            path.display(),
            answer.text()
        );
    }
    for path in json_files(&root.join("zipkin-v2")) {
        let answer = post(&server.zipkin_url("/api/v2/spans"), JSON, read(&path)).await;
        let single = ZIPKIN_SINGLE_OBJECTS
            .iter()
            .any(|name| path.ends_with(name));
        if single && answer.status.is_client_error() {
            continue;
        }
        assert!(
            answer.status.is_success() && !single,
            "{}: {} {}",
            path.display(),
            answer.status,
            answer.text()
        );
    }
}

/// `{ }` finds every trace, each with all its spans.
async fn assert_span_counts(server: &TestServer) {
    let answer = search(server, "/api/v1/search", "{ }").await;
    let mut found: Vec<(String, u64)> = answer["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| {
            let id = t["traceId"].as_str().expect("traceId").to_string();
            (id, t["spanCount"].as_u64().expect("spanCount"))
        })
        .collect();
    found.sort();
    let expected: Vec<(String, u64)> = SPAN_COUNTS
        .iter()
        .map(|(id, n)| (id.to_string(), *n as u64))
        .collect();
    assert_eq!(found, expected);
}

async fn search(server: &TestServer, path: &str, query: &str) -> Value {
    let url = server.api_url(&format!("{path}?q={}&{WINDOW}", percent_encode(query)));
    let answer = get(&url).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{query}: {}\n--- server stderr\n{}",
        answer.text(),
        server.stderr()
    );
    let json = answer.json();
    assert!(
        json["metrics"]["partial"].is_null(),
        "{query}: partial result {json:#}"
    );
    json
}

/// The trace ids of a search answer, left-padded to 32 hex digits (Tempo's
/// API may drop leading zeroes).
fn trace_ids(answer: &Value, field: &str) -> BTreeSet<String> {
    answer["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("no traces in {answer:#}"))
        .iter()
        .map(|t| {
            let id = t[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {t:#}"));
            format!("{:0>32}", id.to_ascii_lowercase())
        })
        .collect()
}

fn expected_ids(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ingest/tests/fixtures")
}

/// The `.json` files of a directory, sorted (the script reads them in the same order).
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn percent_encoding_escapes_all_but_unreserved() {
    assert_eq!(
        percent_encode("{ a = \"b c\" }"),
        "%7B%20a%20%3D%20%22b%20c%22%20%7D"
    );
    assert_eq!(percent_encode("x.y-z_~"), "x.y-z_~");
    assert_eq!(percent_encode("µ"), "%C2%B5");
}

// The script that computed CASES and SPAN_COUNTS (python3, standard library
// only). Each query is written twice: as TraceQL text and as a Python
// predicate over the spans read from the fixture files.
//
// py: import json, glob, os, re, base64
// py: F = "crates/ingest/tests/fixtures/"
// py: KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
// py: STATUS = {0: "unset", 1: "ok", 2: "error"}
// py:
// py: def otlp_value(v):
// py:     (t, x), = v.items()
// py:     return {"stringValue": str, "intValue": int, "doubleValue": float, "boolValue": bool,
// py:             "bytesValue": base64.b64decode}[t](x)
// py:
// py: def kvs(lst):
// py:     return {a["key"]: otlp_value(a["value"]) for a in lst or []}
// py:
// py: # The few legacy names the queries below touch, renamed as docs/NORMALISATION.md says.
// py: def normalise(attrs, zipkin_error_status):
// py:     out = dict(attrs)
// py:     if "http.status_code" in out:
// py:         v = out.pop("http.status_code")
// py:         out.setdefault("http.response.status_code", int(v))
// py:     if "http.method" in out:
// py:         out.setdefault("http.request.method", out.pop("http.method"))
// py:     if "http.path" in out:
// py:         out.setdefault("url.path", out.pop("http.path"))
// py:     if "peer.service" in out:
// py:         out.setdefault("service.peer.name", out.pop("peer.service"))
// py:     if "error" in out:  # Zipkin's error tag becomes the status; the tag leaves `attributes`
// py:         msg = out.pop("error")
// py:         if zipkin_error_status is not None:
// py:             zipkin_error_status[:] = ["error", msg]
// py:     return out
// py:
// py: spans = []
// py: for f in sorted(glob.glob(F + "jaeger-otlp-json/*.json")) + [F + "otlp-json/trace.json"]:
// py:     for rs in json.load(open(f))["resourceSpans"]:
// py:         res = kvs(rs.get("resource", {}).get("attributes"))
// py:         for ss in rs["scopeSpans"]:
// py:             scope = ss.get("scope", {})
// py:             for s in ss["spans"]:
// py:                 st = s.get("status") or {}
// py:                 spans.append(dict(
// py:                     trace=s["traceId"].lower(), id=s["spanId"].lower(),
// py:                     parent=(s.get("parentSpanId") or "").lower() or None,
// py:                     name=s["name"], kind=KINDS[s.get("kind", 0)],
// py:                     status=STATUS[st.get("code", 0)], msg=st.get("message", ""),
// py:                     start=int(s["startTimeUnixNano"]), end=int(s["endTimeUnixNano"]),
// py:                     attrs=normalise(kvs(s.get("attributes")), None), res=res,
// py:                     scope_name=scope.get("name", ""),
// py:                     events=[(e.get("name", ""), kvs(e.get("attributes"))) for e in s.get("events", [])],
// py:                     links=[(l["traceId"].lower(), l["spanId"].lower(), kvs(l.get("attributes")))
// py:                            for l in s.get("links", [])]))
// py: for f in sorted(glob.glob(F + "zipkin-v2/*.json")):
// py:     body = json.load(open(f))
// py:     if not isinstance(body, list):
// py:         continue  # a single span object: the endpoint takes arrays only (rejected)
// py:     for z in body:
// py:         status = ["unset", ""]
// py:         attrs = {}
// py:         remote = z.get("remoteEndpoint") or {}
// py:         if remote.get("serviceName"):
// py:             attrs["service.peer.name"] = remote["serviceName"]
// py:         if z.get("shared"):
// py:             attrs["zipkin.shared"] = True
// py:         attrs.update(z.get("tags", {}))  # tags are strings
// py:         parent = z.get("parentId")
// py:         start = z.get("timestamp", 0) * 1000
// py:         spans.append(dict(
// py:             trace=z["traceId"].rjust(32, "0"), id=z["id"],
// py:             parent=None if parent in (None, z["id"]) else parent,
// py:             name=z.get("name") or "", kind=(z.get("kind") or "unspecified").lower(),
// py:             attrs=normalise(attrs, status), status=status[0], msg=status[1],
// py:             start=start, end=start + z.get("duration", 0) * 1000,
// py:             res={"service.name": (z.get("localEndpoint") or {}).get("serviceName") or "unknown_service"},
// py:             scope_name="", events=[(a["value"], {}) for a in z.get("annotations", [])], links=[]))
// py:
// py: traces = {}
// py: for s in spans:
// py:     traces.setdefault(s["trace"], []).append(s)
// py: for t, ss in traces.items():
// py:     ss.sort(key=lambda s: (s["start"], s["id"]))
// py:     by_id = {}
// py:     for s in ss:
// py:         by_id.setdefault(s["id"], s)  # duplicate span ids: the earliest wins
// py:     for s in ss:
// py:         p = by_id.get(s["parent"]) if s["parent"] else None
// py:         s["p"] = p if p is not s else None
// py:     roots = [s for s in ss if s["parent"] is None]
// py:     root = roots[0] if roots else None  # the earliest root (ties: lowest span id)
// py:     info = dict(id=t, rootName=root and root["name"], rootService=root and root["res"]["service.name"],
// py:                 duration=max(s["end"] for s in ss) - min(s["start"] for s in ss))
// py:     for s in ss:
// py:         s["t"] = info
// py:
// py: def num(v):
// py:     return isinstance(v, (int, float)) and not isinstance(v, bool)
// py:
// py: def cmp(v, op, lit):
// py:     """TraceQL comparison with Tempo's type rules; None (absent) is false."""
// py:     if v is None:
// py:         return False
// py:     if isinstance(v, list):
// py:         return any(cmp(x, op, lit) for x in v)
// py:     if not ((num(v) and num(lit)) or type(v) == type(lit)) or isinstance(v, bytes):
// py:         return False
// py:     if op == "=~": return re.fullmatch(lit, v, re.S) is not None
// py:     if op == "!~": return re.fullmatch(lit, v, re.S) is None
// py:     return {"=": v == lit, "!=": v != lit, ">": v > lit, ">=": v >= lit, "<": v < lit, "<=": v <= lit}[op]
// py:
// py: def sa(s, k): return s["attrs"].get(k)
// py: def ra(s, k): return s["res"].get(k)
// py: def ua(s, k): return s["attrs"][k] if k in s["attrs"] else s["res"].get(k)
// py: def dur(s): return s["end"] - s["start"]
// py: def ev(s, f): return any(f(e) for e in s["events"])
// py: def lk(s, f): return any(f(l) for l in s["links"])
// py: ms, us, sec = 1_000_000, 1_000, 1_000_000_000
// py:
// py: # ---- spanset operators: a spanset is a list of spans of one trace ----
// py: def filt(f): return lambda ss: [s for s in ss if f(s)]
// py: def anc(s):
// py:     seen, p = set(), s["p"]
// py:     while p is not None and id(p) not in seen:
// py:         seen.add(id(p)); yield p; p = p["p"]
// py: def child(a, b): return [y for y in b if any(y["p"] is x for x in a)]
// py: def desc(a, b): return [y for y in b if any(z is x for z in anc(y) for x in a)]
// py: def parent(a, b): return [y for y in b if any(x["p"] is y for x in a)]
// py: def ances(a, b): return [y for y in b if any(z is y for x in a for z in anc(x))]
// py: def sib(a, b): return [y for y in b if y["p"] is not None and any(x is not y and x["p"] is y["p"] for x in a)]
// py: def neg(rel): return lambda a, b: [y for y in b if not any(y is z for z in rel(a, b))]
// py: def struct(rel, fa, fb): return lambda ss: [rel(fa(ss), fb(ss))] if rel(fa(ss), fb(ss)) else []
// py: def sets(f): return lambda ss: [f(ss)] if f(ss) else []
// py: def flat(sets_): return [s for st in sets_ for s in st]
// py: def both(f, g):  # {a} && {b}: both non-empty -> their union (f, g give lists of spansets)
// py:     return lambda ss: [flat(f(ss)) + [s for s in flat(g(ss)) if all(s is not x for x in flat(f(ss)))]] if f(ss) and g(ss) else []
// py: def either(f, g): return lambda ss: f(ss) + g(ss)  # {a} || {b}
// py: def by(key): return lambda sets_: [[s for s in st if key(s) == k] for st in sets_
// py:                                       for k in dict.fromkeys(key(s) for s in st)]
// py: def agg(fn, op, lit): return lambda sets_: [st for st in sets_ if cmp(fn(st), op, lit)]
// py: def count(): return lambda st: len(st)
// py: def avg(f): return lambda st: sum(f(s) for s in st) / len(st)
// py: def coalesce(): return lambda sets_: [[s for st in sets_ for s in st]] if sets_ else []
// py: def pipe(first, *stages):
// py:     def run(ss):
// py:         out = first(ss)
// py:         for stage in stages:
// py:             out = stage(out)
// py:         return out
// py:     return run
// py:
// py: def q(f):
// py:     """Trace ids for which the query yields a non-empty spanset."""
// py:     return sorted(t for t, ss in traces.items() if any(f(ss)))
// py:
// py: QUERIES = []
// py: def case(text, f): QUERIES.append((text, q(f)))
// py: def section(title): QUERIES.append((title, None))
// py: def vals(st, f): return [v for v in (f(s) for s in st) if num(v)]
// py: def AVG(f): return lambda st: (lambda v: sum(v) / len(v) if v else None)(vals(st, f))
// py: def MIN(f): return lambda st: min(vals(st, f), default=None)
// py: def MAX(f): return lambda st: max(vals(st, f), default=None)
// py: def SUM(f): return lambda st: sum(vals(st, f)) if vals(st, f) else None
// py: def CNT(): return len
// py: def S(f): return sets(filt(f))
// py: def ST(rel, fa, fb): return struct(rel, filt(fa), filt(fb))
// py: ALL = lambda s: True
// py: name = lambda s: s["name"]; svc = lambda s: s["res"]["service.name"]
// py:
// py: section('spanset filters on intrinsics')
// py: case('{ }', S(ALL))
// py: case('{ false }', S(lambda s: False))
// py: case('{ name = "example-operation-1" }', S(lambda s: s["name"] == "example-operation-1"))
// py: case('{ span:name =~ "query2[0-9]-operation" }', S(lambda s: cmp(s["name"], "=~", "query2[0-9]-operation")))
// py: case('{ name =~ "query2" }', S(lambda s: cmp(s["name"], "=~", "query2")))
// py: case('{ name !~ ".*operation.*" && resource.service.name =~ "query0.*" }',
// py:      S(lambda s: cmp(s["name"], "!~", ".*operation.*") and cmp(svc(s), "=~", "query0.*")))
// py: case('{ status = error }', S(lambda s: s["status"] == "error"))
// py: case('{ span:status != unset }', S(lambda s: s["status"] != "unset"))
// py: case('{ status = ok }', S(lambda s: s["status"] == "ok"))
// py: case('{ statusMessage = "401" }', S(lambda s: s["msg"] == "401"))
// py: case('{ span:statusMessage = "some error" }', S(lambda s: s["msg"] == "some error"))
// py: case('{ status = error && statusMessage = "" }', S(lambda s: s["status"] == "error" and s["msg"] == ""))
// py: case('{ kind = consumer }', S(lambda s: s["kind"] == "consumer"))
// py: case('{ span:kind = client && resource.service.name = "example-service-1" }',
// py:      S(lambda s: s["kind"] == "client" and svc(s) == "example-service-1"))
// py: case('{ kind != unspecified && resource.service.name =~ "(query|example).*" }',
// py:      S(lambda s: s["kind"] != "unspecified" and cmp(svc(s), "=~", "(query|example).*")))
// py: case('{ kind = unspecified && name = "async" }', S(lambda s: s["kind"] == "unspecified" and s["name"] == "async"))
// py: case('{ duration > 5s }', S(lambda s: dur(s) > 5 * sec))
// py: case('{ span:duration >= 7us && duration < 100us }', S(lambda s: 7 * us <= dur(s) < 100 * us))
// py: case('{ duration <= 1us && duration > 0ns }', S(lambda s: 0 < dur(s) <= us))
// py: case('{ duration = 2.414ms }', S(lambda s: dur(s) == 2414 * us))
// py: case('{ rootName = "get /" }', S(lambda s: s["t"]["rootName"] == "get /"))
// py: case('{ trace:rootName = "http:/book" && name = "insert" }',
// py:      S(lambda s: s["t"]["rootName"] == "http:/book" and s["name"] == "insert"))
// py: case('{ rootServiceName = "servicea" }', S(lambda s: s["t"]["rootService"] == "servicea"))
// py: case('{ trace:rootService = "example-service-1" }', S(lambda s: s["t"]["rootService"] == "example-service-1"))
// py: case('{ traceDuration > 1s }', S(lambda s: s["t"]["duration"] > sec))
// py: case('{ trace:duration >= 1s }', S(lambda s: s["t"]["duration"] >= sec))
// py: case('{ traceDuration < 2us }', S(lambda s: s["t"]["duration"] < 2 * us))
// py: case('{ trace:id = "00000000000000000000000000000011" }', S(lambda s: s["trace"] == "00000000000000000000000000000011"))
// py: case('{ trace:id = "00000000000000001e223ff1f80f1c69" }', S(lambda s: s["trace"] == "00000000000000001e223ff1f80f1c69"))
// py: case('{ trace:id = "5B8EFFF798038103D269B633813FC60C" }', S(lambda s: s["trace"] == "5b8efff798038103d269b633813fc60c"))
// py: case('{ trace:id = "1e223ff1f80f1c69" }', S(lambda s: s["trace"] == "1e223ff1f80f1c69".rjust(32, "0")))
// py: case('{ span:id = "74280ae0c10d8062" }', S(lambda s: s["id"] == "74280ae0c10d8062"))
// py: case('{ span:parentID = "bf396325699c84bf" }', S(lambda s: s["parent"] == "bf396325699c84bf"))
// py: case('{ span:parentID = nil && kind = server }', S(lambda s: s["parent"] is None and s["kind"] == "server"))
// py: case('{ event:name = "brave.flush" }', S(lambda s: ev(s, lambda e: e[0] == "brave.flush")))
// py: case('{ event:name =~ "Status.*" }', S(lambda s: ev(s, lambda e: cmp(e[0], "=~", "Status.*"))))
// py: case('{ event:name = "py_zipkin.logging_end" }', S(lambda s: ev(s, lambda e: e[0] == "py_zipkin.logging_end")))
// py: case('{ link:traceID = "000000000000000000000000000000ff" }', S(lambda s: lk(s, lambda l: l[0] == "000000000000000000000000000000ff")))
// py: case('{ link:spanID = "0000000000000002" }', S(lambda s: lk(s, lambda l: l[1] == "0000000000000002")))
// py: case('{ instrumentation:name = "testing-library" }', S(lambda s: s["scope_name"] == "testing-library"))
// py:
// py: section('scoped and unscoped attributes, literal types, nil')
// py: case('{ span.sameplacetag2 = 123 }', S(lambda s: cmp(sa(s, "sameplacetag2"), "=", 123)))
// py: case('{ span.sameplacetag2 = 123.0 }', S(lambda s: cmp(sa(s, "sameplacetag2"), "=", 123.0)))
// py: case('{ span.sameplacetag2 = "123" }', S(lambda s: cmp(sa(s, "sameplacetag2"), "=", "123")))
// py: case('{ span.sameplacetag2 != "123" }', S(lambda s: cmp(sa(s, "sameplacetag2"), "!=", "123")))
// py: case('{ resource.sameplacetag2 > 100 }', S(lambda s: cmp(ra(s, "sameplacetag2"), ">", 100)))
// py: case('{ span.sameplacetag3 = 72.5 }', S(lambda s: cmp(sa(s, "sameplacetag3"), "=", 72.5)))
// py: case('{ resource.sameplacetag3 >= 72 && resource.sameplacetag3 < 73 }',
// py:      S(lambda s: cmp(ra(s, "sameplacetag3"), ">=", 72) and cmp(ra(s, "sameplacetag3"), "<", 73)))
// py: case('{ .sameplacetag3 <= 72.5 }', S(lambda s: cmp(ua(s, "sameplacetag3"), "<=", 72.5)))
// py: case('{ span.sameplacetag4 = true }', S(lambda s: cmp(sa(s, "sameplacetag4"), "=", True)))
// py: case('{ resource.sameplacetag4 }', S(lambda s: cmp(ra(s, "sameplacetag4"), "=", True)))
// py: case('{ .sameplacetag4 != false }', S(lambda s: cmp(ua(s, "sameplacetag4"), "!=", False)))
// py: case('{ .sameplacetag1 = "sameplacevalue" }', S(lambda s: cmp(ua(s, "sameplacetag1"), "=", "sameplacevalue")))
// py: case('{ resource.sameplacetag1 = "sameplacevalue" && span.sameplacetag1 = nil }',
// py:      S(lambda s: cmp(ra(s, "sameplacetag1"), "=", "sameplacevalue") and sa(s, "sameplacetag1") is None))
// py: case('{ span.sameplacetag1 = "same*" }', S(lambda s: cmp(sa(s, "sameplacetag1"), "=", "same*")))
// py: case('{ span.sameplacetag1 =~ `same\\*` }', S(lambda s: cmp(sa(s, "sameplacetag1"), "=~", r"same\*")))
// py: case('{ span.sameplacetag1 =~ "sameplacevalue[0-9]" }', S(lambda s: cmp(sa(s, "sameplacetag1"), "=~", "sameplacevalue[0-9]")))
// py: case('{ span.sameplacetag1 !~ "sameplace.*" }', S(lambda s: cmp(sa(s, "sameplacetag1"), "!~", "sameplace.*")))
// py: case('{ span.sameplacetag1 != "sameplacevalue" }', S(lambda s: cmp(sa(s, "sameplacetag1"), "!=", "sameplacevalue")))
// py: case('{ span.blob != nil }', S(lambda s: sa(s, "blob") is not None))
// py: case('{ resource.blob != nil && span.blob = nil }', S(lambda s: ra(s, "blob") is not None and sa(s, "blob") is None))
// py: case('{ span.blob = "AAAwOQ==" }', S(lambda s: cmp(sa(s, "blob"), "=", "AAAwOQ==")))
// py: case('{ event.sameplacetag2 = 123 && event.sameplacetag3 > 72 && event.sameplacetag4 = true }',
// py:      S(lambda s: ev(s, lambda e: cmp(e[1].get("sameplacetag2"), "=", 123)) and ev(s, lambda e: cmp(e[1].get("sameplacetag3"), ">", 72))
// py:        and ev(s, lambda e: cmp(e[1].get("sameplacetag4"), "=", True))))
// py: case('{ event.sameplacetag1 != nil }', S(lambda s: ev(s, lambda e: e[1].get("sameplacetag1") is not None)))
// py: case('{ link.sameplacelinkattribute2 >= 123 && link.sameplacelinkattribute3 = 72.5 }',
// py:      S(lambda s: lk(s, lambda l: cmp(l[2].get("sameplacelinkattribute2"), ">=", 123)) and lk(s, lambda l: cmp(l[2].get("sameplacelinkattribute3"), "=", 72.5))))
// py: case('{ link.opentracing.ref_type = "follows_from" }', S(lambda s: lk(s, lambda l: l[2].get("opentracing.ref_type") == "follows_from")))
// py: case('{ span.http.response.status_code >= 400 }', S(lambda s: cmp(sa(s, "http.response.status_code"), ">=", 400)))
// py: case('{ span.http.response.status_code = 200 && kind = server }',
// py:      S(lambda s: cmp(sa(s, "http.response.status_code"), "=", 200) and s["kind"] == "server"))
// py: case('{ span.http.status_code != nil }', S(lambda s: sa(s, "http.status_code") is not None))
// py: case('{ span.error != nil }', S(lambda s: sa(s, "error") is not None))
// py: case('{ span.response_size = "67342" }', S(lambda s: cmp(sa(s, "response_size"), "=", "67342")))
// py: case('{ span.response_size = 67342 }', S(lambda s: cmp(sa(s, "response_size"), "=", 67342)))
// py: case('{ span.sql.query =~ "insert into api_book .*" }', S(lambda s: cmp(sa(s, "sql.query"), "=~", "insert into api_book .*")))
// py: case('{ span.service.peer.name = "telemetrygen-client" }', S(lambda s: cmp(sa(s, "service.peer.name"), "=", "telemetrygen-client")))
// py: case('{ span.peer.service != nil }', S(lambda s: sa(s, "peer.service") is not None))
// py: case('{ span.url.path = "/book" && span.http.request.method = "POST" }',
// py:      S(lambda s: cmp(sa(s, "url.path"), "=", "/book") and cmp(sa(s, "http.request.method"), "=", "POST")))
// py: case('{ span.zipkin.shared = true && resource.service.name = "serviceb" }',
// py:      S(lambda s: cmp(sa(s, "zipkin.shared"), "=", True) and svc(s) == "serviceb"))
// py: case('{ resource.service.name = "unknown_service" }', S(lambda s: svc(s) == "unknown_service"))
// py: case('{ .service.name = "backend" }', S(lambda s: cmp(ua(s, "service.name"), "=", "backend")))
// py: case('{ span.service.name = "backend" }', S(lambda s: cmp(sa(s, "service.name"), "=", "backend")))
// py:
// py: section('boolean logic')
// py: case('{ (name = "get" || name = "post") && resource.service.name = "servicea" }',
// py:      S(lambda s: s["name"] in ("get", "post") and svc(s) == "servicea"))
// py: case('{ name = "get" || name = "post" && resource.service.name = "servicea" }',
// py:      S(lambda s: s["name"] == "get" or (s["name"] == "post" and svc(s) == "servicea")))
// py: case('{ !(span.sameplacetag4 = true) && .sameplacetag1 != nil }',
// py:      S(lambda s: not cmp(sa(s, "sameplacetag4"), "=", True) and ua(s, "sameplacetag1") is not None))
// py: case('{ kind = producer || kind = consumer }', S(lambda s: s["kind"] in ("producer", "consumer")))
// py:
// py: section('spanset operators')
// py: isn = lambda n: (lambda s: s["name"] == n)
// py: isk = lambda k: (lambda s: s["kind"] == k)
// py: iss = lambda v: (lambda s: svc(s) == v)
// py: case('{ name = "insert" } && { name = "call" }', both(S(isn("insert")), S(isn("call"))))
// py: case('{ kind = producer } && { status = error }', both(S(isk("producer")), S(lambda s: s["status"] == "error")))
// py: case('{ name = "async" } || { name = "publish" }', either(S(isn("async")), S(isn("publish"))))
// py: case('({ kind = producer } || { kind = consumer }) && { status = error }',
// py:      both(either(S(isk("producer")), S(isk("consumer"))), S(lambda s: s["status"] == "error")))
// py: case('{ name = "insert" } && { name = "nothing-has-this-name" }', both(S(isn("insert")), S(isn("nothing-has-this-name"))))
// py:
// py: section('structural')
// py: case('{ resource.service.name = "frontend" } > { resource.service.name = "backend" }', ST(child, iss("frontend"), iss("backend")))
// py: case('{ kind = server } > { kind = client }', ST(child, isk("server"), isk("client")))
// py: case('{ name = "get" && resource.service.name = "servicea" } >> { name = "async" }',
// py:      ST(desc, lambda s: s["name"] == "get" and svc(s) == "servicea", isn("async")))
// py: case('{ span:parentID = nil } >> { resource.service.name = "app_db" || span.service.peer.name = "app_db" }',
// py:      ST(desc, lambda s: s["parent"] is None, lambda s: svc(s) == "app_db" or sa(s, "service.peer.name") == "app_db"))
// py: case('{ kind = consumer } < { kind = producer }', ST(parent, isk("consumer"), isk("producer")))
// py: case('{ name = "async" } << { kind = server }', ST(ances, isn("async"), isk("server")))
// py: case('{ status = error } << { span:parentID = nil }', ST(ances, lambda s: s["status"] == "error", lambda s: s["parent"] is None))
// py: case('{ name = "insert" } ~ { name = "call" }', ST(sib, isn("insert"), isn("call")))
// py: case('{ kind = producer } ~ { kind = consumer }', ST(sib, isk("producer"), isk("consumer")))
// py: case('{ } !> { kind = server }', ST(neg(child), ALL, isk("server")))
// py: case('{ kind = server } !> { kind = client }', ST(neg(child), isk("server"), isk("client")))
// py: case('{ resource.service.name = "auth" } !>> { resource.service.name = "auth" }', ST(neg(desc), iss("auth"), iss("auth")))
// py: case('{ kind = client } !< { kind = server }', ST(neg(parent), isk("client"), isk("server")))
// py: case('{ name = "insert" } !<< { kind = server }', ST(neg(ances), isn("insert"), isk("server")))
// py: case('{ kind = client } !~ { kind = client }', ST(neg(sib), isk("client"), isk("client")))
// py:
// py: section('pipelines')
// py: case('{ } | count() > 100', pipe(S(ALL), agg(CNT(), ">", 100)))
// py: case('{ resource.service.name = "auth" } | count() > 100', pipe(S(iss("auth")), agg(CNT(), ">", 100)))
// py: case('{ kind = client } | count() = 4', pipe(S(isk("client")), agg(CNT(), "=", 4)))
// py: case('{ status = error } | count() > 2', pipe(S(lambda s: s["status"] == "error"), agg(CNT(), ">", 2)))
// py: case('{ name = "insert" } | avg(duration) > 1500us', pipe(S(isn("insert")), agg(AVG(dur), ">", 1500 * us)))
// py: case('{ kind = client } | avg(duration) > 100ms', pipe(S(isk("client")), agg(AVG(dur), ">", 100 * ms)))
// py: case('{ resource.service.name =~ "query.*" } | max(duration) >= 7us',
// py:      pipe(S(lambda s: cmp(svc(s), "=~", "query.*")), agg(MAX(dur), ">=", 7 * us)))
// py: case('{ } | min(duration) >= 100us', pipe(S(ALL), agg(MIN(dur), ">=", 100 * us)))
// py: case('{ } | sum(duration) > 10s', pipe(S(ALL), agg(SUM(dur), ">", 10 * sec)))
// py: case('{ } | sum(span.sameplacetag2) >= 123', pipe(S(ALL), agg(SUM(lambda s: sa(s, "sameplacetag2")), ">=", 123)))
// py: case('{ } | avg(.sameplacetag3) = 72.5', pipe(S(ALL), agg(AVG(lambda s: ua(s, "sameplacetag3")), "=", 72.5)))
// py: case('{ } | by(resource.service.name) | count() > 100', pipe(S(ALL), by(svc), agg(CNT(), ">", 100)))
// py: case('{ kind = client } | by(span.service.peer.name) | count() >= 3',
// py:      pipe(S(isk("client")), by(lambda s: sa(s, "service.peer.name")), agg(CNT(), ">=", 3)))
// py: case('{ name = "insert" } | select(span.sql.query)', S(isn("insert")))
// py: case('{ kind = producer } | coalesce()', pipe(S(isk("producer")), coalesce()))
// py: case('{ } | by(resource.service.name) | count() > 100 | coalesce()', pipe(S(ALL), by(svc), agg(CNT(), ">", 100), coalesce()))
// py: case('{ kind = server } | by(resource.service.name) | coalesce() | count() > 100',
// py:      pipe(S(isk("server")), by(svc), coalesce(), agg(CNT(), ">", 100)))
// py:
// py: import sys
// py: ALLIDS = sorted(traces)
// py: print("    // span counts:", ", ".join(f'("{t}", {len(traces[t])})' for t in ALLIDS))
// py: for text, ids in QUERIES:
// py:     if ids is None:
// py:         print(f"    // {text}")
// py:         continue
// py:     print(f"    ({json.dumps(text)}, &[" + ", ".join(f'"{i}"' for i in ids) + "]),")
