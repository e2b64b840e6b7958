//! The runner agent's `_diag` line format and the messages the exporter
//! understands, as pure functions, plus how a message changes [`LogState`].
//!
//! A line is `[yyyy-MM-dd HH:mm:ssZ LEVEL Source] message` (LEVEL is four
//! characters: `INFO`, `WARN`, `ERR `, `VERB`, `CRIT`); a line without that
//! prefix continues the previous entry (exception traces, HTTP dumps).
//! Console output is traced as `WRITE LINE: ` / `WRITE ERROR: `, and the
//! listener's status lines carry their own `yyyy-MM-dd HH:mm:ssZ: ` stamp.

use crate::metrics::catalog::JOB_DURATION_BUCKETS;
use crate::snapshot::{CurrentJob, DockerFailure, JobResult, LogEvent, LogState};
use crate::timefmt::parse_log_timestamp;
use std::time::Instant;

/// Longest job display name kept (it becomes a label value of
/// `github_runner_current_job_info`); longer names are cut at a character
/// boundary.
pub const MAX_JOB_NAME: usize = 256;
/// Longest version string accepted from `Current runner version: '...'`.
const MAX_VERSION: usize = 64;
/// Recent events kept for the diagnosis.
pub const RECENT_EVENTS: usize = 32;
/// Longest step name kept from a Worker log.
const MAX_STEP: usize = 128;
/// The end of GitHub's refusal of an old runner, after `Runner version
/// v<version>`.
const DEPRECATED_SUFFIX: &str = " is deprecated and cannot receive messages.";

/// Severity of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Err,
    Verb,
    Crit,
}

/// One entry's first line, split into its parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry<'a> {
    /// Seconds since the epoch.
    pub ts: f64,
    pub level: Level,
    pub source: &'a str,
    pub message: &'a str,
}

/// What one line of a `_diag` log is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Line<'a> {
    /// The first line of an entry.
    Entry(Entry<'a>),
    /// A line without the prefix: it continues the previous entry.
    Continuation,
    /// Not something the agent writes: control characters (binary data), or
    /// a timestamped prefix with an unknown level or no closing bracket.
    Malformed,
}

/// C0 control characters other than tab, vertical tab, form feed, carriage
/// return and escape (colour codes in job output), and DEL.
fn is_binary(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f)
}

/// Classifies one line (without its newline; a trailing `\r` is ignored).
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.bytes().any(is_binary) {
        return Line::Malformed;
    }
    let Some(rest) = line.strip_prefix('[') else {
        return Line::Continuation;
    };
    // A continuation line may itself start with '[' (a JSON array in an
    // HTTP dump): only a valid timestamp makes it an entry.
    let Some(ts) = rest.get(..20).and_then(parse_log_timestamp) else {
        return Line::Continuation;
    };
    let rest = &rest[20..];
    let Some(rest) = rest.strip_prefix(' ') else {
        return Line::Malformed;
    };
    let level = match rest.get(..4) {
        Some("INFO") => Level::Info,
        Some("WARN") => Level::Warn,
        Some("ERR ") => Level::Err,
        Some("VERB") => Level::Verb,
        Some("CRIT") => Level::Crit,
        _ => return Line::Malformed,
    };
    let Some(rest) = rest[4..].strip_prefix(' ') else {
        return Line::Malformed;
    };
    let Some((source, message)) = rest.split_once(']') else {
        return Line::Malformed;
    };
    if source.is_empty() || source.contains(' ') {
        return Line::Malformed;
    }
    let message = message.strip_prefix(' ').unwrap_or(message);
    Line::Entry(Entry {
        ts,
        level,
        source,
        message,
    })
}

/// A message the exporter acts on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Msg<'a> {
    /// `Current runner version: '<v>'`: a listener process started.
    Version(&'a str),
    /// `<ts>: Listening for Jobs`.
    Listening,
    /// `<ts>: Runner reconnected.`
    Reconnected,
    /// `<ts>: Runner connect error: ...`
    ConnectError,
    /// `<ts>: Running job: <name>`; `at` is the message's own timestamp.
    JobStarted { name: &'a str, at: Option<f64> },
    /// `<ts>: Job <name> completed with result: <result>`.
    JobCompleted {
        name: &'a str,
        result: JobResult,
        at: Option<f64>,
    },
    /// session_conflict, registration_deleted, auth_failed, update_started,
    /// update_failed or clock_skew.
    Event(LogEvent),
    /// `Runner will exit shortly for update, ...`: the end of an update
    /// that `Runner update in progress` usually announced already.
    UpdateExiting,
    /// `Runner execution has finished with return code <n>`.
    ListenerExited(i32),
    /// `Runner version v<version> is deprecated and cannot receive
    /// messages.` (the console echo `An error occured: ...` and the traced
    /// `AccessDeniedException: ...` both end so).
    VersionDeprecated(&'a str),
    /// A request refused with 403 whose URL names the runner's version
    /// (`...&runnerVersion=<v>&... failed. HTTP Status: Forbidden`).
    ForbiddenWithVersion(&'a str),
    /// `Job has finished at backend, the runner will exit since it is
    /// running under onetime use mode.`: an ephemeral (or JIT, or
    /// `--once`) runner ends after its one job.
    OnetimeExit,
}

/// A version string as the agent writes it.
fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VERSION
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// Recognises the messages listed in the fixtures' README. Console output
/// (`WRITE LINE: ` / `WRITE ERROR: `) is unwrapped first.
pub fn interpret(message: &str) -> Option<Msg<'_>> {
    let text = message
        .strip_prefix("WRITE LINE: ")
        .or_else(|| message.strip_prefix("WRITE ERROR: "))
        .unwrap_or(message);
    let (at, body) = match text.get(..20).and_then(parse_log_timestamp) {
        Some(t) if text[20..].starts_with(": ") => (Some(t), &text[22..]),
        _ => (None, text),
    };
    if let Some(v) = body
        .strip_prefix("Current runner version: '")
        .and_then(|v| v.strip_suffix('\''))
    {
        return valid_version(v).then_some(Msg::Version(v));
    }
    if body == "Listening for Jobs" {
        return Some(Msg::Listening);
    }
    if body == "Runner reconnected." {
        return Some(Msg::Reconnected);
    }
    if body.starts_with("Runner connect error:") {
        return Some(Msg::ConnectError);
    }
    if let Some(name) = body.strip_prefix("Running job: ") {
        return Some(Msg::JobStarted { name, at });
    }
    if body.starts_with(
        "Job has finished at backend, the runner will exit since it is running under onetime use mode",
    ) {
        return Some(Msg::OnetimeExit);
    }
    if let Some(rest) = body.strip_prefix("Job ") {
        // From the right: the display name can contain anything, including
        // " completed with result: ".
        if let Some((name, result)) = rest.rsplit_once(" completed with result: ") {
            if let Some(result) = JobResult::parse(result.trim_end()) {
                return Some(Msg::JobCompleted { name, result, at });
            }
        }
        return None;
    }
    if let Some(code) = body.strip_prefix("Runner execution has finished with return code ") {
        return code.trim().parse().ok().map(Msg::ListenerExited);
    }
    if let Some(head) = body.strip_suffix(DEPRECATED_SUFFIX) {
        let v = head
            .rfind("Runner version ")
            .map(|i| &head[i + "Runner version ".len()..])?;
        let v = v.strip_prefix('v').unwrap_or(v);
        return valid_version(v).then_some(Msg::VersionDeprecated(v));
    }
    if body.ends_with("HTTP Status: Forbidden") {
        let v = body.split_once("runnerVersion=")?.1;
        let v = &v[..v.find(['&', ' ']).unwrap_or(v.len())];
        return valid_version(v).then_some(Msg::ForbiddenWithVersion(v));
    }
    let event = if body.starts_with("A session for this runner already exists.") {
        LogEvent::SessionConflict
    } else if body.starts_with(
        "Failed to create a session. The runner registration has been deleted from the server",
    ) || body.starts_with("The runner no longer exists on the server.")
    {
        LogEvent::RegistrationDeleted
    } else if body.starts_with("Authentication failed with status code") {
        LogEvent::AuthFailed
    } else if body.starts_with("Runner update in progress") {
        LogEvent::UpdateStarted
    } else if body.starts_with("Runner will exit shortly for update") {
        return Some(Msg::UpdateExiting);
    } else if body.starts_with("Runner update failed") {
        LogEvent::UpdateFailed
    } else if body.starts_with("The local machine's clock may be out of sync") {
        LogEvent::ClockSkew
    } else {
        return None;
    };
    Some(Msg::Event(event))
}

/// A Worker log entry the exporter acts on: enough to tell that the
/// runner runs container jobs and whether its `docker` commands fail. (The
/// Docker CLI's own error text goes to the job's step log, not here.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WorkerMsg<'a> {
    /// `Processing step: DisplayName='<step>'`.
    Step(&'a str),
    /// `ProcessInvokerWrapper`: `  File name: '<path>'` whose file is
    /// `docker`: the runner itself runs Docker (container and service
    /// containers, container actions).
    DockerStarted,
    /// `ProcessInvokerWrapper`: `  Arguments: '<args>'`.
    Arguments(&'a str),
    /// `ProcessInvokerWrapper`: `Finished process <pid> with exit code
    /// <n>, ...`.
    ProcessFinished(i32),
}

/// Recognises the Worker log entries of container jobs.
pub fn interpret_worker<'a>(source: &str, message: &'a str) -> Option<WorkerMsg<'a>> {
    if source == "StepsRunner" {
        let step = message
            .strip_prefix("Processing step: DisplayName='")?
            .strip_suffix('\'')?;
        return Some(WorkerMsg::Step(step));
    }
    if source != "ProcessInvokerWrapper" {
        return None;
    }
    let m = message.trim_start();
    if let Some(file) = m.strip_prefix("File name: '") {
        let file = file.strip_suffix('\'').unwrap_or(file);
        let name = file.rsplit('/').next().unwrap_or(file);
        return (name == "docker").then_some(WorkerMsg::DockerStarted);
    }
    if let Some(args) = m.strip_prefix("Arguments: '") {
        return Some(WorkerMsg::Arguments(args));
    }
    let rest = m.strip_prefix("Finished process ")?;
    let code = rest.split_once(" with exit code ")?.1;
    let code = &code[..code.find(',').unwrap_or(code.len())];
    code.trim().parse().ok().map(WorkerMsg::ProcessFinished)
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// When lines were read, by the wall clock (comparable with the log's
/// timestamps) and by the monotonic clock (which never jumps).
#[derive(Clone, Copy, Debug)]
pub struct ReadAt {
    pub wall: f64,
    pub mono: Instant,
}

impl ReadAt {
    pub fn now() -> ReadAt {
        ReadAt {
            wall: crate::timefmt::now_unix(),
            mono: Instant::now(),
        }
    }
}

/// Parser state that is not part of the exported [`LogState`].
#[derive(Clone, Debug, Default)]
pub struct ParseAux {
    /// `Runner update in progress` seen, exit for update not yet.
    update_pending: bool,
    /// Worker log: the step being processed.
    step: Option<String>,
    /// Worker log: a `docker` process started and not finished yet (its
    /// subcommand once its arguments are read).
    docker_pending: Option<String>,
    /// When the lines being applied were read; set by the caller before
    /// each read (unset: durations are taken from the log alone).
    pub read_at: Option<ReadAt>,
}

/// A job's duration: the log's timestamps (`logged`, completion minus
/// start), checked against the monotonic clock when the start line was
/// read live. The wall clock may jump while a job runs (an NTP step,
/// a manual `date -s`), and the runner stamps its lines with it; the job
/// cannot have run longer than its start line's age when read plus the
/// monotonic time since (plus a second for the log's whole seconds), and
/// a negative difference (the clock went back) is replaced by the
/// monotonic time between reading the two lines.
pub fn job_duration(logged: f64, seen: Option<(f64, Instant)>, now: Option<ReadAt>) -> f64 {
    let (Some((age, seen_mono)), Some(now)) = (seen, now) else {
        return logged.max(0.0);
    };
    let between = now.mono.saturating_duration_since(seen_mono).as_secs_f64();
    if logged < 0.0 {
        return between;
    }
    logged.min(age + between + 1.0)
}

/// How reading affects the counters: at start-up the exporter learns the
/// present state from old lines but counts nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Startup,
    Live,
}

fn event(logs: &mut LogState, e: LogEvent, ts: f64, mode: Mode) {
    if mode == Mode::Live {
        logs.events.add(e, 1);
    }
    if logs.recent.len() >= RECENT_EVENTS {
        logs.recent.remove(0);
    }
    logs.recent.push((e, ts));
}

/// Applies one listener message, logged at `ts`, to the state.
pub fn apply(logs: &mut LogState, aux: &mut ParseAux, ts: f64, msg: Msg<'_>, mode: Mode) {
    match msg {
        Msg::Version(v) => {
            // A new listener process: not connected yet, no job, no exit.
            if logs.version.as_deref() != Some(v) {
                // Another version: an update went through.
                if logs.version.is_some() {
                    logs.update_failed_at = None;
                }
                logs.version = Some(v.to_string());
            }
            logs.connected = Some(false);
            logs.current_job = None;
            logs.listener_exit_code = None;
            // The version line comes after a session was created: GitHub
            // took this listener.
            logs.deprecated_at = None;
            logs.onetime_exit_at = None;
            aux.update_pending = false;
        }
        Msg::Listening => {
            logs.connected = Some(true);
            logs.deprecated_at = None;
        }
        Msg::Reconnected => {
            logs.connected = Some(true);
            logs.deprecated_at = None;
            event(logs, LogEvent::Reconnected, ts, mode);
        }
        Msg::ConnectError => {
            logs.connected = Some(false);
            event(logs, LogEvent::ConnectError, ts, mode);
        }
        Msg::JobStarted { name, at } => {
            let started = at.unwrap_or(ts);
            logs.current_job = Some(CurrentJob {
                name: truncate(name, MAX_JOB_NAME).to_string(),
                started,
                seen: aux.read_at.map(|r| ((r.wall - started).max(0.0), r.mono)),
            });
        }
        Msg::JobCompleted { name, result, at } => {
            let at = at.unwrap_or(ts);
            let job = logs.current_job.take();
            if mode == Mode::Live {
                logs.jobs.add(result, 1);
                // The duration is known only when the start was seen.
                if let Some(j) = job.filter(|j| j.name == truncate(name, MAX_JOB_NAME)) {
                    logs.durations.observe(
                        JOB_DURATION_BUCKETS,
                        job_duration(at - j.started, j.seen, aux.read_at),
                    );
                }
            }
            logs.last_job_completed = Some(at);
        }
        Msg::Event(e) => {
            match e {
                LogEvent::UpdateStarted => aux.update_pending = true,
                LogEvent::UpdateFailed => {
                    aux.update_pending = false;
                    logs.update_failed_at = Some(ts);
                }
                _ => {}
            }
            event(logs, e, ts, mode);
        }
        Msg::UpdateExiting => {
            // One update, one event, whichever of its messages is seen.
            if !aux.update_pending {
                event(logs, LogEvent::UpdateStarted, ts, mode);
            }
            aux.update_pending = false;
        }
        Msg::ListenerExited(code) => {
            logs.connected = Some(false);
            logs.listener_exit_code = Some(code);
            // The listener's worker does not outlive it.
            logs.current_job = None;
            aux.update_pending = false;
            event(logs, LogEvent::ListenerExited, ts, mode);
        }
        Msg::VersionDeprecated(v) => {
            // Stated by GitHub's refusal itself: the version that runs,
            // even when no version line was written (none is, without a
            // session).
            if logs.version.as_deref() != Some(v) {
                logs.version = Some(v.to_string());
            }
            logs.connected = Some(false);
            logs.current_job = None;
            // The console echo and the traced exception are one refusal,
            // and a listener relaunched again and again (runners before
            // 2.303.0) is still the same state: one event until a
            // listener connects.
            if logs.deprecated_at.is_none() {
                logs.deprecated_at = Some(ts);
                event(logs, LogEvent::VersionDeprecated, ts, mode);
            }
        }
        Msg::ForbiddenWithVersion(v) => {
            if logs.version.is_none() {
                logs.version = Some(v.to_string());
            }
        }
        Msg::OnetimeExit => logs.onetime_exit_at = Some(ts),
    }
}

/// Applies one Worker log message, logged at `ts`, to the state.
pub fn apply_worker(
    logs: &mut LogState,
    aux: &mut ParseAux,
    ts: f64,
    msg: WorkerMsg<'_>,
    mode: Mode,
) {
    match msg {
        WorkerMsg::Step(step) => {
            if step == "Initialize containers" {
                logs.container_job_at = Some(ts);
            }
            aux.step = Some(truncate(step, MAX_STEP).to_string());
        }
        WorkerMsg::DockerStarted => {
            logs.container_job_at = Some(ts);
            aux.docker_pending = Some("docker".to_string());
        }
        WorkerMsg::Arguments(args) => {
            if let Some(cmd) = aux.docker_pending.as_mut() {
                if let Some(sub) = args.split_whitespace().next().filter(|s| {
                    s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) {
                    *cmd = format!("docker {sub}");
                }
            }
        }
        WorkerMsg::ProcessFinished(code) => {
            let Some(command) = aux.docker_pending.take() else {
                return;
            };
            if code == 0 {
                logs.docker_failure = None;
            } else {
                logs.docker_failure = Some(DockerFailure {
                    at: ts,
                    command,
                    exit_code: code,
                    step: aux.step.clone(),
                });
                event(logs, LogEvent::DockerFailed, ts, mode);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Variants;

    const T0: f64 = 1_767_603_600.0; // 2026-01-05 09:00:00Z

    fn entry(line: &str) -> Entry<'_> {
        match parse_line(line) {
            Line::Entry(e) => e,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn entries_levels_and_sources() {
        let e = entry(
            "[2026-01-05 09:00:01Z INFO Terminal] WRITE LINE: Current runner version: '2.330.0'",
        );
        assert_eq!(e.ts, T0 + 1.0);
        assert_eq!(e.level, Level::Info);
        assert_eq!(e.source, "Terminal");
        assert_eq!(e.message, "WRITE LINE: Current runner version: '2.330.0'");
        // ERR has a trailing space: two spaces before the source.
        let e = entry(
            "[2026-01-05 10:40:00Z ERR  MessageListener] Catch exception during get next message.",
        );
        assert_eq!(e.level, Level::Err);
        assert_eq!(e.source, "MessageListener");
        for (l, lvl) in [
            ("WARN", Level::Warn),
            ("VERB", Level::Verb),
            ("CRIT", Level::Crit),
        ] {
            assert_eq!(entry(&format!("[2026-01-05 09:00:00Z {l} X] m")).level, lvl);
        }
        // A CRLF line and an empty message.
        let e = entry("[2026-01-05 09:00:00Z INFO X] hello\r");
        assert_eq!(e.message, "hello");
        assert_eq!(entry("[2026-01-05 09:00:00Z INFO X]").message, "");
    }

    #[test]
    fn continuations_and_malformed_lines() {
        for l in [
            " ---> System.Net.Sockets.SocketException (111): Connection refused",
            "   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host)",
            "{",
            "[1, 2, 3]",
            "[]",
            "",
            "plain text with \u{1b}[31mcolour\u{1b}[0m",
            "lint – ünïcödé",
        ] {
            assert_eq!(parse_line(l), Line::Continuation, "{l:?}");
        }
        for l in [
            "[2026-01-05 09:00:00Z DBUG X] unknown level",
            "[2026-01-05 09:00:00Z ERR X] one space after ERR",
            "[2026-01-05 09:00:00Z INFO X no bracket",
            "[2026-01-05 09:00:00ZINFO X] m",
            "[2026-01-05 09:00:00Z INFO ] empty source",
            "binary\u{0}data",
            "\u{7f}\u{1}\u{2}",
        ] {
            assert_eq!(parse_line(l), Line::Malformed, "{l:?}");
        }
    }

    #[test]
    fn listener_messages() {
        assert_eq!(
            interpret("WRITE LINE: Current runner version: '2.330.0'"),
            Some(Msg::Version("2.330.0"))
        );
        assert_eq!(interpret("WRITE LINE: Current runner version: 'x y'"), None);
        assert_eq!(
            interpret("WRITE LINE: 2026-01-05 09:00:01Z: Listening for Jobs"),
            Some(Msg::Listening)
        );
        assert_eq!(
            interpret("WRITE LINE: 2026-01-05 10:41:30Z: Runner reconnected."),
            Some(Msg::Reconnected)
        );
        assert_eq!(
            interpret("WRITE LINE: 2026-01-05 10:40:00Z: Runner connect error: Connection refused (x:443). Retrying until reconnected."),
            Some(Msg::ConnectError)
        );
        assert_eq!(
            interpret("WRITE LINE: 2026-01-05 11:20:00Z: Running job: lint – ünïcödé"),
            Some(Msg::JobStarted {
                name: "lint – ünïcödé",
                at: Some(T0 + 8400.0)
            })
        );
        assert_eq!(
            interpret("Runner execution has finished with return code 5"),
            Some(Msg::ListenerExited(5))
        );
        assert_eq!(interpret("Connect to server."), None);
        assert_eq!(
            interpret("finish job request for job 7f1c with result: Succeeded"),
            None
        );
        assert_eq!(interpret("Job request 7f1c2a44 processed succeed."), None);
    }

    #[test]
    fn job_results_are_parsed_from_the_right() {
        assert_eq!(
            interpret("WRITE LINE: 2026-01-05 09:41:55Z: Job test: completed with result: maybe completed with result: Failed"),
            Some(Msg::JobCompleted {
                name: "test: completed with result: maybe",
                result: JobResult::Failed,
                at: Some(T0 + 41.0 * 60.0 + 55.0)
            })
        );
        for &r in JobResult::ALL {
            let line = format!("Job a completed with result: {}", r.as_str());
            assert!(
                matches!(interpret(&line), Some(Msg::JobCompleted { result, .. }) if result == r),
                "{line}"
            );
        }
        assert_eq!(interpret("Job x completed with result: Exploded"), None);
        assert_eq!(interpret("Job x completed with result: "), None);
    }

    #[test]
    fn event_messages() {
        let cases = [
            ("WRITE ERROR: A session for this runner already exists.", LogEvent::SessionConflict),
            ("WRITE ERROR: Failed to create a session. The runner registration has been deleted from the server, please re-configure.", LogEvent::RegistrationDeleted),
            ("The runner no longer exists on the server. Please reconfigure the runner.", LogEvent::RegistrationDeleted),
            ("Authentication failed with status code 401.", LogEvent::AuthFailed),
            ("WRITE LINE: Runner update in progress, do not shutdown runner.", LogEvent::UpdateStarted),
            ("WRITE ERROR: Runner update failed: download timed out", LogEvent::UpdateFailed),
            ("WRITE ERROR: The local machine's clock may be out of sync with the server time by more than five minutes.", LogEvent::ClockSkew),
        ];
        for (m, e) in cases {
            assert_eq!(interpret(m), Some(Msg::Event(e)), "{m}");
        }
        assert_eq!(
            interpret("The session for this runner already exists."),
            None,
            "the listener's own note about the conflict is not a second event"
        );
        assert_eq!(
            interpret("WRITE LINE: Runner will exit shortly for update, should be back online within 10 seconds."),
            Some(Msg::UpdateExiting)
        );
    }

    fn feed(logs: &mut LogState, aux: &mut ParseAux, lines: &[&str], mode: Mode) {
        for l in lines {
            if let Line::Entry(e) = parse_line(l) {
                if let Some(m) = interpret(e.message) {
                    apply(logs, aux, e.ts, m, mode);
                }
            }
        }
    }

    #[test]
    fn startup_learns_state_without_counting() {
        let mut logs = LogState::default();
        let mut aux = ParseAux::default();
        feed(
            &mut logs,
            &mut aux,
            &[
                "[2026-01-05 09:00:01Z INFO Terminal] WRITE LINE: Current runner version: '2.330.0'",
                "[2026-01-05 09:00:01Z INFO Terminal] WRITE LINE: 2026-01-05 09:00:01Z: Listening for Jobs",
                "[2026-01-05 09:12:40Z INFO Terminal] WRITE LINE: 2026-01-05 09:12:40Z: Running job: build",
                "[2026-01-05 09:19:02Z INFO Terminal] WRITE LINE: 2026-01-05 09:19:02Z: Job build completed with result: Succeeded",
                "[2026-01-05 10:40:00Z INFO Terminal] WRITE LINE: 2026-01-05 10:40:00Z: Runner connect error: refused. Retrying until reconnected.",
                "[2026-01-05 11:20:00Z INFO Terminal] WRITE LINE: 2026-01-05 11:20:00Z: Running job: lint",
            ],
            Mode::Startup,
        );
        assert_eq!(logs.version.as_deref(), Some("2.330.0"));
        assert_eq!(logs.connected, Some(false));
        assert!(logs.jobs.iter().all(|(_, n)| n == 0));
        assert!(logs.events.iter().all(|(_, n)| n == 0));
        assert_eq!(logs.durations.count(), 0);
        assert_eq!(logs.recent, vec![(LogEvent::ConnectError, T0 + 6000.0)]);
        assert_eq!(
            logs.current_job,
            Some(CurrentJob {
                name: "lint".into(),
                started: T0 + 8400.0,
                seen: None,
            })
        );
        assert_eq!(logs.last_job_completed, Some(T0 + 19.0 * 60.0 + 2.0));
    }

    #[test]
    fn live_lines_count_jobs_durations_and_events() {
        let mut logs = LogState::default();
        let mut aux = ParseAux::default();
        feed(
            &mut logs,
            &mut aux,
            &[
                "[2026-01-05 09:00:00Z INFO Terminal] WRITE LINE: 2026-01-05 09:00:00Z: Running job: a",
                "[2026-01-05 09:00:45Z INFO Terminal] WRITE LINE: 2026-01-05 09:00:45Z: Job a completed with result: Succeeded",
                "[2026-01-05 09:01:00Z INFO Terminal] WRITE LINE: 2026-01-05 09:01:00Z: Job b completed with result: Failed",
                "[2026-01-05 09:02:00Z INFO Terminal] WRITE LINE: Runner update in progress, do not shutdown runner.",
                "[2026-01-05 09:02:10Z INFO Terminal] WRITE LINE: Runner will exit shortly for update, should be back online within 10 seconds.",
                "[2026-01-05 09:02:11Z INFO Listener] Runner execution has finished with return code 3",
                "[2026-01-05 09:03:00Z INFO Terminal] WRITE LINE: Runner will exit shortly for update, should be back online within 10 seconds.",
            ],
            Mode::Live,
        );
        assert_eq!(
            logs.jobs.iter().map(|(_, n)| n).collect::<Vec<_>>(),
            [1, 0, 1, 0, 0, 0]
        );
        // Only the job whose start was seen has a duration.
        assert_eq!(logs.durations.count(), 1);
        assert_eq!(logs.durations.sum, 45.0);
        assert_eq!(logs.durations.counts[2], 1, "45 s falls in the 60 s bucket");
        assert_eq!(logs.events.get(LogEvent::UpdateStarted), 2);
        assert_eq!(logs.events.get(LogEvent::ListenerExited), 1);
        assert_eq!(logs.listener_exit_code, Some(3));
        assert_eq!(logs.connected, Some(false));
        assert!(logs.current_job.is_none());
    }

    #[test]
    fn durations_across_wall_clock_jumps_follow_the_monotonic_clock() {
        let t0 = Instant::now();
        let at = |wall: f64, secs: u64| {
            Some(ReadAt {
                wall,
                mono: t0 + std::time::Duration::from_secs(secs),
            })
        };
        let line = |ts: &str, msg: &str| format!("[{ts} INFO Terminal] WRITE LINE: {ts}: {msg}");
        let run = |start: &str, start_read: Option<ReadAt>, end: &str, end_read| {
            let mut logs = LogState::default();
            let mut aux = ParseAux {
                read_at: start_read,
                ..ParseAux::default()
            };
            feed(
                &mut logs,
                &mut aux,
                &[&line(start, "Running job: a")],
                Mode::Live,
            );
            aux.read_at = end_read;
            feed(
                &mut logs,
                &mut aux,
                &[&line(end, "Job a completed with result: Succeeded")],
                Mode::Live,
            );
            assert_eq!(logs.durations.count(), 1);
            logs.durations.sum
        };
        // No jump: the log's 45 s.
        let s = "2026-01-05 09:00:00Z";
        assert_eq!(
            run(s, at(T0, 0), "2026-01-05 09:00:45Z", at(T0 + 45.5, 45)),
            45.0
        );
        // The start line read 10 s late (a backlog): still the log's 45 s.
        assert_eq!(
            run(
                s,
                at(T0 + 10.0, 0),
                "2026-01-05 09:00:45Z",
                at(T0 + 45.5, 35)
            ),
            45.0
        );
        // The clock jumped a day ahead 30 s into the job, which ended 45 s
        // in: the log says a day and 45 s; the monotonic clock 45 s (and
        // the second allowed for whole-second stamps).
        assert_eq!(
            run(s, at(T0, 0), "2026-01-06 09:00:45Z", at(T0 + 86_445.0, 45)),
            46.0
        );
        // The clock jumped an hour back: the completion is stamped before
        // the start; the time between reading the two lines is used.
        assert_eq!(
            run(s, at(T0, 0), "2026-01-05 08:00:45Z", at(T0 - 3555.0, 45)),
            45.0
        );
        // Without the reading times (no monotonic clock): the log alone,
        // never negative.
        assert_eq!(run(s, None, "2026-01-06 09:00:45Z", None), 86_445.0);
        assert_eq!(run(s, None, "2026-01-05 08:00:45Z", None), 0.0);
    }

    /// Every line of a fixture log, fed as the runner collector feeds it.
    fn feed_fixture(logs: &mut LogState, aux: &mut ParseAux, path: &str, mode: Mode) {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/runner")
            .join(path);
        let text = std::fs::read_to_string(&full).unwrap();
        let worker = path.contains("/Worker_");
        for l in text.lines() {
            if let Line::Entry(e) = parse_line(l) {
                if worker {
                    if let Some(m) = interpret_worker(e.source, e.message) {
                        apply_worker(logs, aux, e.ts, m, mode);
                    }
                } else if let Some(m) = interpret(e.message) {
                    apply(logs, aux, e.ts, m, mode);
                }
            }
        }
    }

    #[test]
    fn a_deprecated_version_is_read_from_the_refusal() {
        for (m, v) in [
            ("WRITE ERROR: An error occured: Runner version v2.317.0 is deprecated and cannot receive messages.", "2.317.0"),
            ("WRITE ERROR: An error occurred: Runner version v2.291.1 is deprecated and cannot receive messages.", "2.291.1"),
            ("GitHub.DistributedTask.WebApi.AccessDeniedException: Runner version v2.329.0 is deprecated and cannot receive messages.", "2.329.0"),
            ("An error occured: Error: Forbidden Runner version v2.317.0 is deprecated and cannot receive messages.", "2.317.0"),
        ] {
            assert_eq!(interpret(m), Some(Msg::VersionDeprecated(v)), "{m}");
        }
        assert_eq!(
            interpret("Runner version vx y is deprecated and cannot receive messages."),
            None
        );
        assert_eq!(
            interpret("This is deprecated and cannot receive messages."),
            None
        );
        assert_eq!(
            interpret("GET request to https://x/_apis/distributedtask/pools/15/messages?sessionId=4a&status=Online&runnerVersion=2.317.0&os=Linux failed. HTTP Status: Forbidden"),
            Some(Msg::ForbiddenWithVersion("2.317.0"))
        );
        assert_eq!(
            interpret("GET request to https://x/_apis/y failed. HTTP Status: Forbidden"),
            None
        );

        // The fixture: no version line, the refusal echoed and traced.
        let mut logs = LogState::default();
        let mut aux = ParseAux::default();
        feed_fixture(
            &mut logs,
            &mut aux,
            "deprecated/_diag/Runner_20240925-104325-utc.log",
            Mode::Live,
        );
        assert_eq!(logs.version.as_deref(), Some("2.317.0"));
        assert_eq!(logs.connected, Some(false));
        let refused = parse_log_timestamp("2024-09-25 10:43:26Z").unwrap();
        assert_eq!(logs.deprecated_at, Some(refused));
        assert_eq!(
            logs.events.get(LogEvent::VersionDeprecated),
            1,
            "one refusal, two lines"
        );
        assert_eq!(logs.recent, vec![(LogEvent::VersionDeprecated, refused)]);
        // A listener that connects (after the update) clears it.
        apply(
            &mut logs,
            &mut aux,
            refused + 600.0,
            Msg::Version("2.330.0"),
            Mode::Live,
        );
        assert_eq!(logs.deprecated_at, None);
        assert_eq!(logs.version.as_deref(), Some("2.330.0"));
    }

    #[test]
    fn an_ephemeral_runner_says_it_exits_after_its_job() {
        let mut logs = LogState::default();
        let mut aux = ParseAux::default();
        feed_fixture(
            &mut logs,
            &mut aux,
            "ephemeral-finished/_diag/Runner_20221122-105052-utc.log",
            Mode::Startup,
        );
        assert_eq!(logs.version.as_deref(), Some("2.299.1"));
        assert_eq!(
            logs.onetime_exit_at,
            parse_log_timestamp("2022-11-22 10:51:18Z")
        );
        assert_eq!(logs.listener_exit_code, Some(0));
        assert_eq!(logs.connected, Some(false));
        assert!(logs.current_job.is_none());
        assert_eq!(
            logs.last_job_completed,
            parse_log_timestamp("2022-11-22 10:51:18Z")
        );
        // The next listener (a runner configured again in the same root)
        // starts over.
        apply(
            &mut logs,
            &mut aux,
            0.0,
            Msg::Version("2.330.0"),
            Mode::Live,
        );
        assert_eq!(logs.onetime_exit_at, None);
    }

    #[test]
    fn container_jobs_and_failing_docker_commands_are_read_from_worker_logs() {
        let mut logs = LogState::default();
        let mut aux = ParseAux::default();
        feed_fixture(
            &mut logs,
            &mut aux,
            "docker-denied/_diag/Worker_20260105-141002-utc.log",
            Mode::Live,
        );
        let at = parse_log_timestamp("2026-01-05 14:10:05Z").unwrap();
        assert_eq!(logs.container_job_at, Some(at));
        assert_eq!(
            logs.docker_failure,
            Some(DockerFailure {
                at,
                command: "docker version".into(),
                exit_code: 1,
                step: Some("Initialize containers".into()),
            })
        );
        assert_eq!(logs.events.get(LogEvent::DockerFailed), 1);
        // The Runner log of a job without containers says nothing of it.
        let mut plain = LogState::default();
        feed_fixture(
            &mut plain,
            &mut ParseAux::default(),
            "basic/_diag/Worker_20260105-112000-utc.log",
            Mode::Live,
        );
        assert_eq!(plain.container_job_at, None);
        // A docker command that succeeds clears the failure; other
        // processes do not count.
        assert_eq!(
            interpret_worker("ProcessInvokerWrapper", "  File name: '/usr/bin/git'"),
            None
        );
        let git_exit = interpret_worker(
            "ProcessInvokerWrapper",
            "Finished process 1 with exit code 128, and elapsed time 00:00:00.1.",
        );
        assert_eq!(git_exit, Some(WorkerMsg::ProcessFinished(128)));
        apply_worker(&mut logs, &mut aux, at + 1.0, git_exit.unwrap(), Mode::Live);
        assert!(logs.docker_failure.is_some());
        for (src, m) in [
            ("ProcessInvokerWrapper", "  File name: '/usr/bin/docker'"),
            ("ProcessInvokerWrapper", "  Arguments: 'pull postgres:16'"),
            (
                "ProcessInvokerWrapper",
                "Finished process 2 with exit code 0, and elapsed time 00:00:03.5.",
            ),
        ] {
            let msg = interpret_worker(src, m).unwrap();
            apply_worker(&mut logs, &mut aux, at + 2.0, msg, Mode::Live);
        }
        assert_eq!(logs.docker_failure, None);
        assert_eq!(logs.container_job_at, Some(at + 2.0));
        assert_eq!(interpret_worker("JobRunner", "Job ID 2c8e"), None);
        assert_eq!(
            interpret_worker(
                "ProcessInvokerWrapper",
                "  File name: '/usr/local/bin/dockerd-rootless.sh'"
            ),
            None
        );
    }

    #[test]
    fn recent_events_are_bounded() {
        let mut logs = LogState::default();
        let mut aux = ParseAux::default();
        for i in 0..100 {
            apply(
                &mut logs,
                &mut aux,
                f64::from(i),
                Msg::Event(LogEvent::AuthFailed),
                Mode::Live,
            );
        }
        assert_eq!(logs.recent.len(), RECENT_EVENTS);
        assert_eq!(logs.recent[RECENT_EVENTS - 1].1, 99.0);
        assert_eq!(logs.events.get(LogEvent::AuthFailed), 100);
    }

    #[test]
    fn long_names_are_cut_at_char_boundaries() {
        let name = "é".repeat(200);
        let cut = truncate(&name, MAX_JOB_NAME);
        assert!(cut.len() <= MAX_JOB_NAME && cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("abc", 10), "abc");
    }
}
