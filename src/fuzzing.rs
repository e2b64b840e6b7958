//! The fuzz harnesses: one function per target of `fuzz/` (run by
//! cargo-fuzz, see docs/FUZZING.md) and of `tests/it/fuzz_regressions.rs`
//! (which replays the committed corpus in a normal `cargo test`). Both call
//! these same functions, so the regression test checks exactly what the
//! fuzzer checked.
//!
//! Each harness feeds arbitrary bytes to the exporter's parsers and panics
//! when an invariant the code promises is broken; a panic is what the
//! fuzzer reports as a crash. Not part of the exporter's API.

use crate::collect::github::client::{ErrorKind, Reply};
use crate::collect::github::scope;
use crate::collect::github::{ApiRunner, RunnerList};
use crate::collect::runner::parse::{self, Line, Mode, ParseAux, MAX_JOB_NAME, RECENT_EVENTS};
use crate::collect::runner::registration;
use crate::collect::runner::root::{Consumer, Kind};
use crate::collect::runner::tail::{LineEvent, LineReader, Sink};
use crate::http::Format;
use crate::snapshot::{LogEvent, LogState, SkipReason};
use std::path::Path;

/// A harness: panics when an input breaks an invariant.
pub type Harness = fn(&[u8]);

/// The fuzz targets, by name: `fuzz/fuzz_targets/<name>.rs`,
/// `fuzz/seeds/<name>/` and `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Harness)] = &[
    ("log_line", log_line),
    ("runner_file", runner_file),
    ("config", config),
    ("github_json", github_json),
    ("accept", accept),
];

/// A line as a reader hands it over: its bytes, or `None` for a line
/// dropped as too long.
type Event = Option<Vec<u8>>;

fn collect_events(reader: &mut LineReader, chunks: &[&[u8]]) -> Vec<Event> {
    let mut out = Vec::new();
    for c in chunks {
        reader.feed(c, &mut |ev| {
            out.push(match ev {
                LineEvent::Line(b) => Some(b.to_vec()),
                LineEvent::TooLong => None,
            })
        });
    }
    out
}

/// Splits `data` into chunks of 1 to 64 bytes, their sizes drawn from
/// `seed`: the way reads of a growing file cut lines.
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut rest = data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (1 + (state >> 16) as usize % 64).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

fn version_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// Checks one line's classification and the message interpretation.
fn check_line(text: &str) -> Option<f64> {
    // `interpret` also takes any text (console output is unwrapped first).
    check_message(text);
    match parse::parse_line(text) {
        Line::Entry(e) => {
            let body = text.strip_suffix('\r').unwrap_or(text);
            assert!(body.starts_with('['), "an entry starts with '[': {text:?}");
            assert!(
                !e.source.is_empty() && !e.source.contains(' '),
                "source {:?} of {text:?}",
                e.source
            );
            assert!(
                body.ends_with(e.message),
                "message {:?} is not the end of {text:?}",
                e.message
            );
            // Years 0000 to 9999.
            assert!(
                e.ts.is_finite() && (-62_167_219_200.0..253_402_387_200.0).contains(&e.ts),
                "timestamp {} of {text:?}",
                e.ts
            );
            check_message(e.message);
            Some(e.ts)
        }
        Line::Continuation | Line::Malformed => None,
    }
}

fn check_message(message: &str) {
    match parse::interpret(message) {
        Some(parse::Msg::Version(v)) => {
            assert!(version_ok(v), "version {v:?} from {message:?}");
        }
        Some(parse::Msg::JobStarted { name, at }) => {
            assert!(message.ends_with(name), "job {name:?} from {message:?}");
            assert!(at.is_none_or(f64::is_finite));
        }
        Some(parse::Msg::JobCompleted { name, .. }) => {
            assert!(message.contains(name), "job {name:?} from {message:?}");
        }
        Some(parse::Msg::VersionDeprecated(v)) | Some(parse::Msg::ForbiddenWithVersion(v)) => {
            assert!(version_ok(v), "version {v:?} from {message:?}");
            assert!(message.contains(v), "version {v:?} from {message:?}");
        }
        _ => {}
    }
    // Worker entries: any source, any message.
    for source in ["StepsRunner", "ProcessInvokerWrapper", "Worker"] {
        match parse::interpret_worker(source, message) {
            Some(parse::WorkerMsg::Step(s)) | Some(parse::WorkerMsg::Arguments(s)) => {
                assert!(message.contains(s), "{s:?} from {message:?}");
            }
            _ => {}
        }
    }
    for max in [0, 1, 2, 3, 7, MAX_JOB_NAME] {
        let t = parse::truncate(message, max);
        assert!(
            message.starts_with(t),
            "{t:?} is not a prefix of {message:?}"
        );
        if message.len() <= max {
            assert_eq!(t, message);
        } else {
            // At most one (partial) character is cut off beyond `max`.
            assert!(
                t.len() <= max && t.len() + 4 > max,
                "{message:?} cut at {max}: {t:?}"
            );
        }
    }
}

/// Feeds `chunks` to the runner collector's own line consumer.
fn consume(kind: Kind, mode: Mode, max: usize, chunks: &[&[u8]]) -> LogState {
    let mut logs = LogState::default();
    let mut aux = ParseAux::default();
    let mut sink = Consumer {
        logs: &mut logs,
        aux: &mut aux,
        kind,
    };
    let mut reader = LineReader::new(max);
    for c in chunks {
        sink.bytes(c.len() as u64);
        reader.feed(c, &mut |ev| sink.line(ev, mode));
    }
    logs
}

/// `log_line`: a `_diag` log as the tail reads it. The first byte picks
/// the log kind (Runner/Worker), the mode (start-up/live) and the line
/// limit, the second how reads cut the stream; the rest is the log.
///
/// Invariants: the lines and the resulting state do not depend on how the
/// stream is cut; a reader started mid-file drops exactly the first line;
/// entries are well-formed; the state stays bounded (recent events, job
/// name, version) and counts nothing at start-up; a Worker log never
/// changes the listener's state; skip counters match the lines.
pub fn log_line(data: &[u8]) {
    let [flags, seed, body @ ..] = data else {
        return;
    };
    let kind = if flags & 1 == 0 {
        Kind::Runner
    } else {
        Kind::Worker
    };
    let mode = if flags & 2 == 0 {
        Mode::Live
    } else {
        Mode::Startup
    };
    // Small limits make over-long lines reachable.
    let max = if flags & 4 == 0 {
        1024
    } else {
        1 + usize::from(flags >> 3) * 4
    };

    let whole = collect_events(&mut LineReader::new(max), &[body]);
    let cut = chunks(body, *seed);
    let pieces = collect_events(&mut LineReader::new(max), &cut);
    assert_eq!(whole, pieces, "lines depend on how reads cut the stream");

    let mid = collect_events(&mut LineReader::mid_line(max), &cut);
    let after_first = match body.iter().position(|&b| b == b'\n') {
        Some(i) => collect_events(&mut LineReader::new(max), &[&body[i + 1..]]),
        None => Vec::new(),
    };
    assert_eq!(
        mid, after_first,
        "mid-file reader must drop only the first line"
    );

    let mut too_long = 0;
    let mut invalid_utf8 = 0;
    let mut last_entry: Option<f64> = None;
    for ev in &whole {
        match ev {
            None => too_long += 1,
            Some(b) => {
                assert!(b.len() <= max && !b.contains(&b'\n'), "line {b:?}");
                match std::str::from_utf8(b) {
                    Ok(text) => {
                        if let Some(ts) = check_line(text) {
                            last_entry = Some(last_entry.map_or(ts, |t| t.max(ts)));
                        }
                    }
                    Err(_) => invalid_utf8 += 1,
                }
            }
        }
    }

    let logs = consume(kind, mode, max, &[body]);
    assert_eq!(
        logs,
        consume(kind, mode, max, &cut),
        "state depends on how reads cut the stream"
    );
    assert_eq!(logs.bytes_read, body.len() as u64);
    assert_eq!(
        logs.skipped.get(SkipReason::TooLong),
        too_long,
        "too_long count"
    );
    assert_eq!(
        logs.skipped.get(SkipReason::InvalidUtf8),
        invalid_utf8,
        "invalid_utf8 count"
    );
    assert_eq!(
        logs.skipped.get(SkipReason::NotRegularFile),
        0,
        "not_regular_file count"
    );
    assert_eq!(logs.last_entry, last_entry, "last entry time");
    assert!(logs.recent.len() <= RECENT_EVENTS);
    if let Some(j) = &logs.current_job {
        assert!(j.name.len() <= MAX_JOB_NAME && j.started.is_finite());
    }
    if let Some(v) = &logs.version {
        assert!(version_ok(v), "version {v:?}");
    }
    if mode == Mode::Startup {
        assert!(
            logs.jobs.iter().all(|(_, n)| n == 0),
            "jobs counted at start-up"
        );
        assert!(
            logs.events.iter().all(|(_, n)| n == 0),
            "events counted at start-up"
        );
        assert_eq!(logs.durations.count(), 0, "durations observed at start-up");
    } else {
        let durations = logs.durations.count();
        let jobs: u64 = logs.jobs.iter().map(|(_, n)| n).sum();
        assert!(durations <= jobs, "{durations} durations for {jobs} jobs");
    }
    if let Some(f) = &logs.docker_failure {
        assert!(f.command.len() <= 40 && f.exit_code != 0, "{f:?}");
        assert!(f.step.as_ref().is_none_or(|s| s.len() <= 128), "{f:?}");
    }
    if kind == Kind::Worker {
        // A Worker log tells only of container jobs and failing docker
        // commands.
        assert!(
            logs.recent
                .iter()
                .all(|(e, _)| *e == LogEvent::DockerFailed),
            "{:?}",
            logs.recent
        );
        let mut events = crate::snapshot::Counts::default();
        events.add(
            LogEvent::DockerFailed,
            logs.events.get(LogEvent::DockerFailed),
        );
        let listener = LogState {
            last_entry: logs.last_entry,
            bytes_read: logs.bytes_read,
            skipped: logs.skipped,
            container_job_at: logs.container_job_at,
            docker_failure: logs.docker_failure.clone(),
            recent: logs.recent.clone(),
            events,
            ..LogState::default()
        };
        assert_eq!(logs, listener, "a Worker log changed the listener state");
    }
}

/// `runner_file`: the bytes of a `.runner` (and of a `.service`).
///
/// Invariants: any JSON object parses (fields of the wrong type count as
/// absent), anything else is an error; a BOM changes nothing; names kept
/// are non-empty; a unit name from `.service` is one clean token; the work
/// folder stays absolute; a `gitHubUrl` never yields an API base whose
/// origin differs from its request URLs' (the token's destination).
pub fn runner_file(data: &[u8]) {
    let parsed = registration::parse_runner_file(data);
    let stripped = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let is_object = matches!(
        serde_json::from_slice::<serde_json::Value>(stripped),
        Ok(serde_json::Value::Object(_))
    );
    assert_eq!(
        parsed.is_ok(),
        is_object,
        "a .runner parses exactly when it is a JSON object: {parsed:?}"
    );
    if !data.starts_with(b"\xEF\xBB\xBF") {
        let with_bom = registration::parse_runner_file(&[b"\xEF\xBB\xBF", data].concat());
        assert_eq!(
            parsed.as_ref().ok(),
            with_bom.as_ref().ok(),
            "a BOM changed the result"
        );
    }
    if let Ok(reg) = &parsed {
        assert!(reg.agent_name.as_deref().is_none_or(|n| !n.is_empty()));
        assert!(reg.work_folder.as_deref().is_none_or(|w| !w.is_empty()));
        let root = Path::new("/home/runner/actions-runner");
        let work = registration::work_dir(root, reg.work_folder.as_deref());
        assert!(work.is_absolute(), "work folder {work:?}");
        if let Some(url) = &reg.github_url {
            check_github_url(url);
        }
    }
    // The same bytes as text, for the URL parser too.
    if let Ok(text) = std::str::from_utf8(data) {
        check_github_url(text);
    }

    if let Some(unit) = registration::parse_service_file(data) {
        assert!(!unit.is_empty() && unit.len() <= 256, "unit {unit:?}");
        assert!(
            !unit.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/'),
            "unit {unit:?}"
        );
        let first = std::str::from_utf8(data)
            .ok()
            .and_then(|t| t.lines().next())
            .map(str::trim);
        assert_eq!(first, Some(unit.as_str()), "unit name is the first line");
    }
}

fn check_github_url(url: &str) {
    let Ok((base, owner)) = scope::parse_github_url(url) else {
        return;
    };
    assert!(
        base.starts_with("https://") || base.starts_with("http://"),
        "API base {base:?} from {url:?}"
    );
    let origin = scope::origin(&base);
    assert!(!origin.contains('@'), "API base {base:?} from {url:?}");
    for path in [owner.runner_path(42), owner.list_path()] {
        assert!(path.starts_with('/'), "path {path:?}");
        let full = format!("{base}{path}");
        assert_eq!(
            scope::origin(&full),
            origin,
            "request {full:?} leaves the API origin of {url:?}"
        );
    }
}

/// `config`: a config file.
///
/// Invariants: a syntax error names its line and column; every error
/// names the file; a config that parses prints (as `config check` does) to
/// TOML that parses back to the same config.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::parse(text, "fuzz.toml") {
        Ok(c) => {
            let printed = c.to_toml();
            match crate::config::parse(&printed, "printed.toml") {
                Ok(again) => assert_eq!(again, c, "printed as {printed}"),
                Err(e) => panic!("the printed config does not parse: {e}\n{printed}"),
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.toml:"), "{shown}");
            if toml::Deserializer::parse(text).is_err() {
                let lines = text.split('\n').count();
                assert!(
                    (1..=lines).contains(&e.line) && e.column >= 1,
                    "syntax error without a valid position: {shown}"
                );
            }
        }
    }
}

/// Statuses GitHub answers with (and a few it should not).
const STATUSES: [u16; 12] = [200, 201, 204, 304, 400, 401, 403, 404, 418, 429, 500, 502];

/// `github_json`: an API answer. The first byte picks the status, the
/// bytes up to the first newline (if alphanumeric) end the token, the rest
/// is the body (also read as a `Link` header).
///
/// Invariants: decoding a runner or a runner list never panics; a decoded
/// runner is registered under its id and name; a failure is `malformed`;
/// an error message never holds the token or a control character (it is
/// logged and shown by `/health`); a `next` link is one the header named.
/// The queue collector's payloads (workflow runs, jobs) in the same
/// answer: whatever parses gives sane times, label sets and aggregates.
fn queue_payloads(reply: &Reply) {
    use crate::collect::queue::api::{parse_time, JobList, RunList};
    use crate::collect::queue::labels::{aggregate, ActiveJob, LabelSet};
    if let Ok(list) = reply.json::<RunList>() {
        for r in &list.workflow_runs {
            let f = r.workflow_file();
            assert!(!f.contains('/') && !f.contains('@'), "{f:?}");
            if let Some(t) = r.updated_at.as_deref() {
                let _ = parse_time(t);
            }
        }
    }
    let Ok(list) = reply.json::<JobList>() else {
        return;
    };
    let mut active = Vec::new();
    for j in &list.jobs {
        if let Some(q) = j.queue_time() {
            assert!(q > 0.0, "{j:?}");
        }
        if let Some(d) = j.duration() {
            assert!(d >= 0.0, "{j:?}");
        }
        let set = LabelSet::of(&j.labels);
        let key = set.key();
        assert_eq!(key, key.to_lowercase());
        assert!(set.labels().windows(2).all(|w| w[0] < w[1]), "{key:?}");
        active.push(ActiveJob {
            repository: "octo/hello".into(),
            workflow: "ci.yml".into(),
            name: j.name.clone(),
            labels: set,
            queued: j.is("queued"),
            wait: j.created().map_or(0.0, |c| (1.8e9 - c).max(0.0)),
            url: String::new(),
        });
    }
    let runner = crate::snapshot::GithubRunner {
        name: "r".into(),
        registered: true,
        online: true,
        labels: vec!["self-hosted".into(), "Linux".into()],
        ..Default::default()
    };
    let (sets, waiting) = aggregate(&active, std::slice::from_ref(&runner), 3);
    assert!(sets.len() <= 4, "{} sets over a bound of 3", sets.len());
    let queued = active.iter().filter(|j| j.queued).count() as u64;
    assert!(sets.iter().map(|s| s.queued).sum::<u64>() <= queued);
    assert!(waiting.len() as u64 <= queued);
}

pub fn github_json(data: &[u8]) {
    let [status, rest @ ..] = data else {
        return;
    };
    let status = STATUSES[usize::from(*status) % STATUSES.len()];
    let (token_tail, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) if rest[..i].iter().all(u8::is_ascii_alphanumeric) => (&rest[..i], &rest[i + 1..]),
        _ => (&b""[..], rest),
    };
    let token = format!("ghp_{}", String::from_utf8_lossy(token_tail));
    let secret = crate::collect::github::auth::Secret::new(token.clone());
    let url = "https://api.github.com/repos/octo/hello/actions/runners";
    let reply = Reply {
        method: hyper::Method::GET,
        url: url.to_string(),
        status,
        body: bytes::Bytes::copy_from_slice(body),
        link: None,
        rate: Default::default(),
        retry_after: None,
    };

    // Error messages are logged and shown by /health.
    let printable = |m: &str| {
        assert!(!m.contains(char::is_control), "control character in {m:?}");
    };
    let raw: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match reply.json::<ApiRunner>() {
        Ok(r) => {
            let g = r.into_runner(None, "octo/hello", 1.0);
            assert!(g.registered && g.id.is_some(), "{g:?}");
            if let Some(o) = raw.as_ref().and_then(|v| v.as_object()) {
                // An id that fits a u64 keeps its value; any other is the
                // canonical text of an integral number.
                let id = g.id.as_ref().map(|i| i.to_string()).unwrap_or_default();
                if let Some(n) = o.get("id").and_then(|v| v.as_u64()) {
                    assert_eq!(id, n.to_string(), "{g:?}");
                }
                assert!(
                    id == "0"
                        || id
                            .trim_start_matches('-')
                            .bytes()
                            .next()
                            .is_some_and(|b| (b'1'..=b'9').contains(&b)),
                    "{id}"
                );
                assert!(
                    id.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit()),
                    "{id}"
                );
                let name = o.get("name").and_then(|v| v.as_str());
                assert_eq!(Some(g.name.as_str()), name, "{g:?}");
            }
        }
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Malformed);
            printable(&e.message);
        }
    }
    match reply.json_borrowed::<RunnerList<'_>>() {
        Ok(list) => {
            let (runners, bad) = list.read();
            assert_eq!(runners.len() + bad.len(), list.runners.len());
            for r in runners {
                let g = r.into_runner(None, "octo/hello", 1.0);
                assert!(g.registered && g.id.is_some());
            }
            for b in &bad {
                printable(b);
            }
        }
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Malformed);
            printable(&e.message);
        }
    }
    queue_payloads(&reply);
    let e = reply.error(&secret);
    assert!(!e.message.contains(&token), "token in {:?}", e.message);
    printable(&e.message);
    assert!(e.message.starts_with(&format!("GET {url}: HTTP {status}")));
    let expected = match status {
        401 => Some(ErrorKind::Auth),
        404 => Some(ErrorKind::NotFound),
        429 => Some(ErrorKind::RateLimited),
        500..=599 => Some(ErrorKind::ServerError),
        403 => None,
        _ => Some(ErrorKind::Other),
    };
    if let Some(k) = expected {
        assert_eq!(e.kind, k, "status {status}");
    }

    if let Ok(link) = std::str::from_utf8(body) {
        if let Some(next) = scope::next_link(link) {
            assert!(
                link.contains(&format!("<{next}>")),
                "next {next:?} of {link:?}"
            );
            assert!(next.starts_with(scope::origin(&next)));
        }
    }
}

/// `accept`: a request header or query string, given to the content
/// negotiation and to the `/health` query parser.
///
/// Invariants: no header means the text format and no gzip; OpenMetrics,
/// JSON and gzip are chosen only when named; ranges with q=0 and empty
/// ranges change nothing; a query parses only when its percent-escapes
/// are well-formed, and what it selects survives re-encoding.
pub fn accept(data: &[u8]) {
    use crate::health::Selector;
    use crate::http::{accepts_gzip, negotiate, wants_json};

    assert_eq!(negotiate(None), Format::Text);
    assert!(!accepts_gzip(None) && !wants_json(None));
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let lower = s.to_ascii_lowercase();

    let f = negotiate(Some(s));
    if f != Format::Text {
        assert!(
            lower.contains("application/openmetrics-text"),
            "{f:?} for {s:?}"
        );
    }
    if f == Format::OpenMetrics0 {
        assert!(s.contains("0.0.1"), "{f:?} for {s:?}");
    }
    for extra in [",", ", ,", ",text/plain;q=0", ",*/*;q=0,gzip;q=0.0"] {
        let more = format!("{s}{extra}");
        assert_eq!(negotiate(Some(&more)), f, "{more:?}");
        assert_eq!(accepts_gzip(Some(&more)), accepts_gzip(Some(s)), "{more:?}");
        assert_eq!(wants_json(Some(&more)), wants_json(Some(s)), "{more:?}");
    }
    if accepts_gzip(Some(s)) {
        assert!(lower.contains("gzip") || s.contains('*'), "gzip for {s:?}");
    }
    if wants_json(Some(s)) {
        assert!(lower.contains("application/json"), "JSON for {s:?}");
    }

    match Selector::from_query(Some(s)) {
        Ok(sel) => {
            let b = s.as_bytes();
            for (i, _) in s.match_indices('%') {
                let hex = b.get(i + 1..i + 3);
                assert!(
                    hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                    "accepted a malformed escape at {i} in {s:?}"
                );
            }
            let mut query = Vec::new();
            for (k, v) in [
                ("runner", &sel.runner),
                ("role", &sel.role),
                ("environment", &sel.environment),
            ] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", crate::query::encode(v)));
                }
            }
            let query = query.join("&");
            let again = Selector::from_query(Some(&query))
                .unwrap_or_else(|e| panic!("{query:?} (from {s:?}) fails: {e}"));
            assert_eq!(
                (again.runner, again.role, again.environment),
                (sel.runner, sel.role, sel.environment),
                "selector of {s:?} changed through {query:?}"
            );
        }
        Err(e) => assert!(!e.is_empty()),
    }
}
