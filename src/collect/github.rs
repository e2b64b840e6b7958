//! GitHub collector: the runners' registrations as GitHub's REST API sees
//! them (registered, online, busy, labels), polled in the background.
//!
//! Scope `self` looks up each local runner by the `agentId` and
//! `gitHubUrl` of its `.runner` (from the runner collector's section);
//! scope `fleet` lists every runner of the configured repositories,
//! organizations and enterprises, 100 per page. Every GET is conditional
//! on the URL's last ETag, so an unchanged answer (304) costs no rate
//! limit. Polls follow `poll_interval`, stretched until the rate-limit
//! window resets when the remainder falls under the reserve, and back off
//! after failures (see [`ratelimit`]). A failed poll keeps the last known
//! runner data and updates only the API statistics.

pub mod app;
pub mod auth;
pub mod client;
pub mod credentials;
pub mod ratelimit;
pub mod releases;
pub mod scope;

use super::{Collector, Failure, Mode, Outcome};
use crate::config::{GithubConfig, LatestVersionSetting, Scope};
use crate::net::Network;
use crate::settings::Settings;
use crate::snapshot::{
    ApiFailure, ApiStats, Data, GithubRunner, GithubState, OwnerStatus, RunnerId, RunnerState,
    Store,
};
use crate::timefmt::now_unix;
use auth::Secret;
use client::{ApiError, Client, ErrorKind, Reply};
use credentials::Credentials;
use hyper::Method;
use scope::Owner;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The collector's name: its section and its `collector` label.
pub const NAME: &str = "github";

/// The API base when nothing else names one (fleet scope).
pub const DEFAULT_API: &str = "https://api.github.com";
/// Pages followed per list at most (100 runners each).
const MAX_PAGES: usize = 1000;
/// A runner id that answered 404 is asked about again only after this
/// long: ids are never reused, and a 404 has no ETag, so asking every poll
/// would spend rate limit on a registration that is gone.
const NOT_FOUND_RECHECK: Duration = Duration::from_secs(15 * 60);

/// What one poll asks about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// Self scope: one local runner root.
    Local {
        root: PathBuf,
        name: String,
        id: u64,
        github_url: String,
    },
    /// Fleet scope: every runner of one owner.
    List(Owner),
}

/// A runner as the REST API describes it. Only `id` and `name` are
/// required; a null where the schema has a string or a boolean reads as
/// empty or false.
#[derive(serde::Deserialize)]
pub(crate) struct ApiRunner {
    #[serde(deserialize_with = "runner_id")]
    id: RunnerId,
    name: String,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    busy: Option<bool>,
    #[serde(default)]
    ephemeral: Option<bool>,
    #[serde(default)]
    labels: Option<Vec<ApiLabel>>,
}

#[derive(serde::Deserialize)]
struct ApiLabel {
    name: String,
}

/// A short, printable excerpt of text from an answer, for messages.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(40).collect();
    if s.chars().count() > 40 {
        out.push_str("...");
    }
    out
}

/// The schema says "integer": any integral JSON number, of any size.
fn runner_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RunnerId, D::Error> {
    let raw: Box<RawValue> = serde::Deserialize::deserialize(d)?;
    RunnerId::from_json_number(raw.get()).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "id {} is not an integer (of at most {} digits)",
            excerpt(raw.get()),
            RunnerId::MAX_DIGITS
        ))
    })
}

/// A page of the runner list: each runner is read on its own, so one that
/// cannot be read leaves out only itself.
#[derive(serde::Deserialize)]
pub(crate) struct RunnerList<'a> {
    #[serde(borrow)]
    pub(crate) runners: Vec<&'a RawValue>,
}

impl RunnerList<'_> {
    /// The runners that read, and why each other one did not.
    pub(crate) fn read(&self) -> (Vec<ApiRunner>, Vec<String>) {
        let mut ok = Vec::with_capacity(self.runners.len());
        let mut bad = Vec::new();
        for (i, raw) in self.runners.iter().enumerate() {
            match serde_json::from_str::<ApiRunner>(raw.get()) {
                Ok(r) => ok.push(r),
                Err(e) => bad.push(format!(
                    "runner {} of the page: {}",
                    i + 1,
                    excerpt_error(&e)
                )),
            }
        }
        (ok, bad)
    }
}

fn excerpt_error(e: &serde_json::Error) -> String {
    e.to_string()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

impl ApiRunner {
    pub(crate) fn into_runner(self, root: Option<PathBuf>, owner: &str, now: f64) -> GithubRunner {
        GithubRunner {
            name: self.name,
            root,
            id: Some(self.id),
            owner: owner.to_string(),
            registered: true,
            online: self
                .status
                .is_some_and(|s| s.eq_ignore_ascii_case("online")),
            busy: self.busy.unwrap_or(false),
            os: self.os.unwrap_or_default(),
            ephemeral: self.ephemeral.unwrap_or(false),
            labels: self
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.name)
                .collect(),
            checked_at: now,
        }
    }
}

/// What asking about one target gave.
struct Fetched {
    runners: Vec<GithubRunner>,
    /// Runner objects left out, and why.
    unreadable: Vec<String>,
}

/// One owner within one poll.
#[derive(Default)]
struct OwnerPoll {
    /// Every request about it was answered.
    ok: bool,
    error: Option<ApiFailure>,
    unreadable: u64,
}

/// What a poll that asked its owners gave.
#[derive(Default)]
struct PollOutcome {
    /// Targets answered.
    answered: usize,
    /// Failures, already counted.
    failures: Vec<ApiError>,
    /// A rate limit stopped the poll.
    rate_limited: Option<ApiError>,
}

pub struct GithubCollector {
    config: GithubConfig,
    scope: Scope,
    network: Network,
    /// Self scope: the runner collector's roots, whose registrations say
    /// which runners to ask about.
    roots: Option<watch::Receiver<Data<RunnerState>>>,
    client: Option<Client>,
    credentials: Credentials,
    next_due: Instant,
    /// A backoff or a rate-limit stretch is in effect: nothing wakes the
    /// collector before `next_due`.
    holding: bool,
    failures: u32,
    /// The last known runners of each target, kept across failed polls.
    known: BTreeMap<Target, Vec<GithubRunner>>,
    /// The targets of the last poll (self scope: compared with the runner
    /// section to poll a new runner at once).
    targets: Vec<Target>,
    stats: ApiStats,
    owners: Vec<OwnerStatus>,
    /// Why the last poll failed as a whole.
    error: Option<ApiFailure>,
    /// The failure last logged for each owner, so a lasting failure is
    /// logged once.
    logged: HashMap<String, String>,
    /// Runner objects reported as unreadable (a cached page is read again
    /// on every poll; each is logged once while it lasts).
    logged_unreadable: std::collections::HashSet<String>,
    last_requests: u32,
    /// gitHubUrl values already reported as unusable.
    bad_urls: std::collections::HashSet<String>,
    /// Self scope: when each runner id last answered 404.
    not_found: BTreeMap<Target, Instant>,
    /// The latest actions/runner release, when `[github]
    /// runner_latest_version` leaves it to GitHub.
    release: Option<releases::LatestRelease>,
}

impl GithubCollector {
    /// Builds the collector; in self scope it follows the runner roots
    /// through `roots`.
    pub fn with_config(
        settings: &Settings,
        roots: Option<watch::Receiver<Data<RunnerState>>>,
    ) -> GithubCollector {
        let config = settings.config.github.clone();
        let credentials = Credentials::new(settings);
        let release = (config.latest_version() == LatestVersionSetting::Ask)
            .then(releases::LatestRelease::default);
        GithubCollector {
            config,
            scope: settings.github_scope,
            network: settings.network.clone(),
            roots,
            client: None,
            credentials,
            next_due: Instant::now(),
            holding: false,
            failures: 0,
            known: BTreeMap::new(),
            targets: Vec::new(),
            stats: ApiStats::default(),
            owners: Vec::new(),
            error: None,
            logged: HashMap::new(),
            logged_unreadable: Default::default(),
            last_requests: 0,
            bad_urls: Default::default(),
            not_found: BTreeMap::new(),
            release,
        }
    }

    /// The latest actions/runner release, at most hourly, after a poll
    /// that succeeded (see [`releases`]): from `[github] api_url`, else
    /// api.github.com, with the credential of a runner registered there.
    /// Runners only on GitHub Enterprise Server leave it unknown (set
    /// `[github] runner_latest_version`). Not while polls are stretched
    /// for the rate-limit reserve: it waits for the window to reset too.
    async fn check_latest_release(&mut self, now: f64) {
        let due = self.release.as_ref().is_some_and(|r| r.due());
        if !due || self.holding || self.targets.is_empty() {
            return;
        }
        let base = self
            .config
            .api_url
            .as_deref()
            .map_or(DEFAULT_API, |u| u.trim_end_matches('/'))
            .to_string();
        let mut owner = None;
        for t in self.targets.clone() {
            if let Some((b, o)) = self.locate(&t) {
                if b == base {
                    owner = Some(o);
                    break;
                }
            }
        }
        let token = match owner {
            Some(o) => self.credential(&base, &o, now).await,
            None => Err(ApiError::new(
                ErrorKind::Setup,
                format!("no runner is registered at {base} (GitHub Enterprise Server?) whose credential could ask it"),
            )),
        };
        let timeouts = (
            self.config.connect_timeout.get(),
            self.config.request_timeout.get(),
        );
        let Some(release) = self.release.as_mut() else {
            return;
        };
        match token {
            Ok(token) => {
                release
                    .check(
                        &base,
                        &token,
                        &mut self.stats,
                        (timeouts, &self.network),
                        now,
                    )
                    .await
            }
            Err(e) => release.skipped(&e.message),
        }
    }

    /// Self scope: the local runners with a registration, from the runner
    /// collector's section.
    fn local_targets(&self) -> Vec<Target> {
        let Some(state) = self.roots.as_ref().and_then(|r| r.borrow().clone()) else {
            return Vec::new();
        };
        let mut t: Vec<Target> = state
            .roots
            .iter()
            .filter_map(|r| {
                let reg = r.registration.as_ref()?;
                Some(Target::Local {
                    root: r.root.clone(),
                    name: reg
                        .agent_name
                        .clone()
                        .or_else(|| r.agent_name.clone())
                        .unwrap_or_default(),
                    id: reg.agent_id?,
                    github_url: reg.github_url.clone()?,
                })
            })
            .collect();
        t.sort();
        t
    }

    fn fleet_targets(&self) -> Result<Vec<Target>, ApiError> {
        let c = &self.config;
        let mut t = Vec::new();
        for r in &c.repositories {
            t.push(Target::List(scope::repo_owner(r).map_err(ApiError::setup)?));
        }
        for o in &c.organizations {
            t.push(Target::List(scope::org_owner(o).map_err(ApiError::setup)?));
        }
        for e in &c.enterprises {
            t.push(Target::List(
                scope::enterprise_owner(e).map_err(ApiError::setup)?,
            ));
        }
        // An owner listed twice is asked about once.
        let mut seen = std::collections::BTreeSet::new();
        t.retain(|x| seen.insert(x.clone()));
        Ok(t)
    }

    fn current_targets(&self) -> Result<Vec<Target>, ApiError> {
        match self.scope {
            Scope::Fleet => self.fleet_targets(),
            _ => Ok(self.local_targets()),
        }
    }

    /// The API base and owner of a target.
    fn locate(&mut self, target: &Target) -> Option<(String, Owner)> {
        let (base, owner) = match target {
            Target::List(owner) => (DEFAULT_API.to_string(), owner.clone()),
            Target::Local {
                github_url, root, ..
            } => match scope::parse_github_url(github_url) {
                Ok(x) => x,
                Err(e) => {
                    if self.bad_urls.insert(github_url.clone()) {
                        tracing::warn!(root = %root.display(), error = %format!("{e:#}"), "cannot look up this runner at GitHub");
                    }
                    return None;
                }
            },
        };
        let base = match &self.config.api_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => base,
        };
        Some((base, owner))
    }

    async fn credential(
        &mut self,
        base: &str,
        owner: &Owner,
        now: f64,
    ) -> Result<Secret, ApiError> {
        self.credentials
            .secret(self.client.as_mut(), base, owner, &mut self.stats, now)
            .await
    }

    async fn send(&mut self, url: &str, token: &Secret) -> Result<Reply, ApiError> {
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| ApiError::new(ErrorKind::Setup, "no HTTP client"))?;
        self.last_requests += 1;
        client.send(Method::GET, url, token, &mut self.stats).await
    }

    /// Asks about one target.
    async fn fetch(
        &mut self,
        target: &Target,
        base: &str,
        owner: &Owner,
        now: f64,
    ) -> Result<Fetched, ApiError> {
        let token = self.credential(base, owner, now).await?;
        let owner_name = owner.to_string();
        let result = match target {
            Target::Local { root, name, id, .. } => {
                let url = format!("{base}{}", owner.runner_path(*id));
                let reply = self.send(&url, &token).await?;
                match reply.status {
                    404 => Ok(vec![GithubRunner {
                        name: name.clone(),
                        root: Some(root.clone()),
                        id: Some(RunnerId::from(*id)),
                        owner: owner_name,
                        registered: false,
                        checked_at: now,
                        ..Default::default()
                    }]),
                    _ if reply.ok() => {
                        let r: ApiRunner = reply.json()?;
                        Ok(vec![r.into_runner(Some(root.clone()), &owner_name, now)])
                    }
                    _ => Err(reply.error(&token)),
                }
                .map(|runners| Fetched {
                    runners,
                    unreadable: Vec::new(),
                })
            }
            Target::List(_) => self.list(base, owner, &token, now).await,
        };
        if matches!(&result, Err(e) if e.kind == ErrorKind::Auth) {
            self.credentials.refused(owner);
        }
        result
    }

    /// Every runner of one owner, following `Link: rel="next"`.
    async fn list(
        &mut self,
        base: &str,
        owner: &Owner,
        token: &Secret,
        now: f64,
    ) -> Result<Fetched, ApiError> {
        let origin = scope::origin(base).to_string();
        let owner_name = owner.to_string();
        let mut url = format!("{base}{}", owner.list_path());
        let mut out = Fetched {
            runners: Vec::new(),
            unreadable: Vec::new(),
        };
        for _ in 0..MAX_PAGES {
            let reply = self.send(&url, token).await?;
            if !reply.ok() {
                return Err(reply.error(token));
            }
            let page: RunnerList<'_> = reply.json_borrowed()?;
            let (runners, bad) = page.read();
            out.runners.extend(
                runners
                    .into_iter()
                    .map(|r| r.into_runner(None, &owner_name, now)),
            );
            out.unreadable
                .extend(bad.into_iter().map(|b| format!("GET {url}: {b}")));
            match reply.next_page(&origin)? {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        Err(ApiError::new(
            ErrorKind::Malformed,
            format!("GET {url}: more than {MAX_PAGES} pages"),
        ))
    }

    fn runners(&self) -> Vec<GithubRunner> {
        self.known.values().flatten().cloned().collect()
    }

    fn state(&self) -> GithubState {
        GithubState {
            runners: self.runners(),
            api: self.stats.clone(),
            latest_runner: self.release.as_ref().and_then(|r| r.known()),
            owners: self.owners.clone(),
            error: self.error.clone(),
        }
    }

    fn jitter() -> f64 {
        let mut b = [0u8; 4];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
            return 0.5;
        }
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    }

    /// The delay after a failure of kind `e`, the `failures`-th in a row.
    fn failure_delay(&self, e: &ApiError) -> Duration {
        let interval = self.config.poll_interval.get();
        let now = now_unix() as u64;
        match e.kind {
            ErrorKind::RateLimited | ErrorKind::Forbidden => ratelimit::rate_limited_delay(
                e.retry_after,
                &e.rate,
                now,
                self.failures,
                Self::jitter(),
                interval,
            ),
            _ => ratelimit::exponential(self.failures, Self::jitter(), interval),
        }
    }

    /// Schedules the next poll after a failed poll.
    fn failed(&mut self, e: &ApiError) {
        self.failures = self.failures.saturating_add(1);
        let delay = self.failure_delay(e);
        self.stats.backoff_seconds = delay.as_secs_f64();
        self.next_due = Instant::now() + delay;
        self.holding = true;
        tracing::debug!(
            failures = self.failures,
            delay_seconds = delay.as_secs_f64(),
            "GitHub API: backing off"
        );
    }

    /// Schedules the next poll after a poll in which owners answered
    /// (`rate_limited`: a rate limit stopped it before the last owner).
    fn succeeded(&mut self, now: f64, rate_limited: Option<&ApiError>) {
        self.failures = 0;
        self.stats.last_success = Some(now);
        if let Some(e) = rate_limited {
            self.failures = 1;
            let delay = self.failure_delay(e);
            self.stats.backoff_seconds = delay.as_secs_f64();
            self.next_due = Instant::now() + delay;
            self.holding = true;
            return;
        }
        let rate = ratelimit::RateLimit {
            limit: self.stats.rate_limit,
            remaining: self.stats.rate_remaining,
            reset: self.stats.rate_reset,
            date: self.stats.rate_date,
        };
        let (delay, stretched) = ratelimit::after_success(
            self.config.poll_interval.get(),
            self.config.rate_limit_reserve.0,
            &rate,
            now as u64,
        );
        if stretched {
            tracing::info!(
                remaining = ?rate.remaining,
                limit = ?rate.limit,
                delay_seconds = delay.as_secs(),
                "GitHub rate limit under the reserve: next poll after the window resets"
            );
        }
        self.stats.backoff_seconds = if stretched { delay.as_secs_f64() } else { 0.0 };
        self.next_due = Instant::now() + delay;
        self.holding = stretched;
    }

    /// Counts a failure against an owner (and the API statistics).
    fn count(&mut self, polls: &mut Vec<(String, OwnerPoll)>, owner: &str, e: &ApiError) {
        if let Some(reason) = e.kind.reason() {
            self.stats.errors.add(reason, 1);
            if let Some(o) = self.owners.iter_mut().find(|o| o.owner == owner) {
                o.errors.add(reason, 1);
            }
        }
        let p = owner_poll(polls, owner);
        p.ok = false;
        p.error = Some(ApiFailure {
            reason: e.kind.reason(),
            message: e.message.clone(),
        });
    }

    /// Asks every target once. An owner that fails does not stop the
    /// others, except that a rate limit ends the poll, and after a
    /// failure of the way to a server (proxy, TLS, connection) the other
    /// owners on that server are not asked but marked failed alike.
    async fn poll(&mut self, now: f64) -> Result<PollOutcome, ApiError> {
        if self.client.is_none() {
            self.client = Some(Client::with_network(
                self.config.connect_timeout.get(),
                self.config.request_timeout.get(),
                &self.network,
            )?);
        }
        let targets = self.current_targets()?;
        self.targets = targets.clone();
        // Targets that are gone take their runners with them.
        self.known.retain(|t, _| targets.contains(t));
        self.not_found.retain(|t, _| targets.contains(t));
        if let Some(c) = self.client.as_mut() {
            c.begin_poll();
        }
        let mut polls: Vec<(String, OwnerPoll)> = Vec::new();
        let mut out = PollOutcome::default();
        // Servers that could not be reached in this poll, and why.
        let mut unreachable: HashMap<String, ApiError> = HashMap::new();
        let mut unreadable_now = std::collections::HashSet::new();
        for t in &targets {
            let Some((base, owner)) = self.locate(t) else {
                continue;
            };
            let name = owner.to_string();
            if !self.owners.iter().any(|o| o.owner == name) {
                self.owners.push(OwnerStatus {
                    owner: name.clone(),
                    ..Default::default()
                });
            }
            if owner_poll(&mut polls, &name).error.is_none() {
                owner_poll(&mut polls, &name).ok = true;
            }
            if out.rate_limited.is_some() {
                // Not asked: its last data and status stay.
                owner_poll(&mut polls, &name).ok = false;
                continue;
            }
            let recently_gone = self
                .not_found
                .get(t)
                .is_some_and(|at| at.elapsed() < NOT_FOUND_RECHECK);
            if recently_gone && self.known.contains_key(t) {
                out.answered += 1;
                continue;
            }
            let origin = scope::origin(&base).to_string();
            if let Some(first) = unreachable.get(&origin) {
                let mut e = ApiError::new(
                    first.kind,
                    format!(
                        "not asked: an earlier request to {origin} failed: {}",
                        first.message
                    ),
                );
                e.retry_after = first.retry_after;
                self.count(&mut polls, &name, &e);
                out.failures.push(e);
                continue;
            }
            match self.fetch(t, &base, &owner, now).await {
                Ok(fetched) => {
                    out.answered += 1;
                    for why in &fetched.unreadable {
                        if !self.logged_unreadable.contains(why) {
                            tracing::warn!(owner = %name, "left out a runner GitHub listed: {why}");
                        }
                        unreadable_now.insert(why.clone());
                    }
                    owner_poll(&mut polls, &name).unreadable += fetched.unreadable.len() as u64;
                    if matches!(t, Target::Local { .. })
                        && fetched.runners.iter().any(|r| !r.registered)
                    {
                        self.not_found.entry(t.clone()).or_insert_with(Instant::now);
                    } else {
                        self.not_found.remove(t);
                    }
                    self.known.insert(t.clone(), fetched.runners);
                }
                // Missing credentials or an unreadable App key: every
                // owner would fail alike.
                Err(e) if e.kind == ErrorKind::Setup => return Err(e),
                Err(e) => {
                    self.count(&mut polls, &name, &e);
                    if e.kind == ErrorKind::RateLimited {
                        out.rate_limited = Some(e.clone());
                    } else if e.is_transport() {
                        unreachable.insert(origin, e.clone());
                    }
                    out.failures.push(e);
                }
            }
        }
        if let Some(c) = self.client.as_mut() {
            c.end_poll();
        }
        self.logged_unreadable = unreadable_now;
        self.settle_owners(polls, now, out.answered == 0);
        Ok(out)
    }

    /// Updates each owner's status from this poll and logs the owners
    /// that start or stop failing while others answer (when none answers,
    /// the poll's failure is logged instead).
    fn settle_owners(&mut self, polls: Vec<(String, OwnerPoll)>, now: f64, none_answered: bool) {
        self.owners
            .retain(|o| polls.iter().any(|(name, _)| *name == o.owner));
        for (name, p) in polls {
            let Some(o) = self.owners.iter_mut().find(|o| o.owner == name) else {
                continue;
            };
            o.unreadable = p.unreadable;
            if p.ok {
                o.success = true;
                o.last_success = Some(now);
                o.error = None;
                if self.logged.remove(&name).is_some() {
                    tracing::info!(owner = %name, "GitHub answers about this owner again");
                }
            } else if let Some(e) = p.error {
                o.success = false;
                let again = self.logged.get(&name) == Some(&e.message);
                if !again && !none_answered {
                    tracing::warn!(owner = %name, error = %e.message, "GitHub API: this owner failed; the others are still reported");
                }
                self.logged.insert(name.clone(), e.message.clone());
                o.error = Some(e);
            }
        }
        self.logged
            .retain(|name, _| self.owners.iter().any(|o| o.owner == *name));
    }
}

fn owner_poll<'a>(polls: &'a mut Vec<(String, OwnerPoll)>, owner: &str) -> &'a mut OwnerPoll {
    let i = match polls.iter().position(|(n, _)| n == owner) {
        Some(i) => i,
        None => {
            polls.push((owner.to_string(), OwnerPoll::default()));
            polls.len() - 1
        }
    };
    &mut polls[i].1
}

impl Collector for GithubCollector {
    type State = GithubState;
    const NAME: &'static str = NAME;
    const READS: &'static [&'static str] = &[super::runner::NAME];

    fn enabled(settings: &Settings) -> bool {
        settings.github_scope != Scope::Off
    }

    fn interval(settings: &Settings) -> Duration {
        settings.config.github.poll_interval.get()
    }

    fn config_key(settings: &Settings) -> String {
        // [github.queue] is the queue collector's: a change there does
        // not restart this one.
        let github = GithubConfig {
            queue: Default::default(),
            ..settings.config.github.clone()
        };
        super::key((
            &github,
            settings.github_scope.to_string(),
            settings.token.as_ref().map(|t| t.to_string()),
            // Proxy passwords and variables, which the config's own
            // serialisation leaves out.
            settings.network.fingerprint(),
        ))
    }

    fn new(settings: &Settings, store: &Store, _: Mode) -> Self {
        let roots = (settings.github_scope == Scope::SelfScope)
            .then(|| store.channel::<RunnerState>().map(|c| c.subscribe()))
            .flatten();
        GithubCollector::with_config(settings, roots)
    }

    fn timeout(&self) -> Duration {
        // Each request has its own timeout; this only bounds a poll of
        // many requests that are each slow but in time.
        (self.config.request_timeout.get() * (self.last_requests + 4)).max(Duration::from_secs(60))
    }

    async fn wait(&mut self) {
        loop {
            let due = self.next_due;
            let Some(roots) = self.roots.as_mut().filter(|_| !self.holding) else {
                tokio::time::sleep_until(due).await;
                return;
            };
            // Self scope: a runner registered (or removed) meanwhile is
            // looked up at once rather than a poll interval later.
            tokio::select! {
                _ = tokio::time::sleep_until(due) => return,
                r = roots.changed() => {
                    if r.is_err() {
                        tokio::time::sleep_until(due).await;
                        return;
                    }
                    if self.local_targets() != self.targets {
                        return;
                    }
                }
            }
        }
    }

    async fn collect(&mut self) -> Result<Outcome<GithubState>, Failure<GithubState>> {
        let now = now_unix();
        self.last_requests = 0;
        let result = self.poll(now).await;
        // A TLS failure rebuilds the client on the next poll: the system
        // store and [github] ca_file are read again, so a fixed CA takes
        // effect without a restart.
        let tls = match &result {
            Err(e) => e.kind == ErrorKind::Tls,
            Ok(o) => o.failures.iter().any(|e| e.kind == ErrorKind::Tls),
        };
        if tls {
            self.client = None;
        }
        let failure = match result {
            Err(e) => {
                // Failed before asking any owner: counted here, once.
                if let Some(reason) = e.kind.reason() {
                    self.stats.errors.add(reason, 1);
                }
                Some(e)
            }
            Ok(o) if o.answered == 0 && !o.failures.is_empty() => {
                // Every owner failed (each already counted).
                let first = o
                    .rate_limited
                    .clone()
                    .unwrap_or_else(|| o.failures[0].clone());
                let mut e = first;
                if o.failures.len() > 1 {
                    let all: Vec<&str> = o
                        .failures
                        .iter()
                        .take(3)
                        .map(|e| e.message.as_str())
                        .collect();
                    e.message = format!(
                        "every owner failed ({}): {}",
                        o.failures.len(),
                        all.join("; ")
                    );
                }
                Some(e)
            }
            Ok(o) => {
                self.succeeded(now, o.rate_limited.as_ref());
                None
            }
        };
        match failure {
            None => {
                self.error = None;
                self.check_latest_release(now).await;
                Ok(Outcome::Changed(self.state()))
            }
            Some(e) => {
                self.failed(&e);
                self.error = Some(ApiFailure {
                    reason: e.kind.reason(),
                    message: e.message.clone(),
                });
                // The API statistics and the runners refreshed before the
                // failure are published with it, so the failure shows in
                // the metrics.
                Err(Failure::with_data(anyhow::anyhow!(e.message), self.state()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::run_once;
    use crate::collect::test_support::{
        github_config, publish_roots, registered_root, store_with_roots,
    };
    use crate::config::Config;
    use crate::snapshot::RunnerRoot;
    use std::sync::Arc;
    use testkit::fake_github::{generated_runners, official_runners};
    use testkit::FakeGithub;

    fn github_state(store: &Store) -> Arc<GithubState> {
        store
            .channel::<GithubState>()
            .and_then(|c| c.data())
            .expect("GitHub data")
    }

    fn render(store: &Store) -> String {
        crate::metrics::render::render(&store.snapshot()).text
    }

    /// A config pointing at the fake, with a token file in `dir`.
    fn config(fake: &FakeGithub, dir: &std::path::Path, scope: Scope) -> Config {
        let mut c = github_config(fake, dir, scope);
        // The release check has its own test.
        c.github.runner_latest_version = Some("off".into());
        c
    }

    #[tokio::test]
    async fn the_latest_release_is_asked_after_a_poll_at_most_hourly() {
        let fake = FakeGithub::start();
        fake.set_runners("repos/acme/app", official_runners());
        fake.set_latest_release(Some(FakeGithub::fixture_latest_release()));
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&fake, dir.path(), Scope::SelfScope);
        config.github.runner_latest_version = None;
        let roots = vec![registered_root(
            "/opt/a",
            23,
            "https://github.com/acme/app",
            "linux_runner",
        )];
        let (settings, store) = store_with_roots(config.clone(), roots.clone());
        let mut c = GithubCollector::new(&settings, &store, Mode::Daemon);
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(
            github_state(&store)
                .latest_runner
                .clone()
                .map(|l| l.version),
            Some("2.330.0".into())
        );
        let releases = |f: &FakeGithub| {
            f.requests()
                .iter()
                .filter(|r| r.route() == releases::LATEST_PATH)
                .count()
        };
        assert_eq!(releases(&fake), 1);
        let token = fake.requests()[0].header("authorization").map(String::from);
        assert!(
            fake.requests()
                .iter()
                .all(|r| r.header("authorization").map(String::from) == token),
            "asked with the runners' credential"
        );
        // The next polls within the hour do not ask again, and keep it.
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(releases(&fake), 1);
        assert!(github_state(&store).latest_runner.is_some());

        // Set in the config, or off: never asked.
        for setting in ["2.331.0", "off"] {
            let fake = FakeGithub::start();
            fake.set_runners("repos/acme/app", official_runners());
            fake.set_latest_release(Some(FakeGithub::fixture_latest_release()));
            let mut config = config.clone();
            config.github.api_url = Some(fake.url());
            config.github.runner_latest_version = Some(setting.into());
            let (settings, store) = store_with_roots(config, roots.clone());
            let mut c = GithubCollector::new(&settings, &store, Mode::Daemon);
            assert_eq!(run_once(&mut c, &store).await, None);
            assert_eq!(releases(&fake), 0, "{setting}");
            assert_eq!(github_state(&store).latest_runner, None);
        }
    }

    #[tokio::test]
    async fn self_scope_asks_for_each_registered_root_by_its_github_url() {
        let fake = FakeGithub::start();
        fake.set_runners("repos/acme/app", official_runners());
        fake.set_runners("orgs/acme", generated_runners("org", 500, 2));
        fake.set_runners("enterprises/big", generated_runners("ent", 7, 1));
        let dir = tempfile::tempdir().unwrap();
        let config = config(&fake, dir.path(), Scope::SelfScope);
        let roots = vec![
            registered_root("/opt/a", 23, "https://github.com/acme/app", "linux_runner"),
            registered_root("/opt/b", 501, "https://github.com/acme", "org-1"),
            registered_root("/opt/c", 7, "https://github.com/enterprises/big", "ent-0"),
            registered_root("/opt/d", 999, "https://github.com/acme/app", "deleted"),
            RunnerRoot {
                root: "/opt/unconfigured".into(),
                ..Default::default()
            },
        ];
        let (settings, store) = store_with_roots(config, roots.clone());
        let mut c = GithubCollector::new(&settings, &store, Mode::Daemon);
        assert_eq!(run_once(&mut c, &store).await, None);
        let mut paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "/enterprises/big/actions/runners/7",
                "/orgs/acme/actions/runners/501",
                "/repos/acme/app/actions/runners/23",
                "/repos/acme/app/actions/runners/999",
            ]
        );
        let text = render(&store);
        for (series, want) in [
            (
                "github_runner_registered{runner=\"linux_runner\"}",
                Some(1.0),
            ),
            ("github_runner_registered{runner=\"org-1\"}", Some(1.0)),
            ("github_runner_registered{runner=\"ent-0\"}", Some(1.0)),
            ("github_runner_registered{runner=\"deleted\"}", Some(0.0)),
            ("github_runner_github_online{runner=\"deleted\"}", None),
            (
                "github_runner_github_busy{runner=\"linux_runner\"}",
                Some(1.0),
            ),
            (
                "github_runner_github_api_requests_total{code=\"404\"}",
                Some(1.0),
            ),
            (
                "github_runner_github_api_requests_total{code=\"200\"}",
                Some(3.0),
            ),
        ] {
            assert_eq!(
                testkit::sample_value(&text, series),
                want,
                "{series}\n{text}"
            );
        }
        let all_by_root = github_state(&store)
            .runners
            .iter()
            .all(|r| r.root.is_some());
        assert!(all_by_root, "attached by root");
        // A second poll is conditional and costs no rate limit; the
        // deleted registration is not asked about again so soon.
        let charged = fake.charged();
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(fake.charged(), charged);
        assert_eq!(fake.request_count(), 7);
        let text = render(&store);
        assert_eq!(
            testkit::sample_value(&text, "github_runner_registered{runner=\"deleted\"}"),
            Some(0.0)
        );
        // A root that loses its registration is no longer asked about.
        publish_roots(&store, roots[..1].to_vec());
        assert_eq!(run_once(&mut c, &store).await, None);
        assert_eq!(fake.request_count(), 8);
        assert_eq!(github_state(&store).runners.len(), 1);
    }

    #[test]
    fn api_runners_parse_from_the_official_payloads() {
        let dir = testkit::fixtures_dir().join("github");
        let one: ApiRunner =
            serde_json::from_slice(&std::fs::read(dir.join("runner.json")).unwrap()).unwrap();
        let r = one.into_runner(Some("/opt/r".into()), "acme/app", 5.0);
        assert_eq!(r.name, "linux_runner");
        assert_eq!(r.id, Some(RunnerId::from(23)));
        assert_eq!(r.owner, "acme/app");
        assert!(r.registered && r.online && r.busy && !r.ephemeral);
        assert_eq!(r.labels, ["self-hosted", "X64", "Linux"]);
        assert_eq!(r.checked_at, 5.0);
        let page = std::fs::read(dir.join("runners-paginated.json")).unwrap();
        let list: RunnerList<'_> = serde_json::from_slice(&page).unwrap();
        let (runners, bad) = list.read();
        assert!(bad.is_empty(), "{bad:?}");
        let rs: Vec<GithubRunner> = runners
            .into_iter()
            .map(|r| r.into_runner(None, "acme", 0.0))
            .collect();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[1].name, "mac_runner");
        assert!(!rs[1].online);
        assert_eq!(rs[1].os, "macos");
        assert_eq!(rs[1].labels.last().map(String::as_str), Some("no-gpu"));
    }

    /// Simulation for docs/BENCHMARKS.md:
    /// `cargo test --lib collect::github::tests::simulate -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "simulation: prints figures for docs/BENCHMARKS.md"]
    async fn simulate_fleet_of_1000_runners() {
        let fake = FakeGithub::start();
        fake.set_runners("orgs/acme", generated_runners("fleet", 1, 1000));
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&fake, dir.path(), Scope::Fleet);
        config.github.organizations = vec!["acme".into()];
        let (settings, store) = store_with_roots(config, Vec::new());
        let mut c = GithubCollector::new(&settings, &store, Mode::Daemon);
        println!("fleet scope, 1 organization with 1000 runners:");
        for poll in 1..=3 {
            let before = (fake.request_count(), fake.charged());
            let t = std::time::Instant::now();
            assert_eq!(run_once(&mut c, &store).await, None);
            let took = t.elapsed();
            let requests = fake.request_count() - before.0;
            let charged = fake.charged() - before.1;
            let runners = github_state(&store).runners.len();
            println!(
                "  poll {poll}: {requests} requests, {charged} charged to the rate limit, {runners} runners, {took:.1?}"
            );
            assert_eq!(runners, 1000);
            assert!(requests <= 10);
        }
    }

    #[tokio::test]
    #[ignore = "simulation: prints figures for docs/BENCHMARKS.md"]
    async fn simulate_100_hosts_in_self_scope_for_an_hour() {
        const HOSTS: usize = 100;
        const POLLS: usize = 60; // one hour at poll_interval 60s
        let fake = FakeGithub::start();
        fake.set_runners("repos/acme/app", generated_runners("host", 1, HOSTS));
        let dir = tempfile::tempdir().unwrap();
        let config = config(&fake, dir.path(), Scope::SelfScope);
        // One exporter per host: its own store, client and ETag cache, one
        // runner each, all sharing one token's rate limit at the fake.
        let mut hosts = Vec::new();
        for i in 0..HOSTS {
            let root = registered_root(
                &format!("/opt/runner{i}"),
                1 + i as u64,
                "https://github.com/acme/app",
                &format!("host-{i}"),
            );
            let (settings, store) = store_with_roots(config.clone(), vec![root]);
            let c = GithubCollector::new(&settings, &store, Mode::Daemon);
            hosts.push((c, store));
        }
        let (limit, start_remaining, _) = fake.rate_limit();
        let t = std::time::Instant::now();
        let mut per_poll = Vec::new();
        for _ in 0..POLLS {
            let before = fake.charged();
            for (c, store) in hosts.iter_mut() {
                assert_eq!(run_once(c, store).await, None);
                assert_eq!(github_state(store).api.backoff_seconds, 0.0);
            }
            per_poll.push(fake.charged() - before);
        }
        let requests = fake.request_count();
        let charged = fake.charged();
        let (_, remaining, _) = fake.rate_limit();
        let steady: u64 = per_poll[1..].iter().sum();
        println!("self scope, {HOSTS} hosts x {POLLS} polls (one hour at 60s), one token:");
        println!(
            "  requests sent: {requests} ({} per host per hour)",
            requests / HOSTS
        );
        println!(
            "  charged to the rate limit: {charged} = {:.1}% of {limit}/hour (first poll {}, later polls {steady})",
            100.0 * charged as f64 / limit as f64,
            per_poll[0]
        );
        println!("  rate limit remaining: {start_remaining} -> {remaining}");
        println!("  simulated in {:.1?}", t.elapsed());
        assert_eq!(steady, 0, "unchanged answers are 304s");
        assert!((charged as f64) < 0.05 * limit as f64);
    }
}
