//! A message handler of the team's own, written into the generated service's `src/app/` by
//! tests/e2e_messaging.rs (not compiled with the tool) and registered the way the template
//! documents: `platform.messaging.consume(handler)` in `routes`.
//!
//! Config (env only): `APP_PROBE__SUBJECT`, the subject it consumes; `APP_PROBE__LOG`, an
//! append-only file where it writes one JSON line when it starts a delivery (`"kind":"start"`)
//! and one when its effect happens (`"kind":"effect"`), so the test counts effects per message.
//! The payload tells it what to do: `{"key": "...", "sleep_ms": N, "fail": "permanent" |
//! "transient", "fail_unless_file": "/path"}` (a permanent failure while the file is absent;
//! the test creates it to "fix" the handler).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::platform::messaging::{self, HandlerError, MessageContext, MessageHandler};
use crate::platform::{BoxError, Platform};

#[derive(Debug, Deserialize)]
struct ProbeConfig {
    subject: String,
    log: PathBuf,
}

/// What one message asks of the handler.
#[derive(Debug, Deserialize)]
pub struct Order {
    key: String,
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    fail: Option<String>,
    #[serde(default)]
    fail_unless_file: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Probe {
    subject: String,
    log: PathBuf,
}

impl Probe {
    /// `None` when `APP_PROBE__SUBJECT` is not set.
    pub fn from_platform(platform: &Platform) -> Result<Option<Self>, BoxError> {
        if std::env::var_os("APP_PROBE__SUBJECT").is_none() {
            return Ok(None);
        }
        let config: ProbeConfig = platform.layers.section("probe")?;
        Ok(Some(Self {
            subject: config.subject,
            log: config.log,
        }))
    }

    fn record(&self, kind: &str, order: &Order, context: &MessageContext) -> Result<(), HandlerError> {
        let line = serde_json::json!({
            "kind": kind,
            "key": order.key,
            "id": context.id,
            "delivery": context.delivery_count,
            "traceparent": context.headers.get("traceparent"),
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(HandlerError::transient)?;
        writeln!(file, "{line}").map_err(HandlerError::transient)?;
        file.sync_data().map_err(HandlerError::transient)
    }
}

#[async_trait]
impl MessageHandler for Probe {
    type Message = Order;

    fn subject(&self) -> &str {
        &self.subject
    }

    fn decode(&self, payload: &[u8]) -> Result<Order, HandlerError> {
        messaging::json(payload)
    }

    async fn handle(&self, order: Order, context: &MessageContext) -> Result<(), HandlerError> {
        self.record("start", &order, context)?;
        tokio::time::sleep(Duration::from_millis(order.sleep_ms)).await;
        match order.fail.as_deref() {
            Some("permanent") => return Err(HandlerError::permanent("the order says fail")),
            Some("transient") => return Err(HandlerError::transient("the order says fail")),
            _ => {}
        }
        if let Some(flag) = &order.fail_unless_file
            && !flag.exists()
        {
            return Err(HandlerError::permanent(format!(
                "not fixed yet: {} is absent",
                flag.display()
            )));
        }
        self.record("effect", &order, context)
    }
}
