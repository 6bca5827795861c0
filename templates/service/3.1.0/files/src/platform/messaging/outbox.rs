//! The transactional outbox (PostgreSQL): a message is written in the same transaction as the
//! changes it announces, so both commit or neither does; the relay publishes committed
//! messages to the broker and marks them published. A crash between publishing and marking
//! publishes the message again with the same id: the broker's duplicate window and the
//! consumers' dedupe drop it.
//!
//! Managed by the platform (component `messaging`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};
use tokio::sync::{OnceCell, watch};

use super::broker::{Broker, BrokerError, Headers, OutgoingMessage};

const SCHEMA: &str = include_str!("../../../migrations/outbox/0001_messaging_outbox.sql");
/// The advisory lock held while the schema is applied (any constant this service owns).
const SCHEMA_LOCK: i64 = 0x6f75_7462_6f78;

/// The outbox of one stream.
#[derive(Clone)]
pub struct Outbox {
    pool: PgPool,
    stream: String,
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
    /// Connects lazily to the database at `url`; `stream` is the stream its messages go to.
    pub fn connect_lazy(url: &str, stream: &str) -> Result<Self, BrokerError> {
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(url)
            .map_err(|e| BrokerError(format!("outbox database: {e}")))?;
        Ok(Self {
            pool,
            stream: stream.to_owned(),
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

    /// Writes `message` in the caller's transaction (`&mut *tx`), with the current trace
    /// context; published by the relay once the transaction commits. The same id twice is
    /// stored once.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        mut message: OutgoingMessage,
    ) -> Result<(), BrokerError> {
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

    /// Publishes up to `batch` committed messages, oldest first, and marks them published;
    /// returns how many. Relays of several replicas share the work (`FOR UPDATE SKIP LOCKED`).
    pub async fn relay_once(&self, broker: &dyn Broker, batch: i64) -> Result<usize, BrokerError> {
        self.ensure_schema().await?;
        let db = |e: sqlx::Error| BrokerError(format!("outbox relay: {e}"));
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows = sqlx::query(
            "SELECT id, message_id, subject, headers, payload FROM messaging_outbox \
             WHERE stream = $1 AND published_at IS NULL ORDER BY id LIMIT $2 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(&self.stream)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut published = Vec::with_capacity(rows.len());
        for row in rows {
            let headers: String = row.try_get("headers").map_err(db)?;
            let headers: Vec<(String, String)> =
                serde_json::from_str(&headers).map_err(BrokerError::new)?;
            broker
                .publish(OutgoingMessage {
                    subject: row.try_get("subject").map_err(db)?,
                    id: row.try_get("message_id").map_err(db)?,
                    headers: Headers(headers),
                    payload: row.try_get("payload").map_err(db)?,
                })
                .await?;
            published.push(row.try_get::<i64, _>("id").map_err(db)?);
        }
        sqlx::query("UPDATE messaging_outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(published.len())
    }

    /// Relays until `shutdown` turns true: at once while there is a backlog, every `idle`
    /// otherwise, backing off while the broker or the database is down.
    pub async fn run_relay(
        self,
        broker: Arc<dyn Broker>,
        mut shutdown: watch::Receiver<bool>,
        idle: Duration,
    ) {
        let mut failures = 0u32;
        while !*shutdown.borrow() {
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
