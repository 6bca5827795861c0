#!/usr/bin/env bash
# Benchmark: `cargo platform upgrade` (oldest -> newest release of the service template) and
# `cargo platform status`, whole process, release build, on a freshly scaffolded service —
# first as it is, then with a 1 GB target/ directory (10,000 files) inside it, which must not
# change either figure. Goals: upgrade median <= 20 ms, status median <= 10 ms.
#
#   bash benches/upgrade_status.sh
#   RUNS=50 bash benches/upgrade_status.sh
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
runs=${RUNS:-30}
oldest=$("$bin" platform templates --format json | python3 -c 'import json,sys; t=json.load(sys.stdin)["templates"]; print([x for x in t if x["name"]=="service"][0]["versions"][-1]["version"])')
svc="$work/orders"
"$bin" platform new orders --yes --set owner=bench --template-version "$oldest" --path "$svc" >/dev/null
# Put the tree back as `new` left it (target/ is ignored by git, so it stays), then let the
# index settle: right after a checkout every file has the index's mtime ("racy"), and git
# status would re-hash them all — a state a real service, committed a while ago, is never in.
reset="git -C $svc checkout -q -- . && git -C $svc clean -fdq && sleep 1.1 && git -C $svc update-index -q --refresh"

measure() { # slug label
  hyperfine --shell=bash --warmup 3 --runs "$runs" --export-json "$work/$1-upgrade.json" \
    --prepare "$reset" "$bin platform upgrade --path $svc" >/dev/null
  hyperfine --shell=none --warmup 3 --runs "$runs" --export-json "$work/$1-status.json" \
    "$bin platform status --path $svc" >/dev/null
  python3 - "$2" "$work/$1-upgrade.json" "$work/$1-status.json" <<'PY'
import json, sys
label = sys.argv[1]
for what, path in (("upgrade", sys.argv[2]), ("status", sys.argv[3])):
    r = json.load(open(path))["results"][0]
    print(f"{what:8} {label:22} median {r['median']*1000:7.2f} ms   mean {r['mean']*1000:7.2f} ms ± {r['stddev']*1000:5.2f}")
PY
}

echo "service template $oldest -> newest, $runs runs each"
measure fresh "fresh"
# A 1 GB target/ of 10,000 files, as a real build leaves behind.
for d in $(seq 1 100); do
  mkdir -p "$svc/target/debug/deps/d$d"
  for f in $(seq 1 100); do fallocate -l 100K "$svc/target/debug/deps/d$d/f$f.rlib"; done
done
echo "target/: $(du -sh "$svc/target" | cut -f1) in $(find "$svc/target" -type f | wc -l) files"
measure big "with 1 GB target/"
