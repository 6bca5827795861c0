//! In-process idempotency store: the default, correct for a single replica (entries are lost
//! on restart and not shared between replicas). Also what the tests use.
//!
//! Managed by the platform.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::store::{Claim, ClaimToken, IdempotencyStore, StoreError, StoredResponse};

#[derive(Debug)]
enum State {
    InFlight(ClaimToken),
    Completed(StoredResponse),
}

#[derive(Debug)]
struct Entry {
    fingerprint: String,
    state: State,
    expires_at: Instant,
}

/// Entries in a mutex-guarded map; expired entries are swept as new ones arrive.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        in_flight_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, entry| entry.expires_at > now);
        }
        if let Some(entry) = entries.get(key).filter(|entry| entry.expires_at > now) {
            return Ok(if entry.fingerprint != fingerprint {
                Claim::Mismatch
            } else {
                match &entry.state {
                    State::InFlight(_) => Claim::InFlight,
                    State::Completed(response) => Claim::Completed(response.clone()),
                }
            });
        }
        let token = ClaimToken::generate();
        entries.insert(
            key.to_owned(),
            Entry {
                fingerprint: fingerprint.to_owned(),
                state: State::InFlight(token.clone()),
                expires_at: now + in_flight_ttl,
            },
        );
        Ok(Claim::Claimed(token))
    }

    async fn complete(
        &self,
        key: &str,
        token: &ClaimToken,
        response: &StoredResponse,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(key) {
            Some(entry) if matches!(&entry.state, State::InFlight(t) if t == token) => {
                entry.state = State::Completed(response.clone());
                entry.expires_at = Instant::now() + ttl;
                Ok(())
            }
            _ => Err(StoreError(format!(
                "claim on {key:?} was lost before completion"
            ))),
        }
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .get(key)
            .is_some_and(|entry| matches!(&entry.state, State::InFlight(t) if t == token))
        {
            entries.remove(key);
        }
        Ok(())
    }

{% if messaging == "nats" %}
    async fn extend(
        &self,
        key: &str,
        token: &ClaimToken,
        in_flight_ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(key) {
            Some(entry) if matches!(&entry.state, State::InFlight(t) if t == token) => {
                entry.expires_at = Instant::now() + in_flight_ttl;
                Ok(())
            }
            _ => Err(StoreError(format!("claim on {key:?} is no longer held"))),
        }
    }

{% endif %}
    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
