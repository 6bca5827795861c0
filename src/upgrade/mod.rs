//! Upgrading a service between template versions: planning (pure) and applying (journaled).

pub mod plan;
pub mod structured;
pub mod text;
