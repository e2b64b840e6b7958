//! The HTTP client for GitHub's REST API: hyper over rustls (ring, Mozilla
//! roots), the headers GitHub asks for, a timeout on the whole exchange,
//! conditional requests with the last ETag of each URL, and the request
//! and rate-limit statistics.

use super::auth::Secret;
use super::ratelimit::{parse_retry_after, RateLimit};
use crate::snapshot::{ApiErrorReason, ApiStats};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, IF_NONE_MATCH, USER_AGENT};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

pub const API_VERSION: &str = "2022-11-28";
pub const MEDIA_TYPE: &str = "application/vnd.github+json";
/// Largest response body read (a page of 100 runners is about 50 kB).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a request or poll failed; the reason label of
/// `github_runner_github_api_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the token is wrong, expired or revoked.
    Auth,
    /// 403 that is not about rate limits (missing permission).
    Forbidden,
    /// 403 or 429 about a rate limit.
    RateLimited,
    /// 404 where a list or an installation was expected.
    NotFound,
    /// 5xx.
    ServerError,
    /// No complete answer within the request timeout.
    Timeout,
    /// No connection (refused, DNS, TLS, connect timeout).
    Connect,
    /// An answer that is not the JSON expected.
    Malformed,
    /// Another unexpected status.
    Other,
    /// Not an API error: missing credentials, an unreadable key. Backs
    /// off like an error but is not counted as an API error.
    Setup,
}

impl ErrorKind {
    /// The reason counted in the API statistics (None for a setup error,
    /// which is not the API's).
    pub fn reason(self) -> Option<ApiErrorReason> {
        Some(match self {
            ErrorKind::Auth => ApiErrorReason::Auth,
            ErrorKind::Forbidden => ApiErrorReason::Forbidden,
            ErrorKind::RateLimited => ApiErrorReason::RateLimited,
            ErrorKind::NotFound => ApiErrorReason::NotFound,
            ErrorKind::ServerError => ApiErrorReason::ServerError,
            ErrorKind::Timeout => ApiErrorReason::Timeout,
            ErrorKind::Connect => ApiErrorReason::Connect,
            ErrorKind::Malformed => ApiErrorReason::Malformed,
            ErrorKind::Other => ApiErrorReason::Other,
            ErrorKind::Setup => return None,
        })
    }
}

/// A failed request or poll. The message never holds a credential.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after: Option<Duration>,
    pub rate: RateLimit,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
            rate: RateLimit::default(),
        }
    }

    pub fn setup(e: anyhow::Error) -> ApiError {
        ApiError::new(ErrorKind::Setup, format!("{e:#}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub method: Method,
    pub url: String,
    pub status: u16,
    /// The body; for a 304, the body cached with the ETag.
    pub body: Bytes,
    /// The `Link` header (for a 304, the cached one).
    pub link: Option<String>,
    pub rate: RateLimit,
    pub retry_after: Option<Duration>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) || self.status == 304
    }

    /// The failure this status means, with GitHub's `message` when the
    /// body has one. `secret` is scrubbed from the text in case a server
    /// ever echoed it.
    pub fn error(&self, secret: &Secret) -> ApiError {
        let detail = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_default();
        let about_rate_limit = detail.to_ascii_lowercase().contains("rate limit");
        let kind = match self.status {
            401 => ErrorKind::Auth,
            429 => ErrorKind::RateLimited,
            403 if about_rate_limit
                || self.retry_after.is_some()
                || self.rate.remaining == Some(0) =>
            {
                ErrorKind::RateLimited
            }
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::Other,
        };
        let mut message = format!(
            "{} {}: HTTP {}",
            self.method,
            self.url,
            status_text(self.status)
        );
        let detail: String = detail
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(&detail);
        }
        if !secret.expose().is_empty() {
            message = message.replace(secret.expose(), "[REDACTED]");
        }
        ApiError {
            kind,
            message,
            retry_after: self.retry_after,
            rate: self.rate,
        }
    }

    /// The body as JSON of type T; a mismatch is a malformed answer.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::new(
                ErrorKind::Malformed,
                format!(
                    "{} {}: HTTP {}: malformed JSON: {e}",
                    self.method,
                    self.url,
                    status_text(self.status)
                ),
            )
        })
    }
}

fn status_text(code: u16) -> String {
    match hyper::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(r) => format!("{code} {r}"),
        None => code.to_string(),
    }
}

struct Cached {
    etag: String,
    body: Bytes,
    link: Option<String>,
}

type Http = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct Client {
    http: Http,
    request_timeout: Duration,
    user_agent: HeaderValue,
    cache: HashMap<String, Cached>,
    used: HashSet<String>,
}

/// The error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

impl Client {
    pub fn new(connect_timeout: Duration, request_timeout: Duration) -> anyhow::Result<Client> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .context("setting up TLS")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .build(https);
        let ua = format!("runner-health-exporter/{}", env!("CARGO_PKG_VERSION"));
        Ok(Client {
            http,
            request_timeout,
            user_agent: HeaderValue::from_str(&ua).context("user agent")?,
            cache: HashMap::new(),
            used: HashSet::new(),
        })
    }

    /// Starts a poll: ETags of URLs not requested until [`Client::end_poll`]
    /// are then forgotten.
    pub fn begin_poll(&mut self) {
        self.used.clear();
    }

    pub fn end_poll(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.cache.retain(|url, _| used.contains(url));
    }

    /// Number of URLs with a cached ETag.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Sends one request and records it in `stats`. Any HTTP status is a
    /// [`Reply`]; only a missing answer is an error. GETs send the last
    /// ETag of the URL and a 304 answers with the cached body.
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        auth: &Secret,
        stats: &mut ApiStats,
    ) -> Result<Reply, ApiError> {
        let conditional = method == Method::GET;
        if conditional {
            self.used.insert(url.to_string());
        }
        let etag = if conditional {
            self.cache.get(url).map(|c| c.etag.clone())
        } else {
            None
        };
        let req = self.build(&method, url, auth, etag.as_deref())?;
        let what = format!("{method} {url}");
        let started = std::time::Instant::now();
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| {
                let kind = if e.is_connect() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Other
                };
                ApiError::new(kind, format!("{what}: {}", chain(&e)))
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    ApiError::new(
                        ErrorKind::Malformed,
                        format!("{what}: reading the answer: {}", chain(&*e)),
                    )
                })?
                .to_bytes();
            Ok::<_, ApiError>((parts, body))
        };
        let result = match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::new(
                ErrorKind::Timeout,
                format!(
                    "{what}: no complete answer within {}",
                    crate::duration::Dur(self.request_timeout)
                ),
            )),
        };
        let (parts, body) = match result {
            Ok(x) => x,
            Err(e) => {
                *stats.requests.entry("error".to_string()).or_default() += 1;
                return Err(e);
            }
        };
        let status = parts.status.as_u16();
        *stats.requests.entry(status.to_string()).or_default() += 1;
        let headers = &parts.headers;
        let rate = RateLimit::from_headers(|n| header(headers, n));
        if rate.limit.is_some() {
            stats.rate_limit = rate.limit;
        }
        if rate.remaining.is_some() {
            stats.rate_remaining = rate.remaining;
        }
        if rate.reset.is_some() {
            stats.rate_reset = rate.reset;
        }
        if rate.date.is_some() {
            stats.rate_date = rate.date;
        }
        tracing::debug!(
            method = %method,
            url,
            status,
            conditional = etag.is_some(),
            ms = started.elapsed().as_millis() as u64,
            "GitHub API request"
        );
        let mut reply = Reply {
            method,
            url: url.to_string(),
            status,
            body,
            link: header(headers, "link"),
            rate,
            retry_after: header(headers, "retry-after").and_then(|v| parse_retry_after(&v)),
        };
        if conditional {
            match status {
                304 => match self.cache.get(url) {
                    Some(c) => {
                        reply.body = c.body.clone();
                        if reply.link.is_none() {
                            reply.link = c.link.clone();
                        }
                    }
                    None => {
                        return Err(ApiError::new(
                            ErrorKind::Malformed,
                            format!(
                                "{} {url}: 304 Not Modified to an unconditional request",
                                reply.method
                            ),
                        ))
                    }
                },
                200..=299 => match header(headers, "etag") {
                    Some(etag) => {
                        self.cache.insert(
                            url.to_string(),
                            Cached {
                                etag,
                                body: reply.body.clone(),
                                link: reply.link.clone(),
                            },
                        );
                    }
                    None => {
                        self.cache.remove(url);
                    }
                },
                _ => {}
            }
        }
        Ok(reply)
    }

    fn build(
        &self,
        method: &Method,
        url: &str,
        auth: &Secret,
        etag: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, ApiError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| ApiError::new(ErrorKind::Setup, format!("invalid URL {url:?}: {e}")))?;
        let mut bearer = Vec::with_capacity(7 + auth.expose().len());
        bearer.extend_from_slice(b"Bearer ");
        bearer.extend_from_slice(auth.expose().as_bytes());
        let mut auth_value = HeaderValue::from_maybe_shared(Bytes::from(bearer)).map_err(|_| {
            ApiError::new(
                ErrorKind::Setup,
                "the credential holds characters that cannot be sent in an HTTP header",
            )
        })?;
        auth_value.set_sensitive(true);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(ACCEPT, MEDIA_TYPE)
            .header("x-github-api-version", API_VERSION)
            .header(USER_AGENT, self.user_agent.clone())
            .header(AUTHORIZATION, auth_value);
        if let Some(etag) = etag {
            if let Ok(v) = HeaderValue::from_str(etag) {
                req = req.header(IF_NONE_MATCH, v);
            }
        }
        req.body(Full::new(Bytes::new()))
            .map_err(|e| ApiError::new(ErrorKind::Setup, format!("building {method} {url}: {e}")))
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}
