//! One collector's section of the store: its data on a `watch` channel of
//! its own (readers that need it subscribe and wake only when it changes)
//! and its bookkeeping (success, errors, duration, staleness).
//!
//! Only the supervisor (`collect::run_once`) and the registry (enabling and
//! disabling on config changes) write a section.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The data of a section, as readers receive it.
pub type Data<T> = Option<Arc<T>>;

/// A collector's state type.
pub trait SectionState: Send + Sync + PartialEq + 'static {
    /// How many things the state covers (filesystems, units, roots,
    /// runners): `github_runner_exporter_collector_targets`.
    fn targets(&self) -> usize;
}

/// One collector's bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub enabled: bool,
    /// How often the collector is expected to report (for staleness).
    pub interval: Duration,
    pub success: bool,
    pub last_attempt: Option<f64>,
    pub last_success: Option<f64>,
    /// The last success by the monotonic clock: staleness is measured on
    /// it, so a wall-clock jump neither hides a silent collector (a step
    /// back puts `last_success` in the future) nor makes a healthy one
    /// look stale (a step ahead).
    pub last_success_at: Option<Instant>,
    pub duration: Duration,
    pub error: Option<String>,
    pub errors_total: u64,
    /// Since when the runs fail (the first failure after a success), by
    /// the monotonic clock; None while they succeed.
    pub failing_since: Option<Instant>,
    /// Targets in the data (None without data).
    pub targets: Option<usize>,
}

impl Meta {
    pub fn new(enabled: bool, interval: Duration) -> Meta {
        Meta {
            enabled,
            interval,
            success: false,
            last_attempt: None,
            last_success: None,
            last_success_at: None,
            duration: Duration::ZERO,
            error: None,
            errors_total: 0,
            failing_since: None,
            targets: None,
        }
    }

    /// Seconds the runs have been failing, if they are.
    pub fn failing_for(&self) -> Option<f64> {
        self.failing_since.map(|t| t.elapsed().as_secs_f64())
    }

    /// Seconds since the last success: by the monotonic clock when known,
    /// else by the wall clock `now`.
    pub fn success_age(&self, now: f64) -> Option<f64> {
        match self.last_success_at {
            Some(at) => Some(at.elapsed().as_secs_f64()),
            None => self.last_success.map(|t| now - t),
        }
    }

    /// True when the collector has not succeeded within `intervals` of its
    /// interval (or never has).
    pub fn is_stale(&self, now: f64, intervals: u32) -> bool {
        match self.success_age(now) {
            None => true,
            Some(age) => age > self.interval.as_secs_f64() * f64::from(intervals.max(1)),
        }
    }
}

/// What a failed run leaves in the section's data.
pub enum Publish<T> {
    /// The last good data stays.
    Keep,
    /// New data, known to be right despite the failure (for example the
    /// API statistics of a poll that failed halfway).
    Replace(T),
    /// The data can no longer be trusted (a lost bus: unit states are
    /// unknown).
    Clear,
}

/// A section: the data channel and the bookkeeping.
pub struct Channel<T> {
    name: &'static str,
    data: watch::Sender<Data<T>>,
    meta: Mutex<Meta>,
}

impl<T: SectionState> Channel<T> {
    pub fn new(name: &'static str) -> Channel<T> {
        Channel {
            name,
            data: watch::Sender::new(None),
            meta: Mutex::new(Meta::new(false, Duration::from_secs(60))),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn lock(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest data (an `Arc` clone: no copy, no lock held).
    pub fn data(&self) -> Data<T> {
        self.data.borrow().clone()
    }

    /// A receiver that wakes when the data changes (not on bookkeeping).
    pub fn subscribe(&self) -> watch::Receiver<Data<T>> {
        self.data.subscribe()
    }

    pub fn meta(&self) -> Meta {
        self.lock().clone()
    }

    fn set_data(&self, data: Option<T>) {
        let targets = data.as_ref().map(SectionState::targets);
        self.data.send_replace(data.map(Arc::new));
        self.lock().targets = targets;
    }

    /// Enables or disables the section. A disabled section loses its data
    /// and bookkeeping; an enabled one keeps them until it reports.
    pub fn configure(&self, enabled: bool, interval: Duration) {
        if !enabled && self.lock().enabled {
            self.set_data(None);
            *self.lock() = Meta::new(false, interval);
        }
        let mut m = self.lock();
        m.enabled = enabled;
        m.interval = interval;
    }

    /// Records a successful run; `data` is the new data when it changed.
    /// Returns true when the run before had failed.
    pub fn succeeded(&self, data: Option<T>, duration: Duration, now: f64) -> bool {
        if let Some(d) = data {
            self.set_data(Some(d));
        }
        let mut m = self.lock();
        let was_failing = !m.success;
        m.success = true;
        m.error = None;
        m.failing_since = None;
        m.duration = duration;
        m.last_attempt = Some(now);
        m.last_success = Some(now);
        m.last_success_at = Some(Instant::now());
        was_failing
    }

    /// Records a failed run. Returns the error of the run before.
    pub fn failed(
        &self,
        error: String,
        publish: Publish<T>,
        duration: Duration,
        now: f64,
    ) -> Option<String> {
        match publish {
            Publish::Keep => {}
            Publish::Replace(d) => self.set_data(Some(d)),
            Publish::Clear => self.set_data(None),
        }
        let mut m = self.lock();
        m.success = false;
        m.duration = duration;
        m.last_attempt = Some(now);
        m.errors_total += 1;
        m.failing_since.get_or_insert_with(Instant::now);
        m.error.replace(error)
    }

    /// Records a run that neither succeeded nor failed: the collector
    /// holds its data through a known, bounded transition (systemd
    /// re-executing itself). Nothing changes but the time of the attempt,
    /// so the data ages and turns stale if the hold lasts.
    pub fn held(&self, now: f64) {
        self.lock().last_attempt = Some(now);
    }
}

/// A section whatever its state type: what the store, the renderer and
/// the health checks need without knowing the collector.
pub trait AnySection: Send + Sync {
    fn name(&self) -> &'static str;
    fn meta(&self) -> Meta;
    fn configure(&self, enabled: bool, interval: Duration);
    /// The data, for a typed read by [`crate::snapshot::Snapshot::state`].
    fn data_any(&self) -> Option<Arc<dyn Any + Send + Sync>>;
    fn as_any(&self) -> &dyn Any;
}

impl<T: SectionState> AnySection for Channel<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn meta(&self) -> Meta {
        Channel::meta(self)
    }

    fn configure(&self, enabled: bool, interval: Duration) {
        Channel::configure(self, enabled, interval)
    }

    fn data_any(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.data().map(|d| d as Arc<dyn Any + Send + Sync>)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(PartialEq)]
    struct Items(usize);

    impl SectionState for Items {
        fn targets(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn staleness_follows_the_monotonic_clock_across_wall_clock_jumps() {
        let now = 1_800_000_000.0;
        let mut s = Meta::new(true, Duration::from_secs(1));
        assert!(s.is_stale(now, 3), "never succeeded");
        // Without a monotonic time (a snapshot built by hand): the wall clock.
        s.last_success = Some(now - 2.0);
        assert!(!s.is_stale(now, 3));
        assert!(s.is_stale(now + 10.0, 3));
        // The clock stepped back a day after the last success, which was
        // 10 s ago: stale, though the wall clock says it is in the future.
        s.last_success = Some(now + 86_400.0);
        s.last_success_at = Instant::now().checked_sub(Duration::from_secs(10));
        assert!(s.last_success_at.is_some());
        assert!(s.is_stale(now, 3));
        // The clock stepped a day ahead right after a success: fresh.
        s.last_success = Some(now - 86_400.0);
        s.last_success_at = Some(Instant::now());
        assert!(!s.is_stale(now, 3));
    }

    #[test]
    fn subscribers_wake_on_data_not_on_bookkeeping() {
        let ch: Channel<Items> = Channel::new("items");
        ch.configure(true, Duration::from_secs(1));
        let mut rx = ch.subscribe();
        assert!(
            ch.succeeded(Some(Items(3)), Duration::ZERO, 1.0),
            "first run"
        );
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        assert!(!ch.succeeded(None, Duration::ZERO, 2.0));
        assert_eq!(
            ch.failed("x".into(), Publish::Keep, Duration::ZERO, 3.0),
            None
        );
        assert!(!rx.has_changed().unwrap(), "bookkeeping only");
        assert_eq!(ch.meta().targets, Some(3));
        assert_eq!(
            ch.failed("y".into(), Publish::Clear, Duration::ZERO, 4.0)
                .as_deref(),
            Some("x")
        );
        assert!(rx.has_changed().unwrap());
        assert!(ch.data().is_none());
        assert_eq!(ch.meta().errors_total, 2);
        // Disabling drops data and bookkeeping.
        ch.succeeded(Some(Items(1)), Duration::ZERO, 5.0);
        ch.configure(false, Duration::from_secs(1));
        assert!(ch.data().is_none());
        assert_eq!(ch.meta(), Meta::new(false, Duration::from_secs(1)));
    }
}
