//! The `serve` and `config check` commands: wiring collectors, the store,
//! the renderer and the HTTP server together.

use crate::cli::Cli;
use crate::collect::{self, registry, registry::CollectorSet};
use crate::config::Config;
use crate::http::{self, App};
use crate::logging;
use crate::metrics::render;
use crate::metrics::rendered::{Latest, Rendered};
use crate::notify::{self, Notifier};
use crate::settings::Settings;
use crate::snapshot::Store;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Time in-flight requests get to finish after SIGTERM or SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// `config check`: validate, print the effective config, exit 0 or 1.
pub fn config_check(cli: &Cli) -> ExitCode {
    match crate::config::load(cli.config_source()) {
        Ok(config) => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `generate`: writes every generated file under `dir`. With
/// `--config.file`, the alerts and dashboard use that file's `[health]`
/// thresholds; without, the defaults (as committed).
pub fn generate(cli: &Cli, dir: &std::path::Path) -> ExitCode {
    let health = match &cli.config_file {
        Some(path) => match crate::config::load(crate::config::Source::Explicit(path)) {
            Ok(c) => c.health,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => crate::config::HealthConfig::default(),
    };
    match crate::generate::write_all(dir, &health) {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Encodes the exposition of the store as it is now.
fn render_now(store: &Store, latest: &Latest, version: u64) {
    let encoded = render::render(&store.snapshot());
    latest.set(Rendered::new(version, encoded.text, encoded.openmetrics));
}

/// The longest a rendering stands without a change: the health verdicts
/// it carries (`github_runner_healthy`) age with time (a collector going
/// silent, a job running too long) even when no data changes.
const MAX_RENDER_AGE: Duration = Duration::from_secs(10);

/// Re-encodes the exposition whenever the store changes, and at least
/// every [`MAX_RENDER_AGE`].
async fn renderer(store: Arc<Store>, latest: Arc<Latest>, mut shutdown: watch::Receiver<bool>) {
    let mut rx = store.subscribe();
    loop {
        let version = *rx.borrow_and_update();
        render_now(&store, &latest, version);
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(MAX_RENDER_AGE) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Samples the exporter's own process metrics on the host interval.
async fn process_sampler(
    store: Arc<Store>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let boot = sysinfo::System::boot_time().unwrap_or(0);
    loop {
        match collect::process::sample(boot) {
            Ok(p) => store.set_process(p),
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "cannot sample own process"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Pings the systemd watchdog at half its interval, but only while the
/// serving path works: the accept loop turns and a request for the metrics
/// path, run through the same handler as the network's, answers 200 with a
/// body. A stalled daemon stops pinging and systemd restarts it.
async fn watchdog_loop(
    app: Arc<App>,
    notifier: Arc<Notifier>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval / 2);
    let mut healthy = true;
    let routes = http::router(Arc::clone(&app));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let accept_loop_alive = app.since_heartbeat() < interval / 2;
        let serves = match http::probe(app.telemetry_path.as_str()) {
            Some(req) => {
                use tower::ServiceExt;
                match routes.clone().oneshot(req).await {
                    Ok(resp) => {
                        resp.status() == hyper::StatusCode::OK
                            && hyper::body::Body::size_hint(resp.body())
                                .exact()
                                .unwrap_or(0)
                                > 0
                    }
                    Err(never) => match never {},
                }
            }
            None => false,
        };
        if accept_loop_alive && serves {
            notifier.watchdog();
            if !healthy {
                tracing::info!("serving path healthy again; watchdog pings resumed");
            }
            healthy = true;
        } else if healthy {
            tracing::error!(
                accept_loop_alive,
                serves,
                "serving path stalled; withholding watchdog pings"
            );
            healthy = false;
        }
    }
}

/// Waits for SIGTERM or SIGINT (returned) and reloads on SIGHUP.
async fn signals(
    cli: &Cli,
    store: &Arc<Store>,
    app: &App,
    collectors: &mut CollectorSet,
    notifier: &Notifier,
) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        std::future::pending::<()>().await;
        return "none";
    };
    loop {
        tokio::select! {
            _ = term.recv() => return "SIGTERM",
            _ = int.recv() => return "SIGINT",
            _ = hup.recv() => {
                notifier.reloading();
                reload(cli, store, app, collectors);
                notifier.ready("reloaded");
            }
        }
    }
}

/// Re-reads the config and the web config. Both valid: they take effect
/// (collectors whose settings changed restart, the listeners stay). Either
/// invalid: logged, the old ones stay, and
/// github_runner_exporter_config_last_reload_successful turns 0.
fn reload(cli: &Cli, store: &Arc<Store>, app: &App, collectors: &mut CollectorSet) {
    let config = crate::config::load(cli.config_source());
    let web = cli.web_config_file.as_deref().map(crate::webconfig::load);
    let (config, web) = match (config, web.transpose()) {
        (Ok(c), Ok(w)) => (c, w),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the running configuration");
            store.set_reload(false);
            return;
        }
    };
    let restarted = collectors.apply(&Settings::resolve(config));
    if let Some(web) = web {
        app.set_web(web);
    }
    store.set_reload(true);
    tracing::info!(restarted = %restarted.join(","), "configuration reloaded");
}

/// `serve`: runs until SIGTERM or SIGINT.
pub fn serve(cli: &Cli) -> ExitCode {
    logging::init(cli.log_level, cli.log_format);
    // A panic anywhere (a collector bug) is logged like everything else;
    // the supervisor turns it into collector_success 0.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
    let config = match crate::config::load(cli.config_source()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "invalid configuration");
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if !http::valid_telemetry_path(&cli.telemetry_path) {
        eprintln!(
            "error: --web.telemetry-path {:?}: must start with /, not be / or /health, and hold only letters, digits and -._~/",
            cli.telemetry_path
        );
        return ExitCode::FAILURE;
    }
    // Two workers, or one when the process may run on one CPU only (its
    // affinity mask or cgroup quota): two workers on one CPU only take
    // turns, and a request waits for the other's time slice.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(16)
        .thread_name("rhe-worker")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli, config));
    // Do not wait for blocking work still in flight (a statvfs on a hung
    // mount, a slow file read): shutdown must finish within 2 s.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn run(cli: &Cli, config: Config) -> ExitCode {
    let web = match &cli.web_config_file {
        Some(path) => match crate::webconfig::load(path) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "invalid web configuration");
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => crate::webconfig::WebConfig::none(),
    };
    let mut listeners = Vec::new();
    for addr in &cli.listen_address {
        match http::bind(addr) {
            Ok(l) => {
                if let Ok(a) = l.local_addr() {
                    tracing::info!(address = %a, "listening");
                }
                listeners.push(l);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot listen");
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let sample_interval = config.host.sample_interval.get();
    let settings = Settings::resolve(config);
    let store = registry::store(Arc::clone(&settings));
    let latest = Arc::new(Latest::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // First rendering before serving: self-metrics are there from the start.
    render_now(&store, &latest, store.version());
    tokio::spawn(renderer(
        Arc::clone(&store),
        Arc::clone(&latest),
        shutdown_rx.clone(),
    ));
    tokio::spawn(process_sampler(
        Arc::clone(&store),
        sample_interval,
        shutdown_rx.clone(),
    ));
    let mut collectors = CollectorSet::new(Arc::clone(&store));
    collectors.apply(&settings);
    let app = Arc::new(App::new(
        Arc::clone(&store),
        latest,
        cli.telemetry_path.clone(),
        web,
    ));
    let notifier = Arc::new(Notifier::from_env());
    let watchdog = notify::watchdog_interval().filter(|_| notifier.enabled());
    tracing::info!(
        version = render::BuildInfo::VERSION,
        revision = render::BuildInfo::REVISION,
        "runner-health-exporter started"
    );
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let server = tokio::spawn(http::serve(
        listeners,
        Arc::clone(&app),
        shutdown_rx.clone(),
        SHUTDOWN_GRACE,
        watchdog.map(|w| w / 4),
    ));
    // The listeners are bound: connections queue until the loop accepts.
    notifier.ready(&format!("serving on {}", addresses.join(", ")));
    if let Some(interval) = watchdog {
        tokio::spawn(watchdog_loop(
            Arc::clone(&app),
            Arc::clone(&notifier),
            interval,
            shutdown_rx.clone(),
        ));
    }
    let signal = signals(cli, &store, &app, &mut collectors, &notifier).await;
    tracing::info!(signal, "shutting down");
    notifier.stopping();
    collectors.stop_all();
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    ExitCode::SUCCESS
}
