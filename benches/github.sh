#!/usr/bin/env bash
# The GitHub collector against the fake GitHub API (testkit), two ways:
#
# 1. Simulations (the real collector code, in-process, over loopback HTTP):
#    fleet scope listing 1,000 runners, and 100 hosts in self scope polling
#    for an hour (60 polls each) on one token; prints requests per poll and
#    the rate limit spent.
# 2. End to end: the release binary in fleet scope against the fake-github
#    binary serving RUNNERS runners, polling every second for SECONDS;
#    prints requests per poll, CPU per poll and resident memory.
#
#   benches/github.sh [SECONDS] [RUNNERS]     (defaults: 30, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
runners=${2:-1000}

echo "== simulations"
cargo test --quiet --lib collect::github::tests::simulate -- --ignored --nocapture --test-threads=1 \
  2>&1 | grep -v -e '^running' -e '^test result' -e '^$'

echo "== end to end: fleet scope, $runners runners, poll_interval 1s, ${secs}s"
cargo build --release --quiet --bin runner-health-exporter
cargo build --release --quiet -p testkit --bin fake-github
work=$(mktemp -d)
fake_pid=""
pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ -n "$fake_pid" ] && wait "$fake_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/stdin"
target/release/fake-github --org acme --runners "$runners" <"$work/stdin" >"$work/fake.out" &
fake_pid=$!
exec 3>"$work/stdin"
for _ in $(seq 100); do grep -q '^listening ' "$work/fake.out" && break; sleep 0.05; done
url=$(awk '/^listening /{print $2}' "$work/fake.out")
printf 'token\n' >"$work/token"
chmod 600 "$work/token"
cat >"$work/config.toml" <<EOF
[host]
enabled = false
[systemd]
enabled = false
[runner_files]
enabled = false
[github]
scope = "fleet"
api_url = "$url"
token_file = "$work/token"
poll_interval = "1s"
organizations = ["acme"]
EOF
target/release/runner-health-exporter --web.listen-address=127.0.0.1:0 \
  --config.file="$work/config.toml" 2>"$work/exporter.log" &
pid=$!
for _ in $(seq 100); do grep -q 'msg=listening' "$work/exporter.log" && break; sleep 0.05; done
addr=$(sed -n 's/.*msg=listening address=\([^ ]*\).*/\1/p' "$work/exporter.log" | head -1)
sleep 3 # first poll (all 200s) and warm-up
scrape() { curl -s "http://$addr/metrics"; }
polls() { scrape | awk '/^github_runner_github_api_requests_total/ {s += $2} END {print s + 0}'; }
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ split($0, a, ") "); split(a[2], f, " "); print (f[12] + f[13]) / t }' "/proc/$pid/stat"; }
r0=$(polls); c0=$(cpu); t0=$(date +%s.%N)
sleep "$secs"
r1=$(polls); c1=$(cpu); t1=$(date +%s.%N)
body=$(scrape)
series=$(printf '%s\n' "$body" | grep -c '^github_runner_registered{' || true)
rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
python3 - "$r0" "$r1" "$c0" "$c1" "$t0" "$t1" "$rss" "$series" "${#body}" "$runners" <<'PY'
import math, sys
r0, r1, c0, c1, t0, t1 = map(float, sys.argv[1:7])
rss, series, size, runners = map(int, sys.argv[7:11])
pages = math.ceil(runners / 100)
requests = r1 - r0
polls = requests / pages
cpu_ms = (c1 - c0) * 1000
print(f"window {t1 - t0:.1f} s: {requests:.0f} requests = {polls:.0f} polls of {pages} pages "
      f"({requests / max(polls, 1):.0f} requests per poll, all 304 after the first)")
print(f"CPU {cpu_ms:.0f} ms -> {cpu_ms / max(polls, 1):.1f} ms per poll "
      f"({100 * (c1 - c0) / (t1 - t0):.2f}% of one core at 1 poll/s); RSS {rss / 1024:.1f} MiB; "
      f"{series} runners exported, /metrics {size / 1024:.0f} KiB")
PY
