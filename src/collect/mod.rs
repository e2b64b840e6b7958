//! Collectors: one file each, one interface.
//!
//! A collector owns whatever it needs between runs (open connections, file
//! offsets, previous CPU counters) and produces one section of the
//! [`Snapshot`]. The supervisor here runs each collector on its own task:
//! it waits for the collector's next trigger, runs it under a timeout,
//! catches panics, and records success, duration, errors and the new state.
//! A failing collector never blocks the others or the HTTP server.

pub mod github;
pub mod host;
pub mod process;
pub mod runner;
pub mod set;
pub mod systemd;

use crate::snapshot::{now_unix, Section, Snapshot, Store};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What one run produced.
pub enum Outcome<T> {
    /// New state: replaces the section's state and triggers a re-render.
    Changed(T),
    /// The run succeeded and nothing changed.
    Unchanged,
}

/// The interface every collector implements.
pub trait Collector: Send + 'static {
    type State: Send + Sync + 'static;

    /// The `collector` label value: host, systemd, runner or github.
    const NAME: &'static str;

    /// This collector's part of the snapshot.
    fn section(snap: &mut Snapshot) -> &mut Section<Self::State>;

    /// Longest a single run may take before it counts as failed.
    fn timeout(&self) -> Duration;

    /// Waits until the next run is due (an interval, or an event such as a
    /// D-Bus signal or new bytes in a log).
    fn wait(&mut self) -> impl Future<Output = ()> + Send;

    /// One run. It may read other sections of the store (for example the
    /// runner collector reads unit working directories), but never holds
    /// the read guard across an await.
    fn collect(
        &mut self,
        store: &Arc<Store>,
    ) -> impl Future<Output = anyhow::Result<Outcome<Self::State>>> + Send;

    /// Called after a failed run: may clear state that can no longer be
    /// trusted (a lost bus means unit states are unknown).
    fn on_failure(_section: &mut Section<Self::State>) {}
}

/// Runs one collection with the supervisor's protections and records the
/// result. Returns the error text, if any.
pub async fn run_once<C: Collector>(c: &mut C, store: &Arc<Store>) -> Option<String> {
    let started = Instant::now();
    let limit = c.timeout();
    let result = AssertUnwindSafe(tokio::time::timeout(limit, c.collect(store)))
        .catch_unwind()
        .await;
    let duration = started.elapsed();
    let outcome: Result<Outcome<C::State>, String> = match result {
        Ok(Ok(Ok(o))) => Ok(o),
        Ok(Ok(Err(e))) => Err(format!("{e:#}")),
        Ok(Err(_)) => Err(format!("timed out after {}", crate::duration::Dur(limit))),
        Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
    };
    let now = now_unix();
    match outcome {
        Ok(o) => {
            let changed = matches!(o, Outcome::Changed(_));
            let was_failing = store.update(changed, |snap| {
                let s = C::section(snap);
                let was_failing = !s.success;
                if let Outcome::Changed(state) = o {
                    s.state = Some(state);
                }
                s.success = true;
                s.error = None;
                s.duration = duration;
                s.last_attempt = Some(now);
                s.last_success = Some(now);
                s.last_success_at = Some(Instant::now());
                was_failing
            });
            if was_failing && !changed {
                // Success after a failure changes collector_success.
                store.update(true, |_| ());
            }
            None
        }
        Err(msg) => {
            let previous = store.update(true, |snap| {
                let s = C::section(snap);
                let prev = s.error.clone();
                s.success = false;
                s.error = Some(msg.clone());
                s.duration = duration;
                s.last_attempt = Some(now);
                s.errors_total += 1;
                C::on_failure(s);
                prev
            });
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

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs a collector until shutdown: collect, then wait for the next trigger.
pub fn spawn<C: Collector>(
    mut c: C,
    store: Arc<Store>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
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
    use crate::config::Config;
    use crate::snapshot::HostState;

    enum Behaviour {
        Succeed,
        Fail,
        Panic,
        Hang,
    }

    struct Scripted(Behaviour);

    impl Collector for Scripted {
        type State = HostState;
        const NAME: &'static str = "host";
        fn section(snap: &mut Snapshot) -> &mut Section<HostState> {
            &mut snap.host
        }
        fn timeout(&self) -> Duration {
            Duration::from_millis(100)
        }
        async fn wait(&mut self) {}
        async fn collect(&mut self, _: &Arc<Store>) -> anyhow::Result<Outcome<HostState>> {
            match self.0 {
                Behaviour::Succeed => Ok(Outcome::Changed(HostState {
                    cpu_cores: 7,
                    ..Default::default()
                })),
                Behaviour::Fail => anyhow::bail!("cannot read /proc/stat"),
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
        let store = Store::new(Snapshot::new(&Config::default()));
        let mut c = Scripted(Behaviour::Succeed);
        assert_eq!(run_once(&mut c, &store).await, None);
        {
            let s = store.read();
            assert!(s.host.success);
            assert_eq!(s.host.state.as_ref().map(|h| h.cpu_cores), Some(7));
        }
        for (b, expect) in [
            (Behaviour::Fail, "cannot read /proc/stat"),
            (Behaviour::Panic, "panicked: collector bug"),
            (Behaviour::Hang, "timed out after 100ms"),
        ] {
            let v0 = store.version();
            let mut c = Scripted(b);
            let err = run_once(&mut c, &store).await.expect("an error");
            assert!(err.contains(expect), "{err}");
            let s = store.read();
            assert!(!s.host.success);
            assert_eq!(s.host.error.as_deref(), Some(err.as_str()));
            // The last good state is kept; the failure is visible.
            assert_eq!(s.host.state.as_ref().map(|h| h.cpu_cores), Some(7));
            assert!(store.version() > v0, "a failure triggers a re-render");
        }
        assert_eq!(store.read().host.errors_total, 3);
        let mut c = Scripted(Behaviour::Succeed);
        assert_eq!(run_once(&mut c, &store).await, None);
        assert!(store.read().host.success);
    }
}
