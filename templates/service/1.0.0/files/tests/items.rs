//! The example resource, end to end through the platform stack.
//!
//! YOUR CODE (seeded): keep these as a pattern for your own resources' tests.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use {{ crate_name }} as service;

use service::app::APP;
use service::platform::testing::{TestApp, json_body, layers};

/// `items_created_total` is process-wide: tests that read it run one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn app() -> TestApp {
    TestApp::for_app(APP, layers("")).await
}

fn create(app: &TestApp, subject: &str, body: &Value, key: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/v1/items")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", app.token(subject)),
        )
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

async fn items_created(app: &TestApp) -> f64 {
    let response = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("items_created_total "))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn create_then_get() {
    let _serial = SERIAL.lock().await;
    let app = app().await;
    let response = app
        .send(create(&app, "alice", &json!({ "name": "widget" }), None))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let item = json_body(response).await;
    let id = item["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(item["name"], "widget");
    assert_eq!(location, format!("/v1/items/{id}"));

    let get = Request::get(&location)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", app.token("alice")),
        )
        .body(Body::empty())
        .unwrap();
    let response = app.send(get).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, item);
}

#[tokio::test]
async fn unknown_item_is_404_problem() {
    let app = app().await;
    let get = Request::get(format!("/v1/items/{}", uuid::Uuid::new_v4()))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", app.token("alice")),
        )
        .body(Body::empty())
        .unwrap();
    let response = app.send(get).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(
        json_body(response).await["type"],
        "urn:problem:{{ name }}:item-not-found"
    );
}

#[tokio::test]
async fn auth_is_required() {
    let app = app().await;
    let response = app
        .send(
            Request::post("/v1/items")
                .body(Body::from("{\"name\":\"x\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .send(
            Request::get(format!("/v1/items/{}", uuid::Uuid::new_v4()))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn invalid_input_is_a_problem() {
    let app = app().await;
    let response = app
        .send(create(&app, "alice", &json!({ "name": "  " }), None))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        json_body(response).await["type"],
        "urn:problem:platform:validation"
    );
    let response = app
        .send(create(
            &app,
            "alice",
            &json!({ "title": "wrong field" }),
            None,
        ))
        .await;
    assert!(response.status().is_client_error());
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

#[tokio::test]
async fn the_flag_uppercases_names_for_targeted_callers() {
    let app = app().await;
    let shout = json_body(
        app.send(create(&app, "shout-bob", &json!({ "name": "quiet" }), None))
            .await,
    )
    .await;
    assert_eq!(
        shout["name"], "QUIET",
        "config/flags.json targets subjects starting with shout-"
    );
    let calm = json_body(
        app.send(create(&app, "alice", &json!({ "name": "quiet" }), None))
            .await,
    )
    .await;
    assert_eq!(calm["name"], "quiet");
}

#[tokio::test]
async fn an_idempotent_create_runs_once() {
    let _serial = SERIAL.lock().await;
    let app = app().await;
    let before = items_created(&app).await;
    let body = json!({ "name": "once" });
    let first = json_body(
        app.send(create(&app, "alice", &body, Some("create-once")))
            .await,
    )
    .await;
    let replay = app
        .send(create(&app, "alice", &body, Some("create-once")))
        .await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(replay).await["id"], first["id"]);
    assert!(
        (items_created(&app).await - before - 1.0).abs() < f64::EPSILON,
        "items_created_total rose by exactly one"
    );
}
