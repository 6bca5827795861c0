//! Redis idempotency store: one string per key holding a JSON record. Claims are
//! `SET key … NX PX in_flight_ttl`; completing and releasing are compare-and-set /
//! compare-and-delete Lua scripts keyed on the claim token, so only the claim holder can do
//! either, and Redis expiry reclaims abandoned keys.
//!
//! Managed by the platform.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::store::{Claim, ClaimToken, IdempotencyStore, StoreError, StoredResponse};

const COMPLETE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if cjson.decode(current)['token'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

const RELEASE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if cjson.decode(current)['token'] ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
";

{% if messaging == "nats" %}
const EXTEND: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if cjson.decode(current)['token'] ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
";

{% endif %}
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    /// Set while in flight.
    token: Option<String>,
    status: Option<u16>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// Base64 body.
    #[serde(default)]
    body: String,
}

pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    timeout: Duration,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn store_error(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

impl RedisStore {
    /// Connects lazily: the service starts (and reports not ready) while Redis is down.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        Ok(Self {
            client: redis::Client::open(url).map_err(store_error)?,
            connection: OnceCell::new(),
            timeout,
            prefix: concat!("idempotency:", env!("CARGO_PKG_NAME"), ":").to_owned(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        self.bounded(async {
            self.connection
                .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
                .await
                .cloned()
        })
        .await
    }

    async fn bounded<T, F>(&self, future: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError(format!("no answer within {:?}", self.timeout))),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut conn = self.connection().await?;
        let key = self.key(key);
        for _ in 0..3 {
            let token = ClaimToken::generate();
            let record = Record {
                fingerprint: fingerprint.to_owned(),
                token: Some(token.0.clone()),
                status: None,
                headers: Vec::new(),
                body: String::new(),
            };
            let record = serde_json::to_string(&record).map_err(store_error)?;
            let set: Option<String> = self
                .bounded(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(record)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(in_flight_ttl))
                        .query_async(&mut conn),
                )
                .await?;
            if set.is_some() {
                return Ok(Claim::Claimed(token));
            }
            let current: Option<String> = self
                .bounded(redis::cmd("GET").arg(&key).query_async(&mut conn))
                .await?;
            // Expired between SET and GET: try again.
            let Some(current) = current else { continue };
            let record: Record = serde_json::from_str(&current).map_err(store_error)?;
            if record.fingerprint != fingerprint {
                return Ok(Claim::Mismatch);
            }
            let Some(status) = record.status else {
                return Ok(Claim::InFlight);
            };
            return Ok(Claim::Completed(StoredResponse {
                status,
                headers: record.headers,
                body: BASE64.decode(record.body).map_err(store_error)?,
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
        let mut conn = self.connection().await?;
        let record = Record {
            fingerprint: String::new(),
            token: None,
            status: Some(response.status),
            headers: response.headers.clone(),
            body: BASE64.encode(&response.body),
        };
        // Keep the fingerprint of the claim: read it back inside the same script would need
        // JSON surgery in Lua, so the record is rebuilt from the current value.
        let current: Option<String> = self
            .bounded(redis::cmd("GET").arg(self.key(key)).query_async(&mut conn))
            .await?;
        let fingerprint = current
            .and_then(|value| serde_json::from_str::<Record>(&value).ok())
            .map(|record| record.fingerprint)
            .ok_or_else(|| StoreError(format!("claim on {key:?} was lost before completion")))?;
        let record = serde_json::to_string(&Record {
            fingerprint,
            ..record
        })
        .map_err(store_error)?;
        let done: i64 = self
            .bounded(
                redis::Script::new(COMPLETE)
                    .key(self.key(key))
                    .arg(&token.0)
                    .arg(record)
                    .arg(millis(ttl))
                    .invoke_async(&mut conn),
            )
            .await?;
        if done == 1 {
            Ok(())
        } else {
            Err(StoreError(format!(
                "claim on {key:?} was lost before completion"
            )))
        }
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let _: i64 = self
            .bounded(
                redis::Script::new(RELEASE)
                    .key(self.key(key))
                    .arg(&token.0)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(())
    }

{% if messaging == "nats" %}
    async fn extend(
        &self,
        key: &str,
        token: &ClaimToken,
        in_flight_ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let extended: i64 = self
            .bounded(
                redis::Script::new(EXTEND)
                    .key(self.key(key))
                    .arg(&token.0)
                    .arg(millis(in_flight_ttl))
                    .invoke_async(&mut conn),
            )
            .await?;
        if extended == 1 {
            Ok(())
        } else {
            Err(StoreError(format!("claim on {key:?} is no longer held")))
        }
    }

{% endif %}
    async fn check(&self) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let _: String = self
            .bounded(redis::cmd("PING").query_async(&mut conn))
            .await?;
        Ok(())
    }
}
