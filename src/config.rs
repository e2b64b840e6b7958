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
    #[serde(rename = "runner", skip_serializing_if = "Vec::is_empty")]
    pub runners: Vec<RunnerConfig>,
    pub github: GithubConfig,
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
}

impl Default for SystemdConfig {
    fn default() -> Self {
        SystemdConfig {
            enabled: true,
            resync_interval: Dur::secs(30),
            unit_patterns: vec!["actions.runner.*.service".to_string()],
            call_timeout: Dur::secs(2),
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
        }
    }
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
    /// A collector silent for this many of its intervals makes its checks
    /// unknown.
    pub stale_intervals: u32,
    /// Alert when fewer than this share of jobs succeed over an hour...
    pub job_success_ratio_min: Ratio,
    /// ...and at least this many jobs ran.
    pub job_success_min_jobs: u32,
    /// Alert when the 95th percentile job duration exceeds this.
    pub job_duration_p95_max: Dur,
    /// Alert when the work filesystem will be full within this horizon.
    pub disk_fill_horizon: Dur,
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
            stale_intervals: 3,
            job_success_ratio_min: Ratio(0.95),
            job_success_min_jobs: 5,
            job_duration_p95_max: Dur::secs(600),
            disk_fill_horizon: Dur::secs(4 * 3600),
            max_clock_offset: Dur::secs(60),
            runbook_base_url: DEFAULT_RUNBOOK_BASE.to_string(),
        }
    }
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
            let ok = r
                .split_once('/')
                .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'));
            if !ok {
                return Err((
                    "github.repositories".into(),
                    format!("{r:?} is not of the form owner/repo"),
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
    fn effective_config_round_trips() {
        let c = Config::default();
        let text = c.to_toml();
        assert_eq!(parse(&text, "c").unwrap(), c);
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
        config.runners.push(RunnerConfig {
            root: Some("/x".into()),
            unit: Some("x".into()),
            role: Some("x".into()),
            environment: Some("x".into()),
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
