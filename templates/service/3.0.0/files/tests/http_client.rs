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
    path: String,
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
            path: request.uri().path().to_owned(),
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
async fn a_post_without_an_idempotency_key_is_sent_once_and_its_503_is_a_failure() {
    let (peer, url) = Peer::start(&[status(503), status(200)]).await;
    let client = HttpClient::new("payments-once", &config(&url)).unwrap();

    let error = client
        .send(client.post("v1/charges").body("{}"))
        .await
        .unwrap_err();

    assert_eq!(error.failure, Failure::Status(503));
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn put_delete_and_head_are_retried() {
    for method in [Method::PUT, Method::DELETE, Method::HEAD] {
        let (peer, url) = Peer::start(&[status(503), status(200)]).await;
        let client = HttpClient::new(&format!("idem-{method}"), &config(&url)).unwrap();
        let response = client
            .send(client.request(method.clone(), "v1/x"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let seen = peer.seen();
        assert_eq!(seen.len(), 2, "{method}: retried once");
        assert!(seen.iter().all(|s| s.method == method));
    }
}

fn rendered() -> String {
    service::platform::metrics::scrape(&service::platform::metrics::install())
}

/// The value of the sample whose line starts with `prefix` (name and labels), if any.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn a_connection_error_is_retried() {
    service::platform::metrics::install();
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let client = HttpClient::new(
        "refused",
        &DependencyConfig {
            retries: 2,
            ..config(&url)
        },
    )
    .unwrap();
    let error = client.send(client.get("x")).await.unwrap_err();
    assert_eq!(error.failure, Failure::Connect);
    let attempts = sample(
        &rendered(),
        "http_client_request_duration_seconds_count{dependency=\"refused\",method=\"GET\",status=\"connect_error\"}",
    );
    assert_eq!(attempts, Some(3.0), "the first attempt and two retries");
}

#[tokio::test]
async fn retries_add_at_most_the_retry_budget() {
    let (peer, url) = Peer::start(&[status(503)]).await;
    let client = HttpClient::new(
        "budgeted",
        &DependencyConfig {
            backoff_base_ms: 1,
            retry_budget_min_per_sec: 0,
            // Keep the breaker out of it.
            breaker_min_calls: 1_000,
            ..config(&url)
        },
    )
    .unwrap();
    let calls = 50;
    let mut spent = 0;
    for _ in 0..calls {
        let error = client.send(client.get("x")).await.unwrap_err();
        if matches!(error.failure, Failure::BudgetExhausted(_)) {
            spent += 1;
        }
    }
    let attempts = peer.seen().len();
    let retries = attempts - calls;
    assert!(retries > 0, "some retries were allowed");
    assert!(
        retries <= calls / 5 + 1,
        "{retries} retries for {calls} calls: more than 20 % extra load"
    );
    assert!(spent > 0, "calls that found the budget spent say so");
}

#[tokio::test]
async fn a_4xx_answer_does_not_count_against_the_breaker() {
    let (_peer, url) = Peer::start(&[status(404)]).await;
    let client = HttpClient::new(
        "not-found",
        &DependencyConfig {
            breaker_min_calls: 4,
            ..config(&url)
        },
    )
    .unwrap();
    for _ in 0..10 {
        let response = client.send(client.get("x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn paths_that_leave_the_base_url_are_refused_and_nothing_is_sent() {
    let (peer, url) = Peer::start(&[status(200)]).await;
    let client = HttpClient::new("scoped", &config(&format!("{url}api/v1/"))).unwrap();
    for path in [
        "http://evil.example/x",
        "\\/evil.example/x",
        "\\\\evil.example/x",
        "items/../../admin",
        "items/%2e%2e/%2e%2e/admin",
        "items/%2E%2e/../../admin",
        "http://[::1/x",
    ] {
        let error = client.send(client.get(path)).await.unwrap_err();
        assert!(
            matches!(&error.failure, Failure::InvalidPath(message) if message.contains(path)),
            "{path}: {error}"
        );
    }
    assert!(peer.seen().is_empty(), "{:?}", peer.seen());
    client.send(client.get("/items/7")).await.unwrap();
    client.send(client.get("items/a/../8")).await.unwrap();
    // Leading slashes are dropped: `//host/x` stays below the base URL.
    client.send(client.get("//evil.example/x")).await.unwrap();
    let paths: Vec<String> = peer.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/items/7",
            "/api/v1/items/8",
            "/api/v1/evil.example/x"
        ]
    );
}

/// A raw TCP peer: for every connection, reads the request head, then runs `answer`.
async fn raw_peer<F, Fut>(answer: F) -> (String, Arc<Mutex<usize>>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let connections = Arc::new(Mutex::new(0));
    let counted = connections.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            *counted.lock().unwrap() += 1;
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                answer(stream).await;
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_hits_the_attempt_timeout() {
    use tokio::io::AsyncWriteExt;
    let (url, _) = raw_peer(|mut stream| async move {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let client = HttpClient::new(
        "stalled-body",
        &DependencyConfig {
            attempt_timeout_ms: 300,
            retries: 0,
            ..config(&url)
        },
    )
    .unwrap();
    let started = Instant::now();
    let response = client.send(client.get("x")).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), response.bytes())
        .await
        .expect("the body read is bounded by the attempt timeout");
    let error = body.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_connection_broken_after_the_request_was_sent_is_not_retried() {
    let (url, connections) = raw_peer(|stream| async move { drop(stream) }).await;
    let client = HttpClient::new("reset", &config(&url)).unwrap();
    let error = client.send(client.get("x")).await.unwrap_err();
    assert!(matches!(error.failure, Failure::Other(_)), "{error}");
    assert_eq!(
        *connections.lock().unwrap(),
        1,
        "sent once: it may have been processed"
    );
}

#[tokio::test]
async fn dropped_calls_free_their_probes_so_the_breaker_recovers() {
    let (peer, url) = Peer::start(&[status(500)]).await;
    let client = HttpClient::new(
        "dropped-probes",
        &DependencyConfig {
            breaker_min_calls: 1,
            breaker_open_ms: 100,
            ..config(&url)
        },
    )
    .unwrap();
    client.send(client.get("x")).await.unwrap();
    assert_eq!(client.breaker_state(), BreakerState::Open);
    // Rounds of probes whose callers give up (a server timeout, a client gone): more than the
    // three probe slots.
    peer.answer(&[Step {
        delay_ms: 2_000,
        ..status(200)
    }]);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let call = client.send(client.get("x"));
        assert!(
            tokio::time::timeout(Duration::from_millis(30), call)
                .await
                .is_err(),
            "the probe went out and was dropped"
        );
    }
    peer.answer(&[status(200)]);
    tokio::time::sleep(Duration::from_millis(120)).await;
    for _ in 0..3 {
        let response = client
            .send(client.get("x"))
            .await
            .expect("probes go out again");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn an_attempt_cut_by_the_total_budget_does_not_count_against_the_breaker() {
    let (_peer, url) = Peer::start(&[Step {
        delay_ms: 5_000,
        ..status(200)
    }])
    .await;
    let client = HttpClient::new(
        "budget-cut",
        &DependencyConfig {
            attempt_timeout_ms: 300,
            total_timeout_ms: 500,
            backoff_base_ms: 1,
            breaker_min_calls: 2,
            ..config(&url)
        },
    )
    .unwrap();
    let error = client.send(client.get("x")).await.unwrap_err();
    assert_eq!(error.failure, Failure::Timeout);
    // One full attempt timed out (a failure); the second was cut by the call's budget, which
    // says nothing about the dependency: one failure of one call, below breaker_min_calls.
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_total_timeout_not_below_the_server_request_timeout_stops_startup() {
    use service::platform::PlatformBuilder;
    use service::platform::idempotency::MemoryStore;
    let layers = layers(
        "[server]\nrequest_timeout_secs = 30\n[http_client.orders]\nbase_url = \"http://orders:8080/\"\ntotal_timeout_ms = 30000\n",
    );
    let config = layers.platform().unwrap();
    let Err(error) = PlatformBuilder::new(config, layers)
        .with_idempotency_store(Arc::new(MemoryStore::new()))
        .build()
        .await
    else {
        panic!("a total timeout of 30 s with a request timeout of 30 s started");
    };
    let error = error.to_string();
    assert!(
        error.contains("http_client.orders.total_timeout_ms"),
        "{error}"
    );
    assert!(error.contains("server.request_timeout_secs"), "{error}");

    // The defaults (25 s below 30 s) start.
    let layers = self::layers("[http_client.orders]\nbase_url = \"http://orders:8080/\"\n");
    let config = layers.platform().unwrap();
    PlatformBuilder::new(config, layers)
        .with_idempotency_store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .expect("the default total timeout fits the default request timeout");
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
    let text = rendered();
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
    let text = rendered();
    assert_eq!(
        sample(
            &text,
            "http_client_circuit_open_total{dependency=\"flaky\",method=\"GET\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("status=\"circuit_open\""),
        "a call never sent has no latency sample: {text}"
    );

    peer.answer(&[status(200)]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        gauge("flaky"),
        "2",
        "without a call, the scrape sees the open time over"
    );
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

#[tokio::test]
async fn a_refused_path_in_a_handler_is_a_500_problem_not_a_dependency_503() {
    let (peer, url) = Peer::start(&[status(200)]).await;
    let app = TestApp::build(
        layers(&format!("[http_client.ledger]\nbase_url = \"{url}\"\n")),
        |builder| builder,
        |platform| {
            let client = platform.http_clients.get("ledger")?.clone();
            Ok(Router::new().route(
                "/v1/balance",
                get(move || async move {
                    let response = client.send(client.get("http://evil.example/")).await?;
                    Ok::<_, Problem>(response.status().to_string())
                }),
            ))
        },
    )
    .await;
    let response = app
        .send(Request::get("/v1/balance").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = json_body(response).await;
    assert_eq!(body["type"], "urn:problem:platform:internal");
    assert!(peer.seen().is_empty());
}

#[test]
fn an_unknown_dependency_names_the_section_to_add() {
    let clients = service::platform::http_client::HttpClients::from_layers(&layers("")).unwrap();
    let error = clients.get("orders").unwrap_err().to_string();
    assert!(error.contains("[http_client.orders]"), "{error}");
}
