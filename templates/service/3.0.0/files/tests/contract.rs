//! The API contract (`/openapi.json`): it parses, it documents every route the service serves
//! and nothing it does not, it declares the bearer scheme, and the Swagger UI is mounted in the
//! local profile only.
//!
//! YOUR CODE (seeded): add your resources' paths to `SERVED` when you add routes.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use utoipa::openapi::OpenApi;

use {{ crate_name }} as service;

use service::app::APP;
use service::platform::config::Layers;
use service::platform::testing::{TestApp, json_body, layers};

/// Every route the router serves (path templates as in the contract).
const SERVED: &[&str] = &[
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v1/items",
    "/v1/items/{id}",
];

const METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

async fn contract(app: &TestApp) -> Value {
    let response = app
        .send(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    json_body(response).await
}

#[tokio::test]
async fn the_contract_parses_and_declares_the_bearer_scheme() {
    let app = TestApp::for_app(APP, layers("")).await;
    let document = contract(&app).await;
    let parsed: OpenApi =
        serde_json::from_value(document.clone()).expect("a valid OpenAPI document");
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(parsed.info.title, env!("CARGO_PKG_NAME"));

    let bearer = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    // The secured operations require it and document the 401 as problem+json.
    for (path, method) in [("/v1/items", "post"), ("/v1/items/{id}", "get")] {
        let operation = &document["paths"][path][method];
        assert_eq!(
            operation["security"][0]["bearer"],
            serde_json::json!([]),
            "{path}"
        );
        assert_eq!(
            operation["responses"]["401"]["$ref"], "#/components/responses/Problem401",
            "{path}"
        );
    }
    let unauthorized = &document["components"]["responses"]["Problem401"];
    assert_eq!(
        unauthorized["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    // The public platform routes do not.
    assert!(document["paths"]["/livez"]["get"]["security"].is_null());
}

/// Sends `method path` the way a client would (with a token, a UUID for `{id}`, a JSON body)
/// and says whether a route served it: not a 405 and not the platform's "no route" 404.
async fn served(app: &TestApp, method: &Method, path: &str) -> bool {
    let uri = path.replace("{id}", "6f1c2a4e-3b7d-4c5e-9a8f-0d1e2f3a4b5c");
    let request = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", app.token("alice")),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"probe"}"#))
        .unwrap();
    let response = app.send(request).await;
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => {
            assert!(
                response.headers().contains_key(header::ALLOW),
                "405 without Allow"
            );
            false
        }
        StatusCode::NOT_FOUND if *method == Method::HEAD => {
            // HEAD has no body to tell a missing route from a missing item; GET decides.
            false
        }
        StatusCode::NOT_FOUND => {
            json_body(response).await["type"] != "urn:problem:platform:not-found"
        }
        _ => true,
    }
}

#[tokio::test]
async fn the_contract_lists_exactly_the_routes_the_router_serves() {
    let app = TestApp::for_app(APP, layers("")).await;
    let document = contract(&app).await;
    let paths = document["paths"].as_object().unwrap();

    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort_unstable();
    let mut expected = SERVED.to_vec();
    expected.sort_unstable();
    assert_eq!(
        documented, expected,
        "documented paths vs the routes served"
    );

    for path in SERVED {
        for method in METHODS {
            let in_contract = paths[*path].get(method.as_str().to_lowercase()).is_some();
            // axum answers HEAD for every GET route; the contract lists the GET.
            if *method == Method::HEAD {
                continue;
            }
            assert_eq!(
                served(&app, method, path).await,
                in_contract,
                "{method} {path}: served and documented must agree"
            );
        }
    }
}

#[tokio::test]
async fn the_swagger_ui_is_mounted_in_the_local_profile_only() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let local = Layers::load(&dir, "local", figment::providers::Env::raw().only(&[])).unwrap();
    let app = TestApp::for_app(APP, local).await;
    let response = app
        .send(Request::get("/docs/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&page).contains("swagger-ui"));
    let response = app
        .send(
            Request::get("/docs/swagger-initializer.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let script = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&script).contains("/openapi.json"),
        "the UI shows this service's contract"
    );

    // Any other profile (here `test`; `production` alike) serves the contract, not the UI.
    let app = TestApp::for_app(APP, layers("")).await;
    let response = app
        .send(Request::get("/docs/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    contract(&app).await;
}
