//! The broker seam: what the platform needs from a message broker (publish with headers and a
//! message id, durable consumption with acks, dead letters, redrive, a readiness check). NATS
//! JetStream is the adapter shipped (`nats.rs`); another broker is another implementation of
//! [`Broker`], and handlers never see the difference.
//!
//! Managed by the platform.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

/// Message headers in order; a name may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Sets `name` to `value`, replacing any value it had.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.0.push((name.to_owned(), value.into()));
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    }

    /// Checks that every header can go on the wire: a name is printable ASCII without `:` or
    /// spaces, a value is one line (no CR or LF).
    pub fn validate(&self) -> Result<(), BrokerError> {
        for (name, value) in &self.0 {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(BrokerError(format!(
                    "header name {name:?} is not printable ASCII without `:` or spaces"
                )));
            }
            if value.contains(['\r', '\n']) {
                return Err(BrokerError(format!(
                    "header {name}: the value has a line break"
                )));
            }
        }
        Ok(())
    }
}

/// Checks that `subject` is one a message can be published on: dot-separated tokens, none
/// empty, no spaces, no wildcards.
pub fn validate_subject(subject: &str) -> Result<(), BrokerError> {
    let ok = subject.split('.').all(|token| {
        !token.is_empty()
            && token != "*"
            && token != ">"
            && !token.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if ok {
        Ok(())
    } else {
        Err(BrokerError(format!(
            "subject {subject:?} is not dot-separated tokens without spaces or wildcards"
        )))
    }
}

/// Whether `subject` is within `pattern`, with NATS wildcards: `*` matches one token, a final
/// `>` one or more.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(s)) if token == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// A message to publish. `id` becomes the broker's dedupe id (`Nats-Msg-Id`) and the id
/// consumers deduplicate on: give the same event the same id.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub subject: String,
    pub id: String,
    pub headers: Headers,
    pub payload: Vec<u8>,
}

/// What a consumer reads: one durable consumer per handler subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// The durable consumer's name (stable across restarts).
    pub durable: String,
    pub subject: String,
    pub max_deliver: u64,
    pub max_in_flight: usize,
    pub ack_wait: Duration,
    /// Redelivery delays after an ack timeout (the broker's backoff), one per delivery.
    pub backoff: Vec<Duration>,
}

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The handler said the message can never succeed.
    Permanent,
    /// The payload could not be decoded.
    Undecodable,
    /// It failed `max_deliver` deliveries.
    MaxDeliver,
}

impl DeadLetterReason {
    /// Every reason, in declaration order.
    pub const ALL: [Self; 3] = [Self::Permanent, Self::Undecodable, Self::MaxDeliver];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Undecodable => "undecodable",
            Self::MaxDeliver => "max_deliver",
        }
    }
}

/// A failed message on its way to the dead-letter stream: the original payload and headers
/// (traceparent included), and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub subject: String,
    pub sequence: u64,
    pub headers: Headers,
    pub payload: Vec<u8>,
    pub reason: DeadLetterReason,
    pub delivery_count: u64,
    pub error: String,
}

/// A redriven message's original id (a dead letter's id is `<consumer>:<original id>`, and
/// each redrive publishes it with an id of its own): consumers dedupe on it and hand it to the
/// handler as `MessageContext::id`.
pub const ORIGINAL_ID: &str = "Platform-Original-Id";
/// On a redriven message, the durable consumer that dead-lettered it: the only one that runs
/// its handler again (the others acknowledge it, outcome `skipped`).
pub const REDRIVE_FOR: &str = "Platform-Redrive-For";

/// Which dead letters `redrive` puts back: all, those whose original subject is within
/// `subject` (NATS wildcards `*` and `>` allowed), or one by its sequence in the dead-letter
/// stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveFilter {
    pub subject: Option<String>,
    pub sequence: Option<u64>,
    /// Also put back dead letters whose consumer no running service pulls from (they wait in
    /// it); without it they stay dead letters, reported.
    pub allow_idle: bool,
}

/// One dead letter put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// Its sequence in the dead-letter stream (now removed from it).
    pub dead_letter_sequence: u64,
    pub subject: String,
    /// The id it was published again with.
    pub id: String,
    /// The durable consumer it went back to (`None`: a dead letter that names none, for
    /// every consumer of its subject).
    pub consumer: Option<String>,
}

/// What `redrive` did: the dead letters put back, and those it left in place, each with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    pub redriven: Vec<Redriven>,
    /// One line per dead letter kept (its sequence, and why).
    pub kept: Vec<String>,
}

/// The broker failed or could not be reached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("message broker: {0}")]
pub struct BrokerError(pub String);

impl BrokerError {
    pub fn new(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// One delivery of a message to a consumer.
#[async_trait]
pub trait Delivery: Send + Sync {
    fn subject(&self) -> &str;
    fn headers(&self) -> &Headers;
    fn payload(&self) -> &[u8];
    /// 1 on the first delivery.
    fn delivery_count(&self) -> u64;
    /// Its sequence in the stream.
    fn sequence(&self) -> u64;
    /// Messages still waiting for this consumer (its lag) when this one was delivered.
    fn pending(&self) -> u64;
    /// Done: never deliver it again (waits for the broker's confirmation).
    async fn ack(&self) -> Result<(), BrokerError>;
    /// Failed: deliver it again after `delay`.
    async fn nak(&self, delay: Duration) -> Result<(), BrokerError>;
    /// Still working: restart the ack timer.
    async fn in_progress(&self) -> Result<(), BrokerError>;
    /// Never deliver it again, without success (after dead-lettering it).
    async fn term(&self) -> Result<(), BrokerError>;
}

pub type Deliveries = BoxStream<'static, Result<Box<dyn Delivery>, BrokerError>>;

/// A message broker.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Publishes and waits for the broker to store it (a duplicate id is stored once).
    async fn publish(&self, message: OutgoingMessage) -> Result<(), BrokerError>;
    /// Creates (or reuses) the durable consumer `spec` and streams its deliveries, never more
    /// than `spec.max_in_flight` fetched at a time. Once `stop` turns true it asks for no more:
    /// the stream ends with what was already on its way (the caller gives those back).
    async fn consume(
        &self,
        spec: &ConsumerSpec,
        stop: watch::Receiver<bool>,
    ) -> Result<Deliveries, BrokerError>;
    /// Stores a dead letter.
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError>;
    /// Puts dead letters back on their original subjects and removes them from the dead letters.
    /// A dead letter whose consumer is gone from the broker stays (nobody would handle it).
    async fn redrive(&self, filter: &RedriveFilter) -> Result<RedriveReport, BrokerError>;
    /// Messages not yet delivered to the consumer `spec`.
    async fn lag(&self, spec: &ConsumerSpec) -> Result<u64, BrokerError>;
    /// Readiness: the broker answers.
    async fn check(&self) -> Result<(), BrokerError>;
}

#[cfg(test)]
mod tests {
    use super::{subject_matches, validate_subject};

    #[test]
    fn subjects_match_nats_wildcards() {
        for (pattern, subject, matches) in [
            ("a.b", "a.b", true),
            ("a.b", "a.c", false),
            ("a.b", "a.b.c", false),
            ("a.*", "a.b", true),
            ("a.*", "a.b.c", false),
            ("a.*.c", "a.b.c", true),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c", true),
            ("a.>", "a", false),
            (">", "a", true),
            ("a.b.>", "a.b", false),
        ] {
            assert_eq!(
                subject_matches(pattern, subject),
                matches,
                "{pattern} ~ {subject}"
            );
        }
    }

    #[test]
    fn a_publish_subject_has_tokens_and_no_wildcards_or_spaces() {
        assert!(validate_subject("a.b_c-d.e").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a.\nb"] {
            assert!(validate_subject(bad).is_err(), "{bad:?}");
        }
    }
}
