//! The collector registry: every collector, listed once. `serve`, a
//! reload and the in-process `check` all start collectors from here, and
//! the store's sections are made from it.
//!
//! Adding a collector: a file under `src/collect/` with its state type and
//! its [`Collector`] implementation, and one line in [`COLLECTORS`].

use super::github::GithubCollector;
use super::host::HostCollector;
use super::queue::QueueCollector;
use super::runner::RunnerCollector;
use super::systemd::SystemdCollector;
use super::{Collector, FirstRun, Mode};
use crate::settings::Settings;
use crate::snapshot::{AnySection, Channel, Meta, Snapshot, Store};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

type OnceFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// One collector, whatever its state type.
pub struct Entry {
    pub name: &'static str,
    /// The sections it reads.
    pub reads: &'static [&'static str],
    section: fn() -> Box<dyn AnySection>,
    enabled: fn(&Settings) -> bool,
    interval: fn(&Settings) -> Duration,
    key: fn(&Settings) -> String,
    start: fn(&Settings, &Arc<Store>, watch::Receiver<bool>) -> JoinHandle<()>,
    once: fn(&Settings, &Arc<Store>) -> OnceFuture,
}

fn section<C: Collector>() -> Box<dyn AnySection> {
    Box::new(Channel::<C::State>::new(C::NAME))
}

/// Longest a collector's first run waits for the collectors it reads.
const FIRST_RUN_WAIT: Duration = Duration::from_secs(10);

fn start<C: Collector>(
    settings: &Settings,
    store: &Arc<Store>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let c = C::new(settings, store, Mode::Daemon);
    let first = FirstRun {
        upstream: upstream(C::NAME, settings),
        // Never later than its second run would have been.
        limit: C::interval(settings).min(FIRST_RUN_WAIT),
    };
    super::spawn(c, Arc::clone(store), first, shutdown)
}

/// The enabled collectors listed before `name` whose sections it reads:
/// what its first run waits for (a feedback edge is not waited on).
fn upstream(name: &str, settings: &Settings) -> Vec<&'static str> {
    let Some(index) = COLLECTORS.iter().position(|e| e.name == name) else {
        return Vec::new();
    };
    COLLECTORS[..index]
        .iter()
        .filter(|e| COLLECTORS[index].reads.contains(&e.name) && e.enabled(settings))
        .map(|e| e.name)
        .collect()
}

fn once<C: Collector>(settings: &Settings, store: &Arc<Store>) -> OnceFuture {
    let mut c = C::new(settings, store, Mode::Once);
    let store = Arc::clone(store);
    Box::pin(async move { super::run_once(&mut c, &store).await })
}

impl Entry {
    pub const fn of<C: Collector>() -> Entry {
        Entry {
            name: C::NAME,
            reads: C::READS,
            section: section::<C>,
            enabled: C::enabled,
            interval: C::interval,
            key: C::config_key,
            start: start::<C>,
            once: once::<C>,
        }
    }

    pub fn enabled(&self, settings: &Settings) -> bool {
        (self.enabled)(settings)
    }
}

/// Every collector, in dependency order: each reads sections of collectors
/// listed before it, except for declared feedback edges (systemd reads the
/// runner roots' `.service` names), which `collect_once` resolves with a
/// second pass.
pub static COLLECTORS: [Entry; 5] = [
    Entry::of::<HostCollector>(),
    Entry::of::<SystemdCollector>(),
    Entry::of::<RunnerCollector>(),
    Entry::of::<GithubCollector>(),
    Entry::of::<QueueCollector>(),
];

/// A store with one section per collector, enabled as `settings` say.
pub fn store(settings: Arc<Settings>) -> Arc<Store> {
    let sections = COLLECTORS.iter().map(|e| (e.section)()).collect();
    let store = Store::new(Arc::clone(&settings), sections);
    configure(&store, &settings);
    store
}

/// Enables, disables and times each section as `settings` say, and hands
/// the settings to the readers.
pub fn configure(store: &Store, settings: &Arc<Settings>) {
    for e in &COLLECTORS {
        if let Some(s) = store.section(e.name) {
            s.configure((e.enabled)(settings), (e.interval)(settings));
        }
    }
    store.set_settings(Arc::clone(settings));
}

/// A snapshot with every collector's section, enabled as `settings` say,
/// none with data: tests and benchmarks build snapshots on it.
pub fn empty_snapshot(settings: Arc<Settings>) -> Snapshot {
    let sections: Vec<(&'static str, Meta)> = COLLECTORS
        .iter()
        .map(|e| {
            (
                e.name,
                Meta::new(e.enabled(&settings), (e.interval)(&settings)),
            )
        })
        .collect();
    Snapshot::empty(settings, &sections)
}

/// The sections `e` reads that come after it in [`COLLECTORS`].
fn feedback(index: usize, e: &Entry) -> bool {
    e.reads
        .iter()
        .any(|r| COLLECTORS[index..].iter().any(|x| x.name == *r))
}

/// Runs every enabled collector once, in registry order (dependency
/// order), for the in-process `check`; then once more each collector that
/// reads a section listed after it, now that it has data.
pub async fn collect_once(settings: Arc<Settings>) -> Arc<Store> {
    let store = store(Arc::clone(&settings));
    for e in COLLECTORS.iter().filter(|e| e.enabled(&settings)) {
        (e.once)(&settings, &store).await;
    }
    for (i, e) in COLLECTORS.iter().enumerate() {
        if e.enabled(&settings) && feedback(i, e) {
            (e.once)(&settings, &store).await;
        }
    }
    store
}

struct Running {
    /// The collector's part of the settings, serialised: a change
    /// restarts it.
    key: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// The running collectors: started from the settings, and on reload,
/// restarted only where their part of the settings changed (a restart
/// resets what that collector keeps in memory, such as log offsets and
/// counters).
pub struct CollectorSet {
    store: Arc<Store>,
    running: BTreeMap<&'static str, Running>,
}

impl CollectorSet {
    pub fn new(store: Arc<Store>) -> CollectorSet {
        CollectorSet {
            store,
            running: BTreeMap::new(),
        }
    }

    /// Brings the running collectors in line with `settings`. Returns the
    /// names of the collectors started, restarted or stopped.
    pub fn apply(&mut self, settings: &Arc<Settings>) -> Vec<&'static str> {
        configure(&self.store, settings);
        let mut changed = Vec::new();
        for e in &COLLECTORS {
            let want = e.enabled(settings).then(|| (e.key)(settings));
            let current = self.running.get(e.name).map(|r| r.key.as_str());
            if current == want.as_deref() {
                continue;
            }
            if let Some(old) = self.running.remove(e.name) {
                old.stop();
            }
            changed.push(e.name);
            let Some(key) = want else { continue };
            let (stop, rx) = watch::channel(false);
            let task = (e.start)(settings, &self.store, rx);
            self.running.insert(e.name, Running { key, stop, task });
        }
        changed
    }

    /// Stops every collector.
    pub fn stop_all(&mut self) {
        for (_, r) in std::mem::take(&mut self.running) {
            r.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::test_support::{github_config, publish_roots, registered_root};
    use crate::config::Scope;
    use testkit::fake_github::official_runners;
    use testkit::FakeGithub;

    #[test]
    fn a_first_run_waits_for_what_it_reads_from_collectors_before_it() {
        let mut config = crate::config::Config::default();
        config.github.scope = Some(Scope::SelfScope);
        config.github.token_file = Some("/nonexistent/token".into());
        config.github.queue.repositories = Some(vec!["acme/app".into()]);
        let settings = Settings::resolve(config.clone());
        let got: Vec<(&str, Vec<&str>)> = COLLECTORS
            .iter()
            .map(|e| (e.name, upstream(e.name, &settings)))
            .collect();
        assert_eq!(
            got,
            [
                ("host", vec![]),
                // A feedback edge (runner is started after it): not waited on.
                ("systemd", vec![]),
                ("runner", vec!["systemd"]),
                ("github", vec!["runner"]),
                ("queue", vec!["runner", "github"]),
            ]
        );
        // A disabled collector is not waited on.
        config.runner_files.enabled = false;
        let settings = Settings::resolve(config);
        assert_eq!(upstream("github", &settings), Vec::<&str>::new());
        assert_eq!(upstream("queue", &settings), ["github"]);
    }

    /// The daemon's GitHub collector, started as `serve` starts it, with
    /// the runner roots read 300 ms later: it has not polled before them,
    /// and its first data is about the local runner. Without the wait it
    /// would publish fresh data about no runner at once, and the gate
    /// would say "not asked yet" with every collector fresh.
    #[tokio::test]
    async fn the_first_github_poll_asks_about_the_roots_read_after_it_started() {
        let fake = FakeGithub::start();
        fake.set_runners("repos/acme/app", official_runners());
        let dir = tempfile::tempdir().unwrap();
        let mut config = github_config(&fake, dir.path(), Scope::SelfScope);
        config.github.runner_latest_version = Some("off".into());
        let settings = Settings::resolve(config);
        let store = store(Arc::clone(&settings));
        let github = COLLECTORS
            .iter()
            .find(|e| e.name == super::super::github::NAME)
            .unwrap();
        let (_stop, rx) = watch::channel(false);
        let task = (github.start)(&settings, &store, rx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let section = store.section(super::super::github::NAME).unwrap();
        assert_eq!(
            section.meta().last_attempt,
            None,
            "polled before the runner roots were read"
        );
        publish_roots(
            &store,
            vec![registered_root(
                "/opt/a",
                23,
                "https://github.com/acme/app",
                "linux_runner",
            )],
        );
        let github = store.channel::<crate::snapshot::GithubState>().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while github.data().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let names: Vec<String> = github
            .data()
            .map(|d| d.runners.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["linux_runner"]);
        let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/repos/acme/app/actions/runners/23"]);
    }

    /// An upstream collector that never runs holds the first run for the
    /// limit only.
    #[tokio::test]
    async fn a_silent_upstream_holds_the_first_run_for_the_limit_only() {
        let fake = FakeGithub::start();
        let dir = tempfile::tempdir().unwrap();
        let mut config = github_config(&fake, dir.path(), Scope::SelfScope);
        config.github.runner_latest_version = Some("off".into());
        let settings = Settings::resolve(config);
        let store = store(Arc::clone(&settings));
        let c = super::super::github::GithubCollector::new(&settings, &store, Mode::Daemon);
        let (_stop, rx) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let first = FirstRun {
            upstream: vec![super::super::runner::NAME],
            limit: Duration::from_millis(300),
        };
        let task = super::super::spawn(c, Arc::clone(&store), first, rx);
        let section = store.section(super::super::github::NAME).unwrap();
        while section.meta().last_attempt.is_none() {
            assert!(started.elapsed() < Duration::from_secs(5), "never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
    }

    #[test]
    fn collectors_read_registered_sections_and_feedback_is_declared() {
        for (i, e) in COLLECTORS.iter().enumerate() {
            for read in e.reads {
                assert!(
                    COLLECTORS.iter().any(|x| x.name == *read) && *read != e.name,
                    "{} reads {read}, which is not another registered collector",
                    e.name
                );
            }
            // The only feedback edge: systemd reads the runner roots.
            assert_eq!(
                feedback(i, e),
                e.name == super::super::systemd::NAME,
                "{}",
                e.name
            );
        }
        let mut names: Vec<&str> = COLLECTORS.iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COLLECTORS.len(), "names are unique");
    }

    /// ARCHITECTURE.md's diagram shows each edge between sections as it
    /// is: a line `<reader> reads <section>: <what>` per declared read.
    #[test]
    fn architecture_diagram_shows_the_edges_as_they_are() {
        let doc = include_str!("../../ARCHITECTURE.md");
        let names: Vec<&str> = COLLECTORS.iter().map(|e| e.name).collect();
        let mut drawn: Vec<(String, String)> = doc
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let (reader, verb, section) = (words.next()?, words.next()?, words.next()?);
                let section = section.strip_suffix(':')?;
                (verb == "reads" && names.contains(&reader) && names.contains(&section))
                    .then(|| (reader.to_string(), section.to_string()))
            })
            .collect();
        drawn.sort();
        let mut declared: Vec<(String, String)> = COLLECTORS
            .iter()
            .flat_map(|e| e.reads.iter().map(|r| (e.name.to_string(), r.to_string())))
            .collect();
        declared.sort();
        assert_eq!(drawn, declared, "ARCHITECTURE.md's `X reads Y` lines");
    }
}
