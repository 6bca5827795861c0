//! Messaging: publish events and consume them with retries, dead letters and dedupe, on NATS
//! JetStream behind the [`Broker`] trait. Config `[messaging]` (docs/platform.md).
//!
//! Publish with `platform.messaging.publish_json(subject, id, &event)`; consume by
//! implementing [`MessageHandler`] and registering it with `platform.messaging.consume(handler)`
//! in `routes` (src/app/mod.rs): the server runs it, and drains it on shutdown.
//!
//! Managed by the platform (component `messaging`).

pub mod broker;
pub mod consumer;
pub mod nats;
{% if idempotency_store == "postgres" %}
pub mod outbox;
{% endif %}

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use self::broker::{
    Broker, BrokerError, Headers, OutgoingMessage, RedriveFilter, RedriveReport, Redriven,
};
pub use self::consumer::{
    ConsumerState, ConsumerStates, HandlerError, MessageContext, MessageHandler, Outcome, Runtime,
};
use crate::platform::config::{ConfigError, Layers, env_name};
use crate::platform::idempotency::IdempotencyStore;

pub const PROCESS_DURATION: &str = "messaging_process_duration_seconds";
pub const REDELIVERIES_TOTAL: &str = "messaging_redeliveries_total";
pub const DEAD_LETTERS_TOTAL: &str = "messaging_dead_letters_total";
pub const CONSUMER_LAG: &str = "messaging_consumer_lag";
pub const CONSUMER_RESTARTS_TOTAL: &str = "messaging_consumer_restarts_total";

/// `[messaging]` in config/*.toml (env `APP_MESSAGING__<KEY>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessagingConfig {
    pub url: String,
    pub stream: String,
    pub subjects: Vec<String>,
    pub dead_letter_stream: String,
    pub max_deliver: u64,
    pub max_in_flight: usize,
    pub ack_wait_secs: u64,
    pub progress_interval_secs: u64,
    pub backoff_ms: Vec<u64>,
    pub duplicate_window_secs: u64,
{% if idempotency_store == "postgres" %}
    /// How often the outbox relay looks for committed messages when it found none.
    pub outbox_poll_ms: u64,
    /// How long a published outbox row is kept before the relay deletes it.
    pub outbox_retention_secs: u64,
{% endif %}
}

fn invalid(key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: format!("messaging.{key}"),
        message: format!("{message} (env {})", env_name(&format!("messaging.{key}"))),
    }
}

impl MessagingConfig {
    /// Reads and checks `[messaging]`.
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let config: Self = layers.section("messaging")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(invalid("url", "is empty: set the NATS server's URL"));
        }
        let stream_name_ok = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !stream_name_ok(&self.stream) {
            return Err(invalid("stream", "must be letters, digits, `-` or `_`"));
        }
        if !stream_name_ok(&self.dead_letter_stream) || self.dead_letter_stream == self.stream {
            return Err(invalid(
                "dead_letter_stream",
                "must be letters, digits, `-` or `_`, and not the stream itself",
            ));
        }
        if self.subjects.is_empty() {
            return Err(invalid("subjects", "lists no subject"));
        }
        if self.max_deliver == 0 {
            return Err(invalid("max_deliver", "must be at least 1"));
        }
        if self.max_in_flight == 0 {
            return Err(invalid("max_in_flight", "must be at least 1"));
        }
{% if idempotency_store == "postgres" %}
        if self.outbox_poll_ms == 0 {
            return Err(invalid("outbox_poll_ms", "must be at least 1"));
        }
        if self.outbox_retention_secs == 0 {
            return Err(invalid("outbox_retention_secs", "must be at least 1"));
        }
{% endif %}
        if self.backoff_ms.is_empty() {
            return Err(invalid("backoff_ms", "lists no delay"));
        }
        if self.progress_interval_secs == 0 || self.progress_interval_secs >= self.ack_wait_secs {
            return Err(invalid(
                "progress_interval_secs",
                format!(
                    "must be at least 1 and below ack_wait_secs ({})",
                    self.ack_wait_secs
                ),
            ));
        }
        Ok(())
    }

    pub fn backoff(&self) -> Vec<Duration> {
        self.backoff_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect()
    }

    /// The delay before delivery `count + 1` after the `count`-th failed (the last repeats).
    pub fn delay_after(&self, count: u64) -> Duration {
        let index = usize::try_from(count.saturating_sub(1)).unwrap_or(usize::MAX);
        let ms = self
            .backoff_ms
            .get(index)
            .or(self.backoff_ms.last())
            .copied()
            .unwrap_or(1000);
        Duration::from_millis(ms)
    }
}

/// Decodes a JSON payload; malformed JSON is a permanent error.
pub fn json<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, HandlerError> {
    serde_json::from_slice(payload)
        .map_err(|e| HandlerError::Permanent(format!("not valid JSON: {e}")))
}

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.0.iter().map(|(key, _)| key.as_str()).collect()
    }
}

/// Adds the current span's `traceparent` (and `tracestate`) to `headers`.
pub fn inject_context(headers: &mut Headers) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// The producer's trace context from a message's headers (empty when absent).
pub fn extract_context(headers: &Headers) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

type Start = Arc<dyn Fn(Runtime, watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send + Sync>;

/// The service's messaging: publishing, and the handlers the server runs.
#[derive(Clone)]
pub struct Messaging {
    runtime: Runtime,
    /// Each registered handler's durable consumer name, and how to run it.
    handlers: Arc<Mutex<Vec<(String, Start)>>>,
{% if idempotency_store == "postgres" %}
    outbox: Option<outbox::Outbox>,
{% endif %}
}

impl std::fmt::Debug for Messaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messaging")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl Messaging {
    pub fn new(
        broker: Arc<dyn Broker>,
        store: Arc<dyn IdempotencyStore>,
        config: MessagingConfig,
        record_ttl: Duration,
    ) -> Self {
        Self {
            runtime: Runtime {
                broker,
                store,
                config,
                record_ttl,
                states: ConsumerStates::default(),
            },
            handlers: Arc::new(Mutex::new(Vec::new())),
{% if idempotency_store == "postgres" %}
            outbox: None,
{% endif %}
        }
    }
{% if idempotency_store == "postgres" %}

    /// Adds the outbox: `start` runs its relay.
    pub fn with_outbox(mut self, outbox: outbox::Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// The outbox: write messages in your transaction (`outbox.enqueue(&mut *tx, message)`)
    /// and they are published after it commits.
    pub fn outbox(&self) -> Option<&outbox::Outbox> {
        self.outbox.as_ref()
    }
{% endif %}

    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.runtime.broker
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Where each started consumer stands (`/readyz` reports them).
    pub fn consumer_states(&self) -> ConsumerStates {
        self.runtime.states.clone()
    }

    /// The service's subject for events named `name`: `<messaging.stream>.<name>`, within the
    /// default `messaging.subjects` (`<stream>.>`).
    pub fn subject(&self, name: &str) -> String {
        format!("{}.{name}", self.runtime.config.stream)
    }

    /// Publishes `event` as JSON on `subject` with message id `id` (the same event, the same
    /// id: the broker and the consumers drop duplicates), carrying the current trace context.
    pub async fn publish_json<T: serde::Serialize>(
        &self,
        subject: &str,
        id: &str,
        event: &T,
    ) -> Result<(), BrokerError> {
        let payload = serde_json::to_vec(event).map_err(BrokerError::new)?;
        let mut headers = Headers::default();
        headers.insert("Content-Type", "application/json");
        self.publish(OutgoingMessage {
            subject: subject.to_owned(),
            id: id.to_owned(),
            headers,
            payload,
        })
        .await
    }

    /// Publishes `message`, adding the current trace context to its headers.
    pub async fn publish(&self, mut message: OutgoingMessage) -> Result<(), BrokerError> {
        inject_context(&mut message.headers);
        self.runtime.broker.publish(message).await
    }

    /// Registers `handler`: the server runs it from startup to shutdown.
    ///
    /// # Panics
    ///
    /// When another handler was registered for the same subject: they would share one durable
    /// consumer, and each would get only some of its messages.
    pub fn consume<H: MessageHandler>(&self, handler: H) {
        let durable = self.runtime.spec(handler.subject()).durable;
        let mut handlers = self
            .handlers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            handlers.iter().all(|(name, _)| *name != durable),
            "messaging: subject `{}` already has a handler (durable consumer `{durable}`); \
             one handler per subject",
            handler.subject()
        );
        let handler = Arc::new(handler);
        let start: Start = Arc::new(move |runtime, shutdown| {
            Box::pin(consumer::run(handler.clone(), runtime, shutdown))
        });
        handlers.push((durable, start));
    }

    /// Starts every registered handler{% if idempotency_store == "postgres" %} and the outbox relay{% endif %}; they stop taking messages when `shutdown` turns true.
    pub fn start(&self, shutdown: watch::Receiver<bool>) -> Consumers {
        let handlers = std::mem::take(
            &mut *self
                .handlers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut tasks = JoinSet::new();
        for (durable, start) in handlers {
            tasks.spawn(supervise(
                durable,
                start,
                self.runtime.clone(),
                shutdown.clone(),
            ));
        }
{% if idempotency_store == "postgres" %}
        if let Some(outbox) = &self.outbox {
            tasks.spawn(outbox.clone().run_relay(
                self.runtime.broker.clone(),
                shutdown.clone(),
                Duration::from_millis(self.runtime.config.outbox_poll_ms),
            ));
        }
{% endif %}
        Consumers(tasks)
    }
}

/// Runs one consumer until shutdown. A consumer that ends before (a panic outside a handler: a
/// handler's own panic is a failed delivery) is logged, counted in
/// `messaging_consumer_restarts_total` and started again after a growing delay (up to 30 s).
async fn supervise(
    durable: String,
    start: Start,
    runtime: Runtime,
    mut shutdown: watch::Receiver<bool>,
) {
    use futures_util::FutureExt;
    let mut restarts = 0u32;
    loop {
        let started = std::time::Instant::now();
        let ended = std::panic::AssertUnwindSafe(start(runtime.clone(), shutdown.clone()))
            .catch_unwind()
            .await;
        if *shutdown.borrow() {
            return;
        }
        // One that ran for a while before it ended starts again soon.
        if started.elapsed() > Duration::from_secs(60) {
            restarts = 0;
        }
        restarts = restarts.saturating_add(1);
        let delay = Duration::from_millis(250u64 << restarts.min(7)).min(Duration::from_secs(30));
        let error = match ended {
            Ok(()) => "ended".to_owned(),
            Err(panic) => panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".to_owned()),
        };
        runtime.states.set(
            &durable,
            ConsumerState::Down(format!("stopped unexpectedly: {error}")),
        );
        tracing::error!(
            consumer = %durable,
            error,
            restarts,
            retry_in_ms = delay.as_millis() as u64,
            "a consumer stopped unexpectedly; starting it again"
        );
        metrics::counter!(CONSUMER_RESTARTS_TOTAL).increment(1);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// The running consumers.
#[derive(Debug)]
pub struct Consumers(JoinSet<()>);

impl Consumers {
    /// Waits until every consumer finished its in-flight messages (after shutdown).
    pub async fn wait(mut self) {
        while self.0.join_next().await.is_some() {}
    }
}
