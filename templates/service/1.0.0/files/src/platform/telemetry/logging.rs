//! JSON log lines: `timestamp`, `level`, `target`, `message`, the event's fields, and — on
//! every line emitted while serving a request — `request_id` and `trace_id`.
//!
//! Managed by the platform.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
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
        let mut visitor = ContextVisitor::default();
        attrs.record(&mut visitor);
        if let Some(span) = ctx.span(id)
            && !visitor.fields.is_empty()
        {
            span.extensions_mut().insert(SpanContext(visitor.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut visitor = ContextVisitor::default();
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
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.write_event(event, &ctx, &mut scratch),
            // Logging from inside a field's `Debug` while a line is being written.
            Err(_) => self.write_event(event, &ctx, &mut Scratch::default()),
        });
    }
}

impl<W> JsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn write_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, scratch: &mut Scratch)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Scratch {
            written,
            context,
            message,
            fields,
            line,
            clock,
        } = scratch;
        // Keys already on the line are not written again: the fixed keys, then the request
        // context of the enclosing spans (innermost wins), then the event's own fields.
        written.clear();
        written.extend(FIXED_FIELDS);
        context.clear();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(span_context) = span.extensions().get::<SpanContext>() {
                    for (key, value) in &span_context.0 {
                        if !written.contains(key) {
                            write_field(context, key, value);
                            written.push(key);
                        }
                    }
                }
            }
        }
        message.clear();
        fields.clear();
        event.record(&mut EventWriter {
            written,
            message,
            fields,
        });

        let metadata = event.metadata();
        line.clear();
        line.extend_from_slice(b"{\"timestamp\":\"");
        clock.write_now(line);
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(metadata.level().as_str().as_bytes());
        line.extend_from_slice(b"\",\"target\":");
        write_str(line, metadata.target());
        line.extend_from_slice(b",\"message\":");
        if message.is_empty() {
            line.extend_from_slice(b"\"\"");
        } else {
            line.extend_from_slice(message);
        }
        line.extend_from_slice(context);
        line.extend_from_slice(fields);
        line.extend_from_slice(b"}\n");
        let _ = self.writer.make_writer_for(metadata).write_all(line);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// The buffers a thread writes its log lines with, kept from line to line.
#[derive(Default)]
struct Scratch {
    written: Vec<&'static str>,
    context: Vec<u8>,
    message: Vec<u8>,
    fields: Vec<u8>,
    line: Vec<u8>,
    clock: Clock,
}

/// RFC 3339 UTC timestamps with microseconds (`2026-01-31T09:05:00.123456Z`); the part up to
/// the seconds is formatted once per second.
#[derive(Default)]
struct Clock {
    second: Option<i64>,
    prefix: Vec<u8>,
}

impl Clock {
    fn write_now(&mut self, out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.write_at(out, now);
    }

    /// Writes the timestamp `now` (time since the Unix epoch).
    fn write_at(&mut self, out: &mut Vec<u8>, now: Duration) {
        let second = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if self.second != Some(second) {
            let at = time::OffsetDateTime::from_unix_timestamp(second)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            self.prefix.clear();
            let _ = write!(
                self.prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
            self.second = Some(second);
        }
        out.extend_from_slice(&self.prefix);
        let mut micros = now.subsec_micros();
        let mut digits = *b".000000Z";
        for digit in digits[1..7].iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out.extend_from_slice(&digits);
    }
}

/// The keys every line starts with.
const FIXED_FIELDS: [&str; 4] = ["timestamp", "level", "target", "message"];

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serialising a string or a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    escape_into(out, value);
    out.push(b'"');
}

fn write_field(out: &mut Vec<u8>, key: &str, value: &Value) {
    out.push(b',');
    write_str(out, key);
    out.push(b':');
    match value {
        Value::String(text) => write_str(out, text),
        other => write_json(out, other),
    }
}

/// Writes an event's fields straight into JSON (`message` apart, it goes first), skipping keys
/// already on the line, repeats of a key included (the first value wins).
struct EventWriter<'a> {
    written: &'a mut Vec<&'static str>,
    message: &'a mut Vec<u8>,
    fields: &'a mut Vec<u8>,
}

impl EventWriter<'_> {
    /// The buffer for `field`'s value with its key written, or `None` to skip it.
    fn slot(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        let name = field.name();
        if name == "message" {
            return self.message.is_empty().then_some(&mut *self.message);
        }
        // `r#type` and friends arrive with the raw-identifier prefix.
        let name = name.strip_prefix("r#").unwrap_or(name);
        if self.written.contains(&name) {
            return None;
        }
        self.written.push(name);
        self.fields.push(b',');
        write_str(self.fields, name);
        self.fields.push(b':');
        Some(&mut *self.fields)
    }
}

impl Visit for EventWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(out) = self.slot(field) {
            write_str(out, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.slot(field) {
            write_json(out, &value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.slot(field) {
            write_json(out, &value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.slot(field) {
            write_json(out, &value);
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.slot(field) {
            // NaN and infinities have no JSON number: `null`, as serde_json writes them.
            write_json(out, &value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if let Some(out) = self.slot(field) {
            write_escaped(out, format_args!("{value}"));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if let Some(out) = self.slot(field) {
            write_escaped(out, format_args!("{value:?}"));
        }
    }
}

/// Writes formatted text as a JSON string without an intermediate `String`.
fn write_escaped(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    struct Escaper<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Escaper<'_> {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            escape_into(self.0, text);
            Ok(())
        }
    }
    out.push(b'"');
    let _ = std::fmt::Write::write_fmt(&mut Escaper(out), args);
    out.push(b'"');
}

/// Appends `text` escaped for a JSON string, as serde_json escapes: `"`, `\\` and control
/// characters; everything else (all of UTF-8) as it is.
fn escape_into(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Most values need no escaping: one pass without early exit (the compiler vectorises it),
    // then one copy.
    let plain = !bytes.iter().fold(false, |found, &byte| {
        found | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if byte >= 0x20 && byte != b'"' && byte != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..at]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Collects the request-context fields (`request_id`, `trace_id`) of a span.
#[derive(Default)]
struct ContextVisitor {
    fields: Vec<(&'static str, Value)>,
}

impl ContextVisitor {
    /// Keeps `value()` when `field` is a context field (the value is built only then).
    fn put(&mut self, field: &Field, value: impl FnOnce() -> Value) {
        let name = field.name();
        if CONTEXT_FIELDS.contains(&name) {
            upsert(&mut self.fields, name, value());
        }
    }
}

impl Visit for ContextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, || Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, || Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, || value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, || value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, || value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, || Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, || Value::String(format!("{value:?}")));
    }
}

/// How long a log line may wait before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// Written without waiting for [`FLUSH_INTERVAL`] once this much is pending.
const BATCH_BYTES: usize = 64 * 1024;
/// Threads that log wait (nothing is dropped) while this much is pending.
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// Log lines on their way to stdout: appended to a shared buffer by the threads that log and
/// written by one `log-writer` thread in batches, at most 10 ms (`FLUSH_INTERVAL`) after they were
/// logged. A request never waits on stdout, and a busy service makes a few hundred `write`
/// calls a second instead of one per line. Nothing is dropped: past 8 MiB (`MAX_PENDING`) a
/// logging thread waits for the writer. Dropping the [`LogWriterGuard`] writes what is left.
#[derive(Clone, Debug)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Pending>,
    /// The writer waits here for lines, and for a batch to fill.
    lines: Condvar,
    /// Logging threads wait here while too much is pending.
    drained: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
    /// The writer thread has written everything and stopped.
    finished: bool,
}

/// Stops the writer thread once everything pending is written (keep it until shutdown).
#[derive(Debug)]
pub struct LogWriterGuard {
    shared: Arc<Shared>,
}

/// How long shutdown waits for the last lines (stdout may be a pipe nobody reads any more).
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl LogWriter {
    /// Starts the writer thread, writing to `out`.
    pub fn spawn<O: Write + Send + 'static>(mut out: O) -> std::io::Result<(Self, LogWriterGuard)> {
        let shared = Arc::new(Shared::default());
        std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn({
                let shared = shared.clone();
                move || {
                    let mut spare = Vec::with_capacity(BATCH_BYTES);
                    while let Some(batch) = shared.next_batch(std::mem::take(&mut spare)) {
                        let _ = out.write_all(&batch).and_then(|()| out.flush());
                        spare = batch;
                        spare.clear();
                    }
                    shared.lock().finished = true;
                    shared.drained.notify_all();
                }
            })?;
        let guard = LogWriterGuard {
            shared: shared.clone(),
        };
        Ok((Self { shared }, guard))
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for lines, lets a batch gather, and swaps it for `spare`. `None`: closed and
    /// everything written.
    fn next_batch(&self, spare: Vec<u8>) -> Option<Vec<u8>> {
        let state = self
            .lines
            .wait_while(self.lock(), |state| state.bytes.is_empty() && !state.closed)
            .unwrap_or_else(|e| e.into_inner());
        if state.bytes.is_empty() {
            return None;
        }
        let (mut state, _) = self
            .lines
            .wait_timeout_while(state, FLUSH_INTERVAL, |state| {
                state.bytes.len() < BATCH_BYTES && !state.closed
            })
            .unwrap_or_else(|e| e.into_inner());
        let batch = std::mem::replace(&mut state.bytes, spare);
        drop(state);
        self.drained.notify_all();
        Some(batch)
    }
}

impl Write for &LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.shared;
        let mut state = shared
            .drained
            .wait_while(shared.lock(), |state| {
                state.bytes.len() >= MAX_PENDING && !state.closed
            })
            .unwrap_or_else(|e| e.into_inner());
        if state.closed {
            // Logged after shutdown (the writer thread is gone): straight to stdout.
            drop(state);
            return std::io::stdout().write_all(line).map(|()| line.len());
        }
        let before = state.bytes.len();
        state.bytes.extend_from_slice(line);
        let after = state.bytes.len();
        drop(state);
        // Wake the writer for the first line of a batch and when a batch is full.
        if before == 0 || (before < BATCH_BYTES && after >= BATCH_BYTES) {
            shared.lines.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.lock().closed = true;
        shared.lines.notify_one();
        shared.drained.notify_all();
        let _ = shared
            .drained
            .wait_timeout_while(shared.lock(), FINAL_FLUSH_TIMEOUT, |state| !state.finished);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "plain",
                "a \"quoted\"\nline ✓",
                "back\\slash\ttab\r\u{7f}\u{1}",
                "\u{1f600} ünïcödé",
            ]
            .map(str::to_owned),
        );
        for sample in samples {
            let mut ours = Vec::new();
            write_str(&mut ours, &sample);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&sample).unwrap(),
                "{sample:?}"
            );
            let mut formatted = Vec::new();
            write_escaped(&mut formatted, format_args!("{sample}"));
            assert_eq!(
                String::from_utf8(formatted).unwrap(),
                serde_json::to_string(&sample).unwrap()
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut clock = Clock::default();
        let mut at = |secs: u64, micros: u32| {
            let mut out = Vec::new();
            clock.write_at(&mut out, Duration::new(secs, micros * 1000));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_700_000_000, 123_456), "2023-11-14T22:13:20.123456Z");
        // The cached part follows the second.
        assert_eq!(at(1_709_251_199, 999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(at(1_709_251_200, 1), "2024-03-01T00:00:00.000001Z");
    }

    /// A destination that takes its time, as a slow pipe would.
    #[derive(Clone, Default)]
    struct Slow(Arc<Mutex<Vec<u8>>>);

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(2));
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_writer_loses_nothing_and_keeps_each_threads_order() {
        let out = Slow::default();
        let (writer, guard) = LogWriter::spawn(out.clone()).unwrap();
        // 4 threads x 12 MB in all: more than MAX_PENDING, so loggers also wait for the writer.
        const LINES: usize = 30_000;
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for line in 0..LINES {
                        let text = format!("{thread} {line:06} {}\n", "x".repeat(85));
                        (&writer).write_all(text.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);

        let written = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in written.lines() {
            let mut parts = line.split(' ');
            let thread: usize = parts.next().unwrap().parse().unwrap();
            let number: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(number, next[thread], "thread {thread}'s lines are in order");
            next[thread] += 1;
        }
        assert_eq!(next, [LINES; 4], "every line was written");
    }

    /// A destination that never returns, as a pipe nobody reads.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn shutdown_does_not_hang_on_a_stuck_stdout() {
        let (writer, guard) = LogWriter::spawn(Stuck).unwrap();
        (&writer).write_all(b"a line\n").unwrap();
        let started = Instant::now();
        drop(guard);
        let waited = started.elapsed();
        assert!(
            waited >= FINAL_FLUSH_TIMEOUT && waited < FINAL_FLUSH_TIMEOUT * 2,
            "waited {waited:?}"
        );
    }
}
