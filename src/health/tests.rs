//! The health model on snapshots built by hand: each failure mode names
//! its cause, selectors, rendering.

use super::*;
use crate::collect::{github, host, registry, runner, systemd};
use crate::config::{Config, RunnerConfig, Scope};
use crate::settings::Settings;
use crate::snapshot::*;
use std::sync::Arc;

const NOW: f64 = 1_800_000_000.0;

/// A healthy primary runner: unit active, root readable and registered,
/// listener connected, GitHub online, plenty of disk and memory.
fn healthy() -> Snapshot {
    let mut config = Config::default();
    config.github.scope = Some(Scope::SelfScope);
    config.runners.push(RunnerConfig {
        root: Some("/opt/r1".into()),
        role: Some("primary".into()),
        environment: Some("production".into()),
        ..Default::default()
    });
    let mut s = registry::empty_snapshot(Arc::new(Settings::with_token(config, None)));
    for section in &mut s.sections {
        section.meta.last_success = Some(NOW - 1.0);
    }
    s.set(
        host::NAME,
        HostState {
            memory_total: 1000,
            memory_available: 500,
            ..Default::default()
        },
    );
    s.set(
        systemd::NAME,
        SystemdState {
            units: vec![UnitState {
                name: "actions.runner.acme-app.r1.service".into(),
                active_state: "active".into(),
                sub_state: "running".into(),
                working_directory: Some("/opt/r1".into()),
                ..Default::default()
            }],
        },
    );
    let logs = LogState {
        connected: Some(true),
        ..Default::default()
    };
    s.set(
        runner::NAME,
        RunnerState {
            roots: vec![RunnerRoot {
                root: "/opt/r1".into(),
                accessible: true,
                registration: Some(Registration {
                    agent_id: Some(23),
                    agent_name: Some("r1".into()),
                    ..Default::default()
                }),
                work_fs: Some(FsUsage {
                    size: 1000,
                    avail: 500,
                    free: 500,
                    ..Default::default()
                }),
                logs,
                ..Default::default()
            }],
        },
    );
    s.set(
        github::NAME,
        GithubState {
            runners: vec![GithubRunner {
                name: "r1".into(),
                root: Some("/opt/r1".into()),
                id: Some(23.into()),
                owner: "acme/app".into(),
                registered: true,
                online: true,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    s
}

fn unit(s: &mut Snapshot) -> &mut UnitState {
    &mut s.state_mut::<SystemdState>().unwrap().units[0]
}
fn root(s: &mut Snapshot) -> &mut RunnerRoot {
    &mut s.state_mut::<RunnerState>().unwrap().roots[0]
}
fn gh(s: &mut Snapshot) -> &mut GithubRunner {
    &mut s.state_mut::<GithubState>().unwrap().runners[0]
}
fn meta<'a>(s: &'a mut Snapshot, name: &str) -> &'a mut Meta {
    &mut s.section_mut(name).unwrap().meta
}

fn eval(s: &Snapshot) -> RunnerHealth {
    let r = evaluate_snapshot(s, &Selector::default(), NOW);
    assert_eq!(r.runners.len(), 1, "{r:?}");
    r.runners.into_iter().next().unwrap()
}

fn status_of(r: &RunnerHealth, check: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no check {check} in {:?}", r.checks))
        .status
}

#[test]
fn a_healthy_runner_passes_every_check() {
    let r = eval(&healthy());
    assert!(r.healthy, "{r:#?}");
    assert_eq!(r.status, Status::Ok, "{r:#?}");
    assert!(r.diagnosis.is_none());
    assert_eq!(r.role, "primary");
    let report = evaluate_snapshot(&healthy(), &Selector::default(), NOW);
    assert_eq!(report.exit_code(), 0);
}

/// Each failure mode, injected into a healthy snapshot, gives the
/// expected failing check, the gate result and the named cause.
#[test]
fn failure_modes_name_their_root_cause() {
    type Inject = fn(&mut Snapshot);
    let scenarios: Vec<(&str, Inject, &str, bool, Cause)> = vec![
        (
            "service stopped",
            |s| {
                unit(s).active_state = "failed".into();
                unit(s).sub_state = "failed".into();
                gh(s).online = false;
                root(s).logs.connected = Some(false);
            },
            "service_active",
            false,
            Cause::ServiceStopped,
        ),
        (
            "crash loop",
            |s| {
                unit(s).recent_restarts = 5;
                unit(s).active_state = "activating".into();
            },
            "not_crash_looping",
            false,
            Cause::CrashLooping,
        ),
        (
            "deleted at GitHub",
            |s| {
                gh(s).registered = false;
            },
            "registered",
            false,
            Cause::RegistrationDeleted,
        ),
        (
            ".runner gone",
            |s| {
                root(s).registration = None;
                root(s).agent_name = Some("r1".into());
            },
            "registered",
            false,
            Cause::RegistrationDeleted,
        ),
        (
            "offline, credentials",
            |s| {
                gh(s).online = false;
                root(s).logs.connected = Some(false);
                root(s).logs.recent = vec![(LogEvent::AuthFailed, NOW - 60.0)];
            },
            "online_at_github",
            false,
            Cause::OfflineAtGithub,
        ),
        (
            "session conflict",
            |s| {
                root(s).logs.connected = Some(false);
                root(s).logs.listener_exit_code = Some(5);
                root(s).logs.recent = vec![
                    (LogEvent::SessionConflict, NOW - 300.0),
                    (LogEvent::ListenerExited, NOW - 60.0),
                ];
                unit(s).active_state = "inactive".into();
            },
            "listener_connected",
            false,
            Cause::SessionConflict,
        ),
        (
            "disk full",
            |s| {
                root(s).work_fs = Some(FsUsage {
                    size: 1000,
                    avail: 20,
                    free: 30,
                    ..Default::default()
                });
            },
            "work_disk_space",
            false,
            Cause::DiskFull,
        ),
        (
            "disk low",
            |s| {
                root(s).work_fs = Some(FsUsage {
                    size: 1000,
                    avail: 80,
                    free: 90,
                    ..Default::default()
                });
            },
            "work_disk_space",
            true,
            Cause::DiskFull,
        ),
        (
            "stuck job",
            |s| {
                root(s).logs.current_job = Some(CurrentJob {
                    name: "deploy".into(),
                    started: NOW - 7.0 * 3600.0,
                    seen: None,
                });
            },
            "job_not_stuck",
            false,
            Cause::StuckJob,
        ),
        (
            "clock skew",
            |s| {
                root(s).logs.connected = Some(false);
                root(s).logs.recent = vec![(LogEvent::ClockSkew, NOW - 10.0)];
                gh(s).online = false;
            },
            "listener_connected",
            false,
            Cause::ClockSkew,
        ),
        (
            "permission denied",
            |s| {
                root(s).accessible = false;
                root(s).error = Some("Permission denied (os error 13)".into());
            },
            "runner_readable",
            false,
            Cause::PermissionDenied,
        ),
        (
            "memory low",
            |s| {
                s.state_mut::<HostState>().unwrap().memory_available = 50;
            },
            "memory_available",
            true,
            Cause::HostDegraded,
        ),
    ];
    for (name, inject, check, healthy_after, cause) in scenarios {
        let mut s = healthy();
        inject(&mut s);
        let r = eval(&s);
        assert!(
            status_of(&r, check) >= Status::Warn,
            "{name}: {check} should not pass: {r:#?}"
        );
        assert_eq!(r.healthy, healthy_after, "{name}: gate: {r:#?}");
        let d = r
            .diagnosis
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no diagnosis"));
        assert_eq!(d.cause, cause, "{name}: {d:#?}");
        assert!(
            d.runbook.ends_with(&format!("/{}.md", cause.runbook())),
            "{name}"
        );
        assert!(!d.remediation.is_empty());
    }
}

#[test]
fn github_not_configured_is_unknown_not_failing() {
    let mut s = healthy();
    let interval = meta(&mut s, github::NAME).interval;
    *meta(&mut s, github::NAME) = Meta::new(false, interval);
    s.clear(github::NAME);
    let r = eval(&s);
    assert_eq!(status_of(&r, "online_at_github"), Status::Unknown);
    assert!(r.healthy);
    assert_eq!(r.status, Status::Unknown);
}

#[test]
fn a_silent_collector_makes_its_checks_unknown() {
    let mut s = healthy();
    unit(&mut s).active_state = "failed".into();
    // The systemd collector last succeeded long ago: its failed unit is
    // no longer evidence.
    meta(&mut s, systemd::NAME).last_success = Some(NOW - 1000.0);
    let r = eval(&s);
    assert_eq!(status_of(&r, "service_active"), Status::Unknown);
    assert_eq!(status_of(&r, "data_fresh"), Status::Warn);
    assert!(r.healthy);
}

#[test]
fn several_failures_name_the_most_likely_cause() {
    // A full disk makes the runner crash-loop and go offline: the disk
    // is named, and the other failures are listed.
    let mut s = healthy();
    root(&mut s).work_fs = Some(FsUsage {
        size: 1000,
        avail: 1,
        ..Default::default()
    });
    unit(&mut s).recent_restarts = 9;
    gh(&mut s).online = false;
    let d = eval(&s).diagnosis.unwrap();
    assert_eq!(d.cause, Cause::DiskFull);
    assert!(d.summary.contains("not_crash_looping"), "{}", d.summary);
}

#[test]
fn selectors_filter_and_an_empty_selection_fails_the_gate() {
    let s = healthy();
    let by = |q: &str| evaluate_snapshot(&s, &Selector::from_query(Some(q)).unwrap(), NOW);
    assert_eq!(by("role=primary").runners.len(), 1);
    assert_eq!(by("runner=r1&environment=production").runners.len(), 1);
    let none = by("role=secondary");
    assert!(none.runners.is_empty() && !none.healthy);
    assert_eq!(
        none.message.as_deref(),
        Some("no runner matches the selection")
    );
    assert_eq!(none.exit_code(), 2);
    assert!(Selector::from_query(Some("rol=primary")).is_err());
    assert_eq!(
        Selector::from_query(Some("runner=a%20b"))
            .unwrap()
            .runner
            .as_deref(),
        Some("a b")
    );
}

#[test]
fn a_percent_escape_needs_two_hex_digits() {
    // Found by the `accept` fuzz target: "%+e" decoded to 0x0e.
    for q in [
        "runner=%+e",
        "runner=%-1",
        "runner=% a",
        "runner=%4",
        "runner=%zz",
    ] {
        assert!(Selector::from_query(Some(q)).is_err(), "{q}");
    }
    let sel = Selector::from_query(Some("runner=%2b%2F")).unwrap();
    assert_eq!(sel.runner.as_deref(), Some("+/"));
}

#[test]
fn text_rendering_shows_checks_and_diagnosis() {
    let mut s = healthy();
    unit(&mut s).active_state = "inactive".into();
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    let text = render_text(&report, false);
    assert!(text.starts_with("UNHEALTHY (fail)"), "{text}");
    assert!(text.contains("service_active"));
    assert!(text.contains("Diagnosis: Service stopped"), "{text}");
    assert!(text.contains("Runbook: "));
    assert!(!text.contains('\x1b'));
    assert!(render_text(&report, true).contains("\x1b[31;1m"));
    assert_eq!(report.exit_code(), 2);
}

/// The host clock `offset` seconds off GitHub's, measured just now.
fn clock(s: &mut Snapshot, offset: f64) {
    s.state_mut::<GithubState>().unwrap().api.clock = Some(ClockSample {
        offset,
        uncertainty: 0.6,
        at: std::time::Instant::now(),
    });
}

fn reason_of(r: &RunnerHealth, check: &str) -> String {
    r.checks
        .iter()
        .find(|c| c.check == check)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[test]
fn the_clock_check_names_the_skew_and_its_size() {
    let mut s = healthy();
    clock(&mut s, 0.3);
    let r = eval(&s);
    assert_eq!(status_of(&r, "clock_in_sync"), Status::Ok);
    assert!(
        reason_of(&r, "clock_in_sync").contains("agrees with GitHub's to within 0.6s"),
        "{r:#?}"
    );
    clock(&mut s, -12.0);
    assert_eq!(status_of(&eval(&s), "clock_in_sync"), Status::Ok);
    clock(&mut s, -90.0);
    let r = eval(&s);
    assert_eq!(status_of(&r, "clock_in_sync"), Status::Warn);
    assert!(
        reason_of(&r, "clock_in_sync")
            .starts_with("the host clock is 1m30s behind GitHub's (offset -90.0s"),
        "{}",
        reason_of(&r, "clock_in_sync")
    );
    assert!(r.healthy, "not critical");
    assert_eq!(r.diagnosis.map(|d| d.cause), Some(Cause::ClockSkew));
    clock(&mut s, 7200.4);
    let r = eval(&s);
    assert_eq!(status_of(&r, "clock_in_sync"), Status::Fail);
    let reason = reason_of(&r, "clock_in_sync");
    assert!(
        reason.contains("2h0m ahead of GitHub's (offset +7200.4s"),
        "{reason}"
    );
    assert!(reason.contains("beyond five minutes"), "{reason}");
    // A measurement older than the GitHub collector's stale window says
    // nothing any more.
    s.state_mut::<GithubState>().unwrap().api.clock = Some(ClockSample {
        offset: 7200.0,
        uncertainty: 0.5,
        at: std::time::Instant::now() - std::time::Duration::from_secs(3600),
    });
    assert!(eval(&s).checks.iter().all(|c| c.check != "clock_in_sync"));
}

#[test]
fn a_wrong_clock_ranks_before_a_registration_the_log_calls_deleted() {
    // actions/runner#4648: with the clock wrong at boot the runner logs
    // that its registration was deleted; re-registering is the wrong fix.
    let mut s = healthy();
    root(&mut s).logs.connected = Some(false);
    root(&mut s).logs.recent = vec![(LogEvent::RegistrationDeleted, NOW - 30.0)];
    gh(&mut s).online = false;
    let r = eval(&s);
    assert_eq!(status_of(&r, "registered"), Status::Fail);
    assert_eq!(
        r.diagnosis.as_ref().map(|d| d.cause),
        Some(Cause::RegistrationDeleted),
        "without a skew the log is believed"
    );
    clock(&mut s, -3.0 * 3600.0 + 5.0);
    let r = eval(&s);
    let d = r.diagnosis.unwrap();
    assert_eq!(d.cause, Cause::ClockSkew, "{d:#?}");
    assert!(d.summary.contains("registered"), "{}", d.summary);
    assert!(
        d.remediation.contains("do not re-register"),
        "{}",
        d.remediation
    );
}

#[test]
fn fleet_runners_elsewhere_get_no_clock_check() {
    let mut s = healthy();
    clock(&mut s, 7200.0);
    s.state_mut::<GithubState>()
        .unwrap()
        .runners
        .push(GithubRunner {
            name: "elsewhere".into(),
            id: Some(99.into()),
            owner: "acme/app".into(),
            registered: true,
            online: true,
            ..Default::default()
        });
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    let other = report
        .runners
        .iter()
        .find(|r| r.runner == "elsewhere")
        .unwrap();
    assert!(other.checks.iter().all(|c| c.check != "clock_in_sync"));
}

#[test]
fn proxy_and_tls_failures_name_their_fix_without_failing_the_gate() {
    type Case = (Option<ApiErrorReason>, &'static str, Status, Option<Cause>);
    let cases: [Case; 4] = [
        (
            Some(ApiErrorReason::Proxy),
            "GET https://api.github.com/x: cannot connect to the proxy http://10.0.0.1:3128: Connection refused",
            Status::Warn,
            Some(Cause::GithubProxy),
        ),
        (
            Some(ApiErrorReason::ProxyAuth),
            "the proxy http://u:***@10.0.0.1:3128 answered 407 Proxy Authentication Required",
            Status::Warn,
            Some(Cause::GithubProxy),
        ),
        (
            Some(ApiErrorReason::Tls),
            "TLS: the certificate of 10.0.0.2 is from an unknown issuer",
            Status::Warn,
            Some(Cause::GithubTls),
        ),
        (
            Some(ApiErrorReason::Auth),
            "HTTP 401 Unauthorized: Bad credentials",
            Status::Unknown,
            None,
        ),
    ];
    for (reason, message, status, cause) in cases {
        let mut s = healthy();
        let g = s.state_mut::<GithubState>().unwrap();
        g.owners = vec![OwnerStatus {
            owner: "acme/app".into(),
            success: false,
            error: Some(ApiFailure {
                reason,
                message: message.into(),
            }),
            ..Default::default()
        }];
        let r = eval(&s);
        assert_eq!(status_of(&r, "github_reachable"), status, "{message}");
        assert!(reason_of(&r, "github_reachable").contains(message));
        assert!(r.healthy, "{message}: the runner may reach GitHub");
        assert_eq!(r.diagnosis.as_ref().map(|d| d.cause), cause, "{message}");
        if let Some(c) = cause {
            let check = r
                .checks
                .iter()
                .find(|c| c.check == "github_reachable")
                .unwrap();
            assert_eq!(check.remediation, c.fix(""), "{message}");
            assert!(check.runbook.ends_with(&format!("/{}.md", c.runbook())));
        }
    }
    // An owner that answers is OK; a poll that failed before asking
    // anyone speaks for every runner.
    let mut s = healthy();
    s.state_mut::<GithubState>().unwrap().owners = vec![OwnerStatus {
        owner: "acme/app".into(),
        success: true,
        ..Default::default()
    }];
    assert_eq!(status_of(&eval(&s), "github_reachable"), Status::Ok);
    let mut s = healthy();
    s.state_mut::<GithubState>().unwrap().error = Some(ApiFailure {
        reason: Some(ApiErrorReason::Tls),
        message: "no trusted CA certificates".into(),
    });
    assert_eq!(status_of(&eval(&s), "github_reachable"), Status::Warn);
}
