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
//! Timings are printed (`cargo test --test systemd_manager -- --nocapture`)
//! and asserted only against generous deadlines.

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
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config).expect("write the config");
    let arg = format!("--config.file={}", file.display());
    let addr = m.address();
    let e = Exporter::start(BIN, &[&arg], &[("DBUS_SYSTEM_BUS_ADDRESS", &addr)]);
    (e, dir)
}

fn state(m: &str, runner: &str, unit: &str, state: &str) -> Option<f64> {
    sample_value(
        m,
        &format!(
            "github_runner_service_state{{runner=\"{runner}\",unit=\"{unit}\",state=\"{state}\"}}"
        ),
    )
}

fn success(m: &str) -> Option<f64> {
    sample_value(
        m,
        "github_runner_exporter_collector_success{collector=\"systemd\"}",
    )
}

fn listener(m: &str, runner: &str) -> Option<f64> {
    sample_value(
        m,
        &format!("github_runner_process_running{{runner=\"{runner}\",process=\"listener\"}}"),
    )
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
    // The bus lives on; the exporter hears systemd leave it, reconnects,
    // and its calls to the (activatable) name wait until they time out.
    wait(
        &e,
        &m,
        "the manager's death",
        Duration::from_secs(10),
        |s| success(s) == Some(0.0),
    );
    // Observed: ~2.1 s (the 2 s call timeout of Subscribe).
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
    // Observed: 0.17 s or (mostly) 4.1 s after the restart, 3.2 or 7.1 s
    // after the kill: the retry 1 s after the first failure (2.1 s) lands
    // on the orphaned bus unless the new manager has already bound the
    // socket, and waits out the 2 s call timeout; the next retry follows a
    // 2 s backoff.
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

    // The exporter reconnects on the owner change and stays live. Today
    // the UnitRemoved from the old manager usually starts a resync whose
    // ListUnitsByPatterns the old manager never answers (NoReply: it
    // exec'd): one failed run, the units dropped for the 1 s backoff.
    let t0 = Instant::now();
    m.stop_unit(R1).expect("stop the runner unit");
    wait(
        &e,
        &m,
        "a stop after the reexec",
        Duration::from_secs(5),
        |s| state(s, "r1", R1, "inactive") == Some(1.0) && success(s) == Some(1.0),
    );
    eprintln!(
        "stop after the reexec shown after {:?}; failed runs around the reexec: {}",
        t0.elapsed(),
        e.logs().matches("collector failed").count()
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
