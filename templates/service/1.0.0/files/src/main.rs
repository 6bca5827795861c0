//! `{{ name }}`: {{ description }}
//!
//! Managed by the platform. Runs the server (`{{ name }}`), or prints a local token
//! (`{{ name }} dev-token --sub alice`). Your code lives in `src/app/`.

fn main() -> std::process::ExitCode {
    {{ crate_name }}::platform::cli::main({{ crate_name }}::app::APP)
}
