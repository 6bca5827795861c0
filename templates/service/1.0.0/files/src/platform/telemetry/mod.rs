//! Telemetry setup: JSON log lines on stdout and OpenTelemetry spans, installed as one
//! `tracing` subscriber. `RUST_LOG` filters the log lines (default `info`).
//!
//! Log lines are handed to a writer thread and written to stdout in batches, so a request never
//! waits on stdout; nothing is dropped (a full queue makes the caller wait) and every line is
//! flushed at shutdown.
//!
//! Managed by the platform.

pub mod logging;
pub mod tracing;

use ::tracing::{Level, Subscriber};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::platform::config::TelemetryConfig;

/// Handle kept by `main`: flushes and stops span export at shutdown, and the remaining log
/// lines when dropped.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    _log_writer: logging::LogWriterGuard,
}

impl Telemetry {
    /// Flushes buffered spans and stops the exporter. Call once, at shutdown.
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown() {
            ::tracing::warn!(%error, "span exporter did not shut down cleanly");
        }
    }
}

/// Installs the process-wide subscriber: JSON logs to stdout plus span export as configured.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, crate::platform::BoxError> {
    let provider = tracing::provider(config)?;
    let (writer, log_writer) = logging::LogWriter::spawn(std::io::stdout())?;
    let subscriber = subscriber(provider.clone(), writer, logging::filter_from_env());
    ::tracing::subscriber::set_global_default(subscriber)?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(Telemetry {
        provider,
        _log_writer: log_writer,
    })
}

/// The subscriber stack, also used by tests with their own writer and span exporter.
pub fn subscriber<W>(
    provider: SdkTracerProvider,
    writer: W,
    filter: tracing_subscriber::filter::Targets,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    Registry::default()
        .with(logging::JsonLayer::new(writer, filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // The request span's attributes say where it comes from; source locations,
                // thread names and busy/idle times would cost every request for nothing.
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                // Spans, and warnings and errors as span events; routine log lines (access,
                // audit) are already in the logs and would only weigh down every span.
                .with_filter(filter_fn(|metadata| {
                    if metadata.is_span() {
                        *metadata.level() <= Level::INFO
                    } else {
                        *metadata.level() <= Level::WARN
                    }
                })),
        )
}

/// The OpenTelemetry trace id of the current span, as 32 hex digits.
pub fn current_trace_id() -> Option<String> {
    let context = ::tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
