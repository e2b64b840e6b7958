//! HTTP: listeners, routes and content negotiation.
//!
//! Routes are an axum `Router` served as a tower service by the accept
//! loop here (hyper-util: connection cap, header timeouts, TLS, graceful
//! shutdown). Handlers only read: `/metrics` serves the body the renderer
//! encoded when the store last changed (gzip is computed once per version,
//! on first request). Nothing here waits on collectors, files or the
//! network, and a bcrypt hash runs on the blocking pool, never on the
//! async workers.

use crate::metrics::rendered::Latest;
use crate::snapshot::Store;
use crate::webconfig::WebConfig;
use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Semaphore};

/// Connections served at once; more wait in the kernel's backlog. High
/// enough that idle connections cannot starve a scrape.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client gets to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_1_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const OPENMETRICS_0_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=0.0.1; charset=utf-8";

/// What the HTTP layer needs from the rest of the daemon.
pub struct App {
    pub store: Arc<Store>,
    /// The exposition the renderer encoded last.
    pub rendered: Arc<Latest>,
    pub telemetry_path: String,
    /// TLS, auth and headers; replaced on reload, read per connection.
    web: RwLock<Arc<WebConfig>>,
    /// Milliseconds since `started` at the accept loop's last turn; the
    /// watchdog only pings systemd while it moves.
    pub heartbeat: AtomicU64,
    pub started: Instant,
}

impl App {
    pub fn new(
        store: Arc<Store>,
        rendered: Arc<Latest>,
        telemetry_path: String,
        web: WebConfig,
    ) -> App {
        App {
            store,
            rendered,
            telemetry_path,
            web: RwLock::new(Arc::new(web)),
            heartbeat: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// The web config in effect.
    pub fn web(&self) -> Arc<WebConfig> {
        self.web.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the web config; new connections and requests use it.
    pub fn set_web(&self, web: WebConfig) {
        *self.web.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(web);
    }

    fn beat(&self) {
        self.heartbeat
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the accept loop last turned.
    pub fn since_heartbeat(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(
            self.heartbeat.load(Ordering::Relaxed),
        ))
    }
}

/// The exposition format chosen for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics1,
    OpenMetrics0,
}

/// One media range of an Accept header.
struct MediaRange<'a> {
    mime: &'a str,
    version: Option<&'a str>,
    q: f32,
}

fn media_ranges(accept: &str) -> impl Iterator<Item = MediaRange<'_>> {
    accept.split(',').filter_map(|part| {
        let mut params = part.split(';');
        let mime = params.next()?.trim();
        if mime.is_empty() {
            return None;
        }
        let mut range = MediaRange {
            mime,
            version: None,
            q: 1.0,
        };
        for p in params {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => range.q = v.parse().unwrap_or(0.0),
                "version" => range.version = Some(v),
                _ => {}
            }
        }
        Some(range)
    })
}

/// Picks OpenMetrics when the client prefers it (by q-value, ties going to
/// OpenMetrics as Prometheus intends), else the 0.0.4 text format.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best: Option<(f32, Format)> = None;
    let mut text_q: f32 = -1.0;
    for r in media_ranges(accept) {
        if r.q <= 0.0 {
            continue;
        }
        if r.mime.eq_ignore_ascii_case("application/openmetrics-text") {
            let f = match r.version {
                None | Some("1.0.0") => Format::OpenMetrics1,
                Some("0.0.1") => Format::OpenMetrics0,
                Some(_) => continue,
            };
            if best.is_none_or(|(q, _)| r.q > q) {
                best = Some((r.q, f));
            }
        } else if r.mime.eq_ignore_ascii_case("text/plain") || r.mime == "*/*" {
            text_q = text_q.max(r.q);
        }
    }
    match best {
        Some((q, f)) if q >= text_q => f,
        _ => Format::Text,
    }
}

/// True when the client accepts gzip.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|ae| {
        media_ranges(ae)
            .any(|r| (r.mime.eq_ignore_ascii_case("gzip") || r.mime == "*") && r.q > 0.0)
    })
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn landing_page(app: &App) -> Bytes {
    let v = crate::metrics::render::BuildInfo::VERSION;
    let rev = crate::metrics::render::BuildInfo::REVISION;
    let path = html_escape(&app.telemetry_path);
    Bytes::from(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>runner-health-exporter</title></head>\n\
         <body><h1>runner-health-exporter</h1>\n<p>Prometheus exporter for self-hosted GitHub Actions runners. \
         Version {v} ({rev}).</p>\n<ul>\n<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/health\">Health</a> (deploy gate: 200 or 503; <code>?role=primary</code>, <code>?runner=NAME</code>)</li>\n</ul>\n</body></html>\n"
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether a `--web.telemetry-path` can be served: absolute, not `/` or
/// `/health`, and made of the characters a path segment needs (letters,
/// digits, `-._~`), so that it is one literal route.
pub fn valid_telemetry_path(path: &str) -> bool {
    path.starts_with('/')
        && path != "/"
        && path != "/health"
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
}

/// Marks the watchdog's own request (an extension no client can set): it
/// passes basic auth.
#[derive(Clone, Copy)]
struct WatchdogProbe;

/// The request the watchdog sends through the routes to see that the
/// serving path works.
pub fn probe(path: &str) -> Option<Request> {
    let mut req = Request::get(path).body(Body::empty()).ok()?;
    req.extensions_mut().insert(WatchdogProbe);
    Some(req)
}

/// The routes: the metrics path, `/health`, the landing page and 404 for
/// the rest, behind [`web_layer`].
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(&app.telemetry_path, get(metrics))
        .route("/health", get(health))
        .route("/", get(landing))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), web_layer))
        .with_state(app)
}

/// What the web config asks of every request, and the methods served:
/// basic auth first (bcrypt on the blocking pool), then GET and HEAD only,
/// then the configured extra headers on every answer.
async fn web_layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let web = app.web();
    let probe = req.extensions().get::<WatchdogProbe>().is_some();
    let authorized = match &web.auth {
        None => true,
        Some(_) if probe => true,
        Some(auth) => {
            auth.verify(
                req.headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            )
            .await
        }
    };
    let mut resp = if !authorized {
        let mut r = response(
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"401 Unauthorized\n"),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"runner-health-exporter\""),
        );
        r
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"method not allowed: use GET or HEAD\n"),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        next.run(req).await
    };
    for (k, v) in &web.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

async fn landing(State(app): State<Arc<App>>) -> Response {
    response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        landing_page(&app),
    )
}

async fn not_found() -> Response {
    response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        Bytes::from_static(b"404 page not found\n"),
    )
}

/// True when the client asks for JSON rather than text.
pub fn wants_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        media_ranges(a).any(|r| r.q > 0.0 && r.mime.eq_ignore_ascii_case("application/json"))
    })
}

/// `/health`: 200 when every critical check passes for the selected
/// runners, 503 otherwise; JSON or a plain-text table.
async fn health(State(app): State<Arc<App>>, req: Request) -> Response {
    let query = match crate::health::Query::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => {
            return response(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                Bytes::from(format!("{e}\n")),
            )
        }
    };
    let report = crate::health::evaluate_snapshot(
        &app.store.snapshot(),
        &query.selector,
        crate::timefmt::now_unix(),
    );
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let format = query.format.unwrap_or_else(|| {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        if wants_json(accept) {
            crate::health::Format::Json
        } else {
            crate::health::Format::Text
        }
    });
    let mut r = response(
        status,
        format.content_type(),
        Bytes::from(crate::health::render(&report, format)),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn metrics(State(app): State<Arc<App>>, req: Request) -> Response {
    let h = req.headers();
    let format = negotiate(h.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = accepts_gzip(h.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()));
    let rendered = app.rendered.get();
    let om = format != Format::Text;
    let body = if gzip {
        rendered.gzip(om)
    } else if om {
        rendered.openmetrics.clone()
    } else {
        rendered.text.clone()
    };
    let content_type = match format {
        Format::Text => TEXT_CONTENT_TYPE,
        Format::OpenMetrics1 => OPENMETRICS_1_CONTENT_TYPE,
        Format::OpenMetrics0 => OPENMETRICS_0_CONTENT_TYPE,
    };
    let mut r = response(StatusCode::OK, content_type, body);
    if gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    r
}

/// Parses `--web.listen-address`: `:9101` means every interface.
pub fn parse_listen_address(addr: &str) -> anyhow::Result<Vec<SocketAddr>> {
    if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .with_context(|| format!("invalid port in listen address {addr:?}"))?;
        return Ok(vec![
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ]);
    }
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("invalid listen address {addr:?} (expected host:port or :port)"))?
        .collect();
    if addrs.is_empty() {
        anyhow::bail!("listen address {addr:?} resolves to nothing");
    }
    Ok(addrs)
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Binds a listen address. For `:port` the IPv6 wildcard (dual-stack) is
/// tried first, then IPv4 alone where IPv6 is unavailable.
pub fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let candidates = parse_listen_address(addr)?;
    let wildcard = addr.starts_with(':');
    let mut last_err = None;
    for a in &candidates {
        match bind_one(*a) {
            Ok(l) => return Ok(l),
            Err(e) => {
                let in_use = e.kind() == std::io::ErrorKind::AddrInUse;
                last_err = Some((e, *a));
                if in_use || !wildcard {
                    break;
                }
            }
        }
    }
    match last_err {
        Some((e, a)) => Err(e).with_context(|| format!("cannot listen on {a} ({addr})")),
        None => anyhow::bail!("cannot listen on {addr}"),
    }
}

/// Serves until `shutdown` turns true, then lets in-flight requests finish
/// for up to `grace`.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    heartbeat_every: Option<Duration>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .keep_alive(true);
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel::<(
        tokio::net::TcpStream,
        tokio::sync::OwnedSemaphorePermit,
    )>(64);
    for listener in listeners {
        let permits = Arc::clone(&permits);
        let tx = conn_tx.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    _ = shutdown.changed() => return,
                };
                let stream = tokio::select! {
                    r = listener.accept() => match r {
                        Ok((s, _)) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "accept failed");
                            // EMFILE and friends: back off briefly.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = shutdown.changed() => return,
                };
                let _ = stream.set_nodelay(true);
                if tx.send((stream, permit)).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(conn_tx);
    let routes = router(Arc::clone(&app));
    let mut ticker = heartbeat_every.map(tokio::time::interval);
    app.beat();
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let (stream, permit) = tokio::select! {
            c = conn_rx.recv() => match c { Some(c) => c, None => break },
            _ = tick => {
                app.beat();
                continue;
            }
            _ = shutdown.changed() => break,
        };
        app.beat();
        let web = app.web();
        let svc = TowerToHyperService::new(routes.clone());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        tokio::spawn(async move {
            match &web.tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn).await;
                }
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls_stream), svc);
                            let _ = watcher.watch(conn).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open at shutdown; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_accept_header_gets_openmetrics() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom)), Format::OpenMetrics1);
        assert_eq!(
            negotiate(Some("application/openmetrics-text; version=0.0.1")),
            Format::OpenMetrics0
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics1
        );
    }

    #[test]
    fn everything_else_gets_text() {
        for a in [
            None,
            Some(""),
            Some("*/*"),
            Some("text/plain"),
            Some("text/html,application/xhtml+xml"),
            Some("application/openmetrics-text;version=2.0.0"),
            Some("application/openmetrics-text;q=0"),
            Some("text/plain;q=0.9,application/openmetrics-text;q=0.5"),
            Some(";;;,,,=q"),
        ] {
            assert_eq!(negotiate(a), Format::Text, "{a:?}");
        }
    }

    #[test]
    fn gzip_detection() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=1.0, *;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":9101").unwrap().len(), 2);
        assert_eq!(
            parse_listen_address("127.0.0.1:9").unwrap(),
            vec!["127.0.0.1:9".parse().unwrap()]
        );
        assert!(parse_listen_address(":x").is_err());
        assert!(parse_listen_address("nocolon").is_err());
    }
}
