#!/usr/bin/env bash
# Benchmark: `cargo platform fleet upgrade` (a campaign, no --verify) of N services on the oldest
# release to the newest, one git repository per service, whole process, release build. Goal for
# N=100 on 2 cores: ≤ 10 s. Before each run the campaign branches are deleted (their objects stay,
# as after an aborted campaign), so every run upgrades and commits all N services.
#
#   bash benches/fleet_upgrade.sh
#   SIZES="100 500" RUNS=3 JOBS=2 bash benches/fleet_upgrade.sh
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
runs=${RUNS:-5}
jobs=${JOBS:+--jobs $JOBS}
oldest=$("$bin" platform templates --format json | python3 -c 'import json,sys; t=[x for x in json.load(sys.stdin)["templates"] if x["name"]=="service"][0]; print(t["versions"][-1]["version"])')
(cd "$work" && "$bin" platform new seed --yes --set owner=bench --template-version "$oldest" >/dev/null)

for n in ${SIZES:-100}; do
  fleet="$work/fleet-$n"
  mkdir -p "$fleet"
  for i in $(seq 1 "$n"); do cp -r "$work/seed" "$fleet/s$i"; done
  hyperfine --shell=none --warmup 1 --runs "$runs" --export-json "$work/upgrade-$n.json" \
    --prepare "find $fleet -path '*/.git/refs/heads/platform' -prune -exec rm -rf {} +" \
    "$bin platform fleet upgrade --root $fleet $jobs --format json" >/dev/null
  ready=$("$bin" platform fleet upgrade --root "$fleet" --dry-run --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"])')
  python3 - "$n" "$work/upgrade-$n.json" "$ready" <<'PY'
import json, sys
n = int(sys.argv[1])
r = json.load(open(sys.argv[2]))["results"][0]
m, cpu = r["median"], r["user"] + r["system"]
print(f"{n:5} services: median {m:6.2f} s (min {r['min']:.2f}, max {r['max']:.2f}), cpu {cpu:6.2f} s, {m/n*1000:6.1f} ms/service; re-run counts {sys.argv[3]}")
PY
done
