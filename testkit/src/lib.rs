//! Test support shared by the integration tests, benchmarks and fakes.
//!
//! Everything here drives the real exporter binary as a separate process
//! and talks to it over real HTTP on loopback.

pub mod fake_github;
pub mod fake_systemd;
pub mod github_queue;
pub mod http;
pub mod pki;
pub mod process;
pub mod systemd_manager;

pub use fake_github::{Failure, FakeGithub};
pub use fake_systemd::{FakeSystemd, Unit};
pub use http::{get, get_with, Response};
pub use process::Exporter;
pub use systemd_manager::{BusEvent, BusWatch, RunnerOptions, RunnerUnit, SystemdManager};

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

/// The status and reason of check `check` of the first runner in a
/// `/health` JSON report.
pub fn health_check(report: &serde_json::Value, check: &str) -> Option<(String, String)> {
    report["runners"][0]["checks"]
        .as_array()?
        .iter()
        .find(|c| c["check"] == check)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Copies a directory tree (a fixture runner root into a temp dir); files
/// become writable so tests can append to logs.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read the fixture directory") {
        let entry = entry.expect("a directory entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy a fixture file");
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644))
                .expect("make the copy writable");
        }
    }
}

/// `promtool check metrics` on an exposition: (clean, findings).
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
