//! The platform: everything that makes this a production service (config, telemetry, auth,
//! audit, flags, idempotency, health, metrics, shutdown). Managed by `cargo platform`: upgrades
//! merge changes into these files, so prefer the extension points in `src/app/mod.rs` over
//! editing them.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod flags;
pub mod http;
pub mod http_client;
pub mod idempotency;
{% if messaging == "nats" %}
pub mod messaging;
{% endif %}
pub mod metrics;
pub mod server;
pub mod telemetry;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;

use self::audit::Audit;
use self::auth::{Authenticator, Hs256Secret, JwksKeySource, KeySource};
use self::config::{Algorithm, Config, Layers};
use self::flags::file::FileFlagProvider;
use self::flags::{FlagProvider, Flags};
use self::http::health::Health;
use self::http_client::HttpClients;
use self::idempotency::{Idempotency, IdempotencyStore};
{% if messaging == "nats" %}
use self::messaging::{Broker, Messaging, MessagingConfig};
{% endif %}

pub use self::error::Problem;

/// Installs the TLS crypto provider (ring) used by outgoing HTTPS clients (JWKS, OTLP export).
/// Safe to call more than once.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Boxed error for startup paths.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The platform's shared handles, given to your routes.
#[derive(Clone, Debug)]
pub struct Platform {
    pub config: Arc<Config>,
    /// The config layers, to read your own sections.
    pub layers: Layers,
    pub auth: Arc<Authenticator>,
    /// Audit events (also available to handlers as the `audit::Auditor` extractor).
    pub audit: Audit,
    pub flags: Flags,
    pub idempotency: Idempotency,
    pub metrics: PrometheusHandle,
    pub health: Health,
    /// Clients of the dependencies in `[http_client.<name>]`: `http_clients.get("orders")?`.
    pub http_clients: HttpClients,
{% if messaging == "nats" %}
    /// Publish events and register message handlers (`[messaging]`, src/platform/messaging/).
    pub messaging: Messaging,
{% endif %}
}

/// Builds a [`Platform`]; each `with_*` swaps in your own implementation of an extension point.
pub struct PlatformBuilder {
    config: Config,
    layers: Layers,
    key_source: Option<Arc<dyn KeySource>>,
    flag_provider: Option<Arc<dyn FlagProvider>>,
    idempotency_store: Option<Arc<dyn IdempotencyStore>>,
{% if messaging == "nats" %}
    broker: Option<Arc<dyn Broker>>,
{% endif %}
}

impl std::fmt::Debug for PlatformBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PlatformBuilder {
    pub fn new(config: Config, layers: Layers) -> Self {
        Self {
            config,
            layers,
            key_source: None,
            flag_provider: None,
            idempotency_store: None,
{% if messaging == "nats" %}
            broker: None,
{% endif %}
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Verify tokens with these keys instead of `auth.hs256_secret` / `auth.jwks_url`.
    pub fn with_key_source(mut self, source: Arc<dyn KeySource>) -> Self {
        self.key_source = Some(source);
        self
    }

    /// Resolve flags with this provider instead of the `flags.file` provider.
    pub fn with_flag_provider(mut self, provider: Arc<dyn FlagProvider>) -> Self {
        self.flag_provider = Some(provider);
        self
    }

    /// Keep idempotency records in this store instead of the one chosen at scaffold time.
    pub fn with_idempotency_store(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.idempotency_store = Some(store);
        self
    }

{% if messaging == "nats" %}
    /// Use this message broker instead of connecting to NATS at `messaging.url`.
    pub fn with_broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

{% endif %}
    /// Builds the handles; starts the flag file watcher (needs a Tokio runtime).
    pub async fn build(self) -> Result<Platform, BoxError> {
        let config = self.config;
        let key_source = match self.key_source {
            Some(source) => source,
            None => default_key_source(&config).await?,
        };
        let flag_provider = match self.flag_provider {
            Some(provider) => provider,
            None => {
                let provider = Arc::new(FileFlagProvider::open(&config.flags.file));
                provider.watch(Duration::from_secs(config.flags.reload_interval_secs));
                provider as Arc<dyn FlagProvider>
            }
        };
        let store = match self.idempotency_store {
            Some(store) => store,
            None => default_store(&config)?,
        };
        let idempotency = Idempotency::new(
            store.clone(),
            Duration::from_secs(config.idempotency.record_ttl_secs),
            Duration::from_secs(config.idempotency.in_flight_ttl_secs),
            config.server.body_limit_bytes,
        );
        let metrics = metrics::install();
        let http_clients = HttpClients::from_layers(&self.layers)?;
        http_clients.check_within_request_timeout(Duration::from_secs(
            config.server.request_timeout_secs,
        ))?;
{% if messaging == "nats" %}
        let messaging_config = MessagingConfig::from_layers(&self.layers)?;
        let broker = match self.broker {
            Some(broker) => broker,
            None => Arc::new(messaging::nats::NatsBroker::connect(&messaging_config).await?),
        };
{% if idempotency_store == "postgres" %}
        let outbox = messaging::outbox::Outbox::connect_lazy(
            config.idempotency.url.expose_secret(),
            &messaging_config,
        )?;
{% endif %}
        let messaging = Messaging::new(
            broker.clone(),
            store.clone(),
            messaging_config,
            Duration::from_secs(config.idempotency.record_ttl_secs),
        );
{% if idempotency_store == "postgres" %}
        let messaging = messaging.with_outbox(outbox);
{% endif %}
{% endif %}
        Ok(Platform {
            auth: Arc::new(Authenticator::new(&config.auth, key_source)),
            audit: Audit::new(&config.audit),
            flags: Flags::new(flag_provider),
            idempotency,
            metrics,
{% if messaging == "nats" %}
            health: Health::new(store)
                .with_broker(broker)
                .with_consumers(messaging.consumer_states()),
            http_clients,
            messaging,
{% else %}
            health: Health::new(store),
            http_clients,
{% endif %}
            config: Arc::new(config),
            layers: self.layers,
        })
    }
}

async fn default_key_source(config: &Config) -> Result<Arc<dyn KeySource>, BoxError> {
    Ok(match config.auth.algorithm {
        Algorithm::HS256 => Arc::new(Hs256Secret::new(config.auth.hs256_secret.expose_secret())?),
        Algorithm::RS256 | Algorithm::ES256 => {
            let source = JwksKeySource::new(
                config.auth.jwks_url.clone(),
                Duration::from_secs(config.auth.jwks_refresh_cooldown_secs),
            )?;
            // Warm the cache; on failure the first token triggers another try.
            let _ = source.refresh().await;
            Arc::new(source)
        }
    })
}
{% if idempotency_store == "postgres" %}
fn default_store(config: &Config) -> Result<Arc<dyn IdempotencyStore>, BoxError> {
    let store = idempotency::postgres::PostgresStore::connect_lazy(
        config.idempotency.url.expose_secret(),
        Duration::from_millis(config.idempotency.store_timeout_ms),
    )?;
    store.sweep(Duration::from_secs(600));
    Ok(Arc::new(store))
}
{% elif idempotency_store == "redis" %}
fn default_store(config: &Config) -> Result<Arc<dyn IdempotencyStore>, BoxError> {
    Ok(Arc::new(idempotency::redis::RedisStore::new(
        config.idempotency.url.expose_secret(),
        Duration::from_millis(config.idempotency.store_timeout_ms),
    )?))
}
{% else %}
fn default_store(_config: &Config) -> Result<Arc<dyn IdempotencyStore>, BoxError> {
    Ok(Arc::new(idempotency::MemoryStore::new()))
}
{% endif %}
