#!/usr/bin/env bash
# Reconnect time after systemd comes back, and the gap a daemon-reexec
# leaves, measured on a real systemd manager (tests/it/systemd_manager.rs,
# needs root): runs the outage and re-exec scenarios N times and prints
# each figure and their median and maximum.
#
#   benches/systemd_outage.sh [N]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
cargo test --quiet --test it systemd_manager:: --no-run
out=$(mktemp)
for i in $(seq "$n"); do
  cargo test --quiet --test it -- --nocapture --test-threads=1 \
    after_a_3s_outage after_a_40s_outage daemon_reexec_is_neither 2>&1 \
    | grep -E 'reconnected .* after systemd came back|gate closed|scrapes through' >>"$out" || true
  echo "run $i done" >&2
done
python3 - "$out" <<'PY'
import re, statistics, sys
lines = open(sys.argv[1]).read().splitlines()
def secs(v, unit):
    return float(v) * {"s": 1, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}[unit]
def figures(pattern):
    out = []
    for l in lines:
        m = re.search(pattern, l)
        if m:
            out.append(secs(m.group(1), m.group(2)))
    return out
for label, pat in [
    ("reconnect after a 3 s outage", r"reconnected ([0-9.]+)(s|ms|µs|ns) after systemd came back \(3 s"),
    ("reconnect after a 40 s outage", r"reconnected ([0-9.]+)(s|ms|µs|ns) after systemd came back \(40 s"),
    ("gate closed after the kill", r"gate closed ([0-9.]+)(s|ms|µs|ns) after the kill"),
]:
    v = figures(pat)
    if v:
        print(f"{label}: median {statistics.median(v):.3f} s, max {max(v):.3f} s, n={len(v)}: "
              + ", ".join(f"{x:.3f}" for x in v))
gaps = [re.search(r"(\d+) scrapes through .* (\d+) gaps", l) for l in lines]
gaps = [(int(m.group(1)), int(m.group(2))) for m in gaps if m]
if gaps:
    print(f"daemon-reexec x3 + daemon-reload x3 per run: {sum(g for _, g in gaps)} gaps in {sum(s for s, _ in gaps)} scrapes over {len(gaps)} runs")
PY
