//! `Idempotency-Key` for POST and PATCH (IETF httpapi idempotency-key draft, Stripe semantics):
//!
//! - the key is scoped to the caller (`Principal::subject`; `anonymous` without a token);
//! - the first response (status, headers, body — errors included) is stored and replayed with
//!   `Idempotent-Replayed: true` for `idempotency.record_ttl_secs`;
//! - the same key with another request (SHA-256 of method, path and body) → 422;
//! - the same key while the first request still runs → 409;
//! - a malformed key (empty, > 255 chars, not visible ASCII) → 400;
//! - the store unreachable → 503: a handler never runs twice for one key;
//! - a handler that fails without a response (panic, timeout) releases the key.
//!
//! Requests without the header, and other methods, pass through untouched.
//!
//! Managed by the platform.

pub mod memory;
{% if idempotency_store == "postgres" %}
pub mod postgres;
{% elif idempotency_store == "redis" %}
pub mod redis;
{% endif %}
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub use memory::MemoryStore;
pub use store::{Claim, ClaimToken, IdempotencyStore, StoreError, StoredResponse};

use crate::platform::auth::Principal;
use crate::platform::error::{Problem, kinds};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Headers never stored for replay: they describe one transfer, not the result.
const NOT_STORED: &[&str] = &[
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "x-request-id",
    "set-cookie",
];

/// The middleware's settings and store.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    in_flight_ttl: Duration,
    body_limit: usize,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("ttl", &self.ttl)
            .field("in_flight_ttl", &self.in_flight_ttl)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        ttl: Duration,
        in_flight_ttl: Duration,
        body_limit: usize,
    ) -> Self {
        Self {
            store,
            ttl,
            in_flight_ttl,
            body_limit,
        }
    }

    pub fn store(&self) -> &Arc<dyn IdempotencyStore> {
        &self.store
    }
}

fn outcome(outcome: &'static str) {
    metrics::counter!("idempotency_requests_total", "outcome" => outcome).increment(1);
}

/// Parses the header: a bare token (Stripe) or a structured-field string (`"…"`, the draft).
pub fn parse_key(value: &HeaderValue) -> Result<String, &'static str> {
    let raw = value
        .to_str()
        .map_err(|_| "the Idempotency-Key must be visible ASCII")?;
    let key = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(raw);
    if key.is_empty() {
        return Err("the Idempotency-Key is empty");
    }
    if key.len() > 255 {
        return Err("the Idempotency-Key is longer than 255 characters");
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the Idempotency-Key must be visible ASCII without spaces");
    }
    Ok(key.to_owned())
}

/// SHA-256 over method, path (with query) and body.
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(path_and_query.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn invalid_key(detail: &str) -> Response {
    outcome("invalid_key");
    Problem::new(
        kinds::IDEMPOTENCY_KEY_INVALID,
        StatusCode::BAD_REQUEST,
        "Invalid Idempotency-Key",
    )
    .with_detail(detail)
    .into_response()
}

/// Releases the claim if the handler never produced a response (panic, timeout, disconnect).
struct ReleaseOnDrop {
    store: Arc<dyn IdempotencyStore>,
    key: String,
    token: Option<ClaimToken>,
}

impl ReleaseOnDrop {
    fn disarm(mut self) -> ClaimToken {
        self.token.take().expect("armed until disarmed")
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
        tracing::warn!("handler ended without a response; releasing its Idempotency-Key");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.release(&key, &token).await {
                    tracing::error!(%error, "could not release an Idempotency-Key; it frees itself after in_flight_ttl_secs");
                }
            });
        }
    }
}

pub async fn middleware(State(idem): State<Idempotency>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PATCH) {
        return next.run(request).await;
    }
    let mut values = request.headers().get_all(&IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return next.run(request).await;
    };
    if values.next().is_some() {
        return invalid_key("send one Idempotency-Key header, not several");
    }
    let key = match parse_key(value) {
        Ok(key) => key,
        Err(detail) => return invalid_key(detail),
    };
    let scope = request
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "anonymous".to_owned(), |p| p.subject.clone());
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, idem.body_limit).await {
        Ok(body) => body,
        Err(_) => return Problem::payload_too_large(idem.body_limit).into_response(),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let fingerprint = fingerprint(&parts.method, path, &body);
    let store_key = format!("{}:{}:{}", scope.len(), scope, key);

    let token = match idem
        .store
        .claim(&store_key, &fingerprint, idem.in_flight_ttl)
        .await
    {
        Ok(Claim::Claimed(token)) => token,
        Ok(Claim::Completed(stored)) => {
            outcome("replayed");
            return replay(stored);
        }
        Ok(Claim::InFlight) => {
            outcome("in_flight");
            return Problem::new(
                kinds::IDEMPOTENCY_KEY_IN_USE,
                StatusCode::CONFLICT,
                "Request In Progress",
            )
            .with_detail(
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            .into_response();
        }
        Ok(Claim::Mismatch) => {
            outcome("mismatch");
            return Problem::new(
                kinds::IDEMPOTENCY_KEY_REUSED,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key Reused",
            )
            .with_detail("this Idempotency-Key was used for a different request")
            .into_response();
        }
        Err(error) => {
            outcome("store_error");
            tracing::error!(%error, "idempotency store unavailable; refusing the request");
            return Problem::new(
                kinds::IDEMPOTENCY_STORE_UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
            )
            .with_detail(
                "idempotent requests cannot be processed right now; retry later with the same key",
            )
            .into_response();
        }
    };
    outcome("executed");
    let guard = ReleaseOnDrop {
        store: idem.store.clone(),
        key: store_key.clone(),
        token: Some(token),
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "response body failed; releasing the Idempotency-Key");
            drop(guard);
            return Problem::internal().into_response();
        }
    };
    let token = guard.disarm();
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !NOT_STORED.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    if let Err(error) = idem
        .store
        .complete(&store_key, &token, &stored, idem.ttl)
        .await
    {
        // The handler ran: answer with its result. The key stays claimed until
        // in_flight_ttl_secs, so a retry gets 409 rather than a second execution.
        tracing::error!(%error, "could not store the response for replay");
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(Bytes::from(stored.body)));
    *response.status_mut() =
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
