//! Health: the checks behind `/health`, the `check` command and the
//! thresholds of the generated alerts.
//!
//! - `model`: what an evaluation produces (Status, Check, Diagnosis,
//!   Report).
//! - `causes`: the cause table, in priority order: title, runbook page,
//!   summary and fix of every failure mode, each written once.
//! - `checks`: one function per check; each returns its outcome and the
//!   cause it points to.
//! - `render`: the text rendering of a report.
//!
//! [`evaluate`] runs every check for each selected runner; the diagnosis
//! is the first cause, in table order, that a failing or warning check
//! points to. Checks whose collector is disabled or silent for `[health]
//! stale_intervals` intervals are unknown, never failing.

pub mod causes;
pub mod checks;
pub mod model;
pub mod render;

pub use causes::Cause;
pub use model::{Check, Diagnosis, Report, RunnerHealth, Status};
pub use render::render_text;

use crate::config::HealthConfig;
use crate::identity::{self, RunnerView};
use crate::snapshot::{GithubState, HostState, Snapshot};
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
    pub error: Option<String>,
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
            interval: s.meta.interval,
        })
        .collect()
}

/// What the checks read besides the runners themselves.
pub struct Inputs<'a> {
    pub thresholds: &'a HealthConfig,
    /// Every collector, in registry order.
    pub sources: &'a [Source],
    pub host: Option<&'a HostState>,
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

    /// Why a collector's data cannot be used.
    pub fn staleness(&self, name: &str) -> String {
        let Some(s) = self.source(name) else {
            return format!("the {name} collector is not built in");
        };
        let error = s
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        if !s.enabled {
            format!("the {name} collector is disabled")
        } else if !s.has_data {
            format!("the {name} collector has no data yet{error}")
        } else {
            format!(
                "the {name} collector has not succeeded for {} intervals{error}",
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
        let mut s = Selector::default();
        for (k, v) in crate::query::pairs(query.unwrap_or(""))? {
            match k.as_str() {
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

/// The unit name used in fixes when a runner has none.
fn unit_ref(v: &RunnerView<'_>) -> String {
    v.unit
        .map_or_else(|| "the runner's unit".to_string(), |u| u.name.clone())
}

fn check_of(ctx: &Ctx<'_>, def: &CheckDef, verdict: &Verdict, unit: &str) -> Check {
    let remediation = match verdict.status {
        Status::Ok => String::new(),
        Status::Unknown => verdict.hint.map(String::from).unwrap_or_default(),
        Status::Warn | Status::Fail => verdict.cause.fix(unit),
    };
    Check {
        check: def.id.to_string(),
        status: verdict.status,
        critical: def.critical,
        reason: verdict.reason.clone(),
        remediation,
        runbook: runbook_url(&ctx.thresholds.runbook_base_url, verdict.cause.runbook()),
    }
}

/// The first cause, in table order, that a failing or warning check
/// points to.
fn diagnose(ctx: &Ctx<'_>, verdicts: &[(&CheckDef, Verdict)], unit: &str) -> Option<Diagnosis> {
    let pointed = |c: &Cause| {
        verdicts
            .iter()
            .any(|(_, v)| v.points && v.status >= Status::Warn && v.cause == *c)
    };
    let cause = Cause::ALL.iter().copied().find(pointed)?;
    let info = cause.info();
    let mut summary = info.summary.to_string();
    let failing: Vec<&str> = verdicts
        .iter()
        .filter(|(_, v)| v.status >= Status::Warn)
        .map(|(def, _)| def.id)
        .collect();
    if failing.len() > 1 {
        summary.push_str(&format!(" (failing or warning: {})", failing.join(", ")));
    }
    Some(Diagnosis {
        cause,
        title: info.title.to_string(),
        summary,
        remediation: cause.fix(unit),
        runbook: runbook_url(&ctx.thresholds.runbook_base_url, info.runbook),
    })
}

/// One runner's checks and diagnosis.
fn runner_health(ctx: &Ctx<'_>, v: &RunnerView<'_>) -> RunnerHealth {
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
    let healthy = !checks
        .iter()
        .any(|c| c.critical && c.status == Status::Fail);
    let diagnosis = if status >= Status::Warn {
        diagnose(ctx, &verdicts, &unit)
    } else {
        None
    };
    RunnerHealth {
        runner: v.name.clone(),
        role: v.role().to_string(),
        environment: v.environment().to_string(),
        unit: v.unit.map(|u| u.name.clone()),
        root: v.root.map(|r| r.root.display().to_string()),
        status,
        healthy,
        checks,
        diagnosis,
    }
}

/// Evaluates every selected runner.
pub fn evaluate(runners: &[RunnerView<'_>], inputs: &Inputs<'_>, selector: &Selector) -> Report {
    let ctx = Ctx {
        thresholds: inputs.thresholds,
        host: inputs.host,
        github: inputs.github,
        now: inputs.now,
        sources: inputs.sources,
    };
    let runners: Vec<RunnerHealth> = runners
        .iter()
        .filter(|v| selector.matches(v))
        .map(|v| runner_health(&ctx, v))
        .collect();
    let message = runners.is_empty().then(|| {
        if selector.is_empty() {
            "no runner found on this host".to_string()
        } else {
            "no runner matches the selection".to_string()
        }
    });
    let status = if runners.is_empty() {
        Status::Fail
    } else {
        runners
            .iter()
            .map(|r| r.status)
            .max()
            .unwrap_or(Status::Fail)
    };
    let healthy = !runners.is_empty() && runners.iter().all(|r| r.healthy);
    Report {
        status,
        healthy,
        generated_at: crate::timefmt::rfc3339_millis(inputs.now),
        runners,
        message,
    }
}

/// Evaluates the runners of a snapshot: joins the collectors' views of
/// each runner, then [`evaluate`]s them with the snapshot's freshness and
/// thresholds.
pub fn evaluate_snapshot(snap: &Snapshot, selector: &Selector, now: f64) -> Report {
    let views = identity::runners(snap);
    let sources = sources(snap, now);
    let inputs = Inputs {
        thresholds: &snap.settings.config.health,
        sources: &sources,
        host: snap.state::<HostState>(),
        github: snap.state::<GithubState>(),
        now,
    };
    evaluate(&views, &inputs, selector)
}

#[cfg(test)]
mod tests;
