//! The flagd file provider: resolution, defaults in code, targeting, hot reload.
//!
//! Managed by the platform.

use std::sync::Arc;
use std::time::Duration;

use {{ crate_name }} as service;

use service::platform::flags::file::{FileFlagProvider, Reload};
use service::platform::flags::{EvaluationContext, FlagError, FlagProvider, Flags, Reason};

const FLAGS_V1: &str = r#"{
  "flags": {
    "new-checkout": { "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "on" },
    "greeting": { "state": "ENABLED", "variants": { "formal": "Good day", "casual": "Hi" }, "defaultVariant": "casual",
      "targeting": { "if": [ { "in": [ { "var": "targetingKey" }, ["the-queen"] ] }, "formal", null ] } },
    "page-size": { "state": "ENABLED", "variants": { "small": 10, "large": 100 }, "defaultVariant": "small" },
    "ratio": { "state": "ENABLED", "variants": { "low": 0.25 }, "defaultVariant": "low" },
    "old-thing": { "state": "DISABLED", "variants": { "on": true }, "defaultVariant": "on" }
  }
}"#;

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("flags.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn anyone() -> EvaluationContext {
    EvaluationContext::new("someone")
}

#[tokio::test]
async fn resolves_each_type_with_variant_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileFlagProvider::open(write(&dir, FLAGS_V1));
    let on = provider
        .resolve_boolean("new-checkout", false, &anyone())
        .await;
    assert!(on.value);
    assert_eq!(on.variant.as_deref(), Some("on"));
    assert_eq!(on.reason, Reason::Static);
    assert_eq!(
        provider.resolve_int("page-size", 1, &anyone()).await.value,
        10
    );
    assert!(
        (provider.resolve_float("ratio", 1.0, &anyone()).await.value - 0.25).abs() < f64::EPSILON
    );
    assert_eq!(
        provider
            .resolve_string("greeting", "x".into(), &anyone())
            .await
            .value,
        "Hi"
    );
}

#[tokio::test]
async fn targeting_key_selects_a_variant() {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileFlagProvider::open(write(&dir, FLAGS_V1));
    let queen = provider
        .resolve_string("greeting", "x".into(), &EvaluationContext::new("the-queen"))
        .await;
    assert_eq!(queen.value, "Good day");
    assert_eq!(queen.reason, Reason::TargetingMatch);
    let other = provider
        .resolve_string("greeting", "x".into(), &anyone())
        .await;
    assert_eq!(other.value, "Hi");
    assert_eq!(other.reason, Reason::Default);
}

#[tokio::test]
async fn missing_flags_disabled_flags_and_type_mismatches_use_the_default_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileFlagProvider::open(write(&dir, FLAGS_V1));
    let missing = provider
        .resolve_boolean("no-such-flag", true, &anyone())
        .await;
    assert!(missing.value);
    assert_eq!(missing.error, Some(FlagError::FlagNotFound));
    let disabled = provider
        .resolve_boolean("old-thing", false, &anyone())
        .await;
    assert!(!disabled.value);
    assert_eq!(disabled.reason, Reason::Disabled);
    let mismatch = provider.resolve_int("new-checkout", 7, &anyone()).await;
    assert_eq!(mismatch.value, 7);
    assert_eq!(mismatch.error, Some(FlagError::TypeMismatch));
}

#[tokio::test]
async fn a_missing_file_means_defaults_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let flags = Flags::new(Arc::new(FileFlagProvider::open(
        dir.path().join("absent.json"),
    )));
    assert!(flags.boolean("new-checkout", true, &anyone()).await);
    assert_eq!(flags.int("page-size", 25, &anyone()).await, 25);
}

#[tokio::test]
async fn a_valid_new_file_is_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, FLAGS_V1);
    let provider = FileFlagProvider::open(&path);
    assert_eq!(provider.reload_if_changed().unwrap(), Reload::Unchanged);
    std::fs::write(
        &path,
        FLAGS_V1.replace(
            "\"defaultVariant\": \"on\" },\n    \"greeting\"",
            "\"defaultVariant\": \"off\" },\n    \"greeting\"",
        ),
    )
    .unwrap();
    assert!(matches!(
        provider.reload_if_changed().unwrap(),
        Reload::Loaded { flags: 5 }
    ));
    assert!(
        !provider
            .resolve_boolean("new-checkout", true, &anyone())
            .await
            .value
    );
}

#[tokio::test]
async fn an_invalid_file_keeps_the_last_good_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, FLAGS_V1);
    let provider = FileFlagProvider::open(&path);
    for broken in [
        "{ not json",
        r#"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"}}}"#,
        r#"{"flags": {"x": {"state": "MAYBE", "variants": {"a": 1}, "defaultVariant": "a"}}}"#,
        r#"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1, "b": "two"}, "defaultVariant": "a"}}}"#,
        r#"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"fractional": []}}}}"#,
    ] {
        std::fs::write(&path, broken).unwrap();
        assert!(provider.reload().is_err(), "rejected: {broken}");
        assert!(
            provider
                .resolve_boolean("new-checkout", false, &anyone())
                .await
                .value,
            "last good flags kept"
        );
    }
}

#[tokio::test]
async fn the_watcher_picks_up_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, FLAGS_V1);
    let provider = Arc::new(FileFlagProvider::open(&path));
    let watcher = provider.watch(Duration::from_millis(20));
    std::fs::write(&path, r#"{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#).unwrap();
    let mut value = true;
    for _ in 0..100 {
        value = provider
            .resolve_boolean("new-checkout", true, &anyone())
            .await
            .value;
        if !value {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    assert!(!value, "the new file was loaded by the watcher");
}
