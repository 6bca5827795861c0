//! Audit events: who did what to which resource, and how it ended. One JSON line per event on
//! the `audit` log target, through the platform's logging, so every line also carries the
//! request's `request_id` and `trace_id`:
//!
//! ```json
//! {"timestamp":"…","level":"INFO","target":"audit","message":"audit event","request_id":"…",
//!  "trace_id":"…","principal":"alice","action":"http.post","resource":"/v1/items",
//!  "outcome":"succeeded","method":"POST","route":"/v1/items","status":201}
//! ```
//!
//! The platform records, on your routes:
//! - every authentication decision: `action = "auth.token"`, `outcome` `accepted` or
//!   `rejected` (with a `reason`), or `error` when the signing keys are unavailable;
//! - every mutating request (POST, PUT, PATCH, DELETE): `action = "http.<method>"`, `outcome`
//!   `succeeded` (status below 400), `denied` (401, 403), `failed` (other 4xx) or `error` (5xx),
//!   with `status`, and `replayed = true` when an `Idempotency-Key` replay answered it.
//!
//! Secrets never reach an audit line: no `Authorization` header and no token; an
//! `Idempotency-Key` only as a fingerprint (`sha256:` and 12 hex digits, see [`fingerprint`]);
//! query strings are left out of `resource`.
//!
//! Record your own events from a handler with the [`Auditor`] extractor:
//! `auditor.record("items.export", "/v1/items", Outcome::Succeeded)`.
//! `audit.enabled = false` turns all of it off; `RUST_LOG` filters the `audit` target like any
//! other.
//!
//! Managed by the platform.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::platform::auth::{AuthError, Principal};
use crate::platform::config::AuditConfig;
use crate::platform::http::telemetry::RequestId;
use crate::platform::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// The log target of audit events.
pub const TARGET: &str = "audit";

/// The principal of events without an authenticated caller.
pub const ANONYMOUS: &str = "anonymous";

/// The audit settings, shared by every request.
#[derive(Debug, Clone)]
pub struct Audit {
    enabled: bool,
}

impl Audit {
    pub fn new(config: &AuditConfig) -> Self {
        Self {
            enabled: config.enabled,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A token was verified.
    Accepted,
    /// A token was refused.
    Rejected,
    /// The action was carried out.
    Succeeded,
    /// The caller was not allowed to (401, 403).
    Denied,
    /// The caller's request was refused (other 4xx).
    Failed,
    /// The service failed (5xx).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Succeeded => "succeeded",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Error => "error",
        }
    }

    /// The outcome a response status stands for.
    pub fn of_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 | 403 => Self::Denied,
            400..=499 => Self::Failed,
            500.. => Self::Error,
            _ => Self::Succeeded,
        }
    }
}

/// A value that must not be logged, reduced to something that still correlates: `sha256:` and
/// the first 12 hex digits of its SHA-256.
pub fn fingerprint(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The audit handle of one request (a request extension, and an extractor for your handlers).
/// Events recorded after a token was accepted name its subject as the principal.
#[derive(Debug, Clone)]
pub struct Auditor {
    enabled: bool,
    request_id: String,
    principal: Arc<OnceLock<String>>,
}

impl Auditor {
    /// An auditor that records nothing (audit disabled, or outside the platform's stack).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            request_id: String::new(),
            principal: Arc::default(),
        }
    }

    /// The authenticated caller, or [`ANONYMOUS`].
    pub fn principal(&self) -> &str {
        self.principal.get().map_or(ANONYMOUS, String::as_str)
    }

    /// Records one event of yours as the current principal. Never pass secrets (tokens, keys,
    /// passwords) as `resource`: use [`fingerprint`].
    pub fn record(&self, action: &str, resource: &str, outcome: Outcome) {
        self.emit(action, resource, outcome, None);
    }

    fn emit(&self, action: &str, resource: &str, outcome: Outcome, reason: Option<&str>) {
        if !self.enabled {
            return;
        }
        // `trace_id` comes from the request's span, like on every log line.
        tracing::info!(
            target: TARGET,
            request_id = self.request_id.as_str(),
            principal = self.principal(),
            action,
            resource,
            outcome = outcome.as_str(),
            reason,
            "audit event"
        );
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auditor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Auditor>()
            .cloned()
            .unwrap_or_else(Auditor::disabled))
    }
}

fn auditor(request: &Request) -> Option<&Auditor> {
    request.extensions().get::<Auditor>().filter(|a| a.enabled)
}

/// The authentication layer verified a token.
pub fn token_accepted(request: &Request, principal: &Principal) {
    let Some(auditor) = auditor(request) else {
        return;
    };
    let _ = auditor.principal.set(principal.subject.clone());
    auditor.emit("auth.token", request.uri().path(), Outcome::Accepted, None);
}

/// The authentication layer refused a token (or could not check it).
pub fn token_rejected(request: &Request, error: &AuthError) {
    let Some(auditor) = auditor(request) else {
        return;
    };
    let outcome = match error {
        AuthError::KeysUnavailable(_) => Outcome::Error,
        AuthError::Missing | AuthError::Invalid(_) => Outcome::Rejected,
    };
    auditor.emit(
        "auth.token",
        request.uri().path(),
        outcome,
        Some(error.to_string().as_str()),
    );
}

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Middleware over your routes (outside authentication): gives each request its [`Auditor`]
/// and records every mutating request with its outcome.
pub async fn middleware(State(audit): State<Audit>, mut request: Request, next: Next) -> Response {
    if !audit.enabled {
        return next.run(request).await;
    }
    let auditor = Auditor {
        enabled: true,
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default(),
        principal: Arc::default(),
    };
    request.extensions_mut().insert(auditor.clone());
    let method = request.method().clone();
    if !is_mutating(&method) {
        return next.run(request).await;
    }
    let resource = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let idempotency_key = request
        .headers()
        .get(&IDEMPOTENCY_KEY)
        .map(|value| fingerprint(value.as_bytes()));

    let response = next.run(request).await;

    let status = response.status();
    let replayed = response.headers().contains_key(&IDEMPOTENT_REPLAYED);
    tracing::info!(
        target: TARGET,
        request_id = auditor.request_id.as_str(),
        principal = auditor.principal(),
        action = format!("http.{}", method.as_str().to_ascii_lowercase()).as_str(),
        resource = resource.as_str(),
        outcome = Outcome::of_status(status).as_str(),
        method = method.as_str(),
        route = route.as_deref(),
        status = status.as_u16(),
        idempotency_key = idempotency_key.as_deref(),
        replayed = replayed.then_some(true),
        "audit event"
    );
    response
}
