//! Collectors: one file each, one interface, one registry.
//!
//! A collector owns whatever it needs between runs (open connections, file
//! offsets, previous CPU counters) and produces one section of the store.
//! It reads other collectors' data only through the `watch` channels of
//! the sections it declares in [`Collector::READS`], subscribed when it is
//! built. The supervisor here runs each collector on its own task: it
//! waits for the collector's next trigger, runs it under a timeout, catches
//! panics, and records success, duration, errors and the new data. A
//! failing collector never blocks the others or the HTTP server, and no
//! collector writes a section but through the supervisor.

pub mod github;
pub mod host;
pub mod process;
pub mod queue;
pub mod registry;
pub mod runner;
pub mod systemd;
#[cfg(test)]
pub(crate) mod test_support;

use crate::settings::Settings;
use crate::snapshot::{Publish, SectionState, Store};
use crate::timefmt::now_unix;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What one run produced.
pub enum Outcome<T> {
    /// New data: replaces the section's data and triggers a re-render.
    Changed(T),
    /// The run succeeded and nothing changed.
    Unchanged,
    /// The run could not tell, for a known and bounded reason (systemd
    /// re-executing itself): the data is held as it is, neither a success
    /// (its age grows) nor a failure (no gap in the series).
    Held,
}

/// A failed run: the error, and what it leaves in the section (None: the
/// collector's [`Collector::ON_FAILURE`]).
pub struct Failure<T> {
    pub error: anyhow::Error,
    pub publish: Option<Publish<T>>,
}

impl<T> Failure<T> {
    /// A failure that still publishes data it knows to be right.
    pub fn with_data(error: anyhow::Error, data: T) -> Failure<T> {
        Failure {
            error,
            publish: Some(Publish::Replace(data)),
        }
    }
}

impl<T> std::fmt::Debug for Failure<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Failure({:#})", self.error)
    }
}

impl<T> From<anyhow::Error> for Failure<T> {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            error,
            publish: None,
        }
    }
}

/// What a failure does to a section's data, when the run does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Keep the last good data (its age shows in the bookkeeping).
    Keep,
    /// Drop it: it can no longer be trusted.
    Clear,
}

/// How a collector is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the daemon, until shutdown.
    Daemon,
    /// Once, for the in-process `check` (no watches, no background work
    /// kept).
    Once,
}

/// The interface every collector implements.
pub trait Collector: Send + Sized + 'static {
    type State: SectionState;

    /// The `collector` label value, and the section's name.
    const NAME: &'static str;

    /// The sections whose data this collector reads (subscribes to).
    const READS: &'static [&'static str] = &[];

    /// What a failed run does to the data when it does not say itself.
    const ON_FAILURE: OnFailure = OnFailure::Keep;

    /// Whether the settings enable it.
    fn enabled(settings: &Settings) -> bool;

    /// How often it is expected to report (for staleness).
    fn interval(settings: &Settings) -> Duration;

    /// The part of the settings it is built from: a change restarts it.
    fn config_key(settings: &Settings) -> String;

    /// Builds it, subscribing to the sections in [`Collector::READS`].
    fn new(settings: &Settings, store: &Store, mode: Mode) -> Self;

    /// Longest a single run may take before it counts as failed.
    fn timeout(&self) -> Duration;

    /// Waits until the next run is due (an interval, or an event such as a
    /// D-Bus signal, new bytes in a log or a change of a section it reads).
    fn wait(&mut self) -> impl Future<Output = ()> + Send;

    /// One run.
    fn collect(
        &mut self,
    ) -> impl Future<Output = Result<Outcome<Self::State>, Failure<Self::State>>> + Send;
}

/// Runs one collection with the supervisor's protections and records the
/// result in the collector's section. Returns the error text, if any.
pub async fn run_once<C: Collector>(c: &mut C, store: &Store) -> Option<String> {
    let Some(section) = store.channel::<C::State>() else {
        tracing::error!(
            collector = C::NAME,
            "no section in the store for this collector"
        );
        return Some("no section in the store".to_string());
    };
    let started = Instant::now();
    let limit = c.timeout();
    let result = AssertUnwindSafe(tokio::time::timeout(limit, c.collect()))
        .catch_unwind()
        .await;
    let duration = started.elapsed();
    let outcome: Result<Outcome<C::State>, Failure<C::State>> = match result {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            Err(anyhow::anyhow!("timed out after {}", crate::duration::Dur(limit)).into())
        }
        Err(panic) => Err(anyhow::anyhow!("panicked: {}", panic_message(&*panic)).into()),
    };
    let now = now_unix();
    match outcome {
        Ok(Outcome::Held) => {
            section.held(now);
            None
        }
        Ok(o) => {
            let data = match o {
                Outcome::Changed(d) => Some(d),
                Outcome::Unchanged | Outcome::Held => None,
            };
            let changed = data.is_some();
            let was_failing = section.succeeded(data, duration, now);
            if changed || was_failing {
                store.changed();
            }
            None
        }
        Err(failure) => {
            let msg = format!("{:#}", failure.error);
            let publish = failure.publish.unwrap_or(match C::ON_FAILURE {
                OnFailure::Keep => Publish::Keep,
                OnFailure::Clear => Publish::Clear,
            });
            let previous = section.failed(msg.clone(), publish, duration, now);
            store.changed();
            // Log a failure once, not on every tick while it persists.
            if previous.as_deref() != Some(msg.as_str()) {
                tracing::warn!(collector = C::NAME, error = %msg, "collector failed");
            } else {
                tracing::debug!(collector = C::NAME, error = %msg, "collector still failing");
            }
            Some(msg)
        }
    }
}

/// A collector's part of the settings, serialised, for
/// [`Collector::config_key`].
pub(crate) fn key(parts: impl serde::Serialize) -> String {
    serde_json::to_string(&parts).unwrap_or_default()
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// What a collector's first run in the daemon waits for.
pub struct FirstRun {
    /// Sections it reads from collectors started before it (not feedback
    /// edges), enabled: each must have run once, succeeded or failed.
    pub upstream: Vec<&'static str>,
    /// At most this long, so that a hung collector upstream holds nobody
    /// for long.
    pub limit: Duration,
}

/// Waits until every section in `first.upstream` has had a run, or
/// `first.limit` has passed. A collector started with the daemon would
/// otherwise publish fresh data built from none of its inputs (a GitHub
/// poll about no runner, a queue of no repository) until they arrive.
async fn upstream_ran(store: &Store, first: &FirstRun) {
    // Every first run changes the store: subscribed before the check, no
    // run is missed.
    let mut version = store.subscribe();
    let ran = || {
        first.upstream.iter().all(|name| {
            store
                .section(name)
                .is_none_or(|s| s.meta().last_attempt.is_some())
        })
    };
    let _ = tokio::time::timeout(first.limit, async {
        while !ran() {
            if version.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}

/// Runs a collector until shutdown: once what it reads upstream has run
/// (bounded), collect, then wait for the next trigger.
pub fn spawn<C: Collector>(
    mut c: C,
    store: Arc<Store>,
    first: FirstRun,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            _ = upstream_ran(&store, &first) => {}
            _ = shutdown.changed() => return,
        }
        let mut failing = false;
        loop {
            let error = run_once(&mut c, &store).await;
            if failing && error.is_none() {
                tracing::info!(collector = C::NAME, "collector recovered");
            }
            failing = error.is_some();
            tokio::select! {
                _ = c.wait() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::HostState;

    enum Behaviour {
        Succeed,
        Fail,
        FailClearing,
        Panic,
        Hang,
    }

    struct Scripted(Behaviour);

    impl Collector for Scripted {
        type State = HostState;
        const NAME: &'static str = "host";
        fn enabled(_: &Settings) -> bool {
            true
        }
        fn interval(_: &Settings) -> Duration {
            Duration::from_secs(1)
        }
        fn config_key(_: &Settings) -> String {
            String::new()
        }
        fn new(_: &Settings, _: &Store, _: Mode) -> Self {
            Scripted(Behaviour::Succeed)
        }
        fn timeout(&self) -> Duration {
            Duration::from_millis(100)
        }
        async fn wait(&mut self) {}
        async fn collect(&mut self) -> Result<Outcome<HostState>, Failure<HostState>> {
            match self.0 {
                Behaviour::Succeed => Ok(Outcome::Changed(HostState {
                    cpu_cores: 7,
                    ..Default::default()
                })),
                Behaviour::Fail => Err(anyhow::anyhow!("cannot read /proc/stat").into()),
                Behaviour::FailClearing => Err(Failure {
                    error: anyhow::anyhow!("lost"),
                    publish: Some(Publish::Clear),
                }),
                Behaviour::Panic => panic!("collector bug"),
                Behaviour::Hang => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
            }
        }
    }

    #[tokio::test]
    async fn failures_panics_and_hangs_are_recorded_not_propagated() {
        let store = registry::store(Arc::new(Settings::default()));
        let host = || store.channel::<HostState>().expect("a host section");
        let mut c = Scripted(Behaviour::Succeed);
        assert_eq!(run_once(&mut c, &store).await, None);
        assert!(host().meta().success);
        assert_eq!(host().data().map(|h| h.cpu_cores), Some(7));
        for (b, expect) in [
            (Behaviour::Fail, "cannot read /proc/stat"),
            (Behaviour::Panic, "panicked: collector bug"),
            (Behaviour::Hang, "timed out after 100ms"),
        ] {
            let v0 = store.version();
            let mut c = Scripted(b);
            let err = run_once(&mut c, &store).await.expect("an error");
            assert!(err.contains(expect), "{err}");
            let meta = host().meta();
            assert!(!meta.success);
            assert_eq!(meta.error.as_deref(), Some(err.as_str()));
            // The last good state is kept; the failure is visible.
            assert_eq!(host().data().map(|h| h.cpu_cores), Some(7));
            assert!(store.version() > v0, "a failure triggers a re-render");
        }
        assert_eq!(host().meta().errors_total, 3);
        let mut c = Scripted(Behaviour::FailClearing);
        assert!(run_once(&mut c, &store).await.is_some());
        assert!(host().data().is_none(), "the run said its data is gone");
        let mut c = Scripted(Behaviour::Succeed);
        assert_eq!(run_once(&mut c, &store).await, None);
        assert!(host().meta().success);
    }
}
