//! Test support shared by the integration tests, benchmarks and fakes.
//!
//! Everything here drives the real exporter binary as a separate process
//! and talks to it over real HTTP on loopback.

pub mod fake_github;
pub mod fake_systemd;
pub mod github_queue;
pub mod http;
pub mod net;
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

/// Series that appear more than once in a text exposition (the same
/// name and the same labels, in any order): Prometheus rejects a scrape
/// holding one. Each is returned once, as `name{k="v",...}`.
pub fn duplicate_series(exposition: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut dups = Vec::new();
    for line in exposition.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(key) = series_key(line) else {
            dups.push(format!("unparsable line: {line}"));
            continue;
        };
        if !seen.insert(key.clone()) && !dups.contains(&key) {
            dups.push(key);
        }
    }
    dups
}

/// `name{labels sorted}` of a sample line.
fn series_key(line: &str) -> Option<String> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if !line[name_end..].starts_with('{') {
        return Some(name.to_string());
    }
    let mut labels = Vec::new();
    let mut rest = &line[name_end + 1..];
    loop {
        rest = rest.trim_start_matches(',');
        if rest.starts_with('}') {
            break;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, e) = chars.next()?;
                    value.push('\\');
                    value.push(e);
                }
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.push(format!("{key}=\"{value}\""));
        rest = &after[end + 1..];
    }
    labels.sort();
    Some(format!("{name}{{{}}}", labels.join(",")))
}

/// Panics when an exposition holds a series twice.
pub fn assert_unique_series(exposition: &str) {
    let dups = duplicate_series(exposition);
    assert!(
        dups.is_empty(),
        "duplicate series in the exposition (Prometheus rejects the scrape): {dups:?}\n{exposition}"
    );
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
/// `/health` JSON report (or `check --json`'s).
pub fn health_check(report: &serde_json::Value, check: &str) -> Option<(String, String)> {
    check_of(&report["runners"][0], check)
}

/// The status and reason of check `check` of the runner named `runner` in a
/// `/health` JSON report.
pub fn runner_check(
    report: &serde_json::Value,
    runner: &str,
    check: &str,
) -> Option<(String, String)> {
    let r = report["runners"]
        .as_array()?
        .iter()
        .find(|r| r["runner"] == runner)?;
    check_of(r, check)
}

fn check_of(runner: &serde_json::Value, check: &str) -> Option<(String, String)> {
    runner["checks"]
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

#[cfg(test)]
mod tests {
    #[test]
    fn duplicate_series_are_found_whatever_the_label_order() {
        let ok = "# HELP a x\na{x=\"1\",y=\"2\"} 1\na{x=\"1\",y=\"3\"} 1\nb 2\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\n";
        assert!(super::duplicate_series(ok).is_empty());
        let dup = "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\nb 1\nb 2\nc{v=\"q\\\"}\"} 1\nc{v=\"q\\\"}\"} 1\n";
        assert_eq!(
            super::duplicate_series(dup),
            ["a{x=\"1\",y=\"2\"}", "b", "c{v=\"q\\\"}\"}"]
        );
        let brackets = "r{runner=\"linux_runner ()\"} 1\nr{runner=\"linux_runner ()\"} 1\n";
        assert_eq!(super::duplicate_series(brackets).len(), 1);
    }
}
