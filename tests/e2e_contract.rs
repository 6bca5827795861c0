//! End-to-end test of the API contract of the service template: scaffold a service with the
//! real binary (pinned to 3.0.0, the release that adds the contract), build it (no warnings, no
//! crate version the template could avoid building twice), run its own tests, start it, and run
//! schemathesis (PyPI) against its `/openapi.json` with a bearer token minted by PyJWT
//! (tests/e2e/mint_jwt.py). Every schemathesis check is on (its default): status codes,
//! content types and bodies as documented, 401 without a token, bad input refused with a 4xx,
//! valid input accepted, 405 with `Allow` for undocumented methods. One hook
//! (tests/e2e/schemathesis_hooks.py) gives each valid request a fresh `Idempotency-Key`.
//!
//! Slow, so `#[ignore]`d: `cargo test --test e2e_contract -- --include-ignored`. Builds share
//! `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`); schemathesis and PyJWT come from
//! `.ci/e2e-setup`.

// Shared with the other end-to-end tests, which use more of it.
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::process::Command;

use harness::{Http, Service, free_port, mint_jwt, random_hex64};

/// The release that adds the contract.
const RELEASE: &str = "3.0.0";

#[test]
#[ignore = "end-to-end: builds and runs a generated service and schemathesis; run with --include-ignored"]
fn schemathesis_passes_against_the_served_contract() {
    let svc = Service::scaffold_at("e2e-contract", Some(RELEASE), false, &[]);
    let warnings = svc.build();
    assert!(
        warnings.is_empty(),
        "build warnings:\n{}",
        warnings.join("\n")
    );
    let duplicates = svc.avoidable_duplicates();
    assert!(
        duplicates.is_empty(),
        "crates built twice:\n{}",
        duplicates.join("\n")
    );
    svc.run_own_tests();

    let (issuer, audience, secret) = (
        "e2e-issuer".to_owned(),
        format!("{}-api", svc.name),
        format!("e2e-secret-{}", random_hex64()),
    );
    let port = free_port();
    let env: Vec<(String, String)> = vec![
        ("APP_ENV".into(), "local".into()),
        ("APP_SERVER__PORT".into(), port.to_string()),
        ("APP_AUTH__ISSUER".into(), issuer.clone()),
        ("APP_AUTH__AUDIENCE".into(), audience.clone()),
        ("APP_AUTH__HS256_SECRET".into(), secret.clone()),
    ];
    let mut run = svc.start(port, &env);
    let http = Http::new(port);

    let contract = http.get("/openapi.json", &[]);
    assert_eq!(contract.status, 200, "{}", contract.body);
    assert_eq!(
        contract.json()["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // The local profile serves the Swagger UI from the binary.
    let ui = http.get("/docs/", &[]);
    assert_eq!(ui.status, 200, "{}", ui.body);
    assert!(ui.body.contains("swagger-ui"), "{}", ui.body);

    let token = mint_jwt(&[
        "--secret",
        &secret,
        "--iss",
        &issuer,
        "--aud",
        &audience,
        "--sub",
        "schemathesis",
        "--exp-in",
        "3600",
    ]);
    let report_dir = svc.scratch("schemathesis");
    let out = Command::new("schemathesis")
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--max-examples", "50", "--seed", "1"])
        .args(["--generation-database", "none", "--wait-for-schema", "30"])
        .args([
            "--request-timeout",
            "5",
            "--report",
            "junit",
            "--report-dir",
        ])
        .arg(&report_dir)
        // Its cache (`.schemathesis/`) goes next to the service, not into this repository.
        .current_dir(&svc.dir)
        .env("NO_COLOR", "1")
        // A fresh Idempotency-Key per positive request (tests/e2e/schemathesis_hooks.py).
        .env("PYTHONPATH", harness::script(""))
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .output()
        .expect("run schemathesis (pip install schemathesis; see .ci/e2e-setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found contract violations\n{stdout}\n{stderr}\nservice:\n{}",
        run.output()
    );
    // It tested every operation but its own document (schemathesis skips the schema's URL).
    let junit: String = std::fs::read_dir(&report_dir)
        .expect("schemathesis wrote its junit report")
        .map(|entry| std::fs::read_to_string(entry.expect("report entry").path()).expect("read"))
        .collect();
    for operation in [
        "GET /livez",
        "GET /readyz",
        "GET /metrics",
        "POST /v1/items",
        "GET /v1/items/{id}",
    ] {
        assert!(
            junit.contains(&format!("<testcase name=\"{operation}\"")),
            "schemathesis did not test {operation}\n{junit}"
        );
    }
    assert!(junit.contains(r#"failures="0""#), "{junit}");
    run.terminate(std::time::Duration::from_secs(10));
}
