#!/usr/bin/env bash
# Throughput of the generated service's full stack versus a bare axum handler.
#
# Scaffolds a service (memory idempotency store), builds it in release, creates one item,
# then measures GET /v1/items/{id} with a valid token using wrk (loopback only, bounded):
#   1. the generated service: request ids, timeouts, body limit, auth, metrics, tracing,
#      JSON logging (to a file), the handler;
#   2. a baseline: a tiny axum app with the same axum/tokio versions (read from the service's
#      Cargo.lock) and the same [profile.release], whose handler returns the same JSON body,
#      built into the same target dir.
# Both servers run side by side, idle while the other is measured; ROUNDS rounds alternate
# which goes first. Prints, per round and side, requests/s, p99 and the server's CPU per request
# (user and kernel, from /proc/PID/stat), then the median of the rounds' throughput ratios
# (goal: >= 0.70).
#
#   benches/service_throughput.sh            # 3 rounds, 10 s per side, 2 threads, 32 connections
#   ROUNDS=5 DURATION=30s CONNECTIONS=64 benches/service_throughput.sh
#   TEMPLATE_VERSION=3.0.0 benches/service_throughput.sh   (a given release, a draft too; default: newest)
#   BUDGET=1 benches/service_throughput.sh   # also: what the goal leaves for the platform
#
# Budget mode (BUDGET=1) then runs the baseline with a fixed amount of extra arithmetic per
# request (BUDGET_ITERS, rounds of a multiply-add) against the plain baseline, back to back,
# and prints the extra user CPU per request each level costs and the ratio it leaves: how many
# microseconds per request the whole platform stack and handler may spend on this machine for
# the ratio to reach the goal.
#
# Needs wrk (.ci/e2e-setup installs it). Target dir: $CARGO_PLATFORM_E2E_TARGET or target/e2e.
set -euo pipefail

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
GOAL="${GOAL:-0.70}"
ROUNDS="${ROUNDS:-3}"
BUDGET="${BUDGET:-0}"
BUDGET_ITERS="${BUDGET_ITERS:-1500 3000 4500 6000 9000}"

repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_PLATFORM_E2E_TARGET:-$repo/target/e2e}"
work="$(mktemp -d -t cargo-platform-bench-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing: run .ci/e2e-setup" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

echo "== building cargo-platform and scaffolding bench-svc" >&2
(cd "$repo" && cargo build -q)
"$repo/target/debug/cargo-platform" platform new bench-svc --yes --no-git --path "$work/bench-svc" \
  --set owner=bench --set idempotency_store=memory \
  ${TEMPLATE_VERSION:+--template-version "$TEMPLATE_VERSION" --allow-draft} >/dev/null

echo "== cargo build --release (service) into $target" >&2
(cd "$work/bench-svc" && CARGO_TARGET_DIR="$target" cargo build --release -q)
svc_bin="$target/release/bench-svc"

# The baseline uses exactly the axum and tokio the service resolved.
lock_version() { awk -v n="$1" '$0=="name = \""n"\"" {getline; gsub(/version = |"/,""); print; exit}' "$work/bench-svc/Cargo.lock"; }
axum_v="$(lock_version axum)"; tokio_v="$(lock_version tokio)"
mkdir -p "$work/bench-baseline/src"
cat >"$work/bench-baseline/Cargo.toml" <<TOML
[package]
name = "bench-baseline"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
axum = "=$axum_v"
tokio = { version = "=$tokio_v", features = ["macros", "rt-multi-thread", "net"] }
TOML
# The same release profile as the service (LTO, codegen units), so the compiler is not what differs.
awk '/^\[profile\.release\]/{p=1} /^\[/ && !/^\[profile\.release\]/{p=0} p' "$work/bench-svc/Cargo.toml" \
  | sed 's/^\[profile.release\]/\n&/' >>"$work/bench-baseline/Cargo.toml"
cat >"$work/bench-baseline/src/main.rs" <<'RS'
//! Bare axum: one route, a fixed JSON body, nothing else. The throughput reference.
//! `WORK_ITERS` (budget mode only) adds that many rounds of integer arithmetic per request.
use axum::{Router, http::header, routing::get};

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").expect("PORT").parse().expect("PORT is a number");
    let body: &'static str = std::env::var("BODY").expect("BODY").leak();
    let work: u64 = std::env::var("WORK_ITERS").map_or(0, |v| v.parse().expect("WORK_ITERS is a number"));
    let app = Router::new().route(
        "/v1/items/{id}",
        get(move || async move {
            let mut x = 1u64;
            for _ in 0..work {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            std::hint::black_box(x);
            ([(header::CONTENT_TYPE, "application/json")], body)
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
RS
echo "== cargo build --release (baseline: axum $axum_v, tokio $tokio_v)" >&2
(cd "$work/bench-baseline" && CARGO_TARGET_DIR="$target" cargo build --release -q)
base_bin="$target/release/bench-baseline"

# --- the generated service -----------------------------------------------------------------
svc_port="$(free_port)"
(cd "$work/bench-svc" && APP_ENV=local APP_SERVER__PORT="$svc_port" RUST_LOG="${RUST_LOG:-info}" \
  exec "$svc_bin" >"$work/svc.log" 2>&1) &
svc_pid="$!"
pids+=("$svc_pid")
wait_http "http://127.0.0.1:$svc_port/readyz"
token="$(cd "$work/bench-svc" && APP_ENV=local "$svc_bin" dev-token --sub bench --ttl-secs 3600 | tail -n1)"
id="$(curl -fsS -X POST "http://127.0.0.1:$svc_port/v1/items" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
path="/v1/items/$id"
body="$(curl -fsS "http://127.0.0.1:$svc_port$path" -H "authorization: Bearer $token")"

# Server CPU per request from /proc/PID/stat (utime, stime in clock ticks) around one run.
ticks_per_sec="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

run_wrk() { # pid url -> "rps p99_ms user_us_per_request sys_us_per_request"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "authorization: Bearer $token" "$2" >/dev/null
  local before after
  before="$(cpu_ticks "$1")"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "authorization: Bearer $token" "$2" >"$work/wrk.out"
  after="$(cpu_ticks "$1")"
  if grep -q "Non-2xx" "$work/wrk.out"; then echo "non-2xx answers from $2:" >&2; cat "$work/wrk.out" >&2; exit 1; fi
  python3 - "$work/wrk.out" "$before" "$after" "$ticks_per_sec" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
requests = int(re.search(r"(\d+) requests in", text).group(1))
value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text).groups()
p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
(u0, s0), (u1, s1) = (map(int, sys.argv[i].split()) for i in (2, 3))
us_per_tick = 1e6 / int(sys.argv[4])
print(f"{rps:.0f} {p99_ms:.3f} {(u1 - u0) * us_per_tick / requests:.1f} {(s1 - s0) * us_per_tick / requests:.1f}")
PY
}

# --- the baseline, up beside the service -------------------------------------------------
base_port="$(free_port)"
PORT="$base_port" BODY="$body" "$base_bin" >/dev/null 2>&1 &
base_pid="$!"
pids+=("$base_pid")
wait_http "http://127.0.0.1:$base_port$path"
[ "$(curl -fsS "http://127.0.0.1:$base_port$path")" = "$body" ] || { echo "baseline body differs" >&2; exit 1; }

# Rounds alternate which side goes first; a VM's throughput drifts by 10-30 % from one run to
# the next, so one pair of runs says little. The verdict uses the median of the rounds' ratios.
printf '\n%-8s %-20s %12s %9s %14s %14s\n' "round" "GET /v1/items/{id}" "requests/s" "p99 (ms)" "user us/req" "kernel us/req"
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="svc base"; else order="base svc"; fi
  for side in $order; do
    if [ "$side" = svc ]; then
      read -r svc_rps svc_p99 svc_user svc_sys < <(run_wrk "$svc_pid" "http://127.0.0.1:$svc_port$path")
    else
      read -r base_rps base_p99 base_user base_sys < <(run_wrk "$base_pid" "http://127.0.0.1:$base_port$path")
    fi
  done
  printf '%-8s %-20s %12s %9s %14s %14s\n' "$round" "generated service" "$svc_rps" "$svc_p99" "$svc_user" "$svc_sys"
  printf '%-8s %-20s %12s %9s %14s %14s\n' "$round" "bare axum $axum_v" "$base_rps" "$base_p99" "$base_user" "$base_sys"
  ratios+=("$(python3 -c "print(f'{$svc_rps/$base_rps:.3f}')")")
done

python3 - "$GOAL" "${#body}" "wrk -t$THREADS -c$CONNECTIONS -d$DURATION" "${ratios[@]}" <<'PY'
import statistics, sys
goal, body_len, wrk, ratios = float(sys.argv[1]), sys.argv[2], sys.argv[3], [float(r) for r in sys.argv[4:]]
median = statistics.median(ratios)
verdict = "meets" if median >= goal else "BELOW"
print(f"throughput ratio per round: {' '.join(f'{r:.2f}' for r in ratios)}")
print(f"throughput ratio (median of {len(ratios)}): {median:.2f} ({verdict} the goal of {goal:.2f}); "
      f"body {body_len} bytes; {wrk} per run")
PY

[ "$BUDGET" = 1 ] || exit 0
echo >&2
echo "== budget: the baseline with extra work per request, against the plain baseline" >&2
printf '\n%-12s %12s %16s %8s\n' "work iters" "requests/s" "extra user us" "ratio"
for iters in $BUDGET_ITERS; do
  work_port="$(free_port)"
  PORT="$work_port" BODY="$body" WORK_ITERS="$iters" "$base_bin" >/dev/null 2>&1 &
  work_pid="$!"
  pids+=("$work_pid")
  wait_http "http://127.0.0.1:$work_port$path"
  read -r base_rps _ base_user _ < <(run_wrk "$base_pid" "http://127.0.0.1:$base_port$path")
  read -r work_rps _ work_user _ < <(run_wrk "$work_pid" "http://127.0.0.1:$work_port$path")
  kill "$work_pid"; wait "$work_pid" 2>/dev/null || true
  python3 -c "print(f'{$iters:<12} {$work_rps:>12.0f} {$work_user - $base_user:>16.1f} {$work_rps / $base_rps:>8.2f}')"
done
