#!/usr/bin/env bash
# CPU cost of the systemd collector: one full resync of N runner units.
#
# Runs the release build of the exporter against the fake systemd
# (testkit's fake-systemd program: a real dbus-daemon with a stand-in for
# org.freedesktop.systemd1), with N runner units among other units, and
# reads the exporter's CPU time (utime + stime of /proc/PID/stat) before
# and after many resyncs. Only the systemd collector runs.
#
#   1. Periodic resyncs: resync_interval is set very short, so the
#      collector resyncs back to back; nothing changes, so nothing is
#      re-rendered. Resyncs are counted by the fake (ListUnitsByPatterns
#      calls, one per resync).
#   2. Signal-driven resyncs: resync_interval is 1h; the fake restarts one
#      unit at a time (PropertiesChanged), each triggering a resync and a
#      re-render of /metrics. No scrapes during the measurement.
#   3. Latency: from a unit change at the fake to the change in /metrics,
#      polling /metrics every 5 ms (the polling costs CPU, so this phase is
#      not part of the CPU figures).
#
# Each unit has a WorkingDirectory and no readable cgroup, so every resync
# also scans /proc for the runner's processes (the fallback path, the more
# expensive one). WORKDIRS=0 leaves the working directories out, which
# skips the process lookup and shows the cost of the D-Bus part alone.
#
# Usage: benches/systemd_resync.sh   (env: UNITS=10 OTHERS=60 SECONDS_PER_PHASE=60
#                                     SIGNALS=200 LATENCY_SAMPLES=30 WORKDIRS=1)
set -euo pipefail

UNITS=${UNITS:-10}
OTHERS=${OTHERS:-60}
PHASE=${SECONDS_PER_PHASE:-60}
SIGNALS=${SIGNALS:-200}
LATENCY_SAMPLES=${LATENCY_SAMPLES:-30}
WORKDIRS=${WORKDIRS:-1}

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin runner-health-exporter
cargo build --release --quiet -p testkit --bin fake-systemd
EXPORTER=target/release/runner-health-exporter
FAKE_BIN=target/release/fake-systemd

tmp=$(mktemp -d)
exporter_pid=""
fake_pid=""
cleanup() {
    if [[ -n "$exporter_pid" ]]; then kill "$exporter_pid" 2>/dev/null || true; fi
    if [[ -n "$fake_pid" ]]; then
        echo quit >&3 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

args=()
for i in $(seq 1 "$UNITS"); do
    mkdir -p "$tmp/runner-$i/bin"
    if [[ "$WORKDIRS" == 1 ]]; then
        args+=("actions.runner.bench-org-bench-repo.runner-$i.service=$tmp/runner-$i")
    else
        args+=("actions.runner.bench-org-bench-repo.runner-$i.service")
    fi
done
for i in $(seq 1 "$OTHERS"); do
    args+=("other-$i.service")
done

# Commands go to the fake on fd 3, its answers come back on fd 4 (plain
# pipes: command substitutions can use them, unlike coproc descriptors).
mkfifo "$tmp/to-fake" "$tmp/from-fake"
"$FAKE_BIN" "${args[@]}" <"$tmp/to-fake" >"$tmp/from-fake" &
fake_pid=$!
exec 3>"$tmp/to-fake" 4<"$tmp/from-fake"
read -r address <&4

fake() {
    echo "$*" >&3
    local reply
    read -r reply <&4
    echo "$reply"
}

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

start_exporter() {
    local interval=$1
    cat >"$tmp/config.toml" <<EOF
[host]
enabled = false
[runner_files]
enabled = false
[systemd]
resync_interval = "$interval"
EOF
    DBUS_SYSTEM_BUS_ADDRESS="$address" "$EXPORTER" \
        --config.file="$tmp/config.toml" \
        --web.listen-address=127.0.0.1:0 \
        --log.level=info 2>"$tmp/exporter.log" &
    exporter_pid=$!
    local port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/.*msg=listening address=127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/exporter.log" | head -1)
        [[ -n "$port" ]] && break
        sleep 0.05
    done
    url="http://127.0.0.1:$port/metrics"
    for _ in $(seq 1 200); do
        if curl -fsS "$url" | grep -q 'github_runner_exporter_collector_success{collector="systemd"} 1'; then
            return
        fi
        sleep 0.05
    done
    echo "exporter did not report systemd success" >&2
    cat "$tmp/exporter.log" >&2
    exit 1
}

stop_exporter() {
    kill "$exporter_pid"
    wait "$exporter_pid" 2>/dev/null || true
    exporter_pid=""
}

calls() { fake calls "$1" | awk '{print $2}'; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "units: $UNITS runner units among $((UNITS + OTHERS)); working directories: $WORKDIRS; processes on the machine: $(ls -d /proc/[0-9]* | wc -l); ticks per second: $hz"

# ---------------------------------------------------------------- 1
start_exporter 50ms
sleep 1
c0=$(calls ListUnitsByPatterns)
g0=$(calls Get)
t0=$(cpu_ticks "$exporter_pid")
sleep "$PHASE"
t1=$(cpu_ticks "$exporter_pid")
c1=$(calls ListUnitsByPatterns)
g1=$(calls Get)
stop_exporter
resyncs=$((c1 - c0))
awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$resyncs" -v g=$((g1 - g0)) -v s="$PHASE" 'BEGIN {
    printf "periodic resyncs: %d in %ds, %.0f ms CPU, %.3f ms CPU per resync, %.1f Get calls per resync\n",
        n, s, t * 1000 / hz, t * 1000 / hz / n, g / n }'

# ---------------------------------------------------------------- 2
start_exporter 1h
sleep 1
c0=$(calls ListUnitsByPatterns)
t0=$(cpu_ticks "$exporter_pid")
for i in $(seq 1 "$SIGNALS"); do
    unit=$(( (i - 1) % UNITS + 1 ))
    fake restart "actions.runner.bench-org-bench-repo.runner-$unit.service" >/dev/null
    # Longer than the debounce and the resync, so each signal gets its own.
    sleep 0.3
done
t1=$(cpu_ticks "$exporter_pid")
c1=$(calls ListUnitsByPatterns)
resyncs=$((c1 - c0))
awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$resyncs" -v sig="$SIGNALS" 'BEGIN {
    printf "signal-driven resyncs (with re-render): %d for %d signals, %.0f ms CPU, %.3f ms CPU per resync (idle time included)\n",
        n, sig, t * 1000 / hz, t * 1000 / hz / n }'

# ---------------------------------------------------------------- 3
lat=()
for i in $(seq 1 "$LATENCY_SAMPLES"); do
    unit="actions.runner.bench-org-bench-repo.runner-1.service"
    if (( i % 2 )); then cmd=stop; want='state="inactive"} 1'; else cmd=start; want='state="active"} 1'; fi
    start_ns=$(date +%s%N)
    fake "$cmd" "$unit" >/dev/null
    while ! curl -fsS "$url" | grep -F "unit=\"$unit\"" | grep -qF "$want"; do
        sleep 0.005
    done
    lat+=($(( ($(date +%s%N) - start_ns) / 1000000 )))
done
stop_exporter
printf '%s\n' "${lat[@]}" | sort -n | awk '{ a[NR] = $1 } END {
    printf "signal to /metrics latency over %d changes: median %d ms, p90 %d ms, max %d ms\n",
        NR, a[int((NR + 1) / 2)], a[int(NR * 0.9 + 0.5)], a[NR] }'
