//! Configuration: invalid values stop the service with a message naming the key; the
//! production profile refuses local development credentials; `dev-token` mints a token the
//! local profile accepts.
//!
//! Managed by the platform.

use std::process::{Command, Output};

use secrecy::ExposeSecret;

use {{ crate_name }} as service;

use service::platform::auth::{Authenticator, Hs256Secret};
use service::platform::config::Layers;
use service::platform::testing::layers;

/// Runs the binary with only these environment variables.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn refused(env: &[(&str, &str)], expected_in_message: &str) {
    let output = run(&[], env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refused to start with {env:?}");
    assert!(
        stderr.contains(expected_in_message),
        "message names {expected_in_message:?}: {stderr}"
    );
}

#[test]
fn invalid_env_values_name_the_key() {
    refused(&[("APP_SERVER__PORT", "not-a-port")], "APP_SERVER__PORT");
    refused(&[("APP_SERVER__PORT", "0")], "server.port");
    refused(&[("APP_AUTH__ALGORITHM", "HS999")], "APP_AUTH__ALGORITHM");
    refused(&[("APP_SERVER__NO_SUCH_KEY", "1")], "no_such_key");
}

#[test]
fn unknown_profile_is_refused() {
    refused(&[("APP_ENV", "staging-typo")], "staging-typo");
}

#[test]
fn production_requires_its_settings() {
    refused(&[("APP_ENV", "production")], "auth.issuer");
    refused(
        &[
            ("APP_ENV", "production"),
            ("APP_AUTH__ISSUER", "https://id.example"),
        ],
        "auth.jwks_url",
    );
}

#[test]
fn production_refuses_the_local_dev_secret() {
    refused(
        &[
            ("APP_ENV", "production"),
            ("APP_AUTH__ISSUER", "https://id.example"),
            ("APP_AUTH__ALGORITHM", "HS256"),
            ("APP_AUTH__HS256_SECRET", "local-dev-secret-change-me"),
        ],
        "auth.hs256_secret",
    );
}

#[test]
fn file_values_are_validated_too() {
    let error = layers("[idempotency]\nin_flight_ttl_secs = 1\n")
        .platform()
        .unwrap_err()
        .to_string();
    assert!(error.contains("idempotency.in_flight_ttl_secs"), "{error}");
    assert!(
        error.contains("APP_IDEMPOTENCY__IN_FLIGHT_TTL_SECS"),
        "{error}"
    );
    let error = layers("[server]\nport = \"eighty\"\n")
        .platform()
        .unwrap_err()
        .to_string();
    assert!(error.contains("server.port"), "{error}");
}

#[test]
fn profiles_layer_over_defaults() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let env = figment::providers::Env::raw().only(&[]);
    let local = Layers::load(&dir, "local", env.clone())
        .unwrap()
        .platform()
        .unwrap();
    assert_eq!(local.server.host, "127.0.0.1");
    assert_eq!(local.auth.issuer, "local-dev");
    assert_eq!(local.auth.audience, env!("CARGO_PKG_NAME"));
    assert_eq!(local.server.port, {{ port }});
}

#[tokio::test]
async fn dev_token_is_accepted_locally() {
    let output = run(&["dev-token", "--sub", "alice", "--ttl-secs", "600"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let config = layers("").platform().unwrap();
    let auth = Authenticator::new(
        &config.auth,
        std::sync::Arc::new(Hs256Secret::new(config.auth.hs256_secret.expose_secret()).unwrap()),
    );
    let principal = auth
        .authenticate(token.trim())
        .await
        .expect("the local profile accepts it");
    assert_eq!(principal.subject, "alice");
}

#[test]
fn dev_token_refuses_production() {
    let output = run(&["dev-token"], &[("APP_ENV", "production")]);
    assert!(!output.status.success());
}

#[test]
fn idempotency_record_ttl_is_validated_and_the_old_key_is_refused() {
    let error = layers("[idempotency]\nrecord_ttl_secs = 0\n")
        .platform()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("APP_IDEMPOTENCY__RECORD_TTL_SECS"),
        "{error}"
    );
    // Renamed in template 2.0.0: a leftover `ttl_secs` is an error naming it, not ignored.
    let error = layers("[idempotency]\nttl_secs = 60\n")
        .platform()
        .unwrap_err()
        .to_string();
    assert!(error.contains("ttl_secs"), "{error}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let config = layers("[auth]\nhs256_secret = \"a-team-secret-of-32-bytes-or-so\"\n")
        .platform()
        .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("a-team-secret"), "{debug}");
    assert_eq!(
        config.auth.hs256_secret.expose_secret(),
        "a-team-secret-of-32-bytes-or-so"
    );
}
