//! A [`FlagProvider`] reading a flagd flag-definition file
//! (`{"flags": {"name": {"state": "ENABLED", "variants": {...}, "defaultVariant": "on"}}}`).
//!
//! The file is polled for changes; a new version is validated before it is swapped in, and an
//! invalid one is logged and ignored (the last good flags stay). A missing file means no flags:
//! every call gets the default in code.
//!
//! Managed by the platform.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvaluationContext, FlagError, FlagProvider, Reason, ResolutionDetails, targeting};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum State {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlagDefinition {
    state: State,
    variants: Map<String, Value>,
    default_variant: String,
    #[serde(default)]
    targeting: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct FlagFile {
    #[serde(default)]
    flags: HashMap<String, FlagDefinition>,
}

/// A validated set of flags.
#[derive(Debug, Default)]
pub struct FlagSet {
    flags: HashMap<String, FlagDefinition>,
}

impl FlagSet {
    /// Parses and validates a flag file's contents.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: FlagFile =
            serde_json::from_str(text).map_err(|e| format!("not a flagd flag file: {e}"))?;
        for (name, flag) in &file.flags {
            if flag.variants.is_empty() {
                return Err(format!("flag `{name}`: `variants` is empty"));
            }
            if !flag.variants.contains_key(&flag.default_variant) {
                return Err(format!(
                    "flag `{name}`: defaultVariant `{}` is not one of its variants",
                    flag.default_variant
                ));
            }
            let mut kinds = flag.variants.values().map(kind);
            let first = kinds.next().unwrap_or("null");
            if kinds.any(|k| k != first) {
                return Err(format!(
                    "flag `{name}`: variants must all have the same type"
                ));
            }
            if let Some(rule) = &flag.targeting {
                targeting::validate(rule).map_err(|e| format!("flag `{name}`: {e}"))?;
            }
        }
        Ok(Self { flags: file.flags })
    }

    pub fn len(&self) -> usize {
        self.flags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    fn resolve(
        &self,
        name: &str,
        context: &EvaluationContext,
    ) -> Result<ResolutionDetails<Value>, FlagError> {
        let flag = self.flags.get(name).ok_or(FlagError::FlagNotFound)?;
        if flag.state == State::Disabled {
            return Ok(ResolutionDetails {
                value: Value::Null,
                variant: None,
                reason: Reason::Disabled,
                error: None,
            });
        }
        let (variant, reason) = match flag
            .targeting
            .as_ref()
            .filter(|rule| rule.as_object().is_none_or(|o| !o.is_empty()))
        {
            None => (flag.default_variant.clone(), Reason::Static),
            Some(rule) => {
                let mut data = context.attributes.clone();
                if let Some(key) = &context.targeting_key {
                    data.insert("targetingKey".to_owned(), Value::String(key.clone()));
                }
                data.insert("$flagd.flagKey".to_owned(), Value::String(name.to_owned()));
                match targeting::evaluate(rule, &data) {
                    Value::Null => (flag.default_variant.clone(), Reason::Default),
                    Value::String(variant) => (variant, Reason::TargetingMatch),
                    Value::Bool(b) => (b.to_string(), Reason::TargetingMatch),
                    other => {
                        return Err(FlagError::General(format!(
                            "targeting returned {other}, not a variant name"
                        )));
                    }
                }
            }
        };
        let value = flag.variants.get(&variant).cloned().ok_or_else(|| {
            FlagError::General(format!("targeting chose unknown variant `{variant}`"))
        })?;
        Ok(ResolutionDetails {
            value,
            variant: Some(variant),
            reason,
            error: None,
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Flags from a flagd file, hot-reloaded.
#[derive(Debug)]
pub struct FileFlagProvider {
    path: PathBuf,
    flags: RwLock<Arc<FlagSet>>,
    /// (modified time, length) of the file last looked at.
    seen: Mutex<Option<(SystemTime, u64)>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Loaded {
        flags: usize,
    },
    /// The file is gone: the last good flags stay.
    Missing,
}

impl FileFlagProvider {
    /// Opens `path`. A missing or invalid file is logged; the provider then has no flags until
    /// a valid file appears.
    pub fn open(path: impl Into<PathBuf>) -> Self {
        let provider = Self {
            path: path.into(),
            flags: RwLock::new(Arc::default()),
            seen: Mutex::new(None),
        };
        match provider.reload() {
            Ok(Reload::Missing) => {
                tracing::warn!(path = %provider.path.display(), "flag file not found; flags use their defaults in code")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(path = %provider.path.display(), %error, "invalid flag file; flags use their defaults in code")
            }
        }
        provider
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let metadata = std::fs::metadata(&self.path).ok()?;
        Some((metadata.modified().ok()?, metadata.len()))
    }

    /// Reads the file now. On error the current flags are kept.
    pub fn reload(&self) -> Result<Reload, String> {
        let stamp = self.stamp();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Reload::Missing),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let set = FlagSet::parse(&text)?;
        let count = set.len();
        *self.flags.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        tracing::info!(path = %self.path.display(), flags = count, "flag file loaded");
        Ok(Reload::Loaded { flags: count })
    }

    /// Reloads if the file's modification time or size changed since the last look.
    pub fn reload_if_changed(&self) -> Result<Reload, String> {
        let stamp = self.stamp();
        if stamp == *self.seen.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(Reload::Unchanged);
        }
        self.reload()
    }

    /// Polls the file every `interval` until the process ends.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let provider = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match provider.reload_if_changed() {
                    Ok(Reload::Missing) => {
                        tracing::warn!(path = %provider.path.display(), "flag file disappeared; keeping the last good flags")
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(path = %provider.path.display(), %error, "invalid flag file; keeping the last good flags")
                    }
                }
            }
        })
    }

    fn current(&self) -> Arc<FlagSet> {
        self.flags.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl FlagProvider for FileFlagProvider {
    fn name(&self) -> &str {
        "flagd-file"
    }

    async fn resolve_value(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> Result<ResolutionDetails<Value>, FlagError> {
        self.current().resolve(flag, context)
    }
}
