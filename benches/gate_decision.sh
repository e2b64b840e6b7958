#!/usr/bin/env bash
# Decision time of the deploy gate (action/gate.sh) from the primary
# runner's unit stopping to the gate's answer "secondary", over N runs.
#
# Runs the failover test of tests/it/gate_action.rs (two real exporters, each
# with its runner's unit on its own real systemd manager) with
# RHE_GATE_DECISION_RUNS=N: each run starts the primary's unit, waits until
# its exporter sees it active, stops it and runs the gate (default timeout
# 5 s, retries 2, delay 2 s) until it answers, then reports median and
# maximum. The dev profile is used: the time is spent in the retry delays
# and on loopback, not in the exporter's CPU.
#
# Usage: benches/gate_decision.sh [N]   (default 10)
set -euo pipefail
runs=${1:-10}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RUNS]" >&2; exit 2; }
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
RHE_GATE_DECISION_RUNS=$runs cargo test --quiet --test it \
    gate_picks_the_primary_fails_over_and_names_the_root_cause -- --nocapture >"$log" 2>&1 || {
    cat "$log" >&2
    echo "the failover test failed" >&2
    exit 1
}
mapfile -t times < <(sed -n 's/^gate decision: \([0-9.]*\) s .*/\1/p' "$log" | sort -n)
[[ ${#times[@]} -eq $runs ]] || {
    cat "$log" >&2
    echo "expected $runs measurements, got ${#times[@]}" >&2
    exit 1
}
n=${#times[@]}
if ((n % 2)); then
    median=${times[n / 2]}
else
    median=$(awk -v a="${times[n / 2 - 1]}" -v b="${times[n / 2]}" 'BEGIN { printf "%.3f", (a + b) / 2 }')
fi
grep '^gate decision:' "$log"
printf 'runs %d  median %s s  min %s s  max %s s\n' "$n" "$median" "${times[0]}" "${times[n - 1]}"
