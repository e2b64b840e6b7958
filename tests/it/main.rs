//! The integration tests, one binary: each module drives the real binary
//! (and real Prometheus, systemd, dbus-daemon, tinyproxy, dpkg and rpm where
//! it needs them) as a process. One binary instead of one per file: the
//! test targets build and link once (times in docs/BENCHMARKS.md), and the
//! long tests of one module overlap the short ones of the others.
//!
//! Run one module with `cargo test --test it github::`.

mod alerts;
mod dashboard;
mod docker;
mod faults;
mod fuzz_regressions;
mod gate_action;
mod generated;
mod github;
mod github_net;
mod golden;
mod health;
mod journald;
mod lifecycle;
mod notify;
mod prometheus_e2e;
mod queue;
mod reload;
mod runner;
mod serve;
mod systemd;
mod systemd_manager;
mod web;
