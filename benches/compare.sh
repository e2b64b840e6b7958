#!/usr/bin/env bash
# Side-by-side benchmark of runner-health-exporter and node_exporter on this
# machine, in one run, alternating the two. Prints a markdown table and the
# ratios; see docs/BENCHMARKS.md for the method.
#
#   benches/compare.sh [--duration SECONDS] [--rounds N] [--placements shared,pinned] [--isolate]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet
exec python3 benches/compare.py --binary target/release/runner-health-exporter "$@"
