#!/usr/bin/env bash
# Steady cost with no scrapes: the exporter's CPU over a window, divided by
# the window (share of one core) and by the number of host samples taken.
#
#   benches/idle.sh [SECONDS] [SAMPLE_INTERVAL] [extra exporter args...]
# Defaults: 60 s, the default sample interval (15s). With "1s" the figure per
# sample is the cost of one host sampling cycle (plus the re-render it causes).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
interval=${2:-15s}
shift 2 2>/dev/null || true
cargo build --release --quiet
cfg=$(mktemp --suffix=.toml)
trap 'rm -f "$cfg"; kill "$pid" 2>/dev/null || true' EXIT
printf '[host]\nsample_interval = "%s"\n[systemd]\nenabled = false\n[runner_files]\nroot_patterns = []\n' "$interval" >"$cfg"
target/release/runner-health-exporter --web.listen-address=127.0.0.1:0 --config.file="$cfg" "$@" 2>/dev/null &
pid=$!
sleep 3
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ split($0, a, ") "); split(a[2], f, " "); print (f[12] + f[13]) / t }' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$secs"
c1=$(cpu); t1=$(date +%s.%N)
python3 - "$c0" "$c1" "$t0" "$t1" "$interval" "$(grep VmRSS /proc/$pid/status | awk '{print $2}')" <<'PY'
import sys
c0, c1, t0, t1 = map(float, sys.argv[1:5])
interval, rss = sys.argv[5], int(sys.argv[6])
units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
num = "".join(ch for ch in interval if ch.isdigit()); unit = interval[len(num):]
samples = (t1 - t0) / (int(num) * units[unit])
cpu_ms = (c1 - c0) * 1000
print(f"window {t1 - t0:.1f} s, CPU {cpu_ms:.1f} ms = {100 * (c1 - c0) / (t1 - t0):.4f}% of one core; "
      f"{samples:.0f} samples -> {cpu_ms / samples:.3f} ms CPU per sample; RSS {rss / 1024:.1f} MiB "
      f"(CPU time resolution: 10 ms)")
PY
