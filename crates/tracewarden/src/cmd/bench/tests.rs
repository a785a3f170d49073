//! The load generator against the real server, in process: every protocol
//! and encoding gets its spans durably acknowledged and stored, under the
//! rewritten trace ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracewarden_model::TraceId;
use tracewarden_server::{Config, Listen, Server};
use tracewarden_store::Store;

use super::args::{Protocol, Target};
use super::driver::{Exporter, drive};
use super::workload::{Framing, Workload, WorkloadSpec, request_key};

const BATCH_SPANS: usize = 200;

struct RunningServer {
    grpc: SocketAddr,
    http: SocketAddr,
    store: Arc<Store>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start_server() -> RunningServer {
    let dir = tempfile::tempdir().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        data_dir: dir.path().join("data"),
        listen: Listen {
            otlp_grpc: any,
            otlp_http: any,
            zipkin: any,
            api: any,
        },
        ..Config::default()
    };
    let server = Server::bind(config).await.unwrap();
    let addrs = server.addrs();
    let pipeline = server.pipeline();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    // Ready once the WAL is replayed (an empty one here); bounded, not timed.
    let mut store = None;
    for _ in 0..500 {
        if let Some(ready) = pipeline.store() {
            store = Some(ready.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    RunningServer {
        grpc: addrs.otlp_grpc,
        http: addrs.otlp_http,
        store: store.expect("the server never became ready"),
        stop,
        task,
        _dir: dir,
    }
}

/// The protobuf of the first template under `key`: with the key of worker
/// 0's first request, what that request carried; with zeros, as encoded.
fn first_request(
    workload: &Workload,
    framing: Framing,
    gzip: bool,
    key: &[u8; 16],
) -> ExportTraceServiceRequest {
    let body: Bytes = workload.templates[0].body(key);
    let payload = match framing {
        Framing::Bare => &body[..],
        Framing::GrpcLengthPrefixed => &body[5..],
    };
    let mut protobuf = Vec::new();
    if gzip {
        flate2::read::GzDecoder::new(payload)
            .read_to_end(&mut protobuf)
            .unwrap();
    } else {
        protobuf.extend_from_slice(payload);
    }
    ExportTraceServiceRequest::decode(protobuf.as_slice()).unwrap()
}

fn trace_ids(request: &ExportTraceServiceRequest) -> Vec<TraceId> {
    let mut ids: Vec<TraceId> = request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|span| TraceId::from_slice(&span.trace_id).unwrap())
        .collect();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_and_encoding_is_acknowledged_and_stored() {
    let server = start_server().await;
    let mut stored_spans = 0;
    // A seed per case, so each case's traces are its own.
    for (seed, protocol, gzip) in [
        (11, Protocol::Grpc, false),
        (12, Protocol::Grpc, true),
        (13, Protocol::Http, false),
        (14, Protocol::Http, true),
    ] {
        let case = format!("{protocol} gzip={gzip}");
        let (addr, framing) = match protocol {
            Protocol::Grpc => (server.grpc, Framing::GrpcLengthPrefixed),
            Protocol::Http => (server.http, Framing::Bare),
        };
        let target = Target::local(protocol, addr).unwrap();
        let workload = Workload::build(WorkloadSpec {
            batch_spans: BATCH_SPANS,
            batches: 2,
            gzip,
            seed,
            framing,
            // Client spans too in half the cases: the server takes them alike.
            calls: gzip,
        })
        .unwrap();
        let sent = first_request(&workload, framing, gzip, &request_key(seed, 0, 0));
        let encoded = first_request(&workload, framing, gzip, &[0; 16]);
        let mut exporters = Vec::new();
        for _ in 0..2 {
            exporters.push(Exporter::connect(&target, gzip).await.unwrap());
        }

        let run = drive(
            exporters,
            Arc::new(workload),
            seed,
            Duration::from_millis(300),
            None,
        )
        .await
        .unwrap();

        let tally = &run.tally;
        assert!(tally.requests_ok >= 2, "{case}: {tally:?}");
        assert_eq!(
            (tally.requests_failed, tally.requests_throttled),
            (0, 0),
            "{case}: {:?}",
            tally.errors
        );
        assert_eq!(
            tally.spans_accepted,
            tally.requests_ok * BATCH_SPANS as u64,
            "{case}"
        );
        assert_eq!(tally.latencies_us.len() as u64, tally.requests_ok, "{case}");
        // Acknowledged means durable and in the hot tier.
        stored_spans += tally.spans_accepted;
        assert_eq!(server.store.stats().spans, stored_spans, "{case}");
        // The first request's traces are stored under their rewritten ids
        // (gzipped bodies are sent as encoded).
        for trace_id in trace_ids(&sent) {
            assert!(
                server.store.trace(trace_id).is_some(),
                "{case}: trace {} not stored",
                trace_id.to_hex()
            );
        }
        if !gzip {
            for trace_id in trace_ids(&encoded) {
                assert!(
                    server.store.trace(trace_id).is_none(),
                    "{case}: trace {} sent as encoded",
                    trace_id.to_hex()
                );
            }
        }
    }
    server.stop.send(()).unwrap();
    server.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_keeps_to_its_schedule() {
    let server = start_server().await;
    let target = Target::local(Protocol::Grpc, server.grpc).unwrap();
    let workload = Workload::build(WorkloadSpec {
        batch_spans: BATCH_SPANS,
        batches: 2,
        gzip: false,
        seed: 21,
        framing: Framing::GrpcLengthPrefixed,
        calls: false,
    })
    .unwrap();
    let mut exporters = Vec::new();
    for _ in 0..2 {
        exporters.push(Exporter::connect(&target, false).await.unwrap());
    }
    // Each connection one request per 100 ms for 1 s, the second 50 ms
    // behind the first: 20 requests due, the last at 950 ms.
    let run = drive(
        exporters,
        Arc::new(workload),
        21,
        Duration::from_secs(1),
        Some(Duration::from_millis(100)),
    )
    .await
    .unwrap();

    let tally = &run.tally;
    let sent = tally.requests_ok + tally.requests_failed + tally.requests_throttled;
    // As fast as answered, the same second would send hundreds.
    assert!((1..=20).contains(&sent), "{tally:?}");
    assert_eq!(tally.requests_failed, 0, "{:?}", tally.errors);
    assert!(
        run.elapsed >= Duration::from_millis(950),
        "{:?}",
        run.elapsed
    );
    server.stop.send(()).unwrap();
    server.task.await.unwrap();
}
