//! Audit events: auth decisions and mutating requests become JSON lines on the `audit` target,
//! with principal, action, resource, outcome, request and trace ids, and never a secret.
//!
//! Managed by the platform.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::{get, post};
use serde_json::Value;

use {{ crate_name }} as service;

use service::platform::audit::{Auditor, Outcome, fingerprint};
use service::platform::auth::Principal;
use service::platform::testing::{CapturedLogs, TestApp, layers};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const IDEMPOTENCY_KEY: &str = "order-7f3a-very-private-key";

fn routes() -> Router {
    Router::new()
        .route(
            "/things",
            post(|_principal: Principal| async { (StatusCode::CREATED, "made") }),
        )
        .route(
            "/things/{id}",
            get(|_principal: Principal| async { "a thing" })
                .delete(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/export",
            post(|auditor: Auditor| async move {
                auditor.record("things.export", "/things", Outcome::Succeeded);
                "exported"
            }),
        )
}

/// Captures every log line while `f` runs requests against the app built from `overrides`.
async fn with_logs<F, Fut>(overrides: &str, f: F) -> Vec<Value>
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let logs = CapturedLogs::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = service::platform::telemetry::subscriber(
        provider,
        logs.clone(),
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::build(layers(overrides), |b| b, |_| Ok(routes())).await;
    f(app).await;
    logs.lines()
}

fn request(method: Method, uri: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-request-id", "req-audit-1")
        .header("traceparent", format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .header("idempotency-key", IDEMPOTENCY_KEY);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

fn audit_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["target"] == "audit").collect()
}

fn assert_no_secrets(lines: &[Value], secrets: &[&str]) {
    for line in lines {
        let text = line.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in a log line: {text}");
        }
        assert!(!text.contains("Bearer "), "an Authorization header: {text}");
    }
}

#[tokio::test]
async fn accepted_token_and_mutating_request_are_audited() {
    let mut token = String::new();
    let lines = with_logs("", |app| {
        token = app.token("alice");
        let token = token.clone();
        async move {
            let response = app
                .send(request(Method::POST, "/things", Some(&token)))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    })
    .await;
    let audit = audit_lines(&lines);
    assert_eq!(audit.len(), 2, "one auth decision, one request: {audit:?}");
    let (auth, mutation) = (audit[0], audit[1]);
    for line in [auth, mutation] {
        assert_eq!(line["request_id"], "req-audit-1", "{line}");
        assert_eq!(line["trace_id"], TRACE_ID, "{line}");
        assert_eq!(line["principal"], "alice", "{line}");
        assert_eq!(line["resource"], "/things", "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
    }
    assert_eq!(auth["action"], "auth.token");
    assert_eq!(auth["outcome"], "accepted");
    assert_eq!(mutation["action"], "http.post");
    assert_eq!(mutation["outcome"], "succeeded");
    assert_eq!(mutation["status"], 201);
    assert_eq!(mutation["method"], "POST");
    assert_eq!(
        mutation["idempotency_key"],
        fingerprint(IDEMPOTENCY_KEY.as_bytes()),
        "the key only as a fingerprint"
    );
    assert_no_secrets(&lines, &[&token, IDEMPOTENCY_KEY]);
}

#[tokio::test]
async fn rejected_tokens_are_audited_without_the_token() {
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLWZvcmdlZA";
    let lines = with_logs("", |app| async move {
        let response = app
            .send(request(Method::POST, "/things", Some(forged)))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = app
            .send(request(Method::GET, "/things/1", Some(forged)))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
    let audit = audit_lines(&lines);
    let rejected: Vec<_> = audit
        .iter()
        .filter(|l| l["action"] == "auth.token")
        .collect();
    assert_eq!(rejected.len(), 2, "{audit:?}");
    for line in &rejected {
        assert_eq!(line["outcome"], "rejected", "{line}");
        assert_eq!(line["principal"], "anonymous", "{line}");
        assert!(line["reason"].is_string(), "{line}");
    }
    let denied: Vec<_> = audit
        .iter()
        .filter(|l| l["action"] == "http.post")
        .collect();
    assert_eq!(denied.len(), 1, "the POST, not the GET: {audit:?}");
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(denied[0]["status"], 401);
    assert_no_secrets(&lines, &[forged, "c2lnbmF0dXJlLWZvcmdlZA", IDEMPOTENCY_KEY]);
}

#[tokio::test]
async fn reads_are_not_audited_beyond_the_auth_decision() {
    let lines = with_logs("", |app| async move {
        let token = app.token("bob");
        let response = app
            .send(request(Method::GET, "/things/1", Some(&token)))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        // No token at all: no auth decision, and a GET is not audited.
        let response = app.send(request(Method::GET, "/things/1", None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
    let audit = audit_lines(&lines);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["action"], "auth.token");
    assert_eq!(audit[0]["principal"], "bob");
}

#[tokio::test]
async fn failures_and_handler_events_are_audited() {
    let lines = with_logs("", |app| async move {
        let response = app.send(request(Method::DELETE, "/things/1", None)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = app.send(request(Method::POST, "/export", None)).await;
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
    let audit = audit_lines(&lines);
    let delete = audit
        .iter()
        .find(|l| l["action"] == "http.delete")
        .expect("the DELETE");
    assert_eq!(delete["outcome"], "error");
    assert_eq!(delete["principal"], "anonymous");
    assert_eq!(delete["status"], 500);
    let export = audit
        .iter()
        .find(|l| l["action"] == "things.export")
        .expect("the handler's own event");
    assert_eq!(export["outcome"], "succeeded");
    assert_eq!(export["resource"], "/things");
    assert_eq!(export["request_id"], "req-audit-1");
}

#[tokio::test]
async fn idempotent_replays_are_marked() {
    let lines = with_logs("", |app| async move {
        let token = app.token("carol");
        for _ in 0..2 {
            let response = app
                .send(request(Method::POST, "/things", Some(&token)))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    })
    .await;
    let posts: Vec<_> = audit_lines(&lines)
        .into_iter()
        .filter(|l| l["action"] == "http.post")
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(posts[0].get("replayed").is_none(), "{}", posts[0]);
    assert_eq!(posts[1]["replayed"], true);
}

#[tokio::test]
async fn disabled_audit_records_nothing() {
    let lines = with_logs("[audit]\nenabled = false\n", |app| async move {
        let token = app.token("dave");
        let response = app
            .send(request(Method::POST, "/things", Some(&token)))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    })
    .await;
    assert!(audit_lines(&lines).is_empty(), "{lines:?}");
    assert!(
        lines.iter().any(|l| l["target"] == "access"),
        "logging itself goes on"
    );
}
