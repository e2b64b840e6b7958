//! The systemd collector against a REAL systemd manager: `systemd --user`
//! (Debian 12's systemd 252) in a mount namespace and cgroup of its own,
//! with its socket-activated user bus standing in for the system bus
//! (`DBUS_SYSTEM_BUS_ADDRESS`). See `testkit/src/systemd_manager.rs` for
//! how it runs and what systemd does when killed or re-executed.
//!
//! Needs root, `unshare`/`nsenter` (util-linux) and the Debian packages
//! systemd and dbus-user-session (`scripts/install-test-deps.sh`); fails
//! loudly without them.
//!
//! Timings are printed (`cargo test --test it systemd_manager:: -- --nocapture`)
//! and asserted only against generous deadlines.

use super::systemd::{exporter_on, state, success};
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::{sample_value, Exporter, RunnerOptions, RunnerUnit, SystemdManager};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

const R1: &str = "actions.runner.acme-app.r1.service";
const R2: &str = "actions.runner.acme-app.r2.service";

/// Resyncs rarely: anything seen within a test came from a signal (or a
/// reconnect). No host collector, no GitHub, no root search.
const LIVE: &str = "[host]\nenabled = false\n[systemd]\nresync_interval = \"1h\"\n\
                    [runner_files]\nroot_patterns = []\n[github]\nscope = \"off\"\n";

fn manager() -> SystemdManager {
    SystemdManager::start().unwrap_or_else(|e| {
        panic!(
            "a real systemd --user must start for these tests (root, util-linux, systemd, \
             dbus-user-session: scripts/install-test-deps.sh): {e}"
        )
    })
}

/// A runner unit `unit` with its root under `dir`, installed as the
/// runner's `svc.sh install` does: unit file, daemon-reload, enable (not
/// started).
///
/// Enabled matters: systemd unloads a unit that is inactive and that
/// nothing references, so a stopped unit that is not enabled drops out of
/// `ListUnitsByPatterns` (UnitRemoved) and the exporter stops reporting
/// it, instead of reporting it inactive.
fn runner(m: &SystemdManager, dir: &Path, unit: &str, opts: &RunnerOptions) -> RunnerUnit {
    let r = m
        .runner_unit_with(unit, &dir.join(unit), opts)
        .expect("write the runner unit");
    m.daemon_reload().expect("daemon-reload");
    m.enable(unit).expect("enable the runner unit");
    r
}

/// Starts the exporter on the manager's bus with `config` (TOML).
fn exporter(m: &SystemdManager, config: &str) -> (Exporter, tempfile::TempDir) {
    exporter_on(&m.address(), config)
}

fn listener(m: &str, runner: &str) -> Option<f64> {
    sample_value(
        m,
        &format!("github_runner_process_running{{runner=\"{runner}\",process=\"listener\"}}"),
    )
}

/// The one-shot `check --json` (collecting in-process, as when the daemon
/// itself is down) on the manager's bus: exit code and report.
fn check(m: &SystemdManager, config: &str) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config).expect("write the config");
    let arg = format!("--config.file={}", file.display());
    let addr = m.address();
    let out = testkit::process::run(
        BIN,
        &["check", "--json", &arg],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &addr)],
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json prints a report ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The status of check `id` of runner `runner` in a report.
fn status_in(report: &serde_json::Value, runner: &str, id: &str) -> Option<String> {
    testkit::runner_check(report, runner, id).map(|(status, _)| status)
}

/// `/health?runner=NAME` as JSON: status code and report.
fn health(e: &Exporter, runner: &str) -> (u16, serde_json::Value) {
    let r = e.get_with(
        "GET",
        &format!("/health?runner={runner}"),
        &[("Accept", "application/json")],
    );
    (
        r.status,
        serde_json::from_str(&r.body()).unwrap_or(serde_json::Value::Null),
    )
}

/// Waits until `/health?runner=NAME` answers `code` with `cause` (None:
/// no diagnosis).
fn wait_health(
    e: &Exporter,
    runner: &str,
    code: u16,
    cause: Option<&str>,
    timeout: Duration,
) -> serde_json::Value {
    testkit::wait_for(timeout, || {
        let (c, body) = health(e, runner);
        let got = body["runners"][0]["diagnosis"]["cause"].as_str();
        (c == code && got == cause).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "/health never answered {code} with cause {cause:?}; last: {:#}
log:
{}",
            health(e, runner).1,
            e.logs()
        )
    })
}

/// Waits for `f` on the exporter's metrics; panics with the logs of both
/// sides when it does not come.
fn wait(
    e: &Exporter,
    m: &SystemdManager,
    what: &str,
    timeout: Duration,
    f: impl Fn(&str) -> bool,
) -> String {
    e.wait_metrics(timeout, f).unwrap_or_else(|| {
        panic!(
            "{what}: not within {timeout:?}\nmetrics:\n{}\nexporter log:\n{}\nmanager log:\n{}",
            e.metrics(),
            e.logs(),
            m.manager_log()
        )
    })
}

#[test]
fn a_runner_unit_started_and_stopped_shows_live() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, LIVE);
    let first = wait(&e, &m, "the running unit", Duration::from_secs(10), |s| {
        state(s, "r1", R1, "active") == Some(1.0)
    });
    assert_eq!(success(&first), Some(1.0));
    assert!(
        first.contains(&format!(
            "github_runner_service_info{{runner=\"r1\",unit=\"{R1}\",load_state=\"loaded\",sub_state=\"running\""
        )),
        "{first}"
    );

    // Observed: stop and start each shown after 0.12-0.14 s (systemd's
    // PropertiesChanged, the exporter's 100 ms debounce and a resync).
    for round in 0..2 {
        let t0 = Instant::now();
        m.stop_unit(R1).expect("stop the runner unit");
        let s = wait(&e, &m, "the stopped unit", Duration::from_secs(5), |s| {
            state(s, "r1", R1, "inactive") == Some(1.0)
        });
        eprintln!("round {round}: stop shown after {:?}", t0.elapsed());
        assert_eq!(state(&s, "r1", R1, "active"), Some(0.0), "{s}");
        assert!(s.contains("sub_state=\"dead\""), "{s}");

        let t0 = Instant::now();
        m.start_unit(R1).expect("start the runner unit");
        wait(&e, &m, "the started unit", Duration::from_secs(5), |s| {
            state(s, "r1", R1, "active") == Some(1.0)
        });
        eprintln!("round {round}: start shown after {:?}", t0.elapsed());
    }
    // Real timestamps: ActiveEnterTimestamp of the last start.
    let s = e.metrics();
    let since = sample_value(
        &s,
        &format!(
            "github_runner_service_active_since_timestamp_seconds{{runner=\"r1\",unit=\"{R1}\"}}"
        ),
    )
    .expect("active since");
    // systemd's own value, in seconds (`--timestamp=unix` prints `@<s>`).
    let systemd_since: f64 = m
        .systemctl(&[
            "show",
            "-p",
            "ActiveEnterTimestamp",
            "--value",
            "--timestamp=unix",
            R1,
        ])
        .ok()
        .and_then(|v| v.trim().trim_start_matches('@').parse().ok())
        .expect("systemd's ActiveEnterTimestamp");
    assert!(
        (since - systemd_since).abs() < 1.0,
        "{since} vs systemd's {systemd_since}"
    );
}

#[test]
fn daemon_reload_keeps_the_series() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, LIVE);
    wait(&e, &m, "the running unit", Duration::from_secs(10), |s| {
        state(s, "r1", R1, "active") == Some(1.0)
    });
    let errors = |s: &str| {
        sample_value(
            s,
            "github_runner_exporter_collector_errors_total{collector=\"systemd\"}",
        )
    };
    let errors_before = errors(&e.metrics());

    // A reload makes systemd send Reloading(true), UnitRemoved and UnitNew
    // for every unit, then Reloading(false). Scrape throughout: the unit
    // never leaves.
    let reloads = 3;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let scraper = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let mut scrapes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = e.metrics();
                assert_eq!(
                    state(&s, "r1", R1, "active"),
                    Some(1.0),
                    "the series left during a daemon-reload:\n{s}"
                );
                assert_eq!(success(&s), Some(1.0), "{s}");
                scrapes += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            scrapes
        });
        for _ in 0..reloads {
            m.daemon_reload().expect("daemon-reload");
            std::thread::sleep(Duration::from_millis(300));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().expect("the scraper thread")
    });
    assert!(scraper > 10, "{scraper} scrapes");
    assert_eq!(errors(&e.metrics()), errors_before, "{}", e.logs());

    // Still subscribed: a change after the reloads shows live.
    let t0 = Instant::now();
    m.stop_unit(R1).expect("stop the runner unit");
    wait(
        &e,
        &m,
        "the stop after reloads",
        Duration::from_secs(5),
        |s| state(s, "r1", R1, "inactive") == Some(1.0),
    );
    eprintln!(
        "stop after {reloads} reloads shown after {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_unit_added_later_is_found() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, LIVE);
    wait(&e, &m, "the first unit", Duration::from_secs(10), |s| {
        state(s, "r1", R1, "active") == Some(1.0)
    });

    // As `svc.sh install` then `svc.sh start` do: unit file, reload, start.
    let t0 = Instant::now();
    runner(&m, t.path(), R2, &RunnerOptions::default());
    m.start_unit(R2).expect("start the new unit");
    let s = wait(&e, &m, "the new unit", Duration::from_secs(5), |s| {
        state(s, "r2", R2, "active") == Some(1.0)
    });
    // Observed: 0.27-0.4 s from writing the unit file (1.0 s once, with
    // the machine busy), daemon-reload and enable included.
    eprintln!("unit added later shown after {:?}", t0.elapsed());
    assert_eq!(state(&s, "r1", R1, "active"), Some(1.0), "{s}");

    // And `svc.sh uninstall`: disable --now, remove the file, reload.
    let t0 = Instant::now();
    m.disable_now(R2).expect("disable --now");
    m.remove_unit(R2).expect("remove the unit file");
    m.daemon_reload().expect("daemon-reload");
    wait(
        &e,
        &m,
        "the removed unit gone",
        Duration::from_secs(5),
        |s| !s.contains(R2) && state(s, "r1", R1, "active") == Some(1.0),
    );
    eprintln!("uninstalled unit gone after {:?}", t0.elapsed());
}

#[test]
fn the_listener_in_the_units_cgroup_is_found() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    let r = runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    // The listener runs as a child of runsvc.sh in the unit's cgroup.
    let cgroup = m.show(R1, "ControlGroup").expect("ControlGroup");
    assert_eq!(
        cgroup,
        format!("{}/app.slice/{R1}", m.cgroup()),
        "the unit has a real cgroup"
    );
    let found = testkit::wait_for(Duration::from_secs(5), || {
        m.processes_named("Runner.Listener")
            .into_iter()
            .find(|p| p.cgroup == cgroup)
    })
    .expect("Runner.Listener runs in the unit's cgroup");
    let main_pid: u32 = m
        .show(R1, "MainPID")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("MainPID");
    assert_ne!(found.pid, main_pid, "the main process is runsvc.sh");

    let (e, _d) = exporter(&m, LIVE);
    let s = wait(&e, &m, "the listener", Duration::from_secs(10), |s| {
        listener(s, "r1") == Some(1.0)
    });
    assert_eq!(
        sample_value(
            &s,
            "github_runner_process_running{runner=\"r1\",process=\"worker\"}"
        ),
        Some(0.0),
        "{s}"
    );
    assert!(
        sample_value(
            &s,
            "github_runner_process_resident_memory_bytes{runner=\"r1\",process=\"listener\"}"
        )
        .is_some_and(|b| b > 0.0),
        "{s}"
    );
    // The runner's log, found through the unit's WorkingDirectory.
    let lines = r.log_lines().expect("the runner's log");
    assert!(
        lines.iter().any(|l| l.ends_with(": Listening for Jobs")),
        "{lines:?}"
    );
    wait(&e, &m, "the log read", Duration::from_secs(10), |s| {
        sample_value(s, "github_runner_listener_connected{runner=\"r1\"}") == Some(1.0)
    });

    // Stopping: SIGTERM to runsvc.sh (KillMode=process), which passes it
    // on to the listener.
    m.stop_unit(R1).expect("stop the runner unit");
    assert!(m.processes_named("Runner.Listener").is_empty());
    wait(&e, &m, "the listener gone", Duration::from_secs(5), |s| {
        listener(s, "r1") == Some(0.0)
    });
}

#[test]
fn a_crash_loop_is_counted() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    let opts = RunnerOptions {
        restart: "always".into(),
        restart_sec: Duration::from_millis(200),
        crash: true,
        ..RunnerOptions::default()
    };
    let r = runner(&m, t.path(), R1, &opts);
    let config = format!("{LIVE}[health]\ncrashloop_restarts = 3\ncrashloop_window = \"15m\"\n");
    let (e, _d) = exporter(&m, &config);
    wait(&e, &m, "the loaded unit", Duration::from_secs(10), |s| {
        success(s) == Some(1.0)
    });
    m.start_unit(R1).expect("start the runner unit");
    let restarts = |s: &str| {
        sample_value(
            s,
            &format!("github_runner_service_restarts_total{{runner=\"r1\",unit=\"{R1}\"}}"),
        )
    };
    let s = wait(&e, &m, "restarts counted", Duration::from_secs(10), |s| {
        restarts(s).is_some_and(|n| n >= 4.0)
    });
    assert!(
        s.contains(&format!(
            "github_runner_service_main_exit_status{{runner=\"r1\",unit=\"{R1}\"}} 1"
        )),
        "{s}"
    );
    let n: f64 = m
        .show(R1, "NRestarts")
        .ok()
        .and_then(|n| n.parse().ok())
        .expect("NRestarts");
    assert!(n >= 4.0, "systemd counted {n}");
    let health = testkit::wait_for(Duration::from_secs(5), || {
        let r = e.get_with(
            "GET",
            "/health?runner=r1",
            &[("Accept", "application/json")],
        );
        let v: serde_json::Value = serde_json::from_str(&r.body()).ok()?;
        testkit::health_check(&v, "not_crash_looping").filter(|(s, _)| s == "fail")
    });
    let (_, reason) = health.unwrap_or_else(|| panic!("crash loop in /health; log:\n{}", e.logs()));
    assert!(reason.contains("restarted"), "{reason}");
    let lines = r.log_lines().expect("the runner's log");
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("Runner execution has finished with return code 1"))
            .count()
            >= 4,
        "{lines:?}"
    );

    // Fixed: the next restart runs the listener and stays up.
    r.set_crashing(false).expect("stop crashing");
    wait(
        &e,
        &m,
        "the runner up again",
        Duration::from_secs(10),
        |s| state(s, "r1", R1, "active") == Some(1.0) && listener(s, "r1") == Some(1.0),
    );
}

#[test]
fn the_manager_killed_and_restarted_is_found_again() {
    let mut m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, LIVE);
    wait(&e, &m, "the running unit", Duration::from_secs(10), |s| {
        state(s, "r1", R1, "active") == Some(1.0)
    });

    let killed = Instant::now();
    m.kill_manager().expect("SIGKILL the manager");
    // The bus lives on; the exporter hears systemd leave it and holds the
    // last state for `[systemd] reexec_grace` (5 s: a re-exec would have
    // come back by then), then fails: the units are dropped.
    wait(
        &e,
        &m,
        "the manager's death",
        Duration::from_secs(10),
        |s| success(s) == Some(0.0),
    );
    // Observed: ~5.2 s (the grace, then one failed reconnect).
    eprintln!("manager's death shown after {:?}", killed.elapsed());
    // The unit's processes survive (KillMode=process or not: nothing kills
    // them).
    assert_eq!(m.processes_named("Runner.Listener").len(), 1);

    if let Some(rest) = Duration::from_secs(3).checked_sub(killed.elapsed()) {
        std::thread::sleep(rest);
    }
    let restarted = Instant::now();
    m.restart_manager().expect("start the manager again");
    eprintln!("manager up again after {:?}", restarted.elapsed());
    // The enabled unit is started again next to the survivor.
    assert_eq!(m.show(R1, "ActiveState").expect("ActiveState"), "active");
    let s = wait(&e, &m, "the exporter back", Duration::from_secs(40), |s| {
        success(s) == Some(1.0) && state(s, "r1", R1, "active") == Some(1.0)
    });
    // Observed: about 1 s after the restart: the exporter tries a new
    // connection every second (asking the bus whether systemd owns its
    // name first, so a try on the orphaned bus fails at once).
    eprintln!(
        "exporter reconnected {:?} after the restart ({:?} after the kill)",
        restarted.elapsed(),
        killed.elapsed()
    );
    assert!(e.logs().contains("collector recovered"), "{}", e.logs());
    assert_eq!(
        sample_value(
            &s,
            &format!("github_runner_service_restarts_total{{runner=\"r1\",unit=\"{R1}\"}}")
        ),
        Some(0.0),
        "a new manager counts from 0: {s}"
    );

    // Subscribed on the new bus: changes are live again.
    let t0 = Instant::now();
    m.stop_unit(R1).expect("stop the runner unit");
    wait(
        &e,
        &m,
        "a stop after the restart",
        Duration::from_secs(5),
        |s| state(s, "r1", R1, "inactive") == Some(1.0),
    );
    eprintln!("stop after the restart shown after {:?}", t0.elapsed());
}

#[test]
fn daemon_reexec_changes_the_name_owner_and_the_exporter_follows() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, LIVE);
    wait(&e, &m, "the running unit", Duration::from_secs(10), |s| {
        state(s, "r1", R1, "active") == Some(1.0)
    });
    let watch = m.watch_bus().expect("watch the bus");
    let pid = m.name_owner_pid().expect("the owner's pid");
    let listeners = m
        .wait_processes_named("Runner.Listener", 1, Duration::from_secs(5))
        .expect("the listener runs");

    let t0 = Instant::now();
    m.daemon_reexec().expect("daemon-reexec");
    eprintln!("daemon-reexec returned after {:?}", t0.elapsed());
    watch
        .wait_event(Duration::from_secs(5), |ev| {
            ev.member == "Reloading" && ev.args == ["false"]
        })
        .unwrap_or_else(|| panic!("Reloading(false) after reexec: {:?}", watch.events()));
    let events: Vec<_> = watch
        .events()
        .into_iter()
        .filter(|ev| {
            ev.member == "NameOwnerChanged"
                || ev.member == "Reloading"
                || (ev.member == "UnitRemoved" && ev.args == [R1])
        })
        .collect();
    let seen: Vec<String> = events
        .iter()
        .map(|ev| format!("{:?} {}{:?}", ev.at - t0, ev.member, ev.args))
        .collect();
    // Observed: Reloading(true) +10 ms, UnitRemoved of every unit at once,
    // the owner change +120-150 ms (up to ~0.9 s on a loaded machine),
    // Reloading(false) a few ms later.
    eprintln!("daemon-reexec on the bus: {seen:?}");
    // The old manager says it reloads and drops every unit (the runner's
    // too); the name changes hands, in one NameOwnerChanged (old -> new,
    // as seen here) or in two (old -> "", "" -> new); the new manager, which
    // kept the subscription, says it is done.
    let members: Vec<&str> = events.iter().map(|ev| ev.member.as_str()).collect();
    assert_eq!(members.first(), Some(&"Reloading"), "{seen:?}");
    assert_eq!(events[0].args, ["true"], "{seen:?}");
    assert_eq!(members.get(1), Some(&"UnitRemoved"), "{seen:?}");
    assert_eq!(members.last(), Some(&"Reloading"), "{seen:?}");
    let owners: Vec<&[String]> = events
        .iter()
        .filter(|ev| ev.member == "NameOwnerChanged")
        .map(|ev| ev.args.as_slice())
        .collect();
    match owners.as_slice() {
        [[old, new]] => assert!(!old.is_empty() && !new.is_empty() && old != new, "{seen:?}"),
        [[old, gap], [gap2, new]] => assert!(
            !old.is_empty() && gap.is_empty() && gap2.is_empty() && !new.is_empty(),
            "{seen:?}"
        ),
        _ => panic!("one owner change: {seen:?}"),
    }
    assert!(watch.ended().is_none(), "the bus stays");
    // Same process (exec), same units and processes.
    assert_eq!(m.name_owner_pid().expect("the owner's pid"), pid);
    assert_eq!(m.processes_named("Runner.Listener"), listeners);
    assert_eq!(m.show(R1, "ActiveState").expect("ActiveState"), "active");

    // The exporter waits out the re-exec (the signals between the two
    // Reloading are ignored) and stays live: no failed run.
    let t0 = Instant::now();
    m.stop_unit(R1).expect("stop the runner unit");
    wait(
        &e,
        &m,
        "a stop after the reexec",
        Duration::from_secs(5),
        |s| state(s, "r1", R1, "inactive") == Some(1.0) && success(s) == Some(1.0),
    );
    eprintln!("stop after the reexec shown after {:?}", t0.elapsed());
    assert_eq!(
        e.logs().matches("collector failed").count(),
        0,
        "{}",
        e.logs()
    );
}

#[test]
fn a_killed_manager_leaves_its_bus_and_units_running() {
    let mut m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    runner(&m, t.path(), R1, &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    m.wait_processes_named("Runner.Listener", 1, Duration::from_secs(5))
        .expect("the listener runs");
    let watch = m.watch_bus().expect("watch the bus");
    let before = m.processes();
    let bus = before
        .iter()
        .find(|p| p.comm == "dbus-daemon")
        .cloned()
        .expect("the bus daemon in the manager's cgroup");

    let t0 = Instant::now();
    m.kill_manager().expect("SIGKILL the manager");
    let gone = watch
        .wait_event(Duration::from_secs(5), |ev| {
            ev.member == "NameOwnerChanged" && ev.args.get(1).is_some_and(String::is_empty)
        })
        .unwrap_or_else(|| panic!("systemd leaves the bus: {:?}", watch.events()));
    eprintln!("NameOwnerChanged(old, \"\") after {:?}", gone.at - t0);
    let after = m.processes();
    // (Long-lived ones only: runsvc.sh runs `date` for its log lines.)
    let lasting = ["dbus-daemon", "runsvc.sh", "Runner.Listener"];
    let before: Vec<_> = before
        .into_iter()
        .filter(|p| lasting.contains(&p.comm.as_str()))
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");
    for p in &before {
        assert!(
            after.iter().any(|a| a.pid == p.pid),
            "{p:?} survives the manager: {after:?}"
        );
    }
    assert_eq!(m.name_owner_pid().expect("the bus answers"), None);

    m.restart_manager().expect("start the manager again");
    // A new bus on the same path; the old one is orphaned, its clients
    // stay connected to it and never hear of the new manager.
    let now = m.processes();
    let buses: Vec<_> = now.iter().filter(|p| p.comm == "dbus-daemon").collect();
    assert_eq!(buses.len(), 2, "{now:?}");
    assert!(buses.iter().any(|p| p.pid == bus.pid));
    assert!(watch.ended().is_none());
    assert_eq!(
        watch
            .events()
            .iter()
            .filter(|ev| ev.member == "NameOwnerChanged")
            .count(),
        1,
        "{:?}",
        watch.events()
    );
    // The enabled unit was started again: two listeners in one cgroup.
    let listeners = m
        .wait_processes_named("Runner.Listener", 2, Duration::from_secs(5))
        .expect("the survivor and the new listener");
    assert_eq!(listeners[0].cgroup, listeners[1].cgroup);
    assert_eq!(m.show(R1, "NRestarts").expect("NRestarts"), "0");
}

// ------------------------------------------------------------- the gate
//
// The gate on a real manager: it says no when the runner cannot take a
// deploy, and when it cannot tell. Each scenario also runs the one-shot
// `check` (the command for when the daemon itself is down).

/// LIVE, plus thresholds that keep the test machine's own disk out of the
/// verdict, a short crash-loop recovery and a short re-exec grace.
const GATE: &str =
    "[host]\nenabled = false\n[systemd]\nresync_interval = \"1h\"\nreexec_grace = \"1s\"\n\
                    [runner_files]\nroot_patterns = []\n[github]\nscope = \"off\"\n\
                    [health]\ndisk_free_warn_ratio = 0.0002\ndisk_free_fail_ratio = 0.0001\n\
                    crashloop_restarts = 3\ncrashloop_clear_after = \"3s\"\n";

/// A registered runner: the unit of [`runner`] plus the `.runner` that
/// `config.sh` writes (agentName `name`), so that every check can pass.
fn registered(
    m: &SystemdManager,
    dir: &Path,
    unit: &str,
    name: &str,
    opts: &RunnerOptions,
) -> RunnerUnit {
    let r = runner(m, dir, unit, opts);
    std::fs::write(
        r.root.join(".runner"),
        format!(
            "{{\"agentId\": 7, \"agentName\": \"{name}\", \"poolName\": \"Default\", \
             \"gitHubUrl\": \"https://github.com/acme/app\", \"workFolder\": \"_work\"}}"
        ),
    )
    .expect("write .runner");
    r
}

#[test]
fn a_stopped_disabled_unit_reports_inactive_and_closes_the_gate() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    registered(&m, t.path(), R1, "r1", &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, GATE);
    wait_health(&e, "r1", 200, None, Duration::from_secs(15));
    let (code, report) = check(&m, GATE);
    assert_eq!(code, 0, "{report:#}");

    // `disable --now`: stopped, and unloaded by systemd, so it drops out
    // of ListUnitsByPatterns. It was seen with a working directory: the
    // exporter loads it by name and reports it inactive.
    let t0 = Instant::now();
    m.disable_now(R1).expect("disable --now");
    let s = wait(&e, &m, "the disabled unit", Duration::from_secs(10), |s| {
        state(s, "r1", R1, "inactive") == Some(1.0)
    });
    eprintln!("disable --now shown after {:?}", t0.elapsed());
    assert_eq!(state(&s, "r1", R1, "active"), Some(0.0), "{s}");
    let body = wait_health(
        &e,
        "r1",
        503,
        Some("service_stopped"),
        Duration::from_secs(5),
    );
    assert_eq!(
        status_in(&body, "r1", "service_active").as_deref(),
        Some("fail")
    );
    assert!(
        s.contains("github_runner_healthy{runner=\"r1\"} 0"),
        "the metric follows the gate: {s}"
    );
    // The one-shot check finds it through the root's .service.
    let (code, report) = check(
        &m,
        &format!(
            "{GATE}[[runner]]\nroot = \"{}\"\n",
            t.path().join(R1).display()
        ),
    );
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        status_in(&report, "r1", "service_active").as_deref(),
        Some("fail"),
        "{report:#}"
    );
}

#[test]
fn a_named_unit_that_does_not_exist_has_its_own_cause() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    // A root whose .service names a unit that was never installed (the
    // service uninstalled, the root copied from another host).
    let ghost = "actions.runner.acme-app.ghost.service";
    let r = registered(&m, t.path(), ghost, "ghost", &RunnerOptions::default());
    m.disable_now(ghost).expect("disable");
    m.remove_unit(ghost).expect("remove the unit file");
    m.daemon_reload().expect("daemon-reload");
    let config = format!("{GATE}[[runner]]\nroot = \"{}\"\n", r.root.display());
    let (e, _d) = exporter(&m, &config);
    let body = wait_health(
        &e,
        "ghost",
        503,
        Some("unit_not_found"),
        Duration::from_secs(15),
    );
    let (_, reason) = testkit::health_check(&body, "service_active").unwrap_or_default();
    assert!(
        reason.contains("does not exist") && reason.contains(".service"),
        "{reason}"
    );
    let s = e.metrics();
    assert!(s.contains("load_state=\"not-found\""), "{s}");
    let (code, report) = check(&m, &config);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        report["runners"][0]["diagnosis"]["cause"], "unit_not_found",
        "{report:#}"
    );
}

#[test]
fn a_crash_loop_is_seen_by_check_and_clears_after_the_fix() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    let opts = RunnerOptions {
        restart: "always".into(),
        restart_sec: Duration::from_millis(200),
        crash: true,
        ..RunnerOptions::default()
    };
    let r = registered(&m, t.path(), R1, "r1", &opts);
    m.start_unit(R1).expect("start the runner unit");
    m.wait_show(R1, "NRestarts", Duration::from_secs(10), |n| {
        n.parse::<u32>().is_ok_and(|n| n >= 4)
    })
    .expect("systemd restarts the crashing runner");

    // The one-shot check, started in the middle of the loop: it sees
    // NRestarts, a unit that never stays active, and says so.
    let (code, report) = check(&m, GATE);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        status_in(&report, "r1", "not_crash_looping").as_deref(),
        Some("fail"),
        "{report:#}"
    );
    assert_eq!(report["runners"][0]["diagnosis"]["cause"], "crash_looping");

    let (e, _d) = exporter(&m, GATE);
    wait_health(
        &e,
        "r1",
        503,
        Some("crash_looping"),
        Duration::from_secs(15),
    );
    let restarts = |s: &str| {
        sample_value(
            s,
            &format!("github_runner_service_restarts_total{{runner=\"r1\",unit=\"{R1}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let before = restarts(&e.metrics());
    assert!(before >= 4.0, "{before}");

    // The documented fix: fix the cause, reset-failed, restart.
    r.set_crashing(false).expect("fix the runner");
    m.reset_failed(R1).expect("reset-failed");
    m.restart_unit(R1).expect("restart");
    let fixed = Instant::now();
    wait(
        &e,
        &m,
        "NRestarts reset, unit up",
        Duration::from_secs(10),
        |s| state(s, "r1", R1, "active") == Some(1.0) && listener(s, "r1") == Some(1.0),
    );
    assert_eq!(m.show(R1, "NRestarts").expect("NRestarts"), "0");
    // A counter never goes down.
    let after = restarts(&e.metrics());
    assert!(
        after >= before,
        "restarts_total went from {before} to {after}"
    );
    // Still failing until the unit has stayed active for
    // crashloop_clear_after (3 s), then healthy, long before the end of
    // the 15 m window.
    let (code, _) = health(&e, "r1");
    assert_eq!(code, 503, "cleared before the unit proved stable");
    wait_health(&e, "r1", 200, None, Duration::from_secs(15));
    eprintln!(
        "crash-loop verdict cleared {:?} after the fix",
        fixed.elapsed()
    );
    // (Counted from the restart's return, a little after systemd's own
    // ActiveEnterTimestamp.)
    assert!(
        fixed.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        fixed.elapsed()
    );
    let (code, report) = check(&m, GATE);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn daemon_reexec_is_neither_an_error_nor_a_gap() {
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    registered(&m, t.path(), R1, "r1", &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, GATE);
    wait_health(&e, "r1", 200, None, Duration::from_secs(15));
    let errors = |s: &str| {
        sample_value(
            s,
            "github_runner_exporter_collector_errors_total{collector=\"systemd\"}",
        )
    };
    let errors_before = errors(&e.metrics());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (scrapes, gaps) = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let (mut scrapes, mut gaps) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = e.metrics();
                if state(&s, "r1", R1, "active") != Some(1.0) || success(&s) != Some(1.0) {
                    gaps.push(s);
                }
                let (code, _) = health(&e, "r1");
                if code != 200 {
                    gaps.push(format!("/health {code}"));
                }
                scrapes += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            (scrapes, gaps)
        });
        for _ in 0..3 {
            let t0 = Instant::now();
            m.daemon_reexec().expect("daemon-reexec");
            eprintln!("daemon-reexec took {:?}", t0.elapsed());
            std::thread::sleep(Duration::from_millis(700));
            m.daemon_reload().expect("daemon-reload");
            std::thread::sleep(Duration::from_millis(300));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().expect("the scraper thread")
    });
    eprintln!(
        "{scrapes} scrapes through 3 re-execs and 3 reloads, {} gaps",
        gaps.len()
    );
    assert!(scrapes > 20, "{scrapes}");
    assert!(
        gaps.is_empty(),
        "gaps:\n{}\nlog:\n{}",
        gaps.join("\n---\n"),
        e.logs()
    );
    assert_eq!(errors(&e.metrics()), errors_before, "{}", e.logs());
    // Still live after them.
    m.stop_unit(R1).expect("stop");
    wait(
        &e,
        &m,
        "a stop after the re-execs",
        Duration::from_secs(5),
        |s| state(s, "r1", R1, "inactive") == Some(1.0),
    );
}

/// Kills the manager, checks that the gate closes (daemon and one-shot),
/// restarts it after `outage` and returns how long the exporter took to
/// see it again after the restart.
fn outage(outage: Duration) -> Duration {
    let mut m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    registered(&m, t.path(), R1, "r1", &RunnerOptions::default());
    m.start_unit(R1).expect("start the runner unit");
    let (e, _d) = exporter(&m, GATE);
    wait_health(&e, "r1", 200, None, Duration::from_secs(15));

    let killed = Instant::now();
    m.kill_manager().expect("SIGKILL the manager");
    // Held for reexec_grace (1 s), then unknown: the gate closes.
    let body = wait_health(&e, "r1", 503, Some("data_stale"), Duration::from_secs(10));
    eprintln!("gate closed {:?} after the kill", killed.elapsed());
    let (status, reason) = testkit::health_check(&body, "service_active").unwrap_or_default();
    assert_eq!(status, "unknown", "{body:#}");
    assert!(
        reason.contains("systemd collector") && reason.contains("failing"),
        "{reason}"
    );
    let (code, report) = check(&m, GATE);
    assert_eq!(code, 2, "{report:#}");

    if let Some(rest) = outage.checked_sub(killed.elapsed()) {
        std::thread::sleep(rest);
    }
    m.restart_manager().expect("start the manager again");
    let restarted = Instant::now();
    wait(&e, &m, "the exporter back", Duration::from_secs(30), |s| {
        success(s) == Some(1.0) && state(s, "r1", R1, "active") == Some(1.0)
    });
    let back = restarted.elapsed();
    wait_health(&e, "r1", 200, None, Duration::from_secs(10));
    back
}

#[test]
fn after_a_3s_outage_systemd_is_found_again_within_2s() {
    let back = outage(Duration::from_secs(3));
    eprintln!("reconnected {back:?} after systemd came back (3 s outage)");
    assert!(back < Duration::from_secs(4), "{back:?}");
}

#[test]
fn after_a_40s_outage_systemd_is_found_again_within_2s() {
    let back = outage(Duration::from_secs(40));
    eprintln!("reconnected {back:?} after systemd came back (40 s outage)");
    assert!(back < Duration::from_secs(4), "{back:?}");
}

// ------------------------------------------------------------- lifecycle

/// A stand-in for Docker's unit: a sleeper, as a user unit.
const DOCKER_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine (stand-in)\n\n\
                           [Service]\nExecStart=/bin/sleep infinity\n\n\
                           [Install]\nWantedBy=default.target\n";

#[test]
fn docker_service_is_followed_live_apart_from_the_runners_and_gates_a_runner_that_runs_containers()
{
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    m.install_unit("docker.service", DOCKER_UNIT)
        .expect("install docker.service");
    let r = registered(&m, t.path(), R1, "r1", &RunnerOptions::default());
    m.enable("docker.service").expect("enable docker.service");
    // The runner has run a container job: its Worker log says so.
    let worker = "Worker_20260105-141002-utc.log";
    std::fs::copy(
        testkit::fixtures_dir()
            .join("runner/docker-denied/_diag")
            .join(worker),
        r.root.join("_diag").join(worker),
    )
    .expect("copy the Worker log");
    // A socket the runner's user can use: in a user manager the unit has
    // no User=, so the user is the owner of the runner root (root here).
    let socket = t.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind a socket"));
    m.start_unit("docker.service")
        .expect("start docker.service");
    m.start_unit(R1).expect("start the runner unit");
    let config = format!(
        "{GATE}[docker]\nsocket = \"{}\"\n[[runner]]\nroot = \"{}\"\n",
        socket.display(),
        r.root.display()
    );
    let (e, _d) = exporter(&m, &config);
    let dep = |s: &str, state: &str| {
        sample_value(
            s,
            &format!("github_runner_dependency_state{{unit=\"docker.service\",state=\"{state}\"}}"),
        )
    };
    let s = wait(
        &e,
        &m,
        "docker.service active",
        Duration::from_secs(15),
        |s| dep(s, "active") == Some(1.0),
    );
    // Not a runner: no runner series for it, one systemd target.
    assert!(
        !s.contains("github_runner_service_state{runner=\"docker\""),
        "{s}"
    );
    assert!(
        !s.contains("unit=\"containerd.service\""),
        "not installed: {s}"
    );
    assert_eq!(
        sample_value(
            &s,
            "github_runner_exporter_collector_targets{collector=\"systemd\"}"
        ),
        Some(1.0)
    );
    let body = wait_health(&e, "r1", 200, None, Duration::from_secs(15));
    assert_eq!(
        status_in(&body, "r1", "docker_available").as_deref(),
        Some("ok"),
        "{body:#}"
    );

    // Docker stops: seen from systemd's signal (resync_interval is 1h),
    // and the gate closes for the runner that needs it.
    let t0 = Instant::now();
    m.stop_unit("docker.service").expect("stop docker.service");
    let s = wait(
        &e,
        &m,
        "docker.service inactive",
        Duration::from_secs(10),
        |s| dep(s, "inactive") == Some(1.0),
    );
    eprintln!("docker.service stop shown after {:?}", t0.elapsed());
    assert_eq!(
        sample_value(&s, "github_runner_docker_usable{runner=\"r1\"}"),
        Some(0.0),
        "{s}"
    );
    assert_eq!(
        sample_value(&s, "github_runner_docker_required{runner=\"r1\"}"),
        Some(1.0)
    );
    let body = wait_health(
        &e,
        "r1",
        503,
        Some("docker_unavailable"),
        Duration::from_secs(5),
    );
    let (_, reason) = testkit::health_check(&body, "docker_available").unwrap_or_default();
    assert!(
        reason.contains("docker.service is inactive (dead)"),
        "{reason}"
    );
    // The service itself is fine.
    assert_eq!(
        status_in(&body, "r1", "service_active").as_deref(),
        Some("ok")
    );
    let (code, report) = check(&m, &config);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        report["runners"][0]["diagnosis"]["cause"],
        "docker_unavailable"
    );

    m.start_unit("docker.service")
        .expect("start docker.service");
    wait_health(&e, "r1", 200, None, Duration::from_secs(10));
}

/// `runsvc.sh` of a runner GitHub refuses for its version: the refusal as
/// the listener writes it (the 403, the console echo, the traced
/// exception; no version line, no return-code line), then exit 1.
const DEPRECATED_RUNSVC: &str = r#"#!/bin/bash
cd "$(dirname "$0")"
log="_diag/Runner_$(date -u +%Y%m%d-%H%M%S)-utc.log"
stamp() { date -u '+%Y-%m-%d %H:%M:%SZ'; }
{
printf '[%s ERR  GitHubActionsService] GET request to https://pipelines.example/_apis/distributedtask/pools/1/messages?sessionId=1&status=Online&runnerVersion=2.317.0&os=Linux&architecture=X64&disableUpdate=true failed. HTTP Status: Forbidden\n' "$(stamp)"
printf '[%s ERR  Terminal] WRITE ERROR: An error occured: Runner version v2.317.0 is deprecated and cannot receive messages.\n' "$(stamp)"
printf '[%s ERR  Listener] GitHub.DistributedTask.WebApi.AccessDeniedException: Runner version v2.317.0 is deprecated and cannot receive messages.\n' "$(stamp)"
} >> "$log"
exit 1
"#;

#[test]
fn a_runner_refused_for_its_version_is_diagnosed_so_stopped_or_relaunched() {
    use std::os::unix::fs::PermissionsExt;
    let m = manager();
    let t = tempfile::tempdir().expect("temporary directory");
    // Stopped for good (runners since 2.303.0: exit 1, no retry).
    let stopped = registered(&m, t.path(), R1, "r1", &RunnerOptions::default());
    // Relaunched (runners before 2.303.0, or a unit with Restart=).
    let looping = registered(
        &m,
        t.path(),
        R2,
        "r2",
        &RunnerOptions {
            restart: "always".into(),
            restart_sec: Duration::from_millis(200),
            ..RunnerOptions::default()
        },
    );
    for r in [&stopped, &looping] {
        let script = r.root.join("runsvc.sh");
        std::fs::write(&script, DEPRECATED_RUNSVC).expect("write runsvc.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod runsvc.sh");
    }
    m.start_unit(R1).expect("start r1");
    m.start_unit(R2).expect("start r2");
    m.wait_show(R2, "NRestarts", Duration::from_secs(10), |n| {
        n.parse::<u32>().is_ok_and(|n| n >= 4)
    })
    .expect("systemd relaunches r2");
    m.wait_active_state(R1, "failed", Duration::from_secs(10))
        .expect("r1 stops with exit 1");

    let config = format!(
        "{GATE}[[runner]]\nroot = \"{}\"\n[[runner]]\nroot = \"{}\"\n",
        stopped.root.display(),
        looping.root.display()
    );
    let (code, report) = check(&m, &config);
    assert_eq!(code, 2, "{report:#}");
    for runner in ["r1", "r2"] {
        let r = report["runners"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["runner"] == runner))
            .unwrap_or_else(|| panic!("{runner} in {report:#}"));
        assert_eq!(r["diagnosis"]["cause"], "version_deprecated", "{r:#}");
        assert_eq!(
            status_in(&report, runner, "runner_version").as_deref(),
            Some("fail")
        );
    }
    // r2's loop is seen, and named after the version, not the loop.
    assert_eq!(
        status_in(&report, "r2", "not_crash_looping").as_deref(),
        Some("fail"),
        "{report:#}"
    );
    assert_eq!(
        status_in(&report, "r1", "service_active").as_deref(),
        Some("fail")
    );

    let (e, _d) = exporter(&m, &config);
    let s = wait(&e, &m, "both refused", Duration::from_secs(15), |s| {
        ["r1", "r2"].iter().all(|r| {
            sample_value(
                s,
                &format!("github_runner_version_deprecated{{runner=\"{r}\"}}"),
            ) == Some(1.0)
        })
    });
    assert!(s.contains("version=\"2.317.0\""), "{s}");
    wait_health(
        &e,
        "r2",
        503,
        Some("version_deprecated"),
        Duration::from_secs(5),
    );
}
