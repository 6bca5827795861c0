//! The example's event: `POST /v1/items` publishes [`ItemCreated`] on `<stream>.items.created`,
//! and [`ItemCreatedHandler`] consumes it (registered in `src/app/mod.rs`). A handler returns
//! `HandlerError::Transient` for a failure worth retrying, `Permanent` for one that never
//! will; the platform retries, dead-letters, deduplicates and traces (docs/platform.md).
//!
//! YOUR CODE (seeded): copy it for your own events, change it, or delete it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::Item;
use crate::platform::messaging::{self, HandlerError, MessageContext, MessageHandler};

/// The event a new item publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCreated {
    pub item_id: Uuid,
    pub name: String,
    pub created_by: String,
}

impl ItemCreated {
    /// The message id: one per item, so publishing it twice stores and handles it once.
    pub fn id(&self) -> String {
        format!("item-created-{}", self.item_id)
    }
}

impl From<&Item> for ItemCreated {
    fn from(item: &Item) -> Self {
        Self {
            item_id: item.id,
            name: item.name.clone(),
            created_by: item.created_by.clone(),
        }
    }
}

/// Consumes [`ItemCreated`]: here it only counts and logs; yours would update a projection,
/// notify someone, or call another service.
#[derive(Debug, Clone)]
pub struct ItemCreatedHandler {
    subject: String,
}

impl ItemCreatedHandler {
    pub fn new(subject: &str) -> Self {
        Self {
            subject: subject.to_owned(),
        }
    }
}

#[async_trait]
impl MessageHandler for ItemCreatedHandler {
    type Message = ItemCreated;

    fn subject(&self) -> &str {
        &self.subject
    }

    fn decode(&self, payload: &[u8]) -> Result<ItemCreated, HandlerError> {
        messaging::json(payload)
    }

    async fn handle(
        &self,
        event: ItemCreated,
        context: &MessageContext,
    ) -> Result<(), HandlerError> {
        metrics::counter!("items_created_events_total").increment(1);
        tracing::info!(item_id = %event.item_id, delivery = context.delivery_count, "item created event handled");
        Ok(())
    }
}
