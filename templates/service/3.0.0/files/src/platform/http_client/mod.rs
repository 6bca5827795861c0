//! The outbound HTTP client: the one way this service calls another. One [`HttpClient`] per
//! named dependency, configured under `[http_client.<name>]` (see [`DependencyConfig`]), with
//! timeouts, retries, a retry budget, a circuit breaker, trace propagation, a client span per
//! attempt and RED metrics.
//!
//! Managed by the platform (component `http_client`, ejectable). Build the clients from the
//! config with [`HttpClients::from_layers`] (or one with [`HttpClient::new`]), call
//! [`HttpClient::send`], and return its [`DependencyError`] from a handler with `?`: it becomes a
//! problem+json 503 `urn:problem:platform:dependency-unavailable` naming the dependency.
//!
//! The chain of one call, outermost first: `Resilience` (total timeout, retries with backoff,
//! `Retry-After`, retry budget, breaker, metrics; hand-written, see its docs), then
//! `reqwest_tracing::TracingMiddleware` (one `otel.kind = client` span per attempt), then
//! `Propagate` (`traceparent` and `x-request-id` on each attempt), then reqwest.

pub mod breaker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use opentelemetry::propagation::Injector;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next, RequestBuilder};
use serde::Deserialize;
use tower::retry::budget::{Budget, TpsBudget};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use self::breaker::{Breaker, BreakerSettings, BreakerState, PermitKind};
use crate::platform::config::{ConfigError, Layers, env_name};
use crate::platform::error::{Problem, kinds};

/// Latency of each attempt sent, by `dependency`, `method` and `status` (the status code, or
/// `timeout`, `connect_error`, `error`).
pub const REQUEST_DURATION: &str = "http_client_request_duration_seconds";
/// Calls refused unsent because the breaker was open, by `dependency` and `method` (not in the
/// latency histogram: they took no time at the dependency).
pub const CIRCUIT_OPEN_TOTAL: &str = "http_client_circuit_open_total";
/// Breaker state per `dependency`: 0 closed, 1 open, 2 half-open; read at each scrape.
pub const CIRCUIT_STATE: &str = "http_client_circuit_state";
/// The header that makes a non-idempotent request safe to retry.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One dependency's settings, `[http_client.<name>]`; every key has a default, and
/// `APP_HTTP_CLIENT__<NAME>__<KEY>` sets it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DependencyConfig {
    /// Base URL the paths given to the client are joined to, e.g. `http://orders:8080/`.
    pub base_url: String,
    pub connect_timeout_ms: u64,
    /// One attempt (connect, send, response headers and body) may take this long.
    pub attempt_timeout_ms: u64,
    /// The whole call, retries and waits included, may take this long; must be below
    /// `server.request_timeout_secs`, so the caller sees the dependency fail, not its own timeout.
    pub total_timeout_ms: u64,
    /// Retries after the first attempt (0: never retry).
    pub retries: u32,
    /// First backoff; each retry doubles it, and the wait is drawn uniformly below it.
    pub backoff_base_ms: u64,
    /// Retries may add at most this share of load (percent of first attempts).
    pub retry_budget_percent: u32,
    /// Retries always allowed per second, whatever the load (so a quiet service can retry).
    pub retry_budget_min_per_sec: u32,
    pub breaker_window_ms: u64,
    pub breaker_min_calls: u32,
    /// Opens when this percentage of the window's calls failed.
    pub breaker_failure_percent: u32,
    pub breaker_open_ms: u64,
    pub breaker_half_open_probes: u32,
}

impl Default for DependencyConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            connect_timeout_ms: 2_000,
            attempt_timeout_ms: 10_000,
            total_timeout_ms: 25_000,
            retries: 3,
            backoff_base_ms: 200,
            retry_budget_percent: 20,
            retry_budget_min_per_sec: 1,
            breaker_window_ms: 30_000,
            breaker_min_calls: 20,
            breaker_failure_percent: 50,
            breaker_open_ms: 5_000,
            breaker_half_open_probes: 3,
        }
    }
}

impl DependencyConfig {
    fn validate(&self, name: &str) -> Result<reqwest::Url, ConfigError> {
        let key = |k: &str| format!("http_client.{name}.{k}");
        let invalid = |k: &str, message: String| ConfigError::Invalid {
            key: key(k),
            message,
        };
        let mut base = reqwest::Url::parse(&self.base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| {
                invalid(
                    "base_url",
                    format!(
                        "`{}` is not an http(s) URL; set it, e.g. `http://{name}:8080/`",
                        self.base_url
                    ),
                )
            })?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        for (k, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("attempt_timeout_ms", self.attempt_timeout_ms),
            ("total_timeout_ms", self.total_timeout_ms),
            ("breaker_window_ms", self.breaker_window_ms),
            ("breaker_open_ms", self.breaker_open_ms),
        ] {
            if v == 0 {
                return Err(invalid(k, "must be at least 1".to_owned()));
            }
        }
        if self.attempt_timeout_ms > self.total_timeout_ms {
            return Err(invalid(
                "attempt_timeout_ms",
                format!(
                    "must not exceed total_timeout_ms ({})",
                    self.total_timeout_ms
                ),
            ));
        }
        if !(1..=100).contains(&self.breaker_failure_percent) {
            return Err(invalid(
                "breaker_failure_percent",
                "must be between 1 and 100".to_owned(),
            ));
        }
        if self.retry_budget_percent > 1000 {
            return Err(invalid(
                "retry_budget_percent",
                "must be between 0 and 1000".to_owned(),
            ));
        }
        if self.breaker_half_open_probes == 0 {
            return Err(invalid(
                "breaker_half_open_probes",
                "must be at least 1".to_owned(),
            ));
        }
        Ok(base)
    }
}

/// Why a call to a dependency failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The dependency's breaker is open: the call was not sent.
    CircuitOpen,
    /// An attempt or the whole call ran out of time.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The dependency answered this retryable status (408, 429, 502, 503, 504) to the last
    /// attempt, or to a request that may not be retried.
    Status(u16),
    /// The retry budget is spent: this status or error was not retried.
    BudgetExhausted(Box<Failure>),
    /// The path given to [`HttpClient::request`] leaves the base URL (another origin, or a
    /// path outside the base path); nothing was sent. A bug of this service: returned from a
    /// handler it is a 500, not the dependency's 503.
    InvalidPath(String),
    /// Anything else: the connection broke after the request was sent (reset, incomplete
    /// answer), too many redirects, or the request could not be built. Never retried (the
    /// dependency may have processed the request).
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CircuitOpen => f.write_str("its circuit breaker is open"),
            Self::Timeout => f.write_str("it did not answer in time"),
            Self::Connect => f.write_str("no connection could be made"),
            Self::Status(status) => write!(f, "it answered {status}"),
            Self::BudgetExhausted(inner) => write!(f, "{inner} (retry budget spent)"),
            Self::InvalidPath(message) => f.write_str(message),
            Self::Other(message) => f.write_str(message),
        }
    }
}

/// A call to a dependency failed; `?` in a handler turns it into a problem+json 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency `{dependency}` is unavailable: {failure}")]
pub struct DependencyError {
    pub dependency: String,
    pub failure: Failure,
}

impl From<DependencyError> for Problem {
    fn from(error: DependencyError) -> Self {
        if let Failure::InvalidPath(_) = error.failure {
            // The service built a bad path: its bug, not the dependency's unavailability (a
            // retry would not help). Logged with the path; the caller sees a plain 500.
            tracing::error!(%error, "refused an outbound path");
            return Problem::internal();
        }
        Problem::new(
            kinds::DEPENDENCY_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            "Dependency Unavailable",
        )
        .with_detail(format!(
            "the service depends on `{}`, which is unavailable; retry later",
            error.dependency
        ))
        .with_extension("dependency", error.dependency)
    }
}

/// The clients of every dependency in `[http_client.*]`, by name.
#[derive(Debug, Clone, Default)]
pub struct HttpClients(BTreeMap<String, HttpClient>);

impl HttpClients {
    /// Reads `[http_client.<name>]` for every name configured (none is fine).
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let configs: BTreeMap<String, DependencyConfig> =
            layers.section("http_client").or_else(|error| match error {
                ConfigError::Load(e) if matches!(e.kind, figment::error::Kind::MissingField(_)) => {
                    Ok(BTreeMap::new())
                }
                other => Err(other),
            })?;
        configs
            .into_iter()
            .map(|(name, config)| Ok((name.clone(), HttpClient::new(&name, &config)?)))
            .collect::<Result<_, ConfigError>>()
            .map(Self)
    }

    /// Refuses a dependency whose `total_timeout_ms` is not below the server's
    /// `request_timeout_secs`: the server would always time the request out first, and the
    /// caller would never see the dependency fail (nor would its last attempt be counted).
    pub fn check_within_request_timeout(
        &self,
        request_timeout: Duration,
    ) -> Result<(), ConfigError> {
        for (name, client) in &self.0 {
            if client.total_timeout >= request_timeout {
                return Err(ConfigError::Invalid {
                    key: format!("http_client.{name}.total_timeout_ms"),
                    message: format!(
                        "{} ms must be below server.request_timeout_secs ({} s): lower http_client.{name}.total_timeout_ms (env {}) or raise server.request_timeout_secs (env {})",
                        client.total_timeout.as_millis(),
                        request_timeout.as_secs(),
                        env_name(&format!("http_client.{name}.total_timeout_ms")),
                        env_name("server.request_timeout_secs"),
                    ),
                });
            }
        }
        Ok(())
    }

    /// The client of dependency `name`; the error names the config section to add.
    pub fn get(&self, name: &str) -> Result<&HttpClient, ConfigError> {
        self.0.get(name).ok_or_else(|| ConfigError::Invalid {
            key: format!("http_client.{name}.base_url"),
            message: format!(
                "no dependency `{name}` is configured; add [http_client.{name}] with a base_url (env {})",
                env_name(&format!("http_client.{name}.base_url"))
            ),
        })
    }
}

/// The client of one dependency. Cheap to clone (shared connection pool, breaker and budget).
#[derive(Debug, Clone)]
pub struct HttpClient {
    name: Arc<str>,
    base_url: reqwest::Url,
    total_timeout: Duration,
    client: ClientWithMiddleware,
    breaker: Arc<Breaker>,
}

/// On a request whose path was refused by [`HttpClient::request`]: [`Resilience`] fails it
/// before anything is sent.
#[derive(Debug, Clone)]
struct RefusedPath(String);

impl HttpClient {
    /// A client for dependency `name` with `config` (validated; errors name the key).
    pub fn new(name: &str, config: &DependencyConfig) -> Result<Self, ConfigError> {
        let base_url = config.validate(name)?;
        crate::platform::install_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .build()
            .map_err(|error| ConfigError::Invalid {
                key: format!("http_client.{name}"),
                message: format!("cannot build the HTTP client: {error}"),
            })?;
        let breaker = Arc::new(Breaker::new(BreakerSettings {
            window: Duration::from_millis(config.breaker_window_ms),
            min_calls: config.breaker_min_calls,
            failure_rate: f64::from(config.breaker_failure_percent) / 100.0,
            open_for: Duration::from_millis(config.breaker_open_ms),
            half_open_probes: config.breaker_half_open_probes,
        }));
        let name: Arc<str> = Arc::from(name);
        metrics::gauge!(CIRCUIT_STATE, "dependency" => name.to_string()).set(0.0);
        // The gauge follows the breaker at every scrape, not only when a call is made (an open
        // breaker with no traffic turns half-open after breaker_open_ms; its alert must clear).
        let watched = Arc::downgrade(&breaker);
        let label = name.to_string();
        crate::platform::metrics::on_scrape(move || {
            let Some(breaker) = watched.upgrade() else {
                return false;
            };
            metrics::gauge!(CIRCUIT_STATE, "dependency" => label.clone())
                .set(breaker.state().gauge());
            true
        });
        let resilience = Resilience {
            dependency: name.clone(),
            attempt_timeout: Duration::from_millis(config.attempt_timeout_ms),
            total_timeout: Duration::from_millis(config.total_timeout_ms),
            retries: config.retries,
            backoff_base: Duration::from_millis(config.backoff_base_ms),
            budget: TpsBudget::new(
                Duration::from_secs(10),
                config.retry_budget_min_per_sec,
                config.retry_budget_percent as f32 / 100.0,
            ),
            breaker: breaker.clone(),
        };
        let client = ClientBuilder::new(client)
            .with(resilience)
            .with(reqwest_tracing::TracingMiddleware::default())
            .with(Propagate)
            .build();
        Ok(Self {
            name,
            base_url,
            total_timeout: Duration::from_millis(config.total_timeout_ms),
            client,
            breaker,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// A request to `path`, relative to the base URL (`"v1/orders/42"`). A path that would
    /// leave the base URL (an absolute URL to another origin, `//host`, `\\host`, `..` or
    /// `%2e%2e` segments climbing above the base path) or cannot be joined is refused: `send`
    /// returns [`Failure::InvalidPath`] and nothing is sent.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        match self.join(path) {
            Ok(url) => self.client.request(method, url),
            Err(refused) => self
                .client
                .request(method, self.base_url.clone())
                .with_extension(RefusedPath(refused)),
        }
    }

    fn join(&self, path: &str) -> Result<reqwest::Url, String> {
        let url = self
            .base_url
            .join(path.trim_start_matches('/'))
            .map_err(|error| format!("path `{path}` is not a valid URL path: {error}"))?;
        if url.origin() != self.base_url.origin() || !url.path().starts_with(self.base_url.path()) {
            return Err(format!(
                "path `{path}` leads to {url}, outside the base URL {}; pass a path below it",
                self.base_url
            ));
        }
        Ok(url)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// Sends `request` through the chain. `Ok` is any answer that is not a retryable status
    /// (2xx, 3xx, 4xx other than 408/429, 500, 501…): read its status. A retryable status
    /// (408, 429, 502, 503, 504) left after the retries, or to a request that may not be retried,
    /// is `Err(Failure::Status)`. Reading the body is bounded by the same attempt and total
    /// timeouts (reqwest's timeout error past them).
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, DependencyError> {
        request.send().await.map_err(|error| self.failure(error))
    }

    fn failure(&self, error: reqwest_middleware::Error) -> DependencyError {
        let failure = match error {
            reqwest_middleware::Error::Middleware(error) => {
                match error.downcast::<DependencyError>() {
                    Ok(error) => return error,
                    Err(error) => Failure::Other(error.to_string()),
                }
            }
            reqwest_middleware::Error::Reqwest(error) => classify_error(&error),
        };
        DependencyError {
            dependency: self.name.to_string(),
            failure,
        }
    }
}

fn classify_error(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else if error.is_connect() {
        Failure::Connect
    } else {
        Failure::Other(error_chain(error))
    }
}

/// The error and its sources ("error sending request: connection closed before message
/// completed").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Statuses that say "try again": the request was not (or may safely be) processed.
fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504)
}

/// Statuses that count as a failure of the dependency for its breaker (not 4xx but 408).
fn is_breaker_failure(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT
}

fn may_retry(request: &Request) -> bool {
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    ) || request.headers().contains_key(IDEMPOTENCY_KEY)
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Full jitter: uniform in `[0, base · 2^retry]`.
fn backoff(base: Duration, retry: u32) -> Duration {
    let cap = base.saturating_mul(2u32.saturating_pow(retry));
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(0..=millis))
}

/// Total timeout, retries, retry budget, breaker and metrics around every attempt.
///
/// Hand-written: reqwest-retry's policy sees neither the request (so it cannot tell idempotent
/// methods or an `Idempotency-Key`) nor the response headers (no `Retry-After`,
/// TrueLayer/reqwest-middleware#146), retries every 5xx, has no retry budget, does not shorten
/// a wait to the time left, and its current release builds a second `rand`. The jitter is a
/// line of `rand`; the budget is tower's `TpsBudget`.
struct Resilience {
    dependency: Arc<str>,
    attempt_timeout: Duration,
    total_timeout: Duration,
    retries: u32,
    backoff_base: Duration,
    budget: TpsBudget,
    breaker: Arc<Breaker>,
}

impl Resilience {
    fn error(&self, failure: Failure) -> reqwest_middleware::Error {
        reqwest_middleware::Error::middleware(DependencyError {
            dependency: self.dependency.to_string(),
            failure,
        })
    }

    fn count_circuit_open(&self, method: &Method) {
        metrics::counter!(
            CIRCUIT_OPEN_TOTAL,
            "dependency" => self.dependency.to_string(),
            "method" => crate::platform::metrics::method_label(method),
        )
        .increment(1);
    }

    fn set_gauge(&self, state: BreakerState) {
        metrics::gauge!(CIRCUIT_STATE, "dependency" => self.dependency.to_string())
            .set(state.gauge());
    }

    fn observe(&self, method: &Method, status: &str, elapsed: Duration) {
        metrics::histogram!(
            REQUEST_DURATION,
            "dependency" => self.dependency.to_string(),
            "method" => crate::platform::metrics::method_label(method),
            "status" => status.to_owned(),
        )
        .record(elapsed.as_secs_f64());
    }
}

#[async_trait]
impl Middleware for Resilience {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if let Some(RefusedPath(message)) = extensions.get::<RefusedPath>() {
            return Err(self.error(Failure::InvalidPath(message.clone())));
        }
        let started = Instant::now();
        let deadline = started + self.total_timeout;
        let method = request.method().clone();
        // A request whose body cannot be copied (a stream) is sent once.
        let retryable = may_retry(&request) && request.try_clone().is_some();
        self.budget.deposit();
        let mut pending = Some(request);
        let mut retry = 0;
        loop {
            let mut attempt = match (retryable, pending.as_ref()) {
                (true, Some(request)) => request.try_clone().expect("checked above"),
                _ => pending
                    .take()
                    .expect("a request that is not retried is sent once"),
            };
            // Dropped unrecorded (this future dropped: a server timeout, a caller gone), a
            // probe permit frees its slot and counts as a failed probe.
            let Some(permit) = self.breaker.try_acquire() else {
                self.count_circuit_open(&method);
                self.set_gauge(self.breaker.state());
                return Err(self.error(Failure::CircuitOpen));
            };
            if permit.kind() == PermitKind::Probe {
                self.set_gauge(BreakerState::HalfOpen);
            }
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            let limit = self.attempt_timeout.min(left);
            // The total budget, not the attempt timeout, bounds this attempt: if it runs out,
            // that says nothing about the dependency.
            let budget_bound = left < self.attempt_timeout;
            // reqwest's per-request timeout runs until the body is read, so a dependency that
            // sends its headers and then stalls is cut too; the outer timeout bounds the chain.
            *attempt.timeout_mut() = Some(limit);
            let outcome = tokio::time::timeout(limit, next.clone().run(attempt, extensions)).await;
            let elapsed = now.elapsed();
            // (A connect timeout shorter than the limit still counts.)
            let cut_by_budget = budget_bound && elapsed + Duration::from_millis(5) >= limit;
            let (label, failure, result) = match outcome {
                Err(_) => ("timeout".to_owned(), Some(Failure::Timeout), None),
                Ok(Err(reqwest_middleware::Error::Reqwest(error))) => {
                    let failure = classify_error(&error);
                    let label = match failure {
                        Failure::Timeout => "timeout",
                        Failure::Connect => "connect_error",
                        _ => "error",
                    };
                    // Nothing was sent when the request could not be built.
                    let ok = (!error.is_builder()).then_some(false);
                    (
                        label.to_owned(),
                        Some(failure),
                        Some((Err(error.into()), ok)),
                    )
                }
                // Another middleware's error says nothing about the dependency.
                Ok(Err(error)) => ("error".to_owned(), None, Some((Err(error), None))),
                Ok(Ok(response)) => {
                    let status = response.status();
                    let failure =
                        is_retryable_status(status).then(|| Failure::Status(status.as_u16()));
                    let ok = Some(!is_breaker_failure(status));
                    (
                        status.as_u16().to_string(),
                        failure,
                        Some((Ok(response), ok)),
                    )
                }
            };
            self.observe(&method, &label, elapsed);
            // Statuses: 5xx and 408 are failures, 429 and other 4xx are not; transport errors
            // after the request was built are; another middleware's error is not about the
            // dependency, nor is a timeout the total budget imposed.
            let ok = match (&failure, &result) {
                (Some(Failure::Timeout), _) if cut_by_budget => None,
                (_, Some((_, ok))) => *ok,
                (_, None) => Some(false),
            };
            let state = match ok {
                Some(ok) => permit.record(ok),
                None => permit.release(),
            };
            self.set_gauge(state);
            let result = result.map(|(result, _)| result);

            let Some(failure) = failure else {
                return result.expect("an answer or an error");
            };
            // Only connection errors, timeouts and the retryable statuses are retried.
            let transient = matches!(
                failure,
                Failure::Timeout | Failure::Connect | Failure::Status(_)
            );
            let wait = match &result {
                Some(Ok(response)) => retry_after(response.headers()),
                _ => None,
            }
            .unwrap_or_else(|| backoff(self.backoff_base, retry));
            let left = deadline.saturating_duration_since(Instant::now());
            let give_up = !retryable || !transient || retry >= self.retries || wait >= left;
            if give_up {
                return Err(self.error(failure));
            }
            if !self.budget.withdraw() {
                return Err(self.error(Failure::BudgetExhausted(Box::new(failure))));
            }
            drop(result);
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// Puts `traceparent` (the current attempt's span) and `x-request-id` (the request being served,
/// unless the caller set one) on each attempt.
///
/// Hand-written: reqwest-tracing injects `traceparent` only with an `opentelemetry_*` feature,
/// and its newest (0.32) would build a second opentelemetry next to the service's 0.33.
struct Propagate;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[async_trait]
impl Middleware for Propagate {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(request.headers_mut()));
        });
        if !request.headers().contains_key(REQUEST_ID)
            && let Some(id) = crate::platform::http::telemetry::current_request_id()
            && let Ok(value) = HeaderValue::from_str(&id)
        {
            request.headers_mut().insert(REQUEST_ID, value);
        }
        next.run(request, extensions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = DependencyConfig::default();
        assert_eq!(
            (
                config.connect_timeout_ms,
                config.attempt_timeout_ms,
                config.total_timeout_ms
            ),
            (2_000, 10_000, 25_000)
        );
        assert_eq!((config.retries, config.backoff_base_ms), (3, 200));
        assert_eq!(config.retry_budget_percent, 20);
        assert_eq!(
            (
                config.breaker_window_ms,
                config.breaker_min_calls,
                config.breaker_failure_percent,
                config.breaker_open_ms
            ),
            (30_000, 20, 50, 5_000)
        );
    }

    #[test]
    fn backoff_stays_below_the_doubling_cap_and_spreads_over_it() {
        for retry in 0..4 {
            let cap = Duration::from_millis(200 << retry);
            let waits: Vec<Duration> = (0..200)
                .map(|_| backoff(Duration::from_millis(200), retry))
                .collect();
            assert!(waits.iter().all(|wait| *wait <= cap), "{waits:?}");
            // Full jitter: spread over the whole range, not a constant (nor always zero).
            let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
            assert!(distinct.len() >= 50, "retry {retry}: {distinct:?}");
            assert!(waits.iter().any(|wait| *wait < cap / 4), "{waits:?}");
            assert!(waits.iter().any(|wait| *wait > cap * 3 / 4), "{waits:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn a_missing_base_url_names_the_key_and_its_env_var() {
        let error = HttpClient::new("orders", &DependencyConfig::default()).unwrap_err();
        let message = error.to_string();
        assert!(
            message
                .contains("`http_client.orders.base_url` (env APP_HTTP_CLIENT__ORDERS__BASE_URL)"),
            "{message}"
        );
    }
}
