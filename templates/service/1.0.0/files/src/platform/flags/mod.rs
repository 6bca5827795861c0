//! Feature flags, shaped like OpenFeature: a [`FlagProvider`] resolves a flag for an
//! [`EvaluationContext`] (whose targeting key is the caller's subject) into
//! [`ResolutionDetails`]; [`Flags`] is the client your code calls, with the default in code.
//!
//! Managed by the platform. The shipped provider reads a flagd flag file and reloads it when it
//! changes ([`file::FileFlagProvider`]); to use another flag service, implement [`FlagProvider`]
//! and pass it in `src/app/mod.rs` (`customize`).

pub mod file;
mod targeting;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Who/what a flag is evaluated for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    /// The caller's subject (`Principal::subject`).
    pub targeting_key: Option<String>,
    /// Extra attributes that targeting rules may read.
    pub attributes: Map<String, Value>,
}

impl EvaluationContext {
    pub fn new(targeting_key: impl Into<String>) -> Self {
        Self {
            targeting_key: Some(targeting_key.into()),
            attributes: Map::new(),
        }
    }

    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// Why a flag has the value it has (OpenFeature reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The flag has one value for everyone.
    Static,
    /// The flag's default variant (no targeting rule matched).
    Default,
    /// A targeting rule chose the variant.
    TargetingMatch,
    /// The flag is disabled: the default in code applies.
    Disabled,
    /// Resolution failed: the default in code applies.
    Error,
}

/// Why resolution failed (OpenFeature error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("flag not found")]
    FlagNotFound,
    #[error("flag value has another type")]
    TypeMismatch,
    #[error("provider not ready: {0}")]
    ProviderNotReady(String),
    #[error("{0}")]
    General(String),
}

/// The outcome of resolving a flag.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolutionDetails<T> {
    pub value: T,
    pub variant: Option<String>,
    pub reason: Reason,
    pub error: Option<FlagError>,
}

impl<T> ResolutionDetails<T> {
    fn fallback(value: T, reason: Reason, error: Option<FlagError>) -> Self {
        Self {
            value,
            variant: None,
            reason,
            error,
        }
    }
}

/// A source of flag values. Implement [`FlagProvider::resolve_value`]; the typed methods are
/// built on it (override them if your backend has typed calls).
#[async_trait]
pub trait FlagProvider: Send + Sync + 'static {
    /// The provider's name, for logs.
    fn name(&self) -> &str;

    /// Resolves `flag` to its JSON value. A disabled flag resolves with reason `Disabled`.
    async fn resolve_value(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> Result<ResolutionDetails<Value>, FlagError>;

    async fn resolve_boolean(
        &self,
        flag: &str,
        default: bool,
        context: &EvaluationContext,
    ) -> ResolutionDetails<bool> {
        typed(
            self.resolve_value(flag, context).await,
            default,
            Value::as_bool,
        )
    }

    async fn resolve_string(
        &self,
        flag: &str,
        default: String,
        context: &EvaluationContext,
    ) -> ResolutionDetails<String> {
        typed(self.resolve_value(flag, context).await, default, |v| {
            v.as_str().map(str::to_owned)
        })
    }

    async fn resolve_int(
        &self,
        flag: &str,
        default: i64,
        context: &EvaluationContext,
    ) -> ResolutionDetails<i64> {
        typed(
            self.resolve_value(flag, context).await,
            default,
            Value::as_i64,
        )
    }

    async fn resolve_float(
        &self,
        flag: &str,
        default: f64,
        context: &EvaluationContext,
    ) -> ResolutionDetails<f64> {
        typed(
            self.resolve_value(flag, context).await,
            default,
            Value::as_f64,
        )
    }
}

fn typed<T>(
    resolved: Result<ResolutionDetails<Value>, FlagError>,
    default: T,
    convert: impl Fn(&Value) -> Option<T>,
) -> ResolutionDetails<T> {
    match resolved {
        Ok(details) if details.reason == Reason::Disabled => {
            ResolutionDetails::fallback(default, Reason::Disabled, None)
        }
        Ok(details) => match convert(&details.value) {
            Some(value) => ResolutionDetails {
                value,
                variant: details.variant,
                reason: details.reason,
                error: None,
            },
            None => {
                ResolutionDetails::fallback(default, Reason::Error, Some(FlagError::TypeMismatch))
            }
        },
        Err(error) => ResolutionDetails::fallback(default, Reason::Error, Some(error)),
    }
}

/// The flag client handlers use: `flags.boolean("my-flag", false, &ctx).await`.
#[derive(Clone)]
pub struct Flags(Arc<dyn FlagProvider>);

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Flags").field(&self.0.name()).finish()
    }
}

fn log<T: std::fmt::Debug>(flag: &str, details: &ResolutionDetails<T>) {
    match &details.error {
        Some(FlagError::FlagNotFound) => {
            tracing::debug!(flag, "flag not defined; using the default in code")
        }
        Some(error) => {
            tracing::warn!(flag, %error, "flag resolution failed; using the default in code")
        }
        None => {
            tracing::debug!(flag, value = ?details.value, reason = ?details.reason, "flag resolved")
        }
    }
}

impl Flags {
    pub fn new(provider: Arc<dyn FlagProvider>) -> Self {
        Self(provider)
    }

    pub fn provider(&self) -> &Arc<dyn FlagProvider> {
        &self.0
    }

    pub async fn boolean(&self, flag: &str, default: bool, context: &EvaluationContext) -> bool {
        let details = self.0.resolve_boolean(flag, default, context).await;
        log(flag, &details);
        details.value
    }

    pub async fn string(&self, flag: &str, default: &str, context: &EvaluationContext) -> String {
        let details = self
            .0
            .resolve_string(flag, default.to_owned(), context)
            .await;
        log(flag, &details);
        details.value
    }

    pub async fn int(&self, flag: &str, default: i64, context: &EvaluationContext) -> i64 {
        let details = self.0.resolve_int(flag, default, context).await;
        log(flag, &details);
        details.value
    }

    pub async fn float(&self, flag: &str, default: f64, context: &EvaluationContext) -> f64 {
        let details = self.0.resolve_float(flag, default, context).await;
        log(flag, &details);
        details.value
    }
}
