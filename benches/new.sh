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
# Each run creates the service at the same path; the tree the run before left is moved aside
# (a rename), not deleted. Deleting it would leave thousands of just-freed inodes that ext4
# skips one by one when it allocates new ones ("recently deleted" inodes), a cost no user who
# runs `new` once pays; with `rm -rf` between runs most of the time went there (perf). The
# second measurement shows that case too.
mkdir -p "$work/kept"
printf '#!/usr/bin/env bash\n[ ! -e "%s/svc" ] || mv "%s/svc" "%s/kept/svc-$(date +%%s%%N)"\n' \
  "$work" "$work" "$work" > "$work/aside.sh"
measure() { # json prepare-command
  hyperfine --shell=none --warmup 5 --runs "$runs" --prepare "$2" --export-json "$1" \
    "$bin platform new orders --yes --set owner=bench --path $work/svc" >/dev/null
}
measure "$work/new.json" "bash $work/aside.sh"
measure "$work/new-rm.json" "rm -rf $work/svc"
python3 - "$work/new.json" "$work/new-rm.json" <<'PY'
import json, sys
for label, path in (("", sys.argv[1]), (" [rm -rf between runs]", sys.argv[2])):
    r = json.load(open(path))["results"][0]
    print(f"new (service template, git init + commit){label}: median {r['median']*1000:.2f} ms, "
          f"mean {r['mean']*1000:.2f} ms ± {r['stddev']*1000:.2f} ms over {len(r['times'])} runs")
PY
