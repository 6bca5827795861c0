#!/usr/bin/env bash
# Clean debug build time of a freshly generated service: what a product engineer waits for
# after `cargo platform new` on a machine with an empty target dir.
#
#   benches/service_build_time.sh                    # memory store, 1 run
#   STORE=postgres RUNS=3 benches/service_build_time.sh
#
# Dependencies are fetched first (`cargo fetch`), so the network is not timed; every run
# builds into a new, empty target dir. Prints the wall time of each run and the median.
set -euo pipefail

STORE="${STORE:-memory}"
RUNS="${RUNS:-1}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t cargo-platform-buildtime-XXXXXX)"
trap 'rm -rf "$work"' EXIT

(cd "$repo" && cargo build -q)
"$repo/target/debug/cargo-platform" platform new build-bench --yes --no-git --path "$work/build-bench" \
  --set owner=bench --set "idempotency_store=$STORE" >/dev/null
cd "$work/build-bench"
cargo fetch -q

times=()
for run in $(seq 1 "$RUNS"); do
  rm -rf "$work/target"
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$work/target" cargo build -q
  end=$(date +%s.%N)
  t=$(python3 -c "print(f'{$end - $start:.1f}')")
  times+=("$t")
  echo "run $run: clean debug build of the generated service (store=$STORE): ${t} s" >&2
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "clean debug build, store=$STORE, $(nproc) cores: median ${median} s over $RUNS run(s) (${times[*]})"
