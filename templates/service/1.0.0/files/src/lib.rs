//! {{ description }}
//!
//! Owned by team `{{ owner }}`. Two module trees:
//! - [`app`] — your code (seeded once by `cargo platform new`; upgrades never touch it);
//! - [`platform`] — the golden-path wiring (managed: `cargo platform upgrade` merges changes in).
//!
//! Managed by the platform.

pub mod app;
pub mod platform;
