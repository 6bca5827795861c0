//! The outbox against the real PostgreSQL in `idempotency.url` and NATS in `messaging.url`:
//! a message commits or rolls back with the transaction that writes it, the relay publishes
//! each committed message once (several relays share the work), and a consumer handles it.
//! Every test has its own stream, so they run in parallel.
//!
//! Managed by the platform (component `messaging`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use {{ crate_name }} as service;

use opentelemetry::trace::TraceContextExt;
use service::platform::idempotency::MemoryStore;
use service::platform::messaging::broker::{
    ConsumerSpec, DeadLetter, Deliveries, RedriveFilter, RedriveReport,
};
use service::platform::messaging::nats::NatsBroker;
use service::platform::messaging::outbox::Outbox;
use service::platform::messaging::{
    Broker, BrokerError, HandlerError, MessageContext, MessageHandler, Messaging, MessagingConfig,
    OutgoingMessage,
};
use service::platform::testing::{init_telemetry, layers};

/// The NATS broker, counting what it is asked to publish.
struct Counting {
    inner: NatsBroker,
    published: AtomicUsize,
    /// Message ids whose publishing fails (the broker itself answers).
    failing: Mutex<Vec<String>>,
}

#[async_trait]
impl Broker for Counting {
    async fn publish(&self, message: OutgoingMessage) -> Result<(), BrokerError> {
        if self.failing.lock().unwrap().contains(&message.id) {
            return Err(BrokerError(format!("refused {}", message.id)));
        }
        self.published.fetch_add(1, Ordering::SeqCst);
        self.inner.publish(message).await
    }
    async fn consume(
        &self,
        spec: &ConsumerSpec,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Deliveries, BrokerError> {
        self.inner.consume(spec, stop).await
    }
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError> {
        self.inner.dead_letter(letter).await
    }
    async fn redrive(&self, filter: &RedriveFilter) -> Result<RedriveReport, BrokerError> {
        self.inner.redrive(filter).await
    }
    async fn lag(&self, spec: &ConsumerSpec) -> Result<u64, BrokerError> {
        self.inner.lag(spec).await
    }
    async fn check(&self) -> Result<(), BrokerError> {
        self.inner.check().await
    }
}

struct Setup {
    tag: String,
    config: MessagingConfig,
    broker: Arc<Counting>,
    outbox: Outbox,
}

async fn setup() -> Setup {
    init_telemetry();
    let tag = format!("t{}", uuid::Uuid::new_v4().simple());
    let layers = layers(&format!(
        "[messaging]\nstream = \"{tag}\"\nsubjects = [\"{tag}.>\"]\n\
         dead_letter_stream = \"{tag}-dead\"\noutbox_poll_ms = 50\n"
    ));
    let config = MessagingConfig::from_layers(&layers).expect("messaging config");
    let platform = layers.platform().expect("config");
    let inner = NatsBroker::connect(&config).await.expect("connect");
    inner
        .check()
        .await
        .expect("the NATS server in messaging.url answers");
    let outbox =
        Outbox::connect_lazy(platform.idempotency.url.expose_secret(), &config).expect("outbox");
    outbox
        .ensure_schema()
        .await
        .expect("the PostgreSQL server in idempotency.url answers");
    // Tests in parallel create it together: one at a time, under an advisory lock.
    let mut tx = outbox.pool().begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(4242)")
        .execute(&mut *tx)
        .await
        .expect("lock");
    sqlx::query("CREATE TABLE IF NOT EXISTS outbox_test_items (id TEXT PRIMARY KEY)")
        .execute(&mut *tx)
        .await
        .expect("test table");
    tx.commit().await.expect("commit");
    Setup {
        tag,
        config,
        broker: Arc::new(Counting {
            inner,
            published: AtomicUsize::new(0),
            failing: Mutex::default(),
        }),
        outbox,
    }
}

/// A test's streams are its own (named by its tag): deleted when it ends, so runs leave nothing
/// on the broker. On a thread of its own: the test's runtime is shutting down.
impl Drop for Setup {
    fn drop(&mut self) {
        let url = self.config.url.clone();
        let names = [
            self.config.stream.clone(),
            self.config.dead_letter_stream.clone(),
        ];
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let connect = async_nats::connect(url.as_str());
                let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(2), connect).await
                else {
                    return;
                };
                let jetstream = async_nats::jetstream::new(client);
                for name in &names {
                    let deleting = jetstream.delete_stream(name);
                    let _ = tokio::time::timeout(Duration::from_secs(2), deleting).await;
                }
            });
        });
        let _ = deleted.join();
    }
}

impl Setup {
    fn message(&self, id: &str) -> OutgoingMessage {
        OutgoingMessage {
            subject: format!("{}.items.created", self.tag),
            id: id.to_owned(),
            headers: Default::default(),
            payload: serde_json::to_vec(&json!({ "id": id })).unwrap(),
        }
    }

    /// Writes an item and its message in one transaction, committed or rolled back.
    async fn write(&self, id: &str, commit: bool) {
        let mut tx = self.outbox.pool().begin().await.expect("begin");
        sqlx::query("INSERT INTO outbox_test_items (id) VALUES ($1)")
            .bind(id)
            .execute(&mut *tx)
            .await
            .expect("insert");
        self.outbox
            .enqueue(&mut tx, self.message(id))
            .await
            .expect("enqueue");
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
    }

    /// Stores a row as an older version of the service (or a hand-written INSERT) could,
    /// bypassing `enqueue`'s checks.
    async fn insert_raw(&self, id: &str, subject: &str, headers: &str) {
        sqlx::query(
            "INSERT INTO messaging_outbox (stream, message_id, subject, headers, payload) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&self.config.stream)
        .bind(id)
        .bind(subject)
        .bind(headers)
        .bind(b"{}".as_slice())
        .execute(self.outbox.pool())
        .await
        .expect("insert");
    }

    /// `(published, attempts, parked, last_error)` of the row of `id`.
    async fn row(&self, id: &str) -> (bool, i32, bool, Option<String>) {
        let row = sqlx::query(
            "SELECT published_at IS NOT NULL AS published, attempts, \
             parked_at IS NOT NULL AS parked, last_error \
             FROM messaging_outbox WHERE stream = $1 AND message_id = $2",
        )
        .bind(&self.config.stream)
        .bind(id)
        .fetch_one(self.outbox.pool())
        .await
        .expect("the row");
        use sqlx::Row;
        (
            row.get("published"),
            row.get("attempts"),
            row.get("parked"),
            row.get("last_error"),
        )
    }

    async fn item_exists(&self, id: &str) -> bool {
        sqlx::query("SELECT 1 FROM outbox_test_items WHERE id = $1")
            .bind(id)
            .fetch_optional(self.outbox.pool())
            .await
            .expect("select")
            .is_some()
    }

    async fn stream_messages(&self) -> u64 {
        self.stream().await.info().await.unwrap().state.messages
    }

    async fn stream(&self) -> async_nats::jetstream::stream::Stream {
        let client = async_nats::connect(self.config.url.as_str()).await.unwrap();
        async_nats::jetstream::new(client)
            .get_stream(&self.config.stream)
            .await
            .expect("stream")
    }
}

#[tokio::test]
async fn a_message_commits_or_rolls_back_with_the_transaction_that_writes_it() {
    let setup = setup().await;
    let rolled_back = format!("{}-a", setup.tag);
    let committed = format!("{}-b", setup.tag);
    let span = tracing::info_span!("writer");
    let trace_id = span.context().span().span_context().trace_id();
    async {
        setup.write(&rolled_back, false).await;
        setup.write(&committed, true).await;
    }
    .instrument(span)
    .await;
    assert!(!setup.item_exists(&rolled_back).await);
    assert!(setup.item_exists(&committed).await);

    assert_eq!(
        setup
            .outbox
            .relay_once(setup.broker.as_ref(), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        setup
            .outbox
            .relay_once(setup.broker.as_ref(), 100)
            .await
            .unwrap(),
        0
    );
    let mut stream = setup.stream().await;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let message = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        message.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(committed.as_str())
    );
    let traceparent = message
        .headers
        .get("traceparent")
        .expect("traceparent")
        .as_str()
        .to_owned();
    assert!(traceparent.contains(&trace_id.to_string()), "{traceparent}");
}

#[tokio::test]
async fn concurrent_relays_publish_each_committed_message_once() {
    let setup = setup().await;
    for n in 0..20 {
        setup.write(&format!("{}-{n}", setup.tag), true).await;
    }
    let relay = |outbox: Outbox, broker: Arc<Counting>| async move {
        let mut total = 0;
        loop {
            let n = outbox.relay_once(broker.as_ref(), 3).await.unwrap();
            if n == 0 {
                return total;
            }
            total += n;
        }
    };
    let (a, b) = tokio::join!(
        relay(setup.outbox.clone(), setup.broker.clone()),
        relay(setup.outbox.clone(), setup.broker.clone())
    );
    assert_eq!(a + b, 20, "relayed {a} + {b}");
    assert_eq!(
        setup.broker.published.load(Ordering::SeqCst),
        20,
        "each published once"
    );
    let mut stream = setup.stream().await;
    assert_eq!(stream.info().await.unwrap().state.messages, 20);
}

struct Seen(Arc<Mutex<Vec<Value>>>, String);

#[async_trait]
impl MessageHandler for Seen {
    type Message = Value;
    fn subject(&self) -> &str {
        &self.1
    }
    fn decode(&self, payload: &[u8]) -> Result<Value, HandlerError> {
        service::platform::messaging::json(payload)
    }
    async fn handle(&self, message: Value, _: &MessageContext) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(message);
        Ok(())
    }
}

#[tokio::test]
async fn the_relay_runs_with_the_consumers_and_the_message_is_handled() {
    let setup = setup().await;
    let messaging = Messaging::new(
        setup.broker.clone(),
        Arc::new(MemoryStore::new()),
        setup.config.clone(),
        Duration::from_secs(3600),
    )
    .with_outbox(setup.outbox.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    messaging.consume(Seen(seen.clone(), format!("{}.items.created", setup.tag)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumers = messaging.start(stopped);
    let id = format!("{}-c", setup.tag);
    setup.write(&id, true).await;
    let started = Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "not handled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.lock().unwrap().clone(), [json!({ "id": id })]);
    stop.send(true).unwrap();
    consumers.wait().await;
}

#[tokio::test]
async fn enqueue_refuses_a_subject_outside_the_stream_and_headers_that_cannot_go_on_the_wire() {
    let setup = setup().await;
    let mut bad = vec![
        ("outside", {
            let mut m = setup.message("x1");
            m.subject = "elsewhere.items.created".to_owned();
            m
        }),
        ("wildcard", {
            let mut m = setup.message("x2");
            m.subject = format!("{}.items.*", setup.tag);
            m
        }),
    ];
    for (what, value) in [("crlf", "a\r\nInjected: 1"), ("lf", "a\nb")] {
        let mut m = setup.message(&format!("x-{what}"));
        m.headers.insert("X-Note", value);
        bad.push((what, m));
    }
    let mut m = setup.message("x-name");
    m.headers.insert("Bad Name:", "v");
    bad.push(("name", m));
    for (what, message) in bad {
        let mut tx = setup.outbox.pool().begin().await.expect("begin");
        let error = setup
            .outbox
            .enqueue(&mut tx, message)
            .await
            .expect_err(what);
        assert!(error.0.starts_with("outbox enqueue"), "{what}: {error}");
        tx.rollback().await.unwrap();
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM messaging_outbox WHERE stream = $1")
        .bind(&setup.config.stream)
        .fetch_one(setup.outbox.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_bad_row_is_parked_and_never_blocks_the_rows_behind_it() {
    let setup = setup().await;
    let subject = format!("{}.items.created", setup.tag);
    // Oldest first: rows an older relay could not publish, then a good one.
    setup.insert_raw("bad-json", &subject, "not json").await;
    setup
        .insert_raw("bad-crlf", &subject, r#"[["X-Note","a\r\nb"]]"#)
        .await;
    setup
        .insert_raw("bad-subject", "elsewhere.items.created", "[]")
        .await;
    let good = format!("{}-good", setup.tag);
    setup.write(&good, true).await;
    // No panic, no error: the good row goes out, the bad ones are parked with their error.
    assert_eq!(
        setup
            .outbox
            .relay_once(setup.broker.as_ref(), 100)
            .await
            .expect("relay"),
        1
    );
    assert!(setup.row(&good).await.0, "the good row is published");
    for id in ["bad-json", "bad-crlf", "bad-subject"] {
        let (published, _, parked, error) = setup.row(id).await;
        assert!(!published && parked, "{id} parked");
        assert!(error.is_some_and(|e| !e.is_empty()), "{id} keeps its error");
    }
    assert_eq!(
        setup
            .outbox
            .relay_once(setup.broker.as_ref(), 100)
            .await
            .unwrap(),
        0,
        "parked rows are not tried again"
    );
    assert_eq!(setup.stream_messages().await, 1);
}

#[tokio::test]
async fn a_row_the_broker_refuses_is_retried_then_parked_while_later_rows_go_out() {
    let setup = setup().await;
    let refused = format!("{}-refused", setup.tag);
    setup.broker.failing.lock().unwrap().push(refused.clone());
    setup.write(&refused, true).await;
    let mut published = 0;
    for n in 0..Outbox::MAX_ATTEMPTS {
        let later = format!("{}-later-{n}", setup.tag);
        setup.write(&later, true).await;
        published += setup
            .outbox
            .relay_once(setup.broker.as_ref(), 100)
            .await
            .expect("relay");
        let (done, attempts, parked, error) = setup.row(&refused).await;
        assert!(!done, "never published");
        assert_eq!(attempts, i32::try_from(n + 1).unwrap());
        assert_eq!(parked, n + 1 == Outbox::MAX_ATTEMPTS, "after {attempts}");
        assert!(error.unwrap().contains("refused"));
        assert!(setup.row(&later).await.0, "{later} published");
    }
    assert_eq!(published, usize::try_from(Outbox::MAX_ATTEMPTS).unwrap());
}

#[tokio::test]
async fn published_rows_older_than_the_retention_are_purged_by_the_relay() {
    let setup = setup().await;
    let subject = format!("{}.items.created", setup.tag);
    for id in [
        "old-published",
        "new-published",
        "old-parked",
        "old-pending",
    ] {
        setup.insert_raw(id, &subject, "[]").await;
    }
    // Hours ago the row was published or parked (None: not).
    let age = |id: &str, published: Option<i32>, parked: Option<i32>| {
        let (pool, stream, id) = (
            setup.outbox.pool().clone(),
            setup.config.stream.clone(),
            id.to_owned(),
        );
        async move {
            sqlx::query(
                "UPDATE messaging_outbox SET created_at = now() - interval '30 days', \
                 published_at = now() - make_interval(hours => $3), \
                 parked_at = now() - make_interval(hours => $4) \
                 WHERE stream = $1 AND message_id = $2",
            )
            .bind(stream)
            .bind(id)
            .bind(published)
            .bind(parked)
            .execute(&pool)
            .await
            .expect("age the row");
        }
    };
    age("old-published", Some(8 * 24), None).await;
    age("new-published", Some(1), None).await;
    age("old-parked", None, Some(8 * 24)).await;
    // The relay would publish the pending row: leave it for the relay below.
    let ids = || async {
        let mut ids: Vec<String> = sqlx::query_scalar(
            "SELECT message_id FROM messaging_outbox WHERE stream = $1 ORDER BY message_id",
        )
        .bind(&setup.config.stream)
        .fetch_all(setup.outbox.pool())
        .await
        .unwrap();
        ids.sort();
        ids
    };
    // The default retention is 7 days (messaging.outbox_retention_secs).
    assert_eq!(setup.config.outbox_retention_secs, 7 * 24 * 3600);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(setup.outbox.clone().run_relay(
        setup.broker.clone(),
        stopped,
        Duration::from_millis(50),
    ));
    let started = Instant::now();
    while ids().await.contains(&"old-published".to_owned()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "old published row not purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    relay.await.unwrap();
    // Unpublished rows (parked or pending) are never purged, however old.
    assert_eq!(ids().await, ["new-published", "old-parked", "old-pending"]);
}
