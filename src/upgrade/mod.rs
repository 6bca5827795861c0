//! Upgrading a service between template versions: planning (pure) and applying (journaled).

pub mod add;
mod conflicts;
mod files;
mod migrations;
pub mod plan;
mod record;
pub mod structured;
pub mod text;
