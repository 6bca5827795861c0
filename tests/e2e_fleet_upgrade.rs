//! End to end: `fleet upgrade --verify` builds each upgraded service before committing it. Two
//! services on 1.0.0: one untouched (ready, committed), one whose team code uses a module the
//! newest release removes (`platform::http::request_id`): its upgrade merges cleanly but does not
//! compile, so it needs hands and nothing is committed.
//!
//! Slow (checks two generated services), so `#[ignore]`d:
//! `cargo test --test e2e_fleet_upgrade -- --include-ignored`. The campaign's one target
//! directory is `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`), shared with the other
//! end-to-end tests.

mod common;

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use common::{git, outcome, platform, scratch};

#[test]
#[ignore = "end-to-end: checks two upgraded services with cargo; run with --include-ignored"]
fn verify_commits_the_service_that_builds_and_not_the_one_that_does_not() {
    let tmp = scratch();
    let root = tmp.path();
    for name in ["builds", "breaks"] {
        let out = platform(root)
            .args([
                "new",
                name,
                "--yes",
                "--set",
                "owner=team",
                "--template-version",
                "1.0.0",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    }
    let model = root.join("breaks/src/app/items/model.rs");
    let text = std::fs::read_to_string(&model).unwrap();
    std::fs::write(
        &model,
        format!(
            "{text}\n/// Who created an item (team code written against 1.0.0).\npub type CreatedBy = crate::platform::http::request_id::RequestId;\n"
        ),
    )
    .unwrap();
    git(&root.join("breaks"), &["commit", "-qam", "team code"]);

    let out = platform(root)
        .envs(harness::e2e_cargo_env())
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .args(["fleet", "upgrade", "--verify", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = report["services"].as_array().unwrap();
    let by_name = |n: &str| services.iter().find(|s| s["name"] == n).unwrap().clone();

    let builds = by_name("builds");
    assert_eq!(builds["outcome"], "ready", "{builds}");
    assert_eq!(builds["verify"]["passed"], true, "{builds}");
    assert_eq!(builds["branch_state"], "created", "{builds}");

    let breaks = by_name("breaks");
    assert_eq!(breaks["outcome"], "needs_hands", "{breaks}");
    assert_eq!(breaks["verify"]["passed"], false, "{breaks}");
    let errors = breaks["verify"]["first_errors"].to_string();
    assert!(errors.contains("request_id"), "{errors}");
    assert_eq!(breaks["branch_state"], "none", "{breaks}");
    let branches = git(&root.join("breaks"), &["branch", "--list", "platform/*"]);
    assert_eq!(
        branches, "",
        "nothing committed for the service that does not build"
    );
}
