//! Fault injection with every collector on at once: the real binary on a
//! real dbus-daemon with the fake systemd (testkit), polling the fake GitHub
//! API (fleet scope over acme/app), following a copy of the `basic` runner
//! root that the runner unit's WorkingDirectory points at, and sampling the
//! host. While faults are injected a background thread keeps scraping
//! `/metrics` and `/health` and records the slowest answer; every case
//! asserts that no scrape waited on the fault, that the exporter's own
//! metrics name what is wrong, and that everything recovers once the fault
//! is removed.
//!
//! What the per-collector suites already prove, one fault at a time, is not
//! repeated here:
//! - `tests/it/github.rs`: a hanging API
//!   (`a_hanging_api_times_out_and_never_holds_up_a_scrape`), an answer
//!   trickling byte by byte (`a_trickling_answer_times_out_as_a_whole`),
//!   garbage (`malformed_answers_back_off`), 5xx, 401/403/429, rate limits
//!   and the backoff after each;
//! - `tests/it/systemd.rs`: the bus killed between calls and restarted
//!   (`the_bus_dies_and_comes_back`), a slow bus
//!   (`a_slow_bus_times_out_without_slowing_metrics`), no bus at all,
//!   missing methods and properties;
//! - `tests/it/runner.rs`: a log truncated or deleted
//!   (`truncation_and_deletion_are_noticed`), replaced by a FIFO or a
//!   symlink to /dev/zero, garbage and huge lines
//!   (`hostile_log_content_is_skipped_bounded_and_counted`), a hung
//!   filesystem (`a_hung_filesystem_stalls_only_its_own_root`).
//!
//! Here: the bus dying *during* a call, faults in several collectors at the
//! same time (and what one collector's failure does to the others: the
//! runner root found through a unit must survive the bus dying), and the
//! wall clock jumping forward and back while the exporter runs
//! (libfaketime, Debian package `faketime`).

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::fake_github::official_runners;
use testkit::{sample_value, Exporter, Failure, FakeGithub, FakeSystemd, Unit};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const UNIT: &str = "actions.runner.acme-app.linux-runner.service";
const RUNNER: &str = "linux_runner";
const REPO: &str = "repos/acme/app";
const RUNNER_LOG: &str = "Runner_20260105-090000-utc.log";
/// The job in progress at the end of the `basic` fixture's log.
const LINT_JOB: &str = "lint \u{2713} \u{fc}n\u{ef}c\u{f6}d\u{e9}";
/// No scrape may take this long. Every fault below would hold a scrape
/// that waited on it for 10 s or more (request_timeout, call_timeout) or
/// forever (a FIFO, /dev/zero), so a bound well under that shows that
/// scrapes never wait on collectors, with room for a busy CI machine.
const SCRAPE_BOUND: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(30);
/// The GitHub collector backs off a minute (plus up to a fifth of jitter)
/// after a failed poll; recovery is seen after that.
const GITHUB_RECOVERY: Duration = Duration::from_secs(90);

// ------------------------------------------------------------------ rig

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// libfaketime's preload library (Debian package `faketime`).
fn libfaketime() -> PathBuf {
    let mut candidates = vec![PathBuf::from("/usr/lib/faketime/libfaketime.so.1")];
    if let Ok(dirs) = std::fs::read_dir("/usr/lib") {
        for d in dirs.flatten() {
            candidates.push(d.path().join("faketime/libfaketime.so.1"));
        }
    }
    candidates.into_iter().find(|p| p.is_file()).expect(
        "libfaketime.so.1 is installed (Debian package faketime; scripts/install-test-deps.sh)",
    )
}

#[derive(Clone, Copy)]
struct Options {
    /// `[systemd] call_timeout`.
    call_timeout: &'static str,
    /// `[systemd] resync_interval`.
    resync: &'static str,
    /// Run the exporter under libfaketime with a clock the test moves.
    fake_clock: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call_timeout: "20s",
            resync: "1h",
            fake_clock: false,
        }
    }
}

/// Everything the exporter talks to, and the exporter.
struct Rig {
    _dir: tempfile::TempDir,
    root: PathBuf,
    clock: PathBuf,
    systemd: FakeSystemd,
    github: FakeGithub,
    e: Exporter,
}

impl Rig {
    fn start(o: Options) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("actions-runner");
        testkit::copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
        let systemd = FakeSystemd::start([Unit::running(UNIT).with_working_directory(&root)]);
        let github = FakeGithub::start();
        github.set_runners(REPO, official_runners());
        let token = dir.path().join("token");
        std::fs::write(&token, "ghp_faultsFAULTSfaults0123456789\n").unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"[host]
sample_interval = "1s"
[systemd]
resync_interval = "{resync}"
call_timeout = "{call_timeout}"
[runner_files]
root_patterns = []
[github]
scope = "fleet"
api_url = "{api}"
token_file = "{token}"
poll_interval = "1s"
request_timeout = "10s"
repositories = ["acme/app"]
[health]
stale_intervals = 3
"#,
                resync = o.resync,
                call_timeout = o.call_timeout,
                api = github.url(),
                token = token.display(),
            ),
        )
        .unwrap();
        let clock = dir.path().join("faketime");
        std::fs::write(&clock, "+0\n").unwrap();
        let arg = format!("--config.file={}", config.display());
        let bus = systemd.address();
        let preload = libfaketime();
        let mut envs: Vec<(&str, &str)> = vec![("DBUS_SYSTEM_BUS_ADDRESS", &bus)];
        let clock_str = clock.to_str().unwrap();
        if o.fake_clock {
            envs.extend([
                ("LD_PRELOAD", preload.to_str().unwrap()),
                ("FAKETIME_TIMESTAMP_FILE", clock_str),
                // Read the file again at most a second after it changed.
                ("FAKETIME_CACHE_DURATION", "1"),
                // A wall-clock jump (settimeofday, an NTP step) leaves
                // CLOCK_MONOTONIC alone; so does this fake.
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                // File times stay as the kernel wrote them.
                ("NO_FAKE_STAT", "1"),
            ]);
        }
        let e = Exporter::start(BIN, &[&arg], &envs);
        let rig = Rig {
            _dir: dir,
            root,
            clock,
            systemd,
            github,
            e,
        };
        rig.wait("every collector succeeds and the runner is joined", |m| {
            ["host", "systemd", "runner", "github"]
                .iter()
                .all(|c| success(m, c) == Some(1.0))
                && unit_state(m, "active") == Some(1.0)
                && registered(m) == Some(1.0)
                && m.contains(&format!("github_runner_info{{runner=\"{RUNNER}\""))
        });
        rig
    }

    fn log(&self) -> PathBuf {
        self.root.join("_diag").join(RUNNER_LOG)
    }

    fn diag(&self) -> PathBuf {
        self.root.join("_diag")
    }

    fn wait_for(&self, timeout: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
        self.e.wait_metrics(timeout, f).unwrap_or_else(|| {
            panic!(
                "{what} (within {timeout:?}); last scrape:\n{}\nlog:\n{}",
                own_lines(&self.e.metrics()),
                self.e.logs()
            )
        })
    }

    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        self.wait_for(WAIT, what, f)
    }

    /// Sets the exporter's wall clock to real time + `offset` (libfaketime
    /// syntax: "+1d", "-86400") and waits until the exporter runs on it.
    fn set_clock(&self, offset: &str, seconds: f64) {
        std::fs::write(&self.clock, format!("{offset}\n")).unwrap();
        let ok = testkit::wait_for(Duration::from_secs(10), || {
            let t = self.exporter_time()?;
            ((t - (unix_now() + seconds)).abs() < 30.0).then_some(())
        });
        assert!(
            ok.is_some(),
            "the exporter's clock did not move to {offset}: {:?}",
            self.exporter_time()
        );
    }

    /// The exporter's wall clock, from `/health`'s `generated_at`.
    fn exporter_time(&self) -> Option<f64> {
        let v = self.health_json()?;
        let at = v["generated_at"].as_str()?;
        runner_health_exporter::timefmt::parse_log_timestamp(&format!("{}Z", at.get(..19)?))
    }

    fn health_json(&self) -> Option<serde_json::Value> {
        let r = testkit::get_with(
            self.e.addr,
            "GET",
            &format!("/health?runner={RUNNER}"),
            &[("Accept", "application/json")],
        )
        .ok()?;
        serde_json::from_str(&r.body()).ok()
    }

    /// The status and reason of one check of the runner in `/health`.
    fn check(&self, check: &str) -> Option<(String, String)> {
        testkit::health_check(&self.health_json()?, check)
    }

    fn wait_check(&self, check: &str, status: &str, reason_has: &str) -> String {
        testkit::wait_for(WAIT, || {
            self.check(check)
                .filter(|(s, r)| s == status && r.contains(reason_has))
                .map(|(_, r)| r)
        })
        .unwrap_or_else(|| {
            panic!(
                "/health check {check} never became {status} ({reason_has:?}); now {:?}\nlog:\n{}",
                self.check(check),
                self.e.logs()
            )
        })
    }
}

/// The exporter's own series and the runner's, for failure messages.
fn own_lines(m: &str) -> String {
    m.lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.contains("_bucket")
                && (l.starts_with("github_runner_exporter_")
                    || l.starts_with("github_runner_github_api")
                    || l.contains(RUNNER))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn success(m: &str, collector: &str) -> Option<f64> {
    sample_value(
        m,
        &format!("github_runner_exporter_collector_success{{collector=\"{collector}\"}}"),
    )
}

fn last_success(m: &str, collector: &str) -> Option<f64> {
    sample_value(
        m,
        &format!(
            "github_runner_exporter_collector_last_success_timestamp_seconds{{collector=\"{collector}\"}}"
        ),
    )
}

fn errors(m: &str, collector: &str) -> f64 {
    sample_value(
        m,
        &format!("github_runner_exporter_collector_errors_total{{collector=\"{collector}\"}}"),
    )
    .unwrap_or(0.0)
}

fn api_errors(m: &str, reason: &str) -> f64 {
    sample_value(
        m,
        &format!("github_runner_github_api_errors_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

fn skipped(m: &str, reason: &str) -> f64 {
    sample_value(
        m,
        &format!(
            "github_runner_exporter_log_lines_skipped_total{{runner=\"{RUNNER}\",reason=\"{reason}\"}}"
        ),
    )
    .unwrap_or(0.0)
}

fn unit_state(m: &str, state: &str) -> Option<f64> {
    sample_value(
        m,
        &format!(
            "github_runner_service_state{{runner=\"{RUNNER}\",unit=\"{UNIT}\",state=\"{state}\"}}"
        ),
    )
}

fn registered(m: &str) -> Option<f64> {
    sample_value(
        m,
        &format!("github_runner_registered{{runner=\"{RUNNER}\"}}"),
    )
}

fn jobs(m: &str, result: &str) -> Option<f64> {
    sample_value(
        m,
        &format!("github_runner_jobs_total{{runner=\"{RUNNER}\",result=\"{result}\"}}"),
    )
}

fn runner_val(m: &str, name: &str) -> Option<f64> {
    sample_value(m, &format!("{name}{{runner=\"{RUNNER}\"}}"))
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// A listener console line as the agent writes it, at `unix` seconds.
fn listener_line(unix: f64, msg: &str) -> String {
    let ts = log_ts(unix);
    format!("[{ts} INFO Terminal] WRITE LINE: {ts}: {msg}\n")
}

fn log_ts(unix: f64) -> String {
    let s = runner_health_exporter::timefmt::rfc3339_millis(unix);
    format!("{} {}Z", &s[..10], &s[11..19])
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

// ------------------------------------------------------------------ scraper

/// Scrapes `/metrics` (and every fifth time `/health`) back to back on a
/// thread and keeps the slowest answer and the failures.
struct Scraper {
    stop: Arc<AtomicBool>,
    worst: Arc<Mutex<(Duration, String)>>,
    in_flight: Arc<Mutex<Option<(Instant, &'static str)>>>,
    failures: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    fn start(e: &Exporter) -> Scraper {
        let addr = e.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(Mutex::new((Duration::ZERO, String::new())));
        let in_flight = Arc::new(Mutex::new(None));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, worst, in_flight, failures, count) = (
                Arc::clone(&stop),
                Arc::clone(&worst),
                Arc::clone(&in_flight),
                Arc::clone(&failures),
                Arc::clone(&count),
            );
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let path = if n % 5 == 0 { "/health" } else { "/metrics" };
                    let t = Instant::now();
                    *in_flight.lock().unwrap() = Some((t, path));
                    let r = testkit::get(addr, path);
                    let took = t.elapsed();
                    *in_flight.lock().unwrap() = None;
                    match r {
                        // /health answers 503 when a check fails: still an answer.
                        Ok(r) if r.status == 200 || (path == "/health" && r.status == 503) => {}
                        Ok(r) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{path}: status {}", r.status)),
                        Err(e) => failures.lock().unwrap().push(format!("{path}: {e}")),
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let mut w = worst.lock().unwrap();
                    if took > w.0 {
                        *w = (took, path.to_string());
                    }
                    drop(w);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Scraper {
            stop,
            worst,
            in_flight,
            failures,
            count,
            thread: Some(thread),
        }
    }

    /// Asserts that every scrape so far answered within the bound, none
    /// failed, and one is not stuck right now.
    fn assert_fast(&self, during: &str) {
        let (worst, path) = self.worst.lock().unwrap().clone();
        if let Some((since, path)) = *self.in_flight.lock().unwrap() {
            assert!(
                since.elapsed() < SCRAPE_BOUND,
                "{path} has been waiting {:?} during {during}",
                since.elapsed()
            );
        }
        assert!(
            worst < SCRAPE_BOUND,
            "{path} took {worst:?} during {during}"
        );
        let failures = self.failures.lock().unwrap();
        assert!(failures.is_empty(), "during {during}: {failures:?}");
        assert!(
            self.count.load(Ordering::Relaxed) > 0,
            "no scrape at all during {during}"
        );
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------ cases

/// A D-Bus call is in flight (the fake answers slowly) when the bus is
/// killed. The call fails at once, not at its 20 s timeout; unit states
/// become unknown; the runner root found through the unit's
/// WorkingDirectory is kept, so a job completing during the outage is
/// counted; GitHub answering garbage meanwhile shows as its own failure;
/// and once the bus is back the unit change made during the failed call
/// is seen.
#[test]
fn the_bus_dies_mid_call_while_github_answers_garbage() {
    let rig = Rig::start(Options::default());
    let scraper = Scraper::start(&rig.e);

    rig.systemd.set_delay(Duration::from_secs(5));
    let calls = rig.systemd.total_calls();
    // Stopping the unit sends PropertiesChanged: the collector reads the
    // unit again, and that read is answered only after 5 s.
    rig.systemd.stop_unit(UNIT);
    testkit::wait_for(Duration::from_secs(10), || {
        (rig.systemd.total_calls() > calls).then_some(())
    })
    .expect("the collector calls systemd after the signal");
    rig.github.fail(Failure::Malformed);
    let killed = Instant::now();
    rig.systemd.kill_bus();
    let m = rig.wait("the dead bus shows", |m| success(m, "systemd") == Some(0.0));
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "the call in flight failed with the bus, not at its 20 s timeout: {:?}",
        killed.elapsed()
    );
    assert!(errors(&m, "systemd") >= 1.0);
    assert_eq!(unit_state(&m, "active"), None, "no stale unit state:\n{m}");
    // The runner found through the unit is still followed...
    assert!(
        m.contains(&format!("github_runner_info{{runner=\"{RUNNER}\"")),
        "the runner root must outlive the bus:\n{}",
        own_lines(&m)
    );
    // ...and a job completing now is counted.
    append(
        &rig.log(),
        &listener_line(
            unix_now(),
            &format!("Job {LINT_JOB} completed with result: Succeeded"),
        ),
    );
    let m = rig.wait("the job completed during the outage is counted", |m| {
        jobs(m, "Succeeded") == Some(1.0) && api_errors(m, "malformed") >= 1.0
    });
    assert_eq!(success(&m, "github"), Some(0.0));
    assert_eq!(
        registered(&m),
        Some(1.0),
        "the last known registration stays"
    );
    assert_eq!(success(&m, "runner"), Some(1.0));
    assert_eq!(success(&m, "host"), Some(1.0));
    let logs = rig.e.logs();
    assert!(
        logs.contains("collector failed") && logs.contains("collector=systemd"),
        "{logs}"
    );
    scraper.assert_fast("the bus dying mid-call and GitHub answering garbage");

    rig.systemd.set_delay(Duration::ZERO);
    rig.systemd.restart_bus();
    rig.github.clear_failure();
    rig.wait(
        "systemd recovers with the change made during the failed call",
        |m| success(m, "systemd") == Some(1.0) && unit_state(m, "inactive") == Some(1.0),
    );
    let m = rig.wait_for(GITHUB_RECOVERY, "GitHub recovers after its backoff", |m| {
        success(m, "github") == Some(1.0)
    });
    assert_eq!(jobs(&m, "Succeeded"), Some(1.0), "counted once");
    scraper.assert_fast("recovery");
}

/// GitHub hangs, the bus is dead, the followed log becomes a FIFO and a
/// newer Worker log is a symlink to /dev/zero, all at once. Each collector
/// names its own problem; the healthy ones stay healthy; `/health` answers
/// and says which data is missing. Then every fault is removed.
#[test]
fn github_hangs_the_bus_dies_and_the_logs_turn_hostile_at_once() {
    let rig = Rig::start(Options::default());
    let scraper = Scraper::start(&rig.e);
    let before = rig.github.request_count();

    rig.github.fail(Failure::Hang);
    rig.systemd.kill_bus();
    std::fs::remove_file(rig.log()).unwrap();
    mkfifo(&rig.log());
    std::os::unix::fs::symlink(
        "/dev/zero",
        rig.diag().join("Worker_20260105-120500-utc.log"),
    )
    .unwrap();
    rig.github
        .wait_requests(before + 1, WAIT)
        .expect("a request hangs");

    let m = rig.wait("every fault shows", |m| {
        success(m, "systemd") == Some(0.0)
            && skipped(m, "not_regular_file") >= 2.0
            && api_errors(m, "timeout") >= 1.0
    });
    assert_eq!(success(&m, "github"), Some(0.0));
    assert_eq!(success(&m, "runner"), Some(1.0), "{}", own_lines(&m));
    assert_eq!(success(&m, "host"), Some(1.0));
    let bytes = runner_val(&m, "github_runner_exporter_log_bytes_read_total").unwrap();
    let (status, reason) = rig.check("service_active").expect("service_active check");
    assert_eq!(status, "unknown", "{reason}");
    assert!(reason.contains("systemd"), "{reason}");
    std::thread::sleep(Duration::from_secs(2));
    let m = rig.e.metrics();
    assert_eq!(
        runner_val(&m, "github_runner_exporter_log_bytes_read_total"),
        Some(bytes),
        "nothing read from the FIFO or /dev/zero"
    );
    scraper.assert_fast("a hanging API, a dead bus, a FIFO and /dev/zero");

    // Remove every fault: the runner starts a new regular log.
    rig.github.clear_failure();
    rig.systemd.restart_bus();
    std::fs::remove_file(rig.log()).unwrap();
    std::fs::remove_file(rig.diag().join("Worker_20260105-120500-utc.log")).unwrap();
    let now = unix_now();
    let mut text = format!(
        "[{ts} INFO Terminal] WRITE LINE: Current runner version: '2.331.0'\n",
        ts = log_ts(now)
    );
    text += &listener_line(now, "Listening for Jobs");
    text += &listener_line(now, "Running job: after");
    text += &listener_line(now + 1.0, "Job after completed with result: Failed");
    append(&rig.diag().join("Runner_20260105-140000-utc.log"), &text);
    rig.wait("systemd and the runner log recover", |m| {
        success(m, "systemd") == Some(1.0)
            && unit_state(m, "active") == Some(1.0)
            && jobs(m, "Failed") == Some(1.0)
    });
    rig.wait_for(GITHUB_RECOVERY, "GitHub recovers after its backoff", |m| {
        success(m, "github") == Some(1.0)
    });
    rig.wait_check("service_active", "ok", "");
    scraper.assert_fast("recovery");
}

/// GitHub trickles its answer a byte at a time while systemd answers
/// every call later than the call timeout, and the runner's log is first
/// truncated, then deleted and replaced.
#[test]
fn github_trickles_while_systemd_is_slow_and_the_log_is_truncated_then_deleted() {
    let rig = Rig::start(Options {
        call_timeout: "1s",
        resync: "2s",
        ..Options::default()
    });
    let scraper = Scraper::start(&rig.e);

    // The answer (a 304 of about 400 bytes: the runners did not change)
    // at 50 ms a byte would take 20 s: over the 10 s request timeout.
    rig.github.fail(Failure::SlowBody {
        per_byte: Duration::from_millis(50),
    });
    rig.systemd.set_delay(Duration::from_secs(15));
    std::fs::OpenOptions::new()
        .write(true)
        .open(rig.log())
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    append(
        &rig.log(),
        &listener_line(unix_now(), "Job truncated completed with result: Skipped"),
    );
    let m = rig.wait("every fault shows", |m| {
        success(m, "systemd") == Some(0.0)
            && api_errors(m, "timeout") >= 1.0
            && jobs(m, "Skipped") == Some(1.0)
    });
    assert_eq!(success(&m, "github"), Some(0.0));
    assert_eq!(success(&m, "runner"), Some(1.0));
    assert!(
        rig.e.logs().contains("no answer within 1s"),
        "{}",
        rig.e.logs()
    );

    std::fs::remove_file(rig.log()).unwrap();
    let now = unix_now();
    let mut text = format!(
        "[{ts} INFO Terminal] WRITE LINE: Current runner version: '2.331.0'\n",
        ts = log_ts(now)
    );
    text += &listener_line(now, "Listening for Jobs");
    text += &listener_line(now, "Job gone completed with result: Abandoned");
    append(&rig.diag().join("Runner_20260105-140000-utc.log"), &text);
    rig.wait("the new log after deletion", |m| {
        jobs(m, "Abandoned") == Some(1.0)
    });
    scraper.assert_fast("a trickling API, a slow bus and a truncated, deleted log");

    rig.github.clear_failure();
    rig.systemd.set_delay(Duration::ZERO);
    rig.wait("systemd recovers", |m| {
        success(m, "systemd") == Some(1.0) && unit_state(m, "active") == Some(1.0)
    });
    rig.wait_for(GITHUB_RECOVERY, "GitHub recovers after its backoff", |m| {
        success(m, "github") == Some(1.0)
    });
    scraper.assert_fast("recovery");
}

/// Every sample of the exposition is a counter, a timestamp, a duration, a
/// state or a size: none may be negative (or NaN). The one signed figure,
/// the host clock minus GitHub's, is left out (the test checks it follows
/// the jumps).
fn assert_no_negative_samples(m: &str) {
    for l in m
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| !l.starts_with("github_runner_host_clock_offset_seconds "))
    {
        let v: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unparsable sample {l:?}"));
        assert!(v >= 0.0, "negative or NaN sample after a clock jump: {l}");
    }
}

fn duration_sum(m: &str) -> f64 {
    runner_val(m, "github_runner_job_duration_seconds_sum").unwrap_or(-1.0)
}

fn duration_count(m: &str) -> f64 {
    runner_val(m, "github_runner_job_duration_seconds_count").unwrap_or(-1.0)
}

/// The wall clock jumps a day forward and then back past where it started,
/// while the exporter runs (libfaketime; the monotonic clock goes on as
/// the kernel's does). The runner's log follows the same jumped clock.
/// Nothing may panic, go negative, get stuck or freeze: a job that spans
/// a jump gets its real duration (not a day more, not below zero) and is
/// not called stuck by `/health` for the day it did not run, the
/// collectors' timestamps follow the clock, `/health` still notices a
/// collector that stops, and a rate-limit reset told in GitHub's clock is
/// waited for as long as GitHub says, not a day longer.
#[test]
fn the_wall_clock_jumps_forward_and_back() {
    let rig = Rig::start(Options {
        resync: "2s",
        fake_clock: true,
        ..Options::default()
    });
    let scraper = Scraper::start(&rig.e);
    const DAY: f64 = 86_400.0;

    // A job starts now (the listener moves on from the fixture's job)...
    let t = unix_now();
    append(&rig.log(), &listener_line(t, "Running job: spans-a-jump"));
    rig.wait("the job started", |m| {
        m.contains("github_runner_current_job_info{runner=\"linux_runner\",job=\"spans-a-jump\"} 1")
    });
    // ...the clock jumps a day ahead: the job has not run for a day, and
    // /health does not call it stuck...
    rig.set_clock("+1d", DAY);
    let (status, reason) = rig.check("job_not_stuck").expect("job_not_stuck check");
    assert_eq!(status, "ok", "{reason}");
    assert!(reason.contains("spans-a-jump"), "{reason}");
    // ...and it completes a few seconds later (by the log's clock: a day
    // and a few seconds later).
    append(
        &rig.log(),
        &listener_line(
            unix_now() + DAY,
            "Job spans-a-jump completed with result: Succeeded",
        ),
    );
    let m = rig.wait("the job completed across the jump", |m| {
        jobs(m, "Succeeded") == Some(1.0)
    });
    assert_eq!(duration_count(&m), 1.0);
    let real = unix_now() - t;
    assert!(
        (0.0..=real + 2.0).contains(&duration_sum(&m)),
        "a job of {real:.0} s recorded as {} s",
        duration_sum(&m)
    );
    // The collectors' timestamps follow the clock.
    let m = rig.wait("last success timestamps on the new clock", |m| {
        ["host", "systemd", "runner", "github"]
            .iter()
            .all(|c| last_success(m, c).is_some_and(|t| t > unix_now() + DAY - 60.0))
    });
    assert_no_negative_samples(&m);
    rig.wait_check("data_fresh", "ok", "");
    // GitHub's Date says the host is a day ahead, and /health names it.
    let offset = |m: &str| sample_value(m, "github_runner_host_clock_offset_seconds");
    rig.wait("the clock offset follows the jump", |m| {
        offset(m).is_some_and(|o| (o - DAY).abs() < 10.0)
    });
    let (status, reason) = rig.check("clock_in_sync").expect("clock_in_sync check");
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("24h0m ahead of GitHub's"), "{reason}");

    // The bus dies, then the clock jumps two days back: the last success
    // of the systemd collector is now in the future. /health must still
    // notice that it stopped.
    rig.systemd.kill_bus();
    rig.wait("the dead bus shows", |m| success(m, "systemd") == Some(0.0));
    rig.set_clock("-1d", -DAY);
    let m = rig.wait("last success timestamps follow the clock back", |m| {
        ["host", "runner", "github"]
            .iter()
            .all(|c| last_success(m, c).is_some_and(|t| t < unix_now() - DAY + 60.0))
    });
    assert_no_negative_samples(&m);
    let reason = rig.wait_check("data_fresh", "warn", "systemd");
    assert!(!reason.contains("host"), "{reason}");
    rig.wait("the clock offset follows the jump back", |m| {
        offset(m).is_some_and(|o| (o + DAY).abs() < 10.0)
    });
    rig.systemd.restart_bus();
    rig.wait("systemd recovers", |m| success(m, "systemd") == Some(1.0));
    rig.wait_check("data_fresh", "ok", "");

    // A job runs while the clock jumps back an hour: by the log's clock it
    // ends before it started.
    let t = unix_now();
    append(&rig.log(), &listener_line(t - DAY, "Running job: back"));
    rig.wait("the second job started", |m| {
        m.contains("github_runner_current_job_info{runner=\"linux_runner\",job=\"back\"} 1")
    });
    rig.set_clock("-25h", -DAY - 3600.0);
    append(
        &rig.log(),
        &listener_line(
            unix_now() - DAY - 3600.0,
            "Job back completed with result: Failed",
        ),
    );
    let m = rig.wait("the job completed across the jump back", |m| {
        jobs(m, "Failed") == Some(1.0)
    });
    assert_eq!(duration_count(&m), 2.0);
    let real = unix_now() - t;
    let second = duration_sum(&m);
    assert!(
        (0.0..=2.0 * real + 4.0).contains(&second),
        "jobs of a few seconds recorded as {second} s in all"
    );
    assert_no_negative_samples(&m);

    // GitHub's rate limit runs out; its reset is five seconds ahead by
    // GitHub's clock, a day and an hour ahead by the exporter's.
    rig.github
        .fail_times(Failure::RateLimitExhausted { reset_in: 5 }, 1);
    let m = rig.wait("the exhausted rate limit shows", |m| {
        api_errors(m, "rate_limited") >= 1.0
    });
    let backoff = sample_value(&m, "github_runner_github_api_backoff_seconds").unwrap();
    assert!(
        backoff <= 3601.0,
        "waits {backoff} s for a window of at most an hour"
    );
    rig.wait("GitHub polled again after the reset", |m| {
        success(m, "github") == Some(1.0)
    });

    // Back to the right time: everything still works.
    rig.set_clock("+0", 0.0);
    rig.systemd.stop_unit(UNIT);
    let m = rig.wait("all collectors succeed on the right time", |m| {
        ["host", "systemd", "runner", "github"]
            .iter()
            .all(|c| success(m, c) == Some(1.0))
            && unit_state(m, "inactive") == Some(1.0)
    });
    assert_no_negative_samples(&m);
    rig.wait_check("data_fresh", "ok", "");
    let logs = rig.e.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    scraper.assert_fast("clock jumps");
}
