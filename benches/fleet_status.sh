#!/usr/bin/env bash
# Benchmark: `cargo platform fleet status --format json` (or `fleet report`, with
# COMMAND=report: benches/fleet_report.sh) over N services, whole process, release build —
# read from work trees, then from the `main` ref of bare mirrors (no checkout, through the
# generated fleet file) — against one `cargo platform status`. The fleets are built by the
# fleet generator (benches/fleetgen.rs, seed 1): every release, histories over months,
# ejections, local edits, five teams, monorepos, every repository in git with a bare mirror, and
# the broken entries (listed as skipped: the command exits 1, which is expected here).
# N defaults to "100 1000 5000" to show the cost grows linearly. Building the fleets takes
# most of the run (about 1.5 minutes per 1,000 services on a quiet machine: every `new` and
# `upgrade` flushes its files to disk). With a busy machine compare the cpu column: the wall
# time waits for the other processes.
#
#   bash benches/fleet_status.sh
#   SIZES="100 1000" RUNS=5 bash benches/fleet_status.sh
#   COMMAND=report bash benches/fleet_status.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }
cargo build --release --quiet --bin cargo-platform --example fleetgen
bin="$PWD/target/release/cargo-platform"
gen="$PWD/target/release/examples/fleetgen"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=${RUNS:-10}
command=${COMMAND:-status}
# The generated fleets' today: every service's history lies before it.
export CARGO_PLATFORM_TODAY=2027-04-01

"$gen" --bin "$bin" --out "$work/one" -n 1 --git none
one_dir=$(find "$work/one/trees" -name platform.toml -printf '%h\n' | head -1)
hyperfine --shell=none --warmup 3 --runs 30 --export-json "$work/one.json" \
  "$bin platform status --path $one_dir --format json" >/dev/null
one=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/one.json")
printf 'one status: median %.2f ms\n' "$(python3 -c "print($one*1000)")"

for n in ${SIZES:-100 1000 5000}; do
  fleet="$work/fleet-$n"
  "$gen" --bin "$bin" --out "$fleet" -n "$n" --git all --broken --seed 1
  hyperfine --shell=none --ignore-failure --warmup 1 --runs "$runs" --export-json "$work/tree-$n.json" \
    "$bin platform fleet $command --root $fleet/trees --format json" >/dev/null
  hyperfine --shell=none --ignore-failure --warmup 1 --runs "$runs" --export-json "$work/ref-$n.json" \
    "$bin platform fleet $command --fleet $fleet/fleet.toml --format json" >/dev/null
  python3 - "$n" "$one" "$work/tree-$n.json" "$work/ref-$n.json" <<'PY'
import json, sys
n, one = int(sys.argv[1]), float(sys.argv[2])
for what, path in (("work trees", sys.argv[3]), ("git refs", sys.argv[4])):
    r = json.load(open(path))["results"][0]
    m, cpu = r["median"], r["user"] + r["system"]
    print(f"{n:5} services, {what:10}: median {m*1000:8.1f} ms, cpu {cpu*1000:8.1f} ms  ({m/n*1e6:6.1f} µs/service, {m/one:6.1f}× one status)")
PY
  rm -rf "$fleet"
done
