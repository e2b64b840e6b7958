//! Health: the checks behind `/health`, the `check` command and the
//! thresholds of the generated alerts.
//!
//! - `model`: what an evaluation produces (Status, Check, Diagnosis,
//!   Report).
//! - `causes`: the cause table, in priority order: title, runbook page,
//!   summary and fix of every failure mode, each written once.
//! - `checks`: one function per check; each returns its outcome and the
//!   cause it points to.
//! - `queue`: the report's queue section (jobs waiting for a runner,
//!   why, and the runners closest to their labels); it never changes the
//!   gate.
//! - `render`: the text rendering of a report.
//!
//! [`evaluate`] runs every check for each selected runner; the diagnosis
//! is the first cause, in table order, that a failing or warning check
//! points to. A check that cannot be evaluated (its collector is down or
//! silent for `[health] stale_intervals` intervals, or it has no data) is
//! unknown, and the gate fails closed on a critical unknown check: unknown
//! is not healthy (`[health] unknown = "warn"` opts out). A check that does
//! not apply (GitHub not configured) is skipped: neutral.

pub mod causes;
pub mod checks;
pub mod model;
pub mod queue;
pub mod render;

pub use causes::Cause;
pub use model::{Check, Diagnosis, Report, RunnerHealth, Status};
pub use render::{render, render_text, Format};

use crate::config::{DockerMode, HealthConfig, LatestVersionSetting, UnknownPolicy, DOCKER_UNIT};
use crate::identity::{self, Lifecycle, RunnerView};
use crate::snapshot::{GithubState, HostState, Snapshot, SystemdState, UnitState};
use checks::{CheckDef, Verdict, CHECKS};

/// Where runbook links point: the repository's `docs/runbooks/`.
pub fn runbook_url(base: &str, page: &str) -> String {
    format!("{}/{page}.md", base.trim_end_matches('/'))
}

/// What one collector's data is worth right now.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    pub name: &'static str,
    pub enabled: bool,
    pub has_data: bool,
    /// Not succeeded within `[health] stale_intervals` of its interval.
    pub stale: bool,
    /// The last run's error, if it failed.
    pub error: Option<String>,
    /// Seconds its runs have been failing.
    pub failing_for: Option<f64>,
    /// Seconds since its last success (None: never).
    pub success_age: Option<f64>,
    /// How often it is expected to report.
    pub interval: std::time::Duration,
}

/// Every collector's [`Source`] in a snapshot, at wall-clock time `now`.
pub fn sources(snap: &Snapshot, now: f64) -> Vec<Source> {
    let intervals = snap.settings.config.health.stale_intervals;
    snap.sections
        .iter()
        .map(|s| Source {
            name: s.name,
            enabled: s.meta.enabled,
            has_data: s.has_data(),
            stale: s.meta.is_stale(now, intervals),
            error: s.meta.error.clone(),
            failing_for: s.meta.failing_for(),
            success_age: s.meta.success_age(now),
            interval: s.meta.interval,
        })
        .collect()
}

/// The latest actions/runner version runners are compared with.
#[derive(Clone, Debug, PartialEq)]
pub struct Latest {
    pub version: String,
    /// `github` (the releases API) or `config` (`[github]
    /// runner_latest_version`).
    pub source: &'static str,
}

/// The latest runner version: `[github] runner_latest_version`, else what
/// GitHub's releases API last said (None: off, or not known yet).
pub fn latest_version(snap: &Snapshot) -> Option<Latest> {
    match snap.settings.config.github.latest_version() {
        LatestVersionSetting::Off => None,
        LatestVersionSetting::Fixed(version) => Some(Latest {
            version,
            source: "config",
        }),
        LatestVersionSetting::Ask => snap
            .state::<GithubState>()
            .and_then(|g| g.latest_runner.as_ref())
            .map(|l| Latest {
                version: l.version.clone(),
                source: "github",
            }),
    }
}

/// Why Docker is watched for a runner, and whether it is critical there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DockerWatch {
    /// The runner needs Docker: Docker unavailable fails the gate.
    /// Otherwise it is a warning.
    pub required: bool,
    pub why: &'static str,
}

/// Whether Docker is watched for `v` (`[[runner]] docker`, default
/// `auto`): always with `true`; under `auto` when the runner has run
/// container jobs (required) or docker.service exists (a warning only:
/// the runner may never run one).
pub fn docker_watch(v: &RunnerView<'_>, dependencies: &[UnitState]) -> Option<DockerWatch> {
    match v.config.map_or(DockerMode::Auto, |c| c.docker) {
        DockerMode::Off => None,
        DockerMode::On => Some(DockerWatch {
            required: true,
            why: "[[runner]] docker = true",
        }),
        DockerMode::Auto => {
            if v.root.is_some_and(|r| r.logs.container_job_at.is_some()) {
                Some(DockerWatch {
                    required: true,
                    why: "the runner has run container jobs",
                })
            } else if dependencies
                .iter()
                .any(|u| u.name == DOCKER_UNIT && u.load_state != "not-found")
            {
                Some(DockerWatch {
                    required: false,
                    why: "docker.service exists",
                })
            } else {
                None
            }
        }
    }
}

/// What the checks read besides the runners themselves.
pub struct Inputs<'a> {
    pub thresholds: &'a HealthConfig,
    /// Every collector, in registry order.
    pub sources: &'a [Source],
    pub host: Option<&'a HostState>,
    /// Units the runners depend on (docker.service...), from the systemd
    /// collector.
    pub dependencies: &'a [UnitState],
    /// The latest runner release, when known.
    pub latest: Option<Latest>,
    /// The GitHub collector's data, published on failures too (its
    /// owners' errors, the host clock against GitHub's).
    pub github: Option<&'a GithubState>,
    /// Wall-clock time of the evaluation, seconds since the epoch.
    pub now: f64,
}

/// What a check function sees.
pub struct Ctx<'a> {
    pub thresholds: &'a HealthConfig,
    pub host: Option<&'a HostState>,
    pub dependencies: &'a [UnitState],
    pub latest: Option<&'a Latest>,
    pub github: Option<&'a GithubState>,
    pub now: f64,
    sources: &'a [Source],
}

impl Ctx<'_> {
    fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn enabled(&self, name: &str) -> bool {
        self.source(name).is_some_and(|s| s.enabled)
    }

    /// The collector is enabled, has data and reported recently.
    pub fn fresh(&self, name: &str) -> bool {
        self.source(name)
            .is_some_and(|s| s.enabled && s.has_data && !s.stale)
    }

    /// How long data from a collector stays usable: `[health]
    /// stale_intervals` of its interval.
    pub fn max_age(&self, name: &str) -> std::time::Duration {
        let interval = self.source(name).map(|s| s.interval).unwrap_or_default();
        interval * self.thresholds.stale_intervals.max(1)
    }

    /// Why a collector's data cannot be used: what is unknown, and why (the
    /// last error and how long it has lasted).
    pub fn staleness(&self, name: &str) -> String {
        let Some(s) = self.source(name) else {
            return format!("the {name} collector is not built in");
        };
        let last = match s.success_age {
            Some(age) => format!("last success {} ago", checks::human_duration(age)),
            None => "never succeeded".to_string(),
        };
        let failing = match (&s.error, s.failing_for) {
            (Some(e), Some(age)) => {
                format!("failing for {} ({last}): {e}", checks::human_duration(age))
            }
            (Some(e), None) => format!("failing ({last}): {e}"),
            (None, _) => last,
        };
        if !s.enabled {
            format!("the {name} collector is disabled")
        } else if !s.has_data && s.error.is_none() {
            format!("the {name} collector has not reported yet")
        } else if !s.has_data {
            format!("the {name} collector has no data: {failing}")
        } else {
            format!(
                "the {name} collector's data is older than {} intervals: {failing}",
                self.thresholds.stale_intervals
            )
        }
    }

    /// Enabled collectors that went silent, in registry order.
    pub fn stale_collectors(&self) -> Vec<&'static str> {
        self.sources
            .iter()
            .filter(|s| s.enabled && s.stale)
            .map(|s| s.name)
            .collect()
    }
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
        Query::parse(query).map(|q| q.selector)
    }
}

/// What a `/health` request asks: which runners, and in which format
/// (None: from the `Accept` header).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub selector: Selector,
    pub format: Option<Format>,
}

impl Query {
    /// Parses `runner=..&role=..&environment=..&format=..` (percent-decoded).
    pub fn parse(query: Option<&str>) -> Result<Query, String> {
        let mut q = Query::default();
        for (k, v) in crate::query::pairs(query.unwrap_or(""))? {
            match k.as_str() {
                "runner" => q.selector.runner = Some(v),
                "role" => q.selector.role = Some(v),
                "environment" => q.selector.environment = Some(v),
                "format" => {
                    q.format = Some(Format::parse(&v).ok_or_else(|| {
                        format!("unknown format {v:?}: use text, json, markdown or github")
                    })?)
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: use runner, role, environment or format"
                    ))
                }
            }
        }
        Ok(q)
    }
}

/// The unit name used in fixes when a runner has none.
fn unit_ref(v: &RunnerView<'_>) -> String {
    v.unit
        .map_or_else(|| "the runner's unit".to_string(), |u| u.name.clone())
}

fn check_of(ctx: &Ctx<'_>, def: &CheckDef, verdict: &Verdict, unit: &str) -> Check {
    let critical = verdict.critical.unwrap_or(def.critical);
    let remediation = match verdict.status {
        Status::Ok | Status::Skipped => String::new(),
        Status::Unknown => verdict.hint.map(String::from).unwrap_or_default(),
        Status::Warn | Status::Fail => verdict.cause.fix(unit),
    };
    Check {
        check: def.id.to_string(),
        status: verdict.status,
        critical,
        reason: verdict.reason.clone(),
        remediation,
        runbook: runbook_url(&ctx.thresholds.runbook_base_url, verdict.cause.runbook()),
    }
}

/// The first cause, in table order, that a failing or warning check
/// points to; when only critical checks that cannot be evaluated close the
/// gate, that the exporter cannot see the runner.
fn diagnose(
    ctx: &Ctx<'_>,
    verdicts: &[(&CheckDef, Verdict)],
    unit: &str,
    blind: bool,
) -> Option<Diagnosis> {
    let pointed = |c: &Cause| {
        verdicts
            .iter()
            .any(|(_, v)| v.points && v.status >= Status::Warn && v.cause == *c)
    };
    let cause = Cause::ALL
        .iter()
        .copied()
        .find(pointed)
        .or(blind.then_some(Cause::DataStale))?;
    let info = cause.info();
    let mut summary = info.summary.to_string();
    let failing: Vec<&str> = verdicts
        .iter()
        .filter(|(_, v)| v.status >= Status::Warn)
        .map(|(def, _)| def.id)
        .collect();
    let unknown: Vec<&str> = verdicts
        .iter()
        .filter(|(def, v)| v.critical.unwrap_or(def.critical) && v.status == Status::Unknown)
        .map(|(def, _)| def.id)
        .collect();
    if failing.len() > 1 || (!failing.is_empty() && !unknown.is_empty()) {
        summary.push_str(&format!(" (failing or warning: {})", failing.join(", ")));
    }
    if !unknown.is_empty() {
        summary.push_str(&format!(" (cannot be evaluated: {})", unknown.join(", ")));
    }
    Some(Diagnosis {
        cause,
        title: info.title.to_string(),
        summary,
        remediation: cause.fix(unit),
        runbook: runbook_url(&ctx.thresholds.runbook_base_url, info.runbook),
    })
}

/// What the checks found about one runner.
struct Assessment {
    status: Status,
    healthy: bool,
    checks: Vec<Check>,
    diagnosis: Option<Diagnosis>,
}

/// An ephemeral runner that finished: not a failure, and no runner that
/// can take a deploy either. Its checks do not apply; one line says why.
fn finished(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Assessment {
    let logs = v.root.map(|r| &r.logs);
    let when = logs
        .and_then(|l| l.onetime_exit_at.or(l.last_entry))
        .map(|t| format!(" at {}", crate::timefmt::rfc3339_millis(t)))
        .unwrap_or_default();
    let exit = match logs.and_then(|l| l.listener_exit_code) {
        Some(c) => format!(", return code {c}"),
        None => String::new(),
    };
    let reason = format!(
        "an ephemeral runner that ran its one job and exited{when}{exit}, deleting its registration (by design): it takes no more jobs, and is not counted as a runner that can take a deploy; its replacement registers as a new runner"
    );
    Assessment {
        status: Status::Skipped,
        healthy: false,
        checks: vec![Check {
            check: "lifecycle".to_string(),
            status: Status::Skipped,
            critical: false,
            reason,
            remediation: String::new(),
            runbook: runbook_url(&ctx.thresholds.runbook_base_url, FINISHED_RUNBOOK),
        }],
        diagnosis: None,
    }
}

/// The runbook page of a finished ephemeral runner.
pub const FINISHED_RUNBOOK: &str = "ephemeral-finished";

/// Every check of a runner that can take jobs, and the diagnosis.
fn assess(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> Assessment {
    let verdicts: Vec<(&CheckDef, Verdict)> = CHECKS
        .iter()
        .filter_map(|c| (c.run)(ctx, v).map(|verdict| (c, verdict)))
        .collect();
    let unit = unit_ref(v);
    let checks: Vec<Check> = verdicts
        .iter()
        .map(|(def, verdict)| check_of(ctx, def, verdict, &unit))
        .collect();
    let status = checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Unknown);
    let failing = checks
        .iter()
        .any(|c| c.critical && c.status == Status::Fail);
    // Unknown is not healthy: a critical check that cannot be evaluated
    // closes the gate, unless the operator opted out.
    let blind = ctx.thresholds.unknown == UnknownPolicy::Fail
        && checks
            .iter()
            .any(|c| c.critical && c.status == Status::Unknown);
    let diagnosis = if status >= Status::Warn || blind {
        diagnose(ctx, &verdicts, &unit, blind)
    } else {
        None
    };
    Assessment {
        status,
        healthy: !failing && !blind,
        checks,
        diagnosis,
    }
}

/// One runner's checks and diagnosis.
fn runner_health(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> RunnerHealth {
    let lifecycle = v.lifecycle();
    let a = if lifecycle == Some(Lifecycle::Finished) && ctx.fresh(checks::RUNNER) {
        finished(ctx, v)
    } else {
        assess(ctx, v)
    };
    RunnerHealth {
        runner: v.name.clone(),
        role: v.role().to_string(),
        environment: v.environment().to_string(),
        unit: v.unit.map(|u| u.name.clone()),
        root: v.root.map(|r| r.root.display().to_string()),
        status: a.status,
        healthy: a.healthy,
        lifecycle,
        checks: a.checks,
        diagnosis: a.diagnosis,
    }
}

/// Evaluates every selected runner.
pub fn evaluate(runners: &[RunnerView<'_>], inputs: &Inputs<'_>, selector: &Selector) -> Report {
    let ctx = Ctx {
        thresholds: inputs.thresholds,
        host: inputs.host,
        dependencies: inputs.dependencies,
        latest: inputs.latest.as_ref(),
        github: inputs.github,
        now: inputs.now,
        sources: inputs.sources,
    };
    let runners: Vec<RunnerHealth> = runners
        .iter()
        .filter(|v| selector.matches(v))
        .map(|v| runner_health(&ctx, v))
        .collect();
    // A finished ephemeral runner neither takes a deploy nor fails one:
    // the gate is about the others.
    let deployable: Vec<&RunnerHealth> = runners
        .iter()
        .filter(|r| r.lifecycle != Some(Lifecycle::Finished))
        .collect();
    let message = if runners.is_empty() {
        Some(if selector.is_empty() {
            "no runner found on this host".to_string()
        } else {
            "no runner matches the selection".to_string()
        })
    } else if deployable.is_empty() {
        let names: Vec<&str> = runners.iter().map(|r| r.runner.as_str()).collect();
        Some(format!(
            "no runner here can take a deploy: {} finished (ephemeral runners that ran their one job) and no replacement has registered yet",
            names.join(", ")
        ))
    } else {
        None
    };
    let status = if deployable.is_empty() {
        Status::Fail
    } else {
        runners
            .iter()
            .map(|r| r.status)
            .max()
            .unwrap_or(Status::Fail)
    };
    let healthy = !deployable.is_empty() && deployable.iter().all(|r| r.healthy);
    Report {
        status,
        healthy,
        generated_at: crate::timefmt::rfc3339_millis(inputs.now),
        runners,
        message,
        queue: None,
    }
}

/// Evaluates the runners of a snapshot: joins the collectors' views of
/// each runner, then [`evaluate`]s them with the snapshot's freshness and
/// thresholds.
pub fn evaluate_snapshot(snap: &Snapshot, selector: &Selector, now: f64) -> Report {
    evaluate_views(snap, &identity::runners(snap), selector, now)
}

/// [`evaluate`]s runners already joined from `snap`.
pub fn evaluate_views(
    snap: &Snapshot,
    views: &[RunnerView<'_>],
    selector: &Selector,
    now: f64,
) -> Report {
    let sources = sources(snap, now);
    let inputs = Inputs {
        thresholds: &snap.settings.config.health,
        sources: &sources,
        host: snap.state::<HostState>(),
        dependencies: snap
            .state::<SystemdState>()
            .map_or(&[], |s| s.dependencies.as_slice()),
        latest: latest_version(snap),
        github: snap.state::<GithubState>(),
        now,
    };
    let mut report = evaluate(views, &inputs, selector);
    report.queue = queue::report(snap);
    report
}

#[cfg(test)]
mod tests;
