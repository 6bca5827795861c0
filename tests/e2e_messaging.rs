//! End-to-end tests of messaging through the generated service's binary: one service of
//! template release 3.1.0 (`messaging=nats`, `idempotency_store=postgres`), scaffolded and built
//! once, with a handler of the team's own written into `src/app/` (tests/e2e/messaging_probe.rs,
//! registered with `platform.messaging.consume` as the template documents). The handler logs
//! each delivery it starts and each effect it makes to an append-only file, and does what the
//! payload says (sleep, fail, fail until a file exists), so a test counts effects per message.
//! Messages are published and streams inspected from outside the service with the official
//! Python client (tests/e2e/nats_tool.py), against the machine's NATS on 127.0.0.1:4222; the
//! broker is taken away from the service with a killable TCP forwarder in front of it.
//!
//! Every test has its own stream, subjects and dead-letter stream (deleted at the end), so
//! reruns never see old messages. Slow, so `#[ignore]`d:
//! `cargo test --test e2e_messaging -- --include-ignored --test-threads=1`.
//! `CARGO_PLATFORM_E2E_MESSAGING_REUSE=1` keeps the scaffolded service of the previous run
//! (`$TMPDIR/cargo-platform-e2e-messaging/e2e-msg`, edits included; built in
//! `$CARGO_PLATFORM_E2E_TARGET`) instead of rendering
//! it again: how to see a test fail against a deliberately broken platform.

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use harness::{
    Forwarder, Http, OtlpReceiver, Running, Service, free_port, mint_jwt, random_hex64, sample_sum,
    wait_until,
};
use serde_json::{Value, json};

const NATS: &str = "127.0.0.1:4222";
const NATS_URL: &str = "nats://127.0.0.1:4222";
/// The release that brings the `messaging` component.
const RELEASE: &str = "3.1.0";
/// Without an ack or an in-progress ack for this long, the broker delivers again.
const ACK_WAIT_SECS: u64 = 5;
const SHUTDOWN_GRACE_SECS: u64 = 15;
const MAX_IN_FLIGHT: usize = 3;
/// How long each message of the drain test keeps the handler busy.
const DRAIN_SLEEP_MS: u64 = 6000;
/// The drain test's ack_wait: long, so a message left to wait it out shows.
const DRAIN_ACK_WAIT_SECS: u64 = 30;

/// Where the service and each test's files live (kept when a test fails, for a post-mortem).
fn work_dir() -> PathBuf {
    std::env::temp_dir().join("cargo-platform-e2e-messaging")
}

/// The one service every test runs (scaffolded, given the probe handler, built).
fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let dir = work_dir().join("e2e-msg");
        let reuse = std::env::var_os("CARGO_PLATFORM_E2E_MESSAGING_REUSE").is_some()
            && dir.join("src/app/e2e_probe.rs").is_file();
        let svc = if reuse {
            eprintln!("reusing the service in {}", dir.display());
            Service::existing(&dir)
        } else {
            let svc = Service::scaffold_into(
                &dir,
                Some(RELEASE),
                false,
                &[("messaging", "nats"), ("idempotency_store", "postgres")],
            );
            add_probe(&svc.dir);
            svc
        };
        let warnings = svc.build();
        assert!(
            warnings.is_empty(),
            "`cargo build` of the service with the probe handler printed warnings:\n{}",
            warnings.join("\n")
        );
        svc
    })
}

/// Writes the probe handler into `src/app/` and registers it in `routes`, as a team would.
fn add_probe(dir: &Path) {
    std::fs::write(
        dir.join("src/app/e2e_probe.rs"),
        include_str!("e2e/messaging_probe.rs"),
    )
    .expect("write src/app/e2e_probe.rs");
    let mod_rs = dir.join("src/app/mod.rs");
    let text = std::fs::read_to_string(&mod_rs).expect("read src/app/mod.rs");
    let (module, register) = (
        "pub mod items;\n",
        "    let (router, api) = OpenApiRouter::new()",
    );
    assert!(
        text.contains(module) && text.contains(register),
        "src/app/mod.rs of release {RELEASE} no longer has `{module}` and `{register}`: \
         update add_probe in tests/e2e_messaging.rs\n{text}"
    );
    let text = text
        .replacen(module, "pub mod e2e_probe;\npub mod items;\n", 1)
        .replacen(
            register,
            &format!(
                "    if let Some(probe) = e2e_probe::Probe::from_platform(platform)? {{\n        \
             platform.messaging.consume(probe);\n    }}\n{register}"
            ),
            1,
        );
    std::fs::write(&mod_rs, text).expect("write src/app/mod.rs");
}

/// NATS from outside the service: tests/e2e/nats_tool.py with `args`; its stdout.
fn nats_tool(args: &[&str]) -> Result<String, String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(python)
        .arg(harness::script("nats_tool.py"))
        .args(["--url", NATS_URL])
        .args(args)
        .output()
        .expect("run tests/e2e/nats_tool.py (needs python3 and nats-py; see .ci/e2e-setup)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nats_tool.py {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// One test's stream, subjects and probe log; its streams are deleted when it is dropped.
struct Bus {
    stream: String,
    dead_letter_stream: String,
    probe_subject: String,
    items_subject: String,
    log: PathBuf,
    scratch: PathBuf,
}

impl Bus {
    fn new(test: &str) -> Bus {
        let tag = format!("e2e{test}{}", &random_hex64()[..8]);
        let scratch = work_dir().join(&tag);
        std::fs::create_dir_all(&scratch).expect("create the test's scratch dir");
        Bus {
            dead_letter_stream: format!("{tag}-dead"),
            probe_subject: format!("{tag}.probe"),
            items_subject: format!("{tag}.items.created"),
            log: scratch.join("probe.jsonl"),
            scratch,
            stream: tag,
        }
    }

    /// The service's environment: this bus, quick redeliveries, the broker at `nats_url`.
    fn env(&self, port: u16, nats_url: &str) -> Vec<(String, String)> {
        [
            ("APP_ENV", "local".to_owned()),
            ("APP_SERVER__PORT", port.to_string()),
            (
                "APP_SERVER__SHUTDOWN_GRACE_SECS",
                SHUTDOWN_GRACE_SECS.to_string(),
            ),
            ("APP_MESSAGING__URL", nats_url.to_owned()),
            ("APP_MESSAGING__STREAM", self.stream.clone()),
            (
                "APP_MESSAGING__SUBJECTS",
                format!("[\"{}.>\"]", self.stream),
            ),
            (
                "APP_MESSAGING__DEAD_LETTER_STREAM",
                self.dead_letter_stream.clone(),
            ),
            ("APP_MESSAGING__ACK_WAIT_SECS", ACK_WAIT_SECS.to_string()),
            ("APP_MESSAGING__PROGRESS_INTERVAL_SECS", "1".to_owned()),
            ("APP_MESSAGING__BACKOFF_MS", "[200]".to_owned()),
            ("APP_MESSAGING__MAX_IN_FLIGHT", MAX_IN_FLIGHT.to_string()),
            ("APP_PROBE__SUBJECT", self.probe_subject.clone()),
            ("APP_PROBE__LOG", self.log.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The probe's durable consumer (the platform names it after the stream and subject).
    fn probe_durable(&self) -> String {
        format!("{}-{}", self.stream, self.probe_subject.replace('.', "-"))
    }

    /// Publishes an order for the probe with message id `key`, waiting for the stream (the
    /// service creates it when its consumers start). `headers` are `NAME=VALUE`.
    fn publish(&self, key: &str, order: Value, headers: &[String]) -> Value {
        let mut order = order;
        order["key"] = json!(key);
        let payload = order.to_string();
        let mut args = vec!["publish", &self.probe_subject, key, &payload];
        for header in headers {
            args.extend(["--header", header]);
        }
        let mut last = String::new();
        let ack = wait_until(Duration::from_secs(30), || match nats_tool(&args) {
            Ok(out) => Some(out),
            Err(error) => {
                last = error;
                None
            }
        })
        .unwrap_or_else(|| panic!("could not publish {key} within 30 s: {last}"));
        serde_json::from_str(ack.trim()).expect("the publish ack as JSON")
    }

    /// The probe's log lines of `kind` (`start` or `effect`) for message key `key`.
    fn lines(&self, kind: &str, key: &str) -> Vec<Value> {
        written_lines(&std::fs::read_to_string(&self.log).unwrap_or_default())
            .into_iter()
            .filter(|l| l["kind"] == kind && l["key"] == key)
            .collect()
    }

    fn wait_for(&self, kind: &str, key: &str, count: usize, within: Duration) -> bool {
        wait_until(within, || {
            (self.lines(kind, key).len() >= count).then_some(())
        })
        .is_some()
    }

    fn consumer_state(&self, durable: &str) -> Value {
        let out = nats_tool(&["consumer", &self.stream, durable]).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(out.trim()).expect("consumer state as JSON")
    }

    /// Waits until the probe's consumer has every message acknowledged (none pending, none
    /// waiting for an ack: nothing the broker would deliver again); panics with its state.
    fn assert_all_acked(&self) {
        let durable = self.probe_durable();
        let mut state = Value::Null;
        let acked = wait_until(Duration::from_secs(ACK_WAIT_SECS * 2), || {
            state = self.consumer_state(&durable);
            (state["num_ack_pending"] == 0 && state["num_pending"] == 0).then_some(())
        });
        assert!(
            acked.is_some(),
            "messages still unacknowledged (the broker will deliver them again): {state}"
        );
    }

    fn dead_letters(&self) -> Vec<Value> {
        nats_tool(&["messages", &self.dead_letter_stream])
            .unwrap_or_else(|e| panic!("{e}"))
            .lines()
            .map(|l| serde_json::from_str(l).expect("a dead letter as JSON"))
            .collect()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Err(error) = nats_tool(&["delete", &self.stream, &self.dead_letter_stream]) {
            eprintln!("could not delete the test's streams: {error}");
        }
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// Stops the service with SIGTERM, expecting exit 0 within the shutdown grace.
fn stop(run: &mut Running) {
    let status = run
        .terminate(Duration::from_secs(SHUTDOWN_GRACE_SECS + 5))
        .unwrap_or_else(|| panic!("still running after SIGTERM\n{}", run.output()));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        run.output()
    );
}

fn ready_status(http: &Http) -> Option<u16> {
    http.try_get("/readyz").map(|r| r.status)
}

/// (a) SIGKILL mid-handler: the broker delivers the message again after a restart, and the
/// effect happens exactly once.
#[test]
#[ignore = "end-to-end: builds and runs a generated service against NATS 127.0.0.1:4222"]
fn sigkill_mid_handler_redelivers_after_restart_with_one_effect() {
    let svc = service();
    let bus = Bus::new("kill");
    let port = free_port();
    let env = bus.env(port, NATS_URL);
    let mut run = svc.start(port, &env);
    let key = "kill-1";
    bus.publish(key, json!({ "sleep_ms": 4000 }), &[]);
    assert!(
        bus.wait_for("start", key, 1, Duration::from_secs(20)),
        "the handler never started {key}\n{}",
        run.output()
    );
    thread::sleep(Duration::from_millis(500));
    let status = run.kill();
    assert!(!status.success(), "SIGKILL: {status}");
    assert!(
        bus.lines("effect", key).is_empty(),
        "the effect happened before the kill: the handler's sleep did not hold"
    );

    let mut run = svc.start(port, &env);
    assert!(
        bus.wait_for("effect", key, 1, Duration::from_secs(30)),
        "the message was not delivered again after the restart (lost with the killed \
         process?): starts {:?}\n{}",
        bus.lines("start", key),
        run.output()
    );
    bus.assert_all_acked();
    // Longer than a redelivery takes: no second effect comes.
    thread::sleep(Duration::from_secs(ACK_WAIT_SECS + 2));
    let effects = bus.lines("effect", key);
    assert_eq!(
        effects.len(),
        1,
        "effects of {key}: {effects:?}\n{}",
        run.output()
    );
    assert!(
        effects[0]["delivery"].as_u64() >= Some(2),
        "the effect came from a redelivery: {effects:?}"
    );
    stop(&mut run);
}

/// (b) SIGTERM drains: messages in flight finish and are acked before the process exits 0,
/// within the shutdown grace; after a restart none of them comes back, the ones not yet taken
/// are handled, and no effect happens twice.
#[test]
#[ignore = "end-to-end: builds and runs a generated service against NATS 127.0.0.1:4222"]
fn sigterm_drains_in_flight_messages_and_nothing_is_redelivered() {
    let svc = service();
    let bus = Bus::new("drain");
    let port = free_port();
    // A long ack_wait: a message the stopping process fetched and did not give back would be
    // handled only after it, past the window below.
    let mut env = bus.env(port, NATS_URL);
    for (key, value) in &mut env {
        if key == "APP_MESSAGING__ACK_WAIT_SECS" {
            *value = DRAIN_ACK_WAIT_SECS.to_string();
        }
    }
    let mut run = svc.start(port, &env);
    // Twice what one process takes at a time: some are in flight at SIGTERM, some wait.
    let keys: Vec<String> = (1..=2 * MAX_IN_FLIGHT)
        .map(|i| format!("drain-{i}"))
        .collect();
    for key in &keys {
        bus.publish(key, json!({ "sleep_ms": DRAIN_SLEEP_MS }), &[]);
    }
    let started = |bus: &Bus| -> Vec<String> {
        keys.iter()
            .filter(|k| !bus.lines("start", k).is_empty())
            .cloned()
            .collect()
    };
    let full = wait_until(Duration::from_secs(20), || {
        (started(&bus).len() >= MAX_IN_FLIGHT).then_some(())
    });
    // In flight: started, effect not yet made.
    let in_flight: Vec<String> = started(&bus)
        .into_iter()
        .filter(|k| bus.lines("effect", k).is_empty())
        .collect();
    assert!(
        full.is_some() && !in_flight.is_empty(),
        "expected messages in flight; started: {:?}, in flight: {in_flight:?}\n{}",
        started(&bus),
        run.output()
    );
    assert!(
        in_flight.len() <= MAX_IN_FLIGHT,
        "more than max_in_flight ({MAX_IN_FLIGHT}) in flight: {in_flight:?}"
    );
    let signalled = Instant::now();
    stop(&mut run);
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(SHUTDOWN_GRACE_SECS),
        "the drain took {took:?}, past the grace of {SHUTDOWN_GRACE_SECS} s"
    );
    for key in &in_flight {
        assert_eq!(
            bus.lines("effect", key).len(),
            1,
            "{key} was in flight at SIGTERM: it must finish before the process exits\n{}",
            run.output()
        );
    }
    let after_stop = started(&bus);

    let mut run = svc.start(port, &env);
    let restarted = Instant::now();
    // Well within ack_wait: what the stopping process fetched but never started was given back
    // (nak, no delay), not left to wait out ack_wait.
    let window = Duration::from_secs(DRAIN_ACK_WAIT_SECS / 2);
    for key in &keys {
        let left = window.saturating_sub(restarted.elapsed());
        assert!(
            bus.wait_for("effect", key, 1, left),
            "{key} was not handled within {window:?} of the restart: a message fetched by the \
             stopping process and never started waits out ack_wait ({DRAIN_ACK_WAIT_SECS} s)\n{}",
            run.output()
        );
    }
    bus.assert_all_acked();
    // Longer than a redelivery of an unacknowledged message takes.
    thread::sleep(Duration::from_secs(DRAIN_ACK_WAIT_SECS + 2));
    for key in &keys {
        let effects = bus.lines("effect", key);
        assert_eq!(effects.len(), 1, "effects of {key}: {effects:?}");
    }
    for key in &in_flight {
        let starts = bus.lines("start", key);
        assert_eq!(
            starts.len(),
            1,
            "{key} finished during the drain, yet was delivered again: {starts:?}"
        );
    }
    let state = bus.consumer_state(&bus.probe_durable());
    eprintln!(
        "drain: in flight at SIGTERM {in_flight:?}, started before exit {after_stop:?}, \
         consumer after restart {state}"
    );
    stop(&mut run);
}

/// (c) The broker away: /readyz answers 503 while the service cannot reach it and 200 once it
/// can again; messages published meanwhile are handled after, once each.
#[test]
#[ignore = "end-to-end: builds and runs a generated service against NATS 127.0.0.1:4222"]
fn broker_outage_turns_readiness_off_and_messages_published_meanwhile_are_handled_after() {
    let svc = service();
    let bus = Bus::new("outage");
    let upstream = NATS.parse().expect("address");
    let mut forwarder = Forwarder::start(upstream);
    let port = free_port();
    let env = bus.env(port, &format!("nats://127.0.0.1:{}", forwarder.port));
    let mut run = svc.start(port, &env);
    let http = Http::new(port);

    bus.publish("before", json!({}), &[]);
    assert!(
        bus.wait_for("effect", "before", 1, Duration::from_secs(20)),
        "nothing handled through the forwarder before the outage\n{}",
        run.output()
    );

    forwarder.kill();
    let down = wait_until(Duration::from_secs(15), || {
        (ready_status(&http) == Some(503)).then_some(())
    });
    assert!(
        down.is_some(),
        "/readyz still answers {:?} with the broker unreachable\n{}",
        ready_status(&http),
        run.output()
    );
    let reply = http.get("/readyz", &[]);
    assert!(
        reply.body.contains("broker"),
        "/readyz does not say the broker is the problem: {reply:?}"
    );
    let meanwhile = ["meanwhile-1", "meanwhile-2", "meanwhile-3"];
    for key in meanwhile {
        bus.publish(key, json!({}), &[]);
    }
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        ready_status(&http),
        Some(503),
        "/readyz while the broker is still away"
    );
    for key in meanwhile {
        assert!(
            bus.lines("start", key).is_empty(),
            "{key} was handled while the broker was unreachable: the forwarder did not cut it"
        );
    }

    forwarder.revive(upstream);
    let up = wait_until(Duration::from_secs(30), || {
        (ready_status(&http) == Some(200)).then_some(())
    });
    assert!(
        up.is_some(),
        "/readyz did not answer 200 within 30 s of the broker's return: {:?}\n{}",
        ready_status(&http),
        run.output()
    );
    for key in meanwhile {
        assert!(
            bus.wait_for("effect", key, 1, Duration::from_secs(30)),
            "{key}, published during the outage, was not handled after it\n{}",
            run.output()
        );
    }
    bus.assert_all_acked();
    thread::sleep(Duration::from_secs(ACK_WAIT_SECS + 2));
    for key in meanwhile.iter().chain(&["before"]) {
        assert_eq!(bus.lines("effect", key).len(), 1, "effects of {key}");
    }
    stop(&mut run);
}

/// (d) The example path: `POST /v1/items` publishes `items.created`, the example's handler
/// consumes it, and the consumer's span is a child of the producer's, in the caller's trace.
#[test]
#[ignore = "end-to-end: builds and runs a generated service against NATS and an OTLP receiver"]
fn items_created_event_is_consumed_in_the_producers_trace() {
    let svc = service();
    let bus = Bus::new("items");
    let otlp = OtlpReceiver::start(&bus.scratch.join("spans.jsonl"));
    let (issuer, audience, secret) = (
        "e2e-issuer".to_owned(),
        format!("{}-api", svc.name),
        format!("e2e-secret-{}{}", random_hex64(), random_hex64()),
    );
    let port = free_port();
    let mut env = bus.env(port, NATS_URL);
    env.extend(
        [
            ("APP_AUTH__ISSUER", issuer.clone()),
            ("APP_AUTH__AUDIENCE", audience.clone()),
            ("APP_AUTH__HS256_SECRET", secret.clone()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", otlp.port),
            ),
            ("OTEL_SERVICE_NAME", svc.name.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut run = svc.start(port, &env);
    let http = Http::new(port);
    let token = mint_jwt(&[
        "--secret",
        &secret,
        "--iss",
        &issuer,
        "--aud",
        &audience,
        "--sub",
        "e2e-items",
    ]);
    let trace_id = format!("{}{}", random_hex64(), random_hex64());
    let traceparent = format!("00-{trace_id}-{}-01", random_hex64());
    let created = http.post_json(
        "/v1/items",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("traceparent", &traceparent),
        ],
        r#"{"name":"evented"}"#,
    );
    assert_eq!(created.status, 201, "POST /v1/items: {created:?}");
    let item_id = created.json()["id"]
        .as_str()
        .expect("the item's id")
        .to_owned();

    let handled = wait_until(Duration::from_secs(20), || {
        run.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l.to_string().contains("item created event handled")
                    && harness::find_key(l, "item_id")
                        .iter()
                        .any(|v| v.as_str() == Some(item_id.as_str()))
            })
    });
    assert!(
        handled.is_some(),
        "the example's handler never logged item {item_id}\n{}",
        run.output()
    );
    assert_eq!(
        sample_sum(&http.metrics(), "items_created_events_total"),
        1.0,
        "items_created_events_total after one item"
    );

    let consumer_name = format!("process {}", bus.items_subject);
    let consumer = wait_until(Duration::from_secs(20), || {
        otlp.spans()
            .into_iter()
            .find(|s| s["trace_id"] == trace_id.as_str() && s["name"] == consumer_name.as_str())
    })
    .unwrap_or_else(|| {
        panic!(
            "no span `{consumer_name}` in the caller's trace {trace_id}; spans: {:?}",
            otlp.spans()
        )
    });
    // The consumer's parent is a span of the producing request: walk up to `POST /v1/items`.
    let spans = otlp.spans();
    let by_id = |id: &Value| spans.iter().find(|s| s["span_id"] == *id);
    let mut parent = by_id(&consumer["parent_span_id"]).unwrap_or_else(|| {
        panic!("the consumer span's parent was not exported by the service: {consumer}; spans: {spans:?}")
    });
    for _ in 0..10 {
        if parent["name"] == "POST /v1/items" {
            break;
        }
        parent = by_id(&parent["parent_span_id"]).unwrap_or_else(|| {
            panic!(
                "the consumer span's ancestry leaves the service before `POST /v1/items`: {parent}"
            )
        });
    }
    assert_eq!(
        parent["name"], "POST /v1/items",
        "the consumer span descends from the producing request's span"
    );
    assert_eq!(parent["trace_id"], trace_id.as_str());
    stop(&mut run);
}

/// (e) A poison message through the binary: dead-lettered with the producer's traceparent and
/// the reason; `<bin> redrive` puts it back and, the handler fixed, it is handled once.
#[test]
#[ignore = "end-to-end: builds and runs a generated service against NATS 127.0.0.1:4222"]
fn poison_message_is_dead_lettered_then_redriven_and_handled_once() {
    let svc = service();
    let bus = Bus::new("poison");
    let port = free_port();
    let env = bus.env(port, NATS_URL);
    let mut run = svc.start(port, &env);
    let fixed = bus.scratch.join("fixed");
    let traceparent = format!(
        "00-{}{}-{}-01",
        random_hex64(),
        random_hex64(),
        random_hex64()
    );
    let key = "poison-1";
    bus.publish(
        key,
        json!({ "fail_unless_file": fixed }),
        &[format!("traceparent={traceparent}")],
    );
    let letters = wait_until(Duration::from_secs(20), || {
        let letters = bus.dead_letters();
        (!letters.is_empty()).then_some(letters)
    })
    .unwrap_or_else(|| panic!("no dead letter within 20 s\n{}", run.output()));
    assert_eq!(letters.len(), 1, "dead letters: {letters:?}");
    let letter = &letters[0];
    let header = |name: &str| {
        letter["headers"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("traceparent"), traceparent, "dead letter: {letter}");
    assert_eq!(
        header("Platform-Dead-Letter-Reason"),
        "permanent",
        "dead letter: {letter}"
    );
    assert_eq!(
        header("Platform-Original-Subject"),
        bus.probe_subject,
        "dead letter: {letter}"
    );
    assert!(
        header("Platform-Error").contains("not fixed yet"),
        "dead letter: {letter}"
    );
    let order: Value = serde_json::from_str(letter["data"].as_str().unwrap_or_default())
        .expect("the dead letter keeps the original payload");
    assert_eq!(order["key"], key);
    assert_eq!(
        bus.lines("start", key).len(),
        1,
        "a permanent failure is not retried"
    );
    assert!(bus.lines("effect", key).is_empty());

    std::fs::write(&fixed, "").expect("fix the handler");
    let out = svc.run_cli(&["redrive"], &env);
    assert!(
        out.contains("1 dead letter(s) put back"),
        "redrive printed: {out}"
    );
    assert!(
        bus.wait_for("effect", key, 1, Duration::from_secs(20)),
        "the redriven message was not handled\n{}",
        run.output()
    );
    bus.assert_all_acked();
    thread::sleep(Duration::from_secs(ACK_WAIT_SECS + 2));
    let effects = bus.lines("effect", key);
    assert_eq!(effects.len(), 1, "effects of {key}: {effects:?}");
    assert_eq!(
        effects[0]["traceparent"],
        traceparent.as_str(),
        "the redriven message keeps the producer's trace context"
    );
    let left = bus.dead_letters();
    assert!(left.is_empty(), "dead letters left after redrive: {left:?}");
    stop(&mut run);
}

/// The JSON lines of a log another process is appending to: a last line without its newline
/// is still being written, and is left for the next read.
fn written_lines(text: &str) -> Vec<Value> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a probe log line"))
        .collect()
}

/// Not ignored: the probe's log is read while the probe writes it (a half-written last line
/// once failed `sigterm_drains_in_flight_messages_and_nothing_is_redelivered` in CI).
#[test]
fn a_half_written_log_line_is_left_for_the_next_read() {
    let lines = written_lines("{\"kind\":\"start\",\"key\":\"a\"}\n{\"kind\":\"eff");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["key"], "a");
    assert!(written_lines("").is_empty());
    assert_eq!(written_lines("{\"k\":1}\n{\"k\":2}\n").len(), 2);
}
