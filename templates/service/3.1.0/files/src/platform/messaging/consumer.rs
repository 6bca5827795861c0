//! Running a [`MessageHandler`]: one durable consumer, at most `max_in_flight` messages at a
//! time, explicit acks, in-progress acks while the handler works, retries with backoff,
//! dead letters, dedupe by message id, the consumer's span a child of the producer's, metrics;
//! on shutdown it stops fetching and finishes (and acks) what is in flight.
//!
//! Managed by the platform.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::broker::{
    Broker, ConsumerSpec, DeadLetter, DeadLetterReason, Deliveries, Delivery, Headers, ORIGINAL_ID,
    REDRIVE_FOR,
};
use super::{
    CONSUMER_LAG, DEAD_LETTERS_TOTAL, MessagingConfig, PROCESS_DURATION, REDELIVERIES_TOTAL,
    extract_context,
};
use crate::platform::idempotency::{
    Claim, ClaimToken, IdempotencyStore, StoreError, StoredResponse,
};

/// How a handler failed, which decides what happens to the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Worth another try (a dependency is down, a timeout): redelivered after a growing delay,
    /// dead-lettered after `max_deliver` deliveries.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (invalid content, a rule refuses it): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl HandlerError {
    pub fn transient(error: impl std::fmt::Display) -> Self {
        Self::Transient(error.to_string())
    }
    pub fn permanent(error: impl std::fmt::Display) -> Self {
        Self::Permanent(error.to_string())
    }
}

/// What a handler knows about the message besides its content.
#[derive(Debug, Clone)]
pub struct MessageContext {
    /// The message id (`Nats-Msg-Id`): the same event always has the same id.
    pub id: String,
    pub subject: String,
    /// 1 on the first delivery.
    pub delivery_count: u64,
    pub headers: Headers,
}

/// Your code for one subject. Register it with `platform.messaging.consume(handler)`.
#[async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    /// The decoded message.
    type Message: Send + 'static;
    /// The subject (wildcards allowed) this handler consumes, within `messaging.subjects`.
    fn subject(&self) -> &str;
    /// Decodes a payload; an error dead-letters the message at once (reason `undecodable`).
    /// [`super::json`] decodes JSON.
    fn decode(&self, payload: &[u8]) -> Result<Self::Message, HandlerError>;
    /// Handles one message. Make its effect happen once per `context.id`: the platform skips
    /// an id already processed, but a crash after your effect and before the ack redelivers it.
    async fn handle(
        &self,
        message: Self::Message,
        context: &MessageContext,
    ) -> Result<(), HandlerError>;
}

/// What became of one delivery (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Retry,
    DeadLetter,
    Duplicate,
    /// A redriven message meant for another consumer (the one that dead-lettered it).
    Skipped,
}

impl Outcome {
    /// Every outcome, in declaration order (`outcome as usize` is its index).
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Retry,
        Self::DeadLetter,
        Self::Duplicate,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::DeadLetter => "dead_letter",
            Self::Duplicate => "duplicate",
            Self::Skipped => "skipped",
        }
    }
}

/// Where a started consumer stands (`/readyz` reports each one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerState {
    /// Creating its durable consumer on the broker.
    Starting,
    /// Taking messages.
    Running,
    /// Not taking messages: the broker refused the consumer, or its task ended and waits to be
    /// started again (the reason).
    Down(String),
}

/// Each started consumer's [`ConsumerState`], by durable name.
#[derive(Debug, Clone, Default)]
pub struct ConsumerStates(Arc<std::sync::Mutex<std::collections::BTreeMap<String, ConsumerState>>>);

impl ConsumerStates {
    pub fn set(&self, durable: &str, state: ConsumerState) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(durable.to_owned(), state);
    }

    /// Every started consumer and its state, by durable name.
    pub fn all(&self) -> Vec<(String, ConsumerState)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect()
    }
}

/// How often a dead letter is tried before the delivery is given back (the last delivery is
/// tried until the dead letter is stored).
const DEAD_LETTER_ATTEMPTS: u64 = 3;

/// What every consumer of the service shares.
#[derive(Clone)]
pub struct Runtime {
    pub broker: Arc<dyn Broker>,
    pub store: Arc<dyn IdempotencyStore>,
    pub config: MessagingConfig,
    /// How long a processed id is remembered (`idempotency.record_ttl_secs`).
    pub record_ttl: Duration,
    /// Where each started consumer stands.
    pub states: ConsumerStates,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The durable consumer of `subject`: named after the stream and the subject, so it
    /// survives restarts and every replica shares it. Different subjects never share a name:
    /// `.` becomes `-`; `-`, `_`, `*` and `>` become `_h`, `__`, `_S` and `_R`; any other
    /// character `_x<hex>_` (`a.b` is `<stream>-a-b`, `a-b` is `<stream>-a_hb`).
    pub fn spec(&self, subject: &str) -> ConsumerSpec {
        let mut durable = format!("{}-", self.config.stream);
        for c in subject.chars() {
            match c {
                '.' => durable.push('-'),
                '-' => durable.push_str("_h"),
                '_' => durable.push_str("__"),
                '*' => durable.push_str("_S"),
                '>' => durable.push_str("_R"),
                c if c.is_ascii_alphanumeric() => durable.push(c),
                c => durable.push_str(&format!("_x{:x}_", u32::from(c))),
            }
        }
        ConsumerSpec {
            durable,
            subject: subject.to_owned(),
            max_deliver: self.config.max_deliver,
            max_in_flight: self.config.max_in_flight,
            ack_wait: Duration::from_secs(self.config.ack_wait_secs),
            // An ack timeout means the process died or stalled: never sooner than ack_wait.
            backoff: self
                .config
                .backoff()
                .into_iter()
                .map(|delay| delay.max(Duration::from_secs(self.config.ack_wait_secs)))
                .collect(),
        }
    }
}

type ClaimRequest = (String, oneshot::Sender<Result<Claim, StoreError>>);
type CompleteRequest = (
    (String, ClaimToken),
    oneshot::Sender<Result<(), StoreError>>,
);

/// One consumer's calls to the idempotency store, made together: while one call is at the
/// store, the next requests gather and go in one `claim_many` / `complete_many` (with
/// PostgreSQL one statement and one commit for up to `max_in_flight` messages, where one per
/// message bound the consumer's throughput). The tasks end when the last handle is dropped.
#[derive(Clone)]
struct StoreBatches {
    claims: mpsc::UnboundedSender<ClaimRequest>,
    completions: mpsc::UnboundedSender<CompleteRequest>,
}

impl StoreBatches {
    fn spawn(runtime: &Runtime, spec: &ConsumerSpec) -> Self {
        let (claims, mut claim_requests) = mpsc::unbounded_channel::<ClaimRequest>();
        let (completions, mut complete_requests) = mpsc::unbounded_channel::<CompleteRequest>();
        let (store, ttl, max) = (runtime.store.clone(), spec.ack_wait, spec.max_in_flight);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            while claim_requests.recv_many(&mut batch, max).await > 0 {
                let keys: Vec<String> = batch.iter().map(|(key, _)| key.clone()).collect();
                let results = AssertUnwindSafe(store.claim_many(&keys, "message", ttl))
                    .catch_unwind()
                    .await
                    .unwrap_or_default();
                let mut results = results.into_iter();
                for (_, reply) in batch.drain(..) {
                    let result = results.next().unwrap_or_else(|| {
                        Err(StoreError("the store answered no claim".to_owned()))
                    });
                    let _ = reply.send(result);
                }
            }
        });
        let (store, record_ttl) = (runtime.store.clone(), runtime.record_ttl);
        tokio::spawn(async move {
            let done = StoredResponse {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            };
            let mut batch = Vec::with_capacity(max);
            while complete_requests.recv_many(&mut batch, max).await > 0 {
                let claims: Vec<(String, ClaimToken)> =
                    batch.iter().map(|(claim, _)| claim.clone()).collect();
                let results = AssertUnwindSafe(store.complete_many(&claims, &done, record_ttl))
                    .catch_unwind()
                    .await
                    .unwrap_or_default();
                let mut results = results.into_iter();
                for (_, reply) in batch.drain(..) {
                    let result = results.next().unwrap_or_else(|| {
                        Err(StoreError("the store answered no completion".to_owned()))
                    });
                    let _ = reply.send(result);
                }
            }
        });
        Self {
            claims,
            completions,
        }
    }

    async fn claim(&self, key: &str) -> Result<Claim, StoreError> {
        let (reply, answer) = oneshot::channel();
        let _ = self.claims.send((key.to_owned(), reply));
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError("the claim was not answered".to_owned())))
    }

    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let _ = self
            .completions
            .send(((key.to_owned(), token.clone()), reply));
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError("the completion was not answered".to_owned())))
    }
}

/// Runs `handler` until `shutdown` turns true, then lets in-flight messages finish.
pub async fn run<H: MessageHandler>(
    handler: Arc<H>,
    runtime: Runtime,
    shutdown: watch::Receiver<bool>,
) {
    let spec = runtime.spec(handler.subject());
    runtime.states.set(&spec.durable, ConsumerState::Starting);
    tracing::info!(consumer = %spec.durable, stream = %runtime.config.stream, subject = %spec.subject, "consumer started");
    let lag = watch_lag(runtime.clone(), spec.clone(), shutdown.clone());
    let consume = consume(handler, runtime, spec.clone(), shutdown);
    tokio::join!(lag, consume);
    tracing::info!(subject = %spec.subject, "consumer stopped");
}

async fn consume<H: MessageHandler>(
    handler: Arc<H>,
    runtime: Runtime,
    spec: ConsumerSpec,
    mut shutdown: watch::Receiver<bool>,
) {
    let instruments = Instruments::new(&spec);
    let batches = StoreBatches::spawn(&runtime, &spec);
    let mut attempt = 0u32;
    while !*shutdown.borrow() {
        let deliveries = match runtime.broker.consume(&spec, shutdown.clone()).await {
            Ok(deliveries) => {
                attempt = 0;
                runtime.states.set(&spec.durable, ConsumerState::Running);
                deliveries
            }
            Err(error) => {
                runtime
                    .states
                    .set(&spec.durable, ConsumerState::Down(error.to_string()));
                attempt = attempt.saturating_add(1);
                let delay = Duration::from_millis(250 * 2u64.pow(attempt.min(5)));
                tracing::warn!(%error, subject = %spec.subject, retry_in_ms = delay.as_millis() as u64, "cannot start the consumer");
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        };
        let mut stop = shutdown.clone();
        let stopped = shutdown.clone();
        let stopping = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        // take_until: on shutdown no new message is taken; those already taken finish.
        let mut deliveries = deliveries;
        (&mut deliveries)
            .take_until(stopping)
            .for_each_concurrent(spec.max_in_flight, |delivery| {
                let (handler, runtime, spec, instruments, batches, stopped) =
                    (&*handler, &runtime, &spec, &instruments, &batches, &stopped);
                async move {
                    match delivery {
                        Ok(delivery) => {
                            let delivery = delivery.as_ref();
                            let with = With {
                                instruments,
                                batches,
                                stop: stopped,
                            };
                            process_with(handler, runtime, spec, &with, delivery).await;
                        }
                        Err(error) => tracing::warn!(%error, "cannot read from the broker"),
                    }
                }
            })
            .await;
        if *shutdown.borrow() {
            release_fetched(&mut deliveries).await;
        }
    }
}

/// On shutdown: messages the last pull request still brought (as in-flight ones were acked)
/// that no handler started are given back at once (nak, no delay), so a replica — or this
/// service after its restart — gets them now instead of after `ack_wait`. The stream ends when
/// that request does (the broker asks for no more once stopping); they are given back only
/// then, since the broker would hand a message given back earlier to that same open request
/// again (another delivery, counted towards `max_deliver`).
async fn release_fetched(deliveries: &mut Deliveries) {
    let mut fetched = Vec::new();
    while let Some(next) = deliveries.next().await {
        if let Ok(delivery) = next {
            fetched.push(delivery);
        }
    }
    futures_util::future::join_all(fetched.iter().map(|delivery| async move {
        if let Err(error) = delivery.nak(Duration::ZERO).await {
            tracing::warn!(%error, subject = delivery.subject(), "cannot give back a fetched message");
        }
    }))
    .await;
}

async fn watch_lag(runtime: Runtime, spec: ConsumerSpec, mut shutdown: watch::Receiver<bool>) {
    let gauge = metrics::gauge!(CONSUMER_LAG, "subject" => spec.subject.clone());
    loop {
        if let Ok(lag) = runtime.broker.lag(&spec).await {
            gauge.set(lag as f64);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// The message id: the id the producer gave it (`Nats-Msg-Id`; a redriven message keeps its
/// original one in `Platform-Original-Id`), or the stream sequence when the producer set none.
fn message_id(delivery: &dyn Delivery) -> String {
    let headers = delivery.headers();
    headers
        .get(ORIGINAL_ID)
        .or_else(|| headers.get("Nats-Msg-Id"))
        .map_or_else(|| format!("seq-{}", delivery.sequence()), str::to_owned)
}

/// What a consumer reports to, resolved once per consumer rather than once per message: the
/// span name and the metric handles of its subject (a label set looked up per message costs
/// allocations and a registry lookup each time).
struct Instruments {
    span_name: String,
    redeliveries: metrics::Counter,
    lag: metrics::Gauge,
    /// `messaging_process_duration_seconds` by outcome, in [`Outcome::ALL`] order.
    durations: [metrics::Histogram; 5],
    /// `messaging_dead_letters_total` by reason, in [`DeadLetterReason::ALL`] order.
    dead_letters: [metrics::Counter; 3],
}

impl Instruments {
    fn new(spec: &ConsumerSpec) -> Self {
        let subject = &spec.subject;
        Self {
            span_name: format!("process {subject}"),
            redeliveries: metrics::counter!(REDELIVERIES_TOTAL, "subject" => subject.clone()),
            lag: metrics::gauge!(CONSUMER_LAG, "subject" => subject.clone()),
            durations: Outcome::ALL.map(|outcome| {
                metrics::histogram!(
                    PROCESS_DURATION,
                    "subject" => subject.clone(),
                    "outcome" => outcome.as_str()
                )
            }),
            dead_letters: DeadLetterReason::ALL.map(|reason| {
                metrics::counter!(
                    DEAD_LETTERS_TOTAL,
                    "subject" => subject.clone(),
                    "reason" => reason.as_str()
                )
            }),
        }
    }

    fn duration(&self, outcome: Outcome) -> &metrics::Histogram {
        &self.durations[outcome as usize]
    }

    fn dead_letter(&self, reason: DeadLetterReason) -> &metrics::Counter {
        let index = DeadLetterReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        &self.dead_letters[index]
    }
}

/// Handles one delivery to the end: acked, nak'ed with a delay, or dead-lettered and
/// terminated. Returns what became of it.
pub async fn process<H: MessageHandler>(
    handler: &H,
    runtime: &Runtime,
    spec: &ConsumerSpec,
    delivery: &dyn Delivery,
) -> Outcome {
    let (_never, stop) = watch::channel(false);
    let with = With {
        instruments: &Instruments::new(spec),
        batches: &StoreBatches::spawn(runtime, spec),
        stop: &stop,
    };
    process_with(handler, runtime, spec, &with, delivery).await
}

/// What a consumer hands each delivery besides the handler, the runtime and its spec.
struct With<'a> {
    instruments: &'a Instruments,
    batches: &'a StoreBatches,
    stop: &'a watch::Receiver<bool>,
}

async fn process_with<H: MessageHandler>(
    handler: &H,
    runtime: &Runtime,
    spec: &ConsumerSpec,
    with: &With<'_>,
    delivery: &dyn Delivery,
) -> Outcome {
    let instruments = with.instruments;
    let started = Instant::now();
    let id = message_id(delivery);
    let count = delivery.delivery_count();
    let span = tracing::info_span!(
        "message",
        otel.name = %instruments.span_name,
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = %delivery.subject(),
        message_id = %id,
        delivery = count,
    );
    // The producer's span is the parent, on every delivery and in the dead letter.
    let _ = span.set_parent(extract_context(delivery.headers()));
    let outcome = handle(handler, runtime, spec, with, delivery, &id)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::info!(
            message_id = %id,
            delivery = count,
            outcome = outcome.as_str(),
            "message processed"
        );
    });
    if count > 1 {
        instruments.redeliveries.increment(1);
    }
    instruments.lag.set(delivery.pending() as f64);
    instruments
        .duration(outcome)
        .record(started.elapsed().as_secs_f64());
    outcome
}

async fn handle<H: MessageHandler>(
    handler: &H,
    runtime: &Runtime,
    spec: &ConsumerSpec,
    with: &With<'_>,
    delivery: &dyn Delivery,
    id: &str,
) -> Outcome {
    let count = delivery.delivery_count();
    // A redriven message goes back to the consumer that dead-lettered it; every other consumer
    // whose subject matches had its own outcome for it already.
    if let Some(owner) = delivery.headers().get(REDRIVE_FOR)
        && owner != spec.durable
    {
        tracing::info!(
            message_id = %id,
            delivery = count,
            redriven_for = owner,
            "redriven for another consumer; acknowledged without running the handler"
        );
        return ack(delivery, Outcome::Skipped).await;
    }
    let decoded =
        match std::panic::catch_unwind(AssertUnwindSafe(|| handler.decode(delivery.payload()))) {
            Ok(decoded) => decoded,
            Err(panic) => {
                let error = panicked(&*panic, id, count);
                return fail_transient(runtime, with, spec, delivery, id, error).await;
            }
        };
    let message = match decoded {
        Ok(message) => message,
        Err(error) => {
            return dead_letter(
                runtime,
                with,
                spec,
                delivery,
                id,
                DeadLetterReason::Undecodable,
                &error,
            )
            .await;
        }
    };
    let key = format!("message:{}:{id}", spec.durable);
    let token = match claim(runtime, with, delivery, &key).await {
        Some(Claim::Claimed(token)) => token,
        Some(Claim::Completed(_) | Claim::Mismatch) => {
            // Checked before the delivery count: a message processed and recorded whose ack
            // was lost is acknowledged, never dead-lettered.
            tracing::info!(
                message_id = %id,
                delivery = count,
                "already processed; acknowledged without running the handler"
            );
            return ack(delivery, Outcome::Duplicate).await;
        }
        Some(Claim::InFlight) | None => {
            return retry(
                runtime,
                delivery,
                "stopping while waiting for the idempotency store",
            )
            .await;
        }
    };
    if count > spec.max_deliver {
        // Delivered again after its last allowed delivery ended without an outcome (the
        // process stopped while handling it): dead-lettered, not handled once more.
        if let Err(e) = runtime.store.release(&key, &token).await {
            tracing::warn!(error = %e, "cannot release the message's claim");
        }
        let error = HandlerError::Transient(format!(
            "no outcome after {} deliveries: the consumer stopped while handling it",
            spec.max_deliver
        ));
        return dead_letter(
            runtime,
            with,
            spec,
            delivery,
            id,
            DeadLetterReason::MaxDeliver,
            &error,
        )
        .await;
    }
    let context = MessageContext {
        id: id.to_owned(),
        subject: delivery.subject().to_owned(),
        delivery_count: count,
        headers: delivery.headers().clone(),
    };
    let result = {
        // A panicking handler is a failed delivery (transient), not the end of the consumer.
        let work = AssertUnwindSafe(handler.handle(message, &context))
            .catch_unwind()
            .map(|result| result.unwrap_or_else(|panic| Err(panicked(&*panic, id, count))));
        tokio::pin!(work);
        let every = Duration::from_secs(runtime.config.progress_interval_secs);
        let mut next = tokio::time::Instant::now() + every;
        loop {
            // The handler first: one that finishes at once never arms a timer.
            tokio::select! {
                biased;
                result = &mut work => break result,
                () = tokio::time::sleep_until(next) => {
                    if let Err(error) = delivery.in_progress().await {
                        tracing::warn!(%error, "in-progress ack failed");
                    }
                    // The claim lives as long as the broker's ack timer: a redelivery (or the
                    // same id published again) must not claim it while this handler works.
                    if let Err(error) = runtime.store.extend(&key, &token, spec.ack_wait).await {
                        tracing::warn!(%error, "cannot extend the message's claim");
                    }
                    next = tokio::time::Instant::now() + every;
                }
            }
        }
    };
    match result {
        Ok(()) => {
            if let Err(error) = with.batches.complete(&key, &token).await {
                tracing::warn!(%error, "cannot record the message as processed");
            }
            ack(delivery, Outcome::Ok).await
        }
        Err(error) => {
            if let Err(e) = runtime.store.release(&key, &token).await {
                tracing::warn!(error = %e, "cannot release the message's claim");
            }
            match error {
                HandlerError::Permanent(_) => {
                    dead_letter(
                        runtime,
                        with,
                        spec,
                        delivery,
                        id,
                        DeadLetterReason::Permanent,
                        &error,
                    )
                    .await
                }
                HandlerError::Transient(_) => {
                    fail_transient(runtime, with, spec, delivery, id, error).await
                }
            }
        }
    }
}

/// A transient failure: delivered again after a delay, dead-lettered on the last allowed
/// delivery.
async fn fail_transient(
    runtime: &Runtime,
    with: &With<'_>,
    spec: &ConsumerSpec,
    delivery: &dyn Delivery,
    id: &str,
    error: HandlerError,
) -> Outcome {
    if delivery.delivery_count() >= spec.max_deliver {
        return dead_letter(
            runtime,
            with,
            spec,
            delivery,
            id,
            DeadLetterReason::MaxDeliver,
            &error,
        )
        .await;
    }
    retry(runtime, delivery, &error.to_string()).await
}

/// The error a panic in `decode` or `handle` becomes (logged with the message id).
fn panicked(panic: &(dyn std::any::Any + Send), id: &str, delivery: u64) -> HandlerError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    tracing::error!(message_id = %id, delivery, panic = %message, "the handler panicked");
    HandlerError::Transient(format!("handler panicked: {message}"))
}

/// Claims the message's id. While the idempotency store fails, or another delivery of the same
/// id holds the claim (its process died: the claim expires after `ack_wait`), it waits and
/// asks again, keeping the delivery in progress, rather than nak: a nak is one more delivery,
/// and a store outage would dead-letter every message without running a handler. `None` when
/// the consumer stops meanwhile.
async fn claim(
    runtime: &Runtime,
    with: &With<'_>,
    delivery: &dyn Delivery,
    key: &str,
) -> Option<Claim> {
    let stop = with.stop;
    let every = Duration::from_secs(runtime.config.progress_interval_secs);
    let mut progressed = Instant::now();
    let mut attempt = 0u64;
    loop {
        let why = match with.batches.claim(key).await {
            Ok(Claim::InFlight) => "in flight elsewhere".to_owned(),
            Ok(claim) => return Some(claim),
            Err(error) => error.to_string(),
        };
        attempt += 1;
        let delay = runtime.config.delay_after(attempt).min(every);
        tracing::warn!(
            message_id = %message_id(delivery),
            delivery = delivery.delivery_count(),
            error = why,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            "cannot claim the message; asking again (the delivery is kept)"
        );
        tokio::time::sleep(delay).await;
        if *stop.borrow() {
            return None;
        }
        if progressed.elapsed() + delay >= every {
            if let Err(error) = delivery.in_progress().await {
                tracing::warn!(%error, "in-progress ack failed");
            }
            progressed = Instant::now();
        }
    }
}

async fn ack(delivery: &dyn Delivery, outcome: Outcome) -> Outcome {
    if let Err(error) = delivery.ack().await {
        // Not acked: it comes back, and the idempotency store skips it then.
        tracing::warn!(%error, "ack failed");
    }
    outcome
}

async fn retry(runtime: &Runtime, delivery: &dyn Delivery, error: &str) -> Outcome {
    let delay = runtime.config.delay_after(delivery.delivery_count());
    tracing::warn!(
        message_id = %message_id(delivery),
        delivery = delivery.delivery_count(),
        error,
        retry_in_ms = delay.as_millis() as u64,
        "message failed; it will be delivered again"
    );
    if let Err(e) = delivery.nak(delay).await {
        tracing::warn!(error = %e, "nak failed; the broker redelivers after ack_wait");
    }
    Outcome::Retry
}

async fn dead_letter(
    runtime: &Runtime,
    with: &With<'_>,
    spec: &ConsumerSpec,
    delivery: &dyn Delivery,
    id: &str,
    reason: DeadLetterReason,
    error: &HandlerError,
) -> Outcome {
    tracing::error!(
        message_id = %id,
        delivery = delivery.delivery_count(),
        reason = reason.as_str(),
        %error,
        "message dead-lettered"
    );
    let letter = DeadLetter {
        id: id.to_owned(),
        subject: delivery.subject().to_owned(),
        sequence: delivery.sequence(),
        headers: delivery.headers().clone(),
        payload: delivery.payload().to_vec(),
        reason,
        delivery_count: delivery.delivery_count(),
        error: error.to_string(),
    };
    // Storing it is tried again here, keeping the delivery in progress: a nak costs a delivery.
    // From the `max_deliver`-th delivery on it is tried until the dead letter is stored (given
    // back, the next delivery would be the one the broker allows for a crash, which no longer
    // knows this error, and after that one the broker drops the message); an earlier one
    // DEAD_LETTER_ATTEMPTS times, then given back. Meanwhile the consumer reports itself down.
    let last = delivery.delivery_count() >= spec.max_deliver;
    let every = Duration::from_secs(runtime.config.progress_interval_secs);
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        let Err(e) = runtime.broker.dead_letter(letter.clone()).await else {
            break;
        };
        if !last && attempt >= DEAD_LETTER_ATTEMPTS {
            // Not stored as a dead letter: leave it to be delivered again rather than lose it.
            tracing::error!(error = %e, attempt, "cannot store the dead letter; the message will be delivered again");
            let _ = delivery
                .nak(runtime.config.delay_after(delivery.delivery_count()))
                .await;
            return Outcome::Retry;
        }
        if attempt == DEAD_LETTER_ATTEMPTS {
            runtime.states.set(
                &spec.durable,
                ConsumerState::Down(format!("cannot store dead letters: {e}")),
            );
        }
        if *with.stop.borrow() {
            // Stopping: given back, it comes again while the broker still allows a delivery.
            if delivery.delivery_count() <= spec.max_deliver {
                tracing::error!(error = %e, "cannot store the dead letter before shutdown; the message will be delivered again");
                let _ = delivery.nak(Duration::ZERO).await;
            } else {
                tracing::error!(error = %e, message_id = %id, "cannot store the dead letter before shutdown, and the broker allows no more deliveries: the message is lost");
            }
            return Outcome::Retry;
        }
        let delay = runtime.config.delay_after(attempt).min(every);
        tracing::error!(
            error = %e,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            "cannot store the dead letter; trying again"
        );
        tokio::time::sleep(delay).await;
        if let Err(error) = delivery.in_progress().await {
            tracing::warn!(%error, "in-progress ack failed");
        }
    }
    if attempt >= DEAD_LETTER_ATTEMPTS {
        runtime.states.set(&spec.durable, ConsumerState::Running);
    }
    with.instruments.dead_letter(reason).increment(1);
    if let Err(e) = delivery.term().await {
        tracing::warn!(error = %e, "term failed");
    }
    Outcome::DeadLetter
}
