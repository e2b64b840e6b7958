//! The HTTP client for GitHub's REST API: reqwest over rustls (ring),
//! through the proxies and with the trusted CAs of [`crate::net`], the
//! headers GitHub asks for, a timeout on the whole exchange, conditional
//! requests with the last ETag of each URL, the request and rate-limit
//! statistics, and the host clock against GitHub's `Date`.

use super::auth::Secret;
use super::ratelimit::{parse_retry_after, RateLimit};
use crate::net::{Failure, Network};
use crate::snapshot::{ApiErrorReason, ApiStats, ClockSample};
use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, IF_NONE_MATCH};
use hyper::Method;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

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
    /// No connection to GitHub (refused, DNS, connect timeout).
    Connect,
    /// The proxy: unreachable, refusing the tunnel, or unusable settings.
    Proxy,
    /// The proxy wants (other) credentials: 407.
    ProxyAuth,
    /// GitHub's certificate is not trusted (unknown issuer, wrong name,
    /// expired), or the trust settings are unusable.
    Tls,
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
            ErrorKind::Proxy => ApiErrorReason::Proxy,
            ErrorKind::ProxyAuth => ApiErrorReason::ProxyAuth,
            ErrorKind::Tls => ApiErrorReason::Tls,
            ErrorKind::Setup => return None,
        })
    }
}

/// A failed request or poll. The message never holds a credential.
#[derive(Clone, Debug)]
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

    /// A failure on the way to GitHub (proxy, TLS, connection).
    pub fn network(e: crate::net::NetError) -> ApiError {
        let kind = match e.failure {
            Failure::Proxy => ErrorKind::Proxy,
            Failure::ProxyAuth => ErrorKind::ProxyAuth,
            Failure::Tls => ErrorKind::Tls,
            Failure::Connect => ErrorKind::Connect,
            Failure::Timeout => ErrorKind::Timeout,
            Failure::Other => ErrorKind::Other,
        };
        ApiError::new(kind, e.message)
    }

    /// True for failures of the way to a server rather than of one
    /// request: the other owners on the same server would fail alike.
    pub fn is_transport(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Proxy
                | ErrorKind::ProxyAuth
                | ErrorKind::Tls
        )
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

    /// The next page of a list, from the `Link` header. Followed only
    /// within `origin` (the configured API), so the token goes nowhere
    /// else; a link elsewhere is an error.
    pub fn next_page(&self, origin: &str) -> Result<Option<String>, ApiError> {
        match self.link.as_deref().and_then(super::scope::next_link) {
            Some(next) if super::scope::origin(&next) == origin => Ok(Some(next)),
            Some(next) => Err(ApiError::new(
                ErrorKind::Malformed,
                format!(
                    "GET {}: next page {next:?} is outside {origin}; not following it",
                    self.url
                ),
            )),
            None => Ok(None),
        }
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
            // Only a proxy answers 407 (to a plain-HTTP request it relays).
            407 => ErrorKind::ProxyAuth,
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
        self.json_borrowed()
    }

    /// The body as JSON of type T, which may borrow from it (a list of
    /// `&RawValue`, read one by one).
    pub fn json_borrowed<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
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
    match reqwest::StatusCode::from_u16(code)
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

pub struct Client {
    http: reqwest::Client,
    /// The proxies (to tell a proxy failure from GitHub's) and the
    /// secrets to scrub from messages.
    network: Network,
    request_timeout: Duration,
    cache: HashMap<String, Cached>,
    used: HashSet<String>,
}

fn user_agent() -> String {
    format!("runner-health-exporter/{}", env!("CARGO_PKG_VERSION"))
}

impl Client {
    /// A client with the proxies of the process environment and the
    /// system's CAs. Collectors use [`Client::with_network`] with
    /// `settings.network`, which adds `[github] proxy`, `no_proxy` and
    /// `ca_file`.
    pub fn new(connect_timeout: Duration, request_timeout: Duration) -> anyhow::Result<Client> {
        Client::with_network(
            connect_timeout,
            request_timeout,
            &Network::from_process_env(),
        )
        .map_err(|e| anyhow::anyhow!(e.message))
    }

    /// A client going through the proxies and trusting the CAs of
    /// `network`. Fails (kind Proxy or Tls) when they cannot be used: a
    /// proxy variable that is not a usable URL, an unreadable CA file, no
    /// CA at all.
    pub fn with_network(
        connect_timeout: Duration,
        request_timeout: Duration,
        network: &Network,
    ) -> Result<Client, ApiError> {
        let (http, trust) = network
            .http_client(connect_timeout, &user_agent())
            .map_err(ApiError::network)?;
        for e in &trust.system_errors {
            tracing::warn!(error = %e, "part of the system certificate store cannot be read");
        }
        for w in &network.proxies.warnings {
            tracing::warn!("no_proxy: {w}");
        }
        tracing::debug!(
            network = %network.describe(),
            system_cas = trust.system,
            ca_file_cas = trust.ca_file,
            "GitHub client ready"
        );
        Ok(Client {
            http,
            network: network.clone(),
            request_timeout,
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

    /// Removes the credential and any proxy password from a message.
    fn scrub(&self, text: &str, auth: &Secret) -> String {
        let mut t = self.network.scrub(text);
        if !auth.expose().is_empty() && t.contains(auth.expose()) {
            t = t.replace(auth.expose(), "[REDACTED]");
        }
        t
    }

    /// Sends one request and records it in `stats`. Any HTTP status is a
    /// [`Reply`]; only a missing answer is an error. GETs send the last
    /// ETag of the URL and a 304 answers with the cached body. The `Date`
    /// of every answer measures the host clock against GitHub's
    /// (`stats.clock`).
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
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ApiError::new(ErrorKind::Setup, format!("invalid URL {url:?}: {e}")))?;
        let req = self.build(&method, parsed.clone(), auth, etag.as_deref())?;
        let what = format!("{method} {url}");
        let started = std::time::Instant::now();
        let sent_at = SystemTime::now();
        let exchange = async {
            let mut resp = req.send().await.map_err(|e| {
                let mut err = ApiError::network(self.network.classify(&parsed, &e));
                err.message = format!("{what}: {}", self.scrub(&err.message, auth));
                err
            })?;
            let received_at = SystemTime::now();
            let status = resp.status().as_u16();
            let headers = std::mem::take(resp.headers_mut());
            let mut body = BytesMut::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_BODY {
                            return Err(ApiError::new(
                                ErrorKind::Malformed,
                                format!("{what}: the answer is larger than {MAX_BODY} bytes"),
                            ));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(ApiError::new(
                            ErrorKind::Malformed,
                            format!(
                                "{what}: reading the answer: {}",
                                self.scrub(&crate::net::chain(&e), auth)
                            ),
                        ))
                    }
                }
            }
            Ok::<_, ApiError>((status, headers, body.freeze(), received_at))
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
        let (status, headers, body, received_at) = match result {
            Ok(x) => x,
            Err(e) => {
                *stats.requests.entry("error".to_string()).or_default() += 1;
                return Err(e);
            }
        };
        *stats.requests.entry(status.to_string()).or_default() += 1;
        let rate = RateLimit::from_headers(|n| header(&headers, n));
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
        if let Some(sample) = rate
            .date
            .and_then(|date| clock_sample(sent_at, received_at, date))
        {
            stats.clock = Some(sample);
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
            link: header(&headers, "link"),
            rate,
            retry_after: header(&headers, "retry-after").and_then(|v| parse_retry_after(&v)),
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
                200..=299 => match header(&headers, "etag") {
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
        url: reqwest::Url,
        auth: &Secret,
        etag: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
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
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, MEDIA_TYPE)
            .header("x-github-api-version", API_VERSION)
            .header(AUTHORIZATION, auth_value);
        if let Some(etag) = etag {
            if let Ok(v) = HeaderValue::from_str(etag) {
                req = req.header(IF_NONE_MATCH, v);
            }
        }
        Ok(req)
    }
}

/// The host clock against GitHub's from one exchange: the middle of the
/// round trip on the host clock, minus the middle of the second `Date`
/// names (it is truncated to whole seconds). None when the host clock
/// went backwards during the exchange.
pub fn clock_sample(sent: SystemTime, received: SystemTime, date: u64) -> Option<ClockSample> {
    let round_trip = received.duration_since(sent).ok()?;
    let middle = crate::timefmt::unix_seconds(sent) + round_trip.as_secs_f64() / 2.0;
    Some(ClockSample {
        offset: middle - (date as f64 + 0.5),
        uncertainty: round_trip.as_secs_f64() / 2.0 + 0.5,
        at: std::time::Instant::now(),
    })
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    }

    #[test]
    fn the_clock_is_read_at_the_middle_of_the_exchange() {
        // Sent at 1000.0, answered by 1000.4, GitHub's Date says 999:
        // GitHub's clock read between 999.0 and 1000.0 when ours read
        // 1000.0 to 1000.4.
        let s = clock_sample(at(1000.0), at(1000.4), 999).unwrap();
        assert!((s.offset - 0.7).abs() < 1e-6, "{s:?}");
        assert!((s.uncertainty - 0.7).abs() < 1e-6, "{s:?}");
        // Three hours ahead.
        let s = clock_sample(at(20_000.0), at(20_000.2), 20_000 - 10_800).unwrap();
        assert!((s.offset - 10_799.6).abs() < 1e-6, "{s:?}");
        // The host clock stepped back during the exchange: no sample.
        assert!(clock_sample(at(1000.0), at(999.0), 999).is_none());
    }

    #[test]
    fn a_407_is_the_proxy_asking_for_credentials() {
        let reply = Reply {
            method: Method::GET,
            url: "http://ghes/api/v3/x".into(),
            status: 407,
            body: Bytes::from_static(b"<html>Proxy Authentication Required</html>"),
            link: None,
            rate: RateLimit::default(),
            retry_after: None,
        };
        let e = reply.error(&Secret::new("ghp_unit0123".into()));
        assert_eq!(e.kind, ErrorKind::ProxyAuth);
        assert_eq!(e.kind.reason(), Some(ApiErrorReason::ProxyAuth));
        assert!(
            e.message.contains("407 Proxy Authentication Required"),
            "{e}"
        );
    }

    #[test]
    fn pages_are_followed_only_within_the_api_origin() {
        let reply = |link: Option<&str>| Reply {
            method: Method::GET,
            url: "https://ghes.example/api/v3/repos/acme/app/actions/runners".into(),
            status: 200,
            body: Bytes::new(),
            link: link.map(String::from),
            rate: RateLimit::default(),
            retry_after: None,
        };
        let origin = "https://ghes.example";
        let next = "https://ghes.example/api/v3/repos/acme/app/actions/runners?page=2";
        assert_eq!(
            reply(Some(&format!("<{next}>; rel=\"next\"")))
                .next_page(origin)
                .ok(),
            Some(Some(next.to_string()))
        );
        assert_eq!(reply(None).next_page(origin).ok(), Some(None));
        // A link elsewhere would take the token with it: refused.
        let e = reply(Some("<https://evil.example/steal?page=2>; rel=\"next\""))
            .next_page(origin)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
        assert!(
            e.message
                .contains("is outside https://ghes.example; not following it"),
            "{e}"
        );
    }
}
