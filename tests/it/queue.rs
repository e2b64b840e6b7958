//! The queue as a user meets it: the real binary watches a repository of
//! the fake GitHub serving the scenario of `tests/fixtures/github/queue/`
//! (two queued runs, four queued jobs, the official runners), moved so
//! that the scenario's reference time is now. The tests assert the
//! README's expected values in `/metrics`, `/health` and `check`, the
//! requests made, and what changes when the jobs are picked up.

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::fake_github::official_runners;
use testkit::github_queue::{self as scenario, CI_RUN, DEPLOY_RUN, REPO};
use testkit::{copy_dir, sample_value, Exporter, FakeGithub};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
/// The token: it must never show up anywhere.
const SENTINEL: &str = "ghp_SENTINELqueue0123456789abcdefXYZ";
const WAIT: Duration = Duration::from_secs(30);
/// Slack on the scenario's waits: the test's own time since the shift.
const SLACK: f64 = 60.0;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A config with the given `[github]` lines (after api_url and the
    /// token file) and other sections; returns its path.
    fn config(&self, fake: &FakeGithub, github: &str, other: &str) -> PathBuf {
        let token = self.path("token");
        std::fs::write(&token, format!("{SENTINEL}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "[host]\nenabled = false\n[systemd]\nenabled = false\n{other}\n\
             [github]\napi_url = \"{}\"\ntoken_file = \"{}\"\npoll_interval = \"1s\"\n{github}\n",
            fake.url(),
            token.display()
        );
        let p = self.path("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Fleet scope over acme/app (every runner of the repository known),
    /// the queue polled every second.
    fn fleet(&self, fake: &FakeGithub, queue: &str, health: &str) -> PathBuf {
        self.config(
            fake,
            &format!(
                "scope = \"fleet\"\nrepositories = [\"acme/app\"]\n[github.queue]\nrepositories = [\"acme/app\"]\npoll_interval = \"1s\"\n{queue}"
            ),
            &format!("[runner_files]\nenabled = false\n[jobs]\nworkflows = [\"deploy.yml\"]\n[health]\n{health}"),
        )
    }
}

fn arg(config: &Path) -> String {
    format!("--config.file={}", config.display())
}

fn value(m: &str, series: &str) -> Option<f64> {
    sample_value(m, series)
}

fn jobs(labels: &str) -> String {
    format!("github_runner_queue_jobs{{labels=\"{labels}\"}}")
}

fn age(labels: &str) -> String {
    format!("github_runner_queue_oldest_age_seconds{{labels=\"{labels}\"}}")
}

fn runners(labels: &str, state: &str) -> String {
    format!("github_runner_labelset_runners{{labels=\"{labels}\",state=\"{state}\"}}")
}

fn wait_metrics(e: &Exporter, what: &str, f: impl Fn(&str) -> bool) -> String {
    e.wait_metrics(WAIT, f).unwrap_or_else(|| {
        panic!(
            "never saw {what}; metrics:\n{}\nlog:\n{}",
            e.metrics(),
            e.logs()
        )
    })
}

/// The requests the queue made (not the runner polls).
fn queue_requests(fake: &FakeGithub) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.route().contains("/actions/runs") || r.route().contains("/workflows/"))
        .map(|r| format!("{} {}", r.status, r.path))
        .collect()
}

fn check(config: &Path, json: bool) -> (i32, String) {
    let cfg = arg(config);
    let mut args = vec!["check", cfg.as_str()];
    if json {
        args.push("--json");
    }
    let out = testkit::process::run(BIN, &args, &[]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn serve(fake: &FakeGithub) {
    fake.set_runners(REPO, official_runners());
    fake.require_token(SENTINEL);
    scenario::serve_queued(fake);
}

#[test]
fn queued_jobs_by_label_set_with_their_runners_and_304s_on_the_next_poll() {
    let fake = FakeGithub::start();
    serve(&fake);
    let env = Env::new();
    let e = Exporter::start(BIN, &[&arg(&env.fleet(&fake, "", ""))], &[]);
    // The matching needs the runner poll's data: wait for it.
    let m = wait_metrics(&e, "the runners matched", |m| {
        value(m, &runners("linux,self-hosted", "online")) == Some(1.0)
    });
    for (series, want) in [
        ("github_runner_queue_runs{status=\"queued\"}", 2.0),
        ("github_runner_queue_runs{status=\"in_progress\"}", 0.0),
        (&jobs("linux,self-hosted,x64"), 1.0),
        (&jobs("linux,self-hosted"), 1.0),
        (&jobs("gpu,linux,self-hosted"), 1.0),
        (&jobs("macos,self-hosted"), 1.0),
        // linux_runner carries `Linux` and `X64`: case-insensitive, and
        // more labels than asked for are fine. It is busy.
        (&runners("linux,self-hosted,x64", "online"), 1.0),
        (&runners("linux,self-hosted,x64", "idle"), 0.0),
        (&runners("linux,self-hosted", "idle"), 0.0),
        // mac_runner has `no-gpu`, which is not `gpu`, and no `linux`.
        (&runners("gpu,linux,self-hosted", "online"), 0.0),
        // mac_runner is offline.
        (&runners("macos,self-hosted", "online"), 0.0),
        ("github_runner_queue_api_budget_requests_per_hour", 1000.0),
        (
            "github_runner_exporter_collector_success{collector=\"queue\"}",
            1.0,
        ),
        (
            "github_runner_exporter_collector_targets{collector=\"queue\"}",
            1.0,
        ),
        ("github_runner_queue_time_seconds_count", 0.0),
        ("github_runner_queue_time_unmeasured_total", 0.0),
        (
            "github_runner_workflow_jobs_total{workflow=\"deploy.yml\",result=\"success\"}",
            0.0,
        ),
    ] {
        assert_eq!(value(&m, series), Some(want), "{series}\n{m}");
    }
    let total: f64 = m
        .lines()
        .filter(|l| l.starts_with("github_runner_queue_jobs{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 4.0, "4 queued jobs\n{m}");
    // Waits at the reference time: 466 s for deploy-production, 136 s for
    // each CI job; this test has run a few seconds since.
    for (labels, wait) in [
        ("linux,self-hosted,x64", 466.0),
        ("linux,self-hosted", 136.0),
        ("gpu,linux,self-hosted", 136.0),
        ("macos,self-hosted", 136.0),
    ] {
        let a = value(&m, &age(labels)).unwrap_or_else(|| panic!("{labels}\n{m}"));
        assert!((wait..wait + SLACK).contains(&a), "{labels}: {a}");
    }
    // No job id or job name in any series.
    for secret in ["58100000101", "deploy-production", "gpu-tests", SENTINEL] {
        assert!(!m.contains(secret), "{secret} in /metrics");
    }
    // First poll: 2 run lists, 2 job lists, the deploy workflow's runs,
    // all answered 200 and charged. Later polls: the same URLs, 304s.
    let first: Vec<String> = queue_requests(&fake).into_iter().take(5).collect();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "200 /repos/acme/app/actions/runs/20711000101/jobs?per_page=100",
            "200 /repos/acme/app/actions/runs/20711000202/jobs?per_page=100",
            "200 /repos/acme/app/actions/runs?status=in_progress&per_page=100",
            "200 /repos/acme/app/actions/runs?status=queued&per_page=100",
            "200 /repos/acme/app/actions/workflows/deploy.yml/runs?per_page=20",
        ]
    );
    let m = wait_metrics(&e, "a second poll", |m| {
        value(m, "github_runner_queue_api_requests_total{code=\"304\"}").is_some_and(|v| v >= 5.0)
    });
    assert_eq!(
        value(&m, "github_runner_queue_api_requests_total{code=\"200\"}"),
        Some(5.0)
    );
    assert_eq!(
        value(&m, "github_runner_queue_api_charged_requests_total"),
        Some(5.0),
        "304s are not charged"
    );
    let second: Vec<String> = queue_requests(&fake)[5..10].to_vec();
    assert!(second.iter().all(|r| r.starts_with("304 ")), "{second:?}");
    let with_etag = fake
        .requests()
        .into_iter()
        .filter(|r| r.route().contains("/actions/runs"))
        .skip(5)
        .all(|r| r.header("if-none-match").is_some());
    assert!(with_etag, "later polls are conditional");
    assert!(!e.logs().contains(SENTINEL), "the token in the log");
}

#[test]
fn check_and_health_name_the_label_sets_why_they_wait_and_the_closest_runners() {
    let fake = FakeGithub::start();
    serve(&fake);
    let env = Env::new();
    let config = env.fleet(&fake, "", "max_queue_wait = \"1m\"\n");
    let (code, text) = check(&config, false);
    assert!(
        text.contains("Queue (acme/app): 4 jobs waiting for a runner, the oldest for 7m"),
        "{text}"
    );
    for want in [
        "gpu,linux,self-hosted: 1 job, waiting up to 2m",
        "no runner has all of these labels; closest: linux_runner (online, busy) lacks gpu; mac_runner (offline) lacks gpu, linux",
        "macos,self-hosted: 1 job, waiting up to 2m",
        "only offline runners have these labels: mac_runner",
        "linux,self-hosted,x64: 1 job, waiting up to 7m",
        "every online runner with these labels is busy: linux_runner",
        "acme/app deploy.yml / deploy-production (7m",
        "acme/app ci.yml / gpu-tests (2m",
        "docs/runbooks/no-online-runner-for-labels.md",
        "docs/runbooks/job-queued-too-long.md",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains(SENTINEL));
    let (json_code, json) = check(&config, true);
    assert_eq!(json_code, code);
    let report: Value = serde_json::from_str(&json).unwrap();
    let q = &report["queue"];
    assert_eq!(q["status"], "waiting", "{q:#}");
    assert_eq!(q["queued_jobs"], 4);
    assert_eq!(q["runners_known"], "fleet");
    assert_eq!(q["diagnosis"]["cause"], "job_queued");
    let sets = q["label_sets"].as_array().unwrap();
    assert_eq!(
        sets[0]["labels"], "linux,self-hosted,x64",
        "longest wait first"
    );
    let set = |k: &str| sets.iter().find(|s| s["labels"] == k).unwrap().clone();
    assert_eq!(set("gpu,linux,self-hosted")["reason"], "no_runner");
    assert_eq!(
        set("gpu,linux,self-hosted")["nearest"][0],
        json!({"runner": "linux_runner", "online": true, "busy": true, "missing": ["gpu"]})
    );
    assert_eq!(set("macos,self-hosted")["reason"], "only_offline");
    assert_eq!(set("linux,self-hosted")["reason"], "all_busy");
    assert_eq!(set("linux,self-hosted,x64")["runners_online"], 1);
    assert_eq!(
        set("linux,self-hosted,x64")["jobs"][0]["job"],
        "deploy-production"
    );

    // The gate is about the runners: the same answer without the queue.
    let off = env.fleet(&fake, "", "max_queue_wait = \"1m\"\n");
    let text = std::fs::read_to_string(&off).unwrap().replace(
        "[github.queue]\nrepositories = [\"acme/app\"]",
        "[github.queue]\nrepositories = []",
    );
    std::fs::write(&off, text).unwrap();
    let (off_code, off_json) = check(&off, true);
    let off_report: Value = serde_json::from_str(&off_json).unwrap();
    assert!(off_report.get("queue").is_none());
    assert_eq!(
        off_code, code,
        "check's exit code does not depend on the queue"
    );
    assert_eq!(off_report["healthy"], report["healthy"]);
    assert_eq!(off_report["status"], report["status"]);

    // The daemon's /health carries the same section.
    let config = env.fleet(&fake, "", "max_queue_wait = \"1m\"\n");
    let e = Exporter::start(BIN, &[&arg(&config)], &[]);
    wait_metrics(&e, "the runners matched", |m| {
        value(m, &runners("linux,self-hosted", "online")) == Some(1.0)
    });
    let r = e.get_with("GET", "/health", &[("Accept", "application/json")]);
    let health: Value = serde_json::from_str(&r.body()).unwrap();
    assert_eq!(health["queue"]["status"], "waiting");
    assert_eq!(health["queue"]["label_sets"].as_array().unwrap().len(), 4);
    assert_eq!(health["healthy"], report["healthy"]);
    let text = e.get("/health").body();
    assert!(
        text.contains("only offline runners have these labels: mac_runner"),
        "{text}"
    );
}

/// The CI run's jobs picked up: build after 42 s and macos-smoke after
/// 185 s (the completed jobs of the earlier CI run, with this run's ids
/// and times), gpu-tests by a new runner with `started_at` still equal to
/// `created_at`; the deploy job picked up after 60 s and completed with
/// success 250 s later.
fn picked_up(by: i64) -> (Vec<Value>, Vec<Value>) {
    let mut ci = scenario::items("run-20711000202-jobs.json", "jobs", by);
    let done = scenario::items("run-20710990303-jobs.json", "jobs", by);
    let secs =
        |v: &Value| -> i64 { scenario::seconds(v.as_str().expect("a time")).expect("a time") };
    let stamp = |t: i64| json!(scenario::stamp(t));
    let created = secs(&ci[0]["created_at"]);
    for (i, d) in [(0, &done[0]), (2, &done[1])] {
        let queue = secs(&d["started_at"]) - secs(&d["created_at"]);
        let run = secs(&d["completed_at"]) - secs(&d["started_at"]);
        let job = &mut ci[i];
        job["status"] = d["status"].clone();
        job["conclusion"] = d["conclusion"].clone();
        job["started_at"] = stamp(created + queue);
        job["completed_at"] = stamp(created + queue + run);
        job["runner_id"] = d["runner_id"].clone();
        job["runner_name"] = d["runner_name"].clone();
        job["runner_group_id"] = d["runner_group_id"].clone();
        job["runner_group_name"] = d["runner_group_name"].clone();
    }
    ci[1]["status"] = json!("in_progress");
    ci[1]["runner_id"] = json!(99);
    ci[1]["runner_name"] = json!("gpu-1");
    let deploy = scenario::completed_deploy(by, 60, 250);
    (ci, deploy)
}

#[test]
fn picked_up_jobs_fill_the_queue_time_histogram_and_a_completed_deploy_counts() {
    let fake = FakeGithub::start();
    serve(&fake);
    let by = scenario::now() - scenario::REFERENCE;
    let env = Env::new();
    let e = Exporter::start(BIN, &[&arg(&env.fleet(&fake, "", ""))], &[]);
    wait_metrics(&e, "the queued jobs", |m| {
        value(m, &jobs("gpu,linux,self-hosted")) == Some(1.0)
    });
    // The CI run starts; the deploy run completes and leaves the queue.
    let (ci, deploy) = picked_up(by);
    fake.set_jobs(CI_RUN, ci);
    fake.update_run(REPO, CI_RUN, |r| r["status"] = json!("in_progress"));
    fake.set_jobs(DEPLOY_RUN, deploy);
    fake.update_run(REPO, DEPLOY_RUN, |r| r["status"] = json!("completed"));
    let m = wait_metrics(&e, "the jobs picked up", |m| {
        value(m, "github_runner_queue_time_seconds_count") == Some(3.0)
            && value(
                m,
                "github_runner_workflow_jobs_total{workflow=\"deploy.yml\",result=\"success\"}",
            ) == Some(1.0)
    });
    for (series, want) in [
        // 42 s (build), 185 s (macos-smoke), 60 s (deploy-production).
        ("github_runner_queue_time_seconds_sum", 287.0),
        ("github_runner_queue_time_seconds_bucket{le=\"30.0\"}", 0.0),
        ("github_runner_queue_time_seconds_bucket{le=\"60.0\"}", 2.0),
        ("github_runner_queue_time_seconds_bucket{le=\"120.0\"}", 2.0),
        ("github_runner_queue_time_seconds_bucket{le=\"300.0\"}", 3.0),
        // gpu-tests: picked up, but started_at still equals created_at.
        ("github_runner_queue_time_unmeasured_total", 1.0),
        ("github_runner_queue_runs{status=\"queued\"}", 0.0),
        ("github_runner_queue_runs{status=\"in_progress\"}", 1.0),
        (
            "github_runner_workflow_jobs_total{workflow=\"deploy.yml\",result=\"failure\"}",
            0.0,
        ),
        ("github_runner_workflow_job_duration_seconds_sum{workflow=\"deploy.yml\"}", 250.0),
        (
            "github_runner_workflow_job_duration_seconds_bucket{workflow=\"deploy.yml\",le=\"300.0\"}",
            1.0,
        ),
        // gpu-tests runs: its set is still requested, with nothing queued.
        (&jobs("gpu,linux,self-hosted"), 0.0),
    ] {
        assert_eq!(value(&m, series), Some(want), "{series}\n{m}");
    }
    assert_eq!(
        value(&m, &age("gpu,linux,self-hosted")),
        None,
        "nothing queued"
    );
    // No queued or running job asks for these sets any more.
    assert_eq!(value(&m, &jobs("linux,self-hosted")), None);
    assert_eq!(value(&m, &runners("macos,self-hosted", "online")), None);
    // Seen once, counted once.
    std::thread::sleep(Duration::from_millis(2500));
    let later = e.metrics();
    assert_eq!(
        value(&later, "github_runner_queue_time_seconds_count"),
        Some(3.0)
    );
    assert_eq!(
        value(
            &later,
            "github_runner_workflow_jobs_total{workflow=\"deploy.yml\",result=\"success\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn self_scope_watches_the_local_runners_repository_and_knows_only_its_runners() {
    let fake = FakeGithub::start();
    serve(&fake);
    let env = Env::new();
    let root = env.path("actions-runner");
    copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
    // No [github.queue] repositories: the local runner's gitHubUrl
    // (https://github.com/acme/app) names the repository.
    let config = env.config(
        &fake,
        "scope = \"self\"\n[github.queue]\npoll_interval = \"1s\"\n",
        &format!(
            "[runner_files]\nroot_patterns = []\n[[runner]]\nroot = \"{}\"\n[health]\nmax_queue_wait = \"1m\"\n",
            root.display()
        ),
    );
    let e = Exporter::start(BIN, &[&arg(&config)], &[]);
    let m = wait_metrics(&e, "the local runner matched", |m| {
        value(m, &runners("linux,self-hosted", "online")) == Some(1.0)
    });
    assert_eq!(
        value(&m, "github_runner_queue_runs{status=\"queued\"}"),
        Some(2.0)
    );
    // Only linux_runner (id 23) is local: mac_runner is unknown here.
    assert_eq!(
        value(&m, &runners("macos,self-hosted", "online")),
        Some(0.0)
    );
    let r = e.get_with("GET", "/health", &[("Accept", "application/json")]);
    let health: Value = serde_json::from_str(&r.body()).unwrap();
    let q = &health["queue"];
    assert_eq!(q["runners_known"], "local");
    assert_eq!(q["repositories"], json!(["acme/app"]));
    let mac = q["label_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["labels"] == "macos,self-hosted")
        .unwrap();
    assert_eq!(mac["reason"], "no_runner", "{mac:#}");
    assert!(
        mac["explanation"]
            .as_str()
            .unwrap()
            .starts_with("no runner has all of these labels (among the local runners)"),
        "{mac:#}"
    );
    let text = e.get("/health").body();
    assert!(text.contains("runners known: this host's only"), "{text}");
}

#[test]
fn a_repository_the_token_cannot_read_fails_the_queue_alone() {
    let fake = FakeGithub::start();
    serve(&fake);
    let env = Env::new();
    let config = env.fleet(&fake, "", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[github.queue]\nrepositories = [\"acme/app\"]",
        "[github.queue]\nrepositories = [\"acme/app\", \"acme/secret\"]",
    );
    std::fs::write(&config, text).unwrap();
    let e = Exporter::start(BIN, &[&arg(&config)], &[]);
    // (the github collector's first poll may end after the queue's)
    let m = wait_metrics(&e, "the queue failing on acme/secret", |m| {
        value(
            m,
            "github_runner_queue_api_errors_total{reason=\"not_found\"}",
        ) == Some(1.0)
            && value(m, &jobs("gpu,linux,self-hosted")) == Some(1.0)
            && value(
                m,
                "github_runner_exporter_collector_last_success_timestamp_seconds{collector=\"github\"}",
            )
            .is_some_and(|t| t > 0.0)
    });
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"queue\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"github\"}"
        ),
        Some(1.0)
    );
    let logs = e.logs();
    assert!(
        logs.contains("acme/secret") && logs.contains("Actions: read"),
        "{logs}"
    );
    // Asked once, not on every poll (a 404 has no ETag: each is charged).
    std::thread::sleep(Duration::from_millis(2500));
    let asked = fake
        .requests()
        .iter()
        .filter(|r| r.route().starts_with("/repos/acme/secret/"))
        .count();
    assert_eq!(asked, 1);
    let r = e.get_with("GET", "/health", &[("Accept", "application/json")]);
    let health: Value = serde_json::from_str(&r.body()).unwrap();
    let error = health["queue"]["error"].as_str().unwrap_or("");
    assert!(error.contains("acme/secret"), "{health:#}");
}
