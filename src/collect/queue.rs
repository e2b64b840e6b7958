//! Queue collector: jobs waiting for a runner, and the results of the
//! deploy workflows, from GitHub's REST API.
//!
//! Each poll asks every watched repository for its queued and in-progress
//! workflow runs (`GET /repos/{o}/{r}/actions/runs?status=...`), the jobs
//! of each (`.../runs/{id}/jobs`), the jobs of runs that left those lists
//! since the last poll (to see how they were picked up), and the recent
//! runs of each `[jobs] workflows` entry (`.../workflows/{file}/runs`),
//! whose completed runs have their jobs counted. Every GET is conditional
//! on its URL's last ETag, so what did not change costs no rate limit.
//!
//! The repositories are `[github.queue] repositories`, or in `self` scope
//! by default those of the local runners (the runner section). The
//! runners that could take each requested label set come from the github
//! section (registration data already polled); the matching is redone
//! whenever that section changes, without asking GitHub.
//!
//! The poll interval is `[github.queue] poll_interval`, stretched so that
//! what GitHub charges stays within `budget_share` of the token's hourly
//! limit ([`budget`]), and by rate limits and failures as the github
//! collector does ([`super::github::ratelimit`]).

pub mod api;
pub mod budget;
pub mod labels;

use super::github::auth::Secret;
use super::github::client::{ApiError, Client, ErrorKind};
use super::github::credentials::Credentials;
use super::github::{ratelimit, scope, DEFAULT_API};
use super::{Collector, Failure, Mode, Outcome};
use crate::config::{GithubConfig, QueueConfig, Scope};
use crate::settings::Settings;
use crate::snapshot::{
    ApiStats, Data, GithubRunner, GithubState, JobConclusion, QueueState, RunnerState, Store,
    WorkflowJobs,
};
use crate::timefmt::now_unix;
use api::{Job, JobList, Run, RunList};
use hyper::Method;
use labels::{ActiveJob, LabelSet};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The collector's name: its section and its `collector` label.
pub const NAME: &str = "queue";

/// Pages of 100 followed per list at most (the API returns at most 1,000
/// runs for a `status` query).
const MAX_PAGES: usize = 10;
/// Queued and in-progress runs of one repository whose jobs are read per
/// poll at most.
const MAX_ACTIVE_RUNS: usize = 200;
/// Recent runs read per `[jobs] workflows` entry and repository.
const WORKFLOW_RUNS: usize = 20;
/// A repository that answered 404 or 403, or a workflow file it does not
/// have, is asked again only after this long: such answers carry no ETag,
/// so each would be charged on every poll.
const RECHECK: Duration = Duration::from_secs(15 * 60);
/// How long a job id picked up is remembered (so it is observed once).
const PICKED_UP_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// A watched repository and the API base it is asked at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Repo {
    base: String,
    owner: String,
    repo: String,
}

impl Repo {
    fn name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    fn owner(&self) -> scope::Owner {
        scope::Owner::Repo {
            owner: self.owner.clone(),
            repo: self.repo.clone(),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/repos/{}/{}{rest}", self.base, self.owner, self.repo)
    }
}

/// What the collector remembers of one repository between polls.
#[derive(Default)]
struct Memory {
    /// The first poll is done: what it found already finished is the
    /// baseline, never counted.
    polled: bool,
    /// Runs queued or in progress at the last poll.
    active: BTreeSet<u64>,
    runs_queued: u64,
    runs_in_progress: u64,
    /// Their queued and in-progress jobs.
    jobs: Vec<(ActiveJob, Option<f64>)>,
    /// Per `[jobs] workflows` entry: the runs of its last list already
    /// counted (or the baseline), by (run id, attempt).
    counted: BTreeMap<String, BTreeSet<(u64, u32)>>,
    /// Workflow files this repository answered 404 for, and when.
    missing: BTreeMap<String, std::time::Instant>,
    /// The repository answered 404 or 403: the error and when.
    unreadable: Option<(String, std::time::Instant)>,
}

pub struct QueueCollector {
    github: GithubConfig,
    queue: QueueConfig,
    workflows: Vec<String>,
    /// Self scope without `[github.queue] repositories`: the runner
    /// collector's roots, whose registrations name the repositories.
    roots: Option<watch::Receiver<Data<RunnerState>>>,
    /// The github collector's runners: their labels, online and busy.
    runners: Option<watch::Receiver<Data<GithubState>>>,
    client: Option<Client>,
    credentials: Credentials,
    memory: BTreeMap<Repo, Memory>,
    targets: Vec<Repo>,
    /// Ids of jobs seen picked up, and when (each is observed once).
    picked_up: HashMap<u64, std::time::Instant>,
    /// The cumulative part of the state (histograms, counts, API
    /// statistics) and the last published state.
    state: QueueState,
    /// GitHub's clock at the end of the last poll.
    github_now: f64,
    ledger: budget::Ledger,
    next_due: Instant,
    holding: bool,
    failures: u32,
    /// The next run only redoes the matching (the github section changed).
    rematch: bool,
    /// The targets changed since the last poll: its cost fills caches.
    warm_up: bool,
    /// The last poll failed (wholly or for some repositories): no
    /// rematch until a poll succeeds, so the failure stays visible.
    failing: bool,
    last_requests: u32,
    bad_urls: HashSet<String>,
}

/// Answers GitHub charges: every status but 304 (and no answer at all).
fn charged(stats: &ApiStats) -> u64 {
    stats
        .requests
        .iter()
        .filter(|(code, _)| *code != "304" && *code != "error")
        .map(|(_, n)| n)
        .sum()
}

impl QueueCollector {
    pub fn with_config(
        settings: &Settings,
        roots: Option<watch::Receiver<Data<RunnerState>>>,
        runners: Option<watch::Receiver<Data<GithubState>>>,
    ) -> QueueCollector {
        let github = settings.config.github.clone();
        let credentials = Credentials::new(settings);
        let workflows = settings.config.jobs.workflow_files();
        let mut state = QueueState::new(Vec::new(), settings.github_scope == Scope::Fleet);
        state.workflows = workflows.iter().cloned().map(WorkflowJobs::new).collect();
        QueueCollector {
            queue: github.queue.clone(),
            github,
            workflows,
            roots,
            runners,
            client: None,
            credentials,
            memory: BTreeMap::new(),
            targets: Vec::new(),
            picked_up: HashMap::new(),
            state,
            github_now: 0.0,
            ledger: budget::Ledger::default(),
            next_due: Instant::now(),
            holding: false,
            failures: 0,
            rematch: false,
            warm_up: true,
            failing: false,
            last_requests: 0,
            bad_urls: HashSet::new(),
        }
    }

    fn base_for(&self, derived: Option<String>) -> String {
        match &self.github.api_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => derived.unwrap_or_else(|| DEFAULT_API.to_string()),
        }
    }

    /// The repositories to watch now.
    fn current_targets(&mut self) -> Result<Vec<Repo>, ApiError> {
        let mut out = BTreeSet::new();
        if let Some(list) = &self.queue.repositories {
            for r in list {
                match scope::repo_owner(r).map_err(ApiError::setup)? {
                    scope::Owner::Repo { owner, repo } => {
                        out.insert(Repo {
                            base: self.base_for(None),
                            owner,
                            repo,
                        });
                    }
                    _ => unreachable!("repo_owner gives a repository"),
                }
            }
            return Ok(out.into_iter().collect());
        }
        let Some(state) = self.roots.as_ref().and_then(|r| r.borrow().clone()) else {
            return Ok(Vec::new());
        };
        for root in &state.roots {
            let Some(url) = root
                .registration
                .as_ref()
                .and_then(|r| r.github_url.clone())
            else {
                continue;
            };
            match scope::parse_github_url(&url) {
                Ok((base, scope::Owner::Repo { owner, repo })) => {
                    out.insert(Repo {
                        base: self.base_for(Some(base)),
                        owner,
                        repo,
                    });
                }
                // Organization and enterprise runners name no repository.
                Ok(_) => {}
                Err(e) => {
                    if self.bad_urls.insert(url.clone()) {
                        tracing::debug!(error = %format!("{e:#}"), "no repository to watch for this runner");
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn runners(&self) -> Arc<GithubState> {
        self.runners
            .as_ref()
            .and_then(|r| r.borrow().clone())
            .unwrap_or_default()
    }

    async fn credential(&mut self, repo: &Repo, now: f64) -> Result<Secret, ApiError> {
        self.credentials
            .secret(
                self.client.as_mut(),
                &repo.base,
                &repo.owner(),
                &mut self.state.api,
                now,
            )
            .await
    }

    /// Every page of a list, following `Link: rel="next"` within the
    /// API's origin, at most `max_pages`.
    async fn pages<P: serde::de::DeserializeOwned>(
        &mut self,
        first: String,
        token: &Secret,
        max_pages: usize,
    ) -> Result<Vec<P>, ApiError> {
        let origin = scope::origin(&first).to_string();
        let mut url = first;
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let client = self
                .client
                .as_mut()
                .ok_or_else(|| ApiError::new(ErrorKind::Setup, "no HTTP client"))?;
            self.last_requests += 1;
            let reply = client
                .send(Method::GET, &url, token, &mut self.state.api)
                .await?;
            if !reply.ok() {
                return Err(reply.error(token));
            }
            out.push(reply.json::<P>()?);
            match reply.next_page(&origin)? {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        // The rest is beyond what one poll reads; what was read stands.
        Ok(out)
    }

    async fn runs(
        &mut self,
        url: String,
        token: &Secret,
        pages: usize,
    ) -> Result<Vec<Run>, ApiError> {
        let lists: Vec<RunList> = self.pages(url, token, pages).await?;
        Ok(lists.into_iter().flat_map(|l| l.workflow_runs).collect())
    }

    async fn jobs(&mut self, repo: &Repo, run: u64, token: &Secret) -> Result<Vec<Job>, ApiError> {
        let url = repo.url(&format!("/actions/runs/{run}/jobs?per_page=100"));
        let lists: Vec<JobList> = self.pages(url, token, MAX_PAGES).await?;
        Ok(lists.into_iter().flat_map(|l| l.jobs).collect())
    }

    /// Observes the queue time of jobs picked up that were not seen picked
    /// up before. On a repository's first poll they only join the
    /// baseline.
    fn note_picked_up(&mut self, jobs: &[Job], baseline: bool, runners: &[GithubRunner]) {
        let now = std::time::Instant::now();
        for j in jobs.iter().filter(|j| j.picked_up()) {
            if self.picked_up.insert(j.id, now).is_some() || baseline {
                continue;
            }
            if !labels::watched(&LabelSet::of(&j.labels), runners) {
                continue;
            }
            match j.queue_time() {
                Some(q) => self
                    .state
                    .queue_time
                    .observe(crate::metrics::catalog::QUEUE_TIME_BUCKETS, q),
                None => self.state.queue_time_unmeasured += 1,
            }
        }
    }

    /// Counts the completed jobs of a completed run of a `[jobs]
    /// workflows` entry.
    fn count_workflow_jobs(&mut self, workflow: &str, jobs: &[Job]) {
        let Some(w) = self
            .state
            .workflows
            .iter_mut()
            .find(|w| w.workflow == workflow)
        else {
            return;
        };
        for j in jobs.iter().filter(|j| j.is("completed")) {
            w.results
                .add(JobConclusion::parse(j.conclusion.as_deref()), 1);
            if let Some(d) = j.duration() {
                w.durations
                    .observe(crate::metrics::catalog::JOB_DURATION_BUCKETS, d);
            }
        }
    }

    /// One repository: its active runs and their jobs, the runs that left
    /// the active lists, and the `[jobs] workflows` runs.
    async fn poll_repo(
        &mut self,
        repo: &Repo,
        token: &Secret,
        runners: &[GithubRunner],
    ) -> Result<(), ApiError> {
        let mut mem = self.memory.remove(repo).unwrap_or_default();
        let result = self.poll_repo_with(repo, token, runners, &mut mem).await;
        self.memory.insert(repo.clone(), mem);
        result
    }

    async fn poll_repo_with(
        &mut self,
        repo: &Repo,
        token: &Secret,
        runners: &[GithubRunner],
        mem: &mut Memory,
    ) -> Result<(), ApiError> {
        let baseline = !mem.polled;
        let name = repo.name();
        let queued = self
            .runs(
                repo.url("/actions/runs?status=queued&per_page=100"),
                token,
                MAX_PAGES,
            )
            .await?;
        let in_progress = self
            .runs(
                repo.url("/actions/runs?status=in_progress&per_page=100"),
                token,
                MAX_PAGES,
            )
            .await?;
        let mut active: BTreeMap<u64, Run> = BTreeMap::new();
        for r in queued.iter().chain(in_progress.iter()) {
            if active.len() >= MAX_ACTIVE_RUNS {
                break;
            }
            active.entry(r.id).or_insert_with(|| r.clone());
        }
        let mut fetched: HashMap<u64, Vec<Job>> = HashMap::new();
        let mut jobs_now = Vec::new();
        for (id, run) in &active {
            let jobs = self.jobs(repo, *id, token).await?;
            self.note_picked_up(&jobs, baseline, runners);
            for j in jobs
                .iter()
                .filter(|j| j.is("queued") || j.is("in_progress"))
            {
                jobs_now.push((
                    ActiveJob {
                        repository: name.clone(),
                        workflow: run.workflow_file().to_string(),
                        name: j.name.clone(),
                        labels: LabelSet::of(&j.labels),
                        queued: j.is("queued"),
                        wait: 0.0,
                        url: j.html_url.clone().unwrap_or_default(),
                    },
                    j.created(),
                ));
            }
            fetched.insert(*id, jobs);
        }
        // Runs that left the lists since the last poll: how their last
        // jobs were picked up.
        let left: Vec<u64> = mem
            .active
            .iter()
            .filter(|id| !active.contains_key(id))
            .copied()
            .collect();
        for id in left {
            match self.jobs(repo, id, token).await {
                Ok(jobs) => {
                    self.note_picked_up(&jobs, false, runners);
                    fetched.insert(id, jobs);
                }
                // Deleted meanwhile.
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        // The deploy workflows' recent runs: count the jobs of runs that
        // completed since the last look.
        for file in self.workflows.clone() {
            if mem
                .missing
                .get(&file)
                .is_some_and(|at| at.elapsed() < RECHECK)
            {
                continue;
            }
            let url = repo.url(&format!(
                "/actions/workflows/{file}/runs?per_page={WORKFLOW_RUNS}"
            ));
            let runs = match self.runs(url, token, 1).await {
                Ok(r) => r,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    mem.missing.insert(file.clone(), std::time::Instant::now());
                    mem.counted.remove(&file);
                    continue;
                }
                Err(e) => return Err(e),
            };
            mem.missing.remove(&file);
            let first_look = !mem.counted.contains_key(&file);
            let mut counted = mem.counted.remove(&file).unwrap_or_default();
            let listed: BTreeSet<(u64, u32)> = runs.iter().map(|r| (r.id, r.attempt())).collect();
            for run in runs.iter().filter(|r| r.is("completed")) {
                let key = (run.id, run.attempt());
                if !counted.insert(key) || first_look || baseline {
                    continue;
                }
                let jobs = match fetched.remove(&run.id) {
                    Some(j) => j,
                    None => {
                        let j = self.jobs(repo, run.id, token).await?;
                        self.note_picked_up(&j, false, runners);
                        j
                    }
                };
                self.count_workflow_jobs(&file, &jobs);
            }
            counted.retain(|k| listed.contains(k));
            mem.counted.insert(file, counted);
        }
        mem.polled = true;
        mem.active = active.keys().copied().collect();
        mem.runs_queued = queued.len() as u64;
        mem.runs_in_progress = in_progress.len() as u64;
        mem.jobs = jobs_now;
        mem.unreadable = None;
        Ok(())
    }

    async fn poll(&mut self, now: f64) -> Result<(), ApiError> {
        if self.client.is_none() {
            self.client = Some(
                Client::new(
                    self.github.connect_timeout.get(),
                    self.github.request_timeout.get(),
                )
                .map_err(ApiError::setup)?,
            );
        }
        let targets = self.current_targets()?;
        if targets != self.targets {
            self.warm_up = true;
        }
        self.targets = targets.clone();
        self.memory.retain(|r, _| targets.contains(r));
        let runners = self.runners();
        self.picked_up
            .retain(|_, at| at.elapsed() < PICKED_UP_MEMORY);
        if let Some(c) = self.client.as_mut() {
            c.begin_poll();
        }
        let mut token: Option<Secret> = None;
        for repo in &targets {
            if let Some((_, at)) = self.memory.get(repo).and_then(|m| m.unreadable.as_ref()) {
                if at.elapsed() < RECHECK {
                    continue;
                }
            }
            // A token is read once per poll; an App's is per owner.
            let reuse = self.credentials.same_for_every_owner();
            let t = match token.clone().filter(|_| reuse) {
                Some(t) => t,
                None => {
                    let t = self.credential(repo, now).await?;
                    token = Some(t.clone());
                    t
                }
            };
            match self.poll_repo(repo, &t, &runners.runners).await {
                Ok(()) => {}
                Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Forbidden) => {
                    if let Some(reason) = e.kind.reason() {
                        self.state.api.errors.add(reason, 1);
                    }
                    let m = self.memory.entry(repo.clone()).or_default();
                    if m.unreadable.is_none() {
                        tracing::warn!(repository = %repo.name(), error = %e.message, "cannot read this repository's workflow runs (the token needs \"Actions: read\"); asking again in 15 minutes");
                    }
                    m.unreadable = Some((e.message, std::time::Instant::now()));
                }
                Err(e) => {
                    if e.kind == ErrorKind::Auth {
                        self.credentials.refused(&repo.owner());
                    }
                    return Err(e);
                }
            }
        }
        if let Some(c) = self.client.as_mut() {
            c.end_poll();
        }
        Ok(())
    }

    /// The state from what the last poll found and the runners now.
    fn build_state(&self) -> QueueState {
        let runners = self.runners();
        let mut s = self.state.clone();
        s.repositories = self.targets.iter().map(Repo::name).collect();
        let mut jobs = Vec::new();
        s.runs_queued = 0;
        s.runs_in_progress = 0;
        s.repository_errors.clear();
        for (repo, m) in &self.memory {
            s.runs_queued += m.runs_queued;
            s.runs_in_progress += m.runs_in_progress;
            for (j, created) in &m.jobs {
                let mut j = j.clone();
                j.wait = created.map_or(0.0, |c| (self.github_now - c).max(0.0));
                jobs.push(j);
            }
            if let Some((e, _)) = &m.unreadable {
                s.repository_errors.push((repo.name(), e.clone()));
            }
        }
        let (sets, waiting) = labels::aggregate(&jobs, &runners.runners, self.queue.max_label_sets);
        s.label_sets = sets;
        s.waiting = waiting;
        s
    }

    fn jitter() -> f64 {
        let mut b = [0u8; 4];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
            return 0.5;
        }
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    }

    fn rate(&self) -> ratelimit::RateLimit {
        let a = &self.state.api;
        ratelimit::RateLimit {
            limit: a.rate_limit,
            remaining: a.rate_remaining,
            reset: a.rate_reset,
            date: a.rate_date,
        }
    }

    /// Books what the poll cost and schedules the next one.
    fn schedule(&mut self, spent: u64, error: Option<&ApiError>, now: f64) {
        let at = std::time::Instant::now();
        self.ledger.record(at, spent, self.warm_up);
        let min = self.queue.poll_interval.get();
        let budget = budget::per_hour(self.queue.budget_share.0, self.state.api.rate_limit);
        self.state.budget_per_hour = budget;
        let paced = self.ledger.next_delay(at, min, budget);
        let (delay, holding) = match error {
            None => {
                self.failures = 0;
                self.warm_up = false;
                let (d, stretched) = ratelimit::after_success(
                    paced,
                    self.github.rate_limit_reserve.0,
                    &self.rate(),
                    now as u64,
                );
                if stretched {
                    tracing::info!(delay_seconds = d.as_secs(), "GitHub rate limit under the reserve: next queue poll after the window resets");
                }
                (d, stretched)
            }
            Some(e) => {
                self.failures = self.failures.saturating_add(1);
                if let Some(reason) = e.kind.reason() {
                    self.state.api.errors.add(reason, 1);
                }
                let d = match e.kind {
                    ErrorKind::RateLimited | ErrorKind::Forbidden => ratelimit::rate_limited_delay(
                        e.retry_after,
                        &e.rate,
                        now as u64,
                        self.failures,
                        Self::jitter(),
                        paced,
                    ),
                    _ => ratelimit::exponential(self.failures, Self::jitter(), paced),
                };
                (d.max(paced), true)
            }
        };
        self.state.interval_seconds = delay.as_secs_f64();
        self.state.api.backoff_seconds = if holding { delay.as_secs_f64() } else { 0.0 };
        self.next_due = Instant::now() + delay;
        self.holding = holding;
    }
}

/// Whether the queue is watched with these settings: GitHub is on, and
/// repositories are configured, or in self scope left to the default.
pub fn enabled(settings: &Settings) -> bool {
    if settings.github_scope == Scope::Off {
        return false;
    }
    match &settings.config.github.queue.repositories {
        Some(r) => !r.is_empty(),
        None => settings.github_scope == Scope::SelfScope,
    }
}

impl Collector for QueueCollector {
    type State = QueueState;
    const NAME: &'static str = NAME;
    const READS: &'static [&'static str] = &[super::runner::NAME, super::github::NAME];

    fn enabled(settings: &Settings) -> bool {
        enabled(settings)
    }

    fn interval(settings: &Settings) -> Duration {
        settings.config.github.queue.poll_interval.get()
    }

    fn config_key(settings: &Settings) -> String {
        super::key((
            &settings.config.github,
            &settings.config.jobs,
            settings.github_scope.to_string(),
            settings.token.as_ref().map(|t| t.to_string()),
        ))
    }

    fn new(settings: &Settings, store: &Store, _: Mode) -> Self {
        let follow_roots = settings.github_scope == Scope::SelfScope
            && settings.config.github.queue.repositories.is_none();
        let roots = follow_roots
            .then(|| store.channel::<RunnerState>().map(|c| c.subscribe()))
            .flatten();
        let runners = store.channel::<GithubState>().map(|c| c.subscribe());
        QueueCollector::with_config(settings, roots, runners)
    }

    fn timeout(&self) -> Duration {
        // Each request has its own timeout; this only bounds a poll of
        // many requests that are each slow but in time (at least five per
        // repository: two run lists, a job list, a workflow list...).
        let requests = self
            .last_requests
            .max(5 * u32::try_from(self.targets.len()).unwrap_or(u32::MAX / 8));
        (self.github.request_timeout.get() * requests.saturating_add(4))
            .max(Duration::from_secs(60))
    }

    async fn wait(&mut self) {
        async fn changed<T>(
            rx: Option<&mut watch::Receiver<T>>,
        ) -> Result<(), watch::error::RecvError> {
            match rx {
                Some(r) => r.changed().await,
                None => std::future::pending().await,
            }
        }
        loop {
            let due = self.next_due;
            if self.holding {
                tokio::time::sleep_until(due).await;
                return;
            }
            let rematch = !self.failing;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => return,
                r = changed(self.roots.as_mut()) => {
                    if r.is_err() {
                        self.roots = None;
                        continue;
                    }
                    // A runner registered for another repository (or
                    // gone): poll at once.
                    if self.current_targets().unwrap_or_default() != self.targets {
                        return;
                    }
                }
                r = changed(self.runners.as_mut().filter(|_| rematch)) => {
                    if r.is_err() {
                        self.runners = None;
                        continue;
                    }
                    // New registration data: redo the matching only.
                    self.rematch = true;
                    return;
                }
            }
        }
    }

    async fn collect(&mut self) -> Result<Outcome<QueueState>, Failure<QueueState>> {
        if std::mem::take(&mut self.rematch) && Instant::now() < self.next_due {
            let state = self.build_state();
            return Ok(if state == self.state {
                Outcome::Unchanged
            } else {
                self.state = state.clone();
                Outcome::Changed(state)
            });
        }
        let now = now_unix();
        self.last_requests = 0;
        let before = charged(&self.state.api);
        let result = self.poll(now).await;
        let spent = charged(&self.state.api).saturating_sub(before);
        self.state.charged_total += spent;
        // Waits are measured on GitHub's clock (the last answer's Date).
        self.github_now = match self.state.api.rate_date {
            Some(d) if self.last_requests > 0 => d as f64,
            _ => now_unix(),
        };
        self.schedule(spent, result.as_ref().err(), now);
        self.state.polled_at = Some((now_unix(), std::time::Instant::now()));
        let state = self.build_state();
        self.state = state.clone();
        self.failing = result.is_err() || !state.repository_errors.is_empty();
        match result {
            Ok(()) => {
                let unreadable = &state.repository_errors;
                if unreadable.is_empty() {
                    Ok(Outcome::Changed(state))
                } else {
                    let msg = unreadable
                        .iter()
                        .map(|(r, e)| format!("{r}: {e}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    Err(Failure::with_data(anyhow::anyhow!(msg), state))
                }
            }
            Err(e) => Err(Failure::with_data(anyhow::anyhow!(e.message), state)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::run_once;
    use crate::collect::test_support::{github_config, registered_root, store_with_roots};
    use crate::config::Config;
    use crate::snapshot::{RunnerRoot, WaitReason};
    use serde_json::{json, Value};
    use testkit::fake_github::official_runners;
    use testkit::github_queue::{self as scenario, CI_RUN, DEPLOY_RUN, DONE_RUN, REPO};
    use testkit::FakeGithub;

    fn config(fake: &FakeGithub, dir: &std::path::Path) -> Config {
        let mut c = github_config(fake, dir, Scope::SelfScope);
        c.jobs.workflows = vec!["deploy.yml".into()];
        c
    }

    fn root(id: u64, url: &str) -> RunnerRoot {
        registered_root(&format!("/opt/r{id}"), id, url, &format!("r{id}"))
    }

    /// A store whose runner section holds `roots` and whose github section
    /// holds the official runners.
    fn store(config: Config, roots: Vec<RunnerRoot>) -> (Arc<Settings>, Arc<Store>) {
        let (settings, store) = store_with_roots(config, roots);
        let runners: Vec<GithubRunner> = official_runners()
            .into_iter()
            .map(|v| {
                serde_json::from_value::<super::super::github::ApiRunner>(v)
                    .unwrap()
                    .into_runner(None, "acme", 0.0)
            })
            .collect();
        store.channel::<GithubState>().unwrap().succeeded(
            Some(GithubState {
                runners,
                ..Default::default()
            }),
            Duration::ZERO,
            0.0,
        );
        (settings, store)
    }

    fn state(store: &Store) -> Arc<QueueState> {
        store
            .channel::<QueueState>()
            .and_then(|c| c.data())
            .unwrap()
    }

    fn routes(fake: &FakeGithub) -> Vec<String> {
        let mut r: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
        r.sort();
        r
    }

    #[tokio::test]
    async fn self_scope_watches_the_local_runners_repositories() {
        let fake = FakeGithub::start();
        fake.set_runners(REPO, official_runners());
        scenario::serve_queued(&fake);
        let dir = tempfile::tempdir().unwrap();
        let roots = vec![
            root(23, "https://github.com/acme/app"),
            root(24, "https://github.com/acme/app"),
            root(41, "https://github.com/acme"),
        ];
        let (settings, store) = store(config(&fake, dir.path()), roots);
        assert!(enabled(&settings));
        let mut c = QueueCollector::new(&settings, &store, Mode::Daemon);
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(
            routes(&fake),
            [
                "/repos/acme/app/actions/runs/20711000101/jobs?per_page=100",
                "/repos/acme/app/actions/runs/20711000202/jobs?per_page=100",
                "/repos/acme/app/actions/runs?status=in_progress&per_page=100",
                "/repos/acme/app/actions/runs?status=queued&per_page=100",
                "/repos/acme/app/actions/workflows/deploy.yml/runs?per_page=20",
            ],
            "one repository, the organization runner names none"
        );
        let s = state(&store);
        assert_eq!(s.repositories, ["acme/app"]);
        assert_eq!((s.runs_queued, s.runs_in_progress), (2, 0));
        let by = |k: &str| s.label_sets.iter().find(|l| l.labels == k).unwrap().clone();
        let deploy = by("linux,self-hosted,x64");
        let wait = deploy.oldest_wait.unwrap();
        assert!((466.0..480.0).contains(&wait), "{wait}");
        assert_eq!(deploy.reason, Some(WaitReason::AllBusy));
        assert_eq!(
            by("gpu,linux,self-hosted").reason,
            Some(WaitReason::NoRunner)
        );
        assert_eq!(
            by("macos,self-hosted").reason,
            Some(WaitReason::OnlyOffline)
        );
        assert_eq!(by("linux,self-hosted").queued, 1);
        assert_eq!(s.waiting.len(), 4);
        assert_eq!(s.waiting[0].name, "deploy-production");
        assert_eq!(s.waiting[0].workflow, "deploy.yml");
        assert_eq!(s.charged_total, 5);
        assert_eq!(s.budget_per_hour, 1000.0);
        // Nothing changed: the second poll is all 304s, charged nothing.
        let charged = fake.charged();
        c.next_due = Instant::now();
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(fake.charged(), charged);
        assert_eq!(state(&store).charged_total, 5);
        assert_eq!(state(&store).api.requests.get("304"), Some(&5));
        // Other registration data: the matching is redone without asking.
        let n = fake.request_count();
        let mut gh = (*store.channel::<GithubState>().unwrap().data().unwrap()).clone();
        gh.runners[0].busy = false;
        store
            .channel::<GithubState>()
            .unwrap()
            .succeeded(Some(gh), Duration::ZERO, 0.0);
        c.rematch = true;
        c.next_due = Instant::now() + Duration::from_secs(60);
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(fake.request_count(), n);
        let s = state(&store);
        let deploy = s
            .label_sets
            .iter()
            .find(|l| l.labels == "linux,self-hosted,x64")
            .unwrap();
        assert_eq!(deploy.reason, Some(WaitReason::NotAssigned));
        assert_eq!(deploy.runners, Some((1, 1)));
    }

    /// The CI run's jobs picked up: build after 42 s, macos-smoke after
    /// 185 s (the completed jobs of the earlier CI run, given its ids);
    /// the deploy job after 60 s and completed with success.
    fn picked_up(by: i64) -> (Vec<Value>, Vec<Value>) {
        let mut ci = scenario::items("run-20711000202-jobs.json", "jobs", by);
        let done = scenario::items("run-20710990303-jobs.json", "jobs", by);
        // build (0) and macos-smoke (2); gpu-tests (1) has no runner.
        for (i, d) in [(0, &done[0]), (2, &done[1])] {
            let job = &mut ci[i];
            let created =
                scenario::items("run-20711000202-jobs.json", "jobs", by)[0]["created_at"].clone();
            let mut d = d.clone();
            d["id"] = job["id"].clone();
            d["run_id"] = json!(CI_RUN);
            d["labels"] = job["labels"].clone();
            // Keep the completed job's queue time, from the new created_at.
            let shift = api::parse_time(created.as_str().unwrap()).unwrap()
                - api::parse_time(d["created_at"].as_str().unwrap()).unwrap();
            let mut moved = d.clone();
            scenario::shift(&mut moved, shift as i64);
            *job = moved;
        }
        let mut deploy = scenario::items("run-20711000101-jobs.json", "jobs", by);
        let created = api::parse_time(deploy[0]["created_at"].as_str().unwrap()).unwrap() as i64;
        let stamp = |t: i64| json!(scenario::stamp(t));
        deploy[0]["status"] = json!("completed");
        deploy[0]["conclusion"] = json!("success");
        deploy[0]["started_at"] = stamp(created + 60);
        deploy[0]["completed_at"] = stamp(created + 60 + 250);
        deploy[0]["runner_id"] = json!(23);
        deploy[0]["runner_name"] = json!("linux_runner");
        (ci, deploy)
    }

    #[tokio::test]
    async fn picked_up_jobs_give_queue_times_and_completed_deploys_count() {
        let fake = FakeGithub::start();
        fake.set_runners(REPO, official_runners());
        let by = scenario::serve_queued(&fake);
        // An earlier CI run that completed before the exporter started:
        // the baseline, never counted.
        let mut done_run = scenario::items("queued-runs.json", "workflow_runs", by)[1].clone();
        done_run["id"] = json!(DONE_RUN);
        done_run["status"] = json!("completed");
        let mut runs = scenario::items("queued-runs.json", "workflow_runs", by);
        runs.push(done_run);
        fake.set_runs(REPO, runs);
        fake.set_jobs(
            DONE_RUN,
            scenario::items("run-20710990303-jobs.json", "jobs", by),
        );
        let dir = tempfile::tempdir().unwrap();
        let (settings, store) = store(
            config(&fake, dir.path()),
            vec![root(23, "https://github.com/acme/app")],
        );
        let mut c = QueueCollector::new(&settings, &store, Mode::Daemon);
        assert_eq!(run_once(&mut c, &store).await, None);
        let s = state(&store);
        assert_eq!(s.queue_time.count(), 0);
        assert_eq!(
            s.workflows[0].results.get(JobConclusion::Success),
            0,
            "baseline"
        );
        // The CI run starts (its jobs picked up) and the deploy run
        // completes: it leaves the queued list.
        let (ci, deploy) = picked_up(by);
        fake.update_run(REPO, CI_RUN, |r| r["status"] = json!("in_progress"));
        fake.set_jobs(CI_RUN, ci);
        fake.update_run(REPO, DEPLOY_RUN, |r| r["status"] = json!("completed"));
        fake.set_jobs(DEPLOY_RUN, deploy);
        c.next_due = Instant::now();
        assert_eq!(run_once(&mut c, &store).await, None);
        let s = state(&store);
        assert_eq!((s.runs_queued, s.runs_in_progress), (0, 1));
        // 42 s and 185 s from the CI jobs, 60 s from the deploy job; the
        // gpu job has no runner and stays out.
        assert_eq!(s.queue_time.count(), 3, "{:?}", s.queue_time);
        assert_eq!(s.queue_time.sum, 42.0 + 185.0 + 60.0);
        let w = &s.workflows[0];
        assert_eq!(w.workflow, "deploy.yml");
        assert_eq!(w.results.get(JobConclusion::Success), 1);
        assert_eq!(w.durations.count(), 1);
        assert_eq!(w.durations.sum, 250.0);
        let waiting: Vec<&str> = s.waiting.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(waiting, ["gpu-tests"], "no runner can take it");
        // Seen once: the next poll observes and counts nothing again.
        c.next_due = Instant::now();
        assert_eq!(run_once(&mut c, &store).await, None);
        let again = state(&store);
        assert_eq!(again.queue_time, s.queue_time);
        assert_eq!(again.workflows, s.workflows);
    }

    #[tokio::test]
    async fn an_unreadable_repository_fails_alone_and_is_asked_again_later() {
        let fake = FakeGithub::start();
        fake.set_runners(REPO, official_runners());
        scenario::serve_queued(&fake);
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&fake, dir.path());
        config.github.queue.repositories = Some(vec!["acme/app".into(), "acme/gone".into()]);
        let (settings, store) = store(config, Vec::new());
        let mut c = QueueCollector::new(&settings, &store, Mode::Daemon);
        let err = run_once(&mut c, &store).await.expect("a failure");
        assert!(err.contains("acme/gone") && err.contains("404"), "{err}");
        let s = state(&store);
        assert_eq!(s.runs_queued, 2, "acme/app was read");
        assert_eq!(s.repository_errors.len(), 1);
        assert_eq!(
            s.api.errors.get(crate::snapshot::ApiErrorReason::NotFound),
            1
        );
        c.next_due = Instant::now();
        let n = fake
            .requests()
            .iter()
            .filter(|r| r.path.contains("acme/gone"))
            .count();
        assert!(run_once(&mut c, &store).await.is_some(), "still failing");
        let m = fake
            .requests()
            .iter()
            .filter(|r| r.path.contains("acme/gone"))
            .count();
        assert_eq!(m, n, "not asked again within 15 minutes");
    }

    #[test]
    fn queue_settings_restart_the_queue_collector_alone() {
        use crate::collect::github::GithubCollector;
        let with = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            c.github.scope = Some(Scope::SelfScope);
            f(&mut c);
            Settings::with_token(c, None)
        };
        let base = with(&|_| {});
        let budget = with(&|c| c.github.queue.budget_share = crate::config::Ratio(0.1));
        let workflows = with(&|c| c.jobs.workflows = vec!["deploy.yml".into()]);
        let timeout = with(&|c| c.github.request_timeout = crate::duration::Dur::secs(3));
        for changed in [&budget, &workflows] {
            assert_eq!(
                GithubCollector::config_key(&base),
                GithubCollector::config_key(changed)
            );
            assert_ne!(
                QueueCollector::config_key(&base),
                QueueCollector::config_key(changed)
            );
        }
        // The connection settings are both collectors'.
        assert_ne!(
            GithubCollector::config_key(&base),
            GithubCollector::config_key(&timeout)
        );
        assert_ne!(
            QueueCollector::config_key(&base),
            QueueCollector::config_key(&timeout)
        );
        // Self scope watches by default; fleet scope only what is listed;
        // [] turns it off.
        assert!(enabled(&base));
        assert!(!enabled(&with(&|c| c.github.scope = Some(Scope::Fleet))));
        assert!(enabled(&with(&|c| {
            c.github.scope = Some(Scope::Fleet);
            c.github.queue.repositories = Some(vec!["a/b".into()]);
        })));
        assert!(!enabled(&with(
            &|c| c.github.queue.repositories = Some(Vec::new())
        )));
        assert!(!enabled(&Settings::default()), "no credentials, no GitHub");
    }

    #[tokio::test]
    async fn rate_limits_hold_the_queue_as_they_hold_the_runner_poll() {
        let fake = FakeGithub::start();
        fake.set_runners(REPO, official_runners());
        scenario::serve_queued(&fake);
        let dir = tempfile::tempdir().unwrap();
        let (settings, store) = store(
            config(&fake, dir.path()),
            vec![root(23, "https://github.com/acme/app")],
        );
        let mut c = QueueCollector::new(&settings, &store, Mode::Daemon);
        // Exhausted: nothing until the window resets, 300 s from now.
        fake.fail(testkit::Failure::RateLimitExhausted { reset_in: 300 });
        let err = run_once(&mut c, &store).await.expect("a failure");
        assert!(err.contains("rate limit"), "{err}");
        let s = state(&store);
        assert!(
            (299.0..=302.0).contains(&s.interval_seconds),
            "{}",
            s.interval_seconds
        );
        assert_eq!(s.api.backoff_seconds, s.interval_seconds);
        assert_eq!(
            s.api
                .errors
                .get(crate::snapshot::ApiErrorReason::RateLimited),
            1
        );
        assert!(c.holding, "no rematch or early poll while held");
        assert_eq!(fake.request_count(), 1, "the first refusal stops the poll");
        // A secondary limit with retry-after: exactly that long.
        fake.fail(testkit::Failure::TooManyRequests {
            retry_after: Some(90),
        });
        assert!(run_once(&mut c, &store).await.is_some());
        assert_eq!(state(&store).interval_seconds, 90.0);
        // Under the reserve after a success: stretched to the reset.
        fake.clear_failure();
        let reset = scenario::now() as u64 + 1200;
        fake.set_rate_limit(5000, 100, reset);
        assert_eq!(run_once(&mut c, &store).await, None);
        let s = state(&store);
        assert!(s.interval_seconds > 1100.0, "{}", s.interval_seconds);
        assert!(c.holding);
    }

    /// Simulation for docs/BENCHMARKS.md: requests per poll and per hour
    /// for 1, 10 and 100 watched repositories, each with the scenario's
    /// two queued runs, and one deploy workflow.
    /// `cargo test --lib collect::queue::tests::simulate -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "simulation: prints figures for docs/BENCHMARKS.md"]
    async fn simulate_request_budget() {
        println!("repos | poll 1: sent/charged | unchanged: sent/charged per poll | polls/h | charged/h | share of 5000/h | busy: charged/poll, interval, polls in the last hour, charged/h, share");
        for n in [1usize, 10, 100] {
            let fake = FakeGithub::start();
            let mut repos = Vec::new();
            for i in 0..n {
                let owner = format!("repos/acme/app{i}");
                fake.set_runners(&owner, official_runners());
                repos.push(format!("acme/app{i}"));
            }
            let by = scenario::now() - scenario::REFERENCE;
            let runs = scenario::items("queued-runs.json", "workflow_runs", by);
            for i in 0..n {
                fake.set_runs(&format!("repos/acme/app{i}"), runs.clone());
            }
            fake.set_jobs(
                DEPLOY_RUN,
                scenario::items("run-20711000101-jobs.json", "jobs", by),
            );
            fake.set_jobs(
                CI_RUN,
                scenario::items("run-20711000202-jobs.json", "jobs", by),
            );
            let dir = tempfile::tempdir().unwrap();
            let mut config = config(&fake, dir.path());
            config.github.queue.repositories = Some(repos);
            let (settings, store) = store(config, Vec::new());
            let mut c = QueueCollector::new(&settings, &store, Mode::Daemon);
            let mut polls = Vec::new();
            for _ in 0..3 {
                let (r0, c0) = (fake.request_count(), fake.charged());
                c.next_due = Instant::now();
                assert_eq!(run_once(&mut c, &store).await, None);
                polls.push((
                    fake.request_count() - r0,
                    fake.charged() - c0,
                    state(&store).interval_seconds,
                ));
            }
            let (sent, charged, interval) = polls[2];
            let per_hour = 3600.0 / interval;
            // Busy: every answer changes on every poll, so nothing is a
            // 304 and each poll is charged what the first was. Four hours
            // of polls at the pace the budget sets; the last hour counts.
            let busy = polls[0].1;
            let mut ledger = budget::Ledger::default();
            let t0 = std::time::Instant::now();
            let mut t = t0;
            ledger.record(t, busy, true);
            let mut at = Vec::new();
            loop {
                t += ledger.next_delay(t, Duration::from_secs(60), 1000.0);
                if t > t0 + Duration::from_secs(4 * 3600) {
                    break;
                }
                ledger.record(t, busy, false);
                at.push(t);
            }
            // The hour up to the last poll.
            let end = *at.last().expect("polls within four hours");
            let last_hour = at
                .iter()
                .filter(|x| end.duration_since(**x) < Duration::from_secs(3600))
                .count();
            let busy_per_hour = ledger.spent(end) as f64;
            let busy_interval = ledger
                .next_delay(end, Duration::from_secs(60), 1000.0)
                .as_secs_f64();
            println!(
                "{n} | {}/{} | {sent}/{charged} | {per_hour:.0} | {:.0} | {:.1}% | {busy}, {busy_interval:.0} s, {last_hour} polls, {busy_per_hour:.0}, {:.1}%",
                polls[0].0,
                polls[0].1,
                charged as f64 * per_hour,
                100.0 * charged as f64 * per_hour / 5000.0,
                100.0 * busy_per_hour / 5000.0,
            );
            assert_eq!(charged, 0, "unchanged answers are 304s");
            assert!(busy_per_hour <= 1000.0 + 1e-6);
        }
    }
}
