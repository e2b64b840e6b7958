//! The queue section of a report: which label sets jobs wait for, why,
//! and which runners come closest. It never changes the gate: `/health`
//! stays about the runners' own health, and `check`'s exit code too.

use super::causes::Cause;
use super::model::Diagnosis;
use super::runbook_url;
use crate::duration::Dur;
use crate::snapshot::{LabelSetState, NearRunner, QueueState, Snapshot, WaitReason};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The runbook of the label sets no online runner serves.
pub const NO_ONLINE_RUNNER_RUNBOOK: &str = "no-online-runner-for-labels";
/// Most jobs listed per label set.
const JOBS_PER_SET: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    /// No job has waited longer than `[health] max_queue_wait`.
    Ok,
    /// At least one has.
    Waiting,
    /// No recent data.
    Unknown,
}

/// A runner compared with a label set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearestRunner {
    pub runner: String,
    pub online: bool,
    pub busy: bool,
    /// The set's labels it lacks (empty: it has them all).
    pub missing: Vec<String>,
}

/// A queued job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedJob {
    pub repository: String,
    pub workflow: String,
    pub job: String,
    pub waited_seconds: f64,
    pub url: String,
}

/// One label set with queued jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelSetReport {
    pub labels: String,
    pub queued_jobs: u64,
    pub oldest_wait_seconds: f64,
    pub over_max_wait: bool,
    /// `no_runner`, `only_offline`, `all_busy` or `not_assigned`; absent
    /// for the `(other)` set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub explanation: String,
    pub runners_online: u64,
    pub runners_idle: u64,
    pub nearest: Vec<NearestRunner>,
    pub jobs: Vec<QueuedJob>,
    pub runbook: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueReport {
    pub status: QueueStatus,
    pub max_wait_seconds: f64,
    pub repositories: Vec<String>,
    /// `fleet`: every runner of the configured owners is known; `local`:
    /// only this host's runners (self scope), so a runner elsewhere may
    /// serve a set reported as unserved here.
    pub runners_known: String,
    pub queued_jobs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_wait_seconds: Option<f64>,
    /// Label sets with queued jobs, longest wait first.
    pub label_sets: Vec<LabelSetReport>,
    /// Set when a job waited longer than `max_wait_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl QueueReport {
    /// The label sets with a job waiting longer than the maximum.
    pub fn over_max_wait(&self) -> impl Iterator<Item = &LabelSetReport> {
        self.label_sets.iter().filter(|s| s.over_max_wait)
    }
}

fn human(secs: f64) -> String {
    Dur(Duration::from_secs(secs.max(0.0) as u64)).to_string()
}

fn runner_list(near: &[NearRunner]) -> String {
    near.iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn state_of(n: &NearRunner) -> &'static str {
    match (n.online, n.busy) {
        (false, _) => "offline",
        (true, true) => "online, busy",
        (true, false) => "online, idle",
    }
}

/// Why the set's jobs wait, in words.
fn explain(set: &LabelSetState, local: bool) -> String {
    let among = if local {
        " (among the local runners)"
    } else {
        ""
    };
    match set.reason {
        Some(WaitReason::NoRunner) => {
            let mut s = format!("no runner has all of these labels{among}");
            if !set.nearest.is_empty() {
                let near: Vec<String> = set
                    .nearest
                    .iter()
                    .map(|n| format!("{} ({}) lacks {}", n.name, state_of(n), n.missing.join(", ")))
                    .collect();
                s.push_str(&format!("; closest: {}", near.join("; ")));
            }
            s
        }
        Some(WaitReason::OnlyOffline) => format!(
            "only offline runners have these labels{among}: {}",
            runner_list(&set.nearest)
        ),
        Some(WaitReason::AllBusy) => format!(
            "every online runner with these labels is busy{among}: {}",
            runner_list(&set.nearest)
        ),
        Some(WaitReason::NotAssigned) => format!(
            "an online idle runner has these labels ({}), but GitHub has not given it the job: check that its runner group lets this repository use it",
            runner_list(&set.nearest.iter().filter(|n| n.online && !n.busy).cloned().collect::<Vec<_>>())
        ),
        None => "label sets beyond [github.queue] max_label_sets, summed".to_string(),
    }
}

/// The queue section of a snapshot (None when the queue is not watched).
pub fn report(snap: &Snapshot) -> Option<QueueReport> {
    let section = snap.section(crate::collect::queue::NAME)?;
    if !section.meta.enabled {
        return None;
    }
    let h = &snap.settings.config.health;
    let max_wait = h.max_queue_wait.as_secs_f64();
    let local = snap.settings.github_scope != crate::config::Scope::Fleet;
    let mut r = QueueReport {
        status: QueueStatus::Unknown,
        max_wait_seconds: max_wait,
        repositories: Vec::new(),
        runners_known: if local { "local" } else { "fleet" }.to_string(),
        queued_jobs: 0,
        oldest_wait_seconds: None,
        label_sets: Vec::new(),
        diagnosis: None,
        error: section.meta.error.clone(),
    };
    let Some(q) = snap.state::<QueueState>() else {
        r.error.get_or_insert_with(|| "no data yet".to_string());
        return Some(r);
    };
    r.repositories = q.repositories.clone();
    if q.repositories.is_empty() {
        r.error.get_or_insert_with(|| {
            "no repository to watch: the local runners are registered to an organization or enterprise, which names none; list them in [github.queue] repositories".to_string()
        });
        return Some(r);
    }
    let Some(since) = q.since_poll() else {
        r.error.get_or_insert_with(|| "no poll yet".to_string());
        return Some(r);
    };
    let interval = q.interval_seconds.max(section.meta.interval.as_secs_f64());
    let stale = since > f64::from(h.stale_intervals.max(1)) * interval;
    let base = &h.runbook_base_url;
    let mut sets: Vec<LabelSetReport> = q
        .label_sets
        .iter()
        .filter(|s| s.queued > 0)
        .map(|s| {
            let oldest = s.oldest_wait_now(since).unwrap_or(0.0);
            let (online, idle) = s.runners.unwrap_or((0, 0));
            let page = match s.reason {
                Some(WaitReason::NoRunner | WaitReason::OnlyOffline) => NO_ONLINE_RUNNER_RUNBOOK,
                _ => Cause::JobQueued.runbook(),
            };
            LabelSetReport {
                labels: s.labels.clone(),
                queued_jobs: s.queued,
                oldest_wait_seconds: oldest,
                over_max_wait: oldest > max_wait,
                reason: s.reason.map(|r| r.as_str().to_string()),
                explanation: explain(s, local),
                runners_online: online,
                runners_idle: idle,
                nearest: s
                    .nearest
                    .iter()
                    .map(|n| NearestRunner {
                        runner: n.name.clone(),
                        online: n.online,
                        busy: n.busy,
                        missing: n.missing.clone(),
                    })
                    .collect(),
                jobs: q
                    .waiting
                    .iter()
                    .filter(|j| j.labels == s.labels)
                    .take(JOBS_PER_SET)
                    .map(|j| QueuedJob {
                        repository: j.repository.clone(),
                        workflow: j.workflow.clone(),
                        job: j.name.clone(),
                        waited_seconds: j.wait + since,
                        url: j.url.clone(),
                    })
                    .collect(),
                runbook: runbook_url(base, page),
            }
        })
        .collect();
    sets.sort_by(|a, b| {
        b.oldest_wait_seconds
            .total_cmp(&a.oldest_wait_seconds)
            .then(a.labels.cmp(&b.labels))
    });
    r.queued_jobs = sets.iter().map(|s| s.queued_jobs).sum();
    r.oldest_wait_seconds = sets.first().map(|s| s.oldest_wait_seconds);
    let over: Vec<&LabelSetReport> = sets.iter().filter(|s| s.over_max_wait).collect();
    r.status = if stale {
        QueueStatus::Unknown
    } else if over.is_empty() {
        QueueStatus::Ok
    } else {
        QueueStatus::Waiting
    };
    if r.status == QueueStatus::Waiting {
        let info = Cause::JobQueued.info();
        let names: Vec<&str> = over.iter().map(|s| s.labels.as_str()).collect();
        r.diagnosis = Some(Diagnosis {
            cause: Cause::JobQueued,
            title: info.title.to_string(),
            summary: format!(
                "{} (longer than {}: {})",
                info.summary,
                human(max_wait),
                names.join("; ")
            ),
            remediation: info.fix.to_string(),
            runbook: runbook_url(base, info.runbook),
        });
    }
    if stale && r.error.is_none() {
        r.error = Some(format!("no queue poll for {}", human(since)));
    }
    r.label_sets = sets;
    Some(r)
}

/// The text of a queue section, for `check` and `/health` without JSON.
pub fn render(q: &QueueReport) -> String {
    let mut out = String::new();
    let repos = if q.repositories.is_empty() {
        "no repository".to_string()
    } else {
        q.repositories.join(", ")
    };
    match q.status {
        QueueStatus::Unknown => {
            out.push_str(&format!(
                "Queue ({repos}): unknown: {}\n",
                q.error.as_deref().unwrap_or("no data")
            ));
            return out;
        }
        _ if q.queued_jobs == 0 => {
            out.push_str(&format!("Queue ({repos}): no job waiting for a runner\n"));
        }
        _ => {
            let jobs = if q.queued_jobs == 1 { "job" } else { "jobs" };
            out.push_str(&format!(
                "Queue ({repos}): {} {jobs} waiting for a runner, the oldest for {} (max_queue_wait {})\n",
                q.queued_jobs,
                human(q.oldest_wait_seconds.unwrap_or(0.0)),
                human(q.max_wait_seconds)
            ));
        }
    }
    if let Some(e) = &q.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    for s in q.over_max_wait() {
        let jobs = if s.queued_jobs == 1 { "job" } else { "jobs" };
        out.push_str(&format!(
            "  {}: {} {jobs}, waiting up to {}: {}\n",
            s.labels,
            s.queued_jobs,
            human(s.oldest_wait_seconds),
            s.explanation
        ));
        for j in &s.jobs {
            out.push_str(&format!(
                "    {} {} / {} ({})\n",
                j.repository,
                j.workflow,
                j.job,
                human(j.waited_seconds)
            ));
        }
        out.push_str(&format!("    Runbook: {}\n", s.runbook));
    }
    if q.runners_known == "local" && q.over_max_wait().next().is_some() {
        out.push_str("  (runners known: this host's only; [github] scope = \"fleet\" on a central exporter sees them all)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Scope};
    use crate::settings::Settings;
    use crate::snapshot::{WaitingJob, OTHER_LABEL_SET};
    use std::sync::Arc;

    fn snapshot(state: Option<QueueState>, max_wait: u64) -> Snapshot {
        let mut c = Config::default();
        c.github.scope = Some(Scope::Fleet);
        c.github.queue.repositories = Some(vec!["acme/app".into()]);
        c.health.max_queue_wait = crate::duration::Dur::secs(max_wait);
        let settings = Arc::new(Settings::with_token(c, None));
        let mut s = crate::collect::registry::empty_snapshot(settings);
        if let Some(q) = state {
            s.set(crate::collect::queue::NAME, q);
        }
        s
    }

    fn state() -> QueueState {
        let mut q = QueueState::new(vec!["acme/app".into()], true);
        q.polled_at = Some((0.0, std::time::Instant::now()));
        q.interval_seconds = 60.0;
        q.label_sets = vec![
            LabelSetState {
                labels: "gpu,self-hosted".into(),
                queued: 2,
                oldest_wait: Some(400.0),
                runners: Some((0, 0)),
                reason: Some(WaitReason::NoRunner),
                nearest: vec![NearRunner {
                    name: "r1".into(),
                    online: true,
                    busy: false,
                    missing: vec!["gpu".into()],
                }],
            },
            LabelSetState {
                labels: "linux,self-hosted".into(),
                queued: 0,
                oldest_wait: None,
                runners: Some((1, 1)),
                reason: None,
                nearest: Vec::new(),
            },
            LabelSetState {
                labels: OTHER_LABEL_SET.into(),
                queued: 1,
                oldest_wait: Some(30.0),
                runners: None,
                reason: None,
                nearest: Vec::new(),
            },
        ];
        q.waiting = vec![WaitingJob {
            repository: "acme/app".into(),
            workflow: "ci.yml".into(),
            name: "cuda".into(),
            labels: "gpu,self-hosted".into(),
            wait: 400.0,
            url: "https://github.com/acme/app/actions/runs/1/job/2".into(),
        }];
        q
    }

    #[test]
    fn a_wait_past_the_maximum_names_the_set_why_and_the_closest_runner() {
        let r = report(&snapshot(Some(state()), 300)).expect("the queue is watched");
        assert_eq!(r.status, QueueStatus::Waiting);
        assert_eq!(r.queued_jobs, 3);
        assert_eq!(r.runners_known, "fleet");
        let names: Vec<&str> = r.label_sets.iter().map(|s| s.labels.as_str()).collect();
        assert_eq!(
            names,
            ["gpu,self-hosted", OTHER_LABEL_SET],
            "sets with queued jobs, oldest first"
        );
        let gpu = &r.label_sets[0];
        assert!(gpu.over_max_wait && !r.label_sets[1].over_max_wait);
        assert_eq!(gpu.reason.as_deref(), Some("no_runner"));
        assert_eq!(
            gpu.explanation,
            "no runner has all of these labels; closest: r1 (online, idle) lacks gpu"
        );
        assert!(gpu.runbook.ends_with("/no-online-runner-for-labels.md"));
        assert_eq!(gpu.jobs[0].job, "cuda");
        assert_eq!(
            r.diagnosis.as_ref().map(|d| d.cause),
            Some(Cause::JobQueued)
        );
        let text = render(&r);
        assert!(
            text.starts_with("Queue (acme/app): 3 jobs waiting for a runner, the oldest for 6m4"),
            "{text}"
        );
        assert!(
            text.contains("  gpu,self-hosted: 2 jobs, waiting up to 6m4"),
            "{text}"
        );
        assert!(text.contains("    acme/app ci.yml / cuda (6m4"), "{text}");
        assert!(
            !text.contains(OTHER_LABEL_SET),
            "under the maximum: not listed\n{text}"
        );
    }

    #[test]
    fn under_the_maximum_stale_or_disabled() {
        let r = report(&snapshot(Some(state()), 600)).unwrap();
        assert_eq!(r.status, QueueStatus::Ok);
        assert!(r.diagnosis.is_none());
        assert_eq!(
            render(&r),
            "Queue (acme/app): 3 jobs waiting for a runner, the oldest for 6m40s (max_queue_wait 10m)\n"
        );
        // Silent for longer than stale_intervals (3) of its interval.
        let mut old = state();
        old.polled_at = std::time::Instant::now()
            .checked_sub(std::time::Duration::from_secs(200))
            .map(|at| (0.0, at));
        let r = report(&snapshot(Some(old), 300)).unwrap();
        assert_eq!(r.status, QueueStatus::Unknown);
        assert!(render(&r).starts_with("Queue (acme/app): unknown: no queue poll for 3m"));
        let r = report(&snapshot(None, 300)).unwrap();
        assert_eq!(r.status, QueueStatus::Unknown);
        assert_eq!(r.error.as_deref(), Some("no data yet"));
        // Watched, but self scope found no repository to watch.
        let mut none = state();
        none.repositories.clear();
        let r = report(&snapshot(Some(none), 300)).unwrap();
        assert_eq!(r.status, QueueStatus::Unknown);
        assert!(
            render(&r).contains("no repository to watch"),
            "{}",
            render(&r)
        );
        // Not watched: no section at all.
        let mut c = Config::default();
        c.github.scope = Some(Scope::Fleet);
        let s = crate::collect::registry::empty_snapshot(Arc::new(Settings::with_token(c, None)));
        assert!(report(&s).is_none());
    }
}
