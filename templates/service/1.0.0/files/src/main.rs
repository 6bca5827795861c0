//! `{{ name }}`: {{ description }}
//!
//! Managed by the platform. Runs the server (`{{ name }}`), or prints a local token
//! (`{{ name }} dev-token --sub alice`). Your code lives in `src/app/`.

use {{ crate_name }}::{app, platform};

/// mimalloc: a request makes many small allocations on several threads, which it serves faster
/// than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    platform::cli::main(app::APP)
}
