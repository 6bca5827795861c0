//! The example's event end to end on the real NATS server in `messaging.url`: creating an
//! item publishes `ItemCreated` (its own stream and subject here), and the example's handler
//! consumes it once.
//!
//! YOUR CODE (seeded): keep it as a pattern for your own events' tests.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use {{ crate_name }} as service;

use service::app::APP;
use service::platform::testing::{TestApp, json_body, layers};

async fn metrics(app: &TestApp) -> String {
    let response = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn creating_an_item_publishes_an_event_the_handler_consumes_once() {
    let tag = format!("t{}", uuid::Uuid::new_v4().simple());
    let subject = format!("{tag}.items.created");
    let app = TestApp::for_app(
        APP,
        layers(&format!(
            "[messaging]\nstream = \"{tag}\"\nsubjects = [\"{tag}.>\"]\n\
             dead_letter_stream = \"{tag}-dead\"\n"
        )),
    )
    .await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumers = app.platform.messaging.start(stopped);

    let response = app
        .send(
            Request::post("/v1/items")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", app.token("alice")),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"name": "first"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let item: Value = json_body(response).await;
    assert!(item["id"].is_string());

    let labels = format!("subject=\"{subject}\",outcome=\"ok\"");
    let handled = format!(
        "messaging_process_duration_seconds_count{}{labels}{} 1",
        '{', '}'
    );
    let started = Instant::now();
    loop {
        let text = metrics(&app).await;
        if text.contains(&handled) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the event was not handled once:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    consumers.wait().await;
    // The test's streams are its own: deleted, so runs leave nothing on the broker.
    let url =
        std::env::var("APP_MESSAGING__URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let jetstream = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    for stream in [tag.clone(), format!("{tag}-dead")] {
        let _ = jetstream.delete_stream(stream).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An item created while the broker is away is stored (201), and its event is published once
/// the broker is back: the handler consumes it.
#[tokio::test]
async fn an_item_created_while_the_broker_is_away_gets_its_event_published_later() {
    let tag = format!("t{}", uuid::Uuid::new_v4().simple());
    let subject = format!("{tag}.items.created");
    let port = free_port();
    let app = TestApp::for_app(
        APP,
        layers(&format!(
            "[messaging]\nstream = \"{tag}\"\nsubjects = [\"{tag}.>\"]\n\
             dead_letter_stream = \"{tag}-dead\"\n"
        ))
        .set("messaging.url", format!("nats://127.0.0.1:{port}")),
    )
    .await;
    let response = app
        .send(
            Request::post("/v1/items")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", app.token("alice")),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"name": "offline"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "the item is stored");

    // The broker comes (back): a NATS server with JetStream on that port.
    let dir = tempfile::tempdir().unwrap();
    let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
    let mut server = std::process::Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{binary}` (set NATS_SERVER to its path): {e}"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumers = app.platform.messaging.start(stopped);
    let handled = format!(
        "messaging_process_duration_seconds_count{}subject=\"{subject}\",outcome=\"ok\"{} 1",
        '{', '}'
    );
    let started = Instant::now();
    let result = loop {
        let text = metrics(&app).await;
        if text.contains(&handled) {
            break Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            break Err(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.send(true).unwrap();
    consumers.wait().await;
    let _ = server.kill();
    let _ = server.wait();
    if let Err(text) = result {
        panic!("the event was not published and handled once:\n{text}");
    }
}
