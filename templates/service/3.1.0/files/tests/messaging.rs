//! Messaging against the real NATS server in `messaging.url` (JetStream on; the local one by
//! default, `APP_MESSAGING__URL` to point elsewhere): poison messages, retries with growing
//! delays, duplicates, redrive (the `redrive` subcommand of the binary), draining on shutdown,
//! trace context across producer and consumer, and readiness while the broker is away. Every
//! test has its own stream and subjects, so they run in parallel.
//!
//! Managed by the platform (component `messaging`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use opentelemetry::trace::{TraceContextExt, TraceId};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use {{ crate_name }} as service;

use service::platform::idempotency::MemoryStore;
use service::platform::messaging::nats::{
    CONSUMER, DEAD_LETTER_REASON, DELIVERY_COUNT, ERROR, NatsBroker, ORIGINAL_SUBJECT,
};
use service::platform::messaging::{
    Broker, Consumers, HandlerError, MessageContext, MessageHandler, Messaging, MessagingConfig,
    Outcome, RedriveFilter,
};
use service::platform::testing::{CapturedLogs, TestApp, init_telemetry, json_body, layers};

/// One test's own stream, subjects and dead-letter stream, with quick retries.
struct Setup {
    tag: String,
    config: MessagingConfig,
}

impl Setup {
    fn new(max_deliver: u64, backoff_ms: &[u64], extra: &str) -> Self {
        let tag = format!("t{}", uuid::Uuid::new_v4().simple());
        let backoff: Vec<String> = backoff_ms.iter().map(u64::to_string).collect();
        let overrides = format!(
            "[messaging]\nstream = \"{tag}\"\nsubjects = [\"{tag}.>\"]\n\
             dead_letter_stream = \"{tag}-dead\"\nmax_deliver = {max_deliver}\n\
             backoff_ms = [{}]\nack_wait_secs = 2\nprogress_interval_secs = 1\n{extra}",
            backoff.join(", ")
        );
        let mut config = MessagingConfig::from_layers(&layers(&overrides)).expect("config");
        if let Ok(url) = std::env::var("APP_MESSAGING__URL") {
            config.url = url;
        }
        Self { tag, config }
    }

    fn subject(&self) -> String {
        format!("{}.happened", self.tag)
    }

    async fn messaging(&self) -> (Messaging, Arc<NatsBroker>) {
        init_telemetry();
        let broker = Arc::new(NatsBroker::connect(&self.config).await.expect("connect"));
        broker
            .check()
            .await
            .expect("the NATS server in messaging.url answers");
        let messaging = Messaging::new(
            broker.clone(),
            Arc::new(MemoryStore::new()),
            self.config.clone(),
            Duration::from_secs(3600),
        );
        (messaging, broker)
    }

    async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(self.config.url.as_str())
            .await
            .expect("connect");
        async_nats::jetstream::new(client)
    }

    /// The dead letters stored so far, oldest first.
    async fn dead_letters(&self) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let js = self.jetstream().await;
        let Ok(mut stream) = js.get_stream(&self.config.dead_letter_stream).await else {
            return Vec::new();
        };
        let state = stream.info().await.expect("info").state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(message) = stream.get_raw_message(seq).await {
                out.push(message);
            }
        }
        out
    }

    async fn stream_messages(&self) -> u64 {
        let js = self.jetstream().await;
        let mut stream = js.get_stream(&self.config.stream).await.expect("stream");
        stream.info().await.expect("info").state.messages
    }
}

/// A test's streams are its own (named by its tag): deleted when it ends, so runs leave nothing
/// on the broker.
impl Drop for Setup {
    fn drop(&mut self) {
        delete_streams(
            &self.config.url,
            [&self.config.stream, &self.config.dead_letter_stream],
        );
    }
}

/// Deletes the streams `names` (missing ones are fine; a broker that is away keeps them), on a
/// thread of its own: a test's runtime is shutting down, or blocked in its Drop.
fn delete_streams(url: &str, names: [&str; 2]) {
    let url = url.to_owned();
    let names = names.map(str::to_owned);
    let deleted = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let Ok(Ok(client)) =
                tokio::time::timeout(Duration::from_secs(2), async_nats::connect(url.as_str()))
                    .await
            else {
                return;
            };
            let jetstream = async_nats::jetstream::new(client);
            for name in &names {
                let _ = tokio::time::timeout(Duration::from_secs(2), jetstream.delete_stream(name))
                    .await;
            }
        });
    });
    let _ = deleted.join();
}

/// What the handler saw of one delivery.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    id: String,
    delivery: u64,
    payload: Value,
    /// The trace of the consumer's span.
    trace_id: TraceId,
    succeeded: bool,
}

/// A handler that answers from a script (the last answer repeats), optionally after working
/// for a while.
struct Scripted {
    subject: String,
    script: Mutex<VecDeque<Result<(), HandlerError>>>,
    work: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
    started: Arc<Mutex<u32>>,
}

impl Scripted {
    fn new(subject: &str, script: Vec<Result<(), HandlerError>>) -> Self {
        Self {
            subject: subject.to_owned(),
            script: Mutex::new(script.into()),
            work: Duration::ZERO,
            seen: Arc::default(),
            started: Arc::default(),
        }
    }
}

#[async_trait]
impl MessageHandler for Scripted {
    type Message = Value;

    fn subject(&self) -> &str {
        &self.subject
    }

    fn decode(&self, payload: &[u8]) -> Result<Value, HandlerError> {
        service::platform::messaging::json(payload)
    }

    async fn handle(&self, message: Value, context: &MessageContext) -> Result<(), HandlerError> {
        *self.started.lock().unwrap() += 1;
        tokio::time::sleep(self.work).await;
        let result = {
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script.front().cloned().unwrap_or(Ok(()))
            }
        };
        self.seen.lock().unwrap().push(Seen {
            at: Instant::now(),
            id: context.id.clone(),
            delivery: context.delivery_count,
            payload: message,
            trace_id: tracing::Span::current()
                .context()
                .span()
                .span_context()
                .trace_id(),
            succeeded: result.is_ok(),
        });
        result
    }
}

/// Publishes inside a producer span; returns the producer's trace id.
async fn publish(messaging: &Messaging, subject: &str, id: &str, event: Value) -> TraceId {
    let span = tracing::info_span!("producer");
    let trace_id = span.context().span().span_context().trace_id();
    messaging
        .publish_json(subject, id, &event)
        .instrument(span)
        .await
        .expect("publish");
    trace_id
}

async fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start(messaging: &Messaging) -> (watch::Sender<bool>, Consumers) {
    let (stop, stopped) = watch::channel(false);
    (stop, messaging.start(stopped))
}

#[tokio::test]
async fn a_poison_message_is_delivered_max_deliver_times_then_dead_lettered_once_with_its_trace() {
    let setup = Setup::new(3, &[50, 100, 200], "");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(&setup.subject(), vec![Err(HandlerError::transient("down"))]);
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    let trace_id = publish(&messaging, &setup.subject(), "poison-1", json!({"n": 1})).await;

    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = setup.dead_letters().await;
    }
    // Time for any delivery past max_deliver to show up.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "delivered max_deliver (3) times: {seen:?}");
    assert_eq!(
        seen.iter().map(|s| s.delivery).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        seen.iter().all(|s| s.trace_id == trace_id),
        "every delivery's span is in the producer's trace"
    );
    let letters = setup.dead_letters().await;
    assert_eq!(letters.len(), 1, "exactly one dead letter");
    let letter = &letters[0];
    let header = |name: &str| letter.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header(DEAD_LETTER_REASON).as_deref(), Some("max_deliver"));
    assert_eq!(header(DELIVERY_COUNT).as_deref(), Some("3"));
    assert_eq!(header(ORIGINAL_SUBJECT), Some(setup.subject()));
    assert!(header(ERROR).unwrap().contains("down"));
    let traceparent = header("traceparent").expect("the original traceparent is kept");
    assert!(
        traceparent.contains(&trace_id.to_string()),
        "{traceparent} carries the producer's trace {trace_id}"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&letter.payload).unwrap(),
        json!({"n": 1})
    );
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn permanent_and_undecodable_messages_are_dead_lettered_at_once() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, broker) = setup.messaging().await;
    let handler = Scripted::new(
        &setup.subject(),
        vec![Err(HandlerError::permanent("no such item"))],
    );
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "permanent-1", json!({"n": 1})).await;
    broker
        .publish(service::platform::messaging::OutgoingMessage {
            subject: setup.subject(),
            id: "garbage-1".into(),
            headers: Default::default(),
            payload: b"{not json".to_vec(),
        })
        .await
        .expect("publish");
    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} dead letters",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = setup.dead_letters().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the handler saw the valid one once"
    );
    let mut reasons: Vec<(String, String)> = letters
        .iter()
        .map(|l| {
            (
                l.headers
                    .get(DEAD_LETTER_REASON)
                    .unwrap()
                    .as_str()
                    .to_owned(),
                l.headers.get(DELIVERY_COUNT).unwrap().as_str().to_owned(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("permanent".to_owned(), "1".to_owned()),
            ("undecodable".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(setup.dead_letters().await.len(), 2);
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_growing_delays_then_processed_once() {
    let setup = Setup::new(5, &[300, 900, 2000], "");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(
        &setup.subject(),
        vec![
            Err(HandlerError::transient("timeout")),
            Err(HandlerError::transient("timeout")),
            Ok(()),
        ],
    );
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "retry-1", json!({"n": 1})).await;
    eventually("the third delivery", Duration::from_secs(20), || {
        seen.lock().unwrap().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|s| s.succeeded).count(),
        1,
        "processed once"
    );
    let first = seen[1].at - seen[0].at;
    let second = seen[2].at - seen[1].at;
    assert!(first >= Duration::from_millis(300), "first delay {first:?}");
    assert!(
        second >= Duration::from_millis(900),
        "second delay {second:?}"
    );
    assert!(second > first, "delays grow: {first:?} then {second:?}");
    assert!(setup.dead_letters().await.is_empty());
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn the_same_message_published_twice_is_processed_once() {
    // A 1 s duplicate window, so the second part can get past the broker's dedupe.
    let setup = Setup::new(5, &[50], "duplicate_window_secs = 1\n");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);

    // Twice at once: the broker keeps one.
    publish(&messaging, &setup.subject(), "order-42", json!({"n": 1})).await;
    publish(&messaging, &setup.subject(), "order-42", json!({"n": 1})).await;
    assert_eq!(
        setup.stream_messages().await,
        1,
        "the broker stored it once"
    );
    eventually("processing", Duration::from_secs(10), || {
        !seen.lock().unwrap().is_empty()
    })
    .await;

    // Again after the broker's window: stored, delivered, and skipped by the consumer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    publish(&messaging, &setup.subject(), "order-42", json!({"n": 1})).await;
    assert_eq!(
        setup.stream_messages().await,
        2,
        "the broker stored it again"
    );
    let js = setup.jetstream().await;
    let durable = messaging.runtime().spec(&setup.subject()).durable;
    let started = Instant::now();
    loop {
        let stream = js.get_stream(&setup.config.stream).await.unwrap();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&durable).await.unwrap();
        let info = consumer.info().await.unwrap();
        if info.ack_floor.stream_sequence == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "second copy not acked: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the handler ran once: {seen:?}");
    assert_eq!(seen[0].id, "order-42");
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// Log lines of the consumer carry the message's id and delivery (docs/platform.md): the
/// "message processed" line of each delivery names it, with its outcome.
#[tokio::test]
async fn the_processed_log_line_names_the_message_id_and_delivery() {
    let logs = CapturedLogs::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = service::platform::telemetry::subscriber(
        provider,
        logs.clone(),
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(
        &setup.subject(),
        vec![Err(HandlerError::transient("down")), Ok(())],
    );
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "log-7", json!({"n": 7})).await;
    eventually("the retry to succeed", Duration::from_secs(10), || {
        seen.lock().unwrap().iter().any(|s| s.succeeded)
    })
    .await;
    stop.send(true).unwrap();
    consumers.wait().await;
    let processed: Vec<(Value, Value, Value)> = logs
        .lines()
        .into_iter()
        .filter(|line| line["message"] == "message processed")
        .map(|line| {
            (
                line["message_id"].clone(),
                line["delivery"].clone(),
                line["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        processed,
        vec![
            (json!("log-7"), json!(1), json!("retry")),
            (json!("log-7"), json!(2), json!("ok")),
        ],
        "one line per delivery, naming the message"
    );
}

#[tokio::test]
async fn redrive_puts_a_dead_letter_back_and_it_is_processed() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, broker) = setup.messaging().await;
    let handler = Scripted::new(
        &setup.subject(),
        vec![Err(HandlerError::permanent("bug in the handler")), Ok(())],
    );
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    let trace_id = publish(&messaging, &setup.subject(), "redrive-1", json!({"n": 7})).await;
    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = setup.dead_letters().await;
    }
    // Another subject's filter matches nothing.
    let none = broker
        .redrive(&RedriveFilter {
            subject: Some(format!("{}.other", setup.tag)),
            ..Default::default()
        })
        .await
        .expect("redrive");
    assert!(none.redriven.is_empty() && none.kept.is_empty());

    // The binary's `redrive`, as an operator runs it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_{{ name }}"))
        .args(["redrive", "--subject", &setup.subject()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_MESSAGING__URL", &setup.config.url)
        .env("APP_MESSAGING__STREAM", &setup.config.stream)
        .env(
            "APP_MESSAGING__DEAD_LETTER_STREAM",
            &setup.config.dead_letter_stream,
        )
        .output()
        .expect("run the service binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redrive: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 dead letter(s) put back"), "{stdout}");
    eventually("the redriven message", Duration::from_secs(10), || {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen[1].succeeded);
    assert_eq!(seen[1].payload, json!({"n": 7}));
    assert_eq!(seen[1].trace_id, trace_id, "still in the producer's trace");
    assert!(
        setup.dead_letters().await.is_empty(),
        "removed from the dead letters"
    );
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// `<bin> redrive` with the test's streams, as an operator runs it.
fn redrive_command(setup: &Setup) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_{{ name }}"));
    command
        .arg("redrive")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_MESSAGING__URL", &setup.config.url)
        .env("APP_MESSAGING__STREAM", &setup.config.stream)
        .env(
            "APP_MESSAGING__DEAD_LETTER_STREAM",
            &setup.config.dead_letter_stream,
        );
    command
}

#[tokio::test]
async fn redrive_format_json_is_one_object_with_the_count_and_each_message() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(
        &setup.subject(),
        vec![Err(HandlerError::permanent("bug in the handler"))],
    );
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "json-1", json!({"n": 1})).await;
    publish(&messaging, &setup.subject(), "json-2", json!({"n": 2})).await;
    let started = Instant::now();
    while setup.dead_letters().await.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no two dead letters"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Put back while nothing consumes: they stay in the stream, out of the dead letters.
    stop.send(true).unwrap();
    consumers.wait().await;
    let sequences: Vec<u64> = setup
        .dead_letters()
        .await
        .iter()
        .map(|letter| letter.sequence)
        .collect();

    // Nothing pulls from their consumer now: put back only with --allow-idle.
    let out = redrive_command(&setup)
        .args(["--format", "json"])
        .output()
        .expect("run the service binary");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(!out.status.success(), "{report}");
    assert_eq!(report["redriven"], 0, "{report}");
    assert_eq!(setup.dead_letters().await.len(), 2, "both kept");
    let out = redrive_command(&setup)
        .args(["--format", "json", "--allow-idle"])
        .output()
        .expect("run the service binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redrive --format json: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("stdout is one JSON object");
    assert_eq!(report["redriven"], 2, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    let messages = report["messages"].as_array().expect("messages");
    assert_eq!(
        messages
            .iter()
            .map(|m| m["seq"].as_u64().expect("seq"))
            .collect::<Vec<_>>(),
        sequences,
        "{report}"
    );
    for message in messages {
        assert_eq!(message["subject"], setup.subject(), "{report}");
        assert!(
            message["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("json-") && id.contains(":redrive:")),
            "{report}"
        );
    }
    assert!(
        setup.dead_letters().await.is_empty(),
        "removed from the dead letters"
    );
}

#[test]
fn redrive_format_json_with_the_broker_unreachable_reports_the_error_as_json() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_{{ name }}"))
        .args(["redrive", "--format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_MESSAGING__URL", &url)
        .output()
        .expect("run the service binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("stdout is one JSON object");
    assert_eq!(report["redriven"], 0, "{report}");
    assert_eq!(report["messages"], json!([]), "{report}");
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{report}");
    let error = errors[0].as_str().expect("an error is a string");
    assert!(
        error.contains(&url) && error.contains("APP_MESSAGING__URL"),
        "{report}"
    );
}

#[tokio::test]
async fn each_consumer_logs_its_durable_name_stream_and_subject_once_at_startup() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    // This test's log lines (the runtime is single-threaded: the consumers log on this thread).
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(service::platform::telemetry::subscriber(
        opentelemetry_sdk::trace::SdkTracerProvider::builder().build(),
        logs.clone(),
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    ));
    let subjects = [
        format!("{}.created", setup.tag),
        format!("{}.deleted", setup.tag),
    ];
    for subject in &subjects {
        messaging.consume(Scripted::new(subject, vec![Ok(())]));
    }
    let (stop, consumers) = start(&messaging);
    let started = |logs: &CapturedLogs| -> Vec<Value> {
        logs.lines()
            .into_iter()
            .filter(|line| line["message"] == "consumer started")
            .collect()
    };
    eventually(
        "both consumers' startup lines",
        Duration::from_secs(10),
        || started(&logs).len() >= 2,
    )
    .await;
    // Time for a second line of either to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = started(&logs);
    assert_eq!(lines.len(), 2, "one line per consumer: {lines:?}");
    for subject in &subjects {
        let line = lines
            .iter()
            .find(|line| line["subject"] == subject.as_str())
            .unwrap_or_else(|| panic!("a startup line for {subject}: {lines:?}"));
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["stream"], setup.tag.as_str(), "{line}");
        let durable = format!("{}-{}", setup.tag, subject.replace('.', "-"));
        assert_eq!(line["consumer"], durable.as_str(), "{line}");
    }
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn on_shutdown_in_flight_messages_finish_and_are_acked_and_no_new_one_is_taken() {
    let setup = Setup::new(5, &[50], "max_in_flight = 4\n");
    let (messaging, _) = setup.messaging().await;
    let mut handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    handler.work = Duration::from_millis(1500);
    let seen = handler.seen.clone();
    let started = handler.started.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    for n in 0..3 {
        publish(
            &messaging,
            &setup.subject(),
            &format!("drain-{n}"),
            json!({"n": n}),
        )
        .await;
    }
    eventually("three handlers at work", Duration::from_secs(10), || {
        *started.lock().unwrap() == 3
    })
    .await;
    assert!(seen.lock().unwrap().is_empty(), "none finished yet");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumers.wait())
        .await
        .expect("drained within the grace");
    assert_eq!(seen.lock().unwrap().len(), 3, "all three finished");
    publish(&messaging, &setup.subject(), "after", json!({"n": 9})).await;
    let js = setup.jetstream().await;
    let stream = js.get_stream(&setup.config.stream).await.unwrap();
    let durable = messaging.runtime().spec(&setup.subject()).durable;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&durable).await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(
        info.ack_floor.stream_sequence, 3,
        "the three were acked: {info:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "nothing taken after shutdown"
    );
}

/// Counts its effects; the first delivery it sees never finishes (the process is killed
/// mid-handler) when `hang_first` is set.
struct Effect {
    subject: String,
    hang_first: bool,
    calls: Arc<AtomicU32>,
    effects: Arc<AtomicU32>,
    deliveries: Arc<Mutex<Vec<u64>>>,
}

impl Effect {
    fn new(subject: &str, hang_first: bool, effects: &Arc<AtomicU32>) -> Self {
        Self {
            subject: subject.to_owned(),
            hang_first,
            calls: Arc::default(),
            effects: effects.clone(),
            deliveries: Arc::default(),
        }
    }
}

#[async_trait]
impl MessageHandler for Effect {
    type Message = Value;

    fn subject(&self) -> &str {
        &self.subject
    }

    fn decode(&self, payload: &[u8]) -> Result<Value, HandlerError> {
        service::platform::messaging::json(payload)
    }

    async fn handle(&self, _: Value, context: &MessageContext) -> Result<(), HandlerError> {
        self.deliveries.lock().unwrap().push(context.delivery_count);
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 && self.hang_first {
            std::future::pending::<()>().await;
        }
        self.effects.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Starts `handler` in a fresh "process" (its own connection and memory store), waits until it
/// is inside its first handler call, then kills it: the tasks are aborted mid-handler (no ack,
/// no nak) and the connection closes.
async fn run_and_kill_mid_handler(setup: &Setup, handler: Effect, id: &str) {
    let calls = handler.calls.clone();
    let (messaging, broker) = setup.messaging().await;
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), id, json!({"id": id})).await;
    eventually("the handler to start", Duration::from_secs(10), || {
        calls.load(Ordering::SeqCst) == 1
    })
    .await;
    drop(consumers);
    drop((messaging, broker, stop));
}

#[tokio::test]
async fn a_consumer_killed_mid_handler_gets_the_message_again_and_the_effect_happens_once() {
    let setup = Setup::new(5, &[50], "");
    let effects = Arc::new(AtomicU32::new(0));
    run_and_kill_mid_handler(
        &setup,
        Effect::new(&setup.subject(), true, &effects),
        "kill-1",
    )
    .await;
    assert_eq!(effects.load(Ordering::SeqCst), 0);

    // The next process: the broker delivers the message again after ack_wait (2 s).
    let (messaging, _broker) = setup.messaging().await;
    let handler = Effect::new(&setup.subject(), false, &effects);
    let deliveries = handler.deliveries.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    eventually("the redelivery", Duration::from_secs(20), || {
        effects.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(effects.load(Ordering::SeqCst), 1, "one effect");
    let deliveries = deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert!(deliveries[0] >= 2, "a redelivery: {deliveries:?}");
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn a_consumer_killed_during_the_last_delivery_dead_letters_the_message_on_the_next() {
    let setup = Setup::new(1, &[50], "");
    let effects = Arc::new(AtomicU32::new(0));
    run_and_kill_mid_handler(
        &setup,
        Effect::new(&setup.subject(), true, &effects),
        "last-1",
    )
    .await;

    let (messaging, _broker) = setup.messaging().await;
    let handler = Effect::new(&setup.subject(), false, &effects);
    let calls = handler.calls.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = setup.dead_letters().await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "not handled again past max_deliver"
    );
    assert_eq!(
        letters[0]
            .headers
            .get(DEAD_LETTER_REASON)
            .map(|v| v.as_str()),
        Some("max_deliver")
    );
    assert_eq!(letters.len(), 1);
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[test]
fn redrive_with_the_broker_unreachable_fails_naming_the_url_and_its_key() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_{{ name }}"))
        .arg("redrive")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_MESSAGING__URL", &url)
        .output()
        .expect("run the service binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("APP_MESSAGING__URL"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing redriven");
}

/// A free local port with nothing listening on it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    let status = response.status();
    (status, json_body(response).await)
}

/// Kills the NATS server it started when dropped.
struct NatsServer(std::process::Child);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server(port: u16, dir: &std::path::Path) -> NatsServer {
    let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
    let child = std::process::Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{binary}` (set NATS_SERVER to its path): {e}"));
    NatsServer(child)
}

#[tokio::test]
async fn readyz_is_503_while_the_broker_is_unreachable_and_recovers_when_it_returns() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let app = TestApp::build(
        layers("").set("messaging.url", &url),
        |builder| builder,
        |_| Ok(axum::Router::new()),
    )
    .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["broker"], "unavailable");
    assert_eq!(body["checks"]["idempotency_store"], "ok");

    let dir = tempfile::tempdir().unwrap();
    let server = nats_server(port, dir.path());
    let started = Instant::now();
    loop {
        let (status, body) = readyz(&app).await;
        if status == StatusCode::OK {
            assert_eq!(body["checks"]["broker"], "ok");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    let started = Instant::now();
    loop {
        let (status, body) = readyz(&app).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["checks"]["broker"], "unavailable");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn invalid_messaging_config_names_the_key_and_its_env_var() {
    let error = MessagingConfig::from_layers(&layers("[messaging]\nmax_deliver = 0\n"))
        .expect_err("max_deliver 0 is refused");
    let text = error.to_string();
    assert!(text.contains("messaging.max_deliver"), "{text}");
    assert!(text.contains("APP_MESSAGING__MAX_DELIVER"), "{text}");
    let error = MessagingConfig::from_layers(&layers(
        "[messaging]\nack_wait_secs = 5\nprogress_interval_secs = 5\n",
    ))
    .expect_err("progress acks must come before the ack timeout");
    assert!(
        error
            .to_string()
            .contains("messaging.progress_interval_secs")
    );
}

/// A handler that panics on the first delivery of every message whose payload says so.
struct Panicky {
    subject: String,
    handled: Arc<Mutex<Vec<(String, u64)>>>,
}

#[async_trait]
impl MessageHandler for Panicky {
    type Message = Value;

    fn subject(&self) -> &str {
        &self.subject
    }

    fn decode(&self, payload: &[u8]) -> Result<Value, HandlerError> {
        service::platform::messaging::json(payload)
    }

    async fn handle(&self, message: Value, context: &MessageContext) -> Result<(), HandlerError> {
        if message["panic"] == json!(true) && context.delivery_count == 1 {
            panic!("handler bug on {}", context.id);
        }
        self.handled
            .lock()
            .unwrap()
            .push((context.id.clone(), context.delivery_count));
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_is_a_transient_failure_and_the_consumer_keeps_running() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let handled = Arc::new(Mutex::new(Vec::new()));
    messaging.consume(Panicky {
        subject: setup.subject(),
        handled: handled.clone(),
    });
    let (stop, consumers) = start(&messaging);
    publish(
        &messaging,
        &setup.subject(),
        "boom-1",
        json!({"panic": true}),
    )
    .await;
    eventually(
        "the message that panicked to be retried and processed",
        Duration::from_secs(15),
        || handled.lock().unwrap().iter().any(|(id, _)| id == "boom-1"),
    )
    .await;
    assert_eq!(
        handled.lock().unwrap().clone(),
        [("boom-1".to_owned(), 2)],
        "the panic counted as a failed delivery; delivery 2 succeeded"
    );
    publish(
        &messaging,
        &setup.subject(),
        "after-1",
        json!({"panic": false}),
    )
    .await;
    eventually(
        "a message published after the panic to be processed",
        Duration::from_secs(10),
        || {
            handled
                .lock()
                .unwrap()
                .iter()
                .any(|(id, _)| id == "after-1")
        },
    )
    .await;
    assert!(
        setup.dead_letters().await.is_empty(),
        "nothing dead-lettered"
    );
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// A handler whose `subject` panics once when armed: its consumer task dies at once.
struct DiesAtStart {
    subject: String,
    armed: Arc<std::sync::atomic::AtomicBool>,
    handled: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl MessageHandler for DiesAtStart {
    type Message = Value;

    fn subject(&self) -> &str {
        assert!(
            !self.armed.swap(false, Ordering::SeqCst),
            "the consumer task dies"
        );
        &self.subject
    }

    fn decode(&self, payload: &[u8]) -> Result<Value, HandlerError> {
        service::platform::messaging::json(payload)
    }

    async fn handle(&self, _: Value, context: &MessageContext) -> Result<(), HandlerError> {
        self.handled.lock().unwrap().push(context.id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_consumer_task_that_dies_is_restarted() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let handled = Arc::new(Mutex::new(Vec::new()));
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    messaging.consume(DiesAtStart {
        subject: setup.subject(),
        armed: armed.clone(),
        handled: handled.clone(),
    });
    armed.store(true, Ordering::SeqCst);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "later-1", json!({})).await;
    eventually(
        "the restarted consumer to process the message",
        Duration::from_secs(15),
        || handled.lock().unwrap().iter().any(|id| id == "later-1"),
    )
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumers.wait())
        .await
        .expect("the supervised consumer stops on shutdown");
}

/// Runs one handler until it processed one message, then stops it.
async fn process_one(setup: &Setup, id: &str) -> Messaging {
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), id, json!({})).await;
    eventually(
        "the message to be processed",
        Duration::from_secs(10),
        || seen.lock().unwrap().iter().any(|s| s.id == id),
    )
    .await;
    stop.send(true).unwrap();
    consumers.wait().await;
    messaging
}

#[tokio::test]
async fn a_changed_consumer_and_stream_config_is_applied_on_the_next_start() {
    let setup = Setup::new(2, &[50], "");
    process_one(&setup, "before-1").await;

    let mut changed = Setup {
        tag: setup.tag.clone(),
        config: setup.config.clone(),
    };
    changed.config.max_deliver = 4;
    changed.config.ack_wait_secs = 5;
    changed.config.max_in_flight = 7;
    changed.config.duplicate_window_secs = 77;
    let messaging = process_one(&changed, "after-1").await;

    let durable = messaging.runtime().spec(&setup.subject()).durable;
    let js = setup.jetstream().await;
    let mut stream = js.get_stream(&setup.config.stream).await.expect("stream");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&durable).await.expect("consumer");
    let config = consumer.info().await.expect("consumer info").config.clone();
    assert_eq!(
        config.max_deliver, 5,
        "max_deliver + 1 (the extra delivery)"
    );
    assert_eq!(config.ack_wait, Duration::from_secs(5));
    assert_eq!(config.max_ack_pending, 7);
    let stream_config = stream.info().await.expect("stream info").config.clone();
    assert_eq!(stream_config.duplicate_window, Duration::from_secs(77));
}

/// An idempotency store that fails while `down` is true.
struct FlakyStore {
    inner: MemoryStore,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyStore {
    fn fail(&self) -> Result<(), service::platform::idempotency::StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(service::platform::idempotency::StoreError(
                "connection refused".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl service::platform::idempotency::IdempotencyStore for FlakyStore {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Result<service::platform::idempotency::Claim, service::platform::idempotency::StoreError>
    {
        self.fail()?;
        self.inner.claim(key, fingerprint, in_flight_ttl).await
    }
    async fn complete(
        &self,
        key: &str,
        token: &service::platform::idempotency::ClaimToken,
        response: &service::platform::idempotency::StoredResponse,
        ttl: Duration,
    ) -> Result<(), service::platform::idempotency::StoreError> {
        self.fail()?;
        self.inner.complete(key, token, response, ttl).await
    }
    async fn release(
        &self,
        key: &str,
        token: &service::platform::idempotency::ClaimToken,
    ) -> Result<(), service::platform::idempotency::StoreError> {
        self.fail()?;
        self.inner.release(key, token).await
    }
    async fn check(&self) -> Result<(), service::platform::idempotency::StoreError> {
        self.fail()
    }
}

#[tokio::test]
async fn an_idempotency_store_outage_does_not_use_up_deliveries() {
    let setup = Setup::new(2, &[50], "");
    init_telemetry();
    let broker = Arc::new(NatsBroker::connect(&setup.config).await.expect("connect"));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let messaging = Messaging::new(
        broker,
        Arc::new(FlakyStore {
            inner: MemoryStore::new(),
            down: down.clone(),
        }),
        setup.config.clone(),
        Duration::from_secs(3600),
    );
    let handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "outage-1", json!({})).await;
    // Longer than max_deliver (2) deliveries with 50 ms between them, and than ack_wait (2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        setup.dead_letters().await.is_empty(),
        "not dead-lettered while the store is down"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "not handled without a claim"
    );
    down.store(false, Ordering::SeqCst);
    eventually(
        "the message to be processed once the store is back",
        Duration::from_secs(10),
        || !seen.lock().unwrap().is_empty(),
    )
    .await;
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(setup.dead_letters().await.is_empty());
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// A delivery made up by the test: records what became of it.
struct Fake {
    subject: String,
    headers: service::platform::messaging::Headers,
    payload: Vec<u8>,
    count: u64,
    acked: std::sync::atomic::AtomicBool,
    termed: std::sync::atomic::AtomicBool,
    naked: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl service::platform::messaging::broker::Delivery for Fake {
    fn subject(&self) -> &str {
        &self.subject
    }
    fn headers(&self) -> &service::platform::messaging::Headers {
        &self.headers
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn delivery_count(&self) -> u64 {
        self.count
    }
    fn sequence(&self) -> u64 {
        1
    }
    fn pending(&self) -> u64 {
        0
    }
    async fn ack(&self) -> Result<(), service::platform::messaging::BrokerError> {
        self.acked.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn nak(&self, _: Duration) -> Result<(), service::platform::messaging::BrokerError> {
        self.naked.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn in_progress(&self) -> Result<(), service::platform::messaging::BrokerError> {
        Ok(())
    }
    async fn term(&self) -> Result<(), service::platform::messaging::BrokerError> {
        self.termed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_processed_message_whose_ack_was_lost_is_acked_not_dead_lettered_past_max_deliver() {
    use service::platform::idempotency::{Claim, StoredResponse};
    let setup = Setup::new(2, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    let runtime = messaging.runtime().clone();
    let spec = runtime.spec(&setup.subject());
    // Processed and recorded on its last allowed delivery; the ack was lost.
    let key = format!("message:{}:lost-ack-1", spec.durable);
    let Claim::Claimed(token) = runtime
        .store
        .claim(&key, "message", Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("claimed")
    };
    let done = StoredResponse {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    };
    runtime
        .store
        .complete(&key, &token, &done, Duration::from_secs(60))
        .await
        .unwrap();
    let mut headers = service::platform::messaging::Headers::default();
    headers.insert("Nats-Msg-Id", "lost-ack-1");
    let delivery = Fake {
        subject: setup.subject(),
        headers,
        payload: b"{}".to_vec(),
        count: 3,
        acked: Default::default(),
        termed: Default::default(),
        naked: Default::default(),
    };
    let outcome =
        service::platform::messaging::consumer::process(&handler, &runtime, &spec, &delivery).await;
    assert_eq!(outcome, Outcome::Duplicate);
    assert!(delivery.acked.load(Ordering::SeqCst));
    assert!(!delivery.termed.load(Ordering::SeqCst));
    assert!(setup.dead_letters().await.is_empty());
    assert!(handler.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_consumer_is_recreated() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "before-delete", json!({})).await;
    eventually("the first message", Duration::from_secs(10), || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    let durable = messaging.runtime().spec(&setup.subject()).durable;
    let js = setup.jetstream().await;
    let stream = js.get_stream(&setup.config.stream).await.expect("stream");
    stream.delete_consumer(&durable).await.expect("delete");
    publish(&messaging, &setup.subject(), "after-delete", json!({})).await;
    eventually(
        "the message published after the consumer was deleted",
        Duration::from_secs(15),
        || seen.lock().unwrap().iter().any(|s| s.id == "after-delete"),
    )
    .await;
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn dead_letter_and_redelivery_counters_are_exported_at_zero_once_a_consumer_starts() {
    // `increase()` of a series first seen at 1 is 0: the alert on the first dead letter fires
    // only when the series was already there at 0.
    let handle = service::platform::metrics::install();
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let subject = setup.subject();
    messaging.consume(Scripted::new(&subject, vec![Ok(())]));
    let (stop, consumers) = start(&messaging);
    let series = |text: &str, name: &str, labels: &[String]| -> Option<String> {
        text.lines()
            .find(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{'))
                    && labels.iter().all(|label| line.contains(label.as_str()))
            })
            .map(str::to_owned)
    };
    let subject_label = format!("subject=\"{subject}\"");
    eventually("the consumer's counters", Duration::from_secs(10), || {
        series(
            &handle.render(),
            "messaging_redeliveries_total",
            std::slice::from_ref(&subject_label),
        )
        .is_some()
    })
    .await;
    let text = handle.render();
    for reason in ["permanent", "undecodable", "max_deliver"] {
        let labels = [subject_label.clone(), format!("reason=\"{reason}\"")];
        let line = series(&text, "messaging_dead_letters_total", &labels)
            .unwrap_or_else(|| panic!("dead letters {reason} of {subject} exported:\n{text}"));
        assert!(line.ends_with(" 0"), "{line}");
    }
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn durable_names_of_different_subjects_never_collide() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let runtime = messaging.runtime();
    let tag = &setup.tag;
    let subjects = [
        format!("{tag}.a.b"),
        format!("{tag}.a-b"),
        format!("{tag}.a_b"),
        format!("{tag}.x.*"),
        format!("{tag}.x.S"),
        format!("{tag}.x._S"),
        format!("{tag}.x.>"),
        format!("{tag}.x.R"),
    ];
    let durables: std::collections::HashSet<String> =
        subjects.iter().map(|s| runtime.spec(s).durable).collect();
    assert_eq!(durables.len(), subjects.len(), "{durables:?}");
    for durable in &durables {
        assert!(
            durable
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{durable} is a valid durable name"
        );
    }
}

#[tokio::test]
#[should_panic(expected = "already has a handler")]
async fn two_handlers_on_the_same_subject_are_refused() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    messaging.consume(Scripted::new(&setup.subject(), vec![Ok(())]));
    messaging.consume(Scripted::new(&setup.subject(), vec![Ok(())]));
}

#[tokio::test]
async fn two_consumers_dead_lettering_the_same_message_store_two_dead_letters() {
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    // Two durable consumers that both get the message: its subject, and a wildcard over it.
    let wildcard = format!("{}.*", setup.tag);
    for subject in [setup.subject(), wildcard.clone()] {
        messaging.consume(Scripted::new(
            &subject,
            vec![Err(HandlerError::permanent("no such item"))],
        ));
    }
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "both-1", json!({"n": 1})).await;
    let started = Instant::now();
    let mut letters = Vec::new();
    while letters.len() < 2 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = setup.dead_letters().await;
    }
    let mut consumers_seen: Vec<String> = letters
        .iter()
        .map(|l| {
            l.headers
                .get(CONSUMER)
                .expect("the dead letter names its consumer")
                .as_str()
                .to_owned()
        })
        .collect();
    consumers_seen.sort();
    let durable = |subject: &str| messaging.runtime().spec(subject).durable;
    let mut expected = vec![durable(&setup.subject()), durable(&wildcard)];
    expected.sort();
    assert_eq!(consumers_seen, expected, "one dead letter per consumer");
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn a_long_error_is_cut_to_one_kib_in_the_dead_letter() {
    use service::platform::messaging::broker::{DeadLetter, DeadLetterReason};
    let setup = Setup::new(5, &[50], "");
    let (_, broker) = setup.messaging().await;
    // Multi-byte characters: the cut must fall on a character boundary.
    let error = format!("failed: {}\nsecond line", "é".repeat(5000));
    broker
        .dead_letter(DeadLetter {
            id: "long-error-1".into(),
            subject: setup.subject(),
            sequence: 1,
            headers: Default::default(),
            payload: b"{}".to_vec(),
            reason: DeadLetterReason::Permanent,
            delivery_count: 1,
            error,
        })
        .await
        .expect("dead letter stored");
    let letters = setup.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let stored = letters[0]
        .headers
        .get(ERROR)
        .expect("error header")
        .as_str();
    assert!(stored.len() <= 1024, "{} bytes", stored.len());
    assert!(stored.starts_with("failed: é"), "{stored}");
    assert!(stored.ends_with('…'), "marked as cut: {stored}");
}

#[tokio::test]
async fn redrive_subject_takes_the_handlers_wildcard_subject() {
    use service::platform::messaging::broker::{DeadLetter, DeadLetterReason};
    let setup = Setup::new(5, &[50], "");
    let (_, broker) = setup.messaging().await;
    let tag = &setup.tag;
    for (n, subject) in [
        format!("{tag}.orders.created"),
        format!("{tag}.orders.paid"),
        format!("{tag}.items.created"),
    ]
    .into_iter()
    .enumerate()
    {
        broker
            .dead_letter(DeadLetter {
                id: format!("wild-{n}"),
                subject,
                sequence: 1,
                headers: Default::default(),
                payload: b"{}".to_vec(),
                reason: DeadLetterReason::Permanent,
                delivery_count: 1,
                error: "no".into(),
            })
            .await
            .expect("dead letter");
    }
    // The alert's label is the handler's subject, wildcards included: `redrive --subject` takes it.
    let out = redrive_command(&setup)
        .args(["--subject", &format!("{tag}.orders.*"), "--format", "json"])
        .output()
        .expect("run the service binary");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(out.status.success(), "{report}");
    let mut subjects: Vec<&str> = report["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        [
            format!("{tag}.orders.created"),
            format!("{tag}.orders.paid")
        ]
    );
    let left = broker
        .redrive(&RedriveFilter {
            subject: Some(format!("{tag}.>")),
            ..Default::default()
        })
        .await
        .expect("redrive")
        .redriven;
    assert_eq!(left.len(), 1, "`>` matches the rest: {left:?}");
    assert_eq!(left[0].subject, format!("{tag}.items.created"));
}

/// A dead letter goes back to the consumer that dead-lettered it, and only to it: another
/// consumer whose subject also matches already handled the message once and must not again.
/// The redriven message keeps its original id (the handler's idempotency key).
#[tokio::test]
async fn a_redriven_message_is_handled_again_only_by_the_consumer_that_dead_lettered_it() {
    let logs = CapturedLogs::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = service::platform::telemetry::subscriber(
        provider,
        logs.clone(),
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let setup = Setup::new(5, &[50], "");
    let (messaging, broker) = setup.messaging().await;
    let failing = Scripted::new(
        &setup.subject(),
        vec![Err(HandlerError::permanent("bug in the handler")), Ok(())],
    );
    let failing_seen = failing.seen.clone();
    let other = Scripted::new(&format!("{}.*", setup.tag), vec![Ok(())]);
    let other_seen = other.seen.clone();
    messaging.consume(failing);
    messaging.consume(other);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "own-1", json!({"n": 1})).await;
    let started = Instant::now();
    while setup.dead_letters().await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("the other consumer's run", Duration::from_secs(10), || {
        other_seen.lock().unwrap().len() == 1
    })
    .await;
    let redriven = broker
        .redrive(&RedriveFilter::default())
        .await
        .expect("redrive")
        .redriven;
    assert_eq!(redriven.len(), 1, "{redriven:?}");
    let durable = messaging.runtime().spec(&setup.subject()).durable;
    assert_eq!(redriven[0].consumer.as_deref(), Some(durable.as_str()));
    eventually("the redriven message", Duration::from_secs(10), || {
        failing_seen.lock().unwrap().len() == 2
    })
    .await;
    // The other consumer gets the redriven message too, and skips it: not a duplicate of what
    // it processed (its record could have expired), but a message meant for another consumer.
    let outcomes = || -> Vec<Value> {
        logs.lines()
            .into_iter()
            .filter(|line| line["message"] == "message processed" && line["message_id"] == "own-1")
            .map(|line| line["outcome"].clone())
            .collect()
    };
    // Each run logs its outcome after its handler returned (and its completion was stored): wait
    // for all four before comparing, or the redriven run's `ok` may not be logged yet.
    eventually(
        "the redriven message's outcomes",
        Duration::from_secs(10),
        || outcomes().len() >= 4,
    )
    .await;
    let mut seen_outcomes = outcomes();
    seen_outcomes.sort_by_key(|outcome| outcome.to_string());
    assert_eq!(
        seen_outcomes,
        [
            json!("dead_letter"),
            json!("ok"),
            json!("ok"),
            json!("skipped")
        ],
        "first: one dead letter, one ok; redriven: one ok, one skipped"
    );
    let failing_seen = failing_seen.lock().unwrap().clone();
    assert!(failing_seen[1].succeeded);
    assert_eq!(
        failing_seen[1].id, "own-1",
        "the original id, not the redrive's"
    );
    assert_eq!(
        other_seen.lock().unwrap().len(),
        1,
        "the consumer that had processed it did not run again"
    );
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// A dead letter whose consumer is gone (its handler removed, or its subject changed), or whose
/// consumer no running service pulls from, would be handled by nobody: redrive keeps it, says
/// why, and fails; the others still go back.
#[tokio::test]
async fn a_dead_letter_whose_consumer_is_gone_or_idle_is_kept_and_redrive_fails_naming_it() {
    use service::platform::messaging::broker::{DeadLetter, DeadLetterReason};
    let setup = Setup::new(5, &[50], "");
    let (_, broker) = setup.messaging().await;
    for (id, consumer) in [
        ("gone-1", Some("no-such-consumer")),
        ("idle-1", Some("idle-one")),
        ("free-1", None),
    ] {
        let mut headers = service::platform::messaging::Headers::default();
        if let Some(consumer) = consumer {
            headers.insert(CONSUMER, consumer);
        }
        broker
            .dead_letter(DeadLetter {
                id: id.into(),
                subject: setup.subject(),
                sequence: 1,
                headers,
                payload: b"{}".to_vec(),
                reason: DeadLetterReason::Permanent,
                delivery_count: 1,
                error: "no".into(),
            })
            .await
            .expect("dead letter");
    }
    // `idle-one` exists on the broker (an old handler's consumer), but nothing pulls from it.
    let stream = setup
        .jetstream()
        .await
        .get_stream(&setup.config.stream)
        .await
        .expect("stream");
    let _: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("idle-one".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let out = redrive_command(&setup)
        .args(["--format", "json"])
        .output()
        .expect("run the service binary");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(!out.status.success(), "{report}");
    assert_eq!(report["redriven"], 1, "{report}");
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{report}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`no-such-consumer` is gone") && e.contains("kept")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`idle-one` has no running instance") && e.contains("kept")),
        "{errors:?}"
    );
    let mut left: Vec<String> = setup
        .dead_letters()
        .await
        .iter()
        .map(|letter| letter.headers.get(CONSUMER).unwrap().as_str().to_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["idle-one", "no-such-consumer"],
        "both stay dead letters"
    );
    // --allow-idle puts back the one whose consumer exists: it waits in that consumer.
    let out = redrive_command(&setup)
        .args(["--format", "json", "--allow-idle"])
        .output()
        .expect("run the service binary");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(!out.status.success(), "the gone one still fails: {report}");
    assert_eq!(report["redriven"], 1, "{report}");
    assert_eq!(report["messages"][0]["consumer"], "idle-one", "{report}");
    assert_eq!(setup.dead_letters().await.len(), 1);
}

/// A consumer that does not take messages (here the broker refuses it: its subject is outside
/// the stream) makes `/readyz` answer 503 naming it; one that runs is `ok`.
#[tokio::test]
async fn readyz_is_503_naming_a_consumer_that_is_down() {
    use axum::extract::State;
    use service::platform::http::health::{Health, readyz};
    let setup = Setup::new(5, &[50], "");
    let (messaging, broker) = setup.messaging().await;
    let good = setup.subject();
    let outside = format!("elsewhere-{}.happened", setup.tag);
    messaging.consume(Scripted::new(&good, vec![Ok(())]));
    messaging.consume(Scripted::new(&outside, vec![Ok(())]));
    let health = Health::new(Arc::new(MemoryStore::new()))
        .with_broker(broker)
        .with_consumers(messaging.consumer_states());
    let (stop, consumers) = start(&messaging);
    let durable = |subject: &str| messaging.runtime().spec(subject).durable;
    let started = Instant::now();
    let (status, body) = loop {
        let response = readyz(State(health.clone())).await;
        let status = response.status();
        let body = json_body(response).await;
        if body["checks"][format!("consumer:{}", durable(&good))] == "ok"
            && body["checks"][format!("consumer:{}", durable(&outside))] == "down"
        {
            break (status, body);
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "consumers not reported: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["broker"], "ok", "{body}");
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// The real broker, except that storing a dead letter fails the first `failures` times.
struct DeadLettersFail {
    inner: Arc<NatsBroker>,
    failures: AtomicU32,
    attempts: AtomicU32,
}

#[async_trait]
impl Broker for DeadLettersFail {
    async fn publish(
        &self,
        message: service::platform::messaging::OutgoingMessage,
    ) -> Result<(), service::platform::messaging::BrokerError> {
        self.inner.publish(message).await
    }
    async fn consume(
        &self,
        spec: &service::platform::messaging::broker::ConsumerSpec,
        stop: watch::Receiver<bool>,
    ) -> Result<
        service::platform::messaging::broker::Deliveries,
        service::platform::messaging::BrokerError,
    > {
        self.inner.consume(spec, stop).await
    }
    async fn dead_letter(
        &self,
        letter: service::platform::messaging::broker::DeadLetter,
    ) -> Result<(), service::platform::messaging::BrokerError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(service::platform::messaging::BrokerError(
                "stream unavailable".into(),
            ));
        }
        self.inner.dead_letter(letter).await
    }
    async fn redrive(
        &self,
        filter: &RedriveFilter,
    ) -> Result<
        service::platform::messaging::RedriveReport,
        service::platform::messaging::BrokerError,
    > {
        self.inner.redrive(filter).await
    }
    async fn lag(
        &self,
        spec: &service::platform::messaging::broker::ConsumerSpec,
    ) -> Result<u64, service::platform::messaging::BrokerError> {
        self.inner.lag(spec).await
    }
    async fn check(&self) -> Result<(), service::platform::messaging::BrokerError> {
        self.inner.check().await
    }
}

/// Dead-lettering a permanent failure while the dead-letter stream fails, with `failures`
/// failures: what became of the delivery (`count`-th), and how often it was tried.
async fn dead_letter_while_failing(
    setup: &Setup,
    count: u64,
    failures: u32,
) -> (Fake, Outcome, u32) {
    let (messaging, inner) = setup.messaging().await;
    let broker = Arc::new(DeadLettersFail {
        inner,
        failures: AtomicU32::new(failures),
        attempts: AtomicU32::new(0),
    });
    let mut runtime = messaging.runtime().clone();
    runtime.broker = broker.clone();
    let spec = runtime.spec(&setup.subject());
    let handler = Scripted::new(&setup.subject(), vec![Err(HandlerError::permanent("no"))]);
    let mut headers = service::platform::messaging::Headers::default();
    headers.insert("Nats-Msg-Id", format!("dl-fail-{count}"));
    let delivery = Fake {
        subject: setup.subject(),
        headers,
        payload: b"{}".to_vec(),
        count,
        acked: Default::default(),
        termed: Default::default(),
        naked: Default::default(),
    };
    let outcome =
        service::platform::messaging::consumer::process(&handler, &runtime, &spec, &delivery).await;
    let attempts = broker.attempts.load(Ordering::SeqCst);
    (delivery, outcome, attempts)
}

/// From the `max_deliver`-th delivery on, giving the message back would lose its error (the
/// next delivery is the one the broker allows for a crash) or the message itself (after that
/// one): the dead letter is tried until it is stored.
#[tokio::test]
async fn on_the_last_deliveries_a_dead_letter_is_tried_until_it_is_stored() {
    let setup = Setup::new(2, &[20], "");
    for (stored, count) in [(1, 2), (2, 3)] {
        let (delivery, outcome, attempts) = dead_letter_while_failing(&setup, count, 5).await;
        assert_eq!(outcome, Outcome::DeadLetter, "delivery {count}");
        assert_eq!(attempts, 6, "five failures, then stored (delivery {count})");
        assert!(delivery.termed.load(Ordering::SeqCst));
        assert!(!delivery.naked.load(Ordering::SeqCst), "never given back");
        assert_eq!(setup.dead_letters().await.len(), stored);
    }
}

/// Before the last delivery, a dead letter that cannot be stored is tried a few times, then the
/// message is given back (delivered again later) rather than lost.
#[tokio::test]
async fn a_dead_letter_that_cannot_be_stored_gives_an_earlier_delivery_back() {
    let setup = Setup::new(5, &[20], "");
    let (delivery, outcome, attempts) = dead_letter_while_failing(&setup, 1, u32::MAX).await;
    assert_eq!(outcome, Outcome::Retry);
    assert_eq!(attempts, 3);
    assert!(delivery.naked.load(Ordering::SeqCst));
    assert!(!delivery.termed.load(Ordering::SeqCst));
    assert!(setup.dead_letters().await.is_empty());
}

/// A handler that works past `ack_wait` keeps its claim on the message id (extended with each
/// in-progress ack): a second delivery of the id meanwhile finds it in flight, not free.
#[tokio::test]
async fn a_long_handler_keeps_its_claim_past_ack_wait() {
    use service::platform::idempotency::Claim;
    let setup = Setup::new(5, &[50], "");
    let (messaging, _) = setup.messaging().await;
    let mut handler = Scripted::new(&setup.subject(), vec![Ok(())]);
    handler.work = Duration::from_millis(4500);
    let started = handler.started.clone();
    let seen = handler.seen.clone();
    messaging.consume(handler);
    let runtime = messaging.runtime().clone();
    let key = format!("message:{}:long-1", runtime.spec(&setup.subject()).durable);
    let (stop, consumers) = start(&messaging);
    publish(&messaging, &setup.subject(), "long-1", json!({})).await;
    eventually("the handler to start", Duration::from_secs(10), || {
        *started.lock().unwrap() == 1
    })
    .await;
    // Past ack_wait (2 s): the first claim would have expired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(seen.lock().unwrap().len(), 0, "still working");
    let claim = runtime
        .store
        .claim(&key, "message", Duration::from_secs(2))
        .await
        .expect("claim");
    assert_eq!(claim, Claim::InFlight, "the claim is still held");
    eventually("the handler to finish", Duration::from_secs(10), || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    stop.send(true).unwrap();
    consumers.wait().await;
}

/// The memory store, and the store the service was scaffolded with when it is another.
async fn service_stores() -> Vec<Arc<dyn service::platform::idempotency::IdempotencyStore>> {
{% if idempotency_store != "memory" %}
    use secrecy::ExposeSecret;
{% endif %}
{% if idempotency_store == "postgres" %}
    let platform = layers("").platform().expect("config");
    let postgres = service::platform::idempotency::postgres::PostgresStore::connect_lazy(
        platform.idempotency.url.expose_secret(),
        Duration::from_secs(2),
    )
    .expect("store");
    postgres
        .ensure_schema()
        .await
        .expect("the PostgreSQL server in idempotency.url answers");
    vec![Arc::new(MemoryStore::new()), Arc::new(postgres)]
{% elif idempotency_store == "redis" %}
    let platform = layers("").platform().expect("config");
    let redis = service::platform::idempotency::redis::RedisStore::new(
        platform.idempotency.url.expose_secret(),
        Duration::from_secs(2),
    )
    .expect("store");
    vec![Arc::new(MemoryStore::new()), Arc::new(redis)]
{% else %}
    vec![Arc::new(MemoryStore::new())]
{% endif %}
}

/// The idempotency store the service was scaffolded with{% if idempotency_store != "memory" %}
/// (and the memory one){% endif %} extends a claim only for its holder, and the extension
/// outlives the first lifetime.
#[tokio::test]
async fn the_idempotency_store_extends_a_claim_only_for_its_holder() {
    use service::platform::idempotency::{Claim, ClaimToken};
    for store in service_stores().await {
        let key = format!("extend-{}", uuid::Uuid::new_v4().simple());
        let Claim::Claimed(token) = store
            .claim(&key, "message", Duration::from_secs(1))
            .await
            .expect("claim")
        else {
            panic!("claimed")
        };
        assert!(
            store
                .extend(&key, &ClaimToken::generate(), Duration::from_secs(5))
                .await
                .is_err(),
            "a stranger cannot extend it"
        );
        store
            .extend(&key, &token, Duration::from_secs(5))
            .await
            .expect("the holder extends it");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            store
                .claim(&key, "message", Duration::from_secs(1))
                .await
                .expect("claim"),
            Claim::InFlight,
            "held past its first lifetime"
        );
        store.release(&key, &token).await.expect("release");
    }
}

/// A batch of claims and completions (what a consumer sends the store together) answers each
/// key as `claim` and `complete` would: a free key claimed, a key twice in the batch claimed
/// once, a key held elsewhere in flight, a processed key completed; only held claims complete.
#[tokio::test]
async fn the_idempotency_store_claims_and_completes_in_batches_as_one_by_one() {
    use service::platform::idempotency::{Claim, ClaimToken, StoredResponse};
    let done = StoredResponse {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    };
    let ttl = Duration::from_secs(30);
    for store in service_stores().await {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let [free, held, processed] = ["free", "held", "processed"].map(|k| format!("{k}-{tag}"));
        let Claim::Claimed(_) = store.claim(&held, "message", ttl).await.expect("claim") else {
            panic!("claimed")
        };
        let Claim::Claimed(token) = store
            .claim(&processed, "message", ttl)
            .await
            .expect("claim")
        else {
            panic!("claimed")
        };
        store
            .complete(&processed, &token, &done, ttl)
            .await
            .expect("complete");
        let keys = [free.clone(), held.clone(), free.clone(), processed.clone()];
        let claims: Vec<Claim> = store
            .claim_many(&keys, "message", ttl)
            .await
            .into_iter()
            .map(|claim| claim.expect("claim"))
            .collect();
        let Claim::Claimed(free_token) = claims[0].clone() else {
            panic!("the free key is claimed: {claims:?}")
        };
        assert_eq!(claims[1], Claim::InFlight, "{claims:?}");
        assert_eq!(claims[2], Claim::InFlight, "claimed once: {claims:?}");
        assert_eq!(claims[3], Claim::Completed(done.clone()), "{claims:?}");
        let completed = store
            .complete_many(
                &[
                    (free.clone(), free_token),
                    (held.clone(), ClaimToken::generate()),
                ],
                &done,
                ttl,
            )
            .await;
        assert!(completed[0].is_ok(), "{completed:?}");
        assert!(completed[1].is_err(), "not its claim: {completed:?}");
        assert_eq!(
            store.claim(&free, "message", ttl).await.expect("claim"),
            Claim::Completed(done.clone())
        );
    }
}
