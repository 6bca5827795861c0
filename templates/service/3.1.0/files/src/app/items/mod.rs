//! The example resource: `POST /v1/items` and `GET /v1/items/{id}`. It shows each platform
//! piece in use — the `Principal` extractor, a feature flag, problem+json errors, a domain
//! metric, config of its own — and gets `Idempotency-Key` handling for free.
//!
//! YOUR CODE (seeded): copy it for your own resources, change it, or delete it.

{% if messaging == "nats" %}
pub mod events;
{% endif %}
pub mod handlers;
pub mod model;
pub mod repository;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::repository::ItemRepository;
use crate::platform::flags::Flags;
{% if messaging == "nats" %}
use crate::platform::messaging::Messaging;
{% endif %}

/// The `[items]` config section (`APP_ITEMS__…` env vars).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemsConfig {
    /// Simulated work: creating an item takes this long. Tests use it to make two requests
    /// overlap; keep it 0 in real deployments.
    pub create_delay_ms: u64,
}

impl ItemsConfig {
    pub fn create_delay(&self) -> Duration {
        Duration::from_millis(self.create_delay_ms)
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ItemsState {
    pub repository: Arc<dyn ItemRepository>,
    pub flags: Flags,
{% if messaging == "nats" %}
    pub messaging: Messaging,
    /// The subject of the event a new item publishes (`events::ItemCreated`).
    pub created_subject: String,
{% endif %}
    pub settings: ItemsConfig,
}

/// The routes with their part of the API contract (each handler's `#[utoipa::path]`).
pub fn router(state: ItemsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(handlers::create))
        .routes(routes!(handlers::get))
        .with_state(state)
}
