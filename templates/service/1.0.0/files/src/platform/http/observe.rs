//! One server span, one access log line and the RED metrics per request.
//!
//! The span is named `METHOD /route/{template}`, continues the caller's W3C trace context,
//! carries the HTTP semantic-convention attributes, and its `request_id`/`trace_id` fields are
//! copied onto every log line emitted while handling the request.
//!
//! Managed by the platform.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::request_id::RequestId;
use crate::platform::metrics::{self, UNMATCHED_ROUTE};
use crate::platform::telemetry::tracing::extract_parent;

pub async fn middleware(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let route = matched
        .clone()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span_name = match &matched {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };

    let span = tracing::info_span!(
        "http.server.request",
        otel.name = %span_name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = matched.as_deref().unwrap_or_default(),
        http.response.status_code = Empty,
        url.path = %path,
        url.scheme = "http",
        network.protocol.version = ?request.version(),
        user_agent.original = %user_agent,
        enduser.id = Empty,
        request_id = %request_id,
        trace_id = Empty,
    );
    // A missing or invalid traceparent yields an empty context: a new trace starts.
    let _ = span.set_parent(extract_parent(request.headers()));
    let span_context = span.context().span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string().as_str());
    }

    let response = next.run(request).instrument(span.clone()).await;

    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let elapsed = started.elapsed();
    metrics::record_request(metrics::method_label(&method), &route, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            target: "access",
            method = %method,
            route = %route,
            path = %path,
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    response
}
