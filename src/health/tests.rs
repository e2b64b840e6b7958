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
            ..Default::default()
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

fn with_config(s: &mut Snapshot, f: impl FnOnce(&mut Config)) {
    let mut config = s.settings.config.clone();
    f(&mut config);
    s.settings = Arc::new(Settings::with_token(config, None));
}

fn docker_unit(state: &str) -> UnitState {
    UnitState {
        name: "docker.service".into(),
        load_state: "loaded".into(),
        active_state: state.into(),
        sub_state: if state == "active" { "running" } else { "dead" }.into(),
        ..Default::default()
    }
}

fn probe(access: SocketAccess) -> DockerProbe {
    DockerProbe {
        socket: "/var/run/docker.sock".into(),
        user: None,
        access,
        data_root: "/var/lib/docker".into(),
        config_error: None,
        data_fs: Some(FsUsage {
            size: 1000,
            avail: 500,
            free: 500,
            files: 100,
            files_free: 50,
        }),
    }
}

fn check<'a>(r: &'a RunnerHealth, id: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.check == id)
        .unwrap_or_else(|| panic!("no check {id} in {:?}", r.checks))
}

#[test]
fn a_deprecated_version_outranks_the_stopped_or_looping_service() {
    let mut s = healthy();
    with_config(&mut s, |c| {
        c.github.runner_latest_version = Some("2.330.0".into())
    });
    root(&mut s).logs.version = Some("2.317.0".into());
    root(&mut s).logs.deprecated_at = Some(NOW - 120.0);
    root(&mut s).logs.connected = Some(false);
    root(&mut s).logs.recent = vec![(LogEvent::VersionDeprecated, NOW - 120.0)];
    unit(&mut s).active_state = "inactive".into();
    unit(&mut s).sub_state = "dead".into();
    unit(&mut s).exec_main_status = Some(1);
    gh(&mut s).online = false;
    let r = eval(&s);
    assert!(!r.healthy);
    assert_eq!(status_of(&r, "runner_version"), Status::Fail);
    assert_eq!(status_of(&r, "service_active"), Status::Fail);
    let d = r.diagnosis.clone().unwrap();
    assert_eq!(d.cause, Cause::VersionDeprecated, "{d:#?}");
    assert!(d.runbook.ends_with("/version-deprecated.md"));
    assert!(
        d.remediation.contains("update the runner"),
        "{}",
        d.remediation
    );
    let listener = check(&r, "listener_connected");
    assert!(
        listener.reason.contains("deprecated"),
        "{}",
        listener.reason
    );
    assert!(listener.runbook.ends_with("/version-deprecated.md"));
    let version = check(&r, "runner_version");
    assert!(!version.reason.contains("broker"), "{}", version.reason);
    // A runner before 2.303.0 is relaunched every 5 s, and a unit with
    // Restart= loops: still the version.
    unit(&mut s).active_state = "activating".into();
    unit(&mut s).recent_restarts = 9;
    assert_eq!(eval(&s).diagnosis.unwrap().cause, Cause::VersionDeprecated);
    // The latest version refused: more likely the broker.
    root(&mut s).logs.version = Some("2.330.0".into());
    let r = eval(&s);
    let version = check(&r, "runner_version");
    assert!(
        version
            .reason
            .contains("broker.actions.githubusercontent.com"),
        "{}",
        version.reason
    );
}

#[test]
fn versions_behind_the_latest_release_warn_only_when_not_updating_themselves() {
    let mut s = healthy();
    root(&mut s).logs.version = Some("2.329.0".into());
    // Latest unknown: an OK line that says so.
    with_config(&mut s, |c| {
        c.github.runner_latest_version = Some("off".into())
    });
    let r = eval(&s);
    assert_eq!(status_of(&r, "runner_version"), Status::Ok);
    assert!(check(&r, "runner_version").reason.contains("not known"));
    // Behind, but it updates itself.
    with_config(&mut s, |c| {
        c.github.runner_latest_version = Some("v2.330.0".into())
    });
    let r = eval(&s);
    assert_eq!(status_of(&r, "runner_version"), Status::Ok, "{r:#?}");
    assert!(r.diagnosis.is_none());
    // Behind with --disableupdate: a warning, the gate passes.
    root(&mut s).registration.as_mut().unwrap().disable_update = true;
    let r = eval(&s);
    assert_eq!(status_of(&r, "runner_version"), Status::Warn);
    assert!(r.healthy);
    assert_eq!(r.diagnosis.as_ref().unwrap().cause, Cause::VersionOutdated);
    assert_eq!(
        evaluate_snapshot(&s, &Selector::default(), NOW).exit_code(),
        1
    );
    // Current: fine.
    root(&mut s).logs.version = Some("2.330.0".into());
    assert_eq!(status_of(&eval(&s), "runner_version"), Status::Ok);
    // A failed self-update shows, even with updates enabled.
    root(&mut s).registration.as_mut().unwrap().disable_update = false;
    root(&mut s).logs.update_failed_at = Some(NOW - 60.0);
    let r = eval(&s);
    assert_eq!(status_of(&r, "runner_version"), Status::Warn);
    assert!(check(&r, "runner_version")
        .reason
        .contains("self-update failed"));
    assert!(r.healthy);
}

#[test]
fn docker_is_critical_only_for_runners_that_need_it() {
    // Not watched: no docker.service, no container job.
    let mut s = healthy();
    root(&mut s).docker = Some(probe(SocketAccess::Missing));
    assert!(eval(&s)
        .checks
        .iter()
        .all(|c| !c.check.starts_with("docker")));

    // docker.service exists but is stopped; no container job seen: a
    // warning.
    s.state_mut::<SystemdState>().unwrap().dependencies = vec![docker_unit("inactive")];
    let r = eval(&s);
    let d = check(&r, "docker_available");
    assert_eq!((d.status, d.critical), (Status::Warn, false), "{d:?}");
    assert!(
        d.reason.contains("docker.service is inactive"),
        "{}",
        d.reason
    );
    assert!(r.healthy);
    assert_eq!(r.diagnosis.unwrap().cause, Cause::DockerUnavailable);

    // The runner has run container jobs: the gate closes.
    root(&mut s).logs.container_job_at = Some(NOW - 3600.0);
    let r = eval(&s);
    let d = check(&r, "docker_available");
    assert_eq!((d.status, d.critical), (Status::Fail, true), "{d:?}");
    assert!(!r.healthy);
    assert_eq!(r.diagnosis.unwrap().cause, Cause::DockerUnavailable);

    // Running, but the socket leaves the user out.
    s.state_mut::<SystemdState>().unwrap().dependencies = vec![docker_unit("active")];
    root(&mut s).docker = Some(probe(SocketAccess::Denied(
        "runner (uid 1001) cannot connect to /var/run/docker.sock (root:docker 0660): as others it has ---".into(),
    )));
    root(&mut s).logs.docker_failure = Some(DockerFailure {
        at: NOW - 60.0,
        command: "docker version".into(),
        exit_code: 1,
        step: Some("Initialize containers".into()),
    });
    let r = eval(&s);
    let d = check(&r, "docker_available");
    assert_eq!(d.status, Status::Fail);
    assert!(d.reason.contains("as others it has ---"), "{}", d.reason);
    assert!(
        d.reason
            .contains("`docker version` exited 1 in step 'Initialize containers'"),
        "{}",
        d.reason
    );
    assert!(
        d.reason
            .contains("watched: the runner has run container jobs"),
        "{}",
        d.reason
    );

    // Granted.
    root(&mut s).docker = Some(probe(SocketAccess::Granted("runner can connect".into())));
    let r = eval(&s);
    assert_eq!(status_of(&r, "docker_available"), Status::Ok);
    assert!(r.healthy, "{r:#?}");
    // Cannot be told (a directory user): unknown closes the gate when
    // Docker is required.
    root(&mut s).docker = Some(probe(SocketAccess::Unknown(
        "user x is not in /etc/passwd".into(),
    )));
    let r = eval(&s);
    assert_eq!(status_of(&r, "docker_available"), Status::Unknown);
    assert!(!r.healthy);

    // docker = false: never.
    with_config(&mut s, |c| {
        c.runners[0].docker = crate::config::DockerMode::Off
    });
    assert!(eval(&s)
        .checks
        .iter()
        .all(|c| !c.check.starts_with("docker")));
    // docker = true without container jobs: required.
    with_config(&mut s, |c| {
        c.runners[0].docker = crate::config::DockerMode::On
    });
    root(&mut s).logs.container_job_at = None;
    root(&mut s).docker = Some(probe(SocketAccess::Missing));
    s.state_mut::<SystemdState>().unwrap().dependencies = Vec::new();
    let r = eval(&s);
    assert_eq!(status_of(&r, "docker_available"), Status::Fail);
    let reason = &check(&r, "docker_available").reason;
    assert!(reason.contains("no Docker socket"), "{reason}");
    assert!(
        !reason.contains("not installed"),
        "systemd was not asked: {reason}"
    );
    // systemd has no docker.service: Docker is not installed.
    s.state_mut::<SystemdState>().unwrap().dependencies = vec![UnitState {
        load_state: "not-found".into(),
        ..docker_unit("inactive")
    }];
    let r = eval(&s);
    let reason = &check(&r, "docker_available").reason;
    assert!(
        reason.contains("and no docker.service: Docker is not installed"),
        "{reason}"
    );
}

#[test]
fn inodes_and_dockers_filesystem_count_like_bytes() {
    let mut s = healthy();
    root(&mut s).work_fs = Some(FsUsage {
        size: 1000,
        avail: 900,
        free: 900,
        files: 1000,
        files_free: 20,
    });
    let r = eval(&s);
    let w = check(&r, "work_disk_space");
    assert_eq!(w.status, Status::Fail);
    assert!(w.reason.contains("inodes under 5.0%"), "{}", w.reason);
    assert_eq!(r.diagnosis.unwrap().cause, Cause::DiskFull);
    // Docker's data-root, for a runner that needs Docker.
    let mut s = healthy();
    root(&mut s).logs.container_job_at = Some(NOW);
    let mut p = probe(SocketAccess::Granted("ok".into()));
    p.data_fs = Some(FsUsage {
        size: 1000,
        avail: 10,
        free: 10,
        ..Default::default()
    });
    root(&mut s).docker = Some(p);
    let r = eval(&s);
    let d = check(&r, "docker_disk_space");
    assert_eq!((d.status, d.critical), (Status::Fail, true));
    assert!(d.reason.contains("/var/lib/docker"), "{}", d.reason);
    assert!(!r.healthy);
}

#[test]
fn a_finished_ephemeral_runner_is_neither_healthy_nor_failing() {
    let mut s = healthy();
    root(&mut s).registration = None;
    root(&mut s).agent_name = Some("r1".into());
    root(&mut s).ephemeral_seen = true;
    root(&mut s).logs.onetime_exit_at = Some(NOW - 30.0);
    root(&mut s).logs.listener_exit_code = Some(0);
    root(&mut s).logs.connected = Some(false);
    unit(&mut s).active_state = "inactive".into();
    // GitHub deleted it; the collector no longer asks about it.
    s.state_mut::<GithubState>().unwrap().runners.clear();
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    let r = &report.runners[0];
    assert_eq!(r.lifecycle, Some(crate::identity::Lifecycle::Finished));
    assert!(!r.healthy && r.diagnosis.is_none(), "{r:#?}");
    assert_eq!(r.status, Status::Skipped);
    assert_eq!(r.checks.len(), 1);
    assert_eq!(r.checks[0].check, "lifecycle");
    assert!(r.checks[0].runbook.ends_with("/ephemeral-finished.md"));
    assert!(r.checks.iter().all(|c| c.status != Status::Fail));
    // Alone, it leaves nothing that can take a deploy.
    assert!(!report.healthy);
    assert_eq!(report.exit_code(), 2);
    let m = report.message.clone().unwrap();
    assert!(
        m.contains("no runner here can take a deploy: r1 finished"),
        "{m}"
    );
    let text = render_text(&report, false);
    assert!(
        text.contains("runner r1  role=primary  environment=production  FINISHED"),
        "{text}"
    );
    assert!(
        render(&report, Format::Github).contains("::notice title=Runner r1::runner r1 finished")
    );
    // Beside a healthy runner, it changes nothing.
    let mut config = s.settings.config.clone();
    config.runners.push(RunnerConfig {
        root: Some("/opt/r2".into()),
        role: Some("primary".into()),
        ..Default::default()
    });
    s.settings = Arc::new(Settings::with_token(config, None));
    let mut second = healthy().state::<RunnerState>().unwrap().roots[0].clone();
    second.root = "/opt/r2".into();
    second.registration.as_mut().unwrap().agent_name = Some("r2".into());
    s.state_mut::<RunnerState>().unwrap().roots.push(second);
    s.state_mut::<GithubState>()
        .unwrap()
        .runners
        .push(GithubRunner {
            name: "r2".into(),
            root: Some("/opt/r2".into()),
            id: Some(24u64.into()),
            registered: true,
            online: true,
            ..Default::default()
        });
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    assert_eq!(report.runners.len(), 2);
    assert!(report.healthy, "{report:#?}");
    assert_eq!(report.exit_code(), 0);
    // The same root without the onetime exit is a deleted registration.
    let mut s2 = healthy();
    root(&mut s2).registration = None;
    root(&mut s2).agent_name = Some("r1".into());
    assert_eq!(
        eval(&s2).lifecycle,
        Some(crate::identity::Lifecycle::Unregistered)
    );
    assert_eq!(
        eval(&s2).diagnosis.unwrap().cause,
        Cause::RegistrationDeleted
    );
}

#[test]
fn github_not_configured_is_a_neutral_line() {
    let mut s = healthy();
    let interval = meta(&mut s, github::NAME).interval;
    *meta(&mut s, github::NAME) = Meta::new(false, interval);
    s.clear(github::NAME);
    let r = eval(&s);
    assert_eq!(status_of(&r, "online_at_github"), Status::Skipped);
    assert!(r.healthy);
    assert_eq!(r.status, Status::Ok, "skipped colours nothing");
}

#[test]
fn a_silent_collector_fails_the_gate_closed() {
    let mut s = healthy();
    unit(&mut s).active_state = "failed".into();
    // The systemd collector last succeeded long ago: its failed unit is
    // no longer evidence, and the service's state is unknown.
    meta(&mut s, systemd::NAME).last_success = Some(NOW - 1000.0);
    meta(&mut s, systemd::NAME).error = Some("connecting to the D-Bus system bus: refused".into());
    let r = eval(&s);
    let service = r
        .checks
        .iter()
        .find(|c| c.check == "service_active")
        .unwrap();
    assert_eq!(service.status, Status::Unknown);
    // What is unknown and why: the last error and its age.
    assert!(
        service.reason.contains("systemd collector"),
        "{}",
        service.reason
    );
    assert!(service.reason.contains("refused"), "{}", service.reason);
    assert!(
        service.reason.contains("last success 16m40s ago"),
        "{}",
        service.reason
    );
    assert_eq!(status_of(&r, "data_fresh"), Status::Warn);
    assert!(!r.healthy, "unknown is not healthy");
    let d = r.diagnosis.expect("a diagnosis");
    assert_eq!(d.cause, Cause::DataStale);
    assert!(
        d.summary.contains("cannot be evaluated: service_active"),
        "{}",
        d.summary
    );
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn a_collector_without_data_is_down_not_fresh() {
    // The bus died: the systemd section lost its data on the failure,
    // although its last success was a moment ago.
    let mut s = healthy();
    s.clear(systemd::NAME);
    meta(&mut s, systemd::NAME).error = Some("systemd is not on the bus".into());
    let r = eval(&s);
    let service = r
        .checks
        .iter()
        .find(|c| c.check == "service_active")
        .unwrap();
    assert_eq!(service.status, Status::Unknown);
    assert!(service.reason.contains("has no data"), "{}", service.reason);
    assert!(
        service.reason.contains("not on the bus"),
        "{}",
        service.reason
    );
    assert!(!r.healthy);
}

#[test]
fn unknown_can_be_let_through_as_a_warning() {
    let mut s = healthy();
    meta(&mut s, systemd::NAME).last_success = Some(NOW - 1000.0);
    let mut config = s.settings.config.clone();
    config.health.unknown = crate::config::UnknownPolicy::Warn;
    s.settings = Arc::new(Settings::with_token(config, None));
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    assert!(report.healthy, "{report:#?}");
    assert_eq!(report.exit_code(), 1, "a warning, not a pass");
}

#[test]
fn a_named_unit_that_does_not_exist_fails() {
    let mut s = healthy();
    unit(&mut s).load_state = "not-found".into();
    unit(&mut s).active_state = "inactive".into();
    unit(&mut s).sub_state = "dead".into();
    root(&mut s).service_unit = Some("actions.runner.acme-app.r1.service".into());
    let r = eval(&s);
    assert_eq!(status_of(&r, "service_active"), Status::Fail);
    assert!(!r.healthy);
    assert_eq!(r.diagnosis.unwrap().cause, Cause::UnitNotFound);
    // A runner with no unit named anywhere is not watched as a service:
    // a neutral line.
    let mut s = healthy();
    s.set(systemd::NAME, SystemdState::default());
    let r = eval(&s);
    assert_eq!(status_of(&r, "service_active"), Status::Skipped);
}

#[test]
fn a_crash_loop_clears_once_the_unit_stays_active() {
    let mut s = healthy();
    unit(&mut s).recent_restarts = 5;
    let now_us = monotonic_now_us().unwrap();
    // Active again for 10 s after the fix: still looping.
    unit(&mut s).active_enter_monotonic_us = Some(now_us - 10_000_000);
    let r = eval(&s);
    assert_eq!(status_of(&r, "not_crash_looping"), Status::Fail);
    // Active for 2 minutes (crashloop_clear_after is 1m): recovered,
    // although the restarts are still within the window.
    unit(&mut s).active_enter_monotonic_us = Some(now_us - 120_000_000);
    let r = eval(&s);
    assert_eq!(status_of(&r, "not_crash_looping"), Status::Ok, "{r:#?}");
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

#[test]
fn markdown_and_workflow_commands_carry_the_diagnosis() {
    let mut s = healthy();
    unit(&mut s).active_state = "inactive".into();
    unit(&mut s).sub_state = "dead".into();
    root(&mut s).logs.current_job = Some(CurrentJob {
        name: "deploy | prod\nstep".into(),
        started: NOW - 10.0,
        seen: None,
    });
    let report = evaluate_snapshot(&s, &Selector::default(), NOW);
    let md = render(&report, Format::Markdown);
    assert!(md.starts_with("### ❌ UNHEALTHY (fail)"), "{md}");
    assert!(md.contains("| `service_active` | **fail** |"), "{md}");
    assert!(md.contains("**Diagnosis: Service stopped**"), "{md}");
    assert!(md.contains("(https://github.com/"), "{md}");
    assert!(md.contains("service-stopped.md)"), "{md}");
    // A pipe in a job name does not break the table.
    assert!(md.contains("deploy \\| prod"), "{md}");
    for line in md.lines().filter(|l| l.starts_with("| `")) {
        assert_eq!(line.matches(" | ").count(), 2, "{line}");
    }
    let gh = render(&report, Format::Github);
    let line = gh.lines().next().unwrap();
    assert!(
        line.starts_with("::error title=Runner r1::Service stopped: "),
        "{gh}"
    );
    assert!(line.contains("Runbook: https://"), "{gh}");
    assert_eq!(gh.lines().count(), 1, "one line per runner: {gh}");
    // Property values escape `:` and `,`; messages escape line breaks.
    assert_eq!(
        super::render::render_github(&Report {
            runners: vec![],
            message: Some("no runner\nmatches".into()),
            ..report.clone()
        }),
        "::error title=Deploy gate::no runner%0Amatches\n"
    );
    let ok = evaluate_snapshot(&healthy(), &Selector::default(), NOW);
    assert!(render(&ok, Format::Github).starts_with("::notice title=Runner r1::"));
    assert!(render(&ok, Format::Markdown).starts_with("### ✅ HEALTHY (ok)"));
}

#[test]
fn the_format_is_a_query_parameter() {
    let q = Query::parse(Some("role=primary&format=markdown")).unwrap();
    assert_eq!(q.format, Some(Format::Markdown));
    assert_eq!(q.selector.role.as_deref(), Some("primary"));
    assert!(Query::parse(Some("format=yaml")).is_err());
    assert!(Query::parse(Some("role=primary")).unwrap().format.is_none());
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
