//! The latest state each collector produced, with timestamps and errors.
//!
//! Collectors write their section in the background through [`Store`];
//! `/metrics`, `/health` and `check` only read. A version counter tells the
//! renderer when to re-encode the exposition body.

use crate::config::Scope;
use crate::metrics::encode::HistogramData;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    unix_seconds(SystemTime::now())
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The names collectors go by, in `collector` labels and logs.
pub const COLLECTORS: [&str; 4] = ["host", "systemd", "runner", "github"];

/// One collector's part of the snapshot.
#[derive(Clone, Debug)]
pub struct Section<T> {
    pub enabled: bool,
    /// How often the collector is expected to report (for staleness).
    pub interval: Duration,
    /// The state of the last successful run (some collectors keep it when a
    /// later run fails, others clear it when it can no longer be trusted).
    pub state: Option<T>,
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
}

/// Seconds since the last success: by the monotonic clock when known,
/// else by the wall clock `now`.
fn success_age(last_success: Option<f64>, at: Option<Instant>, now: f64) -> Option<f64> {
    match at {
        Some(at) => Some(at.elapsed().as_secs_f64()),
        None => last_success.map(|t| now - t),
    }
}

impl<T> Section<T> {
    pub fn new(enabled: bool, interval: Duration) -> Self {
        Section {
            enabled,
            interval,
            state: None,
            success: false,
            last_attempt: None,
            last_success: None,
            last_success_at: None,
            duration: Duration::ZERO,
            error: None,
            errors_total: 0,
        }
    }

    /// True when the collector has not succeeded within `intervals` of its
    /// interval (or never has).
    pub fn is_stale(&self, now: f64, intervals: u32) -> bool {
        self.meta(None).is_stale(now, intervals)
    }

    fn meta(&self, targets: Option<usize>) -> SectionMeta<'_> {
        SectionMeta::of(self, targets)
    }
}

/// Everything the exporter knows, as of the last collector runs.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub host: Section<HostState>,
    pub systemd: Section<SystemdState>,
    pub runner: Section<RunnerState>,
    pub github: Section<GithubState>,
    pub process: Option<ProcessStats>,
    pub reload: ReloadStatus,
    /// Role and environment per configured runner (from `[[runner]]`).
    pub runner_config: Vec<crate::config::RunnerConfig>,
    /// Thresholds of the health checks (from `[health]`).
    pub health_config: crate::config::HealthConfig,
}

#[derive(Clone, Debug, Default)]
pub struct ReloadStatus {
    pub last_ok: bool,
    pub last_success: f64,
}

impl Snapshot {
    pub fn new(config: &crate::config::Config) -> Self {
        Snapshot {
            host: Section::new(config.host.enabled, config.host.sample_interval.get()),
            systemd: Section::new(config.systemd.enabled, config.systemd.resync_interval.get()),
            runner: Section::new(
                config.runner_files.enabled,
                config.runner_files.rescan_interval.get(),
            ),
            github: Section::new(
                config.github_scope() != Scope::Off,
                config.github.poll_interval.get(),
            ),
            process: None,
            reload: ReloadStatus {
                last_ok: true,
                last_success: now_unix(),
            },
            runner_config: config.runners.clone(),
            health_config: config.health.clone(),
        }
    }

    /// Takes a reloaded config: which collectors are enabled and how often
    /// they report, runner roles, health thresholds. A disabled collector's
    /// state is dropped; an enabled one keeps its state until it reports.
    pub fn apply_config(&mut self, config: &crate::config::Config) {
        fn set<T>(s: &mut Section<T>, enabled: bool, interval: Duration) {
            if !enabled {
                *s = Section::new(false, interval);
            }
            s.enabled = enabled;
            s.interval = interval;
        }
        set(
            &mut self.host,
            config.host.enabled,
            config.host.sample_interval.get(),
        );
        set(
            &mut self.systemd,
            config.systemd.enabled,
            config.systemd.resync_interval.get(),
        );
        set(
            &mut self.runner,
            config.runner_files.enabled,
            config.runner_files.rescan_interval.get(),
        );
        set(
            &mut self.github,
            config.github_scope() != Scope::Off,
            config.github.poll_interval.get(),
        );
        self.runner_config = config.runners.clone();
        self.health_config = config.health.clone();
    }

    /// Bookkeeping of each collector, by name, in [`COLLECTORS`] order.
    pub fn sections(&self) -> [(&'static str, SectionMeta<'_>); 4] {
        [
            (
                "host",
                SectionMeta::of(
                    &self.host,
                    self.host.state.as_ref().map(|s| s.filesystems.len()),
                ),
            ),
            (
                "systemd",
                SectionMeta::of(
                    &self.systemd,
                    self.systemd.state.as_ref().map(|s| s.units.len()),
                ),
            ),
            (
                "runner",
                SectionMeta::of(
                    &self.runner,
                    self.runner.state.as_ref().map(|s| s.roots.len()),
                ),
            ),
            (
                "github",
                SectionMeta::of(
                    &self.github,
                    self.github.state.as_ref().map(|s| s.runners.len()),
                ),
            ),
        ]
    }
}

/// The type-independent part of a [`Section`].
pub struct SectionMeta<'a> {
    pub enabled: bool,
    pub success: bool,
    pub last_success: Option<f64>,
    pub last_success_at: Option<Instant>,
    pub duration: Duration,
    pub errors_total: u64,
    pub error: Option<&'a str>,
    pub interval: Duration,
    pub targets: Option<usize>,
}

impl<'a> SectionMeta<'a> {
    /// True when the collector has not succeeded within `intervals` of its
    /// interval (or never has).
    pub fn is_stale(&self, now: f64, intervals: u32) -> bool {
        match success_age(self.last_success, self.last_success_at, now) {
            None => true,
            Some(age) => age > self.interval.as_secs_f64() * f64::from(intervals.max(1)),
        }
    }

    fn of<T>(s: &'a Section<T>, targets: Option<usize>) -> Self {
        SectionMeta {
            enabled: s.enabled,
            success: s.success,
            last_success: s.last_success,
            last_success_at: s.last_success_at,
            duration: s.duration,
            errors_total: s.errors_total,
            error: s.error.as_deref(),
            interval: s.interval,
            targets,
        }
    }
}

// ------------------------------------------------------------------ host

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostState {
    /// None until two samples of /proc/stat exist.
    pub cpu_usage_ratio: Option<f64>,
    /// Cumulative seconds per mode (user, nice, system, idle, iowait, ...).
    pub cpu_seconds: Vec<(&'static str, f64)>,
    pub cpu_cores: usize,
    pub load: [f64; 3],
    pub memory_total: u64,
    pub memory_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub boot_time: u64,
    pub filesystems: Vec<Filesystem>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filesystem {
    pub mountpoint: String,
    pub fstype: String,
    pub device: String,
    /// None when statvfs failed or is still pending.
    pub usage: Option<FsUsage>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FsUsage {
    pub size: u64,
    pub free: u64,
    pub avail: u64,
    pub files: u64,
    pub files_free: u64,
}

// ------------------------------------------------------------------ process

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time: f64,
}

// ------------------------------------------------------------------ systemd

/// The ActiveState values systemd defines, exported one-hot.
pub const UNIT_STATES: [&str; 6] = [
    "active",
    "reloading",
    "inactive",
    "failed",
    "activating",
    "deactivating",
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemdState {
    pub units: Vec<UnitState>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitState {
    pub name: String,
    pub object_path: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub n_restarts: Option<u32>,
    /// Restarts observed within `[health] crashloop_window`.
    pub recent_restarts: u32,
    /// ActiveEnterTimestamp, seconds since the epoch; None if never active.
    pub active_since: Option<f64>,
    pub exec_main_status: Option<i32>,
    pub working_directory: Option<PathBuf>,
    pub control_group: Option<String>,
    /// MainPID; None when no main process runs.
    pub main_pid: Option<u32>,
    pub listener: Option<ProcStats>,
    pub worker: Option<ProcStats>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcStats {
    pub pid: u32,
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
}

// ------------------------------------------------------------------ runner files and logs

/// Job results, in the order they are exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
    Canceled,
    Skipped,
    Abandoned,
}

impl JobResult {
    pub const ALL: [JobResult; 6] = [
        JobResult::Succeeded,
        JobResult::SucceededWithIssues,
        JobResult::Failed,
        JobResult::Canceled,
        JobResult::Skipped,
        JobResult::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Succeeded => "Succeeded",
            JobResult::SucceededWithIssues => "SucceededWithIssues",
            JobResult::Failed => "Failed",
            JobResult::Canceled => "Canceled",
            JobResult::Skipped => "Skipped",
            JobResult::Abandoned => "Abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<JobResult> {
        JobResult::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Known failure signatures and transitions in the runner's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogEvent {
    ConnectError,
    Reconnected,
    SessionConflict,
    RegistrationDeleted,
    AuthFailed,
    UpdateStarted,
    UpdateFailed,
    ClockSkew,
    ListenerExited,
}

impl LogEvent {
    pub const ALL: [LogEvent; 9] = [
        LogEvent::ConnectError,
        LogEvent::Reconnected,
        LogEvent::SessionConflict,
        LogEvent::RegistrationDeleted,
        LogEvent::AuthFailed,
        LogEvent::UpdateStarted,
        LogEvent::UpdateFailed,
        LogEvent::ClockSkew,
        LogEvent::ListenerExited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogEvent::ConnectError => "connect_error",
            LogEvent::Reconnected => "reconnected",
            LogEvent::SessionConflict => "session_conflict",
            LogEvent::RegistrationDeleted => "registration_deleted",
            LogEvent::AuthFailed => "auth_failed",
            LogEvent::UpdateStarted => "update_started",
            LogEvent::UpdateFailed => "update_failed",
            LogEvent::ClockSkew => "clock_skew",
            LogEvent::ListenerExited => "listener_exited",
        }
    }

    pub fn index(self) -> usize {
        LogEvent::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }
}

/// Why a log line was not used.
pub const SKIP_REASONS: [&str; 4] = ["too_long", "invalid_utf8", "malformed", "not_regular_file"];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunnerState {
    pub roots: Vec<RunnerRoot>,
}

/// How a runner root was found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootSources {
    pub config: bool,
    pub unit: bool,
    pub glob: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunnerRoot {
    pub root: PathBuf,
    pub sources: RootSources,
    /// False when the root or its `_diag` cannot be read (permissions, gone).
    pub accessible: bool,
    pub error: Option<String>,
    /// `.runner`, when present.
    pub registration: Option<Registration>,
    /// The last agentName seen, kept after `.runner` vanishes so the
    /// runner label stays the same.
    pub agent_name: Option<String>,
    /// The unit name from the root's `.service` file.
    pub service_unit: Option<String>,
    pub work_fs: Option<FsUsage>,
    pub logs: LogState,
    /// Watched with inotify (read on changes), not polled on a timer.
    pub watched: bool,
}

/// The fields of `.runner` the exporter uses. All optional: the agent omits
/// fields equal to 0, false or null.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registration {
    pub agent_id: Option<u64>,
    pub agent_name: Option<String>,
    pub pool_id: Option<u64>,
    pub pool_name: Option<String>,
    pub server_url: Option<String>,
    pub github_url: Option<String>,
    pub work_folder: Option<String>,
    pub ephemeral: bool,
    pub disable_update: bool,
    pub is_hosted_server: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CurrentJob {
    pub name: String,
    /// When the job started (from the log line), seconds since the epoch.
    pub started: f64,
    /// When the start line was read: its age then by the wall clock, and
    /// the monotonic time of the read (None when not known).
    pub seen: Option<(f64, Instant)>,
}

impl CurrentJob {
    /// How long the job has run at wall-clock time `now`: the start line's
    /// age when read plus the monotonic time since, so that a wall-clock
    /// step after the read (ahead: a job "running for a day"; back: a
    /// negative time) changes nothing. Without the reading time, `now`
    /// minus the start, never below zero.
    pub fn elapsed(&self, now: f64) -> f64 {
        match self.seen {
            Some((age, at)) => age + at.elapsed().as_secs_f64(),
            None => (now - self.started).max(0.0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogState {
    /// Runner version from `Current runner version: '...'`.
    pub version: Option<String>,
    /// None until the log says anything about the connection.
    pub connected: Option<bool>,
    pub current_job: Option<CurrentJob>,
    /// Jobs completed while the exporter ran, indexed like [`JobResult::ALL`].
    pub jobs: [u64; 6],
    pub durations: HistogramData,
    pub last_job_completed: Option<f64>,
    /// Events seen while the exporter ran, indexed like [`LogEvent::ALL`].
    pub events: [u64; 9],
    /// Recent events with their log timestamps, including those read at
    /// start-up (which are not counted): the diagnosis uses them.
    pub recent: Vec<(LogEvent, f64)>,
    pub listener_exit_code: Option<i32>,
    pub last_entry: Option<f64>,
    pub bytes_read: u64,
    /// Lines skipped, indexed like [`SKIP_REASONS`].
    pub skipped: [u64; 4],
    pub runner_log: Option<PathBuf>,
    pub worker_log: Option<PathBuf>,
}

impl Default for LogState {
    fn default() -> Self {
        LogState {
            version: None,
            connected: None,
            current_job: None,
            jobs: [0; 6],
            durations: HistogramData::new(crate::metrics::catalog::JOB_DURATION_BUCKETS.len()),
            last_job_completed: None,
            events: [0; 9],
            recent: Vec::new(),
            listener_exit_code: None,
            last_entry: None,
            bytes_read: 0,
            skipped: [0; 4],
            runner_log: None,
            worker_log: None,
        }
    }
}

// ------------------------------------------------------------------ github

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GithubState {
    pub runners: Vec<GithubRunner>,
    pub api: ApiStats,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GithubRunner {
    /// The runner's name at GitHub (agentName).
    pub name: String,
    /// Self scope: the local root it was looked up for.
    pub root: Option<PathBuf>,
    pub id: Option<u64>,
    /// False when the API answered 404 for the runner's id.
    pub registered: bool,
    pub online: bool,
    pub busy: bool,
    pub os: String,
    pub ephemeral: bool,
    pub labels: Vec<String>,
    /// When this runner's data was last confirmed by the API.
    pub checked_at: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiStats {
    /// Requests by status code, or "error" without a response.
    pub requests: BTreeMap<String, u64>,
    /// Failed polls by reason.
    pub errors: BTreeMap<&'static str, u64>,
    pub rate_remaining: Option<u64>,
    pub rate_limit: Option<u64>,
    pub rate_reset: Option<u64>,
    /// GitHub's clock (the `Date` header) at the last answer: the wait for
    /// `rate_reset` is measured on it, not on the local clock.
    pub rate_date: Option<u64>,
    pub last_success: Option<f64>,
    pub backoff_seconds: f64,
}

// ------------------------------------------------------------------ store

/// The encoded exposition of one snapshot version.
pub struct Rendered {
    pub version: u64,
    pub text: Bytes,
    pub openmetrics: Bytes,
    text_gzip: OnceLock<Bytes>,
    openmetrics_gzip: OnceLock<Bytes>,
}

impl Rendered {
    pub fn new(version: u64, text: String, openmetrics: String) -> Self {
        Rendered {
            version,
            text: Bytes::from(text),
            openmetrics: Bytes::from(openmetrics),
            text_gzip: OnceLock::new(),
            openmetrics_gzip: OnceLock::new(),
        }
    }

    /// The gzip-compressed body, computed once per version on first request.
    pub fn gzip(&self, openmetrics: bool) -> Bytes {
        let (cell, body) = if openmetrics {
            (&self.openmetrics_gzip, &self.openmetrics)
        } else {
            (&self.text_gzip, &self.text)
        };
        cell.get_or_init(|| gzip(body)).clone()
    }
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// The shared snapshot, its version and its latest rendering.
pub struct Store {
    snapshot: RwLock<Snapshot>,
    version: watch::Sender<u64>,
    rendered: RwLock<Arc<Rendered>>,
}

impl Store {
    pub fn new(snapshot: Snapshot) -> Arc<Store> {
        let (version, _) = watch::channel(0);
        Arc::new(Store {
            snapshot: RwLock::new(snapshot),
            version,
            rendered: RwLock::new(Arc::new(Rendered::new(0, String::new(), String::new()))),
        })
    }

    /// Reads the snapshot. Never hold the guard across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the snapshot; `changed` asks for a new rendering.
    pub fn update<R>(&self, changed: bool, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        let r = {
            let mut snap = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
            f(&mut snap)
        };
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
        r
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The latest rendering: a pointer copy, no I/O, no encoding.
    pub fn rendered(&self) -> Arc<Rendered> {
        self.rendered
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_rendered(&self, r: Rendered) {
        *self.rendered.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_follows_the_monotonic_clock_across_wall_clock_jumps() {
        let now = 1_800_000_000.0;
        let mut s: Section<()> = Section::new(true, Duration::from_secs(1));
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
        assert!(!SectionMeta::of(&s, None).is_stale(now, 3));
    }

    #[test]
    fn a_jobs_elapsed_time_ignores_wall_clock_steps_after_its_start_was_read() {
        let now = 1_800_000_000.0;
        let read = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        let job = CurrentJob {
            name: "a".into(),
            started: now - 70.0,
            // Read 10 s after it started, a minute ago.
            seen: Some((10.0, read)),
        };
        for wall in [now, now + 86_400.0, now - 86_400.0] {
            let e = job.elapsed(wall);
            assert!((70.0..71.0).contains(&e), "{e} at {wall}");
        }
        let unknown = CurrentJob { seen: None, ..job };
        assert_eq!(unknown.elapsed(now), 70.0);
        assert_eq!(unknown.elapsed(now - 86_400.0), 0.0);
    }
}
