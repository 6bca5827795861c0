//! Trace propagation: a request carrying W3C `traceparent` yields a server span in the caller's
//! trace, named after the route template, with HTTP semantic-convention attributes.
//!
//! Managed by the platform.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

use {{ crate_name }} as service;

use service::platform::config::TelemetryConfig;
use service::platform::telemetry::tracing::{Export, export_target, provider};
use service::platform::testing::{CapturedLogs, TestApp, json_body};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A GET of `uri` sent from inside the caller's trace (`traceparent` with [`TRACE_ID`]).
fn get_in_callers_trace(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .body(Body::empty())
        .unwrap()
}

/// The service's subscriber stack for the current test, with `provider` and log `writer`.
fn install<W>(provider: SdkTracerProvider, writer: W) -> tracing::subscriber::DefaultGuard
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing::subscriber::set_default(service::platform::telemetry::subscriber(
        provider,
        writer,
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    ))
}

#[tokio::test]
async fn server_span_continues_the_callers_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _guard = install(provider.clone(), std::io::sink);

    let app = TestApp::with_routes(Router::new().route(
        "/v1/items/{id}",
        get(|Path(id): Path<String>| async move {
            tracing::info!("routine line");
            tracing::warn!("something odd");
            format!("item {id}")
        }),
    ))
    .await;
    let request = get_in_callers_trace("/v1/items/42");
    let response = app.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let span = spans
        .iter()
        .find(|s| s.name == "GET /v1/items/{id}")
        .unwrap_or_else(|| {
            panic!(
                "a span named after the route template; got {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(span.parent_span_id.to_string(), PARENT_SPAN_ID);
    assert_eq!(span.span_kind, SpanKind::Server);
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute("http.route").as_deref(), Some("/v1/items/{id}"));
    assert_eq!(
        attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attribute("url.path").as_deref(), Some("/v1/items/42"));
    // Warnings and errors become span events; routine lines (and the access line) do not.
    let events: Vec<&str> = span.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["something odd"]);
}

#[tokio::test]
async fn problem_bodies_carry_the_trace_id() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _guard = install(provider, std::io::sink);
    let app = TestApp::with_routes(Router::new()).await;
    let request = get_in_callers_trace("/missing");
    let body = json_body(app.send(request).await).await;
    assert_eq!(body["trace_id"], TRACE_ID);
}

#[tokio::test]
async fn without_an_exporter_spans_still_carry_the_callers_trace_id() {
    let config = TelemetryConfig {
        service_name: "tracing-test".to_owned(),
        otlp_endpoint: String::new(),
    };
    if export_target(&config) != Export::Off {
        eprintln!("skipped: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set in this environment");
        return;
    }
    // The service's own provider: nothing exports, so nothing is recorded, but ids remain.
    let logs = CapturedLogs::default();
    let _guard = install(provider(&config).unwrap(), logs.clone());
    let app = TestApp::with_routes(Router::new()).await;

    let request = get_in_callers_trace("/nowhere");
    let response = app.send(request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(response).await["trace_id"], TRACE_ID);

    let response = app
        .send(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await;
    let fresh = json_body(response).await["trace_id"]
        .as_str()
        .expect("a trace id without a caller's trace too")
        .to_owned();
    assert!(
        fresh.len() == 32 && fresh != "0".repeat(32) && fresh != TRACE_ID,
        "{fresh}"
    );

    let access: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|line| line["target"] == "access")
        .collect();
    assert_eq!(access.len(), 2, "{access:?}");
    assert_eq!(access[0]["trace_id"], TRACE_ID);
    assert_eq!(access[1]["trace_id"], fresh.as_str());
}
