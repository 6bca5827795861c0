//! PostgreSQL idempotency store: one row per key in `idempotency_keys` (schema in
//! `migrations/`, applied by this store before first use). Claims are an
//! `INSERT … ON CONFLICT DO UPDATE … WHERE expired`, so exactly one request wins a key and
//! expired rows are reclaimable.
//!
//! Managed by the platform.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
{% if messaging == "nats" %}
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
{% else %}
use sqlx::postgres::{PgPool, PgPoolOptions};
{% endif %}
use tokio::sync::OnceCell;

use super::store::{Claim, ClaimToken, IdempotencyStore, StoreError, StoredResponse};

pub struct PostgresStore {
    pool: PgPool,
{% if messaging == "nats" %}
    /// Connections whose commits do not wait for the disk, for the message consumer's batches
    /// only (see `claim_many`).
    unsynced: PgPool,
{% endif %}
    timeout: Duration,
    migrated: OnceCell<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn store_error(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

impl PostgresStore {
    /// Connects lazily: the service starts (and reports not ready) while the database is down.
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(timeout)
            .connect_lazy(url)
            .map_err(store_error)?;
{% if messaging == "nats" %}
        let options: PgConnectOptions = url.parse().map_err(store_error)?;
        let unsynced = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
{% endif %}
        Ok(Self {
            pool,
{% if messaging == "nats" %}
            unsynced,
{% endif %}
            timeout,
            migrated: OnceCell::new(),
        })
    }

    async fn bounded<T, F>(&self, future: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// Applies `migrations/` once per process (sqlx keeps its ledger in `_sqlx_migrations`).
    pub async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.migrated
            .get_or_try_init(|| async {
                sqlx::migrate!("./migrations")
                    .run(&self.pool)
                    .await
                    .map_err(store_error)?;
                tracing::info!("idempotency schema ready");
                Ok(())
            })
            .await
            .copied()
    }

    /// Deletes expired rows every `every` (claims reclaim them anyway; this bounds the table).
    pub fn sweep(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                if let Err(error) =
                    sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < now()")
                        .execute(&pool)
                        .await
                {
                    tracing::debug!(%error, "idempotency sweep failed");
                }
            }
        })
    }
}

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        self.ensure_schema().await?;
        // A row that expires between the insert and the read is retried.
        for _ in 0..3 {
            let token = ClaimToken::generate();
            let inserted = self
                .bounded(
                    sqlx::query(
                        "INSERT INTO idempotency_keys (key, fingerprint, lock_token, expires_at)
                         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                         ON CONFLICT (key) DO UPDATE
                            SET fingerprint = EXCLUDED.fingerprint, lock_token = EXCLUDED.lock_token,
                                status = NULL, headers = NULL, body = NULL,
                                expires_at = EXCLUDED.expires_at, created_at = now()
                          WHERE idempotency_keys.expires_at <= now()
                         RETURNING key",
                    )
                    .bind(key)
                    .bind(fingerprint)
                    .bind(&token.0)
                    .bind(in_flight_ttl.as_secs_f64())
                    .fetch_optional(&self.pool),
                )
                .await?;
            if inserted.is_some() {
                return Ok(Claim::Claimed(token));
            }
            let existing = self
                .bounded(
                    sqlx::query(
                        "SELECT fingerprint, status, headers, body FROM idempotency_keys
                          WHERE key = $1 AND expires_at > now()",
                    )
                    .bind(key)
                    .fetch_optional(&self.pool),
                )
                .await?;
            let Some(row) = existing else { continue };
            let stored_fingerprint: String = row.try_get("fingerprint").map_err(store_error)?;
            if stored_fingerprint != fingerprint {
                return Ok(Claim::Mismatch);
            }
            let status: Option<i32> = row.try_get("status").map_err(store_error)?;
            let Some(status) = status else {
                return Ok(Claim::InFlight);
            };
            let headers: Option<String> = row.try_get("headers").map_err(store_error)?;
            let body: Option<Vec<u8>> = row.try_get("body").map_err(store_error)?;
            return Ok(Claim::Completed(StoredResponse {
                status: u16::try_from(status).map_err(store_error)?,
                headers: serde_json::from_str(headers.as_deref().unwrap_or("[]"))
                    .map_err(store_error)?,
                body: body.unwrap_or_default(),
            }));
        }
        Err(StoreError(format!(
            "key {key:?} kept changing while being claimed"
        )))
    }

    async fn complete(
        &self,
        key: &str,
        token: &ClaimToken,
        response: &StoredResponse,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&response.headers).map_err(store_error)?;
        let done = self
            .bounded(
                sqlx::query(
                    "UPDATE idempotency_keys
                        SET status = $3, headers = $4, body = $5, lock_token = NULL,
                            expires_at = now() + make_interval(secs => $6)
                      WHERE key = $1 AND lock_token = $2 AND status IS NULL",
                )
                .bind(key)
                .bind(&token.0)
                .bind(i32::from(response.status))
                .bind(headers)
                .bind(&response.body)
                .bind(ttl.as_secs_f64())
                .execute(&self.pool),
            )
            .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError(format!(
                "claim on {key:?} was lost before completion"
            )))
        }
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        self.bounded(
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND lock_token = $2 AND status IS NULL")
                .bind(key)
                .bind(&token.0)
                .execute(&self.pool),
        )
        .await
        .map(drop)
    }

{% if messaging == "nats" %}
    async fn extend(
        &self,
        key: &str,
        token: &ClaimToken,
        in_flight_ttl: Duration,
    ) -> Result<(), StoreError> {
        let extended = self
            .bounded(
                sqlx::query(
                    "UPDATE idempotency_keys SET expires_at = now() + make_interval(secs => $3)
                      WHERE key = $1 AND lock_token = $2 AND status IS NULL",
                )
                .bind(key)
                .bind(&token.0)
                .bind(in_flight_ttl.as_secs_f64())
                .execute(&self.pool),
            )
            .await?;
        if extended.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError(format!("claim on {key:?} is no longer held")))
        }
    }

    /// One statement for the batch, committed without waiting for the disk
    /// (`synchronous_commit = off` on the connections of `unsynced`): a message consumer
    /// otherwise waits for two disk flushes per `max_in_flight` messages. What a crash of
    /// PostgreSQL itself can lose is the last fraction of a second of claims and completions: a
    /// lost claim frees its id (the broker redelivers only when the handler does not finish), a
    /// lost completion of an acknowledged message matters only if the same id is published
    /// again past the broker's duplicate window. HTTP idempotency keeps synchronous commits.
    /// A key the statement neither claimed nor found (a claim committed by another replica
    /// meanwhile, or the same key twice in the batch) is claimed on its own.
    async fn claim_many(
        &self,
        keys: &[String],
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Vec<Result<Claim, StoreError>> {
        if let Err(error) = self.ensure_schema().await {
            return keys.iter().map(|_| Err(error.clone())).collect();
        }
        let mut unique: Vec<String> = keys.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let tokens: Vec<String> = unique.iter().map(|_| ClaimToken::generate().0).collect();
        let rows = self
            .bounded(
                sqlx::query(
                    "WITH input AS (
                        SELECT * FROM unnest($1::text[], $2::text[]) AS t(key, token)
                     ), claimed AS (
                        INSERT INTO idempotency_keys (key, fingerprint, lock_token, expires_at)
                        SELECT key, $3, token, now() + make_interval(secs => $4) FROM input
                        ON CONFLICT (key) DO UPDATE
                           SET fingerprint = EXCLUDED.fingerprint, lock_token = EXCLUDED.lock_token,
                               status = NULL, headers = NULL, body = NULL,
                               expires_at = EXCLUDED.expires_at, created_at = now()
                         WHERE idempotency_keys.expires_at <= now()
                        RETURNING key
                     )
                     SELECT input.key, input.token, claimed.key IS NOT NULL AS claimed,
                            existing.fingerprint, existing.status, existing.headers, existing.body
                       FROM input
                       LEFT JOIN claimed ON claimed.key = input.key
                       LEFT JOIN idempotency_keys existing
                              ON claimed.key IS NULL AND existing.key = input.key
                             AND existing.expires_at > now()",
                )
                .bind(&unique)
                .bind(&tokens)
                .bind(fingerprint)
                .bind(in_flight_ttl.as_secs_f64())
                .fetch_all(&self.unsynced),
            )
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => return keys.iter().map(|_| Err(error.clone())).collect(),
        };
        let mut found: std::collections::HashMap<String, Claim> =
            std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let decoded = (|| -> Result<Option<(String, Claim)>, StoreError> {
                let key: String = row.try_get("key").map_err(store_error)?;
                if row.try_get::<bool, _>("claimed").map_err(store_error)? {
                    let token: String = row.try_get("token").map_err(store_error)?;
                    return Ok(Some((key, Claim::Claimed(ClaimToken(token)))));
                }
                let Some(stored): Option<String> =
                    row.try_get("fingerprint").map_err(store_error)?
                else {
                    return Ok(None);
                };
                if stored != fingerprint {
                    return Ok(Some((key, Claim::Mismatch)));
                }
                let status: Option<i32> = row.try_get("status").map_err(store_error)?;
                let Some(status) = status else {
                    return Ok(Some((key, Claim::InFlight)));
                };
                let headers: Option<String> = row.try_get("headers").map_err(store_error)?;
                let body: Option<Vec<u8>> = row.try_get("body").map_err(store_error)?;
                Ok(Some((
                    key,
                    Claim::Completed(StoredResponse {
                        status: u16::try_from(status).map_err(store_error)?,
                        headers: serde_json::from_str(headers.as_deref().unwrap_or("[]"))
                            .map_err(store_error)?,
                        body: body.unwrap_or_default(),
                    }),
                )))
            })();
            match decoded {
                Ok(Some((key, claim))) => {
                    found.insert(key, claim);
                }
                Ok(None) => {}
                Err(error) => return keys.iter().map(|_| Err(error.clone())).collect(),
            }
        }
        let mut claims = Vec::with_capacity(keys.len());
        for key in keys {
            // A key twice in the batch: the first gets the statement's answer, the others ask.
            match found.remove(key) {
                Some(claim) => claims.push(Ok(claim)),
                None => claims.push(self.claim(key, fingerprint, in_flight_ttl).await),
            }
        }
        claims
    }

    /// One statement for the batch, committed as `claim_many`'s; a claim no longer held fails
    /// alone.
    async fn complete_many(
        &self,
        claims: &[(String, ClaimToken)],
        response: &StoredResponse,
        ttl: Duration,
    ) -> Vec<Result<(), StoreError>> {
        let headers = match serde_json::to_string(&response.headers).map_err(store_error) {
            Ok(headers) => headers,
            Err(error) => return claims.iter().map(|_| Err(error.clone())).collect(),
        };
        // In key order, as `claim_many` takes its rows: two batches over the same keys never
        // wait for each other's locks in opposite orders.
        let mut sorted: Vec<&(String, ClaimToken)> = claims.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let keys: Vec<&str> = sorted.iter().map(|(key, _)| key.as_str()).collect();
        let tokens: Vec<&str> = sorted.iter().map(|(_, token)| token.0.as_str()).collect();
        let done = self
            .bounded(
                sqlx::query(
                    "UPDATE idempotency_keys AS k
                        SET status = $3, headers = $4, body = $5, lock_token = NULL,
                            expires_at = now() + make_interval(secs => $6)
                       FROM unnest($1::text[], $2::text[]) AS t(key, token)
                      WHERE k.key = t.key AND k.lock_token = t.token AND k.status IS NULL
                  RETURNING k.key",
                )
                .bind(&keys)
                .bind(&tokens)
                .bind(i32::from(response.status))
                .bind(headers)
                .bind(&response.body)
                .bind(ttl.as_secs_f64())
                .fetch_all(&self.unsynced),
            )
            .await;
        let done: std::collections::HashSet<String> = match done {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| row.try_get::<String, _>("key").ok())
                .collect(),
            Err(error) => return claims.iter().map(|_| Err(error.clone())).collect(),
        };
        claims
            .iter()
            .map(|(key, _)| {
                if done.contains(key) {
                    Ok(())
                } else {
                    Err(StoreError(format!(
                        "claim on {key:?} was lost before completion"
                    )))
                }
            })
            .collect()
    }

{% endif %}
    async fn check(&self) -> Result<(), StoreError> {
        self.ensure_schema().await?;
        self.bounded(sqlx::query("SELECT 1").execute(&self.pool))
            .await
{% if messaging == "nats" %}
            .map(drop)?;
        // The consumers' connections too: a pooler may refuse their `synchronous_commit` option.
        self.bounded(sqlx::query("SELECT 1").execute(&self.unsynced))
            .await
            .map_err(|e| StoreError(format!("the message consumers' connections: {}", e.0)))?;
        Ok(())
{% else %}
            .map(drop)
{% endif %}
    }
}
