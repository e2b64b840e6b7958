//! Health rules over a snapshot: the checks behind `/health`, the `check`
//! command and the thresholds of the generated alerts.
//!
//! Each runner gets a list of checks (ok, warn, fail or unknown, each with a
//! reason, a one-line remediation and a runbook) and, when something is
//! wrong, a diagnosis naming the most likely root cause among the known
//! failure modes. Checks whose collector is disabled or silent for
//! `[health] stale_intervals` intervals are unknown, never failing.

use crate::config::HealthConfig;
use crate::identity::{self, RunnerView};
use crate::snapshot::{LogEvent, Section, Snapshot};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Ordered from best to worst, so `max` gives the overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unknown,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A known failure mode: the root causes a diagnosis can name, each with a
/// runbook page in `docs/runbooks/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    PermissionDenied,
    RegistrationDeleted,
    SessionConflict,
    DiskFull,
    ClockSkew,
    CrashLooping,
    ServiceStopped,
    OfflineAtGithub,
    StuckJob,
    HostDegraded,
    DataStale,
}

impl Cause {
    pub const ALL: [Cause; 11] = [
        Cause::PermissionDenied,
        Cause::RegistrationDeleted,
        Cause::SessionConflict,
        Cause::DiskFull,
        Cause::ClockSkew,
        Cause::CrashLooping,
        Cause::ServiceStopped,
        Cause::OfflineAtGithub,
        Cause::StuckJob,
        Cause::HostDegraded,
        Cause::DataStale,
    ];

    /// The runbook page name (without `.md`).
    pub fn runbook(self) -> &'static str {
        match self {
            Cause::PermissionDenied => "permission-denied",
            Cause::RegistrationDeleted => "registration-deleted",
            Cause::SessionConflict => "session-conflict",
            Cause::DiskFull => "disk-full",
            Cause::ClockSkew => "clock-skew",
            Cause::CrashLooping => "crash-looping",
            Cause::ServiceStopped => "service-stopped",
            Cause::OfflineAtGithub => "offline-at-github",
            Cause::StuckJob => "stuck-job",
            Cause::HostDegraded => "host-degraded",
            Cause::DataStale => "exporter-data-stale",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Cause::PermissionDenied => "The exporter cannot read the runner",
            Cause::RegistrationDeleted => "Registration deleted",
            Cause::SessionConflict => "Session conflict",
            Cause::DiskFull => "Work disk full",
            Cause::ClockSkew => "Clock skew",
            Cause::CrashLooping => "Service crash-looping",
            Cause::ServiceStopped => "Service stopped",
            Cause::OfflineAtGithub => "Offline at GitHub although the service runs",
            Cause::StuckJob => "Stuck job",
            Cause::HostDegraded => "Host degraded",
            Cause::DataStale => "Exporter data stale",
        }
    }
}

/// Where runbook links point: the repository's `docs/runbooks/`.
pub fn runbook_url(base: &str, page: &str) -> String {
    format!("{}/{page}.md", base.trim_end_matches('/'))
}

pub const DEFAULT_RUNBOOK_BASE: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/runbooks");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier, e.g. `service_active`.
    pub check: String,
    pub status: Status,
    /// A failing critical check fails the deploy gate.
    pub critical: bool,
    pub reason: String,
    pub remediation: String,
    pub runbook: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub cause: Cause,
    pub title: String,
    pub summary: String,
    pub remediation: String,
    pub runbook: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerHealth {
    pub runner: String,
    pub role: String,
    pub environment: String,
    pub unit: Option<String>,
    pub root: Option<String>,
    pub status: Status,
    /// True when no critical check fails: fit to deploy.
    pub healthy: bool,
    pub checks: Vec<Check>,
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub status: Status,
    pub healthy: bool,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub runners: Vec<RunnerHealth>,
    /// Set when the selection matched no runner (the gate then fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Which runners a request asks about.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub runner: Option<String>,
    pub role: Option<String>,
    pub environment: Option<String>,
}

impl Selector {
    fn matches(&self, v: &RunnerView<'_>) -> bool {
        self.runner.as_deref().is_none_or(|r| r == v.name)
            && self.role.as_deref().is_none_or(|r| r == v.role())
            && self
                .environment
                .as_deref()
                .is_none_or(|e| e == v.environment())
    }

    fn is_empty(&self) -> bool {
        self.runner.is_none() && self.role.is_none() && self.environment.is_none()
    }

    /// Parses `runner=..&role=..&environment=..` (percent-decoded).
    pub fn from_query(query: Option<&str>) -> Result<Selector, String> {
        let mut s = Selector::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v =
                percent_decode(v).ok_or_else(|| format!("invalid percent-encoding in {pair:?}"))?;
            match k {
                "runner" => s.runner = Some(v),
                "role" => s.role = Some(v),
                "environment" => s.environment = Some(v),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: use runner, role or environment"
                    ))
                }
            }
        }
        Ok(s)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                // Two hex digits: from_str_radix alone would take "+e".
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

struct Ctx<'a> {
    health: &'a HealthConfig,
    now: f64,
}

impl Ctx<'_> {
    fn check(
        &self,
        id: &str,
        status: Status,
        critical: bool,
        reason: String,
        remediation: String,
        cause: Cause,
    ) -> Check {
        Check {
            check: id.to_string(),
            status,
            critical,
            reason,
            remediation,
            runbook: runbook_url(&self.health.runbook_base_url, cause.runbook()),
        }
    }

    fn fresh<T>(&self, s: &Section<T>) -> bool {
        s.enabled && s.state.is_some() && !s.is_stale(self.now, self.health.stale_intervals)
    }

    fn staleness<T>(&self, name: &str, s: &Section<T>) -> String {
        if !s.enabled {
            format!("the {name} collector is disabled")
        } else if s.state.is_none() {
            match &s.error {
                Some(e) => format!("the {name} collector has no data yet: {e}"),
                None => format!("the {name} collector has no data yet"),
            }
        } else {
            format!(
                "the {name} collector has not succeeded for {} intervals{}",
                self.health.stale_intervals,
                s.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        }
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

/// The last event that explains a disconnect: the newest failure, looking
/// past the listener's own exit to what made it exit.
fn last_failure(events: &[(LogEvent, f64)]) -> Option<LogEvent> {
    for (e, _) in events.iter().rev() {
        match e {
            LogEvent::Reconnected => return None,
            LogEvent::ListenerExited | LogEvent::UpdateStarted => continue,
            e => return Some(*e),
        }
    }
    None
}

fn runner_checks(ctx: &Ctx<'_>, snap: &Snapshot, v: &RunnerView<'_>) -> (Vec<Check>, Vec<Cause>) {
    let h = ctx.health;
    let mut checks = Vec::new();
    let mut causes: Vec<Cause> = Vec::new();
    let systemd_fresh = ctx.fresh(&snap.systemd);
    let runner_fresh = ctx.fresh(&snap.runner);
    let github_fresh = ctx.fresh(&snap.github);
    let unit_name = v.unit.map(|u| u.name.clone());
    let unit_ref = unit_name
        .clone()
        .unwrap_or_else(|| "the runner's unit".to_string());
    let logs = v.root.map(|r| &r.logs);
    let failure = logs.and_then(|l| last_failure(&l.recent));

    // The exporter must be able to read the runner at all.
    if let Some(root) = v.root {
        if runner_fresh && !root.accessible {
            causes.push(Cause::PermissionDenied);
            checks.push(ctx.check(
                "runner_readable",
                Status::Fail,
                true,
                format!(
                    "cannot read {}: {}",
                    root.root.display(),
                    root.error.as_deref().unwrap_or("permission denied")
                ),
                "give the exporter's user read access to the runner root and _diag (group or ACL), never to its credential files".into(),
                Cause::PermissionDenied,
            ));
        }
    }

    // Service active.
    let service_active = v.unit.map(|u| u.active_state == "active");
    checks.push(match (systemd_fresh, v.unit) {
        (true, Some(u)) => {
            let (status, reason) = match u.active_state.as_str() {
                "active" => (Status::Ok, format!("{} is active ({})", u.name, u.sub_state)),
                "activating" | "reloading" => (Status::Warn, format!("{} is {} ({})", u.name, u.active_state, u.sub_state)),
                other => {
                    causes.push(Cause::ServiceStopped);
                    (Status::Fail, format!("{} is {other} ({}), last exit status {}", u.name, u.sub_state, u.exec_main_status.map_or("unknown".into(), |s| s.to_string())))
                }
            };
            ctx.check("service_active", status, true, reason, format!("sudo systemctl start {}; journalctl -u {} -n 50 tells why it stopped", u.name, u.name), Cause::ServiceStopped)
        }
        (true, None) => ctx.check("service_active", Status::Unknown, true, "no systemd unit found for this runner".into(), "name the unit in [[runner]] unit = \"...\" if it is not called actions.runner.*.service".into(), Cause::ServiceStopped),
        (false, _) => ctx.check("service_active", Status::Unknown, true, ctx.staleness("systemd", &snap.systemd), "check the exporter's access to the system D-Bus".into(), Cause::DataStale),
    });

    // Not crash-looping.
    if let (true, Some(u)) = (systemd_fresh, v.unit) {
        let n = u.recent_restarts;
        let window = crate::duration::Dur(h.crashloop_window.get());
        if n >= h.crashloop_restarts {
            causes.push(Cause::CrashLooping);
            checks.push(ctx.check("not_crash_looping", Status::Fail, true, format!("{} restarted {n} times within {window}", u.name), format!("journalctl -u {} -n 200 for the crash; fix it, then sudo systemctl reset-failed {}", u.name, u.name), Cause::CrashLooping));
        } else {
            checks.push(ctx.check(
                "not_crash_looping",
                Status::Ok,
                true,
                format!("{n} restarts within {window}"),
                String::new(),
                Cause::CrashLooping,
            ));
        }
    }

    // Registered: .runner present locally, and known to GitHub.
    let mut registration = None;
    if let Some(root) = v.root {
        if runner_fresh && root.accessible && root.registration.is_none() {
            registration = Some(ctx.check("registered", Status::Fail, true, format!("{}/.runner is missing: the runner is not configured (registration deleted or an ephemeral runner finished)", root.root.display()), "re-register: ./config.sh remove, then ./config.sh --url ... --token ... with a new registration token".into(), Cause::RegistrationDeleted));
            causes.push(Cause::RegistrationDeleted);
        }
    }
    if registration.is_none() {
        if let (true, Some(g)) = (github_fresh, v.github) {
            if !g.registered {
                causes.push(Cause::RegistrationDeleted);
                registration = Some(ctx.check(
                    "registered",
                    Status::Fail,
                    true,
                    format!(
                        "GitHub answers 404 for runner id {}",
                        g.id.map_or("?".into(), |i| i.to_string())
                    ),
                    "re-register the runner with ./config.sh and a new registration token".into(),
                    Cause::RegistrationDeleted,
                ));
            }
        }
    }
    if registration.is_none() && failure == Some(LogEvent::RegistrationDeleted) {
        causes.push(Cause::RegistrationDeleted);
        registration = Some(ctx.check(
            "registered",
            Status::Fail,
            true,
            "the runner's log says its registration was deleted from the server".into(),
            "re-register the runner with ./config.sh and a new registration token".into(),
            Cause::RegistrationDeleted,
        ));
    }
    checks.push(registration.unwrap_or_else(|| {
        let ok = v.root.is_some_and(|r| r.registration.is_some())
            || v.github.is_some_and(|g| g.registered);
        if ok {
            ctx.check(
                "registered",
                Status::Ok,
                true,
                "registered".into(),
                String::new(),
                Cause::RegistrationDeleted,
            )
        } else {
            ctx.check(
                "registered",
                Status::Unknown,
                true,
                "no registration data".into(),
                String::new(),
                Cause::RegistrationDeleted,
            )
        }
    }));

    // Online at GitHub while the service runs.
    checks.push(if !snap.github.enabled {
        ctx.check("online_at_github", Status::Unknown, true, "GitHub API not configured ([github] scope is off)".into(), "configure [github] credentials to compare with GitHub's view".into(), Cause::OfflineAtGithub)
    } else if !github_fresh {
        ctx.check("online_at_github", Status::Unknown, true, ctx.staleness("github", &snap.github), "see github_runner_github_api_errors_total and the exporter's log".into(), Cause::DataStale)
    } else {
        match v.github {
            Some(g) if g.registered && g.online => ctx.check("online_at_github", Status::Ok, true, format!("online{}", if g.busy { ", busy" } else { ", idle" }), String::new(), Cause::OfflineAtGithub),
            Some(g) if g.registered => {
                let (status, reason) = if service_active == Some(false) {
                    (Status::Fail, "offline at GitHub (the service is not running)".to_string())
                } else {
                    causes.push(match failure {
                        Some(LogEvent::SessionConflict) => Cause::SessionConflict,
                        Some(LogEvent::ClockSkew) => Cause::ClockSkew,
                        _ => Cause::OfflineAtGithub,
                    });
                    (Status::Fail, "offline at GitHub although the service runs".to_string())
                };
                ctx.check("online_at_github", status, true, reason, format!("journalctl -u {unit_ref} and the runner's _diag/Runner_*.log for connect errors, 401s or session conflicts"), Cause::OfflineAtGithub)
            }
            Some(_) => ctx.check("online_at_github", Status::Unknown, true, "not registered at GitHub".into(), String::new(), Cause::RegistrationDeleted),
            None => ctx.check("online_at_github", Status::Unknown, true, "GitHub has not been asked about this runner yet".into(), String::new(), Cause::OfflineAtGithub),
        }
    });

    // Listener connected, from the runner's own log.
    checks.push(match (runner_fresh, logs.and_then(|l| l.connected)) {
        (false, _) => ctx.check("listener_connected", Status::Unknown, true, ctx.staleness("runner", &snap.runner), String::new(), Cause::DataStale),
        (true, None) => ctx.check("listener_connected", Status::Unknown, true, "the runner's log says nothing about its connection yet".into(), String::new(), Cause::OfflineAtGithub),
        (true, Some(true)) => ctx.check("listener_connected", Status::Ok, true, "listening for jobs".into(), String::new(), Cause::OfflineAtGithub),
        (true, Some(false)) => {
            let exit = logs.and_then(|l| l.listener_exit_code);
            let (cause, why) = match (failure, exit) {
                (Some(LogEvent::SessionConflict), _) | (_, Some(5)) => (Cause::SessionConflict, "a session for this runner already exists (another host runs the same registration)".to_string()),
                (Some(LogEvent::RegistrationDeleted), _) => (Cause::RegistrationDeleted, "the registration was deleted from the server".to_string()),
                (Some(LogEvent::AuthFailed), _) => (Cause::OfflineAtGithub, "authentication failed (credentials)".to_string()),
                (Some(LogEvent::ClockSkew), _) => (Cause::ClockSkew, "the clock is out of sync with GitHub's".to_string()),
                (Some(LogEvent::ConnectError), _) => (Cause::OfflineAtGithub, "cannot reach GitHub (network)".to_string()),
                (Some(LogEvent::UpdateFailed), _) => (Cause::OfflineAtGithub, "a self-update failed".to_string()),
                _ => (Cause::OfflineAtGithub, match exit { Some(c) => format!("the listener exited with return code {c}"), None => "disconnected".to_string() }),
            };
            causes.push(cause);
            ctx.check("listener_connected", Status::Fail, true, format!("listener disconnected: {why}"), match cause {
                Cause::SessionConflict => "make sure only one host runs this registration (the secondary must use its own), then restart the service".to_string(),
                Cause::ClockSkew => "sync the clock (timedatectl, chrony), then restart the service".to_string(),
                _ => format!("sudo systemctl restart {unit_ref}; check network and proxy access to GitHub"),
            }, cause)
        }
    });

    // No stuck job.
    if let (true, Some(l)) = (runner_fresh, logs) {
        let max = h.max_job_duration.as_secs_f64();
        checks.push(match &l.current_job {
            Some(j) if j.elapsed(ctx.now) > max => {
                causes.push(Cause::StuckJob);
                ctx.check("job_not_stuck", Status::Fail, true, format!("job {:?} has run for {} (limit {})", j.name, human_duration(j.elapsed(ctx.now)), h.max_job_duration), "cancel the run in GitHub; if it will not stop, sudo systemctl restart the runner's unit".into(), Cause::StuckJob)
            }
            Some(j) => ctx.check("job_not_stuck", Status::Ok, true, format!("job {:?} running for {}", j.name, human_duration(j.elapsed(ctx.now))), String::new(), Cause::StuckJob),
            None => ctx.check("job_not_stuck", Status::Ok, true, "idle".into(), String::new(), Cause::StuckJob),
        });
    }

    // Work filesystem free space.
    if let (true, Some(fs)) = (runner_fresh, v.root.and_then(|r| r.work_fs)) {
        let free = if fs.size > 0 {
            fs.avail as f64 / fs.size as f64
        } else {
            0.0
        };
        let detail = format!(
            "{} free on the work filesystem ({} of {} bytes)",
            pct(free),
            fs.avail,
            fs.size
        );
        let fix =
            "clean the work folder (_work) and docker images; grow the filesystem".to_string();
        checks.push(if free < h.disk_free_fail_ratio.0 {
            causes.push(Cause::DiskFull);
            ctx.check(
                "work_disk_space",
                Status::Fail,
                true,
                format!("{detail}, under {}", pct(h.disk_free_fail_ratio.0)),
                fix,
                Cause::DiskFull,
            )
        } else if free < h.disk_free_warn_ratio.0 {
            causes.push(Cause::DiskFull);
            ctx.check(
                "work_disk_space",
                Status::Warn,
                true,
                format!("{detail}, under {}", pct(h.disk_free_warn_ratio.0)),
                fix,
                Cause::DiskFull,
            )
        } else {
            ctx.check(
                "work_disk_space",
                Status::Ok,
                true,
                detail,
                String::new(),
                Cause::DiskFull,
            )
        });
    }

    // Clock in sync (warn only: the listener check fails when it matters).
    if let (true, Some(l)) = (runner_fresh, logs) {
        let skewed = l
            .recent
            .iter()
            .rev()
            .take_while(|(e, _)| *e != LogEvent::Reconnected)
            .any(|(e, _)| *e == LogEvent::ClockSkew);
        if skewed {
            causes.push(Cause::ClockSkew);
            checks.push(ctx.check("clock_in_sync", Status::Warn, false, "the runner's log reports the clock out of sync with the server by more than five minutes".into(), "sync the clock (timedatectl set-ntp true, chrony)".into(), Cause::ClockSkew));
        }
    }

    // Memory available on the host.
    checks.push(match (ctx.fresh(&snap.host), snap.host.state.as_ref()) {
        (true, Some(host)) if host.memory_total > 0 => {
            let ratio = host.memory_available as f64 / host.memory_total as f64;
            if ratio < h.memory_available_warn_ratio.0 {
                causes.push(Cause::HostDegraded);
                ctx.check(
                    "memory_available",
                    Status::Warn,
                    false,
                    format!(
                        "{} of memory available, under {}",
                        pct(ratio),
                        pct(h.memory_available_warn_ratio.0)
                    ),
                    "find what holds memory (leftover job processes, containers)".into(),
                    Cause::HostDegraded,
                )
            } else {
                ctx.check(
                    "memory_available",
                    Status::Ok,
                    false,
                    format!("{} of memory available", pct(ratio)),
                    String::new(),
                    Cause::HostDegraded,
                )
            }
        }
        _ => ctx.check(
            "memory_available",
            Status::Unknown,
            false,
            ctx.staleness("host", &snap.host),
            String::new(),
            Cause::DataStale,
        ),
    });

    // Data fresh: name the collectors that went silent.
    let stale: Vec<&str> = snap
        .sections()
        .iter()
        .filter(|(_, s)| s.enabled && s.is_stale(ctx.now, h.stale_intervals))
        .map(|(n, _)| *n)
        .collect();
    checks.push(if stale.is_empty() {
        ctx.check(
            "data_fresh",
            Status::Ok,
            false,
            "every enabled collector reported recently".into(),
            String::new(),
            Cause::DataStale,
        )
    } else {
        causes.push(Cause::DataStale);
        ctx.check(
            "data_fresh",
            Status::Warn,
            false,
            format!("no recent data from: {}", stale.join(", ")),
            "see github_runner_exporter_collector_success and the exporter's log".into(),
            Cause::DataStale,
        )
    });
    (checks, causes)
}

/// The order in which causes explain each other: the first present wins.
const CAUSE_PRIORITY: [Cause; 11] = [
    Cause::PermissionDenied,
    Cause::RegistrationDeleted,
    Cause::SessionConflict,
    Cause::DiskFull,
    Cause::ClockSkew,
    Cause::CrashLooping,
    Cause::ServiceStopped,
    Cause::OfflineAtGithub,
    Cause::StuckJob,
    Cause::HostDegraded,
    Cause::DataStale,
];

fn diagnose(
    ctx: &Ctx<'_>,
    v: &RunnerView<'_>,
    checks: &[Check],
    causes: &[Cause],
) -> Option<Diagnosis> {
    let cause = CAUSE_PRIORITY.into_iter().find(|c| causes.contains(c))?;
    let unit = v
        .unit
        .map_or("the runner's unit".to_string(), |u| u.name.clone());
    let failing: Vec<&Check> = checks.iter().filter(|c| c.status >= Status::Warn).collect();
    let (summary, remediation) = match cause {
        Cause::PermissionDenied => ("the exporter cannot read the runner's root or _diag, so its other checks are blind".to_string(), "add the exporter's user to the runner user's group (or set an ACL on the root and _diag), never on credential files; see the runbook".to_string()),
        Cause::RegistrationDeleted => ("the runner is no longer registered: its .runner is gone, GitHub answers 404, or its log says the registration was deleted; the service cannot get jobs".to_string(), "re-register with ./config.sh using a new registration token, then start the service".to_string()),
        Cause::SessionConflict => ("another process holds this runner's session (the same registration runs on two hosts, e.g. primary and secondary); the listener gave up".to_string(), format!("stop the duplicate so each host has its own registration, then sudo systemctl restart {unit}")),
        Cause::DiskFull => ("the work filesystem is nearly full: jobs fail, and the runner may crash".to_string(), "free space in the work folder (_work, docker images, caches) or grow the filesystem".to_string()),
        Cause::ClockSkew => ("the host clock differs from GitHub's by more than five minutes: authentication fails".to_string(), format!("sync the clock (timedatectl set-ntp true), then sudo systemctl restart {unit}")),
        Cause::CrashLooping => ("systemd keeps restarting the runner: it starts and dies".to_string(), format!("journalctl -u {unit} -n 200 and the newest _diag/Runner_*.log show the crash")),
        Cause::ServiceStopped => ("the runner's systemd unit is not running".to_string(), format!("sudo systemctl start {unit}; journalctl -u {unit} -n 50 tells why it stopped")),
        Cause::OfflineAtGithub => ("GitHub does not see the runner although the service runs (credentials, network or proxy)".to_string(), format!("read the newest _diag/Runner_*.log for connect errors or 401s; check network access to GitHub; sudo systemctl restart {unit}")),
        Cause::StuckJob => ("a job has run longer than the configured maximum and holds the runner".to_string(), "cancel the run in GitHub; restart the unit if it does not stop".to_string()),
        Cause::HostDegraded => ("the host is short of memory".to_string(), "find and stop what holds memory".to_string()),
        Cause::DataStale => ("some of the exporter's data is stale, so part of the picture is unknown".to_string(), "check github_runner_exporter_collector_success and the exporter's log".to_string()),
    };
    let mut summary = summary;
    if failing.len() > 1 {
        let names: Vec<&str> = failing.iter().map(|c| c.check.as_str()).collect();
        summary.push_str(&format!(" (failing or warning: {})", names.join(", ")));
    }
    Some(Diagnosis {
        cause,
        title: cause.title().to_string(),
        summary,
        remediation,
        runbook: runbook_url(&ctx.health.runbook_base_url, cause.runbook()),
    })
}

/// Evaluates every selected runner.
pub fn evaluate(snap: &Snapshot, selector: &Selector, now: f64) -> Report {
    let ctx = Ctx {
        health: &snap.health_config,
        now,
    };
    let views = identity::runners(snap);
    let mut runners = Vec::new();
    for v in views.iter().filter(|v| selector.matches(v)) {
        let (checks, causes) = runner_checks(&ctx, snap, v);
        let status = checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Unknown);
        let healthy = !checks
            .iter()
            .any(|c| c.critical && c.status == Status::Fail);
        let diagnosis = if status >= Status::Warn {
            diagnose(&ctx, v, &checks, &causes)
        } else {
            None
        };
        runners.push(RunnerHealth {
            runner: v.name.clone(),
            role: v.role().to_string(),
            environment: v.environment().to_string(),
            unit: v.unit.map(|u| u.name.clone()),
            root: v.root.map(|r| r.root.display().to_string()),
            status,
            healthy,
            checks,
            diagnosis,
        });
    }
    let message = if runners.is_empty() {
        Some(if selector.is_empty() {
            "no runner found on this host".to_string()
        } else {
            "no runner matches the selection".to_string()
        })
    } else {
        None
    };
    let status = runners
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Fail);
    let healthy = !runners.is_empty() && runners.iter().all(|r| r.healthy);
    Report {
        status: if runners.is_empty() {
            Status::Fail
        } else {
            status
        },
        healthy,
        generated_at: crate::timefmt::rfc3339_millis(now),
        runners,
        message,
    }
}

/// Exit code of `check`: 0 healthy, 1 warnings only, 2 failing.
pub fn exit_code(report: &Report) -> u8 {
    if !report.healthy || report.status == Status::Fail {
        2
    } else if report.status == Status::Warn {
        1
    } else {
        0
    }
}

/// The plain-text rendering used by `/health` and `check`.
pub fn render_text(report: &Report, color: bool) -> String {
    let paint = |s: Status, text: &str| -> String {
        if !color {
            return text.to_string();
        }
        let code = match s {
            Status::Ok => "32",
            Status::Unknown => "90",
            Status::Warn => "33",
            Status::Fail => "31;1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let mut out = String::new();
    let overall = if report.healthy {
        "HEALTHY"
    } else {
        "UNHEALTHY"
    };
    out.push_str(&format!(
        "{} ({}) at {}\n",
        paint(report.status, overall),
        report.status,
        report.generated_at
    ));
    if let Some(m) = &report.message {
        out.push_str(&format!("{m}\n"));
    }
    for r in &report.runners {
        out.push('\n');
        let mut head = format!("runner {}", r.runner);
        if !r.role.is_empty() {
            head.push_str(&format!("  role={}", r.role));
        }
        if !r.environment.is_empty() {
            head.push_str(&format!("  environment={}", r.environment));
        }
        let status = r.status.as_str().to_uppercase();
        out.push_str(&format!("{head}  {}\n", paint(r.status, &status)));
        let width = r
            .checks
            .iter()
            .map(|c| c.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!(
            "  {:<width$}  {:<7}  {}\n",
            "CHECK", "STATUS", "DETAIL"
        ));
        for c in &r.checks {
            let st = format!("{:<7}", c.status.as_str().to_uppercase());
            out.push_str(&format!(
                "  {:<width$}  {}  {}\n",
                c.check,
                paint(c.status, &st),
                c.reason
            ));
        }
        if let Some(d) = &r.diagnosis {
            out.push_str(&format!(
                "\n  Diagnosis: {}\n",
                paint(Status::Fail, &d.title)
            ));
            out.push_str(&format!("    {}\n", d.summary));
            out.push_str(&format!("    Fix:     {}\n", d.remediation));
            out.push_str(&format!("    Runbook: {}\n", d.runbook));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RunnerConfig, Scope};
    use crate::snapshot::*;

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
        let mut s = Snapshot::new(&config);
        for meta in [
            &mut s.host.last_success,
            &mut s.systemd.last_success,
            &mut s.runner.last_success,
            &mut s.github.last_success,
        ] {
            *meta = Some(NOW - 1.0);
        }
        s.host.state = Some(HostState {
            memory_total: 1000,
            memory_available: 500,
            ..Default::default()
        });
        s.systemd.state = Some(SystemdState {
            units: vec![UnitState {
                name: "actions.runner.acme-app.r1.service".into(),
                active_state: "active".into(),
                sub_state: "running".into(),
                working_directory: Some("/opt/r1".into()),
                ..Default::default()
            }],
        });
        let logs = LogState {
            connected: Some(true),
            ..Default::default()
        };
        s.runner.state = Some(RunnerState {
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
        });
        s.github.state = Some(GithubState {
            runners: vec![GithubRunner {
                name: "r1".into(),
                root: Some("/opt/r1".into()),
                id: Some(23),
                registered: true,
                online: true,
                ..Default::default()
            }],
            ..Default::default()
        });
        s
    }

    fn unit(s: &mut Snapshot) -> &mut UnitState {
        &mut s.systemd.state.as_mut().unwrap().units[0]
    }
    fn root(s: &mut Snapshot) -> &mut RunnerRoot {
        &mut s.runner.state.as_mut().unwrap().roots[0]
    }
    fn gh(s: &mut Snapshot) -> &mut GithubRunner {
        &mut s.github.state.as_mut().unwrap().runners[0]
    }

    fn eval(s: &Snapshot) -> RunnerHealth {
        let r = evaluate(s, &Selector::default(), NOW);
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
        let report = evaluate(&healthy(), &Selector::default(), NOW);
        assert_eq!(exit_code(&report), 0);
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
                    s.host.state.as_mut().unwrap().memory_available = 50;
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
        s.github = Section::new(false, s.github.interval);
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
        s.systemd.last_success = Some(NOW - 1000.0);
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
        let by = |q: &str| evaluate(&s, &Selector::from_query(Some(q)).unwrap(), NOW);
        assert_eq!(by("role=primary").runners.len(), 1);
        assert_eq!(by("runner=r1&environment=production").runners.len(), 1);
        let none = by("role=secondary");
        assert!(none.runners.is_empty() && !none.healthy);
        assert_eq!(
            none.message.as_deref(),
            Some("no runner matches the selection")
        );
        assert_eq!(exit_code(&none), 2);
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
        let report = evaluate(&s, &Selector::default(), NOW);
        let text = render_text(&report, false);
        assert!(text.starts_with("UNHEALTHY (fail)"), "{text}");
        assert!(text.contains("service_active"));
        assert!(text.contains("Diagnosis: Service stopped"), "{text}");
        assert!(text.contains("Runbook: "));
        assert!(!text.contains('\x1b'));
        assert!(render_text(&report, true).contains("\x1b[31;1m"));
        assert_eq!(exit_code(&report), 2);
    }
}
