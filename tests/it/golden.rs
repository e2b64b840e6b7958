//! Golden outputs: `/metrics` in both formats, `/health` as JSON and text,
//! and `check` as JSON and text, for a fixed set of runners, compared with
//! the files in `tests/golden/`. What a user sees must not change by
//! accident; an intended change rewrites the files
//! (`RHE_UPDATE_GOLDEN=1 cargo test --test it golden::`) and shows in the diff.
//!
//! Values that depend on the machine or the moment (host figures, the
//! exporter's own process, timestamps of the run, request counts, the
//! work filesystem's free space, ages in reasons) are masked; everything
//! else (every series and its labels, states, counts from the fixture
//! logs, checks, causes, fixes, runbooks) is compared exactly.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::{copy_dir, Exporter, FakeGithub, FakeSystemd, Unit};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

/// Families whose values change from run to run or machine to machine.
const VOLATILE: &[&str] = &[
    "github_runner_host_",
    "process_",
    "github_runner_service_active_since_timestamp_seconds",
    "github_runner_work_filesystem_",
    "github_runner_github_api_requests_total",
    "github_runner_queue_api_requests_total",
    "github_runner_github_api_rate_limit_",
    "github_runner_github_last_success_timestamp_seconds",
    "github_runner_github_owner_last_success_timestamp_seconds",
    "github_runner_exporter_collector_duration_seconds",
    "github_runner_exporter_collector_last_success_timestamp_seconds",
    "github_runner_exporter_collector_errors_total",
    "github_runner_exporter_config_last_reload_success_timestamp_seconds",
    // One per mounted filesystem.
    "github_runner_exporter_collector_targets{collector=\"host\"}",
];

/// Series that exist only on some machines (one per mounted filesystem).
const MACHINE_SERIES: &[&str] = &[
    "github_runner_host_filesystem_",
    "github_runner_host_cpu_seconds_total{",
];

struct Env {
    dir: tempfile::TempDir,
    _systemd: FakeSystemd,
    github: FakeGithub,
    systemd_address: String,
}

/// Two runners: `basic` (a repository runner, its unit running, online and
/// busy at GitHub, a job still running since the fixture's day) and
/// `broken` (an organization runner whose unit failed after a session
/// conflict and a deleted registration, and which GitHub answers 404 for).
/// The queue watches the repository runner's acme/app, where nothing
/// waits.
fn env() -> Env {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temp dir");
    let fixtures = testkit::fixtures_dir().join("runner");
    let basic = dir.path().join("actions-runner-basic");
    let broken = dir.path().join("actions-runner-broken");
    copy_dir(&fixtures.join("basic"), &basic);
    copy_dir(&fixtures.join("broken"), &broken);
    let systemd = FakeSystemd::start([
        Unit::running("actions.runner.acme-app.linux_runner.service")
            .with_working_directory(&basic)
            .with_restarts(1),
        Unit::inactive("actions.runner.acme.deploy-primary.service")
            .with_working_directory(&broken),
    ]);
    let github = FakeGithub::start();
    github.set_runners("repos/acme/app", testkit::fake_github::official_runners());
    github.set_runners("orgs/acme", Vec::new());
    // The latest actions/runner release: 2.330.0.
    github.set_latest_release(Some(FakeGithub::fixture_latest_release()));
    let systemd_address = systemd.address();
    Env {
        dir,
        _systemd: systemd,
        github,
        systemd_address,
    }
}

impl Env {
    fn config(&self) -> PathBuf {
        let token = self.dir.path().join("token");
        std::fs::write(&token, "golden-test-token\n").expect("write the token");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the token");
        let text = format!(
            "[host]\nsample_interval = \"1s\"\n[systemd]\nresync_interval = \"1s\"\n\
             [runner_files]\nroot_patterns = [\"{dir}/actions-runner-*\"]\n\
             [[runner]]\nroot = \"{dir}/actions-runner-basic\"\nrole = \"primary\"\nenvironment = \"production\"\n\
             [[runner]]\nunit = \"actions.runner.acme.deploy-primary.service\"\nrole = \"secondary\"\nenvironment = \"production\"\n\
             [github]\nscope = \"self\"\napi_url = \"{api}\"\ntoken_file = \"{token}\"\npoll_interval = \"1s\"\n\
             [health]\nmemory_available_warn_ratio = 0.0\ndisk_free_warn_ratio = 0.0002\ndisk_free_fail_ratio = 0.0001\n",
            dir = self.dir.path().display(),
            api = self.github.url(),
            token = token.display(),
        );
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write the config");
        path
    }

    fn envs(&self) -> Vec<(&str, &str)> {
        vec![("DBUS_SYSTEM_BUS_ADDRESS", self.systemd_address.as_str())]
    }

    /// Replaces the temp dir and the fake GitHub's address with stable
    /// names.
    fn stable(&self, text: &str) -> String {
        text.replace(&self.dir.path().display().to_string(), "/TMP")
            .replace(&self.github.url(), "http://GITHUB")
    }
}

fn family_matches(line: &str, prefixes: &[&str]) -> bool {
    let name = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .or_else(|| line.strip_prefix("# UNIT "))
        .unwrap_or(line);
    prefixes.iter().any(|p| name.starts_with(p))
}

/// An exposition with machine-only series dropped and volatile values and
/// build labels masked.
fn normalize_metrics(env: &Env, text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if !line.starts_with('#') && family_matches(line, MACHINE_SERIES) {
            continue;
        }
        let line = if line.starts_with("github_runner_exporter_build_info") {
            "github_runner_exporter_build_info{...} 1".to_string()
        } else if line.starts_with("github_runner_exporter_collector_targets{collector=\"host\"}") {
            // One per mounted filesystem: the machine's.
            "github_runner_exporter_collector_targets{collector=\"host\"} <v>".to_string()
        } else if !line.starts_with('#') && family_matches(line, VOLATILE) {
            match line.rfind(' ') {
                Some(i) => format!("{} <v>", &line[..i]),
                None => line.to_string(),
            }
        } else {
            line.to_string()
        };
        out.push_str(&env.stable(&line));
        out.push('\n');
    }
    out
}

/// Digits replaced: ages, percentages and byte counts in reasons.
fn mask_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

/// Checks whose reason holds a machine figure or an age.
const MASKED_CHECKS: &[&str] = &[
    "work_disk_space",
    "memory_available",
    "job_not_stuck",
    "clock_in_sync",
];

fn normalize_report(env: &Env, mut report: Value) -> String {
    report["generated_at"] = "<t>".into();
    if let Some(runners) = report["runners"].as_array_mut() {
        for r in runners {
            if let Some(checks) = r["checks"].as_array_mut() {
                for c in checks {
                    let masked = MASKED_CHECKS.iter().any(|m| c["check"] == *m);
                    if masked {
                        let reason = c["reason"].as_str().unwrap_or("").to_string();
                        c["reason"] = mask_digits(&reason).into();
                    }
                }
            }
        }
    }
    let text = serde_json::to_string_pretty(&report).expect("JSON prints");
    env.stable(&text) + "\n"
}

fn normalize_text_report(env: &Env, text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            // "HEALTHY (ok) at <time>"
            match line.find(" at ") {
                Some(at) => format!("{} at <t>", &line[..at]),
                None => line.to_string(),
            }
        } else if MASKED_CHECKS
            .iter()
            .any(|c| line.trim_start().starts_with(c))
        {
            mask_digits(line)
        } else {
            line.to_string()
        };
        out.push_str(&env.stable(&line));
        out.push('\n');
    }
    out
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites it when
/// `RHE_UPDATE_GOLDEN` is set. Returns a description of the mismatch.
fn compare(name: &str, actual: &str) -> Option<String> {
    let path = golden_dir().join(name);
    if std::env::var_os("RHE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
        std::fs::write(&path, actual).expect("write a golden file");
        return None;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (RHE_UPDATE_GOLDEN=1 writes it)", path.display()));
    if expected == actual {
        return None;
    }
    let mut diff = format!("{name} differs from {}:\n", path.display());
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut shown = 0;
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y && shown < 20 {
            diff.push_str(&format!(
                "  line {}:\n    golden: {}\n    actual: {}\n",
                i + 1,
                x.unwrap_or("<none>"),
                y.unwrap_or("<none>")
            ));
            shown += 1;
        }
    }
    Some(diff)
}

/// True once every collector reported and GitHub answered for both
/// runners, so that the outputs describe a settled state.
fn settled(metrics: &str) -> bool {
    ["host", "systemd", "runner", "github", "queue"].iter().all(|c| {
        testkit::sample_value(
            metrics,
            &format!("github_runner_exporter_collector_success{{collector=\"{c}\"}}"),
        ) == Some(1.0)
    }) && testkit::sample_value(
        metrics,
        "github_runner_exporter_collector_targets{collector=\"queue\"}",
    ) == Some(1.0)
        && testkit::sample_value(metrics, "github_runner_registered{runner=\"linux_runner\"}")
        == Some(1.0)
        && testkit::sample_value(metrics, "github_runner_registered{runner=\"deploy-primary\"}")
            == Some(0.0)
        && testkit::sample_value(
            metrics,
            "github_runner_service_state{runner=\"deploy-primary\",unit=\"actions.runner.acme.deploy-primary.service\",state=\"inactive\"}",
        ) == Some(1.0)
}

fn check_output(env: &Env, config: &Path, json: bool) -> (i32, String) {
    let cfg = format!("--config.file={}", config.display());
    let mut args = vec!["check", cfg.as_str()];
    if json {
        args.push("--json");
    }
    let out = testkit::process::run(BIN, &args, &env.envs());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn outputs_match_the_golden_files() {
    let env = env();
    let config = env.config();
    let exporter = Exporter::start(
        BIN,
        &[&format!("--config.file={}", config.display())],
        &env.envs(),
    );
    exporter
        .wait_metrics(Duration::from_secs(30), settled)
        .unwrap_or_else(|| {
            panic!(
                "the exporter never settled:\n{}\nlog:\n{}",
                exporter.metrics(),
                exporter.logs()
            )
        });
    // A scrape after the next GitHub poll: request counters settle too.
    std::thread::sleep(Duration::from_millis(1500));
    let text = exporter.metrics();
    let om = exporter
        .get_with(
            "GET",
            "/metrics",
            &[("Accept", "application/openmetrics-text; version=1.0.0")],
        )
        .body();
    testkit::assert_unique_series(&om);
    let health_json = exporter.get_with("GET", "/health", &[("Accept", "application/json")]);
    let health_text = exporter.get("/health");
    let mut mismatches = Vec::new();
    let mut record = |name: &str, actual: String| {
        if let Some(d) = compare(name, &actual) {
            mismatches.push(d);
        }
    };
    record("metrics.txt", normalize_metrics(&env, &text));
    record("metrics.openmetrics.txt", normalize_metrics(&env, &om));
    let report: Value = serde_json::from_str(&health_json.body()).expect("/health JSON");
    record(
        "health.json",
        format!(
            "status {}\n{}",
            health_json.status,
            normalize_report(&env, report)
        ),
    );
    record(
        "health.txt",
        format!(
            "status {}\n{}",
            health_text.status,
            normalize_text_report(&env, &health_text.body())
        ),
    );
    drop(exporter);
    let (code, json) = check_output(&env, &config, true);
    let report: Value = serde_json::from_str(&json).expect("check --json prints JSON");
    record(
        "check.json",
        format!("exit {code}\n{}", normalize_report(&env, report)),
    );
    let (code, text) = check_output(&env, &config, false);
    record(
        "check.txt",
        format!("exit {code}\n{}", normalize_text_report(&env, &text)),
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
