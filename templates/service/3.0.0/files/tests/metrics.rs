//! `/metrics`: Prometheus text with RED metrics labelled by route template.
//!
//! Managed by the platform.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;

use {{ crate_name }} as service;

use service::platform::testing::TestApp;

async fn scrape(app: &TestApp) -> String {
    let response = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

/// The `http_server_requests_total` sample whose labels contain every one of `labels`.
fn requests_counter<'a>(text: &'a str, labels: &[&str]) -> &'a str {
    text.lines()
        .find(|l| {
            l.starts_with("http_server_requests_total{") && labels.iter().all(|s| l.contains(s))
        })
        .unwrap_or_else(|| panic!("no http_server_requests_total with {labels:?} in:\n{text}"))
}

#[tokio::test]
async fn requests_are_labelled_by_route_template_never_raw_path() {
    let app = TestApp::with_routes(Router::new().route(
        "/metrics-test/{id}",
        get(|Path(id): Path<String>| async move { id }),
    ))
    .await;
    for id in ["a", "b", "c"] {
        let response = app
            .send(
                Request::get(format!("/metrics-test/{id}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.send(
        Request::get("/metrics-unmatched/zzz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    let text = scrape(&app).await;
    let counter = requests_counter(&text, &["route=\"/metrics-test/{id}\""]);
    assert!(
        counter.contains("method=\"GET\"") && counter.contains("status=\"200\""),
        "{counter}"
    );
    assert!(counter.ends_with(" 3"), "{counter}");
    assert!(
        !text.contains("/metrics-test/a"),
        "raw paths never become labels"
    );
    assert!(!text.contains("zzz"), "unmatched paths never become labels");
    assert!(
        text.contains("route=\"unmatched\""),
        "unmatched requests get a fixed label"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_bucket{")
                && l.contains("route=\"/metrics-test/{id}\"")
                && l.contains("le=\"0.005\"")
        ),
        "histogram with explicit buckets:\n{text}"
    );
}

#[tokio::test]
async fn unknown_methods_share_one_label() {
    let app =
        TestApp::with_routes(Router::new().route("/metrics-methods", get(|| async { "ok" }))).await;
    for method in ["BREW", "WHEN"] {
        let response = app
            .send(
                Request::builder()
                    .method(method)
                    .uri("/metrics-methods")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let text = scrape(&app).await;
    let counter = requests_counter(&text, &["method=\"_OTHER\"", "status=\"405\""]);
    assert!(counter.ends_with(" 2"), "{counter}");
    assert!(
        !text.contains("BREW") && !text.contains("WHEN"),
        "a caller's method never becomes a label"
    );
}

/// What `platform.toml` records (read here with figment, independently of build.rs).
#[derive(serde::Deserialize)]
struct Manifest {
    platform: ManifestPlatform,
    #[serde(default)]
    components: std::collections::BTreeMap<String, ManifestComponent>,
}

#[derive(serde::Deserialize)]
struct ManifestPlatform {
    template: String,
    version: String,
}

#[derive(serde::Deserialize)]
struct ManifestComponent {
    state: String,
}

#[tokio::test]
async fn build_info_names_the_template_version_and_ejected_components_of_platform_toml() {
    use figment::providers::{Format, Toml};
    let manifest: Manifest = figment::Figment::from(Toml::file_exact(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/platform.toml"
    )))
    .extract()
    .expect("platform.toml");
    let ejected: Vec<&str> = manifest
        .components
        .iter()
        .filter(|(_, c)| c.state == "ejected")
        .map(|(name, _)| name.as_str())
        .collect();

    let app = TestApp::with_routes(Router::new()).await;
    let text = scrape(&app).await;
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("platform_build_info{"))
        .collect();
    assert_eq!(samples.len(), 1, "one build_info sample in:\n{text}");
    let sample = samples[0];
    for label in [
        format!("template=\"{}\"", manifest.platform.template),
        format!("version=\"{}\"", manifest.platform.version),
        format!("ejected=\"{}\"", ejected.join(",")),
    ] {
        assert!(sample.contains(&label), "{label} in {sample}");
    }
    assert!(sample.ends_with("} 1"), "{sample}");
    assert!(
        text.contains("# TYPE platform_build_info gauge"),
        "a gauge:\n{text}"
    );
}
