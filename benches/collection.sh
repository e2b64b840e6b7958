#!/usr/bin/env bash
# Collection cost: CPU per sampling cycle of each collector with 1 and 10
# runners (fixture roots, testkit's fake-systemd and fake-github), and the
# steady idle CPU with default intervals and no scrapes. See
# benches/collection.py for the method and docs/BENCHMARKS.md for figures.
#
#   benches/collection.sh [--runners 1,10] [--seconds 30] [--idle-seconds 300] [--idle-poll]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dbus-daemon >/dev/null || {
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dbus
}
cargo build --release --quiet --bin runner-health-exporter
cargo build --release --quiet -p testkit --bin fake-systemd --bin fake-github
exec python3 benches/collection.py "$@"
