//! The systemd collector against a real dbus-daemon with a stand-in for
//! systemd on it (testkit's fake, using systemd's object-path escaping),
//! driving the real exporter binary with `DBUS_SYSTEM_BUS_ADDRESS`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use testkit::{sample_value, Exporter, FakeSystemd, Unit};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

const R1: &str = "actions.runner.acme-app.linux-1.service";
const GHES: &str = "actions.runner._services.ghes-2.service";
/// What the runner's installer makes of a long repository and runner name:
/// truncated, with a random suffix. Nothing can derive it.
const TRUNCATED: &str =
    "actions.runner.acme-corporation-platform-engineering-mono.build-run-4821.service";
/// Not runner units: never exported.
const OTHERS: [&str; 5] = [
    "ssh.service",
    "cron.service",
    "user@1000.service",
    "actions.runner.acme-app.linux-1.socket",
    "my-actions.runner.x.service",
];

/// Starts the exporter with `config` (TOML) and the system bus at `bus`
/// (the fake's or a real manager's).
pub(crate) fn exporter_on(bus: &str, config: &str) -> (Exporter, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config).expect("write the config");
    let arg = format!("--config.file={}", file.display());
    let e = Exporter::start(BIN, &[&arg], &[("DBUS_SYSTEM_BUS_ADDRESS", bus)]);
    (e, dir)
}

/// Starts the exporter on `fake`'s bus with `config` (TOML).
fn exporter(fake: &FakeSystemd, config: &str) -> (Exporter, tempfile::TempDir) {
    exporter_on(&fake.address(), config)
}

/// A config that resyncs rarely: anything seen within the test came from
/// a signal (or a reconnect). A lost bus is held for only half a second
/// before it counts as failed (the default, 5 s, rides out a re-exec of
/// systemd).
const NO_POLL: &str =
    "[host]\nenabled = false\n[systemd]\nresync_interval = \"1h\"\nreexec_grace = \"500ms\"\n";

pub(crate) fn state(m: &str, runner: &str, unit: &str, state: &str) -> Option<f64> {
    sample_value(
        m,
        &format!(
            "github_runner_service_state{{runner=\"{runner}\",unit=\"{unit}\",state=\"{state}\"}}"
        ),
    )
}

pub(crate) fn success(m: &str) -> Option<f64> {
    sample_value(
        m,
        "github_runner_exporter_collector_success{collector=\"systemd\"}",
    )
}

/// Unit names in `github_runner_service_info`, sorted.
fn exported_units(m: &str) -> Vec<String> {
    let mut v: Vec<String> = m
        .lines()
        .filter(|l| l.starts_with("github_runner_service_info{"))
        .filter_map(|l| {
            let start = l.find("unit=\"")? + 6;
            let end = start + l[start..].find('"')?;
            Some(l[start..end].to_string())
        })
        .collect();
    v.sort();
    v
}

fn others() -> impl Iterator<Item = Unit> {
    OTHERS.into_iter().map(Unit::running)
}

#[test]
fn discovers_runner_units_among_others_and_configured_ones() {
    let fake = FakeSystemd::start(
        [
            Unit::running(R1).with_working_directory("/opt/actions-runner-1"),
            Unit::running(GHES),
            Unit::inactive(TRUNCATED).with_restarts(3),
            // Named in config, not matching the pattern.
            Unit::running("ci-runner.service").with_working_directory("/srv/ci"),
        ]
        .into_iter()
        .chain(others()),
    );
    let config = format!(
        "{NO_POLL}\n[[runner]]\nunit = \"ci-runner.service\"\nrole = \"primary\"\n\n\
         [[runner]]\nunit = \"gone-after-reboot.service\"\n"
    );
    let (e, _d) = exporter(&fake, &config);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .unwrap_or_else(|| panic!("systemd collector succeeds; log:\n{}", e.logs()));
    let mut expected = vec![
        R1.to_string(),
        GHES.to_string(),
        TRUNCATED.to_string(),
        "ci-runner.service".to_string(),
        "gone-after-reboot.service".to_string(),
    ];
    expected.sort();
    assert_eq!(exported_units(&m), expected, "{m}");
    for other in OTHERS {
        assert!(!m.contains(other), "{other} must not be exported:\n{m}");
    }
    // Names come from systemd, the runner label from the unit name.
    assert_eq!(state(&m, "linux-1", R1, "active"), Some(1.0));
    assert_eq!(state(&m, "ghes-2", GHES, "active"), Some(1.0));
    assert_eq!(
        state(&m, "build-run-4821", TRUNCATED, "inactive"),
        Some(1.0)
    );
    assert_eq!(state(&m, "build-run-4821", TRUNCATED, "active"), Some(0.0));
    assert_eq!(
        state(&m, "ci-runner", "ci-runner.service", "active"),
        Some(1.0)
    );
    assert!(m.contains(&format!(
        "github_runner_service_info{{runner=\"linux-1\",unit=\"{R1}\",load_state=\"loaded\",sub_state=\"running\",working_directory=\"/opt/actions-runner-1\"}} 1"
    )), "{m}");
    assert_eq!(
        sample_value(
            &m,
            &format!("github_runner_service_restarts_total{{runner=\"build-run-4821\",unit=\"{TRUNCATED}\"}}")
        ),
        Some(3.0)
    );
    // Active since: the fake's ActiveEnterTimestamp, in seconds; 0 = never.
    let since = sample_value(
        &m,
        &format!("github_runner_service_active_since_timestamp_seconds{{runner=\"linux-1\",unit=\"{R1}\"}}"),
    )
    .unwrap();
    let expect = fake.unit(R1).unwrap().active_enter_usec as f64 / 1e6;
    assert!((since - expect).abs() < 1e-3, "{since} vs {expect}");
    assert_eq!(
        sample_value(
            &m,
            &format!("github_runner_service_active_since_timestamp_seconds{{runner=\"build-run-4821\",unit=\"{TRUNCATED}\"}}")
        ),
        Some(0.0)
    );
    // A configured unit systemd has not loaded is loaded and reported.
    assert!(
        m.contains(
            "unit=\"gone-after-reboot.service\",load_state=\"not-found\",sub_state=\"dead\""
        ),
        "{m}"
    );
    assert!(fake.calls("ListUnitsByPatterns") >= 1);
    assert_eq!(fake.calls("ListUnits"), 0, "the pattern call was enough");
    assert!(fake.calls("LoadUnit") >= 1);
    assert_eq!(fake.subscribers(), 1, "the exporter subscribed to signals");
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_targets{collector=\"systemd\"}"
        ),
        Some(5.0)
    );
}

#[test]
fn a_stopped_unit_shows_within_a_second() {
    let fake = FakeSystemd::start(
        [Unit::running(R1), Unit::running(GHES)]
            .into_iter()
            .chain(others()),
    );
    let (e, _d) = exporter(&fake, NO_POLL);
    e.wait_metrics(Duration::from_secs(10), |m| {
        state(m, "linux-1", R1, "active") == Some(1.0)
    })
    .unwrap_or_else(|| panic!("unit seen; log:\n{}", e.logs()));

    let t = Instant::now();
    fake.stop_unit(R1);
    let m = e
        .wait_metrics(Duration::from_secs(1), |m| {
            state(m, "linux-1", R1, "inactive") == Some(1.0)
        })
        .unwrap_or_else(|| {
            panic!(
                "stop not shown within 1 s ({:?}); log:\n{}",
                t.elapsed(),
                e.logs()
            )
        });
    assert_eq!(state(&m, "linux-1", R1, "active"), Some(0.0));
    assert!(m.contains("sub_state=\"dead\""), "{m}");
    assert_eq!(state(&m, "ghes-2", GHES, "active"), Some(1.0));

    // A crash: failed with the exit status, then restarts counted.
    fake.fail_unit(GHES, 3);
    let m = e
        .wait_metrics(Duration::from_secs(1), |m| {
            state(m, "ghes-2", GHES, "failed") == Some(1.0)
        })
        .expect("failure shown within 1 s");
    assert_eq!(
        sample_value(
            &m,
            &format!("github_runner_service_main_exit_status{{runner=\"ghes-2\",unit=\"{GHES}\"}}")
        ),
        Some(3.0)
    );
    fake.update(GHES, |u| {
        u.n_restarts = 2;
        u.start();
    });
    e.wait_metrics(Duration::from_secs(1), |m| {
        state(m, "ghes-2", GHES, "active") == Some(1.0)
            && sample_value(
                m,
                &format!(
                    "github_runner_service_restarts_total{{runner=\"ghes-2\",unit=\"{GHES}\"}}"
                ),
            ) == Some(2.0)
    })
    .expect("restart shown within 1 s");

    // Signals about other units do not make the exporter resync.
    let lists = fake.calls("ListUnitsByPatterns");
    for _ in 0..5 {
        fake.stop_unit("ssh.service");
        fake.start_unit("ssh.service");
    }
    // Something relevant afterwards proves the signals were delivered and
    // handled in order.
    fake.stop_unit(GHES);
    e.wait_metrics(Duration::from_secs(2), |m| {
        state(m, "ghes-2", GHES, "inactive") == Some(1.0)
    })
    .expect("stop shown");
    assert_eq!(
        fake.calls("ListUnitsByPatterns"),
        lists + 1,
        "only the runner unit's change caused a resync"
    );
}

#[test]
fn units_appearing_and_vanishing_follow_signals() {
    let fake = FakeSystemd::start(
        [Unit::running(R1), Unit::running(GHES)]
            .into_iter()
            .chain(others()),
    );
    let (e, _d) = exporter(&fake, NO_POLL);
    e.wait_metrics(Duration::from_secs(10), |m| exported_units(m).len() == 2)
        .unwrap_or_else(|| panic!("two units; log:\n{}", e.logs()));

    fake.remove_unit(GHES);
    let m = e
        .wait_metrics(Duration::from_secs(2), |m| exported_units(m) == [R1])
        .expect("removed unit's series go");
    assert!(!m.contains("ghes-2"), "{m}");

    fake.add_unit(Unit::running(TRUNCATED));
    e.wait_metrics(Duration::from_secs(2), |m| {
        state(m, "build-run-4821", TRUNCATED, "active") == Some(1.0)
    })
    .expect("new unit appears");
    // A new unit that is not a runner changes nothing.
    let lists = fake.calls("ListUnitsByPatterns");
    fake.add_unit(Unit::running("nginx.service"));
    fake.remove_unit("cron.service");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.calls("ListUnitsByPatterns"), lists);
    assert!(!e.metrics().contains("nginx"));
}

#[test]
fn the_bus_dies_and_comes_back() {
    let fake = FakeSystemd::start([Unit::running(R1)].into_iter().chain(others()));
    let (e, _d) = exporter(&fake, NO_POLL);
    e.wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .unwrap_or_else(|| panic!("collector succeeds; log:\n{}", e.logs()));

    fake.kill_bus();
    let m = e
        .wait_metrics(Duration::from_secs(5), |m| success(m) == Some(0.0))
        .unwrap_or_else(|| panic!("a dead bus shows; log:\n{}", e.logs()));
    // Unit states are unknown now: no stale "active".
    assert_eq!(state(&m, "linux-1", R1, "active"), None, "{m}");
    // /metrics keeps answering while the collector retries.
    for _ in 0..20 {
        let r = e.get("/metrics");
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = e.logs();
    assert!(
        logs.contains("collector failed") && logs.contains("collector=systemd"),
        "{logs}"
    );
    assert!(
        logs.contains("connecting to the D-Bus system bus"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("collector failed").count(),
        1,
        "the same failure is logged once:\n{logs}"
    );

    fake.restart_bus();
    e.wait_metrics(Duration::from_secs(15), |m| {
        success(m) == Some(1.0) && state(m, "linux-1", R1, "active") == Some(1.0)
    })
    .unwrap_or_else(|| panic!("collector recovers; log:\n{}", e.logs()));
    assert!(e.logs().contains("collector recovered"));
    // Subscribed again on the new bus: changes are live again.
    assert_eq!(fake.subscribers(), 1);
    fake.stop_unit(R1);
    e.wait_metrics(Duration::from_secs(1), |m| {
        state(m, "linux-1", R1, "inactive") == Some(1.0)
    })
    .expect("live again after the bus came back");
}

#[test]
fn old_systemd_without_list_units_by_patterns() {
    let fake = FakeSystemd::start(
        [Unit::running(R1), Unit::running(GHES)]
            .into_iter()
            .chain(others()),
    );
    fake.set_method_missing("ListUnitsByPatterns", true);
    let (e, _d) = exporter(&fake, NO_POLL);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .unwrap_or_else(|| panic!("collector succeeds; log:\n{}", e.logs()));
    let mut expected = vec![R1.to_string(), GHES.to_string()];
    expected.sort();
    assert_eq!(exported_units(&m), expected, "filtered ListUnits: {m}");
    assert!(fake.calls("ListUnits") >= 1);
    assert_eq!(fake.calls("ListUnitsByPatterns"), 1);
    assert!(e.logs().contains("ListUnitsByPatterns"), "{}", e.logs());
    // Later resyncs go straight to ListUnits.
    let lists = fake.calls("ListUnits");
    fake.stop_unit(R1);
    e.wait_metrics(Duration::from_secs(1), |m| {
        state(m, "linux-1", R1, "inactive") == Some(1.0)
    })
    .expect("live with the fallback too");
    assert_eq!(fake.calls("ListUnitsByPatterns"), 1);
    assert_eq!(fake.calls("ListUnits"), lists + 1);
}

#[test]
fn a_missing_required_method_fails_clearly() {
    let fake = FakeSystemd::start([Unit::running(R1)]);
    fake.set_method_missing("Subscribe", true);
    let (e, _d) = exporter(&fake, NO_POLL);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            sample_value(
                m,
                "github_runner_exporter_collector_errors_total{collector=\"systemd\"}",
            )
            .is_some_and(|n| n >= 1.0)
        })
        .unwrap_or_else(|| panic!("failure recorded; log:\n{}", e.logs()));
    assert_eq!(success(&m), Some(0.0));
    assert!(!m.contains(R1), "no unit without signals: {m}");
    let logs = e.logs();
    assert!(
        logs.contains("Subscribe") && logs.contains("UnknownMethod"),
        "{logs}"
    );
    // Once systemd has it, the collector recovers (after its backoff).
    fake.set_method_missing("Subscribe", false);
    e.wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .expect("recovers");
}

#[test]
fn missing_properties_degrade_or_fail() {
    // An optional property (NRestarts, which systemd < 235 lacks): the
    // unit is reported without it, and that is logged once.
    let fake = FakeSystemd::start([Unit::running(R1), Unit::running("ci-runner.service")]);
    fake.set_property_missing("NRestarts", true);
    let config = format!("{NO_POLL}\n[[runner]]\nunit = \"ci-runner.service\"\n");
    let (e, _d) = exporter(&fake, &config);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .unwrap_or_else(|| panic!("collector succeeds; log:\n{}", e.logs()));
    assert_eq!(state(&m, "linux-1", R1, "active"), Some(1.0));
    assert!(!m.contains("github_runner_service_restarts_total{"), "{m}");
    fake.stop_unit(R1);
    e.wait_metrics(Duration::from_secs(2), |m| {
        state(m, "linux-1", R1, "inactive") == Some(1.0)
    })
    .expect("still live");
    let logs = e.logs();
    assert_eq!(
        logs.matches("property=NRestarts").count(),
        1,
        "logged once:\n{logs}"
    );

    // A required one (ActiveState, read for the configured unit that the
    // pattern does not list): the run fails with a clear error.
    fake.set_property_missing("ActiveState", true);
    fake.stop_unit("ci-runner.service");
    let m = e
        .wait_metrics(Duration::from_secs(5), |m| success(m) == Some(0.0))
        .unwrap_or_else(|| panic!("failure shows; log:\n{}", e.logs()));
    assert!(!m.contains("ci-runner"), "{m}");
    let logs = e.logs();
    assert!(
        logs.contains(
            "ci-runner.service: systemd has no property org.freedesktop.systemd1.Unit.ActiveState"
        ),
        "{logs}"
    );
    fake.set_property_missing("ActiveState", false);
    e.wait_metrics(Duration::from_secs(10), |m| {
        success(m) == Some(1.0)
            && state(m, "ci-runner", "ci-runner.service", "inactive") == Some(1.0)
    })
    .expect("recovers");
}

#[test]
fn a_slow_bus_times_out_without_slowing_metrics() {
    let fake = FakeSystemd::start([Unit::running(R1)]);
    let config = format!("{NO_POLL}call_timeout = \"300ms\"\n");
    let (e, _d) = exporter(&fake, &config);
    e.wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .unwrap_or_else(|| panic!("collector succeeds; log:\n{}", e.logs()));

    fake.set_delay(Duration::from_secs(3));
    fake.stop_unit(R1);
    e.wait_metrics(Duration::from_secs(5), |m| success(m) == Some(0.0))
        .unwrap_or_else(|| panic!("timeout shows; log:\n{}", e.logs()));
    assert!(e.logs().contains("no answer within 300ms"), "{}", e.logs());
    // Scrapes are served from the snapshot while the calls hang.
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(e.get("/metrics").status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a scrape waited on the bus: {:?}",
            t.elapsed()
        );
    }
    fake.set_delay(Duration::ZERO);
    e.wait_metrics(Duration::from_secs(15), |m| {
        success(m) == Some(1.0) && state(m, "linux-1", R1, "inactive") == Some(1.0)
    })
    .unwrap_or_else(|| panic!("collector recovers; log:\n{}", e.logs()));
}

#[test]
fn scrapes_cause_no_dbus_traffic() {
    let fake = FakeSystemd::start(
        [Unit::running(R1), Unit::running(GHES)]
            .into_iter()
            .chain(others()),
    );
    let (e, _d) = exporter(&fake, NO_POLL);
    e.wait_metrics(Duration::from_secs(10), |m| success(m) == Some(1.0))
        .unwrap_or_else(|| panic!("collector succeeds; log:\n{}", e.logs()));
    let calls = fake.total_calls();
    assert!(calls > 0);
    for _ in 0..100 {
        let m = e.metrics();
        assert_eq!(state(&m, "linux-1", R1, "active"), Some(1.0));
    }
    assert_eq!(fake.total_calls(), calls, "scrapes made D-Bus calls");
}

#[test]
fn disabled_collector_stays_off_the_bus() {
    let fake = FakeSystemd::start([Unit::running(R1)]);
    let (e, _d) = exporter(&fake, "[systemd]\nenabled = false\n");
    let m = e
        .wait_metrics(Duration::from_secs(5), |m| {
            m.contains("github_runner_exporter_collector_enabled{collector=\"systemd\"} 0")
        })
        .expect("reported as disabled");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!m.contains("github_runner_service_state{"), "{m}");
    assert_eq!(fake.total_calls(), 0);
}

/// A copy of `sleep` named like the runner's program, so the process's
/// command name and executable path are the runner's.
fn runner_program(root: &Path, name: &str) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join(name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    exe
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This process's cgroup (v2 line of /proc/self/cgroup).
/// A cgroup of the test's own in the unified hierarchy (needs root), so
/// that the runner programs it holds are the only ones found there, not
/// those of whatever else runs on the machine. Removed on drop.
struct TestCgroup {
    dir: PathBuf,
    path: String,
}

impl TestCgroup {
    fn new() -> TestCgroup {
        let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|b| b.join("cgroup.procs").exists())
            .expect("a unified cgroup hierarchy");
        let path = format!(
            "/rhe-procs-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], "");
        let dir = base.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).expect("create the test's cgroup (root needed)");
        TestCgroup { dir, path }
    }

    fn adopt(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .expect("move a process into the test's cgroup");
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn runner_processes_are_found_by_root_and_by_cgroup() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("actions-runner");
    let empty = t.path().join("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    let listener = runner_program(&root, "Runner.Listener");
    let worker = runner_program(&root, "Runner.Worker");
    let cgroup = TestCgroup::new();
    const BY_ROOT: &str = "actions.runner.acme-app.by-root.service";
    const BY_CGROUP: &str = "actions.runner.acme-app.by-cgroup.service";
    let fake = FakeSystemd::start([
        // No cgroup (as if not readable): found through the root.
        Unit::running(BY_ROOT)
            .with_working_directory(&root)
            .with_control_group(""),
        // A root without the programs: found through the cgroup, which
        // holds the test's runner programs.
        Unit::running(BY_CGROUP)
            .with_working_directory(&empty)
            .with_control_group(&cgroup.path),
    ]);
    let (e, _d) = exporter(&fake, NO_POLL);
    let running = |m: &str, runner: &str, p: &str| {
        sample_value(
            m,
            &format!("github_runner_process_running{{runner=\"{runner}\",process=\"{p}\"}}"),
        )
    };
    e.wait_metrics(Duration::from_secs(10), |m| {
        running(m, "by-root", "listener") == Some(0.0)
    })
    .unwrap_or_else(|| panic!("no listener yet; log:\n{}", e.logs()));

    let l = Killed(Command::new(&listener).arg("300").spawn().unwrap());
    cgroup.adopt(l.0.id());
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            running(m, "by-root", "listener") == Some(1.0)
                && running(m, "by-cgroup", "listener") == Some(1.0)
        })
        .unwrap_or_else(|| panic!("listener found; metrics:\n{}", e.metrics()));
    assert_eq!(running(&m, "by-root", "worker"), Some(0.0));
    let rss = sample_value(
        &m,
        "github_runner_process_resident_memory_bytes{runner=\"by-root\",process=\"listener\"}",
    )
    .expect("listener memory");
    assert!(rss > 0.0);
    assert!(sample_value(
        &m,
        "github_runner_process_cpu_seconds_total{runner=\"by-root\",process=\"listener\"}"
    )
    .is_some());

    let w = Killed(Command::new(&worker).arg("300").spawn().unwrap());
    cgroup.adopt(w.0.id());
    e.wait_metrics(Duration::from_secs(10), |m| {
        running(m, "by-root", "worker") == Some(1.0)
            && running(m, "by-cgroup", "worker") == Some(1.0)
    })
    .expect("worker (a job) found");
    drop(w);
    drop(l);
    e.wait_metrics(Duration::from_secs(10), |m| {
        running(m, "by-root", "listener") == Some(0.0)
            && running(m, "by-root", "worker") == Some(0.0)
            && running(m, "by-cgroup", "listener") == Some(0.0)
    })
    .expect("processes gone");
}

/// The check `check` of runner `runner` in `/health` (JSON).
fn health_check(e: &Exporter, runner: &str, check: &str) -> Option<(String, String)> {
    let r = e.get_with(
        "GET",
        &format!("/health?runner={runner}"),
        &[("Accept", "application/json")],
    );
    let v: serde_json::Value = serde_json::from_str(&r.body()).ok()?;
    testkit::health_check(&v, check)
}

#[test]
fn restarts_observed_within_the_window_make_a_crash_loop() {
    // Restarts from before the exporter started, of a unit that has been
    // active for ten minutes since, are not a crash loop.
    let fake = FakeSystemd::start([Unit::running(R1)
        .with_restarts(7)
        .active_for(Duration::from_secs(600))]);
    let config = format!("{NO_POLL}[health]\ncrashloop_restarts = 3\ncrashloop_window = \"15m\"\n");
    let (e, _d) = exporter(&fake, &config);
    let ok = testkit::wait_for(Duration::from_secs(10), || {
        health_check(&e, "linux-1", "not_crash_looping").filter(|(s, _)| s == "ok")
    });
    assert!(ok.is_some(), "log:\n{}", e.logs());
    for n in 8..=10 {
        fake.update(R1, |u| {
            u.n_restarts = n;
            u.start();
        });
        e.wait_metrics(Duration::from_secs(2), |m| {
            sample_value(
                m,
                &format!(
                    "github_runner_service_restarts_total{{runner=\"linux-1\",unit=\"{R1}\"}}"
                ),
            ) == Some(f64::from(n))
        })
        .expect("restart seen");
    }
    let (status, reason) = health_check(&e, "linux-1", "not_crash_looping").expect("check present");
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("restarted 3 times"), "{reason}");
}

#[test]
fn no_bus_at_all_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix:path={}", dir.path().join("no-such-socket").display());
    let e = Exporter::start(BIN, &[], &[("DBUS_SYSTEM_BUS_ADDRESS", &addr)]);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            sample_value(
                m,
                "github_runner_exporter_collector_errors_total{collector=\"systemd\"}",
            )
            .is_some_and(|n| n >= 1.0)
                // The host collector's first sample done, whenever it ends.
                && sample_value(
                    m,
                    "github_runner_exporter_collector_last_success_timestamp_seconds{collector=\"host\"}",
                )
                .is_some_and(|t| t > 0.0)
        })
        .unwrap_or_else(|| panic!("failure recorded; log:\n{}", e.logs()));
    assert_eq!(success(&m), Some(0.0));
    assert!(!m.contains("github_runner_service_state{"), "{m}");
    let logs = e.logs();
    assert!(
        logs.contains("connecting to the D-Bus system bus") && logs.contains("no-such-socket"),
        "{logs}"
    );
    // The other collectors and /metrics are unaffected.
    assert_eq!(
        sample_value(
            &m,
            "github_runner_exporter_collector_success{collector=\"host\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn one_runner_label_from_the_root_the_unit_points_at() {
    // The unit's WorkingDirectory leads the runner collector to the root;
    // its .runner names the runner, and the unit's series use that name.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("srv-runner");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(
        testkit::fixtures_dir().join("runner/basic/.runner"),
        root.join(".runner"),
    )
    .unwrap();
    let fake = FakeSystemd::start([Unit::running(TRUNCATED).with_working_directory(&root)]);
    let config = format!("{NO_POLL}[runner_files]\nroot_patterns = []\n");
    let (e, _d) = exporter(&fake, &config);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| {
            state(m, "linux_runner", TRUNCATED, "active") == Some(1.0)
        })
        .unwrap_or_else(|| panic!("agentName labels the unit; metrics:\n{}", e.metrics()));
    assert!(
        !m.contains("runner=\"build-run-4821\""),
        "one label per runner, not the unit-derived one as well:\n{m}"
    );
    assert!(
        m.contains("github_runner_process_running{runner=\"linux_runner\",process=\"listener\"} 0"),
        "{m}"
    );
}

#[test]
fn check_reads_units_once_in_process() {
    let mut failed = Unit::running(GHES);
    failed.fail(1);
    let fake = FakeSystemd::start([Unit::running(R1), failed].into_iter().chain(others()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[runner_files]\nroot_patterns = []\n").unwrap();
    let arg = format!("--config.file={}", file.display());
    let addr = fake.address();
    let out = testkit::process::run(
        BIN,
        &["check", &arg, "--json"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &addr)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let check = |runner: &str| -> String {
        testkit::runner_check(&v, runner, "service_active")
            .map(|(status, _)| status)
            .unwrap_or_else(|| panic!("no service_active check for {runner}: {stdout}"))
    };
    assert_eq!(check("linux-1"), "ok");
    assert_eq!(check("ghes-2"), "fail");
    assert!(!stdout.contains("ssh.service"), "{stdout}");
    assert!(fake.calls("ListUnitsByPatterns") >= 1);
}

#[test]
fn a_unit_added_later_leads_to_its_root_without_waiting_for_a_rescan() {
    // Rescans and the timer poll are an hour apart: only the runner
    // collector waking on the systemd collector's new state finds the root.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("later-runner");
    testkit::copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
    // `svc.sh install` writes the unit's real (here truncated) name.
    std::fs::write(root.join(".service"), format!("{TRUNCATED}\n")).unwrap();
    let fake = FakeSystemd::start([Unit::running(R1)]);
    let config = format!(
        "{NO_POLL}[runner_files]\nroot_patterns = []\nlog_poll_interval = \"1h\"\nrescan_interval = \"1h\"\n"
    );
    let (e, _d) = exporter(&fake, &config);
    e.wait_metrics(Duration::from_secs(10), |m| exported_units(m).len() == 1)
        .unwrap_or_else(|| panic!("one unit; log:\n{}", e.logs()));
    let added = Instant::now();
    fake.add_unit(Unit::running(TRUNCATED).with_working_directory(&root));
    let m = e
        .wait_metrics(Duration::from_secs(5), |m| {
            m.contains("github_runner_info{runner=\"linux_runner\"")
                && state(m, "linux_runner", TRUNCATED, "active") == Some(1.0)
        })
        .unwrap_or_else(|| panic!("the new unit's root is read; log:\n{}", e.logs()));
    eprintln!("new unit's root read after {:?}", added.elapsed());
    assert_eq!(
        sample_value(&m, "github_runner_job_running{runner=\"linux_runner\"}"),
        Some(1.0)
    );
}
