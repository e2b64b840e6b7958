//! The metric catalog: every family the exporter can serve, defined once.
//!
//! Collectors, the encoder, `docs/metrics.md`, the generated alert rules and
//! the dashboard all refer to these definitions; nothing else spells a metric
//! name. Counter names include their `_total` suffix here; the OpenMetrics
//! encoder strips it from the family name as that format requires.

/// The Prometheus type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// Which part of the exporter produces a family (and which collector must be
/// enabled for it to appear).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Host,
    Systemd,
    Runner,
    Github,
    /// The health gate, evaluated from every collector's data.
    Health,
    Queue,
    Exporter,
    Process,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Host => "host",
            Source::Systemd => "systemd",
            Source::Runner => "runner",
            Source::Github => "github",
            Source::Health => "health",
            Source::Queue => "queue",
            Source::Exporter => "exporter",
            Source::Process => "process",
        }
    }
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub source: Source,
    /// Upper bounds of a histogram's buckets (without `+Inf`).
    pub buckets: &'static [f64],
}

const fn gauge(
    source: Source,
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Gauge,
        labels,
        source,
        buckets: &[],
    }
}

const fn counter(
    source: Source,
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Counter,
        labels,
        source,
        buckets: &[],
    }
}

use Source::{Exporter, Github, Health, Host, Process, Queue, Runner, Systemd};

// ---------------------------------------------------------------- host

pub static HOST_CPU_USAGE_RATIO: Family = gauge(
    Host,
    "github_runner_host_cpu_usage_ratio",
    &[],
    "Share of CPU time not idle or waiting for I/O over the last sample interval, across all cores (0-1).",
);
pub static HOST_CPU_SECONDS: Family = counter(
    Host,
    "github_runner_host_cpu_seconds_total",
    &["mode"],
    "CPU time spent in each mode, summed over all cores, from /proc/stat.",
);
pub static HOST_CPU_CORES: Family = gauge(
    Host,
    "github_runner_host_cpu_cores",
    &[],
    "Number of logical CPU cores.",
);
pub static HOST_LOAD1: Family = gauge(
    Host,
    "github_runner_host_load1",
    &[],
    "1-minute load average.",
);
pub static HOST_LOAD5: Family = gauge(
    Host,
    "github_runner_host_load5",
    &[],
    "5-minute load average.",
);
pub static HOST_LOAD15: Family = gauge(
    Host,
    "github_runner_host_load15",
    &[],
    "15-minute load average.",
);
pub static HOST_MEMORY_TOTAL: Family = gauge(
    Host,
    "github_runner_host_memory_total_bytes",
    &[],
    "Total usable memory.",
);
pub static HOST_MEMORY_AVAILABLE: Family = gauge(
    Host,
    "github_runner_host_memory_available_bytes",
    &[],
    "Memory available for new work without swapping (MemAvailable).",
);
pub static HOST_SWAP_TOTAL: Family = gauge(
    Host,
    "github_runner_host_swap_total_bytes",
    &[],
    "Total swap space.",
);
pub static HOST_SWAP_FREE: Family = gauge(
    Host,
    "github_runner_host_swap_free_bytes",
    &[],
    "Unused swap space.",
);
pub static HOST_BOOT_TIME: Family = gauge(
    Host,
    "github_runner_host_boot_time_seconds",
    &[],
    "Time the host booted, in seconds since the Unix epoch.",
);
pub static HOST_FS_SIZE: Family = gauge(
    Host,
    "github_runner_host_filesystem_size_bytes",
    &["mountpoint", "fstype", "device"],
    "Size of the filesystem.",
);
pub static HOST_FS_FREE: Family = gauge(
    Host,
    "github_runner_host_filesystem_free_bytes",
    &["mountpoint", "fstype", "device"],
    "Free space on the filesystem, including space reserved for root.",
);
pub static HOST_FS_AVAIL: Family = gauge(
    Host,
    "github_runner_host_filesystem_avail_bytes",
    &["mountpoint", "fstype", "device"],
    "Space available to unprivileged users on the filesystem.",
);
pub static HOST_FS_FILES: Family = gauge(
    Host,
    "github_runner_host_filesystem_files",
    &["mountpoint", "fstype", "device"],
    "Total inodes of the filesystem.",
);
pub static HOST_FS_FILES_FREE: Family = gauge(
    Host,
    "github_runner_host_filesystem_files_free",
    &["mountpoint", "fstype", "device"],
    "Free inodes of the filesystem.",
);
pub static HOST_FS_DEVICE_ERROR: Family = gauge(
    Host,
    "github_runner_host_filesystem_device_error",
    &["mountpoint", "fstype", "device"],
    "1 when statvfs failed or is still pending for this filesystem (its sizes are then absent).",
);

// ---------------------------------------------------------------- systemd

pub static SERVICE_STATE: Family = gauge(
    Systemd,
    "github_runner_service_state",
    &["runner", "unit", "state"],
    "The runner's systemd unit ActiveState, one-hot over active, reloading, inactive, failed, activating and deactivating.",
);
pub static SERVICE_INFO: Family = gauge(
    Systemd,
    "github_runner_service_info",
    &["runner", "unit", "load_state", "sub_state", "working_directory"],
    "The runner's systemd unit: load state, sub-state and WorkingDirectory (the runner root). Always 1.",
);
pub static SERVICE_RESTARTS: Family = counter(
    Systemd,
    "github_runner_service_restarts_total",
    &["runner", "unit"],
    "Automatic restarts of the runner's unit by systemd (from NRestarts; never decreases: a reset of NRestarts by reset-failed or an explicit start is not counted back).",
);
pub static SERVICE_ACTIVE_SINCE: Family = gauge(
    Systemd,
    "github_runner_service_active_since_timestamp_seconds",
    &["runner", "unit"],
    "When the runner's unit last entered the active state, in seconds since the Unix epoch (0 if never).",
);
pub static SERVICE_EXIT_STATUS: Family = gauge(
    Systemd,
    "github_runner_service_main_exit_status",
    &["runner", "unit"],
    "Exit status (or signal number) of the unit's main process when it last exited (ExecMainStatus).",
);
pub static DEPENDENCY_STATE: Family = gauge(
    Systemd,
    "github_runner_dependency_state",
    &["unit", "state"],
    "ActiveState of a unit the runners depend on ([docker] units: docker.service, containerd.service), one-hot over active, reloading, inactive, failed, activating and deactivating. Absent when the unit does not exist.",
);
pub static PROCESS_RUNNING: Family = gauge(
    Systemd,
    "github_runner_process_running",
    &["runner", "process"],
    "1 when the runner's process is running: process=\"listener\" (Runner.Listener) or \"worker\" (Runner.Worker, a job in progress).",
);
pub static PROCESS_RESIDENT: Family = gauge(
    Systemd,
    "github_runner_process_resident_memory_bytes",
    &["runner", "process"],
    "Resident memory of the runner's listener or worker process.",
);
pub static PROCESS_CPU: Family = counter(
    Systemd,
    "github_runner_process_cpu_seconds_total",
    &["runner", "process"],
    "CPU time (user and system) of the runner's listener or worker process; resets when the process restarts.",
);

// ---------------------------------------------------------------- runner files and logs

/// Job duration buckets, 10 s to 4 h.
pub const JOB_DURATION_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

pub static RUNNER_INFO: Family = gauge(
    Runner,
    "github_runner_info",
    &[
        "runner",
        "github_url",
        "pool",
        "version",
        "ephemeral",
        "role",
        "environment",
    ],
    "The runner's registration (.runner), version (from its log) and role/environment (from config). Always 1.",
);
pub static RUNNER_CONFIGURED: Family = gauge(
    Runner,
    "github_runner_configured",
    &["runner"],
    "1 when the runner root holds a .runner registration file, 0 when it is missing (unregistered, deleted or an ephemeral runner that finished).",
);
pub static RUNNER_LIFECYCLE_STATE: Family = gauge(
    Runner,
    "github_runner_lifecycle_state",
    &["runner", "state"],
    "Where the runner is in its life, one-hot: registered (waiting for a job), busy (running one), finished (an ephemeral or JIT runner that ran its one job and exited, deleting its .runner: expected, not a failure) or unregistered (.runner missing otherwise).",
);
pub static RUNNER_UPDATE_DISABLED: Family = gauge(
    Runner,
    "github_runner_update_disabled",
    &["runner"],
    "1 when the runner was configured with --disableupdate (disableUpdate in .runner): it does not update itself.",
);
pub static RUNNER_UPDATE_AVAILABLE: Family = gauge(
    Runner,
    "github_runner_update_available",
    &["runner"],
    "1 when the runner's version is older than the latest actions/runner release (github_runner_latest_version_info); absent when either is unknown.",
);
pub static RUNNER_LATEST_VERSION: Family = gauge(
    Runner,
    "github_runner_latest_version_info",
    &["version", "source"],
    "The latest actions/runner release runners are compared with: source=\"github\" (the releases API, asked at most hourly) or \"config\" ([github] runner_latest_version). Always 1.",
);
pub static RUNNER_VERSION_DEPRECATED: Family = gauge(
    Runner,
    "github_runner_version_deprecated",
    &["runner"],
    "1 when GitHub refused the runner's listener for its version (\"Runner version vX is deprecated and cannot receive messages\") and no listener has connected since.",
);
pub static RUNNER_ROOT_ACCESSIBLE: Family = gauge(
    Runner,
    "github_runner_root_accessible",
    &["runner"],
    "1 when the exporter can read the runner root and its _diag folder, 0 when it lacks permission or the root vanished.",
);
pub static RUNNER_WORK_FS_AVAIL: Family = gauge(
    Runner,
    "github_runner_work_filesystem_avail_bytes",
    &["runner"],
    "Space available to unprivileged users on the filesystem holding the runner's work folder.",
);
pub static RUNNER_WORK_FS_SIZE: Family = gauge(
    Runner,
    "github_runner_work_filesystem_size_bytes",
    &["runner"],
    "Size of the filesystem holding the runner's work folder.",
);
pub static RUNNER_WORK_FS_FILES: Family = gauge(
    Runner,
    "github_runner_work_filesystem_files",
    &["runner"],
    "Total inodes of the filesystem holding the runner's work folder (0 where the filesystem does not count them).",
);
pub static RUNNER_WORK_FS_FILES_FREE: Family = gauge(
    Runner,
    "github_runner_work_filesystem_files_free",
    &["runner"],
    "Free inodes of the filesystem holding the runner's work folder.",
);
pub static RUNNER_DOCKER_USABLE: Family = gauge(
    Runner,
    "github_runner_docker_usable",
    &["runner"],
    "For a runner that watches Docker: 1 when [docker] units are active and the runner's user can connect to the Docker socket (judged from its owner, mode, ACL and the user's groups), 0 when not; absent when Docker is not watched or cannot be judged.",
);
pub static RUNNER_DOCKER_REQUIRED: Family = gauge(
    Runner,
    "github_runner_docker_required",
    &["runner"],
    "For a runner that watches Docker: 1 when it needs Docker ([[runner]] docker = true, or it has run container jobs), so Docker unavailable fails its gate; 0 when Docker is only installed (docker.service exists).",
);
pub static RUNNER_DOCKER_FS_AVAIL: Family = gauge(
    Runner,
    "github_runner_docker_filesystem_avail_bytes",
    &["runner", "data_root"],
    "For a runner that watches Docker: space available to unprivileged users on the filesystem holding Docker's data-root (daemon.json data-root, default /var/lib/docker).",
);
pub static RUNNER_DOCKER_FS_SIZE: Family = gauge(
    Runner,
    "github_runner_docker_filesystem_size_bytes",
    &["runner", "data_root"],
    "For a runner that watches Docker: size of the filesystem holding Docker's data-root.",
);
pub static RUNNER_DOCKER_FS_FILES: Family = gauge(
    Runner,
    "github_runner_docker_filesystem_files",
    &["runner", "data_root"],
    "For a runner that watches Docker: total inodes of the filesystem holding Docker's data-root.",
);
pub static RUNNER_DOCKER_FS_FILES_FREE: Family = gauge(
    Runner,
    "github_runner_docker_filesystem_files_free",
    &["runner", "data_root"],
    "For a runner that watches Docker: free inodes of the filesystem holding Docker's data-root.",
);
pub static RUNNER_JOBS: Family = counter(
    Runner,
    "github_runner_jobs_total",
    &["runner", "result"],
    "Jobs completed while the exporter ran, by result (Succeeded, SucceededWithIssues, Failed, Canceled, Skipped, Abandoned).",
);
pub static RUNNER_JOB_DURATION: Family = Family {
    name: "github_runner_job_duration_seconds",
    help: "Duration of jobs completed while the exporter ran, from the runner's log.",
    kind: Kind::Histogram,
    labels: &["runner"],
    source: Runner,
    buckets: JOB_DURATION_BUCKETS,
};
pub static RUNNER_JOB_RUNNING: Family = gauge(
    Runner,
    "github_runner_job_running",
    &["runner"],
    "1 while the runner is running a job.",
);
pub static RUNNER_JOB_STARTED: Family = gauge(
    Runner,
    "github_runner_job_started_timestamp_seconds",
    &["runner"],
    "When the job in progress started, in seconds since the Unix epoch (absent when idle).",
);
pub static RUNNER_LAST_JOB_COMPLETED: Family = gauge(
    Runner,
    "github_runner_last_job_completed_timestamp_seconds",
    &["runner"],
    "When the runner last completed a job, in seconds since the Unix epoch (absent until one completes).",
);
pub static RUNNER_CURRENT_JOB_INFO: Family = gauge(
    Runner,
    "github_runner_current_job_info",
    &["runner", "job"],
    "The display name of the job in progress. Always 1; absent when idle.",
);
pub static RUNNER_LISTENER_CONNECTED: Family = gauge(
    Runner,
    "github_runner_listener_connected",
    &["runner"],
    "1 when the runner's log last said it is listening for jobs or reconnected, 0 after a connect error or listener exit.",
);
pub static RUNNER_LOG_EVENTS: Family = counter(
    Runner,
    "github_runner_log_events_total",
    &["runner", "event"],
    "Known events in the runner's log while the exporter ran: connect_error, reconnected, session_conflict, registration_deleted, auth_failed, update_started, update_failed, clock_skew, listener_exited, version_deprecated (GitHub refused the listener's version), docker_failed (a job's docker command failed, from the Worker log).",
);
pub static RUNNER_LOG_LAST_ENTRY: Family = gauge(
    Runner,
    "github_runner_log_last_entry_timestamp_seconds",
    &["runner"],
    "Timestamp written on the newest entry of the runner's _diag log, in seconds since the Unix epoch.",
);

// ---------------------------------------------------------------- github

pub static GITHUB_REGISTERED: Family = gauge(
    Github,
    "github_runner_registered",
    &["runner"],
    "1 when GitHub knows the runner, 0 when the API answered 404 for its id.",
);
pub static GITHUB_ONLINE: Family = gauge(
    Github,
    "github_runner_github_online",
    &["runner"],
    "1 when GitHub reports the runner online.",
);
pub static GITHUB_BUSY: Family = gauge(
    Github,
    "github_runner_github_busy",
    &["runner"],
    "1 when GitHub reports the runner busy with a job.",
);
pub static GITHUB_LABEL_INFO: Family = gauge(
    Github,
    "github_runner_github_label_info",
    &["runner", "label"],
    "A label of the runner as GitHub reports it. Always 1.",
);
pub static GITHUB_INFO: Family = gauge(
    Github,
    "github_runner_github_info",
    &["runner", "id", "os", "ephemeral", "owner"],
    "A runner as GitHub lists it (fleet scope, and self scope once found), with the owner it is registered with (owner/repo, org or enterprises/slug). Always 1.",
);
pub static GITHUB_API_REQUESTS: Family = counter(
    Github,
    "github_runner_github_api_requests_total",
    &["code"],
    "Requests made to the GitHub API by HTTP status code (\"error\" when no response arrived).",
);
pub static GITHUB_API_ERRORS: Family = counter(
    Github,
    "github_runner_github_api_errors_total",
    &["reason"],
    "Failed GitHub API polls by reason, each failing owner counted once: auth, forbidden, rate_limited, not_found, server_error, timeout, connect, proxy (proxy unreachable or refusing the tunnel), proxy_auth (407), tls (certificate not trusted), malformed, other (another unexpected status).",
);
pub static GITHUB_OWNER_SUCCESS: Family = gauge(
    Github,
    "github_runner_github_owner_success",
    &["owner"],
    "1 when the last poll got every answer about this owner (owner/repo, org or enterprises/slug), 0 when it failed; the other owners are polled and reported regardless.",
);
pub static GITHUB_OWNER_LAST_SUCCESS: Family = gauge(
    Github,
    "github_runner_github_owner_last_success_timestamp_seconds",
    &["owner"],
    "When a poll last got every answer about this owner, in seconds since the Unix epoch.",
);
pub static GITHUB_OWNER_ERRORS: Family = counter(
    Github,
    "github_runner_github_owner_errors_total",
    &["owner", "reason"],
    "Failed polls of one owner by reason (the reasons of github_runner_github_api_errors_total).",
);
pub static GITHUB_OWNER_UNREADABLE: Family = gauge(
    Github,
    "github_runner_github_owner_runners_unreadable",
    &["owner"],
    "Runner objects in the owner's last answer that could not be read (not the documented shape) and were left out; the others are reported.",
);
pub static GITHUB_RATE_REMAINING: Family = gauge(
    Github,
    "github_runner_github_api_rate_limit_remaining",
    &[],
    "Requests left in the current rate-limit window (x-ratelimit-remaining).",
);
pub static GITHUB_RATE_LIMIT: Family = gauge(
    Github,
    "github_runner_github_api_rate_limit_limit",
    &[],
    "Requests allowed per rate-limit window (x-ratelimit-limit).",
);
pub static GITHUB_RATE_RESET: Family = gauge(
    Github,
    "github_runner_github_api_rate_limit_reset_timestamp_seconds",
    &[],
    "When the rate-limit window resets, in seconds since the Unix epoch (x-ratelimit-reset).",
);
pub static GITHUB_LAST_SUCCESS: Family = gauge(
    Github,
    "github_runner_github_last_success_timestamp_seconds",
    &[],
    "When a poll of the GitHub API last succeeded, in seconds since the Unix epoch.",
);
pub static GITHUB_BACKOFF: Family = gauge(
    Github,
    "github_runner_github_api_backoff_seconds",
    &[],
    "Delay before the next GitHub API poll beyond the poll interval, because of errors or a low rate limit (0 when polling normally).",
);
pub static HOST_CLOCK_OFFSET: Family = gauge(
    Github,
    "github_runner_host_clock_offset_seconds",
    &[],
    "The host clock minus GitHub's (the Date header of the API's answers), in seconds: positive when the host is ahead. Measured on the requests the exporter makes anyway; absent until GitHub answered.",
);

// ---------------------------------------------------------------- queue and deploy workflows

/// Queue time buckets, 5 s to 6 h.
pub const QUEUE_TIME_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

pub static QUEUE_JOBS: Family = gauge(
    Queue,
    "github_runner_queue_jobs",
    &["labels"],
    "Jobs queued for a runner in the watched repositories, by requested label set (lowercase labels, sorted, joined by commas; sets beyond [github.queue] max_label_sets are summed under labels=\"(other)\"). 0 for a set only in-progress jobs requested.",
);
pub static QUEUE_OLDEST_AGE: Family = gauge(
    Queue,
    "github_runner_queue_oldest_age_seconds",
    &["labels"],
    "How long the oldest queued job of the label set has waited for a runner (GitHub's created_at to GitHub's clock at the last poll, plus the time since). Absent when none is queued.",
);
pub static QUEUE_TIME: Family = Family {
    name: "github_runner_queue_time_seconds",
    help: "Queue time (started_at - created_at) of jobs picked up by a runner while the exporter ran; jobs whose started_at equals created_at are not observed here but in github_runner_queue_time_unmeasured_total.",
    kind: Kind::Histogram,
    labels: &[],
    source: Queue,
    buckets: QUEUE_TIME_BUCKETS,
};
pub static QUEUE_TIME_UNMEASURED: Family = counter(
    Queue,
    "github_runner_queue_time_unmeasured_total",
    &[],
    "Jobs picked up by a runner while the exporter ran whose started_at is not after created_at, so their queue time is unknown (GitHub may not rewrite started_at; a pickup within the same second looks the same).",
);
pub static QUEUE_RUNS: Family = gauge(
    Queue,
    "github_runner_queue_runs",
    &["status"],
    "Workflow runs of the watched repositories that are queued or in progress (status=\"queued\", \"in_progress\").",
);
pub static LABELSET_RUNNERS: Family = gauge(
    Queue,
    "github_runner_labelset_runners",
    &["labels", "state"],
    "Runners carrying every label of a requested label set (case-insensitively; more labels are fine): state=\"online\", or \"idle\" (online and not busy). From the registration data the github collector polls: in self scope only the local runners are known.",
);
pub static QUEUE_API_REQUESTS: Family = counter(
    Queue,
    "github_runner_queue_api_requests_total",
    &["code"],
    "Requests the queue collector made to the GitHub API by HTTP status code (\"error\" when no response arrived).",
);
pub static QUEUE_API_CHARGED: Family = counter(
    Queue,
    "github_runner_queue_api_charged_requests_total",
    &[],
    "Requests of the queue collector that GitHub charged to the rate limit (every answer but 304 Not Modified).",
);
pub static QUEUE_API_ERRORS: Family = counter(
    Queue,
    "github_runner_queue_api_errors_total",
    &["reason"],
    "Failed queue polls and unreadable repositories by reason: auth, forbidden, rate_limited, not_found, server_error, timeout, connect, malformed, other.",
);
pub static QUEUE_API_BUDGET: Family = gauge(
    Queue,
    "github_runner_queue_api_budget_requests_per_hour",
    &[],
    "Requests per hour the queue collector may have charged: [github.queue] budget_share of the token's hourly limit.",
);
pub static QUEUE_POLL_INTERVAL: Family = gauge(
    Queue,
    "github_runner_queue_poll_interval_seconds",
    &[],
    "Delay before the next queue poll: [github.queue] poll_interval, stretched to stay within the budget, by rate limits and by errors.",
);
pub static WORKFLOW_JOBS: Family = counter(
    Queue,
    "github_runner_workflow_jobs_total",
    &["workflow", "result"],
    "Jobs of the [jobs] workflows (by workflow file name, over the watched repositories) whose runs completed while the exporter ran, by conclusion: success, failure, cancelled, skipped, timed_out, neutral, action_required, other.",
);
pub static WORKFLOW_JOB_DURATION: Family = Family {
    name: "github_runner_workflow_job_duration_seconds",
    help: "Duration (completed_at - started_at) of the [jobs] workflows' jobs counted in github_runner_workflow_jobs_total.",
    kind: Kind::Histogram,
    labels: &["workflow"],
    source: Queue,
    buckets: JOB_DURATION_BUCKETS,
};

// ---------------------------------------------------------------- exporter self-metrics

pub static RUNNER_HEALTHY: Family = gauge(
    Health,
    "github_runner_healthy",
    &["runner"],
    "1 when the runner can take a deploy: every critical check of /health passes. 0 when one fails, or cannot be evaluated (a collector down, no data) unless [health] unknown is \"warn\".",
);
pub static EXPORTER_BUILD_INFO: Family = gauge(
    Exporter,
    "github_runner_exporter_build_info",
    &["version", "revision", "rustc_version"],
    "Version, git revision and rustc version of the running exporter. Always 1.",
);
pub static EXPORTER_COLLECTOR_ENABLED: Family = gauge(
    Exporter,
    "github_runner_exporter_collector_enabled",
    &["collector"],
    "1 when the collector is enabled in the configuration.",
);
pub static EXPORTER_COLLECTOR_SUCCESS: Family = gauge(
    Exporter,
    "github_runner_exporter_collector_success",
    &["collector"],
    "1 when the collector's last run succeeded, 0 when it failed, timed out or panicked, or has not finished its first run.",
);
pub static EXPORTER_COLLECTOR_DURATION: Family = gauge(
    Exporter,
    "github_runner_exporter_collector_duration_seconds",
    &["collector"],
    "Wall-clock duration of the collector's last run.",
);
pub static EXPORTER_COLLECTOR_LAST_SUCCESS: Family = gauge(
    Exporter,
    "github_runner_exporter_collector_last_success_timestamp_seconds",
    &["collector"],
    "When the collector last succeeded, in seconds since the Unix epoch (0 if never).",
);
pub static EXPORTER_COLLECTOR_ERRORS: Family = counter(
    Exporter,
    "github_runner_exporter_collector_errors_total",
    &["collector"],
    "Failed runs of the collector (errors, timeouts and panics).",
);
pub static EXPORTER_COLLECTOR_TARGETS: Family = gauge(
    Exporter,
    "github_runner_exporter_collector_targets",
    &["collector"],
    "What the collector watches: filesystems (host), runner units (systemd), runner roots (runner), runners (github), repositories (queue). 0 means it found nothing to watch.",
);
pub static EXPORTER_LOG_BYTES: Family = counter(
    Exporter,
    "github_runner_exporter_log_bytes_read_total",
    &["runner"],
    "Bytes of the runner's _diag logs read by the exporter.",
);
pub static EXPORTER_LOG_SKIPPED: Family = counter(
    Exporter,
    "github_runner_exporter_log_lines_skipped_total",
    &["runner", "reason"],
    "Log lines the exporter could not use: reason=\"too_long\", \"invalid_utf8\", \"malformed\" or \"not_regular_file\".",
);
pub static EXPORTER_RUNNER_WATCHED_ROOTS: Family = gauge(
    Exporter,
    "github_runner_exporter_runner_watched_roots",
    &[],
    "Runner roots watched with inotify, read as soon as they change; the other roots are polled every log_poll_interval (missing, on a network or FUSE filesystem, out of inotify watches, or watch = false).",
);
pub static EXPORTER_CONFIG_RELOAD_OK: Family = gauge(
    Exporter,
    "github_runner_exporter_config_last_reload_successful",
    &[],
    "1 when the last configuration (re)load succeeded.",
);
pub static EXPORTER_CONFIG_RELOAD_TS: Family = gauge(
    Exporter,
    "github_runner_exporter_config_last_reload_success_timestamp_seconds",
    &[],
    "When the configuration was last loaded successfully, in seconds since the Unix epoch.",
);

// ---------------------------------------------------------------- process (the exporter's own)

pub static PROCESS_CPU_SECONDS: Family = counter(
    Process,
    "process_cpu_seconds_total",
    &[],
    "Total user and system CPU time spent by the exporter, in seconds.",
);
pub static PROCESS_RESIDENT_MEMORY: Family = gauge(
    Process,
    "process_resident_memory_bytes",
    &[],
    "Resident memory size of the exporter, in bytes.",
);
pub static PROCESS_VIRTUAL_MEMORY: Family = gauge(
    Process,
    "process_virtual_memory_bytes",
    &[],
    "Virtual memory size of the exporter, in bytes.",
);
pub static PROCESS_OPEN_FDS: Family = gauge(
    Process,
    "process_open_fds",
    &[],
    "Number of open file descriptors of the exporter.",
);
pub static PROCESS_MAX_FDS: Family = gauge(
    Process,
    "process_max_fds",
    &[],
    "Maximum number of open file descriptors of the exporter.",
);
pub static PROCESS_START_TIME: Family = gauge(
    Process,
    "process_start_time_seconds",
    &[],
    "Start time of the exporter since the Unix epoch, in seconds.",
);

/// Every family, in the order they are served and documented.
pub static ALL: &[&Family] = &[
    &HOST_CPU_USAGE_RATIO,
    &HOST_CPU_SECONDS,
    &HOST_CPU_CORES,
    &HOST_LOAD1,
    &HOST_LOAD5,
    &HOST_LOAD15,
    &HOST_MEMORY_TOTAL,
    &HOST_MEMORY_AVAILABLE,
    &HOST_SWAP_TOTAL,
    &HOST_SWAP_FREE,
    &HOST_BOOT_TIME,
    &HOST_FS_SIZE,
    &HOST_FS_FREE,
    &HOST_FS_AVAIL,
    &HOST_FS_FILES,
    &HOST_FS_FILES_FREE,
    &HOST_FS_DEVICE_ERROR,
    &SERVICE_STATE,
    &SERVICE_INFO,
    &SERVICE_RESTARTS,
    &SERVICE_ACTIVE_SINCE,
    &SERVICE_EXIT_STATUS,
    &DEPENDENCY_STATE,
    &PROCESS_RUNNING,
    &PROCESS_RESIDENT,
    &PROCESS_CPU,
    &RUNNER_INFO,
    &RUNNER_CONFIGURED,
    &RUNNER_LIFECYCLE_STATE,
    &RUNNER_UPDATE_DISABLED,
    &RUNNER_UPDATE_AVAILABLE,
    &RUNNER_LATEST_VERSION,
    &RUNNER_VERSION_DEPRECATED,
    &RUNNER_ROOT_ACCESSIBLE,
    &RUNNER_WORK_FS_AVAIL,
    &RUNNER_WORK_FS_SIZE,
    &RUNNER_WORK_FS_FILES,
    &RUNNER_WORK_FS_FILES_FREE,
    &RUNNER_DOCKER_USABLE,
    &RUNNER_DOCKER_REQUIRED,
    &RUNNER_DOCKER_FS_AVAIL,
    &RUNNER_DOCKER_FS_SIZE,
    &RUNNER_DOCKER_FS_FILES,
    &RUNNER_DOCKER_FS_FILES_FREE,
    &RUNNER_JOBS,
    &RUNNER_JOB_DURATION,
    &RUNNER_JOB_RUNNING,
    &RUNNER_JOB_STARTED,
    &RUNNER_LAST_JOB_COMPLETED,
    &RUNNER_CURRENT_JOB_INFO,
    &RUNNER_LISTENER_CONNECTED,
    &RUNNER_LOG_EVENTS,
    &RUNNER_LOG_LAST_ENTRY,
    &GITHUB_REGISTERED,
    &GITHUB_ONLINE,
    &GITHUB_BUSY,
    &GITHUB_LABEL_INFO,
    &GITHUB_INFO,
    &GITHUB_API_REQUESTS,
    &GITHUB_API_ERRORS,
    &GITHUB_OWNER_SUCCESS,
    &GITHUB_OWNER_LAST_SUCCESS,
    &GITHUB_OWNER_ERRORS,
    &GITHUB_OWNER_UNREADABLE,
    &GITHUB_RATE_REMAINING,
    &GITHUB_RATE_LIMIT,
    &GITHUB_RATE_RESET,
    &GITHUB_LAST_SUCCESS,
    &GITHUB_BACKOFF,
    &RUNNER_HEALTHY,
    &QUEUE_JOBS,
    &QUEUE_OLDEST_AGE,
    &QUEUE_TIME,
    &QUEUE_TIME_UNMEASURED,
    &QUEUE_RUNS,
    &LABELSET_RUNNERS,
    &QUEUE_API_REQUESTS,
    &QUEUE_API_CHARGED,
    &QUEUE_API_ERRORS,
    &QUEUE_API_BUDGET,
    &QUEUE_POLL_INTERVAL,
    &WORKFLOW_JOBS,
    &WORKFLOW_JOB_DURATION,
    &HOST_CLOCK_OFFSET,
    &EXPORTER_BUILD_INFO,
    &EXPORTER_COLLECTOR_ENABLED,
    &EXPORTER_COLLECTOR_SUCCESS,
    &EXPORTER_COLLECTOR_DURATION,
    &EXPORTER_COLLECTOR_LAST_SUCCESS,
    &EXPORTER_COLLECTOR_ERRORS,
    &EXPORTER_COLLECTOR_TARGETS,
    &EXPORTER_LOG_BYTES,
    &EXPORTER_LOG_SKIPPED,
    &EXPORTER_RUNNER_WATCHED_ROOTS,
    &EXPORTER_CONFIG_RELOAD_OK,
    &EXPORTER_CONFIG_RELOAD_TS,
    &PROCESS_CPU_SECONDS,
    &PROCESS_RESIDENT_MEMORY,
    &PROCESS_VIRTUAL_MEMORY,
    &PROCESS_OPEN_FDS,
    &PROCESS_MAX_FDS,
    &PROCESS_START_TIME,
];

/// Looks a family up by name.
pub fn by_name(name: &str) -> Option<&'static Family> {
    ALL.iter().copied().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_static_family_is_listed_once() {
        let source = include_str!("catalog.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub static "))
            .filter_map(|l| l.split(':').next())
            .filter(|id| *id != "ALL")
            .collect();
        let listed: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix('&'))
            .filter_map(|l| l.strip_suffix(','))
            .collect();
        for id in &declared {
            assert!(listed.contains(id), "{id} is declared but not in ALL");
        }
        assert_eq!(declared.len(), ALL.len(), "ALL lists something twice");
        let names: HashSet<&str> = ALL.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), ALL.len(), "two families share a name");
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for f in ALL {
            let ok_prefix = match f.source {
                Source::Process => f.name.starts_with("process_"),
                _ => f.name.starts_with("github_runner_"),
            };
            assert!(ok_prefix, "{} has the wrong prefix", f.name);
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is not snake_case",
                f.name
            );
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}: counters, and only counters, end in _total",
                f.name
            );
            assert_eq!(f.kind == Kind::Histogram, !f.buckets.is_empty());
            assert!(!f.help.is_empty() && !f.help.contains('\n'));
            for l in f.labels {
                assert!(*l != "le" && *l != "quantile", "{}: reserved label", f.name);
            }
        }
        assert!(JOB_DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(QUEUE_TIME_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
