//! Layered configuration: `config/default.toml`, then `config/$APP_ENV.toml`, then `APP_*`
//! environment variables (`__` separates nesting: `APP_SERVER__PORT` sets `server.port`).
//!
//! Managed by the platform. Your own settings go in your own section (see how `src/app/mod.rs` reads `items`);
//! this module only validates the platform's sections and hands you the rest.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The HS256 secret shipped for local development. The production profile refuses it.
pub const DEV_HS256_SECRET: &str = "local-dev-secret-change-me";

/// Environment variable that selects the profile (`local` when unset).
pub const PROFILE_ENV: &str = "APP_ENV";
/// Environment variable that points at the config directory (`config` when unset).
pub const CONFIG_DIR_ENV: &str = "APP_CONFIG_DIR";

const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../config/default.toml")),
    ("local", include_str!("../../config/local.toml")),
    ("production", include_str!("../../config/production.toml")),
];

/// The platform's configuration sections.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The profile that was loaded (`APP_ENV`).
    #[serde(skip)]
    pub profile: String,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub telemetry: TelemetryConfig,
    pub flags: FlagsConfig,
    pub idempotency: IdempotencyConfig,
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// A request still running after this long is answered with 503.
    pub request_timeout_secs: u64,
    /// Larger request bodies are answered with 413.
    pub body_limit_bytes: usize,
    /// How long shutdown waits for in-flight requests before giving up.
    pub shutdown_grace_secs: u64,
}

/// Signing algorithms a deployment may pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    HS256,
    RS256,
    ES256,
}

impl Algorithm {
    pub fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub algorithm: Algorithm,
    pub issuer: String,
    pub audience: String,
    /// Shared secret, used only when `algorithm = "HS256"`. Redacted in `Debug` output.
    pub hs256_secret: SecretString,
    /// JWKS document, used when `algorithm` is RS256 or ES256.
    pub jwks_url: String,
    /// Minimum time between two JWKS fetches triggered by an unknown `kid`.
    pub jwks_refresh_cooldown_secs: u64,
    /// Clock skew tolerated on `exp`.
    pub leeway_secs: u64,
    /// How long an accepted token is accepted again without checking its signature (never
    /// past its `exp`); 0 checks every request.
    #[serde(default = "default_token_cache_secs")]
    pub token_cache_secs: u64,
}

fn default_token_cache_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Used unless `OTEL_SERVICE_NAME` is set.
    pub service_name: String,
    /// OTLP/HTTP base URL (e.g. `http://collector:4318`). Empty: spans are not exported, unless
    /// the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagsConfig {
    /// Flag definitions in the flagd file format.
    pub file: PathBuf,
    /// How often the file is checked for changes.
    pub reload_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a completed request's stored response is kept and replayed.
    pub record_ttl_secs: u64,
    /// How long a claim stays in flight before another request may take it over (a crashed
    /// replica). Must exceed `server.request_timeout_secs`.
    pub in_flight_ttl_secs: u64,
{% if idempotency_store != "memory" %}
    /// {% if idempotency_store == "postgres" %}PostgreSQL{% else %}Redis{% endif %} URL of the idempotency store (it may carry a password: redacted in `Debug`
    /// output).
    pub url: SecretString,
    /// A store call slower than this counts as an outage (503).
    pub store_timeout_ms: u64,
{% endif %}
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Audit events on the `audit` log target (see `platform::audit`).
    pub enabled: bool,
}

/// A configuration problem; its message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", describe(.0))]
    Load(Box<figment::Error>),
    #[error("invalid configuration: `{key}` (env {env}): {message}", env = env_name(key))]
    Invalid { key: String, message: String },
    #[error(
        "unknown profile `{profile}`: no {path} and no built-in profile of that name (set {PROFILE_ENV})"
    )]
    UnknownProfile { profile: String, path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        Self::Load(Box::new(error))
    }
}

/// One line per problem: the dotted key, its env var, what is wrong and where it came from.
fn describe(error: &figment::Error) -> String {
    let lines: Vec<String> = (*error)
        .clone()
        .into_iter()
        .map(|error| {
            let source = error
                .metadata
                .as_ref()
                .map_or_else(String::new, |md| match &md.source {
                    Some(source) => format!(" (from {} {source})", md.name),
                    None => format!(" (from {})", md.name),
                });
            let key = error.path.join(".").to_lowercase();
            if key.is_empty() {
                format!("invalid configuration: {}{source}", error.kind)
            } else {
                format!(
                    "invalid configuration: `{key}` (env {}): {}{source}",
                    env_name(&key),
                    error.kind
                )
            }
        })
        .collect();
    lines.join("\n")
}

/// The env var that sets a dotted key: `server.port` → `APP_SERVER__PORT`.
pub fn env_name(key: &str) -> String {
    format!("APP_{}", key.replace('.', "__").to_uppercase())
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// The merged layers, from which the platform's and your sections are read.
#[derive(Debug, Clone)]
pub struct Layers {
    figment: Figment,
    profile: String,
}

impl Layers {
    /// Reads the layers from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let profile = std::env::var(PROFILE_ENV).unwrap_or_else(|_| "local".to_owned());
        let dir =
            std::env::var_os(CONFIG_DIR_ENV).map_or_else(|| PathBuf::from("config"), PathBuf::from);
        Self::load(
            &dir,
            &profile,
            Env::prefixed("APP_")
                .split("__")
                .filter(|key| key.as_str().contains('.')),
        )
    }

    /// Reads the layers from `dir` for `profile`, with `env` on top.
    pub fn load(dir: &Path, profile: &str, env: Env) -> Result<Self, ConfigError> {
        if profile.is_empty()
            || !profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "APP_ENV",
                format!("`{profile}` is not a profile name"),
            ));
        }
        let figment = Figment::new()
            .merge(
                layer(dir, "default")?.ok_or_else(|| ConfigError::UnknownProfile {
                    profile: "default".to_owned(),
                    path: dir.join("default.toml"),
                })?,
            )
            .merge(
                layer(dir, profile)?.ok_or_else(|| ConfigError::UnknownProfile {
                    profile: profile.to_owned(),
                    path: dir.join(format!("{profile}.toml")),
                })?,
            )
            .merge(env);
        Ok(Self {
            figment,
            profile: profile.to_owned(),
        })
    }

    /// Builds layers from TOML text alone (tests).
    pub fn from_toml(text: &str) -> Self {
        let figment = Figment::new()
            .merge(Toml::string(builtin("default").unwrap_or_default()))
            .merge(Toml::string(text));
        Self {
            figment,
            profile: "test".to_owned(),
        }
    }

    /// Overrides one key (tests and tools): `set("server.port", 0)`.
    pub fn set(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.figment = self
            .figment
            .merge(figment::providers::Serialized::default(key, value));
        self
    }

    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Reads and validates the platform's sections.
    pub fn platform(&self) -> Result<Config, ConfigError> {
        let mut config: Config = self.figment.extract()?;
        config.profile = self.profile.clone();
        config.validate()?;
        Ok(config)
    }

    /// Reads one of your sections, e.g. `layers.section::<ItemsConfig>("items")`.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        Ok(self.figment.extract_inner(key)?)
    }
}

fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The file `dir/name.toml` if it exists, else the copy built into the binary.
fn layer(dir: &Path, name: &str) -> Result<Option<figment::providers::Data<Toml>>, ConfigError> {
    let path = dir.join(format!("{name}.toml"));
    match std::fs::metadata(&path) {
        Ok(_) => Ok(Some(Toml::file_exact(path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(builtin(name).map(Toml::string)),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

impl Config {
    /// Loads the configuration of this process (`APP_ENV`, `config/`, `APP_*`).
    pub fn from_env() -> Result<(Self, Layers), ConfigError> {
        let layers = Layers::from_env()?;
        Ok((layers.platform()?, layers))
    }

    pub fn is_production(&self) -> bool {
        self.profile == "production"
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.port == 0 && self.profile != "test" {
            return Err(invalid("server.port", "must be between 1 and 65535"));
        }
        if self.server.request_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "must be at least 1"));
        }
        if self.server.body_limit_bytes == 0 {
            return Err(invalid("server.body_limit_bytes", "must be at least 1"));
        }
        let auth = &self.auth;
        if auth.issuer.trim().is_empty() {
            return Err(invalid("auth.issuer", "must be set"));
        }
        if auth.audience.trim().is_empty() {
            return Err(invalid("auth.audience", "must be set"));
        }
        match auth.algorithm {
            Algorithm::HS256 => {
                if auth.hs256_secret.expose_secret().len() < 16 {
                    return Err(invalid(
                        "auth.hs256_secret",
                        "must be at least 16 bytes when auth.algorithm = \"HS256\"",
                    ));
                }
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                if !(auth.jwks_url.starts_with("https://") || auth.jwks_url.starts_with("http://"))
                {
                    return Err(invalid(
                        "auth.jwks_url",
                        format!(
                            "must be an http(s) URL when auth.algorithm = \"{:?}\"",
                            auth.algorithm
                        ),
                    ));
                }
            }
        }
        if self.is_production() && auth.hs256_secret.expose_secret() == DEV_HS256_SECRET {
            return Err(invalid(
                "auth.hs256_secret",
                "is the local development secret; the production profile refuses it",
            ));
        }
        if self.flags.reload_interval_secs == 0 {
            return Err(invalid("flags.reload_interval_secs", "must be at least 1"));
        }
        let idem = &self.idempotency;
        if idem.record_ttl_secs == 0 {
            return Err(invalid("idempotency.record_ttl_secs", "must be at least 1"));
        }
        if idem.in_flight_ttl_secs <= self.server.request_timeout_secs {
            return Err(invalid(
                "idempotency.in_flight_ttl_secs",
                format!(
                    "must exceed server.request_timeout_secs ({})",
                    self.server.request_timeout_secs
                ),
            ));
        }
{% if idempotency_store == "postgres" %}
        let url = idem.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("idempotency.url", "must be a postgres:// URL"));
        }
{% elif idempotency_store == "redis" %}
        let url = idem.url.expose_secret();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(invalid(
                "idempotency.url",
                "must be a redis:// or rediss:// URL",
            ));
        }
{% endif %}
{% if idempotency_store != "memory" %}
        if idem.store_timeout_ms == 0 {
            return Err(invalid(
                "idempotency.store_timeout_ms",
                "must be at least 1",
            ));
        }
{% endif %}
        Ok(())
    }
}
