#!/usr/bin/env bash
# Benchmark: `cargo platform fleet report --format json` over N services (the same fleets and
# measures as benches/fleet_status.sh, which this runs with COMMAND=report).
#
#   bash benches/fleet_report.sh
#   SIZES="100 1000" RUNS=5 bash benches/fleet_report.sh
set -euo pipefail
COMMAND=report exec bash "$(dirname "$0")/fleet_status.sh"
