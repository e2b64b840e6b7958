//! Test support shared by the integration tests, benchmarks and fakes.
//!
//! Everything here drives the real exporter binary as a separate process
//! and talks to it over real HTTP on loopback.

pub mod fake_github;
pub mod fake_systemd;
pub mod http;
pub mod pki;
pub mod process;

pub use fake_github::{Failure, FakeGithub};
pub use fake_systemd::{FakeSystemd, Unit};
pub use http::{get, get_with, Response};
pub use process::Exporter;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The test fixtures: `tests/fixtures` in the repository (copied from the
/// shared fixtures: runner roots and GitHub API payloads), or
/// `$RHE_FIXTURES` when set.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(p) = std::env::var("RHE_FIXTURES") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The value of one sample in a text exposition, by exact series text
/// (`name{labels}` as the exporter writes it).
pub fn sample_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let v = rest.strip_prefix(' ')?;
        match v.trim() {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            v => v.parse().ok(),
        }
    })
}
