//! `runner-health-exporter check`: the incident command. Collects once
//! in-process (so it works while the daemon is down) or asks a running
//! daemon's `/health` (`--url`), then prints each runner's checks and the
//! diagnosis. Exit 0 healthy, 1 warnings only, 2 failing.

use crate::cli::Cli;
use crate::collect::registry;
use crate::config::Source;
use crate::health::{self, Format, Report, Selector};
use crate::net::Network;
use crate::settings::Settings;
use crate::timefmt::now_unix;
use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Print the report as JSON (the same as --format json).
    #[arg(long)]
    pub json: bool,
    /// How to print the report: text (a table), json, markdown (for a
    /// step summary) or github (workflow commands: ::error:: per runner
    /// that fails the gate).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Ask a running exporter instead of collecting here, e.g.
    /// http://runner-host:9101 (credentials as http://user:pass@host:9101).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Only this runner.
    #[arg(long)]
    pub runner: Option<String>,
    /// Only runners with this role (from [[runner]] role).
    #[arg(long)]
    pub role: Option<String>,
    /// Only runners of this environment.
    #[arg(long)]
    pub environment: Option<String>,
}

fn selector(args: &CheckArgs) -> Selector {
    Selector {
        runner: args.runner.clone(),
        role: args.role.clone(),
        environment: args.environment.clone(),
    }
}

/// The `/health` URL for `--url`: the path defaults to /health, the
/// selection flags become query parameters.
pub fn health_url(base: &str, args: &CheckArgs) -> anyhow::Result<hyper::Uri> {
    let uri: hyper::Uri = base
        .parse()
        .with_context(|| format!("invalid --url {base:?}"))?;
    let scheme = uri.scheme_str().unwrap_or("http");
    if scheme != "http" && scheme != "https" {
        bail!("--url must be http:// or https://, got {base:?}");
    }
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow!("--url needs a host: {base:?}"))?;
    let host = authority.as_str().rsplit('@').next().unwrap_or_default();
    let path = match uri.path() {
        "" | "/" => "/health",
        p => p,
    };
    let mut query: Vec<String> = uri.query().map(|q| vec![q.to_string()]).unwrap_or_default();
    for (k, v) in [
        ("runner", &args.runner),
        ("role", &args.role),
        ("environment", &args.environment),
    ] {
        if let Some(v) = v {
            query.push(format!("{k}={}", crate::query::encode(v)));
        }
    }
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{scheme}://{host}{path}{q}")
        .parse()
        .with_context(|| format!("invalid --url {base:?}"))
}

/// The proxies and CAs for `--url`, as the daemon would use them for
/// GitHub: `[github] proxy`, `no_proxy`, `ca_file` of the config and the
/// proxy variables. A default config that cannot be read (it is often
/// readable only by root and the exporter) leaves the environment alone.
fn network(cli: &Cli) -> anyhow::Result<Network> {
    let config = match cli.config_source() {
        Source::Explicit(p) => crate::config::load(Source::Explicit(p))?,
        Source::Default(p) => crate::config::load(Source::Default(p)).unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "using no proxy or CA settings from the config");
            crate::config::Config::default()
        }),
    };
    Ok(Settings::resolve(config).network.clone())
}

async fn fetch(base: &str, args: &CheckArgs, network: &Network) -> anyhow::Result<Report> {
    let uri = health_url(base, args)?;
    let url =
        reqwest::Url::parse(&uri.to_string()).with_context(|| format!("invalid --url {uri}"))?;
    let userinfo = base
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|auth| auth.rsplit_once('@'))
        .map(|(ui, _)| ui.to_string());
    let ua = format!("runner-health-exporter/{} check", env!("CARGO_PKG_VERSION"));
    let (client, _) = network
        .http_client(Duration::from_secs(5), &ua)
        .map_err(|e| anyhow!(e.message))?;
    let mut req = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(ui) = userinfo {
        let mut value = reqwest::header::HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(ui)
        ))
        .context("the credentials in --url cannot be sent in a header")?;
        value.set_sensitive(true);
        req = req.header(reqwest::header::AUTHORIZATION, value);
    }
    let exchange = async {
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {uri}: {}", network.classify(&url, &e)))?;
        let status = resp.status();
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| anyhow!("reading the answer of {uri}: {e}"))?
        {
            if body.len() + chunk.len() > 8 * 1024 * 1024 {
                bail!("the answer of {uri} is larger than 8 MiB");
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, anyhow::Error>((status, body))
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| anyhow!("{uri} did not answer within 10 s"))??;
    if status != reqwest::StatusCode::OK && status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
        bail!(
            "{uri} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("{uri} did not answer with a health report"))
}

/// Colour only on a terminal, and never with NO_COLOR set.
fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn run(cli: &Cli, args: &CheckArgs) -> ExitCode {
    // The report goes to stdout; keep collector chatter to warnings unless
    // asked for more.
    let level = match cli.log_level {
        crate::logging::LogLevel::Debug | crate::logging::LogLevel::Trace => cli.log_level,
        _ => crate::logging::LogLevel::Warn,
    };
    crate::logging::init(level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(async {
        match &args.url {
            Some(url) => fetch(url, args, &network(cli)?).await,
            None => {
                let config = crate::config::load(cli.config_source())?;
                let store = registry::collect_once(Settings::resolve(config)).await;
                let snap = store.snapshot();
                Ok(health::evaluate_snapshot(
                    &snap,
                    &selector(args),
                    now_unix(),
                ))
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    match report {
        Ok(report) => {
            match if args.json { Format::Json } else { args.format } {
                Format::Text => print!("{}", health::render_text(&report, use_color())),
                format => print!("{}", health::render(&report, format)),
            }
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CheckArgs {
        CheckArgs {
            json: false,
            format: Format::Text,
            url: None,
            runner: None,
            role: Some("primary".into()),
            environment: None,
        }
    }

    #[test]
    fn urls_default_to_health_and_carry_the_selection() {
        assert_eq!(
            health_url("http://host:9101", &args()).unwrap().to_string(),
            "http://host:9101/health?role=primary"
        );
        assert_eq!(
            health_url("https://u:p@host:9101/health?runner=a", &args())
                .unwrap()
                .to_string(),
            "https://host:9101/health?runner=a&role=primary"
        );
        assert!(health_url("ftp://host", &args()).is_err());
    }
}
