//! The NATS JetStream adapter of [`Broker`]: the service's stream and its dead-letter stream
//! (created when missing), durable pull consumers with explicit acks, `Nats-Msg-Id` dedupe.
//!
//! Managed by the platform.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use async_nats::{HeaderMap, header::NATS_MESSAGE_ID};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{OnceCell, watch};

use super::MessagingConfig;
use super::broker::{
    Broker, BrokerError, ConsumerSpec, DeadLetter, Deliveries, Delivery, Headers, OutgoingMessage,
    RedriveFilter, RedriveReport, Redriven, subject_matches,
};

/// How long one pull request stays open: an idle consumer asks again this often, and a stopping
/// one waits at most this long for the last request to end.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// Headers a dead letter gains (the original ones are kept).
pub const DEAD_LETTER_REASON: &str = "Platform-Dead-Letter-Reason";
pub const DELIVERY_COUNT: &str = "Platform-Delivery-Count";
pub const ORIGINAL_SUBJECT: &str = "Platform-Original-Subject";
pub const ORIGINAL_SEQUENCE: &str = "Platform-Original-Sequence";
pub const ERROR: &str = "Platform-Error";
/// The durable consumer that received the message (set on every delivery, kept in its dead
/// letter).
pub const CONSUMER: &str = "Platform-Consumer";
pub use super::broker::{ORIGINAL_ID, REDRIVE_FOR};
const DEAD_LETTER_HEADERS: [&str; 5] = [
    DEAD_LETTER_REASON,
    DELIVERY_COUNT,
    ORIGINAL_SUBJECT,
    ORIGINAL_SEQUENCE,
    ERROR,
];

/// A JetStream connection and the service's two streams.
#[derive(Debug, Clone)]
pub struct NatsBroker {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: MessagingConfig,
    streams: std::sync::Arc<OnceCell<()>>,
    applied: std::sync::Arc<OnceCell<()>>,
}

impl NatsBroker {
    /// Connects, waiting up to 2 s for the broker; past that the connection is made in the
    /// background: the service starts while the broker is down (readiness reports it) and
    /// reconnects on its own.
    pub async fn connect(config: &MessagingConfig) -> Result<Self, BrokerError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .connect(config.url.as_str())
            .await
            .map_err(|e| BrokerError(format!("{}: {e}", config.url)))?;
        let connected = async {
            while client.connection_state() != async_nats::connection::State::Connected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(2), connected)
            .await
            .is_err()
        {
            tracing::warn!(url = %config.url, "message broker unreachable; connecting in the background");
        }
        Ok(Self {
            jetstream: jetstream::new(client.clone()),
            client,
            config: config.clone(),
            streams: std::sync::Arc::new(OnceCell::new()),
            applied: std::sync::Arc::new(OnceCell::new()),
        })
    }

    /// The subject prefix of dead letters: `dlq.<stream>`; a dead letter of `items.created`
    /// is stored under `dlq.<stream>.items.created`.
    pub fn dead_letter_prefix(&self) -> String {
        format!("dlq.{}", self.config.stream)
    }

    /// Whether the durable consumer `name` is being consumed: `Some(true)` while a pull request
    /// of a running service waits on it (looked at a few times over 1.5 s: a running consumer
    /// opens the next request as soon as one ends), `Some(false)` when it exists but nobody
    /// pulls, `None` when it is gone.
    async fn consumer_active(&self, name: &str) -> Result<Option<bool>, BrokerError> {
        let stream = self
            .jetstream
            .get_stream(&self.config.stream)
            .await
            .map_err(BrokerError::new)?;
        for attempt in 0..5 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            match stream.consumer_info(name).await {
                Ok(info) if info.num_waiting > 0 => return Ok(Some(true)),
                Ok(_) => {}
                Err(error)
                    if error.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound =>
                {
                    return Ok(None);
                }
                Err(error) => return Err(BrokerError::new(error)),
            }
        }
        Ok(Some(false))
    }

    /// Creates the stream and the dead-letter stream when missing (once per process), leaving
    /// existing ones as they are: publishing, dead letters and `redrive` (an operator's command,
    /// maybe with other config) never reconfigure them.
    async fn ensure_streams(&self) -> Result<(), BrokerError> {
        self.streams
            .get_or_try_init(|| async {
                self.jetstream
                    .get_or_create_stream(self.stream_config())
                    .await
                    .map_err(|e| BrokerError(format!("stream `{}`: {e}", self.config.stream)))?;
                self.jetstream
                    .get_or_create_stream(self.dead_letter_stream_config())
                    .await
                    .map_err(|e| {
                        BrokerError(format!(
                            "dead-letter stream `{}`: {e}",
                            self.config.dead_letter_stream
                        ))
                    })?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.config.stream.clone(),
            subjects: self.config.subjects.clone(),
            duplicate_window: Duration::from_secs(self.config.duplicate_window_secs),
            ..Default::default()
        }
    }

    fn dead_letter_stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.config.dead_letter_stream.clone(),
            subjects: vec![format!("{}.>", self.dead_letter_prefix())],
            duplicate_window: Duration::from_secs(self.config.duplicate_window_secs),
            ..Default::default()
        }
    }

    /// Creates the stream and the dead-letter stream, or updates them to the config (once per
    /// process, when the first consumer starts): a changed `subjects` or
    /// `duplicate_window_secs` applies on the next start.
    async fn apply_streams(&self) -> Result<(), BrokerError> {
        self.applied
            .get_or_try_init(|| async {
                self.apply_stream(self.stream_config())
                    .await
                    .map_err(|e| BrokerError(format!("stream `{}`: {e}", self.config.stream)))?;
                self.apply_stream(self.dead_letter_stream_config())
                    .await
                    .map_err(|e| {
                        BrokerError(format!(
                            "dead-letter stream `{}`: {e}",
                            self.config.dead_letter_stream
                        ))
                    })?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Creates the stream `config` names, or updates it to `config`, logging what changed.
    async fn apply_stream(&self, config: stream::Config) -> Result<(), BrokerError> {
        if let Ok(existing) = self.jetstream.get_stream(&config.name).await {
            let old = &existing.cached_info().config;
            if old.subjects != config.subjects || old.duplicate_window != config.duplicate_window {
                tracing::info!(
                    stream = %config.name,
                    old_subjects = ?old.subjects,
                    subjects = ?config.subjects,
                    old_duplicate_window_secs = old.duplicate_window.as_secs(),
                    duplicate_window_secs = config.duplicate_window.as_secs(),
                    "stream config changed; updating the stream"
                );
            }
        }
        self.jetstream
            .create_or_update_stream(config)
            .await
            .map_err(BrokerError::new)?;
        Ok(())
    }

    async fn publish_raw(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Vec<u8>,
    ) -> Result<(), BrokerError> {
        self.ensure_streams().await?;
        self.jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(BrokerError::new)?
            .await
            .map_err(BrokerError::new)?;
        Ok(())
    }
}

/// The longest `Platform-Error` a dead letter keeps, in bytes: a handler's error can be
/// arbitrarily long (a whole response body), a header should not be.
pub const ERROR_MAX_BYTES: usize = 1024;

/// `error` cut to at most [`ERROR_MAX_BYTES`] on a character boundary, ending in `…` when cut.
fn truncate_error(error: &str) -> String {
    if error.len() <= ERROR_MAX_BYTES {
        return error.to_owned();
    }
    let mut end = ERROR_MAX_BYTES - '…'.len_utf8();
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

fn to_nats(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in &headers.0 {
        map.append(name.as_str(), value.as_str());
    }
    map
}

fn from_nats(headers: Option<&HeaderMap>) -> Headers {
    let mut out = Vec::new();
    if let Some(headers) = headers {
        for (name, values) in headers.iter() {
            for value in values {
                out.push((name.to_string(), value.as_str().to_owned()));
            }
        }
    }
    // HeaderMap does not keep order; sorted, the order is at least stable.
    out.sort();
    Headers(out)
}

#[async_trait]
impl Broker for NatsBroker {
    async fn publish(&self, message: OutgoingMessage) -> Result<(), BrokerError> {
        let mut headers = message.headers;
        headers.insert(NATS_MESSAGE_ID.as_ref(), message.id);
        // async-nats panics on a header it cannot write: refuse it here instead.
        headers.validate()?;
        self.publish_raw(message.subject, to_nats(&headers), message.payload)
            .await
    }

    async fn consume(
        &self,
        spec: &ConsumerSpec,
        stop: watch::Receiver<bool>,
    ) -> Result<Deliveries, BrokerError> {
        self.apply_streams().await?;
        let stream = self
            .jetstream
            .get_stream(&self.config.stream)
            .await
            .map_err(BrokerError::new)?;
        let config = consumer_config(spec);
        if let Ok(old) = stream.consumer_info(&spec.durable).await {
            let old = &old.config;
            if (
                old.max_deliver,
                old.ack_wait,
                old.max_ack_pending,
                &old.backoff,
                &old.filter_subject,
            ) != (
                config.max_deliver,
                config.ack_wait,
                config.max_ack_pending,
                &config.backoff,
                &config.filter_subject,
            ) {
                tracing::info!(
                    consumer = %spec.durable,
                    old_max_deliver = old.max_deliver,
                    max_deliver = config.max_deliver,
                    old_ack_wait_ms = old.ack_wait.as_millis() as u64,
                    ack_wait_ms = config.ack_wait.as_millis() as u64,
                    old_max_ack_pending = old.max_ack_pending,
                    max_ack_pending = config.max_ack_pending,
                    old_backoff = ?old.backoff,
                    backoff = ?config.backoff,
                    old_subject = %old.filter_subject,
                    subject = %config.filter_subject,
                    "consumer config changed; updating the consumer"
                );
            }
        }
        // Create or update: a changed max_deliver, ack_wait, max_in_flight or backoff applies.
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .create_consumer(config.clone())
            .await
            .map_err(|e| BrokerError(format!("consumer `{}`: {e}", spec.durable)))?;
        // One pull request at a time, for at most what may be in flight, open for PULL_EXPIRES.
        // The next request is made as soon as the current one has brought all it asked for (not
        // when a handler next has room), so the broker has it when an ack frees a slot and
        // delivers at once; it still never has more than max_in_flight unacknowledged
        // (max_ack_pending). Once `stop` turns true no new request is made: the stream ends with
        // what the open one still brings, which the consumer gives back, so nothing waits out
        // ack_wait.
        let size = spec.max_in_flight.max(1);
        let state = Pulls {
            consumer,
            stream,
            config,
            failures: 0,
            batch: None,
            left: 0,
            size,
            stop,
        };
        let deliveries = futures_util::stream::unfold(state, |mut pulls| async move {
            loop {
                if let Some(current) = pulls.batch.as_mut() {
                    match current.next().await {
                        Some(Ok(message)) => {
                            pulls.failures = 0;
                            pulls.left = pulls.left.saturating_sub(1);
                            if pulls.left == 0 {
                                // All this request asked for is here: ask for the next now.
                                pulls.batch = None;
                                if let Err(error) = pulls.request().await {
                                    tracing::warn!(%error, "cannot ask the broker for more messages");
                                }
                            }
                            let delivery = NatsDelivery::new(message)
                                .map(|d| Box::new(d) as Box<dyn Delivery>);
                            return Some((delivery, pulls));
                        }
                        Some(Err(error)) => {
                            pulls.batch = None;
                            pulls.recover().await;
                            return Some((Err(BrokerError::new(error)), pulls));
                        }
                        // This request is done: a new one below, unless stopping.
                        None => pulls.batch = None,
                    }
                }
                match pulls.request().await {
                    Ok(true) => {}
                    // Stopping: the stream ends.
                    Ok(false) => return None,
                    Err(error) => {
                        pulls.recover().await;
                        return Some((Err(error), pulls));
                    }
                }
            }
        });
        Ok(deliveries.boxed())
    }

    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError> {
        let mut headers = letter.headers;
        headers.insert(DEAD_LETTER_REASON, letter.reason.as_str());
        headers.insert(DELIVERY_COUNT, letter.delivery_count.to_string());
        headers.insert(ORIGINAL_SUBJECT, letter.subject.clone());
        headers.insert(ORIGINAL_SEQUENCE, letter.sequence.to_string());
        // Header values are one line, and this one at most ERROR_MAX_BYTES.
        headers.insert(
            ERROR,
            truncate_error(&letter.error.replace(['\r', '\n'], " ")),
        );
        // Its id is the consumer's and the delivered message's: a dead letter stored twice by
        // one consumer (a crash before the term) is kept once, two consumers dead-lettering the
        // same message within the duplicate window each keep theirs, and a redriven message
        // (an id of its own) dead-lettered again is kept too. `letter.id` is the original id.
        let delivered = headers
            .get(NATS_MESSAGE_ID.as_ref())
            .unwrap_or(&letter.id)
            .to_owned();
        let id = match headers.get(CONSUMER) {
            Some(consumer) => format!("{consumer}:{delivered}"),
            None => delivered,
        };
        headers.insert(ORIGINAL_ID, letter.id);
        headers.remove(REDRIVE_FOR);
        headers.insert(NATS_MESSAGE_ID.as_ref(), id);
        let subject = format!("{}.{}", self.dead_letter_prefix(), letter.subject);
        self.publish_raw(subject, to_nats(&headers), letter.payload)
            .await
    }

    async fn redrive(&self, filter: &RedriveFilter) -> Result<RedriveReport, BrokerError> {
        self.ensure_streams().await?;
        let mut dead = self
            .jetstream
            .get_stream(&self.config.dead_letter_stream)
            .await
            .map_err(BrokerError::new)?;
        let state = dead.info().await.map_err(BrokerError::new)?.state.clone();
        let sequences = match filter.sequence {
            Some(sequence) => sequence..=sequence,
            None if state.messages == 0 => return Ok(RedriveReport::default()),
            None => state.first_sequence..=state.last_sequence,
        };
        let mut report = RedriveReport::default();
        // Whether each consumer named by a dead letter is being consumed (None: gone).
        let mut consumers: std::collections::HashMap<String, Option<bool>> = Default::default();
        for sequence in sequences {
            let message = match dead.get_raw_message(sequence).await {
                Ok(message) => message,
                // Deleted (redriven before) or never there.
                Err(e) if filter.sequence.is_none() => {
                    tracing::debug!(sequence, error = %e, "no dead letter at this sequence");
                    continue;
                }
                Err(e) => return Err(BrokerError(format!("dead letter {sequence}: {e}"))),
            };
            let mut headers = from_nats(Some(&message.headers));
            let Some(subject) = headers.get(ORIGINAL_SUBJECT).map(str::to_owned) else {
                continue;
            };
            // A handler's subject, wildcards included, selects what its consumer dead-lettered.
            if filter
                .subject
                .as_ref()
                .is_some_and(|pattern| !subject_matches(pattern, &subject))
            {
                continue;
            }
            let original_id = headers
                .get(ORIGINAL_ID)
                .or_else(|| headers.get(NATS_MESSAGE_ID.as_ref()))
                .unwrap_or("unknown")
                .to_owned();
            for name in DEAD_LETTER_HEADERS {
                headers.remove(name);
            }
            // Back to the consumer that dead-lettered it, and only to it: another consumer of
            // the subject had its own outcome already.
            let consumer = headers.get(CONSUMER).map(str::to_owned);
            headers.remove(CONSUMER);
            if let Some(consumer) = &consumer {
                let active = match consumers.get(consumer) {
                    Some(active) => *active,
                    None => {
                        let active = self.consumer_active(consumer).await?;
                        consumers.insert(consumer.clone(), active);
                        active
                    }
                };
                // Nobody would handle it: it stays a dead letter.
                let why = match active {
                    Some(true) => None,
                    Some(false) if filter.allow_idle => None,
                    Some(false) => Some(format!(
                        "its consumer `{consumer}` has no running instance (no pull request \
                         open on stream `{}`); start the service whose handler consumes \
                         `{subject}`, then redrive again, or pass --allow-idle to leave it waiting in \
                         that consumer (if that handler was removed or its subject changed, its \
                         old consumer is left on the broker: delete it)",
                        self.config.stream
                    )),
                    None => Some(format!(
                        "its consumer `{consumer}` is gone from stream `{}` (its handler was \
                         removed or its subject changed); start the service with that handler, \
                         then redrive again",
                        self.config.stream
                    )),
                };
                if let Some(why) = why {
                    report
                        .kept
                        .push(format!("dead letter {sequence} ({subject}) kept: {why}"));
                    continue;
                }
                headers.insert(REDRIVE_FOR, consumer.clone());
            }
            // A new id: the broker would drop the original one as a duplicate.
            let id = format!("{original_id}:redrive:{sequence}");
            headers.insert(NATS_MESSAGE_ID.as_ref(), id.clone());
            self.publish_raw(subject.clone(), to_nats(&headers), message.payload.to_vec())
                .await?;
            dead.delete_message(sequence)
                .await
                .map_err(|e| BrokerError(format!("dead letter {sequence}: {e}")))?;
            report.redriven.push(Redriven {
                dead_letter_sequence: sequence,
                subject,
                id,
                consumer,
            });
        }
        Ok(report)
    }

    async fn lag(&self, spec: &ConsumerSpec) -> Result<u64, BrokerError> {
        let stream = self
            .jetstream
            .get_stream(&self.config.stream)
            .await
            .map_err(BrokerError::new)?;
        let mut consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_consumer(&spec.durable)
            .await
            .map_err(BrokerError::new)?;
        Ok(consumer.info().await.map_err(BrokerError::new)?.num_pending)
    }

    async fn check(&self) -> Result<(), BrokerError> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BrokerError(format!("not connected to {}", self.config.url)));
        }
        self.client.flush().await.map_err(BrokerError::new)
    }
}

/// The broker's config of the durable consumer `spec`.
fn consumer_config(spec: &ConsumerSpec) -> pull::Config {
    // One delivery more than max_deliver: if the process stops while handling the last one,
    // the extra delivery dead-letters it instead of the broker dropping it silently.
    let max_deliver = spec.max_deliver.saturating_add(1);
    // The broker refuses a backoff list as long as max_deliver.
    let backoff: Vec<Duration> = spec
        .backoff
        .iter()
        .take(usize::try_from(max_deliver.saturating_sub(1)).unwrap_or(usize::MAX))
        .copied()
        .collect();
    pull::Config {
        durable_name: Some(spec.durable.clone()),
        filter_subject: spec.subject.clone(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        max_deliver: i64::try_from(max_deliver).unwrap_or(i64::MAX),
        max_ack_pending: i64::try_from(spec.max_in_flight).unwrap_or(i64::MAX),
        backoff,
        ..Default::default()
    }
}

/// A consumer's pull requests: at most one open at a time.
struct Pulls {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    stream: stream::Stream,
    /// The consumer's config, to create it again when it was deleted.
    config: pull::Config,
    /// Failed requests in a row.
    failures: u32,
    batch: Option<pull::Batch>,
    /// Messages the open request may still bring.
    left: usize,
    size: usize,
    stop: watch::Receiver<bool>,
}

impl Pulls {
    /// After a failed request: waits a growing delay (0.2 s doubling up to 5 s, so a broker
    /// that keeps failing is not asked in a tight loop), then creates the consumer again if it
    /// was deleted (create-or-update: no change when it exists).
    async fn recover(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let delay =
            Duration::from_millis(100u64 << self.failures.min(6)).min(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            Ok(_) = self.stop.wait_for(|stop| *stop) => return,
        }
        match self.stream.create_consumer(self.config.clone()).await {
            Ok(consumer) => self.consumer = consumer,
            Err(error) => tracing::warn!(
                %error,
                consumer = self.config.durable_name.as_deref().unwrap_or_default(),
                "cannot create the consumer again"
            ),
        }
    }

    /// Opens the next request, unless stopping (then `Ok(false)`, and none is open).
    async fn request(&mut self) -> Result<bool, BrokerError> {
        if *self.stop.borrow() {
            return Ok(false);
        }
        let batch = self
            .consumer
            .batch()
            .max_messages(self.size)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(BrokerError::new)?;
        self.batch = Some(batch);
        self.left = self.size;
        Ok(true)
    }
}

struct NatsDelivery {
    message: jetstream::Message,
    headers: Headers,
    delivered: u64,
    sequence: u64,
    pending: u64,
}

impl NatsDelivery {
    fn new(message: jetstream::Message) -> Result<Self, BrokerError> {
        let info = message.info().map_err(BrokerError::new)?;
        let (delivered, sequence, pending) = (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream_sequence,
            info.pending,
        );
        let mut headers = from_nats(message.headers.as_ref());
        // Which consumer got it: a dead letter names it (and takes it into its id).
        headers.insert(CONSUMER, info.consumer);
        Ok(Self {
            headers,
            message,
            delivered,
            sequence,
            pending,
        })
    }
}

#[async_trait]
impl Delivery for NatsDelivery {
    fn subject(&self) -> &str {
        self.message.subject.as_str()
    }
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn payload(&self) -> &[u8] {
        &self.message.payload
    }
    fn delivery_count(&self) -> u64 {
        self.delivered
    }
    fn sequence(&self) -> u64 {
        self.sequence
    }
    fn pending(&self) -> u64 {
        self.pending
    }
    async fn ack(&self) -> Result<(), BrokerError> {
        self.message.double_ack().await.map_err(BrokerError::new)
    }
    async fn nak(&self, delay: Duration) -> Result<(), BrokerError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(BrokerError::new)
    }
    async fn in_progress(&self) -> Result<(), BrokerError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(BrokerError::new)
    }
    async fn term(&self) -> Result<(), BrokerError> {
        self.message
            .double_ack_with(AckKind::Term)
            .await
            .map_err(BrokerError::new)
    }
}
