//! The item domain: what an item is and what a valid new item looks like.
//!
//! YOUR CODE (seeded).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub id: Uuid,
    pub name: String,
    /// Subject of the principal that created it.
    pub created_by: String,
}

/// The body of `POST /v1/items`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Not blank, at most 200 characters (the contract says so: keep the two in step).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
}

pub const MAX_NAME_CHARS: usize = 200;

impl NewItem {
    /// The trimmed name, or why it is not acceptable.
    pub fn validated_name(&self) -> Result<String, String> {
        // The length counts before trimming, as the contract's `maxLength` does.
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "`name` must be at most {MAX_NAME_CHARS} characters"
            ));
        }
        let name = self.name.trim();
        if name.is_empty() {
            return Err("`name` must not be empty".to_owned());
        }
        Ok(name.to_owned())
    }
}
