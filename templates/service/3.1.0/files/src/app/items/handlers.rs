//! HTTP handlers of the example resource.
//!
//! YOUR CODE (seeded).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
{% if messaging == "nats" %}
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
{% endif %}
use uuid::Uuid;

use super::ItemsState;
use super::model::{Item, NewItem};
use crate::platform::Problem;
use crate::platform::auth::Principal;
use crate::platform::flags::EvaluationContext;

/// Flag: when on for the caller, new item names are upper-cased (see `config/flags.json`).
pub const UPPERCASE_NAMES: &str = "items-uppercase-names";

/// Problem type of a missing item, `urn:problem:{{ name }}:item-not-found` (stable: clients may
/// match on it; it follows the package name, so write it out before renaming the package).
pub const ITEM_NOT_FOUND: &str = concat!("urn:problem:", env!("CARGO_PKG_NAME"), ":item-not-found");

/// `POST /v1/items` → 201 with the item and its `Location`. Error responses (problem+json)
/// are added to the contract by the platform (`platform::http::openapi`).
#[utoipa::path(
    post,
    path = "/v1/items",
    operation_id = "createItem",
    tag = "items",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes a retry safe: the same key and body get the first response again; a key reused for another body is a 422",
        // A bare token of visible ASCII or a quoted one, 1 to 255 characters inside (the
        // platform's `idempotency::parse_key`).
        pattern = r#"^(?:[!#-~][!-~]{0,254}|"|"[!-~]{0,253}[!#-~]|"[!-~]{1,255}")$"#)),
    request_body = NewItem,
    responses((status = 201, description = "Created", body = Item,
        headers(("Location" = String, description = "URL of the new item"))))
)]
pub async fn create(
    State(state): State<ItemsState>,
    principal: Principal,
    body: Result<Json<NewItem>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(new_item) = body.map_err(|rejection| {
        Problem::from_status(rejection.status()).with_detail(rejection.body_text())
    })?;
    let name = new_item.validated_name().map_err(Problem::validation)?;

    // Simulated work (config `items.create_delay_ms`, 0 by default).
    let delay = state.settings.create_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let context = EvaluationContext::new(principal.subject.clone());
    let name = if state.flags.boolean(UPPERCASE_NAMES, false, &context).await {
        name.to_uppercase()
    } else {
        name
    };

    let item = Item {
        id: Uuid::new_v4(),
        name,
        created_by: principal.subject,
    };
    state
        .repository
        .insert(item.clone())
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not store the item");
            Problem::internal()
        })?;
    metrics::counter!("items_created_total").increment(1);
    tracing::info!(item_id = %item.id, "item created");
{% if messaging == "nats" %}

    // The event: its id is the item's, so publishing it again stores it once. The item is
    // stored already, so its event must follow: when the broker does not take it now, it is
    // published again in the background until the broker does (this example keeps its items
    // in memory, so the event is as durable as the item). A resource kept in PostgreSQL
    // writes its event to the outbox in the same transaction instead (docs/platform.md).
    let event = super::events::ItemCreated::from(&item);
    if let Err(error) = state
        .messaging
        .publish_json(&state.created_subject, &event.id(), &event)
        .await
    {
        tracing::warn!(%error, event_id = %event.id(), "could not publish items.created; publishing it in the background");
        let (messaging, subject) = (state.messaging.clone(), state.created_subject.clone());
        // A span of its own in the request's trace: the request's span ends with the request.
        let span = tracing::info_span!("publish items.created", event_id = %event.id());
        let _ = span.set_parent(tracing::Span::current().context());
        tokio::spawn(
            async move {
                let mut delay = std::time::Duration::from_millis(500);
                loop {
                    tokio::time::sleep(delay).await;
                    match messaging.publish_json(&subject, &event.id(), &event).await {
                        Ok(()) => {
                            tracing::info!(event_id = %event.id(), "items.created published");
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(%error, event_id = %event.id(), "could not publish items.created; trying again");
                            delay = (delay * 2).min(std::time::Duration::from_secs(10));
                        }
                    }
                }
            }
            .instrument(span),
        );
    }
{% endif %}

    let location = format!("/v1/items/{}", item.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(item),
    )
        .into_response())
}

/// `GET /v1/items/{id}` → 200 with the item, or 404.
#[utoipa::path(
    get,
    path = "/v1/items/{id}",
    operation_id = "getItem",
    tag = "items",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, description = "The item", body = Item))
)]
pub async fn get(
    State(state): State<ItemsState>,
    _principal: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Item>, Problem> {
    let Path(id) = id.map_err(|_| Problem::bad_request("the item id must be a UUID"))?;
    let item = state.repository.get(id).await.map_err(|error| {
        tracing::error!(%error, "could not read the item");
        Problem::internal()
    })?;
    item.map(Json).ok_or_else(|| {
        Problem::new(ITEM_NOT_FOUND, StatusCode::NOT_FOUND, "Item Not Found")
            .with_detail(format!("no item with id {id}"))
    })
}
