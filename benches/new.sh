#!/usr/bin/env bash
# Benchmark: `cargo platform new` as a whole process (release build, git init + initial commit),
# default service template. Goal: median <= 10 ms.
#
#   bash benches/new.sh            # 50 runs after 5 warm-ups
#   RUNS=200 bash benches/new.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "benches/new.sh needs hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }
cargo build --release --quiet
bin="$PWD/target/release/cargo-platform"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
printf '[user]\n\tname = Bench\n\temail = bench@example.com\n' > "$work/home/.gitconfig"
export HOME="$work/home"
runs=${RUNS:-50}
hyperfine --shell=none --warmup 5 --runs "$runs" \
  --prepare "rm -rf $work/svc" \
  --export-json "$work/new.json" \
  "$bin platform new orders --yes --set owner=bench --path $work/svc"
python3 - "$work/new.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"new (service template, git init + commit): median {r['median']*1000:.2f} ms, "
      f"mean {r['mean']*1000:.2f} ms ± {r['stddev']*1000:.2f} ms over {len(r['times'])} runs")
PY
