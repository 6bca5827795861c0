//! Where items are kept. [`ItemRepository`] is the seam: the in-memory implementation is for
//! the example; implement the trait over your database and pass it in `src/app/mod.rs`.
//!
//! YOUR CODE (seeded).

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use uuid::Uuid;

use super::model::Item;

#[derive(Debug, thiserror::Error)]
#[error("item repository: {0}")]
pub struct RepositoryError(pub String);

#[async_trait]
pub trait ItemRepository: Send + Sync + 'static {
    async fn insert(&self, item: Item) -> Result<(), RepositoryError>;
    async fn get(&self, id: Uuid) -> Result<Option<Item>, RepositoryError>;
}

/// Items in process memory (lost on restart; not shared between replicas).
#[derive(Debug, Default)]
pub struct InMemoryItems {
    items: RwLock<HashMap<Uuid, Item>>,
}

#[async_trait]
impl ItemRepository for InMemoryItems {
    async fn insert(&self, item: Item) -> Result<(), RepositoryError> {
        self.items
            .write()
            .map_err(|e| RepositoryError(e.to_string()))?
            .insert(item.id, item);
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<Item>, RepositoryError> {
        Ok(self
            .items
            .read()
            .map_err(|e| RepositoryError(e.to_string()))?
            .get(&id)
            .cloned())
    }
}
