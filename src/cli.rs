//! The command line, in the style of Prometheus exporters. Also the source
//! of the generated man page.

use crate::logging::{LogFormat, LogLevel};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("RHE_GIT_REVISION"),
    ", rustc: ",
    env!("RHE_RUSTC_VERSION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "runner-health-exporter",
    version = LONG_VERSION,
    args_override_self = true,
    about = "Prometheus exporter for self-hosted GitHub Actions runners",
    long_about = "Prometheus exporter for self-hosted GitHub Actions runners: host resources, \
                  the runner's systemd unit, its own logs and its registration at GitHub. \
                  Serves /metrics for Prometheus and /health as a deploy gate."
)]
pub struct Cli {
    /// Address to listen on, host:port or :port for every interface.
    /// Repeat to listen on several.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = ":9101",
        global = true
    )]
    pub listen_address: Vec<String>,

    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics",
        global = true
    )]
    pub telemetry_path: String,

    /// TLS, client certificates, basic auth and response headers, in the
    /// Prometheus exporter-toolkit web config format.
    #[arg(long = "web.config.file", value_name = "FILE", global = true)]
    pub web_config_file: Option<PathBuf>,

    /// Configuration file (TOML). A missing file at the default path means
    /// defaults; a missing file named here is an error.
    #[arg(long = "config.file", value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,

    /// Only log messages with this level or above.
    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    pub log_level: LogLevel,

    /// Log line format on stderr (ignored under systemd with a journal,
    /// where journald fields are used).
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Serve,
    /// Check the runners on this host now and name the likely root cause:
    /// collects once here (works while the daemon is down), or asks a
    /// running exporter with --url. Exit 0 healthy, 1 warnings, 2 failing.
    Check(crate::check::CheckArgs),
    /// Write the generated files (metric reference, man page, alert rules,
    /// Grafana dashboard) under a directory. With --config.file, the alerts
    /// and dashboard use its [health] thresholds.
    Generate {
        /// Directory to write into; the repository root reproduces the
        /// committed files.
        #[arg(long = "output-dir", value_name = "DIR", default_value = ".")]
        output_dir: PathBuf,
    },
    /// Work with the configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings; exit 0
    /// when valid, 1 otherwise.
    Check,
}

impl Cli {
    pub fn config_source(&self) -> crate::config::Source<'_> {
        match &self.config_file {
            Some(p) => crate::config::Source::Explicit(p),
            None => {
                crate::config::Source::Default(std::path::Path::new(crate::config::DEFAULT_PATH))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_globals() {
        let c = Cli::parse_from(["x"]);
        assert_eq!(c.listen_address, [":9101"]);
        assert_eq!(c.telemetry_path, "/metrics");
        assert!(c.command.is_none());
        let c = Cli::parse_from(["x", "config", "check", "--config.file", "/tmp/c.toml"]);
        assert!(matches!(c.command, Some(Command::Config { .. })));
        assert_eq!(
            c.config_file.as_deref(),
            Some(std::path::Path::new("/tmp/c.toml"))
        );
    }
}
