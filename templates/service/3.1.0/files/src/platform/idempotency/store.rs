//! The [`IdempotencyStore`] trait: where claims and stored responses live.
//!
//! Managed by the platform. Implement the trait to use another store, and pass it in
//! `src/app/mod.rs` (`customize`).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Proof of a claim: only its holder may complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(pub String);

impl ClaimToken {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// The outcome of [`IdempotencyStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: run the handler, then `complete` (or `release` on failure).
    Claimed(ClaimToken),
    /// A request with this key and the same fingerprint is still running.
    InFlight,
    /// A request with this key and the same fingerprint already completed.
    Completed(StoredResponse),
    /// The key was used for a different request (another fingerprint).
    Mismatch,
}

/// The store could not be reached or answered nonsense. Requests then fail closed (503).
#[derive(Debug, Clone, thiserror::Error)]
#[error("idempotency store: {0}")]
pub struct StoreError(pub String);

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Atomically claims `key` for a request with `fingerprint`. An expired entry (in flight
    /// past `in_flight_ttl`, or completed past its ttl) counts as free.
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Result<Claim, StoreError>;

    /// Stores the response of a claimed request, kept for `ttl`.
    async fn complete(
        &self,
        key: &str,
        token: &ClaimToken,
        response: &StoredResponse,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Gives up a claim (the handler failed before producing a response).
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError>;
{% if messaging == "nats" %}

    /// Keeps a claim in flight for `in_flight_ttl` from now (a message handler that works past
    /// the claim's first lifetime extends it as it reports progress). An error when the claim
    /// is no longer held. The default keeps the first lifetime: a store of your own should
    /// implement it, or a redelivery of a message whose handler runs long can run beside it.
    async fn extend(
        &self,
        key: &str,
        token: &ClaimToken,
        in_flight_ttl: Duration,
    ) -> Result<(), StoreError> {
        let _ = (key, token, in_flight_ttl);
        Ok(())
    }

    /// [`claim`](Self::claim) for several keys at once, one result per key in order (message
    /// consumers claim what arrives together in one call). The default claims one by one; a
    /// store with a round trip per call should do it in one.
    async fn claim_many(
        &self,
        keys: &[String],
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Vec<Result<Claim, StoreError>> {
        let mut claims = Vec::with_capacity(keys.len());
        for key in keys {
            claims.push(self.claim(key, fingerprint, in_flight_ttl).await);
        }
        claims
    }

    /// [`complete`](Self::complete) for several claims at once, one result per claim in order.
    async fn complete_many(
        &self,
        claims: &[(String, ClaimToken)],
        response: &StoredResponse,
        ttl: Duration,
    ) -> Vec<Result<(), StoreError>> {
        let mut done = Vec::with_capacity(claims.len());
        for (key, token) in claims {
            done.push(self.complete(key, token, response, ttl).await);
        }
        done
    }
{% endif %}

    /// Readiness: the store answers.
    async fn check(&self) -> Result<(), StoreError>;
}
