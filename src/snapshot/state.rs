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
    pub units: Vec<UnitState>,
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
        }
    }
}

impl LogEvent {
    pub const COUNT: usize = 9;
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
    /// Every owner asked about, in the order asked: the configured
    /// repositories, organizations and enterprises (fleet scope), or the
    /// owners of the local runners' registrations (self scope).
    pub owners: Vec<OwnerStatus>,
    /// Why the last poll failed as a whole (no owner answered, or nothing
    /// could be asked); None after a poll in which any owner answered.
    pub error: Option<ApiFailure>,
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
