#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# then runs formatting, lints and every test against real components
# (promtool and Prometheus, dbus-daemon, the real binary over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Installing test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace --no-fail-fast

step "Packages: build, lint, install, purge"
scripts/package.sh --install-test

step "All tests passed"
