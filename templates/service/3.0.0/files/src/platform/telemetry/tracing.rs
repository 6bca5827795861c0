//! OpenTelemetry spans: the tracer provider (OTLP over HTTP/protobuf when an endpoint is
//! configured) and W3C `traceparent` extraction for incoming requests.
//!
//! Managed by the platform.

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

use crate::platform::config::TelemetryConfig;

/// Where spans go: the standard OTLP variables win over `telemetry.otlp_endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Off,
    /// The exporter reads `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` itself.
    FromEnv,
    /// Base URL from config; `/v1/traces` is appended.
    Endpoint(String),
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

pub fn export_target(config: &TelemetryConfig) -> Export {
    if non_empty_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || non_empty_env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
    {
        Export::FromEnv
    } else if !config.otlp_endpoint.trim().is_empty() {
        Export::Endpoint(format!(
            "{}/v1/traces",
            config.otlp_endpoint.trim().trim_end_matches('/')
        ))
    } else {
        Export::Off
    }
}

/// The service name: `OTEL_SERVICE_NAME` if set, else `telemetry.service_name`.
pub fn service_name(config: &TelemetryConfig) -> String {
    non_empty_env("OTEL_SERVICE_NAME").unwrap_or_else(|| config.service_name.clone())
}

/// Builds the tracer provider. Spans always get ids (they appear in logs and problem bodies);
/// they are recorded and exported only when an endpoint is configured, sampled as the standard
/// `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` say (default: every trace, and a caller's
/// decision is followed).
pub fn provider(config: &TelemetryConfig) -> Result<SdkTracerProvider, crate::platform::BoxError> {
    let resource = Resource::builder()
        .with_service_name(service_name(config))
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let target = export_target(config);
    if !matches!(target, Export::Off) {
        crate::platform::install_tls_provider();
    }
    let builder = match target {
        // Nothing would receive the spans: they still get ids (logs and problem bodies carry
        // the trace id, callers' traces continue) and are not recorded, except in a trace the
        // caller sampled: its decision is passed on (`traceparent` `-01` on outbound calls), so
        // the services after this one still record it.
        Export::Off => builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff))),
        Export::FromEnv => builder.with_batch_exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build()?,
        ),
        Export::Endpoint(url) => builder.with_batch_exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(url)
                .build()?,
        ),
    };
    Ok(builder.build())
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// The caller's trace context from `traceparent`/`tracestate` (empty when absent or invalid).
pub fn extract_parent(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Tracer, TracerProvider as _};

    use super::*;

    fn outbound_sampled(traceparent: Option<&str>) -> bool {
        let config = TelemetryConfig {
            service_name: "svc".to_owned(),
            otlp_endpoint: String::new(),
        };
        let provider = provider(&config).unwrap();
        let tracer = provider.tracer("test");
        let mut headers = HeaderMap::new();
        if let Some(value) = traceparent {
            headers.insert("traceparent", value.parse().unwrap());
        }
        let span = tracer.start_with_context("outbound", &extract_parent(&headers));
        opentelemetry::trace::Span::span_context(&span).is_sampled()
    }

    #[test]
    fn without_an_exporter_the_callers_sampling_decision_is_kept() {
        if export_target(&TelemetryConfig {
            service_name: String::new(),
            otlp_endpoint: String::new(),
        }) != Export::Off
        {
            return; // OTEL_EXPORTER_OTLP_* is set in this environment.
        }
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
        assert!(outbound_sampled(Some(&format!("00-{trace}-01"))));
        assert!(!outbound_sampled(Some(&format!("00-{trace}-00"))));
        assert!(
            !outbound_sampled(None),
            "a trace started here is not sampled"
        );
    }
}
