#!/usr/bin/env bash
# Benchmark: `cargo platform fleet status --format json` (or `fleet report`, with
# COMMAND=report: benches/fleet_report.sh) over N services, whole process, release build —
# read from work trees, then from a git ref of a bare mirror (no checkout) — against one
# `cargo platform status`. Services alternate between the oldest and the newest release; every
# tenth has a local edit. N defaults to "100 1000 5000" to show the cost grows linearly.
#
#   bash benches/fleet_status.sh
#   SIZES="100 1000" RUNS=5 bash benches/fleet_status.sh
#   COMMAND=report bash benches/fleet_status.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }
cargo build --release --quiet
bin="$PWD/target/release/cargo-platform"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
printf '[user]\n\tname = Bench\n\temail = bench@example.com\n' > "$work/home/.gitconfig"
export HOME="$work/home"
runs=${RUNS:-10}
command=${COMMAND:-status}
versions=$("$bin" platform templates --format json | python3 -c 'import json,sys; t=[x for x in json.load(sys.stdin)["templates"] if x["name"]=="service"][0]; print(t["versions"][-1]["version"], t["versions"][0]["version"])')
read -r oldest newest <<<"$versions"
"$bin" platform new seed-old --yes --no-git --set owner=bench --template-version "$oldest" --path "$work/seed-old" >/dev/null
"$bin" platform new seed-new --yes --no-git --set owner=bench --template-version "$newest" --path "$work/seed-new" >/dev/null
hyperfine --shell=none --warmup 3 --runs 30 --export-json "$work/one.json" \
  "$bin platform status --path $work/seed-old --format json" >/dev/null
one=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/one.json")
printf 'one status: median %.2f ms\n' "$(python3 -c "print($one*1000)")"

for n in ${SIZES:-100 1000 5000}; do
  fleet="$work/fleet-$n"
  mkdir -p "$fleet"
  for i in $(seq 1 "$n"); do
    if (( i % 2 )); then cp -r "$work/seed-old" "$fleet/s$i"; else cp -r "$work/seed-new" "$fleet/s$i"; fi
    if (( i % 10 == 0 )); then echo "# edit" >> "$fleet/s$i/Dockerfile"; fi
  done
  git -C "$fleet" init -q && git -C "$fleet" add -A && git -C "$fleet" commit -qm fleet
  git clone -q --bare "$fleet" "$fleet.git"
  hyperfine --shell=none --warmup 1 --runs "$runs" --export-json "$work/tree-$n.json" \
    "$bin platform fleet $command --root $fleet --format json" >/dev/null
  hyperfine --shell=none --warmup 1 --runs "$runs" --export-json "$work/ref-$n.json" \
    "$bin platform fleet $command --root $fleet.git --ref HEAD --format json" >/dev/null
  python3 - "$n" "$one" "$work/tree-$n.json" "$work/ref-$n.json" <<'PY'
import json, sys
n, one = int(sys.argv[1]), float(sys.argv[2])
for what, path in (("work trees", sys.argv[3]), ("git ref", sys.argv[4])):
    r = json.load(open(path))["results"][0]
    m, cpu = r["median"], r["user"] + r["system"]
    print(f"{n:5} services, {what:10}: median {m*1000:8.1f} ms, cpu {cpu*1000:8.1f} ms  ({m/n*1e6:6.1f} µs/service, {m/one:6.1f}× one status)")
PY
done
