//! The GitHub collector as a user meets it: the real binary polls a local
//! server that answers like GitHub's REST API (official payloads, ETags,
//! rate-limit headers, pagination, App endpoints, scripted failures), and
//! the tests assert both what it asked and what /metrics shows.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::copy_dir;
use testkit::fake_github::{
    generated_runners, official_runner, official_runners, FakeApp, Request,
};
use testkit::net::Tinyproxy;
use testkit::pki::openssl;
use testkit::{sample_value, Exporter, Failure, FakeGithub};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
/// The token the exporter is given: it must never show up anywhere.
const SENTINEL: &str = "ghp_SENTINELtoken0123456789abcdefXYZ";
const REPO: &str = "repos/acme/app";
const LIST_PATH: &str = "/repos/acme/app/actions/runners?per_page=100";
const WAIT: Duration = Duration::from_secs(20);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A temporary directory holding the config and the token file.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn token_file(&self, mode: u32) -> PathBuf {
        let p = self.path("token");
        std::fs::write(&p, format!("{SENTINEL}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// Writes a config with the given `[github]` body (plus `api_url`)
    /// and other sections; returns the `--config.file=` argument.
    fn config(&self, fake: &FakeGithub, github: &str, other: &str) -> String {
        self.config_at(&fake.url(), github, other)
    }

    fn config_at(&self, api_url: &str, github: &str, other: &str) -> String {
        let text = format!(
            "[host]\nenabled = false\n[systemd]\nenabled = false\n{other}\n[github]\napi_url = \"{api_url}\"\n{github}\n"
        );
        let p = self.path("config.toml");
        std::fs::write(&p, text).unwrap();
        format!("--config.file={}", p.display())
    }

    /// Fleet scope over acme/app with the token file, polling every second.
    fn fleet(&self, fake: &FakeGithub, extra: &str) -> String {
        let token = self.token_file(0o600);
        self.config(
            fake,
            &format!(
                "scope = \"fleet\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nrequest_timeout = \"2s\"\nrepositories = [\"acme/app\"]\n{extra}",
                token.display()
            ),
            "[runner_files]\nenabled = false\n",
        )
    }
}

impl Env {
    /// Fleet scope over the owners given (`repositories = [...]` etc.),
    /// polling every second.
    fn fleet_of(&self, fake: &FakeGithub, owners: &str) -> String {
        let token = self.token_file(0o600);
        self.config(
            fake,
            &format!(
                "scope = \"fleet\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nrequest_timeout = \"2s\"\n{owners}",
                token.display()
            ),
            "[runner_files]\nenabled = false\n",
        )
    }
}

pub(crate) fn value(m: &str, series: &str) -> Option<f64> {
    sample_value(m, series)
}

/// Waits (up to `WAIT`) until `series` is `want`; panics with the metrics and log.
pub(crate) fn wait_value(e: &Exporter, series: &str, want: f64) -> String {
    e.wait_metrics(WAIT, |m| value(m, series) == Some(want))
        .unwrap_or_else(|| {
            panic!(
                "{series} never became {want}; metrics:\n{}\nlog:\n{}",
                e.metrics(),
                e.logs()
            )
        })
}

/// Waits (up to `WAIT`) until `series` is at least `min`.
pub(crate) fn wait_at_least(e: &Exporter, series: &str, min: f64) -> String {
    e.wait_metrics(WAIT, |m| value(m, series).is_some_and(|v| v >= min))
        .unwrap_or_else(|| {
            panic!(
                "{series} never reached {min}; metrics:\n{}\nlog:\n{}",
                e.metrics(),
                e.logs()
            )
        })
}

fn runner_requests(fake: &FakeGithub) -> Vec<Request> {
    fake.requests()
        .into_iter()
        .filter(|r| r.route().contains("/actions/runners"))
        .collect()
}

/// Scrapes and checks the answer comes fast (no scrape waits for GitHub).
fn fast_scrape(e: &Exporter) -> String {
    let t = Instant::now();
    let m = e.metrics();
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "/metrics took {took:?} while GitHub misbehaves"
    );
    m
}

fn backoff(m: &str) -> f64 {
    value(m, "github_runner_github_api_backoff_seconds").expect("backoff metric")
}

#[test]
fn fleet_scope_sends_githubs_headers_and_exports_every_listed_runner() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    fake.require_token(SENTINEL);
    let env = Env::new();
    let e = Exporter::start(BIN, &[&env.fleet(&fake, "")], &[]);
    let m = wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    for (series, want) in [
        ("github_runner_registered{runner=\"mac_runner\"}", 1.0),
        ("github_runner_github_online{runner=\"linux_runner\"}", 1.0),
        ("github_runner_github_online{runner=\"mac_runner\"}", 0.0),
        ("github_runner_github_busy{runner=\"linux_runner\"}", 1.0),
        ("github_runner_github_busy{runner=\"mac_runner\"}", 0.0),
        (
            "github_runner_github_label_info{runner=\"mac_runner\",label=\"no-gpu\"}",
            1.0,
        ),
        (
            "github_runner_github_label_info{runner=\"linux_runner\",label=\"self-hosted\"}",
            1.0,
        ),
        (
            "github_runner_github_info{runner=\"linux_runner\",id=\"23\",os=\"linux\",ephemeral=\"false\",owner=\"acme/app\"}",
            1.0,
        ),
        (
            "github_runner_github_info{runner=\"mac_runner\",id=\"24\",os=\"macos\",ephemeral=\"false\",owner=\"acme/app\"}",
            1.0,
        ),
        ("github_runner_github_owner_success{owner=\"acme/app\"}", 1.0),
        (
            "github_runner_github_owner_runners_unreadable{owner=\"acme/app\"}",
            0.0,
        ),
        ("github_runner_github_api_rate_limit_limit", 5000.0),
        ("github_runner_exporter_collector_success{collector=\"github\"}", 1.0),
        ("github_runner_exporter_collector_targets{collector=\"github\"}", 2.0),
        ("github_runner_github_api_backoff_seconds", 0.0),
    ] {
        assert_eq!(value(&m, series), Some(want), "{series}\n{m}");
    }
    assert!(value(&m, "github_runner_github_api_requests_total{code=\"200\"}").unwrap() >= 1.0);
    let remaining = value(&m, "github_runner_github_api_rate_limit_remaining").unwrap();
    assert!((4990.0..5000.0).contains(&remaining), "{remaining}");
    let reset = value(
        &m,
        "github_runner_github_api_rate_limit_reset_timestamp_seconds",
    )
    .unwrap();
    assert!(reset > now() as f64, "{reset}");
    let last = value(&m, "github_runner_github_last_success_timestamp_seconds").unwrap();
    assert!((last - now() as f64).abs() < 30.0, "{last}");

    let reqs = runner_requests(&fake);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", LIST_PATH));
    assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!(
            "runner-health-exporter/",
            env!("CARGO_PKG_VERSION")
        ))
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {SENTINEL}").as_str())
    );
    assert_eq!(r.header("if-none-match"), None, "nothing cached yet");
}

#[test]
fn unchanged_answers_are_reused_through_etags_without_spending_rate_limit() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    let env = Env::new();
    let e = Exporter::start(BIN, &[&env.fleet(&fake, "")], &[]);
    let m1 = wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    let charged = fake.charged();
    let m2 = wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        2.0,
    );
    let reqs = runner_requests(&fake);
    assert!(reqs.len() >= 3, "{reqs:?}");
    let etag = reqs[0].header("if-none-match");
    assert_eq!(etag, None);
    for r in &reqs[1..3] {
        assert!(
            r.header("if-none-match")
                .is_some_and(|t| t.starts_with("W/\"")),
            "a later poll sends the ETag it got: {r:?}"
        );
        assert_eq!(r.status, 304);
    }
    assert_eq!(fake.charged(), charged, "304s cost no rate limit");
    // The runner metrics are exactly what the first answer gave.
    let runner_lines = |m: &str| -> Vec<String> {
        m.lines()
            .filter(|l| {
                l.starts_with("github_runner_registered")
                    || l.starts_with("github_runner_github_online")
                    || l.starts_with("github_runner_github_busy")
                    || l.starts_with("github_runner_github_label_info")
                    || l.starts_with("github_runner_github_info")
                    || l.starts_with("github_runner_github_api_rate_limit_remaining")
            })
            .map(String::from)
            .collect()
    };
    assert_eq!(runner_lines(&m1), runner_lines(&m2));
    assert_eq!(
        value(&m2, "github_runner_github_api_requests_total{code=\"200\"}"),
        Some(1.0)
    );
    // A change shows up on the next poll: the ETag no longer matches.
    fake.update_runner(REPO, 24, |r| r["status"] = "online".into());
    wait_value(
        &e,
        "github_runner_github_online{runner=\"mac_runner\"}",
        1.0,
    );
}

#[test]
fn fleet_scope_pages_through_1000_runners_in_10_requests_per_poll() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, generated_runners("fleet", 1000, 1000));
    let env = Env::new();
    let e = Exporter::start(BIN, &[&env.fleet(&fake, "")], &[]);
    let m = e
        .wait_metrics(WAIT, |m| {
            m.lines()
                .filter(|l| l.starts_with("github_runner_registered{"))
                .count()
                == 1000
        })
        .expect("1000 runners exported");
    assert_eq!(
        value(&m, "github_runner_registered{runner=\"fleet-999\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "github_runner_github_online{runner=\"fleet-9\"}"),
        Some(0.0)
    );
    // Wait for a second complete poll, then count requests per poll (the
    // release lookup is not one of them).
    let reqs = testkit::wait_for(WAIT, || {
        let r = runner_requests(&fake);
        (r.len() >= 20).then_some(r)
    })
    .expect("two polls");
    let first: Vec<&str> = reqs[..10].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(first[0], LIST_PATH);
    for (i, p) in first.iter().enumerate().skip(1) {
        assert!(
            p.ends_with(&format!("per_page=100&page={}", i + 1)),
            "page {} follows the Link header: {p}",
            i + 1
        );
    }
    // The second poll starts again at page 1: 10 requests per poll.
    assert_eq!(reqs[10].path, LIST_PATH, "{:?}", &reqs[..11]);
    assert!(reqs[10..20].iter().all(|r| r.status == 304));
}

#[test]
fn runners_that_vanish_from_the_fleet_lose_their_series() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    fake.set_runners("orgs/acme", generated_runners("org", 500, 2));
    let env = Env::new();
    let arg = env.fleet(&fake, "organizations = [\"acme\"]\n");
    let e = Exporter::start(BIN, &[&arg], &[]);
    wait_value(&e, "github_runner_registered{runner=\"org-1\"}", 1.0);
    wait_value(&e, "github_runner_registered{runner=\"mac_runner\"}", 1.0);
    fake.remove_runner(REPO, 24);
    fake.remove_runner("orgs/acme", 501);
    let m = e
        .wait_metrics(WAIT, |m| !m.contains("runner=\"mac_runner\""))
        .expect("mac_runner's series go");
    assert!(!m.contains("runner=\"org-1\""), "{m}");
    assert_eq!(
        value(&m, "github_runner_registered{runner=\"linux_runner\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "github_runner_registered{runner=\"org-0\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_targets{collector=\"github\"}"
        ),
        Some(2.0)
    );
}

/// With the runner files collector reading `.runner` (agentId, gitHubUrl).
#[test]
fn self_scope_looks_up_each_local_runner_by_agent_id() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    let env = Env::new();
    let root = env.path("actions-runner");
    copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
    let token = env.token_file(0o600);
    let arg = env.config(
        &fake,
        &format!(
            "scope = \"self\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\n",
            token.display()
        ),
        &format!("[[runner]]\nroot = \"{}\"\n", root.display()),
    );
    let e = Exporter::start(BIN, &[&arg], &[]);
    let m = wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    assert_eq!(
        value(&m, "github_runner_github_busy{runner=\"linux_runner\"}"),
        Some(1.0)
    );
    // The same runner as the root's: one runner label, GitHub data attached.
    assert_eq!(
        value(&m, "github_runner_configured{runner=\"linux_runner\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(
        !m.contains("mac_runner"),
        "self scope asks only for its own runner"
    );
    let reqs = runner_requests(&fake);
    assert_eq!(reqs[0].path, "/repos/acme/app/actions/runners/23");
    // The registration is deleted at GitHub: 404 means registered 0.
    fake.remove_runner(REPO, 23);
    let m = wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 0.0);
    assert!(
        !m.contains("github_runner_github_online{runner=\"linux_runner\"}"),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"github\"}"
        ),
        Some(1.0),
        "a 404 for a runner is an answer, not a failure"
    );
    assert!(value(&m, "github_runner_github_api_requests_total{code=\"404\"}").unwrap() >= 1.0);
}

/// Starts with a good poll, then makes every answer `failure`; returns
/// the exporter, the scrape showing the failure, and when the failing
/// request arrived.
fn fail_after_success(
    fake: &FakeGithub,
    env: &Env,
    failure: Failure,
    reason: &str,
) -> (Exporter, String, Instant) {
    fake.set_runners(REPO, official_runners());
    let e = Exporter::start(BIN, &[&env.fleet(fake, "")], &[]);
    wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    let before = fake.request_count();
    fake.fail(failure);
    let series = format!("github_runner_github_api_errors_total{{reason=\"{reason}\"}}");
    let m = wait_value(&e, &series, 1.0);
    let at = fake.requests()[before].at;
    // The last known runner data stays; the collector shows the failure.
    assert_eq!(
        value(&m, "github_runner_registered{runner=\"linux_runner\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "github_runner_github_online{runner=\"linux_runner\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"github\"}"
        ),
        Some(0.0)
    );
    assert!(
        value(
            &m,
            "github_runner_exporter_collector_errors_total{collector=\"github\"}"
        )
        .unwrap()
            >= 1.0
    );
    (e, m, at)
}

/// The exporter waits at least a minute (with jitter up to a fifth) and
/// sends nothing more meanwhile.
fn assert_backs_off_a_minute(fake: &FakeGithub, e: &Exporter, m: &str) {
    let b = backoff(m);
    assert!((60.0..=72.0).contains(&b), "backoff {b}\n{m}");
    let n = fake.request_count();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fake.request_count(),
        n,
        "no request during the backoff (poll_interval is 1s)"
    );
    fast_scrape(e);
}

#[test]
fn unauthorized_is_an_auth_error_with_backoff_not_a_loop() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(&fake, &env, Failure::Unauthorized, "auth");
    assert!(value(&m, "github_runner_github_api_requests_total{code=\"401\"}").unwrap() >= 1.0);
    assert_backs_off_a_minute(&fake, &e, &m);
    let log = e.logs();
    assert!(log.contains("401 Unauthorized"), "{log}");
    assert!(log.contains("Bad credentials"), "{log}");
}

#[test]
fn forbidden_without_retry_after_backs_off_exponentially_from_a_minute() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(&fake, &env, Failure::Forbidden, "forbidden");
    assert!(value(&m, "github_runner_github_api_requests_total{code=\"403\"}").unwrap() >= 1.0);
    assert_backs_off_a_minute(&fake, &e, &m);
}

#[test]
fn secondary_rate_limit_without_retry_after_backs_off_from_a_minute() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(
        &fake,
        &env,
        Failure::SecondaryRateLimit { retry_after: None },
        "rate_limited",
    );
    assert_backs_off_a_minute(&fake, &e, &m);
}

/// The next request comes when `retry-after` says, not before and not
/// much later; then polling recovers.
fn assert_retries_after(fake: &FakeGithub, e: &Exporter, m: &str, at: Instant, secs: u64) {
    assert_eq!(backoff(m), secs as f64, "{m}");
    let n = fake.request_count();
    fake.clear_failure();
    let reqs = fake
        .wait_requests(n + 1, Duration::from_secs(secs + 10))
        .expect("a request after retry-after");
    let waited = reqs[n].at.duration_since(at);
    assert!(
        waited >= Duration::from_secs(secs) - Duration::from_millis(300),
        "retried after {waited:?}, retry-after was {secs}s"
    );
    assert!(waited < Duration::from_secs(secs + 5), "{waited:?}");
    let m = wait_value(
        e,
        "github_runner_exporter_collector_success{collector=\"github\"}",
        1.0,
    );
    assert_eq!(backoff(&m), 0.0);
}

#[test]
fn forbidden_with_retry_after_waits_exactly_that_long() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, at) = fail_after_success(
        &fake,
        &env,
        Failure::SecondaryRateLimit {
            retry_after: Some(4),
        },
        "rate_limited",
    );
    assert_retries_after(&fake, &e, &m, at, 4);
}

#[test]
fn too_many_requests_honours_retry_after() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, at) = fail_after_success(
        &fake,
        &env,
        Failure::TooManyRequests {
            retry_after: Some(3),
        },
        "rate_limited",
    );
    assert!(value(&m, "github_runner_github_api_requests_total{code=\"429\"}").unwrap() >= 1.0);
    assert_retries_after(&fake, &e, &m, at, 3);
}

#[test]
fn too_many_requests_without_retry_after_backs_off_from_a_minute() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(
        &fake,
        &env,
        Failure::TooManyRequests { retry_after: None },
        "rate_limited",
    );
    assert_backs_off_a_minute(&fake, &e, &m);
}

#[test]
fn an_exhausted_rate_limit_waits_for_the_reset() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, at) = fail_after_success(
        &fake,
        &env,
        Failure::RateLimitExhausted { reset_in: 4 },
        "rate_limited",
    );
    assert_eq!(
        value(&m, "github_runner_github_api_rate_limit_remaining"),
        Some(0.0)
    );
    let b = backoff(&m);
    assert!((3.0..=6.0).contains(&b), "waits until the reset: {b}");
    let (_, _, reset) = fake.rate_limit();
    let n = fake.request_count();
    fake.clear_failure();
    let reqs = fake
        .wait_requests(n + 1, Duration::from_secs(15))
        .expect("a request after the reset");
    let waited = reqs[n].at.duration_since(at);
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    assert!(now() + 1 >= reset, "asked again only after the reset");
    wait_value(
        &e,
        "github_runner_exporter_collector_success{collector=\"github\"}",
        1.0,
    );
}

#[test]
fn under_the_reserve_polling_stretches_until_the_reset() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    // 400 of 5000 left: under the default 10% reserve.
    let reset = now() + 5;
    fake.set_rate_limit(5000, 400, reset);
    let env = Env::new();
    let e = Exporter::start(BIN, &[&env.fleet(&fake, "")], &[]);
    let m = wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"github\"}"
        ),
        Some(1.0)
    );
    let b = backoff(&m);
    assert!((1.0..=7.0).contains(&b), "stretched to the reset: {b}");
    // poll_interval is 1s, yet the next request waits for the reset.
    let reqs = fake.wait_requests(2, Duration::from_secs(15)).unwrap();
    let at = reqs[1].at;
    assert!(
        at.duration_since(reqs[0].at) >= Duration::from_secs(2),
        "{:?}",
        at.duration_since(reqs[0].at)
    );
    assert!(now() >= reset, "the second poll comes after the reset");
}

#[test]
fn server_errors_back_off() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(&fake, &env, Failure::ServerError, "server_error");
    assert!(value(&m, "github_runner_github_api_requests_total{code=\"500\"}").unwrap() >= 1.0);
    assert_backs_off_a_minute(&fake, &e, &m);
    assert!(
        e.logs().contains("500 Internal Server Error"),
        "{}",
        e.logs()
    );
}

#[test]
fn malformed_answers_back_off() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(&fake, &env, Failure::Malformed, "malformed");
    assert_backs_off_a_minute(&fake, &e, &m);
    assert!(e.logs().contains("malformed JSON"), "{}", e.logs());
}

#[test]
fn a_missing_list_is_not_found_and_backs_off() {
    let fake = FakeGithub::start();
    let env = Env::new();
    let (e, m, _) = fail_after_success(&fake, &env, Failure::NotFound, "not_found");
    assert_backs_off_a_minute(&fake, &e, &m);
}

#[test]
fn a_hanging_api_times_out_and_never_holds_up_a_scrape() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    let env = Env::new();
    let e = Exporter::start(BIN, &[&env.fleet(&fake, "")], &[]);
    wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    let before = fake.request_count();
    fake.fail(Failure::Hang);
    fake.wait_requests(before + 1, WAIT)
        .expect("a hanging request");
    // While the request hangs, scrapes answer at once.
    for _ in 0..5 {
        fast_scrape(&e);
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"timeout\"}",
        1.0,
    );
    let took = Instant::now().duration_since(fake.requests()[before].at);
    assert!(
        took >= Duration::from_millis(1900),
        "request_timeout is 2s: {took:?}"
    );
    assert!(
        value(
            &m,
            "github_runner_github_api_requests_total{code=\"error\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(&m, "github_runner_registered{runner=\"linux_runner\"}"),
        Some(1.0),
        "the last known data stays"
    );
    assert_backs_off_a_minute(&fake, &e, &m);
}

#[test]
fn a_trickling_answer_times_out_as_a_whole() {
    let fake = FakeGithub::start();
    let env = Env::new();
    // About 1.3 kB at 10 ms a byte: headers arrive at once, the whole
    // answer would take 13 s; request_timeout is 2 s.
    let (e, m, at) = fail_after_success(
        &fake,
        &env,
        Failure::SlowBody {
            per_byte: Duration::from_millis(10),
        },
        "timeout",
    );
    let took = Instant::now().duration_since(at);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_backs_off_a_minute(&fake, &e, &m);
}

#[test]
fn an_unreachable_api_is_a_connect_error_with_backoff() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new();
    let token = env.token_file(0o600);
    let arg = env.config_at(
        &format!("http://127.0.0.1:{port}"),
        &format!(
            "scope = \"fleet\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nrepositories = [\"acme/app\"]\n",
            token.display()
        ),
        "[runner_files]\nenabled = false\n",
    );
    let e = Exporter::start(BIN, &[&arg], &[]);
    let m = wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"connect\"}",
        1.0,
    );
    assert_eq!(
        value(
            &m,
            "github_runner_github_api_requests_total{code=\"error\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"github\"}"
        ),
        Some(0.0)
    );
    let b = backoff(&m);
    assert!((60.0..=72.0).contains(&b), "{b}");
    std::thread::sleep(Duration::from_secs(3));
    let m = fast_scrape(&e);
    assert_eq!(
        value(
            &m,
            "github_runner_github_api_errors_total{reason=\"connect\"}"
        ),
        Some(1.0),
        "no retry during the backoff"
    );
    assert!(
        e.logs().contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.logs()
    );
}

fn b64url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

#[test]
fn github_app_flow_signs_a_jwt_that_verifies_with_the_public_key() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    fake.enable_app(FakeApp {
        app_id: 4242,
        installation_id: 77,
    });
    let env = Env::new();
    let key = env.path("app.pem");
    let public = env.path("app.pub.der");
    let k = key.to_str().unwrap();
    let dir = key.parent().expect("the key is in the test directory");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            k,
        ],
    );
    openssl(
        dir,
        &[
            "rsa",
            "-in",
            k,
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-out",
            public.to_str().unwrap(),
        ],
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let arg = env.config(
        &fake,
        &format!(
            "scope = \"fleet\"\npoll_interval = \"1s\"\nrepositories = [\"acme/app\"]\n[github.app]\napp_id = 4242\nprivate_key_file = \"{k}\"\n"
        ),
        "[runner_files]\nenabled = false\n",
    );
    let e = Exporter::start(BIN, &[&arg, "--log.level=trace"], &[]);
    wait_value(&e, "github_runner_registered{runner=\"mac_runner\"}", 1.0);
    // Two more polls: the installation token is reused, not renewed.
    wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        2.0,
    );
    let reqs = fake.requests();
    let paths: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.route()))
        .collect();
    assert_eq!(
        &paths[..3],
        &[
            ("GET", "/repos/acme/app/installation"),
            ("POST", "/app/installations/77/access_tokens"),
            ("GET", "/repos/acme/app/actions/runners"),
        ],
        "{paths:?}"
    );
    assert_eq!(
        reqs.iter().filter(|r| r.method == "POST").count(),
        1,
        "one installation token for all polls"
    );
    for r in &reqs[2..] {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer ghs_fakeinstallation0001")
        );
    }
    let pubkey = std::fs::read(&public).unwrap();
    for r in &reqs[..2] {
        let jwt = r
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .expect("a bearer JWT");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");
        let header: serde_json::Value = serde_json::from_slice(&b64url(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value = serde_json::from_slice(&b64url(parts[1])).unwrap();
        let iat = claims["iat"].as_u64().unwrap();
        let exp = claims["exp"].as_u64().unwrap();
        let t = now();
        assert!(
            iat <= t - 55 && iat >= t - 90,
            "iat {iat} is about now-60 ({t})"
        );
        assert!(
            exp > t && exp - iat <= 600,
            "exp {exp} at most 10 min after iat {iat}"
        );
        assert_eq!(claims["iss"], "4242");
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &pubkey,
        )
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &b64url(parts[2]),
        )
        .expect("the JWT's RS256 signature verifies with the App's public key");
    }
    // Neither the installation token nor a JWT reaches the log.
    let log = e.logs();
    assert!(!log.contains("ghs_fakeinstallation"), "{log}");
    assert!(!log.contains("eyJ"), "{log}");
    assert!(log.contains("installation_id=77"), "{log}");
}

/// The password of the proxy the exporter goes through: like the token,
/// it must never show up anywhere.
const PROXY_SENTINEL: &str = "pxSENTINELproxyPass0123";

#[test]
fn the_token_and_the_proxy_password_never_appear_in_metrics_logs_health_or_check() {
    // GitHub on a non-loopback address, reached through a real proxy that
    // wants the sentinel password (loopback would be reached directly).
    let addr = testkit::net::LocalAddr::new();
    let fake = FakeGithub::start_on(&format!("{}:0", addr.ip)).unwrap();
    fake.set_runners(REPO, official_runners());
    let proxy = Tinyproxy::start(
        "127.0.0.1".parse().unwrap(),
        Some(("runner", PROXY_SENTINEL)),
    );
    let proxy_url = proxy.url(Some(("runner", PROXY_SENTINEL)));
    let env = Env::new();
    // Readable by others: warned about, once, without the token.
    let token = env.token_file(0o644);
    let root = env.path("actions-runner");
    copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
    let arg = env.config(
        &fake,
        &format!(
            "scope = \"self\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nrequest_timeout = \"1s\"\nproxy = \"{proxy_url}\"\n",
            token.display()
        ),
        &format!("[[runner]]\nroot = \"{}\"\n", root.display()),
    );
    let envs = [
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("http_proxy", proxy_url.as_str()),
    ];
    let e = Exporter::start(BIN, &[&arg, "--log.level=trace"], &envs);
    wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        1.0,
    );
    assert!(!proxy.requests().is_empty(), "{}", proxy.log());
    // An authentication failure: its error text is logged and exported.
    fake.fail(Failure::Unauthorized);
    wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"auth\"}",
        1.0,
    );
    let health = |e: &Exporter| {
        vec![
            (
                "/health JSON",
                e.get_with("GET", "/health", &[("Accept", "application/json")])
                    .body(),
            ),
            ("/health text", e.get("/health").body()),
        ]
    };
    let mut outputs = vec![
        ("metrics", e.metrics()),
        (
            "openmetrics",
            e.get_with(
                "GET",
                "/metrics",
                &[("Accept", "application/openmetrics-text;version=1.0.0")],
            )
            .body(),
        ),
        (
            "gzip metrics",
            e.get_with("GET", "/metrics", &[("Accept-Encoding", "gzip")])
                .body(),
        ),
    ];
    outputs.extend(health(&e));
    // The proxy goes away: errors that name it, from a second exporter
    // (the first one backs off after the 401).
    drop(proxy);
    let e2 = Exporter::start(BIN, &[&arg, "--log.level=trace"], &envs);
    let m2 = wait_value(
        &e2,
        "github_runner_github_api_errors_total{reason=\"proxy\"}",
        1.0,
    );
    outputs.push(("metrics while the proxy is down", m2));
    outputs.extend(health(&e2));
    let check_url = testkit::process::run(
        BIN,
        &["check", "--url", &format!("http://{}", e2.addr), &arg],
        &envs,
    );
    outputs.push((
        "check --url",
        String::from_utf8_lossy(&check_url.stdout).into(),
    ));
    outputs.push((
        "check --url stderr",
        String::from_utf8_lossy(&check_url.stderr).into(),
    ));
    let check = testkit::process::run(BIN, &["check", &arg, "--log.level=trace"], &envs);
    let check_text: String = String::from_utf8_lossy(&check.stdout).into();
    assert!(
        check_text.contains(&format!(
            "cannot connect to the proxy http://runner:***@{}",
            e2_proxy_addr(&proxy_url)
        )),
        "{check_text}"
    );
    outputs.push(("check", check_text));
    outputs.push((
        "check stderr",
        String::from_utf8_lossy(&check.stderr).into(),
    ));
    outputs.push(("stderr", e.logs()));
    outputs.push(("stdout", e.stdout()));
    outputs.push(("stderr, proxy down", e2.logs()));
    assert!(outputs[1].1.contains("# EOF"), "OpenMetrics was served");
    testkit::assert_unique_series(&outputs[1].1);
    testkit::assert_unique_series(&outputs[2].1);
    let config_check = testkit::process::run(BIN, &["config", "check", &arg], &envs);
    let printed: String = String::from_utf8_lossy(&config_check.stdout).into();
    assert!(
        printed.contains(&format!(
            "proxy = \"http://runner:***@{}\"",
            e2_proxy_addr(&proxy_url)
        )),
        "{printed}"
    );
    outputs.push(("config check stdout", printed));
    outputs.push((
        "config check stderr",
        String::from_utf8_lossy(&config_check.stderr).into(),
    ));
    let check = testkit::process::run(
        BIN,
        &["config", "check", "--config.file=/dev/null"],
        &[("GITHUB_TOKEN", SENTINEL)],
    );
    outputs.push((
        "config check with $GITHUB_TOKEN",
        String::from_utf8_lossy(&check.stdout).into(),
    ));
    for (what, text) in &outputs {
        assert!(
            !text.contains(SENTINEL),
            "the token leaked into {what}:\n{text}"
        );
        assert!(
            !text.contains(PROXY_SENTINEL),
            "the proxy password leaked into {what}:\n{text}"
        );
        assert!(
            !text.contains("SENTINEL"),
            "part of a secret leaked into {what}"
        );
    }
    let log = &e.logs();
    assert!(
        log.contains("level=trace") || log.contains("level=debug"),
        "trace logging is on"
    );
    assert!(log.contains("401 Unauthorized"), "{log}");
    let log2 = e2.logs();
    assert!(log2.contains("http://runner:***@"), "{log2}");
    let warnings = log
        .lines()
        .filter(|l| l.contains("readable by group or others"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(
        log.contains(&token.display().to_string()),
        "the warning names the file"
    );
}

/// `HOST:PORT` of a proxy URL.
fn e2_proxy_addr(url: &str) -> &str {
    url.rsplit('@').next().unwrap_or(url)
}

/// The series about GitHub's runners, for comparing scrapes.
fn runner_series(m: &str) -> Vec<String> {
    m.lines()
        .filter(|l| {
            [
                "github_runner_registered{",
                "github_runner_github_online{",
                "github_runner_github_busy{",
                "github_runner_github_label_info{",
                "github_runner_github_info{",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(String::from)
        .collect()
}

/// Runner names are unique only within one repository: three repositories
/// with a `linux_runner` each give three distinct series, named by owner,
/// the same whatever order the owners are listed (and answer) in.
#[test]
fn fleet_runners_sharing_a_name_across_repositories_stay_distinct_and_stable() {
    let fake = FakeGithub::start();
    for (i, repo) in ["app1", "app2", "app3"].iter().enumerate() {
        let mut r = official_runner();
        r["id"] = (23 + i as u64).into();
        fake.set_runners(&format!("repos/acme/{repo}"), vec![r]);
    }
    let env = Env::new();
    let mut seen: Option<Vec<String>> = None;
    for order in [
        "\"acme/app3\", \"acme/app1\", \"acme/app2\"",
        "\"acme/app1\", \"acme/app2\", \"acme/app3\"",
    ] {
        let arg = env.fleet_of(&fake, &format!("repositories = [{order}]\n"));
        let e = Exporter::start(BIN, &[&arg], &[]);
        let series =
            |n: usize| format!("github_runner_registered{{runner=\"linux_runner (acme/app{n})\"}}");
        let m = wait_value(&e, &series(3), 1.0);
        for n in 1..=3 {
            assert_eq!(value(&m, &series(n)), Some(1.0), "{m}");
            let info = format!(
                "github_runner_github_info{{runner=\"linux_runner (acme/app{n})\",id=\"{}\",os=\"linux\",ephemeral=\"false\",owner=\"acme/app{n}\"}}",
                22 + n
            );
            assert_eq!(value(&m, &info), Some(1.0), "{info}\n{m}");
        }
        assert!(!m.contains("runner=\"linux_runner\""), "{m}");
        assert!(!m.contains("()"), "{m}");
        assert_eq!(
            value(
                &m,
                "github_runner_exporter_collector_targets{collector=\"github\"}"
            ),
            Some(3.0)
        );
        // Later polls (304s) keep every series as it was.
        let later = wait_at_least(
            &e,
            "github_runner_github_api_requests_total{code=\"304\"}",
            6.0,
        );
        assert_eq!(runner_series(&m), runner_series(&later));
        let mut now = runner_series(&later);
        now.sort();
        assert_eq!(
            seen.get_or_insert(now.clone()),
            &now,
            "the same in any order"
        );
    }
}

/// One owner that fails (here: a repository that is gone, 404) does not
/// stop the poll: the owners after it are still asked and reported, each
/// with its own success and error series.
#[test]
fn a_failing_owner_does_not_stop_the_others() {
    let fake = FakeGithub::start();
    fake.set_runners(REPO, official_runners());
    fake.set_runners("orgs/acme", generated_runners("org", 500, 2));
    let env = Env::new();
    let arg = env.fleet_of(
        &fake,
        "repositories = [\"acme/gone\", \"acme/app\"]\norganizations = [\"acme\"]\n",
    );
    let e = Exporter::start(BIN, &[&arg], &[]);
    let m = wait_at_least(
        &e,
        "github_runner_github_owner_errors_total{owner=\"acme/gone\",reason=\"not_found\"}",
        2.0,
    );
    for (series, want) in [
        ("github_runner_registered{runner=\"linux_runner\"}", 1.0),
        ("github_runner_registered{runner=\"org-1\"}", 1.0),
        (
            "github_runner_github_owner_success{owner=\"acme/gone\"}",
            0.0,
        ),
        (
            "github_runner_github_owner_success{owner=\"acme/app\"}",
            1.0,
        ),
        ("github_runner_github_owner_success{owner=\"acme\"}", 1.0),
        (
            "github_runner_exporter_collector_success{collector=\"github\"}",
            1.0,
        ),
        ("github_runner_github_api_backoff_seconds", 0.0),
    ] {
        assert_eq!(value(&m, series), Some(want), "{series}\n{m}");
    }
    assert!(
        value(
            &m,
            "github_runner_github_api_errors_total{reason=\"not_found\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        value(
            &m,
            "github_runner_github_owner_errors_total{owner=\"acme/app\",reason=\"not_found\"}"
        ),
        None
    );
    assert!(value(
        &m,
        "github_runner_github_owner_last_success_timestamp_seconds{owner=\"acme\"}"
    )
    .is_some());
    assert_eq!(
        value(
            &m,
            "github_runner_github_owner_last_success_timestamp_seconds{owner=\"acme/gone\"}"
        ),
        None
    );
    // Every poll asks every owner, the failing one first.
    let paths: Vec<String> = runner_requests(&fake).into_iter().map(|r| r.path).collect();
    for owner in ["/repos/acme/gone/", "/repos/acme/app/", "/orgs/acme/"] {
        assert!(
            paths.iter().filter(|p| p.starts_with(owner)).count() >= 2,
            "{owner}: {paths:?}"
        );
    }
    let log = e.logs();
    let warned = log
        .lines()
        .filter(|l| l.contains("this owner failed") && l.contains("acme/gone"))
        .count();
    assert_eq!(warned, 1, "a lasting failure is logged once:\n{log}");
    // The owner comes back.
    fake.set_runners("repos/acme/gone", generated_runners("back", 700, 1));
    let m = wait_value(
        &e,
        "github_runner_github_owner_success{owner=\"acme/gone\"}",
        1.0,
    );
    assert_eq!(
        value(&m, "github_runner_registered{runner=\"back-0\"}"),
        Some(1.0)
    );
}

/// Ids are whatever the published schema allows ("integer", unbounded):
/// beyond 64 bits, negative, or written with a fraction or exponent. A
/// runner object that cannot be read at all is left out, alone.
#[test]
fn any_integer_id_is_accepted_and_an_unreadable_runner_leaves_out_only_itself() {
    let fake = FakeGithub::start();
    fake.set_list_body(
        REPO,
        r#"{"total_count": 6, "runners": [
            {"id": 18446744073709551616, "name": "huge-id", "os": "linux", "status": "online", "busy": false, "labels": []},
            {"id": -3, "name": "negative-id", "os": "linux", "status": "offline", "busy": false, "labels": []},
            {"id": 2.3e1, "name": "exponent-id", "os": "linux", "status": "online", "busy": true,
             "labels": [{"id": 1, "name": "self-hosted", "type": "read-only"}]},
            {"id": "24", "name": "string-id", "os": "linux", "status": "online", "busy": false, "labels": []},
            {"id": 25, "os": "linux", "status": "online", "busy": false, "labels": []},
            {"id": 26.5, "name": "fraction-id", "os": "linux", "status": "online", "busy": false, "labels": []}
        ]}"#,
    );
    let env = Env::new();
    let e = Exporter::start(BIN, &[&env.fleet(&fake, "")], &[]);
    let m = wait_value(&e, "github_runner_registered{runner=\"huge-id\"}", 1.0);
    for (series, want) in [
        (
            "github_runner_github_info{runner=\"huge-id\",id=\"18446744073709551616\",os=\"linux\",ephemeral=\"false\",owner=\"acme/app\"}",
            1.0,
        ),
        (
            "github_runner_github_info{runner=\"negative-id\",id=\"-3\",os=\"linux\",ephemeral=\"false\",owner=\"acme/app\"}",
            1.0,
        ),
        (
            "github_runner_github_info{runner=\"exponent-id\",id=\"23\",os=\"linux\",ephemeral=\"false\",owner=\"acme/app\"}",
            1.0,
        ),
        ("github_runner_github_busy{runner=\"exponent-id\"}", 1.0),
        ("github_runner_github_online{runner=\"negative-id\"}", 0.0),
        (
            "github_runner_github_owner_runners_unreadable{owner=\"acme/app\"}",
            3.0,
        ),
        ("github_runner_github_owner_success{owner=\"acme/app\"}", 1.0),
        (
            "github_runner_exporter_collector_success{collector=\"github\"}",
            1.0,
        ),
        (
            "github_runner_exporter_collector_targets{collector=\"github\"}",
            3.0,
        ),
    ] {
        assert_eq!(value(&m, series), Some(want), "{series}\n{m}");
    }
    assert!(
        !m.contains("string-id") && !m.contains("fraction-id"),
        "{m}"
    );
    // Later polls read the cached page again; each object is logged once.
    wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        2.0,
    );
    let log = e.logs();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("left out a runner GitHub listed"))
            .count(),
        3,
        "{log}"
    );
    assert!(log.contains("is not an integer"), "{log}");
    assert!(log.contains("missing field `name`"), "{log}");
}

/// The host clock against GitHub's, from the `Date` of the answers the
/// exporter gets anyway: a host three hours ahead is named by `/health`
/// and `check`, with its size, before the deleted registration its
/// runner's log reports (actions/runner#4648).
#[test]
fn a_wrong_host_clock_is_measured_and_named_before_a_deleted_registration() {
    let fake = FakeGithub::start();
    let mut r = official_runner();
    r["id"] = 41.into();
    r["name"] = "deploy-primary".into();
    r["status"] = "offline".into();
    r["busy"] = false.into();
    fake.set_runners("orgs/acme", vec![r]);
    // GitHub's clock three hours behind: the host is three hours ahead.
    fake.set_clock_offset(-3 * 3600);
    let env = Env::new();
    let root = env.path("actions-runner");
    copy_dir(&testkit::fixtures_dir().join("runner/broken"), &root);
    let token = env.token_file(0o600);
    let arg = env.config(
        &fake,
        &format!(
            "scope = \"self\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\n",
            token.display()
        ),
        &format!(
            "[[runner]]\nroot = \"{}\"\nrole = \"primary\"\n",
            root.display()
        ),
    );
    let e = Exporter::start(BIN, &[&arg], &[]);
    let m = e
        .wait_metrics(WAIT, |m| {
            value(m, "github_runner_host_clock_offset_seconds").is_some()
        })
        .expect("the clock offset is exported");
    let offset = value(&m, "github_runner_host_clock_offset_seconds").unwrap();
    assert!((offset - 10_800.0).abs() < 3.0, "{offset}");
    // Measured on the requests the collector makes anyway, nothing else.
    wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        2.0,
    );
    let routes: std::collections::BTreeSet<String> = fake
        .requests()
        .iter()
        .map(|r| r.route().to_string())
        .collect();
    // (the runner itself, and the latest release the version check asks
    // for at most hourly)
    assert_eq!(
        routes.into_iter().collect::<Vec<_>>(),
        [
            "/orgs/acme/actions/runners/41",
            "/repos/actions/runner/releases/latest"
        ]
    );
    let health = |e: &Exporter| -> serde_json::Value {
        let r = e.get_with("GET", "/health", &[("Accept", "application/json")]);
        serde_json::from_str(&r.body()).expect("a JSON report")
    };
    let report = health(&e);
    let (status, reason) = testkit::health_check(&report, "clock_in_sync").expect("clock_in_sync");
    assert_eq!(status, "fail", "{report:#}");
    assert!(reason.contains("3h0m ahead of GitHub's"), "{reason}");
    let (registered, _) = testkit::health_check(&report, "registered").unwrap();
    assert_eq!(registered, "fail");
    assert_eq!(
        report["runners"][0]["diagnosis"]["cause"], "clock_skew",
        "{report:#}"
    );
    // `check`, collecting in-process, says the same.
    let out = testkit::process::run(BIN, &["check", &arg], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("Diagnosis: Clock skew"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("clock_in_sync"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("3h0m ahead of GitHub's (offset +10"),
        "{line}"
    );
    // The clock is put right: the measurement follows on the next poll,
    // and the log's deleted registration is the diagnosis again.
    fake.set_clock_offset(0);
    let m = e
        .wait_metrics(WAIT, |m| {
            value(m, "github_runner_host_clock_offset_seconds").is_some_and(|v| v.abs() < 2.0)
        })
        .expect("the offset comes back");
    let _ = m;
    let report = health(&e);
    let (status, _) = testkit::health_check(&report, "clock_in_sync").unwrap();
    assert_eq!(status, "ok", "{report:#}");
    assert_eq!(
        report["runners"][0]["diagnosis"]["cause"],
        "registration_deleted"
    );
}
