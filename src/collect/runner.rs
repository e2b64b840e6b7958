//! Runner collector: each runner root's `.runner`, `.service`, work folder
//! filesystem and `_diag` logs, tailed live.
//!
//! Roots come from `[[runner]] root`, from the working directories of the
//! units the systemd collector found, and from `[runner_files]
//! root_patterns`. A root is polled on a blocking thread: one `stat` of
//! `.runner` and of `_diag`, one `fstat` per open log, and a read of the
//! bytes appended since the last poll. `_diag` is listed again only when
//! its mtime changed (or on a rescan), so a folder with thousands of
//! Worker logs costs nothing while idle.
//!
//! When a root is polled: each poll also (re)adds inotify watches on the
//! root and its `_diag` (`watch`), on that blocking thread, never on the
//! runtime's. A root whose watches are in place is polled only when an
//! event for it arrives (100 ms after the first of a burst), on a rescan,
//! and while bytes are left to read; an idle runner costs no wake-up at
//! all between rescans. A root that cannot be watched (missing, `_diag`
//! not a watchable directory, inotify unavailable or out of watches, a
//! network or FUSE filesystem, or `watch = false`) is polled every
//! `log_poll_interval`, as is one whose poll has not returned. New unit
//! roots are noticed when the systemd section changes: the collector
//! subscribes to it and compares the units' working directories (in
//! memory, no I/O).
//!
//! Every `rescan_interval` the globs are expanded again, `.service` is
//! re-read, every root is polled and the work folder's filesystem is
//! sampled. A poll that does not return (a hung mount) stalls only its own
//! root, which is then reported as not accessible; statvfs likewise never
//! blocks the collector.
//!
//! Only `.runner`, `.service` and `_diag/*.log` are ever opened.

mod discover;
pub(crate) mod docker;
pub mod parse;
pub(crate) mod registration;
pub(crate) mod root;
pub mod tail;
mod watch;

use super::{Collector, Failure, Mode, Outcome};
use crate::config::{DockerConfig, DockerMode, RunnerFilesConfig};
use crate::settings::Settings;
use crate::snapshot::{
    Data, DockerProbe, FsUsage, RootSources, RunnerRoot, RunnerState, Store, SystemdState,
};
use root::{PollOutput, RootTracker};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use watch::{RootWatch, Watcher};

/// The collector's name: its section and its `collector` label.
pub const NAME: &str = "runner";

/// How long one tick waits for the roots' polls.
const POLL_WAIT: Duration = Duration::from_secs(2);
/// A poll still running after this long marks its root not accessible.
const HUNG_AFTER: Duration = Duration::from_secs(5);
/// How long one tick waits for a glob expansion or a statvfs.
const DISCOVERY_WAIT: Duration = Duration::from_secs(2);
const STATVFS_WAIT: Duration = Duration::from_secs(1);
/// Poll delay while a root has unread bytes left.
const BACKLOG_DELAY: Duration = Duration::from_millis(10);
/// After an inotify event, how long to wait for more before polling: a
/// burst of writes costs one poll.
const EVENT_DELAY: Duration = Duration::from_millis(100);

/// One root to poll: its path, its tracker and whether this is a rescan.
type Job = (PathBuf, Box<RootTracker>, bool);

/// What a poll sends back: the tracker and its output, or the panic
/// message (the tracker is dropped: its state cannot be trusted).
type Done = (PathBuf, Result<(Box<RootTracker>, PollOutput), String>);

/// Polls that returned, waiting to be taken back by the collector, and a
/// wake-up for it.
#[derive(Default)]
struct Returned {
    done: Mutex<Vec<Done>>,
    notify: tokio::sync::Notify,
}

/// Polls queued roots one after the other until the queue is empty, then
/// wakes the collector once.
fn poll_worker(queue: Arc<Mutex<VecDeque<Job>>>, returned: Arc<Returned>) {
    loop {
        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        let Some((path, mut tracker, rescan)) = job else {
            break;
        };
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tracker.poll(rescan)));
        let result = match result {
            Ok(out) => Ok((tracker, out)),
            Err(p) => Err(super::panic_message(&*p)),
        };
        returned
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((path, result));
    }
    returned.notify.notify_one();
}

struct RootEntry {
    path: PathBuf,
    sources: RootSources,
    /// None while a poll holds it.
    tracker: Option<Box<RootTracker>>,
    /// When the poll holding the tracker was queued.
    busy_since: Option<Instant>,
    rescan_pending: bool,
    /// The last poll's view (sources and work_fs filled in when published).
    last: RunnerRoot,
    hung: bool,
    work_dir: Option<PathBuf>,
    work_fs: Option<FsUsage>,
    work_task: Option<JoinHandle<std::io::Result<FsUsage>>>,
    work_due: bool,
    /// Docker as the runner's user sees it (sampled with the filesystem).
    docker: Option<DockerProbe>,
    docker_task: Option<JoinHandle<DockerProbe>>,
    /// What the last probe looked at: a change (the unit's user learned
    /// from the systemd collector) probes again before the next rescan.
    docker_input: Option<docker::ProbeInput>,
    /// The last poll set up watches that report every change: polled on
    /// events (and rescans) only. Otherwise every `log_poll_interval`.
    watched: bool,
    /// An event arrived since the last poll.
    dirty: bool,
    /// The last poll left bytes to read.
    backlog: bool,
    /// When the last poll was queued.
    last_poll: Option<Instant>,
}

impl RootEntry {
    fn new(path: PathBuf, max_line: usize, watch: RootWatch) -> Self {
        RootEntry {
            tracker: Some(Box::new(RootTracker::new(path.clone(), max_line, watch))),
            last: RunnerRoot {
                root: path.clone(),
                ..Default::default()
            },
            path,
            sources: RootSources::default(),
            busy_since: None,
            rescan_pending: false,
            hung: false,
            work_dir: None,
            work_fs: None,
            work_task: None,
            work_due: true,
            docker: None,
            docker_task: None,
            docker_input: None,
            watched: false,
            dirty: false,
            backlog: false,
            last_poll: None,
        }
    }

    /// Whether this tick polls the root.
    fn due(&self, rescan: bool, interval: Duration) -> bool {
        rescan
            || self.dirty
            || self.backlog
            || !self.watched && self.last_poll.is_none_or(|t| t.elapsed() >= interval)
    }

    fn published(&self) -> RunnerRoot {
        let mut r = self.last.clone();
        r.sources = self.sources;
        r.work_fs = self.work_fs;
        r.watched = self.watched && self.tracker.is_some();
        r.docker = self.docker.clone();
        r
    }
}

/// A unit the systemd collector reported: what the Docker probe needs.
#[derive(Clone, Debug, PartialEq)]
struct UnitRef {
    name: String,
    working_directory: Option<PathBuf>,
    user: Option<String>,
}

pub struct RunnerCollector {
    config: RunnerFilesConfig,
    docker_config: DockerConfig,
    config_roots: Vec<PathBuf>,
    /// Roots named with `docker = false`: no Docker probe.
    docker_off: Vec<PathBuf>,
    /// The units of the last systemd state seen (their users).
    unit_refs: Vec<UnitRef>,
    /// The systemd collector's units (None when it is disabled).
    units: Option<tokio::sync::watch::Receiver<Data<SystemdState>>>,
    /// The unit roots of the last systemd state seen: kept while the
    /// systemd collector has none (a dead bus makes unit states unknown,
    /// not the runners gone).
    last_unit_roots: Vec<PathBuf>,
    entries: Vec<RootEntry>,
    glob_roots: Vec<PathBuf>,
    glob_task: Option<JoinHandle<Vec<PathBuf>>>,
    last_rescan: Option<Instant>,
    published: Option<RunnerState>,
    backlog: bool,
    returned: Arc<Returned>,
    /// Whether to use inotify (not for a one-shot `check`).
    watch_enabled: bool,
    watcher: Watcher,
    watcher_started: bool,
}

/// The runner units' working directories (their roots), normalised; a
/// relative path or `/` is not a root.
fn working_directories(s: &SystemdState) -> impl Iterator<Item = PathBuf> + '_ {
    s.units
        .iter()
        .filter_map(|u| u.working_directory.as_deref())
        .filter(|p| p.is_absolute() && p.parent().is_some())
        .map(discover::normalize)
}

/// What ended a wait.
enum Woken {
    Due,
    Event,
    /// The systemd section changed (false: its sender is gone).
    Units(bool),
}

impl RunnerCollector {
    /// Builds the collector; with systemd enabled it follows the units'
    /// working directories through `units`.
    pub fn with_config(
        settings: &Settings,
        units: Option<tokio::sync::watch::Receiver<Data<SystemdState>>>,
        mode: Mode,
    ) -> Self {
        let config = &settings.config;
        let mut config_roots: Vec<PathBuf> = config
            .runners
            .iter()
            .filter_map(|r| r.root.as_deref().map(discover::normalize))
            .collect();
        config_roots.sort();
        config_roots.dedup();
        let docker_off = config
            .runners
            .iter()
            .filter(|r| r.docker == DockerMode::Off)
            .filter_map(|r| r.root.as_deref().map(discover::normalize))
            .collect();
        RunnerCollector {
            config: config.runner_files.clone(),
            docker_config: config.docker.clone(),
            config_roots,
            docker_off,
            unit_refs: Vec::new(),
            units,
            last_unit_roots: Vec::new(),
            entries: Vec::new(),
            glob_roots: Vec::new(),
            glob_task: None,
            last_rescan: None,
            published: None,
            backlog: false,
            returned: Arc::default(),
            // A single collection has no use for inotify.
            watch_enabled: config.runner_files.watch && mode == Mode::Daemon,
            watcher: Watcher::default(),
            watcher_started: false,
        }
    }

    /// Whether the systemd section names other unit roots than the last
    /// run took (no I/O: the data in memory).
    fn unit_roots_changed(&self) -> bool {
        let Some(units) = &self.units else {
            return false;
        };
        let Some(s) = units.borrow().clone() else {
            return false;
        };
        !working_directories(&s).eq(self.last_unit_roots.iter().cloned())
    }

    /// When the next tick is due without events: the rescan, and the
    /// roots that are not watched (or whose poll has not returned).
    fn next_due(&self) -> Instant {
        let now = Instant::now();
        let interval = self.config.log_poll_interval.get();
        let mut due = self
            .last_rescan
            .map_or(now, |t| t + self.config.rescan_interval.get());
        if self.glob_task.is_some() {
            due = due.min(now + interval);
        }
        for e in &self.entries {
            let at = if e.tracker.is_none() || e.work_task.is_some() {
                now + interval
            } else if !e.watched {
                e.last_poll.map_or(now, |t| t + interval)
            } else {
                continue;
            };
            due = due.min(at);
        }
        due
    }

    /// Working directories of the runner units the systemd collector found.
    /// While it has no data (it failed: the bus died, systemd does not
    /// answer) the roots of its last data are kept: the runner is still
    /// there, and dropping its root would lose what its logs say meanwhile
    /// (a root found again starts over, counting nothing already written).
    fn unit_roots(&mut self) -> Vec<PathBuf> {
        let Some(units) = &mut self.units else {
            return Vec::new();
        };
        if let Some(s) = units.borrow_and_update().clone() {
            self.last_unit_roots = working_directories(&s).collect();
            self.unit_refs = s
                .units
                .iter()
                .map(|u| UnitRef {
                    name: u.name.clone(),
                    working_directory: u.working_directory.as_deref().map(discover::normalize),
                    user: u.user.clone(),
                })
                .collect();
        }
        self.last_unit_roots.clone()
    }

    /// `User=` of the unit running in `root` (else the one its `.service`
    /// names); None when there is none or it sets no user.
    fn unit_user(&self, root: &std::path::Path, service: Option<&str>) -> Option<String> {
        self.unit_refs
            .iter()
            .find(|u| u.working_directory.as_deref() == Some(root))
            .or_else(|| {
                self.unit_refs
                    .iter()
                    .find(|u| Some(u.name.as_str()) == service)
            })
            .and_then(|u| u.user.clone())
    }

    /// Probes Docker for each root that may watch it (on rescans, and when
    /// the unit's user changed), on blocking threads, never waiting on a
    /// hung one twice.
    async fn sample_docker(&mut self, rescan: bool) {
        // What to probe, decided before any entry is changed.
        let inputs: Vec<Option<docker::ProbeInput>> = self
            .entries
            .iter()
            .map(|e| {
                if e.docker_task.is_some() || self.docker_off.contains(&e.path) {
                    return None;
                }
                let input = docker::ProbeInput {
                    root: e.path.clone(),
                    unit_user: self.unit_user(&e.path, e.last.service_unit.as_deref()),
                    socket: self.docker_config.socket.clone(),
                    daemon_config: self.docker_config.daemon_config.clone(),
                };
                (rescan || e.docker_input.as_ref() != Some(&input)).then_some(input)
            })
            .collect();
        let mut fresh = vec![false; self.entries.len()];
        for ((e, input), fresh) in self.entries.iter_mut().zip(inputs).zip(&mut fresh) {
            if self.docker_off.contains(&e.path) {
                e.docker = None;
            }
            if let Some(input) = input {
                *fresh = true;
                e.docker_input = Some(input.clone());
                e.docker_task = Some(tokio::task::spawn_blocking(move || docker::probe(&input)));
            }
        }
        let deadline = tokio::time::Instant::now() + DISCOVERY_WAIT;
        for (i, e) in self.entries.iter_mut().enumerate() {
            let Some(task) = &mut e.docker_task else {
                continue;
            };
            if !fresh[i] && !task.is_finished() {
                continue;
            }
            match tokio::time::timeout_at(deadline, task).await {
                Ok(result) => {
                    e.docker_task = None;
                    match result {
                        Ok(p) => e.docker = Some(p),
                        Err(err) => {
                            tracing::warn!(root = %e.path.display(), error = %err, "the Docker probe failed");
                            e.docker = None;
                        }
                    }
                }
                Err(_) => {
                    // Hung (a file of the probe on a dead mount): picked up
                    // on a later tick.
                    if e.docker.take().is_some() {
                        tracing::debug!(root = %e.path.display(), "the Docker probe did not return in time");
                    }
                }
            }
        }
    }

    /// Expands the globs on a blocking thread; a hung directory delays only
    /// glob discovery (the previous result is kept meanwhile).
    async fn discover_globs(&mut self, rescan: bool) {
        if rescan && self.glob_task.is_none() && !self.config.root_patterns.is_empty() {
            let patterns = self.config.root_patterns.clone();
            self.glob_task = Some(tokio::task::spawn_blocking(move || {
                discover::glob_roots(&patterns)
            }));
        }
        let Some(task) = &mut self.glob_task else {
            return;
        };
        if !rescan && !task.is_finished() {
            return;
        }
        match tokio::time::timeout(DISCOVERY_WAIT, task).await {
            Ok(Ok(roots)) => {
                self.glob_roots = roots;
                self.glob_task = None;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "runner root discovery failed");
                self.glob_task = None;
            }
            Err(_) => tracing::debug!("runner root discovery still running"),
        }
    }

    /// Adds, removes and re-labels roots from the three sources.
    fn update_roots(&mut self, unit_roots: &[PathBuf]) {
        let mut wanted: BTreeMap<PathBuf, RootSources> = BTreeMap::new();
        for p in &self.config_roots {
            wanted.entry(p.clone()).or_default().config = true;
        }
        for p in unit_roots {
            wanted.entry(p.clone()).or_default().unit = true;
        }
        for p in &self.glob_roots {
            wanted.entry(p.clone()).or_default().glob = true;
        }
        let watcher = &self.watcher;
        self.entries.retain(|e| {
            let keep = wanted.contains_key(&e.path);
            if !keep {
                tracing::info!(root = %e.path.display(), "runner root no longer found");
                watcher.forget(&e.path);
            }
            keep
        });
        for (path, sources) in wanted {
            match self.entries.binary_search_by(|e| e.path.cmp(&path)) {
                Ok(i) => self.entries[i].sources = sources,
                Err(i) => {
                    tracing::info!(
                        root = %path.display(),
                        config = sources.config,
                        unit = sources.unit,
                        glob = sources.glob,
                        "runner root found"
                    );
                    let watch = self.watcher.for_root(&path);
                    let mut e = RootEntry::new(path, self.config.max_line_bytes, watch);
                    e.sources = sources;
                    self.entries.insert(i, e);
                }
            }
        }
    }

    /// Polls every root that is not still busy on one blocking task, then
    /// waits (a bounded time) for the results.
    async fn poll_roots(&mut self, rescan: bool) {
        // Polls that returned after an earlier tick's wait.
        self.take_returned();
        let dirty = self.watcher.take_dirty();
        let mut queue = VecDeque::new();
        let now = Instant::now();
        let interval = self.config.log_poll_interval.get();
        for e in &mut self.entries {
            e.rescan_pending |= rescan;
            e.dirty |= dirty.as_ref().is_none_or(|d| d.contains(&e.path));
            if !e.due(rescan, interval) {
                continue;
            }
            if let Some(t) = e.tracker.take() {
                queue.push_back((e.path.clone(), t, std::mem::take(&mut e.rescan_pending)));
                e.busy_since = Some(now);
                e.last_poll = Some(now);
                e.dirty = false;
            }
        }
        let queued: Vec<PathBuf> = queue.iter().map(|(p, _, _)| p.clone()).collect();
        if !queue.is_empty() {
            let queue = Arc::new(Mutex::new(queue));
            let (q, r) = (Arc::clone(&queue), Arc::clone(&self.returned));
            tokio::task::spawn_blocking(move || poll_worker(q, r));
            let deadline = tokio::time::Instant::now() + POLL_WAIT;
            loop {
                self.take_returned();
                // Wait for this tick's polls only, not for one hung since
                // an earlier tick.
                let pending = queued.iter().any(|p| {
                    self.entries
                        .binary_search_by(|e| e.path.cmp(p))
                        .is_ok_and(|i| self.entries[i].busy_since.is_some())
                });
                if !pending {
                    break;
                }
                // A wake-up stored before this wait starts is not lost.
                let notified = self.returned.notify.notified();
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    self.take_returned();
                    break;
                }
            }
            // Roots queued behind a poll that does not return are taken
            // back: the next tick polls them on a new task.
            let left: Vec<Job> = queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..)
                .collect();
            for (path, tracker, rescan) in left {
                if let Ok(i) = self.entries.binary_search_by(|e| e.path.cmp(&path)) {
                    let e = &mut self.entries[i];
                    e.tracker = Some(tracker);
                    e.busy_since = None;
                    e.rescan_pending |= rescan;
                }
            }
        }
        for e in &mut self.entries {
            let Some(since) = e.busy_since else {
                continue;
            };
            if since.elapsed() >= HUNG_AFTER {
                if !e.hung {
                    e.hung = true;
                    tracing::warn!(root = %e.path.display(), "reading the runner root does not return (hung filesystem?)");
                }
                e.last.accessible = false;
                e.last.error = Some(format!(
                    "reading {} has not returned for more than {}s (hung filesystem?)",
                    e.path.display(),
                    HUNG_AFTER.as_secs()
                ));
            }
        }
        self.backlog = self
            .entries
            .iter()
            .any(|e| e.backlog && e.tracker.is_some());
    }

    /// Takes back every root whose poll returned.
    fn take_returned(&mut self) {
        let done =
            std::mem::take(&mut *self.returned.done.lock().unwrap_or_else(|e| e.into_inner()));
        for d in done {
            self.finish(d);
        }
    }

    /// Takes back a polled root.
    fn finish(&mut self, (path, result): Done) {
        let Ok(i) = self.entries.binary_search_by(|e| e.path.cmp(&path)) else {
            // The root was dropped meanwhile (its poll may have watched it
            // again).
            self.watcher.forget(&path);
            return;
        };
        let max_line = self.config.max_line_bytes;
        let e = &mut self.entries[i];
        e.busy_since = None;
        if e.hung {
            tracing::info!(root = %e.path.display(), "runner root readable again");
            e.hung = false;
        }
        let (tracker, out) = match result {
            Ok(x) => x,
            Err(panic) => {
                // Start over with a fresh tracker (start-up reading again).
                let msg = format!("polling the runner root panicked: {panic}");
                tracing::error!(root = %e.path.display(), error = %msg, "runner root poll failed");
                let watch = self.watcher.for_root(&e.path);
                e.tracker = Some(Box::new(RootTracker::new(e.path.clone(), max_line, watch)));
                e.last.error = Some(msg);
                e.watched = false;
                e.backlog = false;
                return;
            }
        };
        e.tracker = Some(tracker);
        if out.root.error != e.last.error {
            if let Some(err) = &out.root.error {
                tracing::warn!(root = %e.path.display(), error = %err, "runner root problem");
            } else if e.last.error.is_some() {
                tracing::info!(root = %e.path.display(), "runner root problem resolved");
            }
        }
        if e.work_dir.as_ref() != Some(&out.work_dir) {
            e.work_dir = Some(out.work_dir);
            e.work_due = true;
        }
        e.last = out.root;
        e.watched = out.watched;
        e.backlog = out.backlog;
    }

    /// Samples each work folder's filesystem (on rescans and when the
    /// folder changed), never waiting on a hung mount twice.
    async fn sample_work_filesystems(&mut self, rescan: bool) {
        let mut fresh = vec![false; self.entries.len()];
        for (i, e) in self.entries.iter_mut().enumerate() {
            if e.work_task.is_some() || !(rescan || e.work_due) {
                continue;
            }
            fresh[i] = true;
            let Some(dir) = e.work_dir.clone() else {
                continue;
            };
            e.work_due = false;
            e.work_task = Some(tokio::task::spawn_blocking(move || {
                registration::work_filesystem(&dir)
            }));
        }
        let deadline = tokio::time::Instant::now() + STATVFS_WAIT;
        for (i, e) in self.entries.iter_mut().enumerate() {
            let Some(task) = &mut e.work_task else {
                continue;
            };
            if !fresh[i] && !task.is_finished() {
                // Hung since an earlier tick: not waited on again.
                continue;
            }
            match tokio::time::timeout_at(deadline, task).await {
                Ok(result) => {
                    e.work_task = None;
                    e.work_fs = match result {
                        Ok(Ok(u)) => Some(u),
                        Ok(Err(err)) => {
                            tracing::debug!(root = %e.path.display(), error = %err, "statvfs of the work folder failed");
                            None
                        }
                        Err(_) => None,
                    };
                }
                Err(_) => {
                    // Hung: no figure until the call returns; its result is
                    // picked up (without waiting) on a later tick.
                    if e.work_fs.take().is_some() {
                        tracing::debug!(root = %e.path.display(), "statvfs of the work folder did not return in time");
                    }
                }
            }
        }
    }
}

impl Collector for RunnerCollector {
    type State = RunnerState;
    const NAME: &'static str = NAME;
    const READS: &'static [&'static str] = &[super::systemd::NAME];

    fn enabled(settings: &Settings) -> bool {
        settings.config.runner_files.enabled
    }

    fn interval(settings: &Settings) -> Duration {
        settings.config.runner_files.rescan_interval.get()
    }

    fn config_key(settings: &Settings) -> String {
        let c = &settings.config;
        let roots: Vec<_> = c.runners.iter().map(|r| (&r.root, r.docker)).collect();
        super::key((&c.runner_files, roots, c.systemd.enabled, &c.docker))
    }

    fn new(settings: &Settings, store: &Store, mode: Mode) -> Self {
        let units = settings
            .config
            .systemd
            .enabled
            .then(|| store.channel::<SystemdState>().map(|c| c.subscribe()))
            .flatten();
        RunnerCollector::with_config(settings, units, mode)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(15)
    }

    /// Until a root has bytes left (soon), an inotify event (after
    /// [`EVENT_DELAY`]), the systemd collector names a new unit root, an
    /// unwatched root's `log_poll_interval` passed, or the rescan is due.
    async fn wait(&mut self) {
        if self.backlog {
            tokio::time::sleep(BACKLOG_DELAY).await;
            return;
        }
        let deadline = tokio::time::Instant::from_std(self.next_due());
        loop {
            if self.watcher.has_dirty() {
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + EVENT_DELAY))
                    .await;
                return;
            }
            let woken = {
                let changes = async {
                    match &mut self.units {
                        Some(c) => Woken::Units(c.changed().await.is_ok()),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => Woken::Due,
                    _ = self.watcher.notified() => Woken::Event,
                    w = changes => w,
                }
            };
            match woken {
                Woken::Due => return,
                // Looked at again at the top (the wake-up may be stale).
                Woken::Event => {}
                // The store is gone (shutting down): the next run is due
                // as if nothing were followed.
                Woken::Units(false) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                Woken::Units(true) => {
                    if self.unit_roots_changed() {
                        return;
                    }
                }
            }
        }
    }

    async fn collect(&mut self) -> Result<Outcome<RunnerState>, Failure<RunnerState>> {
        let rescan = self
            .last_rescan
            .is_none_or(|t| t.elapsed() >= self.config.rescan_interval.get());
        if rescan {
            self.last_rescan = Some(Instant::now());
        }
        if self.watch_enabled && !self.watcher_started {
            self.watcher_started = true;
            self.watcher = Watcher::start();
        }
        let units = self.unit_roots();
        self.discover_globs(rescan).await;
        self.update_roots(&units);
        self.poll_roots(rescan).await;
        self.sample_work_filesystems(rescan).await;
        self.sample_docker(rescan).await;
        let state = RunnerState {
            roots: self.entries.iter().map(RootEntry::published).collect(),
        };
        if self.published.as_ref() == Some(&state) {
            return Ok(Outcome::Unchanged);
        }
        self.published = Some(state.clone());
        Ok(Outcome::Changed(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RunnerConfig};
    use crate::snapshot::{SystemdState, UnitState};

    fn copy_fixture(name: &str, to: &std::path::Path) {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/runner")
            .join(name);
        std::fs::create_dir_all(to.join("_diag")).unwrap();
        for f in [".runner", ".service"] {
            if from.join(f).exists() {
                std::fs::copy(from.join(f), to.join(f)).unwrap();
            }
        }
        for e in std::fs::read_dir(from.join("_diag")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join("_diag").join(e.file_name())).unwrap();
        }
    }

    #[tokio::test]
    async fn roots_from_config_units_and_globs_are_merged() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("actions-runner-a");
        let b = t.path().join("actions-runner-b");
        let c = t.path().join("elsewhere");
        copy_fixture("basic", &a);
        copy_fixture("broken", &b);
        copy_fixture("broken", &c);
        let mut config = Config::default();
        config.runner_files.root_patterns = vec![format!("{}/actions-runner*", t.path().display())];
        config.runners.push(RunnerConfig {
            root: Some(format!("{}/", a.display()).into()),
            ..Default::default()
        });
        let settings = Arc::new(Settings::with_token(config, None));
        let store = crate::collect::registry::store(Arc::clone(&settings));
        let systemd = store.channel::<SystemdState>().expect("a systemd section");
        let publish = |s: Option<SystemdState>| match s {
            Some(s) => {
                systemd.succeeded(Some(s), Duration::ZERO, 0.0);
            }
            None => {
                systemd.failed(
                    "lost".into(),
                    crate::snapshot::Publish::Clear,
                    Duration::ZERO,
                    0.0,
                );
            }
        };
        let unit = |wd: &std::path::Path| UnitState {
            name: "actions.runner.x.y.service".into(),
            working_directory: Some(wd.to_path_buf()),
            ..Default::default()
        };
        publish(Some(SystemdState {
            units: vec![unit(&a), unit(&c.join("."))],
            ..Default::default()
        }));
        let mut collector = RunnerCollector::new(&settings, &store, Mode::Daemon);
        let Outcome::Changed(state) = collector.collect().await.unwrap() else {
            panic!("the first run changes the state");
        };
        let found: Vec<(PathBuf, RootSources)> = state
            .roots
            .iter()
            .map(|r| (r.root.clone(), r.sources))
            .collect();
        let src = |config, unit, glob| RootSources { config, unit, glob };
        assert_eq!(
            found,
            [
                (a.clone(), src(true, true, true)),
                (b.clone(), src(false, false, true)),
                (c.clone(), src(false, true, false)),
            ]
        );
        assert!(state
            .roots
            .iter()
            .all(|r| r.accessible && r.error.is_none()));
        assert_eq!(
            state.roots[0].service_unit.as_deref(),
            Some("actions.runner.acme-app.linux_runner.service")
        );
        // Nothing new: no re-render.
        assert!(matches!(
            collector.collect().await.unwrap(),
            Outcome::Unchanged
        ));
        // The unit goes away: its root is dropped.
        publish(Some(SystemdState {
            units: vec![unit(&a)],
            ..Default::default()
        }));
        let Outcome::Changed(state) = collector.collect().await.unwrap() else {
            panic!("a root was removed");
        };
        assert_eq!(state.roots.len(), 2);
        // The systemd collector fails and has no state: the unit's root
        // stays until a state without the unit says otherwise.
        publish(None);
        assert!(matches!(
            collector.collect().await.unwrap(),
            Outcome::Unchanged
        ));
        publish(Some(SystemdState::default()));
        let Outcome::Changed(state) = collector.collect().await.unwrap() else {
            panic!("the unit is gone");
        };
        assert_eq!(state.roots[0].root, a);
        assert_eq!(state.roots[0].sources, src(true, false, true));
    }
}
