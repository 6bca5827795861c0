//! The transactional outbox (PostgreSQL): a message is written in the same transaction as the
//! changes it announces, so both commit or neither does; the relay publishes committed
//! messages to the broker and marks them published. A crash between publishing and marking
//! publishes the message again with the same id: the broker's duplicate window and the
//! consumers' dedupe drop it. A row that cannot be published never holds up the rows behind
//! it: it is tried again on the next rounds, and parked (`parked_at`, with `last_error`) after
//! [`Outbox::MAX_ATTEMPTS`] failures, or at once when it can never go out. Messages go out
//! oldest first but not strictly in order: relays of several replicas publish at the same
//! time, a retried row goes out after rows behind it, and a transaction that commits late
//! may hold a row older than some already published; consumers must not rely on order.
//! Published rows are deleted after `messaging.outbox_retention_secs`.
//!
//! Managed by the platform (component `messaging`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};
use tokio::sync::{OnceCell, watch};

use super::MessagingConfig;
use super::broker::{
    Broker, BrokerError, Headers, OutgoingMessage, subject_matches, validate_subject,
};

/// `messaging_outbox_parked_total`: rows the relay gave up on (see the row's `last_error`).
pub const OUTBOX_PARKED_TOTAL: &str = "messaging_outbox_parked_total";

const SCHEMA: &str = include_str!("../../../migrations/outbox/0001_messaging_outbox.sql");
/// The advisory lock held while the schema is applied (any constant this service owns).
const SCHEMA_LOCK: i64 = 0x6f75_7462_6f78;

/// The outbox of one stream.
#[derive(Clone)]
pub struct Outbox {
    pool: PgPool,
    stream: String,
    /// The stream's subjects: a message outside them would never be stored.
    subjects: Vec<String>,
    /// How long a published row is kept (`messaging.outbox_retention_secs`).
    retention: Duration,
    schema: Arc<OnceCell<()>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Failed publishing attempts after which the relay parks a row.
    pub const MAX_ATTEMPTS: u32 = 5;
    /// How often the relay deletes published rows older than the retention.
    pub const PURGE_EVERY: Duration = Duration::from_secs(60);

    /// Connects lazily to the database at `url`; its messages go to `config`'s stream.
    pub fn connect_lazy(url: &str, config: &MessagingConfig) -> Result<Self, BrokerError> {
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(url)
            .map_err(|e| BrokerError(format!("outbox database: {e}")))?;
        Ok(Self {
            pool,
            stream: config.stream.clone(),
            subjects: config.subjects.clone(),
            retention: Duration::from_secs(config.outbox_retention_secs),
            schema: Arc::new(OnceCell::new()),
        })
    }

    /// The pool: begin your transaction here (`outbox.pool().begin()`), write, `enqueue`,
    /// commit.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the outbox table when missing (once per process; replicas starting together
    /// take turns on an advisory lock, as `CREATE TABLE IF NOT EXISTS` races otherwise).
    pub async fn ensure_schema(&self) -> Result<(), BrokerError> {
        self.schema
            .get_or_try_init(|| async {
                let db = |e: sqlx::Error| BrokerError(format!("outbox schema: {e}"));
                let mut tx = self.pool.begin().await.map_err(db)?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                sqlx::raw_sql(SCHEMA).execute(&mut *tx).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(())
            })
            .await
            .copied()
    }

    /// Why `message` can never be published, if it cannot: its subject is outside the
    /// stream's subjects or not a publishable subject, or a header cannot go on the wire.
    fn check(&self, message: &OutgoingMessage) -> Result<(), BrokerError> {
        validate_subject(&message.subject)?;
        if !self
            .subjects
            .iter()
            .any(|pattern| subject_matches(pattern, &message.subject))
        {
            return Err(BrokerError(format!(
                "subject `{}` is outside the stream's subjects {:?} (messaging.subjects)",
                message.subject, self.subjects
            )));
        }
        if message.id.is_empty() || message.id.contains(['\r', '\n']) {
            return Err(BrokerError(format!(
                "message id {:?} is empty or has a line break",
                message.id
            )));
        }
        message.headers.validate()
    }

    /// Writes `message` in the caller's transaction (`&mut *tx`), with the current trace
    /// context; published by the relay once the transaction commits. The same id twice is
    /// stored once. A message that could never be published (subject outside
    /// `messaging.subjects`, a header with a line break) is refused here, not stored.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        mut message: OutgoingMessage,
    ) -> Result<(), BrokerError> {
        self.check(&message)
            .map_err(|e| BrokerError(format!("outbox enqueue: {}", e.0)))?;
        self.ensure_schema().await?;
        super::inject_context(&mut message.headers);
        let headers = serde_json::to_string(&message.headers.0).map_err(BrokerError::new)?;
        sqlx::query(
            "INSERT INTO messaging_outbox (stream, message_id, subject, headers, payload) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream, message_id) DO NOTHING",
        )
        .bind(&self.stream)
        .bind(&message.id)
        .bind(&message.subject)
        .bind(headers)
        .bind(&message.payload)
        .execute(tx)
        .await
        .map_err(|e| BrokerError(format!("outbox enqueue: {e}")))?;
        Ok(())
    }

    /// Publishes up to `batch` committed messages, oldest first, and marks each published as
    /// it goes; returns how many. A row that fails is skipped: its attempt and error are
    /// recorded, and it is parked after [`Self::MAX_ATTEMPTS`] failures (at once when it can
    /// never be published). When the broker itself is away the round stops with an error and
    /// counts no attempt. Relays of several replicas share the work (`FOR UPDATE SKIP LOCKED`).
    pub async fn relay_once(&self, broker: &dyn Broker, batch: i64) -> Result<usize, BrokerError> {
        self.ensure_schema().await?;
        let db = |e: sqlx::Error| BrokerError(format!("outbox relay: {e}"));
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows = sqlx::query(
            "SELECT id, message_id, subject, headers, payload, attempts FROM messaging_outbox \
             WHERE stream = $1 AND published_at IS NULL AND parked_at IS NULL \
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(&self.stream)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut published = 0;
        let mut outage = None;
        for row in rows {
            let id: i64 = row.try_get("id").map_err(db)?;
            let message_id: String = row.try_get("message_id").map_err(db)?;
            let attempts: i32 = row.try_get("attempts").map_err(db)?;
            let message = (|| {
                let headers: String = row.try_get("headers").map_err(db)?;
                let headers: Vec<(String, String)> = serde_json::from_str(&headers)
                    .map_err(|e| BrokerError(format!("headers are not valid JSON: {e}")))?;
                let message = OutgoingMessage {
                    subject: row.try_get("subject").map_err(db)?,
                    id: message_id.clone(),
                    headers: Headers(headers),
                    payload: row.try_get("payload").map_err(db)?,
                };
                self.check(&message)?;
                Ok::<_, BrokerError>(message)
            })();
            let (error, park) = match message {
                // It can never go out: park it now.
                Err(error) => (error, true),
                Ok(message) => match broker.publish(message).await {
                    Ok(()) => {
                        sqlx::query(
                            "UPDATE messaging_outbox SET published_at = now() WHERE id = $1",
                        )
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                        published += 1;
                        continue;
                    }
                    Err(error) => {
                        if let Err(down) = broker.check().await {
                            // Not this row's fault: stop, and count no attempt.
                            outage = Some(BrokerError(format!("{error} ({down})")));
                            break;
                        }
                        let park = u32::try_from(attempts.saturating_add(1))
                            .is_ok_and(|n| n >= Self::MAX_ATTEMPTS);
                        (error, park)
                    }
                },
            };
            if park {
                tracing::error!(message_id, %error, "outbox message parked: it will not be published");
                metrics::counter!(OUTBOX_PARKED_TOTAL, "stream" => self.stream.clone())
                    .increment(1);
            } else {
                tracing::warn!(message_id, %error, attempt = attempts + 1, "outbox message not published; trying again");
            }
            sqlx::query(
                "UPDATE messaging_outbox SET attempts = attempts + 1, last_error = $2, \
                 parked_at = CASE WHEN $3 THEN now() END WHERE id = $1",
            )
            .bind(id)
            .bind(&error.0)
            .bind(park)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        match outage {
            Some(error) => Err(error),
            None => Ok(published),
        }
    }

    /// Deletes published rows older than `messaging.outbox_retention_secs` (at most 1000 per
    /// call); returns how many. Unpublished rows, pending or parked, are kept.
    pub async fn purge_published(&self) -> Result<u64, BrokerError> {
        self.ensure_schema().await?;
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "DELETE FROM messaging_outbox WHERE id IN (SELECT id FROM messaging_outbox \
             WHERE stream = $1 AND published_at < now() - make_interval(secs => $2::float8) \
             LIMIT 1000)",
        )
        .bind(&self.stream)
        .bind(retention as f64)
        .execute(&self.pool)
        .await
        .map_err(|e| BrokerError(format!("outbox purge: {e}")))?;
        Ok(done.rows_affected())
    }

    /// Relays until `shutdown` turns true: at once while there is a backlog, every `idle`
    /// otherwise, backing off while the broker or the database is down.
    pub async fn run_relay(
        self,
        broker: Arc<dyn Broker>,
        mut shutdown: watch::Receiver<bool>,
        idle: Duration,
    ) {
        // At 0 from the start, so the first parked row is an increase.
        metrics::counter!(OUTBOX_PARKED_TOTAL, "stream" => self.stream.clone()).absolute(0);
        let mut failures = 0u32;
        let mut purged_at: Option<tokio::time::Instant> = None;
        while !*shutdown.borrow() {
            if purged_at.is_none_or(|at| at.elapsed() >= Self::PURGE_EVERY) {
                purged_at = Some(tokio::time::Instant::now());
                match self.purge_published().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "outbox: old published rows deleted"),
                    Err(error) => tracing::warn!(%error, "outbox purge failed; trying again later"),
                }
            }
            let wait = match self.relay_once(broker.as_ref(), 100).await {
                Ok(0) => idle,
                Ok(_) => {
                    failures = 0;
                    continue;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "outbox relay failed; retrying");
                    idle * 2u32.pow(failures.min(5))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
    }
}
