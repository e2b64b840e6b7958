//! The checks: one function each, in the order they are reported. A check
//! looks at one runner and returns its outcome and the cause it points to
//! (the runbook it links, and, when it fails or warns, a candidate for the
//! diagnosis). A check that does not apply to a runner returns None.

use super::causes::Cause;
use super::model::Status;
use super::Ctx;
use crate::identity::RunnerView;
use crate::snapshot::{ApiErrorReason, FsUsage, LogEvent, SocketAccess};
use std::cmp::Ordering;

/// What one check concluded about one runner.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub reason: String,
    /// The cause this check points to.
    pub cause: Cause,
    /// Whether a failing or warning outcome names its cause as a
    /// candidate for the diagnosis (false when another check names the
    /// real one, or for a passing state such as a unit starting).
    pub points: bool,
    /// For an unknown outcome, how to make it known (a failing or warning
    /// check shows its cause's fix instead).
    pub hint: Option<&'static str>,
    /// Whether this outcome counts for the gate, when the check decides it
    /// per runner (None: the check's own [`CheckDef::critical`]).
    pub critical: Option<bool>,
}

impl Verdict {
    fn new(status: Status, reason: impl Into<String>, cause: Cause) -> Verdict {
        Verdict {
            status,
            reason: reason.into(),
            cause,
            points: true,
            hint: None,
            critical: None,
        }
    }

    fn ok(reason: impl Into<String>, cause: Cause) -> Verdict {
        Verdict::new(Status::Ok, reason, cause)
    }

    fn fail(reason: impl Into<String>, cause: Cause) -> Verdict {
        Verdict::new(Status::Fail, reason, cause)
    }

    fn warn(reason: impl Into<String>, cause: Cause) -> Verdict {
        Verdict::new(Status::Warn, reason, cause)
    }

    fn unknown(reason: impl Into<String>, cause: Cause) -> Verdict {
        Verdict::new(Status::Unknown, reason, cause)
    }

    fn skipped(reason: impl Into<String>, cause: Cause) -> Verdict {
        Verdict::new(Status::Skipped, reason, cause)
    }

    /// Not a candidate for the diagnosis.
    fn not_pointing(mut self) -> Verdict {
        self.points = false;
        self
    }

    fn hint(mut self, hint: &'static str) -> Verdict {
        self.hint = Some(hint);
        self
    }

    fn critical(mut self, critical: bool) -> Verdict {
        self.critical = Some(critical);
        self
    }
}

/// A check: its id, whether failing it fails the gate, and the function.
pub struct CheckDef {
    pub id: &'static str,
    pub critical: bool,
    pub run: fn(&Ctx<'_>, &RunnerView<'_>) -> Option<Verdict>,
}

/// Every check, in the order reports list them.
pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "runner_readable",
        critical: true,
        run: runner_readable,
    },
    CheckDef {
        id: "service_active",
        critical: true,
        run: service_active,
    },
    CheckDef {
        id: "not_crash_looping",
        critical: true,
        run: not_crash_looping,
    },
    CheckDef {
        id: "registered",
        critical: true,
        run: registered,
    },
    CheckDef {
        id: "online_at_github",
        critical: true,
        run: online_at_github,
    },
    CheckDef {
        id: "listener_connected",
        critical: true,
        run: listener_connected,
    },
    CheckDef {
        id: "runner_version",
        critical: true,
        run: runner_version,
    },
    CheckDef {
        id: "job_not_stuck",
        critical: true,
        run: job_not_stuck,
    },
    CheckDef {
        id: "work_disk_space",
        critical: true,
        run: work_disk_space,
    },
    CheckDef {
        id: "docker_available",
        critical: true,
        run: docker_available,
    },
    CheckDef {
        id: "docker_disk_space",
        critical: true,
        run: docker_disk_space,
    },
    CheckDef {
        id: "clock_in_sync",
        critical: false,
        run: clock_in_sync,
    },
    CheckDef {
        id: "github_reachable",
        critical: false,
        run: github_reachable,
    },
    CheckDef {
        id: "memory_available",
        critical: false,
        run: memory_available,
    },
    CheckDef {
        id: "data_fresh",
        critical: false,
        run: data_fresh,
    },
];

const SYSTEMD: &str = crate::collect::systemd::NAME;
pub(crate) const RUNNER: &str = crate::collect::runner::NAME;
const GITHUB: &str = crate::collect::github::NAME;
const HOST: &str = crate::collect::host::NAME;

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

pub(crate) fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

/// The last event that explains a disconnect: the newest failure, looking
/// past the listener's own exit to what made it exit.
fn last_failure(v: &RunnerView<'_>) -> Option<LogEvent> {
    let events = &v.root?.logs.recent;
    for (e, _) in events.iter().rev() {
        match e {
            LogEvent::Reconnected => return None,
            LogEvent::ListenerExited | LogEvent::UpdateStarted => continue,
            e => return Some(*e),
        }
    }
    None
}

/// The exporter must be able to read the runner at all.
fn runner_readable(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let root = v.root?;
    if !ctx.fresh(RUNNER) || root.accessible {
        return None;
    }
    Some(Verdict::fail(
        format!(
            "cannot read {}: {}",
            root.root.display(),
            root.error.as_deref().unwrap_or("permission denied")
        ),
        Cause::PermissionDenied,
    ))
}

/// The unit the runner's own files or the config name for it.
fn named_unit<'a>(v: &'a RunnerView<'_>) -> Option<&'a str> {
    v.root
        .and_then(|r| r.service_unit.as_deref())
        .or_else(|| v.config.and_then(|c| c.unit.as_deref()))
}

fn service_active(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    if !ctx.fresh(SYSTEMD) {
        if !ctx.enabled(SYSTEMD) && named_unit(v).is_none() {
            return Some(Verdict::skipped(
                "the systemd collector is disabled",
                Cause::ServiceStopped,
            ));
        }
        return Some(
            Verdict::unknown(ctx.staleness(SYSTEMD), Cause::DataStale)
                .hint("check the exporter's access to the system D-Bus"),
        );
    }
    let Some(u) = v.unit else {
        return Some(match named_unit(v) {
            // Named, yet systemd did not report it (not even as not-found).
            Some(name) => Verdict::unknown(
                format!("systemd did not report {name}, the unit named for this runner"),
                Cause::DataStale,
            ),
            None => Verdict::skipped(
                "no systemd unit is named for this runner (no .service in its root, no [[runner]] unit): not watched as a service",
                Cause::ServiceStopped,
            )
            .hint("name the unit in [[runner]] unit = \"...\" if it runs under systemd"),
        });
    };
    if u.load_state == "not-found" {
        let by = match (v.root.and_then(|r| r.service_unit.as_deref()), v.root) {
            (Some(_), Some(r)) => format!("{}/.service", r.root.display()),
            _ => "[[runner]] unit".to_string(),
        };
        return Some(Verdict::fail(
            format!(
                "{} does not exist (systemd: LoadState not-found), though {by} names it",
                u.name
            ),
            Cause::UnitNotFound,
        ));
    }
    Some(match u.active_state.as_str() {
        "active" => Verdict::ok(
            format!("{} is active ({})", u.name, u.sub_state),
            Cause::ServiceStopped,
        ),
        "activating" | "reloading" => Verdict::warn(
            format!("{} is {} ({})", u.name, u.active_state, u.sub_state),
            Cause::ServiceStopped,
        )
        .not_pointing(),
        other => Verdict::fail(
            format!(
                "{} is {other} ({}), last exit status {}",
                u.name,
                u.sub_state,
                u.exec_main_status
                    .map_or("unknown".into(), |s| s.to_string())
            ),
            Cause::ServiceStopped,
        ),
    })
}

fn not_crash_looping(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let u = v
        .unit
        .filter(|u| ctx.fresh(SYSTEMD) && u.load_state != "not-found")?;
    let h = ctx.thresholds;
    let n = u.recent_restarts;
    let window = crate::duration::Dur(h.crashloop_window.get());
    let restarts = if n == 1 { "restart" } else { "restarts" };
    let active_for = u.active_for();
    let stable = u.active_state == "active"
        && active_for.is_some_and(|t| t >= h.crashloop_clear_after.as_secs_f64());
    Some(if n >= h.crashloop_restarts && !stable {
        let mut reason = format!("{} restarted {n} times within {window}", u.name);
        if u.sub_state == "auto-restart" {
            reason.push_str(", waiting to be restarted again");
        }
        if let Some(s) = u.exec_main_status.filter(|s| *s != 0) {
            reason.push_str(&format!(", last exit status {s}"));
        }
        Verdict::fail(reason, Cause::CrashLooping)
    } else if n >= h.crashloop_restarts {
        Verdict::ok(
            format!(
                "{n} {restarts} within {window}, but active for {} since the last (recovered)",
                human_duration(active_for.unwrap_or(0.0))
            ),
            Cause::CrashLooping,
        )
    } else {
        Verdict::ok(
            format!("{n} {restarts} within {window}"),
            Cause::CrashLooping,
        )
    })
}

/// Registered: `.runner` present locally, and known to GitHub.
fn registered(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    if let Some(root) = v.root {
        if ctx.fresh(RUNNER) && root.accessible && root.registration.is_none() {
            return Some(Verdict::fail(
                format!("{}/.runner is missing: the runner is not configured (registration deleted or an ephemeral runner finished)", root.root.display()),
                Cause::RegistrationDeleted,
            ));
        }
    }
    if let (true, Some(g)) = (ctx.fresh(GITHUB), v.github) {
        if !g.registered {
            return Some(Verdict::fail(
                format!(
                    "GitHub answers 404 for runner id {}",
                    g.id.as_ref().map_or("?".into(), |i| i.to_string())
                ),
                Cause::RegistrationDeleted,
            ));
        }
    }
    if last_failure(v) == Some(LogEvent::RegistrationDeleted) {
        return Some(Verdict::fail(
            "the runner's log says its registration was deleted from the server",
            Cause::RegistrationDeleted,
        ));
    }
    let known =
        v.root.is_some_and(|r| r.registration.is_some()) || v.github.is_some_and(|g| g.registered);
    Some(if known {
        Verdict::ok("registered", Cause::RegistrationDeleted)
    } else {
        Verdict::unknown("no registration data", Cause::RegistrationDeleted)
    })
}

/// Online at GitHub while the service runs.
fn online_at_github(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    if !ctx.enabled(GITHUB) {
        return Some(
            Verdict::skipped(
                "GitHub API not configured ([github] scope is off)",
                Cause::OfflineAtGithub,
            )
            .hint("configure [github] credentials to compare with GitHub's view"),
        );
    }
    if !ctx.fresh(GITHUB) {
        return Some(
            Verdict::unknown(ctx.staleness(GITHUB), Cause::DataStale)
                .hint("see github_runner_github_api_errors_total and the exporter's log"),
        );
    }
    Some(match v.github {
        Some(g) if g.registered && g.online => Verdict::ok(
            format!("online{}", if g.busy { ", busy" } else { ", idle" }),
            Cause::OfflineAtGithub,
        ),
        Some(g) if g.registered => {
            if v.unit.is_some_and(|u| u.active_state != "active") {
                // service_active names the cause.
                Verdict::fail(
                    "offline at GitHub (the service is not running)",
                    Cause::OfflineAtGithub,
                )
                .not_pointing()
            } else {
                let cause = match last_failure(v) {
                    Some(LogEvent::SessionConflict) => Cause::SessionConflict,
                    Some(LogEvent::ClockSkew) => Cause::ClockSkew,
                    Some(LogEvent::VersionDeprecated) => Cause::VersionDeprecated,
                    _ => Cause::OfflineAtGithub,
                };
                Verdict::fail("offline at GitHub although the service runs", cause)
            }
        }
        Some(_) => Verdict::unknown("not registered at GitHub", Cause::RegistrationDeleted),
        None => Verdict::unknown(
            "GitHub has not been asked about this runner yet",
            Cause::OfflineAtGithub,
        ),
    })
}

/// Listener connected, from the runner's own log.
fn listener_connected(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    if !ctx.fresh(RUNNER) {
        return Some(Verdict::unknown(ctx.staleness(RUNNER), Cause::DataStale));
    }
    let logs = v.root.map(|r| &r.logs);
    Some(match logs.and_then(|l| l.connected) {
        None => Verdict::unknown(
            "the runner's log says nothing about its connection yet",
            Cause::OfflineAtGithub,
        ),
        Some(true) => Verdict::ok("listening for jobs", Cause::OfflineAtGithub),
        Some(false) => {
            let exit = logs.and_then(|l| l.listener_exit_code);
            let (cause, why) = match (last_failure(v), exit) {
                (Some(LogEvent::SessionConflict), _) | (_, Some(5)) => (
                    Cause::SessionConflict,
                    "a session for this runner already exists (another host runs the same registration)".to_string(),
                ),
                (Some(LogEvent::RegistrationDeleted), _) => (
                    Cause::RegistrationDeleted,
                    "the registration was deleted from the server".to_string(),
                ),
                (Some(LogEvent::VersionDeprecated), _) => (
                    Cause::VersionDeprecated,
                    "GitHub refuses the runner's version (deprecated)".to_string(),
                ),
                (Some(LogEvent::AuthFailed), _) => (
                    Cause::OfflineAtGithub,
                    "authentication failed (credentials)".to_string(),
                ),
                (Some(LogEvent::ClockSkew), _) => (
                    Cause::ClockSkew,
                    "the clock is out of sync with GitHub's".to_string(),
                ),
                (Some(LogEvent::ConnectError), _) => {
                    (Cause::OfflineAtGithub, "cannot reach GitHub (network)".to_string())
                }
                (Some(LogEvent::UpdateFailed), _) => {
                    (Cause::OfflineAtGithub, "a self-update failed".to_string())
                }
                _ => (
                    Cause::OfflineAtGithub,
                    match exit {
                        Some(c) => format!("the listener exited with return code {c}"),
                        None => "disconnected".to_string(),
                    },
                ),
            };
            Verdict::fail(format!("listener disconnected: {why}"), cause)
        }
    })
}

fn job_not_stuck(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let logs = &v.root.filter(|_| ctx.fresh(RUNNER))?.logs;
    let max = ctx.thresholds.max_job_duration;
    Some(match &logs.current_job {
        Some(j) if j.elapsed(ctx.now) > max.as_secs_f64() => Verdict::fail(
            format!(
                "job {:?} has run for {} (limit {max})",
                j.name,
                human_duration(j.elapsed(ctx.now))
            ),
            Cause::StuckJob,
        ),
        Some(j) => Verdict::ok(
            format!(
                "job {:?} running for {}",
                j.name,
                human_duration(j.elapsed(ctx.now))
            ),
            Cause::StuckJob,
        ),
        None => Verdict::ok("idle", Cause::StuckJob),
    })
}

/// Free space and free inodes of a filesystem against the `[health]`
/// thresholds (inodes only where the filesystem counts them).
fn fs_verdict(ctx: &Ctx<'_>, fs: &FsUsage, what: &str) -> Verdict {
    let h = ctx.thresholds;
    let free = if fs.size > 0 {
        fs.avail as f64 / fs.size as f64
    } else {
        0.0
    };
    let mut detail = format!(
        "{} free on {what} ({} of {} bytes)",
        pct(free),
        fs.avail,
        fs.size
    );
    let inodes = (fs.files > 0).then(|| fs.files_free as f64 / fs.files as f64);
    if let Some(i) = inodes {
        detail.push_str(&format!(
            ", {} of inodes free ({} of {})",
            pct(i),
            fs.files_free,
            fs.files
        ));
    }
    let worst = inodes.map_or(free, |i| i.min(free));
    let short = if inodes.is_some_and(|i| i < free) {
        "inodes"
    } else {
        "space"
    };
    if worst < h.disk_free_fail_ratio.0 {
        Verdict::fail(
            format!("{detail}: {short} under {}", pct(h.disk_free_fail_ratio.0)),
            Cause::DiskFull,
        )
    } else if worst < h.disk_free_warn_ratio.0 {
        Verdict::warn(
            format!("{detail}: {short} under {}", pct(h.disk_free_warn_ratio.0)),
            Cause::DiskFull,
        )
    } else {
        Verdict::ok(detail, Cause::DiskFull)
    }
}

/// Free space and inodes on the filesystem of the work folder.
fn work_disk_space(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let fs = v.root.filter(|_| ctx.fresh(RUNNER))?.work_fs?;
    Some(fs_verdict(ctx, &fs, "the work filesystem"))
}

/// The runner's version: refused by GitHub (fails), behind the latest
/// release while it does not update itself, or its self-update failed
/// (warnings). Listed once the version is known.
fn runner_version(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let root = v.root.filter(|_| ctx.fresh(RUNNER))?;
    let logs = &root.logs;
    let latest = ctx.latest;
    let behind = |ver: &str| latest.and_then(|l| crate::version::compare(ver, &l.version));
    if let Some(at) = logs.deprecated_at {
        let ver = logs.version.as_deref().unwrap_or("?");
        let mut reason = format!(
            "GitHub refuses runner version {ver} since {}: \"Runner version v{ver} is deprecated and cannot receive messages\"; the listener exited and takes no jobs until the runner is updated",
            crate::timefmt::rfc3339_millis(at)
        );
        if let (Some(Ordering::Equal | Ordering::Greater), Some(l)) = (behind(ver), latest) {
            reason.push_str(&format!(
                "; {ver} is not older than the latest release {}: the refusal is more likely a 403 from GitHub's broker (broker.actions.githubusercontent.com blocked by a proxy or firewall)",
                l.version
            ));
        }
        return Some(Verdict::fail(reason, Cause::VersionDeprecated));
    }
    let ver = logs.version.as_deref()?;
    if let Some(at) = logs.update_failed_at {
        return Some(Verdict::warn(
            format!(
                "the runner's self-update failed at {}; it still runs {ver}",
                crate::timefmt::rfc3339_millis(at)
            ),
            Cause::VersionOutdated,
        ));
    }
    let disabled = root.registration.as_ref().is_some_and(|r| r.disable_update);
    Some(match (behind(ver), latest) {
        (Some(Ordering::Less), Some(l)) if disabled => Verdict::warn(
            format!(
                "{ver}, behind the latest release {}, and updates are disabled (disableUpdate in .runner): update it by hand before GitHub deprecates it",
                l.version
            ),
            Cause::VersionOutdated,
        ),
        (Some(Ordering::Less), Some(l)) => Verdict::ok(
            format!(
                "{ver}; the latest release is {}: the runner updates itself when GitHub asks it to",
                l.version
            ),
            Cause::VersionOutdated,
        ),
        (Some(_), Some(l)) => Verdict::ok(
            format!("{ver}, the latest release ({} from {})", l.version, l.source),
            Cause::VersionOutdated,
        ),
        _ => Verdict::ok(
            format!("{ver} (the latest release is not known: [github] runner_latest_version, or the GitHub collector)"),
            Cause::VersionOutdated,
        ),
    })
}

/// Docker, for a runner that watches it: its units active, its socket
/// there and open to the runner's user. Critical when the runner needs
/// Docker (`docker = true`, or container jobs seen); a warning otherwise.
fn docker_available(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let root = v.root.filter(|_| ctx.fresh(RUNNER))?;
    let watch = super::docker_watch(v, ctx.dependencies)?;
    let required = watch.required;
    let bad = |reason: String| {
        let reason = format!("{reason} (watched: {})", watch.why);
        if required {
            Verdict::fail(reason, Cause::DockerUnavailable).critical(true)
        } else {
            Verdict::warn(reason, Cause::DockerUnavailable).critical(false)
        }
    };
    let last_failure = root.logs.docker_failure.as_ref().map(|f| {
        format!(
            "; a job's `{}` exited {}{} at {}",
            f.command,
            f.exit_code,
            f.step
                .as_deref()
                .map(|s| format!(" in step '{s}'"))
                .unwrap_or_default(),
            crate::timefmt::rfc3339_millis(f.at)
        )
    });
    if ctx.enabled(SYSTEMD) && !ctx.fresh(SYSTEMD) {
        return Some(Verdict::unknown(ctx.staleness(SYSTEMD), Cause::DataStale).critical(required));
    }
    let units: Vec<_> = ctx
        .dependencies
        .iter()
        .filter(|u| u.load_state != "not-found")
        .collect();
    let down: Vec<String> = units
        .iter()
        .filter(|u| u.active_state != "active")
        .map(|u| format!("{} is {} ({})", u.name, u.active_state, u.sub_state))
        .collect();
    if !down.is_empty() {
        return Some(bad(format!(
            "{}{}",
            down.join(", "),
            last_failure.clone().unwrap_or_default()
        )));
    }
    let Some(probe) = root.docker.as_ref() else {
        return Some(
            Verdict::unknown(
                "the runner's access to Docker has not been probed yet",
                Cause::DataStale,
            )
            .critical(required),
        );
    };
    let active: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let units_ok = if active.is_empty() {
        String::new()
    } else {
        format!("; {} active", active.join(", "))
    };
    Some(match &probe.access {
        SocketAccess::Granted(how) => {
            Verdict::ok(format!("{how}{units_ok}"), Cause::DockerUnavailable).critical(required)
        }
        SocketAccess::Denied(why) => bad(format!("{why}{}", last_failure.unwrap_or_default())),
        SocketAccess::Missing => {
            // Said only when systemd was asked and has no such unit.
            let not_installed = ctx
                .dependencies
                .iter()
                .any(|u| u.name == crate::config::DOCKER_UNIT && u.load_state == "not-found");
            bad(format!(
                "no Docker socket at {}{}{}",
                probe.socket.display(),
                if not_installed {
                    " and no docker.service: Docker is not installed"
                } else {
                    ""
                },
                last_failure.unwrap_or_default()
            ))
        }
        SocketAccess::Unknown(why) => Verdict::unknown(
            format!("cannot tell whether the runner's user can use Docker: {why}"),
            Cause::DockerUnavailable,
        )
        .critical(required)
        .hint("name the runner's user with User= in its unit, in /etc/passwd"),
    })
}

/// Free space and inodes on the filesystem of Docker's data-root, for a
/// runner that watches Docker: container jobs fill it (images, volumes,
/// build cache).
fn docker_disk_space(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let root = v.root.filter(|_| ctx.fresh(RUNNER))?;
    let watch = super::docker_watch(v, ctx.dependencies)?;
    let probe = root.docker.as_ref()?;
    let fs = probe.data_fs.as_ref()?;
    let what = format!(
        "the filesystem of Docker's data-root {}",
        probe.data_root.display()
    );
    let verdict = fs_verdict(ctx, fs, &what);
    Some(match verdict.status {
        // Not needed by this runner: a warning at most.
        Status::Fail if !watch.required => Verdict {
            status: Status::Warn,
            ..verdict
        }
        .critical(false),
        _ => verdict.critical(watch.required),
    })
}

/// Beyond this the runner's tokens are rejected: it signs them valid from
/// its own "now" for five minutes (actions/runner
/// `VssOAuthJwtBearerAssertion`), and says "out of sync with the server
/// time by more than five minutes" when GitHub refuses them.
pub const RUNNER_TOKEN_SKEW: f64 = 300.0;

/// "2m5s ahead of", "3.2s behind".
fn offset_words(offset: f64) -> String {
    let size = if offset.abs() < 60.0 {
        format!("{:.1}s", offset.abs())
    } else {
        human_duration(offset.abs().round())
    };
    format!(
        "{size} {}",
        if offset > 0.0 { "ahead of" } else { "behind" }
    )
}

/// Clock in sync: the host clock against GitHub's `Date`, measured by the
/// GitHub collector on the requests it makes anyway, else what the
/// runner's log says. Not critical: once the runner cannot authenticate
/// the listener and GitHub checks fail; this one names why, and ranks the
/// clock before a registration the log calls deleted. Only for runners on
/// this host, whose clock it is.
fn clock_in_sync(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    if v.root.is_none() && v.unit.is_none() {
        return None;
    }
    let log_skew = v.root.filter(|_| ctx.fresh(RUNNER)).is_some_and(|r| {
        r.logs
            .recent
            .iter()
            .rev()
            .take_while(|(e, _)| *e != LogEvent::Reconnected)
            .any(|(e, _)| *e == LogEvent::ClockSkew)
    });
    let log_reason =
        "the runner's log reports the clock out of sync with the server by more than five minutes";
    // A measurement counts while the GitHub data would; a collector
    // backing off (say after 401s from a clock that breaks App tokens)
    // measures again only after its backoff.
    let measured = ctx.github.and_then(|g| {
        let backoff = std::time::Duration::from_secs_f64(g.api.backoff_seconds.max(0.0) * 2.0);
        g.api
            .clock
            .filter(|c| c.at.elapsed() <= ctx.max_age(GITHUB).max(backoff))
    });
    let Some(c) = measured else {
        return log_skew.then(|| Verdict::warn(log_reason, Cause::ClockSkew));
    };
    let limit = ctx.thresholds.max_clock_offset;
    let off = c.offset.abs();
    if off <= c.uncertainty && !log_skew {
        return Some(Verdict::ok(
            format!(
                "the host clock agrees with GitHub's to within {:.1}s (the Date of GitHub's answers)",
                c.uncertainty
            ),
            Cause::ClockSkew,
        ));
    }
    let detail = format!(
        "the host clock is {} GitHub's (offset {:+.1}s ±{:.1}s, from the Date of GitHub's answers)",
        offset_words(c.offset),
        c.offset,
        c.uncertainty
    );
    Some(if off > RUNNER_TOKEN_SKEW {
        Verdict::fail(
            format!("{detail}: beyond five minutes GitHub rejects the runner's tokens"),
            Cause::ClockSkew,
        )
    } else if off > limit.as_secs_f64() {
        Verdict::warn(format!("{detail}, more than {limit}"), Cause::ClockSkew)
    } else if log_skew {
        Verdict::warn(
            format!("{log_reason}; {detail} now: restart the runner"),
            Cause::ClockSkew,
        )
    } else {
        Verdict::ok(detail, Cause::ClockSkew)
    })
}

/// The exporter reaches GitHub for this runner (not critical: the runner
/// may reach GitHub when the exporter cannot). A proxy or TLS failure
/// names its cause and fix; other failures of the API are unknown here
/// (the online check and the exporter's log say more). Listed once GitHub
/// has been asked about the runner's owner.
fn github_reachable(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Option<Verdict> {
    let state = ctx.github.filter(|_| ctx.enabled(GITHUB))?;
    let owner = v
        .github
        .map(|g| g.owner.clone())
        .filter(|o| !o.is_empty())
        .or_else(|| {
            let url = v.root?.registration.as_ref()?.github_url.as_deref()?;
            let (_, owner) = crate::collect::github::scope::parse_github_url(url).ok()?;
            Some(owner.to_string())
        });
    let status = owner.as_deref().and_then(|o| state.owner(o));
    let failure = match status {
        Some(o) if o.success => {
            return Some(Verdict::ok(
                format!("GitHub answered the exporter about {}", o.owner),
                Cause::GithubProxy,
            ))
        }
        Some(o) => o.error.as_ref(),
        None if owner.is_some() || v.github.is_some() => state.error.as_ref(),
        None => None,
    }?;
    let cause = match failure.reason {
        Some(ApiErrorReason::Proxy | ApiErrorReason::ProxyAuth) => Cause::GithubProxy,
        Some(ApiErrorReason::Tls) => Cause::GithubTls,
        _ => {
            return Some(
                Verdict::unknown(
                    format!(
                        "the exporter's requests to GitHub fail: {}",
                        failure.message
                    ),
                    Cause::DataStale,
                )
                .hint("see github_runner_github_owner_errors_total and the exporter's log"),
            )
        }
    };
    Some(Verdict::warn(
        format!("the exporter cannot reach GitHub: {}", failure.message),
        cause,
    ))
}

/// Memory available on the host.
fn memory_available(ctx: &Ctx<'_>, _: &RunnerView<'_>) -> Option<Verdict> {
    if !ctx.enabled(HOST) {
        return Some(Verdict::skipped(
            "the host collector is disabled",
            Cause::HostDegraded,
        ));
    }
    let host = ctx.host.filter(|h| ctx.fresh(HOST) && h.memory_total > 0);
    let Some(host) = host else {
        return Some(Verdict::unknown(ctx.staleness(HOST), Cause::DataStale));
    };
    let ratio = host.memory_available as f64 / host.memory_total as f64;
    let limit = ctx.thresholds.memory_available_warn_ratio.0;
    Some(if ratio < limit {
        Verdict::warn(
            format!("{} of memory available, under {}", pct(ratio), pct(limit)),
            Cause::HostDegraded,
        )
    } else {
        Verdict::ok(
            format!("{} of memory available", pct(ratio)),
            Cause::HostDegraded,
        )
    })
}

/// Data fresh: names the collectors that went silent. The queue's data
/// is not about the runner (its section of the report says when it is
/// stale), and the budget may stretch its polls past its interval.
fn data_fresh(ctx: &Ctx<'_>, _: &RunnerView<'_>) -> Option<Verdict> {
    let mut stale = ctx.stale_collectors();
    stale.retain(|c| *c != crate::collect::queue::NAME);
    Some(if stale.is_empty() {
        Verdict::ok(
            "every enabled collector reported recently",
            Cause::DataStale,
        )
    } else {
        Verdict::warn(
            format!("no recent data from: {}", stale.join(", ")),
            Cause::DataStale,
        )
    })
}
