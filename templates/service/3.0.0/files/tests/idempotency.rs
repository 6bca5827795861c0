//! `Idempotency-Key` semantics against the memory store.
//!
//! Managed by the platform.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::sync::{Notify, mpsc};

use {{ crate_name }} as service;

use service::platform::Problem;
use service::platform::auth::Principal;
use service::platform::idempotency::{
    Claim, ClaimToken, IdempotencyStore, MemoryStore, StoreError, StoredResponse,
};
use service::platform::testing::{TestApp, json_body};

/// A POST route that counts its executions; `{"fail": true}` answers 422, `{"panic": true}`
/// panics, `{"wait": true}` blocks until released.
#[derive(Clone, Default)]
struct Probe {
    runs: Arc<AtomicUsize>,
    started: Option<mpsc::UnboundedSender<()>>,
    release: Arc<Notify>,
}

async fn handler(
    State(probe): State<Probe>,
    principal: Option<Principal>,
    body: String,
) -> axum::response::Response {
    let run = probe.runs.fetch_add(1, Ordering::SeqCst) + 1;
    if body.contains("\"wait\"") {
        if let Some(started) = &probe.started {
            let _ = started.send(());
        }
        probe.release.notified().await;
    }
    if body.contains("\"panic\"") {
        panic!("handler blew up");
    }
    if body.contains("\"fail\"") {
        return Problem::validation(format!("run {run} rejected the input")).into_response();
    }
    let who = principal.map_or_else(|| "anonymous".to_owned(), |p| p.subject);
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/things/{run}"))],
        format!("{who} run {run}"),
    )
        .into_response()
}

async fn app_with(probe: Probe) -> TestApp {
    TestApp::with_routes(
        Router::new()
            .route("/things", post(handler).patch(handler).put(handler))
            .with_state(probe),
    )
    .await
}

fn post_with(app: &TestApp, key: Option<&str>, subject: &str, body: &str) -> Request<Body> {
    let mut request = Request::post("/things").header(
        header::AUTHORIZATION,
        format!("Bearer {}", app.token(subject)),
    );
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

async fn text(response: axum::response::Response) -> String {
    String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn first_response_is_stored_and_replayed_with_header() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    let first = app
        .send(post_with(&app, Some("key-1"), "alice", "{}"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()[header::LOCATION].clone();
    let first_body = text(first).await;

    let again = app
        .send(post_with(&app, Some("key-1"), "alice", "{}"))
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()[header::LOCATION],
        location,
        "headers are replayed"
    );
    assert_eq!(text(again).await, first_body, "the body is replayed");
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1, "the handler ran once");
}

#[tokio::test]
async fn same_key_with_a_different_body_is_422() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    assert_eq!(
        app.send(post_with(&app, Some("key-2"), "alice", "{\"a\":1}"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = app
        .send(post_with(&app, Some("key-2"), "alice", "{\"a\":2}"))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(
        json_body(response).await["type"],
        "urn:problem:platform:idempotency-key-reused"
    );
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn same_key_with_another_method_is_422() {
    let app = app_with(Probe::default()).await;
    assert_eq!(
        app.send(post_with(&app, Some("key-m"), "alice", "{}"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let patch = Request::patch("/things")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", app.token("alice")),
        )
        .header("idempotency-key", "key-m")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        app.send(patch).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn same_key_while_in_flight_is_409_and_the_handler_runs_once() {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let probe = Probe {
        started: Some(started_tx),
        ..Probe::default()
    };
    let app = app_with(probe.clone()).await;

    let first = tokio::spawn({
        let app = app.clone();
        let request = post_with(&app, Some("key-3"), "alice", "{\"wait\":true}");
        async move { app.send(request).await }
    });
    started_rx
        .recv()
        .await
        .expect("the first request reached the handler");

    let second = app
        .send(post_with(&app, Some("key-3"), "alice", "{\"wait\":true}"))
        .await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert_eq!(
        json_body(second).await["type"],
        "urn:problem:platform:idempotency-key-in-use"
    );

    probe.release.notify_one();
    assert_eq!(first.await.unwrap().status(), StatusCode::CREATED);
    let replay = app
        .send(post_with(&app, Some("key-3"), "alice", "{\"wait\":true}"))
        .await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_keys_are_400() {
    let app = app_with(Probe::default()).await;
    let too_long = "k".repeat(256);
    for key in ["", too_long.as_str(), "has space", "tab\tkey", "\"\""] {
        let response = app.send(post_with(&app, Some(key), "alice", "{}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "key {key:?}");
        assert_eq!(
            json_body(response).await["type"],
            "urn:problem:platform:idempotency-key-invalid"
        );
    }
    let non_ascii = Request::post("/things")
        .header(
            "idempotency-key",
            axum::http::HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        )
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(app.send(non_ascii).await.status(), StatusCode::BAD_REQUEST);
    let max = "k".repeat(255);
    assert_eq!(
        app.send(post_with(&app, Some(&max), "alice", "{}"))
            .await
            .status(),
        StatusCode::CREATED,
        "255 chars is fine"
    );
}

#[tokio::test]
async fn structured_field_string_keys_are_accepted() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    assert_eq!(
        app.send(post_with(&app, Some("\"sf-key\""), "alice", "{}"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let again = app
        .send(post_with(&app, Some("sf-key"), "alice", "{}"))
        .await;
    assert_eq!(
        again.headers()["idempotent-replayed"],
        "true",
        "\"k\" and k are one key"
    );
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn error_responses_are_replayed_too() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    let first = app
        .send(post_with(&app, Some("key-4"), "alice", "{\"fail\":true}"))
        .await;
    assert_eq!(first.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let first_body = text(first).await;
    let again = app
        .send(post_with(&app, Some("key-4"), "alice", "{\"fail\":true}"))
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(text(again).await, first_body);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn keys_are_scoped_per_principal() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    let alice = app
        .send(post_with(&app, Some("shared"), "alice", "{}"))
        .await;
    let bob = app.send(post_with(&app, Some("shared"), "bob", "{}")).await;
    assert_eq!(bob.status(), StatusCode::CREATED);
    assert!(
        bob.headers().get("idempotent-replayed").is_none(),
        "bob does not see alice's response"
    );
    assert_eq!(text(alice).await, "alice run 1");
    assert_eq!(text(bob).await, "bob run 2");
    assert_eq!(probe.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn requests_without_the_header_or_with_other_methods_pass_through() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    for _ in 0..2 {
        assert_eq!(
            app.send(post_with(&app, None, "alice", "{}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    for _ in 0..2 {
        let put = Request::put("/things")
            .header("idempotency-key", "key-put")
            .body(Body::from("{}"))
            .unwrap();
        let response = app.send(put).await;
        assert!(response.headers().get("idempotent-replayed").is_none());
    }
    assert_eq!(probe.runs.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_panicking_handler_releases_its_key() {
    let probe = Probe::default();
    let app = app_with(probe.clone()).await;
    let response = app
        .send(post_with(&app, Some("key-5"), "alice", "{\"panic\":true}"))
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The release runs on a spawned task.
    for _ in 0..50 {
        if app.store.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let retry = app
        .send(post_with(&app, Some("key-5"), "alice", "{\"panic\":true}"))
        .await;
    assert_eq!(
        retry.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "the retry executed rather than 409"
    );
    assert_eq!(probe.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn store_outage_fails_closed_with_503_and_the_handler_never_runs() {
    struct Down;
    #[async_trait::async_trait]
    impl IdempotencyStore for Down {
        async fn claim(&self, _: &str, _: &str, _: Duration) -> Result<Claim, StoreError> {
            Err(StoreError("down".into()))
        }
        async fn complete(
            &self,
            _: &str,
            _: &ClaimToken,
            _: &StoredResponse,
            _: Duration,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn release(&self, _: &str, _: &ClaimToken) -> Result<(), StoreError> {
            Ok(())
        }
        async fn check(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let probe = Probe::default();
    let routes = Router::new()
        .route("/things", post(handler))
        .with_state(probe.clone());
    let app = TestApp::build(
        service::platform::testing::layers(""),
        |b| b.with_idempotency_store(Arc::new(Down)),
        |_| Ok(routes),
    )
    .await;
    let response = app
        .send(post_with(&app, Some("key-6"), "alice", "{}"))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(response).await;
    assert_eq!(
        body["type"],
        "urn:problem:platform:idempotency-store-unavailable"
    );
    assert!(!body.to_string().contains("down"), "no internals: {body}");
    assert_eq!(probe.runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn memory_store_entries_expire() {
    // Wide margins: a loaded CI machine may take tens of milliseconds between two awaits.
    const SHORT: Duration = Duration::from_millis(500);
    const PAST_SHORT: Duration = Duration::from_millis(700);
    let store = MemoryStore::new();
    let response = StoredResponse {
        status: 201,
        headers: vec![],
        body: b"done".to_vec(),
    };
    let Claim::Claimed(token) = store.claim("k", "fp", SHORT).await.unwrap() else {
        panic!("a fresh key is claimed");
    };
    store.complete("k", &token, &response, SHORT).await.unwrap();
    assert_eq!(
        store
            .claim("k", "fp", Duration::from_secs(1))
            .await
            .unwrap(),
        Claim::Completed(response)
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        matches!(
            store.claim("k", "other", SHORT).await.unwrap(),
            Claim::Claimed(_)
        ),
        "expired: reclaimable"
    );

    // An abandoned in-flight claim frees itself after its ttl.
    assert_eq!(
        store
            .claim("k", "other", Duration::from_secs(1))
            .await
            .unwrap(),
        Claim::InFlight
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert!(matches!(
        store
            .claim("k", "other", Duration::from_secs(1))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
}

#[tokio::test]
async fn only_the_claim_holder_completes_or_releases() {
    let store = MemoryStore::new();
    let Claim::Claimed(token) = store
        .claim("k", "fp", Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!()
    };
    let stranger = ClaimToken::generate();
    let response = StoredResponse {
        status: 200,
        headers: vec![],
        body: vec![],
    };
    assert!(
        store
            .complete("k", &stranger, &response, Duration::from_secs(5))
            .await
            .is_err()
    );
    store.release("k", &stranger).await.unwrap();
    assert_eq!(
        store
            .claim("k", "fp", Duration::from_secs(5))
            .await
            .unwrap(),
        Claim::InFlight,
        "still held"
    );
    store.release("k", &token).await.unwrap();
    assert!(matches!(
        store
            .claim("k", "fp", Duration::from_secs(5))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
}
