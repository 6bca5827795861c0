//! What makes a request observable: its request id, one server span, one access log line and
//! the RED metrics.
//!
//! Request ids: a sane incoming `x-request-id` is kept, anything else is replaced by a fresh
//! UUID; the id is echoed on the response and put on the request span (so on every log line).
//!
//! The span is named `METHOD /route/{template}`, continues the caller's W3C trace context,
//! carries the HTTP semantic-convention attributes, and its `request_id`/`trace_id` fields are
//! copied onto every log line emitted while handling the request.
//!
//! Managed by the platform.

use std::future::Future;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Version, header};
use axum::response::Response;
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::platform::metrics::{self, UNMATCHED_ROUTE};
use crate::platform::telemetry::tracing::extract_parent;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request this task serves (read by the outbound HTTP client).
    static CURRENT_REQUEST_ID: String;
}

/// The id of the request the current task serves, if it serves one: the outbound HTTP client
/// passes it on as `x-request-id`.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// The id of the current request, available as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A request id we accept from a caller: 1..=64 chars of `[A-Za-z0-9._-]`.
pub fn is_sane(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The outermost step of every request, around `inner` (the rest of the stack): the request
/// id, the span, the access log line and the metrics (see the module docs).
pub async fn observe<F, Fut>(mut request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_sane(value))
        .map_or_else(new_request_id, str::to_owned);
    let id_header = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    request.headers_mut().insert(REQUEST_ID, id_header.clone());

    let method = request.method().clone();
    let method_label = metrics::method_label(&method);
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched
        .as_ref()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let span_name = match &matched {
        Some(route) => format!("{method_label} {}", route.as_str()),
        None => method_label.to_owned(),
    };
    let span = tracing::info_span!(
        "http.server.request",
        otel.name = span_name.as_str(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method_label,
        http.route = matched.as_ref().map_or("", MatchedPath::as_str),
        http.response.status_code = Empty,
        url.path = request.uri().path(),
        url.scheme = "http",
        network.protocol.version = protocol_version(request.version()),
        user_agent.original = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default(),
        enduser.id = Empty,
        request_id = id.as_str(),
        trace_id = Empty,
    );
    // A missing or invalid traceparent yields an empty context: a new trace starts.
    let _ = span.set_parent(extract_parent(request.headers()));
    let span_context = span.context().span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string().as_str());
    }
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(RequestId(id.clone()));

    // The access line is written while the span is entered, so it carries the request context.
    let finished = span.clone();
    // Run with the request id in scope, for outbound calls (`current_request_id`).
    let handled = async move {
        let response = inner(request).await;
        let status = response.status();
        finished.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            finished.record("otel.status_code", "ERROR");
        }
        let elapsed = started.elapsed();
        metrics::record_request(method_label, route, status, elapsed);
        tracing::info!(
            target: "access",
            method = method.as_str(),
            route,
            path = path.as_str(),
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
        response
    }
    .instrument(span);
    let mut response = CURRENT_REQUEST_ID.scope(id, handled).await;
    response.headers_mut().insert(REQUEST_ID, id_header);
    response
}

/// A fresh request id: a random (version 4) UUID drawn from the thread's CSPRNG, so making one
/// costs no system call.
fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// `network.protocol.version` as the semantic conventions spell it.
fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "",
    }
}
