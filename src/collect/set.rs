//! The running collectors: started from the config, and on reload,
//! restarted only where their part of the config changed (a restart resets
//! what that collector keeps in memory, such as log offsets and counters).

use super::github::GithubCollector;
use super::host::HostCollector;
use super::runner::RunnerCollector;
use super::systemd::SystemdCollector;
use super::Collector;
use crate::config::{Config, Scope};
use crate::snapshot::Store;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Running {
    /// The collector's part of the config, serialised: a change restarts it.
    key: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The collectors, by name, in [`crate::snapshot::COLLECTORS`] order.
pub struct CollectorSet {
    store: Arc<Store>,
    running: [Option<Running>; 4],
}

fn key(parts: impl serde::Serialize) -> String {
    serde_json::to_string(&parts).unwrap_or_default()
}

/// What each collector depends on; None when it is disabled. A runner's
/// role or environment is not among them: changing one relabels series
/// without restarting anything.
fn keys(c: &Config) -> [Option<String>; 4] {
    let scope = c.github_scope();
    let units: Vec<_> = c.runners.iter().map(|r| &r.unit).collect();
    let roots: Vec<_> = c.runners.iter().map(|r| &r.root).collect();
    [
        c.host.enabled.then(|| key(&c.host)),
        c.systemd
            .enabled
            .then(|| key((&c.systemd, units, c.health.crashloop_window))),
        c.runner_files
            .enabled
            .then(|| key((&c.runner_files, roots, c.systemd.enabled))),
        (scope != Scope::Off).then(|| key((&c.github, scope.to_string()))),
    ]
}

fn start<C: Collector>(c: C, store: &Arc<Store>, key: String) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = super::spawn(c, Arc::clone(store), rx);
    Running { key, stop, task }
}

impl CollectorSet {
    pub fn new(store: Arc<Store>) -> CollectorSet {
        CollectorSet {
            store,
            running: [None, None, None, None],
        }
    }

    /// Brings the running collectors in line with `config`. Returns the
    /// names of the collectors started, restarted or stopped.
    pub fn apply(&mut self, config: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        for (i, want) in keys(config).into_iter().enumerate() {
            let current = self.running[i].as_ref().map(|r| r.key.as_str());
            if current == want.as_deref() {
                continue;
            }
            if let Some(old) = self.running[i].take() {
                let _ = old.stop.send(true);
                old.task.abort();
            }
            changed.push(crate::snapshot::COLLECTORS[i]);
            let Some(key) = want else { continue };
            let store = &self.store;
            self.running[i] = Some(match i {
                0 => start(HostCollector::new(config.host.clone()), store, key),
                1 => start(
                    SystemdCollector::new(
                        config.systemd.clone(),
                        config.health.crashloop_window.get(),
                    ),
                    store,
                    key,
                ),
                2 => start(RunnerCollector::new(config), store, key),
                _ => start(
                    GithubCollector::new(
                        config.github.clone(),
                        config.github_scope(),
                        Arc::clone(store),
                    ),
                    store,
                    key,
                ),
            });
        }
        changed
    }

    /// Stops every collector.
    pub fn stop_all(&mut self) {
        for r in self.running.iter_mut().filter_map(Option::take) {
            let _ = r.stop.send(true);
            r.task.abort();
        }
    }
}
