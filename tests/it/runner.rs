//! The runner collector as a user meets it: the real binary reading copies
//! of the runner fixtures (`tests/fixtures/runner`) in temporary
//! directories while the tests write to their logs the way the runner
//! agent does.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::copy_dir;
use testkit::{sample_value, Exporter};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
/// The job in progress at the end of the `basic` fixture.
const LINT_JOB: &str = "lint \u{2713} \u{fc}n\u{ef}c\u{f6}d\u{e9}";
const RUNNER_LOG: &str = "Runner_20260105-090000-utc.log";
/// Lines appended after start-up must show within this.
const SOON: Duration = Duration::from_secs(5);

/// A temporary directory holding copies of fixture roots.
struct Roots {
    dir: tempfile::TempDir,
}

impl Roots {
    fn new() -> Roots {
        Roots {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn in_dir(parent: &Path) -> Roots {
        Roots {
            dir: tempfile::tempdir_in(parent).unwrap(),
        }
    }

    /// Copies fixture `name` to `<tmp>/<as_name>` and returns its path.
    fn copy(&self, name: &str, as_name: &str) -> PathBuf {
        let to = self.dir.path().join(as_name);
        copy_dir(&testkit::fixtures_dir().join("runner").join(name), &to);
        to
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Writes a config watching `roots` (with optional role), with systemd
/// and host collectors off and no default globs. `extra` is appended to
/// the `[runner_files]` table.
fn config(dir: &Path, roots: &[(&Path, Option<&str>)], runner_files: &str) -> PathBuf {
    // No default globs: the test machine's own runners must not interfere.
    let patterns = if runner_files.contains("root_patterns") {
        ""
    } else {
        "root_patterns = []\n"
    };
    let mut text = format!(
        "[host]\nenabled = false\n\n[systemd]\nenabled = false\n\n[runner_files]\n{patterns}{runner_files}\n"
    );
    for (root, role) in roots {
        text.push_str(&format!(
            "\n[[runner]]\nroot = {:?}\n",
            root.to_str().unwrap()
        ));
        if let Some(r) = role {
            text.push_str(&format!("role = {r:?}\nenvironment = \"production\"\n"));
        }
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, extra: &[&str]) -> Exporter {
    let arg = format!("--config.file={}", config.display());
    let mut args = vec![arg.as_str()];
    args.extend_from_slice(extra);
    Exporter::start(BIN, &args, &[])
}

fn series(name: &str, labels: &str) -> String {
    format!("{name}{{{labels}}}")
}

fn val(m: &str, name: &str, labels: &str) -> Option<f64> {
    sample_value(m, &series(name, labels))
}

fn jobs(m: &str, runner: &str, result: &str) -> Option<f64> {
    val(
        m,
        "github_runner_jobs_total",
        &format!("runner=\"{runner}\",result=\"{result}\""),
    )
}

fn event(m: &str, runner: &str, ev: &str) -> Option<f64> {
    val(
        m,
        "github_runner_log_events_total",
        &format!("runner=\"{runner}\",event=\"{ev}\""),
    )
}

fn runner_val(m: &str, name: &str, runner: &str) -> Option<f64> {
    val(m, name, &format!("runner=\"{runner}\""))
}

fn skipped(m: &str, runner: &str, reason: &str) -> f64 {
    val(
        m,
        "github_runner_exporter_log_lines_skipped_total",
        &format!("runner=\"{runner}\",reason=\"{reason}\""),
    )
    .unwrap_or(0.0)
}

/// Waits until the runner collector has reported `runner`.
fn ready(e: &Exporter, runner: &str) -> String {
    ready_all(e, &[runner])
}

fn ready_all(e: &Exporter, runners: &[&str]) -> String {
    e.wait_metrics(Duration::from_secs(10), |m| {
        sample_value(
            m,
            "github_runner_exporter_collector_success{collector=\"runner\"}",
        ) == Some(1.0)
            && runners
                .iter()
                .all(|r| m.contains(&format!("github_runner_info{{runner=\"{r}\"")))
    })
    .unwrap_or_else(|| {
        panic!(
            "runners {runners:?} reported within 10 s; log:\n{}",
            e.logs()
        )
    })
}

/// The exporter's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn wait(e: &Exporter, what: &str, f: impl Fn(&str) -> bool) -> String {
    e.wait_metrics(SOON, f).unwrap_or_else(|| {
        panic!(
            "{what} within {SOON:?}; last scrape:\n{}\nlog:\n{}",
            e.metrics()
                .lines()
                .filter(|l| l.starts_with("github_runner_") && !l.contains("_bucket"))
                .collect::<Vec<_>>()
                .join("\n"),
            e.logs()
        )
    })
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// A listener console line as the agent writes it (its own timestamp too).
fn status(ts: &str, msg: &str) -> String {
    format!("[{ts} INFO Terminal] WRITE LINE: {ts}: {msg}\n")
}

fn entry(ts: &str, level: &str, source: &str, msg: &str) -> String {
    format!("[{ts} {level} {source}] {msg}\n")
}

fn unix(ts: &str) -> f64 {
    runner_health_exporter::timefmt::parse_log_timestamp(ts).unwrap()
}

fn statvfs_size(path: &Path) -> u64 {
    let mut p = path;
    loop {
        if let Ok(u) = runner_health_exporter::collect::host::statvfs(p) {
            return u.size;
        }
        p = p.parent().unwrap();
    }
}

#[test]
fn startup_learns_the_present_state_and_counts_nothing() {
    // On tmpfs when there is one, so the work folder's filesystem differs
    // from the one `broken`'s absolute work folder lives on.
    let shm = Path::new("/dev/shm");
    let t = if shm.is_dir() {
        Roots::in_dir(shm)
    } else {
        Roots::new()
    };
    let basic = t.copy("basic", "basic");
    let broken = t.copy("broken", "broken");
    let cfg = config(t.path(), &[(&basic, Some("primary")), (&broken, None)], "");
    let e = start(&cfg, &[]);
    let m = ready_all(&e, &["linux_runner", "deploy-primary"]);

    assert!(
        m.contains(
            "github_runner_info{runner=\"linux_runner\",github_url=\"https://github.com/acme/app\",pool=\"Default\",version=\"2.330.0\",ephemeral=\"false\",role=\"primary\",environment=\"production\"} 1"
        ),
        "{m}"
    );
    assert_eq!(
        runner_val(&m, "github_runner_configured", "linux_runner"),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_root_accessible", "linux_runner"),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_listener_connected", "linux_runner"),
        Some(1.0)
    );
    // The job still running at the end of the log, with the time its
    // message carries.
    assert_eq!(
        runner_val(&m, "github_runner_job_running", "linux_runner"),
        Some(1.0)
    );
    assert_eq!(
        runner_val(
            &m,
            "github_runner_job_started_timestamp_seconds",
            "linux_runner"
        ),
        Some(unix("2026-01-05 11:20:00Z"))
    );
    assert_eq!(
        val(
            &m,
            "github_runner_current_job_info",
            &format!("runner=\"linux_runner\",job=\"{LINT_JOB}\"")
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        runner_val(
            &m,
            "github_runner_last_job_completed_timestamp_seconds",
            "linux_runner"
        ),
        Some(unix("2026-01-05 11:06:10Z"))
    );
    // Nothing that happened before start-up is counted.
    for runner in ["linux_runner", "deploy-primary"] {
        for r in [
            "Succeeded",
            "SucceededWithIssues",
            "Failed",
            "Canceled",
            "Skipped",
            "Abandoned",
        ] {
            assert_eq!(jobs(&m, runner, r), Some(0.0), "{runner} {r}");
        }
        for ev in [
            "connect_error",
            "reconnected",
            "session_conflict",
            "registration_deleted",
            "auth_failed",
            "update_started",
            "update_failed",
            "clock_skew",
            "listener_exited",
        ] {
            assert_eq!(event(&m, runner, ev), Some(0.0), "{runner} {ev}");
        }
        assert_eq!(
            runner_val(&m, "github_runner_job_duration_seconds_count", runner),
            Some(0.0)
        );
    }

    // broken: its listener exited (code 1 after a deleted registration).
    assert!(
        m.contains("github_runner_info{runner=\"deploy-primary\",github_url=\"https://github.com/acme\",pool=\"Default\",version=\"2.329.0\",ephemeral=\"false\",role=\"\",environment=\"\"} 1"),
        "{m}"
    );
    assert_eq!(
        runner_val(&m, "github_runner_listener_connected", "deploy-primary"),
        Some(0.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_running", "deploy-primary"),
        Some(0.0)
    );
    assert_eq!(
        runner_val(
            &m,
            "github_runner_log_last_entry_timestamp_seconds",
            "deploy-primary"
        ),
        Some(unix("2026-01-06 09:00:02Z"))
    );

    // Work folders: basic's `_work` (relative, not created yet: the root's
    // filesystem), broken's `/srv/runner-work` (absolute, outside its root).
    let basic_size = runner_val(
        &m,
        "github_runner_work_filesystem_size_bytes",
        "linux_runner",
    );
    let broken_size = runner_val(
        &m,
        "github_runner_work_filesystem_size_bytes",
        "deploy-primary",
    );
    assert_eq!(basic_size, Some(statvfs_size(&basic.join("_work")) as f64));
    assert_eq!(
        broken_size,
        Some(statvfs_size(Path::new("/srv/runner-work")) as f64)
    );
    if statvfs_size(&basic) != statvfs_size(Path::new("/srv/runner-work")) {
        assert_ne!(basic_size, broken_size);
    }
    assert!(
        runner_val(
            &m,
            "github_runner_work_filesystem_avail_bytes",
            "deploy-primary"
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_targets{collector=\"runner\"}"
        ),
        Some(2.0)
    );
    let (ok, report) = testkit::promtool_check_metrics(&m);
    assert!(
        ok && report.trim().is_empty(),
        "promtool findings:\n{report}"
    );
}

#[test]
fn lines_appended_after_startup_are_counted() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let log = basic.join("_diag").join(RUNNER_LOG);
    let cfg = config(t.path(), &[(&basic, None)], "");
    let e = start(&cfg, &[]);
    ready(&e, "linux_runner");
    let r = "linux_runner";

    // The job in progress at start-up completes: counted, with its duration
    // from the start the log showed before the exporter ran.
    append(
        &log,
        status(
            "2026-01-05 11:50:00Z",
            &format!("Job {LINT_JOB} completed with result: Failed"),
        )
        .as_bytes(),
    );
    let m = wait(&e, "the lint job counted", |m| {
        jobs(m, r, "Failed") == Some(1.0)
    });
    assert_eq!(runner_val(&m, "github_runner_job_running", r), Some(0.0));
    assert!(
        !m.contains("github_runner_current_job_info{"),
        "no job in progress"
    );
    assert!(!m.contains("github_runner_job_started_timestamp_seconds{"));
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_count", r),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_sum", r),
        Some(1800.0)
    );
    assert_eq!(
        val(
            &m,
            "github_runner_job_duration_seconds_bucket",
            "runner=\"linux_runner\",le=\"900.0\""
        ),
        Some(0.0)
    );
    assert_eq!(
        val(
            &m,
            "github_runner_job_duration_seconds_bucket",
            "runner=\"linux_runner\",le=\"1800.0\""
        ),
        Some(1.0)
    );

    // A job whose name contains the completion text, written in two
    // pieces: the partial line waits for its newline.
    let name = "e2e: completed with result: Failed";
    append(
        &log,
        status("2026-01-05 12:00:00Z", &format!("Running job: {name}")).as_bytes(),
    );
    let m = wait(&e, "the e2e job running", |m| {
        runner_val(m, "github_runner_job_running", r) == Some(1.0)
    });
    assert_eq!(
        runner_val(&m, "github_runner_job_started_timestamp_seconds", r),
        Some(unix("2026-01-05 12:00:00Z"))
    );
    let done = status(
        "2026-01-05 12:02:05Z",
        &format!("Job {name} completed with result: SucceededWithIssues"),
    );
    let (a, b) = done.split_at(40);
    append(&log, a.as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        jobs(&e.metrics(), r, "SucceededWithIssues"),
        Some(0.0),
        "half a line is not a line"
    );
    append(&log, b.as_bytes());
    let m = wait(&e, "the e2e job counted", |m| {
        jobs(m, r, "SucceededWithIssues") == Some(1.0)
    });
    assert_eq!(
        jobs(&m, r, "Failed"),
        Some(1.0),
        "the result is parsed from the right"
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_count", r),
        Some(2.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_sum", r),
        Some(1925.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_last_job_completed_timestamp_seconds", r),
        Some(unix("2026-01-05 12:02:05Z"))
    );

    // Connection transitions.
    append(
        &log,
        format!(
            "{}{}{}",
            entry(
                "2026-01-05 12:10:00Z",
                "ERR ",
                "MessageListener",
                "Catch exception during get next message."
            ),
            " ---> System.Net.Sockets.SocketException (111): Connection refused\n",
            status(
                "2026-01-05 12:10:00Z",
                "Runner connect error: Connection refused. Retrying until reconnected."
            ),
        )
        .as_bytes(),
    );
    let m = wait(&e, "disconnected", |m| {
        runner_val(m, "github_runner_listener_connected", r) == Some(0.0)
    });
    assert_eq!(event(&m, r, "connect_error"), Some(1.0));
    assert_eq!(
        skipped(&m, r, "malformed"),
        0.0,
        "continuation lines are not malformed"
    );
    append(
        &log,
        status("2026-01-05 12:11:00Z", "Runner reconnected.").as_bytes(),
    );
    let m = wait(&e, "reconnected", |m| {
        runner_val(m, "github_runner_listener_connected", r) == Some(1.0)
    });
    assert_eq!(event(&m, r, "reconnected"), Some(1.0));

    // Every other event, then the listener exits.
    let mut text = String::new();
    text += &entry(
        "2026-01-05 12:20:00Z",
        "ERR ",
        "Terminal",
        "WRITE ERROR: A session for this runner already exists.",
    );
    text += &entry(
        "2026-01-05 12:20:00Z",
        "INFO",
        "MessageListener",
        "The session for this runner already exists.",
    );
    text += &entry(
        "2026-01-05 12:21:00Z",
        "WARN",
        "GitHubActionsService",
        "Authentication failed with status code 401.",
    );
    text += &entry("2026-01-05 12:21:00Z", "ERR ", "Terminal", "WRITE ERROR: Failed to create a session. The runner registration has been deleted from the server, please re-configure.");
    text += &entry(
        "2026-01-05 12:22:00Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Runner update in progress, do not shutdown runner.",
    );
    text += &entry(
        "2026-01-05 12:22:30Z",
        "ERR ",
        "Terminal",
        "WRITE ERROR: Runner update failed: the download timed out",
    );
    text += &entry("2026-01-05 12:23:00Z", "WARN", "Terminal", "WRITE ERROR: The local machine's clock may be out of sync with the server time by more than five minutes.");
    text += &entry(
        "2026-01-05 12:24:00Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Runner update in progress, do not shutdown runner.",
    );
    text += &entry(
        "2026-01-05 12:24:30Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Runner will exit shortly for update, should be back online within 10 seconds.",
    );
    text += &entry(
        "2026-01-05 12:24:31Z",
        "INFO",
        "Listener",
        "Runner execution has finished with return code 3",
    );
    append(&log, text.as_bytes());
    let m = wait(&e, "the listener exit", |m| {
        event(m, r, "listener_exited") == Some(1.0)
    });
    for (ev, n) in [
        ("session_conflict", 1.0),
        ("auth_failed", 1.0),
        ("registration_deleted", 1.0),
        ("update_started", 2.0),
        ("update_failed", 1.0),
        ("clock_skew", 1.0),
        ("connect_error", 1.0),
        ("reconnected", 1.0),
    ] {
        assert_eq!(event(&m, r, ev), Some(n), "{ev}");
    }
    assert_eq!(
        runner_val(&m, "github_runner_listener_connected", r),
        Some(0.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_log_last_entry_timestamp_seconds", r),
        Some(unix("2026-01-05 12:24:31Z"))
    );
    for reason in ["too_long", "invalid_utf8", "malformed", "not_regular_file"] {
        assert_eq!(skipped(&m, r, reason), 0.0, "{reason}");
    }
}

#[test]
fn rotation_mid_job_and_restart_after_rotation() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let diag = basic.join("_diag");
    let cfg = config(t.path(), &[(&basic, None)], "");
    let e = start(&cfg, &[]);
    ready(&e, "linux_runner");
    let r = "linux_runner";

    // The old file gets its last lines and the new file (a rotation: no
    // version line, same process) appears before the exporter polls again:
    // the rest of the old file is read first.
    let mut text = status(
        "2026-01-05 11:30:00Z",
        &format!("Job {LINT_JOB} completed with result: Succeeded"),
    );
    text += &status("2026-01-05 11:40:00Z", "Running job: deploy");
    append(&diag.join(RUNNER_LOG), text.as_bytes());
    append(
        &diag.join("Runner_20260105-114500-utc.log"),
        status(
            "2026-01-05 11:45:00Z",
            "Job deploy completed with result: Canceled",
        )
        .as_bytes(),
    );
    let m = wait(&e, "both jobs counted", |m| {
        jobs(m, r, "Succeeded") == Some(1.0) && jobs(m, r, "Canceled") == Some(1.0)
    });
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_count", r),
        Some(2.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_sum", r),
        Some(600.0 + 300.0)
    );
    assert_eq!(runner_val(&m, "github_runner_job_running", r), Some(0.0));

    // Mid-job rotation: the start is in one file, the end in the next.
    append(
        &diag.join("Runner_20260105-114500-utc.log"),
        status("2026-01-05 12:00:00Z", "Running job: package").as_bytes(),
    );
    wait(&e, "package running", |m| {
        runner_val(m, "github_runner_job_running", r) == Some(1.0)
    });
    append(
        &diag.join("Runner_20260105-121000-utc.log"),
        status(
            "2026-01-05 12:15:00Z",
            "Job package completed with result: Succeeded",
        )
        .as_bytes(),
    );
    let m = wait(&e, "package counted", |m| {
        jobs(m, r, "Succeeded") == Some(2.0)
    });
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_sum", r),
        Some(600.0 + 300.0 + 900.0)
    );
    assert!(
        m.contains("version=\"2.330.0\""),
        "the version survives rotation"
    );
    drop(e);

    // An exporter started now sees a newest file without a version line:
    // it reads back to the listener's start, counting nothing.
    append(
        &diag.join("Runner_20260105-121000-utc.log"),
        status("2026-01-05 12:20:00Z", "Running job: after-rotation").as_bytes(),
    );
    let e = start(&cfg, &[]);
    let m = ready(&e, r);
    assert!(m.contains("version=\"2.330.0\""), "{m}");
    assert_eq!(
        runner_val(&m, "github_runner_listener_connected", r),
        Some(1.0)
    );
    assert_eq!(runner_val(&m, "github_runner_job_running", r), Some(1.0));
    assert!(m.contains("job=\"after-rotation\""));
    assert_eq!(jobs(&m, r, "Succeeded"), Some(0.0));
}

#[test]
fn truncation_and_deletion_are_noticed() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let diag = basic.join("_diag");
    let log = diag.join(RUNNER_LOG);
    let cfg = config(t.path(), &[(&basic, None)], "");
    let e = start(&cfg, &[]);
    ready(&e, "linux_runner");
    let r = "linux_runner";

    // Truncated in place, then written again (shorter than before).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    append(
        &log,
        status(
            "2026-01-05 13:00:00Z",
            "Job after-truncate completed with result: Skipped",
        )
        .as_bytes(),
    );
    wait(&e, "the line after truncation", |m| {
        jobs(m, r, "Skipped") == Some(1.0)
    });

    // Deleted: a new listener process starts a new file.
    std::fs::remove_file(&log).unwrap();
    let newer = diag.join("Runner_20260105-140000-utc.log");
    let mut text = entry(
        "2026-01-05 14:00:01Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Current runner version: '2.331.0'",
    );
    text += &status("2026-01-05 14:00:02Z", "Listening for Jobs");
    text += &status(
        "2026-01-05 14:01:00Z",
        "Job j completed with result: Abandoned",
    );
    append(&newer, text.as_bytes());
    let m = wait(&e, "the new process's file", |m| {
        jobs(m, r, "Abandoned") == Some(1.0)
    });
    assert!(m.contains("version=\"2.331.0\""), "{m}");
    assert_eq!(
        runner_val(&m, "github_runner_listener_connected", r),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_running", r),
        Some(0.0),
        "a new process has no job"
    );

    // The deleted file is not kept open.
    let fds = format!("/proc/{}/fd", e.pid());
    let deleted_open = || {
        std::fs::read_dir(&fds).unwrap().flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .map(|p| p.to_string_lossy().contains(RUNNER_LOG))
                .unwrap_or(false)
        })
    };
    assert!(
        testkit::wait_for(SOON, || (!deleted_open()).then_some(())).is_some(),
        "the deleted log is closed"
    );

    // The Worker log is followed too: a new job's Worker file shows as
    // activity (newest entry), not as jobs.
    append(
        &diag.join("Worker_20260105-150000-utc.log"),
        entry("2026-01-05 15:00:07Z", "INFO", "Worker", "Version: 2.331.0").as_bytes(),
    );
    let m = wait(&e, "the worker's entry", |m| {
        runner_val(m, "github_runner_log_last_entry_timestamp_seconds", r)
            == Some(unix("2026-01-05 15:00:07Z"))
    });
    assert_eq!(jobs(&m, r, "Abandoned"), Some(1.0));
}

#[test]
fn exporter_restart_mid_job_counts_the_completion_once() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let log = basic.join("_diag").join(RUNNER_LOG);
    let cfg = config(t.path(), &[(&basic, None)], "");
    let r = "linux_runner";

    let e = start(&cfg, &[]);
    ready(&e, r);
    append(
        &log,
        status(
            "2026-01-05 11:30:00Z",
            &format!("Job {LINT_JOB} completed with result: Succeeded"),
        )
        .as_bytes(),
    );
    append(
        &log,
        status("2026-01-05 12:00:00Z", "Running job: long build").as_bytes(),
    );
    let m = wait(&e, "long build running", |m| {
        m.contains("job=\"long build\"")
    });
    assert_eq!(jobs(&m, r, "Succeeded"), Some(1.0));
    drop(e);

    let e = start(&cfg, &[]);
    let m = ready(&e, r);
    assert_eq!(
        jobs(&m, r, "Succeeded"),
        Some(0.0),
        "counters start at zero"
    );
    assert_eq!(runner_val(&m, "github_runner_job_running", r), Some(1.0));
    assert!(m.contains("job=\"long build\""), "{m}");
    assert_eq!(
        runner_val(&m, "github_runner_job_started_timestamp_seconds", r),
        Some(unix("2026-01-05 12:00:00Z"))
    );
    append(
        &log,
        status(
            "2026-01-05 12:40:00Z",
            "Job long build completed with result: Succeeded",
        )
        .as_bytes(),
    );
    let m = wait(&e, "long build counted", |m| {
        jobs(m, r, "Succeeded") == Some(1.0)
    });
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_count", r),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_sum", r),
        Some(2400.0)
    );
    // Several polls later it is still counted once.
    std::thread::sleep(Duration::from_millis(2500));
    let m = e.metrics();
    assert_eq!(jobs(&m, r, "Succeeded"), Some(1.0));
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_count", r),
        Some(1.0)
    );
}

#[test]
fn registration_changes_ephemeral_runner_vanishing_and_root_removal() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let dot_runner = basic.join(".runner");
    std::fs::write(
        &dot_runner,
        "\u{feff}{\"agentId\": 77, \"agentName\": \"ephemeral-7\", \"poolId\": 1, \"poolName\": \"Default\", \"gitHubUrl\": \"https://github.com/acme/app\", \"workFolder\": \"_work\", \"ephemeral\": true}",
    )
    .unwrap();
    let cfg = config(t.path(), &[(&basic, None)], "");
    let e = start(&cfg, &[]);
    let m = ready(&e, "ephemeral-7");
    let r = "ephemeral-7";
    assert!(m.contains("github_runner_info{runner=\"ephemeral-7\",github_url=\"https://github.com/acme/app\",pool=\"Default\",version=\"2.330.0\",ephemeral=\"true\""), "{m}");
    assert_eq!(runner_val(&m, "github_runner_configured", r), Some(1.0));

    // A corrupt .runner is reported in the log; the last good
    // registration stays and the collector keeps working.
    std::fs::write(&dot_runner, "\u{feff}{\"agentName\": \"ephem").unwrap();
    let logs = testkit::wait_for(SOON, || {
        let l = e.logs();
        l.contains("runner root problem").then_some(l)
    })
    .expect("the corrupt .runner is logged");
    assert!(logs.contains(".runner"), "{logs}");
    let m = e.metrics();
    assert_eq!(runner_val(&m, "github_runner_configured", r), Some(1.0));
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_success{collector=\"runner\"}"
        ),
        Some(1.0)
    );

    // The ephemeral runner finished: .runner is gone. Same runner label,
    // configured 0.
    std::fs::remove_file(&dot_runner).unwrap();
    let m = wait(&e, "configured 0", |m| {
        runner_val(m, "github_runner_configured", r) == Some(0.0)
    });
    assert!(
        !m.contains("runner=\"linux_runner\""),
        "the label did not change"
    );
    assert!(!m.contains("runner=\"basic\""), "the label did not change");
    assert_eq!(
        runner_val(&m, "github_runner_root_accessible", r),
        Some(1.0)
    );
    assert!(logs_contain(&e, "removed"));
    // Gone without the runner saying it finished: unregistered.
    let state = |m: &str, s: &str| {
        val(
            m,
            "github_runner_lifecycle_state",
            &format!("runner=\"{r}\",state=\"{s}\""),
        )
    };
    assert_eq!(state(&m, "unregistered"), Some(1.0), "{m}");
    // The listener says it ends after its one job, and exits 0: finished,
    // the expected end of an ephemeral runner.
    append(
        &basic.join("_diag").join(RUNNER_LOG),
        [
            entry("2026-01-05 12:00:00Z", "INFO", "Runner", "Job has finished at backend, the runner will exit since it is running under onetime use mode."),
            entry("2026-01-05 12:00:01Z", "INFO", "Listener", "Runner execution has finished with return code 0"),
        ]
        .concat()
        .as_bytes(),
    );
    let m = wait(&e, "finished", |m| state(m, "finished") == Some(1.0));
    assert_eq!(state(&m, "unregistered"), Some(0.0));
    assert_eq!(runner_val(&m, "github_runner_healthy", r), Some(0.0));

    // The root itself vanishes (the runner was uninstalled).
    std::fs::remove_dir_all(&basic).unwrap();
    let m = wait(&e, "not accessible", |m| {
        runner_val(m, "github_runner_root_accessible", r) == Some(0.0)
    });
    assert_eq!(runner_val(&m, "github_runner_configured", r), Some(0.0));
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_success{collector=\"runner\"}"
        ),
        Some(1.0)
    );
}

fn logs_contain(e: &Exporter, s: &str) -> bool {
    e.logs().contains(s)
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// Scrapes and checks the answer came quickly.
fn quick_metrics(e: &Exporter) -> String {
    let t = Instant::now();
    let m = e.metrics();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "scrape took {:?}",
        t.elapsed()
    );
    m
}

#[test]
fn hostile_log_content_is_skipped_bounded_and_counted() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let diag = basic.join("_diag");
    let log = diag.join(RUNNER_LOG);
    let cfg = config(t.path(), &[(&basic, None)], "");
    let e = start(&cfg, &[]);
    ready(&e, "linux_runner");
    let r = "linux_runner";

    // A 3 MB line (over the 1 MB default limit), written in pieces, then a
    // good line.
    let chunk = vec![b'x'; 512 * 1024];
    append(&log, b"[2026-01-05 12:00:00Z INFO Terminal] WRITE LINE: ");
    for _ in 0..6 {
        append(&log, &chunk);
        std::thread::sleep(Duration::from_millis(100));
    }
    append(&log, b"\n");
    append(
        &log,
        status(
            "2026-01-05 12:01:00Z",
            "Job a completed with result: Succeeded",
        )
        .as_bytes(),
    );
    wait(&e, "the long line skipped", |m| {
        skipped(m, r, "too_long") == 1.0 && jobs(m, r, "Succeeded") == Some(1.0)
    });
    quick_metrics(&e);
    let rss_before = rss_bytes(e.pid());

    // Invalid UTF-8 and binary garbage (seeded, with newlines and NULs).
    let mut garbage =
        b"[2026-01-05 12:02:00Z INFO Terminal] WRITE LINE: bad \xff\xfe bytes\n".to_vec();
    let mut x: u32 = 0x2545_f491;
    for i in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        garbage.push(if i % 97 == 0 { b'\n' } else { (x & 0xff) as u8 });
    }
    garbage.extend_from_slice(b"\n\x00\x01\x02 nul bytes\n");
    append(&log, &garbage);
    append(
        &log,
        status(
            "2026-01-05 12:03:00Z",
            "Job b completed with result: Failed",
        )
        .as_bytes(),
    );
    let m = wait(&e, "the garbage skipped", |m| {
        jobs(m, r, "Failed") == Some(1.0)
    });
    assert!(skipped(&m, r, "invalid_utf8") >= 1.0, "{m}");
    assert!(skipped(&m, r, "malformed") >= 1.0, "{m}");
    quick_metrics(&e);

    // The followed log replaced by a FIFO, and a newer Worker log that is
    // a symlink to /dev/zero: neither hangs nor floods the exporter.
    std::fs::remove_file(&log).unwrap();
    mkfifo(&log);
    std::os::unix::fs::symlink("/dev/zero", diag.join("Worker_20260105-120500-utc.log")).unwrap();
    let m = wait(&e, "two non-regular files skipped", |m| {
        skipped(m, r, "not_regular_file") == 2.0
    });
    let bytes = runner_val(&m, "github_runner_exporter_log_bytes_read_total", r).unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let m = quick_metrics(&e);
        assert_eq!(
            runner_val(&m, "github_runner_exporter_log_bytes_read_total", r),
            Some(bytes),
            "nothing is read from the FIFO or /dev/zero"
        );
        assert_eq!(skipped(&m, r, "not_regular_file"), 2.0, "counted once each");
    }
    // A FIFO with the newest name, and a writer holding it open.
    let fifo2 = diag.join("Runner_20260105-130000-utc.log");
    mkfifo(&fifo2);
    let writer = {
        let p = fifo2.clone();
        std::thread::spawn(move || {
            // A writer pouring data in as soon as anyone opens the FIFO;
            // bounded in time in case nobody does.
            let _ = Command::new("timeout")
                .args(["3", "sh", "-c", &format!("yes garbage > '{}'", p.display())])
                .status();
        })
    };
    wait(&e, "the second FIFO skipped", |m| {
        skipped(m, r, "not_regular_file") == 3.0
    });
    quick_metrics(&e);
    let _ = writer.join();

    // The runner starts a new regular file: followed and counted.
    let newer = diag.join("Runner_20260105-140000-utc.log");
    let mut text = entry(
        "2026-01-05 14:00:01Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Current runner version: '2.330.0'",
    );
    text += &status("2026-01-05 14:00:02Z", "Listening for Jobs");
    text += &status(
        "2026-01-05 14:05:00Z",
        "Job c completed with result: Canceled",
    );
    append(&newer, text.as_bytes());
    let m = wait(&e, "the new regular log", |m| {
        jobs(m, r, "Canceled") == Some(1.0)
    });
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_success{collector=\"runner\"}"
        ),
        Some(1.0)
    );
    // Memory stays bounded.
    let rss_after = rss_bytes(e.pid());
    assert!(
        rss_after < rss_before + 16 * 1024 * 1024,
        "RSS grew from {rss_before} to {rss_after}"
    );
    let bytes_now = runner_val(&m, "github_runner_exporter_log_bytes_read_total", r).unwrap();
    assert!(bytes_now < 8.0 * 1024.0 * 1024.0, "bytes read {bytes_now}");
}

/// inotify watches on files: any open or read of them is recorded.
struct OpenWatch {
    fd: i32,
    names: Vec<(i32, PathBuf)>,
}

impl OpenWatch {
    fn new(paths: &[PathBuf]) -> OpenWatch {
        // SAFETY: plain syscalls with valid arguments.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1");
        let mut names = Vec::new();
        for p in paths {
            let c = CString::new(p.as_os_str().as_bytes()).unwrap();
            // SAFETY: fd is an inotify descriptor and c a valid path.
            let wd =
                unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) };
            assert!(wd >= 0, "watch {}", p.display());
            names.push((wd, p.clone()));
        }
        OpenWatch { fd, names }
    }

    /// The files opened or read since the last call.
    fn touched(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            let mut off = 0usize;
            let header = std::mem::size_of::<libc::inotify_event>();
            while off + header <= n as usize {
                // SAFETY: the kernel wrote a whole event at off.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                if let Some((_, p)) = self.names.iter().find(|(wd, _)| *wd == ev.wd) {
                    out.push(p.clone());
                }
                off += header + ev.len as usize;
            }
        }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        // SAFETY: fd is ours.
        unsafe { libc::close(self.fd) };
    }
}

#[test]
fn secrets_are_never_opened_served_or_logged() {
    let t = Roots::new();
    let basic = t.copy("basic", "actions-runner-basic");
    t.copy("broken", "actions-runner-broken");
    std::fs::create_dir_all(t.path().join("actions-runner-empty")).unwrap();
    // The secret files the agent may write besides the fixture's.
    for f in [
        ".path",
        ".credential_store",
        ".credentials_migrated",
        ".runner_migrated",
    ] {
        std::fs::write(basic.join(f), format!("SENTINEL-SECRET-{f}\n")).unwrap();
    }
    let secrets: Vec<PathBuf> = [
        ".credentials",
        ".credentials_rsaparams",
        ".env",
        ".path",
        ".credential_store",
        ".credentials_migrated",
        ".runner_migrated",
    ]
    .iter()
    .map(|f| basic.join(f))
    .collect();
    let watch = OpenWatch::new(&secrets);

    // Found by glob (with rescans every second) and named in config too.
    let pattern = format!("{}/actions-runner*", t.path().display());
    let cfg = config(
        t.path(),
        &[(&basic, Some("primary"))],
        &format!("root_patterns = [{pattern:?}]\nrescan_interval = \"1s\""),
    );
    let e = start(&cfg, &["--log.level=trace"]);
    let m = ready_all(&e, &["linux_runner", "deploy-primary"]);
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_targets{collector=\"runner\"}"
        ),
        Some(2.0),
        "two roots; the empty directory is not one"
    );
    append(
        &basic.join("_diag").join(RUNNER_LOG),
        status(
            "2026-01-05 12:00:00Z",
            &format!("Job {LINT_JOB} completed with result: Succeeded"),
        )
        .as_bytes(),
    );
    wait(&e, "the job counted", |m| {
        jobs(m, "linux_runner", "Succeeded") == Some(1.0)
    });
    // Several rescans.
    std::thread::sleep(Duration::from_millis(3500));

    let text = e.metrics();
    let om = e
        .get_with(
            "GET",
            "/metrics",
            &[("Accept", "application/openmetrics-text;version=1.0.0")],
        )
        .body();
    let gz = e
        .get_with("GET", "/metrics", &[("Accept-Encoding", "gzip")])
        .body();
    assert!(om.ends_with("# EOF\n"));
    for (what, body) in [
        ("text", &text),
        ("openmetrics", &om),
        ("gzip", &gz),
        ("logs", &e.logs()),
    ] {
        assert!(!body.contains("SENTINEL"), "{what} contains a secret");
    }
    assert!(
        e.logs().contains("level=trace") || e.logs().contains("level=debug"),
        "verbose logging was on"
    );
    let touched = watch.touched();
    assert!(touched.is_empty(), "secret files opened: {touched:?}");

    // The watch works: reading a secret file is seen.
    let _ = std::fs::read(basic.join(".env")).unwrap();
    assert!(!watch.touched().is_empty(), "inotify sees opens");
}

#[test]
fn a_runner_installed_after_startup_is_found_and_counted() {
    let t = Roots::new();
    let root = t.path().join("later");
    let cfg = config(t.path(), &[(&root, None)], "");
    let e = start(&cfg, &[]);
    // Named in config but not there yet: reported, not accessible.
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            m.contains("github_runner_root_accessible{runner=\"later\"} 0")
        })
        .expect("the missing root is reported");
    assert!(m.contains("github_runner_configured{runner=\"later\"} 0"));

    // `config.sh` writes .runner, then the service starts and logs.
    std::fs::create_dir_all(root.join("_diag")).unwrap();
    std::fs::copy(
        testkit::fixtures_dir().join("runner/basic/.runner"),
        root.join(".runner"),
    )
    .unwrap();
    let mut text = entry(
        "2026-01-07 08:00:01Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Current runner version: '2.330.0'",
    );
    text += &status("2026-01-07 08:00:02Z", "Listening for Jobs");
    text += &status("2026-01-07 08:01:00Z", "Running job: first");
    text += &status(
        "2026-01-07 08:02:00Z",
        "Job first completed with result: Succeeded",
    );
    append(
        &root.join("_diag/Runner_20260107-080000-utc.log"),
        text.as_bytes(),
    );
    let m = wait(&e, "the new runner's first job", |m| {
        jobs(m, "linux_runner", "Succeeded") == Some(1.0)
    });
    assert_eq!(
        runner_val(&m, "github_runner_root_accessible", "linux_runner"),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_configured", "linux_runner"),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_listener_connected", "linux_runner"),
        Some(1.0)
    );
    assert_eq!(
        runner_val(&m, "github_runner_job_duration_seconds_sum", "linux_runner"),
        Some(60.0)
    );
    assert!(!m.contains("runner=\"later\""), "named by agentName now");
}

/// A bindfs mount run in the foreground by the test: stopping the daemon
/// makes every access to the mount hang, like a dead NFS server.
struct FuseMount {
    child: std::process::Child,
    mountpoint: PathBuf,
}

impl FuseMount {
    /// None when bindfs or FUSE is unavailable here.
    fn new(source: &Path, mountpoint: &Path) -> Option<FuseMount> {
        if !Path::new("/dev/fuse").exists() {
            return None;
        }
        std::fs::create_dir_all(mountpoint).unwrap();
        let child = Command::new("bindfs")
            .arg("-f")
            .arg(source)
            .arg(mountpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut m = FuseMount {
            child,
            mountpoint: mountpoint.to_path_buf(),
        };
        let mounted = testkit::wait_for(Duration::from_secs(5), || {
            if let Ok(Some(_)) = m.child.try_wait() {
                return Some(false);
            }
            mountpoint.join(".runner").exists().then_some(true)
        });
        // On failure, dropping `m` unmounts and reaps bindfs.
        (mounted == Some(true)).then_some(m)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = Command::new("fusermount")
            .arg("-u")
            .arg(&self.mountpoint)
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_hung_filesystem_stalls_only_its_own_root() {
    let t = Roots::new();
    let source = t.copy("basic", "hung-source");
    let other = t.copy("broken", "ok");
    let mountpoint = t.path().join("hung");
    let Some(mount) = FuseMount::new(&source, &mountpoint) else {
        eprintln!("SKIPPED: needs bindfs and /dev/fuse (Debian package bindfs)");
        return;
    };
    let cfg = config(t.path(), &[(&mountpoint, None), (&other, None)], "");
    let e = start(&cfg, &[]);
    let m = ready_all(&e, &["linux_runner", "deploy-primary"]);
    // A FUSE mount may not report changes made beneath it (the runner
    // writes to the source here): polled, not watched.
    assert_eq!(
        sample_value(&m, "github_runner_exporter_runner_watched_roots"),
        Some(1.0)
    );

    // The mount hangs: every stat, open and read on it blocks.
    mount.signal(libc::SIGSTOP);
    append(
        &other.join("_diag/Runner_20260106-090000-utc.log"),
        status(
            "2026-01-06 10:00:00Z",
            "Job x completed with result: Succeeded",
        )
        .as_bytes(),
    );
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            jobs(m, "deploy-primary", "Succeeded") == Some(1.0)
        })
        .expect("the other root is still read");
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_success{collector=\"runner\"}"
        ),
        Some(1.0)
    );
    let m = e
        .wait_metrics(Duration::from_secs(15), |m| {
            runner_val(m, "github_runner_root_accessible", "linux_runner") == Some(0.0)
        })
        .expect("the hung root is reported not accessible");
    assert_eq!(
        runner_val(&m, "github_runner_root_accessible", "deploy-primary"),
        Some(1.0)
    );
    for _ in 0..3 {
        quick_metrics(&e);
        std::thread::sleep(Duration::from_millis(500));
    }
    append(
        &other.join("_diag/Runner_20260106-090000-utc.log"),
        status(
            "2026-01-06 10:05:00Z",
            "Job y completed with result: Failed",
        )
        .as_bytes(),
    );
    wait(&e, "the other root still counted", |m| {
        jobs(m, "deploy-primary", "Failed") == Some(1.0)
    });
    // Lines the runner wrote meanwhile are read once the mount recovers.
    append(
        &source.join("_diag").join(RUNNER_LOG),
        status(
            "2026-01-05 11:30:00Z",
            &format!("Job {LINT_JOB} completed with result: Succeeded"),
        )
        .as_bytes(),
    );
    mount.signal(libc::SIGCONT);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            runner_val(m, "github_runner_root_accessible", "linux_runner") == Some(1.0)
                && jobs(m, "linux_runner", "Succeeded") == Some(1.0)
        })
        .expect("the root recovers");
    assert_eq!(
        runner_val(&m, "github_runner_job_running", "linux_runner"),
        Some(0.0)
    );
    drop(e);
    drop(mount);
}

/// With `log_poll_interval = "1h"` no timer reads the logs: only inotify
/// events can make new lines show within a second or two.
fn watched_config(dir: &Path, root: &Path) -> PathBuf {
    config(dir, &[(root, None)], "log_poll_interval = \"1h\"\n")
}

/// Lines written to a watched root show within this (the event delay is
/// 100 ms; the rest is slack for a busy machine).
const EVENT_SOON: Duration = Duration::from_secs(2);

fn wait_event(e: &Exporter, what: &str, f: impl Fn(&str) -> bool) -> Duration {
    let started = Instant::now();
    e.wait_metrics(EVENT_SOON, f).unwrap_or_else(|| {
        panic!(
            "{what} within {EVENT_SOON:?} (log_poll_interval 1h: only inotify can see it); log:\n{}",
            e.logs()
        )
    });
    started.elapsed()
}

#[test]
fn a_watched_root_is_read_when_it_changes_not_on_a_timer() {
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let log = basic.join("_diag").join(RUNNER_LOG);
    let cfg = watched_config(t.path(), &basic);
    let e = start(&cfg, &[]);
    ready(&e, "linux_runner");
    let r = "linux_runner";
    let m = e.metrics();
    assert_eq!(runner_val(&m, "github_runner_job_running", r), Some(1.0));
    assert_eq!(
        sample_value(&m, "github_runner_exporter_runner_watched_roots"),
        Some(1.0)
    );
    // Nothing was written for a while: the root is idle, then changes.
    std::thread::sleep(Duration::from_millis(1500));
    append(
        &log,
        status(
            "2026-01-05 11:50:00Z",
            &format!("Job {LINT_JOB} completed with result: Succeeded"),
        )
        .as_bytes(),
    );
    let took = wait_event(&e, "the lint job completed", |m| {
        runner_val(m, "github_runner_job_running", r) == Some(0.0)
    });
    eprintln!("completion seen after {took:?}");
    append(
        &log,
        status("2026-01-05 12:00:00Z", "Running job: watched").as_bytes(),
    );
    let took = wait_event(&e, "the next job running", |m| {
        runner_val(m, "github_runner_job_running", r) == Some(1.0)
    });
    eprintln!("start seen after {took:?}");
    assert!(took < EVENT_SOON);
    let m = e.metrics();
    assert_eq!(jobs(&m, r, "Succeeded"), Some(1.0));
    assert_eq!(
        runner_val(&m, "github_runner_job_started_timestamp_seconds", r),
        Some(unix("2026-01-05 12:00:00Z"))
    );
    // A new log file (the agent's rotation) is found through the event on
    // `_diag`, not a timer either.
    append(
        &basic.join("_diag/Runner_20260105-130000-utc.log"),
        status(
            "2026-01-05 13:00:00Z",
            "Job watched completed with result: Failed",
        )
        .as_bytes(),
    );
    wait_event(&e, "the job completed in the new file", |m| {
        jobs(m, r, "Failed") == Some(1.0)
    });
}

#[test]
fn a_diag_folder_created_after_startup_is_watched() {
    let t = Roots::new();
    let root = t.copy("basic", "fresh");
    std::fs::remove_dir_all(root.join("_diag")).unwrap();
    let cfg = watched_config(t.path(), &root);
    let e = start(&cfg, &[]);
    // Registered (.runner), service not started yet: no logs.
    let m = ready(&e, "linux_runner");
    assert_eq!(
        runner_val(&m, "github_runner_root_accessible", "linux_runner"),
        Some(1.0)
    );
    std::thread::sleep(Duration::from_millis(500));
    // The service starts: the agent creates `_diag`, then its log.
    std::fs::create_dir(root.join("_diag")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let log = root.join("_diag/Runner_20260107-080000-utc.log");
    let mut text = entry(
        "2026-01-07 08:00:01Z",
        "INFO",
        "Terminal",
        "WRITE LINE: Current runner version: '2.330.0'",
    );
    text += &status("2026-01-07 08:00:02Z", "Listening for Jobs");
    append(&log, text.as_bytes());
    wait_event(&e, "the listener connected", |m| {
        runner_val(m, "github_runner_listener_connected", "linux_runner") == Some(1.0)
    });
    // Lines appended to the new file are seen through the new watch.
    append(
        &log,
        status("2026-01-07 08:01:00Z", "Running job: first").as_bytes(),
    );
    let took = wait_event(&e, "the first job running", |m| {
        runner_val(m, "github_runner_job_running", "linux_runner") == Some(1.0)
    });
    eprintln!("start seen after {took:?}");
}

#[test]
fn with_watch_off_roots_are_polled_on_the_timer() {
    // `watch = false` takes the path of a root inotify cannot watch (no
    // inotify, out of watches, a network or FUSE filesystem): polled every
    // log_poll_interval, nothing else.
    let t = Roots::new();
    let basic = t.copy("basic", "basic");
    let log = basic.join("_diag").join(RUNNER_LOG);
    let cfg = config(
        t.path(),
        &[(&basic, None)],
        "watch = false\nlog_poll_interval = \"200ms\"\n",
    );
    let e = start(&cfg, &[]);
    let m = ready(&e, "linux_runner");
    assert_eq!(
        sample_value(&m, "github_runner_exporter_runner_watched_roots"),
        Some(0.0)
    );
    append(
        &log,
        status(
            "2026-01-05 11:50:00Z",
            &format!("Job {LINT_JOB} completed with result: Failed"),
        )
        .as_bytes(),
    );
    wait(&e, "the lint job counted", |m| {
        jobs(m, "linux_runner", "Failed") == Some(1.0)
    });
    // A new file in `_diag`, found by the poll's listing.
    append(
        &basic.join("_diag/Runner_20260105-130000-utc.log"),
        status("2026-01-05 13:00:00Z", "Running job: polled").as_bytes(),
    );
    wait(&e, "the job in the new file running", |m| {
        runner_val(m, "github_runner_job_running", "linux_runner") == Some(1.0)
    });
}
