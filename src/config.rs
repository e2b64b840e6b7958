//! The TOML configuration: schema, defaults and validation.
//!
//! Every key has a default, so an empty file (or none) is a valid config.
//! Unknown keys and invalid values are errors that name the key, the line
//! and the column. `packaging/config.toml` documents every key; a test keeps
//! it in step with the defaults here.

use crate::duration::Dur;
use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where runbook links point unless `[health] runbook_base_url` says
/// otherwise: the repository's `docs/runbooks/`.
pub const DEFAULT_RUNBOOK_BASE: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/runbooks");

/// Where packages install the config, and where `serve` looks by default.
pub const DEFAULT_PATH: &str = "/etc/runner-health-exporter/config.toml";

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub host: HostConfig,
    pub systemd: SystemdConfig,
    pub runner_files: RunnerFilesConfig,
    pub docker: DockerConfig,
    #[serde(rename = "runner", skip_serializing_if = "Vec::is_empty")]
    pub runners: Vec<RunnerConfig>,
    pub github: GithubConfig,
    pub jobs: JobsConfig,
    pub health: HealthConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    pub enabled: bool,
    pub sample_interval: Dur,
    /// Filesystem types never reported (pseudo and virtual filesystems).
    pub fs_types_exclude: Vec<String>,
    /// Mount points never reported: each entry excludes itself and
    /// everything below it.
    pub mount_points_exclude: Vec<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            sample_interval: Dur::secs(15),
            fs_types_exclude: [
                "autofs",
                "binfmt_misc",
                "bpf",
                "cgroup",
                "cgroup2",
                "configfs",
                "debugfs",
                "devpts",
                "devtmpfs",
                "efivarfs",
                "fuse.gvfsd-fuse",
                "fuse.lxcfs",
                "fuse.portal",
                "fusectl",
                "hugetlbfs",
                "iso9660",
                "mqueue",
                "nsfs",
                "overlay",
                "proc",
                "procfs",
                "pstore",
                "ramfs",
                "rpc_pipefs",
                "securityfs",
                "selinuxfs",
                "squashfs",
                "sysfs",
                "tracefs",
            ]
            .map(String::from)
            .to_vec(),
            mount_points_exclude: [
                "/dev",
                "/proc",
                "/sys",
                "/run/credentials",
                "/run/user",
                "/var/lib/docker",
                "/var/lib/containers",
                "/var/lib/kubelet",
                "/snap",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl HostConfig {
    /// Whether a filesystem is reported at all.
    pub fn includes(&self, mountpoint: &str, fstype: &str) -> bool {
        if self.fs_types_exclude.iter().any(|t| t == fstype) {
            return false;
        }
        !self.mount_points_exclude.iter().any(|ex| {
            let ex = ex.trim_end_matches('/');
            mountpoint == ex
                || (mountpoint.starts_with(ex)
                    && mountpoint.as_bytes().get(ex.len()) == Some(&b'/'))
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SystemdConfig {
    pub enabled: bool,
    /// Full re-read of every runner unit, in case a signal was lost.
    pub resync_interval: Dur,
    /// Unit name patterns (systemd globs) that identify runner units.
    pub unit_patterns: Vec<String>,
    /// Timeout of each D-Bus call.
    pub call_timeout: Dur,
    /// How long the last unit states are held while systemd reloads or
    /// re-executes itself (or answers no calls for a moment) before the
    /// collector counts as failed.
    pub reexec_grace: Dur,
}

impl Default for SystemdConfig {
    fn default() -> Self {
        SystemdConfig {
            enabled: true,
            resync_interval: Dur::secs(30),
            unit_patterns: vec!["actions.runner.*.service".to_string()],
            call_timeout: Dur::secs(2),
            reexec_grace: Dur::secs(5),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunnerFilesConfig {
    pub enabled: bool,
    /// Glob patterns searched for runner roots (directories holding `.runner`
    /// or `_diag`), besides unit WorkingDirectory and `[[runner]] root`.
    pub root_patterns: Vec<String>,
    /// Watch runner roots with inotify and read them when they change;
    /// false polls every root every `log_poll_interval`.
    pub watch: bool,
    /// How often a root that is not watched (or cannot be) is checked for
    /// new log bytes.
    pub log_poll_interval: Dur,
    /// How often runner roots are searched again, `.service` re-read and
    /// the work folder's filesystem sampled (`.runner` is re-read on the
    /// first poll after it changes).
    pub rescan_interval: Dur,
    /// Longest log line kept; longer lines are skipped and counted.
    pub max_line_bytes: usize,
}

impl Default for RunnerFilesConfig {
    fn default() -> Self {
        RunnerFilesConfig {
            enabled: true,
            root_patterns: [
                "/home/*/actions-runner*",
                "/opt/actions-runner*",
                "/srv/actions-runner*",
                "/actions-runner*",
            ]
            .map(String::from)
            .to_vec(),
            watch: true,
            log_poll_interval: Dur::secs(1),
            rescan_interval: Dur::secs(30),
            max_line_bytes: 1024 * 1024,
        }
    }
}

/// Docker as container jobs use it: the units it runs as, its socket and
/// its daemon configuration. Which runners it is watched for is
/// `[[runner]] docker`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// The Docker socket whose permissions decide whether the runner's user
    /// can use Docker (never connected to).
    pub socket: PathBuf,
    /// Units reported by the systemd collector as
    /// `github_runner_dependency_state` and checked for runners that watch
    /// Docker. A `docker.service` that exists makes `docker = "auto"`
    /// watch Docker.
    pub units: Vec<String>,
    /// Docker's daemon configuration, for its `data-root`.
    pub daemon_config: PathBuf,
}

/// The unit whose existence makes `docker = "auto"` watch Docker.
pub const DOCKER_UNIT: &str = "docker.service";

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            socket: PathBuf::from("/var/run/docker.sock"),
            units: vec![DOCKER_UNIT.to_string(), "containerd.service".to_string()],
            daemon_config: PathBuf::from("/etc/docker/daemon.json"),
        }
    }
}

/// `[[runner]] docker`: whether Docker is watched for the runner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DockerMode {
    /// Watched when the runner has run container jobs (a Worker log shows
    /// it) or `docker.service` exists.
    #[default]
    Auto,
    /// Always watched: the runner needs Docker.
    On,
    /// Never watched.
    Off,
}

impl DockerMode {
    pub fn is_auto(&self) -> bool {
        *self == DockerMode::Auto
    }
}

impl Serialize for DockerMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DockerMode::Auto => s.serialize_str("auto"),
            DockerMode::On => s.serialize_bool(true),
            DockerMode::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for DockerMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DockerMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\", true or false")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<DockerMode, E> {
                Ok(if v { DockerMode::On } else { DockerMode::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DockerMode, E> {
                match v {
                    "auto" => Ok(DockerMode::Auto),
                    _ => Err(E::custom(format!(
                        "invalid value {v:?}: expected \"auto\", true or false"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One runner named explicitly. Either `root` or `unit` (or both) identify
/// it; `role` and `environment` become labels of `github_runner_info`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Whether Docker is watched for this runner (`"auto"`, true, false).
    #[serde(default, skip_serializing_if = "DockerMode::is_auto")]
    pub docker: DockerMode,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Off,
    #[serde(rename = "self")]
    SelfScope,
    Fleet,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Off => "off",
            Scope::SelfScope => "self",
            Scope::Fleet => "fleet",
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// `off`, `self` (the local runners) or `fleet` (every runner of the
    /// listed repositories, organizations and enterprises). Unset: `self`
    /// when credentials are configured, else `off`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// API base URL; unset derives it from each runner's gitHubUrl.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// File holding a token (fine-grained or classic PAT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    pub poll_interval: Dur,
    /// Share of the rate limit kept in reserve: below it, polls slow down
    /// until the window resets.
    pub rate_limit_reserve: Ratio,
    pub connect_timeout: Dur,
    pub request_timeout: Dur,
    /// Fleet scope: `owner/repo` entries.
    pub repositories: Vec<String>,
    /// Fleet scope: organization logins.
    pub organizations: Vec<String>,
    /// Fleet scope: enterprise slugs.
    pub enterprises: Vec<String>,
    /// Proxy for every request to GitHub, `http://[user:password@]host:port`.
    /// Unset: `$https_proxy`/`$HTTPS_PROXY` (`$http_proxy` for an http://
    /// API URL), then `$all_proxy`/`$ALL_PROXY`, as the runner reads them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::net::ProxyUrl>,
    /// Hosts reached without the proxy. Unset: `$no_proxy`/`$NO_PROXY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<Vec<String>>,
    /// PEM bundle of CA certificates trusted besides the system store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<GithubAppConfig>,
    /// The latest actions/runner version to compare runners with: a
    /// version (`2.330.0`) where GitHub's releases API is not reachable
    /// (GitHub Enterprise Server, no egress), or `off`. Unset: asked from
    /// GitHub at most hourly while the GitHub collector runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_latest_version: Option<String>,
    /// `[github.queue]`: jobs waiting for a runner.
    pub queue: QueueConfig,
}

/// `[github] runner_latest_version`, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LatestVersionSetting {
    /// Unset: ask GitHub's releases API.
    Ask,
    /// `off`: no comparison.
    Off,
    /// A fixed version (`v` prefix removed).
    Fixed(String),
}

impl GithubConfig {
    pub fn latest_version(&self) -> LatestVersionSetting {
        match self.runner_latest_version.as_deref().map(str::trim) {
            None => LatestVersionSetting::Ask,
            Some("off") => LatestVersionSetting::Off,
            Some(v) => match crate::version::Version::parse(v) {
                Some(v) => LatestVersionSetting::Fixed(v.to_string()),
                // Rejected when the config is read.
                None => LatestVersionSetting::Off,
            },
        }
    }
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            scope: None,
            api_url: None,
            token_file: None,
            poll_interval: Dur::secs(60),
            rate_limit_reserve: Ratio(0.1),
            connect_timeout: Dur::secs(5),
            request_timeout: Dur::secs(10),
            repositories: Vec::new(),
            organizations: Vec::new(),
            enterprises: Vec::new(),
            proxy: None,
            no_proxy: None,
            ca_file: None,
            app: None,
            runner_latest_version: None,
            queue: QueueConfig::default(),
        }
    }
}

/// Most label sets exported by name; the rest are summed under
/// `labels="(other)"`.
pub const MAX_LABEL_SETS_LIMIT: usize = 200;
/// Most workflows in `[jobs] workflows`.
pub const MAX_WORKFLOWS: usize = 20;

/// `[github.queue]`: where and how often to look for jobs waiting for a
/// runner.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `owner/repo` entries whose queued and in-progress workflow runs are
    /// watched. Unset: in `self` scope the repositories of the local
    /// runners, otherwise none. `[]` turns the queue off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
    /// Share of the token's hourly rate limit the queue may spend.
    pub budget_share: Ratio,
    /// Shortest time between two polls; the budget may stretch it.
    pub poll_interval: Dur,
    /// Label sets exported by name at most; the others are summed under
    /// `labels="(other)"`.
    pub max_label_sets: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            repositories: None,
            budget_share: Ratio(0.2),
            poll_interval: Dur::secs(60),
            max_label_sets: 20,
        }
    }
}

/// `[jobs]`: the workflows whose job results and durations are counted
/// (deploy SLOs).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Workflow file names (`deploy.yml`; `.github/workflows/deploy.yml`
    /// is accepted), at most [`MAX_WORKFLOWS`].
    pub workflows: Vec<String>,
}

impl JobsConfig {
    /// The workflow file names, without a `.github/workflows/` prefix,
    /// deduplicated, in the order given.
    pub fn workflow_files(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in &self.workflows {
            let f = workflow_file(w).to_string();
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }
}

/// The file name of a workflow path: `.github/workflows/deploy.yml@main`
/// and `deploy.yml` both give `deploy.yml`.
pub fn workflow_file(path: &str) -> &str {
    let path = path.split('@').next().unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GithubAppConfig {
    pub app_id: u64,
    pub private_key_file: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// A job running longer than this is stuck.
    pub max_job_duration: Dur,
    /// Work filesystem: fail below this share of free space.
    pub disk_free_fail_ratio: Ratio,
    /// Work filesystem: warn below this share of free space.
    pub disk_free_warn_ratio: Ratio,
    /// Warn when available memory falls below this share of the total.
    pub memory_available_warn_ratio: Ratio,
    /// Warn when CPU usage stays above this share.
    pub cpu_usage_warn_ratio: Ratio,
    /// Restarts within `crashloop_window` that make a unit crash-looping.
    pub crashloop_restarts: u32,
    pub crashloop_window: Dur,
    /// A crash-looping unit counts as recovered once it has stayed active
    /// this long since its last (re)start.
    pub crashloop_clear_after: Dur,
    /// A collector silent for this many of its intervals makes its checks
    /// unknown.
    pub stale_intervals: u32,
    /// What a critical check that cannot be evaluated (a collector down,
    /// no data) does to the gate: `fail` (503, `check` exits 2) or `warn`
    /// (passes with a warning; unsafe: an unwatched runner passes).
    pub unknown: UnknownPolicy,
    /// Alert when fewer than this share of jobs succeed over an hour...
    pub job_success_ratio_min: Ratio,
    /// ...and at least this many jobs ran.
    pub job_success_min_jobs: u32,
    /// Alert when the 95th percentile job duration exceeds this.
    pub job_duration_p95_max: Dur,
    /// Alert when the work filesystem will be full within this horizon.
    pub disk_fill_horizon: Dur,
    /// A job waiting longer than this for a runner is reported by `check`
    /// and `/health` (the `queue` section) and alerted on.
    pub max_queue_wait: Dur,
    /// Deploy SLO over `deploy_slo_window`: alert when fewer than this
    /// share of the `[jobs] workflows` jobs succeed...
    pub deploy_success_ratio_min: Ratio,
    /// ...and at least this many of them ran.
    pub deploy_min_jobs: u32,
    /// Deploy SLO: alert when their 95th percentile duration exceeds this.
    pub deploy_duration_p95_max: Dur,
    /// The window of the deploy SLO rules.
    pub deploy_slo_window: Dur,
    /// Warn (and alert) when the host clock differs from GitHub's by more
    /// than this. The runner's own tokens fail at five minutes.
    pub max_clock_offset: Dur,
    /// Where runbook links of checks and alerts point (a page per failure
    /// mode, `<base>/<mode>.md`).
    pub runbook_base_url: String,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            max_job_duration: Dur::secs(6 * 3600),
            disk_free_fail_ratio: Ratio(0.05),
            disk_free_warn_ratio: Ratio(0.10),
            memory_available_warn_ratio: Ratio(0.10),
            cpu_usage_warn_ratio: Ratio(0.95),
            crashloop_restarts: 3,
            crashloop_window: Dur::secs(15 * 60),
            crashloop_clear_after: Dur::secs(60),
            stale_intervals: 3,
            unknown: UnknownPolicy::Fail,
            job_success_ratio_min: Ratio(0.95),
            job_success_min_jobs: 5,
            job_duration_p95_max: Dur::secs(600),
            disk_fill_horizon: Dur::secs(4 * 3600),
            max_queue_wait: Dur::secs(5 * 60),
            deploy_success_ratio_min: Ratio(0.95),
            deploy_min_jobs: 3,
            deploy_duration_p95_max: Dur::secs(600),
            deploy_slo_window: Dur::secs(86_400),
            max_clock_offset: Dur::secs(60),
            runbook_base_url: DEFAULT_RUNBOOK_BASE.to_string(),
        }
    }
}

/// `[health] unknown`: whether a critical check that cannot be evaluated
/// fails the gate.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    Fail,
    Warn,
}

/// A share between 0 and 1 inclusive.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, PartialOrd)]
#[serde(transparent)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "invalid ratio {v}: must be between 0 and 1 (0.1 means 10%)"
            )));
        }
        Ok(Ratio(v))
    }
}

/// A config error that points at the offending key.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// Parses a config document. `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, &e, ""))?;
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        toml_error(text, file, e.inner(), &key)
    })?;
    config.validate().map_err(|(key, message)| ConfigError {
        file: file.to_string(),
        line: find_key_line(text, &key),
        column: 1,
        key,
        message,
    })?;
    Ok(config)
}

fn toml_error(text: &str, file: &str, e: &toml::de::Error, key: &str) -> ConfigError {
    let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
    ConfigError {
        file: file.to_string(),
        key: key.to_string(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

/// Best effort: the line where the last component of a dotted key is set.
fn find_key_line(text: &str, key: &str) -> usize {
    let Some(last) = key.rsplit('.').next().filter(|k| !k.is_empty()) else {
        return 0;
    };
    let section = key.rsplit_once('.').map(|(s, _)| s);
    let mut in_section = section.is_none();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim();
            in_section = section.is_some_and(|s| s == name || s.starts_with(&format!("{name}.")));
            continue;
        }
        if in_section && t.split('=').next().map(str::trim) == Some(last) {
            return i + 1;
        }
    }
    0
}

impl Config {
    /// Checks that relate several keys; returns the key at fault.
    fn validate(&self) -> Result<(), (String, String)> {
        let h = &self.health;
        if h.disk_free_fail_ratio.0 > h.disk_free_warn_ratio.0 {
            return Err((
                "health.disk_free_fail_ratio".into(),
                format!(
                    "must not exceed health.disk_free_warn_ratio ({} > {})",
                    h.disk_free_fail_ratio.0, h.disk_free_warn_ratio.0
                ),
            ));
        }
        if h.stale_intervals == 0 {
            return Err(("health.stale_intervals".into(), "must be at least 1".into()));
        }
        for p in &self.systemd.unit_patterns {
            if let Err(e) = glob::Pattern::new(p) {
                return Err((
                    "systemd.unit_patterns".into(),
                    format!("{p:?} is not a valid pattern: {e}"),
                ));
            }
        }
        for p in &self.runner_files.root_patterns {
            if !p.starts_with('/') {
                return Err((
                    "runner_files.root_patterns".into(),
                    format!("{p:?} must be an absolute path"),
                ));
            }
            if let Err(e) = glob::Pattern::new(p) {
                return Err((
                    "runner_files.root_patterns".into(),
                    format!("{p:?} is not a valid pattern: {e}"),
                ));
            }
        }
        if !self.docker.socket.is_absolute() {
            return Err((
                "docker.socket".into(),
                format!(
                    "must be an absolute path, got {}",
                    self.docker.socket.display()
                ),
            ));
        }
        if !self.docker.daemon_config.is_absolute() {
            return Err((
                "docker.daemon_config".into(),
                format!(
                    "must be an absolute path, got {}",
                    self.docker.daemon_config.display()
                ),
            ));
        }
        if self.runner_files.max_line_bytes < 1024 {
            return Err((
                "runner_files.max_line_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        for (i, r) in self.runners.iter().enumerate() {
            if r.root.is_none() && r.unit.is_none() {
                return Err((
                    format!("runner[{i}]"),
                    "each [[runner]] needs `root` or `unit`".into(),
                ));
            }
            if let Some(root) = &r.root {
                if !root.is_absolute() {
                    return Err((
                        format!("runner[{i}].root"),
                        format!("must be an absolute path, got {}", root.display()),
                    ));
                }
            }
        }
        let g = &self.github;
        if let Some(url) = &g.api_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err((
                    "github.api_url".into(),
                    format!("must start with https:// or http://, got {url:?}"),
                ));
            }
        }
        if g.scope == Some(Scope::Fleet)
            && g.repositories.is_empty()
            && g.organizations.is_empty()
            && g.enterprises.is_empty()
        {
            return Err((
                "github.scope".into(),
                "fleet scope needs at least one of github.repositories, github.organizations or github.enterprises".into(),
            ));
        }
        if let Some(v) = &g.runner_latest_version {
            if v.trim() != "off" && crate::version::Version::parse(v).is_none() {
                return Err((
                    "github.runner_latest_version".into(),
                    format!("{v:?} is not a version like \"2.330.0\" or \"off\""),
                ));
            }
        }
        if let Some(list) = &g.no_proxy {
            if let Err(e) = crate::net::NoProxy::parse(list) {
                return Err(("github.no_proxy".into(), e));
            }
        }
        if let Some(f) = &g.ca_file {
            if !f.is_absolute() {
                return Err((
                    "github.ca_file".into(),
                    format!("must be an absolute path, got {}", f.display()),
                ));
            }
        }
        for r in &g.repositories {
            if !is_owner_repo(r) {
                return Err((
                    "github.repositories".into(),
                    format!("{r:?} is not of the form owner/repo"),
                ));
            }
        }
        let q = &g.queue;
        for r in q.repositories.iter().flatten() {
            if !is_owner_repo(r) {
                return Err((
                    "github.queue.repositories".into(),
                    format!("{r:?} is not of the form owner/repo"),
                ));
            }
        }
        if q.budget_share.0 <= 0.0 {
            return Err((
                "github.queue.budget_share".into(),
                "must be above 0 (set github.queue.repositories = [] to turn the queue off)".into(),
            ));
        }
        if !(1..=MAX_LABEL_SETS_LIMIT).contains(&q.max_label_sets) {
            return Err((
                "github.queue.max_label_sets".into(),
                format!(
                    "must be between 1 and {MAX_LABEL_SETS_LIMIT}, got {}",
                    q.max_label_sets
                ),
            ));
        }
        let w = &self.jobs.workflows;
        if w.len() > MAX_WORKFLOWS {
            return Err((
                "jobs.workflows".into(),
                format!("at most {MAX_WORKFLOWS} workflows, got {}", w.len()),
            ));
        }
        for f in w {
            let name = workflow_file(f);
            let ok = (name.ends_with(".yml") || name.ends_with(".yaml"))
                && name.len() > 4
                && (f == name || f.starts_with(".github/workflows/"))
                && !f.contains('@')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err((
                    "jobs.workflows".into(),
                    format!(
                        "{f:?} is not a workflow file name like \"deploy.yml\" (or \".github/workflows/deploy.yml\")"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The effective config as TOML, as `config check` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

/// `owner/repo`, both parts non-empty.
fn is_owner_repo(r: &str) -> bool {
    r.split_once('/')
        .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
}

/// How the config file was named on the command line.
pub enum Source<'a> {
    /// The default path: a missing file means defaults.
    Default(&'a Path),
    /// Named explicitly: a missing file is an error.
    Explicit(&'a Path),
}

/// Reads and parses the config file.
pub fn load(source: Source<'_>) -> anyhow::Result<Config> {
    let (path, explicit) = match source {
        Source::Default(p) => (p, false),
        Source::Explicit(p) => (p, true),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(Config::default())
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read config file {}", path.display()))
        }
    };
    Ok(parse(&text, &path.display().to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_gives_defaults() {
        assert_eq!(parse("", "c.toml").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_names_key_line_and_column() {
        let text = "[host]\nsample_interval = \"10s\"\n  bogus = 1\n";
        let e = parse(text, "c.toml").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(e.to_string().starts_with("c.toml:3:3:"), "{e}");
    }

    #[test]
    fn invalid_duration_names_the_key() {
        let text = "[systemd]\nresync_interval = \"30 seconds\"\n";
        let e = parse(text, "c.toml").unwrap_err();
        assert_eq!(e.key, "systemd.resync_interval", "{e}");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("invalid duration"), "{e}");
    }

    #[test]
    fn invalid_ratio_and_scope_are_rejected() {
        let e = parse("[health]\ndisk_free_warn_ratio = 10\n", "c").unwrap_err();
        assert_eq!(e.key, "health.disk_free_warn_ratio");
        let e = parse("[github]\nscope = \"everything\"\n", "c").unwrap_err();
        assert_eq!(e.key, "github.scope");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn cross_key_validation_points_at_a_line() {
        let text = "[health]\ndisk_free_warn_ratio = 0.02\ndisk_free_fail_ratio = 0.05\n";
        let e = parse(text, "c").unwrap_err();
        assert_eq!(e.key, "health.disk_free_fail_ratio");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn bad_patterns_name_the_key_and_line() {
        let e = parse(
            "[systemd]\nunit_patterns = [\"actions.runner.[.service\"]\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("systemd.unit_patterns", 2),
            "{e}"
        );
        let e = parse(
            "[runner_files]\nroot_patterns = [\"actions-runner*\"]\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(e.key, "runner_files.root_patterns", "{e}");
        assert!(e.message.contains("absolute"), "{e}");
    }

    #[test]
    fn network_keys_name_their_line_and_never_echo_a_password() {
        let text = "[github]\nproxy = \"socks5://u:SENTINEL@p:1080\"\n";
        let e = parse(text, "c").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("github.proxy", 2), "{e}");
        assert!(e.message.contains("unsupported proxy scheme"), "{e}");
        assert!(!e.to_string().contains("SENTINEL"), "{e}");
        let text = "[github]\nproxy = \"http://u:SENTINEL@proxy:3128\"\nno_proxy = [\"ghes.internal\", \"10.0.0.0/8\"]\nca_file = \"/etc/ssl/ghes.pem\"\n";
        let c = parse(text, "c").unwrap();
        assert_eq!(c.github.no_proxy.as_ref().map(Vec::len), Some(2));
        let printed = c.to_toml();
        assert!(
            printed.contains("proxy = \"http://u:***@proxy:3128\""),
            "{printed}"
        );
        assert!(!printed.contains("SENTINEL"), "{printed}");
        assert!(!format!("{c:?}").contains("SENTINEL"));
        let e = parse("[github]\nno_proxy = [\"ok\", \"not a host\"]\n", "c").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("github.no_proxy", 2), "{e}");
        let e = parse("[github]\nca_file = \"ca.pem\"\n", "c").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("github.ca_file", 2), "{e}");
    }

    #[test]
    fn runner_tables_parse() {
        let text = "[[runner]]\nroot = \"/opt/actions-runner\"\nrole = \"primary\"\n\n[[runner]]\nunit = \"actions.runner.x.y.service\"\nrole = \"secondary\"\nenvironment = \"production\"\n";
        let c = parse(text, "c").unwrap();
        assert_eq!(c.runners.len(), 2);
        assert_eq!(c.runners[1].environment.as_deref(), Some("production"));
        let e = parse("[[runner]]\nrole = \"primary\"\n", "c").unwrap_err();
        assert_eq!(e.key, "runner[0]");
    }

    #[test]
    fn docker_mode_and_latest_version_parse_and_name_their_key() {
        let text = "[[runner]]\nroot = \"/a\"\ndocker = true\n[[runner]]\nroot = \"/b\"\ndocker = \"auto\"\n[[runner]]\nroot = \"/c\"\ndocker = false\n[[runner]]\nroot = \"/d\"\n";
        let c = parse(text, "c").unwrap();
        let modes: Vec<DockerMode> = c.runners.iter().map(|r| r.docker).collect();
        assert_eq!(
            modes,
            [
                DockerMode::On,
                DockerMode::Auto,
                DockerMode::Off,
                DockerMode::Auto
            ]
        );
        assert_eq!(parse(&c.to_toml(), "c").unwrap(), c, "round trip");
        let e = parse("[[runner]]\nroot = \"/a\"\ndocker = \"yes\"\n", "c").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().contains("docker"), "{e}");
        assert!(e.message.contains("\"auto\", true or false"), "{e}");

        let g = |v: &str| parse(&format!("[github]\nrunner_latest_version = {v:?}\n"), "c");
        assert_eq!(
            g("v2.330.0").unwrap().github.latest_version(),
            LatestVersionSetting::Fixed("2.330.0".into())
        );
        assert_eq!(
            g("off").unwrap().github.latest_version(),
            LatestVersionSetting::Off
        );
        assert_eq!(
            Config::default().github.latest_version(),
            LatestVersionSetting::Ask
        );
        let e = g("latest").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("github.runner_latest_version", 2),
            "{e}"
        );
        let e = parse("[docker]\nsocket = \"docker.sock\"\n", "c").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("docker.socket", 2), "{e}");
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::default();
        let text = c.to_toml();
        assert_eq!(parse(&text, "c").unwrap(), c);
    }

    #[test]
    fn queue_and_workflow_keys_are_checked_with_their_line() {
        let text = "[github]\n[github.queue]\nrepositories = [\"acme\"]\n";
        let e = parse(text, "c").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("github.queue.repositories", 3),
            "{e}"
        );
        let e = parse("[github.queue]\nbudget_share = 1.5\n", "c").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("github.queue.budget_share", 2),
            "{e}"
        );
        let e = parse("[github.queue]\nbudget_share = 0.0\n", "c").unwrap_err();
        assert_eq!(e.key, "github.queue.budget_share", "{e}");
        let e = parse("[github.queue]\nmax_label_sets = 0\n", "c").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("github.queue.max_label_sets", 2),
            "{e}"
        );
        let e = parse("[github.queue]\nbogus = 1\n", "c").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("[jobs]\nworkflows = [\"deploy\"]\n", "c").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("jobs.workflows", 2), "{e}");
        let many: Vec<String> = (0..21).map(|i| format!("\"w{i}.yml\"")).collect();
        let e = parse(&format!("[jobs]\nworkflows = [{}]\n", many.join(",")), "c").unwrap_err();
        assert!(e.message.contains("at most 20"), "{e}");
        let c = parse(
            "[jobs]\nworkflows = [\"deploy.yml\", \".github/workflows/deploy.yml\", \"release.yaml\"]\n",
            "c",
        )
        .unwrap();
        assert_eq!(c.jobs.workflow_files(), ["deploy.yml", "release.yaml"]);
        assert_eq!(
            workflow_file(".github/workflows/build.yml@main"),
            "build.yml"
        );
        let c = parse("[github.queue]\nrepositories = []\n", "c").unwrap();
        assert_eq!(c.github.queue.repositories, Some(Vec::new()));
    }

    #[test]
    fn mount_exclusions_match_whole_components() {
        let h = HostConfig::default();
        assert!(!h.includes("/proc", "ext4"));
        assert!(!h.includes("/run/user/1000", "ext4"));
        assert!(h.includes("/processing", "ext4"));
        assert!(h.includes("/", "ext4"));
        assert!(h.includes("/tmp", "tmpfs"), "tmpfs can hold a work folder");
        assert!(!h.includes("/data", "overlay"));
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../packaging/config.toml");

    /// Every key of the default config, as `section.key` paths.
    fn key_paths(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    key_paths(v, &path, out);
                } else if let Some(tables) = v
                    .as_array()
                    .filter(|a| a.iter().all(|e| e.is_table()) && !a.is_empty())
                {
                    for t in tables {
                        key_paths(t, &path, out);
                    }
                } else {
                    out.push(path);
                }
            }
        }
    }

    #[test]
    fn packaged_example_is_the_defaults() {
        let parsed = parse(EXAMPLE, "packaging/config.toml").expect("example parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn packaged_example_documents_every_key() {
        let mut config = Config::default();
        // Keys without a default value appear commented out in the example.
        config.github.scope = Some(Scope::SelfScope);
        config.github.api_url = Some("x".into());
        config.github.token_file = Some("x".into());
        config.github.proxy = Some(crate::net::ProxyUrl::parse("http://x:1").unwrap());
        config.github.no_proxy = Some(vec!["x".into()]);
        config.github.ca_file = Some("/x".into());
        config.github.app = Some(GithubAppConfig {
            app_id: 1,
            private_key_file: "x".into(),
            installation_id: Some(1),
        });
        config.github.queue.repositories = Some(vec!["x/y".into()]);
        config.github.runner_latest_version = Some("2.330.0".into());
        config.runners.push(RunnerConfig {
            root: Some("/x".into()),
            unit: Some("x".into()),
            role: Some("x".into()),
            environment: Some("x".into()),
            docker: DockerMode::On,
        });
        let value: toml::Value = toml::from_str(&config.to_toml()).unwrap();
        let mut paths = Vec::new();
        key_paths(&value, "", &mut paths);
        for path in paths {
            let key = path.rsplit('.').next().unwrap();
            let documented = EXAMPLE.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("[{path}]"))
            });
            assert!(
                documented,
                "packaging/config.toml does not document `{path}`"
            );
        }
    }
}
