#!/usr/bin/env bash
# Benchmark: does an upgrade's durability cost depend on its own files only? Times
# `cargo platform upgrade` (oldest -> newest release of the service template, whole process,
# release build) in alternating rounds: quiet, then while `dd` writes 2 GB (buffered, as a build
# or a copy does) to the same filesystem. Goal: the loaded median within 3x of the quiet median.
# A `syncfs` flushes the whole filesystem and so waits for dd's dirty pages; fsyncs of the
# upgrade's own files and directories do not.
#
#   bash benches/upgrade_under_load.sh
#   ROUNDS=10 PER_ROUND=3 DD_MB=2048 bash benches/upgrade_under_load.sh
#   BIN=target/debug/cargo-platform bash benches/upgrade_under_load.sh   # skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN="$PWD/target/release/cargo-platform"
fi
bin=$(realpath "$BIN")
# The work directory (the service and dd's file: one filesystem) must not be inside a git work
# tree, so the service gets its own repository. WORK_PARENT picks the filesystem to measure.
work=$(mktemp -d "${WORK_PARENT:-${TMPDIR:-/tmp}}/upgrade-under-load.XXXXXX")
ddpid=
cleanup() { [ -n "$ddpid" ] && kill "$ddpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/home"
printf '[user]\n\tname = Bench\n\temail = bench@example.com\n' > "$work/home/.gitconfig"
export HOME="$work/home"
rounds=${ROUNDS:-8}
per_round=${PER_ROUND:-3}
dd_mb=${DD_MB:-2048}
oldest=$("$bin" platform templates --format json | python3 -c 'import json,sys; t=json.load(sys.stdin)["templates"]; print([x for x in t if x["name"]=="service"][0]["versions"][-1]["version"])')
svc="$work/orders"
"$bin" platform new orders --yes --set owner=bench --template-version "$oldest" --path "$svc" >/dev/null
[ -d "$svc/.git" ] || { echo "$work is inside a git work tree: set WORK_PARENT" >&2; exit 1; }
echo "filesystem: $(df -T "$work" | awk 'NR==2 {print $1, $2}'); service template $oldest -> newest"
echo "$rounds rounds x $per_round upgrades quiet, then the same while dd writes $dd_mb MB"

reset() { # the tree as `new` left it, the index settled (see upgrade_status.sh)
  git -C "$svc" checkout -q -- . && git -C "$svc" clean -fdq
  git -C "$svc" update-index -q --refresh || true
}
time_upgrades() { # file
  for _ in $(seq "$per_round"); do
    reset
    local t0=$EPOCHREALTIME
    "$bin" platform upgrade --path "$svc" > "$work/out"
    local t1=$EPOCHREALTIME
    grep -q '^Upgraded orders' "$work/out" || { cat "$work/out"; exit 1; }
    python3 -c "print(($t1 - $t0) * 1000)" >> "$1"
  done
}

: > "$work/quiet.ms"; : > "$work/loaded.ms"
for r in $(seq "$rounds"); do
  sync; sleep 1
  time_upgrades "$work/quiet.ms"
  dd if=/dev/zero of="$work/big" bs=1M count="$dd_mb" status=none &
  ddpid=$!
  sleep 0.5 # let dd's dirty pages pile up
  dirty=$(awk '/^Dirty:/ {printf "%d", $2 / 1024}' /proc/meminfo)
  time_upgrades "$work/loaded.ms"
  if kill -0 "$ddpid" 2>/dev/null; then still="still writing"; else still="done"; fi
  wait "$ddpid" || true
  ddpid=
  rm -f "$work/big"
  echo "round $r: ${dirty} MB dirty when the loaded upgrades began; dd $still after them"
done
python3 - "$work/quiet.ms" "$work/loaded.ms" <<'PY'
import statistics, sys
q = [float(x) for x in open(sys.argv[1])]
l = [float(x) for x in open(sys.argv[2])]
mq, ml = statistics.median(q), statistics.median(l)
print(f"upgrade quiet      median {mq:8.1f} ms  (min {min(q):.1f}, max {max(q):.1f}, n={len(q)})")
print(f"upgrade under dd   median {ml:8.1f} ms  (min {min(l):.1f}, max {max(l):.1f}, n={len(l)})")
print(f"ratio {ml / mq:.2f}x (goal: within 3x)")
PY
