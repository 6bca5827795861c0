//! The outbound HTTP client against a real local peer (an axum server on an ephemeral port):
//! retries, idempotency, `Retry-After`, the breaker, timeouts, trace and request-id propagation,
//! and the problem+json 503 a failed dependency becomes.
//!
//! Managed by the platform (component `http_client`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use {{ crate_name }} as service;

use service::platform::Problem;
use service::platform::http_client::breaker::BreakerState;
use service::platform::http_client::{DependencyConfig, Failure, HttpClient};
use service::platform::testing::{TestApp, json_body, layers};

/// What the peer answers, in order; the last one repeats.
#[derive(Clone, Copy)]
struct Step {
    status: u16,
    delay_ms: u64,
    retry_after: Option<&'static str>,
}

fn status(status: u16) -> Step {
    Step {
        status,
        delay_ms: 0,
        retry_after: None,
    }
}

/// One request the peer saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    headers: HeaderMap,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone, Default)]
struct Peer {
    script: Arc<Mutex<VecDeque<Step>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Peer {
    /// Starts the peer on 127.0.0.1 (ephemeral port); returns it and its base URL.
    async fn start(steps: &[Step]) -> (Self, String) {
        let peer = Self::default();
        peer.answer(steps);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/{*path}", any(Self::handle))
            .with_state(peer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (peer, url)
    }

    fn answer(&self, steps: &[Step]) {
        *self.script.lock().unwrap() = steps.iter().copied().collect();
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn handle(State(peer): State<Self>, request: Request<Body>) -> impl IntoResponse {
        peer.seen.lock().unwrap().push(Seen {
            method: request.method().clone(),
            headers: request.headers().clone(),
        });
        let step = {
            let mut script = peer.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                *script.front().unwrap()
            }
        };
        tokio::time::sleep(Duration::from_millis(step.delay_ms)).await;
        let mut headers = HeaderMap::new();
        if let Some(value) = step.retry_after {
            headers.insert("retry-after", value.parse().unwrap());
        }
        (StatusCode::from_u16(step.status).unwrap(), headers, "peer")
    }
}

/// Settings for tests: the defaults, with short waits.
fn config(base_url: &str) -> DependencyConfig {
    DependencyConfig {
        base_url: base_url.to_owned(),
        backoff_base_ms: 10,
        ..DependencyConfig::default()
    }
}

fn trace_id_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap()
}

fn span_id_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(2).unwrap()
}

#[tokio::test]
async fn a_get_succeeds_on_its_third_attempt_and_every_attempt_carries_the_callers_trace() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let _guard = tracing::subscriber::set_default(service::platform::telemetry::subscriber(
        SdkTracerProvider::builder().build(),
        std::io::sink,
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    ));
    let (peer, url) = Peer::start(&[status(503), status(503), status(200)]).await;
    let client = HttpClient::new("inventory", &config(&url)).unwrap();

    let caller = tracing::info_span!("caller");
    let caller_trace = caller
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    let response = client
        .send(client.get("v1/stock/7"))
        .instrument(caller)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let seen = peer.seen();
    assert_eq!(seen.len(), 3, "two retries, then success");
    let parents: Vec<&str> = seen
        .iter()
        .map(|s| {
            s.header("traceparent")
                .expect("traceparent on every attempt")
        })
        .collect();
    for parent in &parents {
        assert_eq!(trace_id_of(parent), caller_trace);
    }
    // One client span per attempt: each attempt's parent span differs.
    let mut span_ids: Vec<&str> = parents.iter().map(|p| span_id_of(p)).collect();
    span_ids.dedup();
    assert_eq!(span_ids.len(), 3, "{parents:?}");
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_sent_once() {
    let (peer, url) = Peer::start(&[status(503), status(200)]).await;
    let client = HttpClient::new("payments-once", &config(&url)).unwrap();

    let response = client
        .send(client.post("v1/charges").body("{}"))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried() {
    let (peer, url) = Peer::start(&[status(503), status(200)]).await;
    let client = HttpClient::new("payments-keyed", &config(&url)).unwrap();

    let response = client
        .send(
            client
                .post("v1/charges")
                .header("idempotency-key", "charge-1")
                .body("{}"),
        )
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let seen = peer.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.method == Method::POST && s.header("idempotency-key") == Some("charge-1"))
    );
}

#[tokio::test]
async fn retry_after_is_honoured_within_the_budget_and_refused_beyond_it() {
    let (peer, url) = Peer::start(&[
        Step {
            retry_after: Some("1"),
            ..status(503)
        },
        status(200),
    ])
    .await;
    let client = HttpClient::new("ratelimited", &config(&url)).unwrap();
    let started = Instant::now();
    let response = client.send(client.get("x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert_eq!(peer.seen().len(), 2);

    let (peer, url) = Peer::start(&[Step {
        retry_after: Some("60"),
        ..status(429)
    }])
    .await;
    let client = HttpClient::new("ratelimited-long", &config(&url)).unwrap();
    let started = Instant::now();
    let error = client.send(client.get("x")).await.unwrap_err();
    assert_eq!(error.failure, Failure::Status(429));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up at once"
    );
    assert_eq!(peer.seen().len(), 1);
}

fn gauge(name: &str) -> String {
    let handle = service::platform::metrics::install();
    let text = handle.render();
    text.lines()
        .find(|line| {
            line.starts_with("http_client_circuit_state")
                && line.contains(&format!("dependency=\"{name}\""))
        })
        .unwrap_or_else(|| panic!("no breaker gauge for {name} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sustained_failures_open_the_breaker_and_it_closes_after_the_peer_recovers() {
    service::platform::metrics::install();
    let (peer, url) = Peer::start(&[status(500)]).await;
    let client = HttpClient::new(
        "flaky",
        &DependencyConfig {
            breaker_min_calls: 4,
            breaker_open_ms: 300,
            breaker_half_open_probes: 2,
            ..config(&url)
        },
    )
    .unwrap();
    assert_eq!(gauge("flaky"), "0");

    for _ in 0..4 {
        let response = client.send(client.get("x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(gauge("flaky"), "1");
    let started = Instant::now();
    let error = client.send(client.get("x")).await.unwrap_err();
    assert_eq!(error.failure, Failure::CircuitOpen);
    assert!(started.elapsed() < Duration::from_millis(50), "fails fast");
    assert_eq!(peer.seen().len(), 4, "an open breaker sends nothing");
    let histogram = service::platform::metrics::install().render();
    assert!(
        histogram.contains(
            "http_client_request_duration_seconds_count{dependency=\"flaky\",method=\"GET\",status=\"circuit_open\"} 1"
        ),
        "{histogram}"
    );

    peer.answer(&[status(200)]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    client.send(client.get("x")).await.unwrap();
    assert_eq!(gauge("flaky"), "2", "one probe of two succeeded");
    client.send(client.get("x")).await.unwrap();
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(gauge("flaky"), "0");
    assert_eq!(peer.seen().len(), 6);
}

#[tokio::test]
async fn a_slow_peer_hits_the_attempt_timeout() {
    let (peer, url) = Peer::start(&[Step {
        delay_ms: 2_000,
        ..status(200)
    }])
    .await;
    let client = HttpClient::new(
        "slow-attempt",
        &DependencyConfig {
            attempt_timeout_ms: 100,
            retries: 0,
            ..config(&url)
        },
    )
    .unwrap();
    let started = Instant::now();
    let error = client.send(client.get("x")).await.unwrap_err();
    assert_eq!(error.failure, Failure::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1_000));
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn a_slow_peer_hits_the_total_timeout_across_retries() {
    let (peer, url) = Peer::start(&[Step {
        delay_ms: 5_000,
        ..status(200)
    }])
    .await;
    let client = HttpClient::new(
        "slow-total",
        &DependencyConfig {
            attempt_timeout_ms: 300,
            total_timeout_ms: 500,
            backoff_base_ms: 1,
            ..config(&url)
        },
    )
    .unwrap();
    let started = Instant::now();
    let error = client.send(client.get("x")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.failure, Failure::Timeout);
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1_500),
        "{elapsed:?}"
    );
    assert_eq!(
        peer.seen().len(),
        2,
        "a full attempt, then the rest of the budget"
    );
}

#[tokio::test]
async fn a_handler_passes_its_request_id_and_trace_on_and_a_failed_dependency_is_a_503_problem() {
    let (peer, url) = Peer::start(&[status(503)]).await;
    let app = TestApp::build(
        layers(&format!(
            "[http_client.ledger]\nbase_url = \"{url}\"\nretries = 0\n"
        )),
        |builder| builder,
        |platform| {
            let client = platform.http_clients.get("ledger")?.clone();
            Ok(Router::new().route(
                "/v1/balance",
                get(move || async move {
                    let response = client.send(client.get("balance")).await?;
                    Ok::<_, Problem>(response.status().to_string())
                }),
            ))
        },
    )
    .await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .send(
            Request::get("/v1/balance")
                .header("x-request-id", "req-42")
                .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = json_body(response).await;
    assert_eq!(body["type"], "urn:problem:platform:dependency-unavailable");
    assert_eq!(body["dependency"], "ledger");
    let seen = peer.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-request-id"), Some("req-42"));
    assert_eq!(trace_id_of(seen[0].header("traceparent").unwrap()), trace);
}

#[test]
fn an_unknown_dependency_names_the_section_to_add() {
    let clients = service::platform::http_client::HttpClients::from_layers(&layers("")).unwrap();
    let error = clients.get("orders").unwrap_err().to_string();
    assert!(error.contains("[http_client.orders]"), "{error}");
}
