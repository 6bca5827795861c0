//! Drives `new`'s interactive prompts through a pseudo-terminal and checks that the answers land
//! in platform.toml.

mod common;

use std::process::Command;

use rexpect::session::spawn_command;

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
    p.exp_string("(description)").expect("description prompt");
    p.send("Takes orders\r").unwrap();
    p.exp_string("(owner)").expect("owner prompt");
    // An invalid answer is explained and asked again.
    p.send("Team A\r").unwrap();
    p.exp_string("does not match the pattern").expect("pattern error shown");
    p.exp_string("(owner)").expect("owner asked again");
    p.send("payments\r").unwrap();
    p.exp_string("(port)").expect("port prompt");
    p.send("9090\r").unwrap();
    p.exp_string("(idempotency_store)").expect("store prompt");
    p.send("\x1b[B").unwrap(); // down arrow: memory -> postgres
    p.send("\r").unwrap();
    p.exp_string("Next steps").expect("success output");
    p.exp_eof().expect("exits");

    let manifest = std::fs::read_to_string(dir.path().join("orders/platform.toml")).unwrap();
    let parsed = cargo_platform::manifest::Manifest::parse(&manifest, "platform.toml").unwrap();
    let answer = |k: &str| parsed.answers.iter().find(|(key, _)| key == k).map(|(_, v)| v.to_string());
    assert_eq!(answer("description").as_deref(), Some("Takes orders"));
    assert_eq!(answer("owner").as_deref(), Some("payments"));
    assert_eq!(answer("port").as_deref(), Some("9090"));
    assert_eq!(answer("idempotency_store").as_deref(), Some("postgres"));
}
