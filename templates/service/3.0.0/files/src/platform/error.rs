//! RFC 9457 problem details: every error this service returns is `application/problem+json`
//! with a stable `type` URI, `title`, `status`, `detail` and the OpenTelemetry `trace_id`.
//!
//! Managed by the platform. Return `Problem` (or anything `Into<Problem>`) from your handlers;
//! build your own kinds with `Problem::new("urn:problem:{{ name }}:your-kind", status, title)`.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Media type of problem details (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Problem types the platform emits. Stable: clients and dashboards may match on them.
pub mod kinds {
    pub const BAD_REQUEST: &str = "urn:problem:platform:bad-request";
    pub const UNAUTHORIZED: &str = "urn:problem:platform:unauthorized";
    pub const FORBIDDEN: &str = "urn:problem:platform:forbidden";
    pub const NOT_FOUND: &str = "urn:problem:platform:not-found";
    pub const METHOD_NOT_ALLOWED: &str = "urn:problem:platform:method-not-allowed";
    pub const CONFLICT: &str = "urn:problem:platform:conflict";
    pub const PAYLOAD_TOO_LARGE: &str = "urn:problem:platform:payload-too-large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "urn:problem:platform:unsupported-media-type";
    pub const VALIDATION: &str = "urn:problem:platform:validation";
    pub const TIMEOUT: &str = "urn:problem:platform:timeout";
    pub const INTERNAL: &str = "urn:problem:platform:internal";
    pub const UNAVAILABLE: &str = "urn:problem:platform:unavailable";
    pub const IDEMPOTENCY_KEY_INVALID: &str = "urn:problem:platform:idempotency-key-invalid";
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "urn:problem:platform:idempotency-key-in-use";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "urn:problem:platform:idempotency-key-reused";
    pub const IDEMPOTENCY_STORE_UNAVAILABLE: &str =
        "urn:problem:platform:idempotency-store-unavailable";
    pub const HTTP_ERROR: &str = "urn:problem:platform:http-error";
    /// A dependency called through `platform::http_client` failed; the problem names it.
    pub const DEPENDENCY_UNAVAILABLE: &str = "urn:problem:platform:dependency-unavailable";
}

/// One problem details response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: &'static str,
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
    /// Extra members of the problem object.
    pub extensions: Vec<(String, Value)>,
    /// Extra response headers (e.g. `WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(kind: &'static str, status: StatusCode, title: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            title: title.into(),
            detail: String::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.push((key.to_owned(), value.into()));
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(kinds::BAD_REQUEST, StatusCode::BAD_REQUEST, "Bad Request").with_detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(kinds::NOT_FOUND, StatusCode::NOT_FOUND, "Not Found").with_detail(detail)
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(
            kinds::VALIDATION,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
        )
        .with_detail(detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            kinds::PAYLOAD_TOO_LARGE,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
        )
        .with_detail(format!("the request body exceeds {limit} bytes"))
    }

    pub fn timeout() -> Self {
        Self::new(
            kinds::TIMEOUT,
            StatusCode::SERVICE_UNAVAILABLE,
            "Request Timed Out",
        )
        .with_detail("the request took too long to process; retry later")
    }

    /// A 500. Never put internals in `detail`: log them, the trace id links the two.
    pub fn internal() -> Self {
        Self::new(
            kinds::INTERNAL,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        )
        .with_detail("an unexpected error occurred; quote the trace_id when reporting it")
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            kinds::UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
        )
        .with_detail(detail)
    }

    /// A problem for a bare status code (used when a lower layer produced a plain error).
    pub fn from_status(status: StatusCode) -> Self {
        let (kind, title) = match status {
            StatusCode::BAD_REQUEST => (kinds::BAD_REQUEST, "Bad Request"),
            StatusCode::UNAUTHORIZED => (kinds::UNAUTHORIZED, "Unauthorized"),
            StatusCode::FORBIDDEN => (kinds::FORBIDDEN, "Forbidden"),
            StatusCode::NOT_FOUND => (kinds::NOT_FOUND, "Not Found"),
            StatusCode::METHOD_NOT_ALLOWED => (kinds::METHOD_NOT_ALLOWED, "Method Not Allowed"),
            StatusCode::CONFLICT => (kinds::CONFLICT, "Conflict"),
            StatusCode::PAYLOAD_TOO_LARGE => (kinds::PAYLOAD_TOO_LARGE, "Payload Too Large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (kinds::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => (kinds::VALIDATION, "Validation Failed"),
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                (kinds::TIMEOUT, "Request Timed Out")
            }
            StatusCode::INTERNAL_SERVER_ERROR => (kinds::INTERNAL, "Internal Server Error"),
            StatusCode::SERVICE_UNAVAILABLE => (kinds::UNAVAILABLE, "Service Unavailable"),
            _ => (
                kinds::HTTP_ERROR,
                status.canonical_reason().unwrap_or("Error"),
            ),
        };
        let detail = match status {
            StatusCode::NOT_FOUND => "no route matches this path".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => "this route does not accept this method".to_owned(),
            s if s.is_server_error() => {
                "the service could not handle the request; retry later".to_owned()
            }
            _ => title.to_lowercase(),
        };
        Self::new(kind, status, title).with_detail(detail)
    }

    /// The JSON body, with the trace id of the current span.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": self.kind,
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.insert(
                "trace_id".to_owned(),
                crate::platform::telemetry::current_trace_id().map_or(Value::Null, Value::String),
            );
            for (key, value) in &self.extensions {
                map.insert(key.clone(), value.clone());
            }
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.title,
            self.status.as_u16(),
            self.detail
        )
    }
}

impl std::error::Error for Problem {}
