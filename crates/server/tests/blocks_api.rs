//! The blocks API in process: manual blocks, decisions (JSON and the nginx
//! endpoint with X-Forwarded-For), the text list, unblock and history.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracewarden_server::Pipeline;
use tracewarden_server::api::blocks::Gate;
use tracewarden_server::api::{ApiState, router};
use tracewarden_server::blocks::{Blocklist, BlocksConfig, token};

struct Answer {
    status: StatusCode,
    reason: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let reason = response
        .headers()
        .get("x-tracewarden-reason")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        reason,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn app(dir: &std::path::Path) -> axum::Router {
    let config = BlocksConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()],
        ..BlocksConfig::default()
    };
    let list =
        Arc::new(Blocklist::open(dir, 100, tracewarden_server::blocks::now_unix_ms()).unwrap());
    let mut state = ApiState::new(Arc::new(Pipeline::new()));
    state.blocks = Some(Arc::new(Gate::new(list, &config).unwrap()));
    router(state)
}

#[tokio::test]
async fn block_decide_unblock_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let post = |body: &'static str| {
        let app = app.clone();
        async move { send(&app, Method::POST, "/api/v1/blocks", &[], body).await }
    };
    let a = post(r#"{"kind":"address","value":"203.0.113.0/24","duration":"1h","reason":"scanner range","by":"alice"}"#).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.json()["block"]["value"], "203.0.113.0/24");
    let a =
        post(r#"{"kind":"token","value":"Bearer leaked-token","reason":"leaked","by":"alice"}"#)
            .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(
        a.json()["block"]["value"],
        token::fingerprint("leaked-token")
    );
    assert!(!a.body.contains("leaked-token"));
    let a =
        post(r#"{"kind":"user","value":"mallory","duration":"10m","reason":"abuse","by":"bob"}"#)
            .await;
    assert_eq!(a.status, StatusCode::CREATED);
    // Mistakes are 400 with the reason.
    for bad in [
        r#"{"kind":"address","value":"203.0.113.7/24","reason":"r","by":"b"}"#,
        r#"{"kind":"host","value":"x","reason":"r","by":"b"}"#,
        r#"{"kind":"user","value":"x","duration":"1 hour","reason":"r","by":"b"}"#,
        r#"{"kind":"user","value":"x","reason":"","by":"b"}"#,
        r#"{"kind":"user","value":"x","reason":"r"}"#,
    ] {
        assert_eq!(post(bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let decide = |query: &'static str| {
        let app = app.clone();
        async move {
            send(
                &app,
                Method::GET,
                &format!("/api/v1/decision?{query}"),
                &[],
                "",
            )
            .await
            .json()
        }
    };
    let d = decide("address=203.0.113.77").await;
    assert_eq!(d["decision"], "deny");
    assert!(d["reason"].as_str().unwrap().contains("by alice"), "{d}");
    assert!(d["until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        decide("address=198.51.100.1&user=alice").await["decision"],
        "allow"
    );
    assert_eq!(decide("user=mallory").await["decision"], "deny");
    assert_eq!(
        decide("authorization=Bearer%20leaked-token").await["decision"],
        "deny"
    );
    assert_eq!(
        decide("authorization=Bearer%20other").await["decision"],
        "allow"
    );
    // A misspelt parameter, or none, is a mistake, not an `allow`; an
    // empty value is an anonymous request.
    for query in ["client_address=203.0.113.77", "addr=203.0.113.77", ""] {
        let answer = send(
            &app,
            Method::GET,
            &format!("/api/v1/decision?{query}"),
            &[],
            "",
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
    }
    assert_eq!(decide("user=").await["decision"], "allow");

    // nginx: the client is the first untrusted hop from the right.
    let nginx = |headers: &'static [(&'static str, &'static str)]| {
        let app = app.clone();
        async move { send(&app, Method::GET, "/api/v1/decision/nginx", headers, "").await }
    };
    let a = nginx(&[
        ("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.1.2.3"),
        ("x-real-ip", "127.0.0.1"),
    ])
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.reason
            .unwrap()
            .starts_with("address 203.0.113.0/24 blocked by alice until ")
    );
    // A forged first hop does not help: the balancer's hop decides.
    let a = nginx(&[("x-forwarded-for", "203.0.113.9, 198.51.100.1")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        nginx(&[("x-real-ip", "203.0.113.1")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        nginx(&[("x-user", "mallory")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        nginx(&[("authorization", "Bearer leaked-token")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(nginx(&[("x-user", "alice")]).await.status, StatusCode::OK);

    let text = send(&app, Method::GET, "/api/v1/blocks.txt", &[], "").await;
    assert_eq!(text.body, "203.0.113.0/24\n");
    let list = send(&app, Method::GET, "/api/v1/blocks", &[], "")
        .await
        .json();
    assert_eq!(list["blocks"].as_array().unwrap().len(), 3);

    let a = send(
        &app,
        Method::DELETE,
        "/api/v1/blocks/address/203.0.113.0%2F24?by=alice&reason=cleared",
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(
        &app,
        Method::DELETE,
        "/api/v1/blocks/address/203.0.113.0%2F24?by=alice&reason=again",
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(&app, Method::DELETE, "/api/v1/blocks/user/mallory", &[], "").await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "by and reason are required"
    );
    assert_eq!(decide("address=203.0.113.77").await["decision"], "allow");

    let history = send(&app, Method::GET, "/api/v1/blocks/history", &[], "")
        .await
        .json();
    let actions: Vec<(String, String)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("block", "alice"),
            ("block", "alice"),
            ("block", "bob"),
            ("unblock", "alice")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // The history survives a restart of the list.
    drop(app);
    let app = crate::app(dir.path());
    let history = send(&app, Method::GET, "/api/v1/blocks/history?limit=1", &[], "")
        .await
        .json();
    assert_eq!(history["history"][0]["reason"], "cleared");

    let metrics = send(&app, Method::GET, "/metrics", &[], "").await;
    assert!(
        metrics
            .body
            .contains("tracewarden_blocks_active{kind=\"user\"} 1"),
        "{}",
        metrics.body
    );
}
