//! Prometheus metrics: the process-wide recorder, the RED metrics of every request, and the
//! `/metrics` endpoint. Record your own with the `metrics` macros (`metrics::counter!`).
//!
//! Managed by the platform.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS_TOTAL: &str = "http_server_requests_total";
/// Always 1, labelled with the template, its version and the ejected components, so dashboards
/// (the fleet's too) can split any series by release and see ejections.
pub const BUILD_INFO: &str = "platform_build_info";
pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Route label of requests that matched no route (never the raw path: unbounded cardinality).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Called before each scrape; returns `false` once it has nothing left to update.
type ScrapeHook = Box<dyn Fn() -> bool + Send + Sync>;

static SCRAPE_HOOKS: Mutex<Vec<ScrapeHook>> = Mutex::new(Vec::new());

/// Runs `hook` before every scrape, to set gauges that read a current state (e.g. a circuit
/// breaker's) rather than change on events; dropped once it returns `false`.
pub fn on_scrape(hook: impl Fn() -> bool + Send + Sync + 'static) {
    SCRAPE_HOOKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Box::new(hook));
}

/// The text `/metrics` serves: runs the scrape hooks, then renders.
pub fn scrape(handle: &PrometheusHandle) -> String {
    SCRAPE_HOOKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|hook| hook());
    handle.run_upkeep();
    handle.render()
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                // The server's and the outbound client's latencies (`*_duration_seconds`).
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics will not see its metrics"
                );
            }
            metrics::describe_counter!(
                REQUESTS_TOTAL,
                "HTTP requests served, by method, route template and status"
            );
            metrics::describe_histogram!(
                REQUEST_DURATION,
                metrics::Unit::Seconds,
                "HTTP request latency, by method, route template and status"
            );
            metrics::describe_gauge!(
                BUILD_INFO,
                "Always 1: the platform template, its version and the ejected components this binary was built from"
            );
            let labels = build_info_labels();
            metrics::gauge!(BUILD_INFO, &labels).set(1.0);
            handle
        })
        .clone()
}

/// The labels of `platform_build_info`, from `platform.toml` at build time (build.rs):
/// `template`, `version` and `ejected` (ejected components sorted and comma-joined, empty when
/// none).
pub fn build_info_labels() -> [(&'static str, &'static str); 3] {
    [
        ("template", env!("PLATFORM_TEMPLATE")),
        ("version", env!("PLATFORM_TEMPLATE_VERSION")),
        ("ejected", env!("PLATFORM_EJECTED")),
    ]
}

/// The method as metrics and span names carry it: one of the standard methods or `_OTHER`
/// (as the semantic conventions say), so a caller cannot create unbounded label values.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// Records one served request.
pub fn record_request(method: &str, route: &str, status: StatusCode, elapsed: Duration) {
    let (requests, duration) = request_metrics(method, route, status.as_u16());
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
}

/// The RED metric handles of one method, route and status. Looking a metric up by its labels
/// allocates and hashes them, so the handles are kept: the label sets are bounded (route
/// templates, not raw paths).
fn request_metrics(method: &str, route: &str, status: u16) -> (Counter, Histogram) {
    type Handles = HashMap<Box<str>, Vec<(Box<str>, u16, Counter, Histogram)>>;
    static HANDLES: OnceLock<RwLock<Handles>> = OnceLock::new();
    let handles = HANDLES.get_or_init(RwLock::default);
    let find = |handles: &Handles| {
        handles.get(route).and_then(|entries| {
            entries
                .iter()
                .find(|(m, s, _, _)| &**m == method && *s == status)
                .map(|(_, _, counter, histogram)| (counter.clone(), histogram.clone()))
        })
    };
    if let Some(found) = find(&handles.read().unwrap_or_else(|e| e.into_inner())) {
        return found;
    }
    let mut handles = handles.write().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find(&handles) {
        return found;
    }
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let counter = metrics::counter!(REQUESTS_TOTAL, &labels);
    let histogram = metrics::histogram!(REQUEST_DURATION, &labels);
    handles.entry(route.into()).or_default().push((
        method.into(),
        status,
        counter.clone(),
        histogram.clone(),
    ));
    (counter, histogram)
}

/// `GET /metrics`: Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "platform",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"))
)]
pub async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scrape(&handle),
    )
}
