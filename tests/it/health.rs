//! The health gate and the diagnosis, end to end: each known failure mode
//! is injected through the real inputs (a unit on the test bus, the fake
//! GitHub, the runner's own files and logs, thresholds in the config), and
//! both `/health` on the running daemon and `runner-health-exporter check`
//! must agree on the gate and name the cause and its runbook.

use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::copy_dir;
use testkit::{Exporter, FakeGithub, FakeSystemd, Unit};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const UNIT: &str = "actions.runner.acme-app.linux_runner.service";
const RUNNER: &str = "linux_runner";
const REPO: &str = "repos/acme/app";

struct Env {
    dir: tempfile::TempDir,
    root: PathBuf,
    systemd: FakeSystemd,
    github: FakeGithub,
}

impl Env {
    /// A healthy primary runner: the `basic` fixture without its job in
    /// progress, its unit running on the test bus, online at the fake
    /// GitHub.
    fn healthy() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("actions-runner");
        copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
        let log = root.join("_diag/Runner_20260105-090000-utc.log");
        let text = std::fs::read_to_string(&log).unwrap();
        let without_job: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("Running job: lint"))
            .collect();
        std::fs::write(&log, without_job.join("\n") + "\n").unwrap();
        std::fs::remove_file(root.join("_diag/Worker_20260105-112000-utc.log")).unwrap();
        let systemd = FakeSystemd::start([Unit::running(UNIT).with_working_directory(&root)]);
        let github = FakeGithub::start();
        let mut runner = testkit::fake_github::official_runner();
        runner["status"] = "online".into();
        runner["busy"] = false.into();
        github.set_runners(REPO, vec![runner]);
        Env {
            dir,
            root,
            systemd,
            github,
        }
    }

    fn config(&self, health: &str) -> PathBuf {
        self.config_with(health, "")
    }

    /// The config, with `extra` (tables after `[health]`; `{dir}` is the
    /// environment's directory) appended.
    fn config_with(&self, health: &str, extra: &str) -> PathBuf {
        // The test machine's own disk must not decide the verdict: tiny
        // thresholds unless the scenario sets its own.
        let disk = if health.contains("disk_free") {
            ""
        } else {
            "disk_free_warn_ratio = 0.0002\ndisk_free_fail_ratio = 0.0001\n"
        };
        let token = self.dir.path().join("token");
        std::fs::write(&token, "test-token\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "[host]\nsample_interval = \"1s\"\n[systemd]\nresync_interval = \"1s\"\n\
             [runner_files]\nroot_patterns = []\n\
             [[runner]]\nroot = \"{root}\"\nrole = \"primary\"\nenvironment = \"production\"\n\
             [github]\nscope = \"self\"\napi_url = \"{api}\"\ntoken_file = \"{token}\"\npoll_interval = \"1s\"\n\
             [health]\nmemory_available_warn_ratio = 0.0\n{disk}{health}\n{extra}",
            extra = extra.replace("{dir}", &self.dir.path().display().to_string()),
            root = self.root.display(),
            api = self.github.url(),
            token = token.display(),
        );
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("DBUS_SYSTEM_BUS_ADDRESS", self.systemd.address())]
    }

    fn start(&self, config: &Path) -> Exporter {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Exporter::start(BIN, &[&format!("--config.file={}", config.display())], &env)
    }

    /// Writes `fixture`'s Runner log as the newest listener log: what the
    /// next listener process of this runner wrote.
    fn next_listener_log(&self, fixture: &str) {
        let diag = testkit::fixtures_dir()
            .join("runner")
            .join(fixture)
            .join("_diag");
        let log = std::fs::read_dir(&diag)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("Runner_"))
            })
            .unwrap();
        std::fs::copy(&log, self.root.join("_diag/Runner_20260105-120000-utc.log")).unwrap();
    }

    fn append_log(&self, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.root.join("_diag/Runner_20260105-090000-utc.log"))
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
}

/// `/health?role=primary` as JSON: status code and body.
fn health(e: &Exporter) -> (u16, Value) {
    let r = e.get_with(
        "GET",
        "/health?role=primary",
        &[("Accept", "application/json")],
    );
    (
        r.status,
        serde_json::from_str(&r.body()).unwrap_or(Value::Null),
    )
}

fn cause(report: &Value) -> Option<String> {
    report["runners"][0]["diagnosis"]["cause"]
        .as_str()
        .map(String::from)
}

fn check_status(report: &Value, check: &str) -> Option<String> {
    testkit::health_check(report, check).map(|(status, _)| status)
}

/// Waits until `/health` names `expected` (or has no diagnosis when None).
fn wait_health(e: &Exporter, expected: Option<&str>) -> (u16, Value) {
    testkit::wait_for(Duration::from_secs(20), || {
        let (code, body) = health(e);
        // Every collector must have spoken before a verdict counts.
        // A finished ephemeral runner has one line of its own.
        let lifecycle = &body["runners"][0]["lifecycle"];
        // GitHub has answered about this runner, unless it has no
        // registration to ask about.
        let asked = lifecycle == "unregistered"
            || check_status(&body, "online_at_github").is_some_and(|s| s != "unknown");
        let complete = lifecycle == "finished"
            || ["service_active", "listener_connected"]
                .iter()
                .all(|c| check_status(&body, c).is_some_and(|s| s != "unknown"))
                && asked
                && check_status(&body, "data_fresh").as_deref() == Some("ok");
        (complete && cause(&body).as_deref() == expected).then_some((code, body))
    })
    .unwrap_or_else(|| {
        panic!(
            "/health never named {expected:?}; last: {:#}\nlog:\n{}",
            health(e).1,
            e.logs()
        )
    })
}

/// `check --json`, collecting in-process.
fn check(env: &Env, config: &Path, extra: &[&str]) -> (i32, Value) {
    let vars = env.env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = vec!["check", "--json", "--role", "primary"];
    let cfg = format!("--config.file={}", config.display());
    args.push(&cfg);
    args.extend_from_slice(extra);
    let out = testkit::process::run(BIN, &args, &vars);
    let body = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), body)
}

struct Scenario {
    name: &'static str,
    health_config: &'static str,
    /// Config tables after `[health]` (`{dir}`: the environment's
    /// directory).
    extra_config: &'static str,
    /// The runner's lifecycle state in the report.
    lifecycle: &'static str,
    /// Applied before the daemon starts.
    inject: fn(&Env),
    http: u16,
    exit: i32,
    cause: Option<&'static str>,
    runbook: Option<&'static str>,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "healthy",
            health_config: "",
            extra_config: "",
            lifecycle: "registered",
            inject: |_| {},
            http: 200,
            exit: 0,
            cause: None,
            runbook: None,
        },
        Scenario {
            name: "service stopped",
            health_config: "",
            extra_config: "",
            lifecycle: "registered",
            inject: |env| env.systemd.stop_unit(UNIT),
            http: 503,
            exit: 2,
            cause: Some("service_stopped"),
            runbook: Some("service-stopped.md"),
        },
        Scenario {
            name: "registration deleted at GitHub",
            health_config: "",
            extra_config: "",
            lifecycle: "unregistered",
            inject: |env| env.github.remove_runner(REPO, 23),
            http: 503,
            exit: 2,
            cause: Some("registration_deleted"),
            runbook: Some("registration-deleted.md"),
        },
        Scenario {
            name: ".runner gone",
            health_config: "",
            extra_config: "",
            lifecycle: "unregistered",
            inject: |env| std::fs::remove_file(env.root.join(".runner")).unwrap(),
            http: 503,
            exit: 2,
            cause: Some("registration_deleted"),
            runbook: Some("registration-deleted.md"),
        },
        Scenario {
            name: "offline at GitHub while the service runs",
            health_config: "",
            extra_config: "",
            lifecycle: "registered",
            inject: |env| {
                env.github
                    .update_runner(REPO, 23, |r| r["status"] = "offline".into())
            },
            http: 503,
            exit: 2,
            cause: Some("offline_at_github"),
            runbook: Some("offline-at-github.md"),
        },
        Scenario {
            name: "session conflict",
            health_config: "",
            extra_config: "",
            lifecycle: "registered",
            inject: |env| {
                env.append_log(&[
                    "[2026-01-05 12:00:00Z ERR  Terminal] WRITE ERROR: A session for this runner already exists.",
                    "[2026-01-05 12:04:00Z INFO Listener] Runner execution has finished with return code 5",
                ]);
                env.systemd.stop_unit(UNIT);
                env.github
                    .update_runner(REPO, 23, |r| r["status"] = "offline".into());
            },
            http: 503,
            exit: 2,
            cause: Some("session_conflict"),
            runbook: Some("session-conflict.md"),
        },
        Scenario {
            name: "disk full (threshold)",
            health_config: "disk_free_warn_ratio = 0.9999\ndisk_free_fail_ratio = 0.9998\n",
            extra_config: "",
            lifecycle: "registered",
            inject: |_| {},
            http: 503,
            exit: 2,
            cause: Some("disk_full"),
            runbook: Some("disk-full.md"),
        },
        Scenario {
            name: "stuck job",
            health_config: "max_job_duration = \"1h\"\n",
            extra_config: "",
            lifecycle: "busy",
            inject: |env| {
                env.append_log(&["[2026-01-05 12:00:00Z INFO Terminal] WRITE LINE: 2026-01-05 12:00:00Z: Running job: deploy-production"])
            },
            http: 503,
            exit: 2,
            cause: Some("stuck_job"),
            runbook: Some("stuck-job.md"),
        },
        Scenario {
            name: "clock skew",
            health_config: "",
            extra_config: "",
            lifecycle: "registered",
            inject: |env| {
                env.append_log(&["[2026-01-05 12:00:00Z WARN Terminal] WRITE LINE: The local machine's clock may be out of sync with the server time by more than five minutes."])
            },
            http: 200,
            exit: 1,
            cause: Some("clock_skew"),
            runbook: Some("clock-skew.md"),
        },
        Scenario {
            // The `deprecated` fixture's log as the newest listener's:
            // refused for its version, exit 1, the service stopped.
            name: "runner version deprecated",
            health_config: "",
            extra_config: "",
            lifecycle: "registered",
            inject: |env| {
                env.next_listener_log("deprecated");
                env.systemd.stop_unit(UNIT);
                env.github
                    .update_runner(REPO, 23, |r| r["status"] = "offline".into());
                env.github
                    .set_latest_release(Some(FakeGithub::fixture_latest_release()));
            },
            http: 503,
            exit: 2,
            cause: Some("version_deprecated"),
            runbook: Some("version-deprecated.md"),
        },
        Scenario {
            // The `ephemeral-finished` fixture: the log of its one job,
            // `.runner` and the credentials deleted, the service stopped,
            // the registration gone at GitHub. Not a failure, and nothing
            // here can take a deploy.
            name: "ephemeral runner finished",
            health_config: "",
            extra_config: "",
            lifecycle: "finished",
            inject: |env| {
                env.next_listener_log("ephemeral-finished");
                for f in [".runner", ".credentials", ".credentials_rsaparams"] {
                    std::fs::remove_file(env.root.join(f)).unwrap();
                }
                env.systemd.stop_unit(UNIT);
                env.github.remove_runner(REPO, 23);
            },
            http: 503,
            exit: 2,
            cause: None,
            runbook: None,
        },
        Scenario {
            // The `docker-denied` fixture's Worker log (a container job
            // failing on `docker version`), docker.service running, and a
            // socket the runner's user (nobody, the unit's User=) cannot
            // open: root:root 0660.
            name: "docker denied",
            health_config: "",
            extra_config: "[docker]\nsocket = \"{dir}/docker.sock\"\n",
            lifecycle: "registered",
            inject: |env| {
                let worker = "docker-denied/_diag/Worker_20260105-141002-utc.log";
                std::fs::copy(
                    testkit::fixtures_dir().join("runner").join(worker),
                    env.root.join("_diag/Worker_20260105-141002-utc.log"),
                )
                .unwrap();
                let socket = env.dir.path().join("docker.sock");
                let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
                // The socket file outlives the listener.
                drop(listener);
                std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660)).unwrap();
                env.systemd.update(UNIT, |u| u.user = "nobody".into());
                env.systemd.add_unit(Unit::running("docker.service"));
            },
            http: 503,
            exit: 2,
            cause: Some("docker_unavailable"),
            runbook: Some("docker-unavailable.md"),
        },
    ]
}

#[test]
fn each_failure_mode_gives_gate_exit_code_cause_and_runbook() {
    let mut failures = Vec::new();
    for s in scenarios() {
        let env = Env::healthy();
        (s.inject)(&env);
        let config = env.config_with(s.health_config, s.extra_config);

        let (exit, report) = check(&env, &config, &[]);
        let got = (exit, cause(&report));
        if got != (s.exit, s.cause.map(String::from)) {
            failures.push(format!(
                "{}: check gave {got:?}, want ({}, {:?}): {report:#}",
                s.name, s.exit, s.cause
            ));
        }

        if report["runners"][0]["lifecycle"] != s.lifecycle {
            failures.push(format!(
                "{}: check gave lifecycle {}, want {}",
                s.name, report["runners"][0]["lifecycle"], s.lifecycle
            ));
        }
        if s.cause.is_none() {
            let failing: Vec<&Value> = report["runners"][0]["checks"]
                .as_array()
                .map(|c| c.iter().filter(|c| c["status"] == "fail").collect())
                .unwrap_or_default();
            if !failing.is_empty() {
                failures.push(format!(
                    "{}: failing checks without a cause: {failing:?}",
                    s.name
                ));
            }
        }
        if s.lifecycle == "finished"
            && !report["message"]
                .as_str()
                .is_some_and(|m| m.contains("no runner here can take a deploy"))
        {
            failures.push(format!(
                "{}: no message about the deploy: {report:#}",
                s.name
            ));
        }

        let e = env.start(&config);
        let (code, body) = wait_health(&e, s.cause);
        if body["runners"][0]["lifecycle"] != s.lifecycle {
            failures.push(format!(
                "{}: /health gave lifecycle {}, want {}",
                s.name, body["runners"][0]["lifecycle"], s.lifecycle
            ));
        }
        if body["runners"][0]["runner"] != RUNNER {
            failures.push(format!(
                "{}: the runner is not named {RUNNER}: {body:#}",
                s.name
            ));
        }
        if code != s.http {
            failures.push(format!(
                "{}: /health answered {code}, want {}: {body:#}",
                s.name, s.http
            ));
        }
        if let Some(page) = s.runbook {
            let link = body["runners"][0]["diagnosis"]["runbook"]
                .as_str()
                .unwrap_or_default();
            let local = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/runbooks")
                .join(page);
            if !link.ends_with(&format!("/{page}")) || !local.is_file() {
                failures.push(format!(
                    "{}: runbook {link:?} is not docs/runbooks/{page}",
                    s.name
                ));
            }
        }
        // The text form says the same for a person with curl.
        let text = e.get("/health?role=primary").body();
        if let Some(c) = s.cause {
            let title = body["runners"][0]["diagnosis"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !text.contains(&format!("Diagnosis: {title}")) {
                failures.push(format!(
                    "{}: text /health lacks the diagnosis {c}: {text}",
                    s.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn crash_loop_seen_by_the_daemon_and_reported_through_check_url() {
    let env = Env::healthy();
    let config = env.config("crashloop_restarts = 3\n");
    let e = env.start(&config);
    wait_health(&e, None);
    for n in 1..=3 {
        env.systemd.update(UNIT, |u| {
            u.n_restarts = n;
            u.active_state = "activating".into();
            u.sub_state = "auto-restart".into();
        });
        std::thread::sleep(Duration::from_millis(400));
    }
    let (code, _) = wait_health(&e, Some("crash_looping"));
    assert_eq!(code, 503);
    // The engineer's one command, against the running daemon.
    let url = format!("http://{}", e.addr);
    let out = testkit::process::run(BIN, &["check", "--url", &url, "--role", "primary"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Diagnosis: Service crash-looping"), "{text}");
    assert!(text.contains("crash-looping.md"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn a_deploy_gate_for_a_role_without_runners_fails() {
    let env = Env::healthy();
    let config = env.config("");
    let e = env.start(&config);
    wait_health(&e, None);
    let r = e.get("/health?role=secondary");
    assert_eq!(r.status, 503);
    assert!(r.body().contains("no runner matches the selection"));
    assert_eq!(e.get("/health?runner=linux_runner").status, 200);
    let (exit, report) = check(&env, &config, &["--runner", "nobody"]);
    assert_eq!(exit, 2);
    assert_eq!(report["healthy"], false);
}

#[test]
fn the_exporter_unable_to_read_the_runner_says_so() {
    // Needs root to run the exporter as another user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: not root");
        return;
    }
    let env = Env::healthy();
    let config = env.config("");
    std::fs::set_permissions(&env.root, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let vars = env.env();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        BIN,
        "check",
        "--json",
    ])
    .arg(format!("--config.file={}", config.display()));
    for (k, v) in &vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("setpriv runs (util-linux)");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    assert_eq!(
        cause(&report).as_deref(),
        Some("permission_denied"),
        "{report:#}"
    );
    assert_eq!(
        check_status(&report, "runner_readable").as_deref(),
        Some("fail")
    );
}

#[test]
fn check_and_health_speak_markdown_and_workflow_commands() {
    let env = Env::healthy();
    env.systemd.stop_unit(UNIT);
    let config = env.config("");
    let e = env.start(&config);
    wait_health(&e, Some("service_stopped"));
    // The step summary of a deploy workflow: the table and the runbook.
    let r = e.get("/health?role=primary&format=markdown");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    let md = r.body();
    assert!(md.contains("| `service_active` | **fail** |"), "{md}");
    assert!(md.contains("**Diagnosis: Service stopped**"), "{md}");
    assert!(md.contains("service-stopped.md)"), "{md}");
    // Workflow commands, from the daemon and from the one-shot check.
    let r = e.get("/health?role=primary&format=github");
    assert_eq!(r.status, 503);
    let line = r.body();
    assert!(
        line.starts_with("::error title=Runner linux_runner::Service stopped: "),
        "{line}"
    );
    let vars = env.env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cfg = format!("--config.file={}", config.display());
    for format in ["github", "markdown"] {
        let out = testkit::process::run(BIN, &["check", "--format", format, &cfg], &vars);
        assert_eq!(out.status.code(), Some(2), "{format}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Service stopped"), "{format}: {text}");
        assert!(text.contains("service-stopped.md"), "{format}: {text}");
    }
    // An unknown format is a clear 400.
    let r = e.get("/health?format=yaml");
    assert_eq!(r.status, 400);
    assert!(r.body().contains("unknown format"), "{}", r.body());
}
