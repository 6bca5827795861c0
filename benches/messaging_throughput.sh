#!/usr/bin/env bash
# Messages per second through the generated service's messaging stack versus a bare async-nats
# pull consumer, against the machine's NATS JetStream (127.0.0.1:4222; loopback only, bounded).
#
# Scaffolds a service of the release with messaging (messaging=nats, idempotency store
# $STORE), adds a no-op message handler of its own in src/app (registered with
# `platform.messaging.consume`, as the template documents) and builds it in release. A tiny
# cargo project generated here, pinned to the async-nats, tokio and futures-util versions of the
# service's Cargo.lock, with the same [profile.release] and built into the same target dir,
# fills the streams and is the baseline. For each round and side, on a fresh stream:
#   1. fill: COUNT messages (a small JSON payload, a Nats-Msg-Id each) published before any
#      consumer runs, on a stream configured as the service configures its own;
#   2. consume:
#      - the generated service: its durable pull consumer with at most MAX_IN_FLIGHT
#        unacknowledged, per message a span, the dedupe claim and completion in the
#        idempotency store, metrics, a JSON log line (to a file), the no-op handler, the ack
#        (double ack: waits for the broker's confirmation);
#      - the baseline: the same durable consumer config and batch size, MAX_IN_FLIGHT acks
#        at a time, the same double ack, nothing else;
#   3. a watcher polls the consumer's state (every 10 ms) and times from the first ack to the
#      last: messages/s = messages acked in that window / its length (startup not counted).
# ROUNDS rounds alternate which side goes first; the verdict is the median of the rounds'
# ratios (service / baseline) against GOAL.
#
#   benches/messaging_throughput.sh                  # 3 rounds, 100000 messages, 16 in flight
#   ROUNDS=5 COUNT=200000 benches/messaging_throughput.sh
#   STORE=postgres benches/messaging_throughput.sh   # dedupe in PostgreSQL 127.0.0.1:5432 (default: memory)
#   TEMPLATE_VERSION=3.1.0 benches/messaging_throughput.sh   (default 3.1.0; a draft is allowed)
#   SVC_BIN=path BASE_BIN=path benches/messaging_throughput.sh  # skip the builds: binaries this
#                                                    # script built before (copied aside), e.g.
#                                                    # to compare an earlier consumer, same run
#
# Needs NATS with JetStream on 127.0.0.1:4222 (NATS_URL to change) and, for STORE=postgres,
# PostgreSQL (.ci/e2e-setup). Target dir: $CARGO_PLATFORM_E2E_TARGET or target/e2e.
set -euo pipefail

ROUNDS="${ROUNDS:-3}"
COUNT="${COUNT:-100000}"
MAX_IN_FLIGHT="${MAX_IN_FLIGHT:-16}"
GOAL="${GOAL:-0.5}"
STORE="${STORE:-memory}"
TEMPLATE_VERSION="${TEMPLATE_VERSION:-3.1.0}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"

repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_PLATFORM_E2E_TARGET:-$repo/target/e2e}"
work="$(mktemp -d -t cargo-platform-bench-XXXXXX)"
# measure() runs in a subshell (process substitution): it lists its consumers and streams in
# files, so that a run cut short still stops them and deletes them here.
forget_records() { # stream: the service's dedupe records of that round (COUNT rows with
  # STORE=postgres, which its sweep would delete only after record_ttl_secs, a day)
  if [ "$STORE" = postgres ] && command -v psql >/dev/null; then
    psql "${PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc \
      "DELETE FROM idempotency_keys WHERE key LIKE 'message:$1-%'" >/dev/null 2>&1 || true
  fi
}
cleanup() {
  local pid stream
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < <(cat "$work/pids" 2>/dev/null)
  while read -r stream; do
    [ -x "${base_bin:-}" ] && NATS_URL="$NATS_URL" STREAM="$stream" "$base_bin" delete >/dev/null 2>&1 || true
    forget_records "$stream"
  done < <(cat "$work/streams" 2>/dev/null)
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

echo "== building cargo-platform and scaffolding bench-msg ($TEMPLATE_VERSION, store $STORE)" >&2
(cd "$repo" && cargo build -q)
"$repo/target/debug/cargo-platform" platform new bench-msg --yes --no-git --path "$work/bench-msg" \
  --set owner=bench --set messaging=nats --set idempotency_store="$STORE" \
  --template-version "$TEMPLATE_VERSION" --allow-draft >/dev/null

# The team's no-op handler, registered in `routes` as src/app/mod.rs documents.
cat >"$work/bench-msg/src/app/bench_noop.rs" <<'RS'
//! The benchmark's message handler: decodes nothing, does nothing (APP_BENCH__SUBJECT).

use async_trait::async_trait;

use crate::platform::messaging::{HandlerError, MessageContext, MessageHandler};

#[derive(Debug)]
pub struct Noop(pub String);

#[async_trait]
impl MessageHandler for Noop {
    type Message = ();

    fn subject(&self) -> &str {
        &self.0
    }

    fn decode(&self, _payload: &[u8]) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn handle(&self, (): (), _context: &MessageContext) -> Result<(), HandlerError> {
        Ok(())
    }
}
RS
python3 - "$work/bench-msg/src/app/mod.rs" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
module, register = "pub mod items;\n", "    let (router, api) = OpenApiRouter::new()"
if module not in text or register not in text:
    sys.exit(f"{path} no longer has {module!r} and {register!r}: update benches/messaging_throughput.sh")
text = text.replace(module, "pub mod bench_noop;\n" + module, 1).replace(
    register,
    '    if let Ok(subject) = std::env::var("APP_BENCH__SUBJECT") {\n'
    "        platform.messaging.consume(bench_noop::Noop(subject));\n"
    "    }\n" + register,
    1,
)
open(path, "w").write(text)
PY

if [ -n "${SVC_BIN:-}" ]; then
  echo "== service binary $SVC_BIN (SVC_BIN: built before, of this scaffold's release and store)" >&2
  svc_bin="$SVC_BIN"
  (cd "$work/bench-msg" && cargo generate-lockfile -q --offline)
else
  echo "== cargo build --release (service) into $target" >&2
  (cd "$work/bench-msg" && CARGO_TARGET_DIR="$target" cargo build --release -q)
  svc_bin="$target/release/bench-msg"
fi

# The baseline uses exactly the async-nats, tokio and futures-util the service resolved.
lock_version() { awk -v n="$1" '$0=="name = \""n"\"" {getline; gsub(/version = |"/,""); print; exit}' "$work/bench-msg/Cargo.lock"; }
nats_v="$(lock_version async-nats)"; tokio_v="$(lock_version tokio)"; futures_v="$(lock_version futures-util)"
mkdir -p "$work/bench-nats/src"
cat >"$work/bench-nats/Cargo.toml" <<TOML
[package]
name = "bench-nats"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
async-nats = { version = "=$nats_v", default-features = false, features = ["jetstream", "ring"] }
futures-util = { version = "=$futures_v", default-features = false, features = ["std"] }
tokio = { version = "=$tokio_v", features = ["macros", "rt-multi-thread", "time", "signal"] }
TOML
# The same release profile as the service (LTO, codegen units), so the compiler is not what differs.
awk '/^\[profile\.release\]/{p=1} /^\[/ && !/^\[profile\.release\]/{p=0} p' "$work/bench-msg/Cargo.toml" \
  | sed 's/^\[profile.release\]/\n&/' >>"$work/bench-nats/Cargo.toml"
cat >"$work/bench-nats/src/main.rs" <<'RS'
//! The benchmark's NATS side, with the service's async-nats: `fill` a stream, `consume` it with
//! a bare pull consumer (the baseline), `watch` a consumer until it acked everything, `delete`.
//! Env: NATS_URL, STREAM, SUBJECT, DURABLE, COUNT, MAX_IN_FLIGHT.
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn number(name: &str) -> u64 {
    env(name).parse().unwrap_or_else(|_| panic!("{name} is not a number"))
}

#[tokio::main]
async fn main() {
    let command = std::env::args().nth(1).expect("fill | consume | watch | delete");
    let client = async_nats::connect(env("NATS_URL")).await.expect("connect to NATS");
    let js = jetstream::new(client);
    let name = env("STREAM");
    match command.as_str() {
        "fill" => {
            // As the service creates its stream (src/platform/messaging/nats.rs).
            js.get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.>")],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .expect("create the stream");
            let subject = env("SUBJECT");
            let count = number("COUNT");
            let mut acks = Vec::new();
            for i in 0..count {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("{name}-{i}").as_str());
                headers.insert("Content-Type", "application/json");
                let payload = format!("{{\"n\":{i},\"name\":\"bench\"}}");
                acks.push(
                    js.publish_with_headers(subject.clone(), headers, payload.into())
                        .await
                        .expect("publish"),
                );
                if acks.len() == 1000 {
                    for ack in acks.drain(..) {
                        ack.await.expect("stored");
                    }
                }
            }
            for ack in acks {
                ack.await.expect("stored");
            }
        }
        "consume" => {
            let in_flight = number("MAX_IN_FLIGHT") as usize;
            let stream = js.get_stream(&name).await.expect("the stream");
            let durable = env("DURABLE");
            // The service's consumer config (src/platform/messaging/{consumer,nats}.rs, defaults).
            let consumer = stream
                .get_or_create_consumer(
                    &durable,
                    pull::Config {
                        durable_name: Some(durable.clone()),
                        filter_subject: env("SUBJECT"),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        max_deliver: 5,
                        max_ack_pending: in_flight as i64,
                        backoff: [30, 30, 30, 120].map(Duration::from_secs).to_vec(),
                        ..Default::default()
                    },
                )
                .await
                .expect("create the consumer");
            let messages = consumer
                .stream()
                .max_messages_per_batch(in_flight)
                .messages()
                .await
                .expect("pull");
            let run = messages.for_each_concurrent(in_flight, |message| async move {
                if let Ok(message) = message {
                    let _ = message.double_ack().await;
                }
            });
            tokio::select! {
                () = run => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        "watch" => {
            let count = number("COUNT");
            let durable = env("DURABLE");
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut first: Option<(Instant, u64)> = None;
            let mut stream = js.get_stream(&name).await.expect("the stream");
            loop {
                assert!(Instant::now() < deadline, "not all {count} messages acked within 600 s");
                let consumer: Result<jetstream::consumer::Consumer<pull::Config>, _> =
                    stream.get_consumer(&durable).await;
                if let Ok(mut consumer) = consumer {
                    let info = consumer.info().await.expect("consumer info");
                    let floor = info.ack_floor.stream_sequence;
                    let now = Instant::now();
                    if first.is_none() && (floor > 0 || info.num_ack_pending > 0) {
                        first = Some((now, floor));
                    }
                    if floor >= count {
                        let (start, floor0) = first.expect("seen before done");
                        let secs = now.duration_since(start).as_secs_f64();
                        println!("{:.0} {:.3}", (count - floor0) as f64 / secs, secs);
                        let _ = stream.info().await;
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        "delete" => {
            let _ = js.delete_stream(&name).await;
            let _ = js.delete_stream(format!("{name}-dead")).await;
        }
        other => panic!("unknown command {other}"),
    }
}
RS
if [ -n "${BASE_BIN:-}" ]; then
  echo "== baseline binary $BASE_BIN (BASE_BIN: built before by this script)" >&2
  base_bin="$BASE_BIN"
else
  echo "== cargo build --release (baseline: async-nats $nats_v, tokio $tokio_v)" >&2
  (cd "$work/bench-nats" && CARGO_TARGET_DIR="$target" cargo build --release -q)
  base_bin="$target/release/bench-nats"
fi

measure() { # side round -> "messages/s seconds"
  local side="$1" stream="bench$1$2x$RANDOM$RANDOM"
  echo "$stream" >>"$work/streams"
  local subject="$stream.bench" durable="$stream-$stream-bench"
  export NATS_URL STREAM="$stream" SUBJECT="$subject" DURABLE="$durable" COUNT MAX_IN_FLIGHT
  "$base_bin" fill
  "$base_bin" watch >"$work/watch.out" &
  local watch_pid="$!"
  echo "$watch_pid" >>"$work/pids"
  local pid port
  if [ "$side" = svc ]; then
    port="$(free_port)"
    (cd "$work/bench-msg" && APP_ENV=local APP_SERVER__PORT="$port" RUST_LOG="${RUST_LOG:-info}" \
      APP_MESSAGING__URL="$NATS_URL" APP_MESSAGING__STREAM="$stream" \
      APP_MESSAGING__SUBJECTS="[\"$stream.>\"]" APP_MESSAGING__DEAD_LETTER_STREAM="$stream-dead" \
      APP_MESSAGING__MAX_IN_FLIGHT="$MAX_IN_FLIGHT" \
      APP_BENCH__SUBJECT="$subject" exec "$svc_bin" >"$work/svc-$2.log" 2>&1) &
    pid="$!"
  else
    "$base_bin" consume &
    pid="$!"
  fi
  echo "$pid" >>"$work/pids"
  # A consumer that exits before the watcher saw everything acked fails the run now, not after
  # the watcher's 600 s.
  while kill -0 "$watch_pid" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      kill "$watch_pid" 2>/dev/null || true
      echo "the consumer exited early ($side, round $2)" >&2; tail -5 "$work/svc-$2.log" >&2 || true; exit 1
    fi
    sleep 0.2
  done
  if ! wait "$watch_pid"; then echo "the watcher failed ($side, round $2)" >&2; tail -5 "$work/svc-$2.log" >&2 || true; exit 1; fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  "$base_bin" delete
  forget_records "$stream"
  cat "$work/watch.out"
}

printf '\n%-8s %-28s %12s %10s\n' "round" "consume -> handler -> ack" "messages/s" "seconds"
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="svc base"; else order="base svc"; fi
  for side in $order; do
    if [ "$side" = svc ]; then read -r svc_rate svc_secs < <(measure svc "$round")
    else read -r base_rate base_secs < <(measure base "$round"); fi
  done
  printf '%-8s %-28s %12s %10s\n' "$round" "generated service ($STORE)" "$svc_rate" "$svc_secs"
  printf '%-8s %-28s %12s %10s\n' "$round" "bare async-nats $nats_v" "$base_rate" "$base_secs"
  ratios+=("$(python3 -c "print(f'{$svc_rate/$base_rate:.3f}')")")
done

python3 - "$GOAL" "$COUNT" "$MAX_IN_FLIGHT" "$STORE" "${ratios[@]}" <<'PY'
import statistics, sys
goal, count, in_flight, store = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ratios = [float(r) for r in sys.argv[5:]]
median = statistics.median(ratios)
verdict = "meets" if median >= goal else "BELOW"
print(f"throughput ratio per round: {' '.join(f'{r:.2f}' for r in ratios)}")
print(f"throughput ratio (median of {len(ratios)}): {median:.2f} ({verdict} the goal of {goal:.2f}); "
      f"{count} messages per run, {in_flight} in flight, idempotency store {store}")
PY
