//! Where token verification keys come from: a [`KeySource`] trait with two implementations,
//! an HS256 shared secret (local development) and a JWKS document (production: keys cached by
//! `kid`, refetched on an unknown `kid` at most once per cooldown, last good keys kept when a
//! fetch fails).
//!
//! Managed by the platform.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};

/// A key could not be found or fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// No key matches the token: the token is invalid.
    #[error("no key: {0}")]
    Unknown(String),
    /// The key source is down and has no key for this token.
    #[error("key source unavailable: {0}")]
    Unavailable(String),
}

/// Supplies the key that verifies a token. Implement it to plug in another key source.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The key for a token whose header names `kid` (`None` when the header has no `kid`).
    async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, KeyError>;
}

/// One shared HS256 secret.
pub struct Hs256Secret(Arc<DecodingKey>);

impl Hs256Secret {
    /// Fails on an empty secret (config validation already refuses one shorter than 16 bytes).
    pub fn new(secret: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self(Arc::new(DecodingKey::from_secret(secret.as_bytes())?)))
    }
}

#[async_trait]
impl KeySource for Hs256Secret {
    async fn key(&self, _kid: Option<&str>) -> Result<Arc<DecodingKey>, KeyError> {
        Ok(self.0.clone())
    }
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Arc<DecodingKey>>,
    last_fetch: Option<Instant>,
}

/// Keys from a JWKS URL.
pub struct JwksKeySource {
    url: String,
    client: reqwest::Client,
    cooldown: Duration,
    cache: RwLock<Cache>,
    fetching: tokio::sync::Mutex<()>,
}

impl JwksKeySource {
    pub fn new(url: impl Into<String>, cooldown: Duration) -> Result<Self, reqwest::Error> {
        crate::platform::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            url: url.into(),
            client,
            cooldown,
            cache: RwLock::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        match kid {
            Some(kid) => cache.keys.get(kid).cloned(),
            // A token without `kid` is accepted only when the set holds exactly one key.
            None if cache.keys.len() == 1 => cache.keys.values().next().cloned(),
            None => None,
        }
    }

    /// Fetches the document and replaces the cache; on failure the cache is kept.
    pub async fn refresh(&self) -> Result<usize, String> {
        let result = self.fetch().await;
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.last_fetch = Some(Instant::now());
        match result {
            Ok(keys) => {
                let count = keys.len();
                cache.keys = keys;
                tracing::info!(url = %self.url, keys = count, "JWKS refreshed");
                Ok(count)
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, kept = cache.keys.len(), "JWKS fetch failed; keeping the last good keys");
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let response = response.error_for_status().map_err(|e| e.to_string())?;
        let set: JwkSet = response.json().await.map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, Arc::new(key));
                }
                Err(error) => tracing::warn!(%kid, %error, "skipping unusable JWK"),
            }
        }
        if keys.is_empty() {
            return Err("the JWKS document holds no usable signing key".to_owned());
        }
        Ok(keys)
    }
}

#[async_trait]
impl KeySource for JwksKeySource {
    async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, KeyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let _guard = self.fetching.lock().await;
        // Another request may have refreshed while we waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let last_fetch = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last_fetch;
        let cooling = last_fetch.is_some_and(|at| at.elapsed() < self.cooldown);
        if !cooling && let Err(error) = self.refresh().await {
            let empty = self
                .cache
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys
                .is_empty();
            if empty {
                return Err(KeyError::Unavailable(error));
            }
        }
        self.cached(kid).ok_or_else(|| {
            KeyError::Unknown(format!("no signing key with kid {:?}", kid.unwrap_or("")))
        })
    }
}
