//! `/livez` (the process is up) and `/readyz` (dependencies reachable, not shutting down).
//!
//! Managed by the platform.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::platform::error::Problem;
use crate::platform::idempotency::IdempotencyStore;
{% if messaging == "nats" %}
use crate::platform::messaging::{Broker, ConsumerState, ConsumerStates};
{% endif %}

/// What readiness looks at.
#[derive(Clone)]
pub struct Health {
    store: Arc<dyn IdempotencyStore>,
    draining: Arc<AtomicBool>,
{% if messaging == "nats" %}
    broker: Option<Arc<dyn Broker>>,
    consumers: ConsumerStates,
{% endif %}
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl Health {
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store,
            draining: Arc::new(AtomicBool::new(false)),
{% if messaging == "nats" %}
            broker: None,
            consumers: ConsumerStates::default(),
{% endif %}
        }
    }
{% if messaging == "nats" %}

    /// Readiness also requires the message broker to answer.
    pub fn with_broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Readiness also requires every started message consumer to take messages: one the broker
    /// refused, or whose task ended, is `consumer:<durable name>: down`.
    pub fn with_consumers(mut self, consumers: ConsumerStates) -> Self {
        self.consumers = consumers;
        self
    }
{% endif %}

    /// From now on `/readyz` answers 503, so load balancers stop sending traffic.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// `GET /livez`: the process is up.
#[utoipa::path(
    get,
    path = "/livez",
    operation_id = "livez",
    tag = "platform",
    responses((status = 200, description = "The process is up", body = crate::platform::http::openapi::Liveness))
)]
pub async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: ready for traffic (dependencies reachable, not shutting down).
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "platform",
    responses(
        (status = 200, description = "Ready for traffic", body = crate::platform::http::openapi::Readiness),
        (status = 503, description = "Shutting down or a dependency is unreachable (`checks` says which)", body = crate::platform::http::openapi::ProblemDoc, content_type = "application/problem+json")
    )
)]
pub async fn readyz(State(health): State<Health>) -> Response {
    if health.draining.load(Ordering::SeqCst) {
        return Problem::unavailable("the service is shutting down")
            .with_extension("checks", json!({ "shutdown": "draining" }))
            .into_response();
    }
    let store = match tokio::time::timeout(Duration::from_secs(2), health.store.check()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
{% if messaging == "nats" %}
    let broker = match &health.broker {
        None => Ok(()),
        Some(broker) => match tokio::time::timeout(Duration::from_secs(2), broker.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_owned()),
        },
    };
    let state = |result: &Result<(), String>| if result.is_ok() { "ok" } else { "unavailable" };
    let mut checks = serde_json::Map::new();
    checks.insert("idempotency_store".to_owned(), json!(state(&store)));
    if health.broker.is_some() {
        checks.insert("broker".to_owned(), json!(state(&broker)));
    }
    if let Err(error) = &store {
        tracing::warn!(%error, "readiness check failed: idempotency store");
    }
    if let Err(error) = &broker {
        tracing::warn!(%error, "readiness check failed: message broker");
    }
    let mut consumers_ok = true;
    for (durable, consumer) in health.consumers.all() {
        let state = match consumer {
            ConsumerState::Starting => "starting",
            ConsumerState::Running => "ok",
            ConsumerState::Down(error) => {
                tracing::warn!(consumer = %durable, %error, "readiness check failed: message consumer");
                consumers_ok = false;
                "down"
            }
        };
        checks.insert(format!("consumer:{durable}"), json!(state));
    }
    if store.is_ok() && broker.is_ok() && consumers_ok {
        Json(json!({ "status": "ready", "checks": checks })).into_response()
    } else {
        Problem::unavailable("a dependency is unavailable")
            .with_extension("checks", serde_json::Value::Object(checks))
            .into_response()
    }
}
{% else %}
    match store {
        Ok(()) => Json(json!({ "status": "ready", "checks": { "idempotency_store": "ok" } }))
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed: idempotency store");
            Problem::unavailable("a dependency is unavailable")
                .with_extension("checks", json!({ "idempotency_store": "unavailable" }))
                .into_response()
        }
    }
}
{% endif %}
