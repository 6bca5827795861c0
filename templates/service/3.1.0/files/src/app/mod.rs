//! YOUR CODE starts here. Seeded by `cargo platform new`: upgrades never touch `src/app/`.
//!
//! - [`routes`] returns your HTTP routes. They get authentication (a [`Principal`] extractor)
//!   and `Idempotency-Key` handling from the platform; errors are [`Problem`]s. Annotated
//!   handlers make the API contract (`/openapi.json`).
//! - [`customize`] is where you swap a platform extension point for your own implementation:
//!   a `KeySource` (where JWT verification keys come from), a `FlagProvider` (where flags come
//!   from) or an `IdempotencyStore`.
//! - [`items`] is the example resource: copy its shape for your own resources, then delete it.
{% if messaging == "nats" %}
//!   It publishes an event when an item is created, and consumes it (`items::events`):
//!   register your message handlers here too, with `platform.messaging.consume(handler)`.
{% endif %}
//!
//! [`Principal`]: crate::platform::auth::Principal
//! [`Problem`]: crate::platform::Problem

pub mod items;

use std::sync::Arc;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::platform::http::openapi;
use crate::platform::server::App;
use crate::platform::{BoxError, Platform, PlatformBuilder};

/// What `main` runs.
pub const APP: App = App { customize, routes };

/// Swap extension points here, e.g.
/// `platform.with_flag_provider(Arc::new(MyFlagService::new()))`.
pub fn customize(platform: PlatformBuilder) -> PlatformBuilder {
    platform
}

/// Your routes. Add your resources' routers here; annotated with `#[utoipa::path]` and
/// registered with `utoipa_axum::routes!`, they are in the API contract served at
/// `/openapi.json` (and the Swagger UI at `/docs` in the local profile).
pub fn routes(platform: &Platform) -> Result<Router, BoxError> {
    let settings: items::ItemsConfig = platform.layers.section("items")?;
    let items = items::ItemsState {
        repository: Arc::new(items::repository::InMemoryItems::default()),
        flags: platform.flags.clone(),
{% if messaging == "nats" %}
        messaging: platform.messaging.clone(),
        created_subject: platform.messaging.subject("items.created"),
{% endif %}
        settings,
    };
{% if messaging == "nats" %}
    platform
        .messaging
        .consume(items::events::ItemCreatedHandler::new(
            &items.created_subject,
        ));
{% endif %}
    let (router, api) = OpenApiRouter::new()
        .merge(items::router(items))
        .split_for_parts();
    Ok(router.merge(openapi::routes(platform, api)))
}
