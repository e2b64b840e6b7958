//! A local server that answers like GitHub's REST API for self-hosted
//! runners: the official payloads (`tests/fixtures/github/`), ETags and
//! 304s, rate-limit headers, pagination with `Link`, the GitHub App
//! endpoints, and scripted failures. It records every request it receives
//! (method, path, headers) so tests can assert what the exporter sent.
//! It speaks plain HTTP, or HTTPS with a certificate the test makes
//! ([`FakeGithub::start_https`]), and its clock (the `Date` header) can be
//! set off the host's.
//!
//! The one fake the project allows: everything else in the tests is real.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A scripted failure, applied to every request while it is set.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// 401 Bad credentials.
    Unauthorized,
    /// 403 for a missing permission, without `retry-after`.
    Forbidden,
    /// 403 secondary rate limit, with or without `retry-after` (seconds).
    SecondaryRateLimit { retry_after: Option<u64> },
    /// 403 primary rate limit exhausted: remaining 0, reset in `reset_in`
    /// seconds.
    RateLimitExhausted { reset_in: u64 },
    /// 429, with or without `retry-after` (seconds).
    TooManyRequests { retry_after: Option<u64> },
    /// 404 for every path.
    NotFound,
    /// 500.
    ServerError,
    /// Reads the request and never answers.
    Hang,
    /// The normal answer, one byte every `per_byte`.
    SlowBody { per_byte: Duration },
    /// 200 with a body that is not JSON.
    Malformed,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status answered (0 while hanging).
    pub status: u16,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// The GitHub App the fake knows.
#[derive(Clone, Debug)]
pub struct FakeApp {
    pub app_id: u64,
    pub installation_id: u64,
}

struct State {
    /// Runners by owner path: `repos/acme/app`, `orgs/acme`,
    /// `enterprises/big`.
    owners: BTreeMap<String, Vec<Value>>,
    /// List bodies served verbatim by owner path (JSON that a `Value`
    /// cannot hold, such as integers beyond 64 bits).
    bodies: BTreeMap<String, String>,
    /// When set, only these bearer tokens reach runner endpoints.
    tokens: Option<Vec<String>>,
    limit: u64,
    remaining: u64,
    used: u64,
    reset: u64,
    failure: Option<Failure>,
    /// Requests left before the failure clears by itself.
    failure_left: Option<usize>,
    requests: Vec<Request>,
    app: Option<FakeApp>,
    issued: u64,
    /// Requests that cost rate limit (answered, not 304).
    charged: u64,
    /// Workflow runs by repository owner path (`repos/acme/app`).
    runs: BTreeMap<String, Vec<Value>>,
    /// Jobs by run id.
    jobs: BTreeMap<u64, Vec<Value>>,
    /// `GET /repos/actions/runner/releases/latest` (None: 404).
    latest_release: Option<Value>,
    /// Seconds GitHub's clock is ahead of the host's (negative: behind).
    clock_offset: i64,
}

struct Inner {
    state: Mutex<State>,
    stop: AtomicBool,
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    /// TCP connections accepted.
    connections: AtomicUsize,
}

/// A connection: plain TCP or TLS over it.
trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

pub struct FakeGithub {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The official example runners (`runners-paginated.json`: ids 23 and 24).
pub fn official_runners() -> Vec<Value> {
    let path = crate::fixtures_dir().join("github/runners-paginated.json");
    let text = std::fs::read_to_string(&path).expect("runners-paginated.json is readable");
    let v: Value = serde_json::from_str(&text).expect("runners-paginated.json is JSON");
    v["runners"].as_array().cloned().expect("a runners array")
}

/// The official single runner (`runner.json`: id 23, linux_runner).
pub fn official_runner() -> Value {
    let path = crate::fixtures_dir().join("github/runner.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("runner.json is readable"))
        .expect("runner.json is JSON")
}

/// `n` runners shaped like the official payload, ids from `first_id`,
/// named `{prefix}-{i}`.
pub fn generated_runners(prefix: &str, first_id: u64, n: usize) -> Vec<Value> {
    let template = official_runner();
    (0..n)
        .map(|i| {
            let mut r = template.clone();
            r["id"] = json!(first_id + i as u64);
            r["name"] = json!(format!("{prefix}-{i}"));
            r["busy"] = json!(i % 3 == 0);
            r["status"] = json!(if i % 10 == 9 { "offline" } else { "online" });
            r
        })
        .collect()
}

fn etag_of(body: &[u8]) -> String {
    // FNV-1a: stable, and any change to the body changes it.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("W/\"{h:016x}\"")
}

fn rfc3339(unix: u64) -> String {
    crate::github_queue::stamp(unix as i64)
}

/// An HTTP date (IMF-fixdate), as the `Date` header GitHub sends.
fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // rfc3339 gives "YYYY-MM-DDThh:mm:ssZ".
    let iso = rfc3339(unix);
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{}, {} {} {} {} GMT",
        DAYS[((unix / 86_400 + 4) % 7) as usize],
        &iso[8..10],
        MONTHS[month - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    hang: bool,
    per_byte: Option<Duration>,
}

impl Answer {
    fn json(status: u16, v: &Value) -> Answer {
        Answer {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: v.to_string().into_bytes(),
            hang: false,
            per_byte: None,
        }
    }

    fn message(status: u16, msg: &str) -> Answer {
        Answer::json(
            status,
            &json!({"message": msg, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
        )
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        304 => "Not Modified",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

fn query_param(query: &str, name: &str) -> Option<usize> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.parse().ok()).flatten()
    })
}

fn query_str(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// One page of a list as GitHub serves it: `{"total_count", key: [...]}`,
/// `per_page` (default 30, at most 100) and `page`, with a `Link` header
/// that keeps the other query parameters.
fn paginate(items: Vec<Value>, key: &str, route: &str, query: &str, base: &str) -> Answer {
    let per_page = query_param(query, "per_page").unwrap_or(30).clamp(1, 100);
    let page = query_param(query, "page").unwrap_or(1).max(1);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("total_count".into(), json!(total));
    body.insert(key.into(), Value::Array(slice));
    let mut a = Answer::json(200, &Value::Object(body));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("per_page=") && !kv.starts_with("page="))
        .collect();
    let link = |p: usize, rel: &str| {
        let mut q = kept.clone();
        let pp = format!("per_page={per_page}");
        let pg = format!("page={p}");
        q.push(&pp);
        q.push(&pg);
        format!("<{base}{route}?{}>; rel=\"{rel}\"", q.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    if !links.is_empty() {
        a.headers.push(("link".into(), links.join(", ")));
    }
    a
}

impl State {
    fn bearer(req: &Request) -> Option<&str> {
        req.header("authorization")?.strip_prefix("Bearer ")
    }

    fn route(&mut self, req: &Request, base: &str) -> Answer {
        let (route, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
        let parts: Vec<&str> = route.trim_matches('/').split('/').collect();
        let Some(token) = Self::bearer(req) else {
            return Answer::message(401, "Requires authentication");
        };
        // GitHub App endpoints take the App's JWT.
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", ["app", "installations", id, "access_tokens"]) => {
                return self.access_token(token, id);
            }
            ("GET", ["repos", _, _, "installation"]) | ("GET", ["orgs", _, "installation"]) => {
                return self.installation(token);
            }
            _ => {}
        }
        if let Some(tokens) = &self.tokens {
            if !tokens.iter().any(|t| t == token) {
                return Answer::message(401, "Bad credentials");
            }
        }
        if let ("GET", ["repos", "actions", "runner", "releases", "latest"]) =
            (req.method.as_str(), parts.as_slice())
        {
            return match &self.latest_release {
                Some(r) => Answer::json(200, r),
                None => Answer::message(404, "Not Found"),
            };
        }
        let (owner, rest) = match parts.as_slice() {
            ["repos", o, r, rest @ ..] => (format!("repos/{o}/{r}"), rest),
            ["orgs", o, rest @ ..] => (format!("orgs/{o}"), rest),
            ["enterprises", e, rest @ ..] => (format!("enterprises/{e}"), rest),
            _ => return Answer::message(404, "Not Found"),
        };
        if let ["actions", "runs" | "workflows" | "jobs", ..] = rest {
            return self.actions(&owner, route, rest, query, base);
        }
        if let (Some(body), ["actions", "runners"]) = (self.bodies.get(&owner), rest) {
            let mut a = Answer::json(200, &Value::Null);
            a.body = body.clone().into_bytes();
            return a;
        }
        let Some(runners) = self.owners.get(&owner) else {
            return Answer::message(404, "Not Found");
        };
        match rest {
            ["actions", "runners"] => paginate(runners.clone(), "runners", route, query, base),
            ["actions", "runners", id] => {
                let id: u64 = id.parse().unwrap_or(0);
                match runners.iter().find(|r| r["id"] == json!(id)) {
                    Some(r) => Answer::json(200, r),
                    None => Answer::message(404, "Not Found"),
                }
            }
            _ => Answer::message(404, "Not Found"),
        }
    }

    /// Workflow runs and jobs of a repository: `actions/runs` (with
    /// `status`), `actions/runs/{id}/jobs`, `actions/workflows/{file or
    /// id}/runs` and `actions/jobs/{id}`. A repository with runners but no
    /// runs set has none; an unknown one answers 404.
    fn actions(&self, owner: &str, route: &str, rest: &[&str], query: &str, base: &str) -> Answer {
        let known = self.runs.contains_key(owner) || self.owners.contains_key(owner);
        if !known || !owner.starts_with("repos/") {
            return Answer::message(404, "Not Found");
        }
        let runs: &[Value] = self.runs.get(owner).map_or(&[], |r| r.as_slice());
        let status = query_str(query, "status");
        let with_status = |r: &&Value| status.as_deref().is_none_or(|s| r["status"] == json!(s));
        match rest {
            ["actions", "runs"] => {
                let list: Vec<Value> = runs.iter().filter(with_status).cloned().collect();
                paginate(list, "workflow_runs", route, query, base)
            }
            ["actions", "runs", id, "jobs"] => {
                let id: u64 = id.parse().unwrap_or(0);
                match self.jobs.get(&id) {
                    Some(jobs) => paginate(jobs.clone(), "jobs", route, query, base),
                    None if runs.iter().any(|r| r["id"] == json!(id)) => {
                        paginate(Vec::new(), "jobs", route, query, base)
                    }
                    None => Answer::message(404, "Not Found"),
                }
            }
            ["actions", "workflows", workflow, "runs"] => {
                let of_workflow = |r: &&Value| {
                    let path = r["path"].as_str().unwrap_or("");
                    let file = path
                        .split('@')
                        .next()
                        .unwrap_or("")
                        .rsplit('/')
                        .next()
                        .unwrap_or("");
                    file == *workflow
                        || workflow
                            .parse::<u64>()
                            .is_ok_and(|id| r["workflow_id"] == json!(id))
                };
                if !runs.iter().any(|r| of_workflow(&r)) {
                    return Answer::message(404, "Not Found");
                }
                let list: Vec<Value> = runs
                    .iter()
                    .filter(of_workflow)
                    .filter(with_status)
                    .cloned()
                    .collect();
                paginate(list, "workflow_runs", route, query, base)
            }
            ["actions", "jobs", id] => {
                let id: u64 = id.parse().unwrap_or(0);
                match self.jobs.values().flatten().find(|j| j["id"] == json!(id)) {
                    Some(j) => Answer::json(200, j),
                    None => Answer::message(404, "Not Found"),
                }
            }
            _ => Answer::message(404, "Not Found"),
        }
    }

    fn is_jwt(token: &str) -> bool {
        token.split('.').count() == 3 && token.starts_with("eyJ")
    }

    fn installation(&mut self, token: &str) -> Answer {
        let Some(app) = &self.app else {
            return Answer::message(404, "Not Found");
        };
        if !Self::is_jwt(token) {
            return Answer::message(401, "A JSON web token could not be decoded");
        }
        Answer::json(
            200,
            &json!({"id": app.installation_id, "app_id": app.app_id, "target_type": "Organization"}),
        )
    }

    fn access_token(&mut self, token: &str, id: &str) -> Answer {
        let Some(app) = self.app.clone() else {
            return Answer::message(404, "Not Found");
        };
        if !Self::is_jwt(token) {
            return Answer::message(401, "A JSON web token could not be decoded");
        }
        if id != app.installation_id.to_string() {
            return Answer::message(404, "Not Found");
        }
        self.issued += 1;
        let t = format!("ghs_fakeinstallation{:04}", self.issued);
        self.tokens.get_or_insert_with(Vec::new).push(t.clone());
        Answer::json(
            201,
            &json!({"token": t, "expires_at": rfc3339(now_unix() + 3600), "permissions": {"organization_self_hosted_runners": "read"}}),
        )
    }

    /// The answer to one request, with failures, rate limits and ETags.
    fn answer(&mut self, req: &Request, base: &str) -> Answer {
        let now = now_unix().saturating_add_signed(self.clock_offset);
        if self.reset <= now {
            self.reset = now + 3600;
            self.remaining = self.limit;
            self.used = 0;
        }
        let failure = self.failure.clone();
        if let Some(left) = self.failure_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.failure = None;
                self.failure_left = None;
            }
        }
        let mut a = match &failure {
            Some(Failure::Unauthorized) => Answer::message(401, "Bad credentials"),
            Some(Failure::Forbidden) => {
                Answer::message(403, "Resource not accessible by personal access token")
            }
            Some(Failure::SecondaryRateLimit { retry_after }) => {
                let mut a = Answer::message(
                    403,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                );
                if let Some(s) = retry_after {
                    a.headers.push(("retry-after".into(), s.to_string()));
                }
                a
            }
            Some(Failure::RateLimitExhausted { reset_in }) => {
                self.remaining = 0;
                self.reset = now + reset_in;
                Answer::message(403, "API rate limit exceeded for user ID 1.")
            }
            Some(Failure::TooManyRequests { retry_after }) => {
                let mut a = Answer::message(429, "Too many requests");
                if let Some(s) = retry_after {
                    a.headers.push(("retry-after".into(), s.to_string()));
                }
                a
            }
            Some(Failure::NotFound) => Answer::message(404, "Not Found"),
            Some(Failure::ServerError) => Answer::message(500, "Server Error"),
            Some(Failure::Hang) => Answer {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
                hang: true,
                per_byte: None,
            },
            Some(Failure::Malformed) => Answer {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{\"total_count\": 2, \"runners\": [{\"id\": 23, \"na".to_vec(),
                hang: false,
                per_byte: None,
            },
            Some(Failure::SlowBody { .. }) | None => {
                if self.remaining == 0 {
                    Answer::message(403, "API rate limit exceeded for user ID 1.")
                } else {
                    self.route(req, base)
                }
            }
        };
        if let Some(Failure::SlowBody { per_byte }) = failure {
            a.per_byte = Some(per_byte);
        }
        if a.hang {
            return a;
        }
        if a.status == 200 && req.method == "GET" && failure != Some(Failure::Malformed) {
            let etag = etag_of(&a.body);
            if req.header("if-none-match") == Some(etag.as_str()) {
                a.status = 304;
                a.body.clear();
            }
            a.headers.push(("etag".into(), etag));
        }
        if a.status != 304 && self.remaining > 0 {
            self.remaining -= 1;
            self.used += 1;
        }
        if a.status != 304 {
            self.charged += 1;
        }
        for (k, v) in [
            ("x-ratelimit-limit", self.limit),
            ("x-ratelimit-remaining", self.remaining),
            ("x-ratelimit-used", self.used),
            ("x-ratelimit-reset", self.reset),
        ] {
            a.headers.push((k.into(), v.to_string()));
        }
        a.headers
            .push(("x-ratelimit-resource".into(), "core".into()));
        a.headers.push(("date".into(), http_date(now)));
        a.headers.push((
            "x-github-media-type".into(),
            "github.v3; format=json".into(),
        ));
        a
    }
}

/// Reads one request from `buf` + the stream. None on EOF or stop.
fn read_request(s: &mut dyn Conn, buf: &mut Vec<u8>, stop: &AtomicBool) -> Option<Request> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    let body = String::from_utf8_lossy(&buf[body_start..body_start + len]).into_owned();
    buf.drain(..body_start + len);
    Some(Request {
        method,
        path,
        headers,
        body,
        status: 0,
        at: Instant::now(),
    })
}

fn serve_connection(s: &mut dyn Conn, inner: Arc<Inner>) {
    let base = format!("{}://{}", inner.scheme, inner.addr);
    let mut buf = Vec::new();
    while let Some(mut req) = read_request(s, &mut buf, &inner.stop) {
        let answer = {
            let mut st = lock(&inner);
            let a = st.answer(&req, &base);
            req.status = a.status;
            st.requests.push(req.clone());
            a
        };
        if answer.hang {
            // Hold the connection until the client gives up or the fake
            // stops; never answer.
            let mut b = [0u8; 64];
            while !inner.stop.load(Ordering::Relaxed) {
                match s.read(&mut b) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
            return;
        }
        let mut out = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
        out.push_str("server: github.com\r\n");
        for (k, v) in &answer.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", answer.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&answer.body);
        let sent = match answer.per_byte {
            Some(d) => bytes.iter().all(|b| {
                if inner.stop.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(d);
                s.write_all(&[*b]).is_ok() && s.flush().is_ok()
            }),
            None => s.write_all(&bytes).is_ok() && s.flush().is_ok(),
        };
        if !sent {
            return;
        }
        if req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    inner.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeGithub {
    /// Starts on an ephemeral loopback port, with no runners.
    pub fn start() -> FakeGithub {
        Self::start_on("127.0.0.1:0").expect("fake GitHub listens on loopback")
    }

    pub fn start_on(addr: &str) -> std::io::Result<FakeGithub> {
        Self::start_with(addr, None)
    }

    /// Starts an HTTPS server on `addr` with the PEM certificate chain and
    /// key given (see [`crate::pki::Pki::server_for`]).
    pub fn start_https(addr: &str, cert: &Path, key: &Path) -> std::io::Result<FakeGithub> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(std::io::Error::other)?
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(std::io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(std::io::Error::other)?;
        Self::start_with(addr, Some(Arc::new(config)))
    }

    fn start_with(
        addr: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<FakeGithub> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                owners: BTreeMap::new(),
                bodies: BTreeMap::new(),
                tokens: None,
                limit: 5000,
                remaining: 5000,
                used: 0,
                reset: now_unix() + 3600,
                failure: None,
                failure_left: None,
                requests: Vec::new(),
                app: None,
                issued: 0,
                charged: 0,
                runs: BTreeMap::new(),
                jobs: BTreeMap::new(),
                latest_release: None,
                clock_offset: 0,
            }),
            stop: AtomicBool::new(false),
            addr,
            scheme: if tls.is_some() { "https" } else { "http" },
            connections: AtomicUsize::new(0),
        });
        let i = Arc::clone(&inner);
        let accept = std::thread::spawn(move || {
            while !i.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        i.connections.fetch_add(1, Ordering::Relaxed);
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                        let _ = s.set_nodelay(true);
                        let i = Arc::clone(&i);
                        let tls = tls.clone();
                        std::thread::spawn(move || match tls {
                            None => {
                                let mut s = s;
                                serve_connection(&mut s, i)
                            }
                            Some(config) => {
                                let Ok(conn) = rustls::ServerConnection::new(config) else {
                                    return;
                                };
                                let mut s = rustls::StreamOwned::new(conn, s);
                                serve_connection(&mut s, i)
                            }
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(FakeGithub {
            addr,
            inner,
            accept: Some(accept),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner)
    }

    /// `http://127.0.0.1:PORT` (or `https://`): the exporter's `[github]
    /// api_url`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.inner.scheme, self.addr)
    }

    /// TCP connections accepted so far (a TLS handshake the client
    /// refused counts, a request never arrived on it).
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Sets GitHub's clock `secs` ahead of the host's (negative: behind):
    /// the `Date` header and the rate-limit window follow it.
    pub fn set_clock_offset(&self, secs: i64) {
        self.state().clock_offset = secs;
    }

    /// Sets the runners of an owner path (`repos/acme/app`, `orgs/acme`,
    /// `enterprises/big`).
    pub fn set_runners(&self, owner: &str, runners: Vec<Value>) {
        self.state().owners.insert(owner.to_string(), runners);
    }

    /// Removes an owner: its endpoints answer 404.
    pub fn remove_owner(&self, owner: &str) {
        let mut st = self.state();
        st.owners.remove(owner);
        st.bodies.remove(owner);
    }

    /// Answers the runner list of an owner path with `body`, verbatim, in
    /// one page (with an ETag like any other answer).
    pub fn set_list_body(&self, owner: &str, body: &str) {
        self.state()
            .bodies
            .insert(owner.to_string(), body.to_string());
    }

    /// Changes one runner in place (status, busy, labels ...).
    pub fn update_runner(&self, owner: &str, id: u64, f: impl FnOnce(&mut Value)) {
        let mut st = self.state();
        if let Some(r) = st
            .owners
            .get_mut(owner)
            .and_then(|rs| rs.iter_mut().find(|r| r["id"] == json!(id)))
        {
            f(r);
        }
    }

    /// Removes one runner: its id answers 404 and lists leave it out.
    pub fn remove_runner(&self, owner: &str, id: u64) {
        if let Some(rs) = self.state().owners.get_mut(owner) {
            rs.retain(|r| r["id"] != json!(id));
        }
    }

    /// Sets the workflow runs of a repository (`repos/acme/app`).
    pub fn set_runs(&self, owner: &str, runs: Vec<Value>) {
        self.state().runs.insert(owner.to_string(), runs);
    }

    /// Changes one run in place (its status, ...).
    pub fn update_run(&self, owner: &str, id: u64, f: impl FnOnce(&mut Value)) {
        let mut st = self.state();
        if let Some(r) = st
            .runs
            .get_mut(owner)
            .and_then(|rs| rs.iter_mut().find(|r| r["id"] == json!(id)))
        {
            f(r);
        }
    }

    /// Sets the jobs of a run.
    pub fn set_jobs(&self, run_id: u64, jobs: Vec<Value>) {
        self.state().jobs.insert(run_id, jobs);
    }

    /// Changes the jobs of a run in place.
    pub fn update_jobs(&self, run_id: u64, f: impl FnOnce(&mut Vec<Value>)) {
        if let Some(j) = self.state().jobs.get_mut(&run_id) {
            f(j);
        }
    }

    /// The answer to `GET /repos/actions/runner/releases/latest` (a release
    /// such as `tests/fixtures/github/queue/release-latest.json`); None
    /// answers 404, as GitHub does for a repository without releases.
    pub fn set_latest_release(&self, release: Option<Value>) {
        self.state().latest_release = release;
    }

    /// The release in `tests/fixtures/github/queue/release-latest.json`
    /// (tag `v2.330.0`).
    pub fn fixture_latest_release() -> Value {
        let path = crate::fixtures_dir().join("github/queue/release-latest.json");
        serde_json::from_str(
            &std::fs::read_to_string(path).expect("release-latest.json is readable"),
        )
        .expect("release-latest.json is JSON")
    }

    /// Only these bearer tokens reach runner endpoints; others get 401.
    pub fn require_token(&self, token: &str) {
        self.state().tokens = Some(vec![token.to_string()]);
    }

    /// Enables the GitHub App endpoints.
    pub fn enable_app(&self, app: FakeApp) {
        let mut st = self.state();
        st.app = Some(app);
        st.tokens.get_or_insert_with(Vec::new);
    }

    /// The rate-limit window: limit, remaining, reset (epoch seconds).
    pub fn set_rate_limit(&self, limit: u64, remaining: u64, reset: u64) {
        let mut st = self.state();
        st.limit = limit;
        st.remaining = remaining;
        st.used = limit - remaining.min(limit);
        st.reset = reset;
    }

    /// (limit, remaining, reset).
    pub fn rate_limit(&self) -> (u64, u64, u64) {
        let st = self.state();
        (st.limit, st.remaining, st.reset)
    }

    /// Answers every request with `f` until cleared.
    pub fn fail(&self, f: Failure) {
        let mut st = self.state();
        st.failure = Some(f);
        st.failure_left = None;
    }

    /// Answers the next `n` requests with `f`.
    pub fn fail_times(&self, f: Failure, n: usize) {
        let mut st = self.state();
        st.failure = Some(f);
        st.failure_left = Some(n);
    }

    pub fn clear_failure(&self) {
        let mut st = self.state();
        st.failure = None;
        st.failure_left = None;
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.state().requests.len()
    }

    /// Answered requests that cost rate limit (all but 304s).
    pub fn charged(&self) -> u64 {
        self.state().charged
    }

    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Waits until at least `n` requests arrived; returns them.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Option<Vec<Request>> {
        crate::wait_for(timeout, || {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(f: &FakeGithub, path: &str, headers: &[(&str, &str)]) -> crate::Response {
        let mut h = vec![("Authorization", "Bearer t")];
        h.extend_from_slice(headers);
        crate::get_with(f.addr, "GET", path, &h).unwrap()
    }

    #[test]
    fn lists_paginate_with_link_headers_and_etags_give_304() {
        let f = FakeGithub::start();
        f.set_runners("repos/acme/app", generated_runners("r", 1, 250));
        let r = get(&f, "/repos/acme/app/actions/runners?per_page=100", &[]);
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v["total_count"], 250);
        assert_eq!(v["runners"].as_array().unwrap().len(), 100);
        let link = r.header("link").unwrap();
        assert!(link.contains("page=2>; rel=\"next\""), "{link}");
        assert!(link.contains("page=3>; rel=\"last\""), "{link}");
        let r3 = get(
            &f,
            "/repos/acme/app/actions/runners?per_page=100&page=3",
            &[],
        );
        let v: Value = serde_json::from_str(&r3.body()).unwrap();
        assert_eq!(v["runners"].as_array().unwrap().len(), 50);
        assert!(!r3.header("link").unwrap().contains("next"));
        let etag = r.header("etag").unwrap().to_string();
        let before = f.rate_limit().1;
        let again = get(
            &f,
            "/repos/acme/app/actions/runners?per_page=100",
            &[("If-None-Match", &etag)],
        );
        assert_eq!(again.status, 304);
        assert_eq!(f.rate_limit().1, before, "a 304 costs nothing");
        assert_eq!(f.requests().len(), 3);
        assert_eq!(f.requests()[2].header("if-none-match"), Some(etag.as_str()));
    }

    #[test]
    fn answers_carry_githubs_date() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_767_603_600), "Mon, 05 Jan 2026 09:00:00 GMT");
        let f = FakeGithub::start();
        f.set_runners("orgs/acme", official_runners());
        let r = get(&f, "/orgs/acme/actions/runners/24", &[]);
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    }

    #[test]
    fn runs_filter_by_status_and_workflow_and_jobs_paginate() {
        let f = FakeGithub::start();
        let runs = crate::github_queue::fixture("queued-runs.json")["workflow_runs"].clone();
        let mut runs = runs.as_array().unwrap().clone();
        runs[0]["status"] = json!("in_progress");
        f.set_runs("repos/acme/app", runs);
        f.set_jobs(
            20711000202,
            crate::github_queue::fixture("run-20711000202-jobs.json")["jobs"]
                .as_array()
                .unwrap()
                .clone(),
        );
        let body = |r: crate::Response| -> Value { serde_json::from_str(&r.body()).unwrap() };
        let q = body(get(&f, "/repos/acme/app/actions/runs?status=queued", &[]));
        assert_eq!(q["total_count"], 1);
        assert_eq!(q["workflow_runs"][0]["name"], "Deploy");
        let all = body(get(&f, "/repos/acme/app/actions/runs", &[]));
        assert_eq!(all["total_count"], 2);
        let r = get(
            &f,
            "/repos/acme/app/actions/runs/20711000202/jobs?filter=latest&per_page=2",
            &[],
        );
        let link = r.header("link").unwrap().to_string();
        assert!(
            link.contains("/repos/acme/app/actions/runs/20711000202/jobs?filter=latest&per_page=2&page=2>; rel=\"next\""),
            "{link}"
        );
        assert_eq!(body(r)["jobs"].as_array().unwrap().len(), 2);
        // A run without jobs set has none; an unknown run is 404.
        let none = body(get(
            &f,
            "/repos/acme/app/actions/runs/20711000101/jobs",
            &[],
        ));
        assert_eq!(none["total_count"], 0);
        assert_eq!(
            get(&f, "/repos/acme/app/actions/runs/1/jobs", &[]).status,
            404
        );
        let deploy = body(get(
            &f,
            "/repos/acme/app/actions/workflows/deploy.yml/runs",
            &[],
        ));
        assert_eq!(deploy["total_count"], 1);
        assert_eq!(
            get(&f, "/repos/acme/app/actions/workflows/nope.yml/runs", &[]).status,
            404
        );
        assert_eq!(get(&f, "/repos/acme/other/actions/runs", &[]).status, 404);
        let job = body(get(&f, "/repos/acme/app/actions/jobs/58100000202", &[]));
        assert_eq!(job["name"], "gpu-tests");
        // A repository known only by its runners has no runs.
        f.set_runners("repos/acme/lib", official_runners());
        let lib = body(get(&f, "/repos/acme/lib/actions/runs?status=queued", &[]));
        assert_eq!(lib["total_count"], 0);
    }

    #[test]
    fn single_runners_failures_and_tokens() {
        let f = FakeGithub::start();
        f.set_runners("orgs/acme", official_runners());
        assert_eq!(get(&f, "/orgs/acme/actions/runners/24", &[]).status, 200);
        assert_eq!(get(&f, "/orgs/acme/actions/runners/99", &[]).status, 404);
        f.require_token("good");
        assert_eq!(get(&f, "/orgs/acme/actions/runners/24", &[]).status, 401);
        f.fail_times(
            Failure::TooManyRequests {
                retry_after: Some(9),
            },
            1,
        );
        let r = get(&f, "/orgs/acme/actions/runners/24", &[]);
        assert_eq!((r.status, r.header("retry-after")), (429, Some("9")));
        assert_eq!(get(&f, "/orgs/acme/actions/runners/24", &[]).status, 401);
    }
}
