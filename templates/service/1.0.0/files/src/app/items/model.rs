//! The item domain: what an item is and what a valid new item looks like.
//!
//! YOUR CODE (seeded).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: Uuid,
    pub name: String,
    /// Subject of the principal that created it.
    pub created_by: String,
}

/// The body of `POST /v1/items`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub name: String,
}

pub const MAX_NAME_CHARS: usize = 200;

impl NewItem {
    /// The trimmed name, or why it is not acceptable.
    pub fn validated_name(&self) -> Result<String, String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("`name` must not be empty".to_owned());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "`name` must be at most {MAX_NAME_CHARS} characters"
            ));
        }
        Ok(name.to_owned())
    }
}
