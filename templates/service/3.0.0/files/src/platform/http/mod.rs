//! The HTTP stack: platform routes (`/livez`, `/readyz`, `/metrics`; the API contract at
//! `/openapi.json` comes with your routes, see [`openapi`]), your routes, and the
//! middleware every request goes through, outermost first:
//! request id → span/access log/metrics → problem+json for bare errors → timeout → 503 →
//! panic → 500 → body limit → 413 → (your routes only) audit → authentication →
//! idempotency.
//!
//! Managed by the platform.

pub mod health;
pub mod openapi;
pub mod telemetry;

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::platform::Platform;
use crate::platform::error::{PROBLEM_JSON, Problem};

/// Wraps your routes with the platform's routes and middleware. Used by `main` and by tests.
pub fn router(platform: &Platform, app: Router) -> Router {
    let config = &platform.config.server;
    // Each stack is applied as one layer (outermost first), so a request clones the stack's
    // services once instead of re-boxing the rest of the chain at every layer.
    let app = app.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                platform.audit.clone(),
                crate::platform::audit::middleware,
            ))
            .layer(middleware::from_fn_with_state(
                platform.auth.clone(),
                crate::platform::auth::middleware,
            ))
            .layer(middleware::from_fn_with_state(
                platform.idempotency.clone(),
                crate::platform::idempotency::middleware,
            )),
    );

    Router::new()
        .route("/livez", get(health::livez))
        .route(
            "/readyz",
            get(health::readyz).with_state(platform.health.clone()),
        )
        .route(
            "/metrics",
            get(crate::platform::metrics::render).with_state(platform.metrics.clone()),
        )
        .merge(app)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(
                    Duration::from_secs(config.request_timeout_secs),
                    outer,
                ))
                .layer(CatchPanicLayer::custom(panic_to_problem))
                .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
                .layer(DefaultBodyLimit::disable()),
        )
}

/// The outer steps, in one layer (each `from_fn` layer costs a request several allocations):
/// request id, span, access log and metrics (see [`telemetry`]) around problem+json for bare
/// errors around the timeout.
async fn outer(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    telemetry::observe(request, |request| async move {
        problem_defaults(timeout(limit, next.run(request)).await).await
    })
    .await
}

async fn not_found() -> Problem {
    Problem::from_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> Problem {
    Problem::from_status(StatusCode::METHOD_NOT_ALLOWED)
}

async fn timeout(limit: Duration, response: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, response).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_secs = limit.as_secs(), "request timed out");
            Problem::timeout().into_response()
        }
    }
}

fn panic_to_problem(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    Problem::internal().into_response()
}

/// Turns an error response that is not problem+json (from axum's rejections, the body limit,
/// a 405, …) into one, keeping its headers (`Allow`, `WWW-Authenticate`, …). Only 4xx texts
/// are kept as `detail`; a 5xx never shows what a lower layer said.
async fn problem_defaults(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.ok();
    let mut problem = Problem::from_status(status);
    if status.is_client_error()
        && !matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        )
        && let Some(text) = text
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|t| !t.trim().is_empty())
    {
        problem.detail = text.trim().to_owned();
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, Body::from(problem.body().to_string()))
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON))
}
