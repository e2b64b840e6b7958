//! The typed state each collector publishes: host figures, unit states,
//! runner roots and logs, GitHub's view of the runners.

use super::counts::{Counts, Variants};
use super::section::SectionState;
use crate::metrics::encode::HistogramData;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

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

impl SectionState for HostState {
    fn targets(&self) -> usize {
        self.filesystems.len()
    }
}

// ------------------------------------------------------------------ the exporter itself

/// The outcome of the last configuration reload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReloadStatus {
    pub last_ok: bool,
    pub last_success: f64,
}

/// The exporter's own process (`process_*`).
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
    /// Runner units.
    pub units: Vec<UnitState>,
    /// Units runners depend on but are not runners (`[docker] units`:
    /// docker.service, containerd.service), looked up by name. Kept out
    /// of the runner views; a unit that does not exist has LoadState
    /// `not-found`. Only the load, active and sub-states are read.
    pub dependencies: Vec<UnitState>,
}

impl SectionState for SystemdState {
    fn targets(&self) -> usize {
        self.units.len()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitState {
    pub name: String,
    pub object_path: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// NRestarts: automatic restarts since the unit was last started by
    /// hand (an explicit start or `reset-failed` sets it back to 0).
    pub n_restarts: Option<u32>,
    /// Restarts seen since the exporter started, never decreasing: a drop
    /// of NRestarts is a reset, not negative restarts.
    pub restarts_total: Option<u64>,
    /// Restarts that count towards a crash loop: those within `[health]
    /// crashloop_window`, or, the first time a unit is seen while it is
    /// not stably active, all of NRestarts.
    pub recent_restarts: u32,
    /// ActiveEnterTimestamp, seconds since the epoch; None if never active.
    pub active_since: Option<f64>,
    /// ActiveEnterTimestampMonotonic, microseconds on CLOCK_MONOTONIC: how
    /// long the unit has been active, immune to wall-clock steps.
    pub active_enter_monotonic_us: Option<u64>,
    pub exec_main_status: Option<i32>,
    pub working_directory: Option<PathBuf>,
    pub control_group: Option<String>,
    /// MainPID; None when no main process runs.
    pub main_pid: Option<u32>,
    /// The Service's `User=` (None when unset, as in a user manager, or
    /// when systemd does not report it).
    pub user: Option<String>,
    pub listener: Option<ProcStats>,
    pub worker: Option<ProcStats>,
}

impl UnitState {
    /// Seconds since the unit last became active (None if it never did).
    pub fn active_for(&self) -> Option<f64> {
        let entered = self.active_enter_monotonic_us.filter(|us| *us > 0)?;
        let now = monotonic_now_us()?;
        Some(now.saturating_sub(entered) as f64 / 1e6)
    }
}

/// CLOCK_MONOTONIC in microseconds: the clock systemd's `*Monotonic`
/// timestamps use.
pub fn monotonic_now_us() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs * 1_000_000 + nanos / 1_000)
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

impl Variants for JobResult {
    const ALL: &'static [JobResult] = &[
        JobResult::Succeeded,
        JobResult::SucceededWithIssues,
        JobResult::Failed,
        JobResult::Canceled,
        JobResult::Skipped,
        JobResult::Abandoned,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            JobResult::Succeeded => "Succeeded",
            JobResult::SucceededWithIssues => "SucceededWithIssues",
            JobResult::Failed => "Failed",
            JobResult::Canceled => "Canceled",
            JobResult::Skipped => "Skipped",
            JobResult::Abandoned => "Abandoned",
        }
    }
}

impl JobResult {
    pub const COUNT: usize = 6;

    pub fn parse(s: &str) -> Option<JobResult> {
        JobResult::ALL.iter().copied().find(|r| r.as_str() == s)
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
    /// GitHub refused the listener: `Runner version v<x> is deprecated and
    /// cannot receive messages` (counted once per refused listener).
    VersionDeprecated,
    /// A `docker` command of a job exited non-zero (Worker log).
    DockerFailed,
}

impl Variants for LogEvent {
    const ALL: &'static [LogEvent] = &[
        LogEvent::ConnectError,
        LogEvent::Reconnected,
        LogEvent::SessionConflict,
        LogEvent::RegistrationDeleted,
        LogEvent::AuthFailed,
        LogEvent::UpdateStarted,
        LogEvent::UpdateFailed,
        LogEvent::ClockSkew,
        LogEvent::ListenerExited,
        LogEvent::VersionDeprecated,
        LogEvent::DockerFailed,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
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
            LogEvent::VersionDeprecated => "version_deprecated",
            LogEvent::DockerFailed => "docker_failed",
        }
    }
}

impl LogEvent {
    pub const COUNT: usize = 11;
}

/// Why a log line was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    TooLong,
    InvalidUtf8,
    Malformed,
    NotRegularFile,
}

impl Variants for SkipReason {
    const ALL: &'static [SkipReason] = &[
        SkipReason::TooLong,
        SkipReason::InvalidUtf8,
        SkipReason::Malformed,
        SkipReason::NotRegularFile,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLong => "too_long",
            SkipReason::InvalidUtf8 => "invalid_utf8",
            SkipReason::Malformed => "malformed",
            SkipReason::NotRegularFile => "not_regular_file",
        }
    }
}

impl SkipReason {
    pub const COUNT: usize = 4;
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunnerState {
    pub roots: Vec<RunnerRoot>,
}

impl SectionState for RunnerState {
    fn targets(&self) -> usize {
        self.roots.len()
    }
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
    /// The last `.runner` seen said `ephemeral: true` (kept after it
    /// vanishes: an ephemeral runner deletes it when it finishes).
    pub ephemeral_seen: bool,
    /// The unit name from the root's `.service` file.
    pub service_unit: Option<String>,
    pub work_fs: Option<FsUsage>,
    pub logs: LogState,
    /// Watched with inotify (read on changes), not polled on a timer.
    pub watched: bool,
    /// Whether the runner's user can use Docker, and Docker's data-root
    /// filesystem (sampled on rescans; None when `[[runner]] docker =
    /// false` or not sampled yet).
    pub docker: Option<DockerProbe>,
}

/// Who the runner runs as, and how the exporter knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerUser {
    /// From /etc/passwd (None for a uid it does not list).
    pub name: Option<String>,
    pub uid: u32,
    /// The primary group (None for a uid /etc/passwd does not list).
    pub gid: Option<u32>,
    /// Supplementary groups from /etc/group (by the user's name).
    pub groups: Vec<u32>,
    pub source: UserSource,
}

impl RunnerUser {
    /// `name (uid N)` or `uid N`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// Where the runner's user was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserSource {
    /// The `User=` of the runner's unit.
    Unit,
    /// The owner of the runner root (no unit, or a unit without `User=`).
    RootOwner,
}

/// Whether the runner's user can connect to Docker's socket, judged from
/// the socket file's owner, mode and ACL and the user's groups (the socket
/// is never connected to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAccess {
    /// Granted, and how (`group docker`, `an ACL entry for the user`...).
    Granted(String),
    /// Denied, and why.
    Denied(String),
    /// No socket at the path.
    Missing,
    /// Cannot be told, and why.
    Unknown(String),
}

/// What the runner collector learned about Docker for one runner.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerProbe {
    /// `[docker] socket`.
    pub socket: PathBuf,
    /// The runner's user; None when it cannot be found.
    pub user: Option<RunnerUser>,
    pub access: SocketAccess,
    /// `data-root` of Docker's daemon.json (default /var/lib/docker).
    pub data_root: PathBuf,
    /// Why daemon.json could not be used (the default data-root is
    /// reported then).
    pub config_error: Option<String>,
    /// The filesystem holding the data-root (its nearest existing
    /// ancestor when it does not exist); None when statvfs failed.
    pub data_fs: Option<FsUsage>,
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

/// A `docker` command of a job that failed, from a Worker log.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerFailure {
    /// Log timestamp of the process's end.
    pub at: f64,
    /// `docker <subcommand>`.
    pub command: String,
    pub exit_code: i32,
    /// The step it ran in (`Initialize containers`), when known.
    pub step: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogState {
    /// Runner version from `Current runner version: '...'`.
    pub version: Option<String>,
    /// None until the log says anything about the connection.
    pub connected: Option<bool>,
    pub current_job: Option<CurrentJob>,
    /// Jobs completed while the exporter ran, by result.
    pub jobs: Counts<JobResult, { JobResult::COUNT }>,
    pub durations: HistogramData,
    pub last_job_completed: Option<f64>,
    /// Events seen while the exporter ran.
    pub events: Counts<LogEvent, { LogEvent::COUNT }>,
    /// Recent events with their log timestamps, including those read at
    /// start-up (which are not counted): the diagnosis uses them.
    pub recent: Vec<(LogEvent, f64)>,
    pub listener_exit_code: Option<i32>,
    /// When GitHub refused the listener for its version (`Runner version
    /// v<x> is deprecated and cannot receive messages`), until a listener
    /// connects again.
    pub deprecated_at: Option<f64>,
    /// When the listener said it exits after its one job (`... the runner
    /// will exit since it is running under onetime use mode.`), until a
    /// new listener starts.
    pub onetime_exit_at: Option<f64>,
    /// When a Worker log last showed a container job (the step
    /// `Initialize containers`, or a `docker` command); never cleared.
    pub container_job_at: Option<f64>,
    /// The last `docker` command of a job that exited non-zero, until one
    /// succeeds.
    pub docker_failure: Option<DockerFailure>,
    /// When a self-update last failed (`Runner update failed`), until a
    /// listener starts with another version.
    pub update_failed_at: Option<f64>,
    pub last_entry: Option<f64>,
    pub bytes_read: u64,
    /// Lines skipped, by reason.
    pub skipped: Counts<SkipReason, { SkipReason::COUNT }>,
    pub runner_log: Option<PathBuf>,
    pub worker_log: Option<PathBuf>,
}

impl Default for LogState {
    fn default() -> Self {
        LogState {
            version: None,
            connected: None,
            current_job: None,
            jobs: Counts::default(),
            durations: HistogramData::new(crate::metrics::catalog::JOB_DURATION_BUCKETS.len()),
            last_job_completed: None,
            events: Counts::default(),
            recent: Vec::new(),
            listener_exit_code: None,
            deprecated_at: None,
            onetime_exit_at: None,
            container_job_at: None,
            docker_failure: None,
            update_failed_at: None,
            last_entry: None,
            bytes_read: 0,
            skipped: Counts::default(),
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
    /// The latest actions/runner release, asked at most hourly (None
    /// until known, or when `[github] runner_latest_version` is set).
    pub latest_runner: Option<LatestRunner>,
    /// Every owner asked about, in the order asked: the configured
    /// repositories, organizations and enterprises (fleet scope), or the
    /// owners of the local runners' registrations (self scope).
    pub owners: Vec<OwnerStatus>,
    /// Why the last poll failed as a whole (no owner answered, or nothing
    /// could be asked); None after a poll in which any owner answered.
    pub error: Option<ApiFailure>,
}

/// The latest actions/runner release as GitHub's releases API gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct LatestRunner {
    /// `2.330.0` (from the tag `v2.330.0`).
    pub version: String,
    /// When GitHub last confirmed it, seconds since the epoch.
    pub checked_at: f64,
}

impl SectionState for GithubState {
    fn targets(&self) -> usize {
        self.runners.len()
    }
}

impl GithubState {
    pub fn owner(&self, owner: &str) -> Option<&OwnerStatus> {
        self.owners.iter().find(|o| o.owner == owner)
    }
}

/// A runner id as GitHub sent it. The schema says "integer" with no
/// bound, so it is kept as its decimal text (canonical: no sign for
/// positive numbers, no leading zeros, no fraction or exponent), not as a
/// machine integer.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunnerId(String);

impl RunnerId {
    /// The canonical decimal text of a JSON number, if the number is an
    /// integer (`23`, `-4`, `1.0`, `2.3e1`, `18446744073709551616`).
    /// Integers of more than [`RunnerId::MAX_DIGITS`] digits are refused.
    pub fn from_json_number(text: &str) -> Option<RunnerId> {
        let t = text.trim();
        let (negative, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (mantissa, exponent) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].strip_prefix('+').unwrap_or(&t[i + 1..])),
            None => (t, "0"),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits_ok(int)
            || !digits_ok(frac)
            || (mantissa.contains('.') && frac.is_empty())
        {
            return None;
        }
        let (exp_negative, exp_digits) = match exponent.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, exponent),
        };
        if exp_digits.is_empty() || !digits_ok(exp_digits) {
            return None;
        }
        let all: String = format!("{int}{frac}");
        let all = all.trim_start_matches('0');
        if all.is_empty() {
            return Some(RunnerId("0".into()));
        }
        // Value = all * 10^(exp - frac.len()), with `all` free of leading
        // zeros; a bounded exponent keeps the text bounded.
        let exp: i64 = exp_digits.parse::<i64>().ok().filter(|e| *e <= 10_000)?;
        let shift = if exp_negative { -exp } else { exp } - frac.len() as i64;
        let text = if shift >= 0 {
            let zeros = usize::try_from(shift).ok()?;
            if all.len() + zeros > Self::MAX_DIGITS {
                return None;
            }
            format!("{all}{}", "0".repeat(zeros))
        } else {
            let cut = usize::try_from(-shift).ok()?;
            if cut > all.len() {
                return None;
            }
            let (head, tail) = all.split_at(all.len() - cut);
            if !tail.bytes().all(|b| b == b'0') || head.is_empty() {
                return None;
            }
            head.to_string()
        };
        if text.len() > Self::MAX_DIGITS {
            return None;
        }
        Some(RunnerId(if negative { format!("-{text}") } else { text }))
    }

    /// Longest id kept, in digits: far beyond any id GitHub hands out,
    /// short enough for a label value.
    pub const MAX_DIGITS: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a machine integer, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl From<u64> for RunnerId {
    fn from(id: u64) -> RunnerId {
        RunnerId(id.to_string())
    }
}

impl std::fmt::Display for RunnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GithubRunner {
    /// The runner's name at GitHub (agentName).
    pub name: String,
    /// Self scope: the local root it was looked up for.
    pub root: Option<PathBuf>,
    pub id: Option<RunnerId>,
    /// Who the runner is registered with: `owner/repo`, `org` or
    /// `enterprises/slug`.
    pub owner: String,
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

/// One owner's polls: its own success and errors, so that one failing
/// owner shows without hiding the others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnerStatus {
    /// `owner/repo`, `org` or `enterprises/slug`.
    pub owner: String,
    /// The last poll asked about this owner and got every answer.
    pub success: bool,
    pub last_success: Option<f64>,
    /// Failed polls of this owner by reason.
    pub errors: Counts<ApiErrorReason, { ApiErrorReason::COUNT }>,
    /// Runner objects in the owner's last answer that could not be read
    /// and were left out.
    pub unreadable: u64,
    /// While failing: the last failure.
    pub error: Option<ApiFailure>,
}

/// A failure and its message (secrets removed), for `/health`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiFailure {
    /// None for a failure that is not the API's (missing credentials).
    pub reason: Option<ApiErrorReason>,
    pub message: String,
}

/// The host's clock against GitHub's, from the `Date` header of an answer
/// the client got anyway.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSample {
    /// Host clock minus GitHub's, in seconds: positive when the host is
    /// ahead.
    pub offset: f64,
    /// How far off the estimate can be: half the round trip plus half a
    /// second (`Date` has whole seconds).
    pub uncertainty: f64,
    /// When it was measured, on the monotonic clock.
    pub at: Instant,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiStats {
    /// Requests by status code, or "error" without a response.
    pub requests: BTreeMap<String, u64>,
    /// Failed polls by reason (each failing owner counts once).
    pub errors: Counts<ApiErrorReason, { ApiErrorReason::COUNT }>,
    pub rate_remaining: Option<u64>,
    pub rate_limit: Option<u64>,
    pub rate_reset: Option<u64>,
    /// GitHub's clock (the `Date` header) at the last answer: the wait for
    /// `rate_reset` is measured on it, not on the local clock.
    pub rate_date: Option<u64>,
    pub last_success: Option<f64>,
    pub backoff_seconds: f64,
    /// The newest measurement of the host clock against GitHub's.
    pub clock: Option<ClockSample>,
}

/// Why a GitHub API request or poll failed: the `reason` label of
/// `github_runner_github_api_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiErrorReason {
    /// 401: the token is wrong, expired or revoked.
    Auth,
    /// No connection to GitHub (refused, DNS, connect timeout).
    Connect,
    /// 403 that is not about rate limits (missing permission).
    Forbidden,
    /// An answer that is not the JSON expected.
    Malformed,
    /// 404 where a list or an installation was expected.
    NotFound,
    /// Another unexpected status.
    Other,
    /// The proxy: unreachable, refusing the tunnel, or unusable settings.
    Proxy,
    /// The proxy wants (other) credentials: 407.
    ProxyAuth,
    /// 403 or 429 about a rate limit.
    RateLimited,
    /// 5xx.
    ServerError,
    /// No complete answer within the request timeout.
    Timeout,
    /// GitHub's certificate is not trusted (unknown issuer, wrong name,
    /// expired), or the trust settings are unusable.
    Tls,
}

impl Variants for ApiErrorReason {
    /// In the order of their label values, as they are exported.
    const ALL: &'static [ApiErrorReason] = &[
        ApiErrorReason::Auth,
        ApiErrorReason::Connect,
        ApiErrorReason::Forbidden,
        ApiErrorReason::Malformed,
        ApiErrorReason::NotFound,
        ApiErrorReason::Other,
        ApiErrorReason::Proxy,
        ApiErrorReason::ProxyAuth,
        ApiErrorReason::RateLimited,
        ApiErrorReason::ServerError,
        ApiErrorReason::Timeout,
        ApiErrorReason::Tls,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            ApiErrorReason::Auth => "auth",
            ApiErrorReason::Forbidden => "forbidden",
            ApiErrorReason::RateLimited => "rate_limited",
            ApiErrorReason::NotFound => "not_found",
            ApiErrorReason::ServerError => "server_error",
            ApiErrorReason::Timeout => "timeout",
            ApiErrorReason::Connect => "connect",
            ApiErrorReason::Malformed => "malformed",
            ApiErrorReason::Other => "other",
            ApiErrorReason::Proxy => "proxy",
            ApiErrorReason::ProxyAuth => "proxy_auth",
            ApiErrorReason::Tls => "tls",
        }
    }
}

impl ApiErrorReason {
    pub const COUNT: usize = 12;
}

// ------------------------------------------------------------------ queue

/// What the queue collector publishes: jobs waiting for a runner by label
/// set, the runners able to take each set, queue times of jobs picked up,
/// the results and durations of the `[jobs] workflows` jobs, and the API
/// budget it spends.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueState {
    /// The repositories watched (`owner/repo`).
    pub repositories: Vec<String>,
    /// Whether every runner of the owners is known (fleet scope) or only
    /// the local ones (self scope).
    pub fleet: bool,
    /// When the last poll finished: the wall-clock time and the monotonic
    /// instant (ages grow from it).
    pub polled_at: Option<(f64, Instant)>,
    pub runs_queued: u64,
    pub runs_in_progress: u64,
    /// Requested label sets (queued or in-progress jobs), sorted by
    /// label set; at most `max_label_sets` of them by name, then
    /// [`OTHER_LABEL_SET`].
    pub label_sets: Vec<LabelSetState>,
    /// Queued jobs, longest waiting first (for `/health` and `check`;
    /// never in metrics).
    pub waiting: Vec<WaitingJob>,
    /// Queue times of jobs picked up while the exporter ran.
    pub queue_time: HistogramData,
    /// Jobs picked up whose `started_at` is not after `created_at`: no
    /// queue time can be told, so they are counted here instead.
    pub queue_time_unmeasured: u64,
    /// Per `[jobs] workflows` entry, in config order.
    pub workflows: Vec<WorkflowJobs>,
    pub api: ApiStats,
    /// Requests GitHub charged (answers other than 304) since start.
    pub charged_total: u64,
    /// `budget_share` of the token's hourly limit.
    pub budget_per_hour: f64,
    /// The delay before the next poll, as paced by the budget.
    pub interval_seconds: f64,
    /// Repositories that could not be read (not found, forbidden), with
    /// the error.
    pub repository_errors: Vec<(String, String)>,
}

/// The label value that sums the label sets beyond `max_label_sets`. A
/// label set is written with commas and never holds parentheses.
pub const OTHER_LABEL_SET: &str = "(other)";

impl QueueState {
    pub fn new(repositories: Vec<String>, fleet: bool) -> QueueState {
        QueueState {
            repositories,
            fleet,
            polled_at: None,
            runs_queued: 0,
            runs_in_progress: 0,
            label_sets: Vec::new(),
            waiting: Vec::new(),
            queue_time: HistogramData::new(crate::metrics::catalog::QUEUE_TIME_BUCKETS.len()),
            queue_time_unmeasured: 0,
            workflows: Vec::new(),
            api: ApiStats::default(),
            charged_total: 0,
            budget_per_hour: 0.0,
            interval_seconds: 0.0,
            repository_errors: Vec::new(),
        }
    }

    /// Seconds since the last poll (None before the first).
    pub fn since_poll(&self) -> Option<f64> {
        self.polled_at.map(|(_, at)| at.elapsed().as_secs_f64())
    }
}

impl SectionState for QueueState {
    fn targets(&self) -> usize {
        self.repositories.len()
    }
}

/// Why jobs of a label set wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// No known runner carries every label of the set.
    NoRunner,
    /// Runners carry them, but none is online.
    OnlyOffline,
    /// Every online runner that carries them is busy.
    AllBusy,
    /// An online idle runner carries them: GitHub has not handed it the
    /// job (runner group access, or it is being assigned right now).
    NotAssigned,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::NoRunner => "no_runner",
            WaitReason::OnlyOffline => "only_offline",
            WaitReason::AllBusy => "all_busy",
            WaitReason::NotAssigned => "not_assigned",
        }
    }
}

/// A runner compared with a label set.
#[derive(Clone, Debug, PartialEq)]
pub struct NearRunner {
    pub name: String,
    pub online: bool,
    pub busy: bool,
    /// The set's labels it lacks (lowercase); empty when it matches.
    pub missing: Vec<String>,
}

/// One requested label set.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSetState {
    /// Lowercase, sorted, comma-joined (`gpu,linux,self-hosted`), or
    /// [`OTHER_LABEL_SET`].
    pub labels: String,
    pub queued: u64,
    /// Wait of the oldest queued job at the last poll.
    pub oldest_wait: Option<f64>,
    /// Runners carrying every label (case-insensitively), online, and
    /// online and idle; None for [`OTHER_LABEL_SET`].
    pub runners: Option<(u64, u64)>,
    /// Why its queued jobs wait (None without queued jobs).
    pub reason: Option<WaitReason>,
    /// The runners that match (offline or busy ones included), or, when
    /// none does, those lacking the fewest labels; at most three.
    pub nearest: Vec<NearRunner>,
}

impl LabelSetState {
    /// The oldest job's wait now: its wait at the poll plus the time since.
    pub fn oldest_wait_now(&self, since_poll: f64) -> Option<f64> {
        self.oldest_wait.map(|w| w + since_poll)
    }
}

/// A queued job, for the reports.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitingJob {
    pub repository: String,
    /// The workflow's file name (`deploy.yml`).
    pub workflow: String,
    pub name: String,
    pub labels: String,
    /// Seconds waited at the last poll (by GitHub's clock).
    pub wait: f64,
    pub url: String,
}

/// Results and durations of one `[jobs] workflows` entry's jobs, counted
/// as their runs complete while the exporter runs.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowJobs {
    pub workflow: String,
    pub results: Counts<JobConclusion, { JobConclusion::COUNT }>,
    pub durations: HistogramData,
}

impl WorkflowJobs {
    pub fn new(workflow: String) -> WorkflowJobs {
        WorkflowJobs {
            workflow,
            results: Counts::default(),
            durations: HistogramData::new(crate::metrics::catalog::JOB_DURATION_BUCKETS.len()),
        }
    }
}

/// A completed job's `conclusion` as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobConclusion {
    Success,
    Failure,
    Cancelled,
    Skipped,
    TimedOut,
    Neutral,
    ActionRequired,
    /// Null or a value the schema does not list.
    Other,
}

impl Variants for JobConclusion {
    const ALL: &'static [JobConclusion] = &[
        JobConclusion::Success,
        JobConclusion::Failure,
        JobConclusion::Cancelled,
        JobConclusion::Skipped,
        JobConclusion::TimedOut,
        JobConclusion::Neutral,
        JobConclusion::ActionRequired,
        JobConclusion::Other,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            JobConclusion::Success => "success",
            JobConclusion::Failure => "failure",
            JobConclusion::Cancelled => "cancelled",
            JobConclusion::Skipped => "skipped",
            JobConclusion::TimedOut => "timed_out",
            JobConclusion::Neutral => "neutral",
            JobConclusion::ActionRequired => "action_required",
            JobConclusion::Other => "other",
        }
    }
}

impl JobConclusion {
    pub const COUNT: usize = 8;

    pub fn parse(s: Option<&str>) -> JobConclusion {
        s.and_then(|s| JobConclusion::ALL.iter().copied().find(|c| c.as_str() == s))
            .unwrap_or(JobConclusion::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runner_ids_are_any_integer_the_schema_allows() {
        let id = |t: &str| RunnerId::from_json_number(t).map(|i| i.to_string());
        for (text, want) in [
            ("23", Some("23")),
            ("0", Some("0")),
            ("-0", Some("0")),
            ("-7", Some("-7")),
            ("18446744073709551615", Some("18446744073709551615")),
            ("18446744073709551616", Some("18446744073709551616")),
            (
                "123456789012345678901234567890",
                Some("123456789012345678901234567890"),
            ),
            ("23.0", Some("23")),
            ("2.3e1", Some("23")),
            ("2300E-2", Some("23")),
            ("1e3", Some("1000")),
            ("1E+2", Some("100")),
            ("0.0e5", Some("0")),
            ("23.5", None),
            ("2.35e1", None),
            ("1e-1", None),
            ("\"23\"", None),
            ("23.", None),
            ("", None),
            ("1e200", None),
            ("1e99999999999999999999", None),
        ] {
            assert_eq!(id(text).as_deref(), want, "{text}");
        }
        let big = RunnerId::from_json_number("18446744073709551616").unwrap();
        assert_eq!(big.as_u64(), None);
        assert_eq!(RunnerId::from(23).as_u64(), Some(23));
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
