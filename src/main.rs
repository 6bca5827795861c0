//! Entry point: hand the arguments to the library and turn its result into an exit code.

fn main() -> std::process::ExitCode {
    cargo_platform::run(std::env::args_os())
}
