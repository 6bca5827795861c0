//! The HTTP core every service gets: problem+json errors, request ids, health, limits,
//! timeouts, panics, and log lines that carry the request's ids.
//!
//! Managed by the platform.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::{get, post};
use serde_json::Value;

use {{ crate_name }} as service;

use service::platform::idempotency::{
    Claim, ClaimToken, IdempotencyStore, StoreError, StoredResponse,
};
use service::platform::testing::{CapturedLogs, TestApp, json_body, layers};

fn routes() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("secret internals: db password is hunter2");
                }
                "unreachable"
            }),
        )
}

async fn app() -> TestApp {
    TestApp::with_routes(routes()).await
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn assert_problem(body: &Value, status: u16) {
    assert_eq!(
        body["status"], status,
        "status member equals the HTTP status: {body}"
    );
    let kind = body["type"].as_str().expect("type is a string");
    assert!(kind.starts_with("urn:problem:"), "stable type URI: {kind}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title: {body}"
    );
    assert!(body["detail"].is_string(), "detail: {body}");
    let trace_id = body["trace_id"].as_str().expect("trace_id is present");
    assert_eq!(trace_id.len(), 32, "an OpenTelemetry trace id: {trace_id}");
}

#[tokio::test]
async fn unknown_route_is_404_problem_json() {
    let app = app().await;
    let response = app.send(get_request("/no/such/route")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = json_body(response).await;
    assert_problem(&body, 404);
    assert_eq!(body["type"], "urn:problem:platform:not-found");
}

#[tokio::test]
async fn wrong_method_is_405_problem_json_with_allow() {
    let app = app().await;
    let response = app
        .send(Request::delete("/ok").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(header::ALLOW));
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_problem(&json_body(response).await, 405);
}

#[tokio::test]
async fn sane_request_id_is_echoed() {
    let app = app().await;
    let request = Request::get("/ok")
        .header("x-request-id", "abc-123.X_y")
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.headers()["x-request-id"], "abc-123.X_y");
}

#[tokio::test]
async fn insane_or_missing_request_id_is_replaced() {
    let app = app().await;
    for bad in ["has space", "x".repeat(65).as_str(), "semi;colon", ""] {
        let request = Request::get("/ok")
            .header("x-request-id", bad)
            .body(Body::empty())
            .unwrap();
        let response = app.send(request).await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated UUID: {id}");
    }
    let response = app.send(get_request("/ok")).await;
    assert!(uuid::Uuid::parse_str(response.headers()["x-request-id"].to_str().unwrap()).is_ok());
}

#[tokio::test]
async fn oversized_body_is_413_problem_json() {
    let app = TestApp::build(
        layers("[server]\nbody_limit_bytes = 16\n"),
        |b| b,
        |_| Ok(routes()),
    )
    .await;
    let request = Request::post("/echo")
        .body(Body::from("x".repeat(64)))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&json_body(response).await, 413);
}

#[tokio::test]
async fn slow_request_times_out_as_503_problem_json() {
    let app = TestApp::build(
        layers("[server]\nrequest_timeout_secs = 1\n"),
        |b| b,
        |_| Ok(routes()),
    )
    .await;
    let response = app.send(get_request("/slow")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(response).await;
    assert_problem(&body, 503);
    assert_eq!(body["type"], "urn:problem:platform:timeout");
}

#[tokio::test]
async fn panic_is_500_problem_json_without_internals() {
    let app = app().await;
    let response = app.send(get_request("/panic")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = json_body(response).await;
    assert_problem(&body, 500);
    assert!(
        !body.to_string().contains("hunter2"),
        "no internals in a 5xx: {body}"
    );
    // The service keeps serving.
    assert_eq!(app.send(get_request("/ok")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn livez_and_readyz_answer_without_auth() {
    let app = app().await;
    assert_eq!(
        app.send(get_request("/livez")).await.status(),
        StatusCode::OK
    );
    let response = app.send(get_request("/readyz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await["checks"]["idempotency_store"],
        "ok"
    );
}

struct DownStore;

#[async_trait]
impl IdempotencyStore for DownStore {
    async fn claim(&self, _: &str, _: &str, _: Duration) -> Result<Claim, StoreError> {
        Err(StoreError("connection refused".into()))
    }
    async fn complete(
        &self,
        _: &str,
        _: &ClaimToken,
        _: &StoredResponse,
        _: Duration,
    ) -> Result<(), StoreError> {
        Err(StoreError("connection refused".into()))
    }
    async fn release(&self, _: &str, _: &ClaimToken) -> Result<(), StoreError> {
        Err(StoreError("connection refused".into()))
    }
    async fn check(&self) -> Result<(), StoreError> {
        Err(StoreError("connection refused".into()))
    }
}

#[tokio::test]
async fn readyz_is_503_problem_json_when_the_store_is_down() {
    let app = TestApp::build(
        layers(""),
        |b| b.with_idempotency_store(Arc::new(DownStore)),
        |_| Ok(routes()),
    )
    .await;
    let response = app.send(get_request("/readyz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = json_body(response).await;
    assert_problem(&body, 503);
    assert_eq!(body["checks"]["idempotency_store"], "unavailable");
    assert_eq!(
        app.send(get_request("/livez")).await.status(),
        StatusCode::OK,
        "liveness does not depend on the store"
    );
}

#[tokio::test]
async fn every_log_line_in_a_request_carries_request_and_trace_ids() {
    let logs = CapturedLogs::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = service::platform::telemetry::subscriber(
        provider,
        logs.clone(),
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::with_routes(Router::new().route(
        "/work",
        get(|| async {
            // A field named like a context field does not override it (nor repeat the key).
            tracing::info!(
                answer = 42,
                note = "a \"quoted\"\nline ✓",
                request_id = "spoofed",
                "doing the work"
            );
            "done"
        }),
    ))
    .await;
    let request = Request::builder()
        .method(Method::GET)
        .uri("/work")
        .header("x-request-id", "req-1")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::OK);

    let lines = logs.lines();
    let work = lines
        .iter()
        .find(|l| l["message"] == "doing the work")
        .expect("the handler's line");
    let access = lines
        .iter()
        .find(|l| l["target"] == "access")
        .expect("the access line");
    for line in [work, access] {
        assert_eq!(line["request_id"], "req-1", "{line}");
        assert_eq!(
            line["trace_id"], "0af7651916cd43dd8448eb211c80319c",
            "{line}"
        );
        assert_eq!(line["level"], "INFO");
        assert!(
            line["timestamp"].is_string() && line["target"].is_string(),
            "{line}"
        );
    }
    assert_eq!(work["answer"], 42);
    assert_eq!(work["note"], "a \"quoted\"\nline ✓");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/work");
    assert_eq!(access["status"], 200);
    assert!(access["latency_ms"].is_number());
}
