//! JSON log lines: `timestamp`, `level`, `target`, `message`, the event's fields, and — on
//! every line emitted while serving a request — `request_id` and `trace_id`.
//!
//! Managed by the platform.

use std::io::Write as _;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Span fields copied onto every log line emitted inside the span.
const CONTEXT_FIELDS: [&str; 2] = ["request_id", "trace_id"];

/// The log filter from `RUST_LOG` (`info` when unset or unparsable).
pub fn filter_from_env() -> Targets {
    match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value.parse().unwrap_or_else(|error| {
            eprintln!("RUST_LOG={value:?} is not a valid filter ({error}); using `info`");
            Targets::new().with_default(tracing::Level::INFO)
        }),
        _ => Targets::new().with_default(tracing::Level::INFO),
    }
}

/// Writes one JSON object per event.
#[derive(Debug)]
pub struct JsonLayer<W> {
    writer: W,
    filter: Targets,
}

impl<W> JsonLayer<W> {
    pub fn new(writer: W, filter: Targets) -> Self {
        Self { writer, filter }
    }
}

/// The request context captured from span fields (`request_id`, `trace_id`).
#[derive(Debug, Default, Clone)]
struct SpanContext(Vec<(&'static str, Value)>);

impl SpanContext {
    fn merge(&mut self, fields: Vec<(&'static str, Value)>) {
        for (key, value) in fields {
            upsert(&mut self.0, key, value);
        }
    }
}

/// Sets `key` to `value`, replacing an earlier value of the same key.
fn upsert(fields: &mut Vec<(&'static str, Value)>, key: &'static str, value: Value) {
    match fields.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => fields.push((key, value)),
    }
}

impl<S, W> tracing_subscriber::Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // Spans stay enabled so that request context and traces exist whatever RUST_LOG says;
        // events are filtered here.
        metadata.is_span()
            || self
                .filter
                .would_enable(metadata.target(), metadata.level())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = FieldVisitor::context_only();
        attrs.record(&mut visitor);
        if let Some(span) = ctx.span(id)
            && !visitor.fields.is_empty()
        {
            span.extensions_mut().insert(SpanContext(visitor.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut visitor = FieldVisitor::context_only();
        values.record(&mut visitor);
        if visitor.fields.is_empty() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<SpanContext>() {
                Some(context) => context.merge(visitor.fields),
                None => extensions.insert(SpanContext(visitor.fields)),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if !self
            .filter
            .would_enable(metadata.target(), metadata.level())
        {
            return;
        }
        let mut visitor = FieldVisitor::all();
        event.record(&mut visitor);
        let message = visitor
            .fields
            .iter()
            .position(|(key, _)| *key == "message")
            .map(|at| visitor.fields.remove(at).1);

        // The line is written straight into one buffer: fixed keys first, then the request
        // context of the enclosing spans (innermost wins), then the event's own fields. A key
        // already written is not written again.
        let mut line = Vec::with_capacity(384);
        line.extend_from_slice(b"{\"timestamp\":\"");
        let mut timestamp = String::with_capacity(32);
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        line.extend_from_slice(timestamp.as_bytes());
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(metadata.level().as_str().as_bytes());
        line.extend_from_slice(b"\",\"target\":");
        write_json(&mut line, &metadata.target());
        line.extend_from_slice(b",\"message\":");
        match &message {
            Some(value) => write_json(&mut line, value),
            None => line.extend_from_slice(b"\"\""),
        }
        let mut written: Vec<&str> = vec!["timestamp", "level", "target", "message"];
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(context) = span.extensions().get::<SpanContext>() {
                    for (key, value) in &context.0 {
                        if !written.contains(key) {
                            write_field(&mut line, key, value);
                            written.push(key);
                        }
                    }
                }
            }
        }
        for (key, value) in &visitor.fields {
            if !written.contains(key) {
                write_field(&mut line, key, value);
                written.push(key);
            }
        }
        line.extend_from_slice(b"}\n");
        let _ = self.writer.make_writer_for(metadata).write_all(&line);
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serialising a string or a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

fn write_field(out: &mut Vec<u8>, key: &str, value: &Value) {
    out.push(b',');
    write_json(out, key);
    out.push(b':');
    write_json(out, value);
}

struct FieldVisitor {
    fields: Vec<(&'static str, Value)>,
    context_only: bool,
}

impl FieldVisitor {
    fn all() -> Self {
        Self {
            fields: Vec::with_capacity(8),
            context_only: false,
        }
    }

    fn context_only() -> Self {
        Self {
            fields: Vec::new(),
            context_only: true,
        }
    }

    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if self.context_only && !CONTEXT_FIELDS.contains(&name) {
            return;
        }
        // `r#type` and friends arrive with the raw-identifier prefix.
        let name = name.strip_prefix("r#").unwrap_or(name);
        upsert(&mut self.fields, name, value);
    }
}

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}
