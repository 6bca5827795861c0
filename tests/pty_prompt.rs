//! Drives `new`'s interactive prompts through a pseudo-terminal and checks that the answers land
//! in platform.toml.

mod common;

use std::process::Command;

use rexpect::session::{PtySession, spawn_command};

/// Waits for a prompt, lets it settle (input typed before the prompt switches the terminal to
/// raw mode is flushed away), then types `keys`.
fn answer(p: &mut PtySession, prompt: &str, keys: &str) {
    p.exp_string(prompt)
        .unwrap_or_else(|e| panic!("waiting for {prompt}: {e}"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send(keys).unwrap();
    p.flush().unwrap();
}

#[test]
fn interactive_prompts_answer_every_question() {
    let dir = common::scratch();
    let home = common::home_with_identity();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-platform"));
    cmd.current_dir(dir.path())
        .args(["platform", "new", "orders", "--no-git"])
        .env("HOME", &home)
        .env("TERM", "xterm-256color")
        .env_remove("CARGO_PLATFORM_FAULT");
    let mut p = spawn_command(cmd, Some(20_000)).expect("spawn in a pty");
    answer(&mut p, "(description)", "Takes orders\r");
    // An invalid answer is explained and asked again.
    answer(&mut p, "(owner)", "Team A\r");
    p.exp_string("does not match the pattern")
        .expect("pattern error shown");
    answer(&mut p, "(owner)", "payments\r");
    answer(&mut p, "(port)", "9090\r");
    answer(&mut p, "(idempotency_store)", "\x1b[B"); // down arrow: memory -> postgres
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send("\r").unwrap();
    p.flush().unwrap();
    answer(&mut p, "(messaging)", "\x1b[B"); // down arrow: none -> nats
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("Next steps").expect("success output");
    p.exp_eof().expect("exits");

    let manifest = std::fs::read_to_string(dir.path().join("orders/platform.toml")).unwrap();
    let parsed = cargo_platform::manifest::Manifest::parse(&manifest, "platform.toml").unwrap();
    let answer = |k: &str| {
        parsed
            .answers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(answer("description").as_deref(), Some("Takes orders"));
    assert_eq!(answer("owner").as_deref(), Some("payments"));
    assert_eq!(answer("port").as_deref(), Some("9090"));
    assert_eq!(answer("idempotency_store").as_deref(), Some("postgres"));
    assert_eq!(answer("messaging").as_deref(), Some("nats"));
}

#[test]
fn cancelling_at_a_prompt_writes_nothing() {
    let dir = common::scratch();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-platform"));
    cmd.current_dir(dir.path())
        .args(["platform", "new", "orders", "--no-git"])
        .env("HOME", common::home_with_identity())
        .env("TERM", "xterm-256color")
        .env_remove("CARGO_PLATFORM_FAULT");
    let mut p = spawn_command(cmd, Some(20_000)).expect("spawn in a pty");
    answer(&mut p, "(description)", "\x03"); // Ctrl-C
    p.exp_string("cancelled at the prompt; nothing was written")
        .expect("cancellation explained");
    p.exp_eof().expect("exits");
    let status = p.process().wait().expect("exit status");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 1)),
        "exit 1 expected, got {status:?}"
    );
    assert_eq!(common::tree(dir.path()), Vec::<String>::new());
}

/// A workspace root manifest that cannot be read stops `new` before the first question: the
/// user is not asked everything only to be refused at the end.
#[test]
fn a_broken_workspace_manifest_is_reported_before_any_prompt() {
    let dir = common::scratch();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace\nmembers = [\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-platform"));
    cmd.current_dir(dir.path())
        .args([
            "platform",
            "new",
            "orders",
            "--path",
            "svc/orders",
            "--no-git",
        ])
        .env("HOME", common::home_with_identity())
        .env("TERM", "xterm-256color")
        .env_remove("CARGO_PLATFORM_FAULT");
    let mut p = spawn_command(cmd, Some(10_000)).expect("spawn in a pty");
    let before = p
        .exp_string("not valid TOML")
        .expect("the workspace error, without a prompt first");
    assert!(
        !before.contains("(description)"),
        "prompted first: {before}"
    );
    p.exp_eof().expect("exits");
    assert_eq!(common::tree(dir.path()), ["Cargo.toml"]);
}
