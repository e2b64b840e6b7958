//! Label sets and the runners that can take them. A job goes to a runner
//! that carries every label it asks for, compared case-insensitively
//! ("Labels are case-insensitive", GitHub's docs); the runner may carry
//! more. Pure functions: the collector feeds them the jobs of its last
//! poll and the runners of the github section.

use crate::snapshot::{
    GithubRunner, LabelSetState, NearRunner, WaitReason, WaitingJob, OTHER_LABEL_SET,
};
use std::collections::{BTreeMap, BTreeSet};

/// Most runners named per label set.
const NEAREST: usize = 3;
/// Most queued jobs kept for the reports.
const MAX_WAITING: usize = 50;

/// A job's `runs-on` labels: lowercase, without duplicates, sorted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSet(Vec<String>);

impl LabelSet {
    pub fn of<S: AsRef<str>>(labels: &[S]) -> LabelSet {
        let set: BTreeSet<String> = labels
            .iter()
            .map(|l| l.as_ref().trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .collect();
        LabelSet(set.into_iter().collect())
    }

    /// `gpu,linux,self-hosted`.
    pub fn key(&self) -> String {
        self.0.join(",")
    }

    pub fn labels(&self) -> &[String] {
        &self.0
    }
}

/// A job of the last poll that is queued or in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveJob {
    pub repository: String,
    pub workflow: String,
    pub name: String,
    pub labels: LabelSet,
    /// Queued (waiting for a runner), else in progress.
    pub queued: bool,
    /// Seconds waited at the poll (queued jobs).
    pub wait: f64,
    pub url: String,
}

/// A registered runner's labels, lowercase.
struct Candidate<'a> {
    runner: &'a GithubRunner,
    labels: BTreeSet<String>,
}

fn candidates(runners: &[GithubRunner]) -> Vec<Candidate<'_>> {
    runners
        .iter()
        .filter(|r| r.registered)
        .map(|r| Candidate {
            runner: r,
            labels: r.labels.iter().map(|l| l.to_lowercase()).collect(),
        })
        .collect()
}

impl Candidate<'_> {
    fn missing(&self, set: &LabelSet) -> Vec<String> {
        set.labels()
            .iter()
            .filter(|l| !self.labels.contains(*l))
            .cloned()
            .collect()
    }

    fn near(&self, set: &LabelSet) -> NearRunner {
        NearRunner {
            name: self.runner.name.clone(),
            online: self.runner.online,
            busy: self.runner.busy,
            missing: self.missing(set),
        }
    }
}

/// Whether the queue watches a job: it asks for `self-hosted`, or for a
/// label some known runner carries. Jobs for GitHub-hosted runners
/// (`ubuntu-latest`) are not this exporter's business.
pub fn watched(set: &LabelSet, runners: &[GithubRunner]) -> bool {
    set.labels().iter().any(|l| l == "self-hosted")
        || runners.iter().any(|r| {
            r.labels
                .iter()
                .any(|rl| set.labels().iter().any(|l| rl.eq_ignore_ascii_case(l)))
        })
}

/// The runners for one set, and why its queued jobs wait.
fn assess(set: &LabelSet, cands: &[Candidate<'_>]) -> (u64, u64, WaitReason, Vec<NearRunner>) {
    let matching: Vec<&Candidate<'_>> =
        cands.iter().filter(|c| c.missing(set).is_empty()).collect();
    let online = matching.iter().filter(|c| c.runner.online).count() as u64;
    let idle = matching
        .iter()
        .filter(|c| c.runner.online && !c.runner.busy)
        .count() as u64;
    let reason = if matching.is_empty() {
        WaitReason::NoRunner
    } else if online == 0 {
        WaitReason::OnlyOffline
    } else if idle == 0 {
        WaitReason::AllBusy
    } else {
        WaitReason::NotAssigned
    };
    let mut near: Vec<NearRunner> = if matching.is_empty() {
        cands
            .iter()
            .map(|c| c.near(set))
            .filter(|n| n.missing.len() < set.labels().len())
            .collect()
    } else {
        matching.iter().map(|c| c.near(set)).collect()
    };
    near.sort_by(|a, b| {
        (a.missing.len(), !a.online, a.busy, &a.name).cmp(&(
            b.missing.len(),
            !b.online,
            b.busy,
            &b.name,
        ))
    });
    near.truncate(NEAREST);
    (online, idle, reason, near)
}

/// The label sets the jobs request, with their queued jobs and runners,
/// at most `max_sets` of them by name (those with the most queued jobs,
/// then the longest wait); the rest summed under [`OTHER_LABEL_SET`].
/// Also the queued jobs, longest waiting first. Jobs not [`watched`] are
/// left out.
pub fn aggregate(
    jobs: &[ActiveJob],
    runners: &[GithubRunner],
    max_sets: usize,
) -> (Vec<LabelSetState>, Vec<WaitingJob>) {
    let cands = candidates(runners);
    let watched_jobs: Vec<&ActiveJob> = jobs
        .iter()
        .filter(|j| watched(&j.labels, runners))
        .collect();
    let mut sets: BTreeMap<&LabelSet, (u64, Option<f64>)> = BTreeMap::new();
    for j in &watched_jobs {
        let e = sets.entry(&j.labels).or_insert((0, None));
        if j.queued {
            e.0 += 1;
            e.1 = Some(e.1.map_or(j.wait, |w: f64| w.max(j.wait)));
        }
    }
    let mut ranked: Vec<(&LabelSet, u64, Option<f64>)> =
        sets.into_iter().map(|(s, (n, w))| (s, n, w)).collect();
    ranked.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.2.unwrap_or(-1.0).total_cmp(&a.2.unwrap_or(-1.0)))
            .then(a.0.cmp(b.0))
    });
    let max_sets = max_sets.max(1);
    let rest = if ranked.len() > max_sets {
        ranked.split_off(max_sets)
    } else {
        Vec::new()
    };
    ranked.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<LabelSetState> = ranked
        .into_iter()
        .map(|(set, queued, oldest)| {
            let (online, idle, reason, nearest) = assess(set, &cands);
            LabelSetState {
                labels: set.key(),
                queued,
                oldest_wait: oldest,
                runners: Some((online, idle)),
                reason: (queued > 0).then_some(reason),
                nearest,
            }
        })
        .collect();
    if !rest.is_empty() {
        out.push(LabelSetState {
            labels: OTHER_LABEL_SET.to_string(),
            queued: rest.iter().map(|r| r.1).sum(),
            oldest_wait: rest.iter().filter_map(|r| r.2).reduce(f64::max),
            runners: None,
            reason: None,
            nearest: Vec::new(),
        });
    }
    let mut waiting: Vec<WaitingJob> = watched_jobs
        .iter()
        .filter(|j| j.queued)
        .map(|j| WaitingJob {
            repository: j.repository.clone(),
            workflow: j.workflow.clone(),
            name: j.name.clone(),
            labels: j.labels.key(),
            wait: j.wait,
            url: j.url.clone(),
        })
        .collect();
    waiting.sort_by(|a, b| b.wait.total_cmp(&a.wait).then(a.name.cmp(&b.name)));
    waiting.truncate(MAX_WAITING);
    (out, waiting)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runners of `runners-paginated.json`: linux_runner (online,
    /// busy; self-hosted, X64, Linux) and mac_runner (offline; self-hosted,
    /// X64, macOS, no-gpu).
    fn official() -> Vec<GithubRunner> {
        let r = |name: &str, online, busy, labels: &[&str]| GithubRunner {
            name: name.into(),
            registered: true,
            online,
            busy,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        };
        vec![
            r("linux_runner", true, true, &["self-hosted", "X64", "Linux"]),
            r(
                "mac_runner",
                false,
                false,
                &["self-hosted", "X64", "macOS", "no-gpu"],
            ),
        ]
    }

    fn job(labels: &[&str], queued: bool, wait: f64) -> ActiveJob {
        ActiveJob {
            repository: "acme/app".into(),
            workflow: "ci.yml".into(),
            name: labels.join("+"),
            labels: LabelSet::of(labels),
            queued,
            wait,
            url: String::new(),
        }
    }

    #[test]
    fn label_sets_are_lowercase_sorted_and_joined() {
        assert_eq!(
            LabelSet::of(&["self-hosted", "Linux", "GPU", "linux"]).key(),
            "gpu,linux,self-hosted"
        );
    }

    #[test]
    fn the_scenarios_sets_are_served_busy_unserved_and_offline_only() {
        let jobs = [
            job(&["self-hosted", "linux", "x64"], true, 466.0),
            job(&["self-hosted", "Linux"], true, 136.0),
            job(&["self-hosted", "linux", "gpu"], true, 136.0),
            job(&["self-hosted", "macOS"], true, 136.0),
            job(&["ubuntu-latest"], true, 900.0),
        ];
        let (sets, waiting) = aggregate(&jobs, &official(), 20);
        let by = |k: &str| sets.iter().find(|s| s.labels == k).unwrap();
        let keys: Vec<&str> = sets.iter().map(|s| s.labels.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gpu,linux,self-hosted",
                "linux,self-hosted",
                "linux,self-hosted,x64",
                "macos,self-hosted"
            ],
            "the GitHub-hosted job is not watched"
        );
        let deploy = by("linux,self-hosted,x64");
        assert_eq!((deploy.queued, deploy.oldest_wait), (1, Some(466.0)));
        assert_eq!(deploy.runners, Some((1, 0)));
        assert_eq!(deploy.reason, Some(WaitReason::AllBusy));
        assert_eq!(deploy.nearest[0].name, "linux_runner");
        assert!(deploy.nearest[0].missing.is_empty());
        let gpu = by("gpu,linux,self-hosted");
        assert_eq!(gpu.reason, Some(WaitReason::NoRunner));
        assert_eq!(gpu.runners, Some((0, 0)));
        let near: Vec<(&str, Vec<String>)> = gpu
            .nearest
            .iter()
            .map(|n| (n.name.as_str(), n.missing.clone()))
            .collect();
        assert_eq!(
            near,
            [
                ("linux_runner", vec!["gpu".to_string()]),
                ("mac_runner", vec!["gpu".to_string(), "linux".to_string()])
            ],
            "no-gpu is not gpu"
        );
        let mac = by("macos,self-hosted");
        assert_eq!(mac.reason, Some(WaitReason::OnlyOffline));
        assert_eq!(mac.runners, Some((0, 0)));
        assert_eq!(mac.nearest[0].name, "mac_runner");
        assert_eq!(waiting.len(), 4);
        assert_eq!(waiting[0].wait, 466.0);
        assert_eq!(waiting[0].labels, "linux,self-hosted,x64");
    }

    #[test]
    fn an_idle_match_is_not_assigned_and_in_progress_sets_count_runners() {
        let mut runners = official();
        runners[0].busy = false;
        let (sets, waiting) = aggregate(
            &[
                job(&["self-hosted", "linux"], true, 10.0),
                job(&["self-hosted", "x64"], false, 0.0),
            ],
            &runners,
            20,
        );
        assert_eq!(sets[0].reason, Some(WaitReason::NotAssigned));
        assert_eq!(sets[0].runners, Some((1, 1)));
        assert_eq!(sets[1].labels, "self-hosted,x64");
        assert_eq!(
            (sets[1].queued, sets[1].reason, sets[1].oldest_wait),
            (0, None, None)
        );
        assert_eq!(sets[1].runners, Some((1, 1)), "mac_runner is offline");
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn sets_beyond_the_bound_are_summed_as_other() {
        let jobs: Vec<ActiveJob> = (0..5)
            .map(|i| job(&["self-hosted", &format!("l{i}")], true, f64::from(i)))
            .chain([job(&["self-hosted", "l0"], true, 1.0)])
            .collect();
        let (sets, _) = aggregate(&jobs, &official(), 2);
        let keys: Vec<&str> = sets.iter().map(|s| s.labels.as_str()).collect();
        // l0 has two jobs; l4 the longest wait among the others.
        assert_eq!(keys, ["l0,self-hosted", "l4,self-hosted", OTHER_LABEL_SET]);
        let other = &sets[2];
        assert_eq!((other.queued, other.oldest_wait), (3, Some(3.0)));
        assert_eq!((other.runners, other.reason), (None, None));
    }

    #[test]
    fn unregistered_runners_serve_nothing_and_custom_labels_are_watched() {
        let mut runners = official();
        runners.push(GithubRunner {
            name: "gone".into(),
            registered: false,
            labels: vec!["gpu".into()],
            ..Default::default()
        });
        runners[0].labels.push("deploy".into());
        let (sets, _) = aggregate(&[job(&["DEPLOY"], true, 5.0)], &runners, 20);
        assert_eq!(sets[0].labels, "deploy");
        assert_eq!(sets[0].reason, Some(WaitReason::AllBusy));
        let (sets, _) = aggregate(&[job(&["self-hosted", "gpu"], true, 5.0)], &runners, 20);
        assert_eq!(sets[0].reason, Some(WaitReason::NoRunner));
    }
}
